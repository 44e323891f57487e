//! The pure decision core: data in, data out. No tokio, no AWS SDK, no HTTP, no clock.

pub mod forecast;
pub mod guard;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod spare;
pub mod state;
pub mod testkit;
