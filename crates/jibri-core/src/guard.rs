//! The termination guard's decision for one lifecycle action, pure.
//!
//! The guard is stateless: each event is judged on what the instance says now. A recorder
//! that is busy, uploading or unknown is held (heartbeat) and asked to drain; the
//! controller's sweep re-checks held hooks every tick and releases them when idle.

use crate::domain::{EpochSecs, InstanceObservation, Probe};
use crate::plan::{launch_verdict, safe_to_release, warm_verdict, HookTransition, HookVerdict};
use crate::reason::HookReason;

/// How long a lifecycle action may be held: a terminate (or warm-pool) action until
/// ABANDON, a launch action until its recorder must have answered healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookLimits {
    /// `MAX_HOOK_HOLD_S`.
    pub max_hold_s: u64,
    /// `LAUNCH_MAX_WAIT_S`.
    pub launch_max_wait_s: u64,
}

impl HookLimits {
    pub fn of(cfg: &crate::config::Config) -> Self {
        HookLimits {
            max_hold_s: cfg.max_hook_hold_s,
            launch_max_wait_s: cfg.launch_max_wait_s,
        }
    }
}

/// What the guard does with one lifecycle action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum GuardDecision {
    /// `gracefulShutdown`, a final re-probe, then `CONTINUE` (terminate) if still idle.
    Release { why: HookReason },
    /// Busy, uploading or unknown: `gracefulShutdown` (no new recording lands on it),
    /// heartbeat, and leave it to the controller's sweep.
    Hold { why: HookReason, drain: bool },
    /// Held too long: `ABANDON` (retained when the group's policy says so).
    Abandon { why: HookReason },
    /// Launch: recorder healthy, `CONTINUE`.
    LaunchReady,
    /// Launch: not ready yet; the controller's sweep completes it later.
    LaunchNotReady { why: HookReason },
    /// Warm pool: nothing recording; a final re-probe, then `CONTINUE`.
    WarmContinue { why: HookReason },
}

/// Decides a terminate or launch action. `action_started` is the event's time.
pub fn decide(
    transition: HookTransition,
    instance: &InstanceObservation,
    action_started: EpochSecs,
    limits: HookLimits,
    now: EpochSecs,
) -> GuardDecision {
    let HookLimits {
        max_hold_s,
        launch_max_wait_s,
    } = limits;
    let age = now.saturating_sub(action_started);
    match transition {
        HookTransition::Launching => match launch_verdict(instance, age, launch_max_wait_s) {
            (HookVerdict::Continue, _) => GuardDecision::LaunchReady,
            (HookVerdict::Abandon, why) => GuardDecision::Abandon { why },
            (_, why) => GuardDecision::LaunchNotReady { why },
        },
        HookTransition::WarmPoolEntry | HookTransition::WarmPoolExit => {
            match warm_verdict(instance, transition) {
                (HookVerdict::Continue, why) => GuardDecision::WarmContinue { why },
                (HookVerdict::Heartbeat, why) if age >= max_hold_s => GuardDecision::Abandon {
                    why: why.held_for(age),
                },
                // Busy: no graceful shutdown here (it would end the recording's Jibri
                // after it); held, and the controller's sweep continues it once idle.
                (HookVerdict::Heartbeat, why) => GuardDecision::Hold { why, drain: false },
                (_, why) => GuardDecision::LaunchNotReady { why },
            }
        }
        HookTransition::Terminating => match safe_to_release(instance) {
            Ok(()) => GuardDecision::Release {
                why: HookReason::NotRecording,
            },
            Err(why) if age >= max_hold_s => GuardDecision::Abandon {
                why: why.held_for(age),
            },
            Err(why) => GuardDecision::Hold {
                drain: !instance.drain_requested
                    && !matches!(
                        instance.probe,
                        Probe::Failed(crate::domain::ProbeFailure::Refused)
                    ),
                why,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LifecycleState;
    use crate::testkit::inst;

    const LIMITS: HookLimits = HookLimits {
        max_hold_s: 3600,
        launch_max_wait_s: 900,
    };

    fn t(probe: &str) -> InstanceObservation {
        inst("i-1", LifecycleState::TerminatingWait, probe)
    }

    #[test]
    fn idle_recorder_is_released() {
        assert!(matches!(
            decide(HookTransition::Terminating, &t("idle"), 0, LIMITS, 10),
            GuardDecision::Release { .. }
        ));
    }

    #[test]
    fn expired_and_unhealthy_idle_recorders_are_released() {
        for p in ["expired", "unhealthy"] {
            assert!(
                matches!(
                    decide(HookTransition::Terminating, &t(p), 0, LIMITS, 10),
                    GuardDecision::Release { .. }
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn busy_recorder_is_held_and_drained() {
        let d = decide(HookTransition::Terminating, &t("busy"), 0, LIMITS, 10);
        assert_eq!(
            d,
            GuardDecision::Hold {
                why: HookReason::Busy,
                drain: true
            }
        );
    }

    #[test]
    fn unknown_is_never_released() {
        for p in ["timeout", "refused", "garbage", "http500", "unprobed"] {
            let d = decide(HookTransition::Terminating, &t(p), 0, LIMITS, 10);
            assert!(matches!(d, GuardDecision::Hold { .. }), "{p}: {d:?}");
        }
    }

    #[test]
    fn idle_with_upload_pending_is_held() {
        let mut i = t("idle");
        i.upload_pending = true;
        assert!(matches!(
            decide(HookTransition::Terminating, &i, 0, LIMITS, 10),
            GuardDecision::Hold { .. }
        ));
    }

    #[test]
    fn refused_after_drain_means_the_jibri_finished_and_exited() {
        let mut i = t("refused");
        i.drain_requested = true;
        assert!(matches!(
            decide(HookTransition::Terminating, &i, 0, LIMITS, 10),
            GuardDecision::Release { .. }
        ));
        let mut i = t("timeout");
        i.drain_requested = true;
        assert!(matches!(
            decide(HookTransition::Terminating, &i, 0, LIMITS, 10),
            GuardDecision::Hold { drain: false, .. }
        ));
    }

    #[test]
    fn held_past_the_maximum_is_abandoned() {
        assert!(matches!(
            decide(HookTransition::Terminating, &t("busy"), 0, LIMITS, 3600),
            GuardDecision::Abandon { .. }
        ));
    }

    #[test]
    fn launch_waits_for_a_healthy_idle_recorder() {
        let l = |p| inst("i-1", LifecycleState::PendingWait, p);
        assert_eq!(
            decide(HookTransition::Launching, &l("idle"), 0, LIMITS, 10),
            GuardDecision::LaunchReady
        );
        assert!(matches!(
            decide(HookTransition::Launching, &l("refused"), 0, LIMITS, 10),
            GuardDecision::LaunchNotReady { .. }
        ));
        assert!(matches!(
            decide(HookTransition::Launching, &l("unhealthy"), 0, LIMITS, 900),
            GuardDecision::Abandon { .. }
        ));
        // Booted during Pending:Wait and already recording: in service, never abandoned.
        assert_eq!(
            decide(HookTransition::Launching, &l("busy"), 0, LIMITS, 10),
            GuardDecision::LaunchReady
        );
        assert_eq!(
            decide(HookTransition::Launching, &l("busy"), 0, LIMITS, 5000),
            GuardDecision::LaunchReady
        );
        // Unknown past the wait: in service (guarded by the terminate hook), not abandoned.
        assert_eq!(
            decide(HookTransition::Launching, &l("timeout"), 0, LIMITS, 900),
            GuardDecision::LaunchReady
        );
    }

    #[test]
    fn warm_pool_entry_never_stops_a_recording() {
        let w = |p| inst("i-1", LifecycleState::WarmedPendingWait, p);
        // Jibri not started in the pool (the recorder image waits for InService): in.
        assert!(matches!(
            decide(HookTransition::WarmPoolEntry, &w("refused"), 0, LIMITS, 10),
            GuardDecision::WarmContinue { .. }
        ));
        assert!(matches!(
            decide(HookTransition::WarmPoolEntry, &w("idle"), 0, LIMITS, 10),
            GuardDecision::WarmContinue { .. }
        ));
        // Recording (scale-in back into the pool, or a Jibri that started too early): held.
        assert!(matches!(
            decide(HookTransition::WarmPoolEntry, &w("busy"), 0, LIMITS, 10),
            GuardDecision::Hold { drain: false, .. }
        ));
        let mut up = w("idle");
        up.upload_pending = true;
        assert!(matches!(
            decide(HookTransition::WarmPoolEntry, &up, 0, LIMITS, 10),
            GuardDecision::Hold { .. }
        ));
        // Still booting (no answer): left to the sweep and the hook's timeout.
        assert!(matches!(
            decide(HookTransition::WarmPoolEntry, &w("timeout"), 0, LIMITS, 10),
            GuardDecision::LaunchNotReady { .. }
        ));
        assert!(matches!(
            decide(HookTransition::WarmPoolEntry, &w("busy"), 0, LIMITS, 3600),
            GuardDecision::Abandon { .. }
        ));
    }

    #[test]
    fn warm_pool_exit_continues_only_a_stopped_instance_a_clean_idle_or_a_refusal() {
        let w = |p| inst("i-1", LifecycleState::WarmedTerminatingWait, p);
        for p in ["refused", "idle"] {
            assert!(
                matches!(
                    decide(HookTransition::WarmPoolExit, &w(p), 0, LIMITS, 10),
                    GuardDecision::WarmContinue { .. }
                ),
                "{p}"
            );
        }
        // Issue 14.5: a timeout, a 500 or garbage proves the instance may run: held.
        for p in ["busy", "timeout", "http500", "garbage", "unprobed"] {
            assert!(
                matches!(
                    decide(HookTransition::WarmPoolExit, &w(p), 0, LIMITS, 10),
                    GuardDecision::Hold { drain: false, .. }
                ),
                "{p}"
            );
        }
        // EC2 says stopped: nothing runs, whatever the address answers.
        let mut stopped = w("timeout");
        stopped.stopped = true;
        assert!(matches!(
            decide(HookTransition::WarmPoolExit, &stopped, 0, LIMITS, 10),
            GuardDecision::WarmContinue { .. }
        ));
        // ...unless a recording is still waiting for its upload.
        stopped.upload_pending = true;
        assert!(matches!(
            decide(HookTransition::WarmPoolExit, &stopped, 0, LIMITS, 10),
            GuardDecision::Hold { .. }
        ));
    }
}
