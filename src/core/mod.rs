//! The pure decision core: data in, data out. No tokio, no AWS SDK, no HTTP, no clock.

pub mod guard;
pub mod plan;
pub mod spare;
pub mod state;
pub mod testkit;
#[cfg(test)]
mod plan_tests;
