//! Domain types: what one tick observes about a pool, in the product's own words.
//!
//! SDK and wire types are converted into these at the edge (adapters), once, so the
//! decision core sees nothing but data.

use crate::jitsi::{JibriStatus, JicofoStats};
use std::fmt;

/// Tag set by the recorder's uploader (jibri-finalize) while any session is not safely in
/// S3; the controller and the guard never release an instance that carries it. One
/// definition for both sides: the uploader depends on this crate for it.
pub const TAG_UPLOAD_PENDING: &str = "jibri-autoscaler:upload-pending";
/// Tag set by this product once a recorder's drain (`gracefulShutdown`) answered 2xx; its
/// value is the time, in epoch seconds.
pub const TAG_DRAIN_REQUESTED: &str = "jibri-autoscaler:drain-requested";
/// Tag set by the guard when EC2 sent the instance's Spot interruption warning; its value
/// is the warning's time, in epoch seconds.
pub const TAG_INTERRUPTION_NOTICE: &str = "jibri-autoscaler:interruption-notice";
/// How long after a Spot interruption warning an instance is counted as leaving: EC2
/// interrupts two minutes after the warning; past this window the warning was not
/// followed (a replayed event, a best-effort notice that did not come true).
pub const INTERRUPTION_WINDOW_S: u64 = 600;

/// Seconds since the Unix epoch. The core never reads a clock: time is a parameter.
pub type EpochSecs = u64;

/// An EC2 instance id, e.g. `i-0123456789abcdef0`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct InstanceId(pub String);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        InstanceId(s.to_string())
    }
}

/// An Auto Scaling instance lifecycle state (`LifecycleState` in DescribeAutoScalingGroups).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LifecycleState {
    Pending,
    PendingWait,
    PendingProceed,
    InService,
    TerminatingWait,
    TerminatingProceed,
    /// Kept by the instance lifecycle policy after an abandoned terminate hook;
    /// outside desired capacity until `TerminateInstanceInAutoScalingGroup`.
    TerminatingRetained,
    Terminating,
    Terminated,
    Standby,
    /// Warm pool: launched into the pool, its launch hook held (`Warmed:Pending:Wait`).
    WarmedPendingWait,
    /// Warm pool: leaving the pool for termination, its terminate hook held.
    WarmedTerminatingWait,
    /// Warm pool: an abandoned launch-into-the-pool action kept by the retain policy.
    WarmedPendingRetained,
    /// Warm pool: an abandoned terminate action kept by the retain policy.
    WarmedTerminatingRetained,
    /// Warm and ready to be started by a scale-out.
    WarmedStopped,
    WarmedRunning,
    WarmedHibernated,
    /// Any other warm-pool, detaching or future state, kept verbatim.
    Other(String),
}

impl LifecycleState {
    pub fn parse(s: &str) -> Self {
        match s {
            "Pending" => Self::Pending,
            "Pending:Wait" => Self::PendingWait,
            "Pending:Proceed" => Self::PendingProceed,
            "InService" => Self::InService,
            "Terminating:Wait" => Self::TerminatingWait,
            "Terminating:Proceed" => Self::TerminatingProceed,
            "Terminating:Retained" => Self::TerminatingRetained,
            "Terminating" => Self::Terminating,
            "Terminated" => Self::Terminated,
            "Standby" => Self::Standby,
            "Warmed:Pending:Wait" => Self::WarmedPendingWait,
            "Warmed:Terminating:Wait" => Self::WarmedTerminatingWait,
            "Warmed:Pending:Retained" => Self::WarmedPendingRetained,
            "Warmed:Terminating:Retained" => Self::WarmedTerminatingRetained,
            "Warmed:Stopped" => Self::WarmedStopped,
            "Warmed:Running" => Self::WarmedRunning,
            "Warmed:Hibernated" => Self::WarmedHibernated,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::PendingWait => "Pending:Wait",
            Self::PendingProceed => "Pending:Proceed",
            Self::InService => "InService",
            Self::TerminatingWait => "Terminating:Wait",
            Self::TerminatingProceed => "Terminating:Proceed",
            Self::TerminatingRetained => "Terminating:Retained",
            Self::Terminating => "Terminating",
            Self::Terminated => "Terminated",
            Self::Standby => "Standby",
            Self::WarmedPendingWait => "Warmed:Pending:Wait",
            Self::WarmedTerminatingWait => "Warmed:Terminating:Wait",
            Self::WarmedPendingRetained => "Warmed:Pending:Retained",
            Self::WarmedTerminatingRetained => "Warmed:Terminating:Retained",
            Self::WarmedStopped => "Warmed:Stopped",
            Self::WarmedRunning => "Warmed:Running",
            Self::WarmedHibernated => "Warmed:Hibernated",
            Self::Other(s) => s,
        }
    }

    /// Launching: counts toward desired capacity and will be a spare once booted.
    pub fn is_launching(&self) -> bool {
        matches!(
            self,
            Self::Pending | Self::PendingWait | Self::PendingProceed
        )
    }

    /// In the group's warm pool (`Warmed:*`): not in the desired capacity.
    pub fn is_warmed(&self) -> bool {
        self.as_str().starts_with("Warmed:")
    }

    /// Warm and ready to be started by a scale-out (`Warmed:Stopped|Running|Hibernated`).
    pub fn is_warm_ready(&self) -> bool {
        matches!(
            self,
            Self::WarmedStopped | Self::WarmedRunning | Self::WarmedHibernated
        )
    }

    /// Kept by the group's retain policy after an abandoned action (`*:Retained`):
    /// running, outside the desired capacity and the warm pool's count.
    pub fn is_retained(&self) -> bool {
        matches!(
            self,
            Self::TerminatingRetained
                | Self::WarmedPendingRetained
                | Self::WarmedTerminatingRetained
        )
    }

    /// A lifecycle hook holds the instance (`*:Wait`).
    pub fn is_wait(&self) -> bool {
        matches!(
            self,
            Self::PendingWait
                | Self::TerminatingWait
                | Self::WarmedPendingWait
                | Self::WarmedTerminatingWait
        )
    }
}

/// Why a probe of a recorder gave no status. All of them mean "treat as busy".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ProbeFailure {
    /// No answer within the probe timeout (hung process, dropped packets).
    Timeout,
    /// Connection refused or reset: nothing listens. After a graceful shutdown was
    /// requested this is how a Jibri that finished and exited looks.
    Refused,
    /// An HTTP status other than 200 (Jibri's health always answers 200).
    HttpStatus(u16),
    /// A 200 whose body is not Jibri's health document.
    Garbage(String),
    /// A body larger than the configured cap.
    TooLarge,
    /// The instance has no private IP (or the URL template could not be filled).
    NoAddress,
    /// Any other transport error.
    Transport(String),
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timeout"),
            Self::Refused => f.write_str("refused"),
            Self::HttpStatus(s) => write!(f, "http {s}"),
            Self::Garbage(e) => write!(f, "garbage body ({e})"),
            Self::TooLarge => f.write_str("body too large"),
            Self::NoAddress => f.write_str("no address"),
            Self::Transport(e) => write!(f, "transport ({e})"),
        }
    }
}

/// Whether a `drain-requested` tag still applies: EC2 keeps tags across a stop and start,
/// so a tag older than the instance's last start (a warm-pool instance started again) is
/// stale: that Jibri was restarted and never asked to drain.
pub fn drain_current(tag_at: Option<EpochSecs>, last_start: Option<EpochSecs>) -> bool {
    match (tag_at, last_start) {
        (Some(at), Some(start)) => at >= start,
        _ => true,
    }
}

/// The result of asking one Jibri for its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    NotProbed,
    Status(JibriStatus),
    Failed(ProbeFailure),
}

impl Probe {
    /// The Jibri answered BUSY (a recording, or its finalize, is running).
    pub fn is_busy(&self) -> bool {
        matches!(self, Probe::Status(s) if s.busy == crate::jitsi::BusyStatus::Busy)
    }
}

/// One instance of the group, as EC2 Auto Scaling, EC2 and its Jibri describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceObservation {
    pub id: InstanceId,
    pub lifecycle: LifecycleState,
    pub protected_from_scale_in: bool,
    pub private_ip: Option<String>,
    pub launch_time: Option<EpochSecs>,
    /// The recorder's uploader has sessions not yet safely in S3 (instance tag).
    pub upload_pending: bool,
    /// A graceful shutdown was requested earlier (instance tag set by this product).
    pub drain_requested: bool,
    /// When it was requested (the tag's value): for a held hook, when holding began.
    pub drain_requested_at: Option<EpochSecs>,
    /// EC2 reports the instance `stopped` (a warm-pool instance): nothing on it runs. A
    /// stopped instance's address answers nothing (a timeout), which alone would read as
    /// unknown.
    pub stopped: bool,
    /// EC2 sent this instance's Spot interruption warning at this time (instance tag set
    /// by the guard): it leaves within two minutes whatever the hooks say.
    pub interruption_notice_at: Option<EpochSecs>,
    pub probe: Probe,
}

/// The group's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupObservation {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub new_instances_protected: bool,
    /// Instance lifecycle policy `TerminateHookAbandon = retain`.
    pub retain_on_abandon: bool,
}

/// What the Jicofo shards said this tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JicofoObservation {
    /// Summed over the shards that answered.
    pub stats: JicofoStats,
    pub shards_configured: usize,
    pub shards_failed: usize,
}

impl JicofoObservation {
    /// Every configured shard answered (vacuously true when none is configured).
    pub fn complete(&self) -> bool {
        self.shards_failed == 0
    }
}

/// The group's warm pool (DescribeWarmPool), when it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmPoolObservation {
    pub min_size: u32,
    /// `None`: unset (AWS then uses the group's maximum size).
    pub max_prepared: Option<u32>,
    /// `Stopped`, `Running` or `Hibernated`.
    pub pool_state: String,
    pub reuse_on_scale_in: bool,
    /// `PendingDelete` while being deleted; empty otherwise.
    pub status: String,
    /// Its instances, every one in a `Warmed:*` state.
    pub instances: Vec<InstanceObservation>,
}

impl WarmPoolObservation {
    /// The pool's size as AWS keeps it: `max(MinSize, MaxGroupPreparedCapacity - desired)`.
    pub fn size_for(&self, group_max: u32, desired: u32) -> u32 {
        self.min_size.max(
            self.max_prepared
                .unwrap_or(group_max)
                .saturating_sub(desired),
        )
    }

    /// Instances a scale-out can start now.
    pub fn ready(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| i.lifecycle.is_warm_ready())
            .count() as u32
    }
}

/// A drift of the group's safety configuration (see `jibri_autoscaler::safety`): while any is
/// present the controller removes nothing. Each says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "drift")]
pub enum ConfigDrift {
    /// No hook of that name: events of other hooks are never ours, and nothing guards a
    /// termination.
    TerminateHookMissing { name: String, others: Vec<String> },
    /// The hook of that name is not on `autoscaling:EC2_INSTANCE_TERMINATING`.
    TerminateHookWrongTransition { name: String, transition: String },
    /// A hold that times out would CONTINUE: a busy recorder is then terminated.
    DefaultResultNotAbandon { name: String, found: String },
    /// Heartbeats would come after the hook timed out.
    HeartbeatTooRare {
        interval_s: u64,
        hook_timeout_s: u64,
    },
    /// AWS ends a hold at min(48 h, 100 × HeartbeatTimeout), before `MAX_HOOK_HOLD_S`.
    HoldBeyondAwsCap { max_hold_s: u64, cap_s: u64 },
    /// No instance lifecycle policy `TerminateHookAbandon = retain`: ABANDON terminates.
    NoRetainOnAbandon,
}

impl fmt::Display for ConfigDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TerminateHookMissing { name, others } => write!(
                f,
                "the group has no terminate hook named {name:?} (hooks: {others:?}); fix: create it (DefaultResult ABANDON) or set TERMINATE_HOOK_NAME to ours"
            ),
            Self::TerminateHookWrongTransition { name, transition } => write!(
                f,
                "hook {name:?} is on {transition}, not autoscaling:EC2_INSTANCE_TERMINATING; fix: recreate it on the terminating transition"
            ),
            Self::DefaultResultNotAbandon { name, found } => write!(
                f,
                "hook {name:?} has DefaultResult {found}; fix: aws autoscaling put-lifecycle-hook ... --default-result ABANDON"
            ),
            Self::HeartbeatTooRare { interval_s, hook_timeout_s } => write!(
                f,
                "HEARTBEAT_INTERVAL_S {interval_s} is not below the hook's HeartbeatTimeout {hook_timeout_s}; fix: lower HEARTBEAT_INTERVAL_S or raise the hook's --heartbeat-timeout"
            ),
            Self::HoldBeyondAwsCap { max_hold_s, cap_s } => write!(
                f,
                "MAX_HOOK_HOLD_S {max_hold_s} exceeds AWS's hold limit {cap_s} (min of 48 h and 100 x HeartbeatTimeout); fix: lower MAX_HOOK_HOLD_S or raise the hook's HeartbeatTimeout"
            ),
            Self::NoRetainOnAbandon => f.write_str(
                "the group has no instance lifecycle policy TerminateHookAbandon=retain, so ABANDON terminates; fix: aws autoscaling update-auto-scaling-group ... --instance-lifecycle-policy RetentionTriggers={TerminateHookAbandon=retain}",
            ),
        }
    }
}

/// Everything one tick knows, plus the durable state carried from earlier ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub group: GroupObservation,
    pub instances: Vec<InstanceObservation>,
    pub jicofo: JicofoObservation,
    /// `None`: the group has no warm pool (or it was not read).
    pub warm_pool: Option<WarmPoolObservation>,
    /// The group's safety configuration as checked this tick: any drift forbids removals.
    pub config_drift: Vec<ConfigDrift>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SDK strings are parsed once at the edge: every state AWS documents round-trips, and
    /// an unknown one is kept verbatim (never mistaken for a known one).
    #[test]
    fn lifecycle_states_round_trip_and_classify() {
        let known = [
            "Pending",
            "Pending:Wait",
            "Pending:Proceed",
            "InService",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminating:Retained",
            "Terminating",
            "Terminated",
            "Standby",
            "Warmed:Pending:Wait",
            "Warmed:Terminating:Wait",
            "Warmed:Pending:Retained",
            "Warmed:Terminating:Retained",
            "Warmed:Stopped",
            "Warmed:Running",
            "Warmed:Hibernated",
        ];
        for s in known {
            let l = LifecycleState::parse(s);
            assert!(!matches!(l, LifecycleState::Other(_)), "{s}");
            assert_eq!(l.as_str(), s);
        }
        assert_eq!(
            LifecycleState::parse("Warmed:Pending"),
            LifecycleState::Other("Warmed:Pending".into())
        );
        let retained: Vec<_> = known
            .iter()
            .filter(|s| LifecycleState::parse(s).is_retained())
            .collect();
        assert_eq!(
            retained,
            [
                &"Terminating:Retained",
                &"Warmed:Pending:Retained",
                &"Warmed:Terminating:Retained"
            ]
        );
        let wait: Vec<_> = known
            .iter()
            .filter(|s| LifecycleState::parse(s).is_wait())
            .collect();
        assert_eq!(wait.len(), 4);
        assert!(wait.iter().all(|s| s.ends_with(":Wait")));
        assert!(LifecycleState::parse("Warmed:Hibernated").is_warm_ready());
        assert!(LifecycleState::parse("Warmed:Pending").is_warmed());
    }
}
