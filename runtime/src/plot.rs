//! SVG plots of a history and its forecast (plotters, SVG backend only).

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// Draws each target's history (solid) and forecast (dashed, same colour) against the step
/// index, with 0 the first forecast step, into an SVG file.
pub fn forecast_svg(
    path: &Path,
    targets: &[String],
    history: &[f32],
    forecast: &[f32],
) -> Result<()> {
    let svg = forecast_svg_text(targets, history, forecast)
        .map_err(|e| Error::BadInput(format!("cannot draw {}: {e}", path.display())))?;
    std::fs::write(path, svg)
        .map_err(|e| Error::BadInput(format!("cannot write {}: {e}", path.display())))
}

/// [`forecast_svg`] as the SVG document's text (what `serve --http` returns).
pub fn forecast_svg_text(targets: &[String], history: &[f32], forecast: &[f32]) -> Result<String> {
    let mut svg = String::new();
    draw(&mut svg, targets, history, forecast)?;
    Ok(svg)
}

fn draw(svg: &mut String, targets: &[String], history: &[f32], forecast: &[f32]) -> Result<()> {
    let t = targets.len().max(1);
    let (hist_rows, fc_rows) = (history.len() / t, forecast.len() / t);
    let all = history.iter().chain(forecast);
    let (lo, hi) = all.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let fail = |e: &dyn std::fmt::Display| Error::BadInput(format!("cannot draw the plot: {e}"));
    let root = SVGBackend::with_string(svg, (960, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let x_range = -(hist_rows as i64)..fc_rows as i64;
    let mut chart = ChartBuilder::on(&root)
        .caption("kinglet forecast", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x_range, (lo - pad)..(hi + pad))
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("step (0 = first forecast)")
        .draw()
        .map_err(|e| fail(&e))?;
    for (k, name) in targets.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let hist: Vec<(i64, f32)> = (0..hist_rows)
            .map(|r| (r as i64 - hist_rows as i64, history[r * t + k]))
            .collect();
        chart
            .draw_series(LineSeries::new(hist, color.stroke_width(1)))
            .map_err(|e| fail(&e))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        let fc: Vec<(i64, f32)> = (0..fc_rows)
            .map(|r| (r as i64, forecast[r * t + k]))
            .collect();
        chart
            .draw_series(LineSeries::new(fc, color.stroke_width(2)))
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
