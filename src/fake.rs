//! Hand-written fakes of every port: in-memory, recording each call, able to inject errors.
//! Used by unit tests, the dry-run tool and (later) the simulator.

use crate::core::state::{PoolState, Versioned};
use crate::domain::*;
use crate::jitsi::{BusyStatus, HealthStatus, JibriStatus, JicofoStats};
use crate::ports::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// EC2 Auto Scaling and EC2 in memory. Mutations only record themselves and update the
/// snapshot naively (desired, protection, hook completion removes the instance).
#[derive(Clone, Default)]
pub struct FakeAws {
    pub group: Arc<Mutex<GroupSnapshot>>,
    pub ec2: Arc<Mutex<BTreeMap<InstanceId, Ec2Instance>>>,
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Operation name → error returned once.
    pub fail_next: Arc<Mutex<BTreeMap<&'static str, PortError>>>,
    /// The group's warm pool, if it has one.
    pub warm: Arc<Mutex<Option<WarmPoolSnapshot>>>,
    /// The active action's token per instance, where a test sets one: a call naming
    /// another token fails as AWS's does ("No active Lifecycle Action found with token").
    pub tokens: Arc<Mutex<BTreeMap<InstanceId, String>>>,
}

impl FakeAws {
    pub fn new(group: GroupSnapshot) -> Self {
        let ec2 = group
            .instances
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let e = Ec2Instance {
                    id: i.id.clone(),
                    private_ip: Some(format!("10.0.0.{}", n + 10)),
                    launch_time: Some(0),
                    upload_pending: false,
                    drain_requested: false,
                    drain_requested_at: None,
                    group: Some(group.name.clone()),
                    stopped: false,
                    spot: false,
                    interruption_notice_at: None,
                };
                (i.id.clone(), e)
            })
            .collect();
        Self {
            group: Arc::new(Mutex::new(group)),
            ec2: Arc::new(Mutex::new(ec2)),
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Calls that change something (everything but Describe*).
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| !c.starts_with("Describe"))
            .collect()
    }

    pub fn fail_once(&self, op: &'static str, e: PortError) {
        lock(&self.fail_next).insert(op, e);
    }

    fn record(&self, op: &'static str, detail: String) -> PortResult<()> {
        lock(&self.calls).push(format!("{op}({detail})"));
        match lock(&self.fail_next).remove(op) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn ids(v: &[InstanceId]) -> String {
    v.iter().map(|i| i.0.as_str()).collect::<Vec<_>>().join(",")
}

impl AutoScaling for FakeAws {
    async fn describe_group(&self, group: &str) -> PortResult<GroupSnapshot> {
        self.record("DescribeAutoScalingGroups", group.into())?;
        let g = lock(&self.group).clone();
        if g.name != group {
            return Err(PortError::NotFound {
                op: "DescribeAutoScalingGroups",
                message: group.into(),
            });
        }
        Ok(g)
    }

    async fn set_protection(
        &self,
        _group: &str,
        v: &[InstanceId],
        protected: bool,
    ) -> PortResult<()> {
        self.record("SetInstanceProtection", format!("{protected},{}", ids(v)))?;
        for i in lock(&self.group)
            .instances
            .iter_mut()
            .filter(|i| v.contains(&i.id))
        {
            i.protected_from_scale_in = protected;
        }
        Ok(())
    }

    async fn set_desired(&self, _group: &str, desired: u32) -> PortResult<()> {
        self.record("SetDesiredCapacity", desired.to_string())?;
        let mut g = lock(&self.group);
        if desired < g.min || desired > g.max {
            return Err(PortError::Invalid {
                op: "SetDesiredCapacity",
                message: format!("{desired} outside [{}, {}]", g.min, g.max),
            });
        }
        g.desired = desired;
        Ok(())
    }

    async fn complete(&self, a: &ActionRef, result: LifecycleResult) -> PortResult<()> {
        self.record(
            "CompleteLifecycleAction",
            format!("{},{}", result.as_str(), a.instance),
        )?;
        if let Some(w) = lock(&self.warm).as_mut() {
            if let Some(i) = w
                .instances
                .iter_mut()
                .find(|i| i.id == a.instance && i.lifecycle_state.is_wait())
            {
                i.lifecycle_state = match (&i.lifecycle_state, result) {
                    (LifecycleState::WarmedPendingWait, LifecycleResult::Continue) => {
                        LifecycleState::WarmedStopped
                    }
                    _ => LifecycleState::parse("Warmed:Terminated"),
                };
                return Ok(());
            }
        }
        let mut g = lock(&self.group);
        let active = g
            .instances
            .iter()
            .any(|i| i.id == a.instance && i.lifecycle_state.is_wait());
        if !active {
            return Err(PortError::NoActiveAction {
                op: "CompleteLifecycleAction",
                message: format!(
                    "No active Lifecycle Action found with instance ID {}",
                    a.instance
                ),
            });
        }
        for i in g.instances.iter_mut().filter(|i| i.id == a.instance) {
            i.lifecycle_state = match (&i.lifecycle_state, result) {
                (LifecycleState::PendingWait, LifecycleResult::Continue) => {
                    LifecycleState::InService
                }
                _ => LifecycleState::TerminatingProceed,
            };
        }
        Ok(())
    }

    async fn heartbeat(&self, a: &ActionRef) -> PortResult<()> {
        self.record("RecordLifecycleActionHeartbeat", a.instance.0.clone())?;
        let waiting = |v: &[GroupInstance]| {
            v.iter()
                .any(|i| i.id == a.instance && i.lifecycle_state.is_wait())
        };
        let in_wait = waiting(&lock(&self.group).instances)
            || lock(&self.warm)
                .as_ref()
                .is_some_and(|w| waiting(&w.instances));
        let token_ok = match (&a.token, lock(&self.tokens).get(&a.instance)) {
            (Some(given), Some(active)) => given == active,
            _ => true,
        };
        if in_wait && token_ok {
            Ok(())
        } else {
            Err(PortError::NoActiveAction {
                op: "RecordLifecycleActionHeartbeat",
                message: format!(
                    "No active Lifecycle Action found with instance ID {}",
                    a.instance
                ),
            })
        }
    }

    async fn terminate(&self, id: &InstanceId, decrement: bool) -> PortResult<()> {
        self.record(
            "TerminateInstanceInAutoScalingGroup",
            format!("{id},{decrement}"),
        )
    }

    async fn describe_warm_pool(&self, _group: &str) -> PortResult<Option<WarmPoolSnapshot>> {
        self.record("DescribeWarmPool", String::new())?;
        Ok(lock(&self.warm).clone())
    }

    async fn put_warm_pool(&self, _group: &str, size: u32) -> PortResult<()> {
        self.record("PutWarmPool", size.to_string())?;
        let mut w = lock(&self.warm);
        let w = w.get_or_insert_with(|| WarmPoolSnapshot {
            pool_state: "Stopped".into(),
            reuse_on_scale_in: true,
            ..WarmPoolSnapshot::default()
        });
        w.min_size = size;
        w.max_prepared = Some(size);
        lock(&self.group).warm_pool = true;
        Ok(())
    }
}

impl Ec2 for FakeAws {
    async fn describe(&self, v: &[InstanceId]) -> PortResult<Vec<Ec2Instance>> {
        self.record("DescribeInstances", ids(v))?;
        let e = lock(&self.ec2);
        Ok(v.iter().filter_map(|i| e.get(i).cloned()).collect())
    }

    async fn describe_group_members(&self, group: &str) -> PortResult<Vec<Ec2Instance>> {
        self.record("DescribeInstances", format!("group={group}"))?;
        Ok(lock(&self.ec2)
            .values()
            .filter(|e| e.group.as_deref() == Some(group))
            .cloned()
            .collect())
    }

    async fn set_termination_protection(&self, id: &InstanceId, on: bool) -> PortResult<()> {
        self.record(
            "ModifyInstanceAttribute",
            format!("DisableApiTermination={on},{id}"),
        )
    }

    async fn mark_interruption_notice(&self, id: &InstanceId, at: EpochSecs) -> PortResult<()> {
        self.record(
            "CreateTags",
            format!("{}={at},{id}", TAG_INTERRUPTION_NOTICE),
        )?;
        if let Some(e) = lock(&self.ec2).get_mut(id) {
            e.interruption_notice_at = Some(at);
        }
        Ok(())
    }

    async fn clear_drain_requested(&self, v: &[InstanceId]) -> PortResult<()> {
        self.record("DeleteTags", ids(v))?;
        for i in v {
            if let Some(e) = lock(&self.ec2).get_mut(i) {
                e.drain_requested = false;
                e.drain_requested_at = None;
            }
        }
        Ok(())
    }

    async fn mark_drain_requested(&self, v: &[InstanceId], at: EpochSecs) -> PortResult<()> {
        self.record("CreateTags", ids(v))?;
        for i in v {
            if let Some(e) = lock(&self.ec2).get_mut(i) {
                e.drain_requested = true;
                e.drain_requested_at = Some(at);
            }
        }
        Ok(())
    }
}

/// Recorders in memory: a probe result per instance; a graceful shutdown of an idle one
/// makes it exit (refused), as Jibri does.
#[derive(Clone, Default)]
pub struct FakeRecorders {
    pub probes: Arc<Mutex<BTreeMap<InstanceId, Probe>>>,
    /// A failure every `gracefulShutdown` of that recorder answers (e.g. port 3333 not
    /// open to the VPC: a timeout), whatever its health endpoint says.
    pub drain_failures: Arc<Mutex<BTreeMap<InstanceId, ProbeFailure>>>,
    pub shutdowns: Arc<Mutex<Vec<InstanceId>>>,
    pub probe_count: Arc<Mutex<u64>>,
}

impl FakeRecorders {
    pub fn set(&self, id: &str, p: Probe) {
        lock(&self.probes).insert(InstanceId::from(id), p);
    }

    pub fn shutdowns(&self) -> Vec<InstanceId> {
        lock(&self.shutdowns).clone()
    }
}

pub fn status(busy: BusyStatus) -> Probe {
    Probe::Status(JibriStatus {
        busy,
        health: HealthStatus::Healthy,
        load: None,
    })
}

impl Recorders for FakeRecorders {
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        *lock(&self.probe_count) += 1;
        lock(&self.probes)
            .get(&r.id)
            .cloned()
            .unwrap_or(Probe::Failed(ProbeFailure::Refused))
    }

    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        lock(&self.shutdowns).push(r.id.clone());
        if let Some(f) = lock(&self.drain_failures).get(&r.id) {
            return Err(f.clone());
        }
        let mut p = lock(&self.probes);
        match p.get(&r.id) {
            Some(Probe::Status(s)) if s.busy != BusyStatus::Busy => {
                p.insert(r.id.clone(), Probe::Failed(ProbeFailure::Refused));
                Ok(())
            }
            Some(Probe::Status(_)) => Ok(()),
            Some(Probe::Failed(f)) => Err(f.clone()),
            _ => Err(ProbeFailure::Refused),
        }
    }
}

/// Jicofo shards in memory: URL → stats or error.
#[derive(Clone, Default)]
pub struct FakeJicofo {
    pub shards: Arc<Mutex<BTreeMap<String, Result<JicofoStats, String>>>>,
}

impl FakeJicofo {
    pub fn set(&self, url: &str, s: Result<JicofoStats, String>) {
        lock(&self.shards).insert(url.into(), s);
    }
}

impl Jicofo for FakeJicofo {
    async fn stats(&self, url: &str) -> Result<JicofoStats, String> {
        lock(&self.shards)
            .get(url)
            .cloned()
            .unwrap_or_else(|| Err(format!("{url}: connection refused")))
    }
}

/// State in memory with ETags, for tests and local runs without a bucket.
#[derive(Clone, Default)]
pub struct MemoryStateStore {
    pub objects: Arc<Mutex<BTreeMap<String, (PoolState, u64)>>>,
    pub writes: Arc<Mutex<u64>>,
}

impl StateStore for MemoryStateStore {
    async fn load(&self, group: &str) -> PortResult<Versioned> {
        Ok(match lock(&self.objects).get(group) {
            Some((s, v)) => Versioned {
                state: s.clone(),
                etag: Some(v.to_string()),
            },
            None => Versioned {
                state: PoolState::default(),
                etag: None,
            },
        })
    }

    async fn save(&self, group: &str, state: &PoolState, etag: Option<&str>) -> PortResult<String> {
        let mut o = lock(&self.objects);
        let current = o.get(group).map(|(_, v)| v.to_string());
        if current.as_deref() != etag {
            return Err(PortError::Conflict { op: "PutObject" });
        }
        let v = o.get(group).map_or(1, |(_, v)| v + 1);
        o.insert(group.into(), (state.clone(), v));
        *lock(&self.writes) += 1;
        Ok(v.to_string())
    }
}

/// One emission: the group and its metrics.
pub type Emitted = (String, Vec<Metric>);

/// Metrics kept in memory.
#[derive(Clone, Default)]
pub struct RecordingMetrics {
    pub emitted: Arc<Mutex<Vec<Emitted>>>,
}

impl RecordingMetrics {
    pub fn last(&self, name: &str) -> Option<f64> {
        lock(&self.emitted)
            .last()
            .and_then(|(_, ms)| ms.iter().find(|m| m.name == name).map(|m| m.value))
    }
}

impl MetricsSink for RecordingMetrics {
    async fn emit(&self, group: &str, metrics: &[Metric], _at: EpochSecs) -> PortResult<()> {
        lock(&self.emitted).push((group.into(), metrics.to_vec()));
        Ok(())
    }
}
