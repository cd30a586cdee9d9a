#!/bin/sh
# Runs every fuzz target of the module for FUZZTIME each (default 60s):
# one `go test -fuzz` per target, since Go fuzzes one target at a time.
# The targets are found in the test files (func FuzzXxx(f *testing.F)), so
# a new one is run without being listed here. A failure leaves the
# crasher in the package's testdata/fuzz/ (keep it as a regression seed
# once fixed); the script runs the other targets and fails at the end.
set -u
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
failed=""
count=0
for file in $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'); do
	dir=$(dirname "$file")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$file"); do
		count=$((count + 1))
		echo "== fuzz ./$dir $name ($FUZZTIME)"
		if ! $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 10s "./$dir"; then
			failed="$failed ./$dir:$name"
		fi
	done
done
if [ "$count" -eq 0 ]; then
	echo "fuzz: no fuzz target found" >&2
	exit 1
fi
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: $count targets, nothing found"
