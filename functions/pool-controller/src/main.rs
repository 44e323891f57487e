//! The scheduled pool controller: an EventBridge schedule runs one observe → plan → act
//! tick per invocation. `pool-controller --plan` runs one dry tick from a shell (same
//! code, `DRY_RUN` forced) and prints the plan as JSON.

use jibri_autoscaler::aws::sdk_config;
use jibri_autoscaler::config::Config;
use jibri_autoscaler::controller::{Controller, TickReport};
use jibri_autoscaler::events::{parse_schedule, plan_only_requested, tick_time};
use jibri_autoscaler::runtime::{init_tracing, now, Adapters};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use std::sync::Arc;

async fn tick(
    cfg: &Config,
    adapters: &Adapters,
    holder: String,
    now: u64,
) -> Result<TickReport, Error> {
    let controller = Controller {
        cfg: cfg.clone(),
        asg: adapters.asg.clone(),
        ec2: adapters.ec2.clone(),
        recorders: Arc::new(adapters.jitsi.clone()),
        jicofo: Arc::new(adapters.jitsi.clone()),
        state: adapters.state.clone(),
        metrics: adapters.metrics(cfg),
        holder,
    };
    match tokio::time::timeout(cfg.tick_budget, controller.tick(now)).await {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "tick failed; nothing was changed");
            Err(e.into())
        }
        Err(_) => {
            tracing::error!(
                budget_ms = cfg.tick_budget.as_millis() as u64,
                "tick exceeded its budget; the next tick reconciles"
            );
            Err("tick exceeded TICK_BUDGET_MS".into())
        }
    }
}

async fn handler(
    event: LambdaEvent<Value>,
    cfg: &Config,
    adapters: &Adapters,
) -> Result<Value, Error> {
    let event_time = match parse_schedule(&event.payload) {
        Ok(t) => t,
        Err(e) => {
            // Not retried: a misrouted event will not become a schedule by retrying.
            tracing::error!(error = %e, "ignored an event that is not a schedule");
            return Ok(json!({ "ignored": e.to_string() }));
        }
    };
    // Production ticks run on the wall clock; the test bed's compressed clock uses the
    // event's time only with CLOCK=event (see `tick_time`).
    let wall = now();
    if let Some(t) = event_time.filter(|t| t.abs_diff(wall) > 60) {
        tracing::warn!(
            event_time = t,
            wall,
            clock = if cfg.event_clock { "event" } else { "wall" },
            "the schedule event's time is more than 60 s off the wall clock"
        );
    }
    let at = tick_time(event_time, wall, cfg.event_clock);
    let mut tick_cfg = cfg.clone();
    if plan_only_requested(&event.payload) {
        tracing::info!(
            "plan-only tick requested by the event: observing and planning, changing nothing"
        );
        tick_cfg.dry_run = true;
    }
    let report = tick(&tick_cfg, adapters, event.context.request_id.clone(), at).await?;
    Ok(json!({
        "outcome": report.outcome,
        "plan": report.plan.summary(),
        "calls": report.calls,
        "errors": report.errors,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let plan_only = std::env::args().any(|a| a == "--plan");
    let mut cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            init_tracing(true);
            tracing::error!("{e}");
            return Err(e.into());
        }
    };
    init_tracing(cfg.log_json && !plan_only);
    let sdk = sdk_config(cfg.tick_budget).await;
    let adapters = Adapters::new(&cfg, &sdk)?;
    if cfg.state_bucket.is_none() {
        tracing::warn!("STATE_BUCKET is empty: controller state lives in memory only (local use)");
    }
    if plan_only {
        cfg.dry_run = true;
        let report = tick(&cfg, &adapters, "plan-cli".into(), now()).await?;
        println!("{}", serde_json::to_string_pretty(&report.plan)?);
        println!("{}", report.plan.summary());
        return Ok(());
    }
    lambda_runtime::run(service_fn(|ev| handler(ev, &cfg, &adapters))).await
}
