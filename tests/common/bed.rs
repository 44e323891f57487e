//! The end-to-end bed of `pool_testbed.rs` and `warm_pool_testbed.rs`: one moto account
//! with a state bucket and the group, an in-process Jitsi emulator whose recorders follow
//! the group, and the product's controller and guard on the real AWS adapters. The Jibri
//! URL templates are production-shaped, `http://{private_ip}:PORT/...`: the test bed hands
//! instances private IPs in 127.N.0.0/16 and the emulator listens at each one while its
//! Jibri runs (an exited Jibri refuses at connect, as on a real instance).

use super::*;
use jibri_autoscaler::aws::{AwsAutoScaling, AwsEc2, S3StateStore};
use jibri_autoscaler::config::Config;
use jibri_autoscaler::controller::{Controller, TickReport};
use jibri_autoscaler::events::parse_lifecycle;
use jibri_autoscaler::fake::RecordingMetrics;
use jibri_autoscaler::guard::{Guard, GuardOutcome};
use jibri_autoscaler::http::JitsiHttp;
use jitsi_emulator::{Emulator, EmulatorHandle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const GROUP: &str = "jibri-pool";

pub type RealController =
    Controller<AwsAutoScaling, AwsEc2, JitsiHttp, JitsiHttp, S3StateStore, RecordingMetrics>;

pub struct Bed {
    pub asg: aws_sdk_autoscaling::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// The harness's own EC2 client (never intercepted or failed by a test) for what the
    /// harness looks up, such as each instance's private IP.
    pub harness_ec2: aws_sdk_ec2::Client,
    pub s3: aws_sdk_s3::Client,
    pub control: Control,
    pub emu: EmulatorHandle,
    pub metrics: RecordingMetrics,
    pub vars: BTreeMap<String, String>,
}

impl Bed {
    /// The group, and the controller's configuration: the defaults below, `vars` winning.
    pub async fn new(group: GroupSpec<'_>, vars: &[(&str, &str)]) -> Self {
        let account = new_account();
        let cfg = sdk(&account).await;
        let (asg, ec2, s3) = (
            asg_client(&cfg, &account),
            ec2_client(&cfg, &account),
            s3_client(&cfg, &account),
        );
        // Bucket names are global (in moto as on AWS): one per account.
        let bucket = format!("jibri-state-{account}");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("CreateBucket");
        create_group(&asg, &ec2, &group).await;
        let emu = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let port = emu.jibri_port();
        let mut m: BTreeMap<String, String> = [
            ("ASG_NAMES", GROUP.to_string()),
            (
                "JICOFO_STATS_URLS",
                format!("{}/stats", emu.jicofo_url("default")),
            ),
            (
                "JIBRI_HEALTH_URL",
                format!("http://{{private_ip}}:{port}/jibri/api/v1.0/health"),
            ),
            (
                "JIBRI_INTERNAL_URL",
                format!("http://{{private_ip}}:{port}/jibri/api/internal/v1.0"),
            ),
            ("PROBE_TIMEOUT_MS", "400".to_string()),
            ("SPARE_MODE", "fixed".to_string()),
            ("SPARE_FIXED", "1".to_string()),
            ("IDLE_GRACE_S", "0".to_string()),
            ("STATE_BUCKET", bucket),
            ("LOG_FORMAT", "text".to_string()),
            // The exact call lists of most tests are about capacity and hooks; the
            // acceptance scenario runs with EC2 termination protection on.
            ("EC2_TERMINATION_PROTECTION", "off".to_string()),
            // Read only with POOL_KIND=jvb: the bridges' private REST API, production-shaped.
            (
                "JVB_STATS_URL",
                format!("http://{{private_ip}}:{port}/colibri/stats"),
            ),
            (
                "JVB_DRAIN_URL",
                format!("http://{{private_ip}}:{port}/colibri/drain"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in vars {
            m.insert(k.to_string(), v.to_string());
        }
        let bed = Bed {
            asg,
            harness_ec2: ec2.clone(),
            ec2,
            s3,
            control: Control::new(&account),
            emu,
            metrics: RecordingMetrics::default(),
            vars: m,
        };
        bed.sync_recorders().await;
        bed
    }

    pub fn cfg(&self) -> Config {
        Config::from_map(&self.vars).expect("config")
    }

    /// The product's Auto Scaling adapter on this account.
    pub fn adapter(&self) -> AwsAutoScaling {
        AwsAutoScaling::from_client(self.asg.clone())
    }

    pub fn controller(&self, holder: &str) -> RealController {
        let cfg = self.cfg();
        let jitsi = JitsiHttp::new(&cfg).unwrap();
        Controller {
            asg: self.adapter(),
            ec2: AwsEc2::from_client(self.ec2.clone()),
            recorders: Arc::new(jitsi.clone()),
            jicofo: Arc::new(jitsi),
            state: S3StateStore::from_client(
                self.s3.clone(),
                cfg.state_bucket.as_deref().unwrap_or_default(),
                &cfg.state_prefix,
            ),
            metrics: self.metrics.clone(),
            holder: holder.into(),
            cfg,
        }
    }

    pub fn guard(&self) -> Guard<AwsAutoScaling, AwsEc2, JitsiHttp> {
        let cfg = self.cfg();
        Guard {
            recorders: JitsiHttp::new(&cfg).unwrap(),
            asg: self.adapter(),
            ec2: AwsEc2::from_client(self.ec2.clone()),
            cfg,
        }
    }

    /// One controller tick on the test bed's clock.
    /// One tick that must make no failed call (the tick's `errors` are asserted empty).
    pub async fn tick_ok(&self) -> TickReport {
        let r = self.tick().await;
        assert!(r.errors.is_empty(), "tick errors: {:?}", r.errors);
        r
    }

    pub async fn tick(&self) -> TickReport {
        let now = self.control.now().await;
        let r = self.controller("tick").tick(now).await.expect("tick");
        self.sync_recorders().await;
        r
    }

    /// The lifecycle events the test bed emitted since `from` (EventBridge envelopes).
    pub async fn lifecycle_events(&self, from: usize) -> Vec<Value> {
        self.control
            .events()
            .await
            .into_iter()
            .skip(from)
            .filter(|e| e["kind"] == "lifecycle")
            .map(|e| e["event"].clone())
            .collect()
    }

    /// Hands each event to the guard as EventBridge would; `(instance, outcome)`.
    pub async fn deliver(&self, events: &[Value]) -> Vec<(String, GuardOutcome)> {
        let guard = self.guard();
        let mut out = Vec::new();
        for e in events {
            let now = self.control.now().await;
            for i in parse_lifecycle(e).expect("test bed events parse") {
                let id = i.instance().map(|id| id.0.clone()).unwrap_or_default();
                out.push((id, guard.handle(&i, now).await.expect("guard")));
            }
        }
        self.sync_recorders().await;
        out
    }

    /// Every lifecycle event emitted since `from`, handed to the guard; the outcomes.
    pub async fn deliver_events(&self, from: usize) -> Vec<GuardOutcome> {
        let events = self.lifecycle_events(from).await;
        self.deliver(&events)
            .await
            .into_iter()
            .map(|(_, o)| o)
            .collect()
    }

    pub async fn event_count(&self) -> usize {
        self.control.events().await.len()
    }

    /// Mirrors the instances into the emulator: a Jibri per instance in the group
    /// (`InService`, `Pending:Wait`), like a Jibri that boots with its instance; none for
    /// an instance settled in the warm pool (stopped) or gone. Warm instances on their way
    /// in keep what the test gave them.
    pub async fn sync_recorders(&self) {
        if self.bridges() {
            return self.sync_bridges().await;
        }
        let group = instances(&self.asg, GROUP).await;
        let warm = warm_instances(&self.asg, GROUP).await;
        for (id, state, _) in &group {
            if self.emu.recorder(id).is_none() && (state == "InService" || state == "Pending:Wait")
            {
                self.add_jibri(id).await;
            }
        }
        for r in self.emu.state().recorders {
            let in_group = group.iter().any(|i| i.0 == r.id);
            let warming = warm.iter().any(|(id, state)| {
                *id == r.id
                    && !matches!(
                        state.as_str(),
                        "Warmed:Stopped" | "Warmed:Hibernated" | "Warmed:Terminated"
                    )
            });
            if !in_group && !warming {
                let _ = self.emu.delete_recorder(&r.id);
            }
        }
    }

    /// A videobridge pool (`POOL_KIND=jvb`).
    pub fn bridges(&self) -> bool {
        self.vars.get("POOL_KIND").map(String::as_str) == Some("jvb")
    }

    /// The bridge side of [`Bed::sync_recorders`]: a bridge per instance in the group
    /// (`InService`, `Pending:Wait`), listening at its private IP; a bridge whose instance
    /// left the group (terminated) vanishes, and the emulator marks every conference still
    /// running on it broken, with the time.
    pub async fn sync_bridges(&self) {
        let group = instances(&self.asg, GROUP).await;
        for (id, state, _) in &group {
            if self.emu.bridge(id).is_none() && (state == "InService" || state == "Pending:Wait") {
                let address = private_ip(&self.harness_ec2, id).await;
                self.emu
                    .set_bridge(
                        id,
                        jitsi_emulator::BridgeUpdate {
                            address: Some(address),
                            ..Default::default()
                        },
                    )
                    .unwrap();
            }
        }
        for b in self.emu.state().bridges {
            if !group.iter().any(|i| i.0 == b.id) {
                let _ = self.emu.delete_bridge(&b.id);
            }
        }
    }

    /// A Jibri on `id`'s instance (idle, healthy), listening at its private IP.
    pub async fn add_jibri(&self, id: &str) {
        let address = private_ip(&self.harness_ec2, id).await;
        self.emu
            .set_recorder(
                id,
                jitsi_emulator::RecorderUpdate {
                    address: Some(address),
                    ..Default::default()
                },
            )
            .unwrap();
    }

    /// No lifecycle action is left pending on the test bed (none timed out into the
    /// default result, none forgotten).
    pub async fn assert_no_action_left(&self) {
        let actions = self.control.call("GET", "actions", None).await;
        assert!(
            actions["actions"].as_array().is_none_or(|a| a.is_empty()),
            "{actions}"
        );
    }

    pub async fn ids(&self) -> Vec<String> {
        instances(&self.asg, GROUP)
            .await
            .into_iter()
            .map(|i| i.0)
            .collect()
    }

    pub async fn warm(&self) -> Vec<(String, String)> {
        warm_instances(&self.asg, GROUP).await
    }

    /// Where the instance is: its group lifecycle state, its warm-pool state, or "gone".
    pub async fn state_of(&self, id: &str) -> String {
        if let Some(i) = instances(&self.asg, GROUP)
            .await
            .into_iter()
            .find(|i| i.0 == id)
        {
            return i.1;
        }
        self.warm()
            .await
            .into_iter()
            .find(|i| i.0 == id)
            .map(|i| i.1)
            .unwrap_or_else(|| "gone".into())
    }
}

/// The instance's private IP (in 127.0.0.0/8 on the test bed).
pub async fn private_ip(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| i.private_ip_address().map(str::to_owned))
        .unwrap_or_else(|| panic!("{id} has no private IP"))
}
