//! Injected misbehaviour of one emulated server (a Jibri or a Jicofo shard): how a request that
//! reaches it is answered instead of normally.

use serde::{Deserialize, Serialize};

/// Delay used by [`FaultKind::Slow`] when the control request gives none.
pub const DEFAULT_SLOW_DELAY_MS: u64 = 1_000;

/// Size of the whitespace padding streamed before the real body by [`FaultKind::Huge`]: 10 MiB.
pub const HUGE_PADDING_BYTES: usize = 10 * 1024 * 1024;

/// What goes wrong with every request to one emulated server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Answer as the real server would.
    #[default]
    None,
    /// Read the request and never answer (until the client gives up or the emulator stops).
    Hang,
    /// Answer normally after `delay_ms`.
    Slow,
    /// Answer `500 Internal Server Error`.
    Http500,
    /// Answer `200` with a body that is not JSON.
    Garbage,
    /// Answer `200` with the normal body behind 10 MiB of JSON whitespace, streamed (chunked).
    Huge,
    /// Nothing listens: a recorder's own listener is closed while this is set, so a connect is
    /// refused (ECONNREFUSED), as for a Jibri that is not running. On the path-routed
    /// listener (and for Jicofo shards), which cannot refuse per server, the connection is
    /// reset as soon as the request is read.
    Refused,
    /// Reset the connection (RST) as soon as the request is read: a process that dies while
    /// answering, or a middlebox. Says nothing about whether the Jibri still runs.
    Reset,
}

impl FaultKind {
    /// The lowercase name used on the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::Hang => "hang",
            FaultKind::Slow => "slow",
            FaultKind::Http500 => "http500",
            FaultKind::Garbage => "garbage",
            FaultKind::Huge => "huge",
            FaultKind::Refused => "refused",
            FaultKind::Reset => "reset",
        }
    }
}

/// A fault and its parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    /// Only meaningful for [`FaultKind::Slow`]; defaults to [`DEFAULT_SLOW_DELAY_MS`] there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl Fault {
    /// No fault: the server answers normally.
    pub const NONE: Fault = Fault {
        kind: FaultKind::None,
        delay_ms: None,
    };

    /// A fault of `kind` with no parameter.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            delay_ms: None,
        }
    }

    /// [`FaultKind::Slow`] with an explicit delay.
    pub fn slow(delay_ms: u64) -> Self {
        Fault {
            kind: FaultKind::Slow,
            delay_ms: Some(delay_ms),
        }
    }

    /// The delay a slow answer waits.
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms.unwrap_or(DEFAULT_SLOW_DELAY_MS)
    }

    pub fn is_none(&self) -> bool {
        self.kind == FaultKind::None
    }
}

impl From<FaultKind> for Fault {
    fn from(kind: FaultKind) -> Self {
        Fault::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_their_control_api_json() {
        let f: Fault = serde_json::from_str(r#"{"kind":"slow","delay_ms":250}"#).unwrap();
        assert_eq!(f, Fault::slow(250));
        let f: Fault = serde_json::from_str(r#"{"kind":"http500"}"#).unwrap();
        assert_eq!(f, Fault::new(FaultKind::Http500));
        assert_eq!(
            Fault::new(FaultKind::Slow).delay_ms(),
            DEFAULT_SLOW_DELAY_MS
        );
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"explode"}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"hang","delay":1}"#).is_err());
    }

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in [
            FaultKind::None,
            FaultKind::Hang,
            FaultKind::Slow,
            FaultKind::Http500,
            FaultKind::Garbage,
            FaultKind::Huge,
            FaultKind::Refused,
            FaultKind::Reset,
        ] {
            let json = format!("\"{}\"", kind.as_str());
            assert_eq!(serde_json::from_str::<FaultKind>(&json).unwrap(), kind);
        }
    }
}
