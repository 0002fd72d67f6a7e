# Records the checks of a deploy script as JUnit test cases, so tools/ci/test_summary.py counts
# them with Bazel's. Source it, then:
#
#   junit_pass "pod: sync call OK"
#   junit_fail "pod: sync call OK" "what happened instead"
#   junit_summary      # prints "<suite>: N checks passed, N failed"; returns 1 if any failed
#   junit_write        # writes $RESULTS_DIR/<suite>.xml when RESULTS_DIR is set (in an EXIT trap)
#
# The suite is the script's name. A check that never ran is not counted by the script itself:
# tests/run.sh adds a failed case for a script that exits without writing its results.

JUNIT_SUITE=${JUNIT_SUITE:-$(basename "$0" .sh)}
JUNIT_CASES=()
JUNIT_PASSED=0
JUNIT_FAILED=0

_junit_escape() {
  sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' <<< "$1"
}

junit_pass() {
  JUNIT_PASSED=$((JUNIT_PASSED + 1))
  JUNIT_CASES+=("<testcase classname=\"$JUNIT_SUITE\" name=\"$(_junit_escape "$1")\"/>")
  printf '\033[32mPASS\033[0m %s\n' "$1"
}

junit_fail() {
  JUNIT_FAILED=$((JUNIT_FAILED + 1))
  JUNIT_CASES+=("<testcase classname=\"$JUNIT_SUITE\" name=\"$(_junit_escape "$1")\"><failure message=\"$(_junit_escape "$2")\"/></testcase>")
  printf '\033[31mFAIL\033[0m %s: %s\n' "$1" "$2"
}

junit_summary() {
  echo "$JUNIT_SUITE: $JUNIT_PASSED checks passed, $JUNIT_FAILED failed"
  [ "$JUNIT_FAILED" -eq 0 ]
}

junit_write() {
  [ -n "${RESULTS_DIR:-}" ] || return 0
  mkdir -p "$RESULTS_DIR"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuite name=\"$JUNIT_SUITE\" tests=\"$((JUNIT_PASSED + JUNIT_FAILED))\" failures=\"$JUNIT_FAILED\">"
    printf '%s\n' "${JUNIT_CASES[@]}"
    echo '</testsuite>'
  } > "$RESULTS_DIR/$JUNIT_SUITE.xml"
}
