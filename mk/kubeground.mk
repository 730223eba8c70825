# The proving ground's Kubernetes part alone (cmd/kubeground): a real
# Kubernetes control plane on loopback with kwok nodes, no moto or stand-ins.
# Included from the Makefile. See internal/testenv/kubeground.

KUBEGROUND_DIR   ?= .kubeground
KUBEGROUND_BIN   ?= $(KUBEGROUND_DIR)/bin/kubeground
# One fake node per node group of DESIGN.md: labelled coder/node-type=<group>,
# tainted with it except system.
KUBEGROUND_NODES ?= --node 'system-0,label:coder/node-type=system' \
  $(foreach g,coderd provisioner workspace,--node '$(g)-0,label:coder/node-type=$(g),taint:coder/node-type=$(g):NoSchedule')

.PHONY: kube-binaries kubeground-up kubeground-down

# Builds kube-apiserver, controller-manager, scheduler, etcd and kwok once per
# machine into $${CODERCTL_KUBE_CACHE:-~/.cache/coderctl/kube-v1.37.2}
# (~10-15 min cold on 2 cores, instant when cached).
kube-binaries:
	bash scripts/build-kube.sh

# Starts it in the background; `. $(KUBEGROUND_DIR)/env` sets KUBECONFIG.
kubeground-up: kube-binaries
	go build -o $(KUBEGROUND_BIN) ./cmd/kubeground
	$(KUBEGROUND_BIN) up --detach --state-dir $(KUBEGROUND_DIR) $(KUBEGROUND_NODES)

kubeground-down:
	@if [ -x $(KUBEGROUND_BIN) ]; then $(KUBEGROUND_BIN) down --state-dir $(KUBEGROUND_DIR); \
	else go run ./cmd/kubeground down --state-dir $(KUBEGROUND_DIR); fi
