//! A small deterministic PRNG: xoshiro256** seeded through splitmix64, plus the few
//! distributions the model needs. No `rand` crate: the simulator must give the same run for
//! the same seed on every machine and every version of every dependency.
//!
//! Streams are derived from `(seed, stream, index)`, so the k-th launch of every policy draws
//! the same boot latency and the n-th request the same finalize time: policies are compared
//! on identical luck.

/// splitmix64 (Steele, Lea, Flood 2014): the recommended seeder of the xoshiro family.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** (Blackman, Vigna): fast, 256 bits of state, good statistical quality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

/// Independent random streams of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Per request: finalize time, UNHEALTHY after the session.
    Request = 1,
    /// Per launch ordinal: boot latency.
    Boot = 2,
    /// The Auto Scaling group's choice among unprotected instances.
    AsgVictim = 3,
    /// Trace generators.
    Trace = 4,
    /// Property tests' own parameters.
    Test = 5,
    /// Per request: when its conference (and a companion conference that records
    /// nothing) began, ahead of the recording.
    Conference = 6,
    /// Per warm start ordinal: warm boot latency.
    WarmBoot = 7,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// The generator of item `index` of `stream` under `seed`.
    pub fn derive(seed: u64, stream: Stream, index: u64) -> Self {
        let mut sm = seed ^ (stream as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let a = splitmix64(&mut sm);
        let mut sm2 = a ^ index.wrapping_mul(0xA076_1D64_78BD_642F);
        Self::new(splitmix64(&mut sm2))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) (n > 0), by Lemire's multiply-shift (bias below 2^-64 · n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box–Muller; one of the pair is dropped for simplicity).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and log-space standard deviation.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Poisson by Knuth's product method (fine for the small means of the generators).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 500.0 {
            // Normal approximation, to keep the product method's exp(-mean) representable.
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let l = (-mean).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.f64();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // Reference values of splitmix64 seeded with 1234567 (from the public C version).
        let mut s = 1_234_567u64;
        assert_eq!(splitmix64(&mut s), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(&mut s), 3_203_168_211_198_807_973);
    }

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(7, Stream::Boot, 3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(7, Stream::Boot, 3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut c = Rng::derive(7, Stream::Boot, 4);
        assert_ne!(a[0], c.next_u64());
        let mut d = Rng::derive(7, Stream::Request, 3);
        assert_ne!(a[0], d.next_u64());
    }

    #[test]
    fn distributions_have_the_right_centre() {
        let mut r = Rng::new(42);
        let n = 20_000;
        let mean_u: f64 = (0..n).map(|_| r.f64()).sum::<f64>() / n as f64;
        assert!((mean_u - 0.5).abs() < 0.01, "{mean_u}");
        let mut ln: Vec<f64> = (0..n).map(|_| r.lognormal(180.0, 0.3)).collect();
        ln.sort_by(f64::total_cmp);
        let median = ln[n / 2];
        assert!((median - 180.0).abs() < 6.0, "{median}");
        let mean_p: f64 = (0..n).map(|_| r.poisson(4.0) as f64).sum::<f64>() / n as f64;
        assert!((mean_p - 4.0).abs() < 0.1, "{mean_p}");
        let mean_e: f64 = (0..n).map(|_| r.exp(90.0)).sum::<f64>() / n as f64;
        assert!((mean_e - 90.0).abs() < 3.0, "{mean_e}");
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert!((0..1000).all(|_| (3..=9).contains(&r.range(3, 9))));
    }
}
