# moor: build, demo, test, bench. Everything runs as root on a Linux host
# with cgroups; `make deps` installs the Debian packages the build and the
# tests need.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# urfave_cli_no_docs leaves out the CLI library's man-page generator: every
# moor process, each task's init included, would initialise its markdown engine.
TAGS    := seccomp netgo osusergo urfave_cli_no_docs
LDFLAGS := -s -w -extldflags -static -X main.version=$(VERSION)

.PHONY: all build deps demo test unit lint fuzz soak bench clean

all: build

# A static moor with seccomp support, and the hypervisor anchor as a small
# static binary of its own (no cgo): both run inside loader roots that have
# no libc. moor-guest, static too, is the guest init of container apps
# inside VMs; moor-guest.arm64 is the one of arm64 guests. moor-taskmgr,
# the example task manager, links libcontainer as moor does.
build:
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/moor ./cmd/moor
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o bin/moor-taskmgr ./cmd/moor-taskmgr
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/moor-anchor ./cmd/moor-anchor
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/moor-guest ./cmd/moor-guest
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -trimpath -ldflags "-s -w" -o bin/moor-guest.arm64 ./cmd/moor-guest

deps:
	scripts/deps.sh

demo: deps build
	scripts/demo.sh bin/moor

# Packages whose statement coverage (go test -cover) may not fall below a
# minimum (dir:percent): their seams exist for their unit tests.
COVER_MIN := anchor/vmm:60 devicemodel/guest:50

# The whole suite: the linters, a short fuzz run, unit tests and the root
# integration tests in test/, with each package's coverage and COVER_MIN
# checked.
test: deps build lint fuzz
	MOOR_BIN=$(CURDIR)/bin/moor GO=$(GO) COVER_MIN="$(COVER_MIN)" \
		scripts/cover.sh $(GO) test -count=1 -p 1 -v -timeout 25m -cover ./...

# go vet and staticcheck (its checks: staticcheck.conf), with the build's
# tags, on every package; any finding fails.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) vet -tags "$(TAGS)" ./...
	$(GO) run $(STATICCHECK) -tags "$(TAGS)" ./...

# The unit tests, printing each package's coverage and checking COVER_MIN.
unit:
	GO=$(GO) COVER_MIN="$(COVER_MIN)" scripts/cover.sh $(GO) test -count=1 -cover $$($(GO) list ./... | grep -v /test$$)

# Each fuzz target (package:name) for FUZZTIME, one after another; a
# crasher is left in the package's testdata/fuzz/ and fails the run. New
# inputs are minimized for 1s, not the default 60s, which would eat a
# short run. FUZZTIME is a count of runs, not a duration: Go 1.26's fuzz
# coordinator can fail a duration's end on a loaded machine with a bare
# "context deadline exceeded" and no crasher (go.dev/issue/75804); a
# count has no deadline to race. 300000 runs are 10 to 30 s a target here.
FUZZTIME ?= 300000x
FUZZ     := lifecycle:FuzzValidateSpec lifecycle:FuzzResolveRef devicemodel:FuzzParse \
            rootfs:FuzzApp rootfs:FuzzImageConfig
fuzz:
	for t in $(FUZZ); do \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s -parallel 1 ./$${t%%:*} || exit 1; \
	done

# The reliability tests' long versions (MOOR_SOAK=1: 1000 cycles, 500
# kills, 20 SIGKILLs of moor supervise, the log burst), printing their
# figures; then the integration suite once more
# beside two CPU hogs, which a timeout bounds and which are killed by PID.
soak: deps build
	MOOR_SOAK=1 MOOR_BIN=$(CURDIR)/bin/moor $(GO) test -count=1 -p 1 -v -timeout 60m \
		-run '^(TestCycles|TestCrashAnywhere|TestLogBound|TestSuperviseRestartChangesNothing)$$' ./test
	timeout 60m sh -c 'while :; do :; done' & h1=$$!; \
	timeout 60m sh -c 'while :; do :; done' & h2=$$!; \
	MOOR_BIN=$(CURDIR)/bin/moor $(GO) test -count=1 -p 1 -v -timeout 50m ./test; rc=$$?; \
	kill $$h1 $$h2; exit $$rc

bench: deps build
	scripts/bench.sh bin/moor

clean:
	rm -rf bin
