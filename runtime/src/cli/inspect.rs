//! `kinglet inspect --model M [--json] [--profile]`, `kinglet inspect --cpu [--json]`

use super::{printable, ModelArg};
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
    /// Print only the CPU features kinglet detected and the kernel it chose for each family
    /// (no model is loaded).
    #[arg(long)]
    cpu: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cpu = crate::kernels::report();
    if args.cpu {
        if args.json {
            outln!("{}", serde_json::to_string(&cpu)?);
        } else {
            outln!("{cpu}");
        }
        return Ok(());
    }
    let path = args.model.path()?;
    let mut loaded = args.model.load()?;
    let (input, input_desc) = loaded.model.largest_input()?;
    let tensors = loaded.model.engine().intermediate_tensors(input.clone())?;
    let largest: Vec<_> = tensors.into_iter().take(10).collect();
    let profile = if args.profile {
        let ops = loaded.model.engine().profile(input)?;
        Some((loaded.model.engine().matmul_kernels(), ops))
    } else {
        None
    };
    let memory = loaded.model.memory().cloned();
    let m = &loaded.manifest;
    let file_bytes = loaded.file_bytes;
    let name = if m.name.is_empty() {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        m.name.clone()
    };
    let signer = loaded.signer.as_ref().map(|k| k.to_hex());
    let mut v = json!({
        "path": path,
        "name": name,
        "version": m.version,
        "sha256": loaded.sha256_hex,
        "signed_by": signer,
        "architecture": m.architecture,
        "precision": m.precision,
        "source": m.source,
        "exporter_version": m.exporter_version,
        "parameter_count": m.parameter_count,
        "file_bytes": file_bytes,
        "graph_bytes": loaded.graph_bytes,
        "tokenizer_file_bytes": loaded.tokenizer_bytes,
        "memory": memory,
        "peak_bytes": memory.as_ref().map(|m| m.peak_bytes),
        "budget_bytes": memory.as_ref().and_then(|m| m.budget_bytes),
        "largest_tensors_at": input_desc,
        "largest_tensors": largest,
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
    if profile.is_some() {
        v["cpu"] = json!(cpu);
    }
    if let Some((kernels, ops)) = &profile {
        v["matmul_kernels"] = json!(kernels
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>());
        v["profile_input"] = json!(input_desc);
        v["profile"] = json!(ops
            .iter()
            .map(|(op, s, n)| json!({"op": op, "ms": s * 1e3, "nodes": n}))
            .collect::<Vec<_>>());
    }
    if args.json {
        outln!("{v}");
        return Ok(());
    }
    outln!("model         {}", path.display());
    outln!("name          {}", printable(&name));
    if !m.version.is_empty() {
        outln!("version       {}", printable(&m.version));
    }
    outln!("sha256        {}", loaded.sha256_hex);
    match &signer {
        Some(key) => outln!("signed by     ed25519 {key} (signature checked)"),
        None => outln!("signed by     nobody (unsigned)"),
    }
    outln!("architecture  {}", printable(&m.architecture));
    outln!("precision     {}", printable(&m.precision));
    outln!("source        {}", printable(&m.source));
    outln!("parameters    {}", m.parameter_count);
    match &m.model {
        ModelKind::Classifier(c) => {
            outln!("kind          classifier");
            outln!("labels        {}", printable(&c.labels.join(", ")));
            outln!(
                "scores        {}",
                if c.multi_label {
                    "sigmoid (multi-label)"
                } else {
                    "softmax"
                }
            );
            outln!(
                "max tokens    {} (positions: {})",
                c.max_tokens,
                c.max_position_embeddings
            );
        }
        ModelKind::Forecaster(f) => {
            outln!("kind          forecaster");
            outln!("columns       {}", printable(&f.columns.join(", ")));
            outln!("targets       {}", printable(&f.targets.join(", ")));
            outln!(
                "window        {} rows in → {} rows out",
                f.lookback,
                f.horizon
            );
            if let Some(s) = f.step_seconds {
                outln!("step          {s} s");
            }
        }
    }
    outln!("file          {file_bytes} bytes");
    outln!("  graph       {} bytes", loaded.graph_bytes);
    if loaded.tokenizer_bytes > 0 {
        outln!("  tokenizer   {} bytes", loaded.tokenizer_bytes);
    }
    if let Some(mem) = &memory {
        use crate::memory::mib;
        outln!("memory        measured at {} (preflight)", mem.measured_at);
        outln!("  weights     {:>10}  (as parsed)", mib(mem.weights_bytes));
        outln!(
            "  plan        {:>10}  (optimized plan minus the parsed weights)",
            format!("{:+.1} MiB", mem.plan_bytes as f64 / 1048576.0)
        );
        outln!("  tokenizer   {:>10}", mib(mem.tokenizer_bytes));
        outln!(
            "  resident    {:>10}  (held between requests)",
            mib(mem.resident_bytes)
        );
        outln!(
            "  activations {:>10}  (one inference at {})",
            mib(mem.activation_peak_bytes),
            mem.measured_at
        );
        outln!("  load peak   {:>10}", mib(mem.load_peak_bytes));
        outln!(
            "  peak        {:>10}  (peak_bytes = {})",
            mib(mem.peak_bytes),
            mem.peak_bytes
        );
        outln!(
            "  arena       {:>10}  (activations + margin {})",
            mib(mem.arena_bytes),
            mib(mem.margin_bytes)
        );
        outln!(
            "  budget      {:>10}  (needs {})",
            mem.budget_bytes.map_or("none".to_string(), mib),
            mib(mem.needs_bytes)
        );
    }
    outln!("largest tensors at {input_desc}:");
    for t in &largest {
        outln!(
            "  {:>10}  {:<28} {} ({})",
            crate::memory::mib(t.bytes),
            t.shape,
            t.node,
            t.op
        );
    }
    outln!("self-test     {} cases", m.self_test.cases.len());
    outln!("exporter      {}", printable(&m.exporter_version));
    if let Some(q) = &m.quantization {
        let agreement = q
            .label_agreement
            .map(|a| format!("agreement {:.2} %, ", 100.0 * a))
            .unwrap_or_default();
        let mse = match (q.float_mse, q.quantized_mse) {
            (Some(f), Some(p)) => format!(", MSE {f:.4} → {p:.4}"),
            _ => String::new(),
        };
        outln!(
            "quantization  vs float on {} ({} rows): {agreement}max |Δ| {:.4}{mse}",
            printable(&q.data),
            q.rows,
            q.max_abs_logit_delta
        );
    }
    if let Some((kernels, ops)) = &profile {
        let kernels: Vec<String> = kernels.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        outln!("{cpu}");
        outln!("matmul kernels {}", kernels.join(", "));
        outln!("profile at {input_desc}:");
        for (op, s, n) in ops.iter().take(12) {
            outln!("  {op:<28} {:>9.3} ms  ({n} nodes)", s * 1e3);
        }
    }
    Ok(())
}
