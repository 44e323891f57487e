//! Traces of recording requests: the CSV format, its parser and writer, and the generators
//! of the bundled traces (`sim/traces/`).
//!
//! # CSV format
//! ```text
//! # any comment line starts with '#'
//! # horizon_s=86400        (optional: seconds simulated; default: the last end + 1 h, rounded up to the hour)
//! start_s,duration_s       (optional header)
//! 32400,2700
//! 32415,3600
//! ```
//! One request per row: `start_s` is when a participant presses "start recording" (seconds
//! from the trace's origin, a UTC midnight, so `start_s % 86400` is the time of day);
//! `duration_s` is how long the meeting is recorded if the request is served (> 0). Rows
//! may come in any order; blank lines are ignored. Finalize/upload time is not in the trace:
//! it belongs to the recorder model.

use crate::rng::{Rng, Stream};
use std::fmt::Write as _;

/// One recording request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Request {
    pub start_s: u64,
    pub duration_s: u64,
}

/// A named list of requests, sorted by start, and the simulated horizon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trace {
    pub name: String,
    pub requests: Vec<Request>,
    pub horizon_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error("{name}:{line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    #[error("{name}: no request in the trace")]
    Empty { name: String },
    #[error("{name}: horizon_s={horizon} ends before the last request starts ({last_start})")]
    HorizonTooShort {
        name: String,
        horizon: u64,
        last_start: u64,
    },
}

const HEADER: &str = "start_s,duration_s";

impl Trace {
    /// Builds a trace, sorting the requests; `horizon_s` defaults to the last end plus an
    /// hour, rounded up to a whole hour.
    pub fn new(
        name: impl Into<String>,
        mut requests: Vec<Request>,
        horizon_s: Option<u64>,
    ) -> Self {
        requests.sort();
        let last_end = requests
            .iter()
            .map(|r| r.start_s + r.duration_s)
            .max()
            .unwrap_or(0);
        let horizon_s = horizon_s.unwrap_or_else(|| (last_end + 3600).div_ceil(3600) * 3600);
        Self {
            name: name.into(),
            requests,
            horizon_s,
        }
    }

    /// Parses the CSV format above.
    pub fn parse_csv(name: &str, text: &str) -> Result<Self, TraceError> {
        let err = |line: usize, message: String| TraceError::Parse {
            name: name.to_string(),
            line,
            message,
        };
        let mut horizon = None;
        let mut requests = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                if let Some(v) = comment.trim().strip_prefix("horizon_s=") {
                    let h = v
                        .trim()
                        .parse::<u64>()
                        .map_err(|e| err(line_no, format!("horizon_s: {e}")))?;
                    horizon = Some(h);
                }
                continue;
            }
            if line.replace(' ', "") == HEADER {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != 2 {
                return Err(err(
                    line_no,
                    format!(
                        "expected 2 fields `start_s,duration_s`, found {}",
                        fields.len()
                    ),
                ));
            }
            let num = |what: &str, s: &str| {
                s.parse::<u64>()
                    .map_err(|e| err(line_no, format!("{what} {s:?}: {e}")))
            };
            let start_s = num("start_s", fields[0])?;
            let duration_s = num("duration_s", fields[1])?;
            if duration_s == 0 {
                return Err(err(line_no, "duration_s must be positive".into()));
            }
            requests.push(Request {
                start_s,
                duration_s,
            });
        }
        if requests.is_empty() {
            return Err(TraceError::Empty {
                name: name.to_string(),
            });
        }
        let trace = Self::new(name, requests, horizon);
        let last_start = trace.requests.last().map_or(0, |r| r.start_s);
        if trace.horizon_s <= last_start {
            return Err(TraceError::HorizonTooShort {
                name: name.to_string(),
                horizon: trace.horizon_s,
                last_start,
            });
        }
        Ok(trace)
    }

    /// Writes the CSV format (with the horizon), e.g. for the bundled traces.
    pub fn to_csv(&self, comment: &str) -> String {
        let mut s = String::new();
        for line in comment.lines() {
            let _ = writeln!(s, "# {line}");
        }
        let _ = writeln!(s, "# horizon_s={}", self.horizon_s);
        let _ = writeln!(s, "{HEADER}");
        for r in &self.requests {
            let _ = writeln!(s, "{},{}", r.start_s, r.duration_s);
        }
        s
    }
}

/// The generators of the bundled traces. Times of day are UTC; day 0 is a Monday.
pub mod gen {
    use super::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    fn duration(r: &mut Rng, median_min: f64, sigma: f64, lo_min: f64, hi_min: f64) -> u64 {
        (r.lognormal(median_min, sigma).clamp(lo_min, hi_min) * MIN as f64).round() as u64
    }

    /// How far into a half hour a bunched start lands: most in the first two minutes, a
    /// tail to ten (people join late), a few a minute early.
    fn bunched_offset(r: &mut Rng) -> i64 {
        if r.chance(0.1) {
            -(r.range(0, 60) as i64)
        } else {
            r.exp(100.0).min(600.0) as i64
        }
    }

    fn at(base: u64, offset: i64) -> u64 {
        base.saturating_add_signed(offset)
    }

    /// A working day: meetings recorded on the hour and the half hour in office hours
    /// (08:00–18:00 UTC), starts bunched in their first minutes, plus scattered ad-hoc
    /// recordings 07:00–21:00. About 400 recordings, 20–90 min, median 45.
    pub fn workday(seed: u64) -> Trace {
        let mut r = Rng::derive(seed, Stream::Trace, 1);
        let mut v = Vec::new();
        for h in 8..18u64 {
            for (half, mean) in [(0u64, 20.0), (30 * MIN, 10.0)] {
                let base = h * HOUR + half;
                for _ in 0..r.poisson(mean) {
                    v.push(Request {
                        start_s: at(base, bunched_offset(&mut r)),
                        duration_s: duration(&mut r, 45.0, 0.4, 20.0, 90.0),
                    });
                }
            }
        }
        for _ in 0..r.poisson(100.0) {
            let start_s = r.range(7 * HOUR, 21 * HOUR);
            v.push(Request {
                start_s,
                duration_s: duration(&mut r, 40.0, 0.45, 20.0, 90.0),
            });
        }
        Trace::new("workday", v, Some(DAY))
    }

    /// A weekend (two days) and its nights: a trickle of recordings, a bit more in the
    /// afternoon and evening, about 50 in all.
    pub fn night_weekend(seed: u64) -> Trace {
        let mut r = Rng::derive(seed, Stream::Trace, 2);
        let mut v = Vec::new();
        for day in 0..2u64 {
            for h in 0..24u64 {
                let mean = match h {
                    0..=6 => 0.2,
                    7..=11 => 0.8,
                    12..=21 => 1.6,
                    _ => 0.6,
                };
                for _ in 0..r.poisson(mean) {
                    let start_s = day * DAY + h * HOUR + r.below(HOUR);
                    v.push(Request {
                        start_s,
                        duration_s: duration(&mut r, 40.0, 0.5, 10.0, 120.0),
                    });
                }
            }
        }
        Trace::new("night-weekend", v, Some(2 * DAY))
    }

    /// A quiet day with a flash crowd: 48 recordings start within two minutes at 14:00
    /// (a webinar series, a class), on top of a trickle of about three an hour.
    pub fn flash_crowd(seed: u64) -> Trace {
        let mut r = Rng::derive(seed, Stream::Trace, 3);
        let mut v = Vec::new();
        for _ in 0..r.poisson(40.0) {
            let start_s = r.range(7 * HOUR, 21 * HOUR);
            v.push(Request {
                start_s,
                duration_s: duration(&mut r, 40.0, 0.45, 15.0, 90.0),
            });
        }
        for _ in 0..48 {
            let start_s = 14 * HOUR + r.below(2 * MIN);
            v.push(Request {
                start_s,
                duration_s: duration(&mut r, 55.0, 0.25, 30.0, 90.0),
            });
        }
        Trace::new("flash-crowd", v, Some(DAY))
    }

    /// The flash-crowd trace's quiet day without its crowd (its history: days like it).
    pub fn quiet_day(seed: u64) -> Trace {
        let mut t = flash_crowd(seed);
        t.requests.retain(|q| {
            !(14 * HOUR..14 * HOUR + 2 * MIN).contains(&q.start_s) || q.duration_s < 30 * MIN
        });
        Trace::new("quiet-day", t.requests, Some(DAY))
    }

    /// Very long recordings: all-day events and lectures, 2–10 h (median 4 h), about 40
    /// starting 06:00–20:00, with shorter meetings between them.
    pub fn long_recordings(seed: u64) -> Trace {
        let mut r = Rng::derive(seed, Stream::Trace, 4);
        let mut v = Vec::new();
        for _ in 0..r.poisson(40.0) {
            let start_s = r.range(6 * HOUR, 20 * HOUR);
            v.push(Request {
                start_s,
                duration_s: duration(&mut r, 240.0, 0.45, 120.0, 600.0),
            });
        }
        for _ in 0..r.poisson(60.0) {
            let start_s = r.range(8 * HOUR, 18 * HOUR);
            v.push(Request {
                start_s,
                duration_s: duration(&mut r, 45.0, 0.4, 20.0, 90.0),
            });
        }
        // Long ones run past midnight: simulate until they are all done.
        Trace::new("long-recordings", v, None)
    }

    /// Every bundled trace, by the seed that made the files in `sim/traces/`.
    pub fn bundled(seed: u64) -> Vec<Trace> {
        vec![
            workday(seed),
            night_weekend(seed),
            flash_crowd(seed),
            long_recordings(seed),
        ]
    }

    /// What each bundled trace models, for the file's comment.
    pub fn describe(name: &str) -> &'static str {
        match name {
            "workday" => "Working day: recordings bunched on the hour (mean 20) and half hour (mean 10), 08:00-18:00 UTC,\nstarts mostly in the first two minutes, plus ~100 scattered 07:00-21:00; 20-90 min, median 45.",
            "night-weekend" => "Weekend and nights (two days): a trickle, ~0.2/h at night, ~1.6/h afternoons; 10-120 min.",
            "flash-crowd" => "Quiet day (~40 recordings 07:00-21:00) with a flash crowd: 48 starts within two minutes at 14:00.",
            "long-recordings" => "Very long recordings: ~40 of 2-10 h (median 4 h) starting 06:00-20:00, plus ~60 meetings of 20-90 min.",
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_comments_horizon_and_sorts() {
        let t = Trace::parse_csv(
            "t",
            "# a trace\n# horizon_s=7200\nstart_s,duration_s\n\n100,60\n 5 , 30 \n",
        )
        .unwrap();
        assert_eq!(
            t.requests,
            vec![
                Request {
                    start_s: 5,
                    duration_s: 30
                },
                Request {
                    start_s: 100,
                    duration_s: 60
                }
            ]
        );
        assert_eq!(t.horizon_s, 7200);
    }

    #[test]
    fn default_horizon_is_last_end_plus_an_hour_rounded_up() {
        let t = Trace::parse_csv("t", "0,100\n3000,1000\n").unwrap();
        assert_eq!(t.horizon_s, 3 * 3600); // last end 4000 + 3600 = 7600 -> 10800
    }

    #[test]
    fn errors_name_the_line() {
        let e = Trace::parse_csv("x.csv", "start_s,duration_s\n10,20\n10;20\n").unwrap_err();
        assert_eq!(
            e,
            TraceError::Parse {
                name: "x.csv".into(),
                line: 3,
                message: "expected 2 fields `start_s,duration_s`, found 1".into()
            }
        );
        let e = Trace::parse_csv("x.csv", "10,-5\n").unwrap_err();
        assert!(matches!(e, TraceError::Parse { line: 1, .. }), "{e}");
        let e = Trace::parse_csv("x.csv", "10,0\n").unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        assert_eq!(
            Trace::parse_csv("x.csv", "# nothing\n").unwrap_err(),
            TraceError::Empty {
                name: "x.csv".into()
            }
        );
        let e = Trace::parse_csv("x.csv", "# horizon_s=10\n20,5\n").unwrap_err();
        assert!(matches!(e, TraceError::HorizonTooShort { .. }), "{e}");
        let e = Trace::parse_csv("x.csv", "# horizon_s=ten\n20,5\n").unwrap_err();
        assert!(matches!(e, TraceError::Parse { line: 1, .. }), "{e}");
    }

    #[test]
    fn csv_round_trips() {
        for t in gen::bundled(1) {
            let back = Trace::parse_csv(&t.name, &t.to_csv(gen::describe(&t.name))).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn generators_have_the_promised_shape() {
        let w = gen::workday(1);
        assert!(
            (330..=470).contains(&w.requests.len()),
            "{}",
            w.requests.len()
        );
        assert!(w
            .requests
            .iter()
            .all(|r| (20 * 60..=90 * 60).contains(&r.duration_s)));
        // Bunched: most office-hour starts fall in the first 5 minutes of a half hour.
        let office: Vec<_> = w
            .requests
            .iter()
            .filter(|r| (8 * 3600..18 * 3600).contains(&r.start_s))
            .collect();
        let bunched = office.iter().filter(|r| r.start_s % 1800 < 300).count();
        assert!(bunched * 2 > office.len(), "{bunched}/{}", office.len());
        let f = gen::flash_crowd(1);
        let flash = f
            .requests
            .iter()
            .filter(|r| (14 * 3600..14 * 3600 + 120).contains(&r.start_s))
            .count();
        assert!(flash >= 48);
        let l = gen::long_recordings(1);
        assert!(
            l.requests
                .iter()
                .filter(|r| r.duration_s >= 2 * 3600)
                .count()
                >= 20
        );
        assert!(l.horizon_s > 86_400);
        assert_eq!(gen::night_weekend(1).horizon_s, 2 * 86_400);
        assert_eq!(gen::workday(1), gen::workday(1));
        assert_ne!(gen::workday(1), gen::workday(2));
    }
}
