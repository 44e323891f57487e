//! The pure decision core of jibri-autoscaler: data in, data out. No tokio, no AWS SDK, no
//! HTTP client, no clock: time is a parameter. The Lambda crate (adapters, handlers) and
//! the simulator both build on it; the crate boundary is what keeps it pure.
//!
//! [`domain`] holds what a tick observes, [`jitsi`] the Jicofo/Jibri wire formats parsed
//! into it ([`bridge`] a videobridge's), [`config`] the typed configuration; [`plan`] decides a tick, [`guard`] one
//! lifecycle action, [`spare`] and [`forecast`] size the spare pool, [`state`] is what
//! survives between ticks; [`act`] carries a plan out through the effects the Lambda and
//! the simulator both implement.

pub mod act;
#[cfg(test)]
mod act_bridges_tests;
pub mod bridge;
pub mod config;
pub mod domain;
pub mod forecast;
pub mod guard;
pub mod jitsi;
pub mod plan;
#[cfg(test)]
mod plan_bridges_tests;
#[cfg(test)]
mod plan_tests;
pub mod reason;
pub mod spare;
pub mod state;
pub mod testkit;
