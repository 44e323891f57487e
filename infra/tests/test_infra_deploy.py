"""The operator's entry points: `make deploy` / `make package` command lines
(DEPLOY_DRY_RUN=1 prints them), the pool examples, the mapping between the
functions' configuration table (crates/jibri-core/src/config.rs VARS) and the template's parameters, and
the warm-pool example for the recorder image (wait-inservice.sh against a fake IMDSv2
on loopback, and its systemd drop-in)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cfn_eval import Stack
from infra_testlib import INFRA, REPO, template  # noqa: F401  (template: fixture)

MAKE = ["make", "--no-print-directory", "-s", "-f", str(INFRA / "infra.mk")]
REQUIRED = {
    "STACK": "jibri-test",
    "REGION": "eu-west-1",
    "ASG_NAME": "jibri-test",
    "VPC_ID": "vpc-0123456789abcdef0",
    "SUBNET_IDS": "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2",
    "RECORDER_SG_ID": "sg-0ccccccccccccccc3",
    "ARTIFACT_BUCKET": "artifacts-eu-west-1",
}


def run_make(*args: str, env_extra: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith(("MAKE", "MFLAGS"))}
    env.update(env_extra or {})
    return subprocess.run([*MAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def dry_run(*args: str, **kw: Any) -> list[list[str]]:
    """The commands a dry run prints, each split like a shell would."""
    done = run_make(*args, "DEPLOY_DRY_RUN=1", **kw)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines() if line.strip()]


def overrides(cmd: list[str]) -> dict[str, str]:
    start = cmd.index("--parameter-overrides") + 1
    end = next(i for i in range(start, len(cmd)) if cmd[i].startswith("--"))
    return dict(kv.split("=", 1) for kv in cmd[start:end])


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def make_vars(**values: str) -> list[str]:
    return [f"{k}={v}" for k, v in values.items()]


# --- deploy ------------------------------------------------------------------------------


def test_dry_run_prints_the_exact_deploy_of_an_existing_group(tmp_path: Path) -> None:
    cmds = dry_run("deploy", *make_vars(**REQUIRED, JICOFO_STATS_URLS="http://10.0.1.10:8888/stats,http://10.0.2.10:8888/stats",
                                         JICOFO_CIDR="10.0.0.0/16", LAMBDA_DIR=str(tmp_path)))
    group, deploy = cmds
    # An existing group first gets the retention policy and new-instance protection.
    assert group[:3] == ["aws", "autoscaling", "update-auto-scaling-group"]
    assert option(group, "--auto-scaling-group-name") == "jibri-test"
    assert "--new-instances-protected-from-scale-in" in group
    assert option(group, "--instance-lifecycle-policy") == '{"RetentionTriggers":{"TerminateHookAbandon":"retain"}}'
    assert deploy[:3] == ["aws", "cloudformation", "deploy"]
    assert option(deploy, "--stack-name") == "jibri-test"
    assert option(deploy, "--region") == "eu-west-1"
    assert option(deploy, "--template-file") == "infra/template.yaml"
    assert option(deploy, "--s3-bucket") == "artifacts-eu-west-1"
    assert option(deploy, "--capabilities") == "CAPABILITY_IAM"
    assert "--no-fail-on-empty-changeset" in deploy
    p = overrides(deploy)
    assert p == {
        "GroupName": "jibri-test",
        "VpcId": "vpc-0123456789abcdef0",
        "SubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2",
        "RecorderSecurityGroupId": "sg-0ccccccccccccccc3",
        "JicofoStatsUrls": "http://10.0.1.10:8888/stats,http://10.0.2.10:8888/stats",
        "JicofoCidr": "10.0.0.0/16",
        "ArtifactBucket": "artifacts-eu-west-1",
        "ControllerCodeKey": "jibri-autoscaler/pool-controller/NOT-BUILT.zip",
        "GuardCodeKey": "jibri-autoscaler/termination-guard/NOT-BUILT.zip",
    }


def test_a_new_group_needs_no_group_update_and_passes_its_template() -> None:
    cmds = dry_run("deploy", *make_vars(**REQUIRED, LAUNCH_TEMPLATE_ID="lt-0123456789abcdef0", LAUNCH_TEMPLATE_VERSION="3",
                                         MIN_SIZE="1", MAX_SIZE="12", AUTOSCALER_DRY_RUN="true"))
    [deploy] = cmds
    p = overrides(deploy)
    assert (p["LaunchTemplateId"], p["LaunchTemplateVersion"], p["GroupMinSize"], p["GroupMaxSize"]) == (
        "lt-0123456789abcdef0", "3", "1", "12")
    assert p["DryRun"] == "true"


def test_code_keys_are_the_zips_sha256(tmp_path: Path) -> None:
    digests = {}
    for fn in ("pool-controller", "termination-guard"):
        (tmp_path / fn).mkdir()
        with zipfile.ZipFile(tmp_path / fn / "bootstrap.zip", "w") as z:
            z.writestr("bootstrap", f"binary of {fn}")
        digests[fn] = hashlib.sha256((tmp_path / fn / "bootstrap.zip").read_bytes()).hexdigest()
    [_, deploy] = dry_run("deploy", *make_vars(**REQUIRED, LAMBDA_DIR=str(tmp_path), ARTIFACT_PREFIX="builds/"))
    p = overrides(deploy)
    assert p["ControllerCodeKey"] == f"builds/pool-controller/{digests['pool-controller']}.zip"
    assert p["GuardCodeKey"] == f"builds/termination-guard/{digests['termination-guard']}.zip"
    # package uploads exactly there.
    upload = dry_run("package", *make_vars(ARTIFACT_BUCKET="artifacts-eu-west-1", LAMBDA_DIR=str(tmp_path), ARTIFACT_PREFIX="builds/"))
    builds = [c for c in upload if c[:3] == ["cargo", "lambda", "build"]]
    uploads = [c for c in upload if c[:3] == ["aws", "s3", "cp"]]
    assert len(builds) + len(uploads) == len(upload)
    build, *finalize = builds
    assert {"--release", "--arm64"} <= set(build) and option(build, "--output-format") == "zip"
    # ...and the recorders' uploader for both instance architectures (the image kit's binary).
    assert sorted(option(c, "--package") + " " + next(a for a in c if a in ("--arm64", "--x86-64")) for c in finalize) == [
        "jibri-finalize --arm64", "jibri-finalize --x86-64"]
    assert {u[-1] for u in uploads} == {
        f"s3://artifacts-eu-west-1/{p['ControllerCodeKey']}", f"s3://artifacts-eu-west-1/{p['GuardCodeKey']}"}


def test_warm_pool_variables_become_parameters() -> None:
    [_, deploy] = dry_run("deploy", *make_vars(**REQUIRED, WARM_POOL="managed", WARM_POOL_MIN="0", WARM_POOL_MAX="6"))
    p = overrides(deploy)
    # 0 is a value, not "unset".
    assert (p["WarmPool"], p["WarmPoolMin"], p["WarmPoolMax"]) == ("managed", "0", "6")
    [_, deploy] = dry_run("deploy", *make_vars(**REQUIRED))
    assert not {"WarmPool", "WarmPoolMin", "WarmPoolMax"} & set(overrides(deploy))


def test_pool_kind_becomes_the_pool_kind_parameter() -> None:
    [_, deploy] = dry_run("deploy", *make_vars(**REQUIRED, POOL_KIND="jvb"))
    assert overrides(deploy)["PoolKind"] == "jvb"
    [_, deploy] = dry_run("deploy", *make_vars(**REQUIRED))
    assert "PoolKind" not in overrides(deploy)


def test_every_deploy_variable_is_documented() -> None:
    """Each make variable that deploy.sh maps to a parameter is in INFRA_VARS (or it
    would not reach the script) and in the README's table."""
    script = (INFRA / "scripts" / "deploy.sh").read_text()
    mapped = set(re.findall(r'^add \w+ "\$\{?([A-Z0-9_]+)', script, re.M)) - {"controller_key", "guard_key"}
    assert {"WARM_POOL", "WARM_POOL_MIN", "WARM_POOL_MAX"} <= mapped
    mk = (INFRA / "infra.mk").read_text()
    infra_vars = set(re.search(r"^INFRA_VARS := ((?:.*\\\n)*.*)$", mk, re.M).group(1).replace("\\\n", " ").split())
    readme = (INFRA / "README.md").read_text()
    for var in mapped:
        assert var in infra_vars, f"{var} is not in INFRA_VARS"
        assert f"`{var}`" in readme, f"{var} is not in infra/README.md"


def test_extra_parameters_and_tags_pass_through() -> None:
    [_, deploy] = dry_run("deploy", *make_vars(**REQUIRED), "PARAMS=SpareMode=fixed SpareFixed=3", "TAGS=team=media cost=rec")
    p = overrides(deploy)
    assert (p["SpareMode"], p["SpareFixed"]) == ("fixed", "3")
    tags = deploy[deploy.index("--tags") + 1:]
    assert tags == ["jibri-autoscaler:group=jibri-test", "team=media", "cost=rec"]


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_required_variable_is_named(missing: str) -> None:
    values = {k: v for k, v in REQUIRED.items() if k != missing}
    done = run_make("deploy", "DEPLOY_DRY_RUN=1", *make_vars(**values))
    assert done.returncode != 0
    assert missing in done.stderr


def test_a_real_deploy_refuses_to_run_without_built_zips(tmp_path: Path) -> None:
    done = run_make("deploy", *make_vars(**REQUIRED, LAMBDA_DIR=str(tmp_path)), env_extra={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "make package" in done.stderr


# --- the pool examples ----------------------------------------------------------------------


def test_pool_examples_are_two_stacks_sharing_one_bucket(template: dict[str, Any]) -> None:
    [a] = dry_run("deploy", "POOL=infra/examples/pool-a.env")
    b_group, b = dry_run("deploy", "POOL=infra/examples/pool-b.env")
    pa, pb = overrides(a), overrides(b)
    assert option(a, "--stack-name") != option(b, "--stack-name")
    assert pa["GroupName"] != pb["GroupName"]
    assert "LaunchTemplateId" in pa and "LaunchTemplateId" not in pb
    assert option(b_group, "--auto-scaling-group-name") == pb["GroupName"]
    assert "ExistingBucketName" not in pa and pb["ExistingBucketName"]
    assert pb["RecordingsPrefix"].startswith("recordings/")  # inside pool A's lifecycle rule
    for p in (pa, pb):
        assert set(p) <= set(template["Parameters"]), set(p) - set(template["Parameters"])


def test_command_line_wins_over_the_pool_file() -> None:
    [a] = dry_run("deploy", "POOL=infra/examples/pool-a.env", "REGION=us-east-2", "MAX_SIZE=99")
    assert option(a, "--region") == "us-east-2"
    assert overrides(a)["GroupMaxSize"] == "99"


# --- configuration table <-> parameters --------------------------------------------------------


def config_vars() -> dict[str, str | None]:
    """name -> default (None = required) of every `Var` in crates/jibri-core/src/config.rs."""
    text = (REPO / "crates" / "jibri-core" / "src" / "config.rs").read_text()
    out: dict[str, str | None] = {}
    for name, default in re.findall(r'Var \{ name: "([A-Z_]+)", default: (None|Some\("(?:[^"\\]|\\.)*"\))', text):
        out[name] = None if default == "None" else default[len('Some("'):-len('")')]
    assert len(out) >= 25, "VARS not found in crates/jibri-core/src/config.rs"
    return out


# Variables deliberately not parameters, and why.
NOT_PARAMETERS = {
    "ASG_NAMES": "GroupName: one stack per pool, the controller manages the first name",
    "STATE_BUCKET": "the stack's bucket or ExistingBucketName",
    "LOG_FORMAT": "always json in Lambda (CloudWatch Logs)",
    "TERMINATE_HOOK_NAME": "the stack's own terminate hook",
    "LAUNCH_HOOK_NAME": "the stack's own launch hook",
    "CLOCK": "always the wall clock in Lambda (event time is for the local test bed)",
}
# The guard keeps no state and emits no metrics.
NOT_FOR_THE_GUARD = {"STATE_BUCKET", "STATE_PREFIX", "RECORDINGS_PREFIX", "METRICS_SINK", "METRICS_NAMESPACE"}
# Variables derived from a parameter of another shape: variable -> (parameter,
# {parameter value: variable value}). WarmPool also decides whether the stack creates
# the warm pool, hence "none" rather than the controller's "off".
DERIVED = {"WARM_POOL_MODE": ("WarmPool", {"none": "off", "managed": "managed"})}
MINIMAL_PARAMETERS = {"GroupName": "g", "VpcId": "vpc-1", "SubnetIds": "subnet-1", "RecorderSecurityGroupId": "sg-1",
                      "ArtifactBucket": "a", "ControllerCodeKey": "a.zip", "GuardCodeKey": "b.zip"}


def parameter_name(var: str) -> str:
    return "".join(part.capitalize() for part in var.split("_"))


def test_every_configuration_variable_is_wired_with_the_same_default(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    controller = template["Resources"]["ControllerFunction"]["Properties"]["Environment"]["Variables"]
    guard = template["Resources"]["GuardFunction"]["Properties"]["Environment"]["Variables"]
    for var, default in config_vars().items():
        assert var in controller, f"{var} is not in the controller's environment"
        assert (var in guard) == (var not in NOT_FOR_THE_GUARD), var
        if var in NOT_PARAMETERS:
            continue
        if var in DERIVED:
            name, values = DERIVED[var]
            assert set(params[name]["AllowedValues"]) == set(values), name
            assert values[params[name]["Default"]] == default, f"{name} default {params[name]['Default']!r} is not {var}={default!r}"
            assert var in params[name]["Description"], f"{name}'s description should name {var}"
            for value, expected in values.items():
                for fn in ("ControllerFunction", "GuardFunction"):
                    stack = Stack(template, {**MINIMAL_PARAMETERS, name: value}, account="123456789012",
                                  region="eu-central-1", stack_name="s")
                    env = stack.value(template["Resources"][fn]["Properties"]["Environment"]["Variables"][var])
                    assert env == expected, (fn, name, value, env)
            continue
        name = parameter_name(var)
        assert controller[var] == {"Ref": name}, (var, controller[var])
        assert str(params[name].get("Default")) == default, f"{name} default {params[name].get('Default')!r} != {default!r}"
        assert var in params[name]["Description"], f"{name}'s description should name {var}"
    assert controller["ASG_NAMES"] == {"Ref": "GroupName"}
    assert controller["LOG_FORMAT"] == "json"
    assert controller["CLOCK"] == guard["CLOCK"] == "wall"
    hooks = {r["Properties"]["LifecycleHookName"] for r in template["Resources"].values()
             if r["Type"] == "AWS::AutoScaling::LifecycleHook"}
    for fn in (controller, guard):
        assert {fn["TERMINATE_HOOK_NAME"], fn["LAUNCH_HOOK_NAME"]} == hooks


def test_numeric_parameters_enforce_the_configs_ranges(template: dict[str, Any]) -> None:
    """Deploy-time checks, so a bad value fails the deploy instead of every cold start."""
    text = re.sub(r"(?<=\d)_(?=\d)", "", (REPO / "crates" / "jibri-core" / "src" / "config.rs").read_text())
    consts = {"AWS_MAX_HOOK_HOLD_S": 48 * 3600}
    ranges = {}
    for name, lo, hi in re.findall(r'r\.num\("([A-Z_]+)", (\d+), ([^)]+)\)\?', text):
        hi = hi.strip()
        if hi in consts:
            ranges[name] = (int(lo), consts[hi])
        elif re.fullmatch(r"\d+( (\*|<<) \d+)?", hi):
            ranges[name] = (int(lo), eval(hi))  # a literal, e.g. 7 * 86400 or 16 << 20 (regex-checked)
    assert len(ranges) >= 17, sorted(ranges)
    params = template["Parameters"]
    for var, (lo, hi) in ranges.items():
        p = params[parameter_name(var)]
        assert p["Type"] == "Number", var
        assert int(p["MinValue"]) >= lo and int(p["MaxValue"]) <= hi, (var, p["MinValue"], p["MaxValue"], lo, hi)


# --- the warm-pool example for the recorder image ------------------------------------------------

WAIT_SCRIPT = INFRA / "examples" / "wait-inservice.sh"
DROP_IN = INFRA / "examples" / "jibri-wait-inservice.conf"


class FakeImds:
    """IMDSv2 on loopback: PUT /latest/api/token gives a token; the target lifecycle
    state answers only with that token, one value of `states` per read (the last one
    repeats; None = 404, as before Auto Scaling sets the item)."""

    TOKEN = "token-123"

    def __init__(self, states: list[str | None]) -> None:
        import http.server
        import threading

        self.states, self.reads, self.unauthorized = list(states), 0, 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def reply(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self.reply(200, fake.TOKEN)
                else:
                    self.reply(400)

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != fake.TOKEN:
                    fake.unauthorized += 1
                    self.reply(401)
                elif self.path != "/latest/meta-data/autoscaling/target-lifecycle-state":
                    self.reply(404)
                else:
                    state = fake.states[min(fake.reads, len(fake.states) - 1)]
                    fake.reads += 1
                    self.reply(404) if state is None else self.reply(200, state)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_wait(imds: FakeImds, tries: int) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IMDS_URL": imds.url, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
           "WAIT_INSERVICE_TRIES": str(tries), "WAIT_INSERVICE_SLEEP_S": "0"}
    return subprocess.run(["sh", str(WAIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the script needs curl")
def test_wait_inservice_starts_jibri_only_once_in_service() -> None:
    imds = FakeImds([None, "Warmed:Stopped", "Warmed:Stopped", "InService"])
    try:
        done = run_wait(imds, tries=10)
    finally:
        imds.close()
    assert done.returncode == 0, done.stderr
    assert imds.reads == 4 and imds.unauthorized == 0  # IMDSv2: always with the token
    # One log line per state seen, not one per read.
    assert done.stdout.count("'Warmed:Stopped'") == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="the script needs curl")
@pytest.mark.parametrize("state", ["Warmed:Stopped", "Terminated", None])
def test_wait_inservice_gives_up_after_its_tries(state: str | None) -> None:
    imds = FakeImds([state])
    try:
        done = run_wait(imds, tries=3)
    finally:
        imds.close()
    assert done.returncode == 1
    assert imds.reads == 3
    assert "not starting" in done.stderr


def test_wait_inservice_fails_closed_without_a_metadata_service() -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IMDS_URL": "http://127.0.0.1:9",
           "WAIT_INSERVICE_TRIES": "2", "WAIT_INSERVICE_SLEEP_S": "0"}
    done = subprocess.run(["sh", str(WAIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1


def test_drop_in_runs_the_script_before_jibri_and_waits_long_enough() -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(DROP_IN.read_text())
    service = unit["Service"]
    # "+": the metadata service is reached as root whatever User= jibri.service has.
    assert service["ExecStartPre"] == "+/usr/local/bin/wait-inservice.sh"
    script = WAIT_SCRIPT.read_text()
    tries = int(re.search(r"WAIT_INSERVICE_TRIES:-(\d+)", script).group(1))
    sleep_s = int(re.search(r"WAIT_INSERVICE_SLEEP_S:-(\d+)", script).group(1))
    timeout = re.fullmatch(r"(\d+)min", service["TimeoutStartSec"])
    assert timeout and int(timeout.group(1)) * 60 > tries * (sleep_s + 2 * 2)  # 2 curl calls of at most 2 s each
    assert os.access(WAIT_SCRIPT, os.X_OK)
    assert "/latest/api/token" in script and "meta-data/autoscaling/target-lifecycle-state" in script
