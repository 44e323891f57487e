//! The termination guard: judges each terminate (and launch) lifecycle action, delivered
//! by EventBridge or through SNS/SQS, so that no busy recorder is ever killed.

use jibri_autoscaler::aws::sdk_config;
use jibri_autoscaler::config::Config;
use jibri_autoscaler::guard::Guard;
use jibri_autoscaler::runtime::{init_tracing, now, Adapters};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handler(
    event: LambdaEvent<Value>,
    guard: &Guard<
        impl jibri_autoscaler::ports::AutoScaling,
        impl jibri_autoscaler::ports::Ec2,
        impl jibri_autoscaler::ports::Recorders,
    >,
) -> Result<Value, Error> {
    Ok(guard.handle_delivery(&event.payload, now()).await?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            init_tracing(true);
            tracing::error!("{e}");
            return Err(e.into());
        }
    };
    init_tracing(cfg.log_json);
    let sdk = sdk_config(cfg.tick_budget).await;
    let a = Adapters::new(&cfg, &sdk)?;
    let guard = Guard {
        cfg,
        asg: a.asg,
        ec2: a.ec2,
        recorders: a.jitsi,
    };
    lambda_runtime::run(service_fn(|ev| handler(ev, &guard))).await
}
