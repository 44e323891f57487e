//! The emulated world as plain data: Jicofo shards, Jibri recorders, and the transitions between
//! their states as Jibri and Jicofo make them. No I/O and no clock, so every rule is unit-tested.
//!
//! Facts this follows (jibri `JibriManager.kt`, `Main.kt`, `JibriStatusExts.kt`; jicofo
//! `JibriDetector.kt`, `JibriSession.java`, `JibriStats.kt`, `BaseBrewery.java`, 2026):
//! - a Jibri is BUSY from the start of a session until its finalize script has exited;
//! - in single-use mode it then says EXPIRED and never IDLE again; EXPIRED is not sent to the
//!   brewery MUC, so Jicofo keeps its last presence (BUSY);
//! - `gracefulShutdown` runs "when idle": an idle Jibri exits at once, a busy one exits right after
//!   its session and finalize, before it would publish IDLE;
//! - `shutdown` stops the session (finalize still runs), then exits (code 255, no restart);
//! - Jicofo counts every Jibri in the brewery and calls "available" those whose presence says
//!   healthy and idle; a recording request with none available fails and is counted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::fault::{Fault, FaultKind};

/// The shard every recorder joins unless told otherwise; `GET /jicofo/stats` reads it.
pub const DEFAULT_SHARD: &str = "default";

/// `environmentContext.name` a busy Jibri reports unless set (as in `jibri-health-busy.json`).
pub const DEFAULT_ENVIRONMENT: &str = "prod-xmpp.meet.example.com";

/// Jicofo's `jicofo.jibri.num-retries` default (jicofo `reference.conf`): how many times a
/// recording session is moved to another Jibri after its Jibri fails before Jicofo gives up.
pub const JICOFO_MAX_RETRIES: u32 = 5;

/// Jibri's `busyStatus` (jibri `ComponentBusyStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BusyStatus {
    Idle,
    Busy,
    Expired,
}

impl BusyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BusyStatus::Idle => "IDLE",
            BusyStatus::Busy => "BUSY",
            BusyStatus::Expired => "EXPIRED",
        }
    }
}

/// Jibri's `healthStatus` (jibri `ComponentHealthStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
        }
    }
}

/// Where a recorder is in its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// No session (IDLE, or EXPIRED after its one session in single-use mode).
    Idle,
    /// Recording a conference.
    Recording,
    /// The session was stopped and the finalize script runs; the Jibri still says BUSY.
    Finalizing,
}

/// The requests one recorder has received on its Jibri paths, whatever was answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecorderCalls {
    pub health: u64,
    pub graceful_shutdown: u64,
    pub shutdown: u64,
}

/// Which Jibri endpoint a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecorderCall {
    Health,
    GracefulShutdown,
    Shutdown,
}

/// The requests one shard has received on its Jicofo paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCalls {
    pub stats: u64,
    pub health: u64,
    pub version: u64,
    pub metrics: u64,
}

/// Which Jicofo endpoint a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardCall {
    Stats,
    Health,
    Version,
    Metrics,
}

/// Why a control operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("no recorder {0:?}")]
    UnknownRecorder(String),
    #[error("no Jicofo shard {0:?}")]
    UnknownShard(String),
    #[error("recorder {0:?} is gone (its Jibri exited); restart it first")]
    Gone(String),
    #[error("recorder {0:?} is busy")]
    Busy(String),
    #[error("recorder {0:?} is expired (single-use); restart it first")]
    Expired(String),
    #[error("no Jibri available on shard {0:?}: the recording request was refused")]
    NoJibriAvailable(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("no bridge {0:?}")]
    UnknownBridge(String),
    #[error("no conference {0:?}")]
    UnknownConference(String),
    #[error("no bridge available on shard {0:?}: the conference was refused")]
    NoBridgeAvailable(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// One emulated Jibri.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorder {
    pub(crate) id: String,
    pub(crate) shard: String,
    pub(crate) phase: Phase,
    /// Single-use Jibri after its one session: says EXPIRED, never IDLE again.
    pub(crate) expired: bool,
    pub(crate) health: HealthStatus,
    /// In the brewery MUC (a Jibri that lost XMPP is alive but not registered).
    pub(crate) registered: bool,
    pub(crate) single_use: bool,
    pub(crate) finalize_ms: u64,
    pub(crate) environment: String,
    /// A graceful shutdown or shutdown is pending: the process exits when the session is done.
    pub(crate) exit_pending: bool,
    /// The Jibri process has exited.
    pub(crate) gone: bool,
    pub(crate) fault: Fault,
    pub(crate) calls: RecorderCalls,
    /// Created or adopted by the ASG follower (removed when its instance leaves the group).
    pub(crate) followed: bool,
    /// Bumped whenever a finalize starts or the recorder is reset, so stale finalize timers are
    /// recognised and ignored.
    pub(crate) generation: u64,
    /// Its instance's private IP (in 127.0.0.0/8 on the test bed): while its Jibri runs, the
    /// emulator listens there as the real process would, and refuses at connect once it exited.
    pub(crate) address: Option<Ipv4Addr>,
}

impl Recorder {
    fn new(id: &str, shard: &str) -> Self {
        Recorder {
            id: id.to_owned(),
            shard: shard.to_owned(),
            phase: Phase::Idle,
            expired: false,
            health: HealthStatus::Healthy,
            registered: true,
            single_use: false,
            finalize_ms: 0,
            environment: DEFAULT_ENVIRONMENT.to_owned(),
            exit_pending: false,
            gone: false,
            fault: Fault::NONE,
            calls: RecorderCalls::default(),
            followed: false,
            generation: 0,
            address: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// The private IP its Jibri listens on, if it has one.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.address
    }

    /// Whether its own listener should accept connections: it has an address and its Jibri
    /// runs (a process that is not there refuses at connect), unless a fault says otherwise:
    /// `refused` closes it; a fault that answers in its own way (`hang`, `http500`, `garbage`,
    /// `huge`, `reset`) applies even after the Jibri exited, as on the path-routed listener
    /// (something still holds the port: a stuck process, a proxy).
    pub fn listens(&self) -> bool {
        self.address.is_some()
            && match self.fault.kind {
                FaultKind::Refused => false,
                FaultKind::None | FaultKind::Slow => !self.gone,
                FaultKind::Hang
                | FaultKind::Http500
                | FaultKind::Garbage
                | FaultKind::Huge
                | FaultKind::Reset => true,
            }
    }

    pub fn health(&self) -> HealthStatus {
        self.health
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The `busyStatus` its health endpoint reports.
    pub fn busy_status(&self) -> BusyStatus {
        match (self.phase, self.expired) {
            (Phase::Recording | Phase::Finalizing, _) => BusyStatus::Busy,
            (Phase::Idle, true) => BusyStatus::Expired,
            (Phase::Idle, false) => BusyStatus::Idle,
        }
    }

    /// In its shard's brewery MUC, as Jicofo counts it.
    pub fn in_brewery(&self) -> bool {
        self.registered && !self.gone
    }

    /// What Jicofo calls available: in the brewery and its presence says healthy and idle.
    /// (EXPIRED is never published to the MUC, so an expired Jibri's presence still says BUSY.)
    pub fn available(&self) -> bool {
        self.in_brewery()
            && self.health == HealthStatus::Healthy
            && self.busy_status() == BusyStatus::Idle
    }

    /// A serialisable snapshot.
    pub fn view(&self) -> RecorderView {
        RecorderView {
            id: self.id.clone(),
            shard: self.shard.clone(),
            status: self.busy_status(),
            health: self.health,
            phase: self.phase,
            registered: self.registered,
            gone: self.gone,
            in_brewery: self.in_brewery(),
            available: self.available(),
            exit_pending: self.exit_pending,
            single_use: self.single_use,
            finalize_ms: self.finalize_ms,
            environment: self.environment.clone(),
            fault: self.fault,
            calls: self.calls,
            followed: self.followed,
            address: self.address.map(|a| a.to_string()),
        }
    }
}

/// A recorder as the control API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecorderView {
    pub id: String,
    pub shard: String,
    /// `busyStatus` as its health endpoint reports it.
    pub status: BusyStatus,
    pub health: HealthStatus,
    pub phase: Phase,
    pub registered: bool,
    /// Its Jibri process has exited (health requests are reset).
    pub gone: bool,
    /// Counted by Jicofo (`jibri_detector.count`).
    pub in_brewery: bool,
    /// Counted as available by Jicofo (`jibri_detector.available`).
    pub available: bool,
    /// A (graceful) shutdown is pending: it exits when its session and finalize are done.
    pub exit_pending: bool,
    pub single_use: bool,
    pub finalize_ms: u64,
    pub environment: String,
    pub fault: Fault,
    pub calls: RecorderCalls,
    pub followed: bool,
    /// The private IP its Jibri listens on (the bed's Jibri port), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `PUT /control/recorders/{id}`: every field optional; absent fields keep their value (or the
/// default on creation: shard `default`, IDLE, HEALTHY, registered, not single-use, finalize 0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// IDLE ends any session quietly; BUSY starts one if idle; EXPIRED ends it and expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BusyStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_use: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalize_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Its instance's private IP, which must be in 127.0.0.0/8: its Jibri then also listens at
    /// `address:{jibri port}` as a real one does (and refuses at connect once it exited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// One Jicofo recording session, as Jicofo tracks it (`JibriSession`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    recorder: String,
    /// `JibriSession.numRetries`: how many times it was moved to another Jibri.
    retries: u32,
}

/// One emulated Jicofo (a shard).
#[derive(Clone, Debug, PartialEq)]
pub struct Shard {
    pub(crate) name: String,
    /// Render stats as old Jicofo builds did (no `jibri_detector`, `null` for `"NaN"`).
    pub(crate) legacy: bool,
    /// What `/about/health` answers.
    pub(crate) healthy: bool,
    /// Append the health-check block Jicofo writes when `jicofo.health.enabled` is on.
    pub(crate) stats_health: bool,
    pub(crate) fault: Fault,
    /// Current conferences by participant count (as given; Jicofo counts a 0 as 1).
    pub(crate) conference_sizes: Vec<u32>,
    pub(crate) total_conferences_created: u64,
    pub(crate) total_participants: u64,
    sessions: Vec<Session>,
    pub(crate) recording_failures: u64,
    pub(crate) no_instance_failures: u64,
    pub(crate) calls: ShardCalls,
    /// A bridge was on this shard once: `/stats` then reports the bridge selector as modelled
    /// (before, the fixture's fixed block, so a Jibri-only shard is the fixture byte for byte).
    pub(crate) bridges_seen: bool,
    /// Bridges that left the brewery outside graceful shutdown (`lost_bridges`).
    pub(crate) lost_bridges: u64,
    /// Conferences no bridge could host.
    pub(crate) conference_failures: u64,
}

impl Shard {
    fn new(name: &str) -> Self {
        Shard {
            name: name.to_owned(),
            legacy: false,
            healthy: true,
            stats_health: false,
            fault: Fault::NONE,
            conference_sizes: Vec::new(),
            total_conferences_created: 0,
            total_participants: 0,
            sessions: Vec::new(),
            recording_failures: 0,
            no_instance_failures: 0,
            calls: ShardCalls::default(),
            bridges_seen: false,
            lost_bridges: 0,
            conference_failures: 0,
        }
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Conference sizes as Jicofo's `FocusManager.updateMetrics` counts them: a conference whose
    /// participant count is 0 counts as 1 (someone is waiting in it).
    pub fn counted_sizes(&self) -> Vec<u64> {
        self.conference_sizes
            .iter()
            .map(|&s| u64::from(s.max(1)))
            .collect()
    }
}

/// A shard as the control API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardView {
    pub name: String,
    pub legacy: bool,
    pub healthy: bool,
    pub stats_health: bool,
    pub fault: Fault,
    pub conferences: u64,
    pub participants: u64,
    pub conference_sizes: Vec<u32>,
    pub total_conferences_created: u64,
    pub total_participants: u64,
    pub jibri_count: u64,
    pub jibri_available: u64,
    pub recording_active: u64,
    /// Recorders serving Jicofo's active recording sessions.
    pub sessions: Vec<String>,
    pub total_recording_failures: u64,
    pub no_instance_failures: u64,
    pub calls: ShardCalls,
    /// Conferences refused for want of a bridge.
    #[serde(default)]
    pub conference_failures: u64,
    /// Bridges lost (left outside graceful shutdown), as Jicofo's `lost_bridges`.
    #[serde(default)]
    pub lost_bridges: u64,
}

/// `PUT /control/jicofo/{shard}`: every field optional. `conferences` + `participants` spread
/// the participants evenly; `conference_sizes` gives each conference's size instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conferences: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference_sizes: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_health: Option<bool>,
}

/// Everything Jicofo's `/stats` and `/metrics` of one shard are computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct JicofoSnapshot {
    pub legacy: bool,
    pub healthy: bool,
    pub stats_health: bool,
    /// Conference sizes as counted (each at least 1).
    pub conference_sizes: Vec<u64>,
    pub total_conferences_created: u64,
    pub total_participants: u64,
    pub jibri_count: u64,
    pub jibri_available: u64,
    pub recording_active: u64,
    pub recording_failures: u64,
    pub no_instance_failures: u64,
    /// When Jicofo registered its metrics (ms since the epoch): the `_created` samples.
    pub created_at_ms: u64,
    /// The bridge selector's counters, once bridges are modelled on the shard.
    pub bridge_selector: Option<crate::bridge::BridgeSelectorStats>,
}

/// A finalize the caller must complete after `after_ms` (see [`World::finish_finalize_timer`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizeTimer {
    pub recorder: String,
    pub generation: u64,
    pub after_ms: u64,
}

/// One instance of the followed Auto Scaling group and its `LifecycleState`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInstance {
    pub id: String,
    pub lifecycle_state: String,
    /// Its `PrivateIpAddress` from EC2 (`DescribeInstances`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
}

/// What one synchronisation with the Auto Scaling group changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupSync {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// All shards and recorders.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    pub(crate) shards: BTreeMap<String, Shard>,
    recorders: BTreeMap<String, Recorder>,
    created_at_ms: u64,
    pub(crate) bridges: BTreeMap<String, crate::bridge::Bridge>,
    /// Every conference hosted by a bridge, running or over (the record tests read).
    pub(crate) conferences: BTreeMap<String, crate::bridge::Conference>,
    pub(crate) next_conference: u64,
}

/// Recorder ids and shard names go into URL paths: keep them to a safe alphabet.
pub(crate) fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::Invalid(format!(
            "{what} {name:?} must be 1-128 of [A-Za-z0-9._:-]"
        )))
    }
}

impl World {
    /// A world with only the default shard. `created_at_ms` stamps the Jicofo metrics.
    pub fn new(created_at_ms: u64) -> Self {
        let mut shards = BTreeMap::new();
        shards.insert(DEFAULT_SHARD.to_owned(), Shard::new(DEFAULT_SHARD));
        World {
            shards,
            recorders: BTreeMap::new(),
            created_at_ms,
            bridges: BTreeMap::new(),
            conferences: BTreeMap::new(),
            next_conference: 0,
        }
    }

    /// Back to a fresh world (same metrics creation time).
    pub fn reset(&mut self) {
        *self = World::new(self.created_at_ms);
    }

    pub fn recorder(&self, id: &str) -> Option<&Recorder> {
        self.recorders.get(id)
    }

    pub fn shard(&self, name: &str) -> Option<&Shard> {
        self.shards.get(name)
    }

    pub fn recorders(&self) -> impl Iterator<Item = &Recorder> {
        self.recorders.values()
    }

    fn recorder_mut(&mut self, id: &str) -> Result<&mut Recorder> {
        self.recorders
            .get_mut(id)
            .ok_or_else(|| ModelError::UnknownRecorder(id.to_owned()))
    }

    fn shard_mut(&mut self, name: &str) -> Result<&mut Shard> {
        self.shards
            .get_mut(name)
            .ok_or_else(|| ModelError::UnknownShard(name.to_owned()))
    }

    pub(crate) fn ensure_shard(&mut self, name: &str) -> &mut Shard {
        self.shards
            .entry(name.to_owned())
            .or_insert_with(|| Shard::new(name))
    }

    // ---- Jicofo's view -------------------------------------------------------------------

    fn brewery(&self, shard: &str) -> impl Iterator<Item = &Recorder> {
        let shard = shard.to_owned();
        self.recorders
            .values()
            .filter(move |r| r.shard == shard && r.in_brewery())
    }

    /// `jibri_detector.count`: every Jibri in the shard's brewery, busy and unhealthy included.
    pub fn jibri_count(&self, shard: &str) -> u64 {
        self.brewery(shard).count() as u64
    }

    /// `jibri_detector.available`: those whose presence says healthy and idle.
    pub fn jibri_available(&self, shard: &str) -> u64 {
        self.brewery(shard).filter(|r| r.available()).count() as u64
    }

    /// Jicofo's `JibriDetector.selectJibri`: any available instance. Jicofo takes the one that
    /// failed least recently, ties broken by hash-map order; the emulator takes the lowest id.
    fn select_jibri(&self, shard: &str) -> Option<String> {
        self.brewery(shard)
            .find(|r| r.available())
            .map(|r| r.id.clone())
    }

    /// The stats input of one shard.
    pub fn jicofo_snapshot(&self, shard: &str) -> Option<JicofoSnapshot> {
        let s = self.shards.get(shard)?;
        let mut conference_sizes = s.counted_sizes();
        conference_sizes.extend(
            self.bridge_conference_sizes(shard)
                .iter()
                .map(|&p| p.max(1)),
        );
        Some(JicofoSnapshot {
            legacy: s.legacy,
            healthy: s.healthy,
            stats_health: s.stats_health,
            conference_sizes,
            total_conferences_created: s.total_conferences_created,
            total_participants: s.total_participants,
            jibri_count: self.jibri_count(shard),
            jibri_available: self.jibri_available(shard),
            recording_active: s.sessions.len() as u64,
            recording_failures: s.recording_failures,
            no_instance_failures: s.no_instance_failures,
            created_at_ms: self.created_at_ms,
            bridge_selector: self.bridge_selector(shard),
        })
    }

    pub fn shard_view(&self, name: &str) -> Option<ShardView> {
        let s = self.shards.get(name)?;
        let sizes = s.counted_sizes();
        Some(ShardView {
            name: s.name.clone(),
            legacy: s.legacy,
            healthy: s.healthy,
            stats_health: s.stats_health,
            fault: s.fault,
            conferences: sizes.len() as u64,
            participants: sizes.iter().sum(),
            conference_sizes: s.conference_sizes.clone(),
            total_conferences_created: s.total_conferences_created,
            total_participants: s.total_participants,
            jibri_count: self.jibri_count(name),
            jibri_available: self.jibri_available(name),
            recording_active: s.sessions.len() as u64,
            sessions: s.sessions.iter().map(|x| x.recorder.clone()).collect(),
            total_recording_failures: s.recording_failures,
            no_instance_failures: s.no_instance_failures,
            calls: s.calls,
            conference_failures: s.conference_failures,
            lost_bridges: s.lost_bridges,
        })
    }

    pub fn shard_views(&self) -> Vec<ShardView> {
        self.shards
            .keys()
            .filter_map(|name| self.shard_view(name))
            .collect()
    }

    pub fn recorder_views(&self) -> Vec<RecorderView> {
        self.recorders.values().map(Recorder::view).collect()
    }

    // ---- sessions ------------------------------------------------------------------------

    /// Jicofo opens a session on `id` (which must be in `shard`'s brewery).
    fn open_session(&mut self, shard: &str, id: &str, retries: u32) {
        if let Some(s) = self.shards.get_mut(shard) {
            s.sessions.push(Session {
                recorder: id.to_owned(),
                retries,
            });
        }
    }

    /// The session on `id` ended cleanly (stopped by Jicofo or by the Jibri): no failure counted.
    fn close_session_quietly(&mut self, id: &str) {
        for s in self.shards.values_mut() {
            s.sessions.retain(|x| x.recorder != id);
        }
    }

    /// `id` has just left `shard`'s brewery (exited, lost XMPP, moved, deleted). If Jicofo had a
    /// session on it, Jicofo's `instanceOffline` handling runs: the session is retried on another
    /// available Jibri (`retryRequestWithAnotherJibri`), and if none is available it fails, counted
    /// twice in `total_recording_failures` (once by `start()`, once by the failed-session
    /// dispatch) and once in `no_instance_failures` when the brewery is empty.
    fn left_brewery(&mut self, id: &str, shard: &str) {
        let Some(s) = self.shards.get_mut(shard) else {
            return;
        };
        let Some(pos) = s.sessions.iter().position(|x| x.recorder == id) else {
            return;
        };
        let session = s.sessions.remove(pos);
        if session.retries >= JICOFO_MAX_RETRIES {
            s.recording_failures += 1;
            return;
        }
        match self.select_jibri(shard) {
            Some(next) => {
                if let Some(r) = self.recorders.get_mut(&next) {
                    r.phase = Phase::Recording;
                }
                self.open_session(shard, &next, session.retries + 1);
            }
            None => {
                let empty = self.jibri_count(shard) == 0;
                if let Some(s) = self.shards.get_mut(shard) {
                    s.recording_failures += 2;
                    if empty {
                        s.no_instance_failures += 1;
                    }
                }
            }
        }
    }

    /// The Jibri process of `id` exits (it leaves the brewery).
    fn exit_process(&mut self, id: &str) {
        let Some(r) = self.recorders.get_mut(id) else {
            return;
        };
        let was_in = r.in_brewery();
        r.gone = true;
        r.exit_pending = false;
        r.generation += 1;
        let shard = r.shard.clone();
        if was_in {
            self.left_brewery(id, &shard);
        }
    }

    // ---- recorder operations ---------------------------------------------------------------

    /// `PUT /control/recorders/{id}`: creates (with defaults) or updates. Returns the view and
    /// whether it was created.
    pub fn upsert_recorder(
        &mut self,
        id: &str,
        update: &RecorderUpdate,
    ) -> Result<(RecorderView, bool)> {
        validate_name("recorder id", id)?;
        if let Some(shard) = &update.shard {
            validate_name("shard", shard)?;
        }
        if let Some(env) = &update.environment {
            if env.is_empty() {
                return Err(ModelError::Invalid("environment must not be empty".into()));
            }
        }
        let address = update
            .address
            .as_deref()
            .map(loopback_address)
            .transpose()?;
        let created = !self.recorders.contains_key(id);
        if !created && update.status.is_some() && self.recorders.get(id).is_some_and(|r| r.gone) {
            return Err(ModelError::Gone(id.to_owned()));
        }
        if created {
            self.ensure_shard(DEFAULT_SHARD);
            self.recorders
                .insert(id.to_owned(), Recorder::new(id, DEFAULT_SHARD));
        }
        if let Some(shard) = &update.shard {
            self.ensure_shard(shard);
        }

        let r = self.recorder_mut(id)?;
        let was_in = r.in_brewery();
        let old_shard = r.shard.clone();
        if let Some(shard) = &update.shard {
            r.shard = shard.clone();
        }
        if let Some(registered) = update.registered {
            r.registered = registered;
        }
        if let Some(health) = update.health {
            r.health = health;
        }
        if let Some(single_use) = update.single_use {
            r.single_use = single_use;
        }
        if let Some(ms) = update.finalize_ms {
            r.finalize_ms = ms;
        }
        if let Some(env) = &update.environment {
            r.environment = env.clone();
        }
        if address.is_some() {
            r.address = address;
        }
        let still_in = r.in_brewery() && r.shard == old_shard;
        if was_in && !still_in {
            self.left_brewery(id, &old_shard);
        }

        match update.status {
            None => {}
            Some(BusyStatus::Busy) => {
                let r = self.recorder_mut(id)?;
                if r.phase == Phase::Idle {
                    r.phase = Phase::Recording;
                    r.expired = false;
                    let (shard, in_brewery) = (r.shard.clone(), r.in_brewery());
                    if in_brewery {
                        self.open_session(&shard, id, 0);
                    }
                }
            }
            Some(status @ (BusyStatus::Idle | BusyStatus::Expired)) => {
                self.close_session_quietly(id);
                let r = self.recorder_mut(id)?;
                r.phase = Phase::Idle;
                r.expired = status == BusyStatus::Expired;
                r.generation += 1;
                if r.exit_pending {
                    // Jibri runs its pending "when idle" exit before it would publish the status.
                    self.exit_process(id);
                }
            }
        }
        let view = self.recorder_mut(id)?.view();
        Ok((view, created))
    }

    /// `DELETE /control/recorders/{id}`: the recorder vanishes (it leaves the brewery).
    pub fn delete_recorder(&mut self, id: &str) -> Result<()> {
        let r = self
            .recorders
            .remove(id)
            .ok_or_else(|| ModelError::UnknownRecorder(id.to_owned()))?;
        if r.in_brewery() {
            self.left_brewery(id, &r.shard);
        }
        self.close_session_quietly(id);
        Ok(())
    }

    /// A recording starts on `id` (as if Jicofo had sent it a start IQ). Jibri only refuses when
    /// busy (`JibriManager.throwIfBusy`), so an unhealthy Jibri still accepts.
    pub fn start_recording(&mut self, id: &str) -> Result<RecorderView> {
        let r = self.recorder_mut(id)?;
        if r.gone {
            return Err(ModelError::Gone(id.to_owned()));
        }
        match r.busy_status() {
            BusyStatus::Busy => return Err(ModelError::Busy(id.to_owned())),
            BusyStatus::Expired => return Err(ModelError::Expired(id.to_owned())),
            BusyStatus::Idle => {}
        }
        r.phase = Phase::Recording;
        let (shard, in_brewery) = (r.shard.clone(), r.in_brewery());
        if in_brewery {
            self.open_session(&shard, id, 0);
        }
        Ok(self.recorder_mut(id)?.view())
    }

    /// The recording on `id` stops: the finalize phase starts (the Jibri stays BUSY). With
    /// `finalize_ms == 0` it completes at once; otherwise the caller gets a timer to run.
    /// Stopping a recorder that is not recording is a no-op, as in Jibri ("No service active").
    pub fn stop_recording(&mut self, id: &str) -> Result<Option<FinalizeTimer>> {
        let r = self.recorder_mut(id)?;
        if r.gone {
            return Err(ModelError::Gone(id.to_owned()));
        }
        if r.phase != Phase::Recording {
            return Ok(None);
        }
        self.close_session_quietly(id);
        self.begin_finalize(id)
    }

    fn begin_finalize(&mut self, id: &str) -> Result<Option<FinalizeTimer>> {
        let r = self.recorder_mut(id)?;
        r.phase = Phase::Finalizing;
        r.generation += 1;
        if r.finalize_ms == 0 {
            self.complete_finalize(id);
            return Ok(None);
        }
        Ok(Some(FinalizeTimer {
            recorder: id.to_owned(),
            generation: r.generation,
            after_ms: r.finalize_ms,
        }))
    }

    /// The finalize script of `id` exits now. A no-op unless it is finalizing.
    pub fn finish_finalize(&mut self, id: &str) -> Result<RecorderView> {
        let r = self.recorder_mut(id)?;
        if r.phase == Phase::Finalizing {
            self.complete_finalize(id);
        }
        Ok(self.recorder_mut(id)?.view())
    }

    /// A finalize timer fired: completes the finalize unless the recorder changed since.
    pub fn finish_finalize_timer(&mut self, timer: &FinalizeTimer) -> bool {
        let current = self
            .recorders
            .get(&timer.recorder)
            .is_some_and(|r| r.phase == Phase::Finalizing && r.generation == timer.generation);
        if current {
            self.complete_finalize(&timer.recorder);
        }
        current
    }

    /// `JibriManager.stopService` after `currentService.stop()` returned: the pending "when
    /// idle" function (graceful shutdown) runs first, then EXPIRED (single-use) or IDLE.
    fn complete_finalize(&mut self, id: &str) {
        let Some(r) = self.recorders.get_mut(id) else {
            return;
        };
        r.phase = Phase::Idle;
        if r.exit_pending {
            self.exit_process(id);
        } else if r.single_use {
            r.expired = true;
        }
    }

    /// The Jibri process of `id` is restarted: back IDLE, HEALTHY, registered, no pending exit.
    /// Shard, single-use, finalize time, environment, fault and call counts are kept. If it was
    /// recording, its old process leaving the brewery fails (or moves) Jicofo's session.
    pub fn restart(&mut self, id: &str) -> Result<RecorderView> {
        let r = self.recorder_mut(id)?;
        let was_in = r.in_brewery();
        let shard = r.shard.clone();
        r.gone = true;
        if was_in {
            self.left_brewery(id, &shard);
        }
        self.close_session_quietly(id);
        let r = self.recorder_mut(id)?;
        r.gone = false;
        r.phase = Phase::Idle;
        r.expired = false;
        r.health = HealthStatus::Healthy;
        r.registered = true;
        r.exit_pending = false;
        r.generation += 1;
        Ok(r.view())
    }

    pub fn set_recorder_fault(&mut self, id: &str, fault: Fault) -> Result<RecorderView> {
        let r = self.recorder_mut(id)?;
        r.fault = fault;
        Ok(r.view())
    }

    /// Counts a request that reached `id`'s Jibri paths (whatever it is answered).
    pub fn record_recorder_call(&mut self, id: &str, call: RecorderCall) {
        if let Some(r) = self.recorders.get_mut(id) {
            match call {
                RecorderCall::Health => r.calls.health += 1,
                RecorderCall::GracefulShutdown => r.calls.graceful_shutdown += 1,
                RecorderCall::Shutdown => r.calls.shutdown += 1,
            }
        }
    }

    /// Jibri's `POST .../gracefulShutdown` (`jibriManager.executeWhenIdle { exit }`): an idle
    /// (or expired) Jibri exits at once; a busy one exits when its session and finalize are done.
    pub fn graceful_shutdown(&mut self, id: &str) -> Result<()> {
        let r = self.recorder_mut(id)?;
        if r.gone {
            return Err(ModelError::Gone(id.to_owned()));
        }
        if r.phase == Phase::Idle {
            self.exit_process(id);
        } else {
            r.exit_pending = true;
        }
        Ok(())
    }

    /// Jibri's `POST .../shutdown` (`stopService(); cleanupAndExit(255)`): the session stops now
    /// (finalize still runs, the Jibri says BUSY meanwhile), then the process exits for good.
    pub fn shutdown(&mut self, id: &str) -> Result<Option<FinalizeTimer>> {
        let r = self.recorder_mut(id)?;
        if r.gone {
            return Err(ModelError::Gone(id.to_owned()));
        }
        match r.phase {
            Phase::Idle => {
                self.exit_process(id);
                Ok(None)
            }
            Phase::Finalizing => {
                r.exit_pending = true;
                Ok(None)
            }
            Phase::Recording => {
                r.exit_pending = true;
                self.close_session_quietly(id);
                self.begin_finalize(id)
            }
        }
    }

    // ---- shard operations ------------------------------------------------------------------

    /// `PUT /control/jicofo/{shard}`: creates or updates a shard. Growing `conferences` or
    /// `participants` also grows Jicofo's cumulative `total_*` counters by the difference.
    pub fn upsert_shard(&mut self, name: &str, update: &ShardUpdate) -> Result<(ShardView, bool)> {
        validate_name("shard", name)?;
        let new_sizes = match (
            &update.conference_sizes,
            update.conferences,
            update.participants,
        ) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ModelError::Invalid(
                    "give conference_sizes or conferences/participants, not both".into(),
                ))
            }
            (Some(sizes), None, None) => Some(sizes.clone()),
            (None, None, None) => None,
            (None, conferences, participants) => {
                let current = self.shards.get(name);
                let count = conferences
                    .map(|c| c as usize)
                    .unwrap_or_else(|| current.map_or(0, |s| s.conference_sizes.len()));
                let total = participants.unwrap_or_else(|| {
                    current.map_or(0, |s| {
                        s.conference_sizes.iter().map(|&x| u64::from(x)).sum()
                    })
                });
                Some(spread(count, total)?)
            }
        };
        let created = !self.shards.contains_key(name);
        let s = self.ensure_shard(name);
        if let Some(sizes) = new_sizes {
            let old_count = s.conference_sizes.len() as u64;
            let old_people: u64 = s.counted_sizes().iter().sum();
            s.conference_sizes = sizes;
            let new_people: u64 = s.counted_sizes().iter().sum();
            s.total_conferences_created +=
                (s.conference_sizes.len() as u64).saturating_sub(old_count);
            s.total_participants += new_people.saturating_sub(old_people);
        }
        if let Some(legacy) = update.legacy {
            s.legacy = legacy;
        }
        if let Some(healthy) = update.healthy {
            s.healthy = healthy;
        }
        if let Some(stats_health) = update.stats_health {
            s.stats_health = stats_health;
        }
        let view = self
            .shard_view(name)
            .ok_or_else(|| ModelError::UnknownShard(name.to_owned()))?;
        Ok((view, created))
    }

    pub fn set_shard_fault(&mut self, name: &str, fault: Fault) -> Result<ShardView> {
        self.shard_mut(name)?.fault = fault;
        self.shard_view(name)
            .ok_or_else(|| ModelError::UnknownShard(name.to_owned()))
    }

    /// Counts a request that reached a shard's Jicofo paths.
    pub fn record_shard_call(&mut self, name: &str, call: ShardCall) {
        if let Some(s) = self.shards.get_mut(name) {
            match call {
                ShardCall::Stats => s.calls.stats += 1,
                ShardCall::Health => s.calls.health += 1,
                ShardCall::Version => s.calls.version += 1,
                ShardCall::Metrics => s.calls.metrics += 1,
            }
        }
    }

    /// A participant asks `shard`'s Jicofo to start a recording (`JibriSession.start`). Jicofo
    /// does not queue: with no Jibri available the request fails, `total_recording_failures`
    /// grows by one, and `no_instance_failures` too when the brewery is empty
    /// (`StartException.NotAvailable` vs `AllBusy`). Returns the recorder that got it.
    pub fn request_recording(&mut self, shard: &str) -> Result<String> {
        if !self.shards.contains_key(shard) {
            return Err(ModelError::UnknownShard(shard.to_owned()));
        }
        match self.select_jibri(shard) {
            Some(id) => {
                if let Some(r) = self.recorders.get_mut(&id) {
                    r.phase = Phase::Recording;
                }
                self.open_session(shard, &id, 0);
                Ok(id)
            }
            None => {
                let empty = self.jibri_count(shard) == 0;
                let s = self.shard_mut(shard)?;
                s.recording_failures += 1;
                if empty {
                    s.no_instance_failures += 1;
                }
                Err(ModelError::NoJibriAvailable(shard.to_owned()))
            }
        }
    }

    // ---- following an Auto Scaling group ---------------------------------------------------

    /// Mirrors the group's instances: an InService instance without a recorder gets one (IDLE,
    /// registered, on `shard`); an instance in the group in any other state keeps its recorder
    /// (Terminating:Wait and Terminating:Retained instances still run); a followed recorder whose
    /// instance left the group disappears. A recorder that exists when its instance is first
    /// seen is adopted as it is.
    pub fn sync_with_group(
        &mut self,
        instances: &[GroupInstance],
        shard: &str,
    ) -> Result<GroupSync> {
        validate_name("shard", shard)?;
        let mut sync = GroupSync::default();
        let in_group: BTreeSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        for inst in instances {
            if validate_name("instance id", &inst.id).is_err() {
                continue;
            }
            // An address outside 127.0.0.0/8 is never listened on (nor dialled).
            let address = inst
                .private_ip
                .as_deref()
                .and_then(|ip| loopback_address(ip).ok());
            match self.recorders.get_mut(&inst.id) {
                Some(r) => {
                    r.followed = true;
                    if r.address.is_none() {
                        r.address = address;
                    }
                }
                None if inst.lifecycle_state == "InService" => {
                    self.ensure_shard(shard);
                    let mut r = Recorder::new(&inst.id, shard);
                    r.followed = true;
                    r.address = address;
                    self.recorders.insert(inst.id.clone(), r);
                    sync.added.push(inst.id.clone());
                }
                None => {}
            }
        }
        let leaving: Vec<String> = self
            .recorders
            .values()
            .filter(|r| r.followed && !in_group.contains(r.id.as_str()))
            .map(|r| r.id.clone())
            .collect();
        for id in leaving {
            self.delete_recorder(&id)?;
            sync.removed.push(id);
        }
        Ok(sync)
    }
}

/// Parses a recorder address; only IPv4 in 127.0.0.0/8 is accepted (network rule: the
/// emulator listens on loopback only).
pub fn loopback_address(s: &str) -> Result<Ipv4Addr> {
    match s.parse::<Ipv4Addr>() {
        Ok(ip) if ip.octets()[0] == 127 => Ok(ip),
        _ => Err(ModelError::Invalid(format!(
            "address {s:?} must be an IPv4 address in 127.0.0.0/8"
        ))),
    }
}

/// `count` conferences sharing `total` participants as evenly as possible (larger ones first).
fn spread(count: usize, total: u64) -> Result<Vec<u32>> {
    if count == 0 {
        if total > 0 {
            return Err(ModelError::Invalid(
                "participants need at least one conference".into(),
            ));
        }
        return Ok(Vec::new());
    }
    let n = count as u64;
    let (base, extra) = (total / n, total % n);
    (0..n)
        .map(|i| {
            let size = base + u64::from(i < extra);
            u32::try_from(size).map_err(|_| ModelError::Invalid("conference too large".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;

    fn world_with(ids: &[&str]) -> World {
        let mut w = World::new(0);
        for id in ids {
            w.upsert_recorder(id, &RecorderUpdate::default()).unwrap();
        }
        w
    }

    fn status(w: &World, id: &str) -> BusyStatus {
        w.recorder(id).unwrap().busy_status()
    }

    fn set(w: &mut World, id: &str, update: RecorderUpdate) {
        w.upsert_recorder(id, &update).unwrap();
    }

    #[test]
    fn a_new_recorder_is_idle_healthy_and_counted_available() {
        let w = world_with(&["i-1"]);
        let r = w.recorder("i-1").unwrap().view();
        assert_eq!(
            (r.status, r.health, r.registered, r.gone),
            (BusyStatus::Idle, HealthStatus::Healthy, true, false)
        );
        assert_eq!(
            (
                w.jibri_count(DEFAULT_SHARD),
                w.jibri_available(DEFAULT_SHARD)
            ),
            (1, 1)
        );
    }

    #[test]
    fn recording_then_stop_with_instant_finalize_returns_to_idle() {
        let mut w = world_with(&["i-1"]);
        w.start_recording("i-1").unwrap();
        assert_eq!(status(&w, "i-1"), BusyStatus::Busy);
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_active,
            1
        );
        assert_eq!(w.stop_recording("i-1").unwrap(), None);
        assert_eq!(status(&w, "i-1"), BusyStatus::Idle);
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_active,
            0
        );
    }

    #[test]
    fn a_finalizing_recorder_stays_busy_until_finalize_finishes() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(5_000),
                ..Default::default()
            },
        );
        w.start_recording("i-1").unwrap();
        let timer = w.stop_recording("i-1").unwrap().unwrap();
        assert_eq!(timer.after_ms, 5_000);
        let r = w.recorder("i-1").unwrap();
        assert_eq!(
            (r.busy_status(), r.phase),
            (BusyStatus::Busy, Phase::Finalizing)
        );
        assert_eq!(w.jibri_available(DEFAULT_SHARD), 0);
        // Jicofo's session ended at the stop: no longer "recording_active".
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_active,
            0
        );
        assert!(w.finish_finalize_timer(&timer));
        assert_eq!(status(&w, "i-1"), BusyStatus::Idle);
    }

    #[test]
    fn a_stale_finalize_timer_is_ignored() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(100),
                ..Default::default()
            },
        );
        w.start_recording("i-1").unwrap();
        let old = w.stop_recording("i-1").unwrap().unwrap();
        w.finish_finalize("i-1").unwrap();
        w.start_recording("i-1").unwrap();
        let _new = w.stop_recording("i-1").unwrap().unwrap();
        assert!(!w.finish_finalize_timer(&old));
        assert_eq!(w.recorder("i-1").unwrap().phase, Phase::Finalizing);
    }

    #[test]
    fn single_use_recorder_expires_after_its_session_and_never_idles_again() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                single_use: Some(true),
                ..Default::default()
            },
        );
        w.start_recording("i-1").unwrap();
        w.stop_recording("i-1").unwrap();
        assert_eq!(status(&w, "i-1"), BusyStatus::Expired);
        // Jicofo keeps it in the brewery, busy.
        assert_eq!(
            (
                w.jibri_count(DEFAULT_SHARD),
                w.jibri_available(DEFAULT_SHARD)
            ),
            (1, 0)
        );
        assert_eq!(
            w.start_recording("i-1"),
            Err(ModelError::Expired("i-1".into()))
        );
        w.restart("i-1").unwrap();
        assert_eq!(status(&w, "i-1"), BusyStatus::Idle);
    }

    #[test]
    fn unhealthy_recorder_is_counted_but_not_available() {
        let mut w = world_with(&["i-1", "i-2"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                health: Some(HealthStatus::Unhealthy),
                ..Default::default()
            },
        );
        assert_eq!(
            (
                w.jibri_count(DEFAULT_SHARD),
                w.jibri_available(DEFAULT_SHARD)
            ),
            (2, 1)
        );
        w.restart("i-1").unwrap();
        assert_eq!(w.recorder("i-1").unwrap().health, HealthStatus::Healthy);
    }

    #[test]
    fn unregistered_recorder_is_healthy_but_absent_from_the_brewery() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                registered: Some(false),
                ..Default::default()
            },
        );
        assert_eq!(status(&w, "i-1"), BusyStatus::Idle);
        assert_eq!(
            (
                w.jibri_count(DEFAULT_SHARD),
                w.jibri_available(DEFAULT_SHARD)
            ),
            (0, 0)
        );
    }

    #[test]
    fn graceful_shutdown_of_an_idle_recorder_exits_at_once() {
        let mut w = world_with(&["i-1"]);
        w.graceful_shutdown("i-1").unwrap();
        assert!(w.recorder("i-1").unwrap().gone);
        assert_eq!(w.jibri_count(DEFAULT_SHARD), 0);
        assert_eq!(
            w.graceful_shutdown("i-1"),
            Err(ModelError::Gone("i-1".into()))
        );
    }

    #[test]
    fn graceful_shutdown_of_a_busy_recorder_waits_for_finalize_and_never_says_idle() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(1_000),
                ..Default::default()
            },
        );
        w.start_recording("i-1").unwrap();
        w.graceful_shutdown("i-1").unwrap();
        let r = w.recorder("i-1").unwrap();
        assert_eq!(
            (r.busy_status(), r.exit_pending, r.gone),
            (BusyStatus::Busy, true, false)
        );
        let timer = w.stop_recording("i-1").unwrap().unwrap();
        assert_eq!(status(&w, "i-1"), BusyStatus::Busy);
        w.finish_finalize_timer(&timer);
        let r = w.recorder("i-1").unwrap();
        assert!(r.gone);
        assert_eq!(w.jibri_count(DEFAULT_SHARD), 0);
        // The recording ended cleanly: nothing counted as a failure.
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_failures,
            0
        );
    }

    #[test]
    fn shutdown_stops_the_session_runs_finalize_then_exits() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(1_000),
                ..Default::default()
            },
        );
        w.start_recording("i-1").unwrap();
        let timer = w.shutdown("i-1").unwrap().unwrap();
        let r = w.recorder("i-1").unwrap();
        assert_eq!(
            (r.phase, r.busy_status(), r.gone),
            (Phase::Finalizing, BusyStatus::Busy, false)
        );
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_active,
            0
        );
        w.finish_finalize_timer(&timer);
        assert!(w.recorder("i-1").unwrap().gone);
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_failures,
            0
        );
    }

    #[test]
    fn shutdown_of_an_idle_recorder_exits_at_once() {
        let mut w = world_with(&["i-1"]);
        assert_eq!(w.shutdown("i-1").unwrap(), None);
        assert!(w.recorder("i-1").unwrap().gone);
    }

    #[test]
    fn restart_brings_a_gone_recorder_back_idle_healthy_and_registered() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                health: Some(HealthStatus::Unhealthy),
                registered: Some(false),
                ..Default::default()
            },
        );
        w.graceful_shutdown("i-1").unwrap();
        let r = w.restart("i-1").unwrap();
        assert_eq!(
            (r.status, r.health, r.registered, r.gone, r.exit_pending),
            (BusyStatus::Idle, HealthStatus::Healthy, true, false, false)
        );
        assert_eq!(w.jibri_available(DEFAULT_SHARD), 1);
    }

    #[test]
    fn request_recording_picks_an_available_recorder() {
        let mut w = world_with(&["i-2", "i-1", "i-3"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                health: Some(HealthStatus::Unhealthy),
                ..Default::default()
            },
        );
        assert_eq!(w.request_recording(DEFAULT_SHARD).unwrap(), "i-2");
        assert_eq!(w.request_recording(DEFAULT_SHARD).unwrap(), "i-3");
        let snap = w.jicofo_snapshot(DEFAULT_SHARD).unwrap();
        assert_eq!(
            (
                snap.jibri_count,
                snap.jibri_available,
                snap.recording_active
            ),
            (3, 0, 2)
        );
    }

    #[test]
    fn request_with_all_jibris_busy_counts_a_recording_failure_only() {
        let mut w = world_with(&["i-1"]);
        w.start_recording("i-1").unwrap();
        assert_eq!(
            w.request_recording(DEFAULT_SHARD),
            Err(ModelError::NoJibriAvailable(DEFAULT_SHARD.into()))
        );
        let snap = w.jicofo_snapshot(DEFAULT_SHARD).unwrap();
        assert_eq!((snap.recording_failures, snap.no_instance_failures), (1, 0));
    }

    #[test]
    fn request_with_an_empty_brewery_counts_a_no_instance_failure_too() {
        let mut w = world_with(&[]);
        assert!(w.request_recording(DEFAULT_SHARD).is_err());
        let snap = w.jicofo_snapshot(DEFAULT_SHARD).unwrap();
        assert_eq!((snap.recording_failures, snap.no_instance_failures), (1, 1));
    }

    #[test]
    fn a_recording_jibri_that_vanishes_moves_its_session_to_an_available_one() {
        let mut w = world_with(&["i-1", "i-2"]);
        assert_eq!(w.request_recording(DEFAULT_SHARD).unwrap(), "i-1");
        w.delete_recorder("i-1").unwrap();
        assert_eq!(status(&w, "i-2"), BusyStatus::Busy);
        let view = w.shard_view(DEFAULT_SHARD).unwrap();
        assert_eq!(view.sessions, vec!["i-2".to_owned()]);
        assert_eq!(view.total_recording_failures, 0);
    }

    #[test]
    fn a_recording_jibri_that_vanishes_with_no_other_fails_the_session_as_jicofo_counts_it() {
        let mut w = world_with(&["i-1"]);
        w.request_recording(DEFAULT_SHARD).unwrap();
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                registered: Some(false),
                ..Default::default()
            },
        );
        let snap = w.jicofo_snapshot(DEFAULT_SHARD).unwrap();
        assert_eq!(
            (
                snap.recording_active,
                snap.recording_failures,
                snap.no_instance_failures
            ),
            (0, 2, 1)
        );
        // The Jibri itself still records (it only lost XMPP).
        assert_eq!(status(&w, "i-1"), BusyStatus::Busy);
    }

    #[test]
    fn a_session_gives_up_after_jicofos_retry_limit() {
        let ids: Vec<String> = (0..=JICOFO_MAX_RETRIES + 1)
            .map(|i| format!("i-{i}"))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut w = world_with(&refs);
        let mut on = w.request_recording(DEFAULT_SHARD).unwrap();
        for _ in 0..JICOFO_MAX_RETRIES {
            w.delete_recorder(&on).unwrap();
            on = w.shard_view(DEFAULT_SHARD).unwrap().sessions[0].clone();
        }
        w.delete_recorder(&on).unwrap();
        let view = w.shard_view(DEFAULT_SHARD).unwrap();
        assert_eq!(
            (view.recording_active, view.total_recording_failures),
            (0, 1)
        );
    }

    #[test]
    fn put_status_busy_idle_and_expired_override_the_state() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                status: Some(BusyStatus::Busy),
                ..Default::default()
            },
        );
        assert_eq!(status(&w, "i-1"), BusyStatus::Busy);
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_active,
            1
        );
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                status: Some(BusyStatus::Expired),
                ..Default::default()
            },
        );
        assert_eq!(status(&w, "i-1"), BusyStatus::Expired);
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_active,
            0
        );
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                status: Some(BusyStatus::Idle),
                ..Default::default()
            },
        );
        assert_eq!(status(&w, "i-1"), BusyStatus::Idle);
        assert_eq!(
            w.jicofo_snapshot(DEFAULT_SHARD).unwrap().recording_failures,
            0
        );
    }

    #[test]
    fn put_status_on_a_gone_recorder_is_refused() {
        let mut w = world_with(&["i-1"]);
        w.graceful_shutdown("i-1").unwrap();
        let err = w.upsert_recorder(
            "i-1",
            &RecorderUpdate {
                status: Some(BusyStatus::Idle),
                ..Default::default()
            },
        );
        assert_eq!(err, Err(ModelError::Gone("i-1".into())));
    }

    #[test]
    fn moving_a_recorder_to_another_shard_moves_its_brewery_membership() {
        let mut w = world_with(&["i-1"]);
        set(
            &mut w,
            "i-1",
            RecorderUpdate {
                shard: Some("shard-2".into()),
                ..Default::default()
            },
        );
        assert_eq!(w.jibri_count(DEFAULT_SHARD), 0);
        assert_eq!(w.jibri_count("shard-2"), 1);
    }

    #[test]
    fn invalid_ids_are_refused() {
        let mut w = World::new(0);
        for bad in ["", "a/b", "a b", "ü"] {
            assert!(matches!(
                w.upsert_recorder(bad, &RecorderUpdate::default()),
                Err(ModelError::Invalid(_))
            ));
        }
    }

    #[test]
    fn conferences_and_participants_spread_evenly_and_grow_the_totals() {
        let mut w = World::new(0);
        let (v, created) = w
            .upsert_shard(
                DEFAULT_SHARD,
                &ShardUpdate {
                    conferences: Some(3),
                    participants: Some(14),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(!created);
        assert_eq!(v.conference_sizes, vec![5, 5, 4]);
        assert_eq!(
            (
                v.conferences,
                v.participants,
                v.total_conferences_created,
                v.total_participants
            ),
            (3, 14, 3, 14)
        );
        let (v, _) = w
            .upsert_shard(
                DEFAULT_SHARD,
                &ShardUpdate {
                    conferences: Some(0),
                    participants: Some(0),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            (v.conferences, v.participants, v.total_conferences_created),
            (0, 0, 3)
        );
        assert!(w
            .upsert_shard(
                DEFAULT_SHARD,
                &ShardUpdate {
                    conferences: Some(0),
                    participants: Some(2),
                    ..Default::default()
                }
            )
            .is_err());
    }

    #[test]
    fn an_empty_conference_counts_as_one_participant() {
        let mut w = World::new(0);
        w.upsert_shard(
            "s",
            &ShardUpdate {
                conference_sizes: Some(vec![0, 3]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(w.jicofo_snapshot("s").unwrap().conference_sizes, vec![1, 3]);
    }

    #[test]
    fn following_a_group_adds_in_service_instances_and_removes_departed_ones() {
        let mut w = World::new(0);
        let inst = |id: &str, state: &str| GroupInstance {
            id: id.into(),
            lifecycle_state: state.into(),
            private_ip: None,
        };
        let sync = w
            .sync_with_group(
                &[
                    inst("i-a", "InService"),
                    inst("i-b", "Pending"),
                    inst("i-c", "InService"),
                ],
                DEFAULT_SHARD,
            )
            .unwrap();
        assert_eq!(sync.added, vec!["i-a".to_owned(), "i-c".to_owned()]);
        w.graceful_shutdown("i-c").unwrap();
        let sync = w
            .sync_with_group(
                &[
                    inst("i-a", "Terminating:Wait"),
                    inst("i-c", "Terminating:Retained"),
                ],
                DEFAULT_SHARD,
            )
            .unwrap();
        assert!(sync.added.is_empty() && sync.removed.is_empty());
        // Terminating instances still run; an exited Jibri is not resurrected by the follower.
        assert!(w.recorder("i-a").is_some());
        assert!(w.recorder("i-c").unwrap().gone);
        let sync = w
            .sync_with_group(&[inst("i-c", "Terminating:Retained")], DEFAULT_SHARD)
            .unwrap();
        assert_eq!(sync.removed, vec!["i-a".to_owned()]);
        assert!(w.recorder("i-a").is_none());
    }

    #[test]
    fn following_leaves_unrelated_recorders_alone() {
        let mut w = world_with(&["manual"]);
        w.sync_with_group(&[], DEFAULT_SHARD).unwrap();
        assert!(w.recorder("manual").is_some());
    }

    #[test]
    fn faults_are_kept_across_restart() {
        let mut w = world_with(&["i-1"]);
        w.set_recorder_fault("i-1", Fault::new(FaultKind::Hang))
            .unwrap();
        w.restart("i-1").unwrap();
        assert_eq!(w.recorder("i-1").unwrap().fault.kind, FaultKind::Hang);
    }

    #[test]
    fn reset_forgets_everything_but_the_default_shard() {
        let mut w = world_with(&["i-1"]);
        w.upsert_shard("other", &ShardUpdate::default()).unwrap();
        w.reset();
        assert_eq!(w.recorders().count(), 0);
        assert_eq!(w.shard_views().len(), 1);
    }
}
