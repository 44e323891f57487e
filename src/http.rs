//! The HTTP adapters: Jibri's public and internal APIs, a videobridge's private REST API
//! (`POOL_KIND=jvb`) and Jicofo's `/stats`, with a timeout on every call and a cap on every
//! body, so that a hung or babbling endpoint costs one timeout and never the tick.
//!
//! A bridge (jitsi/jitsi-videobridge at a29d97d) is read with `GET /colibri/stats`
//! (`jvb/src/main/java/org/jitsi/videobridge/rest/root/colibri/stats/Stats.java`, served only
//! with `videobridge.apis.rest.enabled = true`) and drained with `POST /colibri/drain/enable`
//! (`.../rest/root/colibri/drain/Drain.java`, on by default: `videobridge.rest.drain.enabled`
//! in `jvb/src/main/resources/reference.conf`): `Videobridge.setDrainMode(true)`, after which
//! Jicofo prefers every bridge that does not drain for a new conference (jicofo
//! `jicofo-selector/.../bridge/BridgeSelector.kt`, `selectBridge`). Both are on the private
//! HTTP server, port 8080 (`doc/rest.md`), bound to `videobridge.http-servers.private.host`
//! = 127.0.0.1 by default (`reference.conf`). The graceful shutdown (`POST /colibri/shutdown`)
//! is not used: it is off by default (`videobridge.rest.shutdown.enabled = false`),
//! irreversible, and ends in SHUTTING_DOWN, where Jicofo moves participants off.

use crate::config::{fill_template, Config, PoolKind};
use crate::domain::{Probe, ProbeFailure};
use crate::jitsi::{parse_colibri_stats, parse_jibri_health, parse_jicofo_stats, JicofoStats};
use crate::ports::{Jicofo, RecorderAddress, Recorders};
use std::time::Duration;

/// Reads a probe's body as the instance's status, or says why it cannot.
type ParseStatus = fn(&[u8]) -> Result<crate::jitsi::JibriStatus, String>;

/// What the instances run, and where their APIs are (URL templates).
#[derive(Clone, Debug)]
enum Instances {
    /// Jibri: health URL, internal API base (`/gracefulShutdown` appended).
    Jibri { health: String, internal: String },
    /// A videobridge: `/colibri/stats` URL, drain API base (`/enable`, `/disable` appended).
    Bridge { stats: String, drain: String },
}

impl Instances {
    /// What a failure says for this kind. A refusal at connect is how an exited Jibri
    /// looks after its `gracefulShutdown`, and the core reads it so. A bridge never exits
    /// when drained: it keeps its conferences (`Videobridge.setDrainMode` only changes
    /// Jicofo's selection), and its private REST server binds 127.0.0.1 by default, so a
    /// refused `/colibri/stats` or drain says nothing of its conferences: unknown (busy),
    /// never `Refused`. Found by the fault matrix (row J3c): a drained bridge hosting a
    /// conference whose REST port then refused was taken as exited, and terminated.
    fn failure(&self, f: ProbeFailure) -> ProbeFailure {
        match (self, f) {
            (Instances::Bridge { .. }, ProbeFailure::Refused) => ProbeFailure::Transport(
                "connection refused (a bridge does not exit when drained: unknown, not gone)"
                    .into(),
            ),
            (_, f) => f,
        }
    }
}

/// Jibri (or videobridges) and Jicofo over HTTP.
#[derive(Clone)]
pub struct JitsiHttp {
    client: reqwest::Client,
    instances: Instances,
    max_body: usize,
}

impl JitsiHttp {
    /// The adapter for the pool's kind (`POOL_KIND`).
    pub fn new(cfg: &Config) -> Result<Self, String> {
        match cfg.pool_kind {
            PoolKind::Jibri => Self::with(
                &cfg.jibri_health_url,
                &cfg.jibri_internal_url,
                cfg.probe_timeout,
                cfg.max_body_bytes,
            ),
            PoolKind::Jvb => Self::bridges(
                &cfg.bridge.stats_url,
                &cfg.bridge.drain_url,
                cfg.probe_timeout,
                cfg.max_body_bytes,
            ),
        }
    }

    /// For a videobridge pool: `stats_template` is `GET`, `drain_template` the drain API's base.
    pub fn bridges(
        stats_template: &str,
        drain_template: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Self, String> {
        let mut http = Self::with("", "", timeout, max_body)?;
        http.instances = Instances::Bridge {
            stats: stats_template.into(),
            drain: drain_template.into(),
        };
        Ok(http)
    }

    /// POSTs `{base}/{leaf}` (an empty body): 2xx is success, anything else a failure,
    /// classified as a probe's.
    async fn post(&self, base: &str, leaf: &str) -> Result<(), ProbeFailure> {
        let url = format!("{}/{leaf}", base.trim_end_matches('/'));
        let resp = self.client.post(&url).send().await.map_err(classify)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ProbeFailure::HttpStatus(resp.status().as_u16()))
        }
    }

    pub fn with(
        health_template: &str,
        internal_template: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // No pooled connections: a kept-alive connection to a Jibri that exited (or
            // restarted) answers with a reset or EOF mid-request instead of a clean
            // connect-time refusal; every probe and drain opens its own.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            // Recorders and Jicofo are reached inside the VPC; an HTTP(S)_PROXY set for
            // AWS API egress must not capture them.
            .no_proxy()
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            client,
            instances: Instances::Jibri {
                health: health_template.into(),
                internal: internal_template.into(),
            },
            max_body,
        })
    }

    async fn get_body(&self, url: &str) -> Result<Vec<u8>, ProbeFailure> {
        let resp = self.client.get(url).send().await.map_err(classify)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ProbeFailure::HttpStatus(resp.status().as_u16()));
        }
        read_capped(resp, self.max_body).await
    }
}

/// Reads a body up to `cap` bytes, streaming: a 10 MB answer is refused after `cap`.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, ProbeFailure> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ProbeFailure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > cap {
            return Err(ProbeFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a transport error to a probe failure. Only a refusal at connect time (ECONNREFUSED:
/// nothing listens on the port) means the Jibri is not running, which after a confirmed
/// drain is a Jibri that finished and exited. A reset, an abort or an EOF after the
/// connection was made (a process dying mid-answer, a middlebox, a half-written response)
/// says nothing of whether a recording runs: unknown (`Transport`), which is busy.
fn classify(e: reqwest::Error) -> ProbeFailure {
    if e.is_timeout() {
        return ProbeFailure::Timeout;
    }
    // reqwest names connect-phase errors; only there is a refusal a refusal.
    let connecting = e.is_connect();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused if connecting => {
                    return ProbeFailure::Refused
                }
                std::io::ErrorKind::TimedOut => return ProbeFailure::Timeout,
                _ => {}
            }
        }
        source = s.source();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ProbeFailure::Transport(msg)
}

impl Recorders for JitsiHttp {
    /// A Jibri's health, or a bridge's `/colibri/stats` (busy while it hosts any conference
    /// or endpoint; its load travels in the status). Garbage is never a guess.
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        let (template, parse): (&str, ParseStatus) = match &self.instances {
            Instances::Jibri { health, .. } => {
                (health, |b| parse_jibri_health(b).map_err(|e| e.to_string()))
            }
            Instances::Bridge { stats, .. } => (stats, |b| {
                parse_colibri_stats(b)
                    .map(|s| s.status())
                    .map_err(|e| e.to_string())
            }),
        };
        let Some(url) = fill_template(template, &r.id.0, r.private_ip.as_deref()) else {
            return Probe::Failed(ProbeFailure::NoAddress);
        };
        match self.get_body(&url).await {
            Ok(body) => match parse(&body) {
                Ok(status) => Probe::Status(status),
                Err(e) => Probe::Failed(ProbeFailure::Garbage(e)),
            },
            Err(f) => Probe::Failed(self.instances.failure(f)),
        }
    }

    /// Stops new work landing on the instance: Jibri's `gracefulShutdown` (it exits once
    /// idle), a bridge's `POST /colibri/drain/enable` (Jicofo assigns it no new conference;
    /// it keeps running its own until they end).
    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        let (base, leaf) = match &self.instances {
            Instances::Jibri { internal, .. } => (internal, "gracefulShutdown"),
            Instances::Bridge { drain, .. } => (drain, "enable"),
        };
        let base =
            fill_template(base, &r.id.0, r.private_ip.as_deref()).ok_or(ProbeFailure::NoAddress)?;
        self.post(&base, leaf)
            .await
            .map_err(|f| self.instances.failure(f))
    }

    /// A bridge back into service: `POST /colibri/drain/disable`. A Jibri cannot be undrained.
    async fn undrain(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        let Instances::Bridge { drain, .. } = &self.instances else {
            return Err(ProbeFailure::Transport(
                "a Jibri's graceful shutdown cannot be undone".into(),
            ));
        };
        let base = fill_template(drain, &r.id.0, r.private_ip.as_deref())
            .ok_or(ProbeFailure::NoAddress)?;
        self.post(&base, "disable")
            .await
            .map_err(|f| self.instances.failure(f))
    }
}

impl Jicofo for JitsiHttp {
    async fn stats(&self, url: &str) -> Result<JicofoStats, String> {
        let body = self.get_body(url).await.map_err(|f| f.to_string())?;
        parse_jicofo_stats(&body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InstanceId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn client(port: u16) -> JitsiHttp {
        JitsiHttp::with(
            &format!("http://127.0.0.1:{port}/health"),
            &format!("http://127.0.0.1:{port}"),
            Duration::from_secs(2),
            4096,
        )
        .unwrap()
    }

    fn recorder() -> RecorderAddress {
        RecorderAddress {
            id: InstanceId::from("i-1"),
            private_ip: None,
        }
    }

    /// A server that reads the request, then does `then` with the connection.
    async fn one_answer(
        then: impl FnOnce(
                tokio::net::TcpStream,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            + Send
            + 'static,
    ) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                then(s).await;
            }
        });
        port
    }

    /// A connection reset after the request was read (a process dying, a middlebox) says
    /// nothing of whether the Jibri exited: unknown (busy), never the connect-time refusal
    /// of an exited Jibri (issue 14 item 2).
    #[tokio::test]
    async fn a_reset_mid_answer_is_unknown_never_refused() {
        let port = one_answer(|s| {
            Box::pin(async move {
                let _ = s.set_zero_linger();
                drop(s); // RST
            })
        })
        .await;
        let http = client(port);
        let p = http.probe(&recorder()).await;
        assert!(
            matches!(p, Probe::Failed(ProbeFailure::Transport(_))),
            "{p:?}"
        );
        let port = one_answer(|s| {
            Box::pin(async move {
                let _ = s.set_zero_linger();
                drop(s);
            })
        })
        .await;
        let d = client(port).graceful_shutdown(&recorder()).await;
        assert!(matches!(d, Err(ProbeFailure::Transport(_))), "{d:?}");
    }

    /// A server that closes after half its headers (EOF mid-answer): unknown, never refused.
    #[tokio::test]
    async fn an_eof_mid_answer_is_unknown_never_refused() {
        let port = one_answer(|mut s| {
            Box::pin(async move {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                    .await;
                let _ = s.shutdown().await; // FIN, headers never finished
            })
        })
        .await;
        let p = client(port).probe(&recorder()).await;
        assert!(
            matches!(p, Probe::Failed(ProbeFailure::Transport(_))),
            "{p:?}"
        );
        // And a body cut short of its Content-Length.
        let port = one_answer(|mut s| {
            Box::pin(async move {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":")
                    .await;
                let _ = s.shutdown().await;
            })
        })
        .await;
        let p = client(port).probe(&recorder()).await;
        assert!(
            matches!(p, Probe::Failed(ProbeFailure::Transport(_))),
            "{p:?}"
        );
    }

    /// Nothing listening (an exited Jibri): refused at connect, the one failure that says so.
    #[tokio::test]
    async fn a_refusal_at_connect_is_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        }; // closed again: nothing listens there
        assert_eq!(
            client(port).probe(&recorder()).await,
            Probe::Failed(ProbeFailure::Refused)
        );
        assert_eq!(
            client(port).graceful_shutdown(&recorder()).await,
            Err(ProbeFailure::Refused)
        );
    }

    fn bridges(port: u16) -> JitsiHttp {
        JitsiHttp::bridges(
            &format!("http://127.0.0.1:{port}/colibri/stats"),
            &format!("http://127.0.0.1:{port}/colibri/drain"),
            Duration::from_secs(2),
            8192,
        )
        .unwrap()
    }

    /// A server that answers one request with `status` and `body`, and hands back its
    /// request line.
    async fn answering(
        status: &'static str,
        body: Vec<u8>,
    ) -> (u16, tokio::sync::oneshot::Receiver<String>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let _ = tx.send(head.lines().next().unwrap_or_default().to_string());
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            }
        });
        (port, rx)
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/jitsi/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// A bridge is probed with `GET /colibri/stats` (the real body: busy, its load carried)
    /// and drained with `POST /colibri/drain/enable`, undrained with `/disable`.
    #[tokio::test]
    async fn a_bridge_is_read_from_colibri_stats_and_drained_through_the_drain_api() {
        let (port, line) = answering("200 OK", fixture("jvb-colibri-stats.json")).await;
        let p = bridges(port).probe(&recorder()).await;
        assert_eq!(line.await.unwrap(), "GET /colibri/stats HTTP/1.1");
        let Probe::Status(s) = p else { panic!("{p:?}") };
        assert!(s.busy == crate::jitsi::BusyStatus::Busy, "{s:?}");
        let load = s.load.expect("a bridge's load");
        assert_eq!((load.conferences, load.participants), (3, 14));
        assert_eq!(load.stress_milli, 71);

        let (port, line) = answering("200 OK", Vec::new()).await;
        assert_eq!(bridges(port).graceful_shutdown(&recorder()).await, Ok(()));
        assert_eq!(line.await.unwrap(), "POST /colibri/drain/enable HTTP/1.1");
        let (port, line) = answering("200 OK", Vec::new()).await;
        assert_eq!(bridges(port).undrain(&recorder()).await, Ok(()));
        assert_eq!(line.await.unwrap(), "POST /colibri/drain/disable HTTP/1.1");
        // A disabled drain API (404) or a failing one is a failed drain, never success.
        let (port, _) = answering("404 Not Found", Vec::new()).await;
        assert_eq!(
            bridges(port).graceful_shutdown(&recorder()).await,
            Err(ProbeFailure::HttpStatus(404))
        );
        // A Jibri adapter refuses to undrain anything.
        assert!(client(1).undrain(&recorder()).await.is_err());
    }

    /// Garbage from a bridge (an HTML error page, a body without `stress_level`) is a
    /// failed probe (unknown, busy), never an empty bridge.
    #[tokio::test]
    async fn a_bridge_answering_garbage_is_unknown() {
        for body in [
            &b"<html>502</html>"[..],
            b"{\"conferences\":0,\"endpoints\":0}",
            b"{\"stress_level\":0.1,\"conferences\":0,\"endpoints\":0,\"drain\":\"yes\"}",
        ] {
            let (port, _) = answering("200 OK", body.to_vec()).await;
            let p = bridges(port).probe(&recorder()).await;
            assert!(
                matches!(p, Probe::Failed(ProbeFailure::Garbage(_))),
                "{p:?}"
            );
        }
    }

    /// Unlike a Jibri's, a bridge's refusal at connect is unknown (busy), never an exited
    /// process: a drained bridge keeps running its conferences, and its REST server binds
    /// 127.0.0.1 by default (row J3c of the fault matrix; this test said `Refused` before).
    /// A reset mid-answer is unknown too.
    #[tokio::test]
    async fn a_bridge_refusing_at_connect_is_unknown_never_exited_and_so_is_a_reset() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let http = bridges(port);
        let p = http.probe(&recorder()).await;
        assert!(
            matches!(&p, Probe::Failed(ProbeFailure::Transport(m)) if m.contains("refused")),
            "{p:?}"
        );
        for r in [
            http.graceful_shutdown(&recorder()).await,
            http.undrain(&recorder()).await,
        ] {
            assert!(matches!(&r, Err(ProbeFailure::Transport(_))), "{r:?}");
        }
        let port = one_answer(|s| {
            Box::pin(async move {
                let _ = s.set_zero_linger();
                drop(s);
            })
        })
        .await;
        let p = bridges(port).probe(&recorder()).await;
        assert!(
            matches!(p, Probe::Failed(ProbeFailure::Transport(_))),
            "{p:?}"
        );
    }
}
