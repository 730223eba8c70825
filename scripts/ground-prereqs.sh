#!/usr/bin/env bash
# ground-prereqs.sh installs what the proving ground needs, the same way for
# every entry point (`make test`, `make demo`, `make bench`, .ci/run):
#   1. moto_server, the AWS emulator: the pinned moto[server] with pip when
#      it is missing (the machine image already has it);
#   2. the Kubernetes control plane binaries (scripts/build-kube.sh, cached);
#   3. the Go modules that carry the real Helm charts the ground serves
#      (internal/testenv/chartrepo), through the Go module proxy into the
#      module cache, which this machine and CI keep between runs.
# Each step is quick when already done.
#
# Usage: scripts/ground-prereqs.sh [moto|kube|charts]...   (default: all three)
set -euo pipefail

readonly MOTO_PIN='moto[server]==5.2.1'
# The chart modules, as internal/testenv/chartrepo's Modules() lists them
# (a test there keeps the two in step): coder and coder-provisioner for the
# pinned CODER_VERSION and an older release (upgrades), the CSI driver.
readonly CHART_MODULES=(
  github.com/coder/coder/v2@v2.36.1
  github.com/coder/coder/v2@v2.35.2
  sigs.k8s.io/secrets-store-csi-driver@v1.5.5
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'ground-prereqs: %s\n' "$*" >&2; }

ensure_moto() {
  if command -v moto_server >/dev/null; then
    log "moto_server: $(command -v moto_server)"
    return 0
  fi
  log "moto_server (the AWS emulator) is not installed; trying: pip install '$MOTO_PIN'"
  local pip=(pip)
  command -v pip >/dev/null || pip=(python3 -m pip)
  if ! "${pip[@]}" install "$MOTO_PIN" || ! command -v moto_server >/dev/null; then
    log "could not install it: install moto 5.2.1 with its server extra (pip install '$MOTO_PIN'),"
    log "make sure moto_server is on PATH, and re-run"
    return 1
  fi
  log "installed $MOTO_PIN: $(command -v moto_server)"
}

# fetch_chart_modules runs `go mod download` outside any module (an empty
# directory, no go.work), so the chart modules never become dependencies of
# coderctl's go.mod; -mod=mod overrides a -mod=vendor in the user's GOFLAGS.
fetch_chart_modules() {
  local tmp m out
  tmp="$(mktemp -d)"
  # Global, not local: the EXIT trap runs after the function has returned.
  prereqs_tmp="$tmp"
  trap 'rm -rf "$prereqs_tmp"' EXIT
  for m in "${CHART_MODULES[@]}"; do
    out="$(cd "$tmp" && GOFLAGS=-mod=mod GOWORK=off GO111MODULE=on go mod download -json "$m")" || {
      log "could not download Go module $m (the real charts come from it) through $(go env GOPROXY):"
      printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Error": //p' >&2
      return 1
    }
    log "chart module $m: $(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
  done
}

# Steps to run: all by default, or those named (moto, kube, charts).
main() {
  local steps=("$@")
  [[ ${#steps[@]} -gt 0 ]] || steps=(moto kube charts)
  local step
  for step in "${steps[@]}"; do
    case "$step" in
      moto) ensure_moto ;;
      kube) bash "$root/scripts/build-kube.sh" ;;
      charts) fetch_chart_modules ;;
      *) log "unknown step '$step' (want moto, kube or charts)"; return 2 ;;
    esac
  done
}

main "$@"
