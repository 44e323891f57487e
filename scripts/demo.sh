#!/usr/bin/env bash
# `make demo`: test bed + both functions under `cargo lambda watch` + scripts/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
cleanup() {
  [[ -n "${watch_pid:-}" ]] && kill -- -"$watch_pid" 2>/dev/null || true
  scripts/testbed.sh down
}
trap cleanup EXIT
cargo build -q --workspace
scripts/testbed.sh up
set -a; source .testbed/env; set +a
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The seeded environment, plus the demo's pacing.
cp .testbed/lambda.env .testbed/demo.env
cat >>.testbed/demo.env <<ENV
IDLE_GRACE_S=300
BOOT_LATENCY_S=${DEMO_BOOT_DELAY_S:-180}
RUST_LOG=info
ENV
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --env-file .testbed/demo.env >.testbed/watch.log 2>&1 &
watch_pid=$!
for _ in $(seq 1 100); do
  (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.2
done
LAMBDA_WATCH_URL="http://127.0.0.1:$port" .venv/bin/python scripts/demo.py
