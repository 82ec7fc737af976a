//! `kinglet-export bert CKPT_DIR -o OUT.kinglet [--precision int8|f16|q4|f32] [--check DATA.tsv]`

use super::Output;
use crate::export::{export_hf_classifier, CheckOptions, ExportOptions, DEFAULT_MAX_TOKENS};
use crate::quantize::Precision;
use anyhow::Context;
use kinglet_runtime::manifest::QuantizationReport;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint directory.
    #[arg(value_name = "CKPT_DIR")]
    checkpoint: PathBuf,
    #[command(flatten)]
    output: Output,
    /// Weight precision: int8 (per-channel int8 weights, int8 matmuls), f16, q4 (Q4_0
    /// blocks) or f32.
    #[arg(long, default_value = "int8", value_parser = ["int8", "f16", "q4", "f32"])]
    precision: String,
    /// Default truncation length in tokens (special tokens included).
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    max_tokens: usize,
    /// Labeled rows (`text<TAB>label`) on which the quantized model must keep the float
    /// model's accuracy (embedding and token models read the first column and compare
    /// cosine or entity F1); without it the quantized graph is compared with the float one on
    /// the self-test texts and 200 SST-2 phrases, and nothing is refused.
    #[arg(long, value_name = "DATA.tsv")]
    check: Option<PathBuf>,
    /// Use only the first N rows of --check.
    #[arg(long, value_name = "N", requires = "check")]
    check_rows: Option<usize>,
    /// Refuse to write the bundle when accuracy drops by more than this many points.
    #[arg(long, value_name = "POINTS", default_value_t = 1.0, requires = "check")]
    max_drop: f64,
}

pub fn run(args: Args) -> anyhow::Result<super::Report> {
    let started = std::time::Instant::now();
    let precision: Precision = args.precision.parse()?;
    let check = args.check.map(|tsv| CheckOptions {
        tsv,
        rows: args.check_rows,
        max_drop_points: args.max_drop,
    });
    let options = ExportOptions {
        max_tokens: args.max_tokens,
        precision,
        check,
    };
    let stamp = args.output.stamp.load()?;
    let report = export_hf_classifier(&args.checkpoint, &args.output.output, &options)
        .with_context(|| format!("exporting {}", args.checkpoint.display()))?;
    let stamped = super::finish(&args.output.output, &stamp)?;
    let seconds = started.elapsed().as_secs_f64();
    let mut text = super::signed_line(&args.output.output, &stamped);
    text.extend(kinglet_runtime::cli::inspect::layer_lines(&report.layers));
    if let Some(q) = &report.quantization {
        text.extend(comparison(q, precision));
    }
    text.push(format!(
        "wrote {} ({}, {} parameters, {:.1} MiB, {precision}) in {seconds:.1} s; self-test round trip max |Δ| = {:.2e}",
        args.output.output.display(),
        report.architecture,
        report.parameter_count,
        stamped.bundle_bytes as f64 / (1024.0 * 1024.0),
        report.round_trip_deviation,
    ));
    let json = super::export_json(&args.output.output, precision, seconds, &report, &stamped);
    Ok(super::Report::Done { text, json })
}

fn comparison(q: &QuantizationReport, precision: Precision) -> Vec<String> {
    let mut lines = vec![format!(
        "float vs {precision} on {} ({} rows)",
        q.data, q.rows
    )];
    if let (Some(f), Some(p)) = (q.float_accuracy, q.quantized_accuracy) {
        lines.push(format!(
            "  accuracy        float {:.2} %   {precision} {:.2} %   drop {:+.2} points",
            100.0 * f,
            100.0 * p,
            100.0 * (f - p)
        ));
    }
    if let Some(a) = q.label_agreement {
        lines.push(format!("  label agreement {:.2} %", 100.0 * a));
    }
    if let Some(f1) = q.entity_f1 {
        lines.push(format!("  entity F1 vs f32 {f1:.4}"));
    }
    if let (Some(min), Some(mean)) = (q.min_cosine, q.mean_cosine) {
        lines.push(format!("  cosine to f32   min {min:.5}   mean {mean:.5}"));
        lines.push(format!(
            "  |Δ value|       max {:.4}   mean {:.4}",
            q.max_abs_logit_delta, q.mean_abs_logit_delta
        ));
        return lines;
    }
    lines.push(format!(
        "  |Δ logit|       max {:.4}   mean {:.4}",
        q.max_abs_logit_delta, q.mean_abs_logit_delta
    ));
    lines
}
