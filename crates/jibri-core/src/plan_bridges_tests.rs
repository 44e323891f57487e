//! Table tests of a videobridge pool's rules (`plan_bridges.rs`), and a property test:
//! over random pools, a scale-in victim is always a drained bridge hosting nothing.

use crate::bridge::{BridgeLoad, BridgeStats};
use crate::config::tests::config_with;
use crate::config::Config;
use crate::domain::*;
use crate::plan::*;
use crate::state::{PoolState, Seen};
use crate::testkit::*;
use proptest::prelude::*;

pub(crate) const NOW: EpochSecs = 1_800_000_000;

fn jvb(extra: &[(&str, &str)]) -> Config {
    let mut pairs = vec![
        ("POOL_KIND", "jvb"),
        ("JVB_STRESS_LOW", "0.2"),
        ("JVB_STRESS_HIGH", "0.4"),
        ("JVB_SCALE_IN_WINDOW_S", "600"),
        ("IDLE_GRACE_S", "120"),
        ("FORECAST", "off"),
    ];
    pairs.extend_from_slice(extra);
    config_with(&pairs).unwrap()
}

/// An in-service bridge: stress in thousandths (endpoints = stress / 10), conferences,
/// drained or not.
pub(crate) fn bridge(
    id: &str,
    stress_milli: u32,
    conferences: u32,
    drain: bool,
) -> InstanceObservation {
    let participants = if conferences == 0 {
        0
    } else {
        (stress_milli / 10).max(conferences)
    };
    let stats = BridgeStats {
        stress_level: f64::from(stress_milli) / 1000.0,
        conferences,
        participants,
        local_endpoints: Some(participants),
        drain,
        graceful_shutdown: false,
        shutting_down: false,
        healthy: Some(true),
    };
    InstanceObservation {
        drain_requested: drain,
        drain_requested_at: drain.then_some(NOW - 900),
        probe: Probe::Status(stats.status()),
        ..svc(id, "idle")
    }
}

/// Running for an hour: every bridge answered, the empty ones empty for an hour; the
/// mean stress low since `low_since`.
pub(crate) fn state(obs: &Observation, low_since: Option<EpochSecs>) -> PoolState {
    PoolState {
        stress_low_since: low_since,
        ..crate::plan_tests::long_idle(obs)
    }
}

fn pool(desired: u32, instances: Vec<InstanceObservation>) -> Observation {
    observation(group(1, 20, desired), instances)
}

fn ids(v: &[&str]) -> Vec<InstanceId> {
    v.iter().map(|s| InstanceId::from(*s)).collect()
}

#[test]
fn a_bridge_hosting_a_conference_is_never_a_victim() {
    // (bridges, victims): only drained bridges that host nothing go.
    let cases: Vec<(Vec<InstanceObservation>, Vec<&str>)> = vec![
        (
            vec![bridge("i-a", 300, 3, false), bridge("i-b", 100, 1, true)],
            vec![],
        ),
        (
            vec![bridge("i-a", 300, 3, false), bridge("i-b", 0, 0, true)],
            vec!["i-b"],
        ),
        (
            vec![
                bridge("i-a", 300, 3, false),
                bridge("i-b", 10, 1, true),
                bridge("i-c", 0, 0, true),
            ],
            vec!["i-c"],
        ),
    ];
    for (bridges, victims) in cases {
        let obs = pool(bridges.len() as u32, bridges);
        let (p, _) = plan(&obs, &state(&obs, None), &jvb(&[]), NOW);
        assert_eq!(p.victims, ids(&victims), "{}", p.summary());
        for v in &p.victims {
            let i = obs.instances.iter().find(|i| &i.id == v).unwrap();
            assert!(drained_and_empty(i));
        }
        assert_eq!(
            p.desired,
            (!victims.is_empty()).then(|| obs.group.desired - victims.len() as u32)
        );
    }
}

#[test]
fn an_empty_undrained_bridge_is_capacity_not_a_victim() {
    // Jicofo may give it a conference at any moment: it is drained first, never removed as is.
    let obs = pool(
        2,
        vec![bridge("i-a", 300, 3, false), bridge("i-b", 0, 0, false)],
    );
    let (p, _) = plan(&obs, &state(&obs, None), &jvb(&[]), NOW);
    assert!(p.victims.is_empty(), "{}", p.summary());
    assert!(p
        .kept
        .iter()
        .any(|(i, r)| i.0 == "i-b" && *r == KeepReason::StressLowOnlyFor { for_s: 0 }));
}

#[test]
fn mean_stress_above_the_high_mark_scales_out_to_the_mark() {
    // Three bridges at 0.6 carry 1.8: five bridges bring the mean to 0.36 (< 0.4).
    let obs = pool(
        3,
        vec![
            bridge("i-a", 600, 6, false),
            bridge("i-b", 600, 6, false),
            bridge("i-c", 600, 6, false),
        ],
    );
    let (p, next) = plan(&obs, &state(&obs, None), &jvb(&[]), NOW);
    assert_eq!(p.desired, Some(5), "{}", p.summary());
    assert_eq!(p.counts.stress_milli, Some(600));
    assert!(p.victims.is_empty() && p.drain.is_empty());
    assert_eq!(next.stress_low_since, None);
    // Within the band: nothing.
    let calm = pool(
        3,
        vec![
            bridge("i-a", 300, 3, false),
            bridge("i-b", 300, 3, false),
            bridge("i-c", 300, 3, false),
        ],
    );
    let (p, _) = plan(&calm, &state(&calm, None), &jvb(&[]), NOW);
    assert!(p.is_noop(), "{}", p.summary());
}

#[test]
fn drained_bridges_are_undrained_before_launching() {
    // One bridge at 0.8, two drained (ours): undrain the fuller first; 1.0 over 2 > 0.4,
    // so the second too, then 1.1 over 3 = 0.37: no launch.
    let obs = pool(
        3,
        vec![
            bridge("i-a", 800, 8, false),
            bridge("i-b", 100, 1, true),
            bridge("i-c", 200, 2, true),
        ],
    );
    let (p, _) = plan(&obs, &state(&obs, None), &jvb(&[]), NOW);
    assert_eq!(p.undrain, ids(&["i-c", "i-b"]), "{}", p.summary());
    assert_eq!(p.desired, None);
    assert!(p.summary().contains("undrain=[i-c,i-b]"));
    // A bridge drained by someone else (no tag of ours) is left as it is: launch instead.
    let mut foreign = bridge("i-b", 0, 0, true);
    foreign.drain_requested = false;
    foreign.drain_requested_at = None;
    let obs = pool(2, vec![bridge("i-a", 800, 8, false), foreign]);
    let (p, _) = plan(&obs, &state(&obs, None), &jvb(&[]), NOW);
    assert!(p.undrain.is_empty());
    assert_eq!(p.desired, Some(3), "{}", p.summary());
}

#[test]
fn low_stress_drains_the_least_loaded_bridge_only_after_the_window() {
    let bridges = || {
        vec![
            bridge("i-a", 150, 3, false),
            bridge("i-b", 50, 1, false),
            bridge("i-c", 100, 2, false),
        ]
    };
    // (low since, drained): mean 0.1 < 0.2, but only for the window's length.
    for (since, drained) in [
        (None, vec![]),
        (Some(NOW - 300), vec![]),
        (Some(NOW - 600), vec!["i-b"]),
    ] {
        let obs = pool(3, bridges());
        let (p, next) = plan(&obs, &state(&obs, since), &jvb(&[]), NOW);
        assert_eq!(p.drain, ids(&drained), "{since:?}: {}", p.summary());
        assert_eq!(next.stress_low_since, Some(since.unwrap_or(NOW)));
        assert!(p.victims.is_empty());
    }
    // Never below the group's minimum, never so that the others pass the band's middle.
    let obs = observation(group(3, 20, 3), bridges());
    let (p, _) = plan(&obs, &state(&obs, Some(NOW - 3600)), &jvb(&[]), NOW);
    assert!(p.drain.is_empty(), "{}", p.summary());
    let busy = pool(
        2,
        vec![bridge("i-a", 190, 9, false), bridge("i-b", 150, 3, false)],
    );
    let (p, _) = plan(&busy, &state(&busy, Some(NOW - 3600)), &jvb(&[]), NOW);
    assert!(
        p.drain.is_empty(),
        "0.34 on one bridge is above 0.3: {}",
        p.summary()
    );
}

#[test]
fn an_unknown_bridge_is_busy_and_its_stress_counts_at_the_high_mark() {
    // Two quiet bridges and one that stopped answering: mean (0.05 + 0.05 + 0.4) / 3 =
    // 0.167 < 0.2: a drain may come, but never of the unknown one, never a victim.
    let obs = pool(
        3,
        vec![
            bridge("i-a", 50, 1, false),
            bridge("i-b", 50, 1, false),
            svc("i-u", "timeout"),
        ],
    );
    let (p, _) = plan(&obs, &state(&obs, Some(NOW - 3600)), &jvb(&[]), NOW);
    assert_eq!(p.counts.stress_milli, Some(166));
    assert!(!p.drain.contains(&InstanceId::from("i-u")));
    assert!(p.victims.is_empty());
    assert!(p
        .kept
        .iter()
        .any(|(i, r)| i.0 == "i-u" && matches!(r, KeepReason::ProbeFailed { .. })));
    // Two unknown of three: the mean is high enough that nothing is drained.
    let obs = pool(
        3,
        vec![
            bridge("i-a", 50, 1, false),
            svc("i-u", "timeout"),
            svc("i-v", "garbage"),
        ],
    );
    let (p, _) = plan(&obs, &state(&obs, Some(NOW - 3600)), &jvb(&[]), NOW);
    assert!(
        p.drain.is_empty() && p.victims.is_empty(),
        "{}",
        p.summary()
    );
}

#[test]
fn a_partial_observation_or_config_drift_drains_and_removes_nothing_but_scales_out() {
    let quiet = || {
        vec![
            bridge("i-a", 50, 1, false),
            bridge("i-b", 0, 0, false),
            bridge("i-c", 0, 0, true),
        ]
    };
    let mut partial = pool(3, quiet());
    partial.jicofo.shards_failed = 1;
    let mut drifted = pool(3, quiet());
    drifted.config_drift.push(ConfigDrift::NoRetainOnAbandon);
    for (obs, why) in [
        (partial, KeepReason::ObservationIncomplete),
        (drifted, KeepReason::ConfigDrift),
    ] {
        let (p, _) = plan(&obs, &state(&obs, Some(NOW - 3600)), &jvb(&[]), NOW);
        assert!(
            p.drain.is_empty() && p.victims.is_empty(),
            "{}",
            p.summary()
        );
        assert!(
            p.kept.iter().any(|(i, r)| i.0 == "i-c" && *r == why),
            "{:?}",
            p.kept
        );
    }
    let mut hot = pool(1, vec![bridge("i-a", 900, 9, false)]);
    hot.jicofo.shards_failed = 1;
    let (p, _) = plan(&hot, &state(&hot, None), &jvb(&[]), NOW);
    assert_eq!(p.desired, Some(3), "{}", p.summary());
}

#[test]
fn a_booting_bridge_counts_as_capacity_at_stress_zero() {
    // One bridge at 0.6 and one launched a minute ago that has not answered yet: mean 0.3.
    let obs = pool(
        2,
        vec![bridge("i-a", 600, 6, false), svc("i-new", "timeout")],
    );
    let mut s = state(&obs, None);
    s.in_service.insert(
        InstanceId::from("i-new"),
        Seen {
            since: NOW - 60,
            answered: false,
        },
    );
    let (p, _) = plan(&obs, &s, &jvb(&[]), NOW);
    assert_eq!(p.desired, None, "{}", p.summary());
    assert_eq!(p.counts.stress_milli, Some(300));
}

#[test]
fn conference_starts_are_learned_from_jicofos_total() {
    let mut obs = pool(1, vec![bridge("i-a", 100, 2, false)]);
    obs.jicofo.stats.conferences_created = 40;
    let (p, next) = plan(&obs, &state(&obs, None), &jvb(&[("FORECAST", "on")]), NOW);
    assert_eq!(p.counts.starts, 0, "no baseline yet");
    assert_eq!(next.conferences_created, Some(40));
    obs.jicofo.stats.conferences_created = 47;
    let (p, next2) = plan(&obs, &next, &jvb(&[("FORECAST", "on")]), NOW + 60);
    assert_eq!(p.counts.starts, 7);
    assert_eq!(
        next2.stress_per_conference_milli, None,
        "fewer than 3 conferences"
    );
    obs.jicofo.stats.conferences_created = 3; // Jicofo restarted
    let (p, _) = plan(&obs, &next2, &jvb(&[("FORECAST", "on")]), NOW + 120);
    assert_eq!(p.counts.starts, 3);
}

#[test]
fn the_pure_sizing_rules() {
    // bridges_to_add(sum, n, target)
    for (sum, n, target, add) in [
        (1800, 3, 400, 2),
        (1200, 3, 400, 0),
        (0, 0, 400, 1),
        (0, 2, 400, 0),
        (4001, 10, 400, 1),
        (u64::MAX, 0, 0, u32::MAX),
    ] {
        assert_eq!(bridges_to_add(sum, n, target), add, "{sum} {n} {target}");
    }
    assert_eq!(mean_stress_milli(900, 3), Some(300));
    assert_eq!(mean_stress_milli(5, 0), None);
    // learn_stress_per_conference(prev, active)
    let a = bridge("i-a", 300, 3, false);
    let b = bridge("i-b", 100, 2, false);
    let load = |i: &InstanceObservation| match &i.probe {
        Probe::Status(s) => s.load.unwrap(),
        _ => BridgeLoad::default(),
    };
    let active = [(&a, load(&a)), (&b, load(&b))];
    assert_eq!(learn_stress_per_conference(None, &active), Some(80));
    assert_eq!(learn_stress_per_conference(Some(100), &active), Some(96));
    assert_eq!(
        learn_stress_per_conference(Some(100), &active[1..]),
        Some(100)
    );
    // choose_drains: least loaded first, at most `max`, keep `keep`, others below target.
    let c = bridge("i-c", 0, 0, false);
    let three = [(&a, load(&a)), (&b, load(&b)), (&c, load(&c))];
    assert_eq!(
        choose_drains(&three, 250, 3, 300, 1, 10),
        ids(&["i-c", "i-b"])
    );
    assert_eq!(choose_drains(&three, 250, 3, 300, 1, 1), ids(&["i-c"]));
    assert_eq!(choose_drains(&three, 250, 3, 300, 2, 10), ids(&["i-c"]));
    assert_eq!(choose_drains(&three, 500, 3, 300, 1, 10), ids(&["i-c"]));
    assert!(choose_drains(&three, 700, 3, 300, 1, 10).is_empty());
    assert!(choose_drains(&three, 250, 3, 300, 3, 10).is_empty());
    // choose_undrains: ours only, the fullest first, until the mean reaches the target.
    let (u, sum, n) = choose_undrains(&[(&a, load(&a)), (&b, load(&b))], 900, 1, 400);
    assert!(u.is_empty() && sum == 900 && n == 1, "not drained by us");
    let (da, db) = (bridge("i-a", 300, 3, true), bridge("i-b", 100, 2, true));
    let drained = [(&db, load(&db)), (&da, load(&da))];
    assert_eq!(
        choose_undrains(&drained, 900, 1, 400),
        (ids(&["i-a", "i-b"]), 1300, 3)
    );
    assert_eq!(
        choose_undrains(&drained, 500, 1, 400),
        (ids(&["i-a"]), 800, 2)
    );
    assert_eq!(choose_undrains(&drained, 300, 1, 400), (vec![], 300, 1));
}

#[test]
fn a_jibri_pool_ignores_the_bridge_settings() {
    let obs = observation(
        group(1, 10, 4),
        vec![
            svc("i-a", "busy"),
            svc("i-b", "idle"),
            svc("i-c", "idle"),
            svc("i-d", "idle"),
        ],
    );
    let s = state(&obs, None);
    let (plain, plain_next) = plan(&obs, &s, &config_with(&[]).unwrap(), NOW);
    let jvb_vars = config_with(&[
        ("JVB_STRESS_LOW", "0.05"),
        ("JVB_STRESS_HIGH", "0.9"),
        ("JVB_SCALE_IN_WINDOW_S", "1"),
    ])
    .unwrap();
    let (with, with_next) = plan(&obs, &s, &jvb_vars, NOW);
    assert_eq!(plain, with);
    assert_eq!(plain_next, with_next);
    assert_eq!(plain.counts.stress_milli, None);
    assert!(!plain.summary().contains("stress="));
    assert_eq!(plain_next.stress_low_since, None);
}

fn arb_bridge() -> impl Strategy<Value = (u32, u32, bool, u8)> {
    // (stress, conferences, drained, probe: 0-5 answers, 6 timeout, 7 refused)
    (0u32..1500, 0u32..6, any::<bool>(), 0u8..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever the pool, a scale-in victim is a drained bridge that hosts nothing, a
    /// drain is of a bridge taking conferences, and an undrain of a drained one.
    #[test]
    fn victims_are_always_drained_empty_bridges(
        bridges in proptest::collection::vec(arb_bridge(), 1..12),
        min in 0u32..4,
        low_for in 0u64..1200,
        failed in 0usize..2,
    ) {
        let instances: Vec<_> = bridges
            .iter()
            .enumerate()
            .map(|(k, (stress, confs, drain, probe))| {
                let id = format!("i-{k:02}");
                match probe {
                    6 => svc(&id, "timeout"),
                    7 => InstanceObservation { drain_requested: *drain, ..svc(&id, "refused") },
                    _ => bridge(&id, if *confs == 0 { 0 } else { *stress }, *confs, *drain),
                }
            })
            .collect();
        let n = instances.len() as u32;
        let mut obs = observation(group(min.min(n), 20, n), instances);
        obs.jicofo.shards_failed = failed;
        let (p, _) = plan(&obs, &state(&obs, Some(NOW - low_for)), &jvb(&[]), NOW);
        let find = |id: &InstanceId| obs.instances.iter().find(|i| &i.id == id).unwrap();
        for v in &p.victims {
            prop_assert!(drained_and_empty(find(v)), "{}", p.summary());
        }
        for d in &p.drain {
            let load = match &find(d).probe { Probe::Status(s) => s.load, _ => None };
            prop_assert!(load.is_some_and(|l| l.takes_conferences()), "{}", p.summary());
        }
        for u in &p.undrain {
            prop_assert!(find(u).drain_requested);
        }
        if failed > 0 {
            prop_assert!(p.victims.is_empty() && p.drain.is_empty());
        }
        prop_assert!(p.desired.is_none_or(|d| d >= obs.group.min));
    }
}
