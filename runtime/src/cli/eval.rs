//! `kinglet eval --model M --tsv FILE [--json]`

use super::ModelArg;
use crate::bundle::Bundle;
use crate::classify::Classifier;
use crate::dataset::read_labeled_tsv;
use crate::metrics::ClassificationReport;
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Labeled rows `text<TAB>label` (label as index or name; a header line is allowed).
    #[arg(long, value_name = "FILE")]
    tsv: PathBuf,
    /// Truncate inputs to this many tokens [default: the bundle's].
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bundle = Bundle::read(args.model.path()?)?;
    let mut classifier = Classifier::from_bundle(&bundle)?;
    let labels = classifier.meta.labels.clone();
    let rows = read_labeled_tsv(&args.tsv, &labels)?;
    let progress = super::progress_bar(rows.len() as u64, "eval");
    let started = std::time::Instant::now();
    let mut pairs = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = classifier
            .classify(&row.text, args.max_tokens)
            .with_context(|| format!("{} line {}", args.tsv.display(), row.line))?;
        pairs.push((row.label, r.label_index));
        progress.inc(1);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let report = ClassificationReport::from_pairs(&pairs, labels.len());
    let rows_per_second = report.rows as f64 / seconds.max(1e-9);
    if args.json {
        let per_class: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .zip(&report.per_class)
            .map(|(name, m)| (name.clone(), serde_json::to_value(m).expect("serializable")))
            .collect();
        let v = serde_json::json!({
            "rows": report.rows,
            "accuracy": report.accuracy,
            "macro_f1": report.macro_f1,
            "per_class": per_class,
            "labels": labels,
            "confusion": report.confusion,
            "rows_per_second": rows_per_second,
            "precision": bundle.manifest.precision,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "{} rows  accuracy {:.2} %  macro-F1 {:.4}  ({:.0} rows/s, {} bundle)",
        report.rows,
        100.0 * report.accuracy,
        report.macro_f1,
        rows_per_second,
        bundle.manifest.precision
    );
    let width = labels.iter().map(|l| l.len()).max().unwrap_or(5).max(5);
    println!("{:width$}  precision  recall  f1      support", "class");
    for (name, m) in labels.iter().zip(&report.per_class) {
        println!(
            "{name:width$}  {:.4}     {:.4}  {:.4}  {}",
            m.precision, m.recall, m.f1, m.support
        );
    }
    println!("confusion (rows: true label, columns: predicted)");
    for (name, row) in labels.iter().zip(&report.confusion) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>7}")).collect();
        println!("{name:width$}  {}", cells.join(""));
    }
    Ok(())
}
