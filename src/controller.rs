//! The pool controller's handler: observe → plan → act, once per scheduled tick.
//!
//! Observe reads the group, EC2, every Jicofo shard and every recorder concurrently with
//! bounded parallelism; [`crate::core::plan::plan`] decides; act makes the fewest calls,
//! re-probing a recorder right before anything irreversible. Steady state makes no
//! mutating call at all.

use crate::config::Config;
use crate::config::PoolKind;
use crate::core::act::{execute, ActInput, Effects};
pub use crate::core::act::{release_after_recheck, Recheck};
use crate::core::plan::{plan, Plan};
use crate::core::state::{Lease, PoolState, Versioned};
use crate::domain::*;
use crate::jitsi::JicofoStats;
use crate::metrics::{bridge_metrics, pool_metrics, safety_metrics};
use crate::ports::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What a tick did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    DryRun,
    /// Nothing to change; nothing written.
    Steady,
    /// Only the durable state changed (e.g. an idle-since mark); no AWS mutation.
    StateOnly,
    Acted,
    /// Another invocation holds the lease or wrote first: this one did not act.
    LeaseHeld {
        holder: String,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TickReport {
    pub outcome: Outcome,
    pub plan: Plan,
    /// Every mutating call made, in order, e.g. `SetDesiredCapacity(5)`.
    pub calls: Vec<String>,
    /// Calls that failed (the tick goes on; the next tick reconciles).
    pub errors: Vec<String>,
    /// Drain requests that failed (not a connect-time refusal): `DrainFailed`.
    pub drain_failed: Vec<InstanceId>,
    /// Heartbeats AWS accepted this tick: only these are recorded in the state.
    pub heartbeats_sent: Vec<InstanceId>,
    /// Termination-protection changes that failed (retried next tick).
    pub api_protection_failed: Vec<InstanceId>,
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("observing the group: {0}")]
    Group(PortError),
    #[error("loading the controller state: {0}")]
    StateLoad(PortError),
}

/// The controller with its ports.
pub struct Controller<A, E, R, J, S, M> {
    pub cfg: Config,
    pub asg: A,
    pub ec2: E,
    pub recorders: Arc<R>,
    pub jicofo: Arc<J>,
    pub state: S,
    pub metrics: M,
    /// Names this invocation in the lease (the Lambda request id).
    pub holder: String,
}

impl<A, E, R, J, S, M> Controller<A, E, R, J, S, M>
where
    A: AutoScaling,
    E: Ec2,
    R: Recorders + 'static,
    J: Jicofo + 'static,
    S: StateStore,
    M: MetricsSink,
{
    /// Observes the pool: group, EC2 details, Jicofo shards and recorder probes.
    pub async fn observe(&self) -> Result<(Observation, GroupSnapshot, Vec<String>), TickError> {
        // The group, its members in EC2 (by the group tag, so no instance list is needed
        // first) and Jicofo are read concurrently.
        let name = self.cfg.pool_group();
        let (group, members, jicofo) = tokio::join!(
            self.asg.describe_group(name),
            self.ec2.describe_group_members(name),
            self.read_jicofo()
        );
        let group = group.map_err(TickError::Group)?;
        let mut problems = Vec::new();
        // The warm pool is read when the group has one, or when we manage it (to create it).
        let warm = if group.warm_pool || self.cfg.warm_pool_managed {
            match self.asg.describe_warm_pool(name).await {
                Ok(w) => w.map(Ok),
                Err(e) => {
                    tracing::warn!(error = %e, "DescribeWarmPool failed: warm pool left alone this tick");
                    problems.push(e.to_string());
                    Some(Err(()))
                }
            }
        } else {
            None
        };
        let ec2 = match members {
            // An instance the group lists but the tag filter missed (tags propagate after
            // launch) is described by id.
            Ok(mut found) => {
                let warm_ids = warm
                    .iter()
                    .flatten()
                    .flat_map(|w| w.instances.iter().map(|i| i.id.clone()));
                let missing: Vec<InstanceId> = group
                    .instances
                    .iter()
                    .map(|i| i.id.clone())
                    .chain(warm_ids)
                    .filter(|id| !found.iter().any(|e| &e.id == id))
                    .collect();
                if missing.is_empty() {
                    Ok(found)
                } else {
                    self.ec2.describe(&missing).await.map(|more| {
                        found.extend(more);
                        found
                    })
                }
            }
            Err(e) => Err(e),
        };
        let ec2: BTreeMap<InstanceId, Ec2Instance> = match ec2 {
            Ok(v) => v.into_iter().map(|i| (i.id.clone(), i)).collect(),
            Err(e) => {
                // Without addresses every recorder is unknown (= busy): scale-out only.
                tracing::error!(error = %e, "EC2 describe failed; every recorder counts as unknown this tick");
                problems.push(e.to_string());
                BTreeMap::new()
            }
        };
        let mut instances: Vec<InstanceObservation> = group
            .instances
            .iter()
            .map(|gi| {
                let lifecycle = gi.lifecycle_state.clone();
                Ec2Instance::observe(
                    ec2.get(&gi.id),
                    gi.id.clone(),
                    lifecycle,
                    gi.protected_from_scale_in,
                    Probe::NotProbed,
                )
            })
            .collect();
        let mut warm_pool = match &warm {
            Some(Ok(w)) => Some(WarmPoolObservation {
                min_size: w.min_size,
                max_prepared: w.max_prepared,
                pool_state: w.pool_state.clone(),
                reuse_on_scale_in: w.reuse_on_scale_in,
                status: w.status.clone(),
                instances: w
                    .instances
                    .iter()
                    .map(|gi| {
                        Ec2Instance::observe(
                            ec2.get(&gi.id),
                            gi.id.clone(),
                            gi.lifecycle_state.clone(),
                            false,
                            Probe::NotProbed,
                        )
                    })
                    .collect(),
            }),
            // Unreadable: reported as "being deleted" so that nothing resizes it this tick.
            Some(Err(())) => Some(WarmPoolObservation {
                status: "Unknown".into(),
                ..WarmPoolObservation::default()
            }),
            None => None,
        };
        let warm_hooks = warm_pool
            .iter()
            .flat_map(|w| w.instances.iter())
            .filter(|i| {
                matches!(
                    i.lifecycle,
                    LifecycleState::WarmedPendingWait | LifecycleState::WarmedTerminatingWait
                ) || i.lifecycle.is_retained()
            });
        let to_probe: Vec<RecorderAddress> = instances
            .iter()
            .filter(|i| {
                matches!(
                    i.lifecycle,
                    LifecycleState::InService
                        | LifecycleState::PendingWait
                        | LifecycleState::TerminatingWait
                        | LifecycleState::TerminatingRetained
                )
            })
            .chain(warm_hooks)
            .filter(|i| ec2.contains_key(&i.id))
            .map(RecorderAddress::of)
            .collect();
        let probes = probe_all(&self.recorders, to_probe, self.cfg.probe_concurrency).await;
        for i in instances
            .iter_mut()
            .chain(warm_pool.iter_mut().flat_map(|w| w.instances.iter_mut()))
        {
            if let Some(p) = probes.get(&i.id) {
                i.probe = p.clone();
            }
        }
        let config_drift = crate::safety::check_group(&group, &self.cfg);
        for d in &config_drift {
            tracing::error!(group = %group.name, drift = ?d, "configuration drift: no scale-in and no replacement until fixed: {d}");
        }
        let snapshot_group = GroupObservation {
            name: group.name.clone(),
            min: group.min,
            max: group.max,
            desired: group.desired,
            new_instances_protected: group.new_instances_protected,
            retain_on_abandon: group.retain_on_abandon,
        };
        Ok((
            Observation {
                group: snapshot_group,
                instances,
                jicofo,
                warm_pool,
                config_drift,
            },
            group,
            problems,
        ))
    }

    async fn read_jicofo(&self) -> JicofoObservation {
        let mut set = JoinSet::new();
        for url in self.cfg.jicofo_stats_urls.clone() {
            let j = Arc::clone(&self.jicofo);
            set.spawn(async move {
                let r = j.stats(&url).await;
                (url, r)
            });
        }
        let mut obs = JicofoObservation {
            shards_configured: self.cfg.jicofo_stats_urls.len(),
            ..Default::default()
        };
        let mut sum = JicofoStats::default();
        while let Some(joined) = set.join_next().await {
            match joined {
                // Counters from another service: summed saturating (`add_shard`).
                Ok((_, Ok(s))) => sum.add_shard(&s),
                Ok((url, Err(e))) => {
                    tracing::warn!(url = %url, error = %e, "Jicofo stats unavailable: no scale-in this tick");
                    obs.shards_failed += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Jicofo stats task failed");
                    obs.shards_failed += 1;
                }
            }
        }
        obs.stats = sum;
        obs
    }

    /// One tick at `now`.
    pub async fn tick(&self, now: EpochSecs) -> Result<TickReport, TickError> {
        let group_name = self.cfg.pool_group().to_string();
        // The state is read before observing, so any tick that wrote since makes our
        // conditional write fail: we never act on a plan older than another's action.
        let Versioned { state: prev, etag } = self
            .state
            .load(&group_name)
            .await
            .map_err(TickError::StateLoad)?;
        let (obs, snapshot, problems) = self.observe().await?;
        let (plan, next) = plan(&obs, &prev, &self.cfg, now);
        for w in &plan.warnings {
            tracing::error!("{w}");
        }
        let mut report = TickReport {
            outcome: Outcome::Steady,
            plan,
            calls: Vec::new(),
            errors: problems,
            drain_failed: Vec::new(),
            heartbeats_sent: Vec::new(),
            api_protection_failed: Vec::new(),
        };
        self.decide_and_act(&mut report, &obs, &snapshot, &prev, next, etag, now)
            .await;
        // One line a tick, with structured fields (JSON logs): the runbook's saved queries
        // read them (`msg_kind = "plan"`).
        let (p, c) = (&report.plan, &report.plan.counts);
        tracing::info!(
            target: "plan",
            msg_kind = "plan",
            outcome = ?report.outcome,
            desired_before = p.desired_before,
            desired = p.desired.unwrap_or(p.desired_before),
            spare_target = p.spare.target,
            busy = c.busy,
            idle = c.idle,
            unknown = c.unknown,
            broken = c.broken,
            held = c.held_hooks,
            retained = c.retained,
            victims = p.victims.len(),
            replace = p.replace.len(),
            drain_failed = report.drain_failed.len(),
            config_drift = obs.config_drift.len(),
            leaving = c.leaving,
            retained_unanswering = %p
                .retained_unanswering
                .iter()
                .map(|i| i.0.as_str())
                .collect::<Vec<_>>()
                .join(","),
            "{}",
            p.summary()
        );
        if !p.retained_unanswering.is_empty() {
            tracing::warn!(instances = ?p.retained_unanswering, "retained instances whose Jibri answers nothing: nobody can tell whether a recording is on them (README: Runbook, retained-unanswering)");
        }
        let mut metrics = pool_metrics(&report.plan);
        if self.cfg.pool_kind == PoolKind::Jvb {
            metrics.extend(bridge_metrics(&report.plan.counts, &obs.jicofo));
        }
        metrics.extend(safety_metrics(
            obs.config_drift.len(),
            report.drain_failed.len(),
        ));
        if let Err(e) = self.metrics.emit(&group_name, &metrics, now).await {
            tracing::warn!(error = %e, "emitting metrics failed");
            report.errors.push(e.to_string());
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn decide_and_act(
        &self,
        report: &mut TickReport,
        obs: &Observation,
        snapshot: &GroupSnapshot,
        prev: &PoolState,
        next: PoolState,
        etag: Option<String>,
        now: EpochSecs,
    ) {
        let group_name = snapshot.name.clone();
        if self.cfg.dry_run {
            report.outcome = Outcome::DryRun;
            return;
        }
        let budget_s = self.cfg.tick_budget.as_secs().max(1);
        if let Some(lease) = prev.lease.as_ref().filter(|l| l.holder != self.holder) {
            // A lease ends within one budget of being taken; one that ends later was written
            // by a clock in the future or is corrupt: taken over, loudly.
            if lease.until > now.saturating_add(budget_s) {
                tracing::warn!(holder = %lease.holder, until = lease.until, now, "the lease ends further ahead than one tick budget: corrupt or from a skewed clock; taken over");
            } else if lease.until > now {
                tracing::warn!(holder = %lease.holder, until = lease.until, "another tick holds the lease; not acting");
                report.outcome = Outcome::LeaseHeld {
                    holder: lease.holder.clone(),
                };
                return;
            }
        }
        // Changed = what would be written differs (fields the core recomputes every tick
        // and does not store do not count).
        let stored = |s: &PoolState| serde_json::to_value(s).ok();
        let state_changed = stored(&next)
            != stored(&PoolState {
                lease: None,
                ..prev.clone()
            });
        if report.plan.is_noop() {
            if state_changed {
                match self.state.save(&group_name, &next, etag.as_deref()).await {
                    Ok(_) => report.outcome = Outcome::StateOnly,
                    Err(PortError::Conflict { .. }) => {
                        report.outcome = Outcome::LeaseHeld {
                            holder: "a concurrent tick".into(),
                        }
                    }
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            return;
        }
        // Take the lease with the new state in one conditional write. Heartbeats are not
        // in it yet: they are recorded once AWS accepted them.
        let leased = PoolState {
            lease: Some(Lease {
                holder: self.holder.clone(),
                until: now.saturating_add(budget_s),
            }),
            ..with_heartbeats_confirmed(&next, prev, &[])
        };
        let etag = match self.state.save(&group_name, &leased, etag.as_deref()).await {
            Ok(t) => t,
            Err(PortError::Conflict { .. }) => {
                tracing::warn!(
                    "the state changed since it was read: another tick is acting; not acting"
                );
                report.outcome = Outcome::LeaseHeld {
                    holder: "a concurrent tick".into(),
                };
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the state: not acting without the lease");
                report.errors.push(e.to_string());
                return;
            }
        };
        self.act(report, obs, snapshot, now).await;
        report.outcome = Outcome::Acted;
        // Release the lease; if this fails it expires by itself at `until`.
        let mut done = with_heartbeats_confirmed(&next, prev, &report.heartbeats_sent);
        for id in &report.api_protection_failed {
            // Not changed on EC2: the state keeps what it was, so the next tick tries again.
            if prev.api_protected.contains(id) {
                done.api_protected.insert(id.clone());
            } else {
                done.api_protected.remove(id);
            }
        }
        if let Err(e) = self.state.save(&group_name, &done, Some(&etag)).await {
            tracing::warn!(error = %e, "releasing the lease failed; it expires by itself");
        }
    }

    async fn act(
        &self,
        report: &mut TickReport,
        obs: &Observation,
        snapshot: &GroupSnapshot,
        now: EpochSecs,
    ) {
        let hooks: Vec<&str> = snapshot.hooks.iter().map(|h| h.name.as_str()).collect();
        let input = ActInput::new(
            snapshot.name.clone(),
            &report.plan,
            obs,
            &hooks,
            &self.cfg,
            now,
        );
        let effects = AwsEffects {
            asg: &self.asg,
            ec2: &self.ec2,
            recorders: &*self.recorders,
        };
        let done = execute(&effects, input).await;
        for n in &done.notes {
            tracing::info!(group = %snapshot.name, "{n}");
        }
        for e in &done.errors {
            tracing::error!(group = %snapshot.name, "{e}");
        }
        report.calls = done.calls;
        report.errors.extend(done.errors);
        report.drain_failed.extend(done.drain_failed);
        report.heartbeats_sent.extend(done.heartbeats_sent);
        report
            .api_protection_failed
            .extend(done.api_protection_failed);
    }
}

/// The act phase's effects on AWS and the recorders: the ports, by delegation.
pub struct AwsEffects<'a, A, E, R: ?Sized> {
    pub asg: &'a A,
    pub ec2: &'a E,
    pub recorders: &'a R,
}

impl<A: AutoScaling, E: Ec2, R: Recorders + ?Sized> Effects for AwsEffects<'_, A, E, R> {
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        self.recorders.probe(r).await
    }
    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        self.recorders.graceful_shutdown(r).await
    }
    async fn undrain(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        self.recorders.undrain(r).await
    }
    async fn clear_drain_requested(&self, ids: &[InstanceId]) -> PortResult<()> {
        self.ec2.clear_drain_requested(ids).await
    }
    async fn mark_drain_requested(&self, ids: &[InstanceId], at: EpochSecs) -> PortResult<()> {
        self.ec2.mark_drain_requested(ids, at).await
    }
    async fn set_termination_protection(&self, id: &InstanceId, on: bool) -> PortResult<()> {
        self.ec2.set_termination_protection(id, on).await
    }
    async fn set_protection(&self, group: &str, ids: &[InstanceId], on: bool) -> PortResult<()> {
        self.asg.set_protection(group, ids, on).await
    }
    async fn set_desired(&self, group: &str, desired: u32) -> PortResult<()> {
        self.asg.set_desired(group, desired).await
    }
    async fn complete(&self, action: &ActionRef, result: LifecycleResult) -> PortResult<()> {
        self.asg.complete(action, result).await
    }
    async fn heartbeat(&self, action: &ActionRef) -> PortResult<()> {
        self.asg.heartbeat(action).await
    }
    async fn terminate(&self, id: &InstanceId, decrement: bool) -> PortResult<()> {
        self.asg.terminate(id, decrement).await
    }
    async fn put_warm_pool(&self, group: &str, size: u32) -> PortResult<()> {
        self.asg.put_warm_pool(group, size).await
    }
}

/// Probes recorders concurrently, at most `limit` at once; one slow recorder costs one timeout.
pub async fn probe_all<R: Recorders + 'static>(
    r: &Arc<R>,
    targets: Vec<RecorderAddress>,
    limit: usize,
) -> BTreeMap<InstanceId, Probe> {
    let sem = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    for t in targets {
        let r = Arc::clone(r);
        let sem = Arc::clone(&sem);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let p = r.probe(&t).await;
            (t.id, p)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(j) = set.join_next().await {
        if let Ok((id, p)) = j {
            out.insert(id, p);
        }
    }
    out
}

/// The next state with only the heartbeats AWS accepted recorded: a held hook whose
/// heartbeat was not sent (or failed) keeps its previous `last_heartbeat`, so the next
/// tick sends it again instead of believing in one that never happened.
fn with_heartbeats_confirmed(
    next: &PoolState,
    prev: &PoolState,
    accepted: &[InstanceId],
) -> PoolState {
    let mut out = next.clone();
    for (id, held) in out.held.iter_mut() {
        if !accepted.contains(id) {
            held.last_heartbeat = prev.held.get(id).and_then(|p| p.last_heartbeat);
        }
    }
    out
}
