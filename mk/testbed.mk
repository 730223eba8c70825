# Local proving ground: a real Kubernetes control plane on loopback.
# Included from the Makefile. See internal/testenv/kubeground.

TESTBED_DIR   ?= .testbed
TESTBED_BIN   ?= $(TESTBED_DIR)/bin/testbed
# One fake node per node group of DESIGN.md: labelled coder/node-type=<group>,
# tainted with it except system.
TESTBED_NODES ?= --node 'system-0,label:coder/node-type=system' \
  $(foreach g,coderd provisioner workspace,--node '$(g)-0,label:coder/node-type=$(g),taint:coder/node-type=$(g):NoSchedule')

.PHONY: kube-binaries testbed-up testbed-down

# Builds kube-apiserver, controller-manager, scheduler, etcd and kwok once per
# machine into $${CODERCTL_KUBE_CACHE:-~/.cache/coderctl/kube-v1.37.2}
# (~10-15 min cold on 2 cores, instant when cached).
kube-binaries:
	bash scripts/build-kube.sh

# Starts the ground in the background; `. $(TESTBED_DIR)/env` sets KUBECONFIG.
testbed-up: kube-binaries
	go build -o $(TESTBED_BIN) ./cmd/testbed
	$(TESTBED_BIN) up --detach --state-dir $(TESTBED_DIR) $(TESTBED_NODES)

testbed-down:
	@if [ -x $(TESTBED_BIN) ]; then $(TESTBED_BIN) down --state-dir $(TESTBED_DIR); \
	else go run ./cmd/testbed down --state-dir $(TESTBED_DIR); fi
