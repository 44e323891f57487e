//! `jitsi-emulator --listen 127.0.0.1:0 --port-file PATH [--follow-asg NAME --aws-endpoint URL
//! [--aws-account ID] [--aws-region REGION] [--shard NAME]]`: serves until SIGTERM or SIGINT.

use anyhow::{bail, Context, Result};
use jitsi_emulator::{Emulator, FollowConfig, Options};

const USAGE: &str = "usage: jitsi-emulator [--listen 127.0.0.1:0] [--port-file PATH] \
[--follow-asg NAME --aws-endpoint URL [--aws-account ID] [--aws-region REGION] [--shard NAME]]";

#[derive(Default)]
struct Args {
    listen: Option<String>,
    port_file: Option<String>,
    follow_asg: Option<String>,
    aws_endpoint: Option<String>,
    aws_account: Option<String>,
    aws_region: Option<String>,
    shard: Option<String>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args> {
    let mut args = Args::default();
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let slot = match flag.as_str() {
            "--listen" => &mut args.listen,
            "--port-file" => &mut args.port_file,
            "--follow-asg" => &mut args.follow_asg,
            "--aws-endpoint" => &mut args.aws_endpoint,
            "--aws-account" => &mut args.aws_account,
            "--aws-region" => &mut args.aws_region,
            "--shard" => &mut args.shard,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        };
        *slot = Some(
            argv.next()
                .with_context(|| format!("{flag} needs a value"))?,
        );
    }
    if args.follow_asg.is_some() != args.aws_endpoint.is_some() {
        bail!("--follow-asg and --aws-endpoint go together\n{USAGE}");
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let listen = args.listen.as_deref().unwrap_or("127.0.0.1:0");
    let emu = Emulator::start_with(listen, Options { log_actions: true }).await?;
    eprintln!("jitsi-emulator: listening on {}", emu.url());

    if let Some(path) = &args.port_file {
        // Write then rename, so a watcher never reads a half-written port.
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, emu.addr().port().to_string())
            .with_context(|| format!("writing {tmp}"))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {tmp} to {path}"))?;
    }
    if let (Some(group), Some(endpoint)) = (args.follow_asg, args.aws_endpoint) {
        let mut config = FollowConfig::new(endpoint, group);
        config.account = args.aws_account;
        config.region = args.aws_region;
        config.shard = args.shard;
        emu.follow(config)?;
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => eprintln!("jitsi-emulator: SIGTERM, exiting"),
        r = tokio::signal::ctrl_c() => {
            r.context("waiting for SIGINT")?;
            eprintln!("jitsi-emulator: SIGINT, exiting");
        }
    }
    emu.shutdown().await;
    Ok(())
}
