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
flaked=""
count=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# crashers DIR NAME: the failing inputs kept for a target.
crashers() { ls "$1/testdata/fuzz/$2" 2>/dev/null | sort; }

# fuzz_one DIR NAME: 0 when nothing was found. Go 1.26's fuzzing
# coordinator can end a duration -fuzztime with a bare "context deadline
# exceeded" and no failing input (golang/go#75804, fixed in Go 1.27): such
# a run found nothing, so it is tried once more and then counted as a
# flake. A run that writes a failing input always fails.
fuzz_one() {
	local dir=$1 name=$2 before try rc
	before=$(crashers "$dir" "$name")
	for try in 1 2; do
		rc=0
		$GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 10s "./$dir" >"$out" 2>&1 || rc=$?
		cat "$out"
		[ "$rc" = 0 ] && return 0
		if [ "$(crashers "$dir" "$name")" != "$before" ] || ! grep -q '^    context deadline exceeded$' "$out"; then
			return 1
		fi
		echo "fuzz: ./$dir $name: context deadline exceeded without a failing input (golang/go#75804), try $try"
	done
	flaked="$flaked ./$dir:$name"
	return 0
}

for file in $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'); do
	dir=$(dirname "$file")
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$file"); do
		count=$((count + 1))
		echo "== fuzz ./$dir $name ($FUZZTIME)"
		fuzz_one "$dir" "$name" || failed="$failed ./$dir:$name"
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
echo "fuzz: $count targets, nothing found${flaked:+ (toolchain flake, no input found, twice:$flaked)}"
