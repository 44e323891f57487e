//! The termination guard's handler: one lifecycle event in, the safe completion out.
//!
//! Order of business: ignore what is not ours (no AWS call), resolve the instance from
//! EC2 (never from the event), probe its Jibri, decide ([`crate::core::guard::decide`]),
//! act. Completing an action that is no longer active is success (idempotent).

use crate::config::Config;
use crate::controller::release_after_recheck;
use crate::core::guard::{decide, GuardDecision, Transition};
use crate::domain::*;
use crate::events::{ActionTransition, Incoming, LifecycleAction};
use crate::ports::*;

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
}

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
    pub async fn handle(
        &self,
        incoming: &Incoming,
        now: EpochSecs,
    ) -> Result<GuardOutcome, GuardError> {
        let a = match incoming {
            Incoming::TestNotification { group } => {
                tracing::info!(group, "autoscaling:TEST_NOTIFICATION acknowledged");
                return Ok(GuardOutcome::Acknowledged {
                    why: "test notification".into(),
                });
            }
            Incoming::Action(a) => a,
        };
        if !self.cfg.groups.contains(&a.group) {
            tracing::info!(group = %a.group, instance = %a.instance, "event for a group this guard does not manage; ignored");
            return Ok(GuardOutcome::Ignored {
                why: format!("group {} not configured", a.group),
            });
        }
        let ec2 = self.ec2.describe(std::slice::from_ref(&a.instance)).await?;
        let Some(e) = ec2.into_iter().find(|e| e.id == a.instance) else {
            tracing::info!(instance = %a.instance, "instance no longer exists; nothing to guard");
            return Ok(GuardOutcome::AlreadyCompleted {
                instance: a.instance.0.clone(),
            });
        };
        if let Some(g) = e.group.as_deref().filter(|g| *g != a.group) {
            tracing::warn!(instance = %a.instance, event_group = %a.group, instance_group = g, "event names another group than the instance's tag; ignored");
            return Ok(GuardOutcome::Ignored {
                why: format!("instance belongs to {g}"),
            });
        }
        let addr = RecorderAddress {
            id: e.id.clone(),
            private_ip: e.private_ip.clone(),
        };
        // Warm pools: an instance launched into (or returning to) the pool is stopped on
        // CONTINUE, so it is judged like a removal; one leaving the pool for termination
        // was stopped there. A scale-in back into the pool (terminate, Destination
        // WarmPool) stops a recording all the same: guarded exactly like a termination.
        let (lifecycle, transition) =
            match (a.transition, a.origin.as_deref(), a.destination.as_deref()) {
                (ActionTransition::Launching, _, Some("WarmPool")) => {
                    (LifecycleState::WarmedPendingWait, Transition::WarmPoolEntry)
                }
                (ActionTransition::Launching, _, _) => {
                    (LifecycleState::PendingWait, Transition::Launching)
                }
                (ActionTransition::Terminating, Some("WarmPool"), _) => (
                    LifecycleState::WarmedTerminatingWait,
                    Transition::WarmPoolExit,
                ),
                (ActionTransition::Terminating, _, _) => {
                    (LifecycleState::TerminatingWait, Transition::Terminating)
                }
            };
        if a.destination.as_deref() == Some("WarmPool") || a.origin.as_deref() == Some("WarmPool") {
            tracing::info!(instance = %a.instance, origin = ?a.origin, destination = ?a.destination, "warm-pool lifecycle action");
        }
        let obs = Ec2Instance::observe(
            Some(&e),
            e.id.clone(),
            lifecycle,
            false,
            self.recorders.probe(&addr).await,
        );
        let started = a.time.unwrap_or(now).min(now);
        let decision = decide(
            transition,
            &obs,
            started,
            self.cfg.max_hook_hold_s,
            self.cfg.launch_max_wait_s,
            now,
        );
        tracing::info!(instance = %a.instance, group = %a.group, probe = ?obs.probe, decision = ?decision, "guard decision");
        let action = ActionRef {
            group: a.group.clone(),
            hook: a.hook.clone(),
            instance: a.instance.clone(),
            token: a.token.clone(),
        };
        let id = a.instance.0.clone();
        let outcome = match decision {
            GuardDecision::Release { .. } => {
                let mut calls = Vec::new();
                if release_after_recheck(&self.recorders, &self.ec2, &obs, now, &mut calls).await {
                    self.complete(
                        &action,
                        LifecycleResult::Continue,
                        GuardOutcome::Continued { instance: id },
                    )
                    .await?
                } else {
                    self.hold(
                        a,
                        &addr,
                        true,
                        now,
                        "took a recording during the release re-check".into(),
                    )
                    .await?
                }
            }
            GuardDecision::Hold { why, drain } => self.hold(a, &addr, drain, now, why).await?,
            GuardDecision::Abandon { why } => {
                let retained = match self.asg.describe_group(&a.group).await {
                    Ok(g) => g.retain_on_abandon,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the group's lifecycle policy");
                        false
                    }
                };
                if !retained && transition == Transition::Terminating {
                    tracing::error!(instance = %id, why, "ABANDON without TerminateHookAbandon=retain: the instance terminates now");
                }
                self.complete(
                    &action,
                    LifecycleResult::Abandon,
                    GuardOutcome::Abandoned {
                        instance: id,
                        why,
                        retained,
                    },
                )
                .await?
            }
            GuardDecision::LaunchReady => {
                self.complete(
                    &action,
                    LifecycleResult::Continue,
                    GuardOutcome::Continued { instance: id },
                )
                .await?
            }
            GuardDecision::WarmContinue { .. } => {
                // One last look: a Jibri that took a recording since is held instead.
                match self.recorders.probe(&addr).await {
                    Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy => {
                        self.hold(a, &addr, false, now, "took a recording".into())
                            .await?
                    }
                    _ => {
                        self.complete(
                            &action,
                            LifecycleResult::Continue,
                            GuardOutcome::Continued { instance: id },
                        )
                        .await?
                    }
                }
            }
            GuardDecision::LaunchNotReady { why } => {
                GuardOutcome::LaunchPending { instance: id, why }
            }
        };
        Ok(outcome)
    }

    async fn complete(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
        ok: GuardOutcome,
    ) -> Result<GuardOutcome, GuardError> {
        match self.asg.complete(action, result).await {
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

    async fn hold(
        &self,
        a: &LifecycleAction,
        addr: &RecorderAddress,
        drain: bool,
        now: EpochSecs,
        why: String,
    ) -> Result<GuardOutcome, GuardError> {
        if drain {
            if let Err(f) = self.recorders.graceful_shutdown(addr).await {
                tracing::warn!(instance = %a.instance, failure = %f, "gracefulShutdown failed");
            }
            if let Err(e) = self
                .ec2
                .mark_drain_requested(std::slice::from_ref(&a.instance), now)
                .await
            {
                tracing::warn!(instance = %a.instance, error = %e, "tagging drain-requested failed");
            }
        }
        let action = ActionRef {
            group: a.group.clone(),
            hook: a.hook.clone(),
            instance: a.instance.clone(),
            token: a.token.clone(),
        };
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
