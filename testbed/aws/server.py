#!/usr/bin/env python3
"""Launch the local AWS test bed: moto's server with the lifecycle extension.

    python testbed/aws/server.py --host 127.0.0.1 --port 0 --port-file PATH

Binds only to a loopback address (127.0.0.0/8); port 0 lets the OS choose a free
port. The chosen port is written to --port-file (digits, no newline) only once the
server answers requests, so a caller can wait for the file to appear and then
connect. Logs go to stderr. SIGTERM or SIGINT stop it cleanly (exit status 0) and
remove the port file.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

LOG = logging.getLogger("testbed.server")
READY_TIMEOUT_S = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.0/8)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 = any free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("TESTBED_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    try:
        args.host = loopback_host(args.host)
    except ValueError as err:
        parser.error(str(err))
    return args


def loopback_host(host: str) -> str:
    """Only 127.0.0.0/8 may be bound: the test bed must never be reachable off-box."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as err:
        raise ValueError(f"--host must be an IPv4 address in 127.0.0.0/8, not {host!r}") from err
    if address.version != 4 or address not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"--host must be in 127.0.0.0/8, not {host}")
    return host


def wait_until_serving(host: str, port: int) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with opener.open(f"http://{host}:{port}/_testbed/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def write_port_file(path: Path, port: int) -> None:
    """Atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(str(port))
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    import lifecycle_ext

    testbed = lifecycle_ext.build()
    server = make_server(args.host, args.port, testbed.app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port
    # Some moto services build URLs that point back at the server.
    os.environ["MOTO_PORT"] = str(port)

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="testbed-http", daemon=True
    )
    serving.start()
    testbed.start()
    status = 0
    try:
        wait_until_serving(args.host, port)
        if args.port_file is not None:
            write_port_file(args.port_file, port)
        LOG.info("AWS test bed listening on http://%s:%d", args.host, port)
        while not stopping.wait(0.5):
            if not serving.is_alive():
                LOG.error("the HTTP server thread stopped unexpectedly")
                status = 1
                break
    finally:
        server.shutdown()
        server.server_close()
        testbed.stop()
        if args.port_file is not None:
            try:
                if args.port_file.read_text() == str(port):
                    args.port_file.unlink()
            except OSError:
                pass
        LOG.info("stopped")
    return status


if __name__ == "__main__":
    exit_status = main()
    # Everything is closed and the port file is gone; skip the interpreter's
    # teardown, which spends seconds freeing moto's per-account backends.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_status)
