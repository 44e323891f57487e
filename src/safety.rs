//! The group's safety configuration, checked every tick rather than assumed.
//!
//! The promise "no busy recorder is killed" rests on settings outside this product: a
//! terminate hook that AWS runs (found by the configured name: another tool's hook on the
//! same group is never ours to complete), whose `DefaultResult` is `ABANDON` (a timed-out
//! hold must not `CONTINUE`), heartbeats more frequent than its `HeartbeatTimeout`, a hold
//! AWS will allow, and an instance lifecycle policy that retains on `ABANDON`. Any drift
//! stops every removal the controller starts (scale-in and replacement), raises the
//! `ConfigDrift` metric and logs the fix; the hooks already held keep being heartbeated.

use crate::config::{Config, AWS_MAX_HOOK_HOLD_S};
use crate::domain::ConfigDrift;
use crate::ports::{GroupSnapshot, TERMINATING};

/// Every drift of the group's safety configuration from what this product needs.
pub fn check_group(g: &GroupSnapshot, cfg: &Config) -> Vec<ConfigDrift> {
    let mut drift = Vec::new();
    match g.hooks.iter().find(|h| h.name == cfg.terminate_hook_name) {
        None => drift.push(ConfigDrift::TerminateHookMissing {
            name: cfg.terminate_hook_name.clone(),
            others: g.hooks.iter().map(|h| h.name.clone()).collect(),
        }),
        Some(h) if h.transition != TERMINATING => {
            drift.push(ConfigDrift::TerminateHookWrongTransition {
                name: h.name.clone(),
                transition: h.transition.clone(),
            })
        }
        Some(h) => {
            if h.default_result != "ABANDON" {
                drift.push(ConfigDrift::DefaultResultNotAbandon {
                    name: h.name.clone(),
                    found: h.default_result.clone(),
                });
            }
            if cfg.heartbeat_interval_s >= h.heartbeat_timeout_s {
                drift.push(ConfigDrift::HeartbeatTooRare {
                    interval_s: cfg.heartbeat_interval_s,
                    hook_timeout_s: h.heartbeat_timeout_s,
                });
            }
            let cap = aws_hold_cap_s(h.heartbeat_timeout_s);
            if cfg.max_hook_hold_s > cap {
                drift.push(ConfigDrift::HoldBeyondAwsCap {
                    max_hold_s: cfg.max_hook_hold_s,
                    cap_s: cap,
                });
            }
        }
    }
    if !g.retain_on_abandon {
        drift.push(ConfigDrift::NoRetainOnAbandon);
    }
    drift
}

/// AWS's limit on one lifecycle action's total hold: min(48 h, 100 × HeartbeatTimeout)
/// (Amazon EC2 Auto Scaling User Guide, "Lifecycle hooks": the global timeout).
pub fn aws_hold_cap_s(heartbeat_timeout_s: u64) -> u64 {
    AWS_MAX_HOOK_HOLD_S.min(heartbeat_timeout_s.saturating_mul(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ports::{Hook, LAUNCHING};

    fn config_with(vars: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let mut m: std::collections::BTreeMap<String, String> =
            [("ASG_NAMES".to_string(), "jibri-pool".to_string())].into();
        for (k, v) in vars {
            m.insert(k.to_string(), v.to_string());
        }
        Config::from_map(&m)
    }

    fn hook(name: &str, transition: &str, timeout: u64, default: &str) -> Hook {
        Hook {
            name: name.into(),
            transition: transition.into(),
            heartbeat_timeout_s: timeout,
            default_result: default.into(),
        }
    }

    fn group(hooks: Vec<Hook>, retain: bool) -> GroupSnapshot {
        GroupSnapshot {
            name: "jibri-pool".into(),
            retain_on_abandon: retain,
            hooks,
            ..GroupSnapshot::default()
        }
    }

    fn ours(timeout: u64, default: &str) -> Hook {
        hook("jibri-autoscaler-terminate", TERMINATING, timeout, default)
    }

    #[test]
    fn the_stacks_own_settings_pass() {
        let cfg = config_with(&[]).unwrap();
        assert_eq!(
            check_group(&group(vec![ours(900, "ABANDON")], true), &cfg),
            vec![]
        );
    }

    #[test]
    fn each_drift_is_found_and_named() {
        let cfg = config_with(&[
            ("MAX_HOOK_HOLD_S", "172800"),
            ("HEARTBEAT_INTERVAL_S", "900"),
        ])
        .unwrap();
        let cases: Vec<(GroupSnapshot, ConfigDrift)> = vec![
            (
                group(vec![hook("other-tool", TERMINATING, 900, "ABANDON")], true),
                ConfigDrift::TerminateHookMissing {
                    name: "jibri-autoscaler-terminate".into(),
                    others: vec!["other-tool".into()],
                },
            ),
            (
                group(
                    vec![hook(
                        "jibri-autoscaler-terminate",
                        LAUNCHING,
                        900,
                        "ABANDON",
                    )],
                    true,
                ),
                ConfigDrift::TerminateHookWrongTransition {
                    name: "jibri-autoscaler-terminate".into(),
                    transition: LAUNCHING.into(),
                },
            ),
            (
                group(vec![ours(900, "CONTINUE")], true),
                ConfigDrift::DefaultResultNotAbandon {
                    name: "jibri-autoscaler-terminate".into(),
                    found: "CONTINUE".into(),
                },
            ),
            (
                group(vec![ours(900, "ABANDON")], true),
                ConfigDrift::HeartbeatTooRare {
                    interval_s: 900,
                    hook_timeout_s: 900,
                },
            ),
            (
                group(vec![ours(1000, "ABANDON")], true),
                ConfigDrift::HoldBeyondAwsCap {
                    max_hold_s: 172_800,
                    cap_s: 100_000,
                },
            ),
            (
                group(vec![ours(7200, "ABANDON")], false),
                ConfigDrift::NoRetainOnAbandon,
            ),
        ];
        for (g, want) in cases {
            let got = check_group(&g, &cfg);
            assert!(got.contains(&want), "{want:?} not in {got:?}");
            assert!(!want.to_string().is_empty());
        }
    }

    #[test]
    fn the_hold_cap_is_the_smaller_of_48h_and_100_heartbeat_timeouts() {
        assert_eq!(aws_hold_cap_s(900), 90_000);
        assert_eq!(aws_hold_cap_s(7200), 172_800);
        assert_eq!(aws_hold_cap_s(u64::MAX), 172_800);
    }
}
