#!/usr/bin/env bash
# Starts and stops the local test bed: the AWS endpoint (moto + the project's lifecycle
# extension) and the Jitsi emulator, on free 127.0.0.1 ports. Writes .testbed/env, and
# (unless --no-seed) seeds the demo group and writes .testbed/lambda.env.
#   scripts/testbed.sh up [--no-jitsi] [--no-seed]   |   scripts/testbed.sh down
# TESTBED_DIR=DIR keeps a second test bed's files (env, logs, ports) in DIR instead of
# .testbed, so that it neither stops nor is stopped by the one `make test` uses (`make demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TESTBED_DIR:-.testbed}
py=.venv/bin/python

wait_port() { # file pid name
  for _ in $(seq 1 300); do
    [[ -s "$1" ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "testbed: $3 exited during start-up; see $dir/$3.log" >&2; tail -20 "$dir/$3.log" >&2; return 1; }
    sleep 0.1
  done
  echo "testbed: $3 did not start within 30 s; see $dir/$3.log" >&2
  return 1
}

down() {
  [[ -f "$dir"/env ]] || return 0
  # shellcheck disable=SC1091
  source "$dir"/env
  for pid in ${JITSI_PID:-} ${AWS_PID:-}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${JITSI_PID:-} ${AWS_PID:-}; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$dir"/env "$dir"/lambda.env "$dir"/*.port
}

up() {
  local jitsi=1 seed=1
  for arg in "$@"; do
    case "$arg" in
      --no-jitsi) jitsi=0 ;;
      --no-seed) seed=0 ;;
      *) echo "testbed: unknown option $arg" >&2; return 2 ;;
    esac
  done
  down
  mkdir -p "$dir"
  rm -f "$dir"/aws.port "$dir"/jitsi.port
  $py testbed/aws/server.py --host 127.0.0.1 --port 0 --port-file "$dir"/aws.port >"$dir"/aws.log 2>&1 &
  local aws_pid=$!
  echo "AWS_PID=$aws_pid" >"$dir"/env
  wait_port "$dir"/aws.port $aws_pid aws
  local aws_port; aws_port=$(cat "$dir"/aws.port)
  local jitsi_pid="" jitsi_port=""
  if [[ $jitsi == 1 ]]; then
    local bin=${JITSI_BIN:-target/debug/jitsi-emulator}
    [[ -n "${JITSI_BIN:-}" ]] || cargo build -q -p jitsi-emulator
    $bin --listen 127.0.0.1:0 --port-file "$dir"/jitsi.port >"$dir"/jitsi.log 2>&1 &
    jitsi_pid=$!
    echo "JITSI_PID=$jitsi_pid" >>"$dir"/env
    wait_port "$dir"/jitsi.port $jitsi_pid jitsi
    jitsi_port=$(cat "$dir"/jitsi.port)
  fi
  cat >"$dir"/env <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$aws_port
AWS_TESTBED_CONTROL_URL=http://127.0.0.1:$aws_port/_testbed
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_REGION=us-east-1
AWS_PID=$aws_pid
ENV
  if [[ $jitsi == 1 ]]; then
    cat >>"$dir"/env <<ENV
JITSI_EMULATOR_URL=http://127.0.0.1:$jitsi_port
JITSI_CONTROL_URL=http://127.0.0.1:$jitsi_port/control
JITSI_PID=$jitsi_pid
ENV
  fi
  if [[ $jitsi == 1 && $seed == 1 ]]; then
    set -a; source "$dir"/env; set +a
    $py scripts/seed.py
    # The functions' environment on the test bed: `cargo lambda watch --env-file`, `make plan`.
    cat >"$dir"/lambda.env <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$aws_port
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_REGION=us-east-1
ASG_NAMES=jibri-pool
JICOFO_STATS_URLS=http://127.0.0.1:$jitsi_port/jicofo/default/stats
# Production-shaped: the test bed hands instances private IPs in 127.N.0.0/16 (a test-bed
# deviation, testbed/aws/lifecycle_ext/moto_patches.py) and the emulator listens at each
# one on its own port while that Jibri runs (an exited Jibri refuses at connect).
JIBRI_HEALTH_URL=http://{private_ip}:$jitsi_port/jibri/api/v1.0/health
JIBRI_INTERNAL_URL=http://{private_ip}:$jitsi_port/jibri/api/internal/v1.0
STATE_BUCKET=jibri-autoscaler-state
LOG_FORMAT=text
# The test bed's clock runs compressed: ticks take the schedule event's time (never in production).
CLOCK=event
ENV
  fi
  echo "testbed up: $(tr '\n' ' ' <"$dir"/env)"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  *) echo "usage: $0 up [--no-jitsi] [--no-seed] | down" >&2; exit 2 ;;
esac
