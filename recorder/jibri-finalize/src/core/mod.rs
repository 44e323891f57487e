//! The pure core: no I/O, no clock, no AWS. Data in, decisions out.

pub mod checksum;
pub mod layout;
pub mod metadata;
pub mod parts;
pub mod retry;
pub mod session;
