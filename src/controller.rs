//! The pool controller's handler: observe → plan → act, once per scheduled tick.
//!
//! Observe reads the group, EC2, every Jicofo shard and every recorder concurrently with
//! bounded parallelism; [`crate::core::plan::plan`] decides; act makes the fewest calls,
//! re-probing a recorder right before anything irreversible. Steady state makes no
//! mutating call at all.

use crate::config::Config;
use crate::core::plan::{plan, safe_to_release, HookAction, HookTransition, HookVerdict, Plan};
use crate::core::state::{Lease, PoolState, Versioned};
use crate::domain::*;
use crate::jitsi::JicofoStats;
use crate::metrics::pool_metrics;
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
                        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
                    };
                    sum.jibri_count = add(sum.jibri_count, s.jibri_count);
                    sum.jibri_available = add(sum.jibri_available, s.jibri_available);
                    sum.conferences += s.conferences;
                    sum.participants += s.participants;
                    sum.recording_active += s.recording_active;
                    sum.live_streaming_active += s.live_streaming_active;
                    sum.jibri_failures_total += s.jibri_failures_total;
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
        tracing::info!(target: "plan", "{}", plan.summary());
        for w in &plan.warnings {
            tracing::error!("{w}");
        }
        let mut report = TickReport {
            outcome: Outcome::Steady,
            plan,
            calls: Vec::new(),
            errors: problems,
        };
        if let Err(e) = self
            .metrics
            .emit(&group_name, &pool_metrics(&report.plan), now)
            .await
        {
            tracing::warn!(error = %e, "emitting metrics failed");
            report.errors.push(e.to_string());
        }
        if self.cfg.dry_run {
            report.outcome = Outcome::DryRun;
            return Ok(report);
        }
        if let Some(lease) = prev
            .lease
            .as_ref()
            .filter(|l| l.until > now && l.holder != self.holder)
        {
            tracing::warn!(holder = %lease.holder, until = lease.until, "another tick holds the lease; not acting");
            report.outcome = Outcome::LeaseHeld {
                holder: lease.holder.clone(),
            };
            return Ok(report);
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
            return Ok(report);
        }
        // Take the lease with the new state in one conditional write.
        let budget_s = self.cfg.tick_budget.as_secs().max(1);
        let leased = PoolState {
            lease: Some(Lease {
                holder: self.holder.clone(),
                until: now + budget_s,
            }),
            ..next.clone()
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
                return Ok(report);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the state: not acting without the lease");
                report.errors.push(e.to_string());
                return Ok(report);
            }
        };
        self.act(&mut report, &obs, &snapshot, now).await;
        report.outcome = Outcome::Acted;
        // Release the lease; if this fails it expires by itself at `until`.
        if let Err(e) = self.state.save(&group_name, &next, Some(&etag)).await {
            tracing::warn!(error = %e, "releasing the lease failed; it expires by itself");
        }
        Ok(report)
    }

    async fn act(
        &self,
        report: &mut TickReport,
        obs: &Observation,
        snapshot: &GroupSnapshot,
        now: EpochSecs,
    ) {
        let group = snapshot.name.clone();
        let plan = report.plan.clone();
        let warm_instances = obs.warm_pool.iter().flat_map(|w| w.instances.iter());
        let by_id: BTreeMap<&InstanceId, &InstanceObservation> = obs
            .instances
            .iter()
            .chain(warm_instances)
            .map(|i| (&i.id, i))
            .collect();
        let addr = |id: &InstanceId| RecorderAddress {
            id: id.clone(),
            private_ip: by_id.get(id).and_then(|i| i.private_ip.clone()),
        };
        let mut calls = Vec::new();
        let mut errors = Vec::new();

        // 1. Protection, batched. A failure forbids this tick's scale-in.
        let mut protection_ok = true;
        if !plan.protect.is_empty() {
            calls.push(format!(
                "SetInstanceProtection(true, {})",
                join(&plan.protect)
            ));
            if let Err(e) = self.asg.set_protection(&group, &plan.protect, true).await {
                protection_ok = false;
                errors.push(e.to_string());
            }
        }

        // 2. Lifecycle actions.
        for h in &plan.hooks {
            let transition = if h.transition.on_launch_hook() {
                LAUNCHING
            } else {
                TERMINATING
            };
            if h.transition == HookTransition::WarmPoolEntry && h.verdict != HookVerdict::Wait {
                // `Warmed:Pending:Wait` is a launch-hook action for an instance launched into
                // the pool, and a terminate-hook action for one scaled in back into it. The
                // plan tells them apart by what it saw; when it could not (state lost, never
                // seen in service), the action is on the other hook: both are tried.
                self.warm_entry_action(
                    h,
                    snapshot,
                    &group,
                    &addr(&h.instance),
                    &mut calls,
                    &mut errors,
                )
                .await;
                continue;
            }
            let Some(hook) = snapshot.hook_for(transition) else {
                errors.push(format!("{}: no {transition} hook on the group", h.instance));
                continue;
            };
            let action = ActionRef {
                group: group.clone(),
                hook: hook.name.clone(),
                instance: h.instance.clone(),
                token: None,
            };
            let result = match (h.verdict, h.transition) {
                (HookVerdict::Wait, _) => continue,
                (HookVerdict::Continue, HookTransition::Launching) => {
                    calls.push(format!("CompleteLifecycleAction(CONTINUE, {})", h.instance));
                    self.asg.complete(&action, LifecycleResult::Continue).await
                }
                (
                    HookVerdict::Continue,
                    HookTransition::WarmPoolEntry | HookTransition::WarmPoolExit,
                ) => {
                    // Stopping or terminating a warm instance: one last look for a recording.
                    let p = self.recorders.probe(&addr(&h.instance)).await;
                    if matches!(&p, Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy) {
                        calls.push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
                        self.asg.heartbeat(&action).await
                    } else {
                        calls.push(format!("CompleteLifecycleAction(CONTINUE, {})", h.instance));
                        self.asg.complete(&action, LifecycleResult::Continue).await
                    }
                }
                (HookVerdict::Continue, HookTransition::Terminating) => {
                    let Some(i) = by_id.get(&h.instance) else {
                        continue;
                    };
                    if release_after_recheck(&*self.recorders, &self.ec2, i, now, &mut calls).await
                    {
                        calls.push(format!("CompleteLifecycleAction(CONTINUE, {})", h.instance));
                        self.asg.complete(&action, LifecycleResult::Continue).await
                    } else {
                        calls.push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
                        self.asg.heartbeat(&action).await
                    }
                }
                (HookVerdict::Heartbeat, _) => {
                    calls.push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
                    self.asg.heartbeat(&action).await
                }
                (HookVerdict::Abandon, _) => {
                    calls.push(format!("CompleteLifecycleAction(ABANDON, {})", h.instance));
                    self.asg.complete(&action, LifecycleResult::Abandon).await
                }
            };
            match result {
                Ok(()) => {}
                Err(PortError::NoActiveAction { .. }) => {
                    tracing::info!(instance = %h.instance, "lifecycle action already completed")
                }
                Err(e) => errors.push(e.to_string()),
            }
        }

        // 3. Drain busy recorders on their way out, so no new recording lands on them.
        if !plan.drain.is_empty() {
            for id in &plan.drain {
                calls.push(format!("gracefulShutdown({id})"));
                if let Err(f) = self.recorders.graceful_shutdown(&addr(id)).await {
                    errors.push(format!("gracefulShutdown({id}): {f}"));
                }
            }
            calls.push(format!(
                "CreateTags(drain-requested, {})",
                join(&plan.drain)
            ));
            if let Err(e) = self.ec2.mark_drain_requested(&plan.drain, now).await {
                errors.push(e.to_string());
            }
        }

        // 4. Replace broken recorders: re-probe, drain, terminate without decrement.
        for r in &plan.replace {
            let a = addr(&r.instance);
            let p = self.recorders.probe(&a).await;
            if matches!(&p, Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy) {
                tracing::info!(instance = %r.instance, "replacement skipped: the recorder became busy");
                continue;
            }
            calls.push(format!("gracefulShutdown({})", r.instance));
            let _ = self.recorders.graceful_shutdown(&a).await;
            if let Err(e) = self
                .ec2
                .mark_drain_requested(std::slice::from_ref(&r.instance), now)
                .await
            {
                errors.push(e.to_string());
            }
            calls.push(format!(
                "TerminateInstanceInAutoScalingGroup({}, decrement=false)",
                r.instance
            ));
            if let Err(e) = self.asg.terminate(&r.instance, false).await {
                errors.push(e.to_string());
            }
        }

        // 5. Retained instances that are idle now.
        for id in &plan.terminate_retained {
            let Some(i) = by_id.get(id) else { continue };
            if release_after_recheck(&*self.recorders, &self.ec2, i, now, &mut calls).await {
                calls.push(format!(
                    "TerminateInstanceInAutoScalingGroup({id}, decrement=false)"
                ));
                if let Err(e) = self.asg.terminate(id, false).await {
                    errors.push(e.to_string());
                }
            }
        }

        // 6. The managed warm pool's size (before capacity: a scale-out draws on it).
        if let Some(w) = plan.warm_pool {
            calls.push(format!("PutWarmPool({})", w.size));
            if let Err(e) = self.asg.put_warm_pool(&group, w.size).await {
                errors.push(e.to_string());
            }
        }

        // 7. Capacity.
        if let Some(d) = plan.desired {
            if d > plan.desired_before {
                calls.push(format!("SetDesiredCapacity({d})"));
                if let Err(e) = self.asg.set_desired(&group, d).await {
                    errors.push(e.to_string());
                }
            } else if !protection_ok {
                errors.push(
                    "scale-in skipped: protection of the other instances could not be ensured"
                        .into(),
                );
            } else {
                // Mark, re-check, act: a victim that took a recording since it was chosen stays.
                let mut victims = Vec::new();
                for v in &plan.victims {
                    let p = self.recorders.probe(&addr(v)).await;
                    match p {
                        Probe::Status(s) if s.is_available() => victims.push(v.clone()),
                        other => {
                            tracing::info!(instance = %v, probe = ?other, "victim no longer idle; kept")
                        }
                    }
                }
                if !victims.is_empty() {
                    calls.push(format!("SetInstanceProtection(false, {})", join(&victims)));
                    match self.asg.set_protection(&group, &victims, false).await {
                        Ok(()) => {
                            let d = plan.desired_before - victims.len() as u32;
                            calls.push(format!("SetDesiredCapacity({d})"));
                            if let Err(e) = self.asg.set_desired(&group, d).await {
                                errors.push(e.to_string());
                                // Do not leave them exposed to a later scale-in we did not plan.
                                let _ = self.asg.set_protection(&group, &victims, true).await;
                            }
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
            }
        }
        for e in &errors {
            tracing::error!(group = %group, "{e}");
        }
        report.calls = calls;
        report.errors.extend(errors);
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
    /// A `Warmed:Pending:Wait` action on whichever hook holds it (launch first, then
    /// terminate). CONTINUE only after a last probe that is not BUSY; a heartbeat goes to
    /// both; ABANDON to the one that has it.
    async fn warm_entry_action(
        &self,
        h: &HookAction,
        snapshot: &GroupSnapshot,
        group: &str,
        addr: &RecorderAddress,
        calls: &mut Vec<String>,
        errors: &mut Vec<String>,
    ) {
        let mut verdict = h.verdict;
        if verdict == HookVerdict::Continue
            && matches!(self.recorders.probe(addr).await, Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy)
        {
            verdict = HookVerdict::Heartbeat;
        }
        let mut found = false;
        for transition in [LAUNCHING, TERMINATING] {
            let Some(hook) = snapshot.hook_for(transition) else {
                continue;
            };
            let action = ActionRef {
                group: group.to_string(),
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

/// Asks a recorder on its way out to shut down gracefully, marks the instance
/// (`drain-requested` tag, so that a later "refused" reads as "finished and exited"),
/// probes it again, and says whether it may go now. After the request an idle Jibri exits
/// at once; a Jibri that took a recording in between says BUSY and is kept.
pub async fn release_after_recheck<R: Recorders + ?Sized, E: Ec2 + ?Sized>(
    r: &R,
    ec2: &E,
    i: &InstanceObservation,
    now: EpochSecs,
    calls: &mut Vec<String>,
) -> bool {
    let a = RecorderAddress {
        id: i.id.clone(),
        private_ip: i.private_ip.clone(),
    };
    // A live Jibri is always asked again: one restarted since an earlier drain is idle and
    // would otherwise take a recording between the re-probe and the termination.
    if i.probe != Probe::Failed(ProbeFailure::Refused) {
        calls.push(format!("gracefulShutdown({})", i.id));
        if let Err(f) = r.graceful_shutdown(&a).await {
            tracing::info!(instance = %i.id, failure = %f, "gracefulShutdown before release failed");
        }
    }
    if !i.drain_requested {
        calls.push(format!("CreateTags(drain-requested, {})", i.id));
        if let Err(e) = ec2
            .mark_drain_requested(std::slice::from_ref(&i.id), now)
            .await
        {
            // Without the mark a later "refused" would read as unknown: keep it this time.
            tracing::warn!(instance = %i.id, error = %e, "cannot mark drain-requested; release deferred");
            return false;
        }
    }
    let again = InstanceObservation {
        probe: r.probe(&a).await,
        drain_requested: true,
        ..i.clone()
    };
    match safe_to_release(&again) {
        Ok(()) => true,
        Err(why) => {
            tracing::info!(instance = %i.id, why, "re-check before release: kept");
            false
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
