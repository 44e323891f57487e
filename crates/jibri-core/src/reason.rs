//! Why a lifecycle action is held, released or abandoned: one typed vocabulary for the
//! plan's hook rules, the guard's decision and the act executor's last look. Each reason
//! prints as the words the logs have always carried (`busy`, `held 3600s, upload
//! pending`), and serializes as a tagged value (`{"reason":"busy"}`) for JSON plans.

use crate::domain::{Probe, ProbeFailure};
use crate::jitsi::{BusyStatus, HealthStatus};
use std::fmt;

/// What a probe saw, as a reason quotes it: `Busy/Healthy`, `timeout`, `not probed`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "seen")]
pub enum ProbeSeen {
    Status {
        busy: BusyStatus,
        health: HealthStatus,
    },
    Failed {
        failure: ProbeFailure,
    },
    NotProbed,
}

impl From<&Probe> for ProbeSeen {
    fn from(p: &Probe) -> Self {
        match p {
            Probe::Status(s) => ProbeSeen::Status {
                busy: s.busy,
                health: s.health,
            },
            Probe::Failed(f) => ProbeSeen::Failed { failure: f.clone() },
            Probe::NotProbed => ProbeSeen::NotProbed,
        }
    }
}

impl fmt::Display for ProbeSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeSeen::Status { busy, health } => write!(f, "{busy:?}/{health:?}"),
            ProbeSeen::Failed { failure } => failure.fmt(f),
            ProbeSeen::NotProbed => f.write_str("not probed"),
        }
    }
}

/// Why a lifecycle action is held (heartbeat or wait), released (CONTINUE) or abandoned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum HookReason {
    // --- held: the recorder may be recording, or its recording is not in S3 yet ---
    /// The Jibri answered BUSY.
    Busy,
    /// The uploader's tag: a recording is not yet safely in S3.
    UploadPending,
    /// No status (a timeout, a 500, garbage, no address...): unknown is busy.
    ProbeFailed {
        failure: ProbeFailure,
    },
    NotProbed,
    /// A warm instance about to be terminated answers something: it runs, and may record.
    WarmMayBeRunning {
        seen: ProbeSeen,
    },
    /// A warm instance entering the pool has not answered yet.
    Warming {
        seen: ProbeSeen,
    },
    /// A launch whose recorder has not answered healthy yet.
    Booting {
        waited_s: u64,
        seen: ProbeSeen,
    },
    /// The drain (graceful shutdown) could not be requested: kept, counted as DrainFailed.
    DrainFailed {
        failure: ProbeFailure,
    },
    /// Drained, but the `drain-requested` mark could not be set: a later refusal would
    /// read as unknown.
    DrainNotMarked,
    /// Answers idle without a drain confirmed now (restarted since): drained next time.
    NotDrainedYet,
    /// The last look before a release saw no status.
    Reprobe {
        seen: ProbeSeen,
    },
    /// Past `MAX_HOOK_HOLD_S`, but ABANDON would terminate it (no retain policy).
    NoRetainPolicy {
        held: Box<HookReason>,
    },
    // --- released: nothing records there ---
    NotRecording,
    /// EC2 says the instance is stopped.
    Stopped,
    /// The Jibri answered, not BUSY.
    Answers {
        busy: BusyStatus,
        health: HealthStatus,
    },
    /// Nothing listens (refused at connect, or a warm instance without an address yet).
    NoJibriRunning,
    /// Launch: healthy and idle.
    Ready,
    /// Launch: already recording, so serving.
    AlreadyRecording,
    /// Launch: an upload pending after the wait: in service, where it is guarded.
    UploadPendingInService {
        waited_s: u64,
    },
    /// Launch: unknown after the wait: in service, where unknown is busy and guarded.
    UnknownInService {
        waited_s: u64,
        seen: ProbeSeen,
    },
    // --- abandoned ---
    /// Launch: answers after the wait and is certainly not recording, yet not healthy.
    AnswersNotRecording {
        busy: BusyStatus,
        health: HealthStatus,
        waited_s: u64,
    },
    /// Held for `MAX_HOOK_HOLD_S` (or the launch wait) while this reason stood.
    HeldFor {
        held_s: u64,
        cause: Box<HookReason>,
    },
}

impl HookReason {
    /// Why a probe of a recorder that must not be cut holds its release.
    pub fn unknown(p: &Probe) -> Option<HookReason> {
        match p {
            Probe::Failed(failure) => Some(HookReason::ProbeFailed {
                failure: failure.clone(),
            }),
            Probe::NotProbed => Some(HookReason::NotProbed),
            Probe::Status(_) => None,
        }
    }

    /// This reason, after a hold of `held_s` seconds.
    pub fn held_for(self, held_s: u64) -> HookReason {
        HookReason::HeldFor {
            held_s,
            cause: Box::new(self),
        }
    }
}

impl fmt::Display for HookReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HookReason as R;
        match self {
            R::Busy => f.write_str("busy"),
            R::UploadPending => f.write_str("upload pending"),
            R::ProbeFailed { failure } => write!(f, "probe failed: {failure}"),
            R::NotProbed => f.write_str("not probed"),
            R::WarmMayBeRunning { seen } => {
                write!(f, "warm instance answers ({seen}): may be running")
            }
            R::Warming { seen } => write!(f, "warming: {seen}"),
            R::Booting { waited_s, seen } => write!(f, "booting ({waited_s}s): {seen}"),
            R::DrainFailed { failure } => write!(f, "drain failed: {failure}"),
            R::DrainNotMarked => f.write_str("drain not marked"),
            R::NotDrainedYet => f.write_str("answers again; not drained yet"),
            R::Reprobe { seen } => write!(f, "re-probe {seen}"),
            R::NoRetainPolicy { held } => write!(f, "{held}; no retain policy, held"),
            R::NotRecording => f.write_str("not recording"),
            R::Stopped => f.write_str("instance stopped"),
            R::Answers { busy, health } => write!(f, "{busy:?}/{health:?}: not recording"),
            R::NoJibriRunning => f.write_str("no Jibri running"),
            R::Ready => f.write_str("recorder healthy and idle"),
            R::AlreadyRecording => f.write_str("recorder already recording"),
            R::UploadPendingInService { waited_s } => {
                write!(f, "upload pending after {waited_s}s: in service, guarded")
            }
            R::UnknownInService { waited_s, seen } => {
                write!(f, "unknown after {waited_s}s ({seen}): in service, guarded")
            }
            R::AnswersNotRecording {
                busy,
                health,
                waited_s,
            } => write!(
                f,
                "{busy:?}/{health:?} after {waited_s}s: answers, not recording"
            ),
            R::HeldFor { held_s, cause } => write!(f, "held {held_s}s, {cause}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::probe;

    /// The words the logs, the runbook's queries and the tests read stay what they were.
    #[test]
    fn reasons_print_as_the_logs_always_said() {
        let table: Vec<(HookReason, &str)> = vec![
            (HookReason::Busy, "busy"),
            (
                HookReason::unknown(&probe("timeout")).unwrap(),
                "probe failed: timeout",
            ),
            (
                HookReason::unknown(&Probe::NotProbed).unwrap(),
                "not probed",
            ),
            (
                HookReason::UploadPending.held_for(3600),
                "held 3600s, upload pending",
            ),
            (
                HookReason::Booting {
                    waited_s: 30,
                    seen: ProbeSeen::from(&probe("refused")),
                },
                "booting (30s): refused",
            ),
            (
                HookReason::Answers {
                    busy: BusyStatus::Idle,
                    health: HealthStatus::Healthy,
                },
                "Idle/Healthy: not recording",
            ),
            (
                HookReason::NoRetainPolicy {
                    held: Box::new(HookReason::Busy.held_for(10)),
                },
                "held 10s, busy; no retain policy, held",
            ),
            (
                HookReason::Reprobe {
                    seen: ProbeSeen::from(&probe("timeout")),
                },
                "re-probe timeout",
            ),
        ];
        for (reason, words) in table {
            assert_eq!(reason.to_string(), words);
        }
        assert!(HookReason::unknown(&probe("idle")).is_none());
    }

    #[test]
    fn reasons_serialize_as_tagged_values() {
        let held = HookReason::ProbeFailed {
            failure: ProbeFailure::Timeout,
        }
        .held_for(60);
        assert_eq!(
            serde_json::to_value(&held).unwrap(),
            serde_json::json!({"reason": "held_for", "held_s": 60,
                "cause": {"reason": "probe_failed", "failure": {"kind": "timeout"}}})
        );
    }
}
