# Gannet — build, run, test, bench, fuzz.
SHELL := /bin/bash
GO ?= go
export GOFLAGS := -buildvcs=false -tags=pebblegozstd
BIN := bin
PKGS := ./...
FUZZTIME ?= 10s

.PHONY: all build build-boring build-openssl test-openssl run test unit e2e peers bench bench-quick fuzz vet clean crashtest package

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/gannet ./bench/smtpblast ./bench/smtpsink

# bin/boring/gannet: the same program with GOEXPERIMENT=boringcrypto, whose
# RSA, SHA-256 and TLS are BoringSSL's (cgo, needs a C compiler; linux/amd64
# and arm64): faster DKIM RSA signing (README, "Faster RSA signing"), and
# (c) of make bench beside the standard build. `make build` stays pure Go
# and is what CI tests.
build-boring:
	@mkdir -p $(BIN)/boring; rm -f $(BIN)/boring/gannet # a failed build leaves no stale binary
	GOEXPERIMENT=boringcrypto CGO_ENABLED=1 $(GO) build -o $(BIN)/boring/ ./cmd/gannet

# bin/openssl/gannet: the same program whose DKIM RSA signatures are
# OpenSSL's libcrypto (build tag openssl, cgo; Debian's libssl-dev), three to
# four times faster than crypto/rsa with the same signature bytes (README,
# "Faster RSA signing"). Everything else is the standard build.
build-openssl:
	@mkdir -p $(BIN)/openssl; rm -f $(BIN)/openssl/gannet
	CGO_ENABLED=1 $(GO) build -tags=pebblegozstd,openssl -o $(BIN)/openssl/ ./cmd/gannet

# The tests of the openssl build's signer: libcrypto's signatures are
# crypto/rsa's byte for byte, and engine/dkim's tests pass on it.
test-openssl:
	CGO_ENABLED=1 $(GO) vet -tags=pebblegozstd,openssl ./engine/dkim/...
	CGO_ENABLED=1 $(GO) test -count=1 -tags=pebblegozstd,openssl ./engine/dkim/...

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
	$(MAKE) --no-print-directory test-openssl
	$(MAKE) fuzz FUZZTIME=3s

unit:
	$(GO) test -count=1 -short $(PKGS)

peers:
	bash scripts/install-test-peers.sh

# The BoringCrypto build is optional: without a toolchain for it, (c) runs
# the standard build only.
bench: build
	-@$(MAKE) --no-print-directory build-boring || echo "bench: no BoringCrypto build; (c) runs without gannet-boring"
	-@$(MAKE) --no-print-directory build-openssl || echo "bench: no OpenSSL build; (c) runs without gannet-openssl"
	bash bench/run.sh

# The regression guard (under 2 minutes): (a), (b), (b2), (c) and (g) small,
# then each ratio against the committed bench/results/latest-quick.md, a
# WARNING per ratio that dropped by more than 15%. Always exits 0 (the
# machines are noisy): run it before a performance-related commit.
bench-quick: build
	-@bash bench/quick.sh

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
