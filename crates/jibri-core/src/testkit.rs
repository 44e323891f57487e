//! Builders of observations for table tests, property tests and the simulator.

use crate::domain::*;
use crate::jitsi::{BusyStatus, HealthStatus, JibriStatus, JicofoStats};

/// A probe result by a short name: `idle`, `busy`, `expired`, `unhealthy`, `timeout`,
/// `refused`, `http500`, `garbage`, `unprobed`.
pub fn probe(name: &str) -> Probe {
    let s = |busy, health| {
        Probe::Status(JibriStatus {
            busy,
            health,
            load: None,
        })
    };
    match name {
        "idle" => s(BusyStatus::Idle, HealthStatus::Healthy),
        "busy" => s(BusyStatus::Busy, HealthStatus::Healthy),
        "expired" => s(BusyStatus::Expired, HealthStatus::Healthy),
        "unhealthy" => s(BusyStatus::Idle, HealthStatus::Unhealthy),
        "busy-unhealthy" => s(BusyStatus::Busy, HealthStatus::Unhealthy),
        "timeout" => Probe::Failed(ProbeFailure::Timeout),
        "refused" => Probe::Failed(ProbeFailure::Refused),
        "http500" => Probe::Failed(ProbeFailure::HttpStatus(500)),
        "garbage" => Probe::Failed(ProbeFailure::Garbage("not json".into())),
        "unprobed" => Probe::NotProbed,
        other => panic!("unknown probe name {other}"),
    }
}

/// An instance, protected, with a private IP.
pub fn inst(id: &str, lifecycle: LifecycleState, probe_name: &str) -> InstanceObservation {
    InstanceObservation {
        id: InstanceId(id.to_string()),
        lifecycle,
        protected_from_scale_in: true,
        private_ip: Some("10.0.0.1".into()),
        launch_time: Some(0),
        upload_pending: false,
        drain_requested: false,
        drain_requested_at: None,
        interruption_notice_at: None,
        stopped: false,
        probe: probe(probe_name),
    }
}

/// An in-service instance.
pub fn svc(id: &str, probe_name: &str) -> InstanceObservation {
    inst(id, LifecycleState::InService, probe_name)
}

/// A group `jibri-pool` with the given bounds, retain policy on.
pub fn group(min: u32, max: u32, desired: u32) -> GroupObservation {
    GroupObservation {
        name: "jibri-pool".into(),
        min,
        max,
        desired,
        new_instances_protected: true,
        retain_on_abandon: true,
    }
}

/// An observation with one answering Jicofo shard that reports the recorders.
pub fn observation(group: GroupObservation, instances: Vec<InstanceObservation>) -> Observation {
    let available = instances
        .iter()
        .filter(|i| matches!(&i.probe, Probe::Status(s) if s.is_available()))
        .count() as u64;
    Observation {
        group,
        jicofo: JicofoObservation {
            stats: JicofoStats {
                jibri_count: Some(instances.len() as u64),
                jibri_available: Some(available),
                ..JicofoStats::default()
            },
            shards_configured: 1,
            shards_failed: 0,
        },
        instances,
        warm_pool: None,
        config_drift: Vec::new(),
    }
}

/// A real Jitsi response body from `tests/fixtures/jitsi/` (this crate's tests: a panic
/// names the missing file).
#[cfg(test)]
pub fn jitsi_fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/jitsi/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
