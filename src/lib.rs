//! jibri-autoscaler: keeps a pool of Jitsi Jibri recorders right-sized on EC2 Auto Scaling,
//! and never lets the autoscaler kill a busy recorder.
//!
//! Layout: [`core`] is the pure decision core (no I/O); [`ports`] are the narrow traits
//! through which the handlers see the world, each with one AWS/HTTP adapter
//! ([`aws`], [`http`]) and one fake ([`fake`]); [`controller`] and [`guard`] are the
//! observe → plan → act handlers the Lambda mains wire up.

/// The pure decision core lives in its own crate (`crates/jibri-core`); re-exported here
/// under the paths the adapters and handlers use.
pub use jibri_core as core;
pub use jibri_core::{config, domain, jitsi};

pub mod aws;
pub mod controller;
pub mod events;
pub mod fake;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod runtime;
pub mod safety;
