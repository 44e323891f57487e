//! Jitsi wire formats: Jibri's health body and Jicofo's `/stats`, parsed leniently.
//!
//! Only the fields the product needs are read, so a new Jicofo field never breaks us,
//! and every value we rely on is checked: a body that is not what Jibri or Jicofo would
//! send is an error, never a guess (the caller treats that recorder as busy).
//!
//! A videobridge's formats are in [`crate::bridge`], re-exported here.

pub use crate::bridge::{
    parse_colibri_stats, parse_drain_state, BridgeLoad, BridgeSelectorStats, BridgeStats,
};
use serde_json::Value;

/// `busyStatus` of Jibri's `GET /jibri/api/v1.0/health`
/// (jibri `org.jitsi.jibri.status.ComponentBusyStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BusyStatus {
    Idle,
    Busy,
    /// Single-use mode after its one session (and its finalize): never idle again.
    Expired,
}

/// `healthStatus` (jibri `ComponentHealthStatus`); UNHEALTHY is sticky until restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
}

/// What one Jibri (or one videobridge, see [`BridgeStats::status`]) says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JibriStatus {
    pub busy: BusyStatus,
    pub health: HealthStatus,
    /// A videobridge's load (stress, conferences, drain); `None` for a Jibri.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<BridgeLoad>,
}

impl JibriStatus {
    /// Healthy and idle: the only state in which Jicofo may hand it a new recording.
    pub fn is_available(&self) -> bool {
        self.busy == BusyStatus::Idle && self.health == HealthStatus::Healthy
    }
}

/// Why a body could not be read as what the server should have sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("field `{field}` missing or not {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field `{field}` has unknown value {value:?}")]
    UnknownValue { field: &'static str, value: String },
}

/// Parses Jibri's health body, e.g. `{"status":{"busyStatus":"IDLE","health":{"healthStatus":"HEALTHY",...}}}`.
pub fn parse_jibri_health(body: &[u8]) -> Result<JibriStatus, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    let status = v.get("status").ok_or(WireError::Field {
        field: "status",
        expected: "an object",
    })?;
    let busy = match status.get("busyStatus").and_then(Value::as_str) {
        Some("IDLE") => BusyStatus::Idle,
        Some("BUSY") => BusyStatus::Busy,
        Some("EXPIRED") => BusyStatus::Expired,
        Some(other) => {
            return Err(WireError::UnknownValue {
                field: "status.busyStatus",
                value: other.to_string(),
            })
        }
        None => {
            return Err(WireError::Field {
                field: "status.busyStatus",
                expected: "a string",
            })
        }
    };
    let health = match status
        .pointer("/health/healthStatus")
        .and_then(Value::as_str)
    {
        Some("HEALTHY") => HealthStatus::Healthy,
        Some("UNHEALTHY") => HealthStatus::Unhealthy,
        Some(other) => {
            return Err(WireError::UnknownValue {
                field: "status.health.healthStatus",
                value: other.to_string(),
            })
        }
        None => {
            return Err(WireError::Field {
                field: "status.health.healthStatus",
                expected: "a string",
            })
        }
    };
    Ok(JibriStatus {
        busy,
        health,
        load: None,
    })
}

/// The parts of Jicofo's `GET /stats` the controller uses.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JicofoStats {
    /// `jibri_detector.count`: every Jibri in the brewery room (busy, unhealthy included).
    /// `None` on old builds that omit the detector.
    pub jibri_count: Option<u64>,
    /// `jibri_detector.available`: healthy and idle by their presence.
    pub jibri_available: Option<u64>,
    pub conferences: u64,
    pub participants: u64,
    pub recording_active: u64,
    pub live_streaming_active: u64,
    /// `jibri.total_recording_failures` + `jibri.total_live_streaming_failures`:
    /// monotonically increasing until Jicofo restarts.
    pub jibri_failures_total: u64,
    /// `total_conferences_created`: monotonically increasing until Jicofo restarts (a
    /// bridge pool learns its conference starts from it).
    #[serde(default)]
    pub conferences_created: u64,
    /// `bridge_selector`: Jicofo's view of the videobridges; `None` when absent.
    #[serde(default)]
    pub bridges: Option<BridgeSelectorStats>,
}

impl JicofoStats {
    /// Adds another shard's counters (the pool's view is the sum over the shards that
    /// answered). Counters come from another service: summed saturating, never
    /// overflowing; a count one shard omits (an old build) is taken from the others.
    pub fn add_shard(&mut self, s: &JicofoStats) {
        let opt = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        self.jibri_count = opt(self.jibri_count, s.jibri_count);
        self.jibri_available = opt(self.jibri_available, s.jibri_available);
        self.conferences = self.conferences.saturating_add(s.conferences);
        self.participants = self.participants.saturating_add(s.participants);
        self.recording_active = self.recording_active.saturating_add(s.recording_active);
        self.live_streaming_active = self
            .live_streaming_active
            .saturating_add(s.live_streaming_active);
        self.jibri_failures_total = self
            .jibri_failures_total
            .saturating_add(s.jibri_failures_total);
        self.conferences_created = self
            .conferences_created
            .saturating_add(s.conferences_created);
        self.bridges = match (self.bridges, s.bridges) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
    }
}

/// A counter of a Jitsi stats body at a JSON pointer: absent or `null` reads 0 (Jicofo
/// versions differ), anything but a non-negative integer is an error naming the pointer.
pub(crate) fn count_at(v: &Value, pointer: &'static str) -> Result<u64, WireError> {
    match v.pointer(pointer) {
        None | Some(Value::Null) => Ok(0),
        Some(x) => x.as_u64().ok_or(WireError::Field {
            field: pointer,
            expected: "a non-negative integer",
        }),
    }
}

/// Parses Jicofo's `/stats`. Lenient where Jicofo versions differ (absent
/// `jibri_detector`, `null` for `"NaN"`), strict about the fields it reads.
pub fn parse_jicofo_stats(body: &[u8]) -> Result<JicofoStats, WireError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| WireError::NotJson(e.to_string()))?;
    if !v.is_object() {
        return Err(WireError::Field {
            field: "(root)",
            expected: "an object",
        });
    }
    let count_at = |pointer: &'static str| count_at(&v, pointer);
    let (jibri_count, jibri_available) = match v.get("jibri_detector") {
        None | Some(Value::Null) => (None, None),
        Some(d) => {
            let count = d.get("count").and_then(Value::as_u64);
            let available = d.get("available").and_then(Value::as_u64);
            match (count, available) {
                (Some(c), Some(a)) => (Some(c), Some(a)),
                _ => {
                    return Err(WireError::Field {
                        field: "jibri_detector",
                        expected: "{count, available} integers",
                    })
                }
            }
        }
    };
    Ok(JicofoStats {
        jibri_count,
        jibri_available,
        conferences: count_at("/conferences")?,
        participants: count_at("/participants")?,
        recording_active: count_at("/jibri/recording_active")?,
        live_streaming_active: count_at("/jibri/live_streaming_active")?,
        jibri_failures_total: count_at("/jibri/total_recording_failures")?
            + count_at("/jibri/total_live_streaming_failures")?,
        conferences_created: count_at("/total_conferences_created")?,
        bridges: crate::bridge::parse_bridge_selector(&v)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shards sum every counter, the bridge pool's included (a forecast that learns the
    /// conference starts of one shard only would under-provision the others' bursts).
    #[test]
    fn shards_sum_every_counter_saturating() {
        let one = parse_jicofo_stats(&fixture("jicofo-stats.json")).unwrap();
        let mut sum = JicofoStats::default();
        sum.add_shard(&one);
        sum.add_shard(&one);
        assert_eq!(sum.conferences, 2 * one.conferences);
        assert_eq!(sum.conferences_created, 2 * one.conferences_created);
        assert!(one.conferences_created > 0);
        let bridges = one.bridges.expect("the fixture has bridge_selector");
        assert_eq!(
            sum.bridges.map(|b| b.bridge_count),
            Some(2 * bridges.bridge_count)
        );
        assert_eq!(sum.jibri_count, one.jibri_count.map(|n| 2 * n));
        let huge = JicofoStats {
            conferences_created: u64::MAX,
            jibri_count: None,
            ..one.clone()
        };
        sum.add_shard(&huge);
        assert_eq!(sum.conferences_created, u64::MAX);
        assert_eq!(
            sum.jibri_count,
            one.jibri_count.map(|n| 2 * n),
            "an omitted count adds nothing"
        );
    }

    use crate::testkit::jitsi_fixture as fixture;

    #[test]
    fn jibri_fixtures_parse_to_their_states() {
        let idle = parse_jibri_health(&fixture("jibri-health-idle.json")).unwrap();
        assert_eq!(
            idle,
            JibriStatus {
                busy: BusyStatus::Idle,
                health: HealthStatus::Healthy,
                load: None
            }
        );
        assert!(idle.is_available());
        let busy = parse_jibri_health(&fixture("jibri-health-busy.json")).unwrap();
        assert_eq!(busy.busy, BusyStatus::Busy);
        assert!(!busy.is_available());
        let expired = parse_jibri_health(&fixture("jibri-health-expired.json")).unwrap();
        assert_eq!(expired.busy, BusyStatus::Expired);
        let unhealthy = parse_jibri_health(&fixture("jibri-health-unhealthy.json")).unwrap();
        assert_eq!(
            unhealthy,
            JibriStatus {
                busy: BusyStatus::Idle,
                health: HealthStatus::Unhealthy,
                load: None
            }
        );
        assert!(!unhealthy.is_available());
    }

    #[test]
    fn garbage_jibri_bodies_are_errors_not_guesses() {
        for body in [
            &b"<html>502</html>"[..],
            b"{}",
            b"{\"status\":{}}",
            b"[]",
            b"",
            b"{\"status\":{\"busyStatus\":\"IDLE\"}}",
            b"{\"status\":{\"busyStatus\":\"SLEEPING\",\"health\":{\"healthStatus\":\"HEALTHY\"}}}",
            b"{\"status\":{\"busyStatus\":1,\"health\":{\"healthStatus\":\"HEALTHY\"}}}",
        ] {
            assert!(
                parse_jibri_health(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn jicofo_stats_fixture_reads_detector_and_counters() {
        let s = parse_jicofo_stats(&fixture("jicofo-stats.json")).unwrap();
        assert_eq!(s.jibri_count, Some(3));
        assert_eq!(s.jibri_available, Some(2));
        assert_eq!(s.conferences, 3);
        assert_eq!(s.participants, 14);
        assert_eq!(s.recording_active, 1);
        assert_eq!(s.jibri_failures_total, 2);
        assert_eq!(s.conferences_created, 211);
    }

    #[test]
    fn empty_shard_with_nan_average_parses() {
        let s = parse_jicofo_stats(&fixture("jicofo-stats-empty.json")).unwrap();
        assert_eq!(s.jibri_count, Some(0));
        assert_eq!(s.conferences, 0);
    }

    #[test]
    fn old_jicofo_without_detector_and_with_nulls_parses() {
        let body = String::from_utf8(fixture("jicofo-stats-empty.json"))
            .unwrap()
            .replace("\"NaN\"", "null")
            .replace(",\"jibri_detector\":{\"count\":0,\"available\":0}", "")
            .replace(",\"sip_jibri_detector\":{\"count\":0,\"available\":0}", "");
        assert!(!body.contains("jibri_detector"));
        let s = parse_jicofo_stats(body.as_bytes()).unwrap();
        assert_eq!(s.jibri_count, None);
        assert_eq!(s.jibri_available, None);
    }

    #[test]
    fn garbage_jicofo_bodies_are_errors() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            b"\"x\"",
            b"{\"jibri_detector\":{\"count\":\"3\",\"available\":1}}",
            b"{\"conferences\":-1}",
        ] {
            assert!(
                parse_jicofo_stats(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
