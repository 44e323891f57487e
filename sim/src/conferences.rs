//! Conference traces for a videobridge pool: one conference a row, with its participants.
//!
//! ```text
//! # comments start with '#'; optional: horizon_s=SECONDS (default: last end + 1 h, rounded up to the hour)
//! start_s,duration_s,participants
//! 28800,2700,6
//! ```
//! `start_s` counts from a UTC midnight. The bundled trace (`sim/traces/jvb/`) is made by
//! [`workday`] (`sim-traces` writes it; a test checks the file equals the generator).

use crate::rng::{Rng, Stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conference {
    pub start_s: u64,
    pub duration_s: u64,
    /// Endpoints, all joined at the start and present to the end (a model limit).
    pub participants: u32,
}

impl Conference {
    pub fn end_s(&self) -> u64 {
        self.start_s + self.duration_s
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceTrace {
    pub name: String,
    /// Sorted by start.
    pub conferences: Vec<Conference>,
    pub horizon_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConferenceTraceError {
    #[error("{name}:{line}: {message}")]
    Line {
        name: String,
        line: usize,
        message: String,
    },
}

impl ConferenceTrace {
    pub fn new(
        name: impl Into<String>,
        mut conferences: Vec<Conference>,
        horizon: Option<u64>,
    ) -> Self {
        conferences.sort_by_key(|c| (c.start_s, c.duration_s, c.participants));
        let last = conferences.iter().map(Conference::end_s).max().unwrap_or(0);
        let horizon_s = horizon.unwrap_or_else(|| (last + 3600).div_ceil(3600) * 3600);
        ConferenceTrace {
            name: name.into(),
            conferences,
            horizon_s,
        }
    }

    pub fn parse_csv(name: &str, text: &str) -> Result<Self, ConferenceTraceError> {
        let err = |line: usize, message: String| ConferenceTraceError::Line {
            name: name.to_string(),
            line,
            message,
        };
        let mut horizon = None;
        let mut confs = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if let Some(c) = line.strip_prefix('#') {
                if let Some(h) = c.trim().strip_prefix("horizon_s=") {
                    horizon = Some(
                        h.trim()
                            .parse()
                            .map_err(|_| err(n + 1, format!("bad horizon {h:?}")))?,
                    );
                }
                continue;
            }
            if line.is_empty() || line.starts_with("start_s") {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let [s, d, p] = f.as_slice() else {
                return Err(err(
                    n + 1,
                    format!("{line:?} is not start_s,duration_s,participants"),
                ));
            };
            let num = |x: &str| {
                x.parse::<u64>()
                    .map_err(|_| err(n + 1, format!("{x:?} is not a whole number")))
            };
            let participants =
                u32::try_from(num(p)?).map_err(|_| err(n + 1, "too many participants".into()))?;
            if participants == 0 {
                return Err(err(
                    n + 1,
                    "a conference has at least one participant".into(),
                ));
            }
            confs.push(Conference {
                start_s: num(s)?,
                duration_s: num(d)?.max(1),
                participants,
            });
        }
        Ok(Self::new(name, confs, horizon))
    }

    pub fn to_csv(&self, comment: &str) -> String {
        let mut s = String::new();
        for l in comment.lines() {
            s.push_str(&format!("# {l}\n"));
        }
        s.push_str(&format!(
            "# horizon_s={}\nstart_s,duration_s,participants\n",
            self.horizon_s
        ));
        for c in &self.conferences {
            s.push_str(&format!(
                "{},{},{}\n",
                c.start_s, c.duration_s, c.participants
            ));
        }
        s
    }

    /// Endpoints at every second of the horizon.
    pub fn participants_per_second(&self) -> Vec<u32> {
        let mut delta = vec![0i64; self.horizon_s as usize + 1];
        for c in &self.conferences {
            if c.start_s < self.horizon_s {
                delta[c.start_s as usize] += i64::from(c.participants);
                delta[c.end_s().min(self.horizon_s) as usize] -= i64::from(c.participants);
            }
        }
        let mut run = 0i64;
        delta[..self.horizon_s as usize]
            .iter()
            .map(|d| {
                run += d;
                run.max(0) as u32
            })
            .collect()
    }
}

/// What the bundled conference trace is.
pub const WORKDAY_DESCRIPTION: &str = "A workday of conferences for a videobridge pool: bursts on the hour (Poisson mean 30) and half hour (15), 08:00-18:00 UTC, most starting within 2 minutes of the slot (a fifth up to 2 minutes early), 40 min median (lognormal, 10-120 min); ~150 scattered 07:00-21:00, 30 min median (5-180 min); 2-60 participants (lognormal median 4), 3 % large (30-120).";

/// A workday of conferences (see [`WORKDAY_DESCRIPTION`]).
pub fn workday(seed: u64) -> ConferenceTrace {
    let mut r = Rng::derive(seed, Stream::Trace, 0x4a56_4200);
    let mut confs = Vec::new();
    let participants = |r: &mut Rng| -> u32 {
        if r.chance(0.03) {
            r.range(30, 121) as u32
        } else {
            (r.lognormal(4.0, 0.7).round() as u32).clamp(2, 60)
        }
    };
    for h in 8..18u64 {
        for (minute, mean) in [(0u64, 30.0), (30, 15.0)] {
            let slot = h * 3600 + minute * 60;
            for _ in 0..r.poisson(mean) {
                let start = if r.chance(0.2) {
                    slot - r.range(0, 121)
                } else {
                    slot + (r.exp(45.0) as u64).min(300)
                };
                let duration = (r.lognormal(2400.0, 0.35) as u64).clamp(600, 7200);
                let p = participants(&mut r);
                confs.push(Conference {
                    start_s: start,
                    duration_s: duration,
                    participants: p,
                });
            }
        }
    }
    for _ in 0..r.poisson(150.0) {
        let start = r.range(7 * 3600, 21 * 3600);
        let duration = (r.lognormal(1800.0, 0.6) as u64).clamp(300, 10_800);
        let p = participants(&mut r);
        confs.push(Conference {
            start_s: start,
            duration_s: duration,
            participants: p,
        });
    }
    ConferenceTrace::new("workday-conferences", confs, Some(86_400))
}

/// A quiet day (a weekend): ~40 conferences scattered 09:00-20:00, as [`workday`]'s.
pub fn quiet(seed: u64) -> ConferenceTrace {
    let mut r = Rng::derive(seed, Stream::Trace, 0x4a56_4201);
    let confs = (0..r.poisson(40.0))
        .map(|_| Conference {
            start_s: r.range(9 * 3600, 20 * 3600),
            duration_s: (r.lognormal(1800.0, 0.6) as u64).clamp(300, 10_800),
            participants: (r.lognormal(4.0, 0.7).round() as u32).clamp(2, 60),
        })
        .collect();
    ConferenceTrace::new("quiet-conferences", confs, Some(86_400))
}

/// The week our policy lives before a trace (its history): Monday to Friday workdays and
/// a quiet weekend, drawn with other seeds; `(epoch of the day, trace)`, oldest first. The
/// measured day is a Monday, 2026-11-23 UTC ([`MEASURED_EPOCH`]).
pub fn history_week(seed: u64) -> Vec<(u64, ConferenceTrace)> {
    (0..7u64)
        .map(|k| {
            let epoch = MEASURED_EPOCH - (7 - k) * 86_400;
            let day_seed = 1000 + seed * 10 + k;
            let t = if k < 5 {
                workday(day_seed)
            } else {
                quiet(day_seed)
            };
            (epoch, t)
        })
        .collect()
}

/// Monday 2026-11-23 00:00 UTC: the calendar day of the measured trace.
pub const MEASURED_EPOCH: u64 = 1_795_392_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_round_trips_through_csv() {
        let t = workday(1);
        assert!(t.conferences.len() > 300, "{}", t.conferences.len());
        let back = ConferenceTrace::parse_csv(&t.name, &t.to_csv("x")).unwrap();
        assert_eq!(back, t);
        assert!(ConferenceTrace::parse_csv("x", "1,2\n").is_err());
        assert!(ConferenceTrace::parse_csv("x", "1,2,0\n").is_err());
        assert!(ConferenceTrace::parse_csv("x", "1,a,3\n").is_err());
    }
}
