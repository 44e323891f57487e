//! The pool controller and the termination guard end to end: real AWS SDK adapters against
//! the local AWS test bed (moto + lifecycle extension), real HTTP against the Jitsi
//! emulator. One moto account and one emulator per test.

mod common;

use common::bed::{Bed, GROUP};
use common::*;
use jibri_autoscaler::controller::{Outcome, TickReport};
use jibri_autoscaler::events::parse_lifecycle;
use jibri_autoscaler::guard::GuardOutcome;
use jitsi_emulator::FaultKind;
use std::collections::BTreeMap;

#[tokio::test]
async fn scale_out_on_demand_launches_at_once() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[("SPARE_FIXED", "2")],
    )
    .await;
    for id in bed.ids().await {
        bed.emu.start_recording(&id).unwrap();
    }
    let r = bed.tick_ok().await;
    assert_eq!(r.outcome, Outcome::Acted, "{}", r.plan.summary());
    assert_eq!(r.calls, vec!["SetDesiredCapacity(4)"]);
    assert_eq!(desired(&bed.asg, "jibri-pool").await, 4);
    assert_eq!(bed.ids().await.len(), 4);
}

#[tokio::test]
async fn scale_in_removes_idle_recorders_only_and_the_guard_releases_them() {
    let bed = Bed::new(
        GroupSpec {
            desired: 4,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let ids = bed.ids().await;
    bed.emu.start_recording(&ids[0]).unwrap();
    let first = bed.event_count().await;
    let r = bed.tick_ok().await;
    assert_eq!(r.plan.victims.len(), 2, "{}", r.plan.summary());
    assert_eq!(desired(&bed.asg, "jibri-pool").await, 2);
    assert!(
        !r.plan.victims.iter().any(|v| v.0 == ids[0]),
        "the busy recorder was chosen"
    );
    for v in &r.plan.victims {
        assert_eq!(bed.state_of(&v.0).await, "Terminating:Wait");
    }
    // Delivered by hand, without the bed's sync that removes a terminated instance's
    // recorder from the emulator: the drain count below is read, never defaulted.
    let guard = bed.guard();
    let now = bed.control.now().await;
    let mut outcomes = Vec::new();
    for e in bed.lifecycle_events(first).await {
        for i in jibri_autoscaler::events::parse_lifecycle(&e).unwrap() {
            outcomes.push(guard.handle(&i, now).await.unwrap());
        }
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, GuardOutcome::Continued { .. }))
            .count(),
        2,
        "{outcomes:?}"
    );
    for v in &r.plan.victims {
        assert_eq!(bed.state_of(&v.0).await, "gone");
        assert_eq!(ec2_state(&bed.ec2, &v.0).await, "terminated");
        let calls = bed
            .emu
            .calls(&v.0)
            .unwrap_or_else(|e| panic!("{}: the emulator forgot the recorder: {e}", v.0));
        assert_eq!(calls.graceful_shutdown, 1, "{}", v.0);
    }
    assert_eq!(bed.state_of(&ids[0]).await, "InService");
    assert_eq!(
        bed.emu.recorder(&ids[0]).unwrap().status,
        jitsi_emulator::BusyStatus::Busy
    );
}

#[tokio::test]
async fn steady_state_makes_zero_mutating_calls_on_the_test_bed() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    bed.emu.start_recording(&bed.ids().await[0]).unwrap();
    let _ = bed.tick_ok().await; // records idle-since and the busy baseline
    let r = bed.tick_ok().await;
    assert_eq!(r.outcome, Outcome::Steady, "{}", r.plan.summary());
    assert!(r.calls.is_empty(), "{:?}", r.calls);
}

#[tokio::test]
async fn protection_is_reconciled_every_tick() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            protect_new: false,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let ids = bed.ids().await;
    bed.emu.start_recording(&ids[0]).unwrap();
    bed.emu.start_recording(&ids[1]).unwrap();
    let r = bed.tick_ok().await;
    assert!(
        r.calls[0].starts_with("SetInstanceProtection(true"),
        "{:?}",
        r.calls
    );
    for (id, _, protected) in instances(&bed.asg, "jibri-pool").await {
        assert!(protected || !ids.contains(&id), "{id} unprotected");
    }
}

#[tokio::test]
async fn a_hung_recorder_costs_one_timeout_and_is_treated_as_busy() {
    let bed = Bed::new(
        GroupSpec {
            desired: 3,
            ..GroupSpec::default()
        },
        &[("PROBE_TIMEOUT_MS", "300"), ("IDLE_GRACE_S", "3600")],
    )
    .await;
    let ids = bed.ids().await;
    let _ = bed.tick_ok().await; // every Jibri answered once: they are running, not booting
    bed.emu
        .set_recorder_fault(&ids[0], FaultKind::Hang)
        .unwrap();
    bed.emu
        .set_recorder_fault(&ids[1], FaultKind::Garbage)
        .unwrap();
    let t = std::time::Instant::now();
    let r = bed.tick_ok().await;
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "tick took {:?}",
        t.elapsed()
    );
    assert_eq!(r.plan.counts.unknown, 2, "{}", r.plan.summary());
    assert!(!r
        .plan
        .victims
        .iter()
        .any(|v| v.0 == ids[0] || v.0 == ids[1]));
}

#[tokio::test]
async fn jicofo_down_allows_no_scale_in() {
    let bed = Bed::new(
        GroupSpec {
            desired: 4,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    bed.emu
        .set_jicofo_fault("default", FaultKind::Refused)
        .unwrap();
    let r = bed.tick_ok().await;
    assert!(r.plan.victims.is_empty(), "{}", r.plan.summary());
    assert_eq!(desired(&bed.asg, "jibri-pool").await, 4);
    assert_eq!(bed.metrics.last("StatsUnavailable"), Some(1.0));
}

#[tokio::test]
async fn duplicate_invocations_act_once_through_the_s3_lease() {
    let bed = Bed::new(
        GroupSpec {
            desired: 1,
            ..GroupSpec::default()
        },
        &[("SPARE_FIXED", "2")],
    )
    .await;
    bed.emu.start_recording(&bed.ids().await[0]).unwrap();
    let now = bed.control.now().await;
    let (a, b) = (bed.controller("a"), bed.controller("b"));
    let (ra, rb) = tokio::join!(a.tick(now), b.tick(now));
    let outcomes = [ra.unwrap().outcome, rb.unwrap().outcome];
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Acted).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(desired(&bed.asg, "jibri-pool").await, 3);
}

#[tokio::test]
async fn held_busy_hook_is_swept_until_the_recording_and_finalize_end() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let ids = bed.ids().await;
    let victim = ids[0].clone();
    bed.emu.start_recording(&victim).unwrap();
    let first = bed.event_count().await;
    // A manual termination: protection does not apply, the terminate hook does.
    bed.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&victim)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    let out = bed.deliver_events(first).await;
    assert!(matches!(&out[..], [GuardOutcome::Held { .. }]), "{out:?}");
    assert_eq!(bed.emu.calls(&victim).unwrap().graceful_shutdown, 1);
    assert_eq!(bed.state_of(&victim).await, "Terminating:Wait");
    // Minutes pass; the controller's sweep keeps it alive with heartbeats.
    for _ in 0..3 {
        bed.control.advance(400.0).await;
        let r = bed.tick_ok().await;
        assert!(
            !r.calls
                .iter()
                .any(|c| c.contains(&format!("CONTINUE, {victim}"))),
            "{:?}",
            r.calls
        );
        assert_eq!(bed.state_of(&victim).await, "Terminating:Wait");
    }
    // The meeting ends; finalize runs (still BUSY), then the drained Jibri exits.
    bed.emu
        .set_recorder(
            &victim,
            jitsi_emulator::RecorderUpdate {
                finalize_ms: Some(60_000),
                ..Default::default()
            },
        )
        .unwrap();
    bed.emu.stop_recording(&victim).unwrap();
    let r = bed.tick_ok().await;
    assert_eq!(
        bed.state_of(&victim).await,
        "Terminating:Wait",
        "terminated during finalize: {:?}",
        r.calls
    );
    bed.emu.finish_finalize(&victim).unwrap();
    assert!(
        bed.emu.recorder(&victim).unwrap().gone,
        "a drained Jibri exits after finalize"
    );
    let r = bed.tick_ok().await;
    assert!(
        r.calls
            .iter()
            .any(|c| c == &format!("CompleteLifecycleAction(CONTINUE, {victim})")),
        "{:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&victim).await, "gone");
}

#[tokio::test]
async fn retained_instance_is_terminated_once_its_recording_is_done() {
    let bed = Bed::new(
        GroupSpec {
            desired: 1,
            ..GroupSpec::default()
        },
        &[("MAX_HOOK_HOLD_S", "600")],
    )
    .await;
    let id = bed.ids().await[0].clone();
    bed.emu.start_recording(&id).unwrap();
    let first = bed.event_count().await;
    bed.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&id)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    bed.deliver_events(first).await;
    bed.control.advance(601.0).await;
    let r = bed.tick_ok().await;
    assert!(
        r.calls.iter().any(|c| c.contains("ABANDON")),
        "{:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&id).await, "Terminating:Retained");
    let r = bed.tick_ok().await;
    assert!(
        !r.calls
            .iter()
            .any(|c| c.contains(&format!("TerminateInstanceInAutoScalingGroup({id}"))),
        "{:?}",
        r.calls
    );
    bed.emu.stop_recording(&id).unwrap();
    let r = bed.tick_ok().await;
    assert!(
        r.calls
            .iter()
            .any(|c| c.starts_with(&format!("TerminateInstanceInAutoScalingGroup({id}"))),
        "{:?}",
        r.calls
    );
    assert_eq!(ec2_state(&bed.ec2, &id).await, "terminated");
}

/// Every termination path AWS has goes through the terminate hook; the guard holds a busy
/// recorder on each of them. (Instance refresh, AZ rebalancing and max instance lifetime
/// are not modelled by the test bed; on AWS they too enter `Terminating:Wait`.)
#[tokio::test]
async fn every_termination_path_holds_a_busy_recorder() {
    let bed = Bed::new(
        GroupSpec {
            desired: 4,
            protect_new: false,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let ids = bed.ids().await;
    for id in &ids {
        bed.emu.start_recording(id).unwrap();
    }
    let mut from = bed.event_count().await;
    // 1. Manual termination.
    bed.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&ids[1])
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    // 2. Health replacement (a replacement launches).
    bed.asg
        .set_instance_health()
        .instance_id(&ids[2])
        .health_status("Unhealthy")
        .send()
        .await
        .unwrap();
    // 3. A desired-capacity drop, steered to ids[3] by protecting every other instance.
    let others: Vec<String> = instances(&bed.asg, "jibri-pool")
        .await
        .into_iter()
        .filter(|i| i.1 == "InService" && i.0 != ids[3])
        .map(|i| i.0)
        .collect();
    bed.asg
        .set_instance_protection()
        .auto_scaling_group_name("jibri-pool")
        .set_instance_ids(Some(others))
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    let d = desired(&bed.asg, "jibri-pool").await;
    bed.asg
        .set_desired_capacity()
        .auto_scaling_group_name("jibri-pool")
        .desired_capacity(d - 1)
        .send()
        .await
        .unwrap();
    let outcomes = bed.deliver_events(from).await;
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, GuardOutcome::Held { .. })),
        "{outcomes:?}"
    );
    let insts = instances(&bed.asg, "jibri-pool").await;
    let held: Vec<_> = insts
        .iter()
        .filter(|i| i.1 == "Terminating:Wait")
        .map(|i| i.0.clone())
        .collect();
    assert_eq!(held.len(), 3, "{insts:?}");
    for id in &held {
        assert_eq!(ec2_state(&bed.ec2, id).await, "running");
        assert_eq!(
            bed.emu.recorder(id).unwrap().status,
            jitsi_emulator::BusyStatus::Busy
        );
        assert!(
            bed.emu.recorder(id).unwrap().exit_pending,
            "drained: no new recording can land"
        );
    }
    // Duplicate delivery of the same events: still success, still held.
    let again = bed.deliver_events(from).await;
    assert!(
        again.iter().all(|o| matches!(o, GuardOutcome::Held { .. })),
        "{again:?}"
    );
    from = bed.event_count().await;
    let _ = from;
}

/// A tick whose only failed calls are the drain requests to the hung recorder `hung`
/// (held, counted as DrainFailed).
async fn tick_failing_only_to_drain(bed: &Bed, hung: &str) -> TickReport {
    let r = bed.tick().await;
    let expected = format!("gracefulShutdown({hung}): timeout");
    assert!(r.errors.iter().all(|e| e == &expected), "{:?}", r.errors);
    assert!(
        r.drain_failed.iter().all(|i| i.0 == hung),
        "{:?}",
        r.drain_failed
    );
    r
}

#[tokio::test]
async fn an_unreachable_recorder_is_never_released_and_a_flapping_one_waits_for_a_clean_idle() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let ids = bed.ids().await;
    bed.emu
        .set_recorder_fault(&ids[0], FaultKind::Hang)
        .unwrap();
    bed.emu.start_recording(&ids[1]).unwrap();
    let from = bed.event_count().await;
    for id in &ids {
        bed.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(id)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .unwrap();
    }
    let out = bed.deliver_events(from).await;
    assert!(
        out.iter().all(|o| matches!(o, GuardOutcome::Held { .. })),
        "{out:?}"
    );
    // Flapping: the busy one goes idle, busy again, then idle for good.
    bed.emu.stop_recording(&ids[1]).unwrap();
    bed.emu
        .set_recorder_fault(&ids[1], FaultKind::Http500)
        .unwrap();
    let r = tick_failing_only_to_drain(&bed, &ids[0]).await;
    assert!(
        !r.calls.iter().any(|c| c.contains("CONTINUE")),
        "{:?}",
        r.calls
    );
    bed.emu
        .set_recorder_fault(&ids[1], FaultKind::None)
        .unwrap();
    let r = tick_failing_only_to_drain(&bed, &ids[0]).await;
    assert!(
        r.calls
            .iter()
            .any(|c| c == &format!("CompleteLifecycleAction(CONTINUE, {})", ids[1])),
        "{:?}",
        r.calls
    );
    assert!(
        !r.calls
            .iter()
            .any(|c| c == &format!("CompleteLifecycleAction(CONTINUE, {})", ids[0])),
        "{:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&ids[0]).await, "Terminating:Wait");
}

#[tokio::test]
async fn a_graceful_shutdown_undone_by_a_jibri_restart_is_drained_again() {
    let bed = Bed::new(
        GroupSpec {
            desired: 1,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let id = bed.ids().await[0].clone();
    bed.emu.start_recording(&id).unwrap();
    let from = bed.event_count().await;
    bed.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&id)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    bed.deliver_events(from).await;
    // Jibri restarts (crash loop, operator): busy again with a new recording, no shutdown pending.
    bed.emu.restart(&id).unwrap();
    bed.emu.start_recording(&id).unwrap();
    assert!(!bed.emu.recorder(&id).unwrap().exit_pending);
    let r = bed.tick_ok().await;
    assert!(
        !r.calls.iter().any(|c| c.contains("CONTINUE")),
        "{:?}",
        r.calls
    );
    // Its drain tag is already set, but it is a live BUSY Jibri: held and heartbeated.
    assert_eq!(bed.state_of(&id).await, "Terminating:Wait");
    bed.emu.stop_recording(&id).unwrap();
    let r = bed.tick_ok().await;
    // Idle again: asked once more to shut down before the release.
    assert!(
        r.calls
            .iter()
            .any(|c| c == &format!("gracefulShutdown({id})")),
        "{:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&id).await, "gone");
}

/// The acceptance scenario: recordings run on every recorder while the group is forced to
/// 0. No recording is cut; each instance terminates only after its recording and finalize
/// ended; no hook times out into a termination.
#[tokio::test]
async fn forcing_the_group_to_zero_cuts_no_recording() {
    let bed = Bed::new(
        GroupSpec {
            desired: 4,
            protect_new: false,
            min: 0,
            ..GroupSpec::default()
        },
        // With EC2 termination protection on the recording recorders (the default in
        // production): Auto Scaling's own terminations are not blocked by it.
        &[("SPARE_FIXED", "0"), ("EC2_TERMINATION_PROTECTION", "on")],
    )
    .await;
    let ids = bed.ids().await;
    for id in &ids {
        bed.emu
            .set_recorder(
                id,
                jitsi_emulator::RecorderUpdate {
                    finalize_ms: Some(3_600_000),
                    ..Default::default()
                },
            )
            .unwrap();
        bed.emu.start_recording(id).unwrap();
    }
    let failures_before = bed.emu.shard("default").unwrap();
    let from = bed.event_count().await;
    force_to_zero(&bed.asg, GROUP).await;
    let out = bed.deliver_events(from).await;
    assert_eq!(out.len(), 4);
    assert!(
        out.iter().all(|o| matches!(o, GuardOutcome::Held { .. })),
        "{out:?}"
    );
    // The recordings end one by one over hours; the hooks' heartbeat timeout is 900 s,
    // the controller ticks every 5 minutes of test-bed time.
    let mut ended: BTreeMap<String, bool> = BTreeMap::new();
    for step in 0..40 {
        bed.control.advance(300.0).await;
        if step % 6 == 5 {
            if let Some(id) = ids.iter().find(|id| !ended.contains_key(*id)) {
                bed.emu.stop_recording(id).unwrap(); // finalize begins (BUSY)
                ended.insert(id.clone(), false);
            }
        }
        if step % 6 == 0 {
            for (id, done) in ended.iter_mut().filter(|(_, d)| !**d) {
                assert_ne!(
                    bed.state_of(id).await,
                    "gone",
                    "{id} terminated before its finalize ended"
                );
                bed.emu.finish_finalize(id).unwrap();
                *done = true;
            }
        }
        let _ = bed.tick_ok().await;
        for id in &ids {
            let state = bed.state_of(id).await;
            // DefaultResult is ABANDON with retain: a hook that timed out would show here.
            assert_ne!(state, "Terminating:Retained", "{id}'s hook timed out");
            if state == "gone" {
                assert_eq!(
                    ended.get(id),
                    Some(&true),
                    "{id} terminated while recording or finalizing"
                );
            }
        }
    }
    for id in &ids {
        assert_eq!(bed.state_of(id).await, "gone", "{id} still held at the end");
        assert_eq!(ec2_state(&bed.ec2, id).await, "terminated");
    }
    // No recording was cut: Jicofo's failure counters did not move.
    let after = bed.emu.shard("default").unwrap();
    assert_eq!(
        after.total_recording_failures,
        failures_before.total_recording_failures
    );
    assert_eq!(
        after.no_instance_failures,
        failures_before.no_instance_failures
    );
    bed.assert_no_action_left().await;
}

/// A launch hook, if configured, is completed CONTINUE once the recorder reports healthy
/// (by the guard on the event, or by the controller's sweep later), ABANDON after
/// LAUNCH_MAX_WAIT_S.
#[tokio::test]
async fn launch_hook_is_continued_once_the_recorder_is_healthy_and_abandoned_if_never() {
    let hooks = vec![
        (
            TERMINATE_HOOK,
            "autoscaling:EC2_INSTANCE_TERMINATING",
            900,
            "ABANDON",
        ),
        (
            "jibri-autoscaler-launch",
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            900,
            "ABANDON",
        ),
    ];
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            hooks,
            ..GroupSpec::default()
        },
        &[("LAUNCH_MAX_WAIT_S", "600")],
    )
    .await;
    let ids = bed.ids().await;
    for id in &ids {
        assert_eq!(bed.state_of(id).await, "Pending:Wait");
    }
    // One Jibri is up when the event arrives; the other comes up UNHEALTHY and stays so.
    bed.emu
        .set_recorder(
            &ids[1],
            jitsi_emulator::RecorderUpdate {
                health: Some(jitsi_emulator::HealthStatus::Unhealthy),
                ..Default::default()
            },
        )
        .unwrap();
    let out = bed.guard();
    let events = bed.control.events().await;
    let now = bed.control.now().await;
    let mut outcomes = Vec::new();
    for e in events.iter().filter(|e| e["kind"] == "lifecycle") {
        for i in parse_lifecycle(&e["event"]).unwrap() {
            outcomes.push(out.handle(&i, now).await.unwrap());
        }
    }
    assert!(
        outcomes.contains(&GuardOutcome::Continued {
            instance: ids[0].clone()
        }),
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(
            |o| matches!(o, GuardOutcome::LaunchPending { instance, .. } if *instance == ids[1])
        ),
        "{outcomes:?}"
    );
    assert_eq!(bed.state_of(&ids[0]).await, "InService");
    // The controller's sweep abandons the unhealthy one (it answers and is not recording)
    // after LAUNCH_MAX_WAIT_S; the test bed terminates it and launches a replacement.
    // Before LAUNCH_MAX_WAIT_S the waiting action is only heartbeated (so the hook's own
    // timeout never decides), never completed.
    let r = bed.tick_ok().await;
    let on_it: Vec<&String> = r.calls.iter().filter(|c| c.contains(&ids[1])).collect();
    assert_eq!(
        on_it,
        vec![&format!("RecordLifecycleActionHeartbeat({})", ids[1])],
        "{:?}",
        r.calls
    );
    bed.control.advance(601.0).await;
    let r = bed.tick_ok().await;
    assert!(
        r.calls
            .contains(&format!("CompleteLifecycleAction(ABANDON, {})", ids[1])),
        "{:?}",
        r.calls
    );
    assert_eq!(ec2_state(&bed.ec2, &ids[1]).await, "terminated");
}

/// Issue 14.10: the state object read is size-capped. One grown past the cap (a prefix
/// shared with recordings, a bad write) is not read into the function: the tick starts
/// from an empty state (rebuilt from observation) and writes a real one back.
#[tokio::test]
async fn an_oversized_state_object_is_not_read_and_is_replaced() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let bucket = bed.vars["STATE_BUCKET"].clone();
    let key = "jibri-autoscaler/state/jibri-pool.json";
    // A valid state (a lease another tick holds for 10 more seconds) padded past the cap:
    // read, it would stop this tick; not read, the tick goes on.
    let now = bed.control.now().await;
    let mut huge = format!(r#"{{"lease":{{"holder":"other","until":{}}}}}"#, now + 10).into_bytes();
    huge.resize((jibri_autoscaler::aws::MAX_STATE_BYTES + 1) as usize, b' ');
    bed.s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(huge.into())
        .send()
        .await
        .unwrap();
    let r = bed.tick_ok().await;
    assert!(
        !matches!(r.outcome, Outcome::LeaseHeld { .. }),
        "{:?}",
        r.outcome
    );
    let head = bed
        .s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert!(
        head.content_length().unwrap_or(i64::MAX) < 1 << 20,
        "the oversized object was replaced by a real state: {:?}",
        head.content_length()
    );
}
