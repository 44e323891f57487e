//! Harness of the tests on the local AWS test bed (moto, started by `make test`, which
//! exports `AWS_ENDPOINT_URL`): SDK clients, a bucket and an EC2 instance of the test's
//! own, the `jibri-finalize` binary run as Jibri runs it, and a loopback proxy in front of
//! moto that injects S3/EC2 errors, stalls or corrupts requests and logs what passed.
//! Only 127.0.0.0/8 is ever dialed.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TAG: &str = "jibri-autoscaler:upload-pending";
pub const MIB: u64 = 1 << 20;

/// The local AWS endpoint; `make test` exports it. Never a remote address.
pub fn endpoint() -> String {
    let url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is not set: run these tests through `make test` (it starts the local test bed)");
    assert!(
        url.starts_with("http://127."),
        "refusing a non-loopback AWS endpoint: {url}"
    );
    url.trim_end_matches('/').to_owned()
}

pub async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

pub fn s3(cfg: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(cfg)
            .force_path_style(true)
            .build(),
    )
}

pub fn ec2(cfg: &SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(cfg)
}

/// A name no other test (nor another run on the same server) uses.
pub fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "jf-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub async fn tag_value(ec2: &aws_sdk_ec2::Client, instance: &str) -> Option<String> {
    let out = ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()[0].instances()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG))
        .and_then(|t| t.value().map(str::to_owned))
}

pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2");
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    out.sort();
    out
}

pub async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// Deterministic, incompressible bytes (xorshift), so each part of a file differs.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The bytes of the large sparse test file at `offset`: zeros except an 8-byte stamp
/// (offset ^ seed) at the start of every MiB, so parts differ yet the file costs no disk.
pub fn sparse_stamp(offset: u64, seed: u64) -> [u8; 8] {
    (offset ^ seed).to_le_bytes()
}

pub fn write_sparse(path: &Path, len: u64, seed: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    let mut off = 0;
    while off + 8 <= len {
        f.write_all_at(&sparse_stamp(off, seed), off).unwrap();
        off += MIB;
    }
}

/// Streams the object and checks it against the sparse pattern, without holding it.
pub async fn assert_sparse_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    len: u64,
    seed: u64,
) {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("GetObject");
    assert_eq!(out.content_length(), Some(len as i64));
    let mut body = out.body;
    let mut pos = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("body chunk");
        for (i, b) in chunk.iter().enumerate() {
            let at = pos + i as u64;
            let in_mib = at % MIB;
            let expected = if in_mib < 8 && at - in_mib + 8 <= len {
                sparse_stamp(at - in_mib, seed)[in_mib as usize]
            } else {
                0
            };
            if *b != expected {
                panic!("{key}: byte {at} is {b}, expected {expected}");
            }
        }
        pos += chunk.len() as u64;
    }
    assert_eq!(pos, len);
}

/// One recorder: its bucket, its EC2 instance (tagged by the uploader), its recordings
/// directory, pending directory and configuration file.
pub struct Recorder {
    pub root: PathBuf,
    pub rec: PathBuf,
    pub pending: PathBuf,
    pub config: PathBuf,
    pub bucket: String,
    pub instance: String,
    pub s3: aws_sdk_s3::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// Extra `KEY=VALUE` environment for the binary (`JIBRI_FINALIZE_...`).
    pub env: Vec<(String, String)>,
}

impl Recorder {
    pub async fn new(name: &str) -> Self {
        let cfg = sdk().await;
        let (s3, ec2) = (s3(&cfg), ec2(&cfg));
        let bucket = unique(name)
            .chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned();
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("CreateBucket");
        let run = ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("RunInstances");
        let instance = run.instances()[0]
            .instance_id()
            .expect("instance id")
            .to_owned();
        let root = std::env::temp_dir().join(unique(name));
        let rec = root.join("recordings");
        std::fs::create_dir_all(&rec).unwrap();
        // Writable by the unprivileged user some tests run the binary as.
        use std::os::unix::fs::PermissionsExt;
        for d in [&root, &rec] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let r = Self {
            pending: root.join("pending"),
            config: root.join("jibri-finalize.conf"),
            root,
            rec,
            bucket,
            instance,
            s3,
            ec2,
            env: vec![],
        };
        r.write_config(&endpoint(), &[]);
        r
    }

    /// The configuration file as an operator writes it; `extra` lines are appended.
    pub fn write_config(&self, endpoint: &str, extra: &[(&str, &str)]) {
        let mut text = format!(
            "# written by the test\nBUCKET={}\nPREFIX=recordings/\nINSTANCE_ID={}\nENDPOINT_URL={endpoint}\nREGION=us-east-1\nPENDING_DIR={}\n\
             # moto computes CRC64NVME only with awscrt, which the test bed does not install\nCHECKSUM_ALGORITHM=crc32\n\
             PART_SIZE=5MiB\nMULTIPART_THRESHOLD=5MiB\nRETRY_BASE_MS=20\nRETRY_MAX_MS=200\nATTEMPT_TIMEOUT_S=60\n",
            self.bucket,
            self.instance,
            self.pending.display()
        );
        for (k, v) in extra {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn session_dir(&self, name: &str) -> PathBuf {
        let d = self.rec.join(name);
        std::fs::create_dir_all(&d).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        d
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jibri-finalize"));
        c.arg("--config").arg(&self.config).args(args);
        // Jibri's environment is not ours: only what the uploader needs, and nothing that
        // could make the SDK reach out (no profile files, no instance metadata).
        c.env_clear()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("JIBRI_FINALIZE_LOG", "info,aws_config=warn");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs the binary to the end (on a blocking thread: the proxy lives in this runtime).
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        let out = tokio::task::spawn_blocking(move || c.output().expect("run jibri-finalize"))
            .await
            .unwrap();
        eprintln!(
            "--- jibri-finalize {args:?} -> {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn marker(&self, session: &str) -> Option<serde_json::Value> {
        std::fs::read(self.pending.join(format!("{session}.json")))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    pub async fn tag(&self) -> Option<String> {
        tag_value(&self.ec2, &self.instance).await
    }

    pub async fn keys(&self) -> Vec<String> {
        keys(&self.s3, &self.bucket).await
    }

    /// The key prefix of a session finalized today (UTC).
    pub fn prefix(&self, session: &str) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let d = jibri_finalize::core::layout::CivilDate::from_epoch_secs(secs);
        format!(
            "recordings/{:04}/{:02}/{:02}/{session}/",
            d.year, d.month, d.day
        )
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What the proxy does to a request that matches a rule.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and S3/EC2 error code, without forwarding.
    Error(u16, &'static str),
    /// Hold the request this long, then forward it.
    Stall(Duration),
    /// Forward it with one byte of the body flipped.
    Corrupt,
    /// Forward it (it takes effect), then answer with this status and error code instead
    /// of the real answer: a response lost on the way back.
    AfterForward(u16, &'static str),
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Matched against `"<METHOD> <path?query> <first bytes of the body>"`.
    pub contains: Vec<String>,
    pub fault: Fault,
    /// Matching requests let through first.
    pub skip: u32,
    /// How many times it applies; `None`: always.
    pub times: Option<u32>,
}

impl Rule {
    pub fn new(contains: &[&str], fault: Fault) -> Self {
        Self {
            contains: contains.iter().map(|s| s.to_string()).collect(),
            fault,
            skip: 0,
            times: None,
        }
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Logged {
    /// `"<METHOD> <path?query>"`, plus ` Action=<EC2 action>` for EC2 calls.
    pub line: String,
    pub status: u16,
    pub injected: bool,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    log: Vec<Logged>,
}

/// A loopback HTTP proxy in front of moto.
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<ProxyState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let upstream = endpoint();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (st, client, upstream) = (st.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, st.clone(), client.clone(), upstream.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state, task }
    }

    pub fn add(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    pub fn clear_rules(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn count(&self, contains: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.line.contains(contains))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error_body(is_ec2: bool, code: &str) -> String {
    if is_ec2 {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error></Errors><RequestID>test</RequestID></Response>")
    } else {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>test</RequestId></Error>")
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<ProxyState>>,
    client: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let head = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    let is_ec2 = head.contains("Action=");
    let action = head
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(|a| format!(" Action={a}"))
        .unwrap_or_default();
    let line = format!("{} {pq}{action}", parts.method);
    let matched = format!("{line} {head}");
    let fault = {
        let mut st = state.lock().unwrap();
        let mut hit = None;
        for r in st.rules.iter_mut() {
            if r.times != Some(0) && r.contains.iter().all(|c| matched.contains(c.as_str())) {
                if r.skip > 0 {
                    r.skip -= 1;
                    continue;
                }
                if let Some(n) = &mut r.times {
                    *n -= 1;
                }
                hit = Some(r.fault.clone());
                break;
            }
        }
        hit
    };
    let mut body = body;
    let mut lose_answer = None;
    match fault {
        Some(Fault::Error(status, code)) => {
            state.lock().unwrap().log.push(Logged {
                line,
                status,
                injected: true,
            });
            let resp = Response::builder()
                .status(status)
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from(error_body(is_ec2, code))))
                .unwrap();
            return Ok(resp);
        }
        Some(Fault::Stall(d)) => tokio::time::sleep(d).await,
        Some(Fault::Corrupt) => {
            let mut v = body.to_vec();
            let mid = v.len() / 2;
            if let Some(b) = v.get_mut(mid) {
                *b ^= 0x5a;
            }
            body = Bytes::from(v);
        }
        Some(Fault::AfterForward(status, code)) => lose_answer = Some((status, code)),
        None => {}
    }
    let mut fwd = client.request(parts.method.clone(), format!("{upstream}{pq}"));
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" && k != "transfer-encoding" && k != "connection" {
            fwd = fwd.header(k, v);
        }
    }
    let resp = match fwd.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            state.lock().unwrap().log.push(Logged {
                line,
                status: 502,
                injected: false,
            });
            return Ok(Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(e.to_string())))
                .unwrap());
        }
    };
    let status = resp.status();
    if let Some((lost_status, code)) = lose_answer {
        let _ = resp.bytes().await;
        state.lock().unwrap().log.push(Logged {
            line,
            status: lost_status,
            injected: true,
        });
        return Ok(Response::builder()
            .status(lost_status)
            .header("content-type", "application/xml")
            .body(Full::new(Bytes::from(error_body(is_ec2, code))))
            .unwrap());
    }
    let mut out = Response::builder().status(status);
    let is_head = parts.method == hyper::Method::HEAD;
    for (k, v) in resp.headers() {
        // A HEAD answer's Content-Length is the object's size, not this (empty) body's.
        if k != "transfer-encoding" && k != "connection" && (k != "content-length" || is_head) {
            out = out.header(k, v);
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    state.lock().unwrap().log.push(Logged {
        line,
        status: status.as_u16(),
        injected: false,
    });
    Ok(out.body(Full::new(bytes)).unwrap())
}

/// Samples a child's peak resident memory (VmHWM) until it exits.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
