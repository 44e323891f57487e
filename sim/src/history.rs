//! The week before a trace: what the controller lived through before the day measured.
//!
//! Our policy learns demand by hour of week and minute of hour; a pool in production has
//! history, a simulation that starts cold measures only the first day of a new pool
//! (which the report shows too: `history: none`). So each trace is placed on the calendar
//! and our policy first lives the seven days before it, drawn from the same generators with
//! *other* seeds (days like it, never the day itself):
//!
//! | trace | placed on | the week before |
//! |---|---|---|
//! | `workday` | a Monday | Mon–Fri workdays, a night/weekend Sat–Sun |
//! | `night-weekend` | a Saturday | a night/weekend Sat–Sun, Mon–Fri workdays |
//! | `flash-crowd` | a Monday | seven quiet days (the same day without its crowd) |
//! | `long-recordings` | a Monday | seven days of long recordings |
//! | any other (a CSV) | a Monday | none by default; `bench-policy --history FILE` lives FILE seven times |
//!
//! A trace of unknown origin gets no history by default: replaying the trace itself would
//! let the forecast see the very day it is measured on. Baselines and the bound keep no
//! history (they learn nothing).

use crate::trace::{gen, Trace};

/// Monday 2026-11-16 00:00 UTC: the week before the traces.
pub const HISTORY_MONDAY: u64 = 1_794_787_200;
const DAY: u64 = 86_400;

/// One day (or weekend) lived before the trace.
pub struct Day {
    pub epoch: u64,
    pub trace: Trace,
    /// The model's seed for this day's draws.
    pub seed: u64,
    /// Simulated until here (the next day's start).
    pub horizon_s: u64,
}

/// Where a trace sits on the calendar, and what came before it.
pub struct Placement {
    pub epoch: u64,
    pub before: Vec<Day>,
}

fn seed_of(seed: u64, k: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(7919 * (k + 1))
}

/// A typical week from `first` (a Monday or a Saturday), `days` long.
fn week(seed: u64, monday: u64, starts_saturday: bool) -> Vec<Day> {
    let mut out = Vec::new();
    let weekend = |epoch: u64, k: u64| Day {
        epoch,
        trace: gen::night_weekend(seed_of(seed, k)),
        seed: seed_of(seed, k),
        horizon_s: 2 * DAY,
    };
    let workday = |epoch: u64, k: u64| Day {
        epoch,
        trace: gen::workday(seed_of(seed, k)),
        seed: seed_of(seed, k),
        horizon_s: DAY,
    };
    if starts_saturday {
        out.push(weekend(monday + 5 * DAY, 0));
        for d in 0..5 {
            out.push(workday(monday + 7 * DAY + d * DAY, d + 1));
        }
    } else {
        for d in 0..5 {
            out.push(workday(monday + d * DAY, d));
        }
        out.push(weekend(monday + 5 * DAY, 5));
    }
    out
}

pub fn placement(name: &str, seed: u64) -> Placement {
    let monday = HISTORY_MONDAY;
    let next_monday = monday + 7 * DAY;
    let daily = |make: &dyn Fn(u64) -> Trace, same: bool| -> Vec<Day> {
        (0..7)
            .map(|d| {
                let s = if same { seed } else { seed_of(seed, d) };
                Day {
                    epoch: monday + d * DAY,
                    trace: make(s),
                    seed: seed_of(seed, d),
                    horizon_s: DAY,
                }
            })
            .collect()
    };
    match name {
        "workday" => Placement {
            epoch: next_monday,
            before: week(seed, monday, false),
        },
        "night-weekend" => Placement {
            epoch: next_monday + 5 * DAY,
            before: week(seed, monday, true),
        },
        "flash-crowd" => Placement {
            epoch: next_monday,
            before: daily(&gen::quiet_day, false),
        },
        "long-recordings" => Placement {
            epoch: next_monday,
            before: daily(&gen::long_recordings, false),
        },
        _ => Placement {
            epoch: next_monday,
            before: Vec::new(),
        },
    }
}

/// What our policy lives before a trace.
#[derive(Debug, Clone, Default)]
pub enum HistorySource {
    /// The bundled traces' generated week ([`placement`]); a trace of unknown origin gets
    /// none.
    #[default]
    Bundled,
    /// No history: every run is a new pool's first day.
    None,
    /// This trace (e.g. `bench-policy --history FILE`), lived seven times as the week before.
    File(Trace),
    /// The measured trace itself, seven times (the simulator's random tests: a history that
    /// exists for any generated trace; it sees the day it is measured on).
    ReplayItself,
}

impl HistorySource {
    /// For the report: what the week before was.
    pub fn describe(&self) -> String {
        match self {
            Self::Bundled => "the bundled week before (none for a trace of unknown origin)".into(),
            Self::None => "none".into(),
            Self::File(t) => format!("{} lived seven times", t.name),
            Self::ReplayItself => "the trace itself, seven times".into(),
        }
    }
}

/// The history of a trace: `trace`, the seven days before.
pub fn replayed(trace: &Trace, seed: u64) -> Placement {
    let before = (0..7)
        .map(|d| Day {
            epoch: HISTORY_MONDAY + d * DAY,
            trace: trace.clone(),
            seed: seed_of(seed, d),
            horizon_s: DAY,
        })
        .collect();
    Placement {
        epoch: HISTORY_MONDAY + 7 * DAY,
        before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_week_before_is_seven_days_of_other_draws_and_ends_where_the_trace_begins() {
        for name in ["workday", "night-weekend", "flash-crowd", "long-recordings"] {
            let p = placement(name, 1);
            let days: u64 = p.before.iter().map(|d| d.horizon_s / DAY).sum();
            assert_eq!(days, 7, "{name}");
            let last = p
                .before
                .iter()
                .map(|d| d.epoch + d.horizon_s)
                .max()
                .unwrap();
            assert_eq!(last, p.epoch, "{name}");
            let own = gen::bundled(1)
                .into_iter()
                .find(|t| t.name == name)
                .unwrap();
            assert!(
                p.before.iter().all(|d| d.trace.requests != own.requests),
                "{name}: the trace itself is in its history"
            );
        }
        // The trace's calendar day: Monday for a workday, Saturday for the weekend.
        assert_eq!(
            jibri_core::forecast::hour_of_week(placement("workday", 1).epoch),
            0
        );
        assert_eq!(
            jibri_core::forecast::hour_of_week(placement("night-weekend", 1).epoch),
            5 * 24
        );
    }
}
