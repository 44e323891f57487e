#!/usr/bin/env python3
"""`make bench-upload`: jibri-finalize against `aws s3 cp` on the same data, same endpoint.

Uploads one file of BENCH_UPLOAD_MB MiB (default 2048) to the local AWS endpoint
(AWS_ENDPOINT_URL, loopback only) with both tools, alternating, BENCH_UPLOAD_RUNS times
each (default 2), and prints wall time, throughput and peak RSS of each, and the ratio.
Both use CRC-32 (the test bed's moto computes CRC-64/NVME only with awscrt):
jibri-finalize a full-object checksum, `aws s3 cp` S3's default type for CRC-32 multipart
uploads, a composite one (it sets none); jibri-finalize's run includes everything it does for a session: tag the
instance, hash, upload, complete, read the checksum back, write the manifest, delete the
local copy, untag. The data file is a hard link in a session directory, so deleting the
uploaded copy leaves the benchmark's file in place.

Peak RSS is the child's ru_maxrss (wait4), in MiB. When the endpoint's process id is
known (AWS_PID, as the test bed's .testbed/env exports it), each run also prints the CPU
seconds the endpoint spent on it: when they come close to the wall time, the endpoint
(moto, one Python process) is what limits, not the tool.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".bench" / "upload"
AWS = ROOT / ".venv" / "awscli-env" / "bin" / "aws"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
FINALIZE = Path(os.environ.get("JIBRI_FINALIZE_BIN", TARGET / "bench-opt" / "jibri-finalize"))
MIB = 1 << 20


def endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL", "").rstrip("/")
    if not url.startswith("http://127."):
        sys.exit(f"bench-upload: AWS_ENDPOINT_URL must be a loopback URL (got {url!r})")
    return url


def env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("JIBRI_FINALIZE_")}
    e.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        NO_PROXY="127.0.0.1,localhost",
    )
    return e


def aws(*args: str) -> str:
    out = subprocess.run([str(AWS), "--endpoint-url", endpoint(), *args], env=env(), check=True, capture_output=True, text=True)
    return out.stdout


def endpoint_cpu() -> float | None:
    """CPU seconds (user + system, all threads) of the endpoint's process, if known."""
    try:
        with open(f"/proc/{int(os.environ['AWS_PID'])}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (KeyError, ValueError, OSError):
        return None


def timed(cmd: list) -> tuple:
    """(wall seconds, peak RSS MiB, exit status, stderr tail, endpoint CPU seconds or None)
    of one child process."""
    cpu0 = endpoint_cpu()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    cpu1 = endpoint_cpu()
    endpoint = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), err.decode(errors="replace")[-3000:], endpoint


def make_data(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    print(f"generating {size // MIB} MiB of random data in {path} ...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, open("/dev/urandom", "rb") as r:
        left = size
        while left:
            chunk = r.read(min(left, 8 * MIB))
            f.write(chunk)
            left -= len(chunk)


def main() -> None:
    size = int(os.environ.get("BENCH_UPLOAD_MB", "2048")) * MIB
    runs = int(os.environ.get("BENCH_UPLOAD_RUNS", "2"))
    if not FINALIZE.exists():
        sys.exit(f"bench-upload: {FINALIZE} missing: cargo build --profile bench-opt -p jibri-finalize")
    data = WORK / "data.bin"
    make_data(data, size)

    bucket = f"bench-upload-{os.getpid()}-{int(time.time())}"
    aws("s3api", "create-bucket", "--bucket", bucket)
    instance = json.loads(aws("ec2", "run-instances", "--image-id", "ami-12c6146b", "--instance-type", "t3.micro", "--count", "1"))["Instances"][0]["InstanceId"]
    pending = WORK / "pending"
    shutil.rmtree(pending, ignore_errors=True)
    conf = WORK / "jibri-finalize.conf"
    conf.write_text(
        f"BUCKET={bucket}\nPREFIX=recordings/\nINSTANCE_ID={instance}\nENDPOINT_URL={endpoint()}\nREGION=us-east-1\n"
        f"PENDING_DIR={pending}\nCHECKSUM_ALGORITHM=crc32\n"
    )

    results = {"aws s3 cp": [], "jibri-finalize": []}
    for i in range(runs):
        order = ["aws s3 cp", "jibri-finalize"] if i % 2 == 0 else ["jibri-finalize", "aws s3 cp"]
        for tool in order:
            if tool == "aws s3 cp":
                cmd = [str(AWS), "--endpoint-url", endpoint(), "s3", "cp", str(data), f"s3://{bucket}/cli/run{i}/data.bin", "--checksum-algorithm", "CRC32", "--only-show-errors"]
            else:
                session = WORK / "recordings" / f"benchsession{i}"
                shutil.rmtree(session, ignore_errors=True)
                session.mkdir(parents=True)
                os.link(data, session / "recording.mp4")
                cmd = [str(FINALIZE), "--config", str(conf), str(session)]
            wall, rss, code, err, endpoint_s = timed(cmd)
            if code != 0:
                sys.exit(f"bench-upload: {tool} failed ({code}):\n{err}")
            results[tool].append((wall, rss))
            busy = f"  endpoint CPU {endpoint_s:5.1f} s" if endpoint_s is not None else ""
            print(f"  run {i + 1}/{runs} {tool:15s} {wall:7.2f} s  {size / 1e6 / wall:7.1f} MB/s  peak RSS {rss:6.1f} MiB{busy}", flush=True)
            # Free the endpoint's memory between runs (moto keeps objects in its process).
            aws("s3", "rm", "--recursive", "--quiet", f"s3://{bucket}/")
        if data.stat().st_nlink != 1:
            sys.exit("bench-upload: jibri-finalize left its hard link: the upload was not verified")

    print()
    print(f"{size // MIB} MiB to {endpoint()} (local moto), median of {runs} run(s), CRC-32 checksums:")
    print(f"  {'tool':15s} {'seconds':>8s} {'MB/s':>8s} {'peak RSS MiB':>13s}")
    summary = {}
    for tool, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        rss = max(r[1] for r in rows)
        summary[tool] = (wall, size / 1e6 / wall, rss)
        print(f"  {tool:15s} {wall:8.2f} {size / 1e6 / wall:8.1f} {rss:13.1f}")
    ratio = summary["jibri-finalize"][1] / summary["aws s3 cp"][1]
    print(f"  throughput ratio jibri-finalize / aws s3 cp = {ratio:.2f}")
    verdict_speed = "meets" if ratio >= 1.2 else "MISSES"
    verdict_rss = "meets" if summary["jibri-finalize"][2] < 64 else "MISSES"
    print(f"  target: ratio >= 1.2 ({verdict_speed}), jibri-finalize peak RSS < 64 MiB ({verdict_rss})")
    (WORK / "results.json").write_text(json.dumps({"mib": size // MIB, "runs": runs, "tools": summary, "ratio": ratio}, indent=2))
    try:
        aws("s3api", "delete-bucket", "--bucket", bucket)
    except subprocess.CalledProcessError:
        pass


if __name__ == "__main__":
    main()
