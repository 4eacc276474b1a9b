//! Charts of the operator console, drawn as inline SVG by our own code (no script, no
//! third-party library): the points issued and redeemed per month as paired bars, and
//! the points that flow between partners as a heat grid. Each chart is an image with an
//! `aria-label`; the page that shows one also shows its figures as a table.
//!
//! Elements are written with a closing tag (`<rect …></rect>`): inside HTML, an SVG
//! element left open would swallow the ones after it.

use maud::{Markup, html};

/// The colours of the stylesheet's `--issued` and `--redeemed` (an inline style or a CSS
/// variable in a presentation attribute would not pass the pages' content policy).
pub const ISSUED: &str = "#0b5cad";
pub const REDEEMED: &str = "#c05a00";
const GRID: &str = "#c9d0d8";
const INK: &str = "#1b1f24";
/// The heat grid runs from the page's wash (nothing) to a mid blue (the most): light
/// enough everywhere for the cells' dark figures to keep a contrast above 4.5:1.
const COLD: (f64, f64, f64) = (243.0, 245.0, 248.0);
const HOT: (f64, f64, f64) = (106.0, 159.0, 212.0);

/// One month's bars.
pub struct MonthBars {
    /// `YYYY-MM`.
    pub month: String,
    pub issued: i64,
    pub redeemed: i64,
}

/// Paired bars per month: points issued (blue) and redeemed (orange), with a scale of
/// round numbers and a legend. `label` says what the chart shows, for screen readers.
pub fn monthly_points(months: &[MonthBars], label: &str) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 8.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 40.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let highest = months
        .iter()
        .map(|m| m.issued.max(m.redeemed))
        .max()
        .unwrap_or(0)
        .max(1);
    let top = nice_ceiling(highest);
    let y = |v: i64| TOP + plot_h - plot_h * (v.max(0) as f64 / top as f64);
    let slot = plot_w / months.len().max(1) as f64;
    let bar = (slot * 0.36).min(28.0);
    let ticks: Vec<i64> = (0..=4).map(|i| top / 4 * i).collect();
    html! {
        figure {
            svg.chart role="img" aria-label=(label) viewBox=(format!("0 0 {W} {H}")) {
                @for t in &ticks {
                    line x1=(fmt(LEFT)) x2=(fmt(W - RIGHT)) y1=(fmt(y(*t))) y2=(fmt(y(*t)))
                        stroke=(GRID) stroke-width="1" {}
                    text x=(fmt(LEFT - 6.0)) y=(fmt(y(*t) + 4.0)) text-anchor="end" { (compact(*t)) }
                }
                @for (i, m) in months.iter().enumerate() {
                    @let x0 = LEFT + slot * i as f64 + slot / 2.0;
                    rect x=(fmt(x0 - bar - 1.0)) y=(fmt(y(m.issued))) width=(fmt(bar))
                        height=(fmt(TOP + plot_h - y(m.issued))) fill=(ISSUED) {}
                    rect x=(fmt(x0 + 1.0)) y=(fmt(y(m.redeemed))) width=(fmt(bar))
                        height=(fmt(TOP + plot_h - y(m.redeemed))) fill=(REDEEMED) {}
                    text x=(fmt(x0)) y=(fmt(H - BOTTOM + 15.0)) text-anchor="middle" { (month_name(&m.month)) }
                    @if i == 0 || m.month.ends_with("-01") {
                        text x=(fmt(x0)) y=(fmt(H - BOTTOM + 29.0)) text-anchor="middle" { (m.month.get(..4).unwrap_or("")) }
                    }
                }
                line x1=(fmt(LEFT)) x2=(fmt(W - RIGHT)) y1=(fmt(TOP + plot_h)) y2=(fmt(TOP + plot_h))
                    stroke=(INK) stroke-width="1" {}
            }
            figcaption.legend {
                span { span.swatch.issued {} "Points issued" }
                span { span.swatch.redeemed {} "Points redeemed" }
            }
        }
    }
}

/// A heat grid of points earned at one partner (rows) and spent at another (columns):
/// the darker a cell, the more points; each cell also says its figure. `rows` and
/// `columns` are the names shown; `cells[r][c]` the points.
pub fn flow_grid(rows: &[String], columns: &[String], cells: &[Vec<i64>], label: &str) -> Markup {
    const NAMES: f64 = 160.0;
    const HEAD: f64 = 96.0;
    const CELL_W: f64 = 60.0;
    const CELL_H: f64 = 28.0;
    let w = NAMES + CELL_W * columns.len() as f64 + 12.0;
    let h = HEAD + CELL_H * rows.len() as f64 + 8.0;
    let most = cells.iter().flatten().copied().max().unwrap_or(0).max(1);
    html! {
        svg.chart role="img" aria-label=(label) viewBox=(format!("0 0 {} {}", fmt(w), fmt(h))) {
            text x="4" y=(fmt(HEAD - 8.0)) font-weight="600" { "Earned at ↓ · spent at →" }
            @for (c, name) in columns.iter().enumerate() {
                @let x = NAMES + CELL_W * c as f64 + CELL_W / 2.0;
                text x=(fmt(x)) y=(fmt(HEAD - 6.0)) text-anchor="start"
                    transform=(format!("rotate(-40 {} {})", fmt(x), fmt(HEAD - 6.0))) { (short(name, 18)) }
            }
            @for (r, name) in rows.iter().enumerate() {
                @let y = HEAD + CELL_H * r as f64;
                text x=(fmt(NAMES - 6.0)) y=(fmt(y + CELL_H / 2.0 + 4.0)) text-anchor="end" { (short(name, 22)) }
                @for (c, _) in columns.iter().enumerate() {
                    @let v = cells.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0);
                    @let t = heat(v, most);
                    @let x = NAMES + CELL_W * c as f64;
                    rect x=(fmt(x + 1.0)) y=(fmt(y + 1.0)) width=(fmt(CELL_W - 2.0)) height=(fmt(CELL_H - 2.0))
                        fill=(shade(t)) stroke=(GRID) stroke-width="1" {}
                    @if v != 0 {
                        text x=(fmt(x + CELL_W / 2.0)) y=(fmt(y + CELL_H / 2.0 + 4.0)) text-anchor="middle"
                            fill=(INK) { (compact(v)) }
                    }
                }
            }
        }
    }
}

/// How hot a cell is, 0 to 1: the square root of its share of the largest, so small
/// flows still show beside a large one.
fn heat(v: i64, most: i64) -> f64 {
    (v.max(0) as f64 / most as f64).sqrt().clamp(0.0, 1.0)
}

fn shade(t: f64) -> String {
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(COLD.0, HOT.0),
        mix(COLD.1, HOT.1),
        mix(COLD.2, HOT.2)
    )
}

/// A coordinate with one decimal at most.
fn fmt(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// The smallest of 1, 2, 2.5, 5 × a power of ten that is at least `v`, raised to a
/// multiple of four so the scale's quarters are whole points.
pub fn nice_ceiling(v: i64) -> i64 {
    let v = v.max(1);
    let mut power: i64 = 1;
    while power <= v / 10 {
        power *= 10;
    }
    let steps = [
        Some(power),
        power.checked_mul(2),
        (power >= 10).then(|| power / 2 * 5),
        power.checked_mul(5),
        power.checked_mul(10),
    ];
    let top = steps.into_iter().flatten().find(|c| *c >= v).unwrap_or(v);
    round_up_to_four(top)
}

fn round_up_to_four(v: i64) -> i64 {
    v.saturating_add(3) / 4 * 4
}

/// 1234 → "1.2k", 2500000 → "2.5M": for scales and cells, where space is short.
pub fn compact(n: i64) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "−" } else { "" };
    let (value, unit) = if a >= 1e9 {
        (a / 1e9, "G")
    } else if a >= 1e6 {
        (a / 1e6, "M")
    } else if a >= 1e4 {
        (a / 1e3, "k")
    } else {
        return super::layout::points(n);
    };
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    format!("{sign}{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

/// "2026-05" → "May".
fn month_name(month: &str) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    month
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| NAMES.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("")
}

/// A name cut to `max` characters, with an ellipsis when cut (the table has it whole).
fn short(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let mut s: String = name.chars().take(max - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(nice_ceiling(1), 4);
        assert_eq!(nice_ceiling(7), 12);
        assert_eq!(nice_ceiling(180), 200);
        assert_eq!(nice_ceiling(2_400), 2_500);
        assert_eq!(nice_ceiling(4_100), 5_000);
        assert_eq!(nice_ceiling(9_000), 10_000);
    }

    #[test]
    fn compact_figures_stay_short() {
        assert_eq!(compact(950), "950");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(2_500_000), "2.5M");
        assert_eq!(compact(-40_000), "−40k");
    }

    #[test]
    fn charts_are_labelled_images_and_escape_names() {
        let bars = monthly_points(
            &[MonthBars {
                month: "2026-01".into(),
                issued: 100,
                redeemed: 40,
            }],
            "Points per month",
        )
        .into_string();
        assert!(bars.contains(r#"role="img""#) && bars.contains(r#"aria-label="Points per month""#));
        assert!(bars.contains("</rect>"));
        let grid = flow_grid(&["<A&B>".into()], &["<A&B>".into()], &[vec![5]], "Flows").into_string();
        assert!(grid.contains("&lt;A&amp;B&gt;") && !grid.contains("<A&B>"));
    }
}
