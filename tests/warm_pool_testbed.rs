//! Warm pools end to end: the product's AWS adapters (`put_warm_pool`,
//! `describe_warm_pool`), the controller and the termination guard against the local AWS
//! test bed (moto + lifecycle extension, which models EC2 Auto Scaling warm pools), with
//! real HTTP to an in-process Jitsi emulator. One moto account and one emulator per test.
//!
//! Recorders: an instance's Jibri runs while its instance is in the group (`InService`,
//! `Pending:Wait`); an instance that settles in the pool (`Warmed:Stopped`) is stopped, so
//! its Jibri is gone. A warm instance still on its way in (`Warmed:Pending:Wait`) keeps
//! whatever Jibri the test gave it. The
//! Jibri URL templates are production-shaped (`{private_ip}`: the test bed's instances get
//! 127.0.0.0/8 addresses, where the emulator listens while each Jibri runs).
//!
//! Where the test bed differs from AWS in ways that matter here (testbed/aws/README.md,
//! "Warm pools"):
//! - A scale-in victim returns to the pool only while the pool has room (fewer counted
//!   instances than its size); the product's own PutWarmPool (MinSize =
//!   MaxGroupPreparedCapacity = size) keeps the pool full, so the scale-in test below
//!   configures the pool by hand with room for the returning instance.
//! - `Warmed:Pending:Proceed` is instantaneous: CONTINUE lands the instance in
//!   `Warmed:Stopped` at once.

mod common;

use common::bed::{Bed, GROUP};
use common::*;
use jibri_autoscaler::controller::{Outcome, TickReport};
use jibri_autoscaler::core::plan::HookTransition;
use jibri_autoscaler::core::plan::WarmPoolChange;
use jibri_autoscaler::domain::InstanceId;
use jibri_autoscaler::domain::LifecycleState;
use jibri_autoscaler::events::{parse_lifecycle, Incoming};
use jibri_autoscaler::guard::GuardOutcome;
use jibri_autoscaler::ports::AutoScaling;
use jitsi_emulator::BusyStatus;
use serde_json::json;

const LAUNCH_HOOK: &str = "jibri-autoscaler-launch";

/// A controller tick that must not report an error.
async fn tick_ok(bed: &Bed) -> TickReport {
    bed.tick_ok().await
}

fn both_hooks() -> Vec<(&'static str, &'static str, i32, &'static str)> {
    vec![
        (
            TERMINATE_HOOK,
            "autoscaling:EC2_INSTANCE_TERMINATING",
            900,
            "ABANDON",
        ),
        (
            LAUNCH_HOOK,
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            900,
            "ABANDON",
        ),
    ]
}

fn ids_of(v: &[(String, String)]) -> Vec<String> {
    v.iter().map(|i| i.0.clone()).collect()
}

fn states_of(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|i| i.1.as_str()).collect()
}

/// 1. The adapters on the test bed: PutWarmPool as the product sends it, DescribeWarmPool
/// read back, the pool's instances through their boot, the group's `warm_pool` flag, and
/// no pool at all.
#[tokio::test]
async fn put_and_describe_warm_pool_round_trip_through_the_adapters() {
    let bed = Bed::new(
        GroupSpec {
            desired: 1,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let asg = bed.adapter();
    // A group without a warm pool: no pool, and the group says so.
    assert_eq!(asg.describe_warm_pool(GROUP).await, Ok(None));
    assert!(!asg.describe_group(GROUP).await.unwrap().warm_pool);

    bed.control.config(json!({ "boot_delay_s": 60 })).await;
    asg.put_warm_pool(GROUP, 3).await.expect("PutWarmPool");
    let w = asg
        .describe_warm_pool(GROUP)
        .await
        .expect("DescribeWarmPool")
        .expect("a warm pool");
    assert_eq!(w.min_size, 3);
    assert_eq!(w.max_prepared, Some(3));
    assert_eq!(w.pool_state, "Stopped");
    assert!(w.reuse_on_scale_in);
    assert_eq!(w.status, "");
    assert_eq!(w.instances.len(), 3, "{w:?}");
    assert!(
        w.instances
            .iter()
            .all(|i| i.lifecycle_state.as_str() == "Warmed:Pending"),
        "booting into the pool: {w:?}"
    );
    let mut warm_ids: Vec<InstanceId> = w.instances.iter().map(|i| i.id.clone()).collect();
    warm_ids.sort();

    // Past the boot delay: stopped in the pool (no launch hook on this group).
    bed.control.advance(61.0).await;
    let w = asg.describe_warm_pool(GROUP).await.unwrap().unwrap();
    let mut now_ids: Vec<InstanceId> = w.instances.iter().map(|i| i.id.clone()).collect();
    now_ids.sort();
    assert_eq!(now_ids, warm_ids);
    assert!(
        w.instances
            .iter()
            .all(|i| i.lifecycle_state == LifecycleState::WarmedStopped),
        "{w:?}"
    );
    for id in &warm_ids {
        assert_eq!(ec2_state(&bed.ec2, &id.0).await, "stopped");
    }
    // The adapter agrees with the raw SDK.
    assert_eq!(
        bed.warm().await,
        warm_ids
            .iter()
            .map(|i| (i.0.clone(), "Warmed:Stopped".to_string()))
            .collect::<Vec<_>>()
    );
    let g = asg.describe_group(GROUP).await.unwrap();
    assert!(g.warm_pool);
    assert_eq!(g.desired, 1);
    assert_eq!(
        g.instances.len(),
        1,
        "warm instances are not the group's: {g:?}"
    );
    assert!(!warm_ids.contains(&g.instances[0].id));

    // With a launch hook, the pool's instances wait for it after the boot delay.
    let hooked = GroupSpec {
        name: "hooked-pool",
        desired: 0,
        hooks: both_hooks(),
        ..GroupSpec::default()
    };
    create_group(&bed.asg, &bed.ec2, &hooked).await;
    asg.put_warm_pool("hooked-pool", 2).await.unwrap();
    bed.control.advance(61.0).await;
    let w = asg
        .describe_warm_pool("hooked-pool")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.min_size, w.max_prepared), (2, Some(2)));
    assert_eq!(
        w.instances
            .iter()
            .map(|i| i.lifecycle_state.as_str())
            .collect::<Vec<_>>(),
        ["Warmed:Pending:Wait", "Warmed:Pending:Wait"]
    );
    for i in &w.instances {
        assert_eq!(ec2_state(&bed.ec2, &i.id.0).await, "running");
    }
    // The first pool is untouched by the second group's.
    assert_eq!(
        asg.describe_warm_pool(GROUP)
            .await
            .unwrap()
            .unwrap()
            .instances
            .len(),
        3
    );
}

/// 2. `WARM_POOL_MODE=managed` creates the pool on the first tick, and leaves it alone
/// while its size is right.
#[tokio::test]
async fn managed_mode_creates_the_warm_pool_once() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[("WARM_POOL_MODE", "managed"), ("WARM_POOL_MIN", "2")],
    )
    .await;
    let ids = bed.ids().await;
    bed.emu.start_recording(&ids[0]).unwrap(); // busy 1 + idle 1 = spare 1: no scaling
    assert_eq!(bed.adapter().describe_warm_pool(GROUP).await, Ok(None));

    let r = tick_ok(&bed).await;
    assert_eq!(r.outcome, Outcome::Acted, "{}", r.plan.summary());
    assert_eq!(
        r.plan.warm_pool,
        Some(WarmPoolChange {
            size: 2,
            create: true
        })
    );
    assert_eq!(r.calls, vec!["PutWarmPool(2)"], "{}", r.plan.summary());
    let w = bed
        .adapter()
        .describe_warm_pool(GROUP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            w.min_size,
            w.max_prepared,
            w.pool_state.as_str(),
            w.reuse_on_scale_in
        ),
        (2, Some(2), "Stopped", true)
    );
    assert_eq!(
        states_of(&bed.warm().await),
        ["Warmed:Stopped", "Warmed:Stopped"]
    );
    assert_eq!(desired(&bed.asg, GROUP).await, 2);

    let r = tick_ok(&bed).await;
    assert_eq!(r.plan.warm_pool, None, "{}", r.plan.summary());
    assert!(
        !r.calls.iter().any(|c| c.starts_with("PutWarmPool")),
        "{:?}",
        r.calls
    );
    assert!(r.calls.is_empty(), "{:?}", r.calls);
    assert_eq!((r.plan.counts.warm, r.plan.counts.warm_ready), (2, 2));
    let w = bed
        .adapter()
        .describe_warm_pool(GROUP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.min_size, w.max_prepared), (2, Some(2)));
}

/// 3. A scale-out is served from the warm pool: the instances that enter the group are the
/// warm ones, started again, and the pool refills with new instances.
#[tokio::test]
async fn scale_out_takes_the_warm_instances_and_the_pool_refills() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &[("SPARE_FIXED", "2")],
    )
    .await;
    bed.adapter().put_warm_pool(GROUP, 2).await.unwrap();
    let warm_before = bed.warm().await;
    assert_eq!(
        states_of(&warm_before),
        ["Warmed:Stopped", "Warmed:Stopped"]
    );
    let warm_ids = ids_of(&warm_before);
    for id in &warm_ids {
        assert_eq!(ec2_state(&bed.ec2, id).await, "stopped");
    }
    let cold_ids = bed.ids().await;
    for id in &cold_ids {
        bed.emu.start_recording(id).unwrap();
    }
    // A warm start takes 30 s of test-bed time (`Pending`).
    bed.control
        .config(json!({ "warm_start_delay_s": 30 }))
        .await;

    let r = tick_ok(&bed).await;
    assert_eq!(r.outcome, Outcome::Acted, "{}", r.plan.summary());
    assert_eq!(
        r.calls,
        vec!["SetDesiredCapacity(4)"],
        "{}",
        r.plan.summary()
    );
    assert_eq!((r.plan.counts.warm, r.plan.counts.warm_ready), (2, 2));
    assert_eq!(desired(&bed.asg, GROUP).await, 4);

    // The two new members of the group are exactly the former warm instances, starting.
    let group = instances(&bed.asg, GROUP).await;
    let new: Vec<_> = group
        .iter()
        .filter(|i| !cold_ids.contains(&i.0))
        .map(|i| (i.0.clone(), i.1.clone()))
        .collect();
    assert_eq!(
        new,
        warm_ids
            .iter()
            .map(|id| (id.clone(), "Pending".to_string()))
            .collect::<Vec<_>>(),
        "{group:?}"
    );
    for id in &warm_ids {
        assert_eq!(ec2_state(&bed.ec2, id).await, "running");
    }
    // The pool refilled with two new instances (boot delay 0: stopped at once).
    let refill = bed.warm().await;
    assert_eq!(
        states_of(&refill),
        ["Warmed:Stopped", "Warmed:Stopped"],
        "{refill:?}"
    );
    for (id, _) in &refill {
        assert!(
            !warm_ids.contains(id) && !cold_ids.contains(id),
            "{refill:?}"
        );
    }

    // Past the warm start: in service, protected like any new instance.
    bed.control.advance(31.0).await;
    for (id, state, protected) in instances(&bed.asg, GROUP).await {
        assert_eq!(state, "InService", "{id}");
        if warm_ids.contains(&id) {
            assert!(protected, "{id}: NewInstancesProtectedFromScaleIn");
        }
    }
    bed.sync_recorders().await;
    // Two busy, two idle (the warm ones): the spare is met, nothing more is launched.
    let r = tick_ok(&bed).await;
    assert_eq!(r.plan.desired, None, "{}", r.plan.summary());
    assert_eq!(
        (r.plan.counts.busy, r.plan.counts.idle),
        (2, 2),
        "{}",
        r.plan.summary()
    );
    assert!(
        !r.calls.iter().any(|c| c.starts_with("SetDesiredCapacity")),
        "{:?}",
        r.calls
    );
    assert_eq!(ids_of(&bed.warm().await), ids_of(&refill));
}

/// 4. The guard on launch events into the warm pool (Origin EC2, Destination WarmPool):
/// an instance where no Jibri listens goes in and is stopped; one whose Jibri answers BUSY
/// is held with heartbeats, not completed, and not asked to shut down.
#[tokio::test]
async fn guard_lets_a_silent_instance_into_the_pool_and_holds_a_busy_one() {
    let bed = Bed::new(
        GroupSpec {
            desired: 0,
            hooks: both_hooks(),
            ..GroupSpec::default()
        },
        // No spare: the controller's ticks below only sweep the warm hooks.
        &[("SPARE_FIXED", "0")],
    )
    .await;
    let from = bed.event_count().await;
    bed.adapter().put_warm_pool(GROUP, 2).await.unwrap();
    let warm = bed.warm().await;
    assert_eq!(
        states_of(&warm),
        ["Warmed:Pending:Wait", "Warmed:Pending:Wait"]
    );
    let (silent, busy) = (warm[0].0.clone(), warm[1].0.clone());
    // `silent` has no Jibri (nothing listens at its address: refused at connect);
    // `busy`'s Jibri started early and took a recording.
    bed.add_jibri(&busy).await;
    bed.emu.start_recording(&busy).unwrap();

    let events = bed.lifecycle_events(from).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e["detail-type"], "EC2 Instance-launch Lifecycle Action");
        assert_eq!(e["detail"]["Origin"], "EC2");
        assert_eq!(e["detail"]["Destination"], "WarmPool");
        assert_eq!(e["detail"]["LifecycleHookName"], LAUNCH_HOOK);
        let parsed = parse_lifecycle(e).unwrap();
        assert!(matches!(
            &parsed[..],
            [Incoming::Action(a)] if a.transition == HookTransition::WarmPoolEntry
                && a.destination.as_deref() == Some("WarmPool")
        ));
    }
    // Ten minutes into the hooks' 900 s heartbeat timeout.
    bed.control.advance(600.0).await;
    let out = bed.deliver(&events).await;
    let outcome = |id: &str| out.iter().find(|o| o.0 == id).map(|o| o.1.clone());
    assert_eq!(
        outcome(&silent),
        Some(GuardOutcome::Continued {
            instance: silent.clone()
        }),
        "{out:?}"
    );
    assert_eq!(
        outcome(&busy),
        Some(GuardOutcome::Held {
            instance: busy.clone(),
            why: "busy".into()
        }),
        "{out:?}"
    );
    assert_eq!(bed.state_of(&silent).await, "Warmed:Stopped");
    assert_eq!(ec2_state(&bed.ec2, &silent).await, "stopped");
    assert_eq!(bed.state_of(&busy).await, "Warmed:Pending:Wait");
    assert_eq!(ec2_state(&bed.ec2, &busy).await, "running");
    let r = bed.emu.recorder(&busy).unwrap();
    assert_eq!(r.status, BusyStatus::Busy);
    assert_eq!(r.calls.graceful_shutdown, 0, "not drained: {r:?}");
    // The heartbeat restarted the timeout: 1 200 s after the action started, still held
    // (without it the DefaultResult ABANDON would have terminated the instance at 900 s).
    bed.control.advance(600.0).await;
    assert_eq!(bed.state_of(&busy).await, "Warmed:Pending:Wait");
    assert_eq!(ec2_state(&bed.ec2, &busy).await, "running");

    // The controller's sweep keeps it while BUSY, and lets it in once the recording ends.
    let r = tick_ok(&bed).await;
    assert!(
        !r.calls
            .iter()
            .any(|c| c.contains("CompleteLifecycleAction")),
        "{:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&busy).await, "Warmed:Pending:Wait");
    bed.emu.stop_recording(&busy).unwrap();
    let r = tick_ok(&bed).await;
    assert_eq!(
        r.calls,
        vec![format!("CompleteLifecycleAction(CONTINUE, {busy})")],
        "{}",
        r.plan.summary()
    );
    assert_eq!(bed.state_of(&busy).await, "Warmed:Stopped");
    assert_eq!(ec2_state(&bed.ec2, &busy).await, "stopped");
}

/// 5. A scale-in back into the warm pool (ReuseOnScaleIn) would stop the instance: with a
/// recording on it, the guard holds it on the terminate hook (Origin AutoScalingGroup,
/// Destination WarmPool), the controller's ticks keep holding it through the recording
/// and its finalize, and only then release it into the pool. It is never terminated.
#[tokio::test]
async fn scale_in_into_the_warm_pool_never_stops_a_busy_recorder() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            protect_new: false,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    // A pool with room for one returning instance once desired drops to 1: size =
    // max(MinSize 0, MaxGroupPreparedCapacity 2 - desired). (The test bed returns a victim
    // only while the pool has room; see the module comment.)
    bed.asg
        .put_warm_pool()
        .auto_scaling_group_name(GROUP)
        .min_size(0)
        .max_group_prepared_capacity(2)
        .pool_state(aws_sdk_autoscaling::types::WarmPoolState::Stopped)
        .instance_reuse_policy(
            aws_sdk_autoscaling::types::InstanceReusePolicy::builder()
                .reuse_on_scale_in(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(bed.warm().await.is_empty());
    let ids = bed.ids().await;
    let (victim, other) = (ids[0].clone(), ids[1].clone());
    bed.emu
        .set_recorder(
            &victim,
            jitsi_emulator::RecorderUpdate {
                finalize_ms: Some(3_600_000),
                ..Default::default()
            },
        )
        .unwrap();
    bed.emu.start_recording(&victim).unwrap();
    // The controller sees the victim in service, recording (and protects it, and the
    // idle spare).
    let r = tick_ok(&bed).await;
    assert_eq!(r.calls.len(), 1, "{:?}", r.calls);
    assert!(
        r.calls[0].starts_with("SetInstanceProtection(true, ") && r.calls[0].contains(&victim),
        "{:?}",
        r.calls
    );

    // A scale-in the controller did not make (an operator, a scheduled action) that
    // protection does not stop: protection moved by hand to the idle one.
    bed.asg
        .set_instance_protection()
        .auto_scaling_group_name(GROUP)
        .instance_ids(&victim)
        .protected_from_scale_in(false)
        .send()
        .await
        .unwrap();
    bed.asg
        .set_instance_protection()
        .auto_scaling_group_name(GROUP)
        .instance_ids(&other)
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();
    let from = bed.event_count().await;
    bed.asg
        .set_desired_capacity()
        .auto_scaling_group_name(GROUP)
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    assert_eq!(bed.ids().await, vec![other.clone()]);
    assert_eq!(
        bed.warm().await,
        vec![(victim.clone(), "Warmed:Pending:Wait".into())]
    );
    assert_eq!(ec2_state(&bed.ec2, &victim).await, "running");

    let events = bed.lifecycle_events(from).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let d = &events[0]["detail"];
    assert_eq!(
        (
            d["LifecycleTransition"].as_str(),
            d["LifecycleHookName"].as_str(),
            d["Origin"].as_str(),
            d["Destination"].as_str(),
            d["EC2InstanceId"].as_str()
        ),
        (
            Some("autoscaling:EC2_INSTANCE_TERMINATING"),
            Some(TERMINATE_HOOK),
            Some("AutoScalingGroup"),
            Some("WarmPool"),
            Some(victim.as_str())
        )
    );
    // The guard: held like a termination, and drained (no new recording lands on it).
    let out = bed.deliver(&events).await;
    assert_eq!(
        out,
        vec![(
            victim.clone(),
            GuardOutcome::Held {
                instance: victim.clone(),
                why: "busy".into()
            }
        )]
    );
    let rec = bed.emu.recorder(&victim).unwrap();
    assert_eq!(rec.status, BusyStatus::Busy);
    assert_eq!(rec.calls.graceful_shutdown, 1);
    assert!(rec.exit_pending, "drained");

    // Recording for 20 minutes (the hook's heartbeat timeout is 900 s): the controller
    // heartbeats, never completes.
    let mut heartbeats = 0;
    for _ in 0..3 {
        bed.control.advance(400.0).await;
        let r = tick_ok(&bed).await;
        assert!(
            !r.calls
                .iter()
                .any(|c| c.contains("CompleteLifecycleAction")),
            "{:?}",
            r.calls
        );
        heartbeats += r
            .calls
            .iter()
            .filter(|c| **c == format!("RecordLifecycleActionHeartbeat({victim})"))
            .count();
        assert_eq!(bed.state_of(&victim).await, "Warmed:Pending:Wait");
        assert_eq!(ec2_state(&bed.ec2, &victim).await, "running");
    }
    assert!(heartbeats >= 2, "{heartbeats} heartbeats in 1 200 s");
    // The recording ends; its finalize runs (Jibri still BUSY): still held.
    bed.emu.stop_recording(&victim).unwrap();
    assert_eq!(bed.emu.recorder(&victim).unwrap().status, BusyStatus::Busy);
    let r = tick_ok(&bed).await;
    assert!(
        !r.calls
            .iter()
            .any(|c| c.contains("CompleteLifecycleAction")),
        "released during finalize: {:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&victim).await, "Warmed:Pending:Wait");
    // Finalize done: the drained Jibri exits; the next tick releases it into the pool.
    bed.emu.finish_finalize(&victim).unwrap();
    assert!(bed.emu.recorder(&victim).unwrap().gone);
    let r = tick_ok(&bed).await;
    assert!(
        r.calls
            .contains(&format!("CompleteLifecycleAction(CONTINUE, {victim})")),
        "{:?}",
        r.calls
    );
    assert!(
        !r.calls.iter().any(|c| c.contains("ABANDON")),
        "{:?}",
        r.calls
    );
    assert_eq!(
        bed.warm().await,
        vec![(victim.clone(), "Warmed:Stopped".into())]
    );
    assert_eq!(ec2_state(&bed.ec2, &victim).await, "stopped");
    assert_eq!(bed.ids().await, vec![other]);
}

/// A pool with room for one instance returning on scale-in (see test 5), a busy `victim`
/// and an idle `other`; returns `(victim, other)`.
async fn busy_victim_with_room_in_the_pool(bed: &Bed) -> (String, String) {
    bed.asg
        .put_warm_pool()
        .auto_scaling_group_name(GROUP)
        .min_size(0)
        .max_group_prepared_capacity(2)
        .pool_state(aws_sdk_autoscaling::types::WarmPoolState::Stopped)
        .instance_reuse_policy(
            aws_sdk_autoscaling::types::InstanceReusePolicy::builder()
                .reuse_on_scale_in(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ids = bed.ids().await;
    bed.emu.start_recording(&ids[0]).unwrap();
    (ids[0].clone(), ids[1].clone())
}

/// Scales in to 1 with only `victim` unprotected and hands the events to the guard.
async fn scale_in_victim_into_the_pool(bed: &Bed, victim: &str, other: &str) {
    for (id, protect) in [(victim, false), (other, true)] {
        bed.asg
            .set_instance_protection()
            .auto_scaling_group_name(GROUP)
            .instance_ids(id)
            .protected_from_scale_in(protect)
            .send()
            .await
            .unwrap();
    }
    let from = bed.event_count().await;
    bed.asg
        .set_desired_capacity()
        .auto_scaling_group_name(GROUP)
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    assert_eq!(bed.state_of(victim).await, "Warmed:Pending:Wait");
    let events = bed.lifecycle_events(from).await;
    let out = bed.deliver(&events).await;
    assert!(
        matches!(&out[..], [(_, GuardOutcome::Held { .. })]),
        "{out:?}"
    );
}

/// Regression (the bug was found here and is fixed): a recorder scaled in back into the pool before the
/// controller ever saw it in service (no tick in between, or lost state) is taken for a
/// launch into the pool (crates/jibri-core/src/plan.rs, `returning` needs `prev.in_service`): its
/// terminate-hook action is heartbeated on the launch hook (none here: a tick error every
/// tick), the terminate hook times out, and without a retain policy the instance is
/// stopped in the pool with its recording.
#[tokio::test]
async fn a_return_the_controller_never_saw_in_service_is_still_held_while_busy() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            protect_new: false,
            retain: false,
            ..GroupSpec::default()
        },
        &[],
    )
    .await;
    let (victim, other) = busy_victim_with_room_in_the_pool(&bed).await;
    // No tick yet: the controller has not seen the victim in service.
    scale_in_victim_into_the_pool(&bed, &victim, &other).await;
    for _ in 0..3 {
        bed.control.advance(400.0).await;
        let r = tick_ok(&bed).await; // asserts no tick errors
        assert!(
            r.calls
                .contains(&format!("RecordLifecycleActionHeartbeat({victim})")),
            "{:?} {:?}",
            r.calls,
            r.plan.hooks
        );
        assert_eq!(bed.state_of(&victim).await, "Warmed:Pending:Wait");
        assert_eq!(
            ec2_state(&bed.ec2, &victim).await,
            "running",
            "stopped while BUSY"
        );
    }
}

/// Regression (the bug was found here and is fixed): a return held past MAX_HOOK_HOLD_S is ABANDONed
/// into `Warmed:Pending:Retained` (running, outside the pool's count), and once its
/// recording is done nothing ever removes it: the controller knows `Terminating:Retained`
/// only (crates/jibri-core/src/domain.rs `LifecycleState::parse`; crates/jibri-core/src/plan.rs warm loop `_ => continue`).
#[tokio::test]
async fn an_abandoned_return_does_not_run_forever_once_its_recording_is_done() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            protect_new: false,
            ..GroupSpec::default()
        },
        &[("MAX_HOOK_HOLD_S", "600")],
    )
    .await;
    let (victim, other) = busy_victim_with_room_in_the_pool(&bed).await;
    let _ = tick_ok(&bed).await; // seen in service
    scale_in_victim_into_the_pool(&bed, &victim, &other).await;
    bed.control.advance(301.0).await;
    let _ = tick_ok(&bed).await;
    bed.control.advance(301.0).await;
    let r = tick_ok(&bed).await;
    assert!(
        r.calls
            .contains(&format!("CompleteLifecycleAction(ABANDON, {victim})")),
        "{:?}",
        r.calls
    );
    assert_eq!(bed.state_of(&victim).await, "Warmed:Pending:Retained");
    bed.emu.stop_recording(&victim).unwrap(); // drained by the guard: the Jibri exits
    for _ in 0..3 {
        bed.control.advance(60.0).await;
        let _ = tick_ok(&bed).await;
    }
    assert_ne!(bed.state_of(&victim).await, "Warmed:Pending:Retained");
    assert_ne!(ec2_state(&bed.ec2, &victim).await, "running");
}
