//! `kinglet inspect --model M [--json]`

use super::ModelArg;
use crate::bundle::Bundle;
use crate::manifest::ModelKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.path()?;
    let bundle = Bundle::read(&path)?;
    let file_bytes = std::fs::metadata(&path)?.len();
    let m = &bundle.manifest;
    let ModelKind::Classifier(c) = &m.model;
    if args.json {
        let v = serde_json::json!({
            "path": path,
            "kind": "classifier",
            "architecture": m.architecture,
            "precision": m.precision,
            "source": m.source,
            "exporter_version": m.exporter_version,
            "parameter_count": m.parameter_count,
            "labels": c.labels,
            "multi_label": c.multi_label,
            "max_tokens": c.max_tokens,
            "max_position_embeddings": c.max_position_embeddings,
            "file_bytes": file_bytes,
            "graph_bytes": bundle.graph.len(),
            "tokenizer_bytes": bundle.tokenizer.as_ref().map_or(0, |t| t.len()),
            "self_test_cases": m.self_test.cases.len(),
        });
        println!("{v}");
    } else {
        println!("model         {}", path.display());
        println!("kind          classifier ({})", m.architecture);
        println!("precision     {}", m.precision);
        println!("source        {}", m.source);
        println!("parameters    {}", m.parameter_count);
        println!("labels        {}", c.labels.join(", "));
        println!(
            "scores        {}",
            if c.multi_label {
                "sigmoid (multi-label)"
            } else {
                "softmax"
            }
        );
        println!(
            "max tokens    {} (positions: {})",
            c.max_tokens, c.max_position_embeddings
        );
        println!("file          {file_bytes} bytes");
        println!("  graph       {} bytes", bundle.graph.len());
        println!(
            "  tokenizer   {} bytes",
            bundle.tokenizer.as_ref().map_or(0, |t| t.len())
        );
        println!("self-test     {} cases", m.self_test.cases.len());
        println!("exporter      {}", m.exporter_version);
    }
    Ok(())
}
