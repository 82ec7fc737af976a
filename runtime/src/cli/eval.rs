//! `kinglet eval --model M --tsv FILE [--json]` (classifiers)
//! `kinglet eval --model M --csv FILE --rows A..B [--json]` (forecasters)

use super::{CliError, ModelArg};
use crate::baselines::SeasonSource;
use crate::bundle::BundleFile;
use crate::dataset::read_labeled_tsv;
use crate::eval::{ClassifierEval, ForecasterEval};
use crate::forecast::Forecaster;
use crate::manifest::{Manifest, ModelKind};
use crate::series::read_csv;
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Classifiers: labeled rows `text<TAB>label` (label as index or name; a header line is
    /// allowed).
    #[arg(long, value_name = "FILE", required_unless_present = "csv")]
    tsv: Option<PathBuf>,
    /// Forecasters: CSV with a header row holding the model's columns.
    #[arg(long, value_name = "FILE", conflicts_with = "tsv")]
    csv: Option<PathBuf>,
    /// Forecasters: data rows `A..B` (0-based, header excluded); every window whose inputs and
    /// targets lie inside is evaluated, stride 1 [default: all rows].
    #[arg(long, value_name = "A..B", requires = "csv", value_parser = parse_rows)]
    rows: Option<(usize, usize)>,
    /// Forecasters: season length of the seasonal naive baseline and of MASE, in rows
    /// [default: 24 for hourly rows, 7 for daily, 5 for daily rows without weekends, else 1].
    #[arg(long, value_name = "ROWS", requires = "csv")]
    season: Option<usize>,
    /// Truncate inputs to this many tokens [default: the bundle's].
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Parses `A..B`.
pub fn parse_rows(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not A..B"))?;
    let a: usize = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not a row number"))?;
    let b: usize = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not a row number"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = BundleFile::open(args.model.path()?)?.manifest;
    match (&manifest.model, &args.tsv, &args.csv) {
        (ModelKind::Forecaster(_), _, Some(csv)) => {
            let loaded = args.model.load()?;
            let mut forecaster: crate::Forecaster = loaded.model.into_task(&args.model.path()?)?;
            return eval_forecaster(
                &mut forecaster,
                &manifest,
                csv,
                (args.rows, args.season),
                args.json,
            );
        }
        (ModelKind::Forecaster(_), _, None) => {
            return Err(CliError::Input(
                "this model is a forecaster: give --csv FILE --rows A..B".into(),
            )
            .into())
        }
        (ModelKind::Classifier(_), None, _) => {
            return Err(
                CliError::Input("this model is a classifier: give --tsv FILE".into()).into(),
            )
        }
        (ModelKind::Classifier(_), Some(_), _) => {}
    }
    let tsv = args.tsv.as_ref().expect("checked above");
    let mut classifier: crate::Classifier =
        args.model.load()?.model.into_task(&args.model.path()?)?;
    let labels = classifier.meta().labels.clone();
    let rows = read_labeled_tsv(tsv, &labels)?;
    let progress = super::progress_bar(rows.len() as u64, "eval");
    let started = std::time::Instant::now();
    let mut pairs = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = classifier
            .classify(&row.text, args.max_tokens)
            .with_context(|| format!("{} line {}", tsv.display(), row.line))?;
        pairs.push((row.label, r.label_index));
        progress.inc(1);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let report = ClassifierEval::new(&pairs, &labels, seconds, &manifest.precision);
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    outln!(
        "{} rows  accuracy {:.2} %  macro-F1 {:.4}  ({:.0} rows/s, {} bundle)",
        report.rows,
        100.0 * report.accuracy,
        report.macro_f1,
        report.rows_per_second,
        super::printable(&report.precision)
    );
    let names: Vec<String> = labels
        .iter()
        .map(|l| super::printable(l).into_owned())
        .collect();
    let width = names.iter().map(|l| l.len()).max().unwrap_or(5).max(5);
    outln!("{:width$}  precision  recall  f1      support", "class");
    for (name, label) in names.iter().zip(&labels) {
        let m = &report.per_class[label];
        outln!(
            "{name:width$}  {:.4}     {:.4}  {:.4}  {}",
            m.precision,
            m.recall,
            m.f1,
            m.support
        );
    }
    outln!("confusion (rows: true label, columns: predicted)");
    for (name, row) in names.iter().zip(&report.confusion) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>7}")).collect();
        outln!("{name:width$}  {}", cells.join(""));
    }
    Ok(())
}

fn eval_forecaster(
    forecaster: &mut Forecaster,
    manifest: &Manifest,
    csv: &std::path::Path,
    (rows, season): (Option<(usize, usize)>, Option<usize>),
    json: bool,
) -> anyhow::Result<()> {
    let meta = forecaster.meta.clone();
    let series = read_csv(csv, &meta.columns)?;
    let (start, end) = rows.unwrap_or((0, series.rows()));
    if end > series.rows() {
        return Err(CliError::Input(format!(
            "{} has {} data rows; --rows ends at {end}",
            csv.display(),
            series.rows()
        ))
        .into());
    }
    let windows = (end - start).saturating_sub(meta.lookback + meta.horizon - 1) as u64;
    let progress = super::progress_bar(windows, "eval");
    let report = crate::eval::evaluate_forecaster(
        forecaster,
        &series,
        (start, end),
        season,
        &manifest.precision,
        &|| progress.inc(1),
    )?;
    progress.finish_and_clear();
    if json {
        outln!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    for line in forecaster_eval_lines(&report, &meta.targets) {
        outln!("{line}");
    }
    Ok(())
}

/// The text `kinglet eval` prints for a forecaster (also printed by `kinglet-export fit`).
pub fn forecaster_eval_lines(report: &ForecasterEval, targets: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let [start, end] = report.rows;
    lines.push(format!(
        "{} windows (rows {start}..{end}, lookback {}, horizon {})  MSE {:.4}  MAE {:.4}  (normalized; {:.0} windows/s)",
        report.windows, report.lookback, report.horizon, report.mse, report.mae, report.windows_per_second
    ));
    let b = &report.baselines;
    let season = match b.season_from {
        SeasonSource::Given => format!("{} rows, --season", b.season),
        SeasonSource::Hourly => format!("{} rows, hourly data", b.season),
        SeasonSource::Daily => format!("{} rows, daily data", b.season),
        SeasonSource::BusinessDaily => format!("{} rows, trading days", b.season),
        SeasonSource::None => "1 row: no season known, the same as naive".into(),
    };
    lines.push(format!(
        "{:<40} {:>8} {:>8} {:>8}",
        "on the same windows", "MSE", "MAE", "MASE"
    ));
    let rows = [
        ("model".to_string(), report.mse, report.mae, report.mase),
        (
            "naive (last value)".to_string(),
            b.naive.mse,
            b.naive.mae,
            b.naive.mase,
        ),
        (
            format!("seasonal naive ({season})"),
            b.seasonal_naive.mse,
            b.seasonal_naive.mae,
            b.seasonal_naive.mase,
        ),
    ];
    for (name, mse, mae, mase) in &rows {
        lines.push(format!("{name:<40} {mse:>8.4} {mae:>8.4} {mase:>8.4}"));
    }
    let best = b.naive.mse.min(b.seasonal_naive.mse);
    if report.mse < best {
        lines.push(format!(
            "the model beats both baselines (MSE {:.1} % below the better one)",
            100.0 * (1.0 - report.mse / best)
        ));
    } else {
        lines.push(format!("the model does NOT beat the naive baselines on these rows (MSE {:.4} against {best:.4})", report.mse));
    }
    lines.push(format!(
        "{:<12} {:>12} {:>12}",
        "target", "MSE (raw)", "MAE (raw)"
    ));
    for name in targets {
        let e = &report.per_target[name];
        lines.push(format!(
            "{name:<12} {:>12.4} {:>12.4}",
            e.mse_raw, e.mae_raw
        ));
    }
    lines
}
