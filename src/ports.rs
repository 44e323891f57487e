//! Ports: the narrow traits through which the handlers see AWS, the recorders and Jicofo,
//! in domain words. Each has one real adapter ([`crate::aws`], [`crate::http`]) and one
//! hand-written fake ([`crate::fake`]) that records calls and can inject errors.

use crate::core::state::{PoolState, Versioned};
use crate::domain::{
    EpochSecs, InstanceId, InstanceObservation, LifecycleState, Probe, ProbeFailure,
};
use crate::jitsi::JicofoStats;
use std::future::Future;

/// The act phase's vocabulary, shared with the simulator through the core.
pub use crate::core::act::{ActionRef, LifecycleResult, PortError, PortResult, RecorderAddress};

/// One instance as the Auto Scaling group lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub id: InstanceId,
    /// Parsed once, here at the edge.
    pub lifecycle_state: LifecycleState,
    pub protected_from_scale_in: bool,
}

/// A lifecycle hook of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_TERMINATING` or `autoscaling:EC2_INSTANCE_LAUNCHING`.
    pub transition: String,
    pub heartbeat_timeout_s: u64,
    pub default_result: String,
}

pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";

/// The group as DescribeAutoScalingGroups + DescribeLifecycleHooks report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub new_instances_protected: bool,
    pub retain_on_abandon: bool,
    pub instances: Vec<GroupInstance>,
    pub hooks: Vec<Hook>,
    /// The group has a warm pool (`WarmPoolConfiguration` present).
    pub warm_pool: bool,
}

/// The group's warm pool as DescribeWarmPool reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmPoolSnapshot {
    pub min_size: u32,
    /// `None`: unset (the group's maximum size applies).
    pub max_prepared: Option<u32>,
    pub pool_state: String,
    pub reuse_on_scale_in: bool,
    /// `PendingDelete` while being deleted, else empty.
    pub status: String,
    /// Its instances (`Warmed:*` lifecycle states).
    pub instances: Vec<GroupInstance>,
}

impl GroupSnapshot {
    pub fn hook_for(&self, transition: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.transition == transition)
    }
}

/// EC2 Auto Scaling, as the product uses it.
pub trait AutoScaling: Send + Sync {
    fn describe_group(&self, group: &str)
        -> impl Future<Output = PortResult<GroupSnapshot>> + Send;
    /// Batched by the adapter (at most 50 instances a call, AWS's limit).
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
    /// `None` when the group has no warm pool.
    fn describe_warm_pool(
        &self,
        group: &str,
    ) -> impl Future<Output = PortResult<Option<WarmPoolSnapshot>>> + Send;
    /// `PutWarmPool`: `MinSize` = `MaxGroupPreparedCapacity` = `size`, `PoolState` Stopped,
    /// reuse on scale-in (creates the pool if there is none).
    fn put_warm_pool(&self, group: &str, size: u32) -> impl Future<Output = PortResult<()>> + Send;
}

/// One instance as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub id: InstanceId,
    pub private_ip: Option<String>,
    pub launch_time: Option<EpochSecs>,
    pub upload_pending: bool,
    pub drain_requested: bool,
    pub drain_requested_at: Option<EpochSecs>,
    /// `aws:autoscaling:groupName`, to check an event's claim.
    pub group: Option<String>,
    /// EC2's instance state is `stopped`.
    pub stopped: bool,
    /// `InstanceLifecycle` is `spot`.
    pub spot: bool,
    /// The guard's interruption-notice tag (epoch seconds).
    pub interruption_notice_at: Option<EpochSecs>,
}

impl Ec2Instance {
    /// Where its Jibri answers.
    pub fn address(&self) -> RecorderAddress {
        RecorderAddress {
            id: self.id.clone(),
            private_ip: self.private_ip.clone(),
        }
    }

    /// The instance as the core sees it: what the group says, what EC2 says (if it
    /// answered), what its Jibri said.
    pub fn observe(
        ec2: Option<&Ec2Instance>,
        id: InstanceId,
        lifecycle: LifecycleState,
        protected: bool,
        probe: Probe,
    ) -> InstanceObservation {
        InstanceObservation {
            id,
            lifecycle,
            protected_from_scale_in: protected,
            private_ip: ec2.and_then(|e| e.private_ip.clone()),
            launch_time: ec2.and_then(|e| e.launch_time),
            upload_pending: ec2.is_some_and(|e| e.upload_pending),
            drain_requested: ec2.is_some_and(|e| {
                e.drain_requested
                    && crate::domain::drain_current(e.drain_requested_at, e.launch_time)
            }),
            drain_requested_at: ec2.and_then(|e| e.drain_requested_at).filter(|at| {
                crate::domain::drain_current(Some(*at), ec2.and_then(|e| e.launch_time))
            }),
            stopped: ec2.is_some_and(|e| e.stopped),
            interruption_notice_at: ec2.and_then(|e| e.interruption_notice_at),
            probe,
        }
    }
}

/// The instance tags shared with the recorder's uploader: defined once, in the core.
pub use crate::domain::{TAG_DRAIN_REQUESTED, TAG_INTERRUPTION_NOTICE, TAG_UPLOAD_PENDING};

/// EC2, read-mostly.
pub trait Ec2: Send + Sync {
    /// Batched by the adapter; unknown ids are simply absent.
    fn describe(
        &self,
        ids: &[InstanceId],
    ) -> impl Future<Output = PortResult<Vec<Ec2Instance>>> + Send;
    /// Every instance tagged `aws:autoscaling:groupName` = `group`: needs no instance list,
    /// so it runs concurrently with the group's own describe.
    fn describe_group_members(
        &self,
        group: &str,
    ) -> impl Future<Output = PortResult<Vec<Ec2Instance>>> + Send;
    fn mark_drain_requested(
        &self,
        ids: &[InstanceId],
        at: EpochSecs,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Deletes the `drain-requested` tag (an undrained bridge): a later drain dates anew.
    fn clear_drain_requested(
        &self,
        ids: &[InstanceId],
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Tags the instance with the time of its Spot interruption warning.
    fn mark_interruption_notice(
        &self,
        id: &InstanceId,
        at: EpochSecs,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// `ModifyInstanceAttribute DisableApiTermination`: refuses a direct
    /// `TerminateInstances`; Auto Scaling's own terminations are not affected.
    fn set_termination_protection(
        &self,
        id: &InstanceId,
        on: bool,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// The Jibri APIs of the recorders.
pub trait Recorders: Send + Sync {
    /// Never fails: a failure is a [`Probe::Failed`], which the core treats as busy.
    fn probe(&self, r: &RecorderAddress) -> impl Future<Output = Probe> + Send;
    /// Stops new work landing on the instance: Jibri's `gracefulShutdown`; a bridge's drain.
    fn graceful_shutdown(
        &self,
        r: &RecorderAddress,
    ) -> impl Future<Output = Result<(), ProbeFailure>> + Send;
    /// A bridge pool: undrains a bridge. Nothing else can be undrained: the default refuses.
    fn undrain(
        &self,
        r: &RecorderAddress,
    ) -> impl Future<Output = Result<(), ProbeFailure>> + Send {
        let _ = r;
        std::future::ready(Err(ProbeFailure::Transport(
            "undrain: not supported by this adapter".into(),
        )))
    }
}

/// Jicofo's REST API.
pub trait Jicofo: Send + Sync {
    fn stats(&self, url: &str) -> impl Future<Output = Result<JicofoStats, String>> + Send;
}

/// Durable controller state with compare-and-swap writes.
pub trait StateStore: Send + Sync {
    fn load(&self, group: &str) -> impl Future<Output = PortResult<Versioned>> + Send;
    /// Writes iff the stored version is still `etag` (`None`: iff there is none);
    /// [`PortError::Conflict`] otherwise. Returns the new version.
    fn save(
        &self,
        group: &str,
        state: &PoolState,
        etag: Option<&str>,
    ) -> impl Future<Output = PortResult<String>> + Send;
}

/// One metric datapoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

pub trait MetricsSink: Send + Sync {
    fn emit(
        &self,
        group: &str,
        metrics: &[Metric],
        at: EpochSecs,
    ) -> impl Future<Output = PortResult<()>> + Send;
}
