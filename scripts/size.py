#!/usr/bin/env python3
"""`make size`: each Lambda's `bootstrap` size and its cold start, measured locally.

Cold start = from spawning the bootstrap to its first `GET .../runtime/invocation/next`
(the runtime is initialized: config parsed, SDK clients built, ready for an event),
against a Lambda Runtime API emulator on 127.0.0.1 (this script). Median of N runs
(default 5). Nothing leaves 127.0.0.0/8: the functions get a dead AWS endpoint and are
killed before any event is handed to them.
"""
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time


class Runtime(http.server.BaseHTTPRequestHandler):
    first_next = None  # set per run
    event = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith("/runtime/invocation/next") and not Runtime.event.is_set():
            Runtime.first_next = time.perf_counter()
            Runtime.event.set()
        # Never answer with an event: the process is killed once the time is taken.
        time.sleep(5)

    def log_message(self, *_):
        pass


def cold_start(bootstrap: str, port: int, env: dict) -> float:
    Runtime.event.clear()
    Runtime.first_next = None
    start = time.perf_counter()
    p = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not Runtime.event.wait(30):
            err = p.stderr.read1(4000).decode(errors="replace") if p.poll() is not None else ""
            raise SystemExit(f"{bootstrap}: no runtime request within 30 s {err}")
        return (Runtime.first_next - start) * 1000.0
    finally:
        p.kill()
        p.wait()


def main() -> None:
    runs = int(os.environ.get("SIZE_RUNS", "5"))
    arch = sys.argv[1]
    functions = sys.argv[2:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "size",
        "AWS_LAMBDA_LOG_GROUP_NAME": "size",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "size",
        "AWS_SECRET_ACCESS_KEY": "size",
        # A closed loopback port: nothing is ever sent anywhere else.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "ASG_NAMES": "jibri-pool",
        "STATE_BUCKET": "size",
    }
    print(f"| function ({arch}) | bootstrap size | cold start, median of {runs} (ms) | runs (ms) |")
    print("|---|---:|---:|---|")
    for f in functions:
        bootstrap = os.path.join(os.environ.get("LAMBDA_DIR", "target/lambda"), f, "bootstrap")
        size = os.path.getsize(bootstrap) / 1e6
        env = dict(base, AWS_LAMBDA_FUNCTION_NAME=f)
        ms = [cold_start(bootstrap, port, env) for _ in range(runs)]
        print(f"| {f} | {size:.1f} MB | {statistics.median(ms):.1f} | {', '.join(f'{m:.1f}' for m in ms)} |")
    server.shutdown()


if __name__ == "__main__":
    main()
