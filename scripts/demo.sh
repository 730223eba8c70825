#!/usr/bin/env bash
# make demo: run `coderctl up` then `coderctl verify` against the local
# proving ground (moto for AWS, a real Kubernetes control plane with fake EKS
# nodes, an NLB controller, a CSI secret syncer, a loopback chart repository
# and a Coder API double — see internal/testenv/ground), in a scratch
# directory; print the results and the state file; tear everything down.
# KEEP=1 leaves the ground running for exploration. SLOW=0.005 puts real AWS
# durations (scaled) in front of moto. CODER_VERSION=2.35.2 deploys that
# Coder release (the ground serves the charts chartrepo.CoderVersions lists;
# the newest by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/coderctl"
# `make demo` builds coderctl and runs scripts/ground-prereqs.sh (moto, the
# Kubernetes binaries, the real charts' modules) before this script.
[ -x "$bin" ] && [ -x "$root/bin/ground" ] || { echo "run it as: make demo"; exit 1; }
command -v moto_server >/dev/null || { echo "moto_server is missing: run it as make demo, which installs it"; exit 1; }

work=$(mktemp -d /tmp/coderctl-demo.XXXXXX)
# -no-users: a fresh Coder without any user; `up` creates the first owner
# from CODER_FIRST_USER_EMAIL (its password only in Secrets Manager).
version_flag=()
[ -n "${CODER_VERSION:-}" ] && version_flag=(-coder-version "$CODER_VERSION")
"$root/bin/ground" -dir "$work/ground" -slow "${SLOW:-0}" -no-users "${version_flag[@]}" >"$work/ground.out" 2>&1 &
ground_pid=$!
cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    echo "KEEP=1: the ground (pid $ground_pid) keeps running; to use it:"
    echo "  cd $work && . ground/env && $bin status"
    echo "  stop it with: kill $ground_pid"
    return
  fi
  kill "$ground_pid" 2>/dev/null || true
  wait "$ground_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  [ -f "$work/ground/ready" ] && break
  kill -0 "$ground_pid" 2>/dev/null || { cat "$work/ground.out"; exit 1; }
  sleep 0.2
done
[ -f "$work/ground/ready" ] || { echo "the proving ground did not start:"; cat "$work/ground.out"; exit 1; }
cat "$work/ground.out"

# shellcheck disable=SC1091
. "$work/ground/env"
unset AWS_REGION AWS_DEFAULT_REGION AWS_PROFILE KUBECONFIG

cd "$work"
echo "== coderctl init (default cluster-config.yaml, coder-infra.env aimed at the ground)"
mapfile -t inputs <"$work/ground/inputs"
"$bin" init CODER_DOMAIN=coder.demo.example USERS=50 CODER_FIRST_USER_EMAIL=admin@coder.demo.example "${inputs[@]}"
echo "== coderctl size: the shipped node groups, counted as the cluster-autoscaler can grow them"
"$bin" size
echo "== coderctl plan"
"$bin" plan
echo "== coderctl up"
"$bin" up --yes
echo "== coderctl verify"
"$bin" verify
echo "== coderctl status (state file $work/coder-infra.env)"
"$bin" status
echo "== coderctl smoke: a throw-away workspace from kubernetes-eks, its agent connected, deleted"
"$bin" smoke
