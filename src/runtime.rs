//! Wiring shared by the Lambda mains: tracing, the clock, and the real adapters built
//! once per cold start from the validated [`Config`].

use crate::aws::{AwsAutoScaling, AwsEc2, CloudWatchSink, S3StateStore};
use crate::config::{Config, MetricsSinkKind};
use crate::core::state::{PoolState, Versioned};
use crate::fake::MemoryStateStore;
use crate::http::JitsiHttp;
use crate::metrics::{AnySink, EmfStdout};
use crate::ports::{PortResult, StateStore};
use aws_config::SdkConfig;

/// JSON logs for CloudWatch Logs (one object a line), or text for a terminal.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,aws_smithy_runtime=warn,aws_config=warn,hyper=warn",
        )
    });
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        b.json().flatten_event(true).without_time().try_init()
    } else {
        b.try_init()
    };
}

/// Wall-clock seconds since the epoch: read here, at the edge, never in the core.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// S3 in production, memory when no bucket is configured (local runs).
#[derive(Clone)]
pub enum AnyStateStore {
    S3(S3StateStore),
    Memory(MemoryStateStore),
}

impl StateStore for AnyStateStore {
    async fn load(&self, group: &str) -> PortResult<Versioned> {
        match self {
            Self::S3(s) => s.load(group).await,
            Self::Memory(s) => s.load(group).await,
        }
    }

    async fn save(&self, group: &str, state: &PoolState, etag: Option<&str>) -> PortResult<String> {
        match self {
            Self::S3(s) => s.save(group, state, etag).await,
            Self::Memory(s) => s.save(group, state, etag).await,
        }
    }
}

/// The real adapters, built once.
#[derive(Clone)]
pub struct Adapters {
    pub asg: AwsAutoScaling,
    pub ec2: AwsEc2,
    pub jitsi: JitsiHttp,
    pub state: AnyStateStore,
    pub cloudwatch: CloudWatchSink,
}

impl Adapters {
    pub fn new(cfg: &Config, sdk: &SdkConfig) -> Result<Self, String> {
        let state = match &cfg.state_bucket {
            Some(b) => AnyStateStore::S3(S3StateStore::new(sdk, b, &cfg.state_prefix)),
            None => AnyStateStore::Memory(MemoryStateStore::default()),
        };
        tracing::info!(pool_kind = ?cfg.pool_kind, "adapters for the pool's kind");
        Ok(Self {
            asg: AwsAutoScaling::new(sdk),
            ec2: AwsEc2::new(sdk),
            jitsi: JitsiHttp::new(cfg)?,
            state,
            cloudwatch: CloudWatchSink::new(sdk, &cfg.metrics_namespace),
        })
    }

    pub fn metrics(&self, cfg: &Config) -> AnySink {
        match cfg.metrics_sink {
            MetricsSinkKind::Emf => AnySink::Emf(EmfStdout {
                namespace: cfg.metrics_namespace.clone(),
            }),
            MetricsSinkKind::CloudWatch => AnySink::CloudWatch(self.cloudwatch.clone()),
        }
    }
}
