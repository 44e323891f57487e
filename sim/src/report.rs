//! The report: one Markdown table row per trace × policy, and one SVG chart per trace
//! (demand, busy recorders and billed capacity over time, one line per policy), by hand.

use crate::run::RunResult;
use crate::workload::Workload;
use crate::Comparison;
use std::fmt::Write as _;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub trace: String,
    pub policy: String,
    pub requests: u64,
    pub refused: u64,
    pub refused_pct: f64,
    pub busy_killed: u64,
    pub instance_hours: f64,
    pub cost_ratio: f64,
    /// Instance-hours over the online floor (what a policy without foresight can reach).
    pub floor_ratio: f64,
    pub p95_recovery_s: Option<u64>,
    pub max_recovery_s: Option<u64>,
    pub scale_actions: u64,
}

pub fn rows(c: &Comparison) -> Vec<Row> {
    let bound_h = c.bound.instance_hours();
    let ratio = |h: f64| if bound_h > 0.0 { h / bound_h } else { f64::NAN };
    let floor_h = c.online_floor_s as f64 / 3600.0;
    let floor_ratio = |h: f64| if floor_h > 0.0 { h / floor_h } else { f64::NAN };
    let mut v: Vec<Row> = c
        .runs
        .iter()
        .map(|r| Row {
            trace: r.trace.clone(),
            policy: r.policy.clone(),
            requests: r.requests,
            refused: r.refused,
            refused_pct: r.refused_pct(),
            busy_killed: r.busy_killed,
            instance_hours: r.instance_hours(),
            cost_ratio: ratio(r.instance_hours()),
            floor_ratio: floor_ratio(r.instance_hours()),
            p95_recovery_s: r.p95_recovery_s,
            max_recovery_s: r.counters.refusal_recovery_s.iter().max().copied(),
            scale_actions: r.scale_actions,
        })
        .collect();
    v.push(Row {
        trace: c.workload.clone(),
        policy: format!("clairvoyant bound (boot {} s)", c.bound.boot_s),
        requests: c.runs.first().map_or(0, |r| r.requests),
        refused: 0,
        refused_pct: 0.0,
        busy_killed: 0,
        instance_hours: bound_h,
        cost_ratio: 1.0,
        floor_ratio: floor_ratio(bound_h),
        p95_recovery_s: None,
        max_recovery_s: None,
        scale_actions: c.bound.launches,
    });
    v.push(Row {
        trace: c.workload.clone(),
        policy: "online floor (no foresight: recordings + one idle recorder always)".into(),
        requests: c.runs.first().map_or(0, |r| r.requests),
        refused: 0,
        refused_pct: 0.0,
        busy_killed: 0,
        instance_hours: floor_h,
        cost_ratio: ratio(floor_h),
        floor_ratio: 1.0,
        p95_recovery_s: None,
        max_recovery_s: None,
        scale_actions: 0,
    });
    v
}

pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| trace | policy | requests | refused | refused % | busy killed | instance-hours | × bound | × online floor | p95 recovery (s) | scale actions |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {:.2} | {:.2} | {} | {} |",
            r.trace,
            r.policy,
            r.requests,
            r.refused,
            r.refused_pct,
            r.busy_killed,
            r.instance_hours,
            r.cost_ratio,
            r.floor_ratio,
            r.p95_recovery_s.map_or("–".to_string(), |s| s.to_string()),
            r.scale_actions
        );
    }
    s
}

const COLORS: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A chart of one trace: top panel billed instances per policy, bottom panel busy
/// recorders per policy, demand (recordings asked for) in black on both.
pub fn svg(work: &Workload, runs: &[RunResult]) -> String {
    let (w, panel_h, left, right, top, gap) = (1100.0, 280.0, 60.0, 230.0, 40.0, 60.0);
    let plot_w = w - left - right;
    let height = top + 2.0 * panel_h + gap + 50.0;
    let horizon = work.horizon_s.max(60) as f64;
    let demand: Vec<(u64, u32)> = (0..work.horizon_s)
        .step_by(60)
        .map(|t| (t, work.demand_at(t)))
        .collect();
    let ymax = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.billed))
        .chain(demand.iter().map(|d| d.1))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.05;
    let x = |t: u64| left + plot_w * t as f64 / horizon;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="15" font-weight="bold">{}: {} requests</text>"#,
        esc(&work.name),
        work.jobs.len()
    );
    let hours = work.horizon_s / 3600;
    let step_h = if hours <= 24 {
        2
    } else if hours <= 48 {
        4
    } else {
        6
    };
    for (panel, title) in [(0, "instances billed (capacity)"), (1, "busy recorders")] {
        let y0 = top + panel as f64 * (panel_h + gap);
        let y = |v: f64| y0 + panel_h - panel_h * v / ymax;
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{}" font-weight="bold">{title}</text>"#,
            y0 - 6.0
        );
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#999"/>"##
        );
        let ystep = ((ymax / 6.0).ceil() as u64).max(1);
        let mut v = 0;
        while (v as f64) < ymax {
            let yy = y(v as f64);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/>"##,
                left + plot_w
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{v}</text>"#,
                left - 6.0,
                yy + 4.0
            );
            v += ystep;
        }
        let mut h = 0;
        while h <= hours {
            let xx = x(h * 3600);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="{y0}" x2="{xx:.1}" y2="{}" stroke="#eee"/>"##,
                y0 + panel_h
            );
            let _ = writeln!(
                s,
                r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{}h</text>"#,
                y0 + panel_h + 16.0,
                h
            );
            h += step_h;
        }
        // A step line: a vertex only where the value changes.
        let line = |pts: &mut dyn Iterator<Item = (u64, u32)>| {
            let mut out: Vec<String> = Vec::new();
            let mut last: Option<(u64, u32)> = None;
            let mut pending_end: Option<u64> = None;
            for (t, v) in pts {
                match last {
                    Some((_, lv)) if lv == v => pending_end = Some(t),
                    Some((_, lv)) => {
                        out.push(format!("{:.1},{:.1}", x(t), y(f64::from(lv))));
                        out.push(format!("{:.1},{:.1}", x(t), y(f64::from(v))));
                        last = Some((t, v));
                        pending_end = None;
                    }
                    None => {
                        out.push(format!("{:.1},{:.1}", x(t), y(f64::from(v))));
                        last = Some((t, v));
                    }
                }
            }
            if let (Some(t), Some((_, v))) = (pending_end, last) {
                out.push(format!("{:.1},{:.1}", x(t), y(f64::from(v))));
            }
            out.join(" ")
        };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="black" stroke-width="1.5" stroke-dasharray="4 2" points="{}"/>"#,
            line(&mut demand.iter().copied())
        );
        for (k, r) in runs.iter().enumerate() {
            let pts = line(
                &mut r
                    .samples
                    .iter()
                    .map(|smp| (smp.t, if panel == 0 { smp.billed } else { smp.busy })),
            );
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.3" points="{pts}"/>"#,
                COLORS[k % COLORS.len()]
            );
        }
    }
    // Legend.
    let lx = left + plot_w + 15.0;
    let _ = writeln!(
        s,
        r#"<line x1="{lx}" y1="{top}" x2="{}" y2="{top}" stroke="black" stroke-width="1.5" stroke-dasharray="4 2"/>"#,
        lx + 20.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}">demand (recordings asked)</text>"#,
        lx + 26.0,
        top + 4.0
    );
    for (k, r) in runs.iter().enumerate() {
        let ly = top + 20.0 * (k as f64 + 1.0);
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/>"#,
            lx + 20.0,
            COLORS[k % COLORS.len()]
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 26.0,
            ly + 4.0,
            esc(&r.policy)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_a_row_per_policy_and_the_bound() {
        let p = crate::workload::ModelParams::default();
        let t = crate::trace::Trace::new(
            "tiny",
            vec![crate::trace::Request {
                start_s: 600,
                duration_s: 1200,
            }],
            Some(3 * 3600),
        );
        let w = Workload::new(&t, &p, 1);
        let c = crate::compare(&w, &p, crate::standard_policies());
        let rs = rows(&c);
        let n = crate::standard_policies().len() + 2;
        assert_eq!(rs.len(), n);
        let md = markdown(&rs);
        assert_eq!(md.lines().count(), 2 + n);
        assert!(md.contains("clairvoyant bound"));
        assert!(md.contains("online floor"));
        let chart = svg(&w, &c.runs);
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("<polyline").count(), 2 * (1 + c.runs.len()));
    }
}
