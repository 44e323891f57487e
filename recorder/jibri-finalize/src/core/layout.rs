//! Where a session's files go in the bucket:
//! `<prefix>/<yyyy>/<mm>/<dd>/<session>/<relative path>`, the date being the UTC day of the
//! session's first finalize attempt (kept in its pending record, so retries on a later day
//! write to the same keys), and `manifest.json` beside the files.

use std::fmt;

/// Name of the manifest object in a session's prefix. A session file of this name would
/// collide with it, and is refused rather than overwritten.
pub const MANIFEST_NAME: &str = "manifest.json";

/// S3's limit on the length of a key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("session name {0:?} is not usable (empty, '.', '..', or containing '/' or control characters)")]
    BadSession(String),
    #[error("file name {0:?} is not valid UTF-8: S3 keys are UTF-8")]
    NotUtf8(String),
    #[error("file name {0:?} contains control characters")]
    ControlCharacters(String),
    #[error("file {0:?} collides with the session's manifest object")]
    ManifestName(String),
    #[error("object key {0:?} is longer than S3's {MAX_KEY_BYTES} bytes")]
    KeyTooLong(String),
    #[error("key prefix {0:?}: {1}")]
    BadPrefix(String, &'static str),
}

/// A Jibri session id: the name of the session's recording directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionName(String);

impl SessionName {
    pub fn new(name: &str) -> Result<Self, LayoutError> {
        let bad = name.is_empty()
            || name == "."
            || name == ".."
            || name.contains('/')
            || name.chars().any(char::is_control);
        if bad {
            return Err(LayoutError::BadSession(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UTC calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilDate {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl CivilDate {
    /// The UTC day of a Unix time (Howard Hinnant's `civil_from_days`).
    pub fn from_epoch_secs(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day }
    }
}

/// RFC 3339 UTC timestamp of a Unix time, second precision.
pub fn rfc3339(secs: u64) -> String {
    let d = CivilDate::from_epoch_secs(secs);
    let s = secs % 86_400;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year,
        d.month,
        d.day,
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Normalises the configured prefix: no leading '/', no empty segments, and either empty
/// or ending in exactly one '/'. `recordings` and `recordings/` are the same prefix.
pub fn normalize_prefix(prefix: &str) -> Result<String, LayoutError> {
    let body = prefix.trim().trim_end_matches('/');
    if body.is_empty() {
        return Ok(String::new());
    }
    if body.starts_with('/') {
        return Err(LayoutError::BadPrefix(
            prefix.into(),
            "must not start with '/' (keys would not match the uploader's IAM policy)",
        ));
    }
    if body
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(LayoutError::BadPrefix(
            prefix.into(),
            "has an empty, '.' or '..' segment",
        ));
    }
    if body.chars().any(char::is_control) {
        return Err(LayoutError::BadPrefix(
            prefix.into(),
            "contains control characters",
        ));
    }
    Ok(format!("{body}/"))
}

/// `<prefix><yyyy>/<mm>/<dd>/<session>/`, `prefix` as [`normalize_prefix`] returns it.
pub fn session_prefix(prefix: &str, date: CivilDate, session: &SessionName) -> String {
    format!(
        "{prefix}{:04}/{:02}/{:02}/{}/",
        date.year, date.month, date.day, session
    )
}

/// The key of a file given by its path components relative to the session directory.
pub fn object_key<S: AsRef<std::ffi::OsStr>>(
    session_prefix: &str,
    components: &[S],
) -> Result<String, LayoutError> {
    let mut parts = Vec::with_capacity(components.len());
    for c in components {
        let c = c.as_ref();
        let s = c
            .to_str()
            .ok_or_else(|| LayoutError::NotUtf8(c.to_string_lossy().into_owned()))?;
        if s.chars().any(char::is_control) {
            return Err(LayoutError::ControlCharacters(s.to_owned()));
        }
        parts.push(s);
    }
    let relative = parts.join("/");
    if relative == MANIFEST_NAME {
        return Err(LayoutError::ManifestName(relative));
    }
    let key = format!("{session_prefix}{relative}");
    if key.len() > MAX_KEY_BYTES {
        return Err(LayoutError::KeyTooLong(key));
    }
    Ok(key)
}

pub fn manifest_key(session_prefix: &str) -> String {
    format!("{session_prefix}{MANIFEST_NAME}")
}

/// The keys are created, never replaced: when another object already has a file's key
/// (another meeting's session of the same name and day, or an earlier version of the
/// file), the file goes to `<session prefix>~<n>/<relative path>`, n = 2, 3, ... (the
/// manifest records where). Deterministic, so that a retry finds its own earlier object;
/// the file name and its extension stay as they are (a `manifest.json` suffix filter still
/// sees a moved manifest).
pub fn alternative_key(
    session_prefix: &str,
    relative: &str,
    n: u32,
) -> Result<String, LayoutError> {
    let key = format!("{session_prefix}~{n}/{relative}");
    if key.len() > MAX_KEY_BYTES {
        return Err(LayoutError::KeyTooLong(key));
    }
    Ok(key)
}

/// Whether `key` is where a file of `relative` path may be: its own key or one of its
/// [`alternative_key`]s.
pub fn is_key_for(key: &str, session_prefix: &str, relative: &str) -> bool {
    let Some(rest) = key.strip_prefix(session_prefix) else {
        return false;
    };
    if rest == relative {
        return true;
    }
    rest.strip_prefix('~')
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(n, r)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && r == relative
        })
}

/// The Content-Type of a recording file, by extension (Jibri writes `.mp4` by default,
/// `jibri.ffmpeg.recording-extension` may say otherwise).
pub fn content_type(relative: &str) -> &'static str {
    let ext = relative
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "flv" => "video/x-flv",
        "m4a" => "audio/mp4",
        "ogg" | "oga" => "audio/ogg",
        "json" => "application/json",
        "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str) -> SessionName {
        SessionName::new(name).unwrap()
    }

    #[test]
    fn keys_follow_prefix_date_session_file() {
        let date = CivilDate {
            year: 2026,
            month: 3,
            day: 7,
        };
        let p = session_prefix(
            &normalize_prefix("recordings/").unwrap(),
            date,
            &s("sqzxjtkhqdbyaxlb"),
        );
        assert_eq!(p, "recordings/2026/03/07/sqzxjtkhqdbyaxlb/");
        assert_eq!(
            object_key(&p, &["myroom_2026-03-07-10-11-12.mp4"]).unwrap(),
            "recordings/2026/03/07/sqzxjtkhqdbyaxlb/myroom_2026-03-07-10-11-12.mp4"
        );
        assert_eq!(
            object_key(&p, &["sub", "x.txt"]).unwrap(),
            "recordings/2026/03/07/sqzxjtkhqdbyaxlb/sub/x.txt"
        );
        assert_eq!(
            manifest_key(&p),
            "recordings/2026/03/07/sqzxjtkhqdbyaxlb/manifest.json"
        );
    }

    #[test]
    fn prefix_is_normalised_and_checked() {
        assert_eq!(normalize_prefix("recordings").unwrap(), "recordings/");
        assert_eq!(
            normalize_prefix("recordings/pool-b//").unwrap(),
            "recordings/pool-b/"
        );
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(
            normalize_prefix("/").unwrap(),
            "",
            "a lone slash is no prefix"
        );
        assert!(normalize_prefix("/recordings/").is_err());
        assert!(normalize_prefix("a//b/").is_err());
        assert!(normalize_prefix("a/../b").is_err());
        let date = CivilDate {
            year: 2026,
            month: 12,
            day: 31,
        };
        assert_eq!(session_prefix("", date, &s("x")), "2026/12/31/x/");
    }

    #[test]
    fn session_names_that_would_escape_or_vanish_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\nb"] {
            assert!(SessionName::new(bad).is_err(), "{bad:?}");
        }
        assert!(SessionName::new("räum-1").is_ok());
    }

    #[test]
    fn a_file_named_like_the_manifest_is_refused_not_overwritten() {
        assert!(matches!(
            object_key("p/", &[MANIFEST_NAME]),
            Err(LayoutError::ManifestName(_))
        ));
        assert!(object_key("p/", &["sub", MANIFEST_NAME]).is_ok());
    }

    #[test]
    fn non_utf8_and_overlong_names_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"bad\xff.mp4");
        assert!(matches!(
            object_key("p/", &[bad]),
            Err(LayoutError::NotUtf8(_))
        ));
        let long = "x".repeat(1100);
        assert!(matches!(
            object_key("p/", &[long.as_str()]),
            Err(LayoutError::KeyTooLong(_))
        ));
    }

    #[test]
    fn a_taken_key_has_deterministic_alternatives_in_the_session() {
        let p = "recordings/2026/03/07/s1/";
        assert_eq!(
            alternative_key(p, "room.mp4", 2).unwrap(),
            "recordings/2026/03/07/s1/~2/room.mp4"
        );
        assert_eq!(
            alternative_key(p, MANIFEST_NAME, 3).unwrap(),
            "recordings/2026/03/07/s1/~3/manifest.json",
            "a suffix filter on manifest.json still matches"
        );
        assert_eq!(
            alternative_key(p, "sub/x.txt", 2).unwrap(),
            "recordings/2026/03/07/s1/~2/sub/x.txt"
        );
        assert!(matches!(
            alternative_key(p, &"x".repeat(1000), 2),
            Err(LayoutError::KeyTooLong(_))
        ));
        assert!(is_key_for(&format!("{p}room.mp4"), p, "room.mp4"));
        assert!(is_key_for(&format!("{p}~12/room.mp4"), p, "room.mp4"));
        assert!(!is_key_for(&format!("{p}~/room.mp4"), p, "room.mp4"));
        assert!(!is_key_for(&format!("{p}~2x/room.mp4"), p, "room.mp4"));
        assert!(!is_key_for(&format!("{p}~2/other.mp4"), p, "room.mp4"));
        assert!(!is_key_for("other/prefix/room.mp4", p, "room.mp4"));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("room_2026-01-01-10-00-00.mp4"), "video/mp4");
        assert_eq!(content_type("metadata.json"), "application/json");
        assert_eq!(content_type("x.MKV"), "video/x-matroska");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn civil_dates_cover_leap_years_and_epoch() {
        assert_eq!(
            CivilDate::from_epoch_secs(0),
            CivilDate {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        // 2024-02-29T12:00:00Z
        assert_eq!(
            CivilDate::from_epoch_secs(1_709_208_000),
            CivilDate {
                year: 2024,
                month: 2,
                day: 29
            }
        );
        // 2026-12-31T23:59:59Z
        assert_eq!(
            CivilDate::from_epoch_secs(1_798_761_599),
            CivilDate {
                year: 2026,
                month: 12,
                day: 31
            }
        );
        assert_eq!(
            CivilDate::from_epoch_secs(1_798_761_600),
            CivilDate {
                year: 2027,
                month: 1,
                day: 1
            }
        );
        assert_eq!(rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
    }
}
