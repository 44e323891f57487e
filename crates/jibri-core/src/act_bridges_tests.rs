//! The act executor on a bridge pool's plans, through a recording fake of [`Effects`]:
//! drains, undrains (and their tag), and the re-probe of a victim bridge.

use crate::act::*;
use crate::config::tests::config_with;
use crate::domain::*;
use crate::plan::plan;
use crate::plan_bridges_tests::{bridge, state as settled, NOW};
use crate::testkit::*;
use std::sync::Mutex;

/// Records every call; probes answer from a table; undrain may be made to fail.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    probes: Mutex<Vec<(InstanceId, Probe)>>,
    undrain_fails: bool,
}

impl Fake {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Effects for Fake {
    async fn probe(&self, r: &RecorderAddress) -> Probe {
        let probes = self.probes.lock().unwrap();
        probes
            .iter()
            .find(|(id, _)| id == &r.id)
            .map(|(_, p)| p.clone())
            .unwrap_or(Probe::Failed(ProbeFailure::Timeout))
    }
    async fn graceful_shutdown(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        self.log(format!("drain {}", r.id));
        Ok(())
    }
    async fn undrain(&self, r: &RecorderAddress) -> Result<(), ProbeFailure> {
        self.log(format!("undrain {}", r.id));
        if self.undrain_fails {
            Err(ProbeFailure::HttpStatus(500))
        } else {
            Ok(())
        }
    }
    async fn mark_drain_requested(&self, ids: &[InstanceId], _: EpochSecs) -> PortResult<()> {
        self.log(format!("tag {ids:?}"));
        Ok(())
    }
    async fn clear_drain_requested(&self, ids: &[InstanceId]) -> PortResult<()> {
        self.log(format!("untag {ids:?}"));
        Ok(())
    }
    async fn set_termination_protection(&self, _: &InstanceId, _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn set_protection(&self, _: &str, ids: &[InstanceId], on: bool) -> PortResult<()> {
        self.log(format!("protect {on} {ids:?}"));
        Ok(())
    }
    async fn set_desired(&self, _: &str, d: u32) -> PortResult<()> {
        self.log(format!("desired {d}"));
        Ok(())
    }
    async fn complete(&self, _: &ActionRef, _: LifecycleResult) -> PortResult<()> {
        Ok(())
    }
    async fn heartbeat(&self, _: &ActionRef) -> PortResult<()> {
        Ok(())
    }
    async fn terminate(&self, _: &InstanceId, _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn put_warm_pool(&self, _: &str, _: u32) -> PortResult<()> {
        Ok(())
    }
}

/// Effects that implement nothing of a bridge: the trait's defaults.
struct JibriOnly;

impl Effects for JibriOnly {
    async fn probe(&self, _: &RecorderAddress) -> Probe {
        Probe::NotProbed
    }
    async fn graceful_shutdown(&self, _: &RecorderAddress) -> Result<(), ProbeFailure> {
        Ok(())
    }
    async fn mark_drain_requested(&self, _: &[InstanceId], _: EpochSecs) -> PortResult<()> {
        Ok(())
    }
    async fn set_termination_protection(&self, _: &InstanceId, _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn set_protection(&self, _: &str, _: &[InstanceId], _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn set_desired(&self, _: &str, _: u32) -> PortResult<()> {
        Ok(())
    }
    async fn complete(&self, _: &ActionRef, _: LifecycleResult) -> PortResult<()> {
        Ok(())
    }
    async fn heartbeat(&self, _: &ActionRef) -> PortResult<()> {
        Ok(())
    }
    async fn terminate(&self, _: &InstanceId, _: bool) -> PortResult<()> {
        Ok(())
    }
    async fn put_warm_pool(&self, _: &str, _: u32) -> PortResult<()> {
        Ok(())
    }
}

fn act_on(fx: &impl Effects, obs: &Observation, low_since: Option<EpochSecs>) -> ActReport {
    let cfg = config_with(&[("POOL_KIND", "jvb"), ("FORECAST", "off")]).unwrap();
    let (p, _) = plan(obs, &settled(obs, low_since), &cfg, NOW);
    let hooks = [
        cfg.launch_hook_name.as_str(),
        cfg.terminate_hook_name.as_str(),
    ];
    let input = ActInput::new("jibri-pool".into(), &p, obs, &hooks, &cfg, NOW);
    block_on(execute(fx, input))
}

#[test]
fn the_executor_undrains_then_clears_the_tag() {
    let obs = observation(
        group(1, 10, 2),
        vec![bridge("i-a", 900, 9, false), bridge("i-b", 100, 1, true)],
    );
    let fx = Fake::default();
    let r = act_on(&fx, &obs, None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let calls = fx.calls();
    let undrain = calls
        .iter()
        .position(|c| c == "undrain i-b")
        .expect("undrained");
    let untag = calls
        .iter()
        .position(|c| c.starts_with("untag"))
        .expect("untagged");
    assert!(undrain < untag, "{calls:?}");
    assert!(r.calls.iter().any(|c| c == "undrain(i-b)"));
}

#[test]
fn a_failed_undrain_keeps_the_tag_and_is_an_error() {
    let obs = observation(
        group(1, 10, 2),
        vec![bridge("i-a", 900, 9, false), bridge("i-b", 100, 1, true)],
    );
    let fx = Fake {
        undrain_fails: true,
        ..Fake::default()
    };
    let r = act_on(&fx, &obs, None);
    assert!(
        r.errors.iter().any(|e| e.contains("undrain(i-b)")),
        "{:?}",
        r.errors
    );
    assert!(!fx.calls().iter().any(|c| c.starts_with("untag")));
}

#[test]
fn effects_without_a_bridge_refuse_to_undrain_or_untag() {
    let r = RecorderAddress {
        id: InstanceId::from("i-a"),
        private_ip: None,
    };
    assert!(block_on(JibriOnly.undrain(&r)).is_err());
    assert!(block_on(JibriOnly.clear_drain_requested(&[InstanceId::from("i-a")])).is_err());
}

#[test]
fn a_drain_is_the_effects_graceful_shutdown_and_tags_the_bridge() {
    // Mean 0.1 below 0.2 for an hour: the least-loaded bridge is drained, never removed.
    let obs = observation(
        group(1, 10, 3),
        vec![
            bridge("i-a", 150, 3, false),
            bridge("i-b", 50, 1, false),
            bridge("i-c", 100, 2, false),
        ],
    );
    let fx = Fake::default();
    let r = act_on(&fx, &obs, Some(NOW - 3600));
    assert_eq!(
        fx.calls()
            .iter()
            .filter(|c| c.starts_with("drain"))
            .collect::<Vec<_>>(),
        ["drain i-b"]
    );
    assert!(fx.calls().iter().any(|c| c.starts_with("tag")));
    assert!(
        !fx.calls().iter().any(|c| c.starts_with("desired")),
        "{:?}",
        r.calls
    );
}

#[test]
fn a_victim_bridge_that_took_a_conference_since_the_plan_is_kept() {
    // Planned as drained and empty; by the act phase's re-probe it hosts a conference (a
    // drained bridge keeps accepting participants of its own conferences, and an operator
    // may have undrained it): kept, nothing unprotected, desired unchanged.
    let obs = observation(
        group(1, 10, 2),
        vec![bridge("i-a", 300, 3, false), bridge("i-b", 0, 0, true)],
    );
    let fx = Fake::default();
    fx.probes
        .lock()
        .unwrap()
        .push((InstanceId::from("i-b"), bridge("i-b", 30, 1, true).probe));
    let r = act_on(&fx, &obs, None);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("i-b: victim no longer idle")),
        "{:?}",
        r.notes
    );
    assert!(!fx
        .calls()
        .iter()
        .any(|c| c.starts_with("desired") || c.starts_with("protect false")));
    // Still empty: unprotected, then desired lowered.
    let fx = Fake::default();
    fx.probes
        .lock()
        .unwrap()
        .push((InstanceId::from("i-b"), bridge("i-b", 0, 0, true).probe));
    act_on(&fx, &obs, None);
    let calls = fx.calls();
    let at = |f: &dyn Fn(&String) -> bool| {
        calls
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("{calls:?}"))
    };
    let unprotect = at(&|c| c.starts_with("protect false"));
    let desired = at(&|c| c == "desired 1");
    assert!(unprotect < desired);
}
