//! The model's parameters and the per-request draws every policy shares.
//!
//! What happens to a recording once it is served (how long its finalize/upload keeps the
//! recorder BUSY, whether the Jibri comes out of it UNHEALTHY) is drawn once per request from
//! the seed, not per run: every policy, and the clairvoyant bound, face the same luck.

use crate::rng::{Rng, Stream};
use crate::trace::Trace;

/// The modeled world: EC2 Auto Scaling, the recorders, Jicofo. Defaults are the README's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelParams {
    /// Launch → recorder available: log-normal with this median (s)...
    pub boot_median_s: f64,
    /// ...this log-space standard deviation...
    pub boot_sigma: f64,
    /// ...clamped to [min, max] (s).
    pub boot_min_s: u64,
    pub boot_max_s: u64,
    /// Launch → `InService` (EC2 running, status checks). The Jibri answers later, at boot.
    pub in_service_after_s: u64,
    /// Finalize/upload after a recording (BUSY throughout): `base + per recorded hour`,
    /// times a log-normal jitter of this sigma.
    pub finalize_base_s: f64,
    pub finalize_per_hour_s: f64,
    pub finalize_sigma: f64,
    /// Probability that a Jibri is UNHEALTHY (sticky) after a session.
    pub unhealthy_probability: f64,
    /// The Auto Scaling group acts on a desired-capacity gap this often (s).
    pub asg_period_s: u64,
    /// Lifecycle event → termination guard invocation (EventBridge delivery, s).
    pub guard_delay_s: u64,
    /// Terminate hook `HeartbeatTimeout` (s); `DefaultResult` ABANDON.
    pub terminate_heartbeat_timeout_s: u64,
    /// Launch hook `HeartbeatTimeout` (s); `DefaultResult` CONTINUE.
    pub launch_heartbeat_timeout_s: u64,
    /// AWS's global cap on a lifecycle action (48 h).
    pub hook_global_timeout_s: u64,
    /// The group's bounds (a policy may narrow them).
    pub min: u32,
    pub max: u32,
    /// EC2 bills per second with a 60 s minimum per instance.
    pub min_billed_s: u64,
    /// Warm-pool start → recorder available: log-normal median (s), sigma, clamp. AWS's
    /// own warm-pool sample measured 36 s for a stopped instance against 243 s cold.
    pub warm_boot_median_s: f64,
    pub warm_boot_sigma: f64,
    pub warm_boot_min_s: u64,
    pub warm_boot_max_s: u64,
    /// Stopping an instance (back into the warm pool), s.
    pub stop_s: u64,
    /// A stopped instance's cost per second, as a share of a running one's (its EBS
    /// volume: a 30 GB gp3 volume against an m5.xlarge is about 1.7 %).
    pub stopped_cost_share: f64,
    /// A recording's conference begins this long before it (exponential mean, s; an
    /// assumption: Jicofo's stats say nothing of a conference's intent to record).
    pub conference_lead_mean_s: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        Self {
            boot_median_s: 180.0,
            boot_sigma: 0.2,
            boot_min_s: 120,
            boot_max_s: 420,
            in_service_after_s: 50,
            finalize_base_s: 20.0,
            finalize_per_hour_s: 60.0,
            finalize_sigma: 0.3,
            unhealthy_probability: 0.01,
            asg_period_s: 10,
            guard_delay_s: 2,
            terminate_heartbeat_timeout_s: 900,
            launch_heartbeat_timeout_s: 1200,
            hook_global_timeout_s: 48 * 3600,
            min: 0,
            max: 100,
            min_billed_s: 60,
            warm_boot_median_s: 40.0,
            warm_boot_sigma: 0.25,
            warm_boot_min_s: 25,
            warm_boot_max_s: 120,
            stop_s: 30,
            stopped_cost_share: 0.02,
            conference_lead_mean_s: 90.0,
        }
    }
}

impl ModelParams {
    /// Boot latency of the `n`-th launch of a run (the same for every policy).
    pub fn boot_latency(&self, seed: u64, n: u64) -> u64 {
        let mut r = Rng::derive(seed, Stream::Boot, n);
        (r.lognormal(self.boot_median_s, self.boot_sigma).round() as u64)
            .clamp(self.boot_min_s, self.boot_max_s)
    }

    /// Latency of the `n`-th warm start of a run.
    pub fn warm_boot_latency(&self, seed: u64, n: u64) -> u64 {
        let mut r = Rng::derive(seed, Stream::WarmBoot, n);
        (r.lognormal(self.warm_boot_median_s, self.warm_boot_sigma)
            .round() as u64)
            .clamp(self.warm_boot_min_s, self.warm_boot_max_s)
    }

    /// Seconds billed for an instance that ran `[launched, ended)`.
    pub fn billed_s(&self, launched: u64, ended: u64) -> u64 {
        ended.saturating_sub(launched).max(self.min_billed_s)
    }
}

/// One request with what happens to it once served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    pub start_s: u64,
    pub duration_s: u64,
    /// Finalize/upload after the recording, recorder still BUSY.
    pub finalize_s: u64,
    /// The Jibri is UNHEALTHY after this session.
    pub leaves_unhealthy: bool,
    /// Its conference began this long before the recording; a companion conference that
    /// records nothing began `companion_lead_s` before it. Both end with the recording.
    pub lead_s: u64,
    pub companion_lead_s: u64,
}

impl Job {
    /// When the recorder is free again (recording + finalize).
    pub fn busy_until(&self) -> u64 {
        self.start_s + self.duration_s + self.finalize_s
    }
}

/// A trace with its per-request draws, shared by every policy of one comparison.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Workload {
    pub name: String,
    pub jobs: Vec<Job>,
    pub horizon_s: u64,
    pub seed: u64,
}

impl Workload {
    pub fn new(trace: &Trace, params: &ModelParams, seed: u64) -> Self {
        let jobs = trace
            .requests
            .iter()
            .enumerate()
            .map(|(n, q)| {
                let mut r = Rng::derive(seed, Stream::Request, n as u64);
                let hours = q.duration_s as f64 / 3600.0;
                let finalize = (params.finalize_base_s + params.finalize_per_hour_s * hours)
                    * r.lognormal(1.0, params.finalize_sigma);
                let mut c = Rng::derive(seed, Stream::Conference, n as u64);
                let lead =
                    |c: &mut Rng| (c.exp(params.conference_lead_mean_s).min(900.0)).round() as u64;
                Job {
                    start_s: q.start_s,
                    duration_s: q.duration_s,
                    finalize_s: finalize.round().max(1.0) as u64,
                    leaves_unhealthy: r.chance(params.unhealthy_probability),
                    lead_s: lead(&mut c).min(q.start_s),
                    companion_lead_s: lead(&mut c).min(q.start_s),
                }
            })
            .collect();
        Self {
            name: trace.name.clone(),
            jobs,
            horizon_s: trace.horizon_s,
            seed,
        }
    }

    /// Conferences running at `t` (Jicofo's `conferences`): each recording's own, and a
    /// companion that records nothing.
    pub fn conferences_at(&self, t: u64) -> u64 {
        self.jobs
            .iter()
            .filter(|j| t < j.start_s + j.duration_s)
            .map(|j| {
                u64::from(j.start_s - j.lead_s <= t)
                    + u64::from(j.start_s - j.companion_lead_s <= t)
            })
            .sum()
    }

    /// Highest number of recorders busy at once if every request is served at once.
    pub fn peak_busy(&self) -> u32 {
        let mut ev: Vec<(u64, i32)> = self
            .jobs
            .iter()
            .flat_map(|j| [(j.start_s, 1), (j.busy_until(), -1)])
            .collect();
        // Ends before starts at the same second: a recorder freed at t serves a start at t.
        ev.sort_by_key(|&(t, d)| (t, d));
        let (mut cur, mut peak) = (0i32, 0i32);
        for (_, d) in ev {
            cur += d;
            peak = peak.max(cur);
        }
        peak as u32
    }

    /// Recordings in progress at `t` (demand, recording only: what users asked for).
    pub fn demand_at(&self, t: u64) -> u32 {
        self.jobs
            .iter()
            .take_while(|j| j.start_s <= t)
            .filter(|j| t < j.start_s + j.duration_s)
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Request;

    #[test]
    fn billing_is_per_second_with_a_minute_minimum() {
        let p = ModelParams::default();
        assert_eq!(p.billed_s(100, 130), 60);
        assert_eq!(p.billed_s(100, 160), 60);
        assert_eq!(p.billed_s(100, 161), 61);
        assert_eq!(p.billed_s(0, 3600), 3600);
        assert_eq!(p.billed_s(10, 10), 60);
    }

    #[test]
    fn boot_latency_is_clamped_and_shared_across_runs() {
        let p = ModelParams::default();
        let all: Vec<u64> = (0..2000).map(|n| p.boot_latency(9, n)).collect();
        assert!(all
            .iter()
            .all(|b| (p.boot_min_s..=p.boot_max_s).contains(b)));
        let mut sorted = all.clone();
        sorted.sort();
        assert!(
            (170..=190).contains(&sorted[1000]),
            "median {}",
            sorted[1000]
        );
        assert_eq!(p.boot_latency(9, 17), all[17]);
    }

    #[test]
    fn peak_counts_overlap_with_finalize() {
        let t = Trace::new(
            "t",
            vec![
                Request {
                    start_s: 0,
                    duration_s: 100,
                },
                Request {
                    start_s: 50,
                    duration_s: 100,
                },
                Request {
                    start_s: 1000,
                    duration_s: 10,
                },
            ],
            None,
        );
        let w = Workload::new(&t, &ModelParams::default(), 1);
        assert_eq!(w.peak_busy(), 2);
        assert_eq!(w.demand_at(60), 2);
        assert_eq!(w.demand_at(120), 1);
    }
}
