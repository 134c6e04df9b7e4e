# Gannet — build, run, test, bench, fuzz.
SHELL := /bin/bash
GO ?= go
export GOFLAGS := -buildvcs=false -tags=pebblegozstd
BIN := bin
PKGS := ./...
FUZZTIME ?= 10s

.PHONY: all build run test unit e2e peers bench fuzz vet clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/gannet ./bench/smtpblast ./bench/smtpsink

run: build
	$(BIN)/gannet serve

# Installs missing test peers (Debian packages), builds, then runs every test.
test: peers build
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(MAKE) fuzz FUZZTIME=5s

unit:
	$(GO) test -count=1 -short $(PKGS)

peers:
	bash scripts/install-test-peers.sh

bench: build
	bash bench/run.sh

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
