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
            lifecycle_state: state.into(),
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
            "CreateTags(i-0a1b2c3d4e5f60718)",
            "RecordLifecycleActionHeartbeat(i-0a1b2c3d4e5f60718)"
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
    let (g, _, _) = guard(status(BusyStatus::Idle), "Terminating:Wait");
    let first = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(matches!(first, GuardOutcome::Continued { .. }));
    let again = g.handle(&incoming("terminate.json"), NOW).await.unwrap();
    assert!(
        matches!(
            again,
            GuardOutcome::AlreadyCompleted { .. } | GuardOutcome::Held { .. }
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn warm_pool_destination_and_old_events_are_guarded_the_same() {
    for name in ["terminate-warm-pool.json", "terminate-no-origin.json"] {
        let (g, aws, _) = guard(status(BusyStatus::Busy), "Terminating:Wait");
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
        vec!["CompleteLifecycleAction(CONTINUE,i-0a1b2c3d4e5f60718)"]
    );
    let (g, aws, _) = guard(Probe::Failed(ProbeFailure::Refused), "Pending:Wait");
    let out = g.handle(&incoming("launch.json"), NOW).await.unwrap();
    assert!(matches!(out, GuardOutcome::LaunchPending { .. }));
    assert!(aws.mutating_calls().is_empty());
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
