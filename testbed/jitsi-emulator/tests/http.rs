//! The emulator over real HTTP: every Jitsi path, every fault, the control API and the ASG
//! follower, with reqwest as the system under test would use it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jitsi_emulator::{
    BusyStatus, Emulator, EmulatorHandle, Fault, FaultKind, FollowConfig, HealthStatus, ModelError,
    RecorderUpdate, ShardUpdate,
};
use serde_json::Value;

const HEALTH: &str = "jibri/api/v1.0/health";
const GRACEFUL: &str = "jibri/api/internal/v1.0/gracefulShutdown";
const SHUTDOWN: &str = "jibri/api/internal/v1.0/shutdown";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/jitsi/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Bed {
    emu: EmulatorHandle,
    http: reqwest::Client,
}

struct Reply {
    status: u16,
    content_type: Option<String>,
    content_length: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

async fn bed() -> Bed {
    let emu = Emulator::start("127.0.0.1:0").await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Bed { emu, http }
}

impl Bed {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<Reply, reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.emu.url()))
            .timeout(timeout);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, content_length) = (header("content-type"), header("content-length"));
        let body = resp.text().await?;
        Ok(Reply {
            status,
            content_type,
            content_length,
            body,
        })
    }
    async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None, Duration::from_secs(10))
            .await
            .unwrap()
    }
    async fn try_get(&self, path: &str) -> Result<Reply, reqwest::Error> {
        self.send(reqwest::Method::GET, path, None, Duration::from_secs(10))
            .await
    }
    async fn post(&self, path: &str, body: &str) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
    }
    async fn try_post(&self, path: &str) -> Result<Reply, reqwest::Error> {
        self.send(reqwest::Method::POST, path, None, Duration::from_secs(10))
            .await
    }
    async fn put(&self, path: &str, body: &str) -> Reply {
        self.send(
            reqwest::Method::PUT,
            path,
            Some(body),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
    }
    async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None, Duration::from_secs(10))
            .await
            .unwrap()
    }
    async fn health(&self, id: &str) -> Result<Reply, reqwest::Error> {
        self.try_get(&format!("/jibri/{id}/{HEALTH}")).await
    }
    async fn stats(&self, shard: &str) -> Value {
        self.get(&format!("/jicofo/{shard}/stats")).await.json()
    }
}

/// The connection was reset (or closed without an answer), as a dead process's port does.
fn is_reset(e: &reqwest::Error) -> bool {
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionReset {
                return true;
            }
        }
        chain.push_str(&format!("{err} / "));
        source = err.source();
    }
    let chain = chain.to_lowercase();
    chain.contains("reset") || chain.contains("connection closed before message completed")
}

async fn expect_reset(r: Result<Reply, reqwest::Error>) {
    match r {
        Ok(reply) => panic!(
            "expected a reset, got HTTP {} {:?}",
            reply.status, reply.body
        ),
        Err(e) => assert!(is_reset(&e), "expected a reset, got {e:?}"),
    }
}

// ---- Jibri ------------------------------------------------------------------------------------

#[tokio::test]
async fn jibri_health_bodies_equal_the_fixtures_for_every_state() {
    let b = bed().await;
    b.emu.add_recorder("idle").unwrap();
    b.emu.add_recorder("busy").unwrap();
    b.emu.start_recording("busy").unwrap();
    b.emu
        .set_recorder(
            "expired",
            RecorderUpdate {
                status: Some(BusyStatus::Expired),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu
        .set_recorder(
            "sick",
            RecorderUpdate {
                health: Some(HealthStatus::Unhealthy),
                ..Default::default()
            },
        )
        .unwrap();
    for (id, file) in [
        ("idle", "jibri-health-idle.json"),
        ("busy", "jibri-health-busy.json"),
        ("expired", "jibri-health-expired.json"),
        ("sick", "jibri-health-unhealthy.json"),
    ] {
        let r = b.health(id).await.unwrap();
        assert_eq!(r.status, 200, "{id}");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.body, fixture(file), "{id}");
    }
    assert_eq!(b.emu.calls("idle").unwrap().health, 1);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn unknown_recorders_reset_the_connection_like_a_dead_process() {
    let b = bed().await;
    expect_reset(b.health("i-nobody").await).await;
    // The server itself is fine afterwards.
    assert_eq!(b.get("/control/state").await.status, 200);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_of_an_idle_jibri_exits_at_once_and_leaves_the_brewery() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.emu.add_recorder("i-2").unwrap();
    assert_eq!(
        b.stats("default").await["jibri_detector"],
        serde_json::json!({"count": 2, "available": 2})
    );

    let r = b.try_post(&format!("/jibri/i-1/{GRACEFUL}")).await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str(), r.content_length.as_deref()),
        (200, "", Some("0"))
    );
    expect_reset(b.health("i-1").await).await;
    expect_reset(b.try_post(&format!("/jibri/i-1/{GRACEFUL}")).await).await;
    assert_eq!(
        b.stats("default").await["jibri_detector"],
        serde_json::json!({"count": 1, "available": 1})
    );

    let calls = b.get("/control/recorders/i-1/calls").await.json();
    assert_eq!(
        calls,
        serde_json::json!({"health": 1, "graceful_shutdown": 2, "shutdown": 0})
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_of_a_busy_jibri_waits_for_its_session_and_finalize_and_never_says_idle()
{
    let b = bed().await;
    b.emu
        .set_recorder(
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu.start_recording("i-1").unwrap();
    assert_eq!(
        b.try_post(&format!("/jibri/i-1/{GRACEFUL}"))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        b.health("i-1").await.unwrap().body,
        fixture("jibri-health-busy.json")
    );

    b.emu.stop_recording("i-1").unwrap();
    // Finalizing: still BUSY, still in the brewery.
    assert_eq!(
        b.health("i-1").await.unwrap().body,
        fixture("jibri-health-busy.json")
    );
    assert_eq!(b.stats("default").await["jibri_detector"]["count"], 1);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match b.health("i-1").await {
            Ok(r) => {
                assert!(!r.body.contains("IDLE"), "announced IDLE: {}", r.body);
                assert!(Instant::now() < deadline, "never exited");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                assert!(is_reset(&e), "{e:?}");
                break;
            }
        }
    }
    assert_eq!(b.stats("default").await["jibri_detector"]["count"], 0);
    assert_eq!(
        b.stats("default").await["jibri"]["total_recording_failures"],
        0
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_session_runs_finalize_then_exits() {
    let b = bed().await;
    b.emu
        .set_recorder(
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(60_000),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu.start_recording("i-1").unwrap();
    assert_eq!(b.stats("default").await["jibri"]["recording_active"], 1);
    let r = b.try_post(&format!("/jibri/i-1/{SHUTDOWN}")).await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let view = b.emu.recorder("i-1").unwrap();
    assert_eq!(
        (view.status, view.phase, view.exit_pending),
        (BusyStatus::Busy, jitsi_emulator::Phase::Finalizing, true)
    );
    assert_eq!(b.stats("default").await["jibri"]["recording_active"], 0);
    b.post("/control/recorders/i-1/finish-finalize", "").await;
    expect_reset(b.health("i-1").await).await;
    assert_eq!(b.emu.calls("i-1").unwrap().shutdown, 1);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn restart_brings_an_exited_jibri_back_idle() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.try_post(&format!("/jibri/i-1/{SHUTDOWN}")).await.unwrap();
    expect_reset(b.health("i-1").await).await;
    let v = b.post("/control/recorders/i-1/restart", "").await.json();
    assert_eq!(
        (v["status"].as_str(), v["gone"].as_bool()),
        (Some("IDLE"), Some(false))
    );
    assert_eq!(
        b.health("i-1").await.unwrap().body,
        fixture("jibri-health-idle.json")
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn wrong_methods_and_paths_on_a_live_jibri_are_405_and_404() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    assert_eq!(
        b.post(&format!("/jibri/i-1/{HEALTH}"), "").await.status,
        405
    );
    assert_eq!(b.get(&format!("/jibri/i-1/{GRACEFUL}")).await.status, 405);
    assert_eq!(b.get("/jibri/i-1/jibri/api/v1.0/nothing").await.status, 404);
    // Neither was a graceful shutdown request, and the Jibri is still there.
    assert_eq!(b.emu.calls("i-1").unwrap().graceful_shutdown, 0);
    assert_eq!(b.health("i-1").await.unwrap().status, 200);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn a_finalize_timer_returns_the_jibri_to_idle() {
    let b = bed().await;
    b.emu
        .set_recorder(
            "i-1",
            RecorderUpdate {
                finalize_ms: Some(150),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu.start_recording("i-1").unwrap();
    b.emu.stop_recording("i-1").unwrap();
    assert_eq!(b.emu.recorder("i-1").unwrap().status, BusyStatus::Busy);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        b.health("i-1").await.unwrap().body,
        fixture("jibri-health-idle.json")
    );
    b.emu.shutdown().await;
}

// ---- Jicofo -----------------------------------------------------------------------------------

#[tokio::test]
async fn jicofo_paths_answer_as_jicofo_does() {
    let b = bed().await;
    let empty = fixture("jicofo-stats-empty.json");
    for path in ["/jicofo/stats", "/jicofo/default/stats"] {
        let r = b.get(path).await;
        assert_eq!(
            (r.status, r.content_type.as_deref()),
            (200, Some("application/json"))
        );
        assert_eq!(r.body, empty, "{path}");
    }
    let r = b.get("/jicofo/default/about/version").await;
    assert_eq!(
        (r.status, r.body),
        (200, fixture("jicofo-about-version.json"))
    );
    let r = b.get("/jicofo/default/about/health").await;
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));
    let r = b.get("/jicofo/default/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("jitsi_jicofo_jibri_instances 0.0\n"),
        "{}",
        r.body
    );
    assert_eq!(b.get("/jicofo/metrics").await.body, r.body);
    assert_eq!(b.get("/jicofo/default/nothing").await.status, 404);
    assert_eq!(b.post("/jicofo/default/stats", "").await.status, 405);

    let calls = b.emu.shard("default").unwrap().calls;
    assert_eq!(
        (calls.stats, calls.version, calls.health, calls.metrics),
        (2, 1, 1, 2)
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn unhealthy_and_legacy_jicofo_health() {
    let b = bed().await;
    b.put("/control/jicofo/default", r#"{"healthy":false}"#)
        .await;
    let r = b.get("/jicofo/default/about/health").await;
    assert_eq!(r.status, 500);
    b.put(
        "/control/jicofo/default",
        r#"{"healthy":true,"legacy":true}"#,
    )
    .await;
    let r = b.get("/jicofo/default/about/health").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    b.put("/control/jicofo/default", r#"{"healthy":false}"#)
        .await;
    assert_eq!(b.get("/jicofo/default/about/health").await.status, 500);
    let legacy = b.stats("default").await;
    assert!(legacy.get("jibri_detector").is_none());
    assert_eq!(legacy["conference_sizes"]["average"], Value::Null);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn unknown_shards_reset_the_connection() {
    let b = bed().await;
    expect_reset(b.try_get("/jicofo/shard-9/stats").await).await;
    b.put("/control/jicofo/shard-9", "{}").await;
    assert_eq!(b.stats("shard-9").await["jibri_detector"]["count"], 0);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn jibri_detector_counts_busy_and_unhealthy_but_not_unregistered_jibris() {
    let b = bed().await;
    b.emu.add_recorder("idle").unwrap();
    b.emu.add_recorder("busy").unwrap();
    b.emu.start_recording("busy").unwrap();
    b.emu
        .set_recorder(
            "sick",
            RecorderUpdate {
                health: Some(HealthStatus::Unhealthy),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu
        .set_recorder(
            "expired",
            RecorderUpdate {
                status: Some(BusyStatus::Expired),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu
        .set_recorder(
            "lost",
            RecorderUpdate {
                registered: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    b.emu
        .set_recorder(
            "elsewhere",
            RecorderUpdate {
                shard: Some("shard-2".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let s = b.stats("default").await;
    assert_eq!(
        s["jibri_detector"],
        serde_json::json!({"count": 4, "available": 1})
    );
    assert_eq!(s["jibri"]["recording_active"], 1);
    // The unregistered Jibri still answers its health as idle.
    assert_eq!(
        b.health("lost").await.unwrap().body,
        fixture("jibri-health-idle.json")
    );
    assert_eq!(
        b.stats("shard-2").await["jibri_detector"],
        serde_json::json!({"count": 1, "available": 1})
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn conferences_show_in_stats() {
    let b = bed().await;
    let v = b
        .put(
            "/control/jicofo/default",
            r#"{"conferences":3,"participants":14}"#,
        )
        .await
        .json();
    assert_eq!(v["conference_sizes"], serde_json::json!([5, 5, 4]));
    let s = b.stats("default").await;
    assert_eq!(
        (
            s["conferences"].as_u64(),
            s["participants"].as_u64(),
            s["largest_conference"].as_u64()
        ),
        (Some(3), Some(14), Some(5))
    );
    assert_eq!(s["conference_sizes"]["average"].as_f64(), Some(14.0 / 3.0));
    assert_eq!(s["conference_sizes"]["buckets"]["5_to_10"], 2);
    b.emu.shutdown().await;
}

// ---- recording requests -----------------------------------------------------------------------

#[tokio::test]
async fn recording_requests_pick_an_available_jibri_or_are_refused_and_counted() {
    let b = bed().await;
    let r = b
        .post("/control/jicofo/default/request-recording", "")
        .await;
    assert_eq!(
        (r.status, r.json()),
        (409, serde_json::json!({"refused": true}))
    );
    let s = b.stats("default").await;
    assert_eq!(s["jibri"]["total_recording_failures"], 1);
    assert!(b
        .get("/jicofo/default/metrics")
        .await
        .body
        .contains("jitsi_jicofo_jibri_no_instance_failures_total 1.0\n"));

    b.emu.add_recorder("i-1").unwrap();
    let r = b
        .post("/control/jicofo/default/request-recording", "")
        .await;
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"recorder": "i-1"}))
    );
    assert_eq!(
        b.health("i-1").await.unwrap().body,
        fixture("jibri-health-busy.json")
    );

    // All busy: refused again, a recording failure but not a "no instance" one.
    assert!(matches!(
        b.emu.request_recording("default"),
        Err(jitsi_emulator::Error::Model(ModelError::NoJibriAvailable(
            _
        )))
    ));
    let s = b.stats("default").await;
    assert_eq!(
        (
            s["jibri"]["total_recording_failures"].as_u64(),
            s["jibri"]["recording_active"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let m = b.get("/jicofo/default/metrics").await.body;
    assert!(
        m.contains("jitsi_jicofo_jibri_no_instance_failures_total 1.0\n"),
        "{m}"
    );
    assert!(
        m.contains("jitsi_jicofo_jibri_recording_failures_total 2.0\n"),
        "{m}"
    );
    assert_eq!(
        b.post("/control/jicofo/nowhere/request-recording", "")
            .await
            .status,
        404
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn killing_a_recording_jibri_fails_the_session_in_jicofos_counters() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.emu.request_recording("default").unwrap();
    b.delete("/control/recorders/i-1").await;
    let s = b.stats("default").await;
    assert_eq!(
        (
            s["jibri"]["recording_active"].as_u64(),
            s["jibri"]["total_recording_failures"].as_u64()
        ),
        (Some(0), Some(2))
    );
    b.emu.shutdown().await;
}

// ---- faults -----------------------------------------------------------------------------------

#[tokio::test]
async fn hang_never_answers_and_does_not_block_other_requests() {
    let b = Arc::new(bed().await);
    b.emu.add_recorder("stuck").unwrap();
    b.emu.add_recorder("fine").unwrap();
    b.emu.set_recorder_fault("stuck", FaultKind::Hang).unwrap();
    let hung = {
        let b = Arc::clone(&b);
        tokio::spawn(async move {
            let started = Instant::now();
            let r = b
                .send(
                    reqwest::Method::GET,
                    &format!("/jibri/stuck/{HEALTH}"),
                    None,
                    Duration::from_millis(2000),
                )
                .await;
            (r.err().map(|e| e.is_timeout()), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(b.health("fine").await.unwrap().status, 200);
        assert_eq!(b.get("/jicofo/stats").await.status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "others were blocked: {:?}",
        started.elapsed()
    );
    let (timed_out, elapsed) = hung.await.unwrap();
    assert_eq!(timed_out, Some(true));
    assert!(elapsed >= Duration::from_millis(1990));
    // The request reached the Jibri and was counted, but had no effect.
    assert_eq!(b.emu.calls("stuck").unwrap().health, 1);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn hang_on_graceful_shutdown_has_no_effect() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.emu.set_recorder_fault("i-1", FaultKind::Hang).unwrap();
    let r = b
        .send(
            reqwest::Method::POST,
            &format!("/jibri/i-1/{GRACEFUL}"),
            None,
            Duration::from_millis(200),
        )
        .await;
    assert!(r.err().is_some_and(|e| e.is_timeout()));
    assert_eq!(b.emu.calls("i-1").unwrap().graceful_shutdown, 1);
    assert!(!b.emu.recorder("i-1").unwrap().gone);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn slow_answers_normally_after_the_delay() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.post(
        "/control/recorders/i-1/fault",
        r#"{"kind":"slow","delay_ms":300}"#,
    )
    .await;
    let started = Instant::now();
    let r = b.health("i-1").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.body, fixture("jibri-health-idle.json"));
    // A slow graceful shutdown still takes effect.
    b.try_post(&format!("/jibri/i-1/{GRACEFUL}")).await.unwrap();
    assert!(b.emu.recorder("i-1").unwrap().gone);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn http500_garbage_and_refused_jibri_faults() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();

    b.post("/control/recorders/i-1/fault", r#"{"kind":"http500"}"#)
        .await;
    assert_eq!(b.health("i-1").await.unwrap().status, 500);
    assert_eq!(
        b.try_post(&format!("/jibri/i-1/{GRACEFUL}"))
            .await
            .unwrap()
            .status,
        500
    );
    assert!(
        !b.emu.recorder("i-1").unwrap().gone,
        "a failed request must not shut it down"
    );

    b.post("/control/recorders/i-1/fault", r#"{"kind":"garbage"}"#)
        .await;
    let r = b.health("i-1").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.body).is_err(),
        "{}",
        r.body
    );

    b.post("/control/recorders/i-1/fault", r#"{"kind":"refused"}"#)
        .await;
    expect_reset(b.health("i-1").await).await;

    b.post("/control/recorders/i-1/fault", r#"{"kind":"none"}"#)
        .await;
    assert_eq!(
        b.health("i-1").await.unwrap().body,
        fixture("jibri-health-idle.json")
    );
    assert_eq!(b.emu.calls("i-1").unwrap().health, 4);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn huge_streams_ten_mebibytes_before_the_real_body() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.emu.set_recorder_fault("i-1", FaultKind::Huge).unwrap();
    let resp = b
        .http
        .get(format!("{}/jibri/i-1/{HEALTH}", b.emu.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("content-length").is_none(),
        "must be streamed"
    );
    assert_eq!(
        resp.headers()
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("chunked")
    );
    let body = resp.bytes().await.unwrap();
    let idle = fixture("jibri-health-idle.json");
    assert_eq!(body.len(), 10 * 1024 * 1024 + idle.len());
    assert_eq!(std::str::from_utf8(&body).unwrap().trim_start(), idle);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn jicofo_faults_apply_to_every_path_of_the_shard() {
    let b = bed().await;
    b.post("/control/jicofo/default/fault", r#"{"kind":"http500"}"#)
        .await;
    assert_eq!(b.get("/jicofo/stats").await.status, 500);
    assert_eq!(b.get("/jicofo/default/about/version").await.status, 500);

    b.post("/control/jicofo/default/fault", r#"{"kind":"garbage"}"#)
        .await;
    let r = b.get("/jicofo/default/stats").await;
    assert!(r.status == 200 && serde_json::from_str::<Value>(&r.body).is_err());

    b.post("/control/jicofo/default/fault", r#"{"kind":"huge"}"#)
        .await;
    let r = b.get("/jicofo/default/stats").await;
    assert_eq!(
        r.body.len(),
        10 * 1024 * 1024 + fixture("jicofo-stats-empty.json").len()
    );

    b.post("/control/jicofo/default/fault", r#"{"kind":"refused"}"#)
        .await;
    expect_reset(b.try_get("/jicofo/default/stats").await).await;

    b.post(
        "/control/jicofo/default/fault",
        r#"{"kind":"slow","delay_ms":200}"#,
    )
    .await;
    let started = Instant::now();
    assert_eq!(b.get("/jicofo/default/about/health").await.body, "OK");
    assert!(started.elapsed() >= Duration::from_millis(200));

    b.emu.set_jicofo_fault("default", FaultKind::Hang).unwrap();
    let r = b
        .send(
            reqwest::Method::GET,
            "/jicofo/stats",
            None,
            Duration::from_millis(200),
        )
        .await;
    assert!(r.err().is_some_and(|e| e.is_timeout()));
    // The control API and the Jibris are unaffected.
    assert_eq!(b.get("/control/state").await.status, 200);
    b.emu.set_jicofo_fault("default", Fault::NONE).unwrap();
    assert_eq!(b.get("/jicofo/stats").await.status, 200);
    b.emu.shutdown().await;
}

// ---- control API ------------------------------------------------------------------------------

#[tokio::test]
async fn control_api_round_trip() {
    let b = bed().await;
    let v = b
        .put(
            "/control/recorders/i-1",
            r#"{"shard":"s2","single_use":true,"finalize_ms":0}"#,
        )
        .await
        .json();
    assert_eq!(
        (
            v["shard"].as_str(),
            v["single_use"].as_bool(),
            v["status"].as_str()
        ),
        (Some("s2"), Some(true), Some("IDLE"))
    );
    let v = b
        .post("/control/recorders/i-1/start-recording", "")
        .await
        .json();
    assert_eq!(v["status"], "BUSY");
    assert_eq!(
        b.post("/control/recorders/i-1/start-recording", "")
            .await
            .status,
        409
    );
    let v = b
        .post("/control/recorders/i-1/stop-recording", "")
        .await
        .json();
    assert_eq!(v["status"], "EXPIRED");
    let v = b.post("/control/recorders/i-1/restart", "").await.json();
    assert_eq!(v["status"], "IDLE");
    let v = b.get("/control/recorders/i-1").await.json();
    assert_eq!(v["available"], true);

    let state = b.get("/control/state").await.json();
    assert_eq!(state["recorders"].as_array().map(Vec::len), Some(1));
    let shards: Vec<&str> = state["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(shards, vec!["default", "s2"]);
    assert_eq!(state["follow"], Value::Null);

    assert_eq!(b.get("/control/jicofo/s2").await.json()["jibri_count"], 1);
    assert_eq!(
        b.get("/control/recorders/i-1/calls").await.json()["health"],
        0
    );
    assert_eq!(
        b.delete("/control/recorders/i-1").await.json(),
        serde_json::json!({"deleted": "i-1"})
    );
    assert_eq!(b.delete("/control/recorders/i-1").await.status, 404);
    assert_eq!(
        b.post("/control/recorders/i-1/restart", "").await.status,
        404
    );

    // Errors: bad JSON, unknown fields, unknown fault kinds, bad ids, unknown endpoints, methods.
    assert_eq!(b.put("/control/recorders/i-2", "{nope").await.status, 400);
    assert_eq!(
        b.put("/control/recorders/i-2", r#"{"colour":"red"}"#)
            .await
            .status,
        400
    );
    assert_eq!(
        b.put("/control/recorders/i-2", r#"{"status":"SLEEPING"}"#)
            .await
            .status,
        400
    );
    b.put("/control/recorders/i-2", "").await;
    assert_eq!(
        b.post("/control/recorders/i-2/fault", r#"{"kind":"explode"}"#)
            .await
            .status,
        400
    );
    assert_eq!(b.put("/control/recorders/bad%20id", "{}").await.status, 400);
    assert_eq!(b.get("/control/nothing").await.status, 404);
    assert_eq!(b.get("/nothing").await.status, 404);
    assert_eq!(b.get("/control/reset").await.status, 405);

    let v = b.post("/control/reset", "").await.json();
    assert_eq!(v["recorders"], serde_json::json!([]));
    b.emu.shutdown().await;
}

#[tokio::test]
async fn control_errors_for_gone_and_busy_recorders() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.emu.start_recording("i-1").unwrap();
    assert!(matches!(
        b.emu.start_recording("i-1"),
        Err(jitsi_emulator::Error::Model(ModelError::Busy(_)))
    ));
    b.emu.stop_recording("i-1").unwrap();
    b.try_post(&format!("/jibri/i-1/{GRACEFUL}")).await.unwrap();
    let r = b.post("/control/recorders/i-1/start-recording", "").await;
    assert_eq!(r.status, 409);
    assert!(r.json()["error"].as_str().unwrap().contains("gone"));
    assert_eq!(
        b.put("/control/recorders/i-1", r#"{"status":"BUSY"}"#)
            .await
            .status,
        409
    );
    b.emu.shutdown().await;
}

#[tokio::test]
async fn listening_outside_loopback_is_refused() {
    for addr in [
        "0.0.0.0:0",
        "[::1]:0",
        "10.0.0.1:0",
        "localhost:0",
        "127.0.0.1",
    ] {
        assert!(
            matches!(
                Emulator::start(addr).await,
                Err(jitsi_emulator::Error::NotLoopback(_))
            ),
            "{addr}"
        );
    }
    let emu = Emulator::start("127.0.0.2:0").await.unwrap();
    assert!(emu.url().starts_with("http://127.0.0.2:"));
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_drops_hung_connections_and_stops_listening() {
    let b = bed().await;
    b.emu.add_recorder("i-1").unwrap();
    b.emu.set_recorder_fault("i-1", FaultKind::Hang).unwrap();
    let url = format!("{}/jibri/i-1/{HEALTH}", b.emu.url());
    let http = b.http.clone();
    let hung =
        tokio::spawn(async move { http.get(url).timeout(Duration::from_secs(10)).send().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    b.emu.shutdown().await;
    let r = hung.await.unwrap();
    assert!(r.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(b
        .http
        .get(format!("{}/control/state", b.emu.url()))
        .send()
        .await
        .is_err());
}

// ---- following an Auto Scaling group ----------------------------------------------------------

/// What the fake ASG endpoint saw.
#[derive(Default)]
struct SeenRequest {
    authorization: Option<String>,
    account: Option<String>,
    body: String,
}

/// A stand-in for moto answering `DescribeAutoScalingGroups` with whatever `xml` holds.
async fn fake_autoscaling(xml: Arc<Mutex<String>>, seen: Arc<Mutex<Vec<SeenRequest>>>) -> String {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (xml, seen) = (Arc::clone(&xml), Arc::clone(&seen));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (xml, seen) = (Arc::clone(&xml), Arc::clone(&seen));
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_owned)
                            };
                            let (authorization, account) =
                                (header("authorization"), header("x-moto-account-id"));
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let body = String::from_utf8_lossy(&body).into_owned();
                            if body.starts_with("Action=DescribeInstances&") {
                                // EC2's answer: each instance asked for, on a loopback IP.
                                return Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from(ec2_xml(&body))),
                                ));
                            }
                            seen.lock().unwrap().push(SeenRequest {
                                authorization,
                                account,
                                body,
                            });
                            let xml = xml.lock().unwrap().clone();
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(xml)),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

/// A `DescribeInstancesResponse` for the `InstanceId.N` of a request body: instance N on
/// 127.78.0.N.
fn ec2_xml(body: &str) -> String {
    let items: String = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.strip_prefix("InstanceId.")?.parse::<u8>().ok()?, v)))
        .map(|(n, id)| {
            format!(
                "<item><instanceId>{id}</instanceId><privateIpAddress>127.78.0.{n}</privateIpAddress></item>"
            )
        })
        .collect();
    format!(
        r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><reservationSet><item><instancesSet>{items}</instancesSet></item></reservationSet></DescribeInstancesResponse>"#
    )
}

fn asg_xml(group: &str, instances: &[(&str, &str)]) -> String {
    let members: String = instances
        .iter()
        .map(|(id, state)| {
            format!(
                "<member><InstanceId>{id}</InstanceId><InstanceType>t3.micro</InstanceType><AvailabilityZone>eu-west-1a</AvailabilityZone><LifecycleState>{state}</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>"
            )
        })
        .collect();
    format!(
        r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>{group}</AutoScalingGroupName><AvailabilityZones><member>eu-west-1a</member></AvailabilityZones><Instances>{members}</Instances><TerminationPolicies><member>Default</member></TerminationPolicies></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>"#
    )
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn following_an_asg_mirrors_its_instances() {
    let b = bed().await;
    let xml = Arc::new(Mutex::new(asg_xml(
        "jibri",
        &[("i-a", "InService"), ("i-b", "Pending")],
    )));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let aws = fake_autoscaling(Arc::clone(&xml), Arc::clone(&seen)).await;

    let body = format!(
        r#"{{"aws_endpoint":"{aws}","group":"jibri","account":"111122223333","region":"eu-west-1","interval_ms":50}}"#
    );
    let r = b.post("/control/follow", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("i-a to appear", || b.emu.recorder("i-a").is_some()).await;
    assert!(
        b.emu.recorder("i-b").is_none(),
        "a Pending instance has no Jibri yet"
    );
    assert_eq!(
        b.health("i-a").await.unwrap().body,
        fixture("jibri-health-idle.json")
    );

    {
        let seen = seen.lock().unwrap();
        let first = &seen[0];
        assert_eq!(first.body, "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=jibri");
        assert_eq!(first.account.as_deref(), Some("111122223333"));
        assert_eq!(
            first.authorization.as_deref(),
            Some("AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/autoscaling/aws4_request, SignedHeaders=host, Signature=0")
        );
    }

    *xml.lock().unwrap() = asg_xml(
        "jibri",
        &[("i-a", "Terminating:Wait"), ("i-b", "InService")],
    );
    eventually("i-b to appear", || b.emu.recorder("i-b").is_some()).await;
    assert!(
        b.emu.recorder("i-a").is_some(),
        "a Terminating:Wait instance still runs"
    );

    *xml.lock().unwrap() = asg_xml("jibri", &[("i-b", "InService")]);
    eventually("i-a to disappear", || b.emu.recorder("i-a").is_none()).await;
    expect_reset(b.health("i-a").await).await;

    let state = b.get("/control/state").await.json();
    assert_eq!(state["follow"]["config"]["group"], "jibri");
    assert!(state["follow"]["polls"].as_u64().unwrap() >= 3);
    assert_eq!(state["follow"]["instances"][0]["id"], "i-b");

    assert_eq!(b.delete("/control/follow").await.status, 200);
    assert_eq!(b.get("/control/follow").await.json(), Value::Null);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn follow_refuses_non_loopback_endpoints() {
    let b = bed().await;
    let r = b
        .post(
            "/control/follow",
            r#"{"aws_endpoint":"http://169.254.169.254","group":"jibri"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(b
        .emu
        .follow(FollowConfig::new("http://example.com", "jibri"))
        .is_err());
    assert!(b
        .emu
        .follow(FollowConfig::new("http://127.0.0.1:9", "jibri"))
        .is_ok());
    b.emu.shutdown().await;
}

#[tokio::test]
async fn follow_errors_are_reported_and_keep_the_recorders() {
    let b = bed().await;
    let xml = Arc::new(Mutex::new(asg_xml("jibri", &[("i-a", "InService")])));
    let aws = fake_autoscaling(Arc::clone(&xml), Arc::new(Mutex::new(Vec::new()))).await;
    let mut config = FollowConfig::new(aws, "jibri");
    config.interval_ms = Some(50);
    config.shard = Some("shard-2".into());
    b.emu.follow(config).unwrap();
    eventually("i-a to appear", || b.emu.recorder("i-a").is_some()).await;
    assert_eq!(b.emu.recorder("i-a").unwrap().shard, "shard-2");
    *xml.lock().unwrap() =
        "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>".into();
    eventually("an error", || {
        b.emu.state().follow.is_some_and(|f| f.last_error.is_some())
    })
    .await;
    assert!(
        b.emu.recorder("i-a").is_some(),
        "an error is not an empty group"
    );
    b.emu.shutdown().await;
}

// ---- the Rust handle's shard API --------------------------------------------------------------

#[tokio::test]
async fn the_handle_sets_shards_and_urls() {
    let b = bed().await;
    let v = b
        .emu
        .set_shard(
            "s",
            ShardUpdate {
                conference_sizes: Some(vec![2, 5, 7]),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(v.participants, 14);
    let stats: Value = serde_json::from_str(
        &b.http
            .get(format!("{}/stats", b.emu.jicofo_url("s")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        stats["conference_sizes"]["average"].as_f64(),
        Some(14.0 / 3.0)
    );
    b.emu.add_recorder("i-1").unwrap();
    let r = b
        .http
        .get(format!("{}/{HEALTH}", b.emu.jibri_url("i-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b.emu.reset();
    assert!(b.emu.shard("s").is_none());
    b.emu.shutdown().await;
}

// ---- each recorder on its own address, as a real Jibri on its instance ----------------------

async fn connect_refused(addr: std::net::SocketAddr) -> bool {
    matches!(
        tokio::net::TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test]
async fn a_recorder_with_an_address_listens_there_while_its_jibri_runs_and_refuses_once_it_exited()
{
    let b = bed().await;
    let ip = "127.77.0.5";
    b.emu
        .set_recorder(
            "i-a",
            RecorderUpdate {
                address: Some(ip.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:{}", b.emu.jibri_port()).parse().unwrap();
    let health = format!("http://{addr}/{HEALTH}");
    let r = b.http.get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), fixture("jibri-health-idle.json"));
    assert_eq!(b.emu.recorder("i-a").unwrap().address.as_deref(), Some(ip));

    // An idle Jibri exits on gracefulShutdown: its port is closed before the answer arrives.
    let r = b
        .http
        .post(format!("http://{addr}/{GRACEFUL}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(b.emu.recorder("i-a").unwrap().gone);
    assert!(
        connect_refused(addr).await,
        "an exited Jibri refuses at connect"
    );
    // A fault that answers in its own way applies even to an exited Jibri (the port is held).
    b.emu.set_recorder_fault("i-a", FaultKind::Http500).unwrap();
    assert_eq!(b.http.get(&health).send().await.unwrap().status(), 500);
    b.emu.set_recorder_fault("i-a", FaultKind::None).unwrap();
    assert!(connect_refused(addr).await);

    // A restarted Jibri binds again.
    b.emu.restart("i-a").unwrap();
    assert_eq!(b.http.get(&health).send().await.unwrap().status(), 200);

    // `refused`: nothing listens while it is set; `reset`: accepted, then reset mid-request.
    b.emu.set_recorder_fault("i-a", FaultKind::Refused).unwrap();
    assert!(connect_refused(addr).await);
    b.emu.set_recorder_fault("i-a", FaultKind::Reset).unwrap();
    let e = b.http.get(&health).send().await.unwrap_err();
    assert!(is_reset(&e), "{e:?}");
    b.emu.set_recorder_fault("i-a", FaultKind::None).unwrap();
    assert_eq!(b.http.get(&health).send().await.unwrap().status(), 200);

    // Only Jibri paths there: no control API, no Jicofo.
    let r = b
        .http
        .get(format!("http://{addr}/control/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Deleted (its instance is gone): refused.
    b.emu.delete_recorder("i-a").unwrap();
    assert!(connect_refused(addr).await);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn a_recorder_that_shuts_down_while_busy_refuses_once_its_finalize_is_done() {
    let b = bed().await;
    let ip = "127.77.0.6";
    b.emu
        .set_recorder(
            "i-b",
            RecorderUpdate {
                address: Some(ip.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:{}", b.emu.jibri_port()).parse().unwrap();
    b.emu.start_recording("i-b").unwrap();
    let r = b
        .http
        .post(format!("http://{addr}/{GRACEFUL}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Busy: still running, still answering.
    let r = b
        .http
        .get(format!("http://{addr}/{HEALTH}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b.emu.stop_recording("i-b").unwrap();
    assert!(b.emu.recorder("i-b").unwrap().gone);
    assert!(connect_refused(addr).await);
    b.emu.shutdown().await;
}

#[tokio::test]
async fn recorder_addresses_outside_loopback_are_refused() {
    let b = bed().await;
    for bad in ["10.0.0.5", "172.31.1.2", "0.0.0.0", "::1", "nonsense"] {
        let e = b
            .emu
            .set_recorder(
                "i-x",
                RecorderUpdate {
                    address: Some(bad.into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(e, jitsi_emulator::Error::Model(ModelError::Invalid(_))),
            "{bad}: {e:?}"
        );
    }
    b.emu.shutdown().await;
}

/// A bridge at its own address serves JVB's private REST API: `/colibri/stats` in the
/// fixture's shape with its conferences, the drain API, and a graceful shutdown (only with
/// the shutdown API enabled) after which it exits with its last conference: refused at connect.
#[tokio::test]
async fn a_bridge_serves_colibri_stats_drains_and_exits_after_its_last_conference() {
    use jitsi_emulator::{BridgeUpdate, ConferenceEnd, ConferenceRequest};
    let b = bed().await;
    let ip = "127.77.0.9";
    b.emu
        .set_bridge(
            "i-jvb",
            BridgeUpdate {
                address: Some(ip.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:{}", b.emu.jibri_port()).parse().unwrap();
    let stats = format!("http://{addr}/colibri/stats");
    let c = b
        .emu
        .start_conference(
            "default",
            ConferenceRequest {
                participants: 14,
                duration_ms: None,
            },
        )
        .unwrap();
    assert_eq!(c.bridge, "i-jvb");
    let body = b
        .http
        .get(&stats)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let want: serde_json::Value = serde_json::from_str(&fixture("jvb-colibri-stats.json")).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&v), keys(&want));
    assert_eq!(
        (v["conferences"].as_u64(), v["endpoints"].as_u64()),
        (Some(1), Some(14))
    );
    assert_eq!(v["stress_level"].as_f64(), Some(0.07));
    assert_eq!(v["drain"], false);

    // Drain: 200, empty; the bridge says so; Jicofo's stats see it.
    let drain = format!("http://{addr}/colibri/drain");
    let r = b.http.post(format!("{drain}/enable")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(
        b.http
            .get(&drain)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        r#"{"drain":true}"#
    );
    let jicofo = format!("{}/stats", b.emu.jicofo_url("default"));
    let j: serde_json::Value = b
        .http
        .get(&jicofo)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(j["conferences"], 1);
    assert_eq!(j["bridge_selector"]["bridge_count"], 1);

    // Graceful shutdown: 404 unless enabled; then the bridge exits after its conference.
    let shutdown = format!("http://{addr}/colibri/shutdown");
    let body = r#"{"graceful-shutdown": true}"#;
    let r = b.http.post(&shutdown).body(body).send().await.unwrap();
    assert_eq!(r.status(), 404);
    b.emu
        .set_bridge(
            "i-jvb",
            BridgeUpdate {
                shutdown_api: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let r = b.http.post(&shutdown).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = b
        .http
        .get(&stats)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v["graceful_shutdown"], true);
    assert!(!b.emu.bridge("i-jvb").unwrap().gone);
    b.emu.end_conference(&c.id).unwrap();
    assert!(b.emu.bridge("i-jvb").unwrap().gone);
    assert!(
        connect_refused(addr).await,
        "an exited bridge refuses at connect"
    );
    assert_eq!(b.emu.conferences()[0].end, ConferenceEnd::Ended);
    let j: serde_json::Value = b
        .http
        .get(&jicofo)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        j["bridge_selector"]["lost_bridges"], 0,
        "a graceful exit is not a loss"
    );
}
