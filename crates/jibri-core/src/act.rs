//! The act phase: one executor that carries a [`Plan`] out through [`Effects`], for the
//! Lambda (whose adapters are AWS and HTTP) and for the simulator (whose world implements
//! the same trait), so the simulator measures exactly what ships.
//!
//! Every removal carries its precondition and checks it right before the call: a victim is
//! re-probed before it is unprotected, a terminating recorder is drained (2xx) and
//! re-probed before CONTINUE, a warm instance is judged again before it is stopped, a
//! broken one is re-probed before its replacement. The executor never panics and never
//! stops at the first failure: each failure is recorded and the rest of the plan goes on.

use crate::config::Config;
use crate::domain::{EpochSecs, InstanceId, InstanceObservation, Probe, ProbeFailure};
use crate::jitsi::BusyStatus;
use crate::plan::{warm_verdict, HookAction, HookTransition, HookVerdict, Plan};
use crate::reason::HookReason;
use std::collections::BTreeMap;
use std::future::Future;

/// Errors of the AWS-facing effects, classified once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("{op}: throttled after retries: {message}")]
    Throttled { op: &'static str, message: String },
    /// AWS's `ValidationError` "No active Lifecycle Action found ...": for an idempotent
    /// handler, the action was already completed (or never was ours).
    #[error("{op}: no active lifecycle action: {message}")]
    NoActiveAction { op: &'static str, message: String },
    #[error("{op}: not found: {message}")]
    NotFound { op: &'static str, message: String },
    #[error("{op}: rejected: {message}")]
    Invalid { op: &'static str, message: String },
    /// The conditional write lost: another invocation wrote the state first.
    #[error("{op}: precondition failed (another writer)")]
    Conflict { op: &'static str },
    #[error("{op}: service error: {message}")]
    Service { op: &'static str, message: String },
    #[error("{op}: transport error: {message}")]
    Transport { op: &'static str, message: String },
}

pub type PortResult<T> = Result<T, PortError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::Abandon => "ABANDON",
        }
    }
}

/// How a lifecycle action is named in a call: by token when the event gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRef {
    pub group: String,
    pub hook: String,
    pub instance: InstanceId,
    pub token: Option<String>,
}

/// Where one recorder answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderAddress {
    pub id: InstanceId,
    pub private_ip: Option<String>,
}

impl RecorderAddress {
    pub fn of(i: &InstanceObservation) -> Self {
        RecorderAddress {
            id: i.id.clone(),
            private_ip: i.private_ip.clone(),
        }
    }
}

/// What the act phase may do to the world: Auto Scaling, EC2 and the recorders, in the
/// product's words. The Lambda's adapters and the simulator's world implement it.
pub trait Effects: Send + Sync {
    /// Never fails: a failure is a [`Probe::Failed`], which is treated as busy.
    fn probe(&self, r: &RecorderAddress) -> impl Future<Output = Probe> + Send;
    /// Stops new work landing on the instance: a Jibri's `gracefulShutdown`; for a bridge
    /// pool, the bridge's drain (`POST {JVB_DRAIN_URL}/enable`).
    fn graceful_shutdown(
        &self,
        r: &RecorderAddress,
    ) -> impl Future<Output = Result<(), ProbeFailure>> + Send;
    /// A bridge pool only: puts a drained bridge back into service
    /// (`POST {JVB_DRAIN_URL}/disable`). A Jibri cannot be undrained: the default refuses.
    fn undrain(
        &self,
        r: &RecorderAddress,
    ) -> impl Future<Output = Result<(), ProbeFailure>> + Send {
        let _ = r;
        std::future::ready(Err(ProbeFailure::Transport(
            "undrain is not implemented by these effects".into(),
        )))
    }
    /// Removes the `drain-requested` tag of undrained bridges (its time would otherwise
    /// date a later hold). The default refuses, so a missing implementation is loud.
    fn clear_drain_requested(
        &self,
        ids: &[InstanceId],
    ) -> impl Future<Output = PortResult<()>> + Send {
        let _ = ids;
        std::future::ready(Err(PortError::Invalid {
            op: "DeleteTags",
            message: "clear_drain_requested is not implemented by these effects".into(),
        }))
    }
    fn mark_drain_requested(
        &self,
        ids: &[InstanceId],
        at: EpochSecs,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn set_termination_protection(
        &self,
        id: &InstanceId,
        on: bool,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn set_protection(
        &self,
        group: &str,
        ids: &[InstanceId],
        protected: bool,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn set_desired(&self, group: &str, desired: u32)
        -> impl Future<Output = PortResult<()>> + Send;
    fn complete(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn heartbeat(&self, action: &ActionRef) -> impl Future<Output = PortResult<()>> + Send;
    fn terminate(
        &self,
        id: &InstanceId,
        decrement_desired: bool,
    ) -> impl Future<Output = PortResult<()>> + Send;
    fn put_warm_pool(&self, group: &str, size: u32) -> impl Future<Output = PortResult<()>> + Send;
}

/// What the act phase works from: the plan, the instances it was made from, and the names
/// of the group's hooks that are ours (found by the configured names; `None`: missing).
pub struct ActInput<'a> {
    pub group: String,
    pub plan: &'a Plan,
    pub instances: Vec<&'a InstanceObservation>,
    pub launch_hook: Option<String>,
    pub terminate_hook: Option<String>,
    pub now: EpochSecs,
}

impl<'a> ActInput<'a> {
    /// The group's hooks found by the configured names only: another tool's hook on the
    /// same group is never ours.
    pub fn new(
        group: String,
        plan: &'a Plan,
        obs: &'a crate::domain::Observation,
        hook_names: &[&str],
        cfg: &Config,
        now: EpochSecs,
    ) -> Self {
        let warm = obs.warm_pool.iter().flat_map(|w| w.instances.iter());
        let present = |name: &String| hook_names.contains(&name.as_str()).then(|| name.clone());
        ActInput {
            group,
            plan,
            instances: obs.instances.iter().chain(warm).collect(),
            launch_hook: present(&cfg.launch_hook_name),
            terminate_hook: present(&cfg.terminate_hook_name),
            now,
        }
    }
}

/// What the act phase did: every mutating call in order (the same log for the Lambda, the
/// fakes and the simulator), what failed, and what the state must know.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActReport {
    pub calls: Vec<String>,
    pub errors: Vec<String>,
    /// Notes worth a log line that are not errors (a victim kept, an action already done).
    pub notes: Vec<String>,
    pub drain_failed: Vec<InstanceId>,
    pub heartbeats_sent: Vec<InstanceId>,
    pub api_protection_failed: Vec<InstanceId>,
}

/// The act phase's working set.
struct Acting<'a, P> {
    p: &'a P,
    input: ActInput<'a>,
    by_id: BTreeMap<&'a InstanceId, &'a InstanceObservation>,
    r: ActReport,
}

/// Carries the plan out, in this order: heartbeats first (a slow act phase must not let a
/// held hook time out), EC2 termination protection, scale-in protection (its failure
/// forbids this tick's scale-in), lifecycle actions, drains, replacements, retained
/// instances, the warm pool's size (before capacity: a scale-out draws on it), capacity.
pub async fn execute<P: Effects>(p: &P, input: ActInput<'_>) -> ActReport {
    let by_id = input.instances.iter().map(|i| (&i.id, *i)).collect();
    let mut a = Acting {
        p,
        input,
        by_id,
        r: ActReport::default(),
    };
    a.heartbeats_first().await;
    a.termination_protection().await;
    let protection_ok = a.scale_in_protection().await;
    a.hook_actions().await;
    a.drains().await;
    a.undrains().await;
    a.replacements().await;
    a.retained().await;
    a.warm_pool().await;
    a.capacity(protection_ok).await;
    a.r
}

fn join(ids: &[InstanceId]) -> String {
    ids.iter()
        .map(|i| i.0.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl<'a, P: Effects> Acting<'a, P> {
    fn addr(&self, id: &InstanceId) -> RecorderAddress {
        RecorderAddress {
            id: id.clone(),
            private_ip: self.by_id.get(id).and_then(|i| i.private_ip.clone()),
        }
    }

    /// The plan's action on the hook it belongs to; a missing hook is an error of this
    /// tick (and a `ConfigDrift`).
    fn action_ref(&mut self, h: &HookAction) -> Option<ActionRef> {
        let (hook, which) = if h.transition.on_launch_hook() {
            (&self.input.launch_hook, "launch")
        } else {
            (&self.input.terminate_hook, "terminate")
        };
        let Some(hook) = hook.clone() else {
            self.r.errors.push(format!(
                "{}: no {which} hook of ours on the group",
                h.instance
            ));
            return None;
        };
        Some(ActionRef {
            group: self.input.group.clone(),
            hook,
            instance: h.instance.clone(),
            token: None,
        })
    }

    /// A lifecycle call's failure: "no active action" is a duplicate (done already).
    fn lifecycle_result(&mut self, id: &InstanceId, result: PortResult<()>) -> bool {
        match result {
            Ok(()) => true,
            Err(PortError::NoActiveAction { .. }) => {
                self.r
                    .notes
                    .push(format!("{id}: lifecycle action already completed"));
                false
            }
            Err(e) => {
                self.r.errors.push(e.to_string());
                false
            }
        }
    }

    /// Heartbeats first, recorded only once AWS accepted them.
    async fn heartbeats_first(&mut self) {
        let hooks = self.input.plan.hooks.clone();
        for h in &hooks {
            if h.verdict != HookVerdict::Heartbeat || h.transition == HookTransition::WarmPoolEntry
            {
                continue;
            }
            let Some(action) = self.action_ref(h) else {
                continue;
            };
            self.r
                .calls
                .push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
            let result = self.p.heartbeat(&action).await;
            if self.lifecycle_result(&h.instance, result) {
                self.r.heartbeats_sent.push(h.instance.clone());
            }
        }
    }

    /// EC2 termination protection of what records or uploads (a direct TerminateInstances
    /// skips every hook), cleared once idle.
    async fn termination_protection(&mut self) {
        let plan = self.input.plan;
        for (ids, on) in [(&plan.api_protect, true), (&plan.api_unprotect, false)] {
            for id in ids {
                self.r.calls.push(format!(
                    "ModifyInstanceAttribute(DisableApiTermination={on}, {id})"
                ));
                match self.p.set_termination_protection(id, on).await {
                    Ok(()) => {}
                    // e.g. a Spot instance (it cannot be protected): not retried every tick.
                    Err(e @ PortError::Invalid { .. }) => self.r.notes.push(format!(
                        "{id}: termination protection refused; not retried: {e}"
                    )),
                    Err(e) => {
                        self.r.errors.push(e.to_string());
                        self.r.api_protection_failed.push(id.clone());
                    }
                }
            }
        }
    }

    /// Scale-in protection, batched. False when it failed: no scale-in this tick.
    async fn scale_in_protection(&mut self) -> bool {
        let protect = &self.input.plan.protect;
        if protect.is_empty() {
            return true;
        }
        self.r
            .calls
            .push(format!("SetInstanceProtection(true, {})", join(protect)));
        match self
            .p
            .set_protection(&self.input.group, protect, true)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                self.r.errors.push(e.to_string());
                false
            }
        }
    }

    /// The plan's lifecycle actions (heartbeats were sent first).
    async fn hook_actions(&mut self) {
        let hooks = self.input.plan.hooks.clone();
        for h in &hooks {
            if h.transition == HookTransition::WarmPoolEntry && h.verdict != HookVerdict::Wait {
                self.warm_entry_action(h).await;
                continue;
            }
            if matches!(h.verdict, HookVerdict::Heartbeat | HookVerdict::Wait) {
                continue;
            }
            let Some(action) = self.action_ref(h) else {
                continue;
            };
            let result = match h.verdict {
                HookVerdict::Abandon => LifecycleResult::Abandon,
                _ => match self.may_continue(h).await {
                    Some(true) => LifecycleResult::Continue,
                    Some(false) => {
                        self.r
                            .calls
                            .push(format!("RecordLifecycleActionHeartbeat({})", h.instance));
                        let result = self.p.heartbeat(&action).await;
                        self.lifecycle_result(&h.instance, result);
                        continue;
                    }
                    // Not observed this tick: nothing to check it against.
                    None => continue,
                },
            };
            self.r.calls.push(format!(
                "CompleteLifecycleAction({}, {})",
                result.as_str(),
                h.instance
            ));
            let done = self.p.complete(&action, result).await;
            self.lifecycle_result(&h.instance, done);
        }
    }

    /// The precondition of a CONTINUE, checked right before it: a launch goes; a warm
    /// instance is judged again; a terminating recorder is drained and re-probed. `None`:
    /// the instance was not observed this tick, so there is nothing to judge it on.
    async fn may_continue(&mut self, h: &HookAction) -> Option<bool> {
        if h.transition == HookTransition::Launching {
            return Some(true);
        }
        let i = self.by_id.get(&h.instance).copied()?;
        Some(match h.transition {
            HookTransition::Terminating => self.release(i).await == Recheck::Release,
            t => still_safe_to_stop(self.p, i, t).await,
        })
    }

    /// [`release_after_recheck`], its drain failure recorded.
    async fn release(&mut self, i: &InstanceObservation) -> Recheck {
        let recheck = release_after_recheck(self.p, i, self.input.now, &mut self.r.calls).await;
        match &recheck {
            Recheck::DrainFailed(f) => {
                self.r
                    .errors
                    .push(format!("gracefulShutdown({}): {f}", i.id));
                self.r.drain_failed.push(i.id.clone());
            }
            Recheck::Keep(why) => self.r.notes.push(format!("{}: kept, {why}", i.id)),
            Recheck::Release => {}
        }
        recheck
    }

    /// A `Warmed:Pending:Wait` action is a launch-hook action for an instance launched into
    /// the pool, and a terminate-hook action for one scaled in back into it; when the plan
    /// could not tell (state lost), both hooks are tried, launch first. CONTINUE only after
    /// a last look; a heartbeat goes to both; ABANDON to the one that has it.
    async fn warm_entry_action(&mut self, h: &HookAction) {
        let Some(i) = self.by_id.get(&h.instance).copied() else {
            return;
        };
        let mut verdict = h.verdict;
        if verdict == HookVerdict::Continue
            && !still_safe_to_stop(self.p, i, HookTransition::WarmPoolEntry).await
        {
            verdict = HookVerdict::Heartbeat;
        }
        let hooks = [
            self.input.launch_hook.clone(),
            self.input.terminate_hook.clone(),
        ];
        let mut found = false;
        for hook in hooks.into_iter().flatten() {
            let action = ActionRef {
                group: self.input.group.clone(),
                hook,
                instance: h.instance.clone(),
                token: None,
            };
            let (call, result) = match verdict {
                HookVerdict::Continue => (
                    "CompleteLifecycleAction(CONTINUE, ",
                    self.p.complete(&action, LifecycleResult::Continue).await,
                ),
                HookVerdict::Abandon => (
                    "CompleteLifecycleAction(ABANDON, ",
                    self.p.complete(&action, LifecycleResult::Abandon).await,
                ),
                HookVerdict::Heartbeat | HookVerdict::Wait => (
                    "RecordLifecycleActionHeartbeat(",
                    self.p.heartbeat(&action).await,
                ),
            };
            match result {
                Ok(()) => {
                    self.r.calls.push(format!("{call}{})", h.instance));
                    found = true;
                    if verdict != HookVerdict::Heartbeat {
                        break;
                    }
                }
                Err(PortError::NoActiveAction { .. }) => {}
                Err(e) => self.r.errors.push(e.to_string()),
            }
        }
        if !found {
            self.r.notes.push(format!(
                "{}: warm-pool lifecycle action already completed",
                h.instance
            ));
        }
    }

    /// Drain busy recorders on their way out, so no new recording lands on them. The tag
    /// marks confirmed drains only (a 2xx): a later refusal then reads as exited.
    async fn drains(&mut self) {
        let mut drained = Vec::new();
        for id in &self.input.plan.drain {
            self.r.calls.push(format!("gracefulShutdown({id})"));
            match self.p.graceful_shutdown(&self.addr(id)).await {
                Ok(()) => drained.push(id.clone()),
                Err(f) => {
                    self.r.errors.push(format!("gracefulShutdown({id}): {f}"));
                    // A refusal is an exited Jibri, unless its health endpoint answered:
                    // then the internal API is not reachable (a drain failure).
                    let answers = self
                        .by_id
                        .get(id)
                        .is_some_and(|i| matches!(i.probe, Probe::Status(_)));
                    if f != ProbeFailure::Refused || answers {
                        self.r.drain_failed.push(id.clone());
                    }
                }
            }
        }
        if !drained.is_empty() {
            self.r
                .calls
                .push(format!("CreateTags(drain-requested, {})", join(&drained)));
            if let Err(e) = self.p.mark_drain_requested(&drained, self.input.now).await {
                self.r.errors.push(e.to_string());
            }
        }
    }

    /// A bridge pool: undrain the bridges the plan puts back into service, then clear
    /// their drain tag (confirmed undrains only).
    async fn undrains(&mut self) {
        let mut undrained = Vec::new();
        for id in &self.input.plan.undrain {
            self.r.calls.push(format!("undrain({id})"));
            match self.p.undrain(&self.addr(id)).await {
                Ok(()) => undrained.push(id.clone()),
                Err(f) => self.r.errors.push(format!("undrain({id}): {f}")),
            }
        }
        if !undrained.is_empty() {
            self.r
                .calls
                .push(format!("DeleteTags(drain-requested, {})", join(&undrained)));
            if let Err(e) = self.p.clear_drain_requested(&undrained).await {
                self.r.errors.push(e.to_string());
            }
        }
    }

    /// Replace broken recorders: re-probe, drain (confirmed), terminate without decrement.
    async fn replacements(&mut self) {
        for r in &self.input.plan.replace {
            let target = self.addr(&r.instance);
            let p = self.p.probe(&target).await;
            if p.is_busy() {
                self.r.notes.push(format!(
                    "{}: replacement skipped, the recorder became busy",
                    r.instance
                ));
                continue;
            }
            self.r
                .calls
                .push(format!("gracefulShutdown({})", r.instance));
            match self.p.graceful_shutdown(&target).await {
                Ok(()) => {
                    let ids = std::slice::from_ref(&r.instance);
                    if let Err(e) = self.p.mark_drain_requested(ids, self.input.now).await {
                        self.r.errors.push(e.to_string());
                    }
                }
                // Nothing listens: nothing to drain, nothing recording.
                Err(ProbeFailure::Refused) if !matches!(p, Probe::Status(_)) => {}
                Err(f) => {
                    // A broken recorder that cannot be drained stays in Jicofo's brewery
                    // after termination starts: not replaced this tick.
                    self.r.errors.push(format!(
                        "gracefulShutdown({}): {f}; not replaced",
                        r.instance
                    ));
                    self.r.drain_failed.push(r.instance.clone());
                    continue;
                }
            }
            self.r.calls.push(format!(
                "TerminateInstanceInAutoScalingGroup({}, decrement=false)",
                r.instance
            ));
            if let Err(e) = self.p.terminate(&r.instance, false).await {
                self.r.errors.push(e.to_string());
            }
        }
    }

    /// Retained instances that are idle now: released after the re-check.
    async fn retained(&mut self) {
        for id in &self.input.plan.terminate_retained {
            let Some(i) = self.by_id.get(id).copied() else {
                continue;
            };
            if self.release(i).await == Recheck::Release {
                self.r.calls.push(format!(
                    "TerminateInstanceInAutoScalingGroup({id}, decrement=false)"
                ));
                if let Err(e) = self.p.terminate(id, false).await {
                    self.r.errors.push(e.to_string());
                }
            }
        }
    }

    /// The managed warm pool's size.
    async fn warm_pool(&mut self) {
        if let Some(w) = self.input.plan.warm_pool {
            self.r.calls.push(format!("PutWarmPool({})", w.size));
            if let Err(e) = self.p.put_warm_pool(&self.input.group, w.size).await {
                self.r.errors.push(e.to_string());
            }
        }
    }

    /// Capacity: scale-out at once; scale-in marks, re-checks, then acts: a victim that
    /// took a recording since it was chosen stays.
    async fn capacity(&mut self, protection_ok: bool) {
        let plan = self.input.plan;
        let Some(d) = plan.desired else {
            return;
        };
        let group = self.input.group.clone();
        if d > plan.desired_before {
            self.r.calls.push(format!("SetDesiredCapacity({d})"));
            if let Err(e) = self.p.set_desired(&group, d).await {
                self.r.errors.push(e.to_string());
            }
            return;
        }
        if !protection_ok {
            self.r.errors.push(
                "scale-in skipped: protection of the other instances could not be ensured".into(),
            );
            return;
        }
        let mut victims = Vec::new();
        for v in &plan.victims {
            match self.p.probe(&self.addr(v)).await {
                Probe::Status(s) if s.is_available() => victims.push(v.clone()),
                other => self
                    .r
                    .notes
                    .push(format!("{v}: victim no longer idle ({other:?}); kept")),
            }
        }
        if victims.is_empty() {
            return;
        }
        self.r
            .calls
            .push(format!("SetInstanceProtection(false, {})", join(&victims)));
        if let Err(e) = self.p.set_protection(&group, &victims, false).await {
            self.r.errors.push(e.to_string());
            return;
        }
        let d = plan.desired_before - victims.len() as u32;
        self.r.calls.push(format!("SetDesiredCapacity({d})"));
        if let Err(e) = self.p.set_desired(&group, d).await {
            self.r.errors.push(e.to_string());
            // Do not leave them exposed to a later scale-in that was not planned.
            let _ = self.p.set_protection(&group, &victims, true).await;
        }
    }
}

/// One last look before a warm-pool instance is stopped or terminated: its Jibri probed
/// again, judged by the same rule the plan used ([`warm_verdict`]).
pub async fn still_safe_to_stop<P: Effects + ?Sized>(
    p: &P,
    i: &InstanceObservation,
    t: HookTransition,
) -> bool {
    let again = InstanceObservation {
        probe: p.probe(&RecorderAddress::of(i)).await,
        ..i.clone()
    };
    warm_verdict(&again, t).0 == HookVerdict::Continue
}

/// What the last look before a release found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// Drained (the request answered 2xx) and idle or exited, or nothing listens at all:
    /// it may go.
    Release,
    /// Recording, uploading, unknown, or the drain could not be marked: kept this time.
    Keep(HookReason),
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
pub async fn release_after_recheck<P: Effects + ?Sized>(
    p: &P,
    i: &InstanceObservation,
    now: EpochSecs,
    calls: &mut Vec<String>,
) -> Recheck {
    let a = RecorderAddress::of(i);
    if i.upload_pending {
        return Recheck::Keep(HookReason::UploadPending);
    }
    // A live Jibri is always asked again: one restarted since an earlier drain is idle and
    // would otherwise take a recording between the re-probe and the termination.
    let mut drained = false;
    let mut drain_refused = false;
    if i.probe != Probe::Failed(ProbeFailure::Refused) {
        calls.push(format!("gracefulShutdown({})", i.id));
        match p.graceful_shutdown(&a).await {
            Ok(()) => drained = true,
            // Nothing listens: the re-probe below tells an exited Jibri from a live one.
            Err(ProbeFailure::Refused) => drain_refused = true,
            Err(f) => return Recheck::DrainFailed(f),
        }
    }
    if drained && !i.drain_requested {
        calls.push(format!("CreateTags(drain-requested, {})", i.id));
        if p.mark_drain_requested(std::slice::from_ref(&i.id), now)
            .await
            .is_err()
        {
            // Without the mark a later "refused" would read as unknown: keep it this time.
            return Recheck::Keep(HookReason::DrainNotMarked);
        }
    }
    let again = p.probe(&a).await;
    if drain_refused && matches!(again, Probe::Status(_)) {
        // Health answers while the internal API refuses: the most common
        // misconfiguration (Jibri binds its internal API to 127.0.0.1). Never drained.
        return Recheck::DrainFailed(ProbeFailure::Refused);
    }
    match again {
        Probe::Status(s) if s.busy == BusyStatus::Busy => Recheck::Keep(HookReason::Busy),
        // Idle after a confirmed drain: it takes no new recording and exits.
        Probe::Status(_) if drained => Recheck::Release,
        // Answers idle without having been drained now (restarted since): drained next time.
        Probe::Status(_) => Recheck::Keep(HookReason::NotDrainedYet),
        // Refused at connect time: nothing listens, nothing records.
        Probe::Failed(ProbeFailure::Refused) => Recheck::Release,
        other => Recheck::Keep(HookReason::Reprobe {
            seen: (&other).into(),
        }),
    }
}

/// Runs a future whose effects never wait (the simulator's world answers at once) to
/// completion on this thread, without an async runtime. A future that does wait is polled
/// again until it completes (a busy loop: only for effects that never block).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
