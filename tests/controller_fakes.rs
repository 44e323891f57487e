//! The controller's observe → plan → act against the hand-written fakes: which calls it
//! makes, in which order, and which it never makes.

use jibri_autoscaler::config::Config;
use jibri_autoscaler::controller::{Controller, Outcome};
use jibri_autoscaler::core::state::{Lease, PoolState, Seen};
use jibri_autoscaler::domain::*;
use jibri_autoscaler::fake::*;
use jibri_autoscaler::jitsi::{BusyStatus, JicofoStats};
use jibri_autoscaler::ports::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const NOW: EpochSecs = 1_800_000_000;
const JICOFO: &str = "http://jicofo.test/stats";

fn cfg(extra: &[(&str, &str)]) -> Config {
    let mut m = BTreeMap::from([
        ("ASG_NAMES".to_string(), "pool".to_string()),
        ("JICOFO_STATS_URLS".to_string(), JICOFO.to_string()),
        ("SPARE_MODE".to_string(), "fixed".to_string()),
        ("SPARE_FIXED".to_string(), "1".to_string()),
        ("IDLE_GRACE_S".to_string(), "600".to_string()),
        // The call lists below are about capacity and hooks; EC2 termination protection
        // has its own test (`ec2_termination_protection_follows_recording_and_uploading`).
        ("EC2_TERMINATION_PROTECTION".to_string(), "off".to_string()),
    ]);
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    Config::from_map(&m).unwrap()
}

struct World {
    aws: FakeAws,
    rec: FakeRecorders,
    jicofo: FakeJicofo,
    state: MemoryStateStore,
    metrics: RecordingMetrics,
}

/// A group of `(id, lifecycle, protected, probe)`.
fn world(min: u32, max: u32, desired: u32, instances: &[(&str, &str, bool, Probe)]) -> World {
    let group = GroupSnapshot {
        name: "pool".into(),
        min,
        max,
        desired,
        new_instances_protected: true,
        retain_on_abandon: true,
        instances: instances
            .iter()
            .map(|(id, l, p, _)| GroupInstance {
                id: InstanceId::from(*id),
                lifecycle_state: LifecycleState::parse(l),
                protected_from_scale_in: *p,
            })
            .collect(),
        hooks: vec![Hook {
            name: "jibri-autoscaler-terminate".into(),
            transition: TERMINATING.into(),
            heartbeat_timeout_s: 900,
            default_result: "ABANDON".into(),
        }],
        warm_pool: false,
    };
    let rec = FakeRecorders::default();
    for (id, _, _, p) in instances {
        rec.set(id, p.clone());
    }
    let jicofo = FakeJicofo::default();
    jicofo.set(
        JICOFO,
        Ok(JicofoStats {
            jibri_count: Some(instances.len() as u64),
            jibri_available: Some(0),
            ..JicofoStats::default()
        }),
    );
    World {
        aws: FakeAws::new(group),
        rec,
        jicofo,
        state: MemoryStateStore::default(),
        metrics: RecordingMetrics::default(),
    }
}

fn controller(
    w: &World,
    c: Config,
    holder: &str,
) -> Controller<FakeAws, FakeAws, FakeRecorders, FakeJicofo, MemoryStateStore, RecordingMetrics> {
    Controller {
        cfg: c,
        asg: w.aws.clone(),
        ec2: w.aws.clone(),
        recorders: Arc::new(w.rec.clone()),
        jicofo: Arc::new(w.jicofo.clone()),
        state: w.state.clone(),
        metrics: w.metrics.clone(),
        holder: holder.into(),
    }
}

fn idle() -> Probe {
    status(BusyStatus::Idle)
}
fn busy() -> Probe {
    status(BusyStatus::Busy)
}

/// Seeds the state of a pool running for an hour: every recorder answered before, and
/// the given ones have been idle for an hour.
async fn idle_for_an_hour(w: &World, ids: &[&str]) {
    let mut s = PoolState {
        initialized: true,
        ..PoolState::default()
    };
    for id in ids {
        s.idle_since.insert(InstanceId::from(*id), NOW - 3600);
    }
    for i in &w.aws.group.lock().unwrap().instances {
        s.in_service.insert(
            i.id.clone(),
            Seen {
                since: NOW - 3600,
                answered: true,
            },
        );
    }
    w.state.save("pool", &s, None).await.unwrap();
}

#[tokio::test]
async fn steady_state_makes_zero_mutating_calls_and_writes_nothing() {
    let w = world(
        1,
        10,
        2,
        &[
            ("i-a", "InService", true, busy()),
            ("i-b", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-b"]).await;
    // First tick records the busy baseline; the second is the steady state.
    controller(&w, cfg(&[]), "t1").tick(NOW).await.unwrap();
    let writes = *w.state.writes.lock().unwrap();
    let r = controller(&w, cfg(&[]), "t2").tick(NOW + 60).await.unwrap();
    assert_eq!(r.outcome, Outcome::Steady, "{}", r.plan.summary());
    assert!(
        w.aws.mutating_calls().is_empty(),
        "{:?}",
        w.aws.mutating_calls()
    );
    assert!(w.rec.shutdowns().is_empty());
    assert_eq!(
        *w.state.writes.lock().unwrap(),
        writes,
        "steady state wrote the state"
    );
    assert_eq!(w.metrics.last("Busy"), Some(1.0));
}

#[tokio::test]
async fn scale_out_sets_the_desired_capacity_once() {
    let w = world(
        1,
        10,
        2,
        &[
            ("i-a", "InService", true, busy()),
            ("i-b", "InService", true, busy()),
        ],
    );
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert_eq!(r.outcome, Outcome::Acted);
    assert_eq!(w.aws.mutating_calls(), vec!["SetDesiredCapacity(3)"]);
}

#[tokio::test]
async fn scale_in_unprotects_only_the_victims_right_before_the_drop() {
    let w = world(
        0,
        10,
        4,
        &[
            ("i-a", "InService", true, busy()),
            ("i-b", "InService", true, idle()),
            ("i-c", "InService", true, idle()),
            ("i-d", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-b", "i-c", "i-d"]).await;
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert_eq!(
        w.aws.mutating_calls(),
        vec![
            "SetInstanceProtection(false,i-b,i-c)",
            "SetDesiredCapacity(2)"
        ],
        "{}",
        r.plan.summary()
    );
}

/// Recorders that turn BUSY after their first probe: a recording lands between the
/// observation and the act.
#[derive(Clone, Default)]
struct TakesARecording {
    probes: Arc<std::sync::Mutex<BTreeMap<InstanceId, u32>>>,
}

impl Recorders for TakesARecording {
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        let mut m = self.probes.lock().unwrap();
        let n = m.entry(r.id.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            idle()
        } else {
            busy()
        }
    }
    async fn graceful_shutdown(&self, _r: &RecorderAddress) -> Result<(), ProbeFailure> {
        Ok(())
    }
}

#[tokio::test]
async fn a_victim_that_took_a_recording_before_the_act_is_kept() {
    let w = world(
        0,
        10,
        3,
        &[
            ("i-a", "InService", true, idle()),
            ("i-b", "InService", true, idle()),
            ("i-c", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-a", "i-b", "i-c"]).await;
    let c = Controller {
        cfg: cfg(&[]),
        asg: w.aws.clone(),
        ec2: w.aws.clone(),
        recorders: Arc::new(TakesARecording::default()),
        jicofo: Arc::new(w.jicofo.clone()),
        state: w.state.clone(),
        metrics: w.metrics.clone(),
        holder: "t".into(),
    };
    let r = c.tick(NOW).await.unwrap();
    assert_eq!(r.plan.victims.len(), 2, "{}", r.plan.summary());
    // Re-probed right before the unprotect: both took a recording, neither is touched.
    assert!(
        w.aws.mutating_calls().is_empty(),
        "{:?}",
        w.aws.mutating_calls()
    );
}

#[tokio::test]
async fn unprotected_busy_recorders_are_protected_in_one_batch() {
    let w = world(
        0,
        10,
        3,
        &[
            ("i-a", "InService", false, busy()),
            ("i-b", "InService", false, busy()),
            ("i-c", "InService", true, idle()),
        ],
    );
    let _ = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert_eq!(
        w.aws.mutating_calls(),
        vec!["SetInstanceProtection(true,i-a,i-b)"]
    );
}

#[tokio::test]
async fn a_failed_protection_call_forbids_scale_in_this_tick() {
    let w = world(
        0,
        10,
        3,
        &[
            ("i-a", "InService", false, busy()),
            ("i-b", "InService", true, idle()),
            ("i-c", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-b", "i-c"]).await;
    w.aws.fail_once(
        "SetInstanceProtection",
        PortError::Throttled {
            op: "SetInstanceProtection",
            message: "Rate exceeded".into(),
        },
    );
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert_eq!(
        w.aws.mutating_calls(),
        vec!["SetInstanceProtection(true,i-a)"]
    );
    assert!(
        r.errors.iter().any(|e| e.contains("throttled")),
        "{:?}",
        r.errors
    );
    assert!(
        r.errors.iter().any(|e| e.contains("scale-in skipped")),
        "{:?}",
        r.errors
    );
}

#[tokio::test]
async fn jicofo_down_means_no_scale_in_and_a_raised_metric() {
    let w = world(
        0,
        10,
        3,
        &[
            ("i-a", "InService", true, idle()),
            ("i-b", "InService", true, idle()),
            ("i-c", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-a", "i-b", "i-c"]).await;
    w.jicofo.set(JICOFO, Err("connection refused".into()));
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert!(
        w.aws.mutating_calls().is_empty(),
        "{:?}",
        w.aws.mutating_calls()
    );
    assert_eq!(w.metrics.last("StatsUnavailable"), Some(1.0));
    assert!(r.plan.summary().contains("observation-incomplete"));
}

#[tokio::test]
async fn a_tick_that_finds_another_ticks_lease_does_not_act() {
    let w = world(1, 10, 1, &[("i-a", "InService", true, busy())]);
    let held = PoolState {
        lease: Some(Lease {
            holder: "other".into(),
            until: NOW + 30,
        }),
        ..PoolState::default()
    };
    w.state.save("pool", &held, None).await.unwrap();
    let r = controller(&w, cfg(&[]), "me").tick(NOW).await.unwrap();
    assert_eq!(
        r.outcome,
        Outcome::LeaseHeld {
            holder: "other".into()
        }
    );
    assert!(w.aws.mutating_calls().is_empty());
    // An expired lease does not block.
    let r = controller(&w, cfg(&[]), "me").tick(NOW + 31).await.unwrap();
    assert_eq!(r.outcome, Outcome::Acted);
    assert_eq!(w.aws.mutating_calls(), vec!["SetDesiredCapacity(2)"]);
    assert_eq!(
        w.state.load("pool").await.unwrap().state.lease,
        None,
        "lease released after acting"
    );
}

#[tokio::test]
async fn two_overlapping_ticks_act_once() {
    let w = world(1, 10, 1, &[("i-a", "InService", true, busy())]);
    let (a, b) = (controller(&w, cfg(&[]), "a"), controller(&w, cfg(&[]), "b"));
    let (ra, rb) = tokio::join!(a.tick(NOW), b.tick(NOW));
    let outcomes = [ra.unwrap().outcome, rb.unwrap().outcome];
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Acted).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(w.aws.mutating_calls(), vec!["SetDesiredCapacity(2)"]);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let w = world(1, 10, 1, &[("i-a", "InService", false, busy())]);
    let r = controller(&w, cfg(&[("DRY_RUN", "true")]), "t")
        .tick(NOW)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::DryRun);
    assert_eq!(r.plan.desired, Some(2));
    assert!(w.aws.mutating_calls().is_empty());
    assert_eq!(*w.state.writes.lock().unwrap(), 0);
}

#[tokio::test]
async fn held_busy_hook_is_heartbeated_and_drained_idle_one_is_continued() {
    let w = world(
        0,
        10,
        1,
        &[
            ("i-a", "InService", true, idle()),
            ("i-busy", "Terminating:Wait", false, busy()),
            ("i-idle", "Terminating:Wait", false, idle()),
        ],
    );
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    let calls = w.aws.mutating_calls();
    assert!(
        calls.contains(&"RecordLifecycleActionHeartbeat(i-busy)".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"CompleteLifecycleAction(CONTINUE,i-idle)".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"CreateTags(i-busy)".to_string()),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.contains("CONTINUE,i-busy")));
    // Both were asked to shut down gracefully: the busy one so no new recording lands,
    // the idle one right before its release.
    let sd = w.rec.shutdowns();
    assert!(
        sd.contains(&InstanceId::from("i-busy")) && sd.contains(&InstanceId::from("i-idle")),
        "{sd:?} {}",
        r.plan.summary()
    );
}

#[tokio::test]
async fn held_hook_already_completed_elsewhere_is_not_an_error() {
    let w = world(0, 10, 0, &[("i-idle", "Terminating:Wait", false, idle())]);
    w.aws.fail_once(
        "CompleteLifecycleAction",
        PortError::NoActiveAction {
            op: "CompleteLifecycleAction",
            message: "No active Lifecycle Action found with instance ID i-idle".into(),
        },
    );
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[tokio::test]
async fn retained_idle_instance_is_terminated_busy_one_kept() {
    let w = world(
        0,
        10,
        0,
        &[
            ("i-r1", "Terminating:Retained", false, idle()),
            ("i-r2", "Terminating:Retained", false, busy()),
        ],
    );
    let _ = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    let calls = w.aws.mutating_calls();
    assert!(
        calls.contains(&"TerminateInstanceInAutoScalingGroup(i-r1,false)".to_string()),
        "{calls:?}"
    );
    assert!(!calls
        .iter()
        .any(|c| c.contains("TerminateInstanceInAutoScalingGroup(i-r2")));
}

#[tokio::test]
async fn hung_and_garbage_recorders_count_as_unknown_and_are_protected() {
    let w = world(
        0,
        10,
        3,
        &[
            (
                "i-a",
                "InService",
                false,
                Probe::Failed(ProbeFailure::Timeout),
            ),
            (
                "i-b",
                "InService",
                false,
                Probe::Failed(ProbeFailure::Garbage("x".into())),
            ),
            ("i-c", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-c"]).await;
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert_eq!(r.plan.counts.unknown, 2);
    assert_eq!(
        w.aws.mutating_calls(),
        vec!["SetInstanceProtection(true,i-a,i-b)"]
    );
    assert_eq!(r.plan.spare.target, 1);
}

/// Issue 14.4: a group whose safety configuration drifted (here: the terminate hook is
/// another tool's, not ours by name; DefaultResult CONTINUE; no retain policy) gets no
/// scale-in and no replacement, and the ConfigDrift metric says how many drifts.
#[tokio::test]
async fn configuration_drift_forbids_scale_in_and_replacement_and_raises_a_metric() {
    type Drift = fn(&mut GroupSnapshot);
    let drifts: [(&str, Drift, f64); 3] = [
        (
            "another tool's hook only",
            |g| g.hooks[0].name = "someone-elses-hook".into(),
            1.0,
        ),
        (
            "DefaultResult CONTINUE",
            |g| g.hooks[0].default_result = "CONTINUE".into(),
            1.0,
        ),
        ("no retain policy", |g| g.retain_on_abandon = false, 1.0),
    ];
    for (what, drift, count) in drifts {
        let w = world(
            0,
            10,
            4,
            &[
                ("i-a", "InService", true, busy()),
                ("i-b", "InService", true, idle()),
                ("i-c", "InService", true, idle()),
                ("i-d", "InService", true, status(BusyStatus::Expired)),
            ],
        );
        drift(&mut w.aws.group.lock().unwrap());
        idle_for_an_hour(&w, &["i-b", "i-c"]).await;
        let c = cfg(&[("UNHEALTHY_GRACE_S", "0")]);
        let r = controller(&w, c, "t").tick(NOW).await.unwrap();
        let calls = w.aws.mutating_calls();
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("SetInstanceProtection(false")
                    || c.starts_with("SetDesiredCapacity")
                    || c.starts_with("TerminateInstanceInAutoScalingGroup")),
            "{what}: {calls:?} {}",
            r.plan.summary()
        );
        assert!(
            r.plan.summary().contains("config-drift"),
            "{what}: {}",
            r.plan.summary()
        );
        assert_eq!(w.metrics.last("ConfigDrift"), Some(count), "{what}");
        assert!(
            r.plan.warnings.iter().any(|w| w.contains("fix")),
            "{what}: {:?}",
            r.plan.warnings
        );
    }
    // The same group without drift scales in and replaces: the test is not vacuous.
    let w = world(
        0,
        10,
        4,
        &[
            ("i-a", "InService", true, busy()),
            ("i-b", "InService", true, idle()),
            ("i-c", "InService", true, idle()),
            ("i-d", "InService", true, idle()),
        ],
    );
    idle_for_an_hour(&w, &["i-b", "i-c", "i-d"]).await;
    controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert!(w
        .aws
        .mutating_calls()
        .iter()
        .any(|c| c.starts_with("SetDesiredCapacity")));
    assert_eq!(w.metrics.last("ConfigDrift"), Some(0.0));
}

/// Issue 14.2: the sweep CONTINUEs an idle held recorder only after its drain answered
/// 2xx; a failed drain holds it (heartbeat), tags nothing and raises DrainFailed.
#[tokio::test]
async fn a_held_idle_recorder_whose_drain_fails_is_heartbeated_not_released() {
    let w = world(0, 10, 0, &[("i-idle", "Terminating:Wait", false, idle())]);
    w.rec
        .drain_failures
        .lock()
        .unwrap()
        .insert("i-idle".into(), ProbeFailure::Timeout);
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    let calls = w.aws.mutating_calls();
    assert!(!calls.iter().any(|c| c.contains("CONTINUE")), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("CreateTags")),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"RecordLifecycleActionHeartbeat(i-idle)".to_string()),
        "{calls:?}"
    );
    assert_eq!(r.drain_failed, vec![InstanceId::from("i-idle")]);
    assert_eq!(w.metrics.last("DrainFailed"), Some(1.0));
    // Once the drain answers, the next tick releases it.
    w.rec.drain_failures.lock().unwrap().clear();
    controller(&w, cfg(&[]), "t").tick(NOW + 60).await.unwrap();
    assert!(w
        .aws
        .mutating_calls()
        .contains(&"CompleteLifecycleAction(CONTINUE,i-idle)".to_string()));
    assert_eq!(w.metrics.last("DrainFailed"), Some(0.0));
}

/// Issue 14.3: recorders that time out or answer garbage are unknown, not broken: never
/// replaced, however long; one that answers UNHEALTHY is, unless too many are unknown.
#[tokio::test]
async fn unknown_recorders_are_never_replaced_and_many_unknowns_stop_all_replacement() {
    let timeout = || Probe::Failed(ProbeFailure::Timeout);
    let w = world(
        0,
        10,
        5,
        &[
            ("i-t", "InService", true, timeout()),
            (
                "i-g",
                "InService",
                true,
                Probe::Failed(ProbeFailure::Garbage("x".into())),
            ),
            ("i-u", "InService", true, status(BusyStatus::Expired)),
            ("i-a", "InService", true, busy()),
            ("i-b", "InService", true, busy()),
        ],
    );
    // Every recorder answered before (none is booting): the two are unreachable now.
    idle_for_an_hour(&w, &[]).await;
    let c = || cfg(&[("UNHEALTHY_GRACE_S", "0"), ("REPLACE_MAX_PER_TICK", "5")]);
    // 2 of 5 unknown (40 %): above the 20 % default, nothing is replaced.
    let r = controller(&w, c(), "t").tick(NOW).await.unwrap();
    assert!(r.plan.replace.is_empty(), "{}", r.plan.summary());
    assert!(!w
        .aws
        .mutating_calls()
        .iter()
        .any(|c| c.starts_with("Terminate")));
    // With the share allowed, only the EXPIRED one is replaced, never the unknown ones.
    let r = controller(
        &w,
        cfg(&[
            ("UNHEALTHY_GRACE_S", "0"),
            ("REPLACE_MAX_PER_TICK", "5"),
            ("UNKNOWN_MAX_SHARE", "1"),
        ]),
        "t",
    )
    .tick(NOW + 3600)
    .await
    .unwrap();
    let replaced: Vec<_> = r
        .plan
        .replace
        .iter()
        .map(|x| x.instance.0.clone())
        .collect();
    assert_eq!(replaced, vec!["i-u".to_string()], "{}", r.plan.summary());
}

/// Issue 14.6: a heartbeat AWS did not accept is not recorded in the state, so the next
/// tick sends it again instead of believing in it.
#[tokio::test]
async fn a_failed_heartbeat_is_not_recorded_and_is_sent_again_next_tick() {
    let w = world(0, 10, 0, &[("i-busy", "Terminating:Wait", false, busy())]);
    w.aws.fail_once(
        "RecordLifecycleActionHeartbeat",
        PortError::Throttled {
            op: "RecordLifecycleActionHeartbeat",
            message: "Rate exceeded".into(),
        },
    );
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    assert!(r.heartbeats_sent.is_empty());
    let held = w.state.load("pool").await.unwrap().state.held;
    assert_eq!(held[&InstanceId::from("i-busy")].last_heartbeat, None);
    // Heartbeats go first in the act phase, before any slower call.
    assert!(w.aws.mutating_calls()[0].starts_with("RecordLifecycleActionHeartbeat"));
    let r = controller(&w, cfg(&[]), "t").tick(NOW + 60).await.unwrap();
    assert_eq!(r.heartbeats_sent, vec![InstanceId::from("i-busy")]);
    let held = w.state.load("pool").await.unwrap().state.held;
    assert_eq!(
        held[&InstanceId::from("i-busy")].last_heartbeat,
        Some(NOW + 60)
    );
}

/// Issue 14.7: a lease whose end lies beyond now + one tick budget was written by a clock
/// in the future (or is corrupt): taken over, not obeyed for hours.
#[tokio::test]
async fn a_lease_from_the_future_is_taken_over() {
    let w = world(1, 10, 1, &[("i-a", "InService", true, busy())]);
    let bad = PoolState {
        lease: Some(Lease {
            holder: "a-clock-in-2030".into(),
            until: NOW + 86_400,
        }),
        ..PoolState::default()
    };
    w.state.save("pool", &bad, None).await.unwrap();
    let r = controller(&w, cfg(&[]), "me").tick(NOW).await.unwrap();
    assert_eq!(r.outcome, Outcome::Acted);
    assert_eq!(w.aws.mutating_calls(), vec!["SetDesiredCapacity(2)"]);
}

/// Issue 14.10: counters from Jicofo are another service's numbers: two shards near
/// u64::MAX are summed saturating (a debug build panics on overflow).
#[tokio::test]
async fn jicofo_counters_near_the_limit_are_summed_saturating() {
    let w = world(1, 10, 1, &[("i-a", "InService", true, busy())]);
    let huge = JicofoStats {
        jibri_count: Some(u64::MAX),
        jibri_available: Some(u64::MAX),
        conferences: u64::MAX,
        participants: u64::MAX,
        recording_active: u64::MAX,
        live_streaming_active: u64::MAX,
        jibri_failures_total: u64::MAX,
        conferences_created: u64::MAX,
        bridges: None,
    };
    w.jicofo.set(JICOFO, Ok(huge.clone()));
    w.jicofo.set("http://jicofo-2.test/stats", Ok(huge));
    let c = cfg(&[(
        "JICOFO_STATS_URLS",
        "http://jicofo.test/stats,http://jicofo-2.test/stats",
    )]);
    let r = controller(&w, c.clone(), "t").tick(NOW).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    controller(&w, c, "t").tick(NOW + 60).await.unwrap();
}

/// Issue 14.11: AWS runs lifecycle hooks only for terminations Auto Scaling starts; a
/// direct EC2 `TerminateInstances` skips the guard. While a recorder records or uploads
/// its EC2 termination protection is on, and it is cleared once the recorder is idle: one
/// call per change, none in steady state.
#[tokio::test]
async fn ec2_termination_protection_follows_recording_and_uploading() {
    let w = world(
        0,
        10,
        3,
        &[
            ("i-rec", "InService", true, busy()),
            ("i-up", "InService", true, idle()),
            ("i-idle", "InService", true, idle()),
        ],
    );
    w.aws
        .ec2
        .lock()
        .unwrap()
        .get_mut(&InstanceId::from("i-up"))
        .unwrap()
        .upload_pending = true;
    idle_for_an_hour(&w, &["i-idle"]).await;
    let on = || cfg(&[("EC2_TERMINATION_PROTECTION", "on"), ("SPARE_FIXED", "1")]);
    controller(&w, on(), "t").tick(NOW).await.unwrap();
    let set = |w: &World| {
        w.aws
            .mutating_calls()
            .into_iter()
            .filter(|c| c.starts_with("ModifyInstanceAttribute"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        set(&w),
        vec![
            "ModifyInstanceAttribute(DisableApiTermination=true,i-rec)",
            "ModifyInstanceAttribute(DisableApiTermination=true,i-up)"
        ]
    );
    // Steady: nothing again.
    controller(&w, on(), "t").tick(NOW + 60).await.unwrap();
    assert_eq!(set(&w).len(), 2);
    // The recording ends: protection off; an unknown recorder keeps what it had.
    w.rec.set("i-rec", idle());
    w.rec.set("i-up", Probe::Failed(ProbeFailure::Timeout));
    controller(&w, on(), "t").tick(NOW + 120).await.unwrap();
    assert_eq!(
        set(&w)[2..],
        ["ModifyInstanceAttribute(DisableApiTermination=false,i-rec)".to_string()]
    );
    // A failed call is not recorded: tried again next tick.
    w.rec.set("i-idle", busy());
    w.aws.fail_once(
        "ModifyInstanceAttribute",
        PortError::Throttled {
            op: "ModifyInstanceAttribute",
            message: "Rate exceeded".into(),
        },
    );
    controller(&w, on(), "t").tick(NOW + 180).await.unwrap();
    controller(&w, on(), "t").tick(NOW + 240).await.unwrap();
    let last: Vec<_> = set(&w)[3..].to_vec();
    assert_eq!(
        last,
        vec![
            "ModifyInstanceAttribute(DisableApiTermination=true,i-idle)".to_string(),
            "ModifyInstanceAttribute(DisableApiTermination=true,i-idle)".to_string()
        ]
    );
}

/// Issue 14.2 (found by the fault matrix, row 4b): the internal API refused at connect
/// while the health endpoint answers is the most common misconfiguration (Jibri binds its
/// internal API to 127.0.0.1): never taken for an exited Jibri, never released, and
/// raised as DrainFailed.
#[tokio::test]
async fn a_drain_refused_while_health_answers_is_a_drain_failure() {
    let w = world(0, 10, 0, &[("i-idle", "Terminating:Wait", false, idle())]);
    w.rec
        .drain_failures
        .lock()
        .unwrap()
        .insert("i-idle".into(), ProbeFailure::Refused);
    let r = controller(&w, cfg(&[]), "t").tick(NOW).await.unwrap();
    let calls = w.aws.mutating_calls();
    assert!(!calls.iter().any(|c| c.contains("CONTINUE")), "{calls:?}");
    assert_eq!(r.drain_failed, vec![InstanceId::from("i-idle")]);
    assert_eq!(w.metrics.last("DrainFailed"), Some(1.0));
}
