//! `kinglet inspect --model M [--json] [--profile]`, `kinglet inspect --cpu [--json]`

use super::{printable, ModelArg};
use crate::inspect::{ModelReport, TaskReport};

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
    let r = crate::inspect::model_report(&mut loaded, &path, args.profile)?;
    if args.json {
        outln!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    render(&r)?;
    Ok(())
}

/// The report as text.
fn render(r: &ModelReport) -> std::io::Result<()> {
    outln!("model         {}", r.path.display());
    outln!("name          {}", printable(&r.name));
    if !r.version.is_empty() {
        outln!("version       {}", printable(&r.version));
    }
    outln!("sha256        {}", r.sha256);
    match &r.signed_by {
        Some(key) => outln!("signed by     ed25519 {key} (signature checked)"),
        None => outln!("signed by     nobody (unsigned)"),
    }
    outln!("architecture  {}", printable(&r.architecture));
    outln!("precision     {}", printable(&r.precision));
    outln!("source        {}", printable(&r.source));
    outln!("parameters    {}", r.parameter_count);
    match &r.task {
        TaskReport::Classifier {
            labels,
            multi_label,
            max_tokens,
            max_position_embeddings,
        } => {
            outln!("kind          classifier");
            outln!("labels        {}", printable(&labels.join(", ")));
            outln!(
                "scores        {}",
                if *multi_label {
                    "sigmoid (multi-label)"
                } else {
                    "softmax"
                }
            );
            outln!(
                "max tokens    {} (positions: {})",
                max_tokens,
                max_position_embeddings
            );
        }
        TaskReport::Embedder {
            dimensions,
            pooling,
            normalized,
            max_tokens,
            max_position_embeddings,
        } => {
            outln!("kind          embedder");
            outln!(
                "vectors       {dimensions} values, {} pooling{}",
                printable(pooling),
                if *normalized { ", unit length" } else { "" }
            );
            outln!("max tokens    {max_tokens} (positions: {max_position_embeddings})");
        }
        TaskReport::Tagger {
            labels,
            max_tokens,
            max_position_embeddings,
        } => {
            outln!("kind          tagger (token classifier)");
            outln!("labels        {}", printable(&labels.join(", ")));
            outln!("max tokens    {max_tokens} (positions: {max_position_embeddings})");
        }
        TaskReport::Forecaster {
            columns,
            targets,
            lookback,
            horizon,
            step_seconds,
        } => {
            outln!("kind          forecaster");
            outln!("columns       {}", printable(&columns.join(", ")));
            outln!("targets       {}", printable(&targets.join(", ")));
            outln!("window        {} rows in → {} rows out", lookback, horizon);
            if let Some(s) = step_seconds {
                outln!("step          {s} s");
            }
        }
    }
    outln!("file          {} bytes", r.file_bytes);
    outln!("  graph       {} bytes", r.graph_bytes);
    if r.tokenizer_file_bytes > 0 {
        outln!("  tokenizer   {} bytes", r.tokenizer_file_bytes);
    }
    if let Some(mem) = &r.memory {
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
    outln!("largest tensors at {}:", r.largest_tensors_at);
    for t in &r.largest_tensors {
        outln!(
            "  {:>10}  {:<28} {} ({})",
            crate::memory::mib(t.bytes),
            t.shape,
            t.node,
            t.op
        );
    }
    outln!("self-test     {} cases", r.self_test_cases);
    outln!("exporter      {}", printable(&r.exporter_version));
    if let Some(q) = &r.quantization {
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
    for line in layer_lines(&r.layers) {
        outln!("{line}");
    }
    if let (Some(p), Some(cpu)) = (&r.profile, &r.cpu) {
        let kernels: Vec<String> = p
            .matmul_kernels
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        outln!("{cpu}");
        outln!("matmul kernels {}", kernels.join(", "));
        outln!("profile at {}:", p.profile_input);
        for o in p.profile.iter().take(12) {
            outln!("  {:<28} {:>9.3} ms  ({} nodes)", o.op, o.ms, o.nodes);
        }
    }
    Ok(())
}

/// Layers with weights, grouped by stored precision and operator, with their names (the first
/// three of each group): what `inspect` and the exporter's summary print.
pub fn layer_lines(layers: &[crate::layers::LayerPrecision]) -> Vec<String> {
    let mut groups: Vec<(&str, &str, Vec<&str>, u64)> = Vec::new();
    for l in layers {
        match groups
            .iter_mut()
            .find(|(s, o, _, _)| *s == l.stored && *o == l.op)
        {
            Some(g) => {
                g.2.push(&l.name);
                g.3 += l.parameters;
            }
            None => groups.push((&l.stored, &l.op, vec![&l.name], l.parameters)),
        }
    }
    let mut lines = vec![format!(
        "layers        {} with weights (stored precision; computed in f32, int8 in integers)",
        layers.len()
    )];
    for (stored, op, names, parameters) in groups {
        let mut shown: Vec<String> = names
            .iter()
            .take(3)
            .map(|n| printable(n).into_owned())
            .collect();
        if names.len() > 3 {
            shown.push(format!("… {} more", names.len() - 3));
        }
        lines.push(format!(
            "  {stored:<5} {:<16} ×{:<3} {parameters:>10} parameters  {}",
            printable(op),
            names.len(),
            shown.join(", ")
        ));
    }
    lines
}
