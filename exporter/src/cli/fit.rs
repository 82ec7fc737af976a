//! `kinglet-export fit CSV --columns … --lookback L --horizon H -o OUT.kinglet`: a linear
//! forecaster trained from a CSV on this machine, no Python.

use super::Output;
use crate::fit::{fit_linear, FitOptions, DEFAULT_LAMBDAS};
use crate::forecast::{seal_forecaster, ForecastCheck, ForecastExportOptions, Normalization};
use crate::quantize::Precision;
use anyhow::{bail, Context};
use kinglet_runtime::series::read_csv;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV with a header row; a date/time column, when present, is kept to continue dates.
    #[arg(value_name = "CSV")]
    csv: PathBuf,
    #[command(flatten)]
    output: Output,
    /// Input columns, in order.
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', required = true)]
    columns: Vec<String>,
    /// Predicted column (read from every column's history), or `all` (each column from its own
    /// history).
    #[arg(long, value_name = "T", default_value = "all")]
    target: String,
    /// Rows of history per forecast.
    #[arg(long, value_name = "L")]
    lookback: usize,
    /// Rows predicted.
    #[arg(long, value_name = "H")]
    horizon: usize,
    /// linear (ridge on the window), nlinear (the window minus its last value) or dlinear
    /// (moving-average trend and seasonal rest, each with its own weights).
    #[arg(long, default_value = "dlinear", value_parser = ["linear", "ridge", "nlinear", "dlinear"])]
    family: String,
    /// With --target all: one weight set per column instead of one shared by all columns.
    #[arg(long)]
    individual: bool,
    /// DLinear's moving-average length in rows (odd).
    #[arg(long, value_name = "ROWS", default_value_t = 25)]
    moving_average: usize,
    /// Training rows: `A..B` (0-based data rows) or a fraction of the file from its start.
    #[arg(long, value_name = "A..B|FRACTION", default_value = "0.7", value_parser = parse_span)]
    train: Span,
    /// Validation rows (choose the ridge λ; guard quantization): `A..B` or a fraction of the
    /// file following the training rows.
    #[arg(long, value_name = "A..B|FRACTION", default_value = "0.1", value_parser = parse_span)]
    valid: Span,
    /// Ridge strengths to try [default: 1e-6,1e-4,1e-3,0.01,0.03,0.1,0.3,1,3,10,100,1e4].
    #[arg(long, value_name = "λ,…", value_delimiter = ',')]
    lambda: Vec<f64>,
    /// Weight precision: f32, f16, or int8 (guarded on the validation rows).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "int8"])]
    precision: String,
    /// Refuse a quantized model whose validation MSE rises by more than this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 2.0)]
    max_increase: f64,
    /// Seconds between rows, to continue a date column [default: from the CSV].
    #[arg(long, value_name = "S")]
    step_seconds: Option<i64>,
    /// Season of the seasonal naive baseline printed beside the model, in rows [default: from
    /// the time step].
    #[arg(long, value_name = "ROWS")]
    season: Option<usize>,
}

/// Rows given as a range or as a fraction of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Span {
    Rows(usize, usize),
    Fraction(f64),
}

fn parse_span(s: &str) -> Result<Span, String> {
    if s.contains("..") {
        let (a, b) = kinglet_runtime::cli::parse_rows(s)?;
        return Ok(Span::Rows(a, b));
    }
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f < 1.0 => Ok(Span::Fraction(f)),
        _ => Err(format!(
            "`{s}` is neither A..B nor a fraction between 0 and 1"
        )),
    }
}

/// Training and validation rows of a file of `rows` rows.
fn resolve(train: Span, valid: Span, rows: usize) -> ((usize, usize), (usize, usize)) {
    let part = |f: f64| (f * rows as f64).round() as usize;
    let train = match train {
        Span::Rows(a, b) => (a, b),
        Span::Fraction(f) => (0, part(f)),
    };
    let valid = match valid {
        Span::Rows(a, b) => (a, b),
        Span::Fraction(f) => (train.1, (train.1 + part(f)).min(rows)),
    };
    (train, valid)
}

pub fn run(args: Args) -> anyhow::Result<super::Report> {
    let started = std::time::Instant::now();
    let series = read_csv(&args.csv, &args.columns)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    if let Some(problem) = &series.time_problem {
        kinglet_runtime::cli::warn(problem);
    }
    let (train, valid) = resolve(args.train, args.valid, series.rows());
    if train.1 > series.rows() || valid.1 > series.rows() {
        bail!(crate::ExportError::Unsupported(format!(
            "--train {}..{} / --valid {}..{}: {} has {} data rows",
            train.0,
            train.1,
            valid.0,
            valid.1,
            args.csv.display(),
            series.rows()
        )));
    }
    let norm = Normalization::fit(
        &args.csv,
        train,
        args.columns.clone(),
        &args.target,
        args.lookback,
        args.horizon,
    )?;
    let options = FitOptions {
        family: args.family.parse()?,
        individual: args.individual,
        moving_average: args.moving_average,
        train,
        valid,
        lambdas: if args.lambda.is_empty() {
            DEFAULT_LAMBDAS.to_vec()
        } else {
            args.lambda.clone()
        },
    };
    let (model, fit) = fit_linear(&series, &norm, &options)?;
    let precision: Precision = args.precision.parse()?;
    let export = ForecastExportOptions {
        norm,
        channels_first: false,
        precision,
        step_seconds: args.step_seconds.or_else(|| series.step_seconds()),
        check: Some(ForecastCheck {
            csv: args.csv.clone(),
            rows: valid,
            max_increase_percent: args.max_increase,
        }),
        output: None,
    };
    let stamp = args.output.stamp.load()?;
    let out = &args.output.output;
    let source = args
        .csv
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = seal_forecaster(model, &format!("fit-{}", fit.family), &source, out, &export)
        .with_context(|| format!("fitting {}", args.csv.display()))?;
    let stamped = super::finish(out, &stamp)?;

    let mut forecaster = kinglet_runtime::forecast::Forecaster::load(
        out,
        &kinglet_runtime::memory::LoadOptions::default(),
    )?;
    let eval = kinglet_runtime::eval::evaluate_forecaster(
        &mut forecaster,
        &series,
        valid,
        args.season,
        precision.name(),
        &|| (),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let mut text = super::signed_line(out, &stamped);
    let per = match fit.samples_per_window {
        1 => String::new(),
        n => format!(" × {n} columns"),
    };
    text.push(format!(
        "fitted {} ({}, {} features) on {} training windows{per} (rows {}..{}) in {:.1} s",
        fit.family,
        fit.channels,
        fit.features,
        fit.train_windows,
        train.0,
        train.1,
        fit.fit_ms as f64 / 1000.0
    ));
    let tried: Vec<String> = fit
        .lambdas
        .iter()
        .map(|s| match s.valid_mse {
            Some(m) => format!("{:e} → {m:.4}", s.lambda),
            None => format!("{:e} → singular", s.lambda),
        })
        .collect();
    text.push(format!(
        "ridge λ {:e} chosen on {} validation windows (rows {}..{}); tried {}",
        fit.lambda,
        fit.valid_windows,
        valid.0,
        valid.1,
        tried.join(", ")
    ));
    text.push("validation rows:".into());
    text.extend(
        kinglet_runtime::cli::eval::forecaster_eval_lines(&eval, &export.norm.targets)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    text.extend(super::forecast::quantization_lines(&report, precision));
    text.push(format!(
        "wrote {} ({} → {} steps of {}, {} parameters, {:.1} KiB, {precision}) in {seconds:.1} s",
        out.display(),
        export.norm.lookback,
        export.norm.horizon,
        export.norm.targets.join(","),
        report.parameter_count,
        stamped.bundle_bytes as f64 / 1024.0,
    ));
    let mut json = super::export_json(out, precision, seconds, &report, &stamped);
    json["fit"] = serde_json::to_value(&fit)?;
    json["validation"] = serde_json::to_value(&eval)?;
    Ok(super::Report::Done { text, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_split_the_file_in_order_and_ranges_are_taken_as_given() {
        assert_eq!(
            resolve(Span::Fraction(0.7), Span::Fraction(0.1), 1000),
            ((0, 700), (700, 800))
        );
        assert_eq!(
            resolve(Span::Rows(0, 8640), Span::Rows(8640, 11520), 17420),
            ((0, 8640), (8640, 11520))
        );
        assert_eq!(parse_span("0..10"), Ok(Span::Rows(0, 10)));
        assert!(parse_span("1.5").is_err());
        assert!(parse_span("seven").is_err());
    }
}
