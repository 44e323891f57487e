#!/usr/bin/env bash
# `make demo`: a test bed of its own (TESTBED_DIR, default .testbed/demo, so that it never
# stops the one `make test` or `make testbed-up` uses), both functions under
# `cargo lambda watch`, and scripts/demo.py, which plays a working day and prints the report.
#   DEMO_LONG=1         the whole day (07:30-18:05) instead of its start and its end
#   DEMO_WINDOWS=...    other windows (default "07:50-09:05,16:20-18:05"); DEMO_FORCE_ZERO=HH:MM
#   DEMO_SEED=N         another draw of the workday trace (sim-traces --seed N)
#   DEMO_CHART=PATH     where the chart goes (default docs/demo.svg, linked from README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export TESTBED_DIR=${TESTBED_DIR:-.testbed/demo}
dir=$TESTBED_DIR
cleanup() {
  [[ -n "${watch_pid:-}" ]] && kill -- -"$watch_pid" 2>/dev/null || true
  scripts/testbed.sh down
}
trap cleanup EXIT
# The functions, the Jitsi emulator and the simulator's demo-day, all debug builds (what
# cargo lambda watch runs).
cargo build -q --locked -p pool-controller -p termination-guard -p jitsi-emulator -p jibri-sim --bin pool-controller --bin termination-guard --bin jitsi-emulator --bin demo-day
scripts/testbed.sh up >/dev/null
echo "demo: test bed up ($dir/env)"
set -a; source "$dir"/env; set +a
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The test bed's function environment, with a managed warm pool.
cp "$dir"/lambda.env "$dir"/demo.env
cat >>"$dir"/demo.env <<ENV
WARM_POOL_MODE=managed
RUST_LOG=info
ENV
setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" --env-file "$dir"/demo.env >"$dir"/watch.log 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do
  (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  kill -0 "$watch_pid" 2>/dev/null || { echo "demo: cargo lambda watch exited; see $dir/watch.log" >&2; exit 1; }
  sleep 0.2
done
LAMBDA_WATCH_URL="http://127.0.0.1:$port" DEMO_WATCH_LOG="$dir/watch.log" DEMO_DAY_BIN="${CARGO_TARGET_DIR:-target}/debug/demo-day" \
  .venv/bin/python scripts/demo.py
