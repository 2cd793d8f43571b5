#!/usr/bin/env bash
# Run test executables and print one summary line, last, alone:
#   N passed, N failed[, N skipped]
# cmocka binaries count per test case; any other executable counts as one
# test (exit 0 = pass, 77 = skipped, anything else = fail). A cmocka binary
# that dies before its summary counts one extra failure.
set -u
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}

passed=0 failed=0 skipped=0
failures=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$@"; do
	[ -x "$t" ] || { echo "run-tests: $t is not executable" >&2; failed=$((failed + 1)); failures+=("$t"); continue; }
	echo "=== $t"
	timeout --kill-after=10 "$TEST_TIMEOUT" "$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	if grep -q '^\[==========\]' "$log"; then
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
		s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
		passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			failed=$((failed + 1))
		fi
		[ "$rc" -ne 0 ] && failures+=("$t (exit $rc)")
	else
		case $rc in
		0) passed=$((passed + 1)) ;;
		77) skipped=$((skipped + 1)) ;;
		*) failed=$((failed + 1)); failures+=("$t (exit $rc)") ;;
		esac
	fi
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "=== failing executables:"
	printf '  %s\n' "${failures[@]}"
fi
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
