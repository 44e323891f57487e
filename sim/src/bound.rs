//! The clairvoyant bound: the cheapest instance-seconds that refuse nothing, for a policy
//! that knows every future request, its duration, finalize and health outcome.
//!
//! Each recorder is launched exactly one boot latency `L` before the request it first
//! serves. A recorder that frees up is reused by the next request if that request comes
//! within `L` (keeping it idle costs the gap, a new one costs `L` of boot), else it is
//! terminated when it frees up. Requests take the most recently freed recorder (LIFO),
//! which makes every idle gap as short as it can be; a recorder left UNHEALTHY is never
//! reused. `L` is the model's *shortest* boot latency, so no run of the simulator, whatever
//! its luck, can serve every request for less: a lower bound, checked by the tests.

use crate::workload::Workload;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bound {
    pub billed_s: u64,
    pub launches: u64,
    /// The boot latency assumed.
    pub boot_s: u64,
}

impl Bound {
    pub fn instance_hours(&self) -> f64 {
        self.billed_s as f64 / 3600.0
    }
}

/// The bound for `work` with boot latency `boot_s` and a per-instance minimum bill.
pub fn clairvoyant(work: &Workload, boot_s: u64, min_billed_s: u64) -> Bound {
    #[derive(Clone, Copy)]
    struct Recorder {
        launched: u64,
        free_at: u64,
        /// Its current session leaves it UNHEALTHY: terminated when it frees up.
        unhealthy_after: bool,
    }
    // Jobs by start; ends processed before starts at the same second (reuse with no gap).
    let mut order: Vec<usize> = (0..work.jobs.len()).collect();
    order.sort_by_key(|&j| (work.jobs[j].start_s, j));
    let mut ends: Vec<(u64, usize)> = Vec::new(); // (busy_until, recorder index), a min-heap by hand
    let mut recorders: Vec<Recorder> = Vec::new();
    let mut free: Vec<usize> = Vec::new(); // LIFO stack of free recorder indices
    let mut finished: Vec<(u64, u64)> = Vec::new(); // (launched, terminated)
    let mut launches = 0;
    for &j in &order {
        let job = work.jobs[j];
        // Free everything that ended by this start, in the order they ended.
        ends.sort_by(|a, b| b.cmp(a));
        while let Some(&(t, r)) = ends.last() {
            if t > job.start_s {
                break;
            }
            ends.pop();
            recorders[r].free_at = t;
            if recorders[r].unhealthy_after {
                finished.push((recorders[r].launched, t));
            } else {
                free.push(r);
            }
        }
        // Reuse the most recently freed recorder if waiting for this start is cheaper than
        // a new boot; every recorder below it on the stack has waited longer still.
        let reuse = match free.last() {
            Some(&r) if job.start_s - recorders[r].free_at <= boot_s => free.pop(),
            _ => None,
        };
        if reuse.is_none() {
            // Nothing left on the stack will ever be cheaper than a new boot: terminate.
            for r in free.drain(..) {
                finished.push((recorders[r].launched, recorders[r].free_at));
            }
        }
        let r = reuse.unwrap_or_else(|| {
            launches += 1;
            recorders.push(Recorder {
                launched: job.start_s.saturating_sub(boot_s),
                free_at: 0,
                unhealthy_after: false,
            });
            recorders.len() - 1
        });
        recorders[r].unhealthy_after = job.leaves_unhealthy;
        ends.push((job.busy_until(), r));
    }
    for (t, r) in ends {
        finished.push((recorders[r].launched, t));
    }
    for r in free {
        finished.push((recorders[r].launched, recorders[r].free_at));
    }
    let billed_s = finished
        .iter()
        .map(|&(a, b)| b.saturating_sub(a).max(min_billed_s))
        .sum();
    Bound {
        billed_s,
        launches,
        boot_s,
    }
}

/// The online floor: the fewest instance-seconds *any* policy that does not know the future
/// can bill while refusing nothing. Every recording holds its recorder from start through
/// finalize, and since any moment may bring a start that a booting recorder cannot take,
/// one more recorder must be idle at every moment of the trace. Exact for the trace:
/// Σ (recording + finalize) + the trace's span. Unlike the clairvoyant bound it is a
/// limit an online policy can approach; it can exceed the clairvoyant bound, which keeps
/// nobody idle.
pub fn online_floor(work: &Workload) -> u64 {
    let busy: u64 = work
        .jobs
        .iter()
        .map(|j| j.busy_until().saturating_sub(j.start_s))
        .sum();
    busy + work.horizon_s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Job, Workload};

    fn work(jobs: Vec<Job>) -> Workload {
        Workload {
            name: "t".into(),
            horizon_s: 100_000,
            jobs,
            seed: 0,
        }
    }

    fn job(start_s: u64, duration_s: u64) -> Job {
        Job {
            start_s,
            duration_s,
            finalize_s: 0,
            leaves_unhealthy: false,
            lead_s: 0,
            companion_lead_s: 0,
        }
    }

    #[test]
    fn the_online_floor_is_every_busy_second_plus_one_idle_recorder_throughout() {
        let mut a = job(1000, 600);
        a.finalize_s = 60;
        let w = work(vec![a, job(1200, 300)]);
        assert_eq!(online_floor(&w), 660 + 300 + 100_000);
        assert_eq!(online_floor(&work(vec![])), 100_000);
    }

    #[test]
    fn one_request_costs_its_boot_and_its_session() {
        let b = clairvoyant(&work(vec![job(1000, 600)]), 120, 60);
        assert_eq!(b.billed_s, 720);
        assert_eq!(b.launches, 1);
    }

    #[test]
    fn a_short_gap_is_bridged_and_a_long_one_is_not() {
        // Gap 100 < 120: reuse (100 idle); gap 500 > 120: new boot (120).
        let b = clairvoyant(
            &work(vec![job(1000, 600), job(1700, 600), job(2800, 600)]),
            120,
            60,
        );
        assert_eq!(b.billed_s, 3 * 600 + 120 + 100 + 120);
        assert_eq!(b.launches, 2);
    }

    #[test]
    fn an_unhealthy_recorder_is_not_reused() {
        let mut a = job(1000, 600);
        a.leaves_unhealthy = true;
        let b = clairvoyant(&work(vec![a, job(1610, 600)]), 120, 60);
        assert_eq!(b.launches, 2);
        assert_eq!(b.billed_s, 2 * (600 + 120));
    }

    /// Exhaustive optimum over every predecessor assignment, for small sets of jobs.
    fn brute_force(jobs: &[Job], boot: u64) -> u64 {
        fn go(k: usize, jobs: &[Job], used: &mut Vec<bool>, boot: u64) -> u64 {
            if k == jobs.len() {
                return 0;
            }
            let j = jobs[k];
            // Fresh recorder.
            let mut best = boot + go(k + 1, jobs, used, boot);
            for p in 0..k {
                let q = jobs[p];
                if !used[p] && !q.leaves_unhealthy && q.busy_until() <= j.start_s {
                    used[p] = true;
                    best = best.min(j.start_s - q.busy_until() + go(k + 1, jobs, used, boot));
                    used[p] = false;
                }
            }
            best
        }
        let busy: u64 = jobs.iter().map(|j| j.busy_until() - j.start_s).sum();
        busy + go(0, jobs, &mut vec![false; jobs.len()], boot)
    }

    #[test]
    fn lifo_reuse_is_optimal_on_small_random_cases() {
        let mut r = crate::rng::Rng::derive(3, crate::rng::Stream::Test, 0);
        for _ in 0..400 {
            let n = r.range(1, 7) as usize;
            let mut jobs: Vec<Job> = (0..n)
                .map(|_| Job {
                    start_s: 400 + r.below(1500),
                    duration_s: r.range(60, 500),
                    finalize_s: r.below(30),
                    leaves_unhealthy: r.chance(0.15),
                    lead_s: 0,
                    companion_lead_s: 0,
                })
                .collect();
            jobs.sort_by_key(|j| j.start_s);
            let boot = r.range(60, 300);
            let b = clairvoyant(&work(jobs.clone()), boot, 1);
            assert_eq!(b.billed_s, brute_force(&jobs, boot), "{jobs:?} boot {boot}");
        }
    }
}
