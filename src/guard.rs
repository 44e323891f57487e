//! The termination guard's handler: one lifecycle event in, the safe completion out.
//!
//! Order of business: ignore what is not ours (another group, another tool's hook: no AWS
//! call), confirm the action is live (the instance is in the wait state the event speaks
//! of, and the event's token is still the active action: a replayed, redriven or late
//! event never reaches a recorder), resolve the instance from EC2 (never from the event),
//! probe its Jibri, decide ([`crate::core::guard::decide`]), act. Completing an action that
//! is no longer active is success (idempotent).

use crate::config::Config;
use crate::controller::{release_after_recheck, AwsEffects, Recheck};
use crate::core::guard::{decide, GuardDecision, HookLimits};
use crate::core::plan::{warm_verdict, HookTransition, HookVerdict};
use crate::core::reason::HookReason;
use crate::domain::*;
use crate::events::{parse_lifecycle, parse_records, Incoming, LifecycleAction, SpotInterruption};
use crate::ports::*;
use serde_json::{json, Value};

/// What the guard did with one action; serialized as the Lambda's response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum GuardOutcome {
    Ignored {
        why: String,
    },
    Acknowledged {
        why: String,
    },
    Continued {
        instance: String,
    },
    Held {
        instance: String,
        why: String,
    },
    Abandoned {
        instance: String,
        why: String,
        retained: bool,
    },
    LaunchPending {
        instance: String,
        why: String,
    },
    AlreadyCompleted {
        instance: String,
    },
    /// A Spot interruption warning: the Jibri was asked to drain (no new recording lands
    /// in its last two minutes) and the instance tagged, so the controller replaces it now.
    Interrupted {
        instance: String,
        /// A recording (or its upload) was running: EC2's interruption cuts it.
        busy: bool,
        /// The drain answered 2xx.
        drained: bool,
    },
}

/// The oldest Spot interruption warning the guard acts on: EC2 interrupts two minutes
/// after it, so an older one is a replay or a late retry about an instance that is gone
/// or was not interrupted (draining it would stop a recorder the group counts).
pub const SPOT_WARNING_MAX_AGE_S: u64 = 180;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Worth a retry by the invoker (throttling, transport): nothing unsafe was done.
    #[error("{0}")]
    Aws(#[from] PortError),
}

pub struct Guard<A, E, R> {
    pub cfg: Config,
    pub asg: A,
    pub ec2: E,
    pub recorders: R,
}

impl<A: AutoScaling, E: Ec2, R: Recorders> Guard<A, E, R> {
    /// One invocation's payload: an EventBridge event, or an SQS/SNS delivery answered per
    /// record. A malformed event or record is logged and answered with success (retrying
    /// it cannot help); an AWS failure on one record puts only that record in
    /// `batchItemFailures` (SQS redelivers it) while the others go on. SNS delivers one
    /// record per asynchronous invocation: its failure is the invocation's error (retried).
    pub async fn handle_delivery(
        &self,
        event: &Value,
        now: EpochSecs,
    ) -> Result<Value, GuardError> {
        if let Some(records) = parse_records(event) {
            let mut outcomes = Vec::new();
            let mut failures = Vec::new();
            let mut first_error = None;
            let mut all_sqs = true;
            for r in records {
                all_sqs &= r.from_sqs;
                match r.parsed {
                    Err(e) => {
                        tracing::error!(record = %r.id, error = %e, "malformed record; dropped (a retry cannot fix it)");
                        outcomes.push(json!({ "record": r.id, "ignored": e.to_string() }));
                    }
                    Ok(i) => match self.handle(&i, now).await {
                        Ok(o) => outcomes.push(json!({ "record": r.id, "outcome": o })),
                        Err(e) => {
                            tracing::warn!(record = %r.id, error = %e, "record failed; returned for redelivery, the rest go on");
                            failures.push(json!({ "itemIdentifier": r.id }));
                            first_error.get_or_insert(e);
                        }
                    },
                }
            }
            if let Some(e) = first_error.filter(|_| !all_sqs) {
                return Err(e);
            }
            return Ok(json!({ "outcomes": outcomes, "batchItemFailures": failures }));
        }
        match parse_lifecycle(event) {
            Err(e) => {
                // Success to the invoker: a malformed event is not retried forever. No AWS call.
                tracing::error!(error = %e, "malformed or unexpected event; ignored");
                Ok(json!({ "ignored": e.to_string() }))
            }
            Ok(incoming) => {
                let mut outcomes = Vec::new();
                for i in &incoming {
                    // An AWS failure (throttled after retries) is the invocation's error, so
                    // EventBridge retries; nothing unsafe was done, and the sweep covers it.
                    outcomes.push(self.handle(i, now).await?);
                }
                Ok(json!({ "outcomes": outcomes }))
            }
        }
    }

    pub async fn handle(
        &self,
        incoming: &Incoming,
        now: EpochSecs,
    ) -> Result<GuardOutcome, GuardError> {
        match incoming {
            Incoming::TestNotification { group } => {
                tracing::info!(group, "autoscaling:TEST_NOTIFICATION acknowledged");
                Ok(GuardOutcome::Acknowledged {
                    why: "test notification".into(),
                })
            }
            Incoming::SpotInterruption(s) => self.spot_interruption(s, now).await,
            Incoming::Action(a) => self.action(a, now).await,
        }
    }

    /// One lifecycle action: ours? live? then judged on what its recorder says now.
    async fn action(
        &self,
        a: &LifecycleAction,
        now: EpochSecs,
    ) -> Result<GuardOutcome, GuardError> {
        let now = self.clock(a.time, now);
        if let Some(ignored) = self.not_ours(a) {
            return Ok(ignored);
        }
        let live = match self.live(a).await? {
            Ok(live) => live,
            Err(outcome) => return Ok(outcome),
        };
        if a.destination.as_deref() == Some("WarmPool") || a.origin.as_deref() == Some("WarmPool") {
            tracing::info!(instance = %a.instance, origin = ?a.origin, destination = ?a.destination, "warm-pool lifecycle action");
        }
        let obs = Ec2Instance::observe(
            Some(&live.ec2),
            live.ec2.id.clone(),
            held_state(a),
            false,
            self.recorders.probe(&live.addr).await,
        );
        let started = a.time.unwrap_or(now).min(now);
        let decision = decide(a.transition, &obs, started, HookLimits::of(&self.cfg), now);
        tracing::info!(instance = %a.instance, group = %a.group, probe = ?obs.probe, decision = ?decision, "guard decision");
        self.carry_out(a, &live, &obs, decision, now).await
    }

    /// Another group's event, or another tool's hook on our group: never completed or
    /// heartbeated by us, and no AWS call.
    fn not_ours(&self, a: &LifecycleAction) -> Option<GuardOutcome> {
        if !self.cfg.groups.contains(&a.group) {
            tracing::info!(group = %a.group, instance = %a.instance, "event for a group this guard does not manage; ignored");
            return Some(GuardOutcome::Ignored {
                why: format!("group {} not configured", a.group),
            });
        }
        if a.hook != self.cfg.terminate_hook_name && a.hook != self.cfg.launch_hook_name {
            tracing::warn!(hook = %a.hook, instance = %a.instance, terminate_hook = %self.cfg.terminate_hook_name, launch_hook = %self.cfg.launch_hook_name, "event of a lifecycle hook that is not ours; ignored");
            return Some(GuardOutcome::Ignored {
                why: format!("hook {} is not ours", a.hook),
            });
        }
        None
    }

    /// Threat: an event replayed (EventBridge retries for an hour, a DLQ redrive, an
    /// operator invoking a sample) for an instance that is in service, or that moved on to
    /// another action: draining it would stop a recorder the group still counts. The
    /// instance (resolved from EC2, never from the event) must be in the wait state the
    /// event speaks of and, with a token, the token must be the active action. `Err`: the
    /// outcome, without a call to the recorder.
    async fn live(&self, a: &LifecycleAction) -> Result<Result<Live, GuardOutcome>, GuardError> {
        let ec2 = self.ec2.describe(std::slice::from_ref(&a.instance)).await?;
        let Some(e) = ec2.into_iter().find(|e| e.id == a.instance) else {
            tracing::info!(instance = %a.instance, "instance no longer exists; nothing to guard");
            return Ok(Err(GuardOutcome::AlreadyCompleted {
                instance: a.instance.0.clone(),
            }));
        };
        if let Some(g) = e.group.as_deref().filter(|g| *g != a.group) {
            tracing::warn!(instance = %a.instance, event_group = %a.group, instance_group = g, "event names another group than the instance's tag; ignored");
            return Ok(Err(GuardOutcome::Ignored {
                why: format!("instance belongs to {g}"),
            }));
        }
        let group = self.asg.describe_group(&a.group).await?;
        let state = self.lifecycle_state(a, &group).await?;
        let expected = expected_wait_states(a);
        if !state.as_ref().is_some_and(|s| expected.contains(s)) {
            let now_in = state
                .as_ref()
                .map_or("absent from the group", |s| s.as_str());
            tracing::warn!(instance = %a.instance, state = now_in, expected = ?expected.iter().map(LifecycleState::as_str).collect::<Vec<_>>(), "the instance is not in the wait state this event speaks of (replayed, redriven or late event): no call to the recorder");
            return Ok(Err(GuardOutcome::Ignored {
                why: format!("instance is {now_in}, not in the event's wait state"),
            }));
        }
        let heartbeat_sent = a.token.is_some();
        if heartbeat_sent {
            // A heartbeat naming the token succeeds only for the active action: the cheapest
            // proof that this event is not an earlier action's (it only extends the hold).
            match self.asg.heartbeat(&a.action_ref()).await {
                Ok(()) => {}
                Err(PortError::NoActiveAction { message, .. }) => {
                    tracing::warn!(instance = %a.instance, token = ?a.token, message, "the event's token is not the active lifecycle action: no call to the recorder");
                    return Ok(Err(GuardOutcome::Ignored {
                        why: "lifecycle action token no longer active".into(),
                    }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Ok(Live {
            addr: e.address(),
            ec2: e,
            retain_on_abandon: group.retain_on_abandon,
            heartbeat_sent,
        }))
    }

    /// Carries the decision out, each removal after its last check.
    async fn carry_out(
        &self,
        a: &LifecycleAction,
        live: &Live,
        obs: &InstanceObservation,
        decision: GuardDecision,
        now: EpochSecs,
    ) -> Result<GuardOutcome, GuardError> {
        let continued = || GuardOutcome::Continued {
            instance: a.instance.0.clone(),
        };
        let hold = |why: HookReason, drain: bool| self.hold(a, live, drain, now, why);
        match decision {
            GuardDecision::Release { .. } => {
                let effects = AwsEffects {
                    asg: &self.asg,
                    ec2: &self.ec2,
                    recorders: &self.recorders,
                };
                match release_after_recheck(&effects, obs, now, &mut Vec::new()).await {
                    Recheck::Release => {
                        self.complete(a, LifecycleResult::Continue, continued())
                            .await
                    }
                    // The drain was asked for already: no second request here.
                    Recheck::Keep(why) => hold(why, false).await,
                    // Released without a confirmed drain, a Jibri stays in Jicofo's brewery
                    // until the OS stops it: a recording landing then is cut. Held; the
                    // controller's sweep retries the drain every tick and raises DrainFailed.
                    Recheck::DrainFailed(failure) => {
                        hold(HookReason::DrainFailed { failure }, false).await
                    }
                }
            }
            GuardDecision::Hold { why, drain } => hold(why, drain).await,
            GuardDecision::Abandon { why }
                if a.transition == HookTransition::Terminating && !live.retain_on_abandon =>
            {
                // Without retain, ABANDON terminates: never given to a recorder that may be
                // recording. Held on; AWS's own hold limit is the last word.
                tracing::error!(instance = %a.instance, why = %why, "not abandoning: the group has no TerminateHookAbandon=retain policy, so ABANDON would terminate a recorder that may be recording; heartbeating until AWS's hold limit (fix the group's instance lifecycle policy)");
                hold(
                    HookReason::NoRetainPolicy {
                        held: Box::new(why),
                    },
                    false,
                )
                .await
            }
            GuardDecision::Abandon { why } => {
                let abandoned = GuardOutcome::Abandoned {
                    instance: a.instance.0.clone(),
                    why: why.to_string(),
                    retained: live.retain_on_abandon,
                };
                self.complete(a, LifecycleResult::Abandon, abandoned).await
            }
            GuardDecision::LaunchReady => {
                self.complete(a, LifecycleResult::Continue, continued())
                    .await
            }
            GuardDecision::WarmContinue { .. } => {
                // One last look: only what still reads as safe to stop goes.
                let again = InstanceObservation {
                    probe: self.recorders.probe(&live.addr).await,
                    ..obs.clone()
                };
                match warm_verdict(&again, a.transition) {
                    (HookVerdict::Continue, _) => {
                        self.complete(a, LifecycleResult::Continue, continued())
                            .await
                    }
                    (_, why) => hold(why, false).await,
                }
            }
            GuardDecision::LaunchNotReady { why } => Ok(GuardOutcome::LaunchPending {
                instance: a.instance.0.clone(),
                why: why.to_string(),
            }),
        }
    }

    async fn complete(
        &self,
        a: &LifecycleAction,
        result: LifecycleResult,
        ok: GuardOutcome,
    ) -> Result<GuardOutcome, GuardError> {
        let action = a.action_ref();
        match self.asg.complete(&action, result).await {
            Ok(()) => Ok(ok),
            Err(PortError::NoActiveAction { .. }) => {
                tracing::info!(instance = %action.instance, "lifecycle action already completed (duplicate event)");
                Ok(GuardOutcome::AlreadyCompleted {
                    instance: action.instance.0.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Holds the action: drains first when asked, then a heartbeat (unless this invocation
    /// already sent one, naming the event's token).
    async fn hold(
        &self,
        a: &LifecycleAction,
        live: &Live,
        drain: bool,
        now: EpochSecs,
        why: HookReason,
    ) -> Result<GuardOutcome, GuardError> {
        // The Lambda's response carries the reason's words (the typed value is logged).
        let why = why.to_string();
        if drain {
            self.drain_and_mark(&live.addr, now).await;
        }
        let action = a.action_ref();
        if live.heartbeat_sent {
            return Ok(GuardOutcome::Held {
                instance: a.instance.0.clone(),
                why,
            });
        }
        match self.asg.heartbeat(&action).await {
            Ok(()) => Ok(GuardOutcome::Held {
                instance: a.instance.0.clone(),
                why,
            }),
            Err(PortError::NoActiveAction { .. }) => Ok(GuardOutcome::AlreadyCompleted {
                instance: a.instance.0.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

impl<A: AutoScaling, E: Ec2, R: Recorders> Guard<A, E, R> {
    /// Threat: EC2 takes a Spot instance two minutes after its interruption warning,
    /// whatever the group's hooks say; a recording that starts there meanwhile is cut, and
    /// the pool is a recorder short until Auto Scaling notices. The guard drains the Jibri
    /// at once (no new recording lands), tags the instance so that the controller launches
    /// its replacement now, and says loudly what no one can save: a recording already
    /// running. A warning that is stale, about another group's or a non-Spot instance, is
    /// ignored without a call to the recorder.
    async fn spot_interruption(
        &self,
        s: &SpotInterruption,
        now: EpochSecs,
    ) -> Result<GuardOutcome, GuardError> {
        let now = self.clock(s.time, now);
        let id = s.instance.0.clone();
        let Some(at) = s
            .time
            .filter(|t| now.saturating_sub(*t) <= SPOT_WARNING_MAX_AGE_S)
        else {
            tracing::warn!(instance = %s.instance, time = ?s.time, "Spot interruption warning without a time or older than {SPOT_WARNING_MAX_AGE_S}s (replayed or late): no call to the recorder");
            return Ok(GuardOutcome::Ignored {
                why: "stale Spot interruption warning".into(),
            });
        };
        let ec2 = self.ec2.describe(std::slice::from_ref(&s.instance)).await?;
        let Some(e) = ec2.into_iter().find(|e| e.id == s.instance) else {
            tracing::info!(instance = %s.instance, "interrupted instance no longer exists");
            return Ok(GuardOutcome::AlreadyCompleted { instance: id });
        };
        match e.group.as_deref() {
            Some(g) if self.cfg.groups.iter().any(|c| c == g) => {}
            other => {
                tracing::info!(instance = %s.instance, group = ?other, "Spot interruption of an instance outside the managed groups; ignored");
                return Ok(GuardOutcome::Ignored {
                    why: "instance not in a managed group".into(),
                });
            }
        }
        if !e.spot {
            tracing::warn!(instance = %s.instance, "Spot interruption warning for an instance EC2 does not list as Spot; ignored");
            return Ok(GuardOutcome::Ignored {
                why: "not a Spot instance".into(),
            });
        }
        if let Err(err) = self.ec2.mark_interruption_notice(&s.instance, at).await {
            tracing::warn!(instance = %s.instance, error = %err, "tagging the interruption notice failed; the controller will not replace it early");
        }
        let addr = e.address();
        let busy = e.upload_pending || self.recorders.probe(&addr).await.is_busy();
        let drained = self.drain_and_mark(&addr, now).await;
        if busy {
            tracing::error!(instance = %s.instance, action = %s.action, interruption_at = at + 120, "Spot interruption of a recorder that is recording or uploading: EC2 takes it in two minutes and no hook can refuse (README: paths not covered); run recorders on On-Demand capacity to avoid this");
        } else {
            tracing::warn!(instance = %s.instance, action = %s.action, drained, "Spot interruption warning: idle recorder drained; the controller replaces it");
        }
        Ok(GuardOutcome::Interrupted {
            instance: id,
            busy,
            drained,
        })
    }

    /// The local test bed's compressed clock (`CLOCK=event` only): the event's own time is
    /// the time, so the drain tag written compares right with LaunchTime. In production
    /// the wall clock.
    ///
    /// Not `events::tick_time`, on purpose: a tick takes the later of event and wall time
    /// because its durable state must never go back in time. The guard keeps no state, and
    /// it ages the action from the event's time: the later of the two would age a test-bed
    /// action by the gap between the test bed's clock and the wall (ABANDON at first sight
    /// once that gap passes MAX_HOOK_HOLD_S). Test:
    /// `the_guard_judges_an_event_at_its_own_time_on_the_event_clock`.
    fn clock(&self, event_time: Option<EpochSecs>, wall: EpochSecs) -> EpochSecs {
        match event_time {
            Some(t) if self.cfg.event_clock => t,
            _ => wall,
        }
    }

    /// `gracefulShutdown` (a videobridge: `POST /colibri/drain/enable`, by the adapter for
    /// `POOL_KIND`), then the drain tag. The tag says "a drain was confirmed": set
    /// only after a 2xx, so that a later refusal is read as an exited Jibri only when it
    /// really was drained. A failure is logged (the controller's sweep retries held ones).
    async fn drain_and_mark(&self, addr: &RecorderAddress, now: EpochSecs) -> bool {
        match self.recorders.graceful_shutdown(addr).await {
            Ok(()) => {
                let ids = std::slice::from_ref(&addr.id);
                if let Err(e) = self.ec2.mark_drain_requested(ids, now).await {
                    tracing::warn!(instance = %addr.id, error = %e, "tagging drain-requested failed");
                }
                true
            }
            Err(f) => {
                tracing::warn!(instance = %addr.id, failure = %f, "drain request failed (a Jibri's gracefulShutdown, a bridge's /colibri/drain/enable): new work may still land on it; retried by the controller's sweep where a hook holds it");
                false
            }
        }
    }

    /// The instance's lifecycle state now: in the group, else in its warm pool.
    async fn lifecycle_state(
        &self,
        a: &LifecycleAction,
        group: &GroupSnapshot,
    ) -> Result<Option<LifecycleState>, GuardError> {
        if let Some(i) = group.instances.iter().find(|i| i.id == a.instance) {
            return Ok(Some(i.lifecycle_state.clone()));
        }
        let warm_event =
            a.origin.as_deref() == Some("WarmPool") || a.destination.as_deref() == Some("WarmPool");
        if group.warm_pool || warm_event {
            if let Some(w) = self.asg.describe_warm_pool(&a.group).await? {
                return Ok(w
                    .instances
                    .iter()
                    .find(|i| i.id == a.instance)
                    .map(|i| i.lifecycle_state.clone()));
            }
        }
        Ok(None)
    }
}

/// A lifecycle action found live: its instance as EC2 describes it, where its Jibri
/// answers, the group's retain policy, and whether a heartbeat naming the event's token was
/// sent (then the hold needs no other).
struct Live {
    ec2: Ec2Instance,
    addr: RecorderAddress,
    retain_on_abandon: bool,
    heartbeat_sent: bool,
}

/// The state the action holds the instance in (a scale-in back into the warm pool waits in
/// `Warmed:Pending:Wait` on the terminate hook).
fn held_state(a: &LifecycleAction) -> LifecycleState {
    match a.transition {
        HookTransition::WarmPoolEntry => LifecycleState::WarmedPendingWait,
        HookTransition::Launching => LifecycleState::PendingWait,
        HookTransition::WarmPoolExit => LifecycleState::WarmedTerminatingWait,
        HookTransition::Terminating if a.destination.as_deref() == Some("WarmPool") => {
            LifecycleState::WarmedPendingWait
        }
        HookTransition::Terminating => LifecycleState::TerminatingWait,
    }
}

/// The wait states a lifecycle event may speak of. With `Origin`/`Destination` exactly one;
/// events from older set-ups carry neither, and then any wait state of the transition.
pub fn expected_wait_states(a: &LifecycleAction) -> Vec<LifecycleState> {
    use LifecycleState::*;
    let (origin, destination) = (a.origin.as_deref(), a.destination.as_deref());
    match a.transition {
        HookTransition::WarmPoolEntry => vec![WarmedPendingWait],
        HookTransition::Launching if origin.is_none() && destination.is_none() => {
            vec![PendingWait, WarmedPendingWait]
        }
        HookTransition::Launching => vec![PendingWait],
        HookTransition::WarmPoolExit => vec![WarmedTerminatingWait],
        HookTransition::Terminating if destination == Some("WarmPool") => vec![WarmedPendingWait],
        HookTransition::Terminating if origin.is_none() && destination.is_none() => {
            vec![TerminatingWait, WarmedPendingWait, WarmedTerminatingWait]
        }
        HookTransition::Terminating => vec![TerminatingWait],
    }
}
