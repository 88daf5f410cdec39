# The front door. The targets a person types are the ones CI runs.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell bash .ci/version 2>/dev/null || echo 0.0.0)
LDFLAGS := -s -w -X main.version=$(VERSION)
BINS    := loyaltyd loyaltyctl loyalty-hq
BIN_DIR := bin
CONFIG  ?= configs/loyaltyd.dev.yaml
# Race detector on by default; `make test RACE=` turns it off.
RACE    ?= -race
TESTFLAGS ?=
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
NFPM        := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

.PHONY: all build run test testdeps bench cross lint deb demo clean

all: build

build:
	@mkdir -p $(BIN_DIR)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/ ./cmd/...

## run: start the register daemon on the dev config (simulated devices, ledger in ./var, no broker needed)
run: build
	@mkdir -p var
	$(BIN_DIR)/loyaltyd -config $(CONFIG)

## testdeps: install what the tests need when it is missing (Debian, as root)
testdeps:
	@bash .ci/testdeps

# Debian installs mosquitto in /usr/sbin, which is not on a normal user's
# PATH; the tests look only on PATH (sync/mosquittotest).
test bench: export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin

## test: every test, with the race detector
test: testdeps
	$(GO) vet ./...
	$(GO) test $(RACE) -count=1 -timeout 20m $(TESTFLAGS) ./...

## bench: benchmarks; ends with the RATIO summary measured in this run
bench: testdeps
	@mkdir -p var
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./... 2>&1 | tee var/bench.out
	@echo; echo "== summary =="; grep -hE '^(RATIO|REPORT) ' var/bench.out || true

cross:
	@mkdir -p $(BIN_DIR)/linux-arm64 $(BIN_DIR)/linux-armv7
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/linux-arm64/ ./cmd/...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/linux-armv7/ ./cmd/...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

## deb: Debian packages for arm64 and armhf (nfpm at a pinned version)
deb:
	@bash .ci/deb

## demo: mosquitto, loyalty-hq and two registers replaying CDNOW purchases
demo: build testdeps
	@bash .ci/demo

clean:
	rm -rf $(BIN_DIR) var dist
