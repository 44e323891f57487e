//! `jibri-finalize`: parse the command line and the configuration (fail fast), set up
//! logging, build the AWS clients once, run the finalize or the retry, exit 0 only when
//! nothing went wrong.

use jibri_finalize::aws::{self, Ec2Tags, S3Store, UnknownInstance};
use jibri_finalize::config::{self, Config, Fallback, LogFormat, DEFAULT_CONFIG_FILE, ENV_PREFIX};
use jibri_finalize::pending::PendingDir;
use jibri_finalize::ports::{InstanceTags, ObjectStore};
use jibri_finalize::uploader::{Outcome, RunReport, Settings, Uploader};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: jibri-finalize [--config FILE] RECORDING_DIR   upload one Jibri session (Jibri's finalize script), then retry pending ones
       jibri-finalize [--config FILE] --retry-pending  retry every pending session (the systemd timer)
       jibri-finalize [--config FILE] --status         list pending sessions (exit 1 if any)
       jibri-finalize [--config FILE] --check-config   validate the configuration and print it
       jibri-finalize --help | --version

Configuration: KEY=VALUE lines in FILE (default /etc/jibri-finalize.conf, or $JIBRI_FINALIZE_CONFIG),
overridden by JIBRI_FINALIZE_<KEY> environment variables. Keys:";

/// Exit status of a run that went wrong: files kept, session(s) pending.
const EXIT_PENDING: u8 = 1;
/// Exit status of a command line or configuration error: nothing was done.
const EXIT_USAGE: u8 = 2;

enum Command {
    Finalize(PathBuf),
    RetryPending,
    Status,
    CheckConfig,
}

fn parse_args(args: &[String]) -> Result<(Option<PathBuf>, Command), String> {
    let mut config = None;
    let mut command = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let next = match a.as_str() {
            "--config" => {
                config = Some(PathBuf::from(it.next().ok_or("--config needs a file")?));
                continue;
            }
            "--retry-pending" => Command::RetryPending,
            "--status" => Command::Status,
            "--check-config" => Command::CheckConfig,
            s if s.starts_with("--config=") => {
                config = Some(PathBuf::from(&s["--config=".len()..]));
                continue;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            dir => Command::Finalize(PathBuf::from(dir)),
        };
        if command.replace(next).is_some() {
            return Err(
                "one recording directory or one of --retry-pending, --status, --check-config"
                    .into(),
            );
        }
    }
    command
        .map(|c| (config, c))
        .ok_or_else(|| "nothing to do".into())
}

/// The configuration, or the error and what can still be used to protect a session.
fn load_config(explicit: Option<PathBuf>) -> Result<Config, (String, Fallback)> {
    let env = |k: &str| std::env::var(k).ok();
    let (path, required) = match explicit
        .or_else(|| std::env::var_os(format!("{ENV_PREFIX}CONFIG")).map(PathBuf::from))
    {
        Some(p) => (p, true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    };
    let values = text.and_then(|t| {
        config::parse_file(&path.display().to_string(), &t).map_err(|e| e.to_string())
    });
    match values {
        Ok(values) => Config::from_sources(&values, env).map_err(|e| {
            (
                format!("configuration: {e}"),
                Fallback::from_sources(&values, env),
            )
        }),
        Err(e) => Err((e, Fallback::from_sources(&Default::default(), env))),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JIBRI_FINALIZE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        for v in config::VARS {
            println!("  {:<20} {:<24} {}", v.key, v.default.unwrap_or("-"), v.doc);
        }
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version") {
        println!("{}", jibri_finalize::uploader::UPLOADER);
        return ExitCode::SUCCESS;
    }
    let (config_path, command) = match parse_args(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("jibri-finalize: {e}\n\n{USAGE} see --help");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let cfg = match load_config(config_path) {
        Ok(c) => c,
        Err((e, fallback)) => {
            eprintln!("jibri-finalize: {e}");
            if let Command::Finalize(dir) = command {
                // Fail safe: a mistake in the configuration must not cost the recording.
                init_tracing(LogFormat::Text);
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(hold(&dir, &e, fallback));
                }
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        Command::CheckConfig => {
            println!("{}", cfg.describe());
            return ExitCode::SUCCESS;
        }
        // Local only: no AWS client, no instance metadata.
        Command::Status => return status(&PendingDir::new(&cfg.pending_dir)),
        _ => {}
    }
    init_tracing(cfg.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jibri-finalize: tokio runtime: {e}");
            return ExitCode::from(EXIT_PENDING);
        }
    };
    runtime.block_on(run(cfg, command))
}

async fn run(cfg: Config, command: Command) -> ExitCode {
    let pending = PendingDir::new(&cfg.pending_dir);
    let sdk = aws::sdk_config(&cfg).await;
    let store = S3Store::new(&sdk, &cfg);
    let instance = match &cfg.instance_id {
        Some(id) => Ok(id.clone()),
        None => aws::instance_id_from_imds().await,
    };
    match instance {
        Ok(id) => {
            let tags = Ec2Tags::new(&sdk, &id);
            execute(
                Uploader::new(store, tags, pending, settings(&cfg, &id)),
                command,
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "the instance id is unknown: the instance cannot be tagged (set INSTANCE_ID or fix the metadata service); uploading anyway");
            execute(
                Uploader::new(
                    store,
                    UnknownInstance(e),
                    pending,
                    settings(&cfg, "unknown"),
                ),
                command,
            )
            .await
        }
    }
}

/// Records the session as pending and tags the instance, with what the broken
/// configuration still gives; uploads nothing.
async fn hold(dir: &std::path::Path, why: &str, fb: Fallback) {
    let sdk = aws::sdk_config_for(
        fb.region.as_deref(),
        fb.endpoint_url.as_deref(),
        std::time::Duration::from_secs(30),
    )
    .await;
    let store = S3Store::from_client(aws_sdk_s3::Client::new(&sdk), "unconfigured");
    let settings = Settings {
        prefix: String::new(),
        part_size: jibri_finalize::core::parts::S3_MIN_PART,
        multipart_threshold: jibri_finalize::core::parts::S3_MIN_PART,
        concurrency: 1,
        algorithm: jibri_finalize::core::checksum::ChecksumAlgorithm::Crc64Nvme,
        retry: jibri_finalize::core::retry::RetryPolicy {
            max_attempts: 4,
            base: std::time::Duration::from_millis(200),
            cap: std::time::Duration::from_secs(5),
        },
        instance_id: fb.instance_id.clone().unwrap_or_default(),
        unrecorded_round_wait: std::time::Duration::from_secs(30),
    };
    let pending = PendingDir::new(&fb.pending_dir);
    let instance = match fb.instance_id {
        Some(id) => Ok(id),
        None => aws::instance_id_from_imds().await,
    };
    let report = match instance {
        Ok(id) => {
            Uploader::new(store, Ec2Tags::new(&sdk, &id), pending, settings)
                .hold(dir, why)
                .await
        }
        Err(e) => {
            Uploader::new(store, UnknownInstance(e), pending, settings)
                .hold(dir, why)
                .await
        }
    };
    summarize(&report);
}

fn settings(cfg: &Config, instance_id: &str) -> Settings {
    Settings {
        prefix: cfg.prefix.clone(),
        part_size: cfg.part_size,
        multipart_threshold: cfg.multipart_threshold,
        concurrency: cfg.concurrency,
        algorithm: cfg.checksum_algorithm,
        retry: cfg.retry,
        instance_id: instance_id.into(),
        unrecorded_round_wait: cfg.retry.cap.max(std::time::Duration::from_secs(30)),
    }
}

async fn execute<S: ObjectStore, T: InstanceTags>(
    uploader: Uploader<S, T>,
    command: Command,
) -> ExitCode {
    let report = match command {
        Command::Finalize(dir) => uploader.finalize(&dir).await,
        Command::RetryPending => uploader.retry_pending().await,
        Command::Status | Command::CheckConfig => return ExitCode::SUCCESS,
    };
    summarize(&report);
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PENDING)
    }
}

fn summarize(report: &RunReport) {
    for s in &report.sessions {
        match &s.outcome {
            Outcome::Uploaded { files, bytes } => {
                tracing::info!(session = %s.session, files, bytes, "uploaded")
            }
            Outcome::Failed(e) => tracing::error!(session = %s.session, error = %e, "pending"),
            other => tracing::info!(session = %s.session, outcome = ?other, "done"),
        }
    }
    for p in &report.problems {
        tracing::error!(problem = %p);
    }
    for p in &report.tag_problems {
        tracing::error!(tag_problem = %p, "the instance tag is not as it should be (the exit status is the uploads')");
    }
    tracing::info!(pending = ?report.pending_after, ok = report.ok(), "finished");
}

fn status(pending: &PendingDir) -> ExitCode {
    match pending.records() {
        Ok(list) if list.is_empty() => {
            println!("no pending session");
            ExitCode::SUCCESS
        }
        Ok(list) => {
            for r in list {
                match r {
                    Ok(rec) => {
                        let stored = rec.files.values().filter(|f| f.stored.is_some()).count();
                        println!(
                            "{}\t{}\tattempts={}\tfiles stored={}/{}\tlast error: {}",
                            rec.session,
                            rec.dir,
                            rec.attempts,
                            stored,
                            rec.files.len(),
                            rec.last_error.as_deref().unwrap_or("-")
                        );
                    }
                    Err(e) => println!("unreadable marker: {e}"),
                }
            }
            ExitCode::from(EXIT_PENDING)
        }
        Err(e) => {
            eprintln!("jibri-finalize: pending directory: {e}");
            ExitCode::from(EXIT_PENDING)
        }
    }
}
