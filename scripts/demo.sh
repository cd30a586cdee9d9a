#!/bin/sh
# demo.sh — jinglectl file transfer without a server (make demo).
#
# Builds jinglectl, then on this machine starts a receiver and a sender in
# serverless mode (XEP-0174 link-local messaging over loopback, reached
# with --peer: no multicast, no account, no server), transfers a generated
# file over each transport (SOCKS5 bytestreams, then in-band bytestreams)
# and checks the received file's sha-256 against sha256sum of the source.
# Exits non-zero, loudly, when anything differs. Only Go is needed.
#
# Environment: GO (default go), DEMO_SIZE_MIB (default 32).
set -eu

cd "$(dirname "$0")/.."
GO=${GO:-go}
size_mib=${DEMO_SIZE_MIB:-32}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jinglectl-demo.XXXXXX")
pids=""
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

echo "demo: building jinglectl"
"$GO" build -o "$tmp/jinglectl" ./cmd/jinglectl || die "go build"
jc="$tmp/jinglectl"

echo "demo: generating a ${size_mib} MiB file"
dd if=/dev/urandom of="$tmp/demo.bin" bs=1048576 count="$size_mib" 2>/dev/null || die "cannot generate the file"
want=$(sha256 "$tmp/demo.bin")
echo "demo: source sha-256 $want"

for transport in s5b ibb; do
	in="$tmp/in-$transport"
	mkdir "$in"
	log="$tmp/receive-$transport.log"
	# The receiver accepts alice@demo only, exits after one session (--once),
	# and listens on a free loopback port, which it prints.
	"$jc" receive --local --name bob@demo --listen 127.0.0.1:0 --no-mdns \
		--accept-from alice@demo --once --dir "$in" >"$tmp/receive-$transport.out" 2>"$log" &
	rpid=$!
	pids="$pids $rpid"
	addr=""
	i=0
	while [ -z "$addr" ]; do
		addr=$(sed -n 's/.* on \(127\.0\.0\.1:[0-9][0-9]*\) into .*/\1/p' "$log" | head -n 1)
		[ -n "$addr" ] && break
		kill -0 "$rpid" 2>/dev/null || { cat "$log" >&2; die "the receiver exited"; }
		i=$((i + 1))
		[ "$i" -le 100 ] || { cat "$log" >&2; die "the receiver did not start"; }
		sleep 0.1
	done
	echo "demo: $transport: bob@demo receives on $addr; alice@demo sends over $transport"
	rc=0
	"$jc" send --local --name alice@demo --peer "$addr" --transport "$transport" bob@demo "$tmp/demo.bin" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$log" >&2; die "$transport: jinglectl send exited with status $rc"; }
	wait "$rpid" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$log" >&2; die "$transport: jinglectl receive exited with status $rc"; }
	cat "$tmp/receive-$transport.out"
	[ -f "$in/demo.bin" ] || die "$transport: nothing was written to $in"
	got=$(sha256 "$in/demo.bin")
	if [ "$got" != "$want" ]; then
		die "$transport: the received file's sha-256 $got differs from the source's $want"
	fi
	echo "demo: $transport: verified sha-256 $got (same as sha256sum of the source)"
done
echo "demo: OK: ${size_mib} MiB sent and verified over s5b and ibb, without a server"
