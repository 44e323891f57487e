//! Jitsi Videobridge (JVB) wire formats: `GET /colibri/stats`, `GET /colibri/drain`, and
//! the `bridge_selector` counters of Jicofo's `/stats`, parsed strictly where we rely on
//! a value and leniently about everything else.
//!
//! Facts from the videobridge sources (jitsi/jitsi-videobridge at a29d97d, 2026-08-19):
//! - `/colibri/stats` (`jvb/.../rest/root/colibri/stats/Stats.java`) is served on the
//!   *private* HTTP server only when the COLIBRI REST API is on
//!   (`videobridge.apis.rest.enabled`, default `false` in `jvb/src/main/resources/reference.conf`);
//!   the private server listens on port 8080 (`doc/rest.md`) and binds
//!   `videobridge.http-servers.private.host = 127.0.0.1` by default (`reference.conf`): a
//!   controller outside the instance needs `host = 0.0.0.0` (or the private IP) and the
//!   port open to it only.
//! - Its body (`stats/VideobridgeStatisticsShim.kt`) carries `stress_level` (0 = no load,
//!   1 = full capacity, "values >1 are permitted", `doc/statistics.md`; computed as the
//!   load measurement divided by its `load-threshold`: CPU usage / 0.9 by default,
//!   `reference.conf` `load-management`), `conferences`, `endpoints` (= `participants`,
//!   deprecated, octo/relay endpoints included), `local_endpoints`, `drain`,
//!   `graceful_shutdown`, `shutting_down` and `healthy`.
//! - Drain (`rest/root/colibri/drain/Drain.java`, `Videobridge.setDrainMode`): `POST
//!   /colibri/drain/enable|disable`, on by default (`videobridge.rest.drain.enabled = true`);
//!   a drained bridge "will not be assigned to new conferences", keeps its conferences, and
//!   can be undrained. `GET /colibri/drain` answers `{"drain":bool}`.
//! - Graceful shutdown (`POST /colibri/shutdown {"graceful-shutdown":true}`,
//!   `shutdown/ShutdownManager.kt`) needs the COLIBRI API *and*
//!   `videobridge.rest.shutdown.enabled` (default `false`); it is irreversible, and after
//!   `graceful-shutdown-max-duration` (24 h) the bridge goes SHUTTING_DOWN and Jicofo
//!   moves its participants off (a disruption). So this product drains, which a stock
//!   bridge honours and which can be undone; it never asks for a shutdown.

use crate::jitsi::{BusyStatus, HealthStatus, JibriStatus, WireError};
use serde_json::Value;

/// Stress above this is not a bridge's measurement (1 is full capacity; a bridge reports
/// more when overloaded, never a thousand times more).
pub const MAX_PLAUSIBLE_STRESS: f64 = 1000.0;

/// What one bridge says about itself in `/colibri/stats`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BridgeStats {
    /// `stress_level`: finite, not negative.
    pub stress_level: f64,
    /// `conferences`: conferences hosted now.
    pub conferences: u32,
    /// `endpoints` (or the deprecated `participants`): endpoints now, relays included.
    pub participants: u32,
    /// `local_endpoints`, when reported.
    pub local_endpoints: Option<u32>,
    /// `drain`: no new conferences are assigned to it (absent on old bridges: false).
    pub drain: bool,
    /// `graceful_shutdown`: rejects new conferences and exits once empty (irreversible).
    pub graceful_shutdown: bool,
    /// `shutting_down`: about to exit; Jicofo moves its participants off.
    pub shutting_down: bool,
    /// `healthy` (the bridge's own health check), when reported.
    pub healthy: Option<bool>,
}

/// A bridge's load as the planner sees it: integers, so a [`JibriStatus`] carrying it
/// stays `Eq` and `Copy`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct BridgeLoad {
    /// `stress_level` in thousandths, rounded.
    pub stress_milli: u32,
    pub conferences: u32,
    pub participants: u32,
    /// Drained (`drain`): Jicofo assigns it no new conference; undrain puts it back.
    pub drain: bool,
    /// In graceful shutdown or shutting down: never takes a conference again.
    pub shutting_down: bool,
}

impl BridgeLoad {
    pub fn stress(&self) -> f64 {
        f64::from(self.stress_milli) / 1000.0
    }

    /// Hosts a conference or an endpoint: terminating it breaks a conference.
    pub fn is_busy(&self) -> bool {
        self.conferences > 0 || self.participants > 0
    }

    /// Jicofo may assign it new conferences: neither drained nor shutting down.
    pub fn takes_conferences(&self) -> bool {
        !self.drain && !self.shutting_down
    }
}

impl BridgeStats {
    /// Hosts any conference or endpoint (local or relayed).
    pub fn is_busy(&self) -> bool {
        self.conferences > 0 || self.participants > 0 || self.local_endpoints.unwrap_or(0) > 0
    }

    pub fn load(&self) -> BridgeLoad {
        BridgeLoad {
            // Checked finite and within MAX_PLAUSIBLE_STRESS at parse: fits in u32.
            stress_milli: (self.stress_level * 1000.0).round() as u32,
            conferences: self.conferences,
            participants: self.participants.max(self.local_endpoints.unwrap_or(0)),
            drain: self.drain,
            shutting_down: self.graceful_shutdown || self.shutting_down,
        }
    }

    /// The bridge in the pool's words, so every rule written for recorders applies:
    /// busy while it hosts any conference or endpoint; a bridge whose own health check
    /// fails is UNHEALTHY; an empty bridge in graceful shutdown will never take a
    /// conference again (it exits), like an EXPIRED Jibri. The load travels along.
    pub fn status(&self) -> JibriStatus {
        let busy = if self.is_busy() {
            BusyStatus::Busy
        } else if self.graceful_shutdown || self.shutting_down {
            BusyStatus::Expired
        } else {
            BusyStatus::Idle
        };
        let health = if self.healthy == Some(false) {
            HealthStatus::Unhealthy
        } else {
            HealthStatus::Healthy
        };
        JibriStatus {
            busy,
            health,
            load: Some(self.load()),
        }
    }
}

fn not_json(e: serde_json::Error) -> WireError {
    WireError::NotJson(e.to_string())
}

fn object(body: &[u8]) -> Result<Value, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(not_json)?;
    if !v.is_object() {
        return Err(WireError::Field {
            field: "(root)",
            expected: "an object",
        });
    }
    Ok(v)
}

fn count(v: &Value, field: &'static str) -> Result<Option<u32>, WireError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(WireError::Field {
                field,
                expected: "a non-negative integer",
            }),
    }
}

fn flag(v: &Value, field: &'static str) -> Result<Option<bool>, WireError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(WireError::Field {
            field,
            expected: "a boolean",
        }),
    }
}

/// Parses a bridge's `GET /colibri/stats`. Required: `stress_level` (finite, in
/// [0, [`MAX_PLAUSIBLE_STRESS`]]), `conferences`, and `endpoints` or `participants`.
/// Anything else that is not what a bridge sends is an error (the bridge is then unknown,
/// which is busy), never a guess.
pub fn parse_colibri_stats(body: &[u8]) -> Result<BridgeStats, WireError> {
    let v = object(body)?;
    let stress_level = match v.get("stress_level") {
        Some(x) => x.as_f64(),
        None => None,
    }
    .filter(|s| s.is_finite() && (0.0..=MAX_PLAUSIBLE_STRESS).contains(s))
    .ok_or(WireError::Field {
        field: "stress_level",
        expected: "a number in [0, 1000]",
    })?;
    let conferences = count(&v, "conferences")?.ok_or(WireError::Field {
        field: "conferences",
        expected: "a non-negative integer",
    })?;
    let participants = match (count(&v, "endpoints")?, count(&v, "participants")?) {
        (Some(e), Some(p)) => e.max(p),
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => {
            return Err(WireError::Field {
                field: "endpoints",
                expected: "a non-negative integer (or `participants`)",
            })
        }
    };
    Ok(BridgeStats {
        stress_level,
        conferences,
        participants,
        local_endpoints: count(&v, "local_endpoints")?,
        drain: flag(&v, "drain")?.unwrap_or(false),
        graceful_shutdown: flag(&v, "graceful_shutdown")?.unwrap_or(false),
        shutting_down: flag(&v, "shutting_down")?.unwrap_or(false),
        healthy: flag(&v, "healthy")?,
    })
}

/// Parses `GET /colibri/drain`: `{"drain":bool}`.
pub fn parse_drain_state(body: &[u8]) -> Result<bool, WireError> {
    flag(&object(body)?, "drain")?.ok_or(WireError::Field {
        field: "drain",
        expected: "a boolean",
    })
}

/// Jicofo's `bridge_selector` counters (jicofo `BridgeSelector` stats): the pool's
/// health as the conference focus sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BridgeSelectorStats {
    /// Bridges in the brewery room.
    pub bridge_count: u64,
    /// Bridges Jicofo may select (not failed health checks).
    pub operational_bridge_count: u64,
    /// Bridges in graceful shutdown.
    pub in_shutdown_bridge_count: u64,
    /// Bridges that left the brewery without a graceful shutdown (a monotonic counter
    /// until Jicofo restarts).
    pub lost_bridges: u64,
}

impl BridgeSelectorStats {
    /// Summed over shards sharing a pool.
    pub fn saturating_add(self, o: Self) -> Self {
        BridgeSelectorStats {
            bridge_count: self.bridge_count.saturating_add(o.bridge_count),
            operational_bridge_count: self
                .operational_bridge_count
                .saturating_add(o.operational_bridge_count),
            in_shutdown_bridge_count: self
                .in_shutdown_bridge_count
                .saturating_add(o.in_shutdown_bridge_count),
            lost_bridges: self.lost_bridges.saturating_add(o.lost_bridges),
        }
    }
}

/// Reads `bridge_selector` from Jicofo's `/stats` root: `None` when absent.
pub(crate) fn parse_bridge_selector(v: &Value) -> Result<Option<BridgeSelectorStats>, WireError> {
    match v.get("bridge_selector") {
        None | Some(Value::Null) => return Ok(None),
        Some(s) if s.is_object() => {}
        Some(_) => {
            return Err(WireError::Field {
                field: "bridge_selector",
                expected: "an object",
            })
        }
    }
    let n = |pointer: &'static str| crate::jitsi::count_at(v, pointer);
    Ok(Some(BridgeSelectorStats {
        bridge_count: n("/bridge_selector/bridge_count")?,
        operational_bridge_count: n("/bridge_selector/operational_bridge_count")?,
        in_shutdown_bridge_count: n("/bridge_selector/in_shutdown_bridge_count")?,
        lost_bridges: n("/bridge_selector/lost_bridges")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::parse_jicofo_stats;

    use crate::testkit::jitsi_fixture as fixture;

    #[test]
    fn the_colibri_stats_fixture_reads_stress_conferences_and_state() {
        let s = parse_colibri_stats(&fixture("jvb-colibri-stats.json")).unwrap();
        assert_eq!(s.stress_level, 0.07104);
        assert_eq!(s.conferences, 3);
        assert_eq!(s.participants, 14);
        assert_eq!(s.local_endpoints, Some(14));
        assert!(!s.drain && !s.graceful_shutdown && !s.shutting_down);
        assert_eq!(s.healthy, Some(true));
        let status = s.status();
        assert_eq!(status.busy, BusyStatus::Busy);
        assert_eq!(status.health, HealthStatus::Healthy);
        assert_eq!(
            status.load,
            Some(BridgeLoad {
                stress_milli: 71,
                conferences: 3,
                participants: 14,
                drain: false,
                shutting_down: false
            })
        );
    }

    #[test]
    fn the_drain_fixture_reads_the_drain_state() {
        assert!(!parse_drain_state(&fixture("jvb-colibri-drain.json")).unwrap());
        assert!(parse_drain_state(b"{\"drain\":true}").unwrap());
        for bad in [&b"{}"[..], b"{\"drain\":\"yes\"}", b"[]", b"", b"true"] {
            assert!(parse_drain_state(bad).is_err(), "{bad:?}");
        }
    }

    /// Table: what a bridge says → its status for the pool.
    #[test]
    fn a_bridge_hosting_any_conference_or_endpoint_is_busy_and_an_unhealthy_one_is_unhealthy() {
        let base = |extra: &str| {
            format!("{{\"stress_level\":0.2,\"conferences\":0,\"endpoints\":0{extra}}}")
        };
        for (extra, busy, health) in [
            ("", BusyStatus::Idle, HealthStatus::Healthy),
            (
                ",\"conferences\":1",
                BusyStatus::Busy,
                HealthStatus::Healthy,
            ),
            (",\"endpoints\":1", BusyStatus::Busy, HealthStatus::Healthy),
            (
                ",\"local_endpoints\":2",
                BusyStatus::Busy,
                HealthStatus::Healthy,
            ),
            (
                ",\"healthy\":false",
                BusyStatus::Idle,
                HealthStatus::Unhealthy,
            ),
            (",\"healthy\":true", BusyStatus::Idle, HealthStatus::Healthy),
            (",\"drain\":true", BusyStatus::Idle, HealthStatus::Healthy),
            (
                ",\"graceful_shutdown\":true",
                BusyStatus::Expired,
                HealthStatus::Healthy,
            ),
            (
                ",\"shutting_down\":true",
                BusyStatus::Expired,
                HealthStatus::Healthy,
            ),
            (
                ",\"graceful_shutdown\":true,\"conferences\":2",
                BusyStatus::Busy,
                HealthStatus::Healthy,
            ),
            (
                ",\"healthy\":false,\"endpoints\":3",
                BusyStatus::Busy,
                HealthStatus::Unhealthy,
            ),
        ] {
            // A later duplicate key wins in serde_json: the extra fields override the base.
            let body = base(extra);
            let s = parse_colibri_stats(body.as_bytes()).unwrap();
            let st = s.status();
            assert_eq!((st.busy, st.health), (busy, health), "{body}");
            let load = st.load.unwrap();
            assert_eq!(load.is_busy(), busy == BusyStatus::Busy, "{body}");
            assert_eq!(
                load.takes_conferences(),
                !body.contains("drain\":true")
                    && !body.contains("shutdown\":true")
                    && !body.contains("down\":true"),
                "{body}"
            );
        }
    }

    #[test]
    fn stress_above_one_is_kept_and_rounded_to_thousandths() {
        let s = parse_colibri_stats(
            b"{\"stress_level\":1.23456,\"conferences\":9,\"participants\":80}",
        )
        .unwrap();
        assert_eq!(s.load().stress_milli, 1235);
        assert_eq!(s.participants, 80);
        assert_eq!(s.load().stress(), 1.235);
    }

    #[test]
    fn garbage_partial_negative_or_nan_stress_is_an_error_never_a_panic() {
        for body in [
            &b"<html>502</html>"[..],
            b"",
            b"{",
            b"[]",
            b"null",
            b"{}",
            b"{\"stress_level\":0.1,\"conferences\":1}",
            b"{\"conferences\":1,\"endpoints\":1}",
            b"{\"stress_level\":-0.1,\"conferences\":1,\"endpoints\":1}",
            b"{\"stress_level\":\"NaN\",\"conferences\":1,\"endpoints\":1}",
            b"{\"stress_level\":NaN,\"conferences\":1,\"endpoints\":1}",
            b"{\"stress_level\":1e300,\"conferences\":1,\"endpoints\":1}",
            b"{\"stress_level\":null,\"conferences\":1,\"endpoints\":1}",
            b"{\"stress_level\":0.1,\"conferences\":-1,\"endpoints\":1}",
            b"{\"stress_level\":0.1,\"conferences\":1.5,\"endpoints\":1}",
            b"{\"stress_level\":0.1,\"conferences\":1,\"endpoints\":99999999999}",
            b"{\"stress_level\":0.1,\"conferences\":1,\"endpoints\":1,\"drain\":\"false\"}",
            b"{\"stress_level\":0.1,\"conferences\":1,\"endpoints\":1,\"healthy\":1}",
        ] {
            assert!(
                parse_colibri_stats(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        // The fixture cut anywhere is never a panic (and never a valid body but at the end).
        let full = fixture("jvb-colibri-stats.json");
        for cut in 0..full.len() {
            let _ = parse_colibri_stats(&full[..cut]);
        }
    }

    #[test]
    fn jicofo_bridge_selector_counters_are_read() {
        let s = parse_jicofo_stats(&fixture("jicofo-stats.json")).unwrap();
        assert_eq!(
            s.bridges,
            Some(BridgeSelectorStats {
                bridge_count: 2,
                operational_bridge_count: 2,
                in_shutdown_bridge_count: 0,
                lost_bridges: 0
            })
        );
        let empty = parse_jicofo_stats(&fixture("jicofo-stats-empty.json")).unwrap();
        assert_eq!(empty.bridges.map(|b| b.bridge_count), Some(1));
        let none = parse_jicofo_stats(b"{\"conferences\":0}").unwrap();
        assert_eq!(none.bridges, None);
        for bad in [
            &b"{\"bridge_selector\":3}"[..],
            b"{\"bridge_selector\":{\"bridge_count\":-1}}",
            b"{\"bridge_selector\":{\"lost_bridges\":\"2\"}}",
        ] {
            assert!(parse_jicofo_stats(bad).is_err(), "{bad:?}");
        }
        let two = s.bridges.unwrap().saturating_add(BridgeSelectorStats {
            bridge_count: 1,
            operational_bridge_count: 0,
            in_shutdown_bridge_count: 1,
            lost_bridges: 3,
        });
        assert_eq!(
            (
                two.bridge_count,
                two.operational_bridge_count,
                two.in_shutdown_bridge_count,
                two.lost_bridges
            ),
            (3, 2, 1, 3)
        );
    }
}
