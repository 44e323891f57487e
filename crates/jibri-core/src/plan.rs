//! `plan(observation, state, config, now) -> Plan`: the controller's decision, pure.
//!
//! Small ordered rules classify each instance; every instance kept from removal carries a
//! typed [`KeepReason`]. Fail safe: a recorder whose status is unknown is busy; a partial
//! observation (a Jicofo shard did not answer) allows scale-out but never scale-in.
//! A videobridge pool (`POOL_KIND=jvb`) swaps the spare/capacity step for the stress band
//! of `plan_bridges.rs`; every other rule is shared.

use crate::config::{Config, PoolKind};
use crate::domain::{
    EpochSecs, InstanceId, InstanceObservation, LifecycleState, Observation, Probe, ProbeFailure,
    INTERRUPTION_WINDOW_S,
};
use crate::jitsi::{BusyStatus, HealthStatus};
use crate::reason::{HookReason, ProbeSeen};
use crate::spare::{spare_target, warm_target, SpareInputs, SpareTarget};
use crate::state::{BootClock, HeldHook, PoolState, Seen, STATE_VERSION};
use std::collections::BTreeSet;
use std::fmt;

#[path = "plan_bridges.rs"]
mod bridges;
pub use bridges::{
    bridges_to_add, choose_drains, choose_undrains, drained_and_empty, learn_stress_per_conference,
    mean_stress_milli,
};

/// What one recorder is, for the pool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Launching (`Pending*`): will be a spare once booted.
    Launching,
    /// Healthy and idle: a spare, or a scale-in candidate.
    Idle,
    /// Recording, finalizing, uploading, or unknown (treated as busy).
    Busy,
    /// Answers, but cannot record: UNHEALTHY, or EXPIRED (single-use, done).
    Broken,
    /// `Terminating:Wait`: a terminate hook we hold or release.
    HeldHook,
    /// `Terminating:Retained`: kept by the group's retain policy.
    Retained,
    /// Standby, detaching, warm pool...: not ours to decide.
    Other,
}

/// Why an instance is not removed this tick.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum KeepReason {
    Busy,
    UploadPending,
    ProbeFailed {
        failure: ProbeSeen,
    },
    Launching,
    /// In service, but its Jibri has not answered yet since it went in service.
    Booting {
        for_s: u64,
    },
    NotIdleLongEnough {
        idle_for_s: u64,
    },
    SpareTarget,
    ScaleInBudgetSpent,
    AtMinSize,
    ObservationIncomplete,
    /// The group's safety configuration drifted (see `jibri_autoscaler::safety`): no removal.
    ConfigDrift,
    Broken {
        since_s: u64,
    },
    NotInService {
        state: String,
    },
    /// A Spot interruption warning this long ago: leaving, replaced now.
    Interrupted {
        for_s: u64,
    },
    /// A bridge: needed to keep the pool's mean stress within the band.
    StressBand,
    /// A bridge: the pool's mean stress has been below the low mark only this long.
    StressLowOnlyFor {
        for_s: u64,
    },
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy => f.write_str("busy"),
            Self::UploadPending => f.write_str("upload-pending"),
            Self::ProbeFailed { failure } => write!(f, "probe-failed({failure})"),
            Self::Launching => f.write_str("launching"),
            Self::Booting { for_s } => write!(f, "booting-{for_s}s"),
            Self::NotIdleLongEnough { idle_for_s } => write!(f, "idle-only-{idle_for_s}s"),
            Self::SpareTarget => f.write_str("spare"),
            Self::ScaleInBudgetSpent => f.write_str("scale-in-budget-spent"),
            Self::AtMinSize => f.write_str("at-min-size"),
            Self::ObservationIncomplete => f.write_str("observation-incomplete"),
            Self::ConfigDrift => f.write_str("config-drift"),
            Self::Broken { since_s } => write!(f, "broken-for-{since_s}s"),
            Self::NotInService { state } => write!(f, "not-in-service({state})"),
            Self::Interrupted { for_s } => write!(f, "spot-interrupted-{for_s}s-ago"),
            Self::StressBand => f.write_str("stress-band"),
            Self::StressLowOnlyFor { for_s } => write!(f, "stress-low-only-{for_s}s"),
        }
    }
}

/// What to do with a lifecycle action (terminate or launch hook) this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookVerdict {
    /// Safe to proceed (`CompleteLifecycleAction CONTINUE`), after a final re-probe.
    Continue,
    /// Still busy or unknown: `RecordLifecycleActionHeartbeat`.
    Heartbeat,
    /// Still busy, heartbeat not due yet.
    Wait,
    /// Held for the maximum: `CompleteLifecycleAction ABANDON`.
    Abandon,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookAction {
    pub instance: InstanceId,
    pub transition: HookTransition,
    pub verdict: HookVerdict,
    pub why: HookReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookTransition {
    Launching,
    Terminating,
    /// `Warmed:Pending:Wait`: launched into (or returning to) the warm pool; CONTINUE
    /// stops the instance. Completed on the launch hook.
    WarmPoolEntry,
    /// `Warmed:Terminating:Wait`: a warm-pool instance being terminated. Completed on the
    /// terminate hook.
    WarmPoolExit,
}

impl HookTransition {
    /// Whether the action belongs to the group's launch hook (else its terminate hook).
    pub fn on_launch_hook(self) -> bool {
        matches!(self, Self::Launching | Self::WarmPoolEntry)
    }
}

/// A change of the group's warm pool (`PutWarmPool`): `MinSize` = `MaxGroupPreparedCapacity`
/// = `size`, so the pool has exactly that size whatever the desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WarmPoolChange {
    pub size: u32,
    /// The pool does not exist yet: created stopped, with reuse on scale-in.
    pub create: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replacement {
    pub instance: InstanceId,
    pub why: String,
}

/// Counts per pool, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolCounts {
    pub total: u32,
    pub launching: u32,
    pub busy: u32,
    pub idle: u32,
    pub unknown: u32,
    pub broken: u32,
    pub held_hooks: u32,
    pub retained: u32,
    /// In service with a Spot interruption warning: leaving within two minutes.
    pub leaving: u32,
    pub upload_pending: u32,
    pub jicofo_available: Option<u64>,
    pub jicofo_count: Option<u64>,
    pub refused: u64,
    pub starts: u32,
    pub stats_unavailable: u32,
    /// Warm-pool instances, and those a scale-out can start now.
    pub warm: u32,
    pub warm_ready: u32,
    /// Boot latencies planned with (seconds): cold, warm.
    pub boot_cold_s: u64,
    pub boot_warm_s: u64,
    /// A bridge pool: the mean stress (thousandths) of its in-service undrained bridges,
    /// an unknown one counted at the high mark; `None` for recorders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stress_milli: Option<u32>,
    /// A bridge pool: bridges drained (by us or anyone), in service.
    #[serde(skip_serializing_if = "is_zero")]
    pub draining: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The whole decision of one tick. [`Plan::is_noop`] is the explicit no-op.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    pub group: String,
    pub desired_before: u32,
    /// New desired capacity, if it changes.
    pub desired: Option<u32>,
    pub spare: SpareTarget,
    /// Instances to protect from scale-in (batched).
    pub protect: Vec<InstanceId>,
    /// Chosen idle victims: unprotected right before the desired capacity drops.
    pub victims: Vec<InstanceId>,
    pub hooks: Vec<HookAction>,
    /// Graceful shutdown then `TerminateInstanceInAutoScalingGroup` without decrement.
    pub replace: Vec<Replacement>,
    /// Busy recorders on their way out: `gracefulShutdown` so no new recording lands. For a
    /// bridge pool: bridges to drain (`POST /colibri/drain/enable`), so Jicofo assigns
    /// them no new conference and they empty.
    pub drain: Vec<InstanceId>,
    /// A bridge pool: drained bridges put back into service (`POST /colibri/drain/disable`)
    /// instead of launching new ones. Always empty for recorders (and then not serialized).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undrain: Vec<InstanceId>,
    /// Retained instances whose Jibri does not answer (not even a refusal after a drain):
    /// nobody can tell whether a recording is on them (metric RetainedUnanswering, alarm,
    /// the README's runbook step).
    pub retained_unanswering: Vec<InstanceId>,
    /// Retained instances now idle: `TerminateInstanceInAutoScalingGroup`.
    pub terminate_retained: Vec<InstanceId>,
    /// Managed warm pool: its new size, when it changes.
    pub warm_pool: Option<WarmPoolChange>,
    /// EC2 termination protection to turn on (recording or uploading) and off (idle).
    pub api_protect: Vec<InstanceId>,
    pub api_unprotect: Vec<InstanceId>,
    pub kept: Vec<(InstanceId, KeepReason)>,
    pub counts: PoolCounts,
    /// Log-worthy conditions (e.g. ABANDON without a retain policy).
    pub warnings: Vec<String>,
    /// The prior a new pool's forecast leans on until its own data replaces it.
    pub forecast_prior: crate::forecast::Prior,
}

impl Plan {
    /// Nothing to change on AWS or on any recorder.
    pub fn is_noop(&self) -> bool {
        self.desired.is_none()
            && self.protect.is_empty()
            && self.victims.is_empty()
            && self.hooks.iter().all(|h| h.verdict == HookVerdict::Wait)
            && self.replace.is_empty()
            && self.drain.is_empty()
            && self.undrain.is_empty()
            && self.terminate_retained.is_empty()
            && self.warm_pool.is_none()
            && self.api_protect.is_empty()
            && self.api_unprotect.is_empty()
    }

    /// The plan as one log line.
    pub fn summary(&self) -> String {
        let ids = |v: &[InstanceId]| v.iter().map(|i| i.0.as_str()).collect::<Vec<_>>().join(",");
        let mut s = format!(
            "plan group={} desired={}{} spare={} (rate {:.2}/min, forecast {} prior {}{}, lead {:.1}, floor {}, horizon {}s) busy={} idle={} launching={} unknown={} broken={} held={} retained={} refused={}",
            self.group,
            self.desired_before,
            self.desired.map(|d| format!("->{d}")).unwrap_or_default(),
            self.spare.target,
            self.spare.rate_per_min,
            self.spare.forecast.map(|f| format!("{f:.1}")).unwrap_or_else(|| "-".into()),
            serde_json::to_value(self.forecast_prior).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            // The prior's weight, in starts (one day of this pool, fading after it): `prior workday×20`.
            self.spare.prior_weight.map(|w| format!("×{w:.0}")).unwrap_or_default(),
            self.spare.lead,
            self.spare.floor,
            self.spare.horizon_s,
            self.counts.busy,
            self.counts.idle,
            self.counts.launching,
            self.counts.unknown,
            self.counts.broken,
            self.counts.held_hooks,
            self.counts.retained,
            self.counts.refused,
        );
        if self.counts.warm > 0 || self.warm_pool.is_some() {
            s.push_str(&format!(
                " warm={}/{}",
                self.counts.warm_ready, self.counts.warm
            ));
        }
        if let Some(w) = self.warm_pool {
            s.push_str(&format!(
                " warm_pool->{}{}",
                w.size,
                if w.create { "(create)" } else { "" }
            ));
        }
        if self.counts.leaving > 0 {
            s.push_str(&format!(" leaving={}", self.counts.leaving));
        }
        if let Some(m) = self.counts.stress_milli {
            s.push_str(&format!(
                " stress={:.3} draining={}",
                f64::from(m) / 1000.0,
                self.counts.draining
            ));
        }
        if self.is_noop() {
            s.push_str(" action=none");
        }
        for (label, v) in [
            ("protect", &self.protect),
            ("victims", &self.victims),
            ("drain", &self.drain),
            ("undrain", &self.undrain),
            ("terminate_retained", &self.terminate_retained),
            ("retained_unanswering", &self.retained_unanswering),
            ("api_protect", &self.api_protect),
            ("api_unprotect", &self.api_unprotect),
        ] {
            if !v.is_empty() {
                s.push_str(&format!(" {label}=[{}]", ids(v)));
            }
        }
        for r in &self.replace {
            s.push_str(&format!(" replace={}({})", r.instance, r.why));
        }
        for h in &self.hooks {
            s.push_str(&format!(
                " hook={}:{:?}:{:?}({})",
                h.instance, h.transition, h.verdict, h.why
            ));
        }
        if !self.kept.is_empty() {
            let kept: Vec<String> = self.kept.iter().map(|(i, r)| format!("{i}:{r}")).collect();
            s.push_str(&format!(" kept=[{}]", kept.join(",")));
        }
        s
    }
}

/// Classifies an instance by its lifecycle state, tags and probe (rules in order).
pub fn classify(i: &InstanceObservation) -> Class {
    match i.lifecycle {
        LifecycleState::Pending | LifecycleState::PendingWait | LifecycleState::PendingProceed => {
            Class::Launching
        }
        LifecycleState::TerminatingWait => Class::HeldHook,
        LifecycleState::TerminatingRetained => Class::Retained,
        LifecycleState::InService => {
            if i.upload_pending {
                return Class::Busy;
            }
            match &i.probe {
                Probe::Status(s) if s.busy == BusyStatus::Busy => Class::Busy,
                // Drained (a 2xx to gracefulShutdown) and now refusing at connect: the
                // Jibri exited, nothing records there. In service still (a replacement's
                // termination that failed, a Spot warning not followed): replaced.
                Probe::Failed(ProbeFailure::Refused) if i.drain_requested => Class::Broken,
                Probe::Status(s) if s.busy == BusyStatus::Expired => Class::Broken,
                Probe::Status(s) if s.health == HealthStatus::Unhealthy => Class::Broken,
                Probe::Status(_) => Class::Idle,
                Probe::Failed(_) | Probe::NotProbed => Class::Busy,
            }
        }
        _ => Class::Other,
    }
}

/// Whether a recorder on its way out may go now: nothing recording, nothing uploading.
/// `Refused` only counts as gone when a graceful shutdown was requested: then it is how a
/// Jibri that finished its session and finalize and exited looks.
pub fn safe_to_release(i: &InstanceObservation) -> Result<(), HookReason> {
    if i.upload_pending {
        return Err(HookReason::UploadPending);
    }
    match &i.probe {
        Probe::Status(s) if s.busy == BusyStatus::Busy => Err(HookReason::Busy),
        Probe::Failed(ProbeFailure::Refused) if i.drain_requested => Ok(()),
        other => HookReason::unknown(other).map_or(Ok(()), Err),
    }
}

/// The decision of one tick, and the state to carry to the next: a short pipeline of
/// named rules over one [`Tick`], in this order (each reads what the ones before found).
pub fn plan(
    obs: &Observation,
    prev: &PoolState,
    cfg: &Config,
    now: EpochSecs,
) -> (Plan, PoolState) {
    let mut t = Tick::new(obs, prev, cfg, now);
    for i in &obs.instances {
        t.instance(i);
    }
    t.warm_pool_hooks();
    let boot = t.boot_clocks();
    let (spare, warm_pool, desired, victims) = match cfg.pool_kind {
        PoolKind::Jibri => {
            let signals = t.demand();
            let spare = t.spare(boot, signals);
            let warm_pool = t.warm_pool_size(spare.target, signals);
            let scale_in_spare = t.scale_in_floor(&spare, boot, signals);
            let (desired, victims) = t.capacity(spare.target, scale_in_spare);
            (spare, warm_pool, desired, victims)
        }
        // A bridge pool is sized on stress (see `plan_bridges.rs`); every other rule is
        // the recorders'.
        PoolKind::Jvb => {
            let (spare, desired, victims) = t.bridge_capacity(boot.cold);
            (spare, None, desired, victims)
        }
    };
    let replace = t.replacements(victims.is_empty());
    let protect = t.protection(&victims);
    let (api_protect, api_unprotect, api_protected) = if cfg.ec2_termination_protection {
        api_termination_protection(&obs.instances, &prev.api_protected)
    } else {
        (Vec::new(), Vec::new(), BTreeSet::new())
    };
    t.next.api_protected = api_protected;

    let Tick {
        mut kept,
        hooks,
        drain,
        undrain,
        retained_unanswering,
        terminate_retained,
        counts,
        warnings,
        next,
        ..
    } = t;
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept.dedup_by(|a, b| a.0 == b.0);
    let plan = Plan {
        group: obs.group.name.clone(),
        desired_before: obs.group.desired,
        desired,
        spare,
        protect,
        victims,
        hooks,
        replace,
        drain,
        undrain,
        retained_unanswering,
        terminate_retained,
        warm_pool,
        api_protect,
        api_unprotect,
        kept,
        counts,
        warnings,
        forecast_prior: cfg.forecast_prior,
    };
    (plan, next)
}

/// What one tick accumulates while its rules run.
struct Tick<'a> {
    obs: &'a Observation,
    prev: &'a PoolState,
    cfg: &'a Config,
    now: EpochSecs,
    next: PoolState,
    counts: PoolCounts,
    kept: Vec<(InstanceId, KeepReason)>,
    hooks: Vec<HookAction>,
    drain: Vec<InstanceId>,
    undrain: Vec<InstanceId>,
    retained_unanswering: Vec<InstanceId>,
    terminate_retained: Vec<InstanceId>,
    warnings: Vec<String>,
    /// Healthy idle recorders and since when: the scale-in candidates.
    idle: Vec<(&'a InstanceObservation, EpochSecs)>,
    /// Recorders that answer UNHEALTHY or EXPIRED, since when and what: replacement candidates.
    troubled: Vec<(&'a InstanceObservation, EpochSecs, String)>,
}

/// The boot latencies planned with (seconds): cold, and from the warm pool.
#[derive(Clone, Copy)]
struct Boot {
    cold: u64,
    warm: u64,
}

/// What the demand rule found for the spare: the leading signals.
#[derive(Clone, Copy)]
struct Signals {
    lead: f64,
    burst: bool,
}

impl<'a> Tick<'a> {
    fn new(obs: &'a Observation, prev: &'a PoolState, cfg: &'a Config, now: EpochSecs) -> Self {
        Tick {
            obs,
            prev,
            cfg,
            now,
            next: PoolState {
                version: STATE_VERSION,
                initialized: true,
                ..PoolState::default()
            },
            counts: PoolCounts {
                total: obs.instances.len() as u32,
                jicofo_available: obs.jicofo.stats.jibri_available,
                jicofo_count: obs.jicofo.stats.jibri_count,
                stats_unavailable: obs.jicofo.shards_failed as u32,
                ..PoolCounts::default()
            },
            kept: Vec::new(),
            hooks: Vec::new(),
            drain: Vec::new(),
            undrain: Vec::new(),
            retained_unanswering: Vec::new(),
            terminate_retained: Vec::new(),
            warnings: Vec::new(),
            idle: Vec::new(),
            troubled: Vec::new(),
        }
    }

    fn keep(&mut self, i: &InstanceObservation, why: KeepReason) {
        self.kept.push((i.id.clone(), why));
    }

    /// Rule: classify one instance of the group and apply its class's rule.
    fn instance(&mut self, i: &'a InstanceObservation) {
        if self.interrupted(i) {
            return;
        }
        let class = classify(i);
        if self.booting_in_service(i, &class) {
            return;
        }
        if i.upload_pending {
            self.counts.upload_pending += 1;
        }
        match class {
            Class::Launching => self.launching(i),
            Class::Idle => {
                self.counts.idle += 1;
                let since = *self.prev.idle_since.get(&i.id).unwrap_or(&self.now);
                self.next.idle_since.insert(i.id.clone(), since);
                self.idle.push((i, since));
            }
            Class::Busy => self.busy_or_unknown(i),
            Class::Broken => self.broken(i),
            Class::HeldHook => {
                self.counts.held_hooks += 1;
                self.held_hook(i);
            }
            Class::Retained => self.retained(i),
            Class::Other => self.keep(
                i,
                KeepReason::NotInService {
                    state: i.lifecycle.as_str().to_string(),
                },
            ),
        }
    }

    /// Rule: an instance in service with a Spot interruption warning leaves within two
    /// minutes whatever the hooks say (EC2 User Guide, "Spot Instance interruption
    /// notices"): it is neither a spare nor a victim, and the capacity rule launches its
    /// replacement now instead of after the interruption (threat: recordings refused for a
    /// boot's length after every interruption). Its Jibri was drained by the guard.
    fn interrupted(&mut self, i: &InstanceObservation) -> bool {
        let Some(at) = i.interruption_notice_at else {
            return false;
        };
        if i.lifecycle != LifecycleState::InService {
            return false;
        }
        let for_s = self.now.saturating_sub(at);
        if for_s >= INTERRUPTION_WINDOW_S {
            self.warnings.push(format!(
                "{}: Spot interruption warning {for_s}s ago, still in service (a replayed or unfulfilled notice); judged as any recorder",
                i.id
            ));
            return false;
        }
        self.counts.leaving += 1;
        if i.probe.is_busy() || i.upload_pending {
            self.next.busy.insert(i.id.clone());
        }
        self.keep(i, KeepReason::Interrupted { for_s });
        true
    }

    /// Rule: a Jibri starts after its instance is in service: until it first answers (for
    /// at most LAUNCH_MAX_WAIT_S) it is booting: protected, never a victim, counted as
    /// capacity on its way, and not as a recording. Records when each was first seen.
    fn booting_in_service(&mut self, i: &InstanceObservation, class: &Class) -> bool {
        if i.lifecycle != LifecycleState::InService {
            return false;
        }
        let answered_now = matches!(i.probe, Probe::Status(_));
        let seen = self.prev.in_service.get(&i.id).copied().unwrap_or(Seen {
            since: self.now,
            answered: false,
        });
        let seen = Seen {
            since: seen.since,
            answered: seen.answered || answered_now,
        };
        self.next.in_service.insert(i.id.clone(), seen);
        let booting_for = self.now.saturating_sub(seen.since);
        let booting = !seen.answered
            && !i.upload_pending
            && booting_for < self.cfg.launch_max_wait_s
            && *class == Class::Busy;
        if booting {
            self.counts.launching += 1;
            self.keep(i, KeepReason::Booting { for_s: booting_for });
        }
        booting
    }

    /// Rule: launching instances are capacity on its way; `Pending:Wait` gets its hook.
    fn launching(&mut self, i: &InstanceObservation) {
        if i.probe.is_busy() {
            // Booted during Pending:Wait and already recording: busy, not capacity.
            self.counts.busy += 1;
            self.next.busy.insert(i.id.clone());
            self.keep(i, KeepReason::Busy);
        } else {
            self.counts.launching += 1;
            self.keep(i, KeepReason::Launching);
        }
        if i.lifecycle == LifecycleState::PendingWait {
            let since = *self.prev.launching.get(&i.id).unwrap_or(&self.now);
            self.next.launching.insert(i.id.clone(), since);
            self.hooks.push(launch_hook(i, since, self.cfg, self.now));
        }
    }

    /// Rule: busy, uploading and unknown recorders are kept. Unknown is not broken: a
    /// partition, a hung endpoint or an EC2 outage says nothing of the recorder, which may
    /// be recording. Only recorders that answer UNHEALTHY or EXPIRED are replaced.
    fn busy_or_unknown(&mut self, i: &InstanceObservation) {
        if i.probe.is_busy() {
            self.next.busy.insert(i.id.clone());
        }
        if !matches!(i.probe, Probe::Status(_)) && !i.upload_pending {
            self.counts.unknown += 1;
            let failure = ProbeSeen::from(&i.probe);
            self.keep(i, KeepReason::ProbeFailed { failure });
        } else {
            self.counts.busy += 1;
            let r = if i.upload_pending {
                KeepReason::UploadPending
            } else {
                KeepReason::Busy
            };
            self.keep(i, r);
        }
    }

    /// Rule: a recorder that answers UNHEALTHY or EXPIRED is a replacement candidate.
    fn broken(&mut self, i: &'a InstanceObservation) {
        self.counts.broken += 1;
        let since = *self.prev.troubled_since.get(&i.id).unwrap_or(&self.now);
        self.next.troubled_since.insert(i.id.clone(), since);
        let what = match &i.probe {
            Probe::Status(s) if s.busy == BusyStatus::Expired => "expired",
            Probe::Failed(ProbeFailure::Refused) => "exited after a drain",
            _ => "unhealthy",
        };
        self.troubled.push((i, since, what.to_string()));
        self.keep(
            i,
            KeepReason::Broken {
                since_s: self.now.saturating_sub(since),
            },
        );
    }

    /// Rule: a held terminate hook (in the group or returning to the warm pool).
    fn held_hook(&mut self, i: &InstanceObservation) {
        let prev = self.prev.held.get(&i.id).copied();
        let retain = self.obs.group.retain_on_abandon;
        let (action, held, drain_now) =
            terminating(i, prev, retain, self.cfg, self.now, &mut self.warnings);
        if drain_now {
            self.drain.push(i.id.clone());
        }
        self.next.held.insert(i.id.clone(), held);
        self.hooks.push(action);
    }

    /// Rule: a retained instance is terminated once nothing records or uploads on it; a
    /// busy one is drained so no new recording lands on it.
    fn retained(&mut self, i: &InstanceObservation) {
        self.counts.retained += 1;
        self.unanswering(i);
        match safe_to_release(i) {
            Ok(()) => self.terminate_retained.push(i.id.clone()),
            Err(why) => {
                if i.probe.is_busy() && !i.drain_requested {
                    self.drain.push(i.id.clone());
                }
                self.keep(
                    i,
                    KeepReason::NotInService {
                        state: format!("retained, {why}"),
                    },
                );
            }
        }
    }

    /// Rule: a retained instance whose Jibri does not answer at all (a timeout, garbage,
    /// a refusal without a confirmed drain) is kept forever by the rule above: nobody can
    /// tell whether it holds the only copy of a recording. Listed for the operator
    /// (threat: a retained instance that silently costs money and hides a recording).
    fn unanswering(&mut self, i: &InstanceObservation) {
        let unanswering = match &i.probe {
            Probe::Failed(ProbeFailure::Refused) => !i.drain_requested,
            Probe::Failed(_) | Probe::NotProbed => true,
            Probe::Status(_) => false,
        };
        if unanswering && !i.stopped {
            self.retained_unanswering.push(i.id.clone());
        }
    }

    /// Rule: the warm pool's instances are outside the desired capacity; their hooks are
    /// ours. A scale-in with reuse leaves the group straight into the pool and waits in
    /// `Warmed:Pending:Wait` on the *terminate* hook (AWS user guide): in service a tick
    /// ago, it is a recorder, guarded exactly like a termination.
    fn warm_pool_hooks(&mut self) {
        let Some(wp) = &self.obs.warm_pool else {
            return;
        };
        self.counts.warm = wp.instances.len() as u32;
        self.counts.warm_ready = wp.ready();
        for i in &wp.instances {
            let first_seen = self.prev.warm.get(&i.id).copied().unwrap_or(self.now);
            self.next.warm.insert(i.id.clone(), first_seen);
            let returning = i.lifecycle == LifecycleState::WarmedPendingWait
                && (self.prev.in_service.contains_key(&i.id)
                    || self.prev.returning.contains(&i.id));
            if returning {
                self.next.returning.insert(i.id.clone());
                self.held_hook(i);
                continue;
            }
            if i.lifecycle.is_retained() {
                // `Warmed:Pending:Retained` / `Warmed:Terminating:Retained`: an abandoned
                // warm-pool action kept by the retain policy. Running, outside the pool's
                // count: terminated once nothing records on it, like `Terminating:Retained`.
                self.counts.retained += 1;
                self.unanswering(i);
                match safe_to_release(i) {
                    Ok(()) => self.terminate_retained.push(i.id.clone()),
                    Err(why) => self.keep(
                        i,
                        KeepReason::NotInService {
                            state: format!("{}, {why}", i.lifecycle.as_str()),
                        },
                    ),
                }
                continue;
            }
            let transition = match i.lifecycle {
                LifecycleState::WarmedPendingWait => HookTransition::WarmPoolEntry,
                LifecycleState::WarmedTerminatingWait => HookTransition::WarmPoolExit,
                _ => continue,
            };
            let held = self.prev.held.get(&i.id).copied().unwrap_or(HeldHook {
                since: self.now,
                last_heartbeat: None,
            });
            let (action, held) = warm_hook(i, transition, held, self.cfg, self.now);
            if action.verdict == HookVerdict::Heartbeat || action.verdict == HookVerdict::Wait {
                self.next.held.insert(i.id.clone(), held);
            }
            self.hooks.push(action);
        }
    }

    /// Rule: boot clocks, from launch (or warm start) until the Jibri first answers; the
    /// measured latencies (once trusted) are the ones planned with.
    fn boot_clocks(&mut self) -> Boot {
        let (cfg, now) = (self.cfg, self.now);
        self.next.boot = self.prev.boot;
        for i in &self.obs.instances {
            let Some(clock) = self.boot_clock(i) else {
                continue;
            };
            // Seen answering at this tick: it came up within the last tick. The whole tick
            // is counted (an over-estimate of up to one period, on the safe side).
            let took = now.saturating_sub(clock.since);
            let answered = matches!(i.probe, Probe::Status(_))
                && matches!(
                    i.lifecycle,
                    LifecycleState::PendingWait | LifecycleState::InService
                );
            if answered {
                // Longer than the longest wait is no boot measurement (a stale clock).
                let stats = if clock.warm {
                    &mut self.next.boot.warm
                } else {
                    &mut self.next.boot.cold
                };
                if took <= cfg.launch_max_wait_s {
                    stats.add(took);
                }
            } else if i.lifecycle.is_launching()
                || (i.lifecycle == LifecycleState::InService && took < cfg.launch_max_wait_s)
            {
                self.next.booting.insert(i.id.clone(), clock);
            }
        }
        let boot = if cfg.boot_latency_learn {
            Boot {
                cold: self.next.boot.cold.or(cfg.boot_latency_s),
                warm: self.next.boot.warm.or(cfg.warm_boot_latency_s),
            }
        } else {
            Boot {
                cold: cfg.boot_latency_s,
                warm: cfg.warm_boot_latency_s,
            }
        };
        self.counts.boot_cold_s = boot.cold;
        self.counts.boot_warm_s = boot.warm;
        boot
    }

    /// An instance's boot clock: carried over, or started at its first sight launching.
    fn boot_clock(&self, i: &InstanceObservation) -> Option<BootClock> {
        self.prev.booting.get(&i.id).copied().or_else(|| {
            i.lifecycle.is_launching().then(|| {
                let warm_since = self.prev.warm.get(&i.id).copied();
                // A launch time older than the longest boot is not this boot's start (or
                // not a sane clock): the first sight here is used instead.
                let launch = i
                    .launch_time
                    .filter(|t| self.now.saturating_sub(*t) <= self.cfg.launch_max_wait_s);
                let since = match (warm_since, launch) {
                    (None, Some(t)) => t.min(self.now),
                    // EC2's LaunchTime is the instance's last start: trusted when it is
                    // not older than the first sight of the instance in the warm pool.
                    (Some(w), Some(t)) if t >= w => t.min(self.now),
                    _ => self.now,
                };
                BootClock {
                    since,
                    warm: warm_since.is_some(),
                }
            })
        })
    }

    /// Rule: demand. Recorders newly busy since the last tick, plus requests Jicofo
    /// refused, are this tick's starts: kept for the rate windows and learned by hour of
    /// week and minute of hour; new conferences and recent refusals are leading signals.
    fn demand(&mut self) -> Signals {
        let (cfg, now, prev) = (self.cfg, self.now, self.prev);
        let mut starts = 0u32;
        if prev.initialized {
            starts += self.next.busy.difference(&prev.busy).count() as u32;
        }
        let new_conferences = self.jicofo_counters();
        starts = starts.saturating_add(self.counts.refused.min(u64::from(u32::MAX)) as u32);
        self.counts.starts = starts;
        let minute = now - now % 60;
        let horizon = now.saturating_sub(cfg.rate_long_window_s);
        self.next.starts = prev
            .starts
            .iter()
            .copied()
            .filter(|(t, _)| *t >= horizon)
            .collect();
        if starts > 0 {
            match self.next.starts.last_mut() {
                Some((t, c)) if *t == minute => *c += starts,
                _ => self.next.starts.push((minute, starts)),
            }
        }
        self.next.demand = prev.demand.clone();
        // Counted from the first tick on (a first tick has no starts, but opens the hour:
        // the next tick then changes nothing in a steady pool).
        self.next.demand.observe(
            now,
            starts,
            new_conferences.min(u64::from(u32::MAX)) as u32,
            cfg.forecast_alpha,
        );
        self.next.refused_at = if self.counts.refused > 0 {
            Some(now)
        } else {
            prev.refused_at
        };
        let burst = cfg.leading_signals
            && self
                .next
                .refused_at
                .is_some_and(|t| now.saturating_sub(t) < cfg.rate_short_window_s);
        let lead = if cfg.leading_signals {
            self.next
                .demand
                .from_conferences(new_conferences, CONFERENCE_RECORDING_PRIOR)
        } else {
            0.0
        };
        Signals { lead, burst }
    }

    /// Jicofo's counters, when every shard answered: refusals since the last tick (into
    /// the counts) and the new conferences (returned). A lower total means Jicofo
    /// restarted: its counters began again at zero.
    fn jicofo_counters(&mut self) -> u64 {
        let (obs, prev) = (self.obs, self.prev);
        if !(obs.jicofo.complete() && obs.jicofo.shards_configured > 0) {
            self.next.jicofo_failures_total = prev.jicofo_failures_total;
            self.next.conferences = prev.conferences;
            return 0;
        }
        let total = obs.jicofo.stats.jibri_failures_total;
        if let Some(before) = prev.jicofo_failures_total {
            self.counts.refused = if total >= before {
                total - before
            } else {
                total
            };
        }
        self.next.jicofo_failures_total = Some(total);
        let conferences = obs.jicofo.stats.conferences;
        let new = prev
            .conferences
            .map_or(0, |before| conferences.saturating_sub(before));
        self.next.conferences = Some(conferences);
        new
    }

    /// The spare model's inputs for a boot latency.
    fn spare_inputs(&self, boot_s: u64, signals: Signals) -> SpareInputs<'_> {
        SpareInputs {
            history: &self.next.starts,
            now: self.now,
            boot_s,
            demand: self.cfg.forecast.then_some(&self.next.demand),
            lead: signals.lead,
            burst: signals.burst,
        }
    }

    /// Recorders occupied: busy (unknown included) and broken (until replaced).
    fn occupied(&self) -> u32 {
        self.counts.busy + self.counts.unknown + self.counts.broken
    }

    /// Rule: the spare target, over a cold boot; over a warm boot when the warm pool can
    /// serve the whole scale-out that target asks for.
    fn spare(&self, boot: Boot, signals: Signals) -> SpareTarget {
        let spare = spare_target(self.cfg, self.spare_inputs(boot.cold, signals));
        if self.counts.warm_ready == 0 {
            return spare;
        }
        let warm = spare_target(self.cfg, self.spare_inputs(boot.warm, signals));
        let c = &self.counts;
        let have = self
            .obs
            .group
            .desired
            .max(self.occupied() + c.idle + c.launching);
        if (self.occupied() + warm.target).saturating_sub(have) <= c.warm_ready {
            warm
        } else {
            spare
        }
    }

    /// Rule: the managed warm pool, sized for the starts expected over its horizon; grows
    /// at once, shrinks only below the highest target of the long window (refilling costs
    /// a boot).
    fn warm_pool_size(&mut self, spare_target: u32, signals: Signals) -> Option<WarmPoolChange> {
        let (cfg, now) = (self.cfg, self.now);
        if !cfg.warm_pool_managed {
            return None;
        }
        let demand = self.spare_inputs(0, signals).demand;
        let want = warm_target(cfg, demand, now, cfg.warm_pool_horizon_s, cfg.warm_pool_max)
            .max(spare_target)
            .clamp(cfg.warm_pool_min, cfg.warm_pool_max);
        let long_horizon = now.saturating_sub(cfg.rate_long_window_s);
        let mut targets: Vec<(EpochSecs, u32)> = self
            .prev
            .warm_targets
            .iter()
            .copied()
            .filter(|(t, _)| *t >= long_horizon && *t <= now)
            .collect();
        if targets.last().map(|(_, s)| *s) != Some(want) {
            targets.push((now, want));
        }
        let size = targets
            .iter()
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(want)
            .max(want);
        self.next.warm_targets = targets;
        match &self.obs.warm_pool {
            None => Some(WarmPoolChange { size, create: true }),
            Some(wp) if wp.status.is_empty() => {
                let current = wp.min_size;
                let exact = wp.max_prepared == Some(wp.min_size);
                let target = if size >= current {
                    size
                } else {
                    want.max(size)
                };
                (target != current || !exact).then_some(WarmPoolChange {
                    size: target,
                    create: false,
                })
            }
            Some(_) => None, // being deleted: not ours to resize.
        }
    }

    /// Rule: the floor scale-in keeps: the highest reactive target of the short window
    /// (hysteresis), and what one more tick of look-ahead needs (boot latency + two ticks):
    /// a recorder removed now and needed again within a boot is paid twice (its boot, and
    /// the refusals meanwhile).
    fn scale_in_floor(&mut self, spare: &SpareTarget, boot: Boot, signals: Signals) -> u32 {
        let ahead_inputs = SpareInputs {
            boot_s: spare.horizon_s,
            ..self.spare_inputs(boot.cold, signals)
        };
        let ahead = spare_target(self.cfg, ahead_inputs).target;
        let short_horizon = self.now.saturating_sub(self.cfg.rate_short_window_s);
        let mut recent: Vec<(EpochSecs, u32)> = self
            .prev
            .recent_targets
            .iter()
            .copied()
            .filter(|(t, _)| *t >= short_horizon && *t <= self.now)
            .collect();
        if recent.last().map(|(_, s)| *s) != Some(spare.reactive) {
            recent.push((self.now, spare.reactive));
        }
        let floor = recent
            .iter()
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(spare.target)
            .max(spare.target)
            .max(ahead);
        self.next.recent_targets = recent;
        floor
    }

    /// Rule: capacity. Desired covers the occupied recorders and the spare; scale-out at
    /// once; scale-in only with a complete observation and no configuration drift, of
    /// recorders idle for IDLE_GRACE_S, capped per tick, never below the floor nor below
    /// the spare in *answering* idle recorders. Returns the new desired and the victims.
    fn capacity(
        &mut self,
        spare_target: u32,
        scale_in_spare: u32,
    ) -> (Option<u32>, Vec<InstanceId>) {
        let (g, cfg) = (&self.obs.group, self.cfg);
        // An interrupted instance still counts in the desired capacity: its replacement is
        // launched now, not after EC2 took it.
        let needed =
            (self.occupied() + spare_target + self.counts.leaving).clamp(g.min, g.max.max(g.min));
        self.idle
            .sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
        let drifted = !self.obs.config_drift.is_empty();
        for d in &self.obs.config_drift {
            self.warnings.push(format!(
                "configuration drift, no scale-in or replacement: {d}"
            ));
        }
        if needed > g.desired {
            return (Some(needed), Vec::new());
        }
        if !(needed < g.desired && self.obs.jicofo.complete() && !drifted) {
            let reason = if needed < g.desired && drifted {
                KeepReason::ConfigDrift
            } else if needed < g.desired {
                KeepReason::ObservationIncomplete
            } else {
                KeepReason::SpareTarget
            };
            let idle: Vec<_> = self.idle.iter().map(|(i, _)| i.id.clone()).collect();
            self.kept
                .extend(idle.into_iter().map(|id| (id, reason.clone())));
            return (None, Vec::new());
        }
        let floor =
            (self.occupied() + scale_in_spare + self.counts.leaving).clamp(g.min, g.max.max(g.min));
        let excess = g.desired.saturating_sub(floor.max(needed));
        // Launches and booting recorders count toward the spare when deciding to launch,
        // but a scale-in never leaves fewer *answering* idle recorders than the target.
        let room = g
            .desired
            .saturating_sub(g.min)
            .min(self.counts.idle.saturating_sub(scale_in_spare));
        let budget = excess.min(cfg.scale_in_max_per_tick).min(room);
        let mut victims: Vec<InstanceId> = Vec::new();
        for (i, since) in &self.idle {
            let idle_for_s = self.now.saturating_sub(*since);
            let why = if idle_for_s < cfg.idle_grace_s {
                KeepReason::NotIdleLongEnough { idle_for_s }
            } else if (victims.len() as u32) < budget {
                victims.push(i.id.clone());
                continue;
            } else if (victims.len() as u32) < excess.min(room) {
                KeepReason::ScaleInBudgetSpent
            } else if room == 0 {
                KeepReason::AtMinSize
            } else {
                KeepReason::SpareTarget
            };
            self.kept.push((i.id.clone(), why));
        }
        let desired = (!victims.is_empty()).then(|| g.desired - victims.len() as u32);
        (desired, victims)
    }

    /// Rule: replacement of recorders that answer UNHEALTHY or EXPIRED for
    /// UNHEALTHY_GRACE_S: never of busy or unknown ones, never while the same tick scales
    /// in (one kind of removal at a time keeps the count simple), never with configuration
    /// drift or more than UNKNOWN_MAX_SHARE of the recorders unknown.
    fn replacements(&mut self, no_victims: bool) -> Vec<Replacement> {
        let (cfg, now) = (self.cfg, self.now);
        let c = &self.counts;
        let unknown_share = f64::from(c.unknown) / f64::from(c.total.max(1));
        if unknown_share > cfg.unknown_max_share && !self.troubled.is_empty() {
            self.warnings.push(format!(
                "{} of {} recorders unknown ({:.0} %, above UNKNOWN_MAX_SHARE): no replacement this tick",
                c.unknown,
                c.total,
                unknown_share * 100.0
            ));
        }
        let drifted = !self.obs.config_drift.is_empty();
        if !no_victims || drifted || unknown_share > cfg.unknown_max_share {
            return Vec::new();
        }
        self.troubled
            .sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
        self.troubled
            .iter()
            .filter(|(_, since, _)| now.saturating_sub(*since) >= cfg.unhealthy_grace_s)
            .take(cfg.replace_max_per_tick as usize)
            .map(|(i, since, what)| Replacement {
                instance: i.id.clone(),
                why: format!("{what} for {}s", now - since),
            })
            .collect()
    }

    /// Rule: protection reconciled. Everything in service or launching is protected from
    /// scale-in, except the victims, which the act phase unprotects right before the
    /// desired capacity drops.
    fn protection(&self, victims: &[InstanceId]) -> Vec<InstanceId> {
        self.obs
            .instances
            .iter()
            .filter(|i| {
                (i.lifecycle == LifecycleState::InService || i.lifecycle.is_launching())
                    && !i.protected_from_scale_in
            })
            .filter(|i| !victims.contains(&i.id))
            .map(|i| i.id.clone())
            .collect()
    }
}

/// EC2 termination protection (`DisableApiTermination`) follows what a recorder holds: on
/// while it is BUSY or has an upload pending, off once it answers idle with nothing
/// pending; an unknown recorder keeps what it had. Threat: AWS runs lifecycle hooks only
/// for terminations Auto Scaling starts; a direct `TerminateInstances` (console, CLI,
/// another tool) skips the guard, and this attribute refuses it. It does not stop Auto
/// Scaling's own terminations (EC2 User Guide, "Change instance termination protection"),
/// which the hooks guard. Returns what to turn on, what to turn off, and the new set.
pub fn api_termination_protection(
    instances: &[InstanceObservation],
    prev: &BTreeSet<InstanceId>,
) -> (Vec<InstanceId>, Vec<InstanceId>, BTreeSet<InstanceId>) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut next = BTreeSet::new();
    for i in instances {
        let running_jibri = matches!(
            i.lifecycle,
            LifecycleState::InService
                | LifecycleState::PendingWait
                | LifecycleState::TerminatingWait
                | LifecycleState::TerminatingRetained
        );
        let was = prev.contains(&i.id);
        let holds = i.upload_pending || i.probe.is_busy();
        // Idle, or exited after a confirmed drain (on its way out).
        let clean_idle = !i.upload_pending
            && match &i.probe {
                Probe::Status(s) => s.busy != BusyStatus::Busy,
                Probe::Failed(ProbeFailure::Refused) => i.drain_requested,
                _ => false,
            };
        let want = if !running_jibri {
            was
        } else if holds {
            true
        } else if clean_idle {
            false
        } else {
            was // unknown: unchanged
        };
        match (was, want) {
            (false, true) => on.push(i.id.clone()),
            (true, false) => off.push(i.id.clone()),
            _ => {}
        }
        if want {
            next.insert(i.id.clone());
        }
    }
    (on, off, next)
}

/// A terminate-hook action on a recorder (in the group, or scaled in back into the warm
/// pool): the verdict, the holding record (holding began when first seen, or earlier when
/// the guard drained it), and whether to ask its Jibri to drain now.
fn terminating(
    i: &InstanceObservation,
    prev: Option<HeldHook>,
    retain: bool,
    cfg: &Config,
    now: EpochSecs,
    warnings: &mut Vec<String>,
) -> (HookAction, HeldHook, bool) {
    let mut held = prev.unwrap_or(HeldHook {
        since: now,
        last_heartbeat: None,
    });
    held.since = held.since.min(i.drain_requested_at.unwrap_or(now));
    let (action, held) = terminate_hook(i, held, retain, cfg, now, warnings);
    let drain = action.verdict != HookVerdict::Continue
        && !i.drain_requested
        && i.probe != Probe::Failed(ProbeFailure::Refused);
    (action, held, drain)
}

fn terminate_hook(
    i: &InstanceObservation,
    mut held: HeldHook,
    retain: bool,
    cfg: &Config,
    now: EpochSecs,
    warnings: &mut Vec<String>,
) -> (HookAction, HeldHook) {
    let action = |verdict, why: HookReason| HookAction {
        instance: i.id.clone(),
        transition: HookTransition::Terminating,
        verdict,
        why,
    };
    match safe_to_release(i) {
        Ok(()) => (
            action(HookVerdict::Continue, HookReason::NotRecording),
            held,
        ),
        Err(why) => {
            let held_for = now.saturating_sub(held.since);
            if held_for >= cfg.max_hook_hold_s {
                if retain {
                    return (action(HookVerdict::Abandon, why.held_for(held_for)), held);
                }
                // Without TerminateHookAbandon=retain an ABANDON terminates the instance:
                // never given to a recorder that may be recording. The hold goes on with
                // heartbeats until AWS's own limit ends it (min(48 h, 100 x the hook's
                // HeartbeatTimeout)); the operator is told, every tick, to fix the policy.
                warnings.push(format!(
                    "{} held {held_for}s while {why}, past MAX_HOOK_HOLD_S: not abandoned, because the group has no TerminateHookAbandon=retain policy and ABANDON would terminate it; heartbeating until AWS's hold limit (fix the group's instance lifecycle policy)",
                    i.id
                ));
            }
            let due = held
                .last_heartbeat
                .is_none_or(|t| now.saturating_sub(t) >= cfg.heartbeat_interval_s);
            if due {
                held.last_heartbeat = Some(now);
                (action(HookVerdict::Heartbeat, why), held)
            } else {
                (action(HookVerdict::Wait, why), held)
            }
        }
    }
}

/// Recording starts per new conference assumed until the ratio is learned.
const CONFERENCE_RECORDING_PRIOR: f64 = 0.2;

/// The verdict on a warm-pool lifecycle action. Entering the pool (`Warmed:Pending:Wait`)
/// stops the instance, so it is a removal like a termination: a Jibri that answers BUSY
/// (or has an upload pending) is held, with heartbeats, up to `MAX_HOOK_HOLD_S`. One that
/// answers idle, or where nothing listens (the recorder image starts Jibri only in
/// service, see infra/README.md), goes in. One that does not answer yet (booting) waits:
/// the hook's own timeout (DefaultResult) decides if it never does. Leaving the pool for
/// termination (`Warmed:Terminating:Wait`): it goes when EC2 says it is stopped, its Jibri
/// answers idle or refuses at connect time; any other answer (a timeout, a 500, garbage)
/// proves nothing about a running instance, which may be recording: held, up to
/// `MAX_HOOK_HOLD_S`. An upload pending holds either.
pub fn warm_verdict(
    i: &InstanceObservation,
    transition: HookTransition,
) -> (HookVerdict, HookReason) {
    if i.upload_pending {
        return (HookVerdict::Heartbeat, HookReason::UploadPending);
    }
    if i.stopped {
        return (HookVerdict::Continue, HookReason::Stopped);
    }
    match &i.probe {
        Probe::Status(s) if s.busy == BusyStatus::Busy => {
            (HookVerdict::Heartbeat, HookReason::Busy)
        }
        Probe::Status(s) => (
            HookVerdict::Continue,
            HookReason::Answers {
                busy: s.busy,
                health: s.health,
            },
        ),
        Probe::Failed(ProbeFailure::Refused) => (HookVerdict::Continue, HookReason::NoJibriRunning),
        Probe::Failed(ProbeFailure::NoAddress) if transition == HookTransition::WarmPoolEntry => {
            (HookVerdict::Continue, HookReason::NoJibriRunning)
        }
        // Leaving the pool for termination: any answer (a 500, garbage, a hang) proves the
        // instance runs, and a running Jibri may be recording. Held until it answers idle or
        // refuses at connect time (stopped, or Jibri not started); MAX_HOOK_HOLD_S bounds it.
        other if transition == HookTransition::WarmPoolExit => (
            HookVerdict::Heartbeat,
            HookReason::WarmMayBeRunning { seen: other.into() },
        ),
        other => (
            HookVerdict::Wait,
            HookReason::Warming { seen: other.into() },
        ),
    }
}

fn warm_hook(
    i: &InstanceObservation,
    transition: HookTransition,
    mut held: HeldHook,
    cfg: &Config,
    now: EpochSecs,
) -> (HookAction, HeldHook) {
    let (mut verdict, mut why) = warm_verdict(i, transition);
    if verdict == HookVerdict::Heartbeat {
        let held_for = now.saturating_sub(held.since);
        if held_for >= cfg.max_hook_hold_s {
            verdict = HookVerdict::Abandon;
            why = why.held_for(held_for);
        } else if held
            .last_heartbeat
            .is_some_and(|t| now.saturating_sub(t) < cfg.heartbeat_interval_s)
        {
            verdict = HookVerdict::Wait;
        } else {
            held.last_heartbeat = Some(now);
        }
    }
    (
        HookAction {
            instance: i.id.clone(),
            transition,
            verdict,
            why,
        },
        held,
    )
}

/// The verdict on a launch action. ABANDON at launch terminates the instance without any
/// terminate hook, so it is only ever given to a recorder that answered and is certainly
/// not recording. A Jibri takes recordings from Jicofo as soon as it has booted, whatever
/// its instance's lifecycle state: one that answers BUSY is serving, and goes in service.
pub fn launch_verdict(
    i: &InstanceObservation,
    waited: u64,
    max_wait_s: u64,
) -> (HookVerdict, HookReason) {
    match &i.probe {
        Probe::Status(s) if s.is_available() => (HookVerdict::Continue, HookReason::Ready),
        Probe::Status(s) if s.busy == BusyStatus::Busy => {
            (HookVerdict::Continue, HookReason::AlreadyRecording)
        }
        // A recording not yet in S3 (the uploader's tag): ABANDON would terminate it with
        // the only copy. In service, it is guarded like any uploading recorder.
        _ if i.upload_pending && waited >= max_wait_s => (
            HookVerdict::Continue,
            HookReason::UploadPendingInService { waited_s: waited },
        ),
        Probe::Status(s) if waited >= max_wait_s => (
            HookVerdict::Abandon,
            HookReason::AnswersNotRecording {
                busy: s.busy,
                health: s.health,
                waited_s: waited,
            },
        ),
        // Unknown after the wait: it may have booted and taken a recording, so it goes in
        // service, where an unknown recorder is protected and only ever leaves through the
        // guarded terminate hook.
        other if waited >= max_wait_s => (
            HookVerdict::Continue,
            HookReason::UnknownInService {
                waited_s: waited,
                seen: other.into(),
            },
        ),
        other => (
            HookVerdict::Wait,
            HookReason::Booting {
                waited_s: waited,
                seen: other.into(),
            },
        ),
    }
}

fn launch_hook(
    i: &InstanceObservation,
    since: EpochSecs,
    cfg: &Config,
    now: EpochSecs,
) -> HookAction {
    let (mut verdict, why) = launch_verdict(i, now.saturating_sub(since), cfg.launch_max_wait_s);
    // A waiting launch action is heartbeated every tick: LAUNCH_MAX_WAIT_S decides it, never
    // the hook's own timeout, whose DefaultResult would decide for a recorder that may have
    // booted and taken a recording (or hold an upload) while it waits.
    if verdict == HookVerdict::Wait {
        verdict = HookVerdict::Heartbeat;
    }
    HookAction {
        instance: i.id.clone(),
        transition: HookTransition::Launching,
        verdict,
        why,
    }
}
