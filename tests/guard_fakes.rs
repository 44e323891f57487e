//! The termination guard against the fakes: every decision path and the calls it makes.

use jibri_autoscaler::config::Config;
use jibri_autoscaler::domain::*;
use jibri_autoscaler::events::{parse_lifecycle, Incoming};
use jibri_autoscaler::fake::*;
use jibri_autoscaler::guard::{Guard, GuardOutcome};
use jibri_autoscaler::jitsi::BusyStatus;
use jibri_autoscaler::ports::*;
use serde_json::Value;
use std::collections::BTreeMap;

const NOW: EpochSecs = 1_611_016_600; // 48 s after the fixture event's time

fn event(name: &str) -> Value {
    let p = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .unwrap()
}

fn incoming(name: &str) -> Incoming {
    parse_lifecycle(&event(name)).unwrap().remove(0)
}

fn guard(
    probe: Probe,
    state: &str,
) -> (
    Guard<FakeAws, FakeAws, FakeRecorders>,
    FakeAws,
    FakeRecorders,
) {
    let group = GroupSnapshot {
        name: "jibri-pool".into(),
        min: 0,
        max: 10,
        desired: 0,
        new_instances_protected: true,
        retain_on_abandon: true,
        instances: vec![GroupInstance {
            id: "i-0a1b2c3d4e5f60718".into(),
            lifecycle_state: LifecycleState::parse(state),
            protected_from_scale_in: false,
        }],
        hooks: vec![],
        warm_pool: false,
    };
    let aws = FakeAws::new(group);
    let rec = FakeRecorders::default();
    rec.set("i-0a1b2c3d4e5f60718", probe);
    let cfg = Config::from_map(&BTreeMap::from([(
        "ASG_NAMES".to_string(),
        "jibri-pool".to_string(),
    )]))
    .unwrap();
    (
        Guard {
            cfg,
            asg: aws.clone(),
            ec2: aws.clone(),
            recorders: rec.clone(),
        },
        aws,
        rec,
    )
}

#[tokio::test]
async fn idle_recorder_is_drained_then_continued() {
    let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert_eq!(
        out,
        GuardOutcome::Continued {
            instance: "i-0a1b2c3d4e5f60718".into()
        }
    );
    assert_eq!(rec.shutdowns().len(), 1);
    assert_eq!(
        aws.mutating_calls(),
        vec![
            // The event's token checked live first (a heartbeat only the active action takes).
            "RecordLifecycleActionHeartbeat(i-0a1b2c3d4e5f60718)",
            "CreateTags(i-0a1b2c3d4e5f60718)",
            "CompleteLifecycleAction(CONTINUE,i-0a1b2c3d4e5f60718)"
        ]
    );
}

#[tokio::test]
async fn busy_recorder_is_held_drained_and_tagged_never_continued() {
    let (g, aws, rec) = guard(status(BusyStatus::Busy), "Terminating:Wait");
    let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(out, GuardOutcome::Held { .. }), "{out:?}");
    assert_eq!(rec.shutdowns().len(), 1);
    assert_eq!(
        aws.mutating_calls(),
        vec![
            "RecordLifecycleActionHeartbeat(i-0a1b2c3d4e5f60718)",
            "CreateTags(i-0a1b2c3d4e5f60718)",
        ]
    );
}

#[tokio::test]
async fn unknown_recorder_is_held() {
    for p in [
        Probe::Failed(ProbeFailure::Timeout),
        Probe::Failed(ProbeFailure::Garbage("x".into())),
        Probe::Failed(ProbeFailure::HttpStatus(500)),
    ] {
        let (g, aws, _) = guard(p.clone(), "Terminating:Wait");
        let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
        assert!(matches!(out, GuardOutcome::Held { .. }), "{p:?}: {out:?}");
        assert!(!aws.mutating_calls().iter().any(|c| c.contains("CONTINUE")));
    }
}

#[tokio::test]
async fn other_groups_are_ignored_without_any_aws_call() {
    let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let mut e = event("terminate.json");
    e["detail"]["AutoScalingGroupName"] = "someone-elses-group".into();
    let out = g
        .handle(&parse_lifecycle(&e).unwrap()[0], NOW)
        .await
        .unwrap();
    assert!(matches!(out, GuardOutcome::Ignored { .. }));
    assert!(aws.calls().is_empty());
    assert_eq!(*rec.probe_count.lock().unwrap(), 0);
}

#[tokio::test]
async fn duplicate_event_is_success() {
    let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let first = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(first, GuardOutcome::Continued { .. }));
    let calls = aws.mutating_calls().len();
    // The instance moved on (Terminating:Proceed): the duplicate is answered with success,
    // and neither the recorder nor AWS hears of it again.
    let again = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(again, GuardOutcome::Ignored { .. }), "{again:?}");
    assert_eq!(rec.shutdowns().len(), 1);
    assert_eq!(aws.mutating_calls().len(), calls);
}

/// Issue 14.1: a terminate event replayed for an in-service idle recorder (EventBridge
/// retries, a DLQ redrive, an operator invoking a sample) must not drain it.
#[tokio::test]
async fn a_replayed_terminate_event_for_an_in_service_recorder_drains_nothing() {
    for (state, name) in [
        ("InService", "terminate.json"),
        ("InService", "terminate-no-origin.json"),
        ("Terminating:Retained", "terminate.json"),
        ("InService", "launch.json"),
        ("Warmed:Stopped", "terminate-warm-pool.json"),
    ] {
        let (g, aws, rec) = guard(status(BusyStatus::Idle), state);
        let out = g.handle(&incoming(name), NOW).await.unwrap();
        assert!(
            matches!(out, GuardOutcome::Ignored { .. }),
            "{state} {name}: {out:?}"
        );
        assert!(rec.shutdowns().is_empty(), "{state} {name}: drained");
        assert!(
            aws.mutating_calls().is_empty(),
            "{state} {name}: {:?}",
            aws.mutating_calls()
        );
    }
}

/// Issue 14.1: an event whose token is no longer the active action (an earlier action's
/// event, arriving late) is not acted on, even though the instance waits again.
#[tokio::test]
async fn an_event_whose_token_is_not_the_active_action_drains_nothing() {
    let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    aws.tokens
        .lock()
        .unwrap()
        .insert("i-0a1b2c3d4e5f60718".into(), "a-newer-token".into());
    let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(out, GuardOutcome::Ignored { .. }), "{out:?}");
    assert!(rec.shutdowns().is_empty());
    assert!(!aws
        .mutating_calls()
        .iter()
        .any(|c| !c.starts_with("RecordLifecycleActionHeartbeat")));
}

/// Issue 14.4: another tool's hook on the same group is never ours to complete.
#[tokio::test]
async fn another_tools_hook_is_ignored_without_any_aws_call() {
    let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let mut e = event("terminate.json");
    e["detail"]["LifecycleHookName"] = "someone-elses-drain-hook".into();
    let out = g
        .handle(&parse_lifecycle(&e).unwrap()[0], NOW)
        .await
        .unwrap();
    assert!(matches!(out, GuardOutcome::Ignored { .. }), "{out:?}");
    assert!(aws.calls().is_empty());
    assert_eq!(*rec.probe_count.lock().unwrap(), 0);
}

/// Issue 14.2: an idle recorder whose drain request fails (port 3333 unreachable: Jibri
/// binds 127.0.0.1 by default) is held, never released, and not tagged as drained.
#[tokio::test]
async fn an_idle_recorder_whose_drain_fails_is_held_not_released() {
    for f in [
        ProbeFailure::Timeout,
        ProbeFailure::HttpStatus(500),
        ProbeFailure::Transport("connection reset".into()),
    ] {
        let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
        rec.drain_failures
            .lock()
            .unwrap()
            .insert("i-0a1b2c3d4e5f60718".into(), f.clone());
        let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
        assert!(matches!(out, GuardOutcome::Held { .. }), "{f:?}: {out:?}");
        let calls = aws.mutating_calls();
        assert!(
            !calls.iter().any(|c| c.contains("CONTINUE")),
            "{f:?}: {calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.starts_with("CreateTags")),
            "{f:?}: {calls:?}"
        );
        assert!(calls
            .iter()
            .any(|c| c.starts_with("RecordLifecycleActionHeartbeat")));
    }
}

/// Issue 14.2: a busy recorder whose drain fails is held and not tagged drained, so that
/// a later refusal is never mistaken for a Jibri that finished and exited.
#[tokio::test]
async fn a_busy_recorder_whose_drain_fails_is_not_tagged_drained() {
    let (g, aws, rec) = guard(status(BusyStatus::Busy), "Terminating:Wait");
    rec.drain_failures
        .lock()
        .unwrap()
        .insert("i-0a1b2c3d4e5f60718".into(), ProbeFailure::Timeout);
    let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(out, GuardOutcome::Held { .. }), "{out:?}");
    assert!(!aws
        .mutating_calls()
        .iter()
        .any(|c| c.starts_with("CreateTags")));
}

/// Issue 14.4: without TerminateHookAbandon=retain, ABANDON terminates: a busy recorder
/// held past MAX_HOOK_HOLD_S is held on, never abandoned.
#[tokio::test]
async fn without_retain_a_busy_recorder_past_the_maximum_is_held_not_abandoned() {
    let (g, aws, _) = guard(status(BusyStatus::Busy), "Terminating:Wait");
    aws.group.lock().unwrap().retain_on_abandon = false;
    let out = g
        .handle(&incoming("terminate.json"), NOW + 43_200)
        .await
        .unwrap();
    assert!(matches!(out, GuardOutcome::Held { .. }), "{out:?}");
    assert!(!aws.mutating_calls().iter().any(|c| c.contains("ABANDON")));
}

#[tokio::test]
async fn warm_pool_destination_and_old_events_are_guarded_the_same() {
    // A scale-in back into the warm pool waits in `Warmed:Pending:Wait` (on the terminate
    // hook); an event without Origin/Destination in `Terminating:Wait`.
    for (name, state) in [
        ("terminate-warm-pool.json", "Warmed:Pending:Wait"),
        ("terminate-no-origin.json", "Terminating:Wait"),
    ] {
        let (g, aws, _) = guard(status(BusyStatus::Busy), state);
        let out = g.handle(&incoming(name), NOW).await.unwrap();
        assert!(matches!(out, GuardOutcome::Held { .. }), "{name}: {out:?}");
        assert!(!aws.mutating_calls().iter().any(|c| c.contains("CONTINUE")));
    }
}

#[tokio::test]
async fn held_past_the_maximum_is_abandoned() {
    let (g, aws, _) = guard(status(BusyStatus::Busy), "Terminating:Wait");
    let out = g
        .handle(&incoming("terminate.json"), NOW + 43_200)
        .await
        .unwrap();
    assert!(
        matches!(out, GuardOutcome::Abandoned { retained: true, .. }),
        "{out:?}"
    );
    assert!(aws
        .mutating_calls()
        .contains(&"CompleteLifecycleAction(ABANDON,i-0a1b2c3d4e5f60718)".to_string()));
}

#[tokio::test]
async fn launch_hook_continues_once_healthy() {
    let (g, aws, _) = guard(status(BusyStatus::Idle), "Pending:Wait");
    let out = g.handle(&incoming("launch.json"), NOW).await.unwrap();
    assert_eq!(
        out,
        GuardOutcome::Continued {
            instance: "i-0a1b2c3d4e5f60718".into()
        }
    );
    assert_eq!(
        aws.mutating_calls(),
        vec![
            "RecordLifecycleActionHeartbeat(i-0a1b2c3d4e5f60718)",
            "CompleteLifecycleAction(CONTINUE,i-0a1b2c3d4e5f60718)"
        ]
    );
    let (g, aws, _) = guard(Probe::Failed(ProbeFailure::Refused), "Pending:Wait");
    let out = g.handle(&incoming("launch.json"), NOW).await.unwrap();
    assert!(matches!(out, GuardOutcome::LaunchPending { .. }));
    // Only the token check touched AWS; nothing was completed.
    assert_eq!(
        aws.mutating_calls(),
        vec!["RecordLifecycleActionHeartbeat(i-0a1b2c3d4e5f60718)"]
    );
}

#[tokio::test]
async fn test_notification_is_acknowledged_without_aws_calls() {
    let (g, aws, _) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    for name in ["test-notification-sns.json", "test-notification-sqs.json"] {
        let v = parse_lifecycle(&event(name)).unwrap();
        assert!(matches!(
            g.handle(&v[0], NOW).await.unwrap(),
            GuardOutcome::Acknowledged { .. }
        ));
    }
    assert!(aws.calls().is_empty());
}

#[tokio::test]
async fn a_gone_instance_is_nothing_to_guard() {
    let (g, aws, _) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    aws.ec2.lock().unwrap().clear();
    let out = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(out, GuardOutcome::AlreadyCompleted { .. }));
    assert!(aws.mutating_calls().is_empty());
}

#[test]
fn every_sample_event_parses_as_what_its_name_says() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if name.starts_with("scheduled") {
            jibri_autoscaler::events::parse_schedule(&v).unwrap();
        } else if name.starts_with("malformed") {
            assert!(parse_lifecycle(&v).is_err(), "{name}");
        } else {
            assert!(!parse_lifecycle(&v).unwrap().is_empty(), "{name}");
        }
    }
}

/// Issue 14.9: one bad or failing record of an SQS batch does not fail the others: the
/// malformed one is dropped (a retry cannot fix it), the failing one alone is returned in
/// `batchItemFailures`, the good one is acted on.
#[tokio::test]
async fn an_sqs_batch_is_answered_per_record() {
    let (g, aws, rec) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let good = event("terminate-sqs.json")["Records"][0].clone();
    let mut failing = good.clone();
    failing["messageId"] = "2".into();
    let mut bad = good.clone();
    bad["messageId"] = "3".into();
    bad["body"] = "{not json".into();
    // The first record's EC2 describe is throttled after retries: a transient AWS error.
    aws.fail_once(
        "DescribeInstances",
        PortError::Throttled {
            op: "DescribeInstances",
            message: "Rate exceeded".into(),
        },
    );
    let batch = serde_json::json!({ "Records": [failing, bad, good] });
    let out = g.handle_delivery(&batch, NOW).await.unwrap();
    assert_eq!(
        out["batchItemFailures"],
        serde_json::json!([{ "itemIdentifier": "2" }]),
        "{out}"
    );
    let outcomes = out["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2, "{out}");
    assert_eq!(outcomes[0]["record"], "3");
    assert!(outcomes[0]["ignored"].is_string());
    assert_eq!(outcomes[1]["record"], "1");
    assert_eq!(outcomes[1]["outcome"]["result"], "continued", "{out}");
    assert_eq!(rec.shutdowns().len(), 1);
}

/// SNS invokes once per record, asynchronously: a failure is the invocation's error, so
/// Lambda retries it; a malformed message is answered with success.
#[tokio::test]
async fn an_sns_delivery_that_fails_is_an_error_for_a_retry() {
    let (g, aws, _) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let body = event("terminate-sqs.json")["Records"][0]["body"].clone();
    // The whole SNS record as SNS delivers it, carrying the lifecycle notification.
    let mut sns = event("test-notification-sns.json");
    sns["Records"][0]["Sns"]["MessageId"] = "m-1".into();
    sns["Records"][0]["Sns"]["Message"] = body;
    aws.fail_once(
        "DescribeInstances",
        PortError::Throttled {
            op: "DescribeInstances",
            message: "Rate exceeded".into(),
        },
    );
    assert!(g.handle_delivery(&sns, NOW).await.is_err());
    let out = g.handle_delivery(&sns, NOW).await.unwrap();
    assert_eq!(
        out["outcomes"][0]["outcome"]["result"], "continued",
        "{out}"
    );
    let junk =
        serde_json::json!({ "Records": [{ "Sns": { "MessageId": "m-2", "Message": "{" } }] });
    assert!(g.handle_delivery(&junk, NOW).await.is_ok());
}

/// A guard whose one instance (in service, in `jibri-pool`) is a Spot instance.
fn spot_guard(
    probe: Probe,
) -> (
    Guard<FakeAws, FakeAws, FakeRecorders>,
    FakeAws,
    FakeRecorders,
) {
    let (g, aws, rec) = guard(probe, "InService");
    for e in aws.ec2.lock().unwrap().values_mut() {
        e.spot = true;
    }
    (g, aws, rec)
}

const SPOT_ID: &str = "i-0a1b2c3d4e5f60718";

/// Issue 14.11, Spot: EC2 takes the instance two minutes after the warning and no hook can
/// refuse it. An idle recorder is drained at once (no recording lands in its last two
/// minutes) and tagged with the notice (the controller launches its replacement now); the
/// drain tag only after the 2xx.
#[tokio::test]
async fn a_spot_warning_drains_the_recorder_and_tags_the_notice() {
    let (g, aws, rec) = spot_guard(status(BusyStatus::Idle));
    let out = g
        .handle(&incoming("spot-interruption.json"), NOW)
        .await
        .unwrap();
    assert_eq!(
        out,
        GuardOutcome::Interrupted {
            instance: SPOT_ID.into(),
            busy: false,
            drained: true
        }
    );
    assert_eq!(rec.shutdowns(), vec![InstanceId::from(SPOT_ID)]);
    let e = aws.ec2.lock().unwrap()[&InstanceId::from(SPOT_ID)].clone();
    assert_eq!(e.interruption_notice_at, Some(NOW - 48));
    assert!(e.drain_requested);
    // No lifecycle call: the warning is not a lifecycle action.
    assert!(aws
        .mutating_calls()
        .iter()
        .all(|c| c.starts_with("CreateTags")));
}

/// A recording already running on an interrupted instance is cut by EC2, and the guard
/// says so (outcome `busy`, an error log); it still drains so that nothing new lands.
#[tokio::test]
async fn a_spot_warning_on_a_busy_recorder_drains_and_reports_the_cut() {
    let (g, _, rec) = spot_guard(status(BusyStatus::Busy));
    let out = g
        .handle(&incoming("spot-interruption.json"), NOW)
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            GuardOutcome::Interrupted {
                busy: true,
                drained: true,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(rec.shutdowns().len(), 1);
}

/// Threat: a replayed or late warning (EventBridge retries for hours; an operator
/// invoking the sample), a warning about another group's instance, or about an instance
/// EC2 does not list as Spot: draining would stop a recorder the group counts. No call to
/// the recorder, no tag.
#[tokio::test]
async fn stale_foreign_or_non_spot_warnings_touch_nothing() {
    let (g, aws, rec) = spot_guard(status(BusyStatus::Idle));
    let stale = g
        .handle(&incoming("spot-interruption.json"), NOW + 200)
        .await
        .unwrap();
    assert!(matches!(stale, GuardOutcome::Ignored { .. }), "{stale:?}");
    assert!(aws.calls().is_empty(), "{:?}", aws.calls());

    let (g, aws, rec2) = guard(status(BusyStatus::Idle), "InService");
    let not_spot = g
        .handle(&incoming("spot-interruption.json"), NOW)
        .await
        .unwrap();
    assert!(
        matches!(not_spot, GuardOutcome::Ignored { .. }),
        "{not_spot:?}"
    );
    assert!(aws.mutating_calls().is_empty());

    let (g, aws, rec3) = spot_guard(status(BusyStatus::Idle));
    for e in aws.ec2.lock().unwrap().values_mut() {
        e.group = Some("someone-elses-pool".into());
    }
    let foreign = g
        .handle(&incoming("spot-interruption.json"), NOW)
        .await
        .unwrap();
    assert!(
        matches!(foreign, GuardOutcome::Ignored { .. }),
        "{foreign:?}"
    );
    assert!(aws.mutating_calls().is_empty());
    for r in [rec, rec2, rec3] {
        assert!(r.shutdowns().is_empty());
        assert_eq!(*r.probe_count.lock().unwrap(), 0);
    }
}

/// A drain that fails on the warning leaves no drain tag (a later refusal must not read as
/// an exited Jibri) but the notice tag still goes on, so the replacement is launched.
#[tokio::test]
async fn a_failed_drain_on_a_spot_warning_sets_only_the_notice() {
    let (g, aws, rec) = spot_guard(status(BusyStatus::Idle));
    rec.drain_failures
        .lock()
        .unwrap()
        .insert(InstanceId::from(SPOT_ID), ProbeFailure::Timeout);
    let out = g
        .handle(&incoming("spot-interruption.json"), NOW)
        .await
        .unwrap();
    assert!(
        matches!(out, GuardOutcome::Interrupted { drained: false, .. }),
        "{out:?}"
    );
    let e = aws.ec2.lock().unwrap()[&InstanceId::from(SPOT_ID)].clone();
    assert!(e.interruption_notice_at.is_some());
    assert!(!e.drain_requested);
}

/// The guard judges an action at the event's own time on the test bed's clock
/// (`CLOCK=event`), never at the later of event and wall time as a tick does: that would
/// age the action by the gap between the two clocks. Threat: a busy recorder ABANDONed at
/// first sight because the wall clock is days past the test bed's. In production (the
/// wall clock) an action that old was really held that long.
#[tokio::test]
async fn the_guard_judges_an_event_at_its_own_time_on_the_event_clock() {
    let three_days_later = NOW + 3 * 86_400;
    for (clock, abandoned) in [("event", false), ("wall", true)] {
        let (mut g, aws, _) = guard(status(BusyStatus::Busy), "Terminating:Wait");
        g.cfg = Config::from_map(&BTreeMap::from([
            ("ASG_NAMES".to_string(), "jibri-pool".to_string()),
            ("CLOCK".to_string(), clock.to_string()),
        ]))
        .unwrap();
        let out = g
            .handle(&incoming("terminate.json"), three_days_later)
            .await
            .unwrap();
        assert_eq!(
            matches!(out, GuardOutcome::Abandoned { .. }),
            abandoned,
            "CLOCK={clock}: {out:?}"
        );
        let completed = aws.mutating_calls().iter().any(|c| c.contains("ABANDON"));
        assert_eq!(completed, abandoned, "CLOCK={clock}");
    }
}
