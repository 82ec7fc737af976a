//! What `kinglet bench` measures, as a report: latency percentiles of repeated inferences on
//! this machine, load time, first-inference time and memory.

use crate::error::{Error, Result};
use crate::memory::MemoryReport;
use crate::model::Model;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to time.
#[derive(Debug, Clone)]
pub enum BenchInput {
    /// Classifiers: one input of exactly this many tokens (`None`: the bundle's maximum);
    /// forecasters: a window of the model's size.
    Tokens(Option<usize>),
    /// Classifiers: these texts, cycled through; `source` names them in the report.
    Texts {
        /// The texts.
        texts: Vec<String>,
        /// Where they came from (a file name).
        source: String,
    },
}

/// Latency of one model on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The bundle timed.
    pub model: PathBuf,
    /// What was timed (`128 tokens`, `10 texts of reviews.txt`, `336 rows × 7 columns`).
    pub input: String,
    /// Worker threads of the kernels.
    pub threads: usize,
    /// Timed iterations (after a warm-up).
    pub iterations: usize,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Inferences per second over the timed loop.
    pub per_second: f64,
    /// From opening the file to ready (memory preflight and self-checks included).
    pub load_ms: f64,
    /// The first inference after load.
    pub first_inference_ms: f64,
    /// Peak resident set size of the process (Linux), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The memory preflight of the load.
    pub memory: Option<MemoryReport>,
}

/// Times `iterations` inferences of `model` (loaded from `path` in `load_ms`) on `input`;
/// `on_iteration` is called after each timed one (a progress bar).
pub fn bench(
    model: Model,
    path: &Path,
    input: BenchInput,
    iterations: usize,
    threads: usize,
    load_ms: f64,
    mut on_iteration: impl FnMut(),
) -> Result<BenchReport> {
    if iterations == 0 {
        return Err(Error::BadInput("--iterations must be at least 1".into()));
    }
    let memory = model.memory().cloned();
    let mut model = model;
    let crate::task::BenchRun {
        mut step,
        input: input_desc,
    } = model.task_dyn().bench(input)?;
    let first = Instant::now();
    step(0)?;
    let first_inference_ms = first.elapsed().as_secs_f64() * 1e3;
    for i in 0..(iterations / 10).clamp(3, 20) {
        step(i)?;
    }
    let mut times_ms = Vec::with_capacity(iterations);
    let all = Instant::now();
    for i in 0..iterations {
        let t = Instant::now();
        step(i)?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
        on_iteration();
    }
    let per_second = iterations as f64 / all.elapsed().as_secs_f64();
    times_ms.sort_by(f64::total_cmp);
    Ok(BenchReport {
        model: path.to_owned(),
        input: input_desc,
        threads,
        iterations,
        p50_ms: percentile(&times_ms, 0.5),
        p90_ms: percentile(&times_ms, 0.9),
        p99_ms: percentile(&times_ms, 0.99),
        per_second,
        load_ms,
        first_inference_ms,
        peak_rss_bytes: peak_rss_bytes(),
        memory,
    })
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let i = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)]
}

/// Peak resident set size of this process, from /proc (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
