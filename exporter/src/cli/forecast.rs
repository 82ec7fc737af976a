//! `kinglet-export forecast MODEL.onnx -o OUT.kinglet (--norm norm.json | --columns … --fit CSV …)`

use super::Output;
use crate::forecast::{
    export_onnx_forecaster, ForecastCheck, ForecastExportOptions, Normalization,
};
use crate::quantize::Precision;
use anyhow::{bail, Context};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ONNX forecaster: input [1, lookback, features] (or [1, features, lookback] with
    /// --channels-first, or [1, lookback] for one column), output [1, horizon, targets],
    /// [1, horizon] or [horizon].
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    #[command(flatten)]
    output: Output,
    /// Normalization and window sizes from a norm.json (columns, mean, std, target, lookback,
    /// horizon).
    #[arg(long, value_name = "norm.json", conflicts_with_all = ["columns", "fit"])]
    norm: Option<PathBuf>,
    /// Input columns in the order the model takes them (without --norm).
    #[arg(long, value_name = "A,B,…", value_delimiter = ',', requires_all = ["fit", "fit_rows", "lookback", "horizon"])]
    columns: Vec<String>,
    /// Predicted column, or `all` (without --norm).
    #[arg(long, value_name = "T", default_value = "all")]
    target: String,
    /// Rows of history the model takes (without --norm).
    #[arg(long, value_name = "L")]
    lookback: Option<usize>,
    /// Rows the model predicts (without --norm).
    #[arg(long, value_name = "H")]
    horizon: Option<usize>,
    /// CSV to compute each column's mean and std from (without --norm).
    #[arg(long, value_name = "CSV")]
    fit: Option<PathBuf>,
    /// Data rows of --fit to use, `A..B` (0-based, header excluded).
    #[arg(long, value_name = "A..B", value_parser = kinglet_runtime::cli::parse_rows)]
    fit_rows: Option<(usize, usize)>,
    /// The model takes [1, features, lookback].
    #[arg(long)]
    channels_first: bool,
    /// Weight precision: f32 (default for forecasters), f16, or int8 (guard it with --check).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "int8"])]
    precision: String,
    /// Seconds between rows, to continue a date column in forecasts [default: from the CSVs].
    #[arg(long, value_name = "S")]
    step_seconds: Option<i64>,
    /// CSV on which a quantized model must keep the float model's MSE.
    #[arg(long, value_name = "CSV", requires = "check_rows")]
    check: Option<PathBuf>,
    /// Data rows of --check, `A..B`.
    #[arg(long, value_name = "A..B", value_parser = kinglet_runtime::cli::parse_rows)]
    check_rows: Option<(usize, usize)>,
    /// The output holding the forecast, when the model has several (a mean and a scale head).
    #[arg(
        long = "onnx-output",
        visible_alias = "output-name",
        value_name = "NAME"
    )]
    output_name: Option<String>,
    /// Refuse to write when the MSE rises by more than this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 2.0)]
    max_increase: f64,
}

pub fn run(args: Args) -> anyhow::Result<super::Report> {
    let started = std::time::Instant::now();
    let norm = match (&args.norm, &args.fit) {
        (Some(path), _) => Normalization::from_norm_json(path)?,
        (None, Some(csv)) => {
            let (Some(rows), Some(lookback), Some(horizon)) = (args.fit_rows, args.lookback, args.horizon) else {
                bail!("--fit needs --fit-rows, --lookback and --horizon");
            };
            Normalization::fit(csv, rows, args.columns.clone(), &args.target, lookback, horizon)?
        }
        (None, None) => bail!("give --norm norm.json, or --columns … --fit CSV --fit-rows A..B --lookback L --horizon H"),
    };
    let precision: Precision = args.precision.parse()?;
    let check = match (args.check, args.check_rows) {
        (Some(csv), Some(rows)) => Some(ForecastCheck {
            csv,
            rows,
            max_increase_percent: args.max_increase,
        }),
        _ => None,
    };
    let options = ForecastExportOptions {
        norm,
        channels_first: args.channels_first,
        precision,
        step_seconds: args.step_seconds,
        check,
        output: args.output_name,
    };
    let stamp = args.output.stamp.load()?;
    let report = export_onnx_forecaster(&args.model, &args.output.output, &options)
        .with_context(|| format!("exporting {}", args.model.display()))?;
    let stamped = super::finish(&args.output.output, &stamp)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut text = super::signed_line(&args.output.output, &stamped);
    text.extend(quantization_lines(&report, precision));
    text.push(format!(
        "wrote {} ({} → {} steps of {}, {} parameters, {:.1} KiB, {precision}) in {seconds:.1} s",
        args.output.output.display(),
        options.norm.lookback,
        options.norm.horizon,
        options.norm.targets.join(","),
        report.parameter_count,
        stamped.bundle_bytes as f64 / 1024.0,
    ));
    let json = super::export_json(&args.output.output, precision, seconds, &report, &stamped);
    Ok(super::Report::Done { text, json })
}

/// The layers' stored precisions, then the float-versus-quantized lines of an export summary
/// (none for f32).
pub fn quantization_lines(
    report: &crate::export::ExportReport,
    precision: Precision,
) -> Vec<String> {
    let mut text = kinglet_runtime::cli::inspect::layer_lines(&report.layers);
    if let Some(q) = &report.quantization {
        text.push(format!(
            "float vs {precision} on {} ({} windows)",
            q.data, q.rows
        ));
        if let (Some(f), Some(p)) = (q.float_mse, q.quantized_mse) {
            text.push(format!(
                "  MSE  float {f:.4}   {precision} {p:.4}   ({:+.2} %)",
                100.0 * (p - f) / f
            ));
        } else {
            text.push(format!(
                "  |Δ| max {:.4}   mean {:.4}",
                q.max_abs_logit_delta, q.mean_abs_logit_delta
            ));
        }
    }
    text
}
