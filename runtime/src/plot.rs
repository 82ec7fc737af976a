//! SVG plots of a history and its forecast, written directly as SVG: one panel per target,
//! dates on the x axis when the CSV has them, the forecast dashed over a shaded region that
//! starts at a "now" marker, and the legend beside the data, never over it.
//!
//! The document's parts carry classes (`panel`, `history`, `forecast`, `forecast-region`,
//! `now`, `legend`, `x-tick`) so that tests can pin its structure.

use crate::error::{Error, Result};
use chrono::{NaiveDateTime, Timelike};
use std::fmt::Write;
use std::path::Path;

/// What to draw: `history` is `rows × targets` and `forecast` `horizon × targets`, row-major,
/// in real units; times label the x axis when given (one per row of each).
#[derive(Debug, Clone, Copy)]
pub struct Plot<'a> {
    /// Target column names, one panel each.
    pub targets: &'a [String],
    /// The window the forecast was made from, target columns only.
    pub history: &'a [f32],
    /// The forecast.
    pub forecast: &'a [f32],
    /// Times of the history rows.
    pub history_times: Option<&'a [NaiveDateTime]>,
    /// Times of the forecast rows.
    pub forecast_times: Option<&'a [NaiveDateTime]>,
}

/// Writes [`svg_text`] to `path`.
pub fn forecast_svg(path: &Path, plot: &Plot) -> Result<()> {
    let svg = svg_text(plot)?;
    std::fs::write(path, svg)
        .map_err(|e| Error::BadInput(format!("cannot write {}: {e}", path.display())))
}

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 210.0;
const TOP: f64 = 36.0;
const LEFT: f64 = 72.0;
const PLOT_RIGHT: f64 = 790.0;
const LEGEND_X: f64 = 808.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// The SVG document of `plot` (what `serve --http` returns).
pub fn svg_text(plot: &Plot) -> Result<String> {
    let t = plot.targets.len().max(1);
    let (hist_rows, fc_rows) = (plot.history.len() / t, plot.forecast.len() / t);
    if hist_rows == 0 || fc_rows == 0 {
        return Err(Error::BadInput(
            "cannot draw the plot: no history or no forecast".into(),
        ));
    }
    let height = TOP + PANEL_HEIGHT * t as f64 + 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="16">kinglet forecast: {} rows of history, {} ahead</text>"#,
        hist_rows, fc_rows
    );
    // x positions: history rows at -hist..-1, forecast rows at 0..fc-1
    let (x_lo, x_hi) = (-(hist_rows as f64), (fc_rows - 1) as f64);
    let x_of = |i: f64| LEFT + (i - x_lo) / (x_hi - x_lo).max(1.0) * (PLOT_RIGHT - LEFT);
    let times = match (plot.history_times, plot.forecast_times) {
        (Some(h), Some(f)) if h.len() >= hist_rows && f.len() >= fc_rows => {
            Some((&h[h.len() - hist_rows..], &f[..fc_rows]))
        }
        _ => None,
    };
    let time_at = |i: i64| -> Option<NaiveDateTime> {
        let (h, f) = times?;
        if i < 0 {
            h.get((hist_rows as i64 + i) as usize).copied()
        } else {
            f.get(i as usize).copied()
        }
    };
    let dates_only = times.is_some_and(|(h, f)| {
        h.iter()
            .chain(f)
            .all(|t| t.hour() == 0 && t.minute() == 0 && t.second() == 0)
    });
    for (k, name) in plot.targets.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let hist: Vec<f64> = (0..hist_rows)
            .map(|r| plot.history[r * t + k] as f64)
            .collect();
        let fc: Vec<f64> = (0..fc_rows)
            .map(|r| plot.forecast[r * t + k] as f64)
            .collect();
        let (lo, hi) = hist
            .iter()
            .chain(&fc)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(Error::BadInput(format!(
                "cannot draw the plot: `{name}` has a non-finite value"
            )));
        }
        let ticks = nice_ticks(lo, hi, 5);
        let (y_lo, y_hi) = (
            ticks.first().copied().unwrap_or(lo).min(lo),
            ticks.last().copied().unwrap_or(hi).max(hi),
        );
        let (y_lo, y_hi) = if y_hi - y_lo < 1e-9 {
            (y_lo - 1.0, y_hi + 1.0)
        } else {
            (y_lo, y_hi)
        };
        let top = TOP + PANEL_HEIGHT * k as f64 + 18.0;
        let bottom = top + PANEL_HEIGHT - 54.0;
        let y_of = |v: f64| bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top);
        let _ = write!(s, r#"<g class="panel" data-target="{}">"#, escape(name));
        // the forecast region, shaded from "now" to the end
        let now_x = x_of(-1.0);
        let _ = write!(
            s,
            r##"<rect class="forecast-region" x="{now_x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#eef2f7"/>"##,
            PLOT_RIGHT - now_x,
            bottom - top
        );
        // y grid and labels
        for v in &ticks {
            let y = y_of(*v);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" x2="{PLOT_RIGHT}" y1="{y:.1}" y2="{y:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT - 6.0,
                y + 4.0,
                format_value(*v, &ticks)
            );
        }
        // frame
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#888888"/>"##,
            PLOT_RIGHT - LEFT,
            bottom - top
        );
        // x ticks: about seven, dates when known
        for i in x_ticks(x_lo as i64, x_hi as i64, 7) {
            let x = x_of(i as f64);
            let label = match time_at(i) {
                Some(t) if dates_only => t.format("%Y-%m-%d").to_string(),
                Some(t) => t.format("%m-%d %H:%M").to_string(),
                None if i < 0 => format!("{i}"),
                None => format!("+{}", i + 1),
            };
            let _ = write!(
                s,
                r##"<g class="x-tick"><line x1="{x:.1}" x2="{x:.1}" y1="{bottom:.1}" y2="{:.1}" stroke="#888888"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text></g>"##,
                bottom + 4.0,
                bottom + 17.0
            );
        }
        if times.is_none() {
            let _ = write!(
                s,
                r##"<text x="{PLOT_RIGHT}" y="{:.1}" text-anchor="end" fill="#555555">rows (+1 = first forecast)</text>"##,
                bottom + 32.0
            );
        }
        // "now": the last observed row
        let now_label = match time_at(-1) {
            Some(t) if dates_only => format!("now {}", t.format("%Y-%m-%d")),
            Some(t) => format!("now {}", t.format("%Y-%m-%d %H:%M")),
            None => "now".to_string(),
        };
        let _ = write!(
            s,
            r##"<g class="now"><line x1="{now_x:.1}" x2="{now_x:.1}" y1="{top:.1}" y2="{bottom:.1}" stroke="#444444" stroke-width="1.2"/><text x="{:.1}" y="{:.1}" fill="#444444" text-anchor="end">{now_label}</text></g>"##,
            now_x - 4.0,
            top - 4.0
        );
        // history solid, forecast dashed from the last observed point
        let points = |xs: &mut dyn Iterator<Item = (f64, f64)>| -> String {
            xs.map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let hist_points = points(
            &mut hist
                .iter()
                .enumerate()
                .map(|(r, &v)| ((r as f64) - hist_rows as f64, v)),
        );
        let fc_points = points(
            &mut std::iter::once((-1.0, hist[hist_rows - 1]))
                .chain(fc.iter().enumerate().map(|(r, &v)| (r as f64, v))),
        );
        let _ = write!(
            s,
            r#"<polyline class="history" points="{hist_points}" fill="none" stroke="{color}" stroke-width="1.5"/><polyline class="forecast" points="{fc_points}" fill="none" stroke="{color}" stroke-width="2.2" stroke-dasharray="7 4"/>"#
        );
        // legend, beside the plot area
        let ly = top + 14.0;
        let _ = write!(
            s,
            r##"<g class="legend"><text x="{LEGEND_X}" y="{ly:.1}" font-weight="bold">{}</text><line x1="{LEGEND_X}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.5"/><text x="{:.1}" y="{:.1}">history</text><line x1="{LEGEND_X}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.2" stroke-dasharray="7 4"/><text x="{:.1}" y="{:.1}">forecast</text><rect x="{LEGEND_X}" y="{:.1}" width="24" height="10" fill="#eef2f7" stroke="#cccccc"/><text x="{:.1}" y="{:.1}">ahead of now</text></g>"##,
            escape(name),
            LEGEND_X + 24.0,
            ly + 16.0,
            ly + 16.0,
            LEGEND_X + 30.0,
            ly + 20.0,
            LEGEND_X + 24.0,
            ly + 34.0,
            ly + 34.0,
            LEGEND_X + 30.0,
            ly + 38.0,
            ly + 46.0,
            LEGEND_X + 30.0,
            ly + 56.0,
        );
        s.push_str("</g>");
    }
    s.push_str("</svg>\n");
    Ok(s)
}

/// About `n` round values covering `[lo, hi]` (1, 2 or 5 times a power of ten apart).
fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(hi.abs() * 1e-6).max(1e-9);
    let raw = span / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let mut ticks = Vec::new();
    let mut v = start;
    while v <= hi + step * 0.5 && ticks.len() < 4 * n + 2 {
        ticks.push(v);
        v += step;
    }
    ticks
}

/// A tick value with as many decimals as the tick spacing needs.
fn format_value(v: f64, ticks: &[f64]) -> String {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ => 1.0,
    };
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// About `n` row indices in `[lo, hi]`, evenly spread, always including the last history row
/// (-1) when it is in range.
fn x_ticks(lo: i64, hi: i64, n: usize) -> Vec<i64> {
    let span = (hi - lo).max(1);
    let step = (span as f64 / n.max(1) as f64).ceil().max(1.0) as i64;
    let mut ticks: Vec<i64> = (0..)
        .map(|j| -1 - j * step)
        .take_while(|&i| i >= lo)
        .collect();
    ticks.reverse();
    ticks.extend((1..).map(|j| -1 + j * step).take_while(|&i| i <= hi));
    ticks
}

/// Text safe inside SVG text and attributes.
fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        assert_eq!(nice_ticks(0.3, 9.7, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(101.2, 103.9, 5);
        assert!(t[0] <= 101.2 && *t.last().unwrap() >= 103.9, "{t:?}");
        assert_eq!(format_value(0.25, &[0.0, 0.05]), "0.25");
        assert_eq!(x_ticks(-10, 4, 7), vec![-9, -7, -5, -3, -1, 1, 3]);
    }

    #[test]
    fn target_names_are_escaped() {
        let targets = vec!["<script>".to_string()];
        let svg = svg_text(&Plot {
            targets: &targets,
            history: &[1.0, 2.0],
            forecast: &[3.0],
            history_times: None,
            forecast_times: None,
        })
        .unwrap();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
    }
}
