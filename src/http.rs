//! The HTTP adapters: Jibri's public and internal APIs and Jicofo's `/stats`, with a
//! timeout on every call and a cap on every body, so that a hung or babbling endpoint
//! costs one timeout and never the tick.

use crate::config::{fill_template, Config};
use crate::domain::{Probe, ProbeFailure};
use crate::jitsi::{parse_jibri_health, parse_jicofo_stats, JicofoStats};
use crate::ports::{Jicofo, RecorderAddress, Recorders};
use std::time::Duration;

/// Jibri and Jicofo over HTTP.
#[derive(Clone)]
pub struct JitsiHttp {
    client: reqwest::Client,
    health_template: String,
    internal_template: String,
    max_body: usize,
}

impl JitsiHttp {
    pub fn new(cfg: &Config) -> Result<Self, String> {
        Self::with(
            &cfg.jibri_health_url,
            &cfg.jibri_internal_url,
            cfg.probe_timeout,
            cfg.max_body_bytes,
        )
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
            health_template: health_template.into(),
            internal_template: internal_template.into(),
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
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        let Some(url) = fill_template(&self.health_template, &r.id.0, r.private_ip.as_deref())
        else {
            return Probe::Failed(ProbeFailure::NoAddress);
        };
        match self.get_body(&url).await {
            Ok(body) => match parse_jibri_health(&body) {
                Ok(status) => Probe::Status(status),
                Err(e) => Probe::Failed(ProbeFailure::Garbage(e.to_string())),
            },
            Err(f) => Probe::Failed(f),
        }
    }

    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        let base = fill_template(&self.internal_template, &r.id.0, r.private_ip.as_deref())
            .ok_or(ProbeFailure::NoAddress)?;
        let url = format!("{}/gracefulShutdown", base.trim_end_matches('/'));
        let resp = self.client.post(&url).send().await.map_err(classify)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ProbeFailure::HttpStatus(resp.status().as_u16()))
        }
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
}
