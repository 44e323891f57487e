//! The uploader's configuration: one typed struct, one table of keys (name, default,
//! meaning), read from `KEY=VALUE` lines of a file and from `JIBRI_FINALIZE_<KEY>`
//! environment variables (which win), both passed in, and validated before anything runs:
//! every error names its key.

use crate::core::checksum::ChecksumAlgorithm;
use crate::core::layout::normalize_prefix;
use crate::core::parts::{MIB, S3_MAX_PART, S3_MIN_PART};
use crate::core::retry::RetryPolicy;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the configuration file is looked for unless `--config` or `JIBRI_FINALIZE_CONFIG`
/// names another. A missing default file is fine (environment only); a missing named one is not.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/jibri-finalize.conf";
/// Environment variables are the keys with this prefix.
pub const ENV_PREFIX: &str = "JIBRI_FINALIZE_";

pub struct Var {
    pub key: &'static str,
    /// `None`: required, or (where the doc says so) looked up at run time.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// Every key, its default and its meaning (recorder/README.md shows this table; a test
/// keeps the two in step).
pub const VARS: &[Var] = &[
    Var { key: "BUCKET", default: None, doc: "S3 bucket of the recordings (the stack output `BucketName`). Required." },
    Var { key: "PREFIX", default: Some("recordings/"), doc: "Key prefix (the stack output `RecordingsPrefix`); objects go to `<PREFIX><yyyy>/<mm>/<dd>/<session>/`." },
    Var { key: "REGION", default: None, doc: "AWS region. Unset: the SDK's chain (`AWS_REGION`, profile, then the instance metadata service)." },
    Var { key: "INSTANCE_ID", default: None, doc: "EC2 instance id to tag. Unset: this instance's, from the instance metadata service (IMDSv2)." },
    Var { key: "ENDPOINT_URL", default: None, doc: "Endpoint of S3 and EC2 instead of AWS's (tests, S3-compatible stores); path-style S3 addressing." },
    Var { key: "PART_SIZE", default: Some("16MiB"), doc: "Multipart part size, 5MiB..5GiB (raised automatically when a file would need more than 10,000 parts)." },
    Var { key: "MULTIPART_THRESHOLD", default: Some("16MiB"), doc: "Files of at least this size are uploaded in parts, smaller ones with one PUT (at most 5GiB)." },
    Var { key: "CONCURRENCY", default: Some("4"), doc: "Requests in flight at once (parts and small files), 1..64. Memory does not grow with it: parts stream from disk." },
    Var { key: "CHECKSUM_ALGORITHM", default: Some("crc64nvme"), doc: "Full-object checksum S3 verifies and reports: `crc64nvme` (S3's default) or `crc32`." },
    Var { key: "PENDING_DIR", default: Some("/var/lib/jibri-finalize"), doc: "Directory of the pending markers, the tag state and the locks (absolute; created if missing)." },
    Var { key: "MAX_ATTEMPTS", default: Some("6"), doc: "Attempts of one AWS call (first included) on throttling, 5xx, timeouts and connection errors, 1..100." },
    Var { key: "RETRY_BASE_MS", default: Some("200"), doc: "Backoff before the second attempt; doubles each time (x4 on throttling), with jitter." },
    Var { key: "RETRY_MAX_MS", default: Some("20000"), doc: "Longest single backoff." },
    Var { key: "ATTEMPT_TIMEOUT_S", default: Some("300"), doc: "Time limit of one attempt of one call (a part upload included), 1..3600." },
    Var { key: "LOG_FORMAT", default: Some("text"), doc: "`text` (Jibri's log captures it) or `json`." },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bucket: String,
    /// Normalised: empty or ending in '/'.
    pub prefix: String,
    pub region: Option<String>,
    pub instance_id: Option<String>,
    pub endpoint_url: Option<String>,
    pub part_size: u64,
    pub multipart_threshold: u64,
    pub concurrency: usize,
    pub checksum_algorithm: ChecksumAlgorithm,
    pub pending_dir: PathBuf,
    pub retry: RetryPolicy,
    pub attempt_timeout: Duration,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{key} is required ({doc})")]
    Missing {
        key: &'static str,
        doc: &'static str,
    },
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: unknown key {key:?} (known: {known})")]
    UnknownKey {
        file: String,
        line: usize,
        key: String,
        known: String,
    },
}

pub type ConfigResult<T> = Result<T, ConfigError>;

/// Parses `KEY=VALUE` lines: blank lines and `#` comments are skipped, an `export ` in
/// front and matching quotes around the value are allowed (so the file can be shared with
/// a shell), keys must be known.
pub fn parse_file(name: &str, text: &str) -> ConfigResult<BTreeMap<&'static str, String>> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(ConfigError::Syntax {
                file: name.into(),
                line: i + 1,
                message: format!("expected KEY=VALUE, found {line:?}"),
            });
        };
        let k = k.trim();
        let k = k.strip_prefix(ENV_PREFIX).unwrap_or(k);
        let Some(var) = VARS.iter().find(|v| v.key == k) else {
            return Err(ConfigError::UnknownKey {
                file: name.into(),
                line: i + 1,
                key: k.into(),
                known: VARS.iter().map(|v| v.key).collect::<Vec<_>>().join(", "),
            });
        };
        let v = v.trim();
        let v = match (v.chars().next(), v.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(e)) if v.len() >= 2 && e == q => &v[1..v.len() - 1],
            _ => v,
        };
        out.insert(var.key, v.to_owned());
    }
    Ok(out)
}

/// What a finalize can still use when the configuration as a whole is invalid: enough to
/// record the session as pending and tag the instance (fail safe), each value only if it
/// is valid on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub pending_dir: PathBuf,
    pub region: Option<String>,
    pub instance_id: Option<String>,
    pub endpoint_url: Option<String>,
}

impl Fallback {
    pub fn from_sources(
        file: &BTreeMap<&'static str, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let get = |key: &'static str| {
            env(&format!("{ENV_PREFIX}{key}"))
                .or_else(|| file.get(key).cloned())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // Each key checked alone, with the same rules as the full parse.
        let alone = |key: &'static str| {
            let mut one = BTreeMap::new();
            one.insert("BUCKET", "placeholder-bucket".to_owned());
            if let Some(v) = get(key) {
                one.insert(key, v);
            }
            Config::from_sources(&one, |_| None).ok()
        };
        Self {
            pending_dir: alone("PENDING_DIR")
                .map(|c| c.pending_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/jibri-finalize")),
            region: alone("REGION").and_then(|c| c.region),
            instance_id: alone("INSTANCE_ID").and_then(|c| c.instance_id),
            endpoint_url: alone("ENDPOINT_URL").and_then(|c| c.endpoint_url),
        }
    }
}

impl Config {
    /// From the file's values and the environment (`JIBRI_FINALIZE_<KEY>` wins over the file).
    pub fn from_sources(
        file: &BTreeMap<&'static str, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> ConfigResult<Self> {
        let get = |key: &'static str| -> Option<String> {
            env(&format!("{ENV_PREFIX}{key}"))
                .or_else(|| file.get(key).cloned())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let default = |key: &'static str| {
            VARS.iter()
                .find(|v| v.key == key)
                .and_then(|v| v.default)
                .unwrap_or_default()
                .to_owned()
        };
        let value = |key: &'static str| get(key).unwrap_or_else(|| default(key));
        let invalid = |key: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            key,
            value: value.into(),
            reason: reason.into(),
        };

        let bucket = get("BUCKET").ok_or(ConfigError::Missing {
            key: "BUCKET",
            doc: "the S3 bucket of the recordings",
        })?;
        if !valid_bucket(&bucket) {
            return Err(invalid("BUCKET", &bucket, "not an S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)"));
        }
        let raw_prefix = value("PREFIX");
        let prefix = normalize_prefix(&raw_prefix)
            .map_err(|e| invalid("PREFIX", &raw_prefix, &e.to_string()))?;

        let region = get("REGION");
        if let Some(r) = &region {
            if !r
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(invalid(
                    "REGION",
                    r,
                    "not a region name such as eu-central-1",
                ));
            }
        }
        let instance_id = get("INSTANCE_ID");
        if let Some(id) = &instance_id {
            let hex = id.strip_prefix("i-").unwrap_or("");
            if !(8..=17).contains(&hex.len())
                || !hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            {
                return Err(invalid(
                    "INSTANCE_ID",
                    id,
                    "not an EC2 instance id (i- followed by 8 or 17 hex digits)",
                ));
            }
        }
        let endpoint_url = get("ENDPOINT_URL");
        if let Some(e) = &endpoint_url {
            if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() < 10 {
                return Err(invalid(
                    "ENDPOINT_URL",
                    e,
                    "must be an http:// or https:// URL",
                ));
            }
        }

        let size = |key: &'static str, min: u64, max: u64| -> ConfigResult<u64> {
            let v = value(key);
            let n = parse_size(&v).ok_or_else(|| {
                invalid(
                    key,
                    &v,
                    "not a size: bytes, or a number with K/KiB, M/MiB or G/GiB (binary units)",
                )
            })?;
            if n < min || n > max {
                return Err(invalid(
                    key,
                    &v,
                    &format!("must be between {} and {}", human(min), human(max)),
                ));
            }
            Ok(n)
        };
        let part_size = size("PART_SIZE", S3_MIN_PART, S3_MAX_PART)?;
        let multipart_threshold = size("MULTIPART_THRESHOLD", 1, S3_MAX_PART)?;

        let int = |key: &'static str, min: u64, max: u64| -> ConfigResult<u64> {
            let v = value(key);
            let n: u64 = v
                .parse()
                .map_err(|_| invalid(key, &v, "not a whole number"))?;
            if n < min || n > max {
                return Err(invalid(
                    key,
                    &v,
                    &format!("must be between {min} and {max}"),
                ));
            }
            Ok(n)
        };
        let concurrency = int("CONCURRENCY", 1, 64)? as usize;
        let max_attempts = int("MAX_ATTEMPTS", 1, 100)? as u32;
        let retry_base_ms = int("RETRY_BASE_MS", 1, 600_000)?;
        let retry_max_ms = int("RETRY_MAX_MS", 1, 3_600_000)?;
        if retry_max_ms < retry_base_ms {
            return Err(invalid(
                "RETRY_MAX_MS",
                &retry_max_ms.to_string(),
                &format!("must not be below RETRY_BASE_MS ({retry_base_ms})"),
            ));
        }
        let attempt_timeout_s = int("ATTEMPT_TIMEOUT_S", 1, 3600)?;

        let algo = value("CHECKSUM_ALGORITHM");
        let checksum_algorithm = ChecksumAlgorithm::parse(&algo)
            .ok_or_else(|| invalid("CHECKSUM_ALGORITHM", &algo, "must be crc64nvme or crc32"))?;

        let pending = value("PENDING_DIR");
        let pending_dir = PathBuf::from(&pending);
        if !pending_dir.is_absolute() {
            return Err(invalid("PENDING_DIR", &pending, "must be an absolute path"));
        }
        let lf = value("LOG_FORMAT");
        let log_format = match lf.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(invalid("LOG_FORMAT", &lf, "must be text or json")),
        };

        Ok(Self {
            bucket,
            prefix,
            region,
            instance_id,
            endpoint_url,
            part_size,
            multipart_threshold,
            concurrency,
            checksum_algorithm,
            pending_dir,
            retry: RetryPolicy {
                max_attempts,
                base: Duration::from_millis(retry_base_ms),
                cap: Duration::from_millis(retry_max_ms),
            },
            attempt_timeout: Duration::from_secs(attempt_timeout_s),
            log_format,
        })
    }

    /// The effective configuration as `KEY=VALUE` lines (for `--check-config`).
    pub fn describe(&self) -> String {
        let opt = |o: &Option<String>, unset: &str| o.clone().unwrap_or_else(|| unset.to_owned());
        [
            format!("BUCKET={}", self.bucket),
            format!("PREFIX={}", self.prefix),
            format!(
                "REGION={}",
                opt(&self.region, "(SDK chain / instance metadata)")
            ),
            format!(
                "INSTANCE_ID={}",
                opt(&self.instance_id, "(instance metadata)")
            ),
            format!("ENDPOINT_URL={}", opt(&self.endpoint_url, "(AWS)")),
            format!("PART_SIZE={}", human(self.part_size)),
            format!("MULTIPART_THRESHOLD={}", human(self.multipart_threshold)),
            format!("CONCURRENCY={}", self.concurrency),
            format!(
                "CHECKSUM_ALGORITHM={}",
                self.checksum_algorithm.config_name()
            ),
            format!("PENDING_DIR={}", self.pending_dir.display()),
            format!("MAX_ATTEMPTS={}", self.retry.max_attempts),
            format!("RETRY_BASE_MS={}", self.retry.base.as_millis()),
            format!("RETRY_MAX_MS={}", self.retry.cap.as_millis()),
            format!("ATTEMPT_TIMEOUT_S={}", self.attempt_timeout.as_secs()),
            format!(
                "LOG_FORMAT={}",
                if self.log_format == LogFormat::Json {
                    "json"
                } else {
                    "text"
                }
            ),
        ]
        .join("\n")
    }
}

fn valid_bucket(b: &str) -> bool {
    let ok_chars = b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len()) && ok_chars && ends(b.chars().next()) && ends(b.chars().last())
}

/// `16777216`, `16M`, `16MiB`, `16mb`, `512K`, `1G` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= MIB && n % MIB == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(file: &str, env: &[(&str, &str)]) -> ConfigResult<Config> {
        let values = parse_file("test.conf", file)?;
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(&values, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_apply_and_only_the_bucket_is_required() {
        let c = cfg("BUCKET=rec-bucket\n", &[]).unwrap();
        assert_eq!(c.prefix, "recordings/");
        assert_eq!(c.part_size, 16 * MIB);
        assert_eq!(c.multipart_threshold, 16 * MIB);
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.checksum_algorithm, ChecksumAlgorithm::Crc64Nvme);
        assert_eq!(c.pending_dir, PathBuf::from("/var/lib/jibri-finalize"));
        assert_eq!(
            c.retry,
            RetryPolicy {
                max_attempts: 6,
                base: Duration::from_millis(200),
                cap: Duration::from_secs(20)
            }
        );
        assert_eq!(
            (
                c.region.as_deref(),
                c.instance_id.as_deref(),
                c.endpoint_url.as_deref()
            ),
            (None, None, None)
        );
        assert_eq!(
            cfg("", &[]),
            Err(ConfigError::Missing {
                key: "BUCKET",
                doc: "the S3 bucket of the recordings"
            })
        );
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let file = "# recorder pool A\nexport BUCKET=\"file-bucket\"\nPREFIX='recordings/pool-a'\nPART_SIZE=8M\n";
        let c = cfg(
            file,
            &[
                ("JIBRI_FINALIZE_BUCKET", "env-bucket"),
                ("JIBRI_FINALIZE_CONCURRENCY", "8"),
            ],
        )
        .unwrap();
        assert_eq!(c.bucket, "env-bucket");
        assert_eq!(c.prefix, "recordings/pool-a/");
        assert_eq!(c.part_size, 8 * MIB);
        assert_eq!(c.concurrency, 8);
        // Unprefixed environment variables are not ours (BUCKET could be anything's).
        assert_eq!(
            cfg("BUCKET=b-1\n", &[("CONCURRENCY", "9")])
                .unwrap()
                .concurrency,
            4
        );
    }

    #[test]
    fn every_error_names_its_key() {
        let cases: &[(&str, &str)] = &[
            ("BUCKET=Bad_Bucket", "BUCKET"),
            ("BUCKET=b-1\nPREFIX=/abs/", "PREFIX"),
            ("BUCKET=b-1\nREGION=EU Central", "REGION"),
            ("BUCKET=b-1\nINSTANCE_ID=abc", "INSTANCE_ID"),
            ("BUCKET=b-1\nINSTANCE_ID=i-XYZ12345", "INSTANCE_ID"),
            ("BUCKET=b-1\nENDPOINT_URL=127.0.0.1:9000", "ENDPOINT_URL"),
            ("BUCKET=b-1\nPART_SIZE=1M", "PART_SIZE"),
            ("BUCKET=b-1\nPART_SIZE=6T", "PART_SIZE"),
            ("BUCKET=b-1\nMULTIPART_THRESHOLD=0", "MULTIPART_THRESHOLD"),
            ("BUCKET=b-1\nCONCURRENCY=0", "CONCURRENCY"),
            ("BUCKET=b-1\nCONCURRENCY=lots", "CONCURRENCY"),
            ("BUCKET=b-1\nCHECKSUM_ALGORITHM=md5", "CHECKSUM_ALGORITHM"),
            ("BUCKET=b-1\nPENDING_DIR=relative/dir", "PENDING_DIR"),
            ("BUCKET=b-1\nMAX_ATTEMPTS=0", "MAX_ATTEMPTS"),
            (
                "BUCKET=b-1\nRETRY_BASE_MS=500\nRETRY_MAX_MS=100",
                "RETRY_MAX_MS",
            ),
            ("BUCKET=b-1\nATTEMPT_TIMEOUT_S=0", "ATTEMPT_TIMEOUT_S"),
            ("BUCKET=b-1\nLOG_FORMAT=xml", "LOG_FORMAT"),
        ];
        for (file, key) in cases {
            let err = cfg(file, &[]).expect_err(file);
            assert!(
                err.to_string().starts_with(&format!("{key}=")),
                "{file:?} -> {err}"
            );
        }
    }

    #[test]
    fn file_syntax_errors_say_where() {
        assert_eq!(
            cfg("BUCKET=b-1\nnonsense line\n", &[]),
            Err(ConfigError::Syntax {
                file: "test.conf".into(),
                line: 2,
                message: "expected KEY=VALUE, found \"nonsense line\"".into()
            })
        );
        let err = cfg("BUCKET=b-1\nBUCKTE=x\n", &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownKey { line: 2, key, .. } if key == "BUCKTE"),
            "{err}"
        );
        // The prefixed spelling is accepted in the file too.
        assert_eq!(
            cfg("JIBRI_FINALIZE_BUCKET=b-2\n", &[]).unwrap().bucket,
            "b-2"
        );
    }

    #[test]
    fn an_invalid_configuration_still_yields_what_protects_a_session() {
        let values = parse_file("t", "PART_SIZE=1K\nINSTANCE_ID=i-0123456789abcdef0\nREGION=Bad Region\nPENDING_DIR=/srv/pending\n").unwrap();
        assert!(Config::from_sources(&values, |_| None).is_err());
        let f = Fallback::from_sources(&values, |k| {
            (k == "JIBRI_FINALIZE_ENDPOINT_URL").then(|| "http://127.0.0.1:5000".to_owned())
        });
        assert_eq!(
            f,
            Fallback {
                pending_dir: PathBuf::from("/srv/pending"),
                region: None,
                instance_id: Some("i-0123456789abcdef0".into()),
                endpoint_url: Some("http://127.0.0.1:5000".into()),
            }
        );
        let f = Fallback::from_sources(&BTreeMap::new(), |_| None);
        assert_eq!(f.pending_dir, PathBuf::from("/var/lib/jibri-finalize"));
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("16777216"), Some(16 * MIB));
        assert_eq!(parse_size("16M"), Some(16 * MIB));
        assert_eq!(parse_size("16MiB"), Some(16 * MIB));
        assert_eq!(parse_size("16 mb"), Some(16 * MIB));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn describe_lists_every_key() {
        let c = cfg("BUCKET=b-1\nINSTANCE_ID=i-0123456789abcdef0\n", &[]).unwrap();
        let text = c.describe();
        for v in VARS {
            assert!(
                text.contains(&format!("{}=", v.key)),
                "{} missing from {text}",
                v.key
            );
        }
        assert!(text.contains("INSTANCE_ID=i-0123456789abcdef0"));
        assert!(text.contains("PART_SIZE=16MiB"));
    }
}
