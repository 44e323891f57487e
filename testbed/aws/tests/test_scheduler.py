"""The scheduled-rule stand-in: the "Scheduled Event" every period of test-bed time;
missed periods (a clock jump) are coalesced into one event."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import Aws, Sink, load_fixture
from test_delivery import shape


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_nothing_is_scheduled_by_default(aws: Aws) -> None:
    aws.advance(3600)
    assert aws.events() == []


def test_scheduled_event_fires_every_period(aws: Aws, sink: Sink) -> None:
    aws.configure(schedule_url=sink.url, schedule_period_s=60, schedule_rule_name="pool-controller-tick")
    aws.advance(59)
    assert aws.events() == []

    aws.advance(1)
    [received] = sink.wait(1)
    event = received.json()
    sample = load_fixture("scheduled-event.json")
    assert shape(event) == shape(sample)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["account"] == aws.account_id
    assert event["resources"] == [f"arn:aws:events:us-east-1:{aws.account_id}:rule/pool-controller-tick"]
    assert event["detail"] == {}

    aws.advance(60)
    second = sink.wait(2)[1].json()
    assert (parse(second["time"]) - parse(event["time"])).total_seconds() in (59, 60, 61)


def test_a_jump_over_many_periods_fires_once(aws: Aws, sink: Sink) -> None:
    aws.configure(schedule_url=sink.url, schedule_period_s=60)
    aws.advance(60)
    first = sink.wait(1)[0].json()

    aws.advance(300)  # five periods
    sink.wait(2)
    assert len(aws.events("scheduled")) == 2
    second = aws.events("scheduled")[1]["event"]
    assert (parse(second["time"]) - parse(first["time"])).total_seconds() in (299, 300, 301)

    aws.advance(59)
    assert len(aws.events("scheduled")) == 2  # the next boundary is a full period on


def test_turning_the_schedule_off_stops_it(aws: Aws, sink: Sink) -> None:
    aws.configure(schedule_url=sink.url, schedule_period_s=30)
    aws.configure(schedule_url=None)
    aws.advance(120)
    assert aws.events() == []
    assert aws.ok("GET", "/actions")["next_schedule"] is None
