#!/usr/bin/env bash
# build-kube.sh builds the real Kubernetes control plane that the proving
# ground runs on loopback (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok) from the Go module proxy, and caches them by
# version.
#
# Debian ships no kube-apiserver and Docker does not run here, so the binaries
# are built from source: ~10 minutes cold on 2 cores, seconds when cached.
# The build modules (with go.sum) live in internal/testenv/kubeground/kubebin,
# modules of their own outside the main one, because k8s.io/kubernetes needs
# 31 `replace` lines there.
#
# Usage: scripts/build-kube.sh [--force]
# Env:   CODERCTL_KUBE_CACHE  cache dir (default ~/.cache/coderctl/kube-v1.37.2)
set -euo pipefail

readonly KUBE_VERSION=v1.37.2
readonly KUBE_MINOR=37

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kubebin="$root/internal/testenv/kubeground/kubebin"
cache="${CODERCTL_KUBE_CACHE:-${HOME}/.cache/coderctl/kube-${KUBE_VERSION}}"
bin="$cache/bin"
stages="$cache/stages"
stamp="$cache/.stamp"
binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
stage_files=(
  node/fast/node-initialize.yaml
  node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml
  pod/fast/pod-delete.yaml
)

log() { printf 'build-kube: %s\n' "$*" >&2; }

# The stamp names what was built: a change to the pinned versions, the build
# modules or this script makes the cache stale.
want_stamp() {
  {
    echo "kubernetes $KUBE_VERSION"
    cat "$kubebin/go.mod" "$kubebin/go.sum" "$kubebin/kwok/go.mod" "$kubebin/kwok/go.sum" \
      "$kubebin/cmd/etcd/main.go" "${BASH_SOURCE[0]}"
  } | sha256sum | cut -d' ' -f1
}

cache_is_fresh() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$(want_stamp)" ]] || return 1
  local b f
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
  for f in "${stage_files[@]}"; do [[ -f "$stages/$(basename "$f")" ]] || return 1; done
}

build() {
  local tmp="$1" started=$SECONDS
  # Module mode, the local toolchain, no go.work from a parent directory.
  export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=readonly
  local kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  kube_ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
  kube_ldflags+=" -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR"
  kube_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

  log "building kube-apiserver, kube-controller-manager, kube-scheduler, etcd (cold: ~10 min on 2 cores)"
  # One go build for all four so shared packages compile once.
  (cd "$kubebin" && go build -trimpath -buildvcs=false -ldflags "$kube_ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    ./cmd/etcd)
  log "kubernetes + etcd built in $((SECONDS - started)) s"

  log "building kwok"
  (cd "$kubebin/kwok" && go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tmp/" sigs.k8s.io/kwok/cmd/kwok)
  log "all binaries built in $((SECONDS - started)) s"

  local kwok_dir
  kwok_dir="$(cd "$kubebin/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  mkdir -p "$tmp/stages"
  local f
  for f in "${stage_files[@]}"; do
    install -m 0644 "$kwok_dir/kustomize/stage/$f" "$tmp/stages/"
  done
}

main() {
  local force=0
  [[ "${1:-}" == "--force" ]] && force=1

  mkdir -p "$cache"
  # Two runs at once (two CI jobs, a test and a make target) wait for each
  # other instead of building twice into the same directory.
  exec 9>"$cache/.lock"
  if command -v flock >/dev/null; then
    flock -n 9 || { log "another build holds $cache/.lock; waiting"; flock 9; }
  fi

  if [[ $force == 0 ]] && cache_is_fresh; then
    log "up to date: $bin (use --force to rebuild)"
    return 0
  fi

  # Global, not local: the EXIT trap runs after main has returned.
  build_tmp="$(mktemp -d "$cache/.build.XXXXXX")"
  trap 'rm -rf "$build_tmp"' EXIT
  local tmp="$build_tmp"
  build "$tmp"

  "$tmp/kube-apiserver" --version | grep -qx "Kubernetes $KUBE_VERSION" || {
    log "kube-apiserver reports '$("$tmp/kube-apiserver" --version)', want Kubernetes $KUBE_VERSION"
    exit 1
  }

  # Replace the cache contents only after everything built.
  rm -rf "$bin" "$stages"
  mkdir -p "$bin"
  mv "${binaries[@]/#/$tmp/}" "$bin/"
  mv "$tmp/stages" "$stages"
  want_stamp >"$stamp"
  log "installed into $bin:"
  (cd "$bin" && du -h "${binaries[@]}" | sed 's/^/build-kube:   /' >&2)
  log "kwok stages in $stages"
}

main "$@"
