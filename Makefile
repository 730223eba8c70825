# coderctl — build, test, demo. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO    ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/coderctl

.PHONY: all build test vet fmt-check unit fuzz demo bench clean ground-prereqs

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/coderctl
	$(GO) build -o bin/ground ./cmd/ground

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^internal/testenv/kubeground/kubebin/')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# What the proving ground needs, installed the same way for test, demo and
# bench: moto_server (pip's pinned moto[server] when missing), the Kubernetes
# binaries (built once, cached under ~/.cache) and the Go modules carrying the
# real Helm charts (module cache). Quick when all are there.
ground-prereqs:
	@bash scripts/ground-prereqs.sh

# Everything CI runs: static checks, then every test against the local
# proving ground.
test: fmt-check vet ground-prereqs fuzz
	$(GO) test -count=1 -timeout 40m ./...

# Property tests: each fuzz target runs for FUZZTIME on top of its seed
# corpus (which `go test ./...` also runs). Interesting inputs are minimized
# for a bounded number of runs only: unbounded minimization stalls a 2-core
# machine for minutes. Bad input must come out as exit 2, never a panic,
# hang or internal error (issue 18).
FUZZTIME ?= 10s
FUZZ_TARGETS := internal/cli:FuzzStageSelection internal/cli:FuzzRepeatedFlags \
  internal/config:FuzzParseCluster internal/helmx:FuzzMergeValues
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./$$pkg || exit 1; \
	done

# Tests that need neither moto nor the control plane's binaries.
unit:
	$(GO) test -count=1 ./internal/engine/... ./internal/state/... ./internal/config/... ./internal/output/...

demo: build ground-prereqs
	@bash scripts/demo.sh

clean:
	rm -rf bin .kubeground .ground

-include mk/*.mk
