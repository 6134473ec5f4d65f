//! Line charts drawn as SVG on the server, with alarm spans marked on the
//! same time axis. Presentation attributes only (no `style`), so the
//! content security policy needs no inline-style exception.

use maud::{html, Markup};

use super::layout::time_ms;

const W: f64 = 640.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 24.0;

/// An alarm on the time axis: from `start` to `end` (still open: `None`).
pub struct Mark {
    pub start: u64,
    pub end: Option<u64>,
    pub label: String,
}

/// A chart of `points` (epoch ms, value) between `t0` and `t1`.
pub fn line(title: &str, points: &[(u64, f64)], marks: &[Mark], t0: u64, t1: u64) -> Markup {
    let t1 = t1.max(t0 + 1);
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max <= 0.0 { 1.0 } else { nice(max) };
    let x = |t: u64| LEFT + (t.saturating_sub(t0) as f64 / (t1 - t0) as f64) * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - v / top) * (H - TOP - BOTTOM);
    let path: String = points
        .iter()
        .filter(|p| p.0 >= t0 && p.0 <= t1)
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                x(p.0),
                y(p.1)
            )
        })
        .collect();
    html! {
        figure class="chart" {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
                @for m in marks {
                    @let (a, b) = (x(m.start.max(t0)), x(m.end.unwrap_or(t1).min(t1)));
                    rect class="alarm" x=(format!("{a:.1}")) y=(TOP) width=(format!("{:.1}", (b - a).max(2.0)))
                        height=(H - TOP - BOTTOM) fill="#d9534f" fill-opacity="0.18" {
                        title { (m.label) }
                    }
                    line x1=(format!("{a:.1}")) x2=(format!("{a:.1}")) y1=(TOP) y2=(H - BOTTOM)
                        stroke="#d9534f" stroke-width="1.5" {}
                }
                @for i in 0..=4 {
                    @let v = top * f64::from(i) / 4.0;
                    line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{:.1}", y(v))) y2=(format!("{:.1}", y(v)))
                        stroke="#e3e6ea" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(format!("{:.1}", y(v) + 4.0)) text-anchor="end" font-size="11" fill="#667" { (short(v)) }
                }
                text x=(LEFT) y=(H - 6.0) font-size="11" fill="#667" { (time_ms(t0)) }
                text x=(W - RIGHT) y=(H - 6.0) font-size="11" fill="#667" text-anchor="end" { (time_ms(t1)) }
                @if path.is_empty() {
                    text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" font-size="12" fill="#889" { "no data in this window" }
                } @else {
                    path d=(path) fill="none" stroke="#2f6fdf" stroke-width="2" {}
                    @for p in points.iter().filter(|p| p.0 >= t0 && p.0 <= t1) {
                        circle cx=(format!("{:.1}", x(p.0))) cy=(format!("{:.1}", y(p.1))) r="2.5" fill="#2f6fdf" {
                            title { (time_ms(p.0)) ": " (short(p.1)) }
                        }
                    }
                }
            }
        }
    }
}

/// The next "round" number at or above `v` (1, 2, 5 × 10^k).
fn nice(v: f64) -> f64 {
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * base)
}

/// Compact number text: 1.2k, 3.4M.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice(0.7), 1.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(120.0), 200.0);
    }

    #[test]
    fn escapes_labels_and_draws_marks() {
        let svg = line(
            "<m>",
            &[(1_000, 1.0), (2_000, 4.0)],
            &[Mark {
                start: 1_500,
                end: None,
                label: "<b>".into(),
            }],
            0,
            3_000,
        )
        .into_string();
        assert!(svg.contains("&lt;m&gt;") && !svg.contains("<m>"));
        assert!(svg.contains("class=\"alarm\""));
        assert!(svg.contains("M"));
    }
}
