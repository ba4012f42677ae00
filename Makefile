# accessgate: common tasks. `make test` runs everything CI runs.
GO ?= go

.PHONY: all build test fuzz bench scale soak demo adapt clean

all: build

## build: a Caddy binary with the accessgate modules, at ./caddy
build:
	$(GO) build -o caddy ./cmd/caddy

## test: gofmt, vet, and the whole race-enabled test suite (needs redis-server)
test:
	./scripts/test.sh

## fuzz: run each fuzz target for FUZZTIME (default 20s)
FUZZTIME ?= 20s
fuzz:
	$(GO) test ./caddymodule -run '^$$' -fuzz '^FuzzParseBasic$$' -fuzztime $(FUZZTIME)
	$(GO) test ./keystore -run '^$$' -fuzz '^FuzzNormalizeOrigin$$' -fuzztime $(FUZZTIME)
	$(GO) test ./caddymodule -run '^$$' -fuzz '^FuzzHandlerCaddyfile$$' -fuzztime $(FUZZTIME)
	$(GO) test ./mgmtapi -run '^$$' -fuzz '^FuzzAPIBody$$' -fuzztime $(FUZZTIME)
	$(GO) test ./mgmtapi -run '^$$' -fuzz '^FuzzAPISegments$$' -fuzztime $(FUZZTIME)
	$(GO) test ./keystore -run '^$$' -fuzz '^FuzzValidAccessKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./caddymodule -run '^$$' -fuzz '^FuzzScopeMethods$$' -fuzztime $(FUZZTIME)
	$(GO) test ./caddymodule -run '^$$' -fuzz '^FuzzStrictPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./keystore -run '^$$' -fuzz '^FuzzDecodeKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./keystore -run '^$$' -fuzz '^FuzzParseRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./limits -run '^$$' -fuzz '^FuzzParseRate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./limits -run '^$$' -fuzz '^FuzzParseQuota$$' -fuzztime $(FUZZTIME)

## bench: Go benchmarks of the hot path, then the end-to-end load script
## (see BENCHMARKS.md; about 6 minutes in all, needs redis-server)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./authcache ./keystore
	$(GO) test -run '^$$' -bench . -benchmem -cpu 2 -timeout 20m ./caddymodule
	./scripts/bench.sh

## scale: the scale measurements, before/after figures from outside the
## gateway (see BENCHMARKS.md "Scale"; SCALE_KEYS=1000000, about 15 minutes,
## needs redis-server)
scale:
	./scripts/scale.sh

## soak: three gateways on a Sentinel-managed Redis under failovers, reloads
## and key churn for SOAK_DURATION (default 10m, at most 10m); fails on any
## wrong answer or memory growth over 10 % (see README.md, "Soak")
SOAK_DURATION ?= 10m
soak:
	SOAK_DURATION=$(SOAK_DURATION) ./scripts/soak.sh

## demo: run the gateway on Caddyfile.example and print a demo key
demo:
	./scripts/demo.sh

## adapt: show the JSON of Caddyfile.example
adapt: build
	./caddy adapt --config Caddyfile.example --adapter caddyfile --pretty

clean:
	rm -f caddy
