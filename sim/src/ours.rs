//! Our policy: the controller's real, pure [`plan`] every 60 s and the guard's real
//! [`decide`] on every lifecycle event, with their plans carried out on the world the way
//! `src/controller.rs` (`act`) and `src/guard.rs` (`handle`) carry them out on AWS.
//!
//! Nothing of the decision is copied here: the observation is built from the world, the
//! plan and the next state come from the library, and only the act phase (which in the
//! product is async I/O) is restated, call for call, against the world's ports.

use crate::run::Policy;
use crate::workload::{Job, ModelParams, Workload};
use crate::world::{GroupSetup, HookResult, Life, LifecycleEvent, World, WorldError};
use jibri_core::act::{
    block_on, execute, release_after_recheck, still_safe_to_stop, ActInput, ActionRef, Effects,
    LifecycleResult, PortError, PortResult, Recheck, RecorderAddress,
};
use jibri_core::config::{Config, ConfigError, FloorWindow};
use jibri_core::domain::*;
use jibri_core::guard::{decide, GuardDecision, HookLimits};
use jibri_core::jitsi::JicofoStats;
use jibri_core::plan::{plan, HookTransition, Plan};
use jibri_core::state::PoolState;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Jicofo's conference count at every second of `[0, horizon_s)`.
fn conference_counts(w: &Workload, horizon_s: u64) -> Vec<u32> {
    let mut delta = vec![0i64; horizon_s as usize + 1];
    let mut add = |from: u64, to: u64| {
        if from < horizon_s {
            delta[from as usize] += 1;
            delta[to.min(horizon_s) as usize] -= 1;
        }
    };
    for j in &w.jobs {
        let end = j.start_s + j.duration_s;
        add(j.start_s - j.lead_s, end);
        add(j.start_s - j.companion_lead_s, end);
    }
    let mut run = 0i64;
    delta[..horizon_s as usize]
        .iter()
        .map(|d| {
            run += d;
            run.max(0) as u32
        })
        .collect()
}

pub const GROUP: &str = "jibri-pool";

/// The configuration of a deployment: the README's defaults plus `overrides`.
pub fn config(overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
    deployment_config(&[("ASG_NAMES", GROUP)], overrides)
}

/// A simulated deployment's configuration: its `base` (the group, the pool kind), a Jicofo
/// the simulator answers for, then `overrides`, later keys winning. A key that is none of
/// the product's variables (`jibri_core::config::VARS`) is an error. The product ignores
/// other names in its environment, so a misspelt `--set`/`--variant` setting would
/// otherwise run a row on the defaults under a label that says it did not.
pub fn deployment_config(
    base: &[(&str, &str)],
    overrides: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert(
        "JICOFO_STATS_URLS".into(),
        "http://jicofo.sim:8888/stats".into(),
    );
    for (k, v) in base.iter().chain(overrides) {
        if !jibri_core::config::VARS.iter().any(|var| var.name == *k) {
            return Err(ConfigError {
                var: "setting",
                message: format!(
                    "{k} is not one of the product's variables (the README's configuration table)"
                ),
            });
        }
        m.insert((*k).to_string(), (*v).to_string());
    }
    Config::from_map(&m)
}

/// The overrides of [`Ours::workday_calendar`], as environment variables.
pub fn calendar_overrides() -> Vec<(&'static str, String)> {
    let mut windows = vec!["07:00-21:00=3".to_string()];
    for h in 8..18 {
        windows.push(format!("{:02}:56-{h:02}:00=26", h - 1));
        windows.push(format!("{h:02}:26-{h:02}:30=14"));
    }
    vec![
        ("SPARE_FLOOR_SCHEDULE", windows.join(",")),
        ("SPARE_MAX", "3".into()),
        ("IDLE_GRACE_S", "120".into()),
        ("SCALE_IN_MAX_PER_TICK", "10".into()),
    ]
}

/// The controller and the termination guard on a group with a terminate hook (retain on
/// abandon) and every new instance protected, as `infra/template.yaml` deploys them.
pub struct Ours {
    pub label: String,
    pub cfg: Config,
    pub state: PoolState,
    /// Controller schedule period (EventBridge `rate(1 minute)`).
    pub period_s: u64,
    pub launch_hook: bool,
    /// Every plan summary, when asked for (debugging).
    pub log: Option<Vec<String>>,
    /// Prototype of a suggested change to the spare model (not in `src/`): see [`BurstMemory`].
    pub burst_memory: Option<BurstMemory>,
    /// The group has a warm pool (sized by the plan when `WARM_POOL_MODE=managed`).
    pub warm_pool: bool,
    /// Live the week before the trace first (see [`crate::history`]), so the learned
    /// demand has what a pool in production would have (on for the defaults and
    /// [`Ours::with`], off for [`Ours::new`]).
    pub history: bool,
    /// Which week is lived (when `history` is on).
    pub history_source: crate::history::HistorySource,
    /// Epoch seconds of the world's second 0 (the controller sees real calendar time).
    pub offset: u64,
    /// Jicofo's conference count per world second, when the workload is known.
    conferences: Vec<u32>,
    /// The settings `cfg` was made from (over the defaults), so that `--set` can add to
    /// them ([`Policy::set_overrides`]).
    pub overrides: Vec<(String, String)>,
}

/// A prototype of a suggestion for `spare_target()`, applied from outside without touching
/// `src/`: before each tick, the spare target is floored to the recording starts seen in the
/// same phase of the last periods (`periods_s`, e.g. 30 and 60 min: meetings start on the
/// hour and the half hour), over the next `window_s`. The floor is handed to the real
/// `plan()` through `Config::spare_floors`, a one-minute window at the current minute; the
/// starts are the ones `plan()` itself counts (`Plan::counts.starts`).
#[derive(Debug, Clone, PartialEq)]
pub struct BurstMemory {
    pub periods_s: Vec<u64>,
    /// How far ahead the floor looks (about two boot latencies: what starts before a
    /// recorder launched now is ready must find one already there).
    pub window_s: u64,
    /// If set, the floor is the Poisson quantile at this probability of the starts seen
    /// (a margin for a burst larger than the last), else the count itself.
    pub probability: Option<f64>,
    /// Starts per minute, `(minute, count)`, as long as the longest period needs.
    pub history: Vec<(u64, u32)>,
}

impl BurstMemory {
    pub fn new(periods_s: Vec<u64>, window_s: u64) -> Self {
        Self {
            periods_s,
            window_s,
            probability: None,
            history: Vec::new(),
        }
    }

    /// The floor at `now`: the most starts any period back saw in its next `window_s`.
    pub fn floor(&self, now: u64) -> u32 {
        self.periods_s
            .iter()
            .filter(|&&p| p <= now)
            .map(|&p| {
                let from = now - p;
                self.history
                    .iter()
                    .filter(|(t, _)| (from..from + self.window_s).contains(t))
                    .map(|(_, c)| *c)
                    .sum::<u32>()
            })
            .max()
            .map(|seen| match self.probability {
                Some(p) if seen > 0 => {
                    jibri_core::spare::poisson_quantile(f64::from(seen), p, 1000)
                }
                _ => seen,
            })
            .unwrap_or(0)
    }

    fn record(&mut self, now: u64, starts: u32) {
        let keep = self.periods_s.iter().max().copied().unwrap_or(0) + self.window_s;
        self.history.retain(|(t, _)| t + keep >= now);
        if starts > 0 {
            self.history.push((now - now % 60, starts));
        }
    }
}

impl Ours {
    pub fn new(label: impl Into<String>, cfg: Config) -> Self {
        Self {
            label: label.into(),
            cfg,
            state: PoolState::default(),
            period_s: 60,
            launch_hook: false,
            log: None,
            burst_memory: None,
            warm_pool: false,
            history: false,
            history_source: crate::history::HistorySource::default(),
            offset: 0,
            conferences: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// Our plan() on the defaults with these settings over them, kept beside the
    /// configuration they made (what `--set` adds to); no launch hook, no history, a warm
    /// pool when `WARM_POOL_MODE=managed`.
    pub fn configured(label: &str, overrides: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut o = Self::new(label, config(overrides)?);
        o.warm_pool = o.cfg.warm_pool_managed;
        o.overrides = overrides
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Ok(o)
    }

    /// The defaults with configuration overrides (a lever off, or on).
    pub fn with(label: &str, overrides: &[(&str, &str)]) -> Self {
        let mut o = Self::configured(label, overrides).unwrap_or_else(|e| panic!("{label}: {e}"));
        o.launch_hook = true;
        o.history = true;
        o
    }

    /// The default configuration (`SPARE_MODE=adaptive`) on the group `infra/template.yaml`
    /// creates by default (`EnableLaunchHook=true`).
    pub fn default_config() -> Self {
        // The defaults are valid by construction (a config test in src/ says so).
        let mut o = Self::new(
            "ours (defaults)",
            config(&[]).unwrap_or_else(|e| panic!("default config: {e}")),
        );
        o.launch_hook = true;
        o.history = true;
        o
    }

    /// The default configuration on a group without the launch hook
    /// (`EnableLaunchHook=false`).
    pub fn default_without_launch_hook() -> Self {
        let mut o = Self::default_config();
        o.label = "ours (plan, defaults, no launch hook)".into();
        o.launch_hook = false;
        o
    }

    /// A configuration fitted to the workday's calendar (found with `bench-policy
    /// --variant` over four generated workdays): a floor of 26 idle recorders in the four
    /// minutes before each full hour and 14 before each half hour, 08:00-17:30 UTC; at least
    /// 3 idle 07:00-21:00; an adaptive spare capped at 3 (its reaction to a burst comes
    /// after the burst); idle recorders go after 2 minutes, up to 10 a tick.
    pub fn workday_calendar() -> Self {
        let pairs = calendar_overrides();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut refs = refs;
        refs.extend([("FORECAST", "off"), ("LEADING_SIGNALS", "off")]);
        let mut o = Self::configured(
            "ours, workday calendar (hand-fitted floors, no forecast)",
            &refs,
        )
        .unwrap_or_else(|e| panic!("calendar config: {e}"));
        o.launch_hook = true;
        o
    }

    fn tick(&mut self, w: &mut World) {
        let now = w.now + self.offset;
        let mut obs = observe(w, &self.cfg, self.offset);
        obs.jicofo.stats.conferences = self
            .conferences
            .get(w.now as usize)
            .map_or(0, |c| u64::from(*c));
        let mut cfg = std::borrow::Cow::Borrowed(&self.cfg);
        if let Some(b) = &self.burst_memory {
            let floor = b.floor(now);
            if floor > 0 {
                let minute = ((now % 86_400) / 60) as u32;
                cfg.to_mut().spare_floors.push(FloorWindow {
                    start_min: minute,
                    end_min: minute + 1,
                    floor,
                });
            }
        }
        let (p, next) = plan(&obs, &self.state, &cfg, now);
        if let Some(b) = self.burst_memory.as_mut() {
            b.record(now, p.counts.starts);
        }
        if let Some(log) = self.log.as_mut() {
            log.push(format!("t={} {}", w.now, p.summary()));
        }
        // The controller saves `next` whenever it changed (with or without acting).
        self.state = next;
        act(&p, &obs, w, &self.cfg, self.offset);
    }

    /// Lives the history of `work` (the week before it), keeping only the controller's
    /// state: what it learned. Then sets the calendar time of the trace itself.
    fn live_history(&mut self, p: &ModelParams, work: &Workload) {
        use crate::history::HistorySource;
        let placement = match &self.history_source {
            HistorySource::Bundled => crate::history::placement(&work.name, work.seed),
            HistorySource::None => crate::history::Placement {
                epoch: crate::history::placement(&work.name, work.seed).epoch,
                before: Vec::new(),
            },
            HistorySource::File(t) => crate::history::replayed(t, work.seed),
            HistorySource::ReplayItself => {
                let requests = work
                    .jobs
                    .iter()
                    .map(|j| crate::trace::Request {
                        start_s: j.start_s,
                        duration_s: j.duration_s,
                    })
                    .collect();
                let trace =
                    crate::trace::Trace::new(work.name.clone(), requests, Some(work.horizon_s));
                crate::history::replayed(&trace, work.seed)
            }
        };
        if self.history {
            for day in &placement.before {
                let w = Workload::new(&day.trace, p, day.seed);
                self.offset = day.epoch;
                self.conferences = conference_counts(&w, day.horizon_s);
                crate::run::simulate(self, &w, p, day.horizon_s);
            }
        }
        if let Some(log) = self.log.as_mut() {
            log.clear();
        }
        self.offset = placement.epoch;
        self.conferences = conference_counts(work, work.horizon_s);
    }
}

impl Policy for Ours {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn set_history(&mut self, h: &crate::history::HistorySource) {
        self.history_source = h.clone();
    }

    fn set_overrides(&mut self, extra: &[(String, String)]) -> anyhow::Result<()> {
        if extra.is_empty() {
            return Ok(());
        }
        let refs: Vec<(&str, &str)> = self
            .overrides
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.cfg = config(&refs).map_err(|e| anyhow::anyhow!("--set for {}: {e}", self.label))?;
        self.warm_pool = self.cfg.warm_pool_managed;
        Ok(())
    }

    fn prepare(&mut self, p: &ModelParams, w: &Workload) {
        self.state = PoolState::default();
        self.live_history(p, w);
    }

    fn setup(&self, p: &ModelParams, _w: &Workload) -> GroupSetup {
        let initial = match self.cfg.spare {
            jibri_core::config::SpareMode::Fixed(n) => n,
            jibri_core::config::SpareMode::Adaptive { min, .. } => min,
        };
        GroupSetup {
            min: p.min,
            max: p.max,
            initial: initial.clamp(p.min, p.max),
            terminate_hook: true,
            launch_hook: self.launch_hook,
            new_instances_protected: true,
            retain_on_abandon: true,
            warm_pool: self.warm_pool,
        }
    }

    fn step(&mut self, w: &mut World, _jobs: &[Job]) {
        for ev in w.take_due_events() {
            guard(&ev, w, &self.cfg, self.offset);
        }
        if w.now % self.period_s == 0 {
            self.tick(w);
        }
    }
}

/// The instance as EC2 + its probe describe it (what `Ec2Instance::observe` builds).
fn instance_observation(
    w: &World,
    i: &crate::world::Instance,
    lifecycle: LifecycleState,
    probed: bool,
    offset: u64,
) -> InstanceObservation {
    // EC2 keeps the drain tag across a stop/start; the observation drops a stale one
    // exactly as `Ec2Instance::observe` does.
    let start = i.started_at + offset;
    let tag = i
        .drain_tag
        .map(|t| t + offset)
        .filter(|t| drain_current(Some(*t), Some(start)));
    InstanceObservation {
        id: i.id.clone(),
        lifecycle,
        protected_from_scale_in: i.protected,
        private_ip: Some(format!("10.0.{}.{}", i.n / 250, i.n % 250 + 2)),
        launch_time: Some(start),
        upload_pending: false,
        drain_requested: tag.is_some(),
        drain_requested_at: tag,
        stopped: i.life == crate::world::Life::WarmStopped,
        interruption_notice_at: None,
        probe: if probed {
            w.probe(&i.id)
        } else {
            Probe::NotProbed
        },
    }
}

/// The controller's observe phase: the group, every instance (probed when `InService`,
/// `Pending:Wait`, `Terminating:Wait` or `Terminating:Retained`), and one Jicofo shard.
pub fn observe(w: &World, cfg: &Config, offset: u64) -> Observation {
    let instances = w
        .instances
        .iter()
        .filter(|i| i.life != Life::Terminated && !i.life.is_warm())
        .map(|i| {
            let probed = matches!(
                i.life,
                Life::InService
                    | Life::PendingWait { .. }
                    | Life::TerminatingWait { .. }
                    | Life::Retained
            );
            instance_observation(w, i, i.life.state(), probed, offset)
        })
        .collect();
    let warm_pool = w.setup.warm_pool.then(|| WarmPoolObservation {
        min_size: w.warm_size,
        max_prepared: Some(w.warm_size),
        pool_state: "Stopped".into(),
        reuse_on_scale_in: true,
        status: String::new(),
        instances: w
            .instances
            .iter()
            .filter(|i| i.life.is_warm())
            .map(|i| {
                instance_observation(
                    w,
                    i,
                    i.life.state(),
                    matches!(i.life, Life::WarmPendingWait { .. }),
                    offset,
                )
            })
            .collect(),
    });
    Observation {
        group: GroupObservation {
            name: cfg.pool_group().to_string(),
            min: w.setup.min,
            max: w.setup.max,
            desired: w.desired,
            new_instances_protected: w.setup.new_instances_protected,
            retain_on_abandon: w.setup.retain_on_abandon,
        },
        instances,
        jicofo: JicofoObservation {
            stats: JicofoStats {
                jibri_count: Some(u64::from(w.brewery_count())),
                jibri_available: Some(u64::from(w.available())),
                recording_active: w
                    .instances
                    .iter()
                    .filter(|i| matches!(i.jibri, crate::world::Jibri::Recording { .. }))
                    .count() as u64,
                jibri_failures_total: w.jicofo_failures_total,
                ..JicofoStats::default()
            },
            shards_configured: cfg.jicofo_stats_urls.len(),
            shards_failed: 0,
        },
        warm_pool,
        config_drift: Vec::new(),
    }
}

/// The world as the act phase's effects: the simulator runs the very executor the Lambda
/// runs ([`jibri_core::act::execute`]). The world answers at once (no call ever waits);
/// hook names are not modelled (an instance has at most one action at a time); EC2
/// termination protection is not modelled (nothing in the world terminates directly).
pub struct WorldEffects<'w> {
    w: Mutex<&'w mut World>,
}

impl<'w> WorldEffects<'w> {
    pub fn new(w: &'w mut World) -> Self {
        WorldEffects { w: Mutex::new(w) }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, &'w mut World> {
        // A poisoned lock means a panic elsewhere in this thread: the run is over anyway.
        self.w.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn port_error(op: &'static str, e: WorldError) -> PortError {
    match e {
        WorldError::NoActiveAction(_) => PortError::NoActiveAction {
            op,
            message: e.to_string(),
        },
        WorldError::NoInstance(_) => PortError::NotFound {
            op,
            message: e.to_string(),
        },
        WorldError::OutOfRange { .. } => PortError::Invalid {
            op,
            message: e.to_string(),
        },
    }
}

impl Effects for WorldEffects<'_> {
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        self.world().probe(&r.id)
    }
    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        self.world().graceful_shutdown(&r.id)
    }
    async fn mark_drain_requested(&self, ids: &[InstanceId], _at: EpochSecs) -> PortResult<()> {
        let mut w = self.world();
        for id in ids {
            w.mark_drain_requested(id);
        }
        Ok(())
    }
    async fn set_termination_protection(&self, _: &InstanceId, _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn set_protection(&self, _: &str, ids: &[InstanceId], on: bool) -> PortResult<()> {
        self.world().set_protection(ids, on);
        Ok(())
    }
    async fn set_desired(&self, _: &str, desired: u32) -> PortResult<()> {
        self.world()
            .set_desired(desired)
            .map_err(|e| port_error("SetDesiredCapacity", e))
    }
    async fn complete(&self, action: &ActionRef, result: LifecycleResult) -> PortResult<()> {
        let result = match result {
            LifecycleResult::Continue => HookResult::Continue,
            LifecycleResult::Abandon => HookResult::Abandon,
        };
        self.world()
            .complete(&action.instance, result)
            .map_err(|e| port_error("CompleteLifecycleAction", e))
    }
    async fn heartbeat(&self, action: &ActionRef) -> PortResult<()> {
        self.world()
            .heartbeat(&action.instance)
            .map_err(|e| port_error("RecordLifecycleActionHeartbeat", e))
    }
    async fn terminate(&self, id: &InstanceId, decrement: bool) -> PortResult<()> {
        self.world()
            .terminate(id, decrement)
            .map_err(|e| port_error("TerminateInstanceInAutoScalingGroup", e))
    }
    async fn put_warm_pool(&self, _: &str, size: u32) -> PortResult<()> {
        self.world().put_warm_pool(size);
        Ok(())
    }
}

/// The controller's act phase on the world: the shared executor.
pub fn act(plan: &Plan, obs: &Observation, w: &mut World, cfg: &Config, offset: u64) {
    let now = w.now + offset;
    let hooks = [
        cfg.launch_hook_name.as_str(),
        cfg.terminate_hook_name.as_str(),
    ];
    let input = ActInput::new(cfg.pool_group().to_string(), plan, obs, &hooks, cfg, now);
    block_on(execute(&WorldEffects::new(w), input));
}

/// The guard's release: the shared drain, tag and re-probe.
fn release(w: &mut World, i: &InstanceObservation, offset: u64) -> bool {
    let now = w.now + offset;
    let fx = WorldEffects::new(w);
    block_on(release_after_recheck(&fx, i, now, &mut Vec::new())) == Recheck::Release
}

/// `Guard::handle` for one lifecycle event.
pub fn guard(ev: &LifecycleEvent, w: &mut World, cfg: &Config, offset: u64) {
    let now = w.now + offset;
    let Some(inst) = w.find(&ev.instance) else {
        return;
    };
    let (lifecycle, transition) = match (ev.terminating, ev.warm_entry) {
        (true, _) => (LifecycleState::TerminatingWait, HookTransition::Terminating),
        (false, true) => (
            LifecycleState::WarmedPendingWait,
            HookTransition::WarmPoolEntry,
        ),
        (false, false) => (LifecycleState::PendingWait, HookTransition::Launching),
    };
    let obs = InstanceObservation {
        protected_from_scale_in: false,
        ..instance_observation(w, inst, lifecycle, true, offset)
    };
    let started = (ev.started + offset).min(now);
    let hold = |w: &mut World, drain: bool| {
        if drain {
            let _ = w.graceful_shutdown(&ev.instance);
            w.mark_drain_requested(&ev.instance);
        }
        let _ = w.heartbeat(&ev.instance);
    };
    match decide(transition, &obs, started, HookLimits::of(cfg), now) {
        GuardDecision::Release { .. } => {
            if release(w, &obs, offset) {
                let _ = w.complete(&ev.instance, HookResult::Continue);
            } else {
                w.c.guard_holds += 1;
                hold(w, true);
            }
        }
        GuardDecision::Hold { drain, .. } => {
            w.c.guard_holds += 1;
            hold(w, drain)
        }
        GuardDecision::Abandon { .. } => {
            let _ = w.complete(&ev.instance, HookResult::Abandon);
        }
        GuardDecision::LaunchReady => {
            let _ = w.complete(&ev.instance, HookResult::Continue);
        }
        GuardDecision::LaunchNotReady { .. } => {}
        GuardDecision::WarmContinue { .. } => {
            // The guard's one last look: the same rule as the plan's (`warm_verdict`).
            let safe = block_on(still_safe_to_stop(&WorldEffects::new(w), &obs, transition));
            if safe {
                let _ = w.complete(&ev.instance, HookResult::Continue);
            } else {
                hold(w, false);
            }
        }
    }
}
