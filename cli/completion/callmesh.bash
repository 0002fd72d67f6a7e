# bash completion for `callmesh` (commands, subcommands, flags, and mesh service names read from
# `callmesh services -o names` for `invoke`).
#
#   source cli/completion/callmesh.bash      # or copy to /etc/bash_completion.d/callmesh

_callmesh_services() {
  local sidecar_args=()
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case "${COMP_WORDS[i]}" in
      --sidecar) sidecar_args=(--sidecar "${COMP_WORDS[i + 1]}") ;;
      --sidecar=*) sidecar_args=("${COMP_WORDS[i]}") ;;
    esac
  done
  "${COMP_WORDS[0]}" ${sidecar_args[@]+"${sidecar_args[@]}"} --connect-timeout 1s services -o names 2>/dev/null
}

_callmesh() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD - 1]}"
  local global_flags="--sidecar --output -o --protoset --connect-timeout --token-file --tls-ca --tls-cert --tls-key --help -h --version"

  case "$prev" in
    --sidecar | --protoset | --connect-timeout | --timeout | --callback | --idempotency-key | \
      --header | -H | --source | --limit | --reason | --cid | --after | --service | --token-file | \
      --tls-ca | --tls-cert | --tls-key | --dir | --trust-domain | --days)
      if [[ "$prev" == --protoset || "$prev" == --token-file || "$prev" == --tls-* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
      elif [[ "$prev" == --dir ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
      elif [[ "$prev" == --service && " ${COMP_WORDS[*]} " != *" health "* ]]; then
        COMPREPLY=($(compgen -W "$(_callmesh_services)" -- "$cur"))
      fi
      return
      ;;
    --output | -o)
      COMPREPLY=($(compgen -W "json table names" -- "$cur"))
      return
      ;;
    --kind)
      COMPREPLY=($(compgen -W "app sidecar" -- "$cur"))
      return
      ;;
    --state)
      COMPREPLY=($(compgen -W "accepted running succeeded failed cancelled expired" -- "$cur"))
      return
      ;;
    --data | -d)
      if [[ "$cur" == @* ]]; then
        COMPREPLY=($(compgen -f -- "${cur#@}" | sed 's/^/@/'))
      fi
      return
      ;;
  esac

  # The command words typed so far (skipping flags and their values).
  local words=() i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
    case "$word" in
      --sidecar | --output | -o | --protoset | --connect-timeout | --timeout | --callback | \
        --idempotency-key | --header | -H | --source | --limit | --reason | --cid | --after | \
        --service | --state | --data | -d | --token-file | --tls-ca | --tls-cert | --tls-key | \
        --dir | --trust-domain | --days | --kind)
        ((i++))
        ;;
      -*) ;;
      *) words+=("$word") ;;
    esac
  done

  local command="${words[0]-}" sub="${words[1]-}"
  local flags=""
  case "$command" in
    "")
      COMPREPLY=($(compgen -W "invoke calls watch services describe health stats dead-letters certs publish topics subscriptions help $global_flags" -- "$cur"))
      return
      ;;
    help)
      COMPREPLY=($(compgen -W "invoke calls watch services describe health stats dead-letters certs publish topics subscriptions" -- "$cur"))
      return
      ;;
    invoke)
      flags="--data -d --async --wait --callback --idempotency-key --timeout --header -H --verbose -v --source"
      if [[ "$cur" != -* && ${#words[@]} -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$(_callmesh_services)" -- "$cur"))
        return
      fi
      ;;
    calls)
      if [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "get wait ls cancel" -- "$cur"))
        return
      fi
      case "$sub" in
        get) flags="--payload" ;;
        wait) flags="--timeout" ;;
        ls) flags="--state --service --source --limit" ;;
        cancel) flags="--reason" ;;
      esac
      ;;
    dead-letters)
      if [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "ls redrive" -- "$cur"))
        return
      fi
      [[ "$sub" == ls ]] && flags="--limit --kind"
      ;;
    publish) flags="--data -d --header -H --source --idempotency-key --raw" ;;
    subscriptions)
      if [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "replay rm" -- "$cur"))
        return
      fi
      [[ "$sub" == replay ]] && flags="--from-sequence --from-time"
      ;;
    certs)
      if [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "init issue" -- "$cur"))
        return
      fi
      case "$sub" in
        init) flags="--dir --trust-domain --days --force" ;;
        issue) flags="--dir --kind --days --force" ;;
      esac
      ;;
    watch) flags="--source --cid --after" ;;
    services) flags="--no-methods" ;;
    health) flags="--service --wait --timeout" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags $global_flags" -- "$cur"))
  fi
}

complete -F _callmesh callmesh
