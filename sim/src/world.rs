//! The modeled world, one second at a time: an EC2 Auto Scaling group (launches with a boot
//! latency, scale-in by its default termination policy among unprotected instances, lifecycle
//! hooks with heartbeat timeouts and the retain policy, per-second billing with a 60 s
//! minimum), the Jibri recorders on its instances, and Jicofo handing out recorders.
//!
//! Policies see it through port-like operations named after the AWS and Jibri calls
//! (`set_desired`, `set_protection`, `terminate`, `complete`, `heartbeat`,
//! `graceful_shutdown`, `probe`, `mark_drain_requested`); the world does the rest itself.

use crate::workload::{Job, ModelParams};
use jibri_core::domain::{EpochSecs, InstanceId, LifecycleState, Probe, ProbeFailure};
use jibri_core::testkit;
use std::fmt;

/// How a policy wants its group set up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupSetup {
    pub min: u32,
    pub max: u32,
    /// Instances in service and ready at t = 0 (also the initial desired capacity).
    pub initial: u32,
    /// A terminate lifecycle hook (`DefaultResult` ABANDON): instances wait in
    /// `Terminating:Wait` until completed, and a guard event is delivered.
    pub terminate_hook: bool,
    /// A launch lifecycle hook (`DefaultResult` CONTINUE).
    pub launch_hook: bool,
    pub new_instances_protected: bool,
    /// `TerminateHookAbandon = retain`.
    pub retain_on_abandon: bool,
    /// A warm pool (stopped instances, reuse on scale-in), sized by the policy
    /// (`PutWarmPool`; 0 until it says).
    pub warm_pool: bool,
}

/// An instance's Auto Scaling lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Pending,
    PendingWait {
        since: u64,
        last_heartbeat: u64,
    },
    InService,
    TerminatingWait {
        since: u64,
        last_heartbeat: u64,
    },
    Retained,
    Terminated,
    /// `Warmed:Pending`: launched into the warm pool, preparing (running, billed) until
    /// `until`; or stopping on its way back into the pool.
    WarmPending {
        until: u64,
    },
    /// `Warmed:Pending:Wait`: the launch hook holds it before it is stopped.
    WarmPendingWait {
        since: u64,
        last_heartbeat: u64,
    },
    /// `Warmed:Stopped`: billed for its storage only; a scale-out starts it.
    WarmStopped,
}

impl Life {
    /// Counted in the group's capacity (what desired capacity is compared with).
    pub fn in_capacity(&self) -> bool {
        matches!(
            self,
            Life::Pending | Life::PendingWait { .. } | Life::InService
        )
    }

    pub fn state(&self) -> LifecycleState {
        match self {
            Life::Pending => LifecycleState::Pending,
            Life::PendingWait { .. } => LifecycleState::PendingWait,
            Life::InService => LifecycleState::InService,
            Life::TerminatingWait { .. } => LifecycleState::TerminatingWait,
            Life::Retained => LifecycleState::TerminatingRetained,
            Life::Terminated => LifecycleState::Terminated,
            Life::WarmPending { .. } => LifecycleState::Other("Warmed:Pending".into()),
            Life::WarmPendingWait { .. } => LifecycleState::WarmedPendingWait,
            Life::WarmStopped => LifecycleState::WarmedStopped,
        }
    }

    /// In the warm pool (outside the desired capacity).
    pub fn is_warm(&self) -> bool {
        matches!(
            self,
            Life::WarmPending { .. } | Life::WarmPendingWait { .. } | Life::WarmStopped
        )
    }
}

/// What the Jibri on an instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jibri {
    /// Not answering yet (connection refused).
    Booting,
    Idle,
    /// BUSY: recording `job` until `until`.
    Recording {
        job: usize,
        until: u64,
    },
    /// BUSY: finalizing/uploading `job` until `until`.
    Finalizing {
        job: usize,
        until: u64,
        unhealthy_after: bool,
    },
    /// IDLE but UNHEALTHY (sticky): Jicofo will not use it.
    Unhealthy,
    /// Exited after a graceful shutdown (connection refused).
    Exited,
}

impl Jibri {
    pub fn is_busy(&self) -> bool {
        matches!(self, Jibri::Recording { .. } | Jibri::Finalizing { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Launch ordinal in this run.
    pub n: u64,
    pub id: InstanceId,
    pub launched_at: u64,
    /// Its last start (EC2's `LaunchTime`): the launch, or a start from the warm pool.
    pub started_at: u64,
    /// Stopped in the warm pool since, and for how long before (billed as storage).
    pub stopped_since: Option<u64>,
    pub stopped_s: u64,
    pub in_service_at: u64,
    pub ready_at: u64,
    pub life: Life,
    pub protected: bool,
    pub jibri: Jibri,
    /// `gracefulShutdown` received: takes no new recording, exits when its session is done.
    pub shutdown_requested: bool,
    /// The `drain-requested` tag and its time.
    pub drain_tag: Option<u64>,
    /// When the Jibri joined Jicofo's brewery (first ready); Jicofo prefers the earliest.
    pub joined_at: Option<u64>,
    pub ended_at: Option<u64>,
}

impl Instance {
    /// Healthy, idle and not shutting down: what Jicofo may hand a recording.
    pub fn available(&self) -> bool {
        self.jibri == Jibri::Idle && !self.shutdown_requested && self.life != Life::Terminated
    }
}

/// A lifecycle action delivered to the termination guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    pub due: u64,
    pub instance: InstanceId,
    pub terminating: bool,
    /// When the action began (the event's `time`).
    pub started: u64,
    /// A launch into the warm pool (`Destination: WarmPool`).
    pub warm_entry: bool,
}

/// `CompleteLifecycleAction` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookResult {
    Continue,
    Abandon,
}

/// Errors of the port-like operations, like AWS's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    #[error("no such instance {0}")]
    NoInstance(InstanceId),
    #[error("No active Lifecycle Action found with instance ID {0}")]
    NoActiveAction(InstanceId),
    #[error("desired capacity {desired} outside [{min}, {max}]")]
    OutOfRange { desired: u32, min: u32, max: u32 },
}

/// A busy recorder terminated: when, which, from which lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BusyKill {
    pub t: u64,
    pub instance: String,
    pub lifecycle: String,
    /// Mid-recording (else mid-finalize/upload).
    pub recording: bool,
    pub protected: bool,
}

/// What a run counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub requests: u64,
    pub served: u64,
    pub refused: u64,
    /// Instances terminated while their Jibri was BUSY (recording or finalizing).
    pub busy_killed: u64,
    /// Of those, killed mid-recording (the rest lost an upload).
    pub recordings_cut: u64,
    pub launches: u64,
    /// `SetDesiredCapacity` calls that changed it.
    pub desired_changes: u64,
    /// `TerminateInstanceInAutoScalingGroup` calls.
    pub terminate_calls: u64,
    pub hooks_abandoned: u64,
    /// Scale-outs served by starting a warm-pool instance.
    pub warm_starts: u64,
    /// Terminate hooks the guard held because the recorder was busy (paid, not killed).
    pub guard_holds: u64,
    /// Instance-seconds alive, counted second by second (a cross-check of the billing).
    pub alive_s: u64,
    /// Recorder-seconds BUSY (recording or finalizing).
    pub busy_s: u64,
    /// For each refused request, seconds until a recorder was available again.
    pub refusal_recovery_s: Vec<u64>,
    /// What was killed busy, when, from which state (for the report and debugging).
    pub kill_log: Vec<BusyKill>,
    /// Invariant breaches seen by the world itself (must stay empty).
    pub violations: Vec<String>,
}

/// One per-minute sample for the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    pub t: u64,
    pub busy: u32,
    pub available: u32,
    /// Instances billed right now (every state but terminated).
    pub billed: u32,
    pub in_capacity: u32,
    pub desired: u32,
    /// Instances in the warm pool.
    pub warm: u32,
}

pub struct World {
    pub p: ModelParams,
    pub setup: GroupSetup,
    pub seed: u64,
    pub now: EpochSecs,
    pub desired: u32,
    /// Every instance not yet terminated.
    pub instances: Vec<Instance>,
    /// Seconds billed by instances already terminated.
    pub billed_done_s: u64,
    /// `(launched, terminated)` of every instance terminated so far.
    pub ledger: Vec<(u64, u64)>,
    /// Jicofo's `jibri.total_recording_failures`.
    pub jicofo_failures_total: u64,
    /// The warm pool's size (`MinSize` = `MaxGroupPreparedCapacity`).
    pub warm_size: u32,
    pub events: Vec<LifecycleEvent>,
    pub c: Counters,
    pub samples: Vec<Sample>,
    open_refusals: Vec<u64>,
    victim_rng: crate::rng::Rng,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "World(t={}, desired={}, instances={})",
            self.now,
            self.desired,
            self.instances.len()
        )
    }
}

impl World {
    pub fn new(p: ModelParams, setup: GroupSetup, seed: u64) -> Self {
        let mut w = Self {
            desired: setup.initial,
            p,
            setup,
            seed,
            now: 0,
            instances: Vec::new(),
            billed_done_s: 0,
            ledger: Vec::new(),
            jicofo_failures_total: 0,
            warm_size: 0,
            events: Vec::new(),
            c: Counters::default(),
            samples: Vec::new(),
            open_refusals: Vec::new(),
            victim_rng: crate::rng::Rng::derive(seed, crate::rng::Stream::AsgVictim, 0),
        };
        for _ in 0..w.setup.initial {
            let mut i = w.new_instance();
            // Already running and ready when the trace begins.
            i.in_service_at = 0;
            i.ready_at = 0;
            i.life = Life::InService;
            i.jibri = Jibri::Idle;
            i.joined_at = Some(0);
            w.instances.push(i);
        }
        w
    }

    fn new_instance(&mut self) -> Instance {
        let n = self.c.launches;
        self.c.launches += 1;
        let boot = self.p.boot_latency(self.seed, n);
        Instance {
            n,
            id: InstanceId(format!("i-{:017x}", 0x5_1000 + n)),
            launched_at: self.now,
            started_at: self.now,
            stopped_since: None,
            stopped_s: 0,
            in_service_at: self.now + self.p.in_service_after_s.min(boot),
            ready_at: self.now + boot,
            life: Life::Pending,
            protected: self.setup.new_instances_protected,
            jibri: Jibri::Booting,
            shutdown_requested: false,
            drain_tag: None,
            joined_at: None,
            ended_at: None,
        }
    }

    // ---- time ------------------------------------------------------------------------

    /// Moves every instance and recorder to second `now`.
    pub fn advance(&mut self, now: u64, jobs: &[Job]) {
        self.now = now;
        let p = self.p.clone();
        let mut to_kill = Vec::new();
        let mut to_retain = Vec::new();
        for k in 0..self.instances.len() {
            let i = &mut self.instances[k];
            if i.life == Life::Pending && now >= i.in_service_at {
                if self.setup.launch_hook {
                    i.life = Life::PendingWait {
                        since: now,
                        last_heartbeat: now,
                    };
                    self.events.push(LifecycleEvent {
                        due: now + p.guard_delay_s,
                        instance: i.id.clone(),
                        terminating: false,
                        started: now,
                        warm_entry: false,
                    });
                } else {
                    i.life = Life::InService;
                }
            }
            match i.life {
                Life::WarmPending { until } if now >= until => {
                    if self.setup.launch_hook {
                        i.life = Life::WarmPendingWait {
                            since: now,
                            last_heartbeat: now,
                        };
                        self.events.push(LifecycleEvent {
                            due: now + p.guard_delay_s,
                            instance: i.id.clone(),
                            terminating: false,
                            started: now,
                            warm_entry: true,
                        });
                    } else {
                        i.life = Life::WarmStopped;
                        i.stopped_since = Some(now);
                    }
                }
                // Launch hook timed out: DefaultResult CONTINUE (stopped).
                Life::WarmPendingWait {
                    since,
                    last_heartbeat,
                } if now - last_heartbeat >= p.launch_heartbeat_timeout_s
                    || now - since >= p.hook_global_timeout_s =>
                {
                    i.life = Life::WarmStopped;
                    i.stopped_since = Some(now);
                }
                _ => {}
            }
            match i.jibri {
                Jibri::Booting if now >= i.ready_at => {
                    i.jibri = Jibri::Idle;
                    i.joined_at = Some(now);
                }
                Jibri::Recording { job, until } if now >= until => {
                    let j = &jobs[job];
                    i.jibri = Jibri::Finalizing {
                        job,
                        until: now + j.finalize_s,
                        unhealthy_after: j.leaves_unhealthy,
                    };
                }
                Jibri::Finalizing {
                    until,
                    unhealthy_after,
                    ..
                } if now >= until => {
                    i.jibri = if i.shutdown_requested {
                        Jibri::Exited
                    } else if unhealthy_after {
                        Jibri::Unhealthy
                    } else {
                        Jibri::Idle
                    };
                }
                _ => {}
            }
            match i.life {
                // Launch hook timed out: DefaultResult CONTINUE.
                Life::PendingWait {
                    since,
                    last_heartbeat,
                } if now - last_heartbeat >= p.launch_heartbeat_timeout_s
                    || now - since >= p.hook_global_timeout_s =>
                {
                    i.life = Life::InService;
                }
                // Terminate hook timed out: DefaultResult ABANDON.
                Life::TerminatingWait {
                    since,
                    last_heartbeat,
                } if now - last_heartbeat >= p.terminate_heartbeat_timeout_s
                    || now - since >= p.hook_global_timeout_s =>
                {
                    self.c.hooks_abandoned += 1;
                    if self.setup.retain_on_abandon {
                        to_retain.push(k);
                    } else {
                        to_kill.push(k);
                    }
                }
                _ => {}
            }
        }
        for k in to_retain {
            self.instances[k].life = Life::Retained;
        }
        for k in to_kill.into_iter().rev() {
            self.kill(k);
        }
    }

    /// Jicofo: a request takes an available recorder at once or is refused (no queue).
    /// It picks the recorder that joined the brewery first.
    pub fn request(&mut self, job: usize, j: &Job) {
        self.c.requests += 1;
        let pick = self
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.available())
            .min_by_key(|(_, i)| (i.joined_at, i.n))
            .map(|(k, _)| k);
        match pick {
            Some(k) => {
                self.instances[k].jibri = Jibri::Recording {
                    job,
                    until: self.now + j.duration_s,
                };
                self.c.served += 1;
            }
            None => {
                self.c.refused += 1;
                self.jicofo_failures_total += 1;
                self.open_refusals.push(self.now);
            }
        }
    }

    /// The Auto Scaling group's own work: launch up to desired, scale in unprotected
    /// instances down to desired (default termination policy: closest to the next billing
    /// hour, then at random).
    pub fn asg_step(&mut self) {
        if self.now % self.p.asg_period_s != 0 {
            return;
        }
        let in_cap = self.in_capacity();
        if in_cap < self.desired {
            for _ in in_cap..self.desired {
                // A stopped warm-pool instance first (the oldest), else a cold launch.
                if let Some(k) = (0..self.instances.len())
                    .filter(|&k| self.instances[k].life == Life::WarmStopped)
                    .min_by_key(|&k| self.instances[k].n)
                {
                    self.warm_start(k);
                } else {
                    let i = self.new_instance();
                    self.instances.push(i);
                }
            }
        } else if in_cap > self.desired {
            let mut excess = in_cap - self.desired;
            while excess > 0 {
                let now = self.now;
                let candidates: Vec<usize> = (0..self.instances.len())
                    .filter(|&k| {
                        self.instances[k].life.in_capacity() && !self.instances[k].protected
                    })
                    .collect();
                let Some(best) = candidates
                    .iter()
                    .map(|&k| (now - self.instances[k].launched_at) % 3600)
                    .max()
                else {
                    break;
                };
                let tied: Vec<usize> = candidates
                    .into_iter()
                    .filter(|&k| (now - self.instances[k].launched_at) % 3600 == best)
                    .collect();
                let k = tied[self.victim_rng.below(tied.len() as u64) as usize];
                self.begin_termination(k);
                excess -= 1;
            }
        }
        self.reconcile_warm_pool();
    }

    /// Keeps the warm pool at its size: launches into it, or terminates stopped ones.
    fn reconcile_warm_pool(&mut self) {
        if !self.setup.warm_pool {
            return;
        }
        let warm = self.warm_count();
        if warm < self.warm_size {
            for _ in warm..self.warm_size {
                let mut i = self.new_instance();
                i.life = Life::WarmPending { until: i.ready_at };
                // The recorder image starts Jibri only in service: never in the pool.
                i.ready_at = u64::MAX;
                i.in_service_at = u64::MAX;
                self.instances.push(i);
            }
        } else if warm > self.warm_size {
            for _ in self.warm_size..warm {
                let Some(k) = (0..self.instances.len())
                    .filter(|&k| self.instances[k].life == Life::WarmStopped)
                    .max_by_key(|&k| self.instances[k].n)
                else {
                    break;
                };
                // The guard's rule for `Warmed:Terminating:Wait` CONTINUEs a stopped
                // instance at once (nothing runs on it): modeled as immediate.
                self.kill(k);
            }
        }
    }

    /// `Warmed:Stopped` -> `Pending`: the instance starts; its Jibri is up a warm boot later.
    fn warm_start(&mut self, k: usize) {
        let now = self.now;
        let boot = self.p.warm_boot_latency(self.seed, self.c.warm_starts);
        self.c.warm_starts += 1;
        let protected = self.setup.new_instances_protected;
        let in_service_after = self.p.in_service_after_s;
        let i = &mut self.instances[k];
        if let Some(t) = i.stopped_since.take() {
            i.stopped_s += now - t;
        }
        i.started_at = now;
        i.life = Life::Pending;
        i.in_service_at = now + (in_service_after / 2).min(boot);
        i.ready_at = now + boot;
        i.jibri = Jibri::Booting;
        i.shutdown_requested = false;
        i.joined_at = None;
        i.protected = protected;
    }

    pub fn warm_count(&self) -> u32 {
        self.instances.iter().filter(|i| i.life.is_warm()).count() as u32
    }

    /// `PutWarmPool` with `MinSize` = `MaxGroupPreparedCapacity` = `size`.
    pub fn put_warm_pool(&mut self, size: u32) {
        self.warm_size = size;
    }

    /// End of a second: refusal recovery timers, invariants, and the per-minute sample.
    pub fn end_second(&mut self) {
        let available = self.available();
        if available > 0 && !self.open_refusals.is_empty() {
            let now = self.now;
            self.c
                .refusal_recovery_s
                .extend(self.open_refusals.drain(..).map(|t| now - t));
        }
        let in_cap = self.in_capacity();
        self.c.alive_s += self.instances.len() as u64;
        self.c.busy_s += self.instances.iter().filter(|i| i.jibri.is_busy()).count() as u64;
        if self.desired < self.setup.min || self.desired > self.setup.max {
            self.c.violations.push(format!(
                "t={}: desired {} outside [{}, {}]",
                self.now, self.desired, self.setup.min, self.setup.max
            ));
        }
        if in_cap > self.setup.max {
            self.c.violations.push(format!(
                "t={}: {} instances in capacity above max {}",
                self.now, in_cap, self.setup.max
            ));
        }
        if self.now % 60 == 0 {
            self.samples.push(Sample {
                t: self.now,
                busy: self.instances.iter().filter(|i| i.jibri.is_busy()).count() as u32,
                available,
                billed: self.instances.len() as u32,
                in_capacity: in_cap,
                desired: self.desired,
                warm: self.warm_count(),
            });
        }
    }

    /// Closes the run at the horizon: what still runs is billed until then (and enters the
    /// ledger so); refusals never recovered count until then.
    pub fn finish(&mut self, horizon: u64) {
        let now = horizon.max(self.now);
        self.c
            .refusal_recovery_s
            .extend(self.open_refusals.drain(..).map(|t| now - t));
        for i in &self.instances {
            self.ledger.push((i.launched_at, now));
        }
    }

    /// Instance-seconds billed so far (running instances up to `until`).
    pub fn billed_s(&self, until: u64) -> u64 {
        self.billed_done_s
            + self
                .instances
                .iter()
                .map(|i| self.billed_of(i, until))
                .sum::<u64>()
    }

    /// One instance's billed seconds until `until`: running time in full (60 s minimum),
    /// stopped time at the storage share.
    fn billed_of(&self, i: &Instance, until: u64) -> u64 {
        let stopped = i.stopped_s + i.stopped_since.map_or(0, |t| until.saturating_sub(t));
        let running = until
            .saturating_sub(i.launched_at)
            .saturating_sub(stopped)
            .max(self.p.min_billed_s);
        running + (stopped as f64 * self.p.stopped_cost_share).round() as u64
    }

    pub fn in_capacity(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| i.life.in_capacity())
            .count() as u32
    }

    pub fn available(&self) -> u32 {
        self.instances.iter().filter(|i| i.available()).count() as u32
    }

    /// Jibris in Jicofo's brewery (`jibri_detector.count`): every Jibri process that runs.
    pub fn brewery_count(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| !matches!(i.jibri, Jibri::Booting | Jibri::Exited))
            .count() as u32
    }

    /// Lifecycle events due now (for the termination guard).
    pub fn take_due_events(&mut self) -> Vec<LifecycleEvent> {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|e| e.due <= now);
        self.events = later;
        due
    }

    pub fn find(&self, id: &InstanceId) -> Option<&Instance> {
        self.instances.iter().find(|i| &i.id == id)
    }

    fn index(&self, id: &InstanceId) -> Result<usize, WorldError> {
        self.instances
            .iter()
            .position(|i| &i.id == id)
            .ok_or_else(|| WorldError::NoInstance(id.clone()))
    }

    fn begin_termination(&mut self, k: usize) {
        if self.setup.terminate_hook {
            let now = self.now;
            let i = &mut self.instances[k];
            i.life = Life::TerminatingWait {
                since: now,
                last_heartbeat: now,
            };
            self.events.push(LifecycleEvent {
                due: now + self.p.guard_delay_s,
                instance: i.id.clone(),
                terminating: true,
                started: now,
                warm_entry: false,
            });
        } else {
            self.kill(k);
        }
    }

    /// `Terminating:Proceed`: the instance shuts down now; billing stops.
    fn kill(&mut self, k: usize) {
        let mut i = self.instances.remove(k);
        if i.jibri.is_busy() {
            self.c.kill_log.push(BusyKill {
                t: self.now,
                instance: i.id.0.clone(),
                lifecycle: i.life.state().as_str().to_string(),
                recording: matches!(i.jibri, Jibri::Recording { .. }),
                protected: i.protected,
            });
        }
        match i.jibri {
            Jibri::Recording { .. } => {
                self.c.busy_killed += 1;
                self.c.recordings_cut += 1;
            }
            Jibri::Finalizing { .. } => self.c.busy_killed += 1,
            _ => {}
        }
        self.billed_done_s += self.billed_of(&i, self.now);
        i.life = Life::Terminated;
        i.ended_at = Some(self.now);
        self.ledger.push((i.launched_at, self.now));
    }

    // ---- the ports, as the policies call them ---------------------------------------------

    /// `SetDesiredCapacity`.
    pub fn set_desired(&mut self, d: u32) -> Result<(), WorldError> {
        if d < self.setup.min || d > self.setup.max {
            return Err(WorldError::OutOfRange {
                desired: d,
                min: self.setup.min,
                max: self.setup.max,
            });
        }
        if d != self.desired {
            self.desired = d;
            self.c.desired_changes += 1;
        }
        Ok(())
    }

    /// `SetInstanceProtection`.
    pub fn set_protection(&mut self, ids: &[InstanceId], protected: bool) {
        for i in self.instances.iter_mut().filter(|i| ids.contains(&i.id)) {
            i.protected = protected;
        }
    }

    /// `TerminateInstanceInAutoScalingGroup`.
    pub fn terminate(&mut self, id: &InstanceId, decrement: bool) -> Result<(), WorldError> {
        let k = self.index(id)?;
        self.c.terminate_calls += 1;
        match self.instances[k].life {
            Life::Terminated | Life::TerminatingWait { .. } => return Ok(()),
            Life::Retained => {
                self.kill(k);
                return Ok(());
            }
            _ => {}
        }
        if decrement {
            if self.desired <= self.setup.min {
                return Err(WorldError::OutOfRange {
                    desired: self.desired.saturating_sub(1),
                    min: self.setup.min,
                    max: self.setup.max,
                });
            }
            self.desired -= 1;
        }
        self.begin_termination(k);
        Ok(())
    }

    /// `CompleteLifecycleAction`.
    pub fn complete(&mut self, id: &InstanceId, result: HookResult) -> Result<(), WorldError> {
        let k = self
            .index(id)
            .map_err(|_| WorldError::NoActiveAction(id.clone()))?;
        match (self.instances[k].life, result) {
            (Life::PendingWait { .. }, HookResult::Continue) => {
                self.instances[k].life = Life::InService
            }
            (Life::PendingWait { .. }, HookResult::Abandon) => self.kill(k),
            (Life::WarmPendingWait { .. }, HookResult::Continue) => {
                let now = self.now;
                let i = &mut self.instances[k];
                i.life = Life::WarmStopped;
                i.stopped_since = Some(now);
            }
            (Life::WarmPendingWait { .. }, HookResult::Abandon) => self.kill(k),
            // Reuse on scale-in: back into the warm pool while it has room.
            (Life::TerminatingWait { .. }, HookResult::Continue)
                if self.setup.warm_pool && self.warm_count() < self.warm_size =>
            {
                let until = self.now + self.p.stop_s;
                let i = &mut self.instances[k];
                if i.jibri.is_busy() {
                    // Stopping a busy recorder cuts its recording, as a termination would.
                    self.c.busy_killed += 1;
                    self.c.recordings_cut += u64::from(matches!(i.jibri, Jibri::Recording { .. }));
                    self.c.kill_log.push(BusyKill {
                        t: self.now,
                        instance: i.id.0.clone(),
                        lifecycle: "Warmed:Pending".into(),
                        recording: matches!(i.jibri, Jibri::Recording { .. }),
                        protected: i.protected,
                    });
                }
                i.life = Life::WarmPending { until };
                i.jibri = Jibri::Booting;
                i.ready_at = u64::MAX;
                i.in_service_at = u64::MAX;
                i.joined_at = None;
            }
            (Life::TerminatingWait { .. }, HookResult::Continue) => self.kill(k),
            (Life::TerminatingWait { .. }, HookResult::Abandon) => {
                self.c.hooks_abandoned += 1;
                if self.setup.retain_on_abandon {
                    self.instances[k].life = Life::Retained;
                } else {
                    self.kill(k);
                }
            }
            _ => return Err(WorldError::NoActiveAction(id.clone())),
        }
        Ok(())
    }

    /// `RecordLifecycleActionHeartbeat`.
    pub fn heartbeat(&mut self, id: &InstanceId) -> Result<(), WorldError> {
        let now = self.now;
        let k = self
            .index(id)
            .map_err(|_| WorldError::NoActiveAction(id.clone()))?;
        match &mut self.instances[k].life {
            Life::PendingWait { last_heartbeat, .. }
            | Life::WarmPendingWait { last_heartbeat, .. }
            | Life::TerminatingWait { last_heartbeat, .. } => {
                *last_heartbeat = now;
                Ok(())
            }
            _ => Err(WorldError::NoActiveAction(id.clone())),
        }
    }

    /// Jibri's `POST /jibri/api/internal/v1.0/gracefulShutdown`: an idle Jibri exits at
    /// once; a busy one finishes its session (and finalize) and then exits.
    pub fn graceful_shutdown(&mut self, id: &InstanceId) -> Result<(), ProbeFailure> {
        let Ok(k) = self.index(id) else {
            return Err(ProbeFailure::Refused);
        };
        let i = &mut self.instances[k];
        match i.jibri {
            Jibri::Booting | Jibri::Exited => Err(ProbeFailure::Refused),
            Jibri::Idle | Jibri::Unhealthy => {
                i.jibri = Jibri::Exited;
                i.shutdown_requested = true;
                Ok(())
            }
            Jibri::Recording { .. } | Jibri::Finalizing { .. } => {
                i.shutdown_requested = true;
                Ok(())
            }
        }
    }

    /// Jibri's `GET /jibri/api/v1.0/health`, as the controller's probe reads it.
    pub fn probe(&self, id: &InstanceId) -> Probe {
        if self.find(id).is_some_and(|i| i.life == Life::WarmStopped) {
            // A stopped instance answers nothing.
            return Probe::Failed(ProbeFailure::Timeout);
        }
        match self.find(id).map(|i| i.jibri) {
            None | Some(Jibri::Booting) | Some(Jibri::Exited) => {
                Probe::Failed(ProbeFailure::Refused)
            }
            Some(Jibri::Idle) => testkit::probe("idle"),
            Some(Jibri::Recording { .. }) | Some(Jibri::Finalizing { .. }) => {
                testkit::probe("busy")
            }
            Some(Jibri::Unhealthy) => testkit::probe("unhealthy"),
        }
    }

    /// `CreateTags(jibri-autoscaler:drain-requested)`.
    pub fn mark_drain_requested(&mut self, id: &InstanceId) {
        let now = self.now;
        // CreateTags overwrites: the tag's value is the time of the latest request.
        if let Some(i) = self.instances.iter_mut().find(|i| &i.id == id) {
            i.drain_tag = Some(now);
        }
    }
}
