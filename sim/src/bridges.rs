//! A videobridge pool, simulated: an Auto Scaling group of Jitsi Videobridges, Jicofo's
//! bridge selection, a conference trace, and the policies that scale such a pool.
//!
//! Model (one second at a time):
//! - **Bridges.** A bridge answers `/colibri/stats` one boot latency after launch
//!   (log-normal, median 180 s, σ 0.2, [120, 420] s). Its stress is
//!   `participants / BRIDGE_CAPACITY` (100 endpoints at stress 1.0: the stress of a real
//!   bridge is its CPU over 0.9, which grows with the endpoints it forwards). Drain and
//!   undrain are the bridge's (`/colibri/drain/enable|disable`): a drained bridge keeps its
//!   conferences and gets no new one. Graceful shutdown (jitsi-autoscaler's way) is
//!   irreversible: the bridge exits 60 s after its last endpoint left.
//! - **Jicofo.** A conference starts on the least-stressed bridge that answers, is healthy
//!   and neither drained nor shutting down (Jicofo's `BridgeSelector`), all its
//!   participants at once, and stays there to its end; with no such bridge it has **no
//!   bridge** (counted). Jicofo knows nothing of the group's lifecycle.
//! - **The group.** As the recorders' (`world.rs`): launches to the desired capacity every
//!   10 s, `Pending` 50 s then `InService`; scale-in picks at random among unprotected
//!   in-service instances; with a terminate hook an instance waits in `Terminating:Wait`
//!   until CONTINUE or ABANDON (heartbeat timeout 900 s, retain policy); a **terminated
//!   bridge breaks every conference on it**. Billing per second, 60 s minimum.

use crate::conferences::{Conference, ConferenceTrace};
use crate::rng::{Rng, Stream};
use jibri_core::act::{
    block_on, execute, release_after_recheck, ActInput, ActionRef, Effects, LifecycleResult,
    PortError, PortResult, Recheck, RecorderAddress,
};
use jibri_core::config::Config;
use jibri_core::domain::*;
use jibri_core::guard::{decide, GuardDecision, HookLimits};
use jibri_core::jitsi::{parse_colibri_stats, BridgeSelectorStats, JicofoStats};
use jibri_core::plan::{plan, HookTransition};
use jibri_core::state::PoolState;
use std::sync::Mutex;

/// Endpoints at which a bridge's stress is 1.0.
pub const BRIDGE_CAPACITY: u32 = 100;
const PENDING_S: u64 = 50;
const ASG_PERIOD_S: u64 = 10;
const HEARTBEAT_TIMEOUT_S: u64 = 900;
const MIN_BILLED_S: u64 = 60;
/// A bridge in graceful shutdown exits this long after it emptied (`shutting-down-delay`).
const SHUTTING_DOWN_DELAY_S: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Pending,
    InService,
    TerminatingWait { since: u64, last_heartbeat: u64 },
    Retained,
    Terminated,
}

#[derive(Debug, Clone)]
pub struct Bridge {
    pub id: InstanceId,
    pub n: u64,
    pub life: Life,
    pub launched_at: u64,
    pub answers_at: u64,
    pub terminated_at: Option<u64>,
    pub protected: bool,
    pub drain: bool,
    pub drain_tag: Option<u64>,
    /// Graceful shutdown: since when empty (exits `SHUTTING_DOWN_DELAY_S` later).
    pub shutting_down: bool,
    pub empty_since: Option<u64>,
    /// Indices of the conferences it hosts.
    pub conferences: Vec<usize>,
    pub participants: u32,
}

impl Bridge {
    pub fn answers(&self, now: u64) -> bool {
        now >= self.answers_at && !matches!(self.life, Life::Terminated)
    }
    pub fn stress(&self) -> f64 {
        f64::from(self.participants) / f64::from(BRIDGE_CAPACITY)
    }
    fn in_group(&self) -> bool {
        matches!(self.life, Life::Pending | Life::InService)
    }
    /// Counted by the group against its desired capacity: a bridge in graceful shutdown
    /// has left jitsi-autoscaler's count (it exits on its own).
    fn counted(&self) -> bool {
        self.in_group() && !self.shutting_down
    }
}

/// What the group looks like: the policies' choices.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub min: u32,
    pub max: u32,
    pub initial: u32,
    pub terminate_hook: bool,
    pub new_instances_protected: bool,
}

/// What happened in one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    pub conferences: u64,
    pub broken: u64,
    pub no_bridge: u64,
    /// Endpoint-seconds on bridges above stress 1.0.
    pub overload_endpoint_s: u64,
    pub max_stress_milli: u32,
    pub launches: u64,
    pub desired_changes: u64,
}

pub struct BridgeWorld {
    pub now: u64,
    pub setup: Setup,
    pub desired: u32,
    pub bridges: Vec<Bridge>,
    pub confs: Vec<Conference>,
    /// Per conference: its bridge, while it runs.
    pub host: Vec<Option<usize>>,
    pub c: Counters,
    pub lost_bridges: u64,
    /// Epoch seconds of the world's second 0: the controller sees calendar time.
    pub offset: u64,
    /// Terminate events for the guard: (due, instance, action start).
    pub events: Vec<(u64, InstanceId, u64)>,
    seed: u64,
    victim_draws: u64,
}

impl BridgeWorld {
    pub fn epoch(&self) -> u64 {
        self.now + self.offset
    }

    pub fn new(setup: Setup, trace: &ConferenceTrace, seed: u64) -> Self {
        let mut w = BridgeWorld {
            now: 0,
            setup,
            desired: setup.initial,
            bridges: Vec::new(),
            confs: trace.conferences.clone(),
            host: vec![None; trace.conferences.len()],
            c: Counters::default(),
            lost_bridges: 0,
            offset: 0,
            events: Vec::new(),
            seed,
            victim_draws: 0,
        };
        // The initial bridges are up at second 0.
        for _ in 0..setup.initial {
            w.launch();
            if let Some(b) = w.bridges.last_mut() {
                b.life = Life::InService;
                b.answers_at = 0;
            }
        }
        w
    }

    fn launch(&mut self) {
        let n = self.bridges.len() as u64;
        let mut r = Rng::derive(self.seed, Stream::Boot, (1 << 40) + n);
        let boot = (r.lognormal(180.0, 0.2) as u64).clamp(120, 420);
        self.bridges.push(Bridge {
            id: InstanceId(format!("i-jvb{n:05}")),
            n,
            life: Life::Pending,
            launched_at: self.now,
            answers_at: self.now + boot,
            terminated_at: None,
            protected: self.setup.new_instances_protected,
            drain: false,
            drain_tag: None,
            shutting_down: false,
            empty_since: None,
            conferences: Vec::new(),
            participants: 0,
        });
        self.c.launches += 1;
    }

    pub fn index(&self, id: &InstanceId) -> Option<usize> {
        self.bridges.iter().position(|b| &b.id == id)
    }

    /// The end of a bridge: every conference on it breaks.
    fn kill(&mut self, i: usize) {
        let b = &mut self.bridges[i];
        if b.life == Life::Terminated {
            return;
        }
        b.life = Life::Terminated;
        b.terminated_at = Some(self.now);
        self.c.broken += b.conferences.len() as u64;
        for &k in &b.conferences {
            self.host[k] = None;
        }
        b.conferences.clear();
        b.participants = 0;
    }

    /// Starts a termination: through the terminate hook when the group has one.
    fn begin_termination(&mut self, i: usize) {
        if self.setup.terminate_hook {
            self.bridges[i].life = Life::TerminatingWait {
                since: self.now,
                last_heartbeat: self.now,
            };
            let id = self.bridges[i].id.clone();
            self.events.push((self.now + 2, id, self.now));
        } else {
            self.kill(i);
        }
    }

    /// One second: conferences end and start, bridges boot, exit and are billed.
    pub fn advance(&mut self, t: u64, next_conf: &mut usize) {
        self.now = t;
        for b in &mut self.bridges {
            if b.life == Life::Pending && t >= b.launched_at + PENDING_S {
                b.life = Life::InService;
            }
        }
        // Conferences that end now.
        for i in 0..self.bridges.len() {
            let ending: Vec<usize> = self.bridges[i]
                .conferences
                .iter()
                .copied()
                .filter(|&k| self.confs[k].end_s() <= t)
                .collect();
            for k in ending {
                let b = &mut self.bridges[i];
                b.conferences.retain(|&x| x != k);
                b.participants -= self.confs[k].participants;
                self.host[k] = None;
            }
        }
        while *next_conf < self.confs.len() && self.confs[*next_conf].start_s <= t {
            self.start(*next_conf);
            *next_conf += 1;
        }
        for i in 0..self.bridges.len() {
            let b = &mut self.bridges[i];
            if b.life == Life::Terminated {
                continue;
            }
            if b.participants == 0 {
                b.empty_since.get_or_insert(t);
            } else {
                b.empty_since = None;
            }
            if b.shutting_down
                && b.empty_since
                    .is_some_and(|e| t >= e + SHUTTING_DOWN_DELAY_S)
            {
                // The bridge exited: the instance is terminated by whoever shut it down.
                self.kill(i);
                continue;
            }
            if let Life::TerminatingWait { last_heartbeat, .. } = b.life {
                if t >= last_heartbeat + HEARTBEAT_TIMEOUT_S {
                    b.life = Life::Retained; // ABANDON with the retain policy
                }
            }
            let stress_milli = (b.stress() * 1000.0).round() as u32;
            self.c.max_stress_milli = self.c.max_stress_milli.max(stress_milli);
            if b.participants > BRIDGE_CAPACITY {
                self.c.overload_endpoint_s += u64::from(b.participants);
            }
        }
    }

    /// Jicofo's selection: the least-stressed bridge it may use, or none.
    fn start(&mut self, k: usize) {
        self.c.conferences += 1;
        let now = self.now;
        let pick = self
            .bridges
            .iter()
            .enumerate()
            .filter(|(_, b)| b.answers(now) && !b.drain && !b.shutting_down)
            .min_by_key(|(_, b)| (b.participants, b.n))
            .map(|(i, _)| i);
        match pick {
            Some(i) => {
                let b = &mut self.bridges[i];
                b.conferences.push(k);
                b.participants += self.confs[k].participants;
                self.host[k] = Some(i);
            }
            None => self.c.no_bridge += 1,
        }
    }

    /// The group's own reconciliation, every 10 s: launch up to desired; scale in
    /// unprotected in-service instances (at random) down to it.
    pub fn asg_step(&mut self) {
        if self.now % ASG_PERIOD_S != 0 {
            return;
        }
        let in_group = self.bridges.iter().filter(|b| b.counted()).count() as u32;
        for _ in in_group..self.desired {
            self.launch();
        }
        let mut excess = in_group.saturating_sub(self.desired);
        while excess > 0 {
            let candidates: Vec<usize> = (0..self.bridges.len())
                .filter(|&i| self.bridges[i].counted() && !self.bridges[i].protected)
                .collect();
            if candidates.is_empty() {
                break;
            }
            let mut r = Rng::derive(self.seed, Stream::AsgVictim, (1 << 40) + self.victim_draws);
            self.victim_draws += 1;
            let i = candidates[r.below(candidates.len() as u64) as usize];
            self.begin_termination(i);
            excess -= 1;
        }
    }

    pub fn set_desired(&mut self, d: u32) -> Result<(), String> {
        if d < self.setup.min || d > self.setup.max {
            return Err(format!(
                "desired {d} outside [{}, {}]",
                self.setup.min, self.setup.max
            ));
        }
        if d != self.desired {
            self.c.desired_changes += 1;
        }
        self.desired = d;
        Ok(())
    }

    /// `/colibri/stats` as the bridge would send it, read by the product's own parser.
    pub fn probe(&self, id: &InstanceId) -> Probe {
        let Some(b) = self.index(id).map(|i| &self.bridges[i]) else {
            return Probe::Failed(ProbeFailure::Timeout);
        };
        if b.life == Life::Terminated {
            return Probe::Failed(ProbeFailure::Timeout);
        }
        if !b.answers(self.now) {
            return Probe::Failed(ProbeFailure::Timeout);
        }
        let body = format!(
            "{{\"stress_level\":{},\"conferences\":{},\"endpoints\":{},\"participants\":{},\"drain\":{},\"graceful_shutdown\":{},\"shutting_down\":false,\"healthy\":true}}",
            b.stress(),
            b.conferences.len(),
            b.participants,
            b.participants,
            b.drain,
            b.shutting_down
        );
        match parse_colibri_stats(body.as_bytes()) {
            Ok(s) => Probe::Status(s.status()),
            Err(e) => Probe::Failed(ProbeFailure::Garbage(e.to_string())),
        }
    }

    pub fn billed_s(&self, horizon: u64) -> u64 {
        self.bridges
            .iter()
            .map(|b| {
                let end = b.terminated_at.unwrap_or(horizon).min(horizon);
                end.saturating_sub(b.launched_at).max(MIN_BILLED_S)
            })
            .sum()
    }

    /// Bridges Jicofo may select now.
    pub fn operational(&self) -> u32 {
        self.bridges
            .iter()
            .filter(|b| b.answers(self.now) && !b.drain && !b.shutting_down)
            .count() as u32
    }

    /// Mean stress of the answering bridges that take conferences (the field's metric).
    pub fn mean_stress(&self) -> Option<f64> {
        let s: Vec<f64> = self
            .bridges
            .iter()
            .filter(|b| b.in_group() && b.answers(self.now) && !b.shutting_down)
            .map(Bridge::stress)
            .collect();
        (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64)
    }
}

/// A policy for a bridge pool.
pub trait BridgePolicy {
    fn name(&self) -> String;
    /// Before a run: what a pool in production would have lived (ours: a week).
    fn prepare(&mut self, _trace: &ConferenceTrace, _seed: u64) {}
    fn setup(&self, trace: &ConferenceTrace) -> Setup;
    fn step(&mut self, w: &mut BridgeWorld);
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BridgeRun {
    pub policy: String,
    pub counters: Counters,
    pub billed_s: u64,
}

impl BridgeRun {
    pub fn instance_hours(&self) -> f64 {
        self.billed_s as f64 / 3600.0
    }
    pub fn overload_endpoint_min(&self) -> f64 {
        self.counters.overload_endpoint_s as f64 / 60.0
    }
}

pub fn run(policy: &mut dyn BridgePolicy, trace: &ConferenceTrace, seed: u64) -> BridgeRun {
    policy.prepare(trace, seed);
    simulate(policy, trace, seed, crate::conferences::MEASURED_EPOCH)
}

/// One day of `trace` on a new group, the world's second 0 at `offset` (epoch seconds).
pub fn simulate(
    policy: &mut dyn BridgePolicy,
    trace: &ConferenceTrace,
    seed: u64,
    offset: u64,
) -> BridgeRun {
    let mut w = BridgeWorld::new(policy.setup(trace), trace, seed);
    w.offset = offset;
    let mut next = 0;
    for t in 0..trace.horizon_s {
        w.advance(t, &mut next);
        policy.step(&mut w);
        w.asg_step();
    }
    BridgeRun {
        policy: policy.name(),
        billed_s: w.billed_s(trace.horizon_s),
        counters: w.c,
    }
}

/// A lower bound on instance-seconds: at every second, the fewest bridges that carry the
/// endpoints at stress 1.0 at most, perfectly packed, with no boot (at least one while any
/// conference runs). Loose: conferences cannot be split or moved.
pub fn lower_bound_s(trace: &ConferenceTrace) -> u64 {
    trace
        .participants_per_second()
        .iter()
        .map(|&p| u64::from(p.div_ceil(BRIDGE_CAPACITY)))
        .sum()
}

// ---------------------------------------------------------------------------------------
// Ours: the real plan() with POOL_KIND=jvb, carried out by the real act executor, and the
// guard's decide() on every terminate event.

pub const GROUP: &str = "jvb-pool";

pub fn config(overrides: &[(&str, &str)]) -> Result<Config, jibri_core::config::ConfigError> {
    crate::ours::deployment_config(&[("ASG_NAMES", GROUP), ("POOL_KIND", "jvb")], overrides)
}

pub struct OursBridges {
    pub label: String,
    pub cfg: Config,
    pub state: PoolState,
    pub min: u32,
    pub max: u32,
    pub log: Option<Vec<String>>,
    /// Live a week before the measured day (see [`BridgePolicy::prepare`]).
    pub history: bool,
}

impl OursBridges {
    pub fn with(label: &str, overrides: &[(&str, &str)]) -> Self {
        OursBridges {
            label: label.into(),
            cfg: config(overrides).unwrap_or_else(|e| panic!("{label}: {e}")),
            state: PoolState::default(),
            min: 1,
            max: 40,
            log: None,
            history: true,
        }
    }

    fn observation(
        &self,
        w: &BridgeWorld,
        b: &Bridge,
        lifecycle: LifecycleState,
    ) -> InstanceObservation {
        InstanceObservation {
            id: b.id.clone(),
            lifecycle,
            protected_from_scale_in: b.protected,
            private_ip: Some(format!("10.1.{}.{}", b.n / 250, b.n % 250 + 2)),
            launch_time: Some(b.launched_at + w.offset),
            upload_pending: false,
            drain_requested: b.drain_tag.is_some(),
            drain_requested_at: b.drain_tag,
            stopped: false,
            interruption_notice_at: None,
            probe: w.probe(&b.id),
        }
    }

    fn observe(&self, w: &BridgeWorld) -> Observation {
        let instances = w
            .bridges
            .iter()
            .filter_map(|b| {
                let l = match b.life {
                    Life::Pending => LifecycleState::Pending,
                    Life::InService => LifecycleState::InService,
                    Life::TerminatingWait { .. } => LifecycleState::TerminatingWait,
                    Life::Retained => LifecycleState::TerminatingRetained,
                    Life::Terminated => return None,
                };
                Some(self.observation(w, b, l))
            })
            .collect();
        let operational = u64::from(w.operational());
        Observation {
            group: GroupObservation {
                name: GROUP.into(),
                min: w.setup.min,
                max: w.setup.max,
                desired: w.desired,
                new_instances_protected: true,
                retain_on_abandon: true,
            },
            instances,
            jicofo: JicofoObservation {
                stats: JicofoStats {
                    conferences: w.host.iter().filter(|h| h.is_some()).count() as u64,
                    conferences_created: w.c.conferences,
                    bridges: Some(BridgeSelectorStats {
                        bridge_count: operational,
                        operational_bridge_count: operational,
                        in_shutdown_bridge_count: 0,
                        lost_bridges: w.lost_bridges,
                    }),
                    ..JicofoStats::default()
                },
                shards_configured: 1,
                shards_failed: 0,
            },
            warm_pool: None,
            config_drift: Vec::new(),
        }
    }

    fn tick(&mut self, w: &mut BridgeWorld) {
        let obs = self.observe(w);
        let now = w.epoch();
        let (p, next) = plan(&obs, &self.state, &self.cfg, now);
        if let Some(log) = self.log.as_mut() {
            log.push(format!("t={} {}", w.now, p.summary()));
        }
        self.state = next;
        let hooks = [
            self.cfg.launch_hook_name.as_str(),
            self.cfg.terminate_hook_name.as_str(),
        ];
        let input = ActInput::new(GROUP.into(), &p, &obs, &hooks, &self.cfg, now);
        block_on(execute(&BridgeEffects::new(w), input));
    }

    /// The guard on a terminate event: the shared `decide`, drain, re-probe, release.
    fn guard(&self, w: &mut BridgeWorld, id: &InstanceId, started: u64) {
        let Some(i) = w.index(id) else { return };
        if !matches!(w.bridges[i].life, Life::TerminatingWait { .. }) {
            return;
        }
        let obs = InstanceObservation {
            protected_from_scale_in: false,
            ..self.observation(w, &w.bridges[i], LifecycleState::TerminatingWait)
        };
        let now = w.epoch();
        let started = started + w.offset;
        match decide(
            HookTransition::Terminating,
            &obs,
            started,
            HookLimits::of(&self.cfg),
            now,
        ) {
            GuardDecision::Release { .. } => {
                let fx = BridgeEffects::new(w);
                let r = block_on(release_after_recheck(&fx, &obs, now, &mut Vec::new()));
                if r == Recheck::Release {
                    let _ = w.complete(id, true);
                } else {
                    w.drain(id);
                    w.heartbeat(id);
                }
            }
            GuardDecision::Hold { drain, .. } => {
                if drain {
                    w.drain(id);
                }
                w.heartbeat(id);
            }
            GuardDecision::Abandon { .. } => {
                let _ = w.complete(id, false);
            }
            _ => {}
        }
    }
}

impl BridgeWorld {
    fn drain(&mut self, id: &InstanceId) {
        if let Some(i) = self.index(id) {
            let at = self.epoch();
            self.bridges[i].drain = true;
            self.bridges[i].drain_tag.get_or_insert(at);
        }
    }
    fn heartbeat(&mut self, id: &InstanceId) {
        if let Some(i) = self.index(id) {
            if let Life::TerminatingWait { since, .. } = self.bridges[i].life {
                self.bridges[i].life = Life::TerminatingWait {
                    since,
                    last_heartbeat: self.now,
                };
            }
        }
    }
    /// CONTINUE terminates; ABANDON retains (the group's retain policy).
    fn complete(&mut self, id: &InstanceId, proceed: bool) -> Result<(), String> {
        let i = self.index(id).ok_or("no such instance")?;
        if !matches!(self.bridges[i].life, Life::TerminatingWait { .. }) {
            return Err("no active lifecycle action".into());
        }
        if proceed {
            self.kill(i);
        } else {
            self.bridges[i].life = Life::Retained;
        }
        Ok(())
    }
}

impl BridgePolicy for OursBridges {
    fn name(&self) -> String {
        self.label.clone()
    }
    /// A week of history (workdays and a quiet weekend, other seeds): only the
    /// controller's state carries over, what it learned.
    fn prepare(&mut self, _trace: &ConferenceTrace, seed: u64) {
        self.state = PoolState::default();
        if self.history {
            for (epoch, day) in crate::conferences::history_week(seed) {
                simulate(self, &day, seed, epoch);
            }
        }
        if let Some(log) = self.log.as_mut() {
            log.clear();
        }
    }
    fn setup(&self, _: &ConferenceTrace) -> Setup {
        Setup {
            min: self.min,
            max: self.max,
            initial: self.min,
            terminate_hook: true,
            new_instances_protected: true,
        }
    }
    fn step(&mut self, w: &mut BridgeWorld) {
        let due: Vec<(u64, InstanceId, u64)> =
            w.events.iter().filter(|e| e.0 <= w.now).cloned().collect();
        w.events.retain(|e| e.0 > w.now);
        for (_, id, started) in due {
            self.guard(w, &id, started);
        }
        if w.now % 60 == 0 {
            self.tick(w);
        }
    }
}

/// The bridge world as the act executor's effects: the same executor the Lambda runs.
pub struct BridgeEffects<'w> {
    w: Mutex<&'w mut BridgeWorld>,
}

impl<'w> BridgeEffects<'w> {
    pub fn new(w: &'w mut BridgeWorld) -> Self {
        BridgeEffects { w: Mutex::new(w) }
    }
    fn world(&self) -> std::sync::MutexGuard<'_, &'w mut BridgeWorld> {
        self.w.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn invalid(op: &'static str, message: String) -> PortError {
    PortError::Invalid { op, message }
}

impl Effects for BridgeEffects<'_> {
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        self.world().probe(&r.id)
    }
    /// A bridge pool's drain: `POST /colibri/drain/enable`.
    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        let mut w = self.world();
        let now = w.now;
        match w.index(&r.id) {
            Some(i) if w.bridges[i].answers(now) => {
                w.bridges[i].drain = true;
                Ok(())
            }
            _ => Err(ProbeFailure::Timeout),
        }
    }
    async fn undrain(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        let mut w = self.world();
        let now = w.now;
        match w.index(&r.id) {
            Some(i) if w.bridges[i].answers(now) => {
                w.bridges[i].drain = false;
                Ok(())
            }
            _ => Err(ProbeFailure::Timeout),
        }
    }
    async fn mark_drain_requested(&self, ids: &[InstanceId], at: EpochSecs) -> PortResult<()> {
        let mut w = self.world();
        for id in ids {
            if let Some(i) = w.index(id) {
                w.bridges[i].drain_tag = Some(at);
            }
        }
        Ok(())
    }
    async fn clear_drain_requested(&self, ids: &[InstanceId]) -> PortResult<()> {
        let mut w = self.world();
        for id in ids {
            if let Some(i) = w.index(id) {
                w.bridges[i].drain_tag = None;
            }
        }
        Ok(())
    }
    async fn set_termination_protection(&self, _: &InstanceId, _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn set_protection(&self, _: &str, ids: &[InstanceId], on: bool) -> PortResult<()> {
        let mut w = self.world();
        for id in ids {
            if let Some(i) = w.index(id) {
                w.bridges[i].protected = on;
            }
        }
        Ok(())
    }
    async fn set_desired(&self, _: &str, desired: u32) -> PortResult<()> {
        self.world()
            .set_desired(desired)
            .map_err(|m| invalid("SetDesiredCapacity", m))
    }
    async fn complete(&self, action: &ActionRef, result: LifecycleResult) -> PortResult<()> {
        self.world()
            .complete(&action.instance, result == LifecycleResult::Continue)
            .map_err(|message| PortError::NoActiveAction {
                op: "CompleteLifecycleAction",
                message,
            })
    }
    async fn heartbeat(&self, action: &ActionRef) -> PortResult<()> {
        self.world().heartbeat(&action.instance);
        Ok(())
    }
    async fn terminate(&self, id: &InstanceId, decrement: bool) -> PortResult<()> {
        let mut w = self.world();
        let i = w.index(id).ok_or_else(|| {
            invalid(
                "TerminateInstanceInAutoScalingGroup",
                "no such instance".into(),
            )
        })?;
        match w.bridges[i].life {
            Life::Retained => w.kill(i),
            Life::Pending | Life::InService => {
                if decrement {
                    let d = w.desired.saturating_sub(1).max(w.setup.min);
                    w.desired = d;
                }
                w.begin_termination(i);
            }
            _ => {}
        }
        Ok(())
    }
    async fn put_warm_pool(&self, _: &str, _: u32) -> PortResult<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Baselines.

/// jitsi-autoscaler with the JVB group settings of jitsi/infra-provisioning
/// `scripts/create-jvb-pool.sh`: 60 s periods; +1 when the mean stress is ≥ 0.3 in each of
/// the last 2 periods; −1 when < 0.1 in each of the last 10; 600 s grace after a change;
/// no decision while the count differs from desired (`autoscaler.ts`). Scale-down picks
/// the bridge with the fewest participants (`instance_launcher.ts`
/// `getInstancesForScaleDownByStress`) and its sidecar puts it in graceful shutdown: no
/// new conference, exit once empty. Nothing breaks a conference, but a bridge in shutdown
/// is never undrained.
pub struct JitsiAutoscaler {
    pub up: f64,
    pub down: f64,
    pub up_periods: usize,
    pub down_periods: usize,
    pub grace_s: u64,
    history: Vec<f64>,
    grace_until: u64,
}

impl Default for JitsiAutoscaler {
    fn default() -> Self {
        JitsiAutoscaler {
            up: 0.3,
            down: 0.1,
            up_periods: 2,
            down_periods: 10,
            grace_s: 600,
            history: Vec::new(),
            grace_until: 0,
        }
    }
}

impl BridgePolicy for JitsiAutoscaler {
    fn name(&self) -> String {
        "jitsi-autoscaler (stress ≥ 0.3 ×2 up, < 0.1 ×10 down, graceful shutdown)".into()
    }
    fn setup(&self, _: &ConferenceTrace) -> Setup {
        Setup {
            min: 1,
            max: 40,
            initial: 1,
            terminate_hook: false,
            new_instances_protected: true,
        }
    }
    fn step(&mut self, w: &mut BridgeWorld) {
        if w.now % 60 != 0 {
            return;
        }
        // Instances in shutdown are outside the group's count.
        let count = w
            .bridges
            .iter()
            .filter(|b| b.in_group() && !b.shutting_down)
            .count() as u32;
        if let Some(m) = w.mean_stress() {
            self.history.insert(0, m);
            self.history
                .truncate(self.up_periods.max(self.down_periods));
        }
        if w.now < self.grace_until {
            return;
        }
        let launching = w
            .bridges
            .iter()
            .filter(|b| b.in_group() && !b.answers(w.now))
            .count();
        if launching > 0 {
            return; // the launcher has not finished: count != desired
        }
        let all = |n: usize, f: &dyn Fn(f64) -> bool| {
            self.history.len() >= n && self.history[..n].iter().all(|&m| f(m))
        };
        if all(self.up_periods, &|m| m >= self.up) && count < w.setup.max {
            let d = (w.desired + 1).min(w.setup.max);
            let _ = w.set_desired(d);
            self.grace_until = w.now + self.grace_s;
        } else if all(self.down_periods, &|m| m < self.down) && count > w.setup.min {
            let victim = (0..w.bridges.len())
                .filter(|&i| w.bridges[i].in_group() && !w.bridges[i].shutting_down)
                .min_by_key(|&i| (w.bridges[i].participants, w.bridges[i].n));
            if let Some(i) = victim {
                w.bridges[i].shutting_down = true;
                // The instance leaves the group when the bridge exits; desired follows.
                w.desired = w.desired.saturating_sub(1).max(w.setup.min);
                w.c.desired_changes += 1;
                self.grace_until = w.now + self.grace_s;
            }
        }
    }
}

/// EC2 Auto Scaling target tracking on the group's average CPU, read as stress (a bridge's
/// stress is its CPU over 0.9): target `target` (0.5); scale out after 3 one-minute
/// datapoints above it, to `ceil(n × mean / target)`; scale in after 15 datapoints below
/// 90 % of it, to the same formula; 300 s warm-up. The group's default termination policy
/// picks the victims: no drain, no hook: every conference on them breaks.
pub struct TargetTracking {
    pub target: f64,
    above: u32,
    below: u32,
    warm_until: u64,
}

impl Default for TargetTracking {
    fn default() -> Self {
        TargetTracking {
            target: 0.5,
            above: 0,
            below: 0,
            warm_until: 0,
        }
    }
}

impl BridgePolicy for TargetTracking {
    fn name(&self) -> String {
        format!("CPU target tracking (stress {:.2}, no drain)", self.target)
    }
    fn setup(&self, _: &ConferenceTrace) -> Setup {
        Setup {
            min: 1,
            max: 40,
            initial: 1,
            terminate_hook: false,
            new_instances_protected: false,
        }
    }
    fn step(&mut self, w: &mut BridgeWorld) {
        if w.now % 60 != 0 {
            return;
        }
        let Some(m) = w.mean_stress() else { return };
        let n = w.bridges.iter().filter(|b| b.in_group()).count() as f64;
        if m > self.target {
            self.above += 1;
            self.below = 0;
        } else if m < 0.9 * self.target {
            self.below += 1;
            self.above = 0;
        } else {
            self.above = 0;
            self.below = 0;
        }
        let want = ((n * m / self.target).ceil() as u32).clamp(w.setup.min, w.setup.max);
        if self.above >= 3 && want > w.desired {
            let _ = w.set_desired(want);
            self.warm_until = w.now + 300;
            self.above = 0;
        } else if self.below >= 15 && w.now >= self.warm_until && want < w.desired {
            let _ = w.set_desired(want);
            self.below = 0;
        }
    }
}

/// A static pool: enough bridges that the trace's peak endpoints keep the mean stress at
/// `stress` (default the high mark, 0.3).
pub struct StaticPool {
    pub stress: f64,
}

impl BridgePolicy for StaticPool {
    fn name(&self) -> String {
        format!("static (peak at mean stress {:.1})", self.stress)
    }
    fn setup(&self, t: &ConferenceTrace) -> Setup {
        let peak = t.participants_per_second().into_iter().max().unwrap_or(0);
        let n =
            ((f64::from(peak) / (f64::from(BRIDGE_CAPACITY) * self.stress)).ceil() as u32).max(1);
        Setup {
            min: n,
            max: n,
            initial: n,
            terminate_hook: false,
            new_instances_protected: true,
        }
    }
    fn step(&mut self, _: &mut BridgeWorld) {}
}

/// The JVB comparison's rows: ours first, then the baselines.
pub fn standard_policies() -> Vec<Box<dyn BridgePolicy>> {
    vec![
        Box::new(OursBridges::with(
            "ours (POOL_KIND=jvb, defaults: band 0.2–0.4)",
            &[],
        )),
        Box::new(OursBridges::with(
            "ours, band 0.1–0.3 (jitsi-autoscaler's thresholds)",
            &[("JVB_STRESS_LOW", "0.1"), ("JVB_STRESS_HIGH", "0.3")],
        )),
        Box::new(OursBridges::with(
            "ours, band 0.3–0.6 (the issue's example)",
            &[("JVB_STRESS_LOW", "0.3"), ("JVB_STRESS_HIGH", "0.6")],
        )),
        Box::new(OursBridges::with("ours − forecast", &[("FORECAST", "off")])),
        Box::new(JitsiAutoscaler::default()),
        Box::new(TargetTracking::default()),
        Box::new(StaticPool { stress: 0.3 }),
    ]
}

/// The Markdown table of a comparison.
pub fn markdown(trace: &ConferenceTrace, runs: &[BridgeRun]) -> String {
    let bound = lower_bound_s(trace) as f64 / 3600.0;
    let mut s = String::from("| trace | policy | conferences | broken | no bridge | instance-hours | × bound | endpoint-min over stress 1.0 | max stress | scale actions |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let c = &r.counters;
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.0} | {:.2} | {} |\n",
            trace.name,
            r.policy,
            c.conferences,
            c.broken,
            c.no_bridge,
            r.instance_hours(),
            r.instance_hours() / bound,
            r.overload_endpoint_min(),
            f64::from(c.max_stress_milli) / 1000.0,
            c.desired_changes,
        ));
    }
    s.push_str(&format!(
        "| {} | lower bound (endpoints / {BRIDGE_CAPACITY} per bridge, packed, no boot) | {} | 0 | 0 | {bound:.1} | 1.00 | 0 | 1.00 | – |\n",
        trace.name,
        trace.conferences.len()
    ));
    s
}
