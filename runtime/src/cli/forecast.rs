//! `kinglet forecast [--model M] --csv FILE [--json] [--plot OUT.svg]`
//! `kinglet forecast [--model M] --follow [--every N] [--json] < rows.csv`

use super::{CliError, ModelArg};
use crate::forecast::Forecaster;
use crate::series::{continue_times, parse_time, read_csv, Calendar, HeaderMap};
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
    /// With --follow: the CSV header, for a stream of rows without one (a logger's output):
    /// `--header date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT`. Without it the first line read is
    /// the header (`tail -n +1 -f FILE` sends it).
    #[arg(long, value_name = "NAMES", requires = "follow")]
    header: Option<String>,
    /// How forecast times continue: `business-days` skips Saturdays and Sundays (stock
    /// markets), `all-days` does not [default: business days when the history is daily and has
    /// no weekend over two weeks or more].
    #[arg(long, value_enum)]
    calendar: Option<CalendarArg>,
}

/// `--calendar`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CalendarArg {
    /// Every step, weekends included.
    AllDays,
    /// Steps on a Saturday or Sunday move to Monday.
    BusinessDays,
}

impl From<CalendarArg> for Calendar {
    fn from(c: CalendarArg) -> Calendar {
        match c {
            CalendarArg::AllDays => Calendar::AllDays,
            CalendarArg::BusinessDays => Calendar::BusinessDays,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut forecaster: crate::Forecaster =
        args.model.load()?.model.into_task(&args.model.path()?)?;
    if args.follow {
        return follow(&mut forecaster, &args);
    }
    let csv = args
        .csv
        .as_ref()
        .expect("clap requires --csv without --follow");
    let meta = forecaster.meta.clone();
    let series = read_csv(csv, &meta.columns)?;
    if let Some(problem) = &series.time_problem {
        super::warn(problem);
    }
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
    let times = series.continue_after(
        meta.step_seconds,
        meta.horizon,
        args.calendar.map(Calendar::from),
    );
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
        let plot_input = crate::plot::Plot {
            targets: &meta.targets,
            history: &history,
            forecast: &forecast.values,
            history_times: series.times.as_deref(),
            forecast_times: times.as_deref(),
        };
        crate::plot::forecast_svg(plot, &plot_input)?;
    }
    Ok(())
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
    if t == 0 {
        return Err(CliError::Input("the model names no target columns to forecast".into()).into());
    }
    let rows: Vec<&[f32]> = values.chunks(t).collect();
    // a device's answer may hold more rows than its horizon: label those by step
    let times = times.filter(|ts| ts.len() >= rows.len());
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
        super::printable(&targets.join("  "))
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
fn follow(forecaster: &mut Forecaster, args: &Args) -> anyhow::Result<()> {
    let (every, json) = (args.every.max(1), args.json);
    let meta = forecaster.meta.clone();
    let f = meta.columns.len();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(args.header.is_none())
        .flexible(true)
        .from_reader(crate::lines::LineLimit::new(
            crate::lines::CrlfAsLf::new(std::io::stdin().lock()),
            crate::lines::MAX_ROW_BYTES,
        ));
    let header = match &args.header {
        Some(names) => csv::StringRecord::from(names.split(',').collect::<Vec<_>>()),
        None => rdr
            .headers()
            .map_err(|e| CliError::Input(format!("standard input: cannot read the header: {e}")))?
            .clone(),
    };
    let (mut first_time, mut weekend_seen) = (None, false);
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
        if let Some(t) = last_time {
            first_time.get_or_insert(t);
            weekend_seen |= crate::series::is_weekend(t);
        }
        window.push(&row);
        seen += 1;
        since += 1;
        if window.is_full() && (since >= every || seen == meta.lookback) {
            since = 0;
            window.copy_ordered(&mut ordered);
            let forecast = forecaster.forecast(&ordered)?;
            let times = match (last_time, meta.step_seconds) {
                (Some(t), Some(step)) => {
                    let calendar = args.calendar.map(Calendar::from).unwrap_or_else(|| {
                        let span_days = first_time.map_or(0, |f| (t - f).num_days());
                        Calendar::of_history(step, span_days, weekend_seen)
                    });
                    continue_times(t, step, meta.horizon, calendar)
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_chronos_calendar_fall_back_to_steps() {
        let last = NaiveDateTime::MAX - chrono::TimeDelta::hours(1);
        assert_eq!(
            continue_times(last, 3600, 1, Calendar::AllDays).map(|t| t.len()),
            Some(1)
        );
        assert_eq!(continue_times(last, 3600, 2, Calendar::AllDays), None);
        assert_eq!(continue_times(last, i64::MAX, 2, Calendar::AllDays), None);
        let mut out = Vec::new();
        print_forecast(&mut out, &["OT".into()], &[1.0, 2.0], None, false, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("+2"), "{text}");
    }

    #[test]
    fn a_forecast_without_targets_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let e = print_forecast(&mut out, &[], &[1.0], None, true, None).unwrap_err();
        assert!(e.to_string().contains("no target"), "{e}");
    }

    #[test]
    fn more_rows_than_times_are_labelled_by_step() {
        let t0 = NaiveDateTime::parse_from_str("2020-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let times = continue_times(t0, 3600, 1, Calendar::AllDays).unwrap();
        let mut out = Vec::new();
        print_forecast(
            &mut out,
            &["OT".into()],
            &[1.0, 2.0],
            Some(&times),
            false,
            None,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("+1") && text.contains("+2"), "{text}");
        assert!(!text.contains("2020"), "{text}");
    }
}
