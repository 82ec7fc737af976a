//! Forecast from the last rows of a CSV with a kinglet bundle from Rust.
//!
//! `cargo run --release -p kinglet-runtime --example forecast -- [MODEL.kinglet] [FILE.csv]`
//! (default: the shipped `models/etth1-dlinear.kinglet` and `examples/sensors.csv`).

use kinglet_runtime::{Forecaster, LoadOptions};

#[global_allocator]
static ALLOCATOR: kinglet_runtime::KingletAllocator = kinglet_runtime::KingletAllocator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // arguments by their ending (a test harness adds filters of its own)
    let arg = |ending: &str| std::env::args().skip(1).find(|a| a.ends_with(ending));
    let model = arg(".kinglet").unwrap_or_else(|| shipped("models/etth1-dlinear.kinglet"));
    let csv = arg(".csv").unwrap_or_else(|| shipped("examples/sensors.csv"));
    let mut forecaster = Forecaster::load(&model, &LoadOptions::default())?;
    let meta = forecaster.meta.clone();

    // the model's columns, found by name in the header; the last `lookback` rows
    let text = std::fs::read_to_string(&csv)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
    let index: Vec<usize> = meta
        .columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h.trim() == c)
                .ok_or(format!("no column {c}"))
        })
        .collect::<Result<_, _>>()?;
    let rows: Vec<&str> = lines.collect();
    if rows.len() < meta.lookback {
        return Err(format!(
            "{csv}: {} rows, the model needs {}",
            rows.len(),
            meta.lookback
        )
        .into());
    }
    let mut window = Vec::with_capacity(meta.lookback * index.len());
    for row in &rows[rows.len() - meta.lookback..] {
        let cells: Vec<&str> = row.split(',').collect();
        for &i in &index {
            window.push(cells.get(i).ok_or("short row")?.trim().parse::<f32>()?);
        }
    }

    let forecast = forecaster.forecast(&window)?;
    println!(
        "{model}: {} rows of {} → {} rows of {}",
        meta.lookback,
        meta.columns.join(","),
        meta.horizon,
        meta.targets.join(",")
    );
    for (step, row) in forecast
        .values
        .chunks(meta.targets.len())
        .take(3)
        .enumerate()
    {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:.3}")).collect();
        println!("+{}  {}", step + 1, cells.join("  "));
    }
    Ok(())
}

fn shipped(path: &str) -> String {
    [path.to_string(), format!("../{path}")]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| path.to_string())
}
