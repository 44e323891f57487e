use lambda_runtime::{service_fn, LambdaEvent, Error};
async fn handler(_e: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> { Ok(serde_json::Value::Null) }
#[tokio::main]
async fn main() -> Result<(), Error> { let _ = jibri_autoscaler::placeholder; lambda_runtime::run(service_fn(handler)).await }
