//! `jibri-finalize`: Jibri's finalize script for recorders in an EC2 Auto Scaling group.
//! It uploads a recording session to S3 with checksums verified end to end, deletes the
//! local files only once their objects match, and while any session is not safely in S3
//! keeps the instance tagged `jibri-autoscaler:upload-pending`, which the autoscaler's
//! controller and termination guard read as busy. See recorder/README.md for the contract.

pub mod aws;
pub mod config;
pub mod core;
pub mod fake;
pub mod pending;
pub mod ports;
pub mod uploader;
