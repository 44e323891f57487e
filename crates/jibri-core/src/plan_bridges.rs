//! The capacity rule of a videobridge pool (`POOL_KIND=jvb`): keep the mean stress of
//! the bridges Jicofo may select within the band `JVB_STRESS_LOW`..`JVB_STRESS_HIGH`.
//!
//! It replaces the spare/capacity step of a recorder pool and nothing else: every other
//! rule of the plan (classification, hooks, protection, replacements, configuration
//! drift, unknown = busy) is shared. A bridge is removed in two steps, because Jicofo
//! spreads conferences over every bridge and a bridge rarely empties on its own:
//! 1. *drain* the least-loaded bridge (Jicofo assigns it no new conference; its own keep
//!    running), when the mean stress has stayed below the low mark for the window and the
//!    other bridges can carry its load below the band's middle;
//! 2. *remove* a drained bridge once it is empty (idle `IDLE_GRACE_S`): it is then the
//!    only kind of scale-in victim, re-probed right before by the act phase, and its
//!    terminate hook is guarded like a recorder's. A bridge hosting a conference is never
//!    a victim, so no conference is ever broken by a scale-in.
//!
//! When stress rises again, drained bridges are undrained before anything is launched.
//! A bridge that does not answer is busy, and its stress counts at the high mark (fail
//! safe: it never lets the pool look emptier than it may be).

use super::{KeepReason, Tick};
use crate::bridge::BridgeLoad;
use crate::domain::{
    InstanceId, InstanceObservation, LifecycleState, Probe, INTERRUPTION_WINDOW_S,
};
use crate::jitsi::HealthStatus;
use crate::spare::SpareTarget;

/// The pool's bridges as the stress rule sees them.
#[derive(Debug, Default)]
pub(super) struct BridgePool<'a> {
    /// In service, answering, healthy, taking conferences: the capacity Jicofo selects from.
    pub active: Vec<(&'a InstanceObservation, BridgeLoad)>,
    /// In service, answering, drained (not shutting down): can be undrained.
    pub drained: Vec<(&'a InstanceObservation, BridgeLoad)>,
    /// In service, answered once, not answering now: busy, stress at the high mark.
    pub unknown: u32,
    /// Launching or booting: capacity on its way, at stress 0.
    pub launching: u32,
}

impl BridgePool<'_> {
    /// Summed stress (thousandths) and the bridges it is shared by.
    pub fn load(&self, high_milli: u32) -> (u64, u32) {
        let sum: u64 = self
            .active
            .iter()
            .map(|(_, l)| u64::from(l.stress_milli))
            .sum::<u64>()
            + u64::from(self.unknown) * u64::from(high_milli);
        (
            sum,
            self.active.len() as u32 + self.unknown + self.launching,
        )
    }
}

/// The controller's schedule period: a scale-out must cover a boot and one tick.
const TICK_S: u64 = crate::spare::TICK_PERIOD_S;

/// The stress one conference adds (thousandths), learned: the active bridges' stress per
/// conference they host, averaged with the last value (weight 0.2) once they host 3
/// conferences or more; the last value otherwise (`None`: nothing learned yet).
pub fn learn_stress_per_conference(
    prev: Option<u32>,
    active: &[(&InstanceObservation, BridgeLoad)],
) -> Option<u32> {
    let conferences: u64 = active.iter().map(|(_, l)| u64::from(l.conferences)).sum();
    if conferences < 3 {
        return prev;
    }
    let stress: u64 = active.iter().map(|(_, l)| u64::from(l.stress_milli)).sum();
    let now = (stress / conferences).min(u64::from(u32::MAX)) as u32;
    Some(match prev {
        Some(p) => ((f64::from(p) * 0.8) + f64::from(now) * 0.2).round() as u32,
        None => now,
    })
}

/// Thousandths of a stress mark from the configuration.
fn milli(x: f64) -> u32 {
    (x * 1000.0).round() as u32
}

/// The mean stress of `n` bridges carrying `sum` (thousandths); `None` without bridges.
pub fn mean_stress_milli(sum: u64, n: u32) -> Option<u32> {
    (n > 0).then(|| (sum / u64::from(n)).min(u64::from(u32::MAX)) as u32)
}

/// Bridges to add so that `n` bridges carrying `sum` reach a mean at or below `target`
/// (thousandths): `ceil(sum / target) - n`, at least one when the pool has none.
pub fn bridges_to_add(sum: u64, n: u32, target_milli: u32) -> u32 {
    let target = u64::from(target_milli.max(1));
    let need = sum.div_ceil(target).max(1);
    need.saturating_sub(u64::from(n)).min(u64::from(u32::MAX)) as u32
}

/// Which active bridges to drain so that the pool's mean stress, carried by the others,
/// stays below `target` (thousandths): the least loaded first (fewest endpoints, then
/// lowest stress, then id), at most `max`, never below `keep` active bridges nor one (a
/// conference needs a bridge, whatever the group's minimum). A bridge
/// is drained, never terminated, by this rule: it keeps its conferences.
pub fn choose_drains(
    active: &[(&InstanceObservation, BridgeLoad)],
    sum: u64,
    n: u32,
    target_milli: u32,
    keep: u32,
    max: u32,
) -> Vec<InstanceId> {
    let mut order: Vec<_> = active.iter().collect();
    order.sort_by(|a, b| {
        (a.1.participants, a.1.stress_milli, &a.0.id).cmp(&(
            b.1.participants,
            b.1.stress_milli,
            &b.0.id,
        ))
    });
    let mut left = n;
    let mut out = Vec::new();
    for (i, _) in order {
        if out.len() as u32 >= max || left <= keep.max(1) {
            break;
        }
        // The drained bridge's load stays on it, but the next conferences go to the others:
        // they must be able to take the pool's whole load below the target.
        if sum >= u64::from(target_milli) * u64::from(left - 1) {
            break;
        }
        out.push(i.id.clone());
        left -= 1;
    }
    out
}

/// Which drained bridges to undrain, the most loaded first (the furthest from empty),
/// until `sum` shared by `n` plus them reaches `target`; returns them and the new sum and
/// count.
pub fn choose_undrains(
    drained: &[(&InstanceObservation, BridgeLoad)],
    mut sum: u64,
    mut n: u32,
    target_milli: u32,
) -> (Vec<InstanceId>, u64, u32) {
    let mut order: Vec<_> = drained.iter().filter(|(i, _)| i.drain_requested).collect();
    order.sort_by(|a, b| (b.1.participants, &a.0.id).cmp(&(a.1.participants, &b.0.id)));
    let mut out = Vec::new();
    for (i, l) in order {
        if n > 0 && sum <= u64::from(target_milli) * u64::from(n) {
            break;
        }
        out.push(i.id.clone());
        sum += u64::from(l.stress_milli);
        n += 1;
    }
    (out, sum, n)
}

impl<'a> Tick<'a> {
    /// Rule: the pool's bridges, sorted by what they can do for the stress band.
    pub(super) fn bridge_pool(&self) -> BridgePool<'a> {
        let mut pool = BridgePool {
            launching: self.counts.launching,
            ..BridgePool::default()
        };
        let obs: &'a crate::domain::Observation = self.obs;
        for i in &obs.instances {
            if i.lifecycle != LifecycleState::InService {
                continue;
            }
            let leaving = i
                .interruption_notice_at
                .is_some_and(|at| self.now.saturating_sub(at) < INTERRUPTION_WINDOW_S);
            let booting = self.next.in_service.get(&i.id).is_some_and(|s| {
                !s.answered && self.now.saturating_sub(s.since) < self.cfg.launch_max_wait_s
            });
            match &i.probe {
                _ if leaving || booting => {}
                Probe::Status(s) => match s.load {
                    Some(l) if s.health == HealthStatus::Healthy && l.takes_conferences() => {
                        pool.active.push((i, l))
                    }
                    Some(l) if l.drain && !l.shutting_down && s.health == HealthStatus::Healthy => {
                        pool.drained.push((i, l))
                    }
                    Some(_) => {} // unhealthy or shutting down: replaced, not capacity
                    None => pool.unknown += 1, // answers, but not as a bridge
                },
                Probe::Failed(_) | Probe::NotProbed => pool.unknown += 1,
            }
        }
        pool
    }

    /// Rule: the stress window. Since when the mean has been below the low mark (kept in
    /// the state); returns for how long. Any tick at or above it restarts the window.
    pub(super) fn stress_low_for(&mut self, mean_milli: Option<u32>) -> Option<u64> {
        let low = milli(self.cfg.bridge.stress_low);
        let below = mean_milli.is_some_and(|m| m < low);
        self.next.stress_low_since = below.then(|| self.prev.stress_low_since.unwrap_or(self.now));
        self.next
            .stress_low_since
            .map(|since| self.now.saturating_sub(since))
    }

    /// Rule: demand of a bridge pool. Conference starts are the increments of Jicofo's
    /// `total_conferences_created` (all shards answered; a lower total is a restart),
    /// learned by hour of week and minute of hour like recording starts (conferences also
    /// start on :00 and :30). Returns the stress the conferences expected over the next
    /// `horizon_s` will add (thousandths): their count times the stress one conference adds, learned
    /// from the bridges themselves.
    fn bridge_demand(&mut self, pool: &BridgePool<'_>, horizon_s: u64) -> (f64, Option<f64>) {
        let (obs, prev, cfg, now) = (self.obs, self.prev, self.cfg, self.now);
        let complete = obs.jicofo.complete() && obs.jicofo.shards_configured > 0;
        let created = obs.jicofo.stats.conferences_created;
        let new = match prev.conferences_created {
            Some(before) if complete => created.checked_sub(before).unwrap_or(created),
            _ => 0,
        };
        self.next.conferences_created = if complete {
            Some(created)
        } else {
            prev.conferences_created
        };
        self.counts.starts = new.min(u64::from(u32::MAX)) as u32;
        self.next.demand = prev.demand.clone();
        self.next
            .demand
            .observe(now, self.counts.starts, 0, cfg.forecast_alpha);
        let per_conference =
            learn_stress_per_conference(prev.stress_per_conference_milli, &pool.active);
        self.next.stress_per_conference_milli = per_conference;
        let expected = cfg
            .forecast
            .then(|| {
                self.next
                    .demand
                    .expected(now, horizon_s, cfg.forecast_prior)
            })
            .flatten();
        // Thousandths, as every stress here.
        let stress_milli = expected.unwrap_or(0.0) * f64::from(per_conference.unwrap_or(0));
        (stress_milli, expected)
    }

    /// Rule: capacity of a bridge pool. Scale out when the mean stress, with the stress
    /// of the conferences the forecast expects within a boot (and a tick), would exceed
    /// the high mark: undrain first, then launch, to bring it to the high mark. Drain the
    /// least-loaded bridges when it stayed below the low mark for the window (complete
    /// observation, no drift) and the others carry the pool below the band's middle.
    /// Remove drained bridges once idle. Returns the plan's spare (for a bridge pool: the
    /// bridges the band wants, and the forecast), the new desired capacity, the victims.
    pub(super) fn bridge_capacity(
        &mut self,
        boot_s: u64,
    ) -> (SpareTarget, Option<u32>, Vec<InstanceId>) {
        let (g, cfg) = (&self.obs.group, self.cfg);
        let (high, low) = (milli(cfg.bridge.stress_high), milli(cfg.bridge.stress_low));
        let mid = (high + low) / 2;
        let pool = self.bridge_pool();
        let horizon_s = boot_s + TICK_S;
        let (coming, forecast) = self.bridge_demand(&pool, horizon_s);
        let (sum, n) = pool.load(high);
        let mean = mean_stress_milli(sum, n);
        self.counts.stress_milli = Some(mean.unwrap_or(0));
        self.counts.draining = pool.drained.len() as u32;
        let low_for = self.stress_low_for(mean);
        let projected = sum + coming.round().max(0.0) as u64;
        let drifted = !self.obs.config_drift.is_empty();
        for d in &self.obs.config_drift {
            self.warnings.push(format!(
                "configuration drift, no drain, scale-in or replacement: {d}"
            ));
        }
        let removals_ok = self.obs.jicofo.complete() && !drifted;
        let mut desired = None;
        let mut wanted = n;
        if n == 0 || projected > u64::from(high) * u64::from(n) {
            let (undrain, sum2, n2) = choose_undrains(&pool.drained, projected, n, high);
            self.undrain = undrain;
            let add = bridges_to_add(sum2, n2, high);
            wanted = n2 + add;
            let want = (g.desired + add).clamp(g.min, g.max.max(g.min));
            desired = (want > g.desired).then_some(want);
        } else if removals_ok && low_for.is_some_and(|t| t >= cfg.bridge.scale_in_window_s) {
            self.drain = choose_drains(
                &pool.active,
                projected,
                n,
                mid,
                g.min,
                cfg.scale_in_max_per_tick,
            );
            wanted = n - self.drain.len() as u32;
        }
        let victims = if desired.is_none() && removals_ok {
            self.bridge_victims()
        } else {
            Vec::new()
        };
        self.keep_bridges(&victims, low_for);
        let desired =
            desired.or_else(|| (!victims.is_empty()).then(|| g.desired - victims.len() as u32));
        let spare = SpareTarget {
            target: wanted,
            rate_per_min: 0.0,
            floor: 0,
            forecast,
            prior_weight: None,
            lead: 0.0,
            horizon_s,
            reactive: wanted,
        };
        (spare, desired, victims)
    }

    /// Rule: victims of a bridge pool are drained bridges that have been empty for
    /// IDLE_GRACE_S, never below the group's minimum, at most SCALE_IN_MAX_PER_TICK. An
    /// undrained empty bridge is capacity Jicofo may use at any moment: never a victim.
    fn bridge_victims(&mut self) -> Vec<InstanceId> {
        let (g, cfg) = (&self.obs.group, self.cfg);
        let room = g
            .desired
            .saturating_sub(g.min)
            .min(cfg.scale_in_max_per_tick);
        self.idle
            .sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
        self.idle
            .iter()
            .filter(|(i, since)| {
                drained_and_empty(i) && self.now.saturating_sub(*since) >= cfg.idle_grace_s
            })
            .take(room as usize)
            .map(|(i, _)| i.id.clone())
            .collect()
    }

    /// Every idle bridge not removed gets its reason.
    fn keep_bridges(&mut self, victims: &[InstanceId], low_for: Option<u64>) {
        let removals_blocked = if !self.obs.config_drift.is_empty() {
            Some(KeepReason::ConfigDrift)
        } else if !self.obs.jicofo.complete() {
            Some(KeepReason::ObservationIncomplete)
        } else {
            None
        };
        let mut kept = Vec::new();
        for (i, since) in &self.idle {
            if victims.contains(&i.id) {
                continue;
            }
            let idle_for_s = self.now.saturating_sub(*since);
            let why = match &removals_blocked {
                Some(r) => r.clone(),
                None if !drained_and_empty(i) => match low_for {
                    Some(for_s) if for_s < self.cfg.bridge.scale_in_window_s => {
                        KeepReason::StressLowOnlyFor { for_s }
                    }
                    _ => KeepReason::StressBand,
                },
                None if idle_for_s < self.cfg.idle_grace_s => {
                    KeepReason::NotIdleLongEnough { idle_for_s }
                }
                None => KeepReason::AtMinSize,
            };
            kept.push((i.id.clone(), why));
        }
        self.kept.extend(kept);
    }
}

/// A drained bridge that hosts nothing: the only bridge a scale-in may remove.
pub fn drained_and_empty(i: &InstanceObservation) -> bool {
    matches!(&i.probe, Probe::Status(s) if s.load.is_some_and(|l| l.drain && !l.is_busy()))
}
