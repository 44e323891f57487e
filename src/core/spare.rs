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
    let n: u64 = history.iter().filter(|(t, _)| *t >= from).map(|(_, c)| u64::from(*c)).sum();
    n as f64 / window_s as f64
}

/// Why the spare target has its value: printed in the plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpareTarget {
    pub target: u32,
    /// Starts per minute used by the adaptive model (0 in fixed mode).
    pub rate_per_min: f64,
    pub floor: u32,
}

pub fn spare_target(cfg: &Config, history: &[(EpochSecs, u32)], now: EpochSecs) -> SpareTarget {
    let minute_of_day = ((now % 86_400) / 60) as u32;
    let floor = cfg.spare_floors.iter().filter(|w| w.contains(minute_of_day)).map(|w| w.floor).max().unwrap_or(0);
    let (base, rate) = match cfg.spare {
        SpareMode::Fixed(n) => (n, 0.0),
        SpareMode::Adaptive { min, max, probability } => {
            let rate = start_rate(history, now, cfg.rate_short_window_s)
                .max(start_rate(history, now, cfg.rate_long_window_s));
            let s = poisson_quantile(rate * cfg.boot_latency_s as f64, probability, max);
            (s.clamp(min, max), rate)
        }
    };
    SpareTarget { target: base.max(floor), rate_per_min: rate * 60.0, floor }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::config_with;

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
        assert_eq!(spare_target(&c, &[], 1_000_000).target, 1);
    }

    #[test]
    fn a_burst_raises_the_spare_at_once() {
        let c = config_with(&[]).unwrap();
        let now = 1_000_000 - 1_000_000 % 60;
        // 10 starts in the last minute: short-window rate 1/min, boot 4 min -> mean 4.
        let t = spare_target(&c, &[(now - 60, 10)], now);
        assert!(t.target >= 9, "{t:?}");
    }

    #[test]
    fn fixed_mode_and_time_of_day_floor() {
        let c = config_with(&[("SPARE_MODE", "fixed"), ("SPARE_FIXED", "2"), ("SPARE_FLOOR_SCHEDULE", "08:00-18:00=5")]).unwrap();
        let day = 20_000 * 86_400;
        assert_eq!(spare_target(&c, &[], day + 9 * 3600).target, 5);
        assert_eq!(spare_target(&c, &[], day + 20 * 3600).target, 2);
    }
}
