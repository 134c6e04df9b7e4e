# Gannet — build, run, test, bench, fuzz.
SHELL := /bin/bash
GO ?= go
export GOFLAGS := -buildvcs=false -tags=pebblegozstd
BIN := bin
PKGS := ./...
FUZZTIME ?= 10s

.PHONY: all build run test unit e2e peers bench fuzz vet clean crashtest

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
	$(MAKE) fuzz FUZZTIME=3s

unit:
	$(GO) test -count=1 -short $(PKGS)

peers:
	bash scripts/install-test-peers.sh

bench: build
	bash bench/run.sh

# The long kill test: SIGKILL bin/gannet CRASH_KILLS times under smtpblast
# load and check that every acknowledged message is delivered intact (the
# short run is e2e TestCrashKill9UnderLoad, part of `make test`).
CRASH_KILLS ?= 50
crashtest: build
	$(GO) run ./bench/crashtest -mode crash -bin $(BIN) -kills $(CRASH_KILLS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
