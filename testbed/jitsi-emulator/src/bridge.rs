//! Jitsi Videobridges (JVB) and their conferences as plain data: what a bridge's private REST API
//! reports, its drain and graceful-shutdown states, and Jicofo's bridge selection. No I/O and no
//! clock (times are parameters), so every rule is unit-tested.
//!
//! Facts this follows (jitsi/jitsi-videobridge, 2026-08, commit a29d97d):
//! - `GET /colibri/stats` (`rest/root/colibri/stats/Stats.java`) is
//!   `VideobridgeStatisticsShim.getStatsJson()` (`stats/VideobridgeStatisticsShim.kt`): the key
//!   order of `tests/fixtures/jitsi/jvb-colibri-stats.json`; `participants` = `endpoints`;
//!   `stress_level` is the load measurement over its threshold (`load_management/JvbLoadManager.kt`,
//!   `PacketRateMeasurement.kt`: packet rate up + down over `packet-rate.load-threshold`, 50000 pps
//!   in `reference.conf`), so stress rises with participants;
//! - `POST /colibri/drain/enable|disable` and `GET /colibri/drain`
//!   (`rest/root/colibri/drain/Drain.java`) set and read `Videobridge.drainMode`: the bridge keeps
//!   its conferences and reports `"drain":true`; Jicofo prefers bridges that do not drain for new
//!   conferences (jicofo `bridge/BridgeSelector.kt`: "If there are active bridges, prefer those");
//! - `POST /colibri/shutdown` `{"graceful-shutdown": true}` (`rest/root/colibri/shutdown/Shutdown.java`,
//!   only with `videobridge.rest.shutdown.enabled`, off by default) enters GRACEFUL_SHUTDOWN
//!   (`shutdown/ShutdownManager.kt`): new conferences are refused (`Videobridge.getOrCreateConference`),
//!   existing ones go on; at `graceful-shutdown-min-participants` (0) endpoints it goes SHUTTING_DOWN
//!   and the process exits after `shutting-down-delay` (1 min; the emulator exits at once);
//! - Jicofo counts a bridge that leaves its brewery outside graceful shutdown as lost
//!   (`BridgeSelector.removeJvbAddress`), and every conference on it breaks.

use serde::{Deserialize, Serialize};

use crate::fault::{Fault, FaultKind};
use crate::model::{loopback_address, ModelError, Result, World, DEFAULT_SHARD};

/// `videobridge.load-management.load-measurements.packet-rate.load-threshold` (JVB `reference.conf`).
pub const PACKET_RATE_LOAD_THRESHOLD: u64 = 50_000;

/// RTP packets a second (up + down) one participant costs the bridge unless set: the fixture's
/// 3552 pps for 14 endpoints, rounded.
pub const DEFAULT_PACKET_RATE_PER_PARTICIPANT: u64 = 250;

/// `ShutdownState` (JVB `shutdown/ShutdownState.kt`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShutdownState {
    #[default]
    Running,
    GracefulShutdown,
    ShuttingDown,
}

/// Requests one bridge has received on its REST paths, whatever was answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeCalls {
    pub stats: u64,
    /// `GET /colibri/drain`.
    pub drain_state: u64,
    pub drain_enable: u64,
    pub drain_disable: u64,
    pub shutdown: u64,
    pub health: u64,
}

/// Which bridge endpoint a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeCall {
    Stats,
    DrainState,
    DrainEnable,
    DrainDisable,
    Shutdown,
    Health,
}

/// One emulated videobridge.
#[derive(Clone, Debug, PartialEq)]
pub struct Bridge {
    pub(crate) id: String,
    pub(crate) shard: String,
    pub(crate) address: Option<std::net::Ipv4Addr>,
    pub(crate) gone: bool,
    /// What its health check says; an unhealthy bridge is not operational for Jicofo.
    pub(crate) healthy: bool,
    pub(crate) drain: bool,
    pub(crate) shutdown: ShutdownState,
    /// `videobridge.rest.shutdown.enabled` (default false): without it `/colibri/shutdown` is 404.
    pub(crate) shutdown_api: bool,
    pub(crate) packet_rate_per_participant: u64,
    pub(crate) conferences_created: u64,
    pub(crate) conferences_completed: u64,
    pub(crate) participants_total: u64,
    pub(crate) conference_ms: u64,
    pub(crate) fault: Fault,
    pub(crate) calls: BridgeCalls,
    pub(crate) followed: bool,
}

impl Bridge {
    fn new(id: &str, shard: &str) -> Self {
        Bridge {
            id: id.to_owned(),
            shard: shard.to_owned(),
            address: None,
            gone: false,
            healthy: true,
            drain: false,
            shutdown: ShutdownState::Running,
            shutdown_api: false,
            packet_rate_per_participant: DEFAULT_PACKET_RATE_PER_PARTICIPANT,
            conferences_created: 0,
            conferences_completed: 0,
            participants_total: 0,
            conference_ms: 0,
            fault: Fault::NONE,
            calls: BridgeCalls::default(),
            followed: false,
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

    pub fn address(&self) -> Option<std::net::Ipv4Addr> {
        self.address
    }

    /// Whether its own listener accepts connections (as for a recorder: while the process runs,
    /// unless `refused`; a fault that answers in its own way keeps the port open).
    pub fn listens(&self) -> bool {
        self.address.is_some()
            && match self.fault.kind {
                FaultKind::Refused => false,
                FaultKind::None | FaultKind::Slow => !self.gone,
                _ => true,
            }
    }

    /// In Jicofo's bridge brewery.
    pub fn in_brewery(&self) -> bool {
        !self.gone
    }
}

/// What a bridge's `/colibri/stats` is rendered from.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeSnapshot {
    pub conferences: u64,
    pub participants: u64,
    pub largest_conference: u64,
    pub packet_rate_download: u64,
    pub packet_rate_upload: u64,
    pub stress_level: f64,
    pub conferences_created: u64,
    pub conferences_completed: u64,
    pub conference_seconds: u64,
    pub participants_total: u64,
    pub graceful_shutdown: bool,
    pub shutting_down: bool,
    pub drain: bool,
    pub healthy: bool,
    /// `current_timestamp` (ms since the epoch).
    pub now_ms: u64,
}

/// A bridge as the control API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BridgeView {
    pub id: String,
    pub shard: String,
    pub gone: bool,
    pub healthy: bool,
    pub drain: bool,
    pub shutdown: ShutdownState,
    pub shutdown_api: bool,
    pub packet_rate_per_participant: u64,
    /// Running conferences on it.
    pub conferences: Vec<String>,
    pub participants: u64,
    pub stress_level: f64,
    pub fault: Fault,
    pub calls: BridgeCalls,
    pub followed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `PUT /control/bridges/{id}`: absent fields keep their value (defaults on creation: shard
/// `default`, healthy, not draining, shutdown API off, 250 pps per participant).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_api: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_rate_per_participant: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// How a conference ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConferenceEnd {
    /// Still running.
    Running,
    /// Its participants left.
    Ended,
    /// Its bridge went away under it (terminated, crashed, deleted) while it ran.
    Broken,
}

/// One conference, running or over: the record the test-bed proof reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conference {
    pub id: String,
    pub shard: String,
    pub bridge: String,
    pub participants: u32,
    pub started_ms: u64,
    /// When it ends by itself, if it was given a duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    pub end: ConferenceEnd,
}

/// `POST /control/jicofo/{shard}/conference`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceRequest {
    pub participants: u32,
    /// Ends by itself after this long (wall clock); absent: until ended by the control API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// Jicofo's `bridge_selector` block of one shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeSelectorStats {
    pub bridge_count: u64,
    pub operational_bridge_count: u64,
    pub in_shutdown_bridge_count: u64,
    pub lost_bridges: u64,
    pub bridge_version_count: u64,
}

/// What changed for the listeners and timers after an operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeEffects {
    /// Bridge processes that exited.
    pub exited: Vec<String>,
}

impl World {
    pub fn bridge(&self, id: &str) -> Option<&Bridge> {
        self.bridges.get(id)
    }

    pub fn bridges(&self) -> impl Iterator<Item = &Bridge> {
        self.bridges.values()
    }

    pub fn conferences(&self) -> impl Iterator<Item = &Conference> {
        self.conferences.values()
    }

    fn bridge_mut(&mut self, id: &str) -> Result<&mut Bridge> {
        self.bridges
            .get_mut(id)
            .ok_or_else(|| ModelError::UnknownBridge(id.to_owned()))
    }

    fn running_on<'a>(&'a self, bridge: &'a str) -> impl Iterator<Item = &'a Conference> + 'a {
        self.conferences
            .values()
            .filter(move |c| c.bridge == bridge && c.end == ConferenceEnd::Running)
    }

    /// Participants on a bridge now.
    pub fn bridge_participants(&self, id: &str) -> u64 {
        self.running_on(id).map(|c| u64::from(c.participants)).sum()
    }

    /// `stress_level`: packet rate (up + down) over the load threshold.
    pub fn bridge_stress(&self, id: &str) -> f64 {
        let Some(b) = self.bridges.get(id) else {
            return 0.0;
        };
        (self.bridge_participants(id) * b.packet_rate_per_participant) as f64
            / PACKET_RATE_LOAD_THRESHOLD as f64
    }

    pub fn bridge_snapshot(&self, id: &str, now_ms: u64) -> Option<BridgeSnapshot> {
        let b = self.bridges.get(id)?;
        let running: Vec<&Conference> = self.running_on(id).collect();
        let participants: u64 = running.iter().map(|c| u64::from(c.participants)).sum();
        let rate = participants * b.packet_rate_per_participant;
        // Downlink is the smaller share (the fixture: 1342 down, 2210 up).
        let down = rate * 38 / 100;
        Some(BridgeSnapshot {
            conferences: running.len() as u64,
            participants,
            largest_conference: running
                .iter()
                .map(|c| u64::from(c.participants))
                .max()
                .unwrap_or(0),
            packet_rate_download: down,
            packet_rate_upload: rate - down,
            stress_level: rate as f64 / PACKET_RATE_LOAD_THRESHOLD as f64,
            conferences_created: b.conferences_created,
            conferences_completed: b.conferences_completed,
            conference_seconds: (b.conference_ms
                + running
                    .iter()
                    .map(|c| now_ms.saturating_sub(c.started_ms))
                    .sum::<u64>())
                / 1000,
            participants_total: b.participants_total,
            graceful_shutdown: b.shutdown == ShutdownState::GracefulShutdown,
            shutting_down: b.shutdown == ShutdownState::ShuttingDown,
            drain: b.drain,
            healthy: b.healthy,
            now_ms,
        })
    }

    pub fn bridge_view(&self, id: &str) -> Option<BridgeView> {
        let b = self.bridges.get(id)?;
        Some(BridgeView {
            id: b.id.clone(),
            shard: b.shard.clone(),
            gone: b.gone,
            healthy: b.healthy,
            drain: b.drain,
            shutdown: b.shutdown,
            shutdown_api: b.shutdown_api,
            packet_rate_per_participant: b.packet_rate_per_participant,
            conferences: self.running_on(id).map(|c| c.id.clone()).collect(),
            participants: self.bridge_participants(id),
            stress_level: self.bridge_stress(id),
            fault: b.fault,
            calls: b.calls,
            followed: b.followed,
            address: b.address.map(|a| a.to_string()),
        })
    }

    pub fn bridge_views(&self) -> Vec<BridgeView> {
        self.bridges
            .keys()
            .filter_map(|id| self.bridge_view(id))
            .collect()
    }

    /// Jicofo's `bridge_selector` stats of a shard (`BridgeSelector.stats`, `updateMetrics`):
    /// `None` while no bridge was ever on the shard (the block is then the fixture's).
    pub fn bridge_selector(&self, shard: &str) -> Option<BridgeSelectorStats> {
        let s = self.shards.get(shard)?;
        if !s.bridges_seen {
            return None;
        }
        let brewery: Vec<&Bridge> = self
            .bridges
            .values()
            .filter(|b| b.shard == shard && b.in_brewery())
            .collect();
        Some(BridgeSelectorStats {
            bridge_count: brewery.len() as u64,
            operational_bridge_count: brewery.iter().filter(|b| b.healthy).count() as u64,
            in_shutdown_bridge_count: brewery
                .iter()
                .filter(|b| b.shutdown == ShutdownState::GracefulShutdown)
                .count() as u64,
            lost_bridges: s.lost_bridges,
            bridge_version_count: u64::from(!brewery.is_empty()),
        })
    }

    /// Sizes of the running conferences hosted by the shard's bridges (Jicofo counts them).
    pub(crate) fn bridge_conference_sizes(&self, shard: &str) -> Vec<u64> {
        self.conferences
            .values()
            .filter(|c| c.shard == shard && c.end == ConferenceEnd::Running)
            .map(|c| u64::from(c.participants))
            .collect()
    }

    /// `PUT /control/bridges/{id}`: creates (with defaults) or updates.
    pub fn upsert_bridge(
        &mut self,
        id: &str,
        update: &BridgeUpdate,
        now_ms: u64,
    ) -> Result<(BridgeView, BridgeEffects)> {
        crate::model::validate_name("bridge id", id)?;
        if let Some(shard) = &update.shard {
            crate::model::validate_name("shard", shard)?;
        }
        let address = update
            .address
            .as_deref()
            .map(loopback_address)
            .transpose()?;
        if !self.bridges.contains_key(id) {
            self.bridges
                .insert(id.to_owned(), Bridge::new(id, DEFAULT_SHARD));
            self.ensure_shard(DEFAULT_SHARD).bridges_seen = true;
        }
        if let Some(shard) = &update.shard {
            self.ensure_shard(shard).bridges_seen = true;
        }
        let b = self.bridge_mut(id)?;
        if let Some(shard) = &update.shard {
            b.shard = shard.clone();
        }
        if let Some(h) = update.healthy {
            b.healthy = h;
        }
        if let Some(d) = update.drain {
            b.drain = d;
        }
        if let Some(s) = update.shutdown_api {
            b.shutdown_api = s;
        }
        if let Some(r) = update.packet_rate_per_participant {
            b.packet_rate_per_participant = r;
        }
        if address.is_some() {
            b.address = address;
        }
        let _ = now_ms;
        let view = self
            .bridge_view(id)
            .ok_or_else(|| ModelError::UnknownBridge(id.to_owned()))?;
        Ok((view, BridgeEffects::default()))
    }

    /// The bridge vanishes (its instance terminated, its process killed): every conference on
    /// it breaks; Jicofo counts it lost unless it was in graceful shutdown or shutting down.
    pub fn delete_bridge(&mut self, id: &str, now_ms: u64) -> Result<()> {
        let b = self
            .bridges
            .remove(id)
            .ok_or_else(|| ModelError::UnknownBridge(id.to_owned()))?;
        self.bridge_left(&b, now_ms);
        Ok(())
    }

    fn bridge_left(&mut self, b: &Bridge, now_ms: u64) {
        if b.in_brewery() && b.shutdown == ShutdownState::Running {
            if let Some(s) = self.shards.get_mut(&b.shard) {
                s.lost_bridges += 1;
            }
        }
        for c in self.conferences.values_mut() {
            if c.bridge == b.id && c.end == ConferenceEnd::Running {
                c.end = ConferenceEnd::Broken;
                c.ended_ms = Some(now_ms);
            }
        }
    }

    /// The bridge's process exits (graceful shutdown completed, or a hard shutdown).
    fn exit_bridge(&mut self, id: &str, now_ms: u64) {
        let Some(b) = self.bridges.get(id).cloned() else {
            return;
        };
        if b.gone {
            return;
        }
        self.bridge_left(&b, now_ms);
        if let Some(b) = self.bridges.get_mut(id) {
            b.gone = true;
        }
    }

    /// `ShutdownManager.maybeShutdown`: in GRACEFUL_SHUTDOWN at 0 endpoints it goes SHUTTING_DOWN,
    /// then (after `shutting-down-delay`, at once here) exits.
    fn maybe_shutdown(&mut self, id: &str, now_ms: u64, fx: &mut BridgeEffects) {
        let graceful = self
            .bridges
            .get(id)
            .is_some_and(|b| !b.gone && b.shutdown == ShutdownState::GracefulShutdown);
        if graceful && self.bridge_participants(id) == 0 {
            if let Some(b) = self.bridges.get_mut(id) {
                b.shutdown = ShutdownState::ShuttingDown;
            }
            self.exit_bridge(id, now_ms);
            fx.exited.push(id.to_owned());
        }
    }

    pub fn record_bridge_call(&mut self, id: &str, call: BridgeCall) {
        if let Some(b) = self.bridges.get_mut(id) {
            let c = &mut b.calls;
            match call {
                BridgeCall::Stats => c.stats += 1,
                BridgeCall::DrainState => c.drain_state += 1,
                BridgeCall::DrainEnable => c.drain_enable += 1,
                BridgeCall::DrainDisable => c.drain_disable += 1,
                BridgeCall::Shutdown => c.shutdown += 1,
                BridgeCall::Health => c.health += 1,
            }
        }
    }

    /// `Videobridge.setDrainMode`.
    pub fn set_drain(&mut self, id: &str, enable: bool) -> Result<()> {
        let b = self.bridge_mut(id)?;
        if b.gone {
            return Err(ModelError::Gone(id.to_owned()));
        }
        b.drain = enable;
        Ok(())
    }

    /// `Videobridge.shutdown(graceful)`: graceful enters GRACEFUL_SHUTDOWN (and exits at once if
    /// no endpoint is left); not graceful exits now, breaking what runs.
    pub fn bridge_shutdown(
        &mut self,
        id: &str,
        graceful: bool,
        now_ms: u64,
    ) -> Result<BridgeEffects> {
        let b = self.bridge_mut(id)?;
        if b.gone {
            return Err(ModelError::Gone(id.to_owned()));
        }
        let mut fx = BridgeEffects::default();
        if graceful {
            if b.shutdown == ShutdownState::Running {
                b.shutdown = ShutdownState::GracefulShutdown;
            }
            self.maybe_shutdown(id, now_ms, &mut fx);
        } else {
            b.shutdown = ShutdownState::ShuttingDown;
            self.exit_bridge(id, now_ms);
            fx.exited.push(id.to_owned());
        }
        Ok(fx)
    }

    /// The bridge process is started again: running, not draining, no conference.
    pub fn restart_bridge(&mut self, id: &str, now_ms: u64) -> Result<BridgeView> {
        let b = self.bridge_mut(id)?.clone();
        if !b.gone {
            self.bridge_left(&b, now_ms);
        }
        let b = self.bridge_mut(id)?;
        b.gone = false;
        b.drain = false;
        b.shutdown = ShutdownState::Running;
        self.bridge_view(id)
            .ok_or_else(|| ModelError::UnknownBridge(id.to_owned()))
    }

    pub fn set_bridge_fault(&mut self, id: &str, fault: Fault) -> Result<BridgeView> {
        self.bridge_mut(id)?.fault = fault;
        self.bridge_view(id)
            .ok_or_else(|| ModelError::UnknownBridge(id.to_owned()))
    }

    /// Jicofo's `BridgeSelector.selectBridge` for a new conference: operational bridges in the
    /// brewery, not SHUTTING_DOWN; those not draining preferred, then those not in graceful
    /// shutdown; then the least stressed (`Bridge.compareTo`), ties by lowest id.
    fn select_bridge(&self, shard: &str) -> Option<String> {
        let mut candidates: Vec<&Bridge> = self
            .bridges
            .values()
            .filter(|b| b.shard == shard && b.in_brewery() && b.healthy)
            .filter(|b| b.shutdown != ShutdownState::ShuttingDown)
            .collect();
        if candidates.iter().any(|b| !b.drain) {
            candidates.retain(|b| !b.drain);
        }
        if candidates
            .iter()
            .any(|b| b.shutdown != ShutdownState::GracefulShutdown)
        {
            candidates.retain(|b| b.shutdown != ShutdownState::GracefulShutdown);
        }
        candidates
            .into_iter()
            .min_by(|a, b| {
                self.bridge_stress(&a.id)
                    .total_cmp(&self.bridge_stress(&b.id))
                    .then_with(|| a.id.cmp(&b.id))
            })
            .map(|b| b.id.clone())
    }

    /// A conference starts on `shard`: Jicofo picks a bridge. None operational, or the one chosen
    /// refuses (in graceful shutdown: `InGracefulShutdownException`): the conference fails
    /// (`NoBridgeAvailable`) and is counted in the shard's `conference_failures`.
    pub fn start_conference(
        &mut self,
        shard: &str,
        req: &ConferenceRequest,
        now_ms: u64,
    ) -> Result<Conference> {
        if !self.shards.contains_key(shard) {
            return Err(ModelError::UnknownShard(shard.to_owned()));
        }
        let chosen = self.select_bridge(shard).filter(|id| {
            self.bridges
                .get(id)
                .is_some_and(|b| b.shutdown == ShutdownState::Running)
        });
        let Some(bridge) = chosen else {
            if let Some(s) = self.shards.get_mut(shard) {
                s.conference_failures += 1;
            }
            return Err(ModelError::NoBridgeAvailable(shard.to_owned()));
        };
        self.next_conference += 1;
        let c = Conference {
            id: format!("conf-{}", self.next_conference),
            shard: shard.to_owned(),
            bridge: bridge.clone(),
            participants: req.participants,
            started_ms: now_ms,
            ends_at_ms: req.duration_ms.map(|d| now_ms + d),
            ended_ms: None,
            end: ConferenceEnd::Running,
        };
        if let Some(b) = self.bridges.get_mut(&bridge) {
            b.conferences_created += 1;
            b.participants_total += u64::from(req.participants);
        }
        if let Some(s) = self.shards.get_mut(shard) {
            s.total_conferences_created += 1;
            s.total_participants += u64::from(req.participants.max(1));
        }
        self.conferences.insert(c.id.clone(), c.clone());
        Ok(c)
    }

    /// The conference's participants leave (a no-op if it is over already). A bridge in
    /// graceful shutdown exits when its last endpoint leaves.
    pub fn end_conference(&mut self, id: &str, now_ms: u64) -> Result<BridgeEffects> {
        let c = self
            .conferences
            .get_mut(id)
            .ok_or_else(|| ModelError::UnknownConference(id.to_owned()))?;
        let mut fx = BridgeEffects::default();
        if c.end != ConferenceEnd::Running {
            return Ok(fx);
        }
        c.end = ConferenceEnd::Ended;
        c.ended_ms = Some(now_ms);
        let (bridge, started) = (c.bridge.clone(), c.started_ms);
        if let Some(b) = self.bridges.get_mut(&bridge) {
            b.conferences_completed += 1;
            b.conference_ms += now_ms.saturating_sub(started);
        }
        self.maybe_shutdown(&bridge, now_ms, &mut fx);
        Ok(fx)
    }

    /// Ends every conference whose duration is over by `now_ms`.
    pub fn end_due_conferences(&mut self, now_ms: u64) -> BridgeEffects {
        let due: Vec<String> = self
            .conferences
            .values()
            .filter(|c| {
                c.end == ConferenceEnd::Running && c.ends_at_ms.is_some_and(|t| t <= now_ms)
            })
            .map(|c| c.id.clone())
            .collect();
        let mut fx = BridgeEffects::default();
        for id in due {
            if let Ok(more) = self.end_conference(&id, now_ms) {
                fx.exited.extend(more.exited);
            }
        }
        fx
    }

    /// The ASG follower's bridge side: an InService instance without a bridge gets one; a
    /// followed bridge whose instance left the group vanishes (its conferences break).
    pub(crate) fn sync_bridges_with_group(
        &mut self,
        instances: &[crate::model::GroupInstance],
        shard: &str,
        now_ms: u64,
    ) -> Result<crate::model::GroupSync> {
        crate::model::validate_name("shard", shard)?;
        let mut sync = crate::model::GroupSync::default();
        for inst in instances {
            if crate::model::validate_name("instance id", &inst.id).is_err() {
                continue;
            }
            let address = inst
                .private_ip
                .as_deref()
                .and_then(|ip| loopback_address(ip).ok());
            match self.bridges.get_mut(&inst.id) {
                Some(b) => {
                    b.followed = true;
                    if b.address.is_none() {
                        b.address = address;
                    }
                }
                None if inst.lifecycle_state == "InService" => {
                    self.ensure_shard(shard).bridges_seen = true;
                    let mut b = Bridge::new(&inst.id, shard);
                    b.followed = true;
                    b.address = address;
                    self.bridges.insert(inst.id.clone(), b);
                    sync.added.push(inst.id.clone());
                }
                None => {}
            }
        }
        let leaving: Vec<String> = self
            .bridges
            .values()
            .filter(|b| b.followed && !instances.iter().any(|i| i.id == b.id))
            .map(|b| b.id.clone())
            .collect();
        for id in leaving {
            self.delete_bridge(&id, now_ms)?;
            sync.removed.push(id);
        }
        Ok(sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_with(bridges: &[&str]) -> World {
        let mut w = World::new(0);
        for id in bridges {
            w.upsert_bridge(id, &BridgeUpdate::default(), 0).unwrap();
        }
        w
    }

    fn conf(p: u32) -> ConferenceRequest {
        ConferenceRequest {
            participants: p,
            duration_ms: None,
        }
    }

    #[test]
    fn stress_rises_with_participants_as_packet_rate_over_the_threshold() {
        let mut w = world_with(&["b1"]);
        assert_eq!(w.bridge_stress("b1"), 0.0);
        w.start_conference("default", &conf(14), 0).unwrap();
        let s = w.bridge_snapshot("b1", 0).unwrap();
        assert_eq!(s.packet_rate_download + s.packet_rate_upload, 3500);
        assert!((s.stress_level - 0.07).abs() < 1e-9);
        w.start_conference("default", &conf(26), 0).unwrap();
        assert!((w.bridge_stress("b1") - 0.2).abs() < 1e-9);
    }

    #[test]
    fn jicofo_sends_new_conferences_to_the_least_stressed_bridge_that_does_not_drain() {
        let mut w = world_with(&["b1", "b2"]);
        let a = w.start_conference("default", &conf(10), 0).unwrap();
        assert_eq!(a.bridge, "b1");
        let b = w.start_conference("default", &conf(2), 0).unwrap();
        assert_eq!(b.bridge, "b2", "the least stressed");
        w.set_drain("b2", true).unwrap();
        let c = w.start_conference("default", &conf(2), 0).unwrap();
        assert_eq!(c.bridge, "b1", "a draining bridge gets no new conference");
        // Drain is a preference: with every bridge draining, one is still chosen.
        w.set_drain("b1", true).unwrap();
        assert!(w.start_conference("default", &conf(2), 0).is_ok());
    }

    #[test]
    fn a_drained_bridge_keeps_its_conferences_and_says_so() {
        let mut w = world_with(&["b1"]);
        let c = w.start_conference("default", &conf(3), 0).unwrap();
        w.set_drain("b1", true).unwrap();
        let s = w.bridge_snapshot("b1", 0).unwrap();
        assert!(s.drain);
        assert_eq!(s.conferences, 1);
        w.end_conference(&c.id, 10).unwrap();
        assert!(!w.bridge("b1").unwrap().is_gone(), "drain never exits");
        assert_eq!(w.bridge_snapshot("b1", 10).unwrap().conferences, 0);
    }

    #[test]
    fn graceful_shutdown_refuses_new_conferences_and_exits_after_the_last_one() {
        let mut w = world_with(&["b1"]);
        let c = w.start_conference("default", &conf(3), 0).unwrap();
        let fx = w.bridge_shutdown("b1", true, 1).unwrap();
        assert!(fx.exited.is_empty());
        assert!(w.bridge_snapshot("b1", 1).unwrap().graceful_shutdown);
        assert!(matches!(
            w.start_conference("default", &conf(1), 2),
            Err(ModelError::NoBridgeAvailable(_))
        ));
        let fx = w.end_conference(&c.id, 5).unwrap();
        assert_eq!(fx.exited, vec!["b1".to_string()]);
        assert!(w.bridge("b1").unwrap().is_gone());
        assert_eq!(w.bridge_selector("default").unwrap().lost_bridges, 0);
        assert_eq!(w.conferences().next().unwrap().end, ConferenceEnd::Ended);
    }

    #[test]
    fn a_bridge_removed_under_its_conferences_breaks_them_and_is_lost() {
        let mut w = world_with(&["b1"]);
        let c = w.start_conference("default", &conf(3), 0).unwrap();
        w.delete_bridge("b1", 7).unwrap();
        let rec = w.conferences().find(|x| x.id == c.id).unwrap();
        assert_eq!(rec.end, ConferenceEnd::Broken);
        assert_eq!(rec.ended_ms, Some(7));
        let sel = w.bridge_selector("default").unwrap();
        assert_eq!(sel.lost_bridges, 1);
        assert_eq!(sel.bridge_count, 0);
    }

    #[test]
    fn conferences_with_a_duration_end_by_themselves() {
        let mut w = world_with(&["b1"]);
        w.start_conference(
            "default",
            &ConferenceRequest {
                participants: 2,
                duration_ms: Some(100),
            },
            0,
        )
        .unwrap();
        w.end_due_conferences(99);
        assert_eq!(w.bridge_participants("b1"), 2);
        w.end_due_conferences(100);
        assert_eq!(w.bridge_participants("b1"), 0);
    }

    #[test]
    fn the_selector_counts_operational_and_in_shutdown_bridges() {
        let mut w = world_with(&["b1", "b2", "b3"]);
        w.upsert_bridge(
            "b3",
            &BridgeUpdate {
                healthy: Some(false),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        w.start_conference("default", &conf(1), 0).unwrap();
        w.bridge_shutdown("b1", true, 0).unwrap();
        let sel = w.bridge_selector("default").unwrap();
        assert_eq!(
            sel,
            BridgeSelectorStats {
                bridge_count: 3,
                operational_bridge_count: 2,
                in_shutdown_bridge_count: 1,
                lost_bridges: 0,
                bridge_version_count: 1
            }
        );
        assert_eq!(World::new(0).bridge_selector("default"), None);
    }
}
