//! `make bench`: one controller tick over 1,000 recorders, 50 of them hung, against the
//! local AWS test bed and the Jitsi emulator (each its own process, so only the
//! controller's own memory is measured). Prints wall time (median of the measured ticks),
//! CPU time and peak RSS. Targets (issue 3): wall <= probe timeout + 1 s, peak RSS <= 64 MB.
//! Only 127.0.0.0/8 is dialed.

use jibri_autoscaler::aws::{AwsAutoScaling, AwsEc2};
use jibri_autoscaler::config::Config;
use jibri_autoscaler::controller::Controller;
use jibri_autoscaler::fake::{MemoryStateStore, RecordingMetrics};
use jibri_autoscaler::http::JitsiHttp;
use jibri_autoscaler::ports::{AutoScaling, Ec2};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const N: usize = 1000;
const HUNG: usize = 50;
const PROBE_TIMEOUT_MS: u64 = 1000;

fn env(k: &str) -> String {
    let v = std::env::var(k).unwrap_or_else(|_| panic!("{k} not set: run through `make bench`"));
    assert!(
        v.starts_with("http://127."),
        "refusing non-loopback {k}={v}"
    );
    v
}

/// utime + stime of this process in seconds (Linux, USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn put(http: &reqwest::Client, url: String, body: String) {
    let r = http
        .put(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("emulator");
    assert!(r.status().is_success(), "{url}: {}", r.status());
}

async fn post(http: &reqwest::Client, url: String, body: String) {
    let r = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("emulator");
    assert!(r.status().is_success(), "{url}: {}", r.status());
}

#[tokio::main]
async fn main() {
    let aws = env("AWS_ENDPOINT_URL");
    let jitsi = env("JITSI_EMULATOR_URL");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&aws)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .load()
        .await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let t0 = Instant::now();
    ec2.create_launch_template()
        .launch_template_name("bench")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("launch template");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("bench-pool")
        .min_size(0)
        .max_size(N as i32)
        .desired_capacity(N as i32)
        .availability_zones("us-east-1a")
        .new_instances_protected_from_scale_in(true)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("bench")
                .version("$Latest")
                .build(),
        )
        .send()
        .await
        .expect("group");
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("bench-pool")
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(String::from))
        .collect();
    assert_eq!(ids.len(), N);
    // Each Jibri listens at its instance's private IP (127.0.0.0/8 on the test bed).
    let mut private_ips: BTreeMap<String, String> = BTreeMap::new();
    let mut pages = aws_sdk_ec2::Client::new(&sdk)
        .describe_instances()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for i in page
            .expect("DescribeInstances")
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
        {
            if let (Some(id), Some(ip)) = (i.instance_id(), i.private_ip_address()) {
                private_ips.insert(id.to_owned(), ip.to_owned());
            }
        }
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (n, id) in ids.iter().enumerate() {
        let status = if n % 2 == 0 { "BUSY" } else { "IDLE" };
        let ip = &private_ips[id];
        put(
            &http,
            format!("{jitsi}/control/recorders/{id}"),
            format!("{{\"status\":\"{status}\",\"address\":\"{ip}\"}}"),
        )
        .await;
        if n % (N / HUNG) == 1 {
            post(
                &http,
                format!("{jitsi}/control/recorders/{id}/fault"),
                "{\"kind\":\"hang\"}".into(),
            )
            .await;
        }
    }
    eprintln!(
        "bench: set-up of {N} instances and recorders ({HUNG} hung) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let jibri_port = jitsi
        .rsplit(':')
        .next()
        .expect("JITSI_EMULATOR_URL has a port");
    let vars: BTreeMap<String, String> = [
        ("ASG_NAMES", "bench-pool".to_string()),
        ("JICOFO_STATS_URLS", format!("{jitsi}/jicofo/default/stats")),
        (
            "JIBRI_HEALTH_URL",
            format!("http://{{private_ip}}:{jibri_port}/jibri/api/v1.0/health"),
        ),
        (
            "JIBRI_INTERNAL_URL",
            format!("http://{{private_ip}}:{jibri_port}/jibri/api/internal/v1.0"),
        ),
        ("PROBE_TIMEOUT_MS", PROBE_TIMEOUT_MS.to_string()),
        ("DRY_RUN", "true".to_string()),
        ("LOG_FORMAT", "text".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cfg = Config::from_map(&vars).expect("config");
    let jitsi_http = JitsiHttp::new(&cfg).unwrap();
    let c = Controller {
        asg: AwsAutoScaling::new(&sdk),
        ec2: AwsEc2::new(&sdk),
        recorders: Arc::new(jitsi_http.clone()),
        jicofo: Arc::new(jitsi_http),
        state: MemoryStateStore::default(),
        metrics: RecordingMetrics::default(),
        holder: "bench".into(),
        cfg,
    };
    let runs = 5;
    let mut walls = Vec::new();
    let mut observe_aws = Vec::new();
    let cpu0 = cpu_seconds();
    for _ in 0..runs {
        let t = Instant::now();
        let snap = c.asg.describe_group("bench-pool").await.expect("describe");
        let ids: Vec<_> = snap.instances.iter().map(|i| i.id.clone()).collect();
        c.ec2.describe(&ids).await.expect("describe instances");
        observe_aws.push(t.elapsed());
        let t_tick = Instant::now();
        let r = c
            .tick(jibri_autoscaler::runtime::now())
            .await
            .expect("tick");
        walls.push(t_tick.elapsed());
        // Booting (never answered) on the first tick, unknown after.
        assert_eq!(
            r.plan.counts.unknown + r.plan.counts.launching,
            HUNG as u32,
            "{}",
            r.plan.summary()
        );
    }
    let cpu = (cpu_seconds() - cpu0) / runs as f64;
    // The same ticks with AWS in memory (the group as moto described it): what the
    // controller itself costs, probes and planning, without moto's slow DescribeInstances.
    let snapshot = c.asg.describe_group("bench-pool").await.expect("describe");
    let fake = jibri_autoscaler::fake::FakeAws::new(snapshot);
    let mem = Controller {
        asg: fake.clone(),
        ec2: fake,
        recorders: Arc::clone(&c.recorders),
        jicofo: Arc::clone(&c.jicofo),
        state: MemoryStateStore::default(),
        metrics: RecordingMetrics::default(),
        holder: "bench-mem".into(),
        cfg: c.cfg.clone(),
    };
    let mut mem_walls = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        mem.tick(jibri_autoscaler::runtime::now())
            .await
            .expect("tick");
        mem_walls.push(t.elapsed());
    }
    mem_walls.sort();
    walls.sort();
    observe_aws.sort();
    let median = walls[runs / 2];
    let aws_median = observe_aws[runs / 2];
    println!("bench tick: {N} recorders, {HUNG} hung, probe timeout {PROBE_TIMEOUT_MS} ms, concurrency {}", c.cfg.probe_concurrency);
    println!("  wall per tick      median {:.3} s (min {:.3}, max {:.3}) over {runs} ticks; target <= {:.1} s", median.as_secs_f64(), walls[0].as_secs_f64(), walls[runs - 1].as_secs_f64(), PROBE_TIMEOUT_MS as f64 / 1000.0 + 1.0);
    println!("  of which AWS reads median {:.3} s (DescribeAutoScalingGroups + DescribeLifecycleHooks + DescribeInstances on moto)", aws_median.as_secs_f64());
    println!(
        "  wall, AWS in memory median {:.3} s (probes + plan only; the target's own share)",
        mem_walls[runs / 2].as_secs_f64()
    );
    println!("  CPU per tick       {:.3} s", cpu);
    println!(
        "  peak RSS           {:.1} MB; target <= 64 MB",
        peak_rss_mb()
    );
}
