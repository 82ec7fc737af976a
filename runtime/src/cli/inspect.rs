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
    /// Also load the graph for this CPU: list the matmul kernels tract picked and time each
    /// operator kind on one input of the maximum length.
    #[arg(long)]
    profile: bool,
}

/// Kernel names and per-operator timings of one run at the longest input.
struct Profile {
    kernels: Vec<(String, usize)>,
    ops: Vec<(String, f64, usize)>,
    tokens: usize,
}

fn profile(bundle: &Bundle) -> anyhow::Result<Profile> {
    let mut classifier = crate::classify::Classifier::from_bundle(bundle)?;
    let ids = classifier.longest_input()?;
    classifier.logits(&ids)?; // warm-up
    let input = tract_nnef::prelude::Tensor::from_shape(&[1, ids.len()], &ids)?;
    let ops = classifier.engine().profile(input)?;
    Ok(Profile {
        kernels: classifier.engine().matmul_kernels(),
        ops,
        tokens: ids.len(),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.path()?;
    let bundle = Bundle::read(&path)?;
    let file_bytes = std::fs::metadata(&path)?.len();
    let m = &bundle.manifest;
    let ModelKind::Classifier(c) = &m.model;
    let profile = if args.profile {
        Some(profile(&bundle)?)
    } else {
        None
    };
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
            "quantization": m.quantization,
        });
        let mut v = v;
        if let Some(p) = &profile {
            v["matmul_kernels"] = serde_json::json!(p
                .kernels
                .iter()
                .cloned()
                .collect::<std::collections::BTreeMap<_, _>>());
            v["profile_tokens"] = serde_json::json!(p.tokens);
            v["profile"] = serde_json::json!(p
                .ops
                .iter()
                .map(|(op, s, n)| serde_json::json!({"op": op, "ms": s * 1e3, "nodes": n}))
                .collect::<Vec<_>>());
        }
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
        if let Some(q) = &m.quantization {
            println!(
                "quantization  vs float on {} ({} rows): agreement {:.2} %, max |Δ logit| {:.4}",
                q.data,
                q.rows,
                100.0 * q.label_agreement,
                q.max_abs_logit_delta
            );
        }
        if let Some(p) = &profile {
            let kernels: Vec<String> = p.kernels.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            println!("matmul kernels {}", kernels.join(", "));
            println!("profile at {} tokens:", p.tokens);
            for (op, s, n) in p.ops.iter().take(12) {
                println!("  {op:<24} {:>9.3} ms  ({n} nodes)", s * 1e3);
            }
        }
    }
    Ok(())
}
