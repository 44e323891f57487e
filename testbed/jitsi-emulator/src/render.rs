//! The wire bodies Jibri and Jicofo send, rendered byte for byte as the real servers do
//! (compact JSON in the servers' key order; see `tests/fixtures/jitsi/` at the repository root).

use crate::model::{JicofoSnapshot, Recorder};

/// `GET /about/version` of the Jicofo build the fixtures come from.
pub const JICOFO_VERSION_BODY: &str = r#"{"name":"JiCoFo","version":"1.0.1183","os":"Linux"}"#;

/// The version string inside Jicofo's `/stats`.
const JICOFO_VERSION: &str = "1.0.1183";

/// Jibri's `GET /jibri/api/v1.0/health` (`JibriHealth`: `status`, then `environmentContext`
/// only while a session is active, Jackson `NON_NULL`).
pub fn jibri_health(r: &Recorder) -> String {
    let mut out = String::with_capacity(160);
    out.push_str(r#"{"status":{"busyStatus":""#);
    out.push_str(r.busy_status().as_str());
    out.push_str(r#"","health":{"healthStatus":""#);
    out.push_str(r.health().as_str());
    out.push_str(r#"","details":{"#);
    if r.health() == crate::model::HealthStatus::Unhealthy {
        // JibriManager publishes UNHEALTHY for a SYSTEM-scoped error, with an empty detail.
        out.push_str(r#""JibriManager":{"healthStatus":"UNHEALTHY","detail":""}"#);
    }
    out.push_str("}}}");
    if r.busy_status() == crate::model::BusyStatus::Busy {
        out.push_str(r#","environmentContext":{"name":"#);
        out.push_str(&json_string(r.environment()));
        out.push('}');
    }
    out.push('}');
    out
}

/// A JSON string literal (quoted and escaped).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A compact JSON object written field by field, in order.
struct Obj(String);

impl Obj {
    fn new() -> Self {
        Obj(String::from("{"))
    }
    fn raw(&mut self, key: &str, value: &str) -> &mut Self {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
        self.0.push_str(value);
        self
    }
    fn num(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.raw(key, &value.to_string())
    }
    fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.0);
        s.push('}');
        s
    }
}

/// Thresholds of jitsi-utils `ConferenceSizeBuckets` (`BucketStats`); the last is open (max).
const SIZE_THRESHOLDS: [u64; 13] = [0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 300, 400, 500];

/// jitsi-utils `BucketStats.toJson()` over conference sizes: `min`/`max` start at 0 (so `min`
/// stays 0), the average of no value is NaN (Jackson writes `"NaN"`, old builds `null`), and
/// the percentile bounds are -1 until there are 100 (p99) / 1000 (p999) values.
fn conference_sizes(sizes: &[u64], legacy: bool) -> String {
    let total_value: u64 = sizes.iter().sum();
    let total_count = sizes.len() as u64;
    let average = if total_count == 0 {
        if legacy {
            "null".to_owned()
        } else {
            "\"NaN\"".to_owned()
        }
    } else {
        java_double(total_value as f64 / total_count as f64)
    };
    let max = sizes.iter().copied().fold(0, u64::max);
    let min = sizes.iter().copied().fold(0, u64::min);

    let mut counts = [0u64; SIZE_THRESHOLDS.len()];
    for &v in sizes {
        let i = SIZE_THRESHOLDS.iter().rposition(|&t| v >= t).unwrap_or(0);
        counts[i] += 1;
    }
    let bound = |fraction: f64, min_count: u64| -> i64 {
        let mut sum = 0u64;
        let mut found: Option<u64> = None;
        for (i, &c) in counts.iter().enumerate() {
            sum += c;
            let upper = SIZE_THRESHOLDS.get(i + 1).copied();
            if let Some(upper) = upper {
                if found.is_none_or(|f| upper < f) && sum as f64 > fraction * total_count as f64 {
                    found = Some(upper);
                }
            }
        }
        match found {
            Some(b) if total_count >= min_count => b as i64,
            _ => -1,
        }
    };
    let mut buckets = Obj::new();
    for (i, &c) in counts.iter().enumerate() {
        let label = match SIZE_THRESHOLDS.get(i + 1) {
            Some(upper) => format!("{}_to_{}", SIZE_THRESHOLDS[i], upper),
            None => format!("{}_to_max", SIZE_THRESHOLDS[i]),
        };
        buckets.num(&label, c);
    }
    buckets.num("p99_upper_bound", bound(0.99, 100));
    buckets.num("p999_upper_bound", bound(0.999, 1000));

    Obj::new()
        .raw("average", &average)
        .num("max", max)
        .num("min", min)
        .num("total_value", total_value)
        .num("total_count", total_count)
        .num("discarded", 0)
        .raw("buckets", &buckets.finish())
        .finish()
}

/// A double as Jackson writes it (`Double.toString`): shortest digits, at least one decimal.
fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return "\"NaN\"".to_owned();
    }
    // serde_json/ryu gives the shortest round-trip digits; Java agrees for the plain range
    // [1e-3, 1e7) that averages of conference sizes fall in.
    let s = serde_json::to_string(&v).unwrap_or_else(|_| "0.0".to_owned());
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Jicofo's `GET /stats` (`JicofoServices.getStats`): the `FocusManager` stats, then the bridge
/// selector, Jibri detectors, Jigasi, threads, Jingle, version and, with health checks on, the
/// health block. The parts the emulator does not model are those of `jicofo-stats-empty.json`.
pub fn jicofo_stats(s: &JicofoSnapshot) -> String {
    let sizes = &s.conference_sizes;
    let participants: u64 = sizes.iter().sum();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let pairs: u64 = sizes.iter().map(|x| x * x).sum();

    let jibri = Obj::new()
        .num("total_sip_call_failures", 0)
        .num("total_live_streaming_failures", 0)
        .num("total_recording_failures", s.recording_failures)
        .num("live_streaming_active", 0)
        .num("recording_active", s.recording_active)
        .num("sip_call_active", 0)
        .finish();

    let mut o = Obj::new();
    o.num("total_participants", s.total_participants)
        .num("total_conferences_created", s.total_conferences_created)
        .num("conferences", sizes.len())
        .num("conferences_with_visitors", 0)
        .raw(
            "bridge_failures",
            r#"{"participants_moved":0,"bridges_removed":0}"#,
        )
        .raw(
            "participant_notifications",
            r#"{"ice_failed":0,"request_restart":0}"#,
        )
        .num("largest_conference", largest)
        .num("participants", participants)
        .num("visitors", 0)
        .raw("conference_sizes", &conference_sizes(sizes, s.legacy))
        .num("endpoint_pairs", pairs)
        .raw("jibri", &jibri)
        .raw("queues", "{}")
        .raw("bridge_selector", &bridge_selector(s));
    if !s.legacy {
        // JibriDetectorMetrics.appendStats (current builds write it even with no detector).
        let detector = Obj::new()
            .num("count", s.jibri_count)
            .num("available", s.jibri_available)
            .finish();
        o.raw("jibri_detector", &detector)
            .raw("sip_jibri_detector", r#"{"count":0,"available":0}"#);
    }
    o.raw("jigasi", "{}")
        .num("threads", 61)
        .raw("jingle", r#"{"sent":{},"received":{}}"#)
        .raw("version", &json_string(JICOFO_VERSION));
    if s.stats_health {
        let (message, success) = if s.healthy {
            ("null", "true")
        } else {
            ("\"Unknown error.\"", "false")
        };
        o.num("slow_health_check", 0).raw("healthy", success).raw(
            "health",
            &format!(
                r#"{{"success":{success},"hardFailure":true,"responseCode":null,"sticky":false,"message":{message}}}"#
            ),
        );
    }
    o.finish()
}

/// The Jibri families of Jicofo's Prometheus `/metrics` (text format 0.0.4), as in
/// `jicofo-metrics-jibri.prom004.txt`; the rest of Jicofo's families are not emulated.
pub fn jicofo_metrics(s: &JicofoSnapshot) -> String {
    let mut out = String::with_capacity(3_000);
    let mut family = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP jitsi_jicofo_{name} {help}\n# TYPE jitsi_jicofo_{name} {kind}\njitsi_jicofo_{name} {value}\n"
        ));
    };
    let count = |n: u64| java_decimal(u128::from(n), 0);
    let created = java_decimal(u128::from(s.created_at_ms), 3);
    family(
        "jibri_instances",
        "gauge",
        "Current number of jibri instances",
        count(s.jibri_count),
    );
    family(
        "jibri_instances_available",
        "gauge",
        "Current number of available (not in use) jibri instances",
        count(s.jibri_available),
    );
    family(
        "sip_jibri_instances",
        "gauge",
        "Current number of SIP jibri instances",
        count(0),
    );
    family(
        "sip_jibri_instances_available",
        "gauge",
        "Current number of available (not in use) SIP jibri instances",
        count(0),
    );
    family(
        "jibri_live_streaming_active",
        "gauge",
        "Current number of active jibris in live-streaming mode",
        count(0),
    );
    family(
        "jibri_recording_active",
        "gauge",
        "Current number of active jibris in recording mode",
        count(s.recording_active),
    );
    family(
        "jibri_sip_active",
        "gauge",
        "Current number of active jibris in SIP mode",
        count(0),
    );
    family(
        "jibri_sip_failures_total",
        "counter",
        "Number of failures for a SIP jibri",
        count(0),
    );
    family(
        "jibri_recording_failures_total",
        "counter",
        "Number of failures for a recording jibri",
        count(s.recording_failures),
    );
    family(
        "jibri_live_streaming_failures_total",
        "counter",
        "Number of failures for a live-streaming jibri",
        count(0),
    );
    let no_instance_help =
        "Number of failures to start a jibri session because no instance was available";
    family(
        "jibri_no_instance_failures_total",
        "counter",
        no_instance_help,
        count(s.no_instance_failures),
    );
    family(
        "jibri_live_streaming_failures_created",
        "gauge",
        "Number of failures for a live-streaming jibri",
        created.clone(),
    );
    family(
        "jibri_no_instance_failures_created",
        "gauge",
        no_instance_help,
        created.clone(),
    );
    family(
        "jibri_recording_failures_created",
        "gauge",
        "Number of failures for a recording jibri",
        created.clone(),
    );
    family(
        "jibri_sip_failures_created",
        "gauge",
        "Number of failures for a SIP jibri",
        created,
    );
    out
}

/// `mantissa × 10^-scale` written as Java's `Double.toString` writes it: plain with at least one
/// decimal in [1e-3, 1e7), otherwise `d.dddE<n>`. Exact for integers and millisecond times.
fn java_decimal(mantissa: u128, scale: u32) -> String {
    if mantissa == 0 {
        return "0.0".to_owned();
    }
    let mut digits = mantissa.to_string();
    let mut exp10 = -(scale as i64);
    while digits.ends_with('0') {
        digits.pop();
        exp10 += 1;
    }
    // value = 0.d1d2... × 10^(len + exp10) = d1.d2... × 10^sci
    let sci = digits.len() as i64 - 1 + exp10;
    if (-3..7).contains(&sci) {
        if sci >= 0 {
            let int_len = (sci + 1) as usize;
            if digits.len() <= int_len {
                format!("{}{}.0", digits, "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{}", "0".repeat((-sci - 1) as usize), digits)
        }
    } else {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{}.{}E{}", &digits[..1], rest, sci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BusyStatus, HealthStatus, RecorderUpdate, World, DEFAULT_SHARD};

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/jitsi/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn recorder(update: RecorderUpdate, recording: bool) -> World {
        let mut w = World::new(0);
        w.upsert_recorder("i-1", &update).unwrap();
        if recording {
            w.start_recording("i-1").unwrap();
        }
        w
    }

    #[test]
    fn idle_health_equals_the_fixture() {
        let w = recorder(RecorderUpdate::default(), false);
        assert_eq!(
            jibri_health(w.recorder("i-1").unwrap()),
            fixture("jibri-health-idle.json")
        );
    }

    #[test]
    fn busy_health_equals_the_fixture_with_its_environment_context() {
        let w = recorder(RecorderUpdate::default(), true);
        assert_eq!(
            jibri_health(w.recorder("i-1").unwrap()),
            fixture("jibri-health-busy.json")
        );
    }

    #[test]
    fn finalizing_health_is_still_busy() {
        let mut w = recorder(
            RecorderUpdate {
                finalize_ms: Some(10),
                ..Default::default()
            },
            true,
        );
        w.stop_recording("i-1").unwrap();
        assert_eq!(
            jibri_health(w.recorder("i-1").unwrap()),
            fixture("jibri-health-busy.json")
        );
    }

    #[test]
    fn expired_health_equals_the_fixture() {
        let w = recorder(
            RecorderUpdate {
                status: Some(BusyStatus::Expired),
                ..Default::default()
            },
            false,
        );
        assert_eq!(
            jibri_health(w.recorder("i-1").unwrap()),
            fixture("jibri-health-expired.json")
        );
    }

    #[test]
    fn unhealthy_health_equals_the_fixture() {
        let w = recorder(
            RecorderUpdate {
                health: Some(HealthStatus::Unhealthy),
                ..Default::default()
            },
            false,
        );
        assert_eq!(
            jibri_health(w.recorder("i-1").unwrap()),
            fixture("jibri-health-unhealthy.json")
        );
    }

    #[test]
    fn environment_names_are_escaped() {
        let w = recorder(
            RecorderUpdate {
                environment: Some("a\"b".into()),
                ..Default::default()
            },
            true,
        );
        let body = jibri_health(w.recorder("i-1").unwrap());
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["environmentContext"]["name"], "a\"b");
    }

    #[test]
    fn empty_shard_stats_equal_the_fixture() {
        let w = World::new(0);
        assert_eq!(
            jicofo_stats(&w.jicofo_snapshot(DEFAULT_SHARD).unwrap()),
            fixture("jicofo-stats-empty.json")
        );
    }

    #[test]
    fn version_equals_the_fixture() {
        assert_eq!(JICOFO_VERSION_BODY, fixture("jicofo-about-version.json"));
    }

    /// The keys of every object in a JSON text, in document order, as paths.
    fn key_paths(json: &str) -> Vec<String> {
        fn walk(v: &[u8], i: &mut usize, path: &str, out: &mut Vec<String>) {
            skip_ws(v, i);
            match v[*i] {
                b'{' => {
                    *i += 1;
                    loop {
                        skip_ws(v, i);
                        if v[*i] == b'}' {
                            *i += 1;
                            return;
                        }
                        let key = read_string(v, i);
                        let p = format!("{path}/{key}");
                        out.push(p.clone());
                        skip_ws(v, i);
                        *i += 1; // ':'
                        walk(v, i, &p, out);
                        skip_ws(v, i);
                        if v[*i] == b',' {
                            *i += 1;
                        }
                    }
                }
                b'"' => {
                    read_string(v, i);
                }
                _ => {
                    while *i < v.len() && !matches!(v[*i], b',' | b'}' | b']') {
                        *i += 1;
                    }
                }
            }
        }
        fn skip_ws(v: &[u8], i: &mut usize) {
            while *i < v.len() && v[*i].is_ascii_whitespace() {
                *i += 1;
            }
        }
        fn read_string(v: &[u8], i: &mut usize) -> String {
            *i += 1;
            let start = *i;
            while v[*i] != b'"' {
                *i += if v[*i] == b'\\' { 2 } else { 1 };
            }
            let s = String::from_utf8_lossy(&v[start..*i]).into_owned();
            *i += 1;
            s
        }
        let mut out = Vec::new();
        walk(json.as_bytes(), &mut 0, "", &mut out);
        out
    }

    #[test]
    fn busy_shard_stats_have_the_shape_and_key_order_of_the_full_fixture() {
        let mut w = World::new(0);
        for id in ["i-1", "i-2", "i-3"] {
            w.upsert_recorder(id, &RecorderUpdate::default()).unwrap();
        }
        w.request_recording(DEFAULT_SHARD).unwrap();
        w.upsert_shard(
            DEFAULT_SHARD,
            &crate::model::ShardUpdate {
                conference_sizes: Some(vec![2, 5, 7]),
                stats_health: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        let body = jicofo_stats(&w.jicofo_snapshot(DEFAULT_SHARD).unwrap());
        let full = fixture("jicofo-stats.json");
        // Queues and Jingle counters are not emulated: compare every other key path, in order.
        let modelled = |p: &String| {
            !(p.starts_with("/queues/")
                || p.starts_with("/jingle/sent/")
                || p.starts_with("/jingle/received/"))
        };
        let ours: Vec<String> = key_paths(&body).into_iter().filter(modelled).collect();
        let theirs: Vec<String> = key_paths(&full).into_iter().filter(modelled).collect();
        assert_eq!(ours, theirs);

        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let f: serde_json::Value = serde_json::from_str(&full).unwrap();
        for key in [
            "conferences",
            "participants",
            "largest_conference",
            "conference_sizes",
            "jibri_detector",
            "health",
            "healthy",
        ] {
            assert_eq!(v[key], f[key], "{key}");
        }
        assert_eq!(v["jibri"]["recording_active"], 1);
        assert_eq!(v["endpoint_pairs"], 4 + 25 + 49);
    }

    #[test]
    fn legacy_stats_omit_the_detectors_and_write_null_for_nan() {
        let mut w = World::new(0);
        w.upsert_shard(
            DEFAULT_SHARD,
            &crate::model::ShardUpdate {
                legacy: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        let body = jicofo_stats(&w.jicofo_snapshot(DEFAULT_SHARD).unwrap());
        let expected = fixture("jicofo-stats-empty.json")
            .replace(r#""average":"NaN""#, r#""average":null"#)
            .replace(r#""jibri_detector":{"count":0,"available":0},"sip_jibri_detector":{"count":0,"available":0},"#, "");
        assert_eq!(body, expected);
    }

    #[test]
    fn unhealthy_stats_health_block_says_so() {
        let mut w = World::new(0);
        w.upsert_shard(
            DEFAULT_SHARD,
            &crate::model::ShardUpdate {
                stats_health: Some(true),
                healthy: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&jicofo_stats(&w.jicofo_snapshot(DEFAULT_SHARD).unwrap()))
                .unwrap();
        assert_eq!(v["healthy"], false);
        assert_eq!(v["health"]["success"], false);
    }

    #[test]
    fn percentile_bounds_appear_from_one_hundred_conferences() {
        let sizes: Vec<u64> = (0..150).map(|i| if i < 148 { 2 } else { 30 }).collect();
        let v: serde_json::Value = serde_json::from_str(&conference_sizes(&sizes, false)).unwrap();
        assert_eq!(v["buckets"]["p99_upper_bound"], 50);
        assert_eq!(v["buckets"]["p999_upper_bound"], -1);
        assert_eq!(v["buckets"]["2_to_3"], 148);
        assert_eq!(v["min"], 0);
    }

    #[test]
    fn metrics_equal_the_fixture_in_the_same_state() {
        // The fixture: 3 Jibris, 2 available, 1 recording, 2 recording failures, 1 of them with
        // no instance at all; metrics registered at 1787148207.123 s.
        let mut w = World::new(1_787_148_207_123);
        assert!(w.request_recording(DEFAULT_SHARD).is_err()); // empty brewery: 1 + no-instance
        for id in ["i-1", "i-2", "i-3"] {
            w.upsert_recorder(id, &RecorderUpdate::default()).unwrap();
        }
        w.request_recording(DEFAULT_SHARD).unwrap();
        // One more failure with Jibris connected but all busy.
        w.start_recording("i-2").unwrap();
        w.start_recording("i-3").unwrap();
        assert!(w.request_recording(DEFAULT_SHARD).is_err());
        w.stop_recording("i-2").unwrap();
        w.stop_recording("i-3").unwrap();
        let snap = w.jicofo_snapshot(DEFAULT_SHARD).unwrap();
        assert_eq!(
            (
                snap.jibri_count,
                snap.jibri_available,
                snap.recording_active,
                snap.recording_failures,
                snap.no_instance_failures
            ),
            (3, 2, 1, 2, 1)
        );
        assert_eq!(
            jicofo_metrics(&snap),
            fixture("jicofo-metrics-jibri.prom004.txt")
        );
    }

    #[test]
    fn java_decimals_match_double_to_string() {
        assert_eq!(java_decimal(0, 0), "0.0");
        assert_eq!(java_decimal(3, 0), "3.0");
        assert_eq!(java_decimal(9_999_999, 0), "9999999.0");
        assert_eq!(java_decimal(10_000_000, 0), "1.0E7");
        assert_eq!(java_decimal(12_345_678, 0), "1.2345678E7");
        assert_eq!(java_decimal(1_787_148_207_123, 3), "1.787148207123E9");
        assert_eq!(java_decimal(1_500, 3), "1.5");
        assert_eq!(java_decimal(5, 3), "0.005");
        assert_eq!(java_decimal(5, 4), "5.0E-4");
        assert_eq!(java_double(14.0 / 3.0), "4.666666666666667");
        assert_eq!(java_double(2.0), "2.0");
    }
}

/// Jicofo's `bridge_selector` block (`BridgeSelector.stats`). A shard that never had a bridge
/// keeps the fixture's block (one operational bridge), so a Jibri-only shard's `/stats` is
/// `jicofo-stats-empty.json` byte for byte.
fn bridge_selector(s: &JicofoSnapshot) -> String {
    let Some(b) = s.bridge_selector else {
        return r#"{"bridge_count":1,"operational_bridge_count":1,"in_shutdown_bridge_count":0,"lost_bridges":0,"bridge_version_count":1}"#.to_owned();
    };
    Obj::new()
        .num("bridge_count", b.bridge_count)
        .num("operational_bridge_count", b.operational_bridge_count)
        .num("in_shutdown_bridge_count", b.in_shutdown_bridge_count)
        .num("lost_bridges", b.lost_bridges)
        .num("bridge_version_count", b.bridge_version_count)
        .finish()
}

/// The JVB build of `jvb-colibri-stats.json`.
pub const JVB_VERSION: &str = "2.3.262-ga29d97d1";

/// `GET /colibri/drain` (`Drain.getDrainState`).
pub fn colibri_drain(drain: bool) -> String {
    format!(r#"{{"drain":{drain}}}"#)
}

/// `current_timestamp` as JVB writes it (`SimpleDateFormat("yyyy-MM-dd HH:mm:ss.SSS")`, UTC here).
fn jvb_timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// JVB's `GET /colibri/stats` (`VideobridgeStatisticsShim.getStatsJson`), in its key order (as
/// `jvb-colibri-stats.json`). What the emulator models (conferences, endpoints, packet rates,
/// stress, totals, drain and shutdown states, health) is computed; transport details are 0.
pub fn colibri_stats(s: &crate::bridge::BridgeSnapshot) -> String {
    let p = s.participants;
    let mut o = Obj::new();
    o.raw("incoming_loss", "0.0")
        .raw("outgoing_loss", "0.0")
        .raw("overall_loss", "0.0")
        .num("endpoints_with_high_outgoing_loss", 0)
        .num("tcc_unmatched_feedback", 0)
        .num("local_active_endpoints", p)
        // kbps: about 1.3 kbit per packet.
        .num("bit_rate_download", s.packet_rate_download * 38 / 10)
        .num("bit_rate_upload", s.packet_rate_upload * 54 / 10)
        .num("packet_rate_download", s.packet_rate_download)
        .num("packet_rate_upload", s.packet_rate_upload)
        .raw("rtt_aggregate", if p > 0 { "38.5" } else { "0.0" })
        .num("num_eps_oversending", 0)
        .num("octo_conferences", 0)
        .num("inactive_conferences", 0)
        .num("p2p_conferences", 0)
        .num("endpoints", p)
        .num("participants", p)
        .num("receive_only_endpoints", 0)
        .num("inactive_endpoints", 0)
        .num("octo_endpoints", 0)
        .num("endpoints_sending_audio", p)
        .num("endpoints_sending_video", p)
        .num("largest_conference", s.largest_conference)
        .num("octo_receive_bitrate", 0)
        .num("octo_receive_packet_rate", 0)
        .num("octo_send_bitrate", 0)
        .num("octo_send_packet_rate", 0)
        .num("endpoints_with_suspended_sources", 0)
        .num("total_conferences_created", s.conferences_created)
        .num("total_conferences_completed", s.conferences_completed)
        .num("total_conference_seconds", s.conference_seconds)
        .num("total_participants", s.participants_total)
        .num("total_visitors", 0)
        .num("num_eps_no_msg_transport_after_delay", 0)
        .num("total_relays", 0)
        .num("num_relays_no_msg_transport_after_delay", 0)
        .num("total_keyframes_received", 0)
        .num("total_layering_changes_received", 0)
        .num("total_video_stream_milliseconds_received", 0)
        .raw("stress_level", &java_double(s.stress_level))
        .num("conferences", s.conferences)
        .num("visitors", 0)
        .num("local_endpoints", p)
        .num("total_data_channel_messages_received", 0)
        .num("total_data_channel_messages_sent", 0)
        .num("total_colibri_web_socket_messages_received", 0)
        .num("total_colibri_web_socket_messages_sent", 0)
        .num("total_bytes_received", 0)
        .num("endpoints_ice_failed", 0)
        .num("dtls_failed_endpoints", 0)
        .num("relays_ice_failed", 0)
        .num("dtls_failed_relays", 0)
        .num("total_bytes_sent", 0)
        .num("total_packets_received", 0)
        .num("total_packets_sent", 0)
        .num("total_bytes_received_octo", 0)
        .num("total_bytes_sent_octo", 0)
        .num("total_packets_received_octo", 0)
        .num("total_packets_sent_octo", 0)
        .num("total_dominant_speaker_changes", 0)
        .num("preemptive_kfr_sent", 0)
        .num("preemptive_kfr_suppressed", 0)
        .num("total_ice_failed", 0)
        .num("total_ice_succeeded", s.participants_total)
        .num("total_ice_succeeded_relayed", 0)
        .raw(
            "average_participant_stress",
            &java_double(if p > 0 {
                s.stress_level / p as f64
            } else {
                0.0
            }),
        )
        .num("threads", 143)
        .raw("graceful_shutdown", bool_str(s.graceful_shutdown))
        .raw("shutting_down", bool_str(s.shutting_down))
        .raw("drain", bool_str(s.drain))
        .raw("current_timestamp", &json_string(&jvb_timestamp(s.now_ms)))
        .num("muc_clients_configured", 1)
        .num("muc_clients_connected", 1)
        .num("mucs_configured", 1)
        .num("mucs_joined", 1)
        .num("endpoints_with_spurious_remb", 0)
        .raw("healthy", bool_str(s.healthy))
        .num("endpoints_disconnected", 0)
        .num("endpoints_reconnected", 0)
        .raw("version", &json_string(JVB_VERSION));
    o.finish()
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

#[cfg(test)]
mod jvb_tests {
    use super::*;
    use crate::bridge::BridgeSnapshot;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/jitsi/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Top-level keys in order, with the JSON type of each value.
    fn shape(body: &str) -> Vec<(String, &'static str)> {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        // serde_json without preserve_order sorts keys: read the order from the text.
        let mut keys = Vec::new();
        let mut rest = body.trim().trim_start_matches('{');
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let end = after.find('"').unwrap();
            let key = &after[..end];
            keys.push(key.to_owned());
            let value_start = &after[end + 2..];
            let value = &v[key];
            let skip = serde_json::to_string(value).unwrap().len();
            rest = value_start
                .get(skip..)
                .filter(|r| r.starts_with(',') || r.starts_with('}'))
                .unwrap_or_else(|| panic!("value of {key} is not compact: {value_start:.40}"));
        }
        keys.into_iter()
            .map(|k| {
                let t = match &v[&k] {
                    serde_json::Value::Bool(_) => "bool",
                    serde_json::Value::String(_) => "string",
                    serde_json::Value::Number(n) if n.is_f64() => "double",
                    serde_json::Value::Number(_) => "integer",
                    _ => "other",
                };
                (k, t)
            })
            .collect()
    }

    #[test]
    fn colibri_stats_has_the_fixtures_keys_in_order_and_types() {
        let snap = BridgeSnapshot {
            conferences: 3,
            participants: 14,
            largest_conference: 7,
            packet_rate_download: 1342,
            packet_rate_upload: 2210,
            stress_level: 0.07104,
            conferences_created: 211,
            conferences_completed: 208,
            conference_seconds: 402_311,
            participants_total: 1523,
            graceful_shutdown: false,
            shutting_down: false,
            drain: false,
            healthy: true,
            now_ms: 1_787_234_607_512,
        };
        let ours = colibri_stats(&snap);
        assert_eq!(shape(&ours), shape(&fixture("jvb-colibri-stats.json")));
        assert!(
            ours.contains(r#""stress_level":0.07104,"conferences":3,"#),
            "{ours}"
        );
        assert!(
            ours.contains(r#""current_timestamp":"2026-08-20 14:03:27.512""#),
            "{ours}"
        );
    }

    #[test]
    fn colibri_drain_is_the_fixture() {
        assert_eq!(
            colibri_drain(false),
            fixture("jvb-colibri-drain.json").trim()
        );
    }
}
