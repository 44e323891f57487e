"""The recorder image kit (recorder/image/), run as an image build and a boot would run it, into a
temporary root instead of /:

- provision.sh installs the binary (a dummy file here), the per-boot unit and script, Jibri's
  drop-ins (instance-config, wait-inservice), the retry timer (enabled) and the examples; twice
  gives the same tree; every path a unit names is in the tree;
- jibri-instance-config reads a fake IMDSv2 on 127.0.0.1 (token first; GETs without it are
  refused with 401) and writes jibri.conf, which is parsed as HOCON (pyhocon, with the include of
  the operator's file) and checked: API hosts = the private IPv4, ports, a nickname unique to the
  instance in every environment's control-muc, jibri.id, the finalize script;
- it fails, writing nothing, without a metadata service, on a malformed answer, without the
  operator's file, with a hard-coded nickname, without the finalize binary;
- the example launch template passes cfn-lint, requires IMDSv2, and its user data, run here,
  writes the settings the per-boot script then uses.

Network: only 127.0.0.1 (the fake IMDS, and a closed port on it); cfn-lint runs with every proxy
pointed at a closed loopback port.
"""

from __future__ import annotations

import base64
import configparser
import email
import http.server
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyhocon import ConfigFactory, ConfigTree

REPO = Path(__file__).resolve().parents[3]
KIT = REPO / "recorder" / "image"
PROVISION = KIT / "provision.sh"
INSTANCE_CONFIG = KIT / "jibri-instance-config.sh"
BASE_EXAMPLE = KIT / "jibri.base.conf.example"
LAUNCH_TEMPLATE = REPO / "infra" / "examples" / "recorder-launch-template.yaml"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

INSTANCE_ID = "i-0123456789abcdef0"
PRIVATE_IP = "10.20.3.45"
CONF = "etc/jitsi/jibri/jibri.conf"
BASE_CONF = "etc/jitsi/jibri/jibri.base.conf"
FINALIZE = "/usr/local/bin/jibri-finalize"
LOOPBACK_ONLY = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="the per-boot script needs curl")


# --- a fake IMDSv2 ---------------------------------------------------------------------------


class FakeImds:
    """IMDSv2 on 127.0.0.1: PUT /latest/api/token (with the TTL header) gives a token; GETs of
    meta-data answer only with it (401 without). `fail_tokens` first token requests get a 503;
    `answers` overrides meta-data items."""

    TOKEN = "AQAEAFakeTokenForTests=="

    def __init__(self, fail_tokens: int = 0, answers: dict[str, str] | None = None) -> None:
        self.items = {"instance-id": INSTANCE_ID, "local-ipv4": PRIVATE_IP, **(answers or {})}
        self.fail_tokens = fail_tokens
        self.token_requests = 0
        self.gets: list[str] = []
        self.unauthorized = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def reply(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self.reply(400)
                    return
                fake.token_requests += 1
                if fake.token_requests <= fake.fail_tokens:
                    self.reply(503)
                else:
                    self.reply(200, fake.TOKEN)

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != fake.TOKEN:
                    fake.unauthorized += 1
                    self.reply(401)
                    return
                prefix = "/latest/meta-data/"
                item = self.path[len(prefix):] if self.path.startswith(prefix) else None
                if item in fake.items:
                    fake.gets.append(item)
                    self.reply(200, fake.items[item])
                else:
                    self.reply(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def imds() -> Any:
    fake = FakeImds()
    yield fake
    fake.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- running the scripts -----------------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", **LOOPBACK_ONLY, **extra}


@pytest.fixture
def finalize_bin(tmp_path: Path) -> Path:
    dummy = tmp_path / "build" / "jibri-finalize"
    dummy.parent.mkdir()
    dummy.write_bytes(b"#!/bin/sh\n# a stand-in for the jibri-finalize binary\nexit 0\n")
    return dummy


def provision(root: Path, finalize_bin: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = base_env(ROOT=str(root), JIBRI_FINALIZE_BIN=str(finalize_bin), **extra)
    return subprocess.run(["sh", str(PROVISION)], env=env, capture_output=True, text=True, timeout=60)


def provisioned(tmp_path: Path, finalize_bin: Path, base: Path | None = BASE_EXAMPLE) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    extra = {"JIBRI_BASE_CONF_SRC": str(base)} if base else {}
    done = provision(root, finalize_bin, **extra)
    assert done.returncode == 0, done.stderr
    return root


def instance_config(root: Path, imds_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = base_env(ROOT=str(root), IMDS_URL=imds_url, IMDS_SLEEP_S="0", **extra)
    # The installed copy, as the unit runs it.
    script = root / "usr/local/sbin/jibri-instance-config"
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=120)


def parse_jibri_conf(root: Path) -> ConfigTree:
    """jibri.conf as Jibri would load it: its include names the instance's path
    (/etc/jitsi/jibri/jibri.base.conf), which lives under `root` here."""
    text = (root / CONF).read_text()
    include = 'include required(file("/etc/jitsi/jibri/jibri.base.conf"))'
    assert text.count(include) == 1, text
    return ConfigFactory.parse_string(text.replace(include, f'include required(file("{root / BASE_CONF}"))'))


def tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Every path under root: its kind, mode and content (or link target)."""
    out: dict[str, tuple[str, int, bytes | str]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", 0, os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
    return out


# --- provision.sh ------------------------------------------------------------------------------


def test_provision_installs_the_kit(tmp_path: Path, finalize_bin: Path) -> None:
    root = provisioned(tmp_path, finalize_bin)
    files = tree(root)
    expected = {
        "usr/local/bin/jibri-finalize": 0o755,
        "usr/local/sbin/jibri-instance-config": 0o755,
        "usr/local/bin/wait-inservice.sh": 0o755,
        "etc/systemd/system/jibri-instance-config.service": 0o644,
        "etc/systemd/system/jibri.service.d/instance-config.conf": 0o644,
        "etc/systemd/system/jibri.service.d/wait-inservice.conf": 0o644,
        "etc/systemd/system/jibri-finalize-retry.service": 0o644,
        "etc/systemd/system/jibri-finalize-retry.timer": 0o644,
        "etc/tmpfiles.d/jibri-finalize.conf": 0o644,
        "etc/jibri-finalize.conf.example": 0o644,
        "etc/jitsi/jibri/jibri.base.conf.example": 0o644,
        "etc/jitsi/jibri/jibri.base.conf": 0o640,  # passwords
    }
    for path, mode in expected.items():
        assert files.get(path, ("missing",))[0] == "file", path
        assert files[path][1] == mode, (path, oct(files[path][1]))
    # The very files of the repository, not copies of them.
    assert files["usr/local/bin/jibri-finalize"][2] == finalize_bin.read_bytes()
    assert files["usr/local/sbin/jibri-instance-config"][2] == INSTANCE_CONFIG.read_bytes()
    assert files["usr/local/bin/wait-inservice.sh"][2] == (REPO / "infra/examples/wait-inservice.sh").read_bytes()
    assert files["etc/systemd/system/jibri.service.d/wait-inservice.conf"][2] == (
        REPO / "infra/examples/jibri-wait-inservice.conf"
    ).read_bytes()
    for unit in ("jibri-finalize-retry.service", "jibri-finalize-retry.timer"):
        assert files[f"etc/systemd/system/{unit}"][2] == (REPO / "recorder/systemd" / unit).read_bytes()
    # The timer enabled as `systemctl enable` would; Jibri's jibri.conf is the boot's, not the image's.
    assert files["etc/systemd/system/timers.target.wants/jibri-finalize-retry.timer"] == (
        "link", 0, "/etc/systemd/system/jibri-finalize-retry.timer")
    assert CONF not in files
    # No real jibri-finalize.conf with a placeholder bucket unless one is given.
    assert "etc/jibri-finalize.conf" not in files
    # Nothing outside the kit's paths.
    kit_dirs = {"etc", "etc/systemd", "etc/systemd/system", "etc/systemd/system/jibri.service.d",
                "etc/systemd/system/timers.target.wants", "etc/tmpfiles.d", "etc/jitsi", "etc/jitsi/jibri",
                "usr", "usr/local", "usr/local/bin", "usr/local/sbin"}
    assert set(files) == set(expected) | kit_dirs | {"etc/systemd/system/timers.target.wants/jibri-finalize-retry.timer"}


def test_provision_twice_gives_the_same_tree(tmp_path: Path, finalize_bin: Path) -> None:
    conf = tmp_path / "jibri-finalize.conf"
    conf.write_text("BUCKET=pool-a-recordings\nPREFIX=recordings/\n")
    root = provisioned(tmp_path, finalize_bin)
    first = provision(root, finalize_bin, JIBRI_BASE_CONF_SRC=str(BASE_EXAMPLE), JIBRI_FINALIZE_CONF_SRC=str(conf))
    assert first.returncode == 0, first.stderr
    once = tree(root)
    again = provision(root, finalize_bin, JIBRI_BASE_CONF_SRC=str(BASE_EXAMPLE), JIBRI_FINALIZE_CONF_SRC=str(conf))
    assert again.returncode == 0, again.stderr
    assert tree(root) == once
    assert once["etc/jibri-finalize.conf"] == ("file", 0o644, conf.read_bytes())


def test_provision_refuses_without_the_binary(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    env = base_env(ROOT=str(root))
    done = subprocess.run(["sh", str(PROVISION)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "JIBRI_FINALIZE_BIN" in done.stderr
    assert not any(root.iterdir())  # nothing half-installed
    done = provision(root, tmp_path / "nope")
    assert done.returncode != 0 and "not a non-empty file" in done.stderr
    assert not any(root.iterdir())


def unit_file(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    return unit


def test_the_units_name_paths_and_units_that_exist(tmp_path: Path, finalize_bin: Path) -> None:
    root = provisioned(tmp_path, finalize_bin)
    sd = root / "etc/systemd/system"
    # Units of Jibri's package and of systemd itself: not in the kit's tree.
    external = {"jibri.service", "network-online.target", "timers.target"}
    checked = 0
    for path in sorted(sd.rglob("*")):
        if path.is_symlink():
            target = os.readlink(path)
            assert target.startswith("/") and (root / target.lstrip("/")).is_file(), (path, target)
            continue
        if not path.is_file():
            continue
        unit = unit_file(path)
        for section in unit.sections():
            for key, value in unit[section].items():
                if key.startswith("Exec") and value:
                    exe = value.split()[0].lstrip("+-@!:")
                    assert exe.startswith("/"), (path, key, value)
                    assert os.access(root / exe.lstrip("/"), os.X_OK), (path, key, exe)
                    checked += 1
                elif key == "EnvironmentFile":
                    assert value.startswith("-/"), (path, value)  # optional: the unit runs without it
                elif key in ("Requires", "Wants", "After", "Before", "Unit"):
                    for name in value.split():
                        assert name in external or (sd / name).is_file(), (path, key, name)
                        checked += 1
    assert checked >= 8
    # The order at boot: the config unit before Jibri, which requires it and waits for InService.
    config_unit = unit_file(sd / "jibri-instance-config.service")
    assert config_unit["Unit"]["Before"] == "jibri.service"
    assert "network-online.target" in config_unit["Unit"]["After"]
    assert config_unit["Service"]["Type"] == "oneshot"
    assert config_unit["Service"]["ExecStart"] == "/usr/local/sbin/jibri-instance-config"
    dropin = unit_file(sd / "jibri.service.d/instance-config.conf")
    assert dropin["Unit"]["Requires"] == dropin["Unit"]["After"] == "jibri-instance-config.service"
    wait = unit_file(sd / "jibri.service.d/wait-inservice.conf")
    assert wait["Service"]["ExecStartPre"] == "+/usr/local/bin/wait-inservice.sh"
    assert unit_file(sd / "jibri-finalize-retry.service")["Service"]["ExecStart"].startswith(FINALIZE + " ")
    assert (root / "etc/tmpfiles.d/jibri-finalize.conf").read_text().count("/var/lib/jibri-finalize") == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_but_the_test_root(tmp_path: Path, finalize_bin: Path) -> None:
    """systemd's own check of the installed units (unknown keys, bad values, ordering), with a
    stand-in for the jibri.service of Jibri's package. The only complaints allowed: commands that
    are not on this host, because they are under the test root (where they are executable)."""
    root = provisioned(tmp_path, finalize_bin)
    sd = root / "etc/systemd/system"
    (sd / "jibri.service").write_text("[Unit]\nDescription=Jibri (stand-in)\n[Service]\nExecStart=/opt/jitsi/jibri/launch.sh\n")
    env = {**base_env(), "SYSTEMD_UNIT_PATH": f"{sd}:", "SYSTEMD_LOG_COLOR": "0"}
    units = ["jibri-instance-config.service", "jibri.service", "jibri-finalize-retry.service", "jibri-finalize-retry.timer"]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(sd / u) for u in units)],
                          env=env, capture_output=True, text=True, timeout=120)
    allowed = re.compile(r"^[\w.@-]+: Command (\S+) is not executable: No such file or directory$")
    for line in (done.stdout + done.stderr).splitlines():
        m = allowed.match(line.strip())
        assert m, line
        if m.group(1) != "/opt/jitsi/jibri/launch.sh":
            assert os.access(root / m.group(1).lstrip("/"), os.X_OK), line
    (sd / "jibri.service").unlink()


# --- jibri-instance-config -----------------------------------------------------------------------


@needs_curl
def test_boot_writes_jibri_conf_from_imdsv2(tmp_path: Path, finalize_bin: Path, imds: FakeImds) -> None:
    root = provisioned(tmp_path, finalize_bin)
    done = instance_config(root, imds.url)
    assert done.returncode == 0, done.stderr
    assert imds.token_requests == 1 and imds.unauthorized == 0  # IMDSv2: token first, always sent
    assert sorted(imds.gets) == ["instance-id", "local-ipv4"]

    conf = parse_jibri_conf(root)
    http_api = conf["jibri.api.http"]
    assert http_api["external-api-host"] == PRIVATE_IP and http_api["internal-api-host"] == PRIVATE_IP
    assert http_api["external-api-port"] == 2222 and http_api["internal-api-port"] == 3333
    assert conf["jibri.id"] == INSTANCE_ID
    assert conf["jibri.recording.finalize-script"] == FINALIZE
    envs = conf["jibri.api.xmpp.environments"]
    assert len(envs) == 1
    # The operator's settings are kept, the nickname is the instance's.
    assert envs[0]["control-muc"]["nickname"] == INSTANCE_ID
    assert envs[0]["control-muc"]["room-name"] == "JibriBrewery"
    assert envs[0]["control-login"]["username"] == "jibri"
    assert envs[0]["xmpp-server-hosts"] == ["10.0.1.10"]

    text = (root / CONF).read_text()
    assert "0.0.0.0" not in text.replace("not on 0.0.0.0", "")
    assert "FunctionSecurityGroupId" in text  # the security-group reasoning travels with the file
    assert stat.S_IMODE((root / CONF).stat().st_mode) == 0o644
    assert not list((root / "etc/jitsi/jibri").glob("*.tmp.*"))
    assert f"nickname {INSTANCE_ID}" in done.stdout


@needs_curl
def test_the_instance_wins_over_the_operators_file(tmp_path: Path, finalize_bin: Path, imds: FakeImds) -> None:
    """Two environments (two shards), each with the instance's nickname; API settings and a
    finalize script in the operator's file are overridden; ports come from the unit's env file."""
    base = tmp_path / "jibri.base.conf"
    base.write_text("""
jibri {
  id = "operator-id"
  api.http { external-api-host = "0.0.0.0", internal-api-host = "127.0.0.1", external-api-port = 1 }
  recording.finalize-script = "/opt/old-finalize.sh"
  api.xmpp.environments = [
    { name = "shard-a", xmpp-server-hosts = ["10.20.1.10"], xmpp-domain = "meet.example.org"
      control-muc { domain = "internal.auth.meet.example.org", room-name = "JibriBrewery", nickname = ${jibri-autoscaler.nickname} }
      control-login { domain = "auth.meet.example.org", username = "jibri", password = "x" } }
    { name = "shard-b", xmpp-server-hosts = ["10.20.2.10"], xmpp-domain = "meet.example.org"
      control-muc {
        domain = "internal.auth.meet.example.org"
        room-name = "JibriBrewery"
        "nickname": ${jibri-autoscaler.nickname}
      }
      control-login { domain = "auth.meet.example.org", username = "jibri", password = "y" } }
  ]
}
""")
    root = provisioned(tmp_path, finalize_bin, base=base)
    done = instance_config(root, imds.url, JIBRI_EXTERNAL_API_PORT="2223", JIBRI_INTERNAL_API_PORT="3334")
    assert done.returncode == 0, done.stderr
    conf = parse_jibri_conf(root)
    assert [e["control-muc"]["nickname"] for e in conf["jibri.api.xmpp.environments"]] == [INSTANCE_ID] * 2
    assert dict(conf["jibri.api.http"]) == {
        "external-api-host": PRIVATE_IP, "external-api-port": 2223,
        "internal-api-host": PRIVATE_IP, "internal-api-port": 3334,
    }
    assert conf["jibri.id"] == INSTANCE_ID
    assert conf["jibri.recording.finalize-script"] == FINALIZE


@needs_curl
def test_each_boot_rewrites_the_same_file(tmp_path: Path, finalize_bin: Path, imds: FakeImds) -> None:
    root = provisioned(tmp_path, finalize_bin)
    assert instance_config(root, imds.url).returncode == 0
    first = (root / CONF).read_bytes()
    assert instance_config(root, imds.url).returncode == 0
    assert (root / CONF).read_bytes() == first
    # A jibri.conf the kit did not write (Jibri's package default) is kept once, beside it.
    (root / CONF).write_text("jibri {\n}\n")
    assert instance_config(root, imds.url).returncode == 0
    assert (root / CONF).read_bytes() == first
    assert (root / (CONF + ".orig")).read_text() == "jibri {\n}\n"


@needs_curl
def test_boot_retries_the_metadata_service(tmp_path: Path, finalize_bin: Path) -> None:
    root = provisioned(tmp_path, finalize_bin)
    flaky = FakeImds(fail_tokens=2)
    try:
        done = instance_config(root, flaky.url, IMDS_TRIES="3")
    finally:
        flaky.close()
    assert done.returncode == 0, done.stderr
    assert flaky.token_requests == 3
    assert done.stderr.count("retrying") == 2
    assert parse_jibri_conf(root)["jibri.api.http.external-api-host"] == PRIVATE_IP


@needs_curl
def test_boot_fails_without_a_metadata_service(tmp_path: Path, finalize_bin: Path) -> None:
    root = provisioned(tmp_path, finalize_bin)
    done = instance_config(root, f"http://127.0.0.1:{closed_port()}", IMDS_TRIES="2", IMDS_TIMEOUT_S="1")
    assert done.returncode != 0
    assert "no answer from the instance metadata service" in done.stderr
    assert "after 2 attempts" in done.stderr and "/latest/api/token" in done.stderr
    assert "Jibri will not start" in done.stderr
    assert not (root / CONF).exists()
    # Token refused every time: the same, and no metadata GET without a token.
    refusing = FakeImds(fail_tokens=100)
    try:
        done = instance_config(root, refusing.url, IMDS_TRIES="3")
    finally:
        refusing.close()
    assert done.returncode != 0 and "after 3 attempts" in done.stderr
    assert refusing.token_requests == 3 and refusing.gets == [] and refusing.unauthorized == 0
    assert not (root / CONF).exists()


@needs_curl
@pytest.mark.parametrize(
    ("item", "answer"),
    [("instance-id", 'i-0123"; jibri.id = "x'), ("instance-id", ""), ("local-ipv4", "fe80::1"), ("local-ipv4", "")],
)
def test_boot_refuses_a_malformed_answer(tmp_path: Path, finalize_bin: Path, item: str, answer: str) -> None:
    root = provisioned(tmp_path, finalize_bin)
    fake = FakeImds(answers={item: answer})
    try:
        done = instance_config(root, fake.url)
    finally:
        fake.close()
    assert done.returncode != 0
    assert f"meta-data/{item} answered" in done.stderr
    assert not (root / CONF).exists()


@needs_curl
def test_boot_needs_the_operators_file_with_the_instance_nickname(tmp_path: Path, finalize_bin: Path, imds: FakeImds) -> None:
    root = provisioned(tmp_path, finalize_bin, base=None)
    done = instance_config(root, imds.url)
    assert done.returncode != 0 and "jibri.base.conf is missing" in done.stderr
    base = root / BASE_CONF
    # A hard-coded nickname would be the same on every recorder of the pool.
    base.write_text(BASE_EXAMPLE.read_text().replace("nickname = ${jibri-autoscaler.nickname}", 'nickname = "jibri-1"'))
    done = instance_config(root, imds.url)
    assert done.returncode != 0 and "nickname other than ${jibri-autoscaler.nickname}" in done.stderr
    assert '"jibri-1"' in done.stderr  # the offending line is shown
    base.write_text("jibri.api.xmpp.environments = []\n")
    done = instance_config(root, imds.url)
    assert done.returncode != 0 and "sets no control-muc nickname" in done.stderr
    assert not (root / CONF).exists()
    assert imds.token_requests == 0  # checked before asking the metadata service


@needs_curl
def test_boot_needs_the_finalize_script(tmp_path: Path, finalize_bin: Path, imds: FakeImds) -> None:
    root = provisioned(tmp_path, finalize_bin)
    (root / FINALIZE.lstrip("/")).unlink()
    done = instance_config(root, imds.url)
    assert done.returncode != 0 and "jibri-finalize is not installed" in done.stderr
    assert not (root / CONF).exists()


def test_boot_refuses_bad_ports(tmp_path: Path, finalize_bin: Path) -> None:
    root = provisioned(tmp_path, finalize_bin)
    url = f"http://127.0.0.1:{closed_port()}"
    for ext, internal, message in [("0", "3333", "JIBRI_EXTERNAL_API_PORT='0'"), ("2222", "x", "JIBRI_INTERNAL_API_PORT='x'"),
                                   ("2222", "2222", "are both 2222")]:
        done = instance_config(root, url, JIBRI_EXTERNAL_API_PORT=ext, JIBRI_INTERNAL_API_PORT=internal)
        assert done.returncode != 0 and message in done.stderr, done.stderr


# --- the example launch template -------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    pass


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def launch_template() -> dict[str, Any]:
    return yaml.load(LAUNCH_TEMPLATE.read_text(), Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)


@pytest.mark.skipif(not CFN_LINT.exists(), reason="cfn-lint is installed by `make venv`")
def test_launch_template_passes_cfn_lint() -> None:
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run([str(CFN_LINT), "--", str(LAUNCH_TEMPLATE)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_launch_template_requires_imdsv2_and_the_recorder_profile() -> None:
    data = launch_template()["Resources"]["RecorderLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpEndpoint"] == "enabled"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["IamInstanceProfile"] == {"Arn": {"Ref": "RecorderInstanceProfileArn"}}
    assert data["SecurityGroupIds"] == [{"Ref": "RecorderSecurityGroupId"}]
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True and ebs["DeleteOnTermination"] is True  # a warm pool needs an EBS root


def render_user_data(values: dict[str, str]) -> str:
    sub = launch_template()["Resources"]["RecorderLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    body = sub["Fn::Base64"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([A-Za-z0-9:]+)\}", body))
    assert names == set(values), names  # every substitution is a parameter the test gives
    for name, value in values.items():
        body = body.replace("${" + name + "}", value)
    base64.b64encode(body.encode("ascii"))  # 7-bit, as declared
    return body


@needs_curl
def test_launch_template_user_data_feeds_the_boot(tmp_path: Path, finalize_bin: Path, imds: FakeImds) -> None:
    """The cloud-config's bootcmd, run here with /etc under the test root, writes the pool's
    settings; the per-boot script then runs with the unit's EnvironmentFile and uses them."""
    params = launch_template()["Parameters"]
    user_data = render_user_data({"JibriHealthPort": "2224", "JibriInternalPort": "3335",
                                  "RecordingsBucket": "pool-a-recordings", "RecordingsPrefix": params["RecordingsPrefix"]["Default"]})
    message = email.message_from_string(user_data)
    assert message.is_multipart()
    parts = [p for p in message.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/cloud-config"]
    cloud_config = parts[0].get_payload()
    assert cloud_config.startswith("#cloud-config\n")
    bootcmd = yaml.safe_load(cloud_config)["bootcmd"]
    assert len(bootcmd) == 1 and isinstance(bootcmd[0], str)

    root = provisioned(tmp_path, finalize_bin)
    script = bootcmd[0].replace("/etc/", f"{root}/etc/")
    (root / "etc/default").mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["sh", "-euc", script], env=base_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (root / "etc/jibri-finalize.conf").read_text() == "BUCKET=pool-a-recordings\nPREFIX=recordings/\n"

    # systemd's EnvironmentFile= of the unit: KEY=VALUE lines.
    unit = unit_file(root / "etc/systemd/system/jibri-instance-config.service")
    env_file = root / unit["Service"]["EnvironmentFile"].lstrip("-/")
    settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line and not line.startswith("#"))
    assert settings == {"JIBRI_EXTERNAL_API_PORT": "2224", "JIBRI_INTERNAL_API_PORT": "3335"}
    done = instance_config(root, imds.url, **settings)
    assert done.returncode == 0, done.stderr
    http_api = parse_jibri_conf(root)["jibri.api.http"]
    assert (http_api["external-api-port"], http_api["internal-api-port"]) == (2224, 3335)


# --- the scripts themselves ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck() -> None:
    done = subprocess.run(["shellcheck", "-s", "sh", str(PROVISION), str(INSTANCE_CONFIG)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_the_image_kit_tarball_holds_every_file_provision_reads() -> None:
    """`make image-kit` packs IMAGE_KIT_FILES of recorder/recorder.mk: provision.sh must find all
    its sources in that tarball."""
    sources = re.findall(r'^kit_\w+="\$(here|repo)/([^"]+)"$', PROVISION.read_text(), re.M)
    assert len(sources) >= 10
    mk = (REPO / "recorder" / "recorder.mk").read_text().replace("$(RECORDER_DIR)", "recorder")
    listed = mk.split("IMAGE_KIT_FILES :=", 1)[1].split("\n\n", 1)[0]
    for base, rel in sources:
        path = f"recorder/image/{rel}" if base == "here" else rel
        assert path in listed or (path.startswith("recorder/systemd/") and "recorder/systemd/*" in listed), path
        assert (REPO / path).is_file(), path


def test_scripts_are_executable_posix_sh() -> None:
    for script in (PROVISION, INSTANCE_CONFIG):
        assert script.read_text().startswith("#!/bin/sh\n"), script
        assert os.access(script, os.X_OK), script
        done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
