//! One run: a policy against the world over a workload, one second at a time, and what it
//! cost and refused.

use crate::workload::{Job, ModelParams, Workload};
use crate::world::{Counters, GroupSetup, Sample, World};

/// A scaling policy: sets its group up, then acts on the world every second it wants to.
pub trait Policy {
    fn name(&self) -> String;
    /// Before the run (e.g. living the days before the trace); nothing by default.
    fn prepare(&mut self, _p: &ModelParams, _w: &Workload) {}
    /// Which history a learning policy lives before a trace; ignored by the others.
    fn set_history(&mut self, _h: &crate::history::HistorySource) {}
    /// Settings applied on top of a configuration of ours (`bench-policy --set`), after
    /// its own; ignored by the baselines.
    fn set_overrides(&mut self, _extra: &[(String, String)]) -> anyhow::Result<()> {
        Ok(())
    }
    fn setup(&self, p: &ModelParams, w: &Workload) -> GroupSetup;
    /// Called every second, after Jicofo served that second's requests and before the
    /// Auto Scaling group acts.
    fn step(&mut self, w: &mut World, jobs: &[Job]);
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunResult {
    pub trace: String,
    pub policy: String,
    pub setup: GroupSetup,
    pub requests: u64,
    pub refused: u64,
    pub busy_killed: u64,
    pub recordings_cut: u64,
    pub billed_s: u64,
    /// p95 over refused requests of the seconds until a recorder was available again.
    pub p95_recovery_s: Option<u64>,
    /// Capacity changes the policy made: `SetDesiredCapacity` that changed it, plus
    /// `TerminateInstanceInAutoScalingGroup` calls.
    pub scale_actions: u64,
    pub launches: u64,
    pub counters: Counters,
    pub samples: Vec<Sample>,
    /// `(launched, terminated or horizon)` of every instance of the run.
    pub ledger: Vec<(u64, u64)>,
}

impl RunResult {
    pub fn instance_hours(&self) -> f64 {
        self.billed_s as f64 / 3600.0
    }

    pub fn refused_pct(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            100.0 * self.refused as f64 / self.requests as f64
        }
    }
}

/// The `q` quantile (nearest rank) of `v`.
pub fn quantile(v: &[u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

/// Runs `policy` over `work` in a world of `p` (after [`Policy::prepare`]).
pub fn run(policy: &mut dyn Policy, work: &Workload, p: &ModelParams) -> RunResult {
    policy.prepare(p, work);
    simulate(policy, work, p, work.horizon_s)
}

/// Runs `policy` over `work` until `horizon_s`, without preparing it.
pub fn simulate(
    policy: &mut dyn Policy,
    work: &Workload,
    p: &ModelParams,
    horizon_s: u64,
) -> RunResult {
    let setup = policy.setup(p, work);
    let mut world = World::new(p.clone(), setup.clone(), work.seed);
    let mut next = 0;
    for t in 0..horizon_s {
        world.advance(t, &work.jobs);
        while next < work.jobs.len() && work.jobs[next].start_s <= t {
            world.request(next, &work.jobs[next]);
            next += 1;
        }
        policy.step(&mut world, &work.jobs);
        world.asg_step();
        world.end_second();
    }
    world.finish(horizon_s);
    let c = world.c.clone();
    RunResult {
        trace: work.name.clone(),
        policy: policy.name(),
        setup,
        requests: c.requests,
        refused: c.refused,
        busy_killed: c.busy_killed,
        recordings_cut: c.recordings_cut,
        billed_s: world.billed_s(horizon_s),
        ledger: std::mem::take(&mut world.ledger),
        p95_recovery_s: quantile(&c.refusal_recovery_s, 0.95),
        scale_actions: c.desired_changes + c.terminate_calls,
        launches: c.launches,
        samples: std::mem::take(&mut world.samples),
        counters: c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_nearest_rank() {
        assert_eq!(quantile(&[], 0.95), None);
        assert_eq!(quantile(&[7], 0.95), Some(7));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.95), Some(95));
        assert_eq!(quantile(&[3, 1, 2], 0.5), Some(2));
    }
}
