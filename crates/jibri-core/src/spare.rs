//! The spare target: how many idle recorders to keep so that a recording request finds one.
//!
//! Model (adaptive mode): recording starts arrive as a Poisson process of rate λ, estimated
//! from recent history. A recorder launched now takes `L` (boot latency) seconds to be
//! usable, so every start in the next `L` seconds must be served by a recorder that is
//! already idle or already booting. With `s` spares, all of them are served when at most
//! `s` starts arrive in `L`: the target is the smallest `s` with `P(N(L) <= s) >= p`,
//! `N(L) ~ Poisson(λL)`, clamped to `[SPARE_MIN, SPARE_MAX]` and raised to the time-of-day
//! floor. λ is the larger of the short-window and long-window rates, so a burst raises the
//! target at once and a quiet spell lowers it only slowly.

use crate::config::{Config, SpareMode};
use crate::domain::EpochSecs;
use crate::forecast::Demand;

/// Smallest `s` such that `P(Poisson(mean) <= s) >= probability` (capped at `cap`).
pub fn poisson_quantile(mean: f64, probability: f64, cap: u32) -> u32 {
    if mean.is_nan() || mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    // Sum the pmf iteratively in log space to stay finite for large means.
    let mut log_pmf = -mean; // k = 0
    let mut cdf = log_pmf.exp();
    let mut k = 0u32;
    while cdf < probability && k < cap {
        k += 1;
        log_pmf += mean.ln() - f64::from(k).ln();
        cdf += log_pmf.exp();
    }
    k
}

/// Recording starts per second over the last `window_s` seconds of `history`
/// (pairs of minute-start epoch seconds and the starts counted in that minute).
pub fn start_rate(history: &[(EpochSecs, u32)], now: EpochSecs, window_s: u64) -> f64 {
    let from = now.saturating_sub(window_s);
    let n: u64 = history
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(_, c)| u64::from(*c))
        .sum();
    n as f64 / window_s as f64
}

/// The controller's schedule period: a recorder launched at the next tick, not this one,
/// is the first that could still be late, so every horizon adds one period.
pub const TICK_PERIOD_S: u64 = 60;

/// Why the spare target has its value: printed in the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpareTarget {
    pub target: u32,
    /// Starts per minute used by the adaptive model beyond what the forecast expected (all
    /// of them without a forecast; 0 in fixed mode).
    pub rate_per_min: f64,
    pub floor: u32,
    /// Starts the learned demand expects over the horizon (`None`: nothing learned / off);
    /// a new pool's stand-in level carried to an hour the prior weighs differently counts at
    /// its plausible most
    /// ([`crate::forecast::Demand::expected_plausible`]).
    pub forecast: Option<f64>,
    /// How many starts the prior's minute profile counts as (one day of this pool, fading
    /// once more is counted: [`crate::forecast::Demand::minute_prior_weight`]); `None`
    /// with the forecast off.
    pub prior_weight: Option<f64>,
    /// Starts expected from conferences that just appeared.
    pub lead: f64,
    /// Seconds the spare must cover: a boot latency plus one tick.
    pub horizon_s: u64,
    /// The target from recent rates (and the floor) alone, without the forecast and the
    /// lead: what scale-in's hysteresis remembers. A forecast burst that has passed is
    /// known to have passed; a rate that dipped for a tick is not.
    pub reactive: u32,
}

/// What the spare target is computed from, besides the configuration.
#[derive(Debug, Clone, Copy)]
pub struct SpareInputs<'a> {
    /// `(minute start, starts)` of the recent past.
    pub history: &'a [(EpochSecs, u32)],
    pub now: EpochSecs,
    /// Boot latency to cover (cold, or warm when the warm pool can serve the scale-out).
    pub boot_s: u64,
    /// The learned demand, when `FORECAST` is on.
    pub demand: Option<&'a Demand>,
    /// Starts expected from new conferences (leading signal), 0 when off.
    pub lead: f64,
    /// A refusal was seen recently: the last two minutes' rate counts too.
    pub burst: bool,
}

pub fn spare_target(cfg: &Config, i: SpareInputs<'_>) -> SpareTarget {
    let minute_of_day = ((i.now % 86_400) / 60) as u32;
    let floor = cfg
        .spare_floors
        .iter()
        .filter(|w| w.contains(minute_of_day))
        .map(|w| w.floor)
        .max()
        .unwrap_or(0);
    let horizon_s = i.boot_s + TICK_PERIOD_S;
    let forecast = i
        .demand
        .and_then(|d| d.expected_plausible(i.now, horizon_s, cfg.forecast_prior));
    let (base, reactive, rate) = match cfg.spare {
        SpareMode::Fixed(n) => (n, n, 0.0),
        SpareMode::Adaptive {
            min,
            max,
            probability,
        } => {
            // With a forecast, the rates count only the starts it did not expect: the
            // bursts it foresaw are covered by the forecast itself, and a rate raised by
            // them would keep their spares for a whole window after they passed.
            // The latest start is not evidence of the rate: the window ends because of it
            // (it is what made the count look high), and the recorder it took is replaced
            // already (occupied + spare). Counted, one start in a quiet hour doubles the
            // short window's rate and keeps two more spares for a window (issue 15.2).
            let rate_over = |window_s: u64| {
                let seen =
                    (start_rate(i.history, i.now, window_s) * window_s as f64 - 1.0).max(0.0);
                let expected = i
                    .demand
                    .and_then(|d| {
                        d.expected(i.now.saturating_sub(window_s), window_s, cfg.forecast_prior)
                    })
                    .unwrap_or(0.0);
                (seen - expected).max(0.0) / window_s as f64
            };
            let mut rate =
                rate_over(cfg.rate_short_window_s).max(rate_over(cfg.rate_long_window_s));
            if i.burst {
                rate = rate.max(rate_over(2 * TICK_PERIOD_S));
            }
            let reactive = rate * horizon_s as f64;
            // New conferences announce the same recordings the forecast expects: the
            // larger of the two counts, not their sum.
            let mean = reactive + forecast.unwrap_or(0.0).max(i.lead);
            let s = poisson_quantile(mean, probability, max);
            (
                s.clamp(min, max),
                poisson_quantile(reactive, probability, max).clamp(min, max),
                rate,
            )
        }
    };
    SpareTarget {
        target: base.max(floor),
        rate_per_min: rate * 60.0,
        floor,
        forecast,
        prior_weight: i.demand.map(|d| d.minute_prior_weight(cfg.forecast_prior)),
        lead: i.lead,
        horizon_s,
        reactive: reactive.max(floor),
    }
}

/// Starts the warm pool should be able to serve: the forecast over `horizon_s` at the spare
/// probability (0 when nothing is learned or the forecast is off).
pub fn warm_target(
    cfg: &Config,
    demand: Option<&Demand>,
    now: EpochSecs,
    horizon_s: u64,
    cap: u32,
) -> u32 {
    let p = match cfg.spare {
        SpareMode::Adaptive { probability, .. } => probability,
        SpareMode::Fixed(_) => 0.99,
    };
    let mean = demand
        .and_then(|d| d.expected_plausible(now, horizon_s, cfg.forecast_prior))
        .unwrap_or(0.0);
    poisson_quantile(mean, p, cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config_with;

    fn inputs(history: &[(EpochSecs, u32)], now: EpochSecs) -> SpareInputs<'_> {
        SpareInputs {
            history,
            now,
            boot_s: 240,
            demand: None,
            lead: 0.0,
            burst: false,
        }
    }

    #[test]
    fn a_refusal_makes_the_last_two_minutes_count() {
        let c = config_with(&[]).unwrap();
        let now = 1_000_000 - 1_000_000 % 60;
        let h = [(now - 60, 12)];
        let calm = spare_target(&c, inputs(&h, now)).target;
        let burst = spare_target(
            &c,
            SpareInputs {
                burst: true,
                ..inputs(&h, now)
            },
        )
        .target;
        // 12 starts in 2 minutes over 5 minutes: mean 30, against 12/600 s * 300 s = 6.
        assert!(burst >= 35 && calm <= 12, "{calm} {burst}");
    }

    #[test]
    fn the_forecast_and_the_lead_raise_the_spare() {
        use crate::forecast::Demand;
        let c = config_with(&[]).unwrap();
        let monday = 1_794_787_200;
        let mut d = Demand::default();
        let mut t = monday;
        while t < monday + 86_400 {
            d.observe(t, if t % 86_400 == 9 * 3600 + 60 { 20 } else { 0 }, 0, 0.3);
            t += 60;
        }
        let before_nine = monday + 86_400 + 9 * 3600 - 180;
        let with = spare_target(
            &c,
            SpareInputs {
                demand: Some(&d),
                ..inputs(&[], before_nine)
            },
        );
        assert!(with.target >= 15, "{with:?}");
        let without = spare_target(&c, inputs(&[], before_nine));
        assert_eq!(without.target, 1);
        let lead = spare_target(
            &c,
            SpareInputs {
                lead: 5.0,
                ..inputs(&[], before_nine)
            },
        );
        assert!(lead.target >= 9, "{lead:?}");
        assert!(warm_target(&c, Some(&d), before_nine, 1800, 100) >= with.target);
    }

    #[test]
    fn quantile_matches_known_poisson_values() {
        // Poisson(1): P(N<=3) = 0.981, P(N<=4) = 0.9963.
        assert_eq!(poisson_quantile(1.0, 0.98, 100), 3);
        assert_eq!(poisson_quantile(1.0, 0.99, 100), 4);
        assert_eq!(poisson_quantile(0.0, 0.99, 100), 0);
        // Large mean stays finite and near mean + 2.33 sd.
        let q = poisson_quantile(400.0, 0.99, 10_000);
        assert!((440..=450).contains(&q), "{q}");
        assert_eq!(poisson_quantile(400.0, 0.99, 20), 20);
    }

    #[test]
    fn no_history_gives_the_minimum_spare() {
        let c = config_with(&[]).unwrap();
        assert_eq!(spare_target(&c, inputs(&[], 1_000_000)).target, 1);
    }

    /// Issue 15.2: one start in a quiet hour is not a rate. Counted, it made the short
    /// window's rate 0.1/min (mean 0.5 over a boot: 3 spares for ten minutes).
    #[test]
    fn a_lone_start_in_a_quiet_hour_keeps_the_minimum_spare() {
        let c = config_with(&[]).unwrap();
        let now = 1_000_000 - 1_000_000 % 60;
        for history in [vec![(now - 60, 1)], vec![(now - 3000, 1), (now - 60, 1)]] {
            let t = spare_target(&c, inputs(&history, now));
            assert_eq!((t.target, t.reactive), (1, 1), "{history:?}: {t:?}");
        }
        // Two starts within the short window are a rate again.
        let t = spare_target(&c, inputs(&[(now - 300, 1), (now - 60, 1)], now));
        assert!(t.target >= 2, "{t:?}");
    }

    #[test]
    fn a_burst_raises_the_spare_at_once() {
        let c = config_with(&[]).unwrap();
        let now = 1_000_000 - 1_000_000 % 60;
        // 10 starts in the last minute: short-window rate 1/min, boot 4 min -> mean 4.
        let t = spare_target(&c, inputs(&[(now - 60, 10)], now));
        assert!(t.target >= 9, "{t:?}");
    }

    #[test]
    fn fixed_mode_and_time_of_day_floor() {
        let c = config_with(&[
            ("SPARE_MODE", "fixed"),
            ("SPARE_FIXED", "2"),
            ("SPARE_FLOOR_SCHEDULE", "08:00-18:00=5"),
        ])
        .unwrap();
        let day = 20_000 * 86_400;
        assert_eq!(spare_target(&c, inputs(&[], day + 9 * 3600)).target, 5);
        assert_eq!(spare_target(&c, inputs(&[], day + 20 * 3600)).target, 2);
    }
}
