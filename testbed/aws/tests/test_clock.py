"""The per-account clock and the control API: time only moves forward, each
account has its own, timers also fire by themselves as real time passes, and reset
forgets an account's extension state."""

from __future__ import annotations

from typing import Any

from conftest import Aws, http


def test_the_clock_advances_on_request(aws: Aws) -> None:
    before = aws.ok("GET", "/clock")
    assert before["offset_s"] == 0
    after = aws.advance(3600)
    assert after["offset_s"] == 3600
    assert 3600 <= after["epoch_s"] - before["epoch_s"] < 3605
    assert after["now"].endswith("Z")


def test_the_clock_never_runs_backwards(aws: Aws) -> None:
    for bad in (-1, "10", None, True):
        status, body = aws.control("POST", "/clock/advance", {"seconds": bad})
        assert status == 400, body
    assert aws.ok("GET", "/clock")["offset_s"] == 0


def test_each_account_has_its_own_clock(aws: Aws, server: Any) -> None:
    aws.advance(500)
    other = Aws(server.url, "888888888888")
    assert other.ok("GET", "/clock")["offset_s"] == 0


def test_timers_fire_without_any_api_call(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={"timeout": 30})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    aws.advance(29.7)
    assert len(aws.active_actions()) == 1

    # Only the control API's read-only views are polled: the timer thread must act.
    aws.wait_for(lambda: aws.active_actions() == [], timeout_s=3, what="the timer thread")


def test_tick_runs_due_timers(aws: Aws) -> None:
    assert aws.ok("POST", "/tick")["processed"] == 0


def test_reset_forgets_the_account_extension_state(aws: Aws) -> None:
    aws.configure(boot_delay_s=10, lifecycle_event_url="http://127.0.0.1:9/x")
    aws.advance(100)
    aws.create_group(desired=1, terminate_hook={})
    assert aws.ok("POST", "/reset") == {"reset": aws.account_id}
    assert aws.ok("GET", "/config")["boot_delay_s"] == 0
    assert aws.ok("GET", "/clock")["offset_s"] == 0
    assert aws.ok("GET", "/actions") == {"actions": [], "booting": [], "next_schedule": None}
    assert aws.events() == [] and aws.deliveries() == []


def test_moto_reset_drops_actions_that_pointed_into_its_state(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert len(aws.active_actions()) == 1
    status, _, _ = http("POST", aws.base_url + "/moto-api/reset")
    assert status == 200
    assert aws.active_actions() == []
    assert len(aws.events()) == 1  # logs survive a moto reset


def test_health_and_unknown_endpoints(aws: Aws) -> None:
    health = aws.ok("GET", "/health")
    assert health["status"] == "ok" and health["account"] == aws.account_id
    assert aws.control("GET", "/nope")[0] == 404
    assert aws.control("GET", "/clock/advance")[0] == 405
    assert aws.control("POST", "/clock/advance", None)[0] == 400
