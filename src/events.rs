//! Incoming events, parsed strictly enough to act on and leniently enough to accept every
//! way AWS delivers them: the EventBridge envelope, an EventBridge Scheduler's bare input,
//! and lifecycle notifications through SNS or SQS (including `autoscaling:TEST_NOTIFICATION`).

use crate::core::plan::HookTransition;
use crate::domain::{EpochSecs, InstanceId};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::Value;

/// The `detail` of an EventBridge "EC2 Instance-terminate/launch Lifecycle Action" event
/// (and the body of the same notification through SNS/SQS), as AWS documents it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleActionDetail {
    pub lifecycle_action_token: Option<String>,
    pub auto_scaling_group_name: String,
    pub lifecycle_hook_name: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    pub lifecycle_transition: String,
    #[serde(default)]
    pub notification_metadata: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
}

/// The EventBridge event type the guard receives.
pub type LifecycleEvent = EventBridgeEvent<LifecycleActionDetail>;

/// A lifecycle action to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleAction {
    pub group: String,
    pub hook: String,
    pub instance: InstanceId,
    pub token: Option<String>,
    /// Resolved once from `LifecycleTransition`, `Origin` and `Destination`: the same
    /// transition type the plan and the guard's decision use.
    pub transition: HookTransition,
    /// `Origin`/`Destination` (absent in events from older set-ups).
    pub origin: Option<String>,
    pub destination: Option<String>,
    /// When the action started (the event's time), if given.
    pub time: Option<EpochSecs>,
}

impl LifecycleAction {
    /// How calls name this action: by its token when the event gave one.
    pub fn action_ref(&self) -> crate::ports::ActionRef {
        crate::ports::ActionRef {
            group: self.group.clone(),
            hook: self.hook.clone(),
            instance: self.instance.clone(),
            token: self.token.clone(),
        }
    }
}

/// One thing a guard invocation was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Action(LifecycleAction),
    /// AWS's first message to an SNS/SQS hook target: acknowledged, nothing to do.
    TestNotification {
        group: String,
    },
    /// "EC2 Spot Instance Interruption Warning": EC2 stops or terminates the instance two
    /// minutes after `time`, whatever its Auto Scaling group's hooks say.
    SpotInterruption(SpotInterruption),
}

impl Incoming {
    /// The instance it is about (none for a test notification).
    pub fn instance(&self) -> Option<&InstanceId> {
        match self {
            Incoming::Action(a) => Some(&a.instance),
            Incoming::SpotInterruption(s) => Some(&s.instance),
            Incoming::TestNotification { .. } => None,
        }
    }
}

/// The `detail` of an "EC2 Spot Instance Interruption Warning" (EC2 User Guide, "Spot
/// Instance interruption notices").
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SpotInterruptionDetail {
    #[serde(rename = "instance-id")]
    pub instance_id: String,
    /// `terminate`, `stop` or `hibernate`.
    #[serde(rename = "instance-action")]
    pub instance_action: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotInterruption {
    pub instance: InstanceId,
    pub action: String,
    /// The warning's time (the envelope's `time`).
    pub time: Option<EpochSecs>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a lifecycle event: {0}")]
    Unrecognized(String),
    #[error("lifecycle event lacks `{0}`")]
    Missing(&'static str),
    #[error("unknown lifecycle transition {0:?}")]
    Transition(String),
    #[error("record {index}: {source}")]
    Record {
        index: usize,
        source: Box<EventError>,
    },
}

/// One record of an SQS or SNS delivery: its id (what SQS's `batchItemFailures` names)
/// and what it carried, parsed on its own.
#[derive(Debug)]
pub struct DeliveryRecord {
    /// SQS `messageId`, or SNS `MessageId`.
    pub id: String,
    /// From SQS (which takes per-record failures); otherwise SNS (one record, retried
    /// as a whole by the asynchronous invocation).
    pub from_sqs: bool,
    pub parsed: Result<Incoming, EventError>,
}

/// `Some` for an SQS or SNS delivery (a `Records` array), each record judged on its own:
/// threat, one bad record failed the whole batch and every good one with it. `None` for
/// anything else (an EventBridge event).
pub fn parse_records(event: &Value) -> Option<Vec<DeliveryRecord>> {
    let records = event.get("Records").and_then(Value::as_array)?;
    Some(
        records
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let (id, from_sqs, parsed) = match envelope(r) {
                    Ok(e) => (e.id, e.from_sqs, parse_body(&e.body)),
                    Err(err) => {
                        // A record whose envelope is unreadable keeps the id it claims, for
                        // the log line.
                        let id = r
                            .get("messageId")
                            .or_else(|| r.pointer("/Sns/MessageId"))
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("record-{index}"), str::to_string);
                        (id, r.get("body").is_some(), Err(err))
                    }
                };
                DeliveryRecord {
                    id,
                    from_sqs,
                    parsed: parsed.map_err(|e| EventError::Record {
                        index,
                        source: Box::new(e),
                    }),
                }
            })
            .collect(),
    )
}

/// One record's envelope, read through `aws_lambda_events`' types.
struct Envelope {
    id: String,
    from_sqs: bool,
    body: String,
}

fn envelope(r: &Value) -> Result<Envelope, EventError> {
    use aws_lambda_events::event::{sns::SnsRecord, sqs::SqsMessage};
    if r.get("Sns").is_some() {
        let rec: SnsRecord = serde_json::from_value(r.clone())
            .map_err(|e| EventError::Unrecognized(format!("SNS record: {e}")))?;
        return Ok(Envelope {
            id: rec.sns.message_id,
            from_sqs: false,
            body: rec.sns.message,
        });
    }
    if r.get("body").is_some() {
        let m: SqsMessage = serde_json::from_value(r.clone())
            .map_err(|e| EventError::Unrecognized(format!("SQS message: {e}")))?;
        return Ok(Envelope {
            id: m.message_id.unwrap_or_default(),
            from_sqs: true,
            body: m.body.unwrap_or_default(),
        });
    }
    Err(EventError::Unrecognized(
        "record has neither Sns.Message nor body".into(),
    ))
}

/// A notification body carried by SNS or SQS.
fn parse_body(body: &str) -> Result<Incoming, EventError> {
    let inner: Value = serde_json::from_str(body)
        .map_err(|e| EventError::Unrecognized(format!("message is not JSON: {e}")))?;
    parse_detail(&inner, None)
}

/// Parses whatever reached the guard into the actions it carries (several for an SQS batch).
pub fn parse_lifecycle(event: &Value) -> Result<Vec<Incoming>, EventError> {
    if let Some(records) = parse_records(event) {
        return records.into_iter().map(|r| r.parsed).collect();
    }
    match event.get("detail-type").and_then(Value::as_str) {
        Some("EC2 Instance-terminate Lifecycle Action")
        | Some("EC2 Instance-launch Lifecycle Action") => {
            let detail = event.get("detail").ok_or(EventError::Missing("detail"))?;
            // Field by field first, for an error that names what is missing; then the
            // whole envelope through the typed EventBridge event.
            let time = event
                .get("time")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339);
            let parsed = parse_detail(detail, time)?;
            let typed: LifecycleEvent = serde_json::from_value(event.clone())
                .map_err(|e| EventError::Unrecognized(format!("EventBridge envelope: {e}")))?;
            debug_assert_eq!(
                typed.detail.ec2_instance_id,
                match &parsed {
                    Incoming::Action(a) => a.instance.0.clone(),
                    _ => String::new(),
                }
            );
            Ok(vec![parsed])
        }
        Some("EC2 Spot Instance Interruption Warning") => {
            let detail = event.get("detail").ok_or(EventError::Missing("detail"))?;
            let d: SpotInterruptionDetail = serde_json::from_value(detail.clone())
                .map_err(|e| EventError::Unrecognized(format!("Spot interruption detail: {e}")))?;
            Ok(vec![Incoming::SpotInterruption(SpotInterruption {
                instance: InstanceId(d.instance_id),
                action: d.instance_action,
                time: event
                    .get("time")
                    .and_then(Value::as_str)
                    .and_then(parse_rfc3339),
            })])
        }
        Some(other) => Err(EventError::Unrecognized(format!("detail-type {other:?}"))),
        // A notification delivered raw (e.g. an SQS message body handed over directly).
        None => Ok(vec![parse_detail(event, None)?]),
    }
}

/// The notification body, common to EventBridge `detail` and SNS/SQS messages.
fn parse_detail(d: &Value, time: Option<EpochSecs>) -> Result<Incoming, EventError> {
    let s = |k: &'static str| d.get(k).and_then(Value::as_str).map(str::to_string);
    if s("Event").as_deref() == Some("autoscaling:TEST_NOTIFICATION") {
        return Ok(Incoming::TestNotification {
            group: s("AutoScalingGroupName").unwrap_or_default(),
        });
    }
    let launching = match s("LifecycleTransition").as_deref() {
        Some("autoscaling:EC2_INSTANCE_TERMINATING") => false,
        Some("autoscaling:EC2_INSTANCE_LAUNCHING") => true,
        Some(other) => return Err(EventError::Transition(other.to_string())),
        None => return Err(EventError::Missing("LifecycleTransition")),
    };
    // Warm pools (AWS user guide, "warm pool lifecycle hooks"): a launch into the pool
    // (Destination WarmPool) is stopped on CONTINUE; a termination from the pool (Origin
    // WarmPool) was stopped there. A scale-in back into the pool (terminate, Destination
    // WarmPool) stops a recording all the same: guarded exactly like a termination.
    let transition = match (
        launching,
        s("Origin").as_deref(),
        s("Destination").as_deref(),
    ) {
        (true, _, Some("WarmPool")) => HookTransition::WarmPoolEntry,
        (true, _, _) => HookTransition::Launching,
        (false, Some("WarmPool"), _) => HookTransition::WarmPoolExit,
        (false, _, _) => HookTransition::Terminating,
    };
    let time = time.or_else(|| s("Time").as_deref().and_then(parse_rfc3339));
    Ok(Incoming::Action(LifecycleAction {
        group: s("AutoScalingGroupName").ok_or(EventError::Missing("AutoScalingGroupName"))?,
        hook: s("LifecycleHookName").ok_or(EventError::Missing("LifecycleHookName"))?,
        instance: InstanceId(s("EC2InstanceId").ok_or(EventError::Missing("EC2InstanceId"))?),
        token: s("LifecycleActionToken"),
        transition,
        origin: s("Origin"),
        destination: s("Destination"),
        time,
    }))
}

/// The time a controller tick runs at. Threat: an event `time` in the future (a skewed
/// sender, a hand-written sample, a replay tool) moved the controller's clock: instant
/// ABANDONs and replacements, and a lease that locked out later ticks. In production
/// (`CLOCK=wall`) the tick's time is the wall clock; the event's time is only compared with
/// it (a skew over a minute is logged by the caller). The local test bed compresses time
/// through the schedule event's `time`, with `CLOCK=event` set explicitly (never earlier
/// than the wall clock).
pub fn tick_time(event_time: Option<EpochSecs>, wall: EpochSecs, event_clock: bool) -> EpochSecs {
    match event_time {
        // The test bed's clock runs ahead of the wall clock; a sample from years ago must
        // not take it back.
        Some(t) if event_clock => t.max(wall),
        _ => wall,
    }
}

/// A plan-only tick requested by the event: `{"plan_only": true}` as a Scheduler's input
/// or in a scheduled rule's `detail`. The tick observes and plans, logs the plan, and
/// changes nothing (the runbook's "what would it do now?").
pub fn plan_only_requested(event: &Value) -> bool {
    let flag = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
    flag(event.get("plan_only")) || flag(event.get("detail").and_then(|d| d.get("plan_only")))
}

/// A scheduled tick: the EventBridge scheduled-rule envelope or a Scheduler's bare input.
/// Anything else is refused, so a misrouted lifecycle event never drives the controller.
/// Returns the event's `time` when it has one: the tick's time as the schedule saw it.
pub fn parse_schedule(event: &Value) -> Result<Option<EpochSecs>, EventError> {
    match event.get("detail-type").and_then(Value::as_str) {
        Some("Scheduled Event") => Ok(event
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)),
        Some(other) => Err(EventError::Unrecognized(format!(
            "detail-type {other:?} is not a schedule"
        ))),
        None if event.is_object()
            && event.get("Records").is_none()
            && event.get("LifecycleTransition").is_none() =>
        {
            Ok(None)
        }
        None if event.is_null() => Ok(None),
        None => Err(EventError::Unrecognized(
            "expected a Scheduled Event or a Scheduler input object".into(),
        )),
    }
}

/// RFC 3339 (`2021-01-19T00:35:52Z`, fractional seconds and offsets allowed) to epoch
/// seconds, by the SDK's own parser (`aws_smithy_types`), which the SDK clients already
/// link. Times before the epoch are not event times: `None`.
pub fn parse_rfc3339(s: &str) -> Option<EpochSecs> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let t = DateTime::from_str(s, Format::DateTimeWithOffset).ok()?;
    u64::try_from(t.secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_event(name: &str) -> Value {
        let p = format!(
            "{}/tests/fixtures/aws-events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
    }

    #[test]
    fn the_tick_time_is_the_wall_clock_unless_the_test_bed_asks_for_event_time() {
        let wall = 1_800_000_000;
        // Issue 14.7: a future event time never moves the production clock.
        assert_eq!(tick_time(Some(wall + 86_400), wall, false), wall);
        assert_eq!(tick_time(Some(wall - 60), wall, false), wall);
        assert_eq!(tick_time(None, wall, false), wall);
        // The test bed's compressed clock, by explicit setting only.
        assert_eq!(tick_time(Some(wall + 86_400), wall, true), wall + 86_400);
        assert_eq!(tick_time(None, wall, true), wall);
        assert_eq!(tick_time(Some(wall - 86_400), wall, true), wall);
    }

    #[test]
    fn plan_only_is_asked_for_explicitly() {
        assert!(plan_only_requested(&serde_json::json!({"plan_only": true})));
        assert!(plan_only_requested(
            &serde_json::json!({"detail-type": "Scheduled Event", "detail": {"plan_only": true}})
        ));
        assert!(!plan_only_requested(
            &serde_json::json!({"plan_only": "yes"})
        ));
        assert!(!plan_only_requested(&aws_event("scheduled-event.json")));
    }

    #[test]
    fn terminate_fixture_parses() {
        let v = parse_lifecycle(&aws_event("asg-terminate-lifecycle.json")).unwrap();
        let Incoming::Action(a) = &v[0] else { panic!() };
        assert_eq!(a.group, "my-asg");
        assert_eq!(a.hook, "my-lifecycle-hook");
        assert_eq!(a.instance.0, "i-1234567890abcdef0");
        assert_eq!(
            a.token.as_deref(),
            Some("87654321-4321-4321-4321-210987654321")
        );
        assert_eq!(a.transition, HookTransition::Terminating);
        assert_eq!(a.destination.as_deref(), Some("EC2"));
        assert_eq!(a.time, Some(1_611_016_552));
    }

    #[test]
    fn launch_fixture_parses() {
        let v = parse_lifecycle(&aws_event("asg-launch-lifecycle.json")).unwrap();
        assert!(matches!(&v[0], Incoming::Action(a) if a.transition == HookTransition::Launching));
    }

    #[test]
    fn test_notification_via_sns_and_sqs() {
        let msg = aws_event("asg-test-notification.json").to_string();
        // The whole SNS record as SNS delivers it (the envelope is read through
        // aws_lambda_events' `SnsRecord`, which requires its fields), carrying the fixture.
        let sample = format!(
            "{}/events/test-notification-sns.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut sns: Value =
            serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
        sns["Records"][0]["Sns"]["Message"] = msg.clone().into();
        assert_eq!(
            parse_lifecycle(&sns).unwrap(),
            vec![Incoming::TestNotification {
                group: "my-asg".into()
            }]
        );
        let sqs = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "body": msg}]});
        assert_eq!(parse_lifecycle(&sqs).unwrap().len(), 1);
    }

    #[test]
    fn sqs_lifecycle_message_without_origin_parses() {
        let body = serde_json::json!({
            "AutoScalingGroupName": "pool", "Service": "AWS Auto Scaling", "Time": "2026-01-02T03:04:05.678Z",
            "AccountId": "123456789012", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "RequestId": "r", "LifecycleActionToken": "t", "EC2InstanceId": "i-1", "LifecycleHookName": "h"
        }).to_string();
        let v = parse_lifecycle(&serde_json::json!({"Records": [{"body": body}]})).unwrap();
        let Incoming::Action(a) = &v[0] else { panic!() };
        assert_eq!(a.origin, None);
        assert_eq!(a.time, parse_rfc3339("2026-01-02T03:04:05Z"));
    }

    #[test]
    fn malformed_events_are_clear_errors() {
        assert!(matches!(
            parse_lifecycle(
                &serde_json::json!({"detail-type": "EC2 Instance-terminate Lifecycle Action"})
            ),
            Err(EventError::Missing("detail"))
        ));
        let mut e = aws_event("asg-terminate-lifecycle.json");
        e["detail"].as_object_mut().unwrap().remove("EC2InstanceId");
        assert_eq!(
            parse_lifecycle(&e),
            Err(EventError::Missing("EC2InstanceId"))
        );
        assert!(parse_lifecycle(&aws_event("scheduled-event.json")).is_err());
        assert!(parse_lifecycle(&serde_json::json!({"Records": [{"body": "not json"}]})).is_err());
        assert!(parse_lifecycle(&serde_json::json!([1, 2])).is_err());
    }

    #[test]
    fn schedules_accept_rule_envelope_and_scheduler_input_only() {
        assert_eq!(
            parse_schedule(&aws_event("scheduled-event.json")),
            Ok(parse_rfc3339("2015-10-08T16:53:06Z"))
        );
        assert!(parse_schedule(&serde_json::json!({})).is_ok());
        assert!(parse_schedule(&Value::Null).is_ok());
        assert!(parse_schedule(&aws_event("asg-terminate-lifecycle.json")).is_err());
        assert!(parse_schedule(&serde_json::json!("tick")).is_err());
    }

    #[test]
    fn rfc3339_parses_offsets_and_rejects_junk() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2021-01-19T00:35:52Z"), Some(1_611_016_552));
        assert_eq!(
            parse_rfc3339("2021-01-19T02:35:52+02:00"),
            Some(1_611_016_552)
        );
        assert_eq!(
            parse_rfc3339("2021-01-19T00:35:52.359Z"),
            Some(1_611_016_552)
        );
        for bad in [
            "",
            "yesterday",
            "2021-13-19T00:35:52Z",
            "2021-01-19 00:35:52",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    /// SNS and SQS envelopes are read through `aws_lambda_events`' types: a record that is
    /// not what SNS or SQS delivers is malformed on its own, never the batch.
    #[test]
    fn a_truncated_envelope_is_malformed_on_its_own() {
        let msg = aws_event("asg-test-notification.json").to_string();
        let batch = serde_json::json!({"Records": [
            {"EventSource": "aws:sns", "Sns": {"Message": msg}},
            {"messageId": "m-2", "eventSource": "aws:sqs", "body": msg},
        ]});
        let records = parse_records(&batch).unwrap();
        assert!(matches!(
            &records[0].parsed,
            Err(EventError::Record { index: 0, source }) if source.to_string().contains("SNS record")
        ));
        assert_eq!(records[1].id, "m-2");
        assert!(records[1].from_sqs);
        assert!(records[1].parsed.is_ok());
    }
}
