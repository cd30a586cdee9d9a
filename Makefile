# jinglekit — see README.md.

GO ?= go

.PHONY: test vet build demo man dist

# The test command of the README: vet, then every test with the race
# detector. Integration tests start their own Prosody on loopback; set
# JINGLEKIT_REQUIRE_PROSODY=1 to make a missing prosody an error.
test: vet
	$(GO) test -race -count=1 -timeout 25m ./...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/jinglectl ./cmd/jinglectl

# The README's first command: two jinglectl on this machine transfer a
# 32 MiB file over SOCKS5 then IBB without a server (serverless mode over
# loopback, no multicast) and check its sha-256 (scripts/demo.sh).
demo:
	GO=$(GO) sh scripts/demo.sh

.PHONY: bench bench-smoke bench-peers

# Benchmarks of every transport against raw baselines, on loopback against
# a Prosody the command starts itself (docs/benchmarks.md). Full run: about
# 17 minutes on 2 cores, bench-peers included. BENCH_JSON=FILE also writes the results as JSON;
# BENCH_FLAGS passes more flags (go run ./cmd/jinglebench -h).
bench:
	$(GO) run ./cmd/jinglebench $(BENCH_FLAGS)

# Small sizes and one round (under a minute), as CI runs it.
bench-smoke:
	$(GO) run ./cmd/jinglebench -smoke $(BENCH_FLAGS)

# Against real peers, in one run, each ratio against the peer-to-peer case
# of the same transport: 100 MiB over ICE data channels StanzaJS -> StanzaJS,
# jinglekit -> StanzaJS, StanzaJS -> jinglekit (../shared/peers/stanza,
# ports 25222/25280); Libervia 0.9 -> Libervia, jinglekit -> Libervia and
# Libervia -> jinglekit, 100 MiB over S5B and 32 MiB over IBB (Libervia's
# IBB runs at ~0.85 MB/s) (../shared/peers/libervia, ports 15222/15000).
# A peer that is not installed is skipped with a message
# (JINGLEKIT_REQUIRE_STANZA=1 / JINGLEKIT_REQUIRE_LIBERVIA=1: an error).
# One harness per machine: run under flock /tmp/jinglekit-stanza.lock and
# flock /tmp/jinglekit-libervia.lock when tests may run at the same time.
bench-peers:
	$(GO) run ./cmd/jinglebench -run '^peers/' $(BENCH_FLAGS)

# Man pages of jinglectl and of each command, into man/ (cobra/doc over
# the same usage texts and flags as --help).
man:
	$(GO) run ./cmd/jinglectl __man man

# Release binaries: static (CGO_ENABLED=0), stripped, one per target, and
# their SHA256SUMS, into dist/. The commit and its date come from the
# build info (vcs.*) or, where the go command does not stamp them (a git
# worktree, GOFLAGS=-buildvcs=false), from REVISION and REVISION_TIME.
DIST_TARGETS ?= linux/amd64 linux/arm64 darwin/arm64 windows/amd64
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
REVISION_TIME ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null)
DIST_LDFLAGS = -s -w -X main.linkedRevision=$(REVISION) -X main.linkedTime=$(REVISION_TIME)

dist:
	rm -rf dist && mkdir -p dist
	set -e; for t in $(DIST_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
		echo "dist/jinglectl-$$os-$$arch$$ext"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(DIST_LDFLAGS)" \
			-o dist/jinglectl-$$os-$$arch$$ext ./cmd/jinglectl; \
	done
	cd dist && sha256sum jinglectl-* > SHA256SUMS

.PHONY: fuzz

# Every fuzz target for FUZZTIME each (default 60s), one `go test -fuzz`
# per target (scripts/fuzz.sh finds them in the test files). CI runs them
# for 10s each.
FUZZTIME ?= 60s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh
