# Gannet — build, run, test, bench, fuzz.
SHELL := /bin/bash
GO ?= go
export GOFLAGS := -buildvcs=false -tags=pebblegozstd
BIN := bin
PKGS := ./...
FUZZTIME ?= 10s

.PHONY: all build run test unit e2e peers bench fuzz vet clean crashtest package

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/gannet ./bench/smtpblast ./bench/smtpsink

run: build
	$(BIN)/gannet serve

# deploy/package is a module of its own (nFPM stays out of gannet's
# dependencies): vetted and tested with -C.
PACKAGE_MOD := deploy/package
VERSION ?= 0.1.0

# Installs missing test peers (Debian packages), builds, then runs every test.
# With CI=true deploy/package's test installs the .deb into the machine with
# dpkg (and purges it at the end).
test: peers build
	$(GO) vet $(PKGS)
	$(GO) -C $(PACKAGE_MOD) vet ./...
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) -C $(PACKAGE_MOD) test -count=1 -timeout 5m ./...
	$(MAKE) fuzz FUZZTIME=3s

unit:
	$(GO) test -count=1 -short $(PKGS)

peers:
	bash scripts/install-test-peers.sh

bench: build
	bash bench/run.sh

# The long kill test: SIGKILL bin/gannet CRASH_KILLS times under smtpblast
# load and check that every acknowledged message is delivered intact and
# that the duplicates stay within what was on the wire at the kills (the
# report prints acknowledged, delivered, lost, duplicates and that bound;
# the short run is e2e TestCrashKill9UnderLoad, part of `make test`).
CRASH_KILLS ?= 50
crashtest: build
	$(GO) run ./bench/crashtest -mode crash -bin $(BIN) -kills $(CRASH_KILLS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

vet:
	$(GO) vet $(PKGS)
	$(GO) -C $(PACKAGE_MOD) vet ./...

# Builds dist/gannet_$(VERSION)-1_ARCH.deb: the binaries, /etc/gannet/gannet.toml,
# the systemd unit (deploy/systemd/gannet.service), the gannet user.
package: build
	$(GO) -C $(PACKAGE_MOD) run . -bin $(CURDIR)/$(BIN) -repo $(CURDIR) -out $(CURDIR)/dist -version $(VERSION) -arch $$(dpkg --print-architecture 2>/dev/null || $(GO) env GOARCH)

clean:
	rm -rf $(BIN) dist
