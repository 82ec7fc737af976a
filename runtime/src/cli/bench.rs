//! `kinglet bench --model M [--tokens N | --input FILE] [--iterations K] [--threads T] [--json]`

use super::{CliError, ModelArg};
use crate::bench::BenchInput;
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.path()?;
    let started = Instant::now();
    let loaded = args.model.load()?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let input = match &args.input {
        Some(file) => {
            let text = std::fs::File::open(file)
                .and_then(|f| crate::lines::read_all(f, crate::lines::MAX_ROW_BYTES))
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
            let text = String::from_utf8(text)
                .map_err(|_| CliError::Input(format!("{} is not valid UTF-8", file.display())))?;
            BenchInput::Texts {
                texts: text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.split('\t').next().unwrap_or(l).to_string())
                    .collect(),
                source: file.display().to_string(),
            }
        }
        None => BenchInput::Tokens(args.tokens),
    };
    let bar = super::progress_bar(args.iterations as u64, "bench");
    let r = crate::bench::bench(
        loaded.model,
        &path,
        input,
        args.iterations,
        usize::from(args.model.threads),
        load_ms,
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    if args.json {
        outln!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    outln!(
        "{} — {}, {} thread(s), {} iterations",
        r.model.display(),
        r.input,
        r.threads,
        r.iterations
    );
    outln!(
        "latency   p50 {:.3} ms   p90 {:.3} ms   p99 {:.3} ms   ({:.1}/s)",
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        r.per_second
    );
    outln!(
        "load      {:.1} ms (file → ready), first inference {:.3} ms",
        r.load_ms,
        r.first_inference_ms
    );
    if let Some(rss) = r.peak_rss_bytes {
        outln!("peak RSS  {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    if let Some(m) = &r.memory {
        outln!(
            "memory    peak {} at {}, arena {}",
            crate::memory::mib(m.peak_bytes),
            m.measured_at,
            crate::memory::mib(m.arena_bytes)
        );
    }
    Ok(())
}
