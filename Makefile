# kitd build, test and packaging. `make help` lists the targets.
#
# Every build is static (CGO_ENABLED=0), -trimpath, and stamped with the
# version and commit; the tools (nfpm, staticcheck) build from tools/go.mod
# through the module proxy, so a fresh clone needs nothing else.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
BIN     ?= bin
# nfpm and staticcheck; apart from BIN so a test can build into a temp dir
# and still reuse them.
TOOLS   ?= bin
DIST    ?= dist
QEMU    ?= qemu-arm-static

COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# A tag vX.Y.Z gives X.Y.Z; otherwise a pre-release of 0.0.0 named after
# the commit, which Debian orders before any release.
TAG     := $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null | sed 's/^v//')
VERSION ?= $(or $(TAG),0.0.0-dev+$(COMMIT))
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
# The binaries kits run (make cross, make package) leave out `kitd demo`
# (demo/demo_none.go: its broker, emulators, PKI): a linked package's start-up and
# pages are paid by every `kitd run` (README, Measurements). `make build`
# and `go run ./cmd/kitd` keep it, for the demo.
RELEASE_TAGS := kitd_nodemo

# make cross: name  GOARCH  GOARM
CROSS := linux-armv6:arm:6 linux-armv7:arm:7 linux-arm64:arm64: linux-amd64:amd64:
# make package: Debian arch and the cross binary it ships. armhf takes the
# GOARM=6 build: it runs on every Pi (Zero and 1 are ARMv6) and on ARMv7
# boards such as the BeagleBone Black.
DEBS := armhf:linux-armv6 arm64:linux-arm64 amd64:linux-amd64

# Build tags for the tests that need more than Go (README, Development):
#   mosquitto    a mosquitto binary (internal/mosquittotest; e2e, most of
#                publisher and shadow, shadowemu)
#   systemtools  shellcheck, systemd-analyze/-sysusers, systemctl, dpkg,
#                unshare (systemd/ and packaging/), and root to chown and
#                mount inside their staging trees
#   roottest     root for a tmpfs mount (e2e's full-disk test)
#   rabbitmq     rabbitmq-server with its MQTT plugin and epmd
#                (internal/rabbitmqtest; publisher's RabbitMQ tests: one
#                node per test binary, 1-2 min on a loaded 2-core machine)
#   nats         nats-server with JetStream (internal/natstest; publisher's
#                NATS tests)
# `go test ./...` without tags runs everything that needs Go alone. With a
# tag set, a missing tool fails its test; nothing skips.
TEST_TAGS := mosquitto systemtools roottest rabbitmq nats
# Every stage of `make test` runs even when an earlier one failed.
TEST_STAGES := deps test-unit test-arm smoke-arm

.PHONY: help build cross package deb test test-unit soak test-arm smoke-arm test-package deps bench lint tools clean

help:
	@echo "build         host binary into $(BIN)/kitd"
	@echo "test          every stage ($(TEST_STAGES)), then which failed"
	@echo "test-unit     go test -race -tags '$(TEST_TAGS)' ./... (root; Mosquitto and the deps.sh tools)"
	@echo "soak          the broker-flap soak for KITD_SOAK (default 10m): RSS, fds, drain"
	@echo "test-arm      unit tests for GOARCH=arm GOARM=6 under $(QEMU) (-short)"
	@echo "smoke-arm     the GOARCH=arm binary under $(QEMU) against Mosquitto over mTLS"
	@echo "test-package  build the amd64 .deb and check it"
	@echo "bench         benchmarks"
	@echo "lint          go vet, gofmt, staticcheck, shellcheck"
	@echo "cross         static release binaries (no demo broker) for arm v6/v7, arm64, amd64 into $(DIST)/"
	@echo "package       .deb for armhf, arm64, amd64 into $(DIST)/"

build:
	$(BUILD) -o $(BIN)/kitd ./cmd/kitd

cross:
	@mkdir -p $(DIST)
	@for t in $(CROSS); do \
		IFS=: read -r name arch arm <<<"$$t"; \
		echo "build $(DIST)/kitd-$$name"; \
		GOOS=linux GOARCH=$$arch GOARM=$$arm $(BUILD) -tags '$(RELEASE_TAGS)' -o $(DIST)/kitd-$$name ./cmd/kitd; \
	done
	@ls -l $(DIST)/kitd-linux-* | awk '{ printf "%-28s %6.2f MiB\n", $$NF, $$5 / 1048576 }'

package: cross $(TOOLS)/nfpm
	@for d in $(DEBS); do \
		IFS=: read -r deb name <<<"$$d"; \
		$(MAKE) --no-print-directory deb DEB_ARCH=$$deb KITD_BINARY=$(DIST)/kitd-$$name; \
	done

# One .deb: make deb DEB_ARCH=amd64 KITD_BINARY=dist/kitd-linux-amd64 [DIST=dir]
deb: $(TOOLS)/nfpm
	@test -n "$(DEB_ARCH)" -a -f "$(KITD_BINARY)" || { echo "deb: set DEB_ARCH and KITD_BINARY (an existing file)" >&2; exit 2; }
	@mkdir -p $(DIST)
	KITD_DEB_ARCH=$(DEB_ARCH) KITD_VERSION=$(VERSION) KITD_BINARY=$(KITD_BINARY) \
		$(TOOLS)/nfpm package --config packaging/nfpm.yaml --packager deb --target $(DIST)/

# Tools run here, so they build for this machine whatever GOARCH says.
HOSTGO   = GOOS=$$($(GO) env GOHOSTOS) GOARCH=$$($(GO) env GOHOSTARCH) CGO_ENABLED=0 $(GO)

$(TOOLS)/nfpm: tools/go.mod tools/go.sum
	$(HOSTGO) build -C tools -o $(abspath $(TOOLS))/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm

$(TOOLS)/staticcheck: tools/go.mod tools/go.sum
	$(HOSTGO) build -C tools -o $(abspath $(TOOLS))/staticcheck honnef.co/go/tools/cmd/staticcheck

tools: $(TOOLS)/nfpm $(TOOLS)/staticcheck

deps:
	bash scripts/deps.sh

# Each stage runs whatever the one before did, so one run shows every
# failure; the summary names the stages that failed and the exit is 1.
test:
	@failed=(); \
	for s in $(TEST_STAGES); do \
		echo "make test: --- $$s"; start=$$(date +%s); \
		if $(MAKE) --no-print-directory $$s; then r=ok; else r=FAILED; failed+=("$$s"); fi; \
		echo "make test: --- $$s $$r ($$(( $$(date +%s) - start ))s)"; \
	done; \
	if (( $${#failed[@]} )); then echo "make test: FAILED: $${failed[*]}" >&2; exit 1; fi; \
	echo "make test: all passed: $(TEST_STAGES)"

# CI runs as root with scripts/deps.sh's tools: every tag is set.
test-unit:
	# -timeout: the publisher's real-broker tests (RabbitMQ boots in 20-55 s)
	# take over 3 minutes alone; go test's default of 10 is too close on a
	# loaded 2-core machine.
	$(GO) test -race -count=1 -timeout 30m -tags '$(TEST_TAGS)' ./...

# The broker-flap soak for as long as KITD_SOAK says (CI runs it for 20s
# inside test-unit).
soak:
	KITD_SOAK=$${KITD_SOAK:-10m} $(GO) test -tags mosquitto -count=1 -timeout 60m -v -run TestSoakBrokerFlaps ./e2e/

# No race detector on arm, and qemu is 15-60x slower: -short. binfmt is
# not registered, so the test binaries run through -exec; tests that start
# a child built for arm check KITD_TEST_EMULATED and run it through $(QEMU).
# Mosquitto and the system tools are this machine's, so those tags hold
# here too; the full-disk test runs natively only (test-unit).
test-arm:
	GOOS=linux GOARCH=arm GOARM=6 CGO_ENABLED=0 KITD_TEST_EMULATED=1 KITD_TEST_QEMU=$(QEMU) \
		$(GO) test -short -count=1 -timeout 20m -tags 'mosquitto systemtools' -exec $(QEMU) ./...

smoke-arm:
	KITD_TEST_QEMU=$(QEMU) $(GO) test -tags armsmoke -count=1 -v -run . ./test/arm/

test-package:
	$(GO) test -tags systemtools -count=1 -v -run . ./packaging/

bench:
	$(GO) test -tags '$(TEST_TAGS)' -run '^$$' -bench . -benchmem ./...

lint: $(TOOLS)/staticcheck
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) vet -tags '$(TEST_TAGS)' ./...
	$(GO) vet -tags armsmoke ./test/arm/
	$(GO) vet -tags '$(RELEASE_TAGS)' ./cmd/kitd/ ./demo/
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(TOOLS)/staticcheck -tags '$(TEST_TAGS)' ./...
	shellcheck systemd/install.sh packaging/scripts/* scripts/*.sh .ci/run

clean:
	rm -rf $(BIN) $(DIST)
