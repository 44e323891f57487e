//! Shared harness of the integration tests: real AWS SDK clients pointed at the local test
//! bed (moto + the project's lifecycle extension, started by `make test`), one isolated
//! moto account per test, the test bed's control API, and an in-process Jitsi emulator.
//! Only 127.0.0.0/8 is ever dialed.
#![allow(dead_code)]

pub mod bed;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

/// The local AWS endpoint; `make test` exports it. Never a remote address.
pub fn endpoint() -> String {
    let url = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run the integration tests through `make test` (it starts the local test bed)");
    assert!(
        url.starts_with("http://127."),
        "refusing a non-loopback AWS endpoint: {url}"
    );
    url
}

/// A fresh 12-digit moto account for one test: its own world on the shared server.
pub fn new_account() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id() % 100_000;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_micros()
        % 100;
    format!("9{pid:05}{t:02}{n:04}")
}

#[derive(Debug)]
struct AccountHeader(String);

impl Intercept for AccountHeader {
    fn name(&self) -> &'static str {
        "moto-account"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ctx.request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

/// SDK config for one account: static test credentials, no retries (the emulator answers
/// at once; retries would only slow a failing test).
pub async fn sdk(account: &str) -> SdkConfig {
    let _ = account;
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

pub fn asg_client(cfg: &SdkConfig, account: &str) -> aws_sdk_autoscaling::Client {
    let c = aws_sdk_autoscaling::config::Builder::from(cfg)
        .interceptor(AccountHeader(account.into()))
        .build();
    aws_sdk_autoscaling::Client::from_conf(c)
}

pub fn ec2_client(cfg: &SdkConfig, account: &str) -> aws_sdk_ec2::Client {
    let c = aws_sdk_ec2::config::Builder::from(cfg)
        .interceptor(AccountHeader(account.into()))
        .build();
    aws_sdk_ec2::Client::from_conf(c)
}

pub fn cloudwatch_client(cfg: &SdkConfig, account: &str) -> aws_sdk_cloudwatch::Client {
    let c = aws_sdk_cloudwatch::config::Builder::from(cfg)
        .interceptor(AccountHeader(account.into()))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(c)
}

pub fn s3_client(cfg: &SdkConfig, account: &str) -> aws_sdk_s3::Client {
    let c = aws_sdk_s3::config::Builder::from(cfg)
        .interceptor(AccountHeader(account.into()))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(c)
}

/// The test bed's control API (`/_testbed/...`) for one account.
pub struct Control {
    pub account: String,
    http: reqwest::Client,
}

impl Control {
    pub fn new(account: &str) -> Self {
        Self {
            account: account.into(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_testbed/{path}", endpoint());
        let mut req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        }
        .header("x-moto-account-id", &self.account);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn config(&self, v: Value) -> Value {
        self.call("POST", "config", Some(v)).await
    }

    pub async fn advance(&self, seconds: f64) -> Value {
        self.call("POST", "clock/advance", Some(json!({ "seconds": seconds })))
            .await
    }

    pub async fn events(&self) -> Vec<Value> {
        self.call("GET", "events", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn deliveries(&self) -> Vec<Value> {
        self.call("GET", "deliveries", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Test-bed time, epoch seconds.
    pub async fn now(&self) -> u64 {
        self.call("GET", "clock", None).await["epoch_s"]
            .as_f64()
            .unwrap() as u64
    }
}

/// A group of recorders: launch template + ASG in the given account.
pub struct GroupSpec<'a> {
    pub name: &'a str,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub protect_new: bool,
    pub retain: bool,
    /// (hook name, transition, heartbeat timeout s, default result)
    pub hooks: Vec<(&'a str, &'a str, i32, &'a str)>,
}

pub const TERMINATE_HOOK: &str = "jibri-autoscaler-terminate";

impl Default for GroupSpec<'_> {
    fn default() -> Self {
        Self {
            name: "jibri-pool",
            min: 0,
            max: 10,
            desired: 3,
            protect_new: true,
            retain: true,
            hooks: vec![(
                TERMINATE_HOOK,
                "autoscaling:EC2_INSTANCE_TERMINATING",
                900,
                "ABANDON",
            )],
        }
    }
}

pub async fn create_group(
    asg: &aws_sdk_autoscaling::Client,
    ec2: &aws_sdk_ec2::Client,
    g: &GroupSpec<'_>,
) {
    use aws_sdk_autoscaling::types::{
        InstanceLifecyclePolicy, LaunchTemplateSpecification, LifecycleHookSpecification,
        RetentionAction, RetentionTriggers,
    };
    let lt_name = format!("{}-lt", g.name);
    ec2.create_launch_template()
        .launch_template_name(&lt_name)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let mut req = asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(g.name)
        .min_size(g.min)
        .max_size(g.max)
        .desired_capacity(g.desired)
        .availability_zones("us-east-1a")
        .new_instances_protected_from_scale_in(g.protect_new)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(&lt_name)
                .version("$Latest")
                .build(),
        );
    for (name, transition, timeout, default) in &g.hooks {
        req = req.lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name(*name)
                .lifecycle_transition(*transition)
                .heartbeat_timeout(*timeout)
                .default_result(*default)
                .build(),
        );
    }
    if g.retain {
        req = req.instance_lifecycle_policy(
            InstanceLifecyclePolicy::builder()
                .retention_triggers(
                    RetentionTriggers::builder()
                        .terminate_hook_abandon(RetentionAction::Retain)
                        .build(),
                )
                .build(),
        );
    }
    req.send().await.expect("CreateAutoScalingGroup");
}

/// `(instance id, lifecycle state, protected)` of the group's instances, sorted by id.
pub async fn instances(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Vec<(String, String, bool)> {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    let mut v: Vec<_> = out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                i.protected_from_scale_in().unwrap_or(false),
            )
        })
        .collect();
    v.sort();
    v
}

/// The group forced to 0: min = max = desired = 0 (every instance terminates).
pub async fn force_to_zero(asg: &aws_sdk_autoscaling::Client, group: &str) {
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(0)
        .max_size(0)
        .desired_capacity(0)
        .send()
        .await
        .expect("UpdateAutoScalingGroup");
}

pub async fn desired(asg: &aws_sdk_autoscaling::Client, group: &str) -> i32 {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups()[0].desired_capacity().unwrap()
}

/// EC2 state name of an instance (`running`, `terminated`, ...).
pub async fn ec2_state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string()
}

/// `CompleteLifecycleAction` by instance id on the default terminate hook.
pub async fn complete(
    asg: &aws_sdk_autoscaling::Client,
    instance: &str,
    result: &str,
) -> Result<
    (),
    aws_sdk_autoscaling::error::SdkError<
        aws_sdk_autoscaling::operation::complete_lifecycle_action::CompleteLifecycleActionError,
    >,
> {
    asg.complete_lifecycle_action()
        .auto_scaling_group_name("jibri-pool")
        .lifecycle_hook_name(TERMINATE_HOOK)
        .instance_id(instance)
        .lifecycle_action_result(result)
        .send()
        .await
        .map(|_| ())
}

/// The AWS error code and message of a failed SDK call.
pub fn error_code<E: aws_sdk_autoscaling::error::ProvideErrorMetadata>(e: &E) -> (String, String) {
    (
        e.code().unwrap_or_default().to_string(),
        e.message().unwrap_or_default().to_string(),
    )
}

/// `(instance id, lifecycle state)` of the group's warm pool as DescribeWarmPool lists it
/// (every page), sorted by id; empty when the group has no warm pool.
pub async fn warm_instances(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = asg
            .describe_warm_pool()
            .auto_scaling_group_name(group)
            .set_next_token(token.take())
            .send()
            .await
            .expect("DescribeWarmPool");
        v.extend(out.instances().iter().map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.lifecycle_state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        }));
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    v.sort();
    v
}
