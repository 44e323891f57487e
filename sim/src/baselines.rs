//! The baselines, each from its public description, as a policy in the same world. None
//! gets a terminate hook or our guard: on scale-in they kill what their rules pick, busy or
//! not, as those tools do.
//!
//! - [`StaticPool`]: a fixed pool sized for the trace's peak, never scaled.
//! - [`CronAlarm`]: a cron polls every 10 s and publishes the available recorders to
//!   CloudWatch; an alarm on `available < threshold` (1-minute period) adds one instance
//!   through a simple scaling policy with a 400 s cooldown; instances are protected from
//!   scale-in, and each recorder's own cron unprotects it after an idle counter reaches its
//!   limit, so the scale-in alarm (`available > threshold`) removes an idle one. The race
//!   it leaves: a recorder that took a recording since its last poll is still unprotected.
//!   (P. Mishra, "Autoscaling Jibri Containers on AWS".)
//! - [`FreeMetric`]: every recorder pushes `1` to a CloudWatch metric each minute while it is
//!   free; alarms on the 1-minute Sum add one instance below the steady-state threshold and
//!   remove one above it (simple scaling, default 300 s cooldown); the group's default
//!   termination policy picks the victim, busy or not. (Telzee, "Jitsi Recorder
//!   Server/Jibri AutoScale using AWS".)
//! - [`JitsiAutoscaler`]: jitsi/jitsi-autoscaler's rules (`src/autoscaler.ts`,
//!   `scaleUpChoice`/`scaleDownChoice` for type `jibri`, `evalScaleConditionForAllPeriods`,
//!   `src/instance_launcher.ts` `getInstancesForScaleDownByAvailability`) with the settings
//!   jitsi/infra-provisioning `scripts/create-or-rotate-jibri-oracle.sh` creates Jibri groups
//!   with: 60 s periods; +1 when `available < scaleUpThreshold` (1) in each of the last 5;
//!   −1 when `available > scaleDownThreshold` (1) in each of the last 20; 300 s grace after
//!   any change; no change while the launcher has not reached the desired count; victims
//!   chosen provisioning first, then available, then busy.

use crate::run::Policy;
use crate::workload::{Job, ModelParams, Workload};
use crate::world::{GroupSetup, Jibri, Life, World};
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};

/// A fixed pool of the trace's peak concurrency (recording + finalize), plus `headroom`.
pub struct StaticPool {
    pub headroom: u32,
}

impl Policy for StaticPool {
    fn name(&self) -> String {
        "static (peak)".into()
    }

    fn setup(&self, p: &ModelParams, w: &Workload) -> GroupSetup {
        let n = (w.peak_busy() + self.headroom).clamp(p.min.max(1), p.max);
        GroupSetup {
            min: n,
            max: n,
            initial: n,
            terminate_hook: false,
            launch_hook: false,
            new_instances_protected: false,
            retain_on_abandon: false,
            warm_pool: false,
        }
    }

    fn step(&mut self, _w: &mut World, _jobs: &[Job]) {}
}

/// Cron + CloudWatch alarms + idle-counter scale-in protection.
pub struct CronAlarm {
    pub threshold: u32,
    pub poll_s: u64,
    pub cooldown_s: u64,
    /// Polls (of `poll_s`) idle before a recorder unprotects itself.
    pub idle_polls: u32,
    samples: Vec<u32>,
    idle_count: BTreeMap<u64, u32>,
    cooldown_until: u64,
}

impl Default for CronAlarm {
    fn default() -> Self {
        Self {
            threshold: 2,
            poll_s: 10,
            cooldown_s: 400,
            idle_polls: 60,
            samples: Vec::new(),
            idle_count: BTreeMap::new(),
            cooldown_until: 0,
        }
    }
}

impl Policy for CronAlarm {
    fn name(&self) -> String {
        "cron + alarm".into()
    }

    fn setup(&self, p: &ModelParams, _w: &Workload) -> GroupSetup {
        GroupSetup {
            min: p.min,
            max: p.max,
            initial: self.threshold.clamp(p.min, p.max),
            terminate_hook: false,
            launch_hook: false,
            new_instances_protected: true,
            retain_on_abandon: false,
            warm_pool: false,
        }
    }

    fn step(&mut self, w: &mut World, _jobs: &[Job]) {
        let now = w.now;
        if now % self.poll_s == 0 {
            self.samples.push(w.available());
        }
        // Each recorder's own cron, at its own phase within the poll period.
        let mut protect = Vec::new();
        let mut unprotect = Vec::new();
        for i in &w.instances {
            if (now + i.n) % self.poll_s != 0 || i.life != Life::InService {
                continue;
            }
            let count = self.idle_count.entry(i.n).or_insert(0);
            match i.jibri {
                // busyStatus IDLE (healthy or not).
                Jibri::Idle | Jibri::Unhealthy => {
                    *count += 1;
                    if *count >= self.idle_polls && i.protected {
                        unprotect.push(i.id.clone());
                    }
                }
                Jibri::Recording { .. } | Jibri::Finalizing { .. } => {
                    *count = 0;
                    if !i.protected {
                        protect.push(i.id.clone());
                    }
                }
                Jibri::Booting | Jibri::Exited => {}
            }
        }
        w.set_protection(&protect, true);
        w.set_protection(&unprotect, false);
        // CloudWatch evaluates the alarms once a minute on the last 1-minute period
        // (Average); an alarm in ALARM invokes its scaling policy every period, and the
        // simple scaling cooldown blocks any other activity.
        if now % 60 == 0 && now > 0 {
            let avg = self.samples.iter().map(|&s| f64::from(s)).sum::<f64>()
                / self.samples.len().max(1) as f64;
            self.samples.clear();
            let metric = avg
                .partial_cmp(&f64::from(self.threshold))
                .unwrap_or(Ordering::Equal);
            simple_scaling(w, metric, &mut self.cooldown_until, self.cooldown_s);
        }
    }
}

/// EC2 Auto Scaling simple scaling as both alarm-driven baselines use it: the free-capacity
/// metric below its threshold adds one instance, above it removes one, within [min, max],
/// and a change starts the cooldown that blocks the next.
fn simple_scaling(w: &mut World, metric: Ordering, cooldown_until: &mut u64, cooldown_s: u64) {
    if w.now < *cooldown_until {
        return;
    }
    let d = w.desired;
    let target = match metric {
        Ordering::Less if d < w.setup.max => d + 1,
        Ordering::Greater if d > w.setup.min => d - 1,
        _ => return,
    };
    if w.set_desired(target).is_ok() {
        *cooldown_until = w.now + cooldown_s;
    }
}

/// Per-minute "free recorder" metric, Sum alarms, default termination policy.
pub struct FreeMetric {
    pub steady_state: u32,
    pub cooldown_s: u64,
    sum: u32,
    cooldown_until: u64,
}

impl Default for FreeMetric {
    fn default() -> Self {
        Self {
            steady_state: 2,
            cooldown_s: 300,
            sum: 0,
            cooldown_until: 0,
        }
    }
}

impl Policy for FreeMetric {
    fn name(&self) -> String {
        "free-server metric".into()
    }

    fn setup(&self, p: &ModelParams, _w: &Workload) -> GroupSetup {
        GroupSetup {
            min: p.min,
            max: p.max,
            initial: self.steady_state.clamp(p.min, p.max),
            terminate_hook: false,
            launch_hook: false,
            new_instances_protected: false,
            retain_on_abandon: false,
            warm_pool: false,
        }
    }

    fn step(&mut self, w: &mut World, _jobs: &[Job]) {
        let now = w.now;
        // Each recorder's cron pushes once a minute, at its own second.
        self.sum += w
            .instances
            .iter()
            .filter(|i| (i.n * 7) % 60 == now % 60 && i.available())
            .count() as u32;
        if now % 60 == 0 && now > 0 {
            let sum = std::mem::take(&mut self.sum);
            simple_scaling(
                w,
                sum.cmp(&self.steady_state),
                &mut self.cooldown_until,
                self.cooldown_s,
            );
        }
    }
}

/// jitsi-autoscaler with its production Jibri settings.
pub struct JitsiAutoscaler {
    pub scale_period_s: u64,
    pub scale_up_periods: usize,
    pub scale_down_periods: usize,
    pub scale_up_threshold: u32,
    pub scale_down_threshold: u32,
    pub grace_s: u64,
    pub min_desired: u32,
    /// How often the autoscale and launch jobs run.
    pub job_every_s: u64,
    /// Available recorders per period, most recent first.
    history: VecDeque<u32>,
    grace_until: u64,
}

impl Default for JitsiAutoscaler {
    fn default() -> Self {
        Self {
            scale_period_s: 60,
            scale_up_periods: 5,
            scale_down_periods: 20,
            scale_up_threshold: 1,
            scale_down_threshold: 1,
            grace_s: 300,
            min_desired: 1,
            job_every_s: 30,
            history: VecDeque::new(),
            grace_until: 0,
        }
    }
}

impl Policy for JitsiAutoscaler {
    fn name(&self) -> String {
        "jitsi-autoscaler".into()
    }

    fn setup(&self, p: &ModelParams, _w: &Workload) -> GroupSetup {
        let min = self.min_desired.max(p.min);
        // Its launcher, not the group, picks victims: the group never scales in by itself.
        GroupSetup {
            min,
            max: p.max,
            initial: min,
            terminate_hook: false,
            launch_hook: false,
            new_instances_protected: true,
            retain_on_abandon: false,
            warm_pool: false,
        }
    }

    fn step(&mut self, w: &mut World, _jobs: &[Job]) {
        let now = w.now;
        if now % self.scale_period_s == 0 {
            // The sidecars' status reports of the period, summed: available recorders.
            self.history.push_front(w.available());
            self.history
                .truncate(self.scale_up_periods.max(self.scale_down_periods));
        }
        if now % self.job_every_s != 0 {
            return;
        }
        // Autoscale job.
        let count = w.in_capacity();
        if now >= self.grace_until && count == w.desired && !self.history.is_empty() {
            let (min, max) = (w.setup.min, w.setup.max);
            let all =
                |n: usize, f: &dyn Fn(u32) -> bool| self.history.iter().take(n).all(|&v| f(v));
            let up = all(self.scale_up_periods, &|v| {
                (count < max && v < self.scale_up_threshold) || count < min
            });
            let down = !up
                && all(self.scale_down_periods, &|v| {
                    count > min && v > self.scale_down_threshold
                });
            let target = if up {
                Some((w.desired + 1).min(max))
            } else if down {
                Some(w.desired.saturating_sub(1).max(min))
            } else {
                None
            };
            if let Some(d) = target.filter(|&d| d != w.desired) {
                let _ = w.set_desired(d);
                self.grace_until = now + self.grace_s;
            }
        }
        // Launch job: launching is the group's (desired above count); scale-down asks the
        // sidecars of the chosen instances to terminate them.
        let count = w.in_capacity();
        if count > w.desired {
            let rank = |j: &Jibri| match j {
                Jibri::Booting | Jibri::Exited => 0,
                Jibri::Idle | Jibri::Unhealthy => 1,
                Jibri::Recording { .. } | Jibri::Finalizing { .. } => 2,
            };
            let mut cands: Vec<(u32, u64, jibri_core::domain::InstanceId)> = w
                .instances
                .iter()
                .filter(|i| i.life.in_capacity())
                .map(|i| (rank(&i.jibri), i.n, i.id.clone()))
                .collect();
            cands.sort();
            for (_, _, id) in cands.into_iter().take((count - w.desired) as usize) {
                let _ = w.terminate(&id, false);
            }
        }
    }
}
