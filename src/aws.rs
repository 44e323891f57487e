//! The AWS adapters: EC2 Auto Scaling, EC2, S3 (controller state) and CloudWatch,
//! converting SDK types to domain types at the edge, and AWS error codes to
//! [`PortError`] in one place ([`classify_code`]).

use crate::core::state::{PoolState, Versioned};
use crate::domain::{EpochSecs, InstanceId, LifecycleState};
use crate::ports::*;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use std::time::Duration;

/// Loads the SDK configuration: standard retries (exponential backoff with jitter, which
/// covers throttling and 5xx) bounded so that one call never outlives `budget`.
pub async fn sdk_config(budget: Duration) -> SdkConfig {
    let attempt = Duration::from_secs(5).min(budget);
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt)
                .operation_timeout(budget)
                .build(),
        )
        .load()
        .await
}

/// Maps an AWS error code (and message) to a [`PortError`]: the one place that knows codes.
pub fn classify_code(op: &'static str, code: &str, message: String) -> PortError {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "SlowDown"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "ProvisionedThroughputExceededException" => PortError::Throttled { op, message },
        "ValidationError" if message.contains("No active Lifecycle Action found") => {
            PortError::NoActiveAction { op, message }
        }
        "PreconditionFailed" | "ConditionalRequestConflict" => PortError::Conflict { op },
        "NoSuchKey" | "NotFound" | "NoSuchBucket" | "InvalidInstanceID.NotFound" => {
            PortError::NotFound { op, message }
        }
        "ValidationError"
        | "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "ResourceContention"
        | "ScalingActivityInProgress" => PortError::Invalid {
            op,
            message: format!("{code}: {message}"),
        },
        _ => PortError::Service {
            op,
            message: format!("{code}: {message}"),
        },
    }
}

fn classify<E>(op: &'static str, e: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("Unknown");
            let message = err.message().unwrap_or_default().to_string();
            // A 412 (If-Match lost) is a lost race, whatever code the body carries (S3's
            // HEAD-style answers carry none): read as a status, not from a text.
            if se.raw().status().as_u16() == 412 {
                return PortError::Conflict { op };
            }
            classify_code(op, code, message)
        }
        SdkError::TimeoutError(_) => PortError::Transport {
            op,
            message: "timed out".into(),
        },
        other => PortError::Transport {
            op,
            message: aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
        },
    }
}

/// EC2 Auto Scaling.
#[derive(Clone)]
pub struct AwsAutoScaling {
    client: aws_sdk_autoscaling::Client,
}

impl AwsAutoScaling {
    pub fn new(cfg: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_autoscaling::Client::new(cfg),
        }
    }

    pub fn from_client(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }
}

fn to_u32(v: Option<i32>) -> u32 {
    v.unwrap_or(0).max(0) as u32
}

/// One instance as DescribeAutoScalingGroups and DescribeWarmPool list it.
fn group_instance(i: &aws_sdk_autoscaling::types::Instance) -> Option<GroupInstance> {
    Some(GroupInstance {
        id: InstanceId(i.instance_id()?.to_string()),
        lifecycle_state: LifecycleState::parse(
            i.lifecycle_state().map(|s| s.as_str()).unwrap_or_default(),
        ),
        protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
    })
}

impl AutoScaling for AwsAutoScaling {
    async fn describe_group(&self, group: &str) -> PortResult<GroupSnapshot> {
        const OP: &str = "DescribeAutoScalingGroups";
        let groups = async {
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(group)
                .into_paginator()
                .send();
            let mut found = None;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify(OP, e))?;
                if let Some(g) = page
                    .auto_scaling_groups()
                    .iter()
                    .find(|g| g.auto_scaling_group_name() == Some(group))
                {
                    found = Some(g.clone());
                }
            }
            found.ok_or_else(|| PortError::NotFound {
                op: OP,
                message: format!("group {group}"),
            })
        };
        let hooks = async {
            self.client
                .describe_lifecycle_hooks()
                .auto_scaling_group_name(group)
                .send()
                .await
                .map_err(|e| classify("DescribeLifecycleHooks", e))
        };
        let (g, hooks) = tokio::join!(groups, hooks);
        let (g, hooks) = (g?, hooks?);
        let retain = g
            .instance_lifecycle_policy()
            .and_then(|p| p.retention_triggers())
            .and_then(|t| t.terminate_hook_abandon())
            .is_some_and(|a| *a == aws_sdk_autoscaling::types::RetentionAction::Retain);
        Ok(GroupSnapshot {
            name: group.to_string(),
            min: to_u32(g.min_size()),
            max: to_u32(g.max_size()),
            desired: to_u32(g.desired_capacity()),
            new_instances_protected: g.new_instances_protected_from_scale_in().unwrap_or(false),
            retain_on_abandon: retain,
            instances: g.instances().iter().filter_map(group_instance).collect(),
            warm_pool: g.warm_pool_configuration().is_some(),
            hooks: hooks
                .lifecycle_hooks()
                .iter()
                .map(|h| Hook {
                    name: h.lifecycle_hook_name().unwrap_or_default().to_string(),
                    transition: h.lifecycle_transition().unwrap_or_default().to_string(),
                    heartbeat_timeout_s: h.heartbeat_timeout().unwrap_or(3600).max(0) as u64,
                    default_result: h.default_result().unwrap_or("ABANDON").to_string(),
                })
                .collect(),
        })
    }

    async fn set_protection(
        &self,
        group: &str,
        ids: &[InstanceId],
        protected: bool,
    ) -> PortResult<()> {
        // AWS accepts at most 50 instance ids per SetInstanceProtection call.
        for chunk in ids.chunks(50) {
            self.client
                .set_instance_protection()
                .auto_scaling_group_name(group)
                .set_instance_ids(Some(chunk.iter().map(|i| i.0.clone()).collect()))
                .protected_from_scale_in(protected)
                .send()
                .await
                .map_err(|e| classify("SetInstanceProtection", e))?;
        }
        Ok(())
    }

    async fn set_desired(&self, group: &str, desired: u32) -> PortResult<()> {
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(desired as i32)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| classify("SetDesiredCapacity", e))?;
        Ok(())
    }

    async fn complete(&self, a: &ActionRef, result: LifecycleResult) -> PortResult<()> {
        let mut req = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(&a.group)
            .lifecycle_hook_name(&a.hook)
            .lifecycle_action_result(result.as_str())
            .instance_id(&a.instance.0);
        if let Some(t) = &a.token {
            req = req.lifecycle_action_token(t);
        }
        req.send()
            .await
            .map_err(|e| classify("CompleteLifecycleAction", e))?;
        Ok(())
    }

    async fn heartbeat(&self, a: &ActionRef) -> PortResult<()> {
        let mut req = self
            .client
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&a.group)
            .lifecycle_hook_name(&a.hook)
            .instance_id(&a.instance.0);
        if let Some(t) = &a.token {
            req = req.lifecycle_action_token(t);
        }
        req.send()
            .await
            .map_err(|e| classify("RecordLifecycleActionHeartbeat", e))?;
        Ok(())
    }

    async fn terminate(&self, id: &InstanceId, decrement_desired: bool) -> PortResult<()> {
        self.client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(&id.0)
            .should_decrement_desired_capacity(decrement_desired)
            .send()
            .await
            .map_err(|e| classify("TerminateInstanceInAutoScalingGroup", e))?;
        Ok(())
    }

    async fn describe_warm_pool(&self, group: &str) -> PortResult<Option<WarmPoolSnapshot>> {
        const OP: &str = "DescribeWarmPool";
        let mut snapshot: Option<WarmPoolSnapshot> = None;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_warm_pool()
                .auto_scaling_group_name(group)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            let Some(c) = page.warm_pool_configuration() else {
                return Ok(None);
            };
            let s = snapshot.get_or_insert_with(|| WarmPoolSnapshot {
                min_size: to_u32(c.min_size()),
                max_prepared: c
                    .max_group_prepared_capacity()
                    .filter(|v| *v >= 0)
                    .map(|v| v as u32),
                pool_state: c
                    .pool_state()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                reuse_on_scale_in: c
                    .instance_reuse_policy()
                    .and_then(|r| r.reuse_on_scale_in())
                    .unwrap_or(false),
                status: c
                    .status()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                instances: Vec::new(),
            });
            s.instances
                .extend(page.instances().iter().filter_map(group_instance));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(snapshot),
            }
        }
    }

    async fn put_warm_pool(&self, group: &str, size: u32) -> PortResult<()> {
        use aws_sdk_autoscaling::types::{InstanceReusePolicy, WarmPoolState};
        self.client
            .put_warm_pool()
            .auto_scaling_group_name(group)
            .min_size(size as i32)
            .max_group_prepared_capacity(size as i32)
            .pool_state(WarmPoolState::Stopped)
            .instance_reuse_policy(
                InstanceReusePolicy::builder()
                    .reuse_on_scale_in(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("PutWarmPool", e))?;
        Ok(())
    }
}

/// EC2.
#[derive(Clone)]
pub struct AwsEc2 {
    client: aws_sdk_ec2::Client,
}

impl AwsEc2 {
    pub fn new(cfg: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_ec2::Client::new(cfg),
        }
    }

    pub fn from_client(client: aws_sdk_ec2::Client) -> Self {
        Self { client }
    }
}

impl AwsEc2 {
    async fn describe_filtered(
        &self,
        filter: aws_sdk_ec2::types::Filter,
        out: &mut Vec<Ec2Instance>,
    ) -> PortResult<()> {
        let mut pages = self
            .client
            .describe_instances()
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeInstances", e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let Some(id) = i.instance_id() else { continue };
                let tag = |k: &str| {
                    i.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                        .map(str::to_string)
                };
                out.push(Ec2Instance {
                    id: InstanceId(id.to_string()),
                    private_ip: i.private_ip_address().map(str::to_string),
                    launch_time: i.launch_time().map(|t| t.secs().max(0) as u64),
                    upload_pending: tag(TAG_UPLOAD_PENDING)
                        .is_some_and(|v| !v.is_empty() && v != "0"),
                    drain_requested: tag(TAG_DRAIN_REQUESTED).is_some(),
                    drain_requested_at: tag(TAG_DRAIN_REQUESTED).and_then(|v| v.parse().ok()),
                    group: tag("aws:autoscaling:groupName"),
                    stopped: i.state().and_then(|s| s.name())
                        == Some(&aws_sdk_ec2::types::InstanceStateName::Stopped),
                    spot: i.instance_lifecycle()
                        == Some(&aws_sdk_ec2::types::InstanceLifecycleType::Spot),
                    interruption_notice_at: tag(TAG_INTERRUPTION_NOTICE)
                        .and_then(|v| v.parse().ok()),
                });
            }
        }
        Ok(())
    }
}

impl Ec2 for AwsEc2 {
    async fn describe(&self, ids: &[InstanceId]) -> PortResult<Vec<Ec2Instance>> {
        use aws_sdk_ec2::types::Filter;
        let mut out = Vec::new();
        // A filter (not InstanceIds) so that an instance gone since the group listed it is
        // simply absent instead of failing the whole batch with InvalidInstanceID.NotFound.
        for chunk in ids.chunks(100) {
            let filter = Filter::builder()
                .name("instance-id")
                .set_values(Some(chunk.iter().map(|i| i.0.clone()).collect()))
                .build();
            self.describe_filtered(filter, &mut out).await?;
        }
        Ok(out)
    }

    async fn describe_group_members(&self, group: &str) -> PortResult<Vec<Ec2Instance>> {
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("tag:aws:autoscaling:groupName")
            .values(group)
            .build();
        let mut out = Vec::new();
        self.describe_filtered(filter, &mut out).await?;
        Ok(out)
    }

    async fn set_termination_protection(&self, id: &InstanceId, on: bool) -> PortResult<()> {
        use aws_sdk_ec2::types::AttributeBooleanValue;
        self.client
            .modify_instance_attribute()
            .instance_id(&id.0)
            .disable_api_termination(AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(|e| classify("ModifyInstanceAttribute", e))?;
        Ok(())
    }

    async fn mark_drain_requested(&self, ids: &[InstanceId], at: EpochSecs) -> PortResult<()> {
        for chunk in ids.chunks(100) {
            self.tag_time(chunk, TAG_DRAIN_REQUESTED, at).await?;
        }
        Ok(())
    }

    async fn clear_drain_requested(&self, ids: &[InstanceId]) -> PortResult<()> {
        use aws_sdk_ec2::types::Tag;
        for chunk in ids.chunks(100) {
            self.client
                .delete_tags()
                .set_resources(Some(chunk.iter().map(|i| i.0.clone()).collect()))
                .tags(Tag::builder().key(TAG_DRAIN_REQUESTED).build())
                .send()
                .await
                .map_err(|e| classify("DeleteTags", e))?;
        }
        Ok(())
    }

    async fn mark_interruption_notice(&self, id: &InstanceId, at: EpochSecs) -> PortResult<()> {
        self.tag_time(std::slice::from_ref(id), TAG_INTERRUPTION_NOTICE, at)
            .await
    }
}

impl AwsEc2 {
    /// `CreateTags` of one of the product's time tags (value: epoch seconds).
    async fn tag_time(&self, ids: &[InstanceId], key: &str, at: EpochSecs) -> PortResult<()> {
        use aws_sdk_ec2::types::Tag;
        self.client
            .create_tags()
            .set_resources(Some(ids.iter().map(|i| i.0.clone()).collect()))
            .tags(Tag::builder().key(key).value(at.to_string()).build())
            .send()
            .await
            .map_err(|e| classify("CreateTags", e))?;
        Ok(())
    }
}

/// The largest controller state object read (a real one is tens of kilobytes).
pub const MAX_STATE_BYTES: i64 = 4 << 20;

/// Controller state as one JSON object per group in S3, written with `If-Match`.
#[derive(Clone)]
pub struct S3StateStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3StateStore {
    pub fn new(cfg: &SdkConfig, bucket: &str, prefix: &str) -> Self {
        // Path-style keeps the local endpoint (http://127.0.0.1:PORT) working; on AWS both
        // styles reach the same bucket.
        let force_path = cfg.endpoint_url().is_some();
        let s3cfg = aws_sdk_s3::config::Builder::from(cfg)
            .force_path_style(force_path)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(s3cfg),
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    pub fn from_client(client: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    fn key(&self, group: &str) -> String {
        format!("{}{}.json", self.prefix, group)
    }
}

impl StateStore for S3StateStore {
    async fn load(&self, group: &str) -> PortResult<Versioned> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(group))
            .send()
            .await;
        let out = match got {
            Ok(o) => o,
            Err(e) => {
                return match classify("GetObject", e) {
                    PortError::NotFound { message, .. } if !message.contains("bucket") => {
                        Ok(Versioned {
                            state: PoolState::default(),
                            etag: None,
                        })
                    }
                    other => Err(other),
                }
            }
        };
        let etag = out.e_tag().map(str::to_string);
        // Threat: a state object grown or replaced by something else (a wrong prefix shared
        // with recordings, a bad write) read whole into a 256 MB function. A state is tens
        // of kilobytes; anything over the cap is treated as corrupt (rebuilt from
        // observation, written back under the same If-Match).
        if out.content_length().is_some_and(|n| n > MAX_STATE_BYTES) {
            tracing::error!(group, bytes = out.content_length(), cap = MAX_STATE_BYTES, "controller state object larger than the cap: not read, starting from an empty state");
            return Ok(Versioned {
                state: PoolState::default(),
                etag,
            });
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::Transport {
                op: "GetObject",
                message: e.to_string(),
            })?
            .into_bytes();
        let state = match serde_json::from_slice::<PoolState>(&bytes) {
            Ok(s) => s,
            Err(e) => {
                // A corrupt object is replaced (under the same If-Match): the state is
                // rebuilt from observation, which only delays scale-in by the idle grace.
                tracing::error!(group, error = %e, "controller state unreadable; starting from an empty state");
                PoolState::default()
            }
        };
        Ok(Versioned { state, etag })
    }

    async fn save(&self, group: &str, state: &PoolState, etag: Option<&str>) -> PortResult<String> {
        let body = serde_json::to_vec(state).map_err(|e| PortError::Invalid {
            op: "PutObject",
            message: e.to_string(),
        })?;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(group))
            .content_type("application/json")
            .body(body.into());
        req = match etag {
            Some(t) => req.if_match(t),
            None => req.if_none_match("*"),
        };
        let out = req.send().await.map_err(|e| classify("PutObject", e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }
}

/// Metrics through `PutMetricData`.
#[derive(Clone)]
pub struct CloudWatchSink {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
}

impl CloudWatchSink {
    pub fn new(cfg: &SdkConfig, namespace: &str) -> Self {
        Self {
            client: aws_sdk_cloudwatch::Client::new(cfg),
            namespace: namespace.into(),
        }
    }
}

impl MetricsSink for CloudWatchSink {
    async fn emit(&self, group: &str, metrics: &[Metric], at: EpochSecs) -> PortResult<()> {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
        let dim = Dimension::builder()
            .name("AutoScalingGroupName")
            .value(group)
            .build();
        let data: Vec<MetricDatum> = metrics
            .iter()
            .map(|m| {
                MetricDatum::builder()
                    .metric_name(m.name)
                    .value(m.value)
                    .unit(StandardUnit::from(m.unit))
                    .timestamp(aws_smithy_types::DateTime::from_secs(at as i64))
                    .dimensions(dim.clone())
                    .build()
            })
            .collect();
        // PutMetricData takes at most 1000 datapoints a call.
        for chunk in data.chunks(1000) {
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| classify("PutMetricData", e))?;
        }
        Ok(())
    }
}
