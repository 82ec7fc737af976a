//! `kinglet-export bert CKPT_DIR -o OUT.kinglet`

use super::Output;
use crate::export::{export_hf_classifier, ExportOptions, DEFAULT_MAX_TOKENS};
use anyhow::{bail, Context};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint directory.
    #[arg(value_name = "CKPT_DIR")]
    checkpoint: PathBuf,
    #[command(flatten)]
    output: Output,
    /// Weight precision in the bundle.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "int8", "q4"])]
    precision: String,
    /// Default truncation length in tokens (special tokens included).
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    max_tokens: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.precision != "f32" {
        bail!(
            "precision `{}` is not available yet; use --precision f32",
            args.precision
        );
    }
    let started = std::time::Instant::now();
    let options = ExportOptions {
        max_tokens: args.max_tokens,
    };
    let report = export_hf_classifier(&args.checkpoint, &args.output.output, &options)
        .with_context(|| format!("exporting {}", args.checkpoint.display()))?;
    println!(
        "wrote {} ({}, {} parameters, {:.1} MiB, f32) in {:.1} s; self-test round trip max |Δ| = {:.2e}",
        args.output.output.display(),
        report.architecture,
        report.parameter_count,
        report.bundle_bytes as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64(),
        report.round_trip_deviation,
    );
    Ok(())
}
