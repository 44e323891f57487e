//! The videobridge pool's simulator: ours (`POOL_KIND=jvb`) breaks no conference over
//! random worlds; the bundled conference trace is its generator's; the baselines behave as
//! documented.

use jibri_sim::bridges::{self, BridgePolicy, OursBridges};
use jibri_sim::conferences::{self, Conference, ConferenceTrace};
use jibri_sim::rng::{Rng, Stream};
use proptest::prelude::*;

/// The random day's length. Every conference starts before it: `Rng::range` includes its
/// upper end, so the background draws with `below`. With `range(0, DAY_S)`, CI's seed
/// 16249943345562528718 drew a conference at second 21 600, outside the day, which never
/// started; `breaks_none` now checks the generator's side of that, and the seed is pinned.
const DAY_S: u64 = 6 * 3600;

/// A random conference day: 6 h, bursts on the hour and half hour of random size, large
/// conferences more often than in the bundled trace.
fn random_trace(seed: u64) -> ConferenceTrace {
    let mut r = Rng::derive(seed, Stream::Test, 16);
    let mut confs = Vec::new();
    let burst = r.range(0, 40) as f64;
    for slot in (0..DAY_S).step_by(1800) {
        for _ in 0..r.poisson(burst) {
            confs.push(Conference {
                start_s: slot + r.range(0, 240),
                duration_s: r.range(120, 5400),
                participants: if r.chance(0.1) {
                    r.range(20, 150) as u32
                } else {
                    r.range(1, 12) as u32
                },
            });
        }
    }
    for _ in 0..r.poisson(30.0) {
        confs.push(Conference {
            start_s: r.below(DAY_S),
            duration_s: r.range(60, 7200),
            participants: r.range(1, 30) as u32,
        });
    }
    ConferenceTrace::new("random", confs, Some(DAY_S))
}

fn random_ours(seed: u64) -> OursBridges {
    let mut r = Rng::derive(seed, Stream::Test, 17);
    let low = r.range(0, 40);
    let high = r.range(low + 5, 90);
    let (low, high) = (format!("0.{low:02}"), format!("0.{high:02}"));
    let window = r.range(0, 1200).to_string();
    let grace = r.range(0, 600).to_string();
    let forecast = if r.chance(0.5) { "on" } else { "off" };
    let mut o = OursBridges::with(
        "ours (random)",
        &[
            ("JVB_STRESS_LOW", &low),
            ("JVB_STRESS_HIGH", &high),
            ("JVB_SCALE_IN_WINDOW_S", &window),
            ("IDLE_GRACE_S", &grace),
            ("FORECAST", forecast),
            ("SCALE_IN_MAX_PER_TICK", "10"),
        ],
    );
    o.history = false;
    o.min = r.range(0, 3) as u32;
    o
}

fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Ours on one random world: no conference broken, and every conference of the day
/// started (the generator keeps them all inside it).
fn breaks_none(seed: u64) -> Result<(), TestCaseError> {
    let t = random_trace(seed);
    prop_assert!(t.conferences.iter().all(|c| c.start_s < t.horizon_s));
    let mut o = random_ours(seed);
    let r = bridges::run(&mut o, &t, seed);
    prop_assert_eq!(r.counters.broken, 0, "seed {}", seed);
    prop_assert_eq!(
        r.counters.conferences,
        t.conferences.len() as u64,
        "seed {}",
        seed
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases())]

    /// Every bridge ours removes was drained and empty: no conference is ever broken, and
    /// every conference found a bridge whenever one answered.
    #[test]
    fn our_policy_never_breaks_a_conference(seed in any::<u64>()) {
        breaks_none(seed)?;
    }
}

/// Seeds a CI run found (the suite draws new ones each run, and persists none).
const SEEDS_CI_FOUND: &[u64] = &[16_249_943_345_562_528_718];

#[test]
fn the_seeds_ci_found_stay_fixed() {
    for &seed in SEEDS_CI_FOUND {
        breaks_none(seed).unwrap();
    }
}

#[test]
fn the_bundled_conference_trace_is_its_generators() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/traces/jvb/workday-conferences.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let t = ConferenceTrace::parse_csv("workday-conferences", &text).unwrap();
    assert_eq!(
        t,
        conferences::workday(1),
        "regenerate with `make sim-traces`"
    );
}

/// The bench's rows on the bundled day (issue 16's goal): ours breaks nothing and costs
/// less than every baseline that breaks nothing; it is no more overloaded than the
/// autoscaling one (jitsi-autoscaler); the static pool's overload is the floor the large
/// conferences impose (one of 120 endpoints overloads any bridge), which ours at the
/// field's band reaches within 2 % at under half the static pool's cost. Target tracking
/// (no drain) breaks conferences.
#[test]
fn on_the_bundled_day_ours_meets_issue_16s_goal() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/traces/jvb/workday-conferences.csv"
    );
    let t = ConferenceTrace::parse_csv(
        "workday-conferences",
        &std::fs::read_to_string(path).unwrap(),
    )
    .unwrap();
    let runs: Vec<_> = bridges::standard_policies()
        .into_iter()
        .map(|mut p: Box<dyn BridgePolicy>| bridges::run(p.as_mut(), &t, 1))
        .collect();
    let row = |prefix: &str| runs.iter().find(|r| r.policy.starts_with(prefix)).unwrap();
    let ours = row("ours (POOL_KIND=jvb, defaults");
    for r in runs.iter().filter(|r| r.policy.starts_with("ours")) {
        assert_eq!(r.counters.broken, 0, "{}", r.policy);
        assert_eq!(r.counters.no_bridge, 0, "{}", r.policy);
    }
    for b in runs
        .iter()
        .filter(|r| !r.policy.starts_with("ours") && r.counters.broken == 0)
    {
        assert!(ours.billed_s < b.billed_s, "{} is cheaper", b.policy);
    }
    let ja = row("jitsi-autoscaler");
    assert_eq!(ja.counters.broken, 0);
    assert!(ours.counters.overload_endpoint_s <= ja.counters.overload_endpoint_s);
    let (field, fixed) = (row("ours, band 0.1"), row("static"));
    assert!(
        field.counters.overload_endpoint_s as f64
            <= 1.02 * fixed.counters.overload_endpoint_s as f64
    );
    assert!(2 * field.billed_s < fixed.billed_s);
    assert!(row("CPU target tracking").counters.broken > 0);
}
