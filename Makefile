# jinglekit — see README.md.

GO ?= go

.PHONY: test vet build demo

# The test command of the README: vet, then every test with the race
# detector. Integration tests start their own Prosody on loopback; set
# JINGLEKIT_REQUIRE_PROSODY=1 to make a missing prosody an error.
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

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
# 7 minutes on 2 cores. BENCH_JSON=FILE also writes the results as JSON;
# BENCH_FLAGS passes more flags (go run ./cmd/jinglebench -h).
bench:
	$(GO) run ./cmd/jinglebench $(BENCH_FLAGS)

# Small sizes and one round (under a minute), as CI runs it.
bench-smoke:
	$(GO) run ./cmd/jinglebench -smoke $(BENCH_FLAGS)

# 100 MiB over ICE data channels StanzaJS -> StanzaJS, jinglekit -> StanzaJS
# and StanzaJS -> jinglekit in one run (../shared/peers/stanza; skipped with
# a message when node, npm or prosody is missing).
bench-peers:
	$(GO) run ./cmd/jinglebench -run '^peers/' $(BENCH_FLAGS)
