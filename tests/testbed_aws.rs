//! The local AWS test bed, driven with the real SDK clients: lifecycle hooks faithful to
//! the AWS documentation (moto alone stores hooks and ignores them), event delivery, and
//! CloudWatch over the SDK's current RPC v2 CBOR protocol.

mod common;

use common::*;
use jibri_autoscaler::events::{parse_lifecycle, Incoming, LifecycleEvent};
use serde_json::json;

#[tokio::test]
async fn terminate_hook_holds_the_unprotected_instance_until_completed() {
    let account = new_account();
    let cfg = sdk(&account).await;
    let (asg, ec2) = (asg_client(&cfg, &account), ec2_client(&cfg, &account));
    create_group(
        &asg,
        &ec2,
        &GroupSpec {
            protect_new: false,
            retain: false,
            ..GroupSpec::default()
        },
    )
    .await;
    let ids: Vec<String> = instances(&asg, "jibri-pool")
        .await
        .into_iter()
        .map(|i| i.0)
        .collect();
    assert_eq!(ids.len(), 3);
    asg.set_instance_protection()
        .auto_scaling_group_name("jibri-pool")
        .instance_ids(&ids[0])
        .instance_ids(&ids[1])
        .protected_from_scale_in(true)
        .send()
        .await
        .unwrap();

    asg.set_desired_capacity()
        .auto_scaling_group_name("jibri-pool")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let now = instances(&asg, "jibri-pool").await;
    let waiting: Vec<_> = now.iter().filter(|i| i.1 == "Terminating:Wait").collect();
    assert_eq!(waiting.len(), 1, "{now:?}");
    let victim = waiting[0].0.clone();
    assert_eq!(victim, ids[2], "scale-in must honour protection");
    // Protected instances are kept; the group is above desired only by the waiting one.
    assert_eq!(now.iter().filter(|i| i.1 == "InService").count(), 2);
    assert_eq!(
        ec2_state(&ec2, &victim).await,
        "running",
        "a held instance keeps running"
    );

    asg.record_lifecycle_action_heartbeat()
        .auto_scaling_group_name("jibri-pool")
        .lifecycle_hook_name(TERMINATE_HOOK)
        .instance_id(&victim)
        .send()
        .await
        .expect("heartbeat");

    complete(&asg, &victim, "CONTINUE").await.expect("CONTINUE");
    assert!(!instances(&asg, "jibri-pool")
        .await
        .iter()
        .any(|i| i.0 == victim));
    assert_eq!(ec2_state(&ec2, &victim).await, "terminated");

    let again = complete(&asg, &victim, "CONTINUE")
        .await
        .expect_err("a second completion must fail as on AWS");
    let (code, message) = error_code(&again.into_service_error());
    assert_eq!(code, "ValidationError");
    assert!(
        message.starts_with("No active Lifecycle Action found with instance ID"),
        "{message}"
    );
    // And the product classifies it as "already completed".
    assert!(matches!(
        jibri_autoscaler::aws::classify_code("CompleteLifecycleAction", &code, message),
        jibri_autoscaler::ports::PortError::NoActiveAction { .. }
    ));
}

#[tokio::test]
async fn abandon_with_retain_leaves_the_instance_retained_outside_desired() {
    let account = new_account();
    let cfg = sdk(&account).await;
    let (asg, ec2) = (asg_client(&cfg, &account), ec2_client(&cfg, &account));
    create_group(
        &asg,
        &ec2,
        &GroupSpec {
            desired: 2,
            protect_new: false,
            ..GroupSpec::default()
        },
    )
    .await;
    let before = instances(&asg, "jibri-pool").await;
    let victim = before[0].0.clone();
    asg.terminate_instance_in_auto_scaling_group()
        .instance_id(&victim)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    assert_eq!(
        instances(&asg, "jibri-pool")
            .await
            .iter()
            .find(|i| i.0 == victim)
            .unwrap()
            .1,
        "Terminating:Wait"
    );

    complete(&asg, &victim, "ABANDON").await.unwrap();
    let after = instances(&asg, "jibri-pool").await;
    assert_eq!(
        after.iter().find(|i| i.0 == victim).unwrap().1,
        "Terminating:Retained",
        "{after:?}"
    );
    assert_eq!(ec2_state(&ec2, &victim).await, "running");
    // Outside desired capacity: a replacement launched, two in service besides it.
    assert_eq!(
        after.iter().filter(|i| i.1 == "InService").count(),
        2,
        "{after:?}"
    );
    // Until someone terminates it.
    asg.terminate_instance_in_auto_scaling_group()
        .instance_id(&victim)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .unwrap();
    assert_eq!(ec2_state(&ec2, &victim).await, "terminated");
}

#[tokio::test]
async fn heartbeat_timeout_applies_the_default_result_on_the_test_bed_clock() {
    let account = new_account();
    let cfg = sdk(&account).await;
    let (asg, ec2) = (asg_client(&cfg, &account), ec2_client(&cfg, &account));
    let control = Control::new(&account);
    // A two-hour heartbeat timeout, DefaultResult ABANDON, retain policy.
    create_group(
        &asg,
        &ec2,
        &GroupSpec {
            desired: 1,
            protect_new: false,
            hooks: vec![(
                TERMINATE_HOOK,
                "autoscaling:EC2_INSTANCE_TERMINATING",
                7200,
                "ABANDON",
            )],
            ..GroupSpec::default()
        },
    )
    .await;
    let victim = instances(&asg, "jibri-pool").await[0].0.clone();
    asg.set_desired_capacity()
        .auto_scaling_group_name("jibri-pool")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    control.advance(3600.0).await;
    asg.record_lifecycle_action_heartbeat()
        .auto_scaling_group_name("jibri-pool")
        .lifecycle_hook_name(TERMINATE_HOOK)
        .instance_id(&victim)
        .send()
        .await
        .unwrap();
    control.advance(7000.0).await; // 1 h 57 min after the heartbeat: still held
    assert_eq!(instances(&asg, "jibri-pool").await[0].1, "Terminating:Wait");
    control.advance(300.0).await; // past the timeout: DefaultResult ABANDON -> retained
    assert_eq!(
        instances(&asg, "jibri-pool").await[0].1,
        "Terminating:Retained"
    );
}

#[tokio::test]
async fn the_delivered_lifecycle_event_is_an_eventbridge_event_the_guard_parses() {
    let account = new_account();
    let cfg = sdk(&account).await;
    let (asg, ec2) = (asg_client(&cfg, &account), ec2_client(&cfg, &account));
    let control = Control::new(&account);
    let sink = Sink::start().await;
    control
        .config(json!({ "lifecycle_event_url": sink.url }))
        .await;
    create_group(
        &asg,
        &ec2,
        &GroupSpec {
            desired: 1,
            protect_new: false,
            ..GroupSpec::default()
        },
    )
    .await;
    let victim = instances(&asg, "jibri-pool").await[0].0.clone();
    asg.set_desired_capacity()
        .auto_scaling_group_name("jibri-pool")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    let body = sink.next().await;
    let typed: LifecycleEvent = serde_json::from_slice(&body)
        .expect("an aws_lambda_events EventBridge event with the product's detail type");
    assert_eq!(typed.detail_type, "EC2 Instance-terminate Lifecycle Action");
    assert_eq!(typed.source, "aws.autoscaling");
    assert_eq!(typed.detail.ec2_instance_id, victim);
    assert_eq!(typed.detail.lifecycle_hook_name, TERMINATE_HOOK);
    assert_eq!(typed.detail.origin.as_deref(), Some("AutoScalingGroup"));
    assert_eq!(typed.detail.destination.as_deref(), Some("EC2"));
    assert!(typed.detail.lifecycle_action_token.is_some());
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let parsed = parse_lifecycle(&v).unwrap();
    assert!(
        matches!(&parsed[0], Incoming::Action(a) if a.instance.0 == victim && a.token == typed.detail.lifecycle_action_token)
    );
}

#[tokio::test]
async fn the_current_cloudwatch_sdk_puts_a_metric_that_reads_back() {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    use jibri_autoscaler::aws::CloudWatchSink;
    use jibri_autoscaler::ports::{Metric as M, MetricsSink};
    // The product's own sink (PutMetricData, which the current SDK sends as RPC v2 CBOR),
    // in moto's default account; a group name of its own keeps the test isolated.
    let group = format!("cw-{}", new_account());
    let cfg = sdk("123456789012").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    CloudWatchSink::new(&cfg, "JibriAutoscaler")
        .emit(
            &group,
            &[
                M {
                    name: "Busy",
                    value: 7.0,
                    unit: "Count",
                },
                M {
                    name: "Idle",
                    value: 2.0,
                    unit: "Count",
                },
            ],
            now,
        )
        .await
        .expect("PutMetricData over RPC v2 CBOR");
    let cw = aws_sdk_cloudwatch::Client::new(&cfg);
    let q = MetricDataQuery::builder()
        .id("busy")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("JibriAutoscaler")
                        .metric_name("Busy")
                        .dimensions(
                            Dimension::builder()
                                .name("AutoScalingGroupName")
                                .value(&group)
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Maximum")
                .build(),
        )
        .build();
    let out = cw
        .get_metric_data()
        .metric_data_queries(q)
        .start_time(aws_smithy_types::DateTime::from_secs(now as i64 - 600))
        .end_time(aws_smithy_types::DateTime::from_secs(now as i64 + 600))
        .send()
        .await
        .expect("GetMetricData");
    assert_eq!(out.metric_data_results()[0].values(), &[7.0]);
}

/// A one-shot HTTP receiver on 127.0.0.1 standing in for the Lambda invoke URL.
struct Sink {
    url: String,
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

impl Sink {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/2015-03-31/functions/termination-guard/invocations",
            listener.local_addr().unwrap()
        );
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let _ = tx.send(buf[end + 4..end + 4 + len].to_vec()).await;
                            break;
                        }
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
            }
        });
        Self { url, rx }
    }

    async fn next(mut self) -> Vec<u8> {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.rx.recv())
            .await
            .expect("no event delivered within 10 s")
            .unwrap()
    }
}
