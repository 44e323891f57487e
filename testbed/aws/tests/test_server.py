"""The launcher: loopback only, the port file appears once it serves, and SIGTERM or
SIGINT stop it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SERVER, Aws, Sink, http, start_server


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "172.31.0.10", "::1", "example.com"])
def test_refuses_to_bind_outside_loopback(host: str, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    done = subprocess.run(
        [sys.executable, str(SERVER), "--host", host, "--port", "0", "--port-file", str(port_file)],
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert b"127.0.0.0/8" in done.stderr
    assert not port_file.exists()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serves_on_the_written_port_and_stops_cleanly(stop_signal: signal.Signals, tmp_path: Path) -> None:
    running = start_server(tmp_path)
    assert running.port_file.read_text().isdigit()
    status, _, body = http("GET", f"{running.url}/_testbed/health")
    assert status == 200 and b'"ok"' in body

    running.process.send_signal(stop_signal)
    assert running.process.wait(timeout=10) == 0
    assert not running.port_file.exists()
    assert b"stopped" in running.log_path.read_bytes()


def test_a_hung_delivery_does_not_delay_shutdown(tmp_path: Path, sink: Sink) -> None:
    sink.delay_s = 30
    running = start_server(tmp_path)
    aws = Aws(running.url, "123456789012")
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    aws.wait_for(aws.events, what="the event")
    time.sleep(0.2)  # the delivery is now waiting on the sink

    started = time.monotonic()
    assert running.stop(timeout_s=10) == 0
    assert time.monotonic() - started < 5
