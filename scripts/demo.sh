#!/usr/bin/env bash
# make demo: run `coderctl up` then `coderctl verify` against the local
# proving ground — moto_server for AWS (no account needed) — in a scratch
# directory, print the results and the state file, then tear down.
# KEEP=1 leaves the ground running for exploration.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/coderctl"
[ -x "$bin" ] || { echo "build first: make build"; exit 1; }

if ! command -v moto_server >/dev/null; then
  echo "moto_server (the AWS emulator) is not installed; trying: pip install 'moto[server]==5.2.1'"
  pip install 'moto[server]==5.2.1' || { echo "install moto 5.2.1 with its server extra (pip install 'moto[server]==5.2.1') and re-run"; exit 1; }
fi

work=$(mktemp -d /tmp/coderctl-demo.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_ACM_VALIDATION_WAIT=0 MOTO_IAM_LOAD_MANAGED_POLICIES=true \
  moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    echo "KEEP=1: moto_server (pid $moto_pid) still runs on http://127.0.0.1:$port; work dir $work"
    echo "  export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo; cd $work"
    return
  fi
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/moto-api/data.json" >/dev/null 2>&1 && break
  sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export CODERCTL_POLL_INTERVAL=200ms
unset AWS_REGION AWS_DEFAULT_REGION AWS_PROFILE KUBECONFIG

cd "$work"
echo "== local AWS (moto) on $AWS_ENDPOINT_URL; working in $work"
"$bin" init CODER_DOMAIN=coder.demo.example USERS=500
echo "== coderctl plan"
"$bin" plan
echo "== coderctl up"
"$bin" up --yes
echo "== coderctl verify"
"$bin" verify
echo "== state file: $work/coder-infra.env"
"$bin" status
