//! Whether and when a failed AWS call is tried again: capped exponential backoff with
//! jitter, longer for throttling, never for an error that a retry cannot fix. The one
//! retry layer of the uploader (the SDK's own retries are off, so they do not multiply).
//!
//! The jitter is an input: the decision is a pure function of (attempt, error, jitter).

use std::time::Duration;

/// What kind of failure an AWS call ended with, classified once by the adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// `SlowDown`, `503`, `ThrottlingException`, `RequestLimitExceeded`...
    Throttled,
    /// 500, 502, 504, `InternalError`: S3 asks clients to retry these.
    Server,
    /// No response: connection refused or reset, DNS, TLS.
    Transport,
    /// No response within the attempt timeout.
    Timeout,
    /// The multipart upload is gone (aborted, expired or completed): start over.
    NoSuchUpload,
    /// The object or bucket does not exist (or, without `s3:ListBucket`, may not be read).
    NotFound,
    /// A create-only write (`If-None-Match: *`) found an object at the key already
    /// (`412 PreconditionFailed`): nothing was written. Whether that object is this very
    /// file (an earlier attempt whose answer was lost) is for the caller to check.
    AlreadyExists,
    /// The request was refused for good: access denied, bad request, bad digest...
    Rejected,
}

impl FailureKind {
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Server | Self::Transport | Self::Timeout
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts of one call in all, the first included (>= 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base: Duration,
    /// Longest single wait.
    pub cap: Duration,
}

/// Throttling waits this many times longer: S3 answers SlowDown when a prefix is over its
/// request rate, and hammering it again at once only prolongs that.
pub const THROTTLE_FACTOR: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAfter(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// After attempt number `attempt` (1-based) failed with `kind`: try again after a wait,
    /// or give up. `jitter` in [0, 1) spreads the wait over [½, 1] of the backoff ("equal
    /// jitter"), so retries of concurrent parts do not arrive together yet never wait 0.
    pub fn decide(&self, attempt: u32, kind: FailureKind, jitter: f64) -> Next {
        if !kind.is_retryable() || attempt >= self.max_attempts {
            return Next::GiveUp;
        }
        let factor = if kind == FailureKind::Throttled {
            THROTTLE_FACTOR
        } else {
            1
        };
        let exp = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        let backoff = self
            .base
            .saturating_mul(exp)
            .saturating_mul(factor)
            .min(self.cap);
        let j = jitter.clamp(0.0, 1.0);
        Next::RetryAfter(backoff.mul_f64(0.5 + j / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }

    #[test]
    fn server_errors_back_off_exponentially_up_to_the_cap() {
        let p = policy();
        let waits: Vec<_> = (1..5)
            .map(|a| p.decide(a, FailureKind::Server, 1.0))
            .collect();
        assert_eq!(
            waits,
            vec![
                Next::RetryAfter(Duration::from_millis(100)),
                Next::RetryAfter(Duration::from_millis(200)),
                Next::RetryAfter(Duration::from_millis(400)),
                Next::RetryAfter(Duration::from_millis(800)),
            ]
        );
        assert_eq!(
            p.decide(5, FailureKind::Server, 1.0),
            Next::GiveUp,
            "five attempts in all"
        );
    }

    #[test]
    fn throttling_waits_longer_and_still_respects_the_cap() {
        let p = policy();
        assert_eq!(
            p.decide(1, FailureKind::Throttled, 1.0),
            Next::RetryAfter(Duration::from_millis(400))
        );
        assert_eq!(
            p.decide(4, FailureKind::Throttled, 1.0),
            Next::RetryAfter(Duration::from_secs(2))
        );
    }

    #[test]
    fn jitter_spreads_between_half_and_all_of_the_backoff() {
        let p = policy();
        assert_eq!(
            p.decide(2, FailureKind::Transport, 0.0),
            Next::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(
            p.decide(2, FailureKind::Timeout, 0.5),
            Next::RetryAfter(Duration::from_millis(150))
        );
        assert_eq!(
            p.decide(2, FailureKind::Timeout, 7.0),
            Next::RetryAfter(Duration::from_millis(200)),
            "clamped"
        );
    }

    #[test]
    fn errors_a_retry_cannot_fix_are_not_retried() {
        let p = policy();
        for kind in [
            FailureKind::Rejected,
            FailureKind::NotFound,
            FailureKind::NoSuchUpload,
            FailureKind::AlreadyExists,
        ] {
            assert_eq!(p.decide(1, kind, 0.3), Next::GiveUp, "{kind:?}");
        }
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let p = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };
        assert_eq!(p.decide(1, FailureKind::Server, 0.3), Next::GiveUp);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            ..policy()
        };
        assert_eq!(
            p.decide(1_000, FailureKind::Throttled, 1.0),
            Next::RetryAfter(Duration::from_secs(2))
        );
    }
}
