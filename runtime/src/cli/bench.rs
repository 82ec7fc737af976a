//! `kinglet bench --model M [--tokens N | --input FILE] [--iterations K] [--threads T] [--json]`

use super::{CliError, ModelArg};
use crate::model::Model;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Classifiers: time inputs of exactly N tokens [default: the bundle's maximum].
    #[arg(long, value_name = "N", conflicts_with = "input")]
    tokens: Option<usize>,
    /// Classifiers: time the texts of FILE (one per line), cycling through them.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Timed iterations after warm-up.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Peak resident set size of this process, from /proc (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let i = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)]
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.iterations == 0 {
        return Err(CliError::Input("--iterations must be at least 1".into()).into());
    }
    let path = args.model.path()?;
    let started = Instant::now();
    let loaded = args.model.load()?;
    let memory = loaded.model.memory().cloned();
    let (mut step, input_desc): (Box<dyn FnMut(usize) -> anyhow::Result<()>>, String) =
        match loaded.model {
            Model::Classifier(mut c) => {
                let meta = c.meta.clone();
                let inputs: Vec<Vec<i64>> = match &args.input {
                    Some(file) => {
                        let text = std::fs::File::open(file)
                            .and_then(|f| crate::lines::read_all(f, crate::lines::MAX_ROW_BYTES))
                            .map_err(|e| {
                                CliError::Input(format!("cannot read {}: {e}", file.display()))
                            })?;
                        let text = String::from_utf8(text).map_err(|_| {
                            CliError::Input(format!("{} is not valid UTF-8", file.display()))
                        })?;
                        let lines: Vec<String> = text
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(|l| l.split('\t').next().unwrap_or(l).to_string())
                            .collect();
                        if lines.is_empty() {
                            return Err(
                                CliError::Input(format!("{} has no text", file.display())).into()
                            );
                        }
                        lines
                            .iter()
                            .map(|l| c.token_ids(l))
                            .collect::<crate::Result<_>>()?
                    }
                    None => {
                        let n = args.tokens.unwrap_or(meta.max_tokens);
                        if n < 2 || n > meta.max_position_embeddings {
                            return Err(CliError::Input(format!(
                                "--tokens must be between 2 and {}",
                                meta.max_position_embeddings
                            ))
                            .into());
                        }
                        let mut ids = c.longest_input()?;
                        let last = *ids.last().unwrap_or(&0);
                        ids.truncate(n - 1);
                        ids.push(last);
                        vec![ids]
                    }
                };
                let desc = match &args.input {
                    Some(f) => format!("{} texts of {}", inputs.len(), f.display()),
                    None => format!("{} tokens", inputs[0].len()),
                };
                (
                    Box::new(move |i| {
                        c.logits(&inputs[i % inputs.len()])?;
                        Ok(())
                    }),
                    desc,
                )
            }
            Model::Forecaster(mut f) => {
                let meta = f.meta.clone();
                let window: Vec<f32> = (0..meta.lookback * meta.columns.len())
                    .map(|i| ((i as f32) * 0.1).sin())
                    .collect();
                let desc = format!("{} rows × {} columns", meta.lookback, meta.columns.len());
                (
                    Box::new(move |_| {
                        f.forecast(&window)?;
                        Ok(())
                    }),
                    desc,
                )
            }
        };
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let first = Instant::now();
    step(0)?;
    let first_ms = first.elapsed().as_secs_f64() * 1e3;
    for i in 0..(args.iterations / 10).clamp(3, 20) {
        step(i)?;
    }
    let mut times_ms = Vec::with_capacity(args.iterations);
    let bar = super::progress_bar(args.iterations as u64, "bench");
    let all = Instant::now();
    for i in 0..args.iterations {
        let t = Instant::now();
        step(i)?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let per_second = args.iterations as f64 / all.elapsed().as_secs_f64();
    times_ms.sort_by(f64::total_cmp);
    let (p50, p90, p99) = (
        percentile(&times_ms, 0.5),
        percentile(&times_ms, 0.9),
        percentile(&times_ms, 0.99),
    );
    let rss = peak_rss_bytes();
    if args.json {
        let v = serde_json::json!({
            "model": path,
            "input": input_desc,
            "threads": args.model.threads,
            "iterations": args.iterations,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "per_second": per_second,
            "load_ms": load_ms,
            "first_inference_ms": first_ms,
            "peak_rss_bytes": rss,
            "memory": memory,
        });
        outln!("{v}");
    } else {
        outln!(
            "{} — {input_desc}, {} thread(s), {} iterations",
            path.display(),
            args.model.threads,
            args.iterations
        );
        outln!(
            "latency   p50 {p50:.3} ms   p90 {p90:.3} ms   p99 {p99:.3} ms   ({per_second:.1}/s)"
        );
        outln!("load      {load_ms:.1} ms (file → ready), first inference {first_ms:.3} ms");
        if let Some(rss) = rss {
            outln!("peak RSS  {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
        }
        if let Some(m) = &memory {
            outln!(
                "memory    peak {} at {}, arena {}",
                crate::memory::mib(m.peak_bytes),
                m.measured_at,
                crate::memory::mib(m.arena_bytes)
            );
        }
    }
    Ok(())
}
