"""Events outside the code agree with the stack: its two lifecycle hooks, the sample
events in events/, the seeded test-bed group (scripts/seed.py) and the local invokes
(scripts/invoke.py) all say `jibri-autoscaler-terminate` and `jibri-autoscaler-launch`,
the functions' defaults (config.rs); the invokes' SQS and SNS forms are shaped as the
samples are."""

from __future__ import annotations

import json
import re
from typing import Any

from infra_testlib import REPO, template  # noqa: F401  (template: fixture)

TRANSITIONS = {"autoscaling:EC2_INSTANCE_TERMINATING": "terminate", "autoscaling:EC2_INSTANCE_LAUNCHING": "launch"}


def stack_hooks(template: dict[str, Any]) -> dict[str, str]:
    """terminate|launch -> the hook name the template gives the group."""
    return {TRANSITIONS[r["Properties"]["LifecycleTransition"]]: r["Properties"]["LifecycleHookName"]
            for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::LifecycleHook"}


def lifecycle_details(event: Any) -> list[dict[str, Any]]:
    """The notification bodies of a sample: EventBridge `detail`, or each SQS/SNS message."""
    if "Records" in event:
        return [json.loads(r["body"] if "body" in r else r["Sns"]["Message"]) for r in event["Records"]]
    return [event["detail"]] if "detail" in event else []


def test_the_stack_names_its_hooks_as_the_functions_default(template: dict[str, Any]) -> None:
    hooks = stack_hooks(template)
    assert hooks == {"terminate": "jibri-autoscaler-terminate", "launch": "jibri-autoscaler-launch"}
    # src/config.rs, or wherever the workspace keeps it (crates/*/src/config.rs).
    config = next(text for path in [REPO / "src" / "config.rs", *sorted(REPO.glob("crates/*/src/config.rs"))]
                  if path.exists() and "TERMINATE_HOOK_NAME" in (text := path.read_text()))
    for kind, name in hooks.items():
        assert re.search(rf'name: "{kind.upper()}_HOOK_NAME",\s*default: Some\("{name}"\)', config), kind


def test_sample_events_name_the_stacks_hooks(template: dict[str, Any]) -> None:
    hooks = stack_hooks(template)
    seen = set()
    for path in sorted((REPO / "events").glob("*.json")):
        for detail in lifecycle_details(json.loads(path.read_text())):
            if "LifecycleHookName" in detail:
                kind = TRANSITIONS[detail["LifecycleTransition"]]
                assert detail["LifecycleHookName"] == hooks[kind], path.name
                seen.add(kind)
    assert seen == {"terminate", "launch"}


def test_the_seed_and_the_local_invokes_use_the_stacks_hooks(template: dict[str, Any]) -> None:
    hooks = stack_hooks(template)
    seed = (REPO / "scripts" / "seed.py").read_text()
    assert re.findall(r'"LifecycleHookName": "([^"]+)"', seed) == [hooks["terminate"]]
    invoke = (REPO / "scripts" / "invoke.py").read_text()
    assert f'TERMINATE_HOOK = "{hooks["terminate"]}"' in invoke
    assert f'LAUNCH_HOOK = "{hooks["launch"]}"' in invoke


# --- the local invokes' SQS and SNS forms (scripts/invoke.py) ---------------------------------


def load_invoke() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("invoke", REPO / "scripts" / "invoke.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_sqs_and_sns_forms_carry_the_same_action_as_the_samples_do() -> None:
    invoke = load_invoke()
    event = json.loads((REPO / "events" / "terminate.json").read_text())
    sample_sqs = json.loads((REPO / "events" / "terminate-sqs.json").read_text())["Records"][0]
    sample_sns = json.loads((REPO / "events" / "test-notification-sns.json").read_text())["Records"][0]
    sqs = invoke.in_form(event, "sqs")["Records"][0]
    sns = invoke.in_form(event, "sns")["Records"][0]
    assert sqs["eventSource"] == "aws:sqs" and set(sample_sqs) <= set(sqs)
    assert sns["EventSource"] == "aws:sns" and set(sample_sns["Sns"]) <= set(sns["Sns"])
    for message in (json.loads(sqs["body"]), json.loads(sns["Sns"]["Message"])):
        # The sample's message keys (NotificationMetadata when the hook has some).
        assert set(message) == set(json.loads(sample_sqs["body"])) | {"NotificationMetadata"}
        d = event["detail"]
        assert (message["LifecycleActionToken"], message["EC2InstanceId"], message["LifecycleHookName"],
                message["LifecycleTransition"], message["Origin"], message["Destination"]) == (
            d["LifecycleActionToken"], d["EC2InstanceId"], d["LifecycleHookName"],
            d["LifecycleTransition"], d["Origin"], d["Destination"])
    assert invoke.in_form(event, "eventbridge") is event  # delivered as captured
