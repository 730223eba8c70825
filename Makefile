# coderctl — build, test, demo. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO    ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/coderctl

.PHONY: all build test vet fmt-check unit demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/coderctl
	$(GO) build -o bin/ground ./cmd/ground

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^testbed/kubebin/')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Everything CI runs: static checks, then every test against the local
# testing ground (moto from the machine image, the Kubernetes binaries built
# from the Go module proxy and cached under ~/.cache).
test: fmt-check vet kube-binaries
	$(GO) test -count=1 -timeout 40m ./...

# Tests that need neither moto nor the control plane's binaries.
unit:
	$(GO) test -count=1 ./internal/engine/... ./internal/state/... ./internal/config/... ./internal/output/...

demo: build
	@bash scripts/demo.sh

clean:
	rm -rf bin .testbed

-include mk/*.mk
