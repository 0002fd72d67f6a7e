#!/usr/bin/env bash
# The bash completion script completes commands, subcommands, flags and values.
set -uo pipefail
source "$TEST_SRCDIR/$TEST_WORKSPACE/cli/completion/callmesh.bash"

failures=0
expect() {
  local want="$1"
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _callmesh
  local got="${COMPREPLY[*]}"
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: [$*] completed to '$got', want '$want'"
    failures=$((failures + 1))
  fi
}

expect "calls" callmesh ca
expect "get wait ls cancel" callmesh calls ""
expect "ls redrive" callmesh dead-letters ""
expect "replay rm" callmesh subscriptions ""
expect "--from-sequence" callmesh subscriptions replay orders billing --from-s
expect "publish" callmesh pub
expect "--state" callmesh calls ls --st
expect "running" callmesh calls ls --state r
expect "--async" callmesh invoke greeter SayHello --as
expect "--idempotency-key" callmesh --sidecar 127.0.0.1:1 invoke greeter SayHello --idem
expect "table" callmesh -o t
expect "--source" callmesh watch --sou
expect "invoke" callmesh help inv
expect "health" callmesh hea
expect "health" callmesh help he
expect "--wait" callmesh health --wa
expect "--service" callmesh health --ser
expect "init issue" callmesh certs ""
expect "sidecar" callmesh certs issue node-1 --kind s
expect "--trust-domain" callmesh certs init --tr
expect "--tls-ca --tls-cert --tls-key" callmesh invoke --tls
expect "stats" callmesh sta
expect "describe" callmesh des
[[ $(complete -p callmesh) == "complete -F _callmesh callmesh" ]] || {
  echo "FAIL: completion not registered"
  failures=$((failures + 1))
}
if ((failures > 0)); then
  exit 1
fi
echo "all completions as expected"
