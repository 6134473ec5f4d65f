//! A latency chart as a hand-written SVG: for each scenario, p50, p99 and
//! p99.9 of every peer as bars on a log scale (latencies span µs to s).

use std::fmt::Write as _;

use crate::report::Row;

const COLORS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
const BAR_W: f64 = 12.0;
const GAP: f64 = 18.0;
const TOP: f64 = 40.0;
const PLOT_H: f64 = 300.0;
const LEFT: f64 = 70.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart for the rows of one report.
pub fn latency_chart(rows: &[Row]) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.p50_us.is_some()).collect();
    let mut scenarios: Vec<&str> = Vec::new();
    let mut peers: Vec<&str> = Vec::new();
    for r in &rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
        if !peers.contains(&r.peer.as_str()) {
            peers.push(&r.peer);
        }
    }
    // Log scale over whole decades of milliseconds covering every value.
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| [r.p50_us, r.p99_us, r.p999_us])
        .flatten()
        .filter(|v| *v > 0.0)
        .map(|us| us / 1000.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let hi = values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .log10()
        .ceil();
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (-2.0, 2.0)
    };
    let y = |ms: f64| TOP + PLOT_H - (ms.max(1e-9).log10() - lo) / (hi - lo) * PLOT_H;

    let group_w = 3.0 * (peers.len().max(1) as f64 * BAR_W + 6.0) + GAP;
    let width = LEFT + scenarios.len().max(1) as f64 * group_w + 20.0;
    let legend_y = TOP + PLOT_H + 90.0;
    let height = legend_y + 30.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14">End-to-end latency (ms, log scale): p50 · p99 · p99.9 per scenario</text>"#
    );
    // Decade grid lines and labels.
    let mut d = lo;
    while d <= hi {
        let yy = y(10f64.powf(d));
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - 10.0,
            LEFT - 6.0,
            yy + 4.0,
            10f64.powf(d)
        );
        d += 1.0;
    }
    for (gi, scenario) in scenarios.iter().enumerate() {
        let gx = LEFT + 10.0 + gi as f64 * group_w;
        for (pi, pct) in ["p50", "p99", "p99.9"].iter().enumerate() {
            let px = gx + pi as f64 * (peers.len() as f64 * BAR_W + 6.0);
            for (ki, peer) in peers.iter().enumerate() {
                let Some(row) = rows
                    .iter()
                    .find(|r| r.scenario == *scenario && r.peer == *peer)
                else {
                    continue;
                };
                let v = match pi {
                    0 => row.p50_us,
                    1 => row.p99_us,
                    _ => row.p999_us,
                };
                let Some(ms) = v.map(|us| us / 1000.0).filter(|ms| *ms > 0.0) else {
                    continue;
                };
                let top = y(ms).clamp(TOP, TOP + PLOT_H);
                let color = COLORS[ki % COLORS.len()];
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} {} {pct}: {ms:.3} ms</title></rect>"#,
                    px + ki as f64 * BAR_W,
                    BAR_W - 1.0,
                    TOP + PLOT_H - top,
                    esc(scenario),
                    esc(peer),
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{pct}</text>"#,
                px + peers.len() as f64 * BAR_W / 2.0,
                TOP + PLOT_H + 12.0
            );
        }
        let cx = gx + (group_w - GAP) / 2.0;
        let _ = writeln!(
            s,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="end" transform="rotate(-30 {cx:.1} {:.1})">{}</text>"#,
            TOP + PLOT_H + 30.0,
            TOP + PLOT_H + 30.0,
            esc(scenario)
        );
    }
    for (ki, peer) in peers.iter().enumerate() {
        let x = LEFT + ki as f64 * 120.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{legend_y:.1}">{}</text>"#,
            legend_y - 10.0,
            COLORS[ki % COLORS.len()],
            x + 16.0,
            esc(peer)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{rows, tests::result};

    #[test]
    fn chart_has_a_bar_per_peer_and_percentile() {
        let rows = rows(&[
            result("fanin-qos0", "wardmq", 100.0, 1_000.0),
            result("fanin-qos0", "mosquitto", 100.0, 2_000.0),
        ]);
        let svg = latency_chart(&rows);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 6);
        assert!(svg.contains("fanin-qos0 mosquitto p99: 2.000 ms"));
    }

    #[test]
    fn empty_chart_is_still_valid() {
        let svg = latency_chart(&[]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
