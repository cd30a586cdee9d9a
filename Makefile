# jinglekit — see README.md.

GO ?= go

.PHONY: test vet build

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
