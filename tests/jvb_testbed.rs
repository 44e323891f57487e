//! Videobridge pools (`POOL_KIND=jvb`, issue 16) end to end: the real controller and guard
//! on the real AWS SDK adapters against the local AWS test bed, real HTTP against the
//! Jitsi emulator's bridges (`/colibri/stats`, `/colibri/drain`) at each instance's private
//! IP. Conferences are started through the emulator's Jicofo (its bridge selection), and
//! the emulator records when each ended, or that it broke because its bridge went away.

mod common;

use common::bed::{Bed, GROUP};
use common::*;
use jibri_autoscaler::guard::GuardOutcome;
use jitsi_emulator::{ConferenceEnd, ConferenceRequest, FaultKind};
use std::collections::BTreeMap;

const JVB: [(&str, &str); 2] = [("POOL_KIND", "jvb"), ("SPARE_FIXED", "0")];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn conference(participants: u32) -> ConferenceRequest {
    ConferenceRequest {
        participants,
        duration_ms: None,
    }
}

/// No conference the emulator has seen ended broken (its bridge gone under it).
fn assert_no_conference_broken(bed: &Bed) {
    let record = bed.emu.conferences();
    assert!(
        record.iter().all(|c| c.end != ConferenceEnd::Broken),
        "{record:?}"
    );
}

/// A pool of three bridges (at least one) that drains at once below the band, one bridge
/// a tick.
async fn quiet_bridge_pool() -> Bed {
    Bed::new(
        GroupSpec {
            desired: 3,
            min: 1,
            ..GroupSpec::default()
        },
        &[
            ("POOL_KIND", "jvb"),
            ("JVB_SCALE_IN_WINDOW_S", "0"),
            ("SCALE_IN_MAX_PER_TICK", "1"),
        ],
    )
    .await
}

/// The running conferences of a bridge.
fn running_on(bed: &Bed, bridge: &str) -> Vec<String> {
    bed.emu
        .conferences()
        .into_iter()
        .filter(|c| c.bridge == bridge && c.end == ConferenceEnd::Running)
        .map(|c| c.id)
        .collect()
}

/// Issue 16's "done when": a JVB group forced to 0 while conferences run breaks no
/// conference. Every bridge is drained at once (Jicofo sends it nothing new) and held in
/// `Terminating:Wait`; the conferences end one by one over hours; each instance is
/// terminated only after the last conference on its bridge ended (the emulator's end
/// times against the moment the instance was seen gone); no hook times out.
#[tokio::test]
async fn forcing_a_bridge_group_to_zero_breaks_no_conference() {
    let bed = Bed::new(
        GroupSpec {
            desired: 3,
            protect_new: false,
            min: 0,
            ..GroupSpec::default()
        },
        &JVB,
    )
    .await;
    let ids = bed.ids().await;
    // Two conferences per bridge: Jicofo puts each on the least stressed bridge.
    let mut confs = Vec::new();
    for size in [6, 5, 4, 3, 2, 2] {
        confs.push(
            bed.emu
                .start_conference("default", conference(size))
                .unwrap(),
        );
    }
    for id in &ids {
        assert_eq!(running_on(&bed, id).len(), 2, "{id}");
    }
    let r = bed.tick_ok().await;
    assert!(r.plan.victims.is_empty(), "{}", r.plan.summary());

    // As an operator going home would: unprotect (the controller protects every bridge in
    // service), then min = max = desired = 0.
    bed.asg
        .set_instance_protection()
        .auto_scaling_group_name(GROUP)
        .set_instance_ids(Some(ids.clone()))
        .protected_from_scale_in(false)
        .send()
        .await
        .unwrap();
    let from = bed.event_count().await;
    force_to_zero(&bed.asg, GROUP).await;
    let out = bed.deliver_events(from).await;
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(
        out.iter().all(|o| matches!(o, GuardOutcome::Held { .. })),
        "{out:?}"
    );
    for id in &ids {
        let b = bed.emu.bridge(id).unwrap();
        assert!(b.drain, "{id} was not drained");
        assert_eq!(b.calls.drain_enable, 1, "{id}");
        assert!(!b.gone);
    }

    // The conferences end one by one; the controller ticks every 5 minutes of test-bed
    // time (hooks' heartbeat timeout 900 s).
    let mut gone_at: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = confs.iter();
    for step in 0..30 {
        bed.control.advance(300.0).await;
        if step % 3 == 2 {
            if let Some(c) = next.next() {
                bed.emu.end_conference(&c.id).unwrap();
            }
        }
        let _ = bed.tick_ok().await;
        let seen = now_ms();
        for id in &ids {
            let state = bed.state_of(id).await;
            assert_ne!(state, "Terminating:Retained", "{id}'s hook timed out");
            if state == "gone" && !gone_at.contains_key(id) {
                gone_at.insert(id.clone(), seen);
            }
        }
        if gone_at.len() == ids.len() {
            break;
        }
    }
    for id in &ids {
        assert!(gone_at.contains_key(id), "{id} still held at the end");
        assert_eq!(ec2_state(&bed.ec2, id).await, "terminated");
    }
    let record = bed.emu.conferences();
    assert_eq!(record.len(), confs.len());
    for c in &record {
        assert_eq!(
            c.end,
            ConferenceEnd::Ended,
            "conference {} on {} was broken: {c:?}",
            c.id,
            c.bridge
        );
        let ended = c.ended_ms.expect("an end time");
        assert!(
            ended <= gone_at[&c.bridge],
            "{} terminated at {} before its conference {} ended at {ended}",
            c.bridge,
            gone_at[&c.bridge],
            c.id
        );
    }
    bed.assert_no_action_left().await;
}

/// The guard on one terminating bridge that hosts a conference: drained (a new conference
/// goes to the other bridge), held while the conference runs, released once it is empty.
#[tokio::test]
async fn a_terminating_bridge_with_a_conference_is_drained_held_then_released() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &JVB,
    )
    .await;
    let ids = bed.ids().await;
    let c = bed.emu.start_conference("default", conference(4)).unwrap();
    let victim = c.bridge.clone();
    let other = ids.iter().find(|i| **i != victim).unwrap().clone();
    let first = bed.event_count().await;
    bed.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&victim)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    let out = bed.deliver_events(first).await;
    assert!(matches!(&out[..], [GuardOutcome::Held { .. }]), "{out:?}");
    let b = bed.emu.bridge(&victim).unwrap();
    assert!(b.drain);
    assert_eq!(b.calls.drain_enable, 1);
    // Jicofo prefers the bridge that does not drain, even though it is now the busier.
    bed.emu.start_conference("default", conference(2)).unwrap();
    let c2 = bed.emu.start_conference("default", conference(2)).unwrap();
    assert_eq!(c2.bridge, other, "a drained bridge got a new conference");
    assert_eq!(running_on(&bed, &victim), vec![c.id.clone()]);

    // Held across ticks while the conference runs.
    for _ in 0..3 {
        bed.control.advance(300.0).await;
        let _ = bed.tick_ok().await;
        assert_eq!(bed.state_of(&victim).await, "Terminating:Wait");
    }
    bed.emu.end_conference(&c.id).unwrap();
    bed.control.advance(60.0).await;
    let _ = bed.tick_ok().await;
    assert_eq!(bed.state_of(&victim).await, "gone");
    assert_eq!(ec2_state(&bed.ec2, &victim).await, "terminated");
    assert_no_conference_broken(&bed);
    assert_eq!(bed.state_of(&other).await, "InService");
}

/// A terminating bridge whose stats answer garbage is unknown, which is busy: held
/// (heartbeated) tick after tick, never released, and its conference never broken.
#[tokio::test]
async fn a_terminating_bridge_whose_stats_answer_garbage_is_held_never_released() {
    let bed = Bed::new(
        GroupSpec {
            desired: 2,
            ..GroupSpec::default()
        },
        &JVB,
    )
    .await;
    let c = bed.emu.start_conference("default", conference(3)).unwrap();
    let victim = c.bridge.clone();
    bed.emu
        .set_bridge_fault(&victim, FaultKind::Garbage)
        .unwrap();
    let first = bed.event_count().await;
    bed.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&victim)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    let out = bed.deliver_events(first).await;
    assert!(matches!(&out[..], [GuardOutcome::Held { .. }]), "{out:?}");
    // Even once the conference is over, a bridge that answers garbage is never taken
    // for an empty one.
    for step in 0..6 {
        if step == 2 {
            bed.emu.end_conference(&c.id).unwrap();
        }
        bed.control.advance(300.0).await;
        let r = bed.tick().await;
        assert!(
            !r.calls
                .iter()
                .any(|call| call.contains("CONTINUE") && call.contains(&victim)),
            "{:?}",
            r.calls
        );
        assert_eq!(bed.state_of(&victim).await, "Terminating:Wait");
    }
    assert!(bed.emu.bridge(&victim).is_some_and(|b| !b.gone));
    assert_no_conference_broken(&bed);
}

/// The stress band on the real adapters: a quiet pool drains its least-loaded bridge
/// (Jicofo then sends it nothing) and removes it once empty, through the terminate hook
/// and the guard, never the bridge hosting the conference.
#[tokio::test]
async fn a_quiet_bridge_pool_drains_then_removes_an_empty_bridge_never_the_busy_one() {
    let bed = quiet_bridge_pool().await;
    let c = bed.emu.start_conference("default", conference(4)).unwrap();
    let host = c.bridge.clone();
    // The mean stress (0.02 / 3) is below the band: one empty bridge is drained.
    let r = bed.tick_ok().await;
    assert_eq!(r.plan.drain.len(), 1, "{}", r.plan.summary());
    let drained = r.plan.drain[0].0.clone();
    assert_ne!(
        drained, host,
        "the bridge hosting the conference was drained"
    );
    assert!(bed.emu.bridge(&drained).unwrap().drain);
    // Jicofo prefers the others now.
    let c2 = bed.emu.start_conference("default", conference(1)).unwrap();
    assert_ne!(c2.bridge, drained);
    bed.emu.end_conference(&c2.id).unwrap();
    // The drained, empty bridge becomes the scale-in victim; the guard releases it.
    let from = bed.event_count().await;
    let mut removed = false;
    for _ in 0..4 {
        bed.control.advance(60.0).await;
        let r = bed.tick_ok().await;
        assert!(
            !r.plan.victims.iter().any(|v| v.0 == host),
            "{}",
            r.plan.summary()
        );
        let out = bed.deliver_events(from).await;
        assert!(
            out.iter().all(|o| !matches!(o, GuardOutcome::Held { .. })),
            "{out:?}"
        );
        if bed.state_of(&drained).await == "gone" {
            removed = true;
            break;
        }
    }
    assert!(removed, "the drained empty bridge was never removed");
    assert_eq!(bed.state_of(&host).await, "InService");
    assert_eq!(running_on(&bed, &host), vec![c.id.clone()]);
    assert_no_conference_broken(&bed);
}

/// When stress rises past the band, a drained bridge is undrained (`/colibri/drain/disable`)
/// and its drain tag deleted (EC2 `DeleteTags` on the test bed) before anything is launched.
#[tokio::test]
async fn a_drained_bridge_is_undrained_when_stress_rises() {
    let bed = quiet_bridge_pool().await;
    let r = bed.tick_ok().await;
    assert_eq!(r.plan.drain.len(), 1, "{}", r.plan.summary());
    let drained = r.plan.drain[0].0.clone();
    assert!(bed.emu.bridge(&drained).unwrap().drain);
    // Six conferences of 60 (stress 0.3 each) land on the two other bridges: mean 0.9.
    for _ in 0..6 {
        let c = bed.emu.start_conference("default", conference(60)).unwrap();
        assert_ne!(c.bridge, drained);
    }
    bed.control.advance(60.0).await;
    let r = bed.tick_ok().await;
    assert_eq!(
        r.plan
            .undrain
            .iter()
            .map(|i| i.0.clone())
            .collect::<Vec<_>>(),
        vec![drained.clone()],
        "{}",
        r.plan.summary()
    );
    assert!(
        r.calls
            .iter()
            .any(|c| c.starts_with("DeleteTags") && c.contains(&drained)),
        "{:?}",
        r.calls
    );
    let b = bed.emu.bridge(&drained).unwrap();
    assert!(!b.drain, "not undrained");
    assert_eq!(b.calls.drain_disable, 1);
    // Back in Jicofo's selection: the next conference goes to an unloaded bridge (it, or
    // one the same tick launched), not to the two loaded ones.
    let loaded: Vec<String> = bed
        .emu
        .conferences()
        .into_iter()
        .map(|c| c.bridge)
        .collect();
    let c = bed.emu.start_conference("default", conference(2)).unwrap();
    assert!(!loaded.contains(&c.bridge), "{} {loaded:?}", c.bridge);
    assert_eq!(
        bed.emu.bridge(&c.bridge).map(|b| b.drain),
        Some(false),
        "{}",
        c.bridge
    );
}
