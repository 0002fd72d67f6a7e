#!/usr/bin/env bash
# The example configuration that `make install` and the .deb ship (packaging/config/callmeshd.yaml)
# is accepted by callmeshd, and its defaults are the safe ones: the Sidecar API on loopback only and
# an fsync'd journal. Then callmeshd refuses a copy with a misspelt key (exit 2, naming the key), so
# the first check cannot pass by ignoring the file.
# Usage: config_example_test.sh CALLMESHD CONFIG
set -euo pipefail
callmeshd=$1 config=$2
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/config_example.XXXXXX")

grep -qx 'listen: 127.0.0.1:4770' "$config" || { echo "FAIL: the example does not listen on loopback"; exit 1; }
grep -qx '  durability: FSYNC' "$config" || { echo "FAIL: the example journal is not fsync'd"; exit 1; }

# The file's data_dir (/var/lib/callmesh) and port are overridden by flags, as the unit does.
"$callmeshd" --config "$config" --data-dir "$work/data" --listen 127.0.0.1:0 \
  --ready-file "$work/ready" > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  [ -s "$work/ready" ] && break
  kill -0 "$pid" 2> /dev/null || { cat "$work/log"; echo "FAIL: callmeshd refused the example"; exit 1; }
  sleep 0.1
done
[ -s "$work/ready" ] || { cat "$work/log"; echo "FAIL: callmeshd did not start"; kill "$pid"; exit 1; }
kill -TERM "$pid"
wait "$pid" || { cat "$work/log"; echo "FAIL: callmeshd did not exit 0 on SIGTERM"; exit 1; }
echo "PASS: callmeshd serves with the example configuration and drains on SIGTERM"

sed 's/^log_level:/log_levle:/' "$config" > "$work/typo.yaml"
status=0
"$callmeshd" --config "$work/typo.yaml" --data-dir "$work/data2" --listen 127.0.0.1:0 \
  > "$work/typo.log" 2>&1 || status=$?
if [ "$status" != 2 ] || ! grep -q 'log_levle' "$work/typo.log"; then
  cat "$work/typo.log"
  echo "FAIL: a misspelt key was not refused with exit 2 naming it (exit $status)"
  exit 1
fi
echo "PASS: a misspelt key is refused: $(head -1 "$work/typo.log")"
