//! jibri-sim: the controller's real, pure `plan()` (and the guard's `decide()`) driven against
//! a modeled EC2 Auto Scaling group, modeled Jibri recorders and Jicofo, next to the
//! baselines people run today and a clairvoyant bound, on the same traces. It measures the
//! two numbers an autoscaler is judged by at once: recordings refused, and instance-hours
//! paid. See `sim/README.md` for the model, the traces and how to read the report.

pub mod baselines;
pub mod bound;
pub mod bridges;
pub mod conferences;
pub mod history;
pub mod ours;
pub mod report;
pub mod rng;
pub mod run;
pub mod trace;
pub mod workload;
pub mod world;

use run::{Policy, RunResult};
use workload::{ModelParams, Workload};

/// The policies of the standard comparison, ours first: the defaults, the defaults with a
/// managed warm pool, then each lever off (its worth is the difference), then the
/// hand-fitted calendar configuration of the first simulator study, then the baselines.
pub fn standard_policies() -> Vec<Box<dyn Policy>> {
    let warm = ("WARM_POOL_MODE", "managed");
    let mut no_history = ours::Ours::with("ours − history (a new pool's first day)", &[]);
    no_history.history = false;
    vec![
        Box::new(ours::Ours::default_config()),
        Box::new(ours::Ours::with("ours + warm pool", &[warm])),
        Box::new(ours::Ours::with(
            "ours + warm pool − forecast",
            &[warm, ("FORECAST", "off")],
        )),
        Box::new(ours::Ours::with("ours − forecast", &[("FORECAST", "off")])),
        Box::new(ours::Ours::with(
            "ours − leading signals",
            &[("LEADING_SIGNALS", "off")],
        )),
        Box::new(ours::Ours::with(
            "ours − measured boot",
            &[("BOOT_LATENCY_LEARN", "off")],
        )),
        Box::new(no_history),
        Box::new(ours::Ours::workday_calendar()),
        Box::new(baselines::StaticPool { headroom: 0 }),
        Box::new(baselines::CronAlarm::default()),
        Box::new(baselines::FreeMetric::default()),
        Box::new(baselines::JitsiAutoscaler::default()),
    ]
}

/// Every policy's run on one workload, and the bound.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub workload: String,
    pub bound: bound::Bound,
    /// [`bound::online_floor`] of the workload, in seconds.
    pub online_floor_s: u64,
    pub runs: Vec<RunResult>,
}

/// Runs `policies` on `work` and computes the bound with the model's shortest boot.
pub fn compare(work: &Workload, p: &ModelParams, policies: Vec<Box<dyn Policy>>) -> Comparison {
    let bound = bound::clairvoyant(work, p.boot_min_s, p.min_billed_s);
    let runs = policies
        .into_iter()
        .map(|mut pol| run::run(pol.as_mut(), work, p))
        .collect();
    Comparison {
        workload: work.name.clone(),
        bound,
        online_floor_s: bound::online_floor(work),
        runs,
    }
}
