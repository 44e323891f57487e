//! The pool controller's handler: observe → plan → act, once per scheduled tick.
//!
//! Observe reads the group, EC2, every Jicofo shard and every recorder concurrently with
//! bounded parallelism; [`crate::core::plan::plan`] decides; act makes the fewest calls,
//! re-probing a recorder right before anything irreversible. Steady state makes no
//! mutating call at all.

use crate::config::Config;
use crate::core::plan::{plan, warm_verdict, HookAction, HookTransition, HookVerdict, Plan};
use crate::core::state::{Lease, PoolState, Versioned};
use crate::domain::*;
use crate::jitsi::JicofoStats;
use crate::metrics::{pool_metrics, safety_metrics};
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
                let lifecycle = LifecycleState::parse(&gi.lifecycle_state);
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
                            LifecycleState::parse(&gi.lifecycle_state),
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
                ) || i.lifecycle.as_str().ends_with(":Retained")
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
            .map(|i| RecorderAddress {
                id: i.id.clone(),
                private_ip: i.private_ip.clone(),
            })
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
                Ok((_, Ok(s))) => {
                    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
                        (None, None) => None,
                        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
                    };
                    // Counters from another service: summed saturating, never overflowing.
                    sum.jibri_count = add(sum.jibri_count, s.jibri_count);
                    sum.jibri_available = add(sum.jibri_available, s.jibri_available);
                    sum.conferences = sum.conferences.saturating_add(s.conferences);
                    sum.participants = sum.participants.saturating_add(s.participants);
                    sum.recording_active = sum.recording_active.saturating_add(s.recording_active);
                    sum.live_streaming_active = sum
                        .live_streaming_active
                        .saturating_add(s.live_streaming_active);
                    sum.jibri_failures_total = sum
                        .jibri_failures_total
                        .saturating_add(s.jibri_failures_total);
                }
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
        let state_changed = next
            != PoolState {
                lease: None,
                ..prev.clone()
            };
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
        let mut a = Acting::new(report.plan.clone(), obs, snapshot, now);
        self.heartbeats_first(&mut a).await;
        self.termination_protection(&mut a).await;
        let protection_ok = self.scale_in_protection(&mut a).await;
        self.hook_actions(&mut a).await;
        self.drains(&mut a).await;
        self.replacements(&mut a).await;
        self.retained(&mut a).await;
        self.warm_pool(&mut a).await;
        self.capacity(&mut a, protection_ok).await;
        for e in &a.errors {
            tracing::error!(group = %a.group, "{e}");
        }
        report.calls = a.calls;
        report.errors.extend(a.errors);
        report.drain_failed.extend(a.drain_failed);
        report.heartbeats_sent.extend(a.heartbeats_sent);
        report.api_protection_failed.extend(a.api_protection_failed);
    }

    /// Heartbeats first: a slow or failing act phase must not let a held hook time out, and
    /// the state records only heartbeats AWS accepted.
    async fn heartbeats_first(&self, a: &mut Acting<'_>) {
        // 0. Heartbeats first: a slow or failing act phase must not let a held hook time
        // out, and the state records only heartbeats AWS accepted.
        let hooks = a.plan.hooks.clone();
        for h in &hooks {
            if h.verdict != HookVerdict::Heartbeat || h.transition == HookTransition::WarmPoolEntry
            {
                continue;
            }
            let Some(action) = a.action_ref(&self.cfg, h) else {
                continue;
            };
            a.calls
                .push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
            match self.asg.heartbeat(&action).await {
                Ok(()) => a.heartbeats_sent.push(h.instance.clone()),
                Err(PortError::NoActiveAction { .. }) => {
                    tracing::info!(instance = %h.instance, "lifecycle action already completed")
                }
                Err(e) => a.errors.push(e.to_string()),
            }
        }
    }

    /// EC2 termination protection of what records or uploads (a direct TerminateInstances
    /// skips every hook), cleared once idle.
    async fn termination_protection(&self, a: &mut Acting<'_>) {
        // 0b. EC2 termination protection of what records or uploads (direct
        // TerminateInstances skips every hook), cleared once idle.
        for (ids, on) in [(&a.plan.api_protect, true), (&a.plan.api_unprotect, false)] {
            for id in ids {
                a.calls.push(format!(
                    "ModifyInstanceAttribute(DisableApiTermination={on}, {id})"
                ));
                match self.ec2.set_termination_protection(id, on).await {
                    Ok(()) => {}
                    // e.g. a Spot instance (it cannot be protected): not retried every tick.
                    Err(e @ PortError::Invalid { .. }) => {
                        tracing::warn!(instance = %id, error = %e, "termination protection refused; not retried")
                    }
                    Err(e) => {
                        a.errors.push(e.to_string());
                        a.api_protection_failed.push(id.clone());
                    }
                }
            }
        }
    }

    /// Scale-in protection, batched. Returns false when it failed: no scale-in this tick.
    async fn scale_in_protection(&self, a: &mut Acting<'_>) -> bool {
        // 1. Protection, batched. A failure forbids this tick's scale-in.
        let mut protection_ok = true;
        if !a.plan.protect.is_empty() {
            a.calls.push(format!(
                "SetInstanceProtection(true, {})",
                join(&a.plan.protect)
            ));
            if let Err(e) = self
                .asg
                .set_protection(&a.group, &a.plan.protect, true)
                .await
            {
                protection_ok = false;
                a.errors.push(e.to_string());
            }
        }
        protection_ok
    }

    /// The plan's lifecycle actions (heartbeats were sent first).
    async fn hook_actions(&self, a: &mut Acting<'_>) {
        // 2. Lifecycle actions.
        let hooks = a.plan.hooks.clone();
        for h in &hooks {
            if h.transition == HookTransition::WarmPoolEntry && h.verdict != HookVerdict::Wait {
                // `Warmed:Pending:Wait` is a launch-hook action for an instance launched into
                // the pool, and a terminate-hook action for one scaled in back into it. The
                // plan tells them apart by what it saw; when it could not (state lost, never
                // seen in service), the action is on the other hook: both are tried.
                let Some(i) = a.by_id.get(&h.instance) else {
                    continue;
                };
                self.warm_entry_action(h, a.snapshot, i, &mut a.calls, &mut a.errors)
                    .await;
                continue;
            }
            if h.verdict == HookVerdict::Heartbeat {
                continue; // sent first, above
            }
            let Some(action) = a.action_ref(&self.cfg, h) else {
                continue;
            };
            let result = match (h.verdict, h.transition) {
                (HookVerdict::Wait, _) => continue,
                (HookVerdict::Continue, HookTransition::Launching) => {
                    a.calls
                        .push(format!("CompleteLifecycleAction(CONTINUE, {})", h.instance));
                    self.asg.complete(&action, LifecycleResult::Continue).await
                }
                (
                    HookVerdict::Continue,
                    HookTransition::WarmPoolEntry | HookTransition::WarmPoolExit,
                ) => {
                    // Stopping or terminating a warm instance: one last look; only what still
                    // reads as safe to stop goes.
                    let Some(i) = a.by_id.get(&h.instance) else {
                        continue;
                    };
                    if self.still_safe_to_stop(i, h.transition).await {
                        a.calls
                            .push(format!("CompleteLifecycleAction(CONTINUE, {})", h.instance));
                        self.asg.complete(&action, LifecycleResult::Continue).await
                    } else {
                        a.calls
                            .push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
                        self.asg.heartbeat(&action).await
                    }
                }
                (HookVerdict::Continue, HookTransition::Terminating) => {
                    let Some(i) = a.by_id.get(&h.instance) else {
                        continue;
                    };
                    match release_after_recheck(&*self.recorders, &self.ec2, i, a.now, &mut a.calls)
                        .await
                    {
                        Recheck::Release => {
                            a.calls
                                .push(format!("CompleteLifecycleAction(CONTINUE, {})", h.instance));
                            self.asg.complete(&action, LifecycleResult::Continue).await
                        }
                        other => {
                            if let Recheck::DrainFailed(f) = other {
                                a.errors
                                    .push(format!("gracefulShutdown({}): {f}", h.instance));
                                a.drain_failed.push(h.instance.clone());
                            }
                            a.calls
                                .push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
                            self.asg.heartbeat(&action).await
                        }
                    }
                }
                (HookVerdict::Heartbeat, _) => continue,
                (HookVerdict::Abandon, _) => {
                    a.calls
                        .push(format!("CompleteLifecycleAction(ABANDON, {})", h.instance));
                    self.asg.complete(&action, LifecycleResult::Abandon).await
                }
            };
            match result {
                Ok(()) => {}
                Err(PortError::NoActiveAction { .. }) => {
                    tracing::info!(instance = %h.instance, "lifecycle action already completed")
                }
                Err(e) => a.errors.push(e.to_string()),
            }
        }
    }

    /// Drain busy recorders on their way out, so no new recording lands on them.
    async fn drains(&self, a: &mut Acting<'_>) {
        // 3. Drain busy recorders on their way out, so no new recording lands on them.
        // The tag marks confirmed drains only (a 2xx): a later refusal then reads as exited.
        let mut drained = Vec::new();
        for id in &a.plan.drain {
            a.calls.push(format!("gracefulShutdown({id})"));
            match self.recorders.graceful_shutdown(&a.addr(id)).await {
                Ok(()) => drained.push(id.clone()),
                Err(f) => {
                    a.errors.push(format!("gracefulShutdown({id}): {f}"));
                    // A refusal is an exited Jibri, unless its health endpoint answered:
                    // then the internal API is not reachable (a drain failure).
                    let answers = a
                        .by_id
                        .get(id)
                        .is_some_and(|i| matches!(i.probe, Probe::Status(_)));
                    if f != ProbeFailure::Refused || answers {
                        a.drain_failed.push(id.clone());
                    }
                }
            }
        }
        if !drained.is_empty() {
            a.calls
                .push(format!("CreateTags(drain-requested, {})", join(&drained)));
            if let Err(e) = self.ec2.mark_drain_requested(&drained, a.now).await {
                a.errors.push(e.to_string());
            }
        }
    }

    /// Replace broken recorders: re-probe, drain (confirmed), terminate without decrement.
    async fn replacements(&self, a: &mut Acting<'_>) {
        // 4. Replace broken recorders: re-probe, drain, terminate without decrement.
        for r in &a.plan.replace {
            let target = a.addr(&r.instance);
            let p = self.recorders.probe(&target).await;
            if matches!(&p, Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy) {
                tracing::info!(instance = %r.instance, "replacement skipped: the recorder became busy");
                continue;
            }
            a.calls.push(format!("gracefulShutdown({})", r.instance));
            match self.recorders.graceful_shutdown(&target).await {
                Ok(()) => {
                    if let Err(e) = self
                        .ec2
                        .mark_drain_requested(std::slice::from_ref(&r.instance), a.now)
                        .await
                    {
                        a.errors.push(e.to_string());
                    }
                }
                // Nothing listens: nothing to drain, nothing recording.
                Err(ProbeFailure::Refused) if !matches!(p, Probe::Status(_)) => {}
                Err(f) => {
                    // A broken recorder that cannot be drained stays in Jicofo's brewery
                    // after termination starts: not replaced this tick.
                    a.errors.push(format!(
                        "gracefulShutdown({}): {f}; not replaced",
                        r.instance
                    ));
                    a.drain_failed.push(r.instance.clone());
                    continue;
                }
            }
            a.calls.push(format!(
                "TerminateInstanceInAutoScalingGroup({}, decrement=false)",
                r.instance
            ));
            if let Err(e) = self.asg.terminate(&r.instance, false).await {
                a.errors.push(e.to_string());
            }
        }
    }

    /// Retained instances that are idle now: released after the re-check.
    async fn retained(&self, a: &mut Acting<'_>) {
        // 5. Retained instances that are idle now.
        for id in &a.plan.terminate_retained {
            let Some(i) = a.by_id.get(id) else { continue };
            let recheck =
                release_after_recheck(&*self.recorders, &self.ec2, i, a.now, &mut a.calls).await;
            if let Recheck::DrainFailed(f) = &recheck {
                a.errors.push(format!("gracefulShutdown({id}): {f}"));
                a.drain_failed.push(id.clone());
            }
            if recheck == Recheck::Release {
                a.calls.push(format!(
                    "TerminateInstanceInAutoScalingGroup({id}, decrement=false)"
                ));
                if let Err(e) = self.asg.terminate(id, false).await {
                    a.errors.push(e.to_string());
                }
            }
        }
    }

    /// The managed warm pool's size (before capacity: a scale-out draws on it).
    async fn warm_pool(&self, a: &mut Acting<'_>) {
        // 6. The managed warm pool's size (before capacity: a scale-out draws on it).
        if let Some(w) = a.plan.warm_pool {
            a.calls.push(format!("PutWarmPool({})", w.size));
            if let Err(e) = self.asg.put_warm_pool(&a.group, w.size).await {
                a.errors.push(e.to_string());
            }
        }
    }

    /// Capacity: scale-out at once; scale-in marks, re-checks, then acts.
    async fn capacity(&self, a: &mut Acting<'_>, protection_ok: bool) {
        // 7. Capacity.
        if let Some(d) = a.plan.desired {
            if d > a.plan.desired_before {
                a.calls.push(format!("SetDesiredCapacity({d})"));
                if let Err(e) = self.asg.set_desired(&a.group, d).await {
                    a.errors.push(e.to_string());
                }
            } else if !protection_ok {
                a.errors.push(
                    "scale-in skipped: protection of the other instances could not be ensured"
                        .into(),
                );
            } else {
                // Mark, re-check, act: a victim that took a recording since it was chosen stays.
                let mut victims = Vec::new();
                for v in &a.plan.victims {
                    let p = self.recorders.probe(&a.addr(v)).await;
                    match p {
                        Probe::Status(s) if s.is_available() => victims.push(v.clone()),
                        other => {
                            tracing::info!(instance = %v, probe = ?other, "victim no longer idle; kept")
                        }
                    }
                }
                if !victims.is_empty() {
                    a.calls
                        .push(format!("SetInstanceProtection(false, {})", join(&victims)));
                    match self.asg.set_protection(&a.group, &victims, false).await {
                        Ok(()) => {
                            let d = a.plan.desired_before - victims.len() as u32;
                            a.calls.push(format!("SetDesiredCapacity({d})"));
                            if let Err(e) = self.asg.set_desired(&a.group, d).await {
                                a.errors.push(e.to_string());
                                // Do not leave them exposed to a later scale-in we did not a.plan.
                                let _ = self.asg.set_protection(&a.group, &victims, true).await;
                            }
                        }
                        Err(e) => a.errors.push(e.to_string()),
                    }
                }
            }
        }
    }
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
    /// One last look before a warm-pool instance is stopped or terminated: its Jibri probed
    /// again, judged by the same rule the plan used ([`warm_verdict`]).
    async fn still_safe_to_stop(&self, i: &InstanceObservation, t: HookTransition) -> bool {
        let addr = RecorderAddress {
            id: i.id.clone(),
            private_ip: i.private_ip.clone(),
        };
        let again = InstanceObservation {
            probe: self.recorders.probe(&addr).await,
            ..i.clone()
        };
        warm_verdict(&again, t).0 == HookVerdict::Continue
    }

    /// A `Warmed:Pending:Wait` action on whichever hook holds it (launch first, then
    /// terminate). CONTINUE only after a last probe that is not BUSY; a heartbeat goes to
    /// both; ABANDON to the one that has it.
    async fn warm_entry_action(
        &self,
        h: &HookAction,
        snapshot: &GroupSnapshot,
        i: &InstanceObservation,
        calls: &mut Vec<String>,
        errors: &mut Vec<String>,
    ) {
        let mut verdict = h.verdict;
        if verdict == HookVerdict::Continue
            && !self
                .still_safe_to_stop(i, HookTransition::WarmPoolEntry)
                .await
        {
            verdict = HookVerdict::Heartbeat;
        }
        let mut found = false;
        for name in [&self.cfg.launch_hook_name, &self.cfg.terminate_hook_name] {
            let Some(hook) = snapshot.hooks.iter().find(|h| &h.name == name) else {
                continue;
            };
            let action = ActionRef {
                group: snapshot.name.clone(),
                hook: hook.name.clone(),
                instance: h.instance.clone(),
                token: None,
            };
            let (call, result) = match verdict {
                HookVerdict::Continue => (
                    "CompleteLifecycleAction(CONTINUE, ",
                    self.asg.complete(&action, LifecycleResult::Continue).await,
                ),
                HookVerdict::Abandon => (
                    "CompleteLifecycleAction(ABANDON, ",
                    self.asg.complete(&action, LifecycleResult::Abandon).await,
                ),
                HookVerdict::Heartbeat | HookVerdict::Wait => (
                    "RecordLifecycleActionHeartbeat(",
                    self.asg.heartbeat(&action).await,
                ),
            };
            match result {
                Ok(()) => {
                    calls.push(format!("{call}{})", h.instance));
                    found = true;
                    if verdict != HookVerdict::Heartbeat {
                        break;
                    }
                }
                Err(PortError::NoActiveAction { .. }) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !found {
            tracing::info!(instance = %h.instance, "warm-pool lifecycle action already completed");
        }
    }
}

/// The act phase's working set: the plan, the instances by id, and what was done.
struct Acting<'a> {
    group: String,
    plan: Plan,
    snapshot: &'a GroupSnapshot,
    by_id: BTreeMap<&'a InstanceId, &'a InstanceObservation>,
    now: EpochSecs,
    /// Every mutating call made, in order.
    calls: Vec<String>,
    errors: Vec<String>,
    drain_failed: Vec<InstanceId>,
    heartbeats_sent: Vec<InstanceId>,
    api_protection_failed: Vec<InstanceId>,
}

impl<'a> Acting<'a> {
    fn new(plan: Plan, obs: &'a Observation, snapshot: &'a GroupSnapshot, now: EpochSecs) -> Self {
        let warm = obs.warm_pool.iter().flat_map(|w| w.instances.iter());
        Acting {
            group: snapshot.name.clone(),
            plan,
            snapshot,
            by_id: obs
                .instances
                .iter()
                .chain(warm)
                .map(|i| (&i.id, i))
                .collect(),
            now,
            calls: Vec::new(),
            errors: Vec::new(),
            drain_failed: Vec::new(),
            heartbeats_sent: Vec::new(),
            api_protection_failed: Vec::new(),
        }
    }

    fn addr(&self, id: &InstanceId) -> RecorderAddress {
        RecorderAddress {
            id: id.clone(),
            private_ip: self.by_id.get(id).and_then(|i| i.private_ip.clone()),
        }
    }

    /// The plan's action on the hook it belongs to, named by the configured hook name; a
    /// missing hook is an error of this tick (and a `ConfigDrift`).
    fn action_ref(&mut self, cfg: &Config, h: &HookAction) -> Option<ActionRef> {
        let transition = if h.transition.on_launch_hook() {
            LAUNCHING
        } else {
            TERMINATING
        };
        let Some(hook) = self.hook_named(cfg, transition) else {
            self.errors.push(format!(
                "{}: no hook named for {transition} on the group",
                h.instance
            ));
            return None;
        };
        Some(ActionRef {
            group: self.group.clone(),
            hook: hook.name.clone(),
            instance: h.instance.clone(),
            token: None,
        })
    }

    /// The group's hook for a transition, found by the configured name only: another
    /// tool's hook on the same group is never ours.
    fn hook_named(&self, cfg: &Config, transition: &str) -> Option<&'a Hook> {
        let name = if transition == LAUNCHING {
            &cfg.launch_hook_name
        } else {
            &cfg.terminate_hook_name
        };
        self.snapshot.hooks.iter().find(|h| &h.name == name)
    }
}

/// What the last look before a release found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// Drained (the request answered 2xx) and idle or exited, or nothing listens at all:
    /// it may go.
    Release,
    /// Recording, uploading, unknown, or the drain could not be marked: kept this time.
    Keep(String),
    /// The drain request failed other than by a connect-time refusal (port 3333 not open
    /// to the VPC, a 500, a hang): kept, and counted as `DrainFailed`.
    DrainFailed(ProbeFailure),
}

/// Asks a recorder on its way out to shut down gracefully, marks the instance
/// (`drain-requested` tag, only after the request answered 2xx, so that a later "refused"
/// reads as "finished and exited"), probes it again, and says whether it may go now. After
/// the request an idle Jibri exits at once; one that took a recording in between says BUSY
/// and is kept.
///
/// Threat: a release without a confirmed drain leaves the Jibri registered with Jicofo
/// until the OS stops it, and a recording that lands then is cut. So a failed drain
/// request keeps the recorder (the caller heartbeats and retries next tick).
pub async fn release_after_recheck<R: Recorders + ?Sized, E: Ec2 + ?Sized>(
    r: &R,
    ec2: &E,
    i: &InstanceObservation,
    now: EpochSecs,
    calls: &mut Vec<String>,
) -> Recheck {
    let a = RecorderAddress {
        id: i.id.clone(),
        private_ip: i.private_ip.clone(),
    };
    if i.upload_pending {
        return Recheck::Keep("upload pending".into());
    }
    // A live Jibri is always asked again: one restarted since an earlier drain is idle and
    // would otherwise take a recording between the re-probe and the termination.
    let mut drained = false;
    let mut drain_refused = false;
    if i.probe != Probe::Failed(ProbeFailure::Refused) {
        calls.push(format!("gracefulShutdown({})", i.id));
        match r.graceful_shutdown(&a).await {
            Ok(()) => drained = true,
            // Nothing listens: the re-probe below tells an exited Jibri from a live one.
            Err(ProbeFailure::Refused) => drain_refused = true,
            Err(f) => {
                tracing::warn!(instance = %i.id, failure = %f, "gracefulShutdown before release failed: kept, retried next tick");
                return Recheck::DrainFailed(f);
            }
        }
    }
    if drained && !i.drain_requested {
        calls.push(format!("CreateTags(drain-requested, {})", i.id));
        if let Err(e) = ec2
            .mark_drain_requested(std::slice::from_ref(&i.id), now)
            .await
        {
            // Without the mark a later "refused" would read as unknown: keep it this time.
            tracing::warn!(instance = %i.id, error = %e, "cannot mark drain-requested; release deferred");
            return Recheck::Keep("drain not marked".into());
        }
    }
    let again = r.probe(&a).await;
    if drain_refused && matches!(again, Probe::Status(_)) {
        // Health answers while the internal API refuses: the most common
        // misconfiguration (Jibri binds its internal API to 127.0.0.1). Never drained.
        tracing::warn!(instance = %i.id, "gracefulShutdown refused while the health endpoint answers: the internal API is not reachable (jibri.api.http.internal-api-host); kept");
        return Recheck::DrainFailed(ProbeFailure::Refused);
    }
    match again {
        Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy => {
            tracing::info!(instance = %i.id, "re-check before release: took a recording, kept");
            Recheck::Keep("busy".into())
        }
        // Idle after a confirmed drain: it takes no new recording and exits.
        Probe::Status(_) if drained => Recheck::Release,
        // Answers idle without having been drained now (restarted since): drained next time.
        Probe::Status(_) => Recheck::Keep("answers again; not drained yet".into()),
        // Refused at connect time: nothing listens, nothing records.
        Probe::Failed(ProbeFailure::Refused) => Recheck::Release,
        other => {
            tracing::info!(instance = %i.id, probe = ?other, "re-check before release: unknown, kept");
            Recheck::Keep(format!("re-probe {other:?}"))
        }
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

fn join(ids: &[InstanceId]) -> String {
    ids.iter()
        .map(|i| i.0.as_str())
        .collect::<Vec<_>>()
        .join(",")
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
