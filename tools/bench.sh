#!/usr/bin/env bash
# Run every benchmark binary given on the command line, one after the other.
# Each prints its own figures with the baseline it measured in the same run.
set -u
rc=0
for b in "$@"; do
	echo "=================== $(basename "$b")"
	"$b" || { echo "bench: $b failed" >&2; rc=1; }
done
exit $rc
