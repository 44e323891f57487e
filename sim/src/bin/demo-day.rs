//! `demo-day`: what `make demo` (scripts/demo.py) needs from the simulator, as one JSON
//! object on stdout.
//!
//! ```text
//! demo-day --day-epoch EPOCH [--window HH:MM-HH:MM]... [--force-zero HH:MM] [--trace NAME] [--seed N]
//! ```
//!
//! - `state`: the controller's `PoolState` after the week before the trace (our `plan()` with a
//!   managed warm pool, living the days `history::placement` gives it, exactly as
//!   `bench-policy`'s "ours + warm pool" does), moved to the demo's calendar: every time in it
//!   is shifted by `day_epoch − the trace's own Monday` (a whole number of weeks when the
//!   demo's day is a Monday, so the hour-of-week bins keep their meaning), and what belongs to
//!   the simulator's instances (idle marks, held hooks, the busy set, boot clocks, warm-pool
//!   sightings, the lease, Jicofo's counters) is dropped: the test bed's instances are others.
//!   This is what a pool that has lived a week would have in S3.
//! - `jobs`: the requests of the trace that start in the windows (and before `--force-zero`),
//!   with the model's per-request draws (finalize time): the demand the demo drives.
//! - `conferences`: Jicofo's conference count at each minute of the windows for that demand.
//! - `ours_at_start`: the group's desired capacity and warm-pool size our policy had in the
//!   simulator when the first window begins (where the demo's group starts);
//!   `ours_max_desired`, `peak_busy`: what the group's MaxSize must exceed.
//! - `compare`: every baseline of `bench-policy`, and our policy with a warm pool, in the
//!   simulator on that same demand (the requests outside the windows removed); `best` is
//!   the baseline with the fewest failed recordings (refused + killed busy, the cheaper on a
//!   tie, as `bench-policy`'s goals pick it), `best_autoscaling` the same without the static
//!   pool.
//!
//! Windows default to the whole working day (`07:30-18:30`). Deterministic for a seed.

use anyhow::{bail, Context};
use jibri_sim::baselines;
use jibri_sim::ours::Ours;
use jibri_sim::run::{self, Policy};
use jibri_sim::trace::{gen, Trace};
use jibri_sim::workload::{ModelParams, Workload};
use serde_json::json;

const DAY: u64 = 86_400;

struct Args {
    day_epoch: u64,
    windows: Vec<(u64, u64)>,
    force_zero: Option<u64>,
    trace: String,
    seed: u64,
}

fn hhmm(s: &str) -> anyhow::Result<u64> {
    let (h, m) = s
        .split_once(':')
        .with_context(|| format!("{s:?} is not HH:MM"))?;
    let (h, m): (u64, u64) = (h.parse()?, m.parse()?);
    if h > 24 || m > 59 {
        bail!("{s:?} is not a time of day");
    }
    Ok(h * 3600 + m * 60)
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        day_epoch: 0,
        windows: Vec::new(),
        force_zero: None,
        trace: "workday".into(),
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--day-epoch" => a.day_epoch = val("--day-epoch")?.parse().context("--day-epoch")?,
            "--window" => {
                let v = val("--window")?;
                let (from, to) = v.split_once('-').context("--window is HH:MM-HH:MM")?;
                let (from, to) = (hhmm(from)?, hhmm(to)?);
                if to <= from {
                    bail!("--window {v}: ends before it begins");
                }
                a.windows.push((from, to));
            }
            "--force-zero" => a.force_zero = Some(hhmm(&val("--force-zero")?)?),
            "--trace" => a.trace = val("--trace")?,
            "--seed" => a.seed = val("--seed")?.parse().context("--seed")?,
            "-h" | "--help" => {
                println!("usage: demo-day --day-epoch EPOCH [--window HH:MM-HH:MM]... [--force-zero HH:MM] [--trace NAME] [--seed N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.day_epoch == 0 || a.day_epoch % DAY != 0 {
        bail!("--day-epoch must be a UTC midnight (epoch seconds)");
    }
    if a.windows.is_empty() {
        a.windows.push((7 * 3600 + 1800, 18 * 3600 + 1800));
    }
    Ok(a)
}

/// The controller's state (its JSON, as stored in S3) moved by `shift` seconds, without what
/// belongs to the simulator's instances. Worked on the JSON so that this stays a reader of
/// the stored format, whichever crate the type lives in.
fn moved(state: &serde_json::Value, shift: i64) -> anyhow::Result<serde_json::Value> {
    let t = |v: &serde_json::Value| -> anyhow::Result<serde_json::Value> {
        let v = v.as_u64().context("a time in the state is not a number")?;
        Ok(json!(v.saturating_add_signed(shift)))
    };
    let mut out = serde_json::Map::new();
    for key in ["version", "initialized", "demand", "boot"] {
        out.insert(key.into(), state[key].clone());
    }
    if let Some(start) = out["demand"].pointer("/hour/start").cloned() {
        out["demand"]["hour"]["start"] = t(&start)?;
    }
    // Time series of (time, value) pairs.
    for key in ["recent_targets", "warm_targets", "starts"] {
        let pairs = state[key].as_array().cloned().unwrap_or_default();
        let shifted = pairs
            .iter()
            .map(|p| Ok(json!([t(&p[0])?, p[1].clone()])))
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.insert(key.into(), json!(shifted));
    }
    Ok(serde_json::Value::Object(out))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let p = ModelParams::default();
    let trace: Trace = gen::bundled(args.seed)
        .into_iter()
        .find(|t| t.name == args.trace)
        .with_context(|| format!("no bundled trace {:?}", args.trace))?;
    let full = Workload::new(&trace, &p, args.seed);

    // The week before, lived by our plan() with a managed warm pool.
    let mut week = Ours::with("ours + warm pool", &[("WARM_POOL_MODE", "managed")]);
    week.prepare(&p, &full);
    let trace_epoch = jibri_sim::history::placement(&args.trace, args.seed).epoch;
    let shift = args.day_epoch as i64 - trace_epoch as i64;
    let state = moved(&serde_json::to_value(&week.state)?, shift)?;

    // The demo's demand: the requests that start in a window (and before the group is
    // forced to 0), with the same draws as in the whole day.
    let in_windows = |t: u64| {
        args.windows.iter().any(|(a, b)| (*a..*b).contains(&t))
            && args.force_zero.is_none_or(|z| t < z)
    };
    let demo = Workload {
        name: full.name.clone(),
        jobs: full
            .jobs
            .iter()
            .filter(|j| in_windows(j.start_s))
            .copied()
            .collect(),
        horizon_s: full.horizon_s,
        seed: full.seed,
    };
    let mut conferences = Vec::new();
    for (a, b) in &args.windows {
        for m in (*a..*b).step_by(60) {
            conferences.push((m, demo.conferences_at(m)));
        }
    }

    // Every baseline, and ours, in the simulator on that demand.
    let policies: Vec<Box<dyn Policy>> = vec![
        Box::new(Ours::with(
            "ours + warm pool (simulator)",
            &[("WARM_POOL_MODE", "managed")],
        )),
        Box::new(baselines::StaticPool { headroom: 0 }),
        Box::new(baselines::CronAlarm::default()),
        Box::new(baselines::FreeMetric::default()),
        Box::new(baselines::JitsiAutoscaler::default()),
    ];
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut ours_max_desired = 0;
    let mut ours_at_start = json!(null);
    let first = args.windows.iter().map(|w| w.0).min().unwrap_or(0);
    for mut pol in policies {
        let r = run::run(pol.as_mut(), &demo, &p);
        if !r.counters.violations.is_empty() {
            bail!(
                "{}: model invariant broken: {:?}",
                r.policy,
                r.counters.violations
            );
        }
        if r.policy.starts_with("ours") {
            ours_max_desired = r.samples.iter().map(|s| s.desired).max().unwrap_or(0);
            if let Some(s) = r.samples.iter().find(|s| s.t >= first) {
                ours_at_start = json!({"t": s.t, "desired": s.desired, "warm": s.warm});
            }
        }
        rows.push(json!({
            "policy": r.policy,
            "requests": r.requests,
            "refused": r.refused,
            "refused_pct": r.refused_pct(),
            "busy_killed": r.busy_killed,
            "recordings_cut": r.recordings_cut,
            "instance_hours": r.instance_hours(),
            "guard_holds": r.counters.guard_holds,
        }));
    }
    let pick = |dynamic_only: bool| {
        rows.iter()
            .filter(|r| !r["policy"].as_str().unwrap_or("").starts_with("ours"))
            .filter(|r| !dynamic_only || !r["policy"].as_str().unwrap_or("").starts_with("static"))
            .min_by(|a, b| {
                let failed = |r: &serde_json::Value| {
                    r["refused"].as_u64().unwrap_or(0) + r["busy_killed"].as_u64().unwrap_or(0)
                };
                failed(a).cmp(&failed(b)).then(
                    a["instance_hours"]
                        .as_f64()
                        .unwrap_or(0.0)
                        .total_cmp(&b["instance_hours"].as_f64().unwrap_or(0.0)),
                )
            })
            .cloned()
    };
    let best = pick(false);
    let best_autoscaling = pick(true);
    let count = |v: &serde_json::Value| v.as_object().map_or(0, |o| o.len());
    let out = json!({
        "trace": args.trace,
        "seed": args.seed,
        "day_epoch": args.day_epoch,
        "shift_s": shift,
        "windows": args.windows,
        "force_zero": args.force_zero,
        "state": state,
        "learned": {
            "hours_of_week": count(&state["demand"]["week"]),
            "hours_of_day": count(&state["demand"]["day"]),
            "per_conference": state["demand"]["per_conference"],
            "boot": state["boot"],
        },
        "jobs": demo.jobs.iter().map(|j| json!({
            "start_s": j.start_s, "duration_s": j.duration_s, "finalize_s": j.finalize_s,
        })).collect::<Vec<_>>(),
        "conferences": conferences,
        "peak_busy": demo.peak_busy(),
        "ours_max_desired": ours_max_desired,
        "ours_at_start": ours_at_start,
        "model": {
            "boot_median_s": p.boot_median_s,
            "warm_boot_median_s": p.warm_boot_median_s,
        },
        "compare": rows,
        "best": best,
        "best_autoscaling": best_autoscaling,
        "took_ms": started.elapsed().as_millis() as u64,
    });
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jibri_core::state::PoolState;

    /// The seeded state is a `PoolState` the controller reads: its learned model kept, its
    /// times moved, nothing of the simulator's instances left.
    #[test]
    fn the_week_lived_is_a_state_the_controller_reads_moved_to_the_demo_day() {
        let p = ModelParams::default();
        let trace = gen::bundled(1)
            .into_iter()
            .find(|t| t.name == "workday")
            .unwrap();
        let mut week = Ours::with("ours + warm pool", &[("WARM_POOL_MODE", "managed")]);
        week.prepare(&p, &Workload::new(&trace, &p, 1));
        let shift = 14 * DAY as i64;
        let raw = moved(&serde_json::to_value(&week.state).unwrap(), shift).unwrap();
        let state: PoolState = serde_json::from_value(raw).unwrap();
        assert_eq!(state.demand.week, week.state.demand.week);
        assert_eq!(state.demand.minute, week.state.demand.minute);
        assert_eq!(state.boot, week.state.boot);
        assert!(state.demand.week.len() > 100 && state.boot.warm.samples >= 3);
        assert_eq!(
            state.demand.hour.map(|h| h.start),
            week.state.demand.hour.map(|h| h.start + 14 * DAY)
        );
        assert!(
            state.idle_since.is_empty() && state.busy.is_empty() && state.in_service.is_empty()
        );
        assert!(state.lease.is_none() && state.jicofo_failures_total.is_none());
    }
}
