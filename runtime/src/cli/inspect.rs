//! `kinglet inspect --model M [--json] [--profile]`

use super::ModelArg;
use crate::bundle::Bundle;
use crate::classify::Classifier;
use crate::forecast::Forecaster;
use crate::manifest::ModelKind;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Also load the graph for this CPU: list the matmul kernels tract picked and time each
    /// operator kind on one input of the maximum size.
    #[arg(long)]
    profile: bool,
}

/// Kernel names and per-operator timings of one run at the largest input.
struct Profile {
    kernels: Vec<(String, usize)>,
    ops: Vec<(String, f64, usize)>,
    input: String,
}

fn profile(bundle: &Bundle) -> anyhow::Result<Profile> {
    use tract_nnef::prelude::Tensor;
    match &bundle.manifest.model {
        ModelKind::Classifier(_) => {
            let mut classifier = Classifier::from_bundle(bundle)?;
            let ids = classifier.longest_input()?;
            classifier.logits(&ids)?; // warm-up
            let input = Tensor::from_shape(&[1, ids.len()], &ids)?;
            let ops = classifier.engine().profile(input)?;
            let kernels = classifier.engine().matmul_kernels();
            Ok(Profile {
                kernels,
                ops,
                input: format!("{} tokens", ids.len()),
            })
        }
        ModelKind::Forecaster(meta) => {
            let mut forecaster = Forecaster::from_bundle(bundle)?;
            let (l, f) = (meta.lookback, meta.columns.len());
            let window = vec![0f32; l * f];
            forecaster.run_normalized(&window)?; // warm-up
            let shape = if meta.channels_first {
                [1, f, l]
            } else {
                [1, l, f]
            };
            let ops = forecaster
                .engine()
                .profile(Tensor::from_shape(&shape, &window)?)?;
            let kernels = forecaster.engine().matmul_kernels();
            Ok(Profile {
                kernels,
                ops,
                input: format!("{l} rows × {f} columns"),
            })
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.path()?;
    let bundle = Bundle::read(&path)?;
    let file_bytes = std::fs::metadata(&path)?.len();
    let m = &bundle.manifest;
    let profile = if args.profile {
        Some(profile(&bundle)?)
    } else {
        None
    };
    let mut v = json!({
        "path": path,
        "architecture": m.architecture,
        "precision": m.precision,
        "source": m.source,
        "exporter_version": m.exporter_version,
        "parameter_count": m.parameter_count,
        "file_bytes": file_bytes,
        "graph_bytes": bundle.graph.len(),
        "tokenizer_bytes": bundle.tokenizer.as_ref().map_or(0, |t| t.len()),
        "self_test_cases": m.self_test.cases.len(),
        "quantization": m.quantization,
    });
    match &m.model {
        ModelKind::Classifier(c) => {
            v["kind"] = json!("classifier");
            v["labels"] = json!(c.labels);
            v["multi_label"] = json!(c.multi_label);
            v["max_tokens"] = json!(c.max_tokens);
            v["max_position_embeddings"] = json!(c.max_position_embeddings);
        }
        ModelKind::Forecaster(f) => {
            v["kind"] = json!("forecaster");
            v["columns"] = json!(f.columns);
            v["targets"] = json!(f.targets);
            v["lookback"] = json!(f.lookback);
            v["horizon"] = json!(f.horizon);
            v["step_seconds"] = json!(f.step_seconds);
        }
    }
    if let Some(p) = &profile {
        v["matmul_kernels"] = json!(p
            .kernels
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>());
        v["profile_input"] = json!(p.input);
        v["profile"] = json!(p
            .ops
            .iter()
            .map(|(op, s, n)| json!({"op": op, "ms": s * 1e3, "nodes": n}))
            .collect::<Vec<_>>());
    }
    if args.json {
        println!("{v}");
        return Ok(());
    }
    println!("model         {}", path.display());
    println!("architecture  {}", m.architecture);
    println!("precision     {}", m.precision);
    println!("source        {}", m.source);
    println!("parameters    {}", m.parameter_count);
    match &m.model {
        ModelKind::Classifier(c) => {
            println!("kind          classifier");
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
        }
        ModelKind::Forecaster(f) => {
            println!("kind          forecaster");
            println!("columns       {}", f.columns.join(", "));
            println!("targets       {}", f.targets.join(", "));
            println!(
                "window        {} rows in → {} rows out",
                f.lookback, f.horizon
            );
            if let Some(s) = f.step_seconds {
                println!("step          {s} s");
            }
        }
    }
    println!("file          {file_bytes} bytes");
    println!("  graph       {} bytes", bundle.graph.len());
    if let Some(t) = &bundle.tokenizer {
        println!("  tokenizer   {} bytes", t.len());
    }
    println!("self-test     {} cases", m.self_test.cases.len());
    println!("exporter      {}", m.exporter_version);
    if let Some(q) = &m.quantization {
        let agreement = q
            .label_agreement
            .map(|a| format!("agreement {:.2} %, ", 100.0 * a))
            .unwrap_or_default();
        let mse = match (q.float_mse, q.quantized_mse) {
            (Some(f), Some(p)) => format!(", MSE {f:.4} → {p:.4}"),
            _ => String::new(),
        };
        println!(
            "quantization  vs float on {} ({} rows): {agreement}max |Δ| {:.4}{mse}",
            q.data, q.rows, q.max_abs_logit_delta
        );
    }
    if let Some(p) = &profile {
        let kernels: Vec<String> = p.kernels.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        println!("matmul kernels {}", kernels.join(", "));
        println!("profile at {}:", p.input);
        for (op, s, n) in p.ops.iter().take(12) {
            println!("  {op:<28} {:>9.3} ms  ({n} nodes)", s * 1e3);
        }
    }
    Ok(())
}
