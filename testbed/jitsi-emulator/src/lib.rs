//! Jitsi emulator: one HTTP server on 127.0.0.0/8 that plays Jicofo (per shard) and any number of
//! Jibri recorders, told apart by path prefix, with a control API so tests can set states, inject
//! faults and read what the system under test sent. See this crate's README for the HTTP API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jitsi_emulator::Error> {
//! use jitsi_emulator::{Emulator, RecorderUpdate};
//! let emu = Emulator::start("127.0.0.1:0").await?;
//! emu.add_recorder("i-0123456789abcdef0")?;
//! emu.start_recording("i-0123456789abcdef0")?;
//! let health = format!("{}/jibri/api/v1.0/health", emu.jibri_url("i-0123456789abcdef0"));
//! let stats = format!("{}/stats", emu.jicofo_url("default"));
//! # let _ = (health, stats, RecorderUpdate::default());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod bridge;
mod control;
pub mod fault;
pub mod follow;
pub mod model;
pub mod render;
mod server;

use serde::{Deserialize, Serialize};

pub use bridge::{
    BridgeCalls, BridgeUpdate, BridgeView, Conference, ConferenceEnd, ConferenceRequest,
    ShutdownState,
};
pub use fault::{Fault, FaultKind};
pub use follow::{FollowConfig, FollowView};
pub use model::{
    BusyStatus, GroupInstance, HealthStatus, ModelError, Phase, RecorderCalls, RecorderUpdate,
    RecorderView, ShardCalls, ShardUpdate, ShardView, DEFAULT_SHARD,
};
pub use server::{Emulator, EmulatorHandle, Options};

/// Everything the emulator knows, as `GET /control/state` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    pub shards: Vec<ShardView>,
    pub recorders: Vec<RecorderView>,
    /// The Auto Scaling group being followed, if any.
    pub follow: Option<FollowView>,
    /// Videobridges.
    #[serde(default)]
    pub bridges: Vec<BridgeView>,
    /// Every conference hosted by a bridge, running or over.
    #[serde(default)]
    pub conferences: Vec<Conference>,
}

/// Why an emulator operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listen address {0:?} must be an IPv4 socket address in 127.0.0.0/8")]
    NotLoopback(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("follow: {0}")]
    Follow(String),
}
