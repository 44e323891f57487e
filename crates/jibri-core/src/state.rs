//! The controller's durable state: what must outlive one invocation.
//!
//! Stored as one JSON object per pool in S3 and written with a conditional PUT
//! (`If-Match` the ETag read at the start of the tick), which doubles as the lease:
//! of two overlapping ticks only the one whose write lands may act. Per-instance marks
//! that must follow the instance (upload pending, drain requested) are EC2 tags instead,
//! so they vanish with it. Everything here is rebuilt from the observation every tick:
//! entries for instances that left are dropped (level-triggered, no stale marks).

use crate::domain::{EpochSecs, InstanceId};
use crate::forecast::Demand;
use std::collections::{BTreeMap, BTreeSet};

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PoolState {
    pub version: u32,
    /// When each healthy idle recorder was first seen idle.
    pub idle_since: BTreeMap<InstanceId, EpochSecs>,
    /// When each UNHEALTHY, EXPIRED or unreachable recorder was first seen so.
    pub troubled_since: BTreeMap<InstanceId, EpochSecs>,
    /// Terminate hooks being held (instance in `Terminating:Wait`).
    pub held: BTreeMap<InstanceId, HeldHook>,
    /// Launch hooks seen (instance in `Pending:Wait`), with when first seen.
    pub launching: BTreeMap<InstanceId, EpochSecs>,
    /// Recorders seen BUSY at the last tick: one BUSY now and not then is a new start.
    /// (Unknown recorders are treated as busy for safety, but never counted as demand.)
    pub busy: BTreeSet<InstanceId>,
    /// In-service instances: since when, and whether their Jibri ever answered. One that
    /// never answered since it went in service is booting, not busy, for a while.
    pub in_service: BTreeMap<InstanceId, Seen>,
    /// Spare targets of recent ticks `(time, target)`: scale-in honours the highest of the
    /// short window, so a target that dips for a tick does not remove what the next adds back.
    pub recent_targets: Vec<(EpochSecs, u32)>,
    /// Jicofo's summed failure counters at the last tick that read them.
    pub jicofo_failures_total: Option<u64>,
    /// Recording starts (new busy + refused) per minute: `(minute start, count)`.
    pub starts: Vec<(EpochSecs, u32)>,
    /// Learned demand: starts by hour of week and minute of hour (see `core::forecast`).
    pub demand: Demand,
    /// Jicofo's summed conference count at the last tick that read it.
    pub conferences: Option<u64>,
    /// When Jicofo last refused a recording (the burst is seen).
    pub refused_at: Option<EpochSecs>,
    /// Boot clocks of instances on their way up: when they started, and from where.
    pub booting: BTreeMap<InstanceId, BootClock>,
    /// Boot latencies measured on this pool.
    pub boot: BootStats,
    /// Warm-pool instances seen at the last tick, and when first seen there.
    pub warm: BTreeMap<InstanceId, EpochSecs>,
    /// Instances scaled in back into the warm pool: their `Warmed:Pending:Wait` is an action
    /// of the terminate hook (AWS), judged like a termination.
    pub returning: BTreeSet<InstanceId>,
    /// Warm-pool size targets of recent ticks: the pool shrinks only below the highest.
    pub warm_targets: Vec<(EpochSecs, u32)>,
    /// Instances whose EC2 termination protection (`DisableApiTermination`) this product
    /// turned on, because they were recording or uploading.
    pub api_protected: BTreeSet<InstanceId>,
    /// A bridge pool: since when its mean stress has been below `JVB_STRESS_LOW` (the
    /// scale-in window). Never set for recorders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stress_low_since: Option<EpochSecs>,
    /// A bridge pool: Jicofo's `total_conferences_created` at the last tick that read it
    /// (the conference starts `demand` learns are its increments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conferences_created: Option<u64>,
    /// A bridge pool: the stress one conference adds, learned (thousandths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stress_per_conference_milli: Option<u32>,
    /// Set once a tick has written this state; a fresh pool has no busy baseline.
    pub initialized: bool,
    /// The tick that is acting now, until when. Another tick that finds an unexpired lease
    /// observes and reports but does not act (see the README, "State and the lease").
    pub lease: Option<Lease>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub holder: String,
    pub until: EpochSecs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seen {
    pub since: EpochSecs,
    pub answered: bool,
}

/// When an instance began its way to service, and whether from the warm pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BootClock {
    pub since: EpochSecs,
    pub warm: bool,
}

/// Measured boot latencies (seconds from launch or warm start to the Jibri's first answer,
/// at the controller's tick resolution), cold and warm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BootStats {
    pub cold: Latency,
    pub warm: Latency,
}

/// A running estimate: a mean and a high mark (an upper quantile, about the 90th).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Latency {
    pub samples: u32,
    pub mean_s: u32,
    pub high_s: u32,
}

impl Latency {
    /// Samples needed before the measurement replaces the configured latency.
    pub const TRUSTED_AFTER: u32 = 3;

    pub fn add(&mut self, s: u64) {
        let s = s.min(u64::from(u32::MAX)) as f64;
        if self.samples == 0 {
            self.mean_s = s as u32;
            self.high_s = s as u32;
        } else {
            let (mean, high) = (f64::from(self.mean_s), f64::from(self.high_s));
            self.mean_s = (mean + 0.2 * (s - mean)).round() as u32;
            // An asymmetric step: up fast on a slow boot, down slowly (~90th percentile).
            let step = if s > high { 0.5 } else { 0.05 };
            self.high_s = (high + step * (s - high)).round() as u32;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The latency to plan with: the high mark once trusted, else `configured`.
    pub fn or(&self, configured: u64) -> u64 {
        if self.samples >= Self::TRUSTED_AFTER {
            u64::from(self.high_s)
        } else {
            configured
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldHook {
    pub since: EpochSecs,
    pub last_heartbeat: Option<EpochSecs>,
}

/// The state as read from the store, with the version tag a conditional write needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub state: PoolState,
    /// `None`: no object yet (write with `If-None-Match: *`).
    pub etag: Option<String>,
}
