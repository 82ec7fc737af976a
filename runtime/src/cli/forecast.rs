//! `kinglet forecast [--model M] --csv FILE [--json] [--plot OUT.svg]`
//! `kinglet forecast [--model M] --follow [--every N] [--json] < rows.csv`

use super::{CliError, ModelArg};
use crate::forecast::Forecaster;
use crate::series::{parse_time, read_csv, HeaderMap};
use crate::window::Window;
use anyhow::Context;
use chrono::NaiveDateTime;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// CSV with a header row; the model's columns are found by name, extra ones ignored.
    #[arg(long, value_name = "FILE", required_unless_present = "follow")]
    csv: Option<PathBuf>,
    /// Print JSON (one object per forecast).
    #[arg(long)]
    json: bool,
    /// Also draw the history and the forecast into an SVG file.
    #[arg(long, value_name = "OUT.svg", conflicts_with = "follow")]
    plot: Option<PathBuf>,
    /// Read CSV rows from standard input as they arrive (header first) and forecast as soon
    /// as the window is full, then every --every rows.
    #[arg(long, conflicts_with = "csv")]
    follow: bool,
    /// With --follow: forecast every N rows.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "follow")]
    every: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let crate::model::Model::Forecaster(mut forecaster) = args.model.load()?.model else {
        return Err(crate::Error::Unsupported {
            path: args.model.path()?,
            reason: "this bundle is not a forecaster".into(),
        }
        .into());
    };
    if args.follow {
        return follow(&mut forecaster, args.every.max(1), args.json);
    }
    let csv = args
        .csv
        .as_ref()
        .expect("clap requires --csv without --follow");
    let meta = forecaster.meta.clone();
    let series = read_csv(csv, &meta.columns)?;
    let rows = series.rows();
    if rows < meta.lookback {
        return Err(CliError::Input(format!(
            "{} has {rows} rows; the model needs the last {} (lookback)",
            csv.display(),
            meta.lookback
        ))
        .into());
    }
    let window = series.slice_rows(rows - meta.lookback, rows);
    let forecast = forecaster
        .forecast(window)
        .with_context(|| csv.display().to_string())?;
    let step = meta.step_seconds.or_else(|| series.step_seconds());
    let times = match (&series.times, step) {
        (Some(ts), Some(step)) => Some(continue_times(ts[rows - 1], step, meta.horizon)),
        _ => None,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    print_forecast(
        &mut out,
        &meta.targets,
        &forecast.values,
        times.as_deref(),
        args.json,
        None,
    )?;
    out.flush()?;
    if let Some(plot) = &args.plot {
        let targets = meta.target_indices();
        let f = meta.columns.len();
        let history: Vec<f32> = (0..meta.lookback)
            .flat_map(|r| targets.iter().map(move |&c| window[r * f + c]))
            .collect();
        crate::plot::forecast_svg(plot, &meta.targets, &history, &forecast.values)?;
    }
    Ok(())
}

/// `horizon` timestamps after `last`, `step_seconds` apart.
pub fn continue_times(
    last: NaiveDateTime,
    step_seconds: i64,
    horizon: usize,
) -> Vec<NaiveDateTime> {
    (1..=horizon as i64)
        .map(|i| last + chrono::Duration::seconds(step_seconds * i))
        .collect()
}

pub(super) fn print_forecast(
    out: &mut impl Write,
    targets: &[String],
    values: &[f32],
    times: Option<&[NaiveDateTime]>,
    json: bool,
    after_row: Option<usize>,
) -> anyhow::Result<()> {
    let t = targets.len();
    let rows: Vec<&[f32]> = values.chunks(t).collect();
    if json {
        let mut v = serde_json::json!({
            "targets": targets,
            "horizon": rows.len(),
            "times": times.map(|ts| ts.iter().map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).collect::<Vec<_>>()),
            "forecast": rows,
        });
        if let Some(n) = after_row {
            v["after_row"] = serde_json::json!(n);
        }
        writeln!(out, "{v}")?;
        return Ok(());
    }
    if let Some(n) = after_row {
        writeln!(out, "# forecast after row {n}")?;
    }
    writeln!(
        out,
        "{:<20} {}",
        if times.is_some() { "time" } else { "step" },
        targets.join("  ")
    )?;
    for (i, row) in rows.iter().enumerate() {
        let label = match times {
            Some(ts) => ts[i].format("%Y-%m-%d %H:%M:%S").to_string(),
            None => format!("+{}", i + 1),
        };
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
        writeln!(out, "{label:<20} {}", cells.join("  "))?;
    }
    Ok(())
}

/// Streams rows from standard input through a fixed ring buffer.
fn follow(forecaster: &mut Forecaster, every: usize, json: bool) -> anyhow::Result<()> {
    let meta = forecaster.meta.clone();
    let f = meta.columns.len();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::stdin().lock());
    let header = rdr
        .headers()
        .map_err(|e| CliError::Input(format!("standard input: cannot read the header: {e}")))?
        .clone();
    let map = HeaderMap::new(&header, &meta.columns, "standard input")?;
    let mut window = Window::new(meta.lookback, f);
    let mut ordered = vec![0f32; meta.lookback * f];
    let mut row = Vec::with_capacity(f);
    let mut record = csv::StringRecord::new();
    let (mut seen, mut since) = (0usize, 0usize);
    let stdout = std::io::stdout();
    loop {
        let more = rdr
            .read_record(&mut record)
            .map_err(|e| CliError::Input(format!("standard input data row {seen}: {e}")))?;
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        row.clear();
        map.parse_row(&record, &meta.columns, &mut row, &|| {
            format!("standard input line {line} (data row {seen})")
        })?;
        let last_time = map.time.and_then(|t| record.get(t)).and_then(parse_time);
        window.push(&row);
        seen += 1;
        since += 1;
        if window.is_full() && (since >= every || seen == meta.lookback) {
            since = 0;
            window.copy_ordered(&mut ordered);
            let forecast = forecaster.forecast(&ordered)?;
            let times = match (last_time, meta.step_seconds) {
                (Some(t), Some(step)) => Some(continue_times(t, step, meta.horizon)),
                _ => None,
            };
            let mut out = stdout.lock();
            print_forecast(
                &mut out,
                &meta.targets,
                &forecast.values,
                times.as_deref(),
                json,
                Some(seen),
            )?;
            out.flush()?;
        }
    }
    Ok(())
}
