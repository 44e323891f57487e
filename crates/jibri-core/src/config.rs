//! Configuration: one typed struct, one table of environment variables (name, default,
//! meaning), parsed from an injected key-value source and validated at cold start.
//!
//! The README's configuration table is generated from [`VARS`] (`make config-table`), so
//! the documentation and the parser cannot drift apart.

use std::collections::BTreeMap;
use std::time::Duration;

/// One environment variable the functions read.
pub struct Var {
    pub name: &'static str,
    /// `None` = required.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// Every variable, in the order the README lists them.
pub const VARS: &[Var] = &[
    Var { name: "ASG_NAMES", default: None, doc: "Comma-separated Auto Scaling group names of the Jibri pool(s). The controller manages the first; the guard acts on events of any of them and ignores other groups." },
    Var { name: "POOL_KIND", default: Some("jibri"), doc: "What the group runs: `jibri` (recorders, scaled on idle spares) or `jvb` (Jitsi Videobridges, scaled on their stress, drained before removal). One stack per group." },
    Var { name: "JICOFO_STATS_URLS", default: Some(""), doc: "Comma-separated Jicofo `/stats` URLs (one per shard sharing the pool), e.g. `http://10.0.1.10:8888/stats`. Empty: no Jicofo (no refusal metric, scale-in still allowed)." },
    Var { name: "JIBRI_HEALTH_URL", default: Some("http://{private_ip}:2222/jibri/api/v1.0/health"), doc: "Template of a recorder's health URL; `{private_ip}` and `{instance_id}` are filled in." },
    Var { name: "JIBRI_INTERNAL_URL", default: Some("http://{private_ip}:3333/jibri/api/internal/v1.0"), doc: "Template of a recorder's internal API base (`/gracefulShutdown` is appended)." },
    Var { name: "JVB_STATS_URL", default: Some("http://{private_ip}:8080/colibri/stats"), doc: "`jvb`: template of a bridge's stats URL (the private REST server: port 8080, bound to 127.0.0.1 unless `videobridge.http-servers.private.host` is set; needs `videobridge.apis.rest.enabled = true`)." },
    Var { name: "JVB_DRAIN_URL", default: Some("http://{private_ip}:8080/colibri/drain"), doc: "`jvb`: template of a bridge's drain API (`POST /enable` drains: Jicofo assigns it no new conference; `POST /disable` undrains; on by default in the bridge)." },
    Var { name: "JVB_STRESS_HIGH", default: Some("0.4"), doc: "`jvb`: the pool scales out (undrains, then launches) when the mean stress of its in-service, answering, undrained bridges, with the conferences the forecast expects within a boot, would exceed this; in [0, 1]. Jitsi's own JVB pools scale up at 0.3 (infra-provisioning `JVB_SCALE_UP_THRESHOLD`), adding one bridge per 2 min; this controller sizes to the mark in one tick and ahead of :00/:30, and the simulator shows 0.2-0.4 beats that in cost and overload (sim/README.md)." },
    Var { name: "JVB_STRESS_LOW", default: Some("0.2"), doc: "`jvb`: the pool drains its least-loaded bridges (removed once empty, undrained if stress returns) when the mean stress stays below this for `JVB_SCALE_IN_WINDOW_S`; in [0, 1], below `JVB_STRESS_HIGH` (Jitsi's pools: 0.1, `JVB_SCALE_DOWN_THRESHOLD`)." },
    Var { name: "JVB_SCALE_IN_WINDOW_S", default: Some("600"), doc: "`jvb`: how long the mean stress must stay below `JVB_STRESS_LOW` before a bridge is drained (jitsi-autoscaler's scale-down periods: 10 × 60 s)." },
    Var { name: "PROBE_TIMEOUT_MS", default: Some("2000"), doc: "Timeout of one HTTP call to a Jibri or Jicofo (connect + answer)." },
    Var { name: "PROBE_CONCURRENCY", default: Some("64"), doc: "Recorders probed at once." },
    Var { name: "MAX_BODY_BYTES", default: Some("262144"), doc: "Largest Jibri/Jicofo body read; larger is an error (treated as busy)." },
    Var { name: "SPARE_MODE", default: Some("adaptive"), doc: "`fixed` (keep `SPARE_FIXED` idle) or `adaptive` (Poisson spare over the boot latency, see README)." },
    Var { name: "SPARE_FIXED", default: Some("2"), doc: "Idle recorders kept in `fixed` mode." },
    Var { name: "SPARE_MIN", default: Some("1"), doc: "Lower bound of the adaptive spare target." },
    Var { name: "SPARE_MAX", default: Some("40"), doc: "Upper bound of the adaptive spare target." },
    Var { name: "SPARE_PROBABILITY", default: Some("0.99"), doc: "Adaptive: probability that the recording starts arriving during one boot latency all find an idle recorder." },
    Var { name: "SPARE_FLOOR_SCHEDULE", default: Some(""), doc: "Time-of-day floors for the spare target, UTC: `HH:MM-HH:MM=N` separated by commas, e.g. `07:30-18:00=4`." },
    Var { name: "BOOT_LATENCY_S", default: Some("240"), doc: "Seconds from launch until a new recorder takes recordings (until measured, see `BOOT_LATENCY_LEARN`)." },
    Var { name: "WARM_BOOT_LATENCY_S", default: Some("60"), doc: "Seconds from a warm-pool start until the recorder takes recordings (until measured)." },
    Var { name: "BOOT_LATENCY_LEARN", default: Some("on"), doc: "`on`: the boot latencies used are the ones measured on this pool (launch until the Jibri first answers), once 3 boots were seen; `off`: the configured ones." },
    Var { name: "FORECAST", default: Some("on"), doc: "`on`: the spare target also covers the recording starts that history (by hour of week and minute of hour) expects in the next boot latency: the pool grows before :00 and :30. `off`: recent rates only." },
    Var { name: "FORECAST_PRIOR", default: Some("workday"), doc: "What a new pool (or one whose state was lost) assumes before its own data: `workday` (office hours 08:00-18:00 UTC: an hour's starts bunch in its first minutes and after :30, and an office hour has ~3× the starts of 07:00/18:00 and ~10× a night hour, whose starts are spread evenly) or `flat` (every minute and hour alike). Until an hour of the day is learned, the last hour learned (or the current one, once 4 starts or more show it busier) stands in, carried by that shape. The minute prior counts as one day of starts (the day the pool expects; the plan prints it as `prior workday×N`), so the learned model replaces it as data arrives: every hour after one day; past a day counted, the minute prior weighs one day's share of what was counted (a twentieth of the blend after a week)." },
    Var { name: "FORECAST_ALPHA", default: Some("0.3"), doc: "Weight of the newest week (hour-of-week bins; twice that for the hour-of-day fallback) in the learned demand." },
    Var { name: "LEADING_SIGNALS", default: Some("on"), doc: "`on`: new conferences in Jicofo (times the learned recordings per conference) count as starts about to come, and a refusal makes the last two minutes' start rate count over the boot latency." },
    Var { name: "WARM_POOL_MODE", default: Some("off"), doc: "`off`: the controller never changes the warm pool (it still uses one that exists); `managed`: it sizes the group's warm pool every tick (`PutWarmPool`, MinSize = MaxGroupPreparedCapacity, reuse on scale-in); Jibri pools only (refused with `POOL_KIND=jvb`)." },
    Var { name: "WARM_POOL_MIN", default: Some("0"), doc: "Managed warm pool: smallest size set." },
    Var { name: "WARM_POOL_MAX", default: Some("20"), doc: "Managed warm pool: largest size set." },
    Var { name: "WARM_POOL_HORIZON_S", default: Some("1800"), doc: "Managed warm pool: sized for the starts expected (forecast, at `SPARE_PROBABILITY`) over this many seconds." },
    Var { name: "RATE_SHORT_WINDOW_S", default: Some("600"), doc: "Adaptive: short window of the recording-start rate estimate." },
    Var { name: "RATE_LONG_WINDOW_S", default: Some("3600"), doc: "Adaptive: long window (the history kept); the rate used is the larger of both." },
    Var { name: "IDLE_GRACE_S", default: Some("120"), doc: "A recorder must be idle this long before it may be scaled in." },
    Var { name: "SCALE_IN_MAX_PER_TICK", default: Some("10"), doc: "Recorders removed by scale-in per tick at most." },
    Var { name: "UNHEALTHY_GRACE_S", default: Some("300"), doc: "UNHEALTHY, EXPIRED or unreachable this long: graceful shutdown and replacement (never while BUSY)." },
    Var { name: "UNKNOWN_MAX_SHARE", default: Some("0.2"), doc: "No recorder is replaced in a tick where more than this share of the recorders is unknown (timeout, garbage, not probed): a network partition or an EC2 outage is not a fleet of broken recorders." },
    Var { name: "REPLACE_MAX_PER_TICK", default: Some("1"), doc: "Replacements started per tick at most." },
    Var { name: "TERMINATE_HOOK_NAME", default: Some("jibri-autoscaler-terminate"), doc: "Name of the group's terminate lifecycle hook (the stack's). Events and actions of any other hook on the group are never completed or heartbeated." },
    Var { name: "LAUNCH_HOOK_NAME", default: Some("jibri-autoscaler-launch"), doc: "Name of the group's launch lifecycle hook, if it has one (the stack's)." },
    Var { name: "EC2_TERMINATION_PROTECTION", default: Some("on"), doc: "`on`: EC2 termination protection (`DisableApiTermination`) is on while a recorder records or uploads and off once idle, so a direct `TerminateInstances` (which skips lifecycle hooks) is refused. It never blocks Auto Scaling's own terminations. `off`: left alone (e.g. Spot recorders, which cannot have it)." },
    Var { name: "HEARTBEAT_INTERVAL_S", default: Some("300"), doc: "Held terminate hooks get a heartbeat this often; must be below the hook's HeartbeatTimeout." },
    Var { name: "MAX_HOOK_HOLD_S", default: Some("43200"), doc: "A busy terminating recorder is held this long, then ABANDON (retained when the group's policy is `retain`). At most 48 h (AWS's cap)." },
    Var { name: "LAUNCH_MAX_WAIT_S", default: Some("900"), doc: "A launch hook is completed ABANDON if the recorder is not healthy by then." },
    Var { name: "METRICS_SINK", default: Some("emf"), doc: "`emf` (CloudWatch Embedded Metric Format on stdout, no API call) or `cloudwatch` (PutMetricData)." },
    Var { name: "METRICS_NAMESPACE", default: Some("JibriAutoscaler"), doc: "CloudWatch namespace of the metrics." },
    Var { name: "STATE_BUCKET", default: Some(""), doc: "S3 bucket of the controller's state. Empty: state is kept in memory only (local runs)." },
    Var { name: "STATE_PREFIX", default: Some("jibri-autoscaler/state/"), doc: "Key prefix of the state object (`<prefix><group>.json`)." },
    Var { name: "RECORDINGS_PREFIX", default: Some("recordings/"), doc: "Key prefix of the recordings in the same bucket (the stack's `RecordingsPrefix`): checked disjoint from `STATE_PREFIX` at cold start, so the state object is never read from or written among recordings." },
    Var { name: "DRY_RUN", default: Some("false"), doc: "`true`: observe and plan, log the plan, change nothing." },
    Var { name: "TICK_BUDGET_MS", default: Some("45000"), doc: "Time budget of one controller tick, retries included (keep below the Lambda timeout)." },
    Var { name: "CLOCK", default: Some("wall"), doc: "`wall`: a tick's time is the wall clock (production; an event's `time` never moves it). `event`: the schedule event's `time`, for the local test bed's compressed clock only." },
    Var { name: "LOG_FORMAT", default: Some("json"), doc: "`json` (CloudWatch Logs) or `text`." },
];

/// How the spare target is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum SpareMode {
    Fixed(u32),
    Adaptive {
        min: u32,
        max: u32,
        probability: f64,
    },
}

/// A daily UTC window with a spare floor, e.g. `07:30-18:00=4` (may wrap midnight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorWindow {
    pub start_min: u32,
    pub end_min: u32,
    pub floor: u32,
}

impl FloorWindow {
    pub fn contains(&self, minute_of_day: u32) -> bool {
        if self.start_min <= self.end_min {
            (self.start_min..self.end_min).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start_min || minute_of_day < self.end_min
        }
    }
}

/// What the group runs (`POOL_KIND`): the same controller and guard scale either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// Jibri recorders: busy/idle, scaled on a spare of idle recorders.
    #[default]
    Jibri,
    /// Jitsi Videobridges: scaled on their mean stress, drained before removal.
    Jvb,
}

/// A videobridge pool's settings (`JVB_*`), read whatever the kind (defaults are valid).
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSettings {
    /// `JVB_STATS_URL`: `GET` a bridge's `/colibri/stats`.
    pub stats_url: String,
    /// `JVB_DRAIN_URL`: the drain API's base; `/enable` and `/disable` are appended.
    pub drain_url: String,
    /// Scale out above this mean stress.
    pub stress_high: f64,
    /// Drain a bridge below this mean stress, held for `scale_in_window_s`.
    pub stress_low: f64,
    pub scale_in_window_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSinkKind {
    Emf,
    CloudWatch,
}

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub groups: Vec<String>,
    pub pool_kind: PoolKind,
    pub bridge: BridgeSettings,
    pub jicofo_stats_urls: Vec<String>,
    pub jibri_health_url: String,
    pub jibri_internal_url: String,
    pub probe_timeout: Duration,
    pub probe_concurrency: usize,
    pub max_body_bytes: usize,
    pub spare: SpareMode,
    pub spare_floors: Vec<FloorWindow>,
    pub boot_latency_s: u64,
    pub warm_boot_latency_s: u64,
    pub boot_latency_learn: bool,
    pub forecast: bool,
    pub forecast_alpha: f64,
    pub forecast_prior: crate::forecast::Prior,
    pub leading_signals: bool,
    pub warm_pool_managed: bool,
    pub warm_pool_min: u32,
    pub warm_pool_max: u32,
    pub warm_pool_horizon_s: u64,
    pub rate_short_window_s: u64,
    pub rate_long_window_s: u64,
    pub idle_grace_s: u64,
    pub scale_in_max_per_tick: u32,
    pub unhealthy_grace_s: u64,
    pub unknown_max_share: f64,
    pub terminate_hook_name: String,
    pub launch_hook_name: String,
    /// `CLOCK=event`: trust the schedule event's time (test bed only).
    pub event_clock: bool,
    pub ec2_termination_protection: bool,
    pub replace_max_per_tick: u32,
    pub heartbeat_interval_s: u64,
    pub max_hook_hold_s: u64,
    pub launch_max_wait_s: u64,
    pub metrics_sink: MetricsSinkKind,
    pub metrics_namespace: String,
    pub state_bucket: Option<String>,
    pub state_prefix: String,
    pub dry_run: bool,
    pub tick_budget: Duration,
    pub log_json: bool,
}

/// A configuration error always names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// AWS's global cap on a lifecycle action: 48 hours.
pub const AWS_MAX_HOOK_HOLD_S: u64 = 48 * 3600;

impl Config {
    /// Parses from the process environment (binaries only; tests use [`Config::from_source`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(|k| std::env::var(k).ok())
    }

    /// Parses from a map, e.g. in tests.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_source(|k| map.get(k).cloned())
    }

    pub fn from_source(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let r = Reader { get: &get };
        let groups = r.list("ASG_NAMES")?;
        if groups.is_empty() {
            return Err(err(
                "ASG_NAMES",
                "at least one Auto Scaling group name is required",
            ));
        }
        let (jicofo_stats_urls, jibri_health_url, jibri_internal_url) = endpoints(&r)?;
        let (rate_short_window_s, rate_long_window_s) = rate_windows(&r)?;
        let (warm_pool_managed, warm_pool_min, warm_pool_max) = warm_pool(&r)?;
        // RECORDINGS_PREFIX is only checked here (the uploader writes there).
        let (state_prefix, _) = prefixes(&r)?;
        let (forecast_alpha, unknown_max_share) = fractions(&r)?;
        let pool_kind = pool_kind(&r, warm_pool_managed)?;
        Ok(Config {
            groups,
            pool_kind,
            bridge: bridge_settings(&r)?,
            jicofo_stats_urls,
            jibri_health_url,
            jibri_internal_url,
            probe_timeout: Duration::from_millis(r.num("PROBE_TIMEOUT_MS", 50, 60_000)?),
            probe_concurrency: r.num("PROBE_CONCURRENCY", 1, 1024)? as usize,
            max_body_bytes: r.num("MAX_BODY_BYTES", 1024, 16 << 20)? as usize,
            spare: spare_mode(&r)?,
            spare_floors: parse_floors(&r.string("SPARE_FLOOR_SCHEDULE")?)?,
            boot_latency_s: r.num("BOOT_LATENCY_S", 1, 3600)?,
            warm_boot_latency_s: r.num("WARM_BOOT_LATENCY_S", 1, 3600)?,
            boot_latency_learn: r.switch("BOOT_LATENCY_LEARN")?,
            forecast: r.switch("FORECAST")?,
            forecast_alpha,
            forecast_prior: r.choice(
                "FORECAST_PRIOR",
                &[
                    ("workday", crate::forecast::Prior::Workday),
                    ("flat", crate::forecast::Prior::Flat),
                ],
            )?,
            leading_signals: r.switch("LEADING_SIGNALS")?,
            warm_pool_managed,
            warm_pool_min,
            warm_pool_max,
            warm_pool_horizon_s: r.num("WARM_POOL_HORIZON_S", 0, 7 * 86_400)?,
            rate_short_window_s,
            rate_long_window_s,
            idle_grace_s: r.num("IDLE_GRACE_S", 0, 86_400)?,
            scale_in_max_per_tick: r.num("SCALE_IN_MAX_PER_TICK", 0, 1000)? as u32,
            unhealthy_grace_s: r.num("UNHEALTHY_GRACE_S", 0, 86_400)?,
            unknown_max_share,
            terminate_hook_name: r.nonempty("TERMINATE_HOOK_NAME")?,
            ec2_termination_protection: r.switch("EC2_TERMINATION_PROTECTION")?,
            launch_hook_name: r.nonempty("LAUNCH_HOOK_NAME")?,
            event_clock: r.choice("CLOCK", &[("wall", false), ("event", true)])?,
            replace_max_per_tick: r.num("REPLACE_MAX_PER_TICK", 0, 1000)? as u32,
            heartbeat_interval_s: r.num("HEARTBEAT_INTERVAL_S", 10, 7200)?,
            max_hook_hold_s: r.num("MAX_HOOK_HOLD_S", 60, AWS_MAX_HOOK_HOLD_S)?,
            launch_max_wait_s: r.num("LAUNCH_MAX_WAIT_S", 30, 7200)?,
            metrics_sink: r.choice(
                "METRICS_SINK",
                &[
                    ("emf", MetricsSinkKind::Emf),
                    ("cloudwatch", MetricsSinkKind::CloudWatch),
                ],
            )?,
            metrics_namespace: r.string("METRICS_NAMESPACE")?,
            state_bucket: Some(r.string("STATE_BUCKET")?).filter(|b| !b.is_empty()),
            state_prefix,
            dry_run: r.boolean("DRY_RUN")?,
            tick_budget: Duration::from_millis(r.num("TICK_BUDGET_MS", 1000, 900_000)?),
            log_json: r.choice("LOG_FORMAT", &[("json", true), ("text", false)])?,
        })
    }

    /// The group the controller manages.
    pub fn pool_group(&self) -> &str {
        &self.groups[0]
    }
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

fn check_http_url(var: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(err(var, format!("{url:?} is not an http(s) URL")))
    }
}

fn check_template(var: &'static str, t: &str) -> Result<(), ConfigError> {
    check_http_url(var, t)?;
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| err(var, "unclosed `{` in template"))?;
        let key = &rest[open + 1..open + close];
        if key != "private_ip" && key != "instance_id" {
            return Err(err(
                var,
                format!("unknown placeholder {{{key}}}; use {{private_ip}} or {{instance_id}}"),
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// Fills a URL template for one instance; `None` when it needs an IP the instance lacks.
pub fn fill_template(
    template: &str,
    instance_id: &str,
    private_ip: Option<&str>,
) -> Option<String> {
    if template.contains("{private_ip}") {
        let ip = private_ip.filter(|ip| !ip.is_empty())?;
        Some(
            template
                .replace("{private_ip}", ip)
                .replace("{instance_id}", instance_id),
        )
    } else {
        Some(template.replace("{instance_id}", instance_id))
    }
}

fn parse_floors(s: &str) -> Result<Vec<FloorWindow>, ConfigError> {
    const VAR: &str = "SPARE_FLOOR_SCHEDULE";
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || err(VAR, format!("{part:?} is not `HH:MM-HH:MM=N`"));
        let (range, n) = part.split_once('=').ok_or_else(bad)?;
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let minute = |hm: &str| -> Option<u32> {
            let (h, m) = hm.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        };
        let (start_min, end_min) = (minute(a).ok_or_else(bad)?, minute(b).ok_or_else(bad)?);
        let floor = n.trim().parse::<u32>().map_err(|_| bad())?;
        out.push(FloorWindow {
            start_min,
            end_min: end_min % 1440,
            floor,
        });
    }
    Ok(out)
}

/// Jicofo's stats URLs and the recorders' URL templates, each checked.
fn endpoints<F: Fn(&str) -> Option<String>>(
    r: &Reader<'_, F>,
) -> Result<(Vec<String>, String, String), ConfigError> {
    let jicofo_stats_urls = r.list("JICOFO_STATS_URLS")?;
    for u in &jicofo_stats_urls {
        check_http_url("JICOFO_STATS_URLS", u)?;
    }
    let health = r.string("JIBRI_HEALTH_URL")?;
    check_template("JIBRI_HEALTH_URL", &health)?;
    let internal = r.string("JIBRI_INTERNAL_URL")?;
    check_template("JIBRI_INTERNAL_URL", &internal)?;
    Ok((jicofo_stats_urls, health, internal))
}

/// The `JVB_*` settings, each checked: templates, and `0 <= low < high <= 1`.
fn bridge_settings<F: Fn(&str) -> Option<String>>(
    r: &Reader<'_, F>,
) -> Result<BridgeSettings, ConfigError> {
    let stats_url = r.string("JVB_STATS_URL")?;
    check_template("JVB_STATS_URL", &stats_url)?;
    let drain_url = r.string("JVB_DRAIN_URL")?;
    check_template("JVB_DRAIN_URL", &drain_url)?;
    let stress_high = r.float("JVB_STRESS_HIGH")?;
    if !(0.0..=1.0).contains(&stress_high) {
        return Err(err("JVB_STRESS_HIGH", "must be in [0, 1]"));
    }
    let stress_low = r.float("JVB_STRESS_LOW")?;
    if !(0.0..=1.0).contains(&stress_low) {
        return Err(err("JVB_STRESS_LOW", "must be in [0, 1]"));
    }
    if stress_low >= stress_high {
        return Err(err(
            "JVB_STRESS_LOW",
            format!("{stress_low} is not below JVB_STRESS_HIGH {stress_high}"),
        ));
    }
    Ok(BridgeSettings {
        stats_url,
        drain_url,
        stress_high,
        stress_low,
        scale_in_window_s: r.num("JVB_SCALE_IN_WINDOW_S", 0, 86_400)?,
    })
}

fn spare_mode<F: Fn(&str) -> Option<String>>(r: &Reader<'_, F>) -> Result<SpareMode, ConfigError> {
    if !r.choice("SPARE_MODE", &[("fixed", false), ("adaptive", true)])? {
        return Ok(SpareMode::Fixed(r.num("SPARE_FIXED", 0, 1000)? as u32));
    }
    let min = r.num("SPARE_MIN", 0, 1000)? as u32;
    let max = r.num("SPARE_MAX", 0, 1000)? as u32;
    if max < min {
        return Err(err("SPARE_MAX", format!("{max} is below SPARE_MIN {min}")));
    }
    let probability = r.float("SPARE_PROBABILITY")?;
    if !(probability > 0.0 && probability < 1.0) {
        return Err(err("SPARE_PROBABILITY", "must be strictly between 0 and 1"));
    }
    Ok(SpareMode::Adaptive {
        min,
        max,
        probability,
    })
}

fn rate_windows<F: Fn(&str) -> Option<String>>(
    r: &Reader<'_, F>,
) -> Result<(u64, u64), ConfigError> {
    let short = r.num("RATE_SHORT_WINDOW_S", 60, 86_400)?;
    let long = r.num("RATE_LONG_WINDOW_S", 60, 7 * 86_400)?;
    if long < short {
        return Err(err(
            "RATE_LONG_WINDOW_S",
            "must not be shorter than RATE_SHORT_WINDOW_S",
        ));
    }
    Ok((short, long))
}

/// `FORECAST_ALPHA` in (0, 1] and `UNKNOWN_MAX_SHARE` in [0, 1].
fn fractions<F: Fn(&str) -> Option<String>>(r: &Reader<'_, F>) -> Result<(f64, f64), ConfigError> {
    let forecast_alpha = r.float("FORECAST_ALPHA")?;
    if !(forecast_alpha > 0.0 && forecast_alpha <= 1.0) {
        return Err(err("FORECAST_ALPHA", "must be in (0, 1]"));
    }
    let unknown_max_share = r.float("UNKNOWN_MAX_SHARE")?;
    if !(0.0..=1.0).contains(&unknown_max_share) {
        return Err(err("UNKNOWN_MAX_SHARE", "must be in [0, 1]"));
    }
    Ok((forecast_alpha, unknown_max_share))
}

/// `POOL_KIND`; a bridge pool refuses `WARM_POOL_MODE=managed` (the bridge planner does not
/// size a warm pool: silently ignored, an operator would expect a sized pool and get none).
fn pool_kind<F: Fn(&str) -> Option<String>>(
    r: &Reader<'_, F>,
    warm_pool_managed: bool,
) -> Result<PoolKind, ConfigError> {
    let kind = r.choice(
        "POOL_KIND",
        &[("jibri", PoolKind::Jibri), ("jvb", PoolKind::Jvb)],
    )?;
    if kind == PoolKind::Jvb && warm_pool_managed {
        return Err(err(
            "WARM_POOL_MODE",
            "managed sizes a Jibri pool's warm pool; a bridge pool (POOL_KIND=jvb) uses a warm pool that exists but does not size it: set off",
        ));
    }
    Ok(kind)
}

fn warm_pool<F: Fn(&str) -> Option<String>>(
    r: &Reader<'_, F>,
) -> Result<(bool, u32, u32), ConfigError> {
    let managed = r.choice("WARM_POOL_MODE", &[("off", false), ("managed", true)])?;
    let min = r.num("WARM_POOL_MIN", 0, 10_000)? as u32;
    let max = r.num("WARM_POOL_MAX", 0, 10_000)? as u32;
    if max < min {
        return Err(err(
            "WARM_POOL_MAX",
            format!("{max} is below WARM_POOL_MIN {min}"),
        ));
    }
    Ok((managed, min, max))
}

/// Threat: a state prefix inside the recordings (or the other way round) makes the
/// controller read a recording as its state, or overwrite one with it.
fn prefixes<F: Fn(&str) -> Option<String>>(
    r: &Reader<'_, F>,
) -> Result<(String, String), ConfigError> {
    let state = r.string("STATE_PREFIX")?;
    let recordings = r.string("RECORDINGS_PREFIX")?;
    if state.starts_with(&recordings) || recordings.starts_with(&state) {
        return Err(err(
            "STATE_PREFIX",
            format!("{state:?} and RECORDINGS_PREFIX {recordings:?} overlap: one is a prefix of the other"),
        ));
    }
    Ok((state, recordings))
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    get: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn string(&self, name: &'static str) -> Result<String, ConfigError> {
        let var = VARS
            .iter()
            .find(|v| v.name == name)
            .expect("every variable read is listed in VARS");
        match ((self.get)(name), var.default) {
            (Some(v), _) => Ok(v.trim().to_string()),
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(err(name, "is required")),
        }
    }

    fn list(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .string(name)?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }

    fn num(&self, name: &'static str, min: u64, max: u64) -> Result<u64, ConfigError> {
        let s = self.string(name)?;
        let n: u64 = s
            .parse()
            .map_err(|_| err(name, format!("{s:?} is not a whole number")))?;
        if n < min || n > max {
            return Err(err(name, format!("{n} is outside [{min}, {max}]")));
        }
        Ok(n)
    }

    fn float(&self, name: &'static str) -> Result<f64, ConfigError> {
        let s = self.string(name)?;
        s.parse()
            .map_err(|_| err(name, format!("{s:?} is not a number")))
    }

    /// `on` / `off`.
    fn switch(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.string(name)?.to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(err(name, format!("{other:?} is neither `on` nor `off`"))),
        }
    }

    /// One of a fixed set of words (`{other:?} is neither `a` nor `b``).
    fn choice<T: Copy>(&self, name: &'static str, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let v = self.string(name)?;
        if let Some((_, t)) = options.iter().find(|(word, _)| *word == v) {
            return Ok(*t);
        }
        let words: Vec<String> = options.iter().map(|(w, _)| format!("`{w}`")).collect();
        let list = match words.as_slice() {
            [a, b] => format!("neither {a} nor {b}"),
            _ => format!("not one of {}", words.join(", ")),
        };
        Err(err(name, format!("{v:?} is {list}")))
    }

    fn nonempty(&self, name: &'static str) -> Result<String, ConfigError> {
        let v = self.string(name)?;
        if v.is_empty() {
            return Err(err(name, "must not be empty"));
        }
        Ok(v)
    }

    fn boolean(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.string(name)?.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            other => Err(err(name, format!("{other:?} is not true/false"))),
        }
    }
}

/// A Markdown table of [`VARS`] for the README.
pub fn markdown_table() -> String {
    let mut s = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for v in VARS {
        let d = match v.default {
            None => "(required)".to_string(),
            Some("") => "(empty)".to_string(),
            Some(d) => format!("`{d}`"),
        };
        s.push_str(&format!("| `{}` | {} | {} |\n", v.name, d, v.doc));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        m.insert("ASG_NAMES".into(), "jibri-pool".into());
        for (k, v) in pairs {
            m.insert(k.to_string(), v.to_string());
        }
        Config::from_map(&m)
    }

    #[test]
    fn defaults_are_valid() {
        let c = config_with(&[]).unwrap();
        assert_eq!(c.pool_group(), "jibri-pool");
        assert_eq!(c.probe_timeout, Duration::from_secs(2));
        assert!(matches!(
            c.spare,
            SpareMode::Adaptive {
                min: 1,
                max: 40,
                ..
            }
        ));
        assert_eq!(c.metrics_sink, MetricsSinkKind::Emf);
        assert!(!c.dry_run);
        assert_eq!(c.state_bucket, None);
        assert_eq!(c.pool_kind, PoolKind::Jibri);
        assert_eq!(c.bridge.stats_url, "http://{private_ip}:8080/colibri/stats");
        assert_eq!(c.bridge.drain_url, "http://{private_ip}:8080/colibri/drain");
        assert_eq!((c.bridge.stress_low, c.bridge.stress_high), (0.2, 0.4));
        assert_eq!(c.bridge.scale_in_window_s, 600);
    }

    #[test]
    fn a_jvb_pool_is_chosen_by_pool_kind_and_its_band_is_validated() {
        let c = config_with(&[
            ("POOL_KIND", "jvb"),
            ("JVB_STRESS_HIGH", "0.6"),
            ("JVB_STRESS_LOW", "0.3"),
        ])
        .unwrap();
        assert_eq!(c.pool_kind, PoolKind::Jvb);
        assert_eq!((c.bridge.stress_low, c.bridge.stress_high), (0.3, 0.6));
        for (pairs, var) in [
            (&[("POOL_KIND", "jigasi")][..], "POOL_KIND"),
            (
                &[("POOL_KIND", "jvb"), ("WARM_POOL_MODE", "managed")][..],
                "WARM_POOL_MODE",
            ),
            (&[("JVB_STRESS_HIGH", "1.5")][..], "JVB_STRESS_HIGH"),
            (&[("JVB_STRESS_HIGH", "NaN")][..], "JVB_STRESS_HIGH"),
            (&[("JVB_STRESS_LOW", "-0.1")][..], "JVB_STRESS_LOW"),
            (&[("JVB_STRESS_LOW", "0.4")][..], "JVB_STRESS_LOW"),
            (
                &[("JVB_STRESS_LOW", "0.5"), ("JVB_STRESS_HIGH", "0.4")][..],
                "JVB_STRESS_LOW",
            ),
            (
                &[("JVB_SCALE_IN_WINDOW_S", "-1")][..],
                "JVB_SCALE_IN_WINDOW_S",
            ),
            (
                &[("JVB_STATS_URL", "http://{ip}:8080/colibri/stats")][..],
                "JVB_STATS_URL",
            ),
            (
                &[("JVB_DRAIN_URL", "10.0.0.1:8080/colibri/drain")][..],
                "JVB_DRAIN_URL",
            ),
        ] {
            let e = config_with(pairs).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}: {e}");
        }
    }

    #[test]
    fn missing_group_names_the_variable() {
        let e = Config::from_map(&BTreeMap::new()).unwrap_err();
        assert_eq!(e.var, "ASG_NAMES");
        assert!(e.to_string().contains("ASG_NAMES"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("PROBE_TIMEOUT_MS", "abc"),
            ("PROBE_TIMEOUT_MS", "0"),
            ("SPARE_MODE", "magic"),
            ("SPARE_PROBABILITY", "1.5"),
            ("MAX_HOOK_HOLD_S", "200000"),
            ("JIBRI_HEALTH_URL", "http://{ip}:2222/"),
            ("JIBRI_HEALTH_URL", "ftp://x"),
            ("JICOFO_STATS_URLS", "10.0.0.1:8888/stats"),
            ("SPARE_FLOOR_SCHEDULE", "8-18=3"),
            ("DRY_RUN", "maybe"),
            ("METRICS_SINK", "statsd"),
        ] {
            let e = config_with(&[(k, v)]).unwrap_err();
            assert_eq!(e.var, k, "{k}={v}: {e}");
        }
        let e = config_with(&[("SPARE_MIN", "5"), ("SPARE_MAX", "2")]).unwrap_err();
        assert_eq!(e.var, "SPARE_MAX");
    }

    #[test]
    fn floor_windows_parse_and_wrap_midnight() {
        let c = config_with(&[("SPARE_FLOOR_SCHEDULE", "07:30-18:00=4, 22:00-02:00=1")]).unwrap();
        assert_eq!(c.spare_floors.len(), 2);
        assert!(c.spare_floors[0].contains(7 * 60 + 30));
        assert!(!c.spare_floors[0].contains(18 * 60));
        assert!(c.spare_floors[1].contains(23 * 60));
        assert!(c.spare_floors[1].contains(60));
        assert!(!c.spare_floors[1].contains(3 * 60));
    }

    #[test]
    fn templates_fill_ip_and_id() {
        assert_eq!(
            fill_template("http://{private_ip}:2222/x", "i-1", Some("10.0.0.5")).as_deref(),
            Some("http://10.0.0.5:2222/x")
        );
        assert_eq!(
            fill_template("http://{private_ip}:2222/x", "i-1", None),
            None
        );
        assert_eq!(
            fill_template("http://127.0.0.1:9/jibri/{instance_id}/h", "i-1", None).as_deref(),
            Some("http://127.0.0.1:9/jibri/i-1/h")
        );
    }

    /// `make config-table` prints the README's table through this.
    #[test]
    #[ignore]
    fn print_config_table() {
        println!("{}", markdown_table());
    }

    #[test]
    fn readme_table_is_the_generated_one() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap_or_default();
        assert!(
            readme.contains(&markdown_table()),
            "README.md's configuration table is stale: run `make config-table` and paste it"
        );
    }

    /// Issue 14.10: the state and recordings prefixes of one bucket must not overlap.
    #[test]
    fn overlapping_state_and_recordings_prefixes_are_refused_at_cold_start() {
        for (state, rec) in [
            ("recordings/state/", "recordings/"),
            ("jibri/", "jibri/recordings/"),
            ("same/", "same/"),
            ("", "recordings/"),
        ] {
            let e =
                config_with(&[("STATE_PREFIX", state), ("RECORDINGS_PREFIX", rec)]).unwrap_err();
            assert_eq!(e.var, "STATE_PREFIX", "{state} {rec}");
        }
        assert!(config_with(&[
            ("STATE_PREFIX", "state/"),
            ("RECORDINGS_PREFIX", "recordings/")
        ])
        .is_ok());
        assert!(config_with(&[]).is_ok(), "the defaults are disjoint");
    }

    #[test]
    fn every_variable_has_a_doc_and_the_table_lists_it() {
        let t = markdown_table();
        for v in VARS {
            assert!(!v.doc.is_empty());
            assert!(t.contains(&format!("`{}`", v.name)));
        }
    }
}
