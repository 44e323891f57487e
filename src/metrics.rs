//! Pool metrics: derived from a plan, rendered as CloudWatch Embedded Metric Format
//! (the default sink: a log line, no API call, works from private subnets without an
//! endpoint) or sent with `PutMetricData` ([`crate::aws::CloudWatchSink`]).

use crate::core::plan::{HookVerdict, Plan, PoolCounts};
use crate::domain::{EpochSecs, JicofoObservation};
use crate::ports::{Metric, MetricsSink, PortResult};
use serde_json::{json, Map, Value};

/// What the act phase and the safety check found: `ConfigDrift` (drifts of the group's
/// safety configuration; removals stop while > 0) and `DrainFailed` (drain requests that
/// failed other than by a connect-time refusal; those recorders are held, not released).
pub fn safety_metrics(config_drift: usize, drain_failed: usize) -> Vec<Metric> {
    let m = |name, value: f64| Metric {
        name,
        value,
        unit: "Count",
    };
    vec![
        m("ConfigDrift", config_drift as f64),
        m("DrainFailed", drain_failed as f64),
    ]
}

/// The per-pool metrics of one tick.
pub fn pool_metrics(p: &Plan) -> Vec<Metric> {
    let c = &p.counts;
    let m = |name, value: f64| Metric {
        name,
        value,
        unit: "Count",
    };
    let mut v = vec![
        m("Total", f64::from(c.total)),
        m("Busy", f64::from(c.busy)),
        m("Idle", f64::from(c.idle)),
        m("Unknown", f64::from(c.unknown)),
        m("Broken", f64::from(c.broken)),
        m("Launching", f64::from(c.launching)),
        m("SpareTarget", f64::from(p.spare.target)),
        m(
            "DesiredCapacity",
            f64::from(p.desired.unwrap_or(p.desired_before)),
        ),
        m("HeldHooks", f64::from(c.held_hooks)),
        m("Retained", f64::from(c.retained)),
        // Retained instances whose Jibri answers nothing: the alarm retained-unanswering;
        // the ids are in the plan line (`retained_unanswering=[...]`).
        m("RetainedUnanswering", p.retained_unanswering.len() as f64),
        // In service with a Spot interruption warning (replaced at once).
        m("Interrupted", f64::from(c.leaving)),
        m("UploadPending", f64::from(c.upload_pending)),
        m("Replaced", p.replace.len() as f64),
        m(
            "Abandoned",
            p.hooks
                .iter()
                .filter(|h| h.verdict == HookVerdict::Abandon)
                .count() as f64,
        ),
        m("RequestsRefused", c.refused as f64),
        m("RecordingStarts", f64::from(c.starts)),
        m("StatsUnavailable", f64::from(c.stats_unavailable)),
    ];
    // The predictive side: what the forecast expects over the horizon, the warm pool, and
    // the boot latencies planned with (measured once trusted).
    if let Some(f) = p.spare.forecast {
        v.push(m("ForecastStarts", f));
    }
    if c.warm > 0 || p.warm_pool.is_some() {
        v.push(m("WarmPoolSize", f64::from(c.warm)));
        v.push(m("WarmReady", f64::from(c.warm_ready)));
    }
    v.push(Metric {
        name: "BootLatencyCold",
        value: c.boot_cold_s as f64,
        unit: "Seconds",
    });
    v.push(Metric {
        name: "BootLatencyWarm",
        value: c.boot_warm_s as f64,
        unit: "Seconds",
    });
    if let Some(a) = c.jicofo_available {
        v.push(m("JicofoAvailable", a as f64));
    }
    if let Some(n) = c.jicofo_count {
        v.push(m("JicofoCount", n as f64));
    }
    v
}

/// A videobridge pool's own metrics: the mean stress the plan sized on, the bridges drained,
/// and Jicofo's view of the bridges (`bridge_selector`, summed over the shards that
/// answered): `BridgesOperational`, `BridgesInShutdown` and `BridgesLost` (a counter until
/// Jicofo restarts: a bridge that left without a graceful shutdown, e.g. terminated with
/// its conferences, jicofo `BridgeSelector.removeJvbAddress`). No Jicofo or no
/// `bridge_selector` block: no bridge counters.
pub fn bridge_metrics(c: &PoolCounts, jicofo: &JicofoObservation) -> Vec<Metric> {
    let m = |name, value: f64| Metric {
        name,
        value,
        unit: "Count",
    };
    let mut v = Vec::new();
    if let Some(s) = c.stress_milli {
        v.push(Metric {
            name: "MeanStress",
            value: f64::from(s) / 1000.0,
            unit: "None",
        });
    }
    v.push(m("Draining", f64::from(c.draining)));
    if let Some(b) = jicofo
        .stats
        .bridges
        .filter(|_| jicofo.shards_configured > 0)
    {
        v.push(m("BridgesOperational", b.operational_bridge_count as f64));
        v.push(m("BridgesInShutdown", b.in_shutdown_bridge_count as f64));
        v.push(m("BridgesLost", b.lost_bridges as f64));
    }
    v
}

/// One EMF document: the metrics as top-level members, declared under `_aws`.
pub fn emf_line(namespace: &str, group: &str, metrics: &[Metric], at: EpochSecs) -> String {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at * 1000,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["AutoScalingGroupName"]],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("AutoScalingGroupName".into(), Value::String(group.into()));
    for m in metrics {
        doc.insert(m.name.into(), json!(m.value));
    }
    Value::Object(doc).to_string()
}

/// EMF to standard output (Lambda forwards stdout to CloudWatch Logs, which extracts it).
pub struct EmfStdout {
    pub namespace: String,
}

impl MetricsSink for EmfStdout {
    async fn emit(&self, group: &str, metrics: &[Metric], at: EpochSecs) -> PortResult<()> {
        println!("{}", emf_line(&self.namespace, group, metrics, at));
        Ok(())
    }
}

/// Either sink, chosen by `METRICS_SINK`.
pub enum AnySink {
    Emf(EmfStdout),
    CloudWatch(crate::aws::CloudWatchSink),
}

impl MetricsSink for AnySink {
    async fn emit(&self, group: &str, metrics: &[Metric], at: EpochSecs) -> PortResult<()> {
        match self {
            Self::Emf(s) => s.emit(group, metrics, at).await,
            Self::CloudWatch(s) => s.emit(group, metrics, at).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_declares_every_metric_it_carries() {
        let ms = [
            Metric {
                name: "Busy",
                value: 3.0,
                unit: "Count",
            },
            Metric {
                name: "Idle",
                value: 1.0,
                unit: "Count",
            },
        ];
        let line = emf_line("JibriAutoscaler", "pool-a", &ms, 1_700_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "JibriAutoscaler"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Name"],
            "Idle"
        );
        assert_eq!(v["Busy"], 3.0);
        assert_eq!(v["AutoScalingGroupName"], "pool-a");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_bridge_pool_reports_its_stress_and_jicofos_bridge_counters() {
        use crate::jitsi::{BridgeSelectorStats, JicofoStats};
        let counts = PoolCounts {
            stress_milli: Some(425),
            draining: 2,
            ..Default::default()
        };
        let jicofo = JicofoObservation {
            stats: JicofoStats {
                bridges: Some(BridgeSelectorStats {
                    bridge_count: 5,
                    operational_bridge_count: 4,
                    in_shutdown_bridge_count: 1,
                    lost_bridges: 3,
                }),
                ..Default::default()
            },
            shards_configured: 1,
            shards_failed: 0,
        };
        let got: Vec<(&str, f64)> = bridge_metrics(&counts, &jicofo)
            .iter()
            .map(|m| (m.name, m.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("MeanStress", 0.425),
                ("Draining", 2.0),
                ("BridgesOperational", 4.0),
                ("BridgesInShutdown", 1.0),
                ("BridgesLost", 3.0),
            ]
        );
        // No Jicofo configured (or no `bridge_selector` block): no bridge counters.
        let none = bridge_metrics(&counts, &JicofoObservation::default());
        assert!(
            none.iter().all(|m| !m.name.starts_with("Bridges")),
            "{none:?}"
        );
    }
}
