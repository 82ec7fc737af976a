//! From a checkpoint directory to a verified bundle on disk.

use crate::checkpoint::Checkpoint;
use crate::error::{ExportError, Result};
use crate::weights::Weights;
use crate::{bert, distilbert};
use kinglet_runtime::bundle::Bundle;
use kinglet_runtime::manifest::{ClassifierMeta, Manifest, ModelKind, SelfTest, SelfTestCase};
use kinglet_runtime::Classifier;
use std::path::Path;
use tract_nnef::prelude::*;

/// Default truncation length, as in the training and reference scripts.
pub const DEFAULT_MAX_TOKENS: usize = 128;

/// Largest deviation `kinglet verify` accepts on f32 bundles (logit units). Kernels differ
/// between CPUs only in summation order, which moves logits by well under this.
pub const F32_SELF_TEST_TOLERANCE: f32 = 1e-3;

/// Texts every classifier bundle is self-tested on: short, long (truncated), non-ASCII.
pub const SELF_TEST_TEXTS: &[&str] = &[
    "an uplifting, beautifully acted film",
    "a dull, lifeless and thoroughly forgettable movie",
    "it is what it is.",
    "Crème brûlée, naïve café — 東京 😀 test",
    "the plot meanders for two hours, the dialogue is stilted, the pacing is glacial, and yet \
     somehow the lead performance is so luminous, so precise and so generous that by the end \
     you forgive nearly everything: the clumsy flashbacks, the overbearing score, the subplot \
     about the brother that goes nowhere, the ending that arrives twice; it is a flawed, \
     frustrating, occasionally wonderful piece of work that rewards patience more than it \
     deserves to, and I would watch it again tomorrow.",
];

/// What the exporter was asked for.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Default truncation length stored in the bundle.
    pub max_tokens: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// What the exporter did, for the report it prints.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// Architecture exported.
    pub architecture: String,
    /// Parameters in the checkpoint.
    pub parameter_count: u64,
    /// Size of the written bundle.
    pub bundle_bytes: u64,
    /// Largest deviation between the in-memory graph and the reloaded bundle on the self-test.
    pub round_trip_deviation: f32,
}

/// A classifier graph with what the manifest needs to describe it.
pub struct BuiltClassifier {
    /// Decluttered graph, `input_ids` → `logits`.
    pub model: TypedModel,
    /// Architecture name from config.json.
    pub architecture: String,
    /// Label names.
    pub labels: Vec<String>,
    /// Sigmoid scoring.
    pub multi_label: bool,
    /// Positions the graph can take.
    pub max_position_embeddings: usize,
    /// tokenizer.json bytes.
    pub tokenizer_json: Vec<u8>,
    /// Parameters in the checkpoint.
    pub parameter_count: u64,
}

/// Reads a Hugging Face checkpoint directory and builds its graph.
pub fn build_hf_classifier(dir: &Path) -> Result<BuiltClassifier> {
    let ck = Checkpoint::open(dir)?;
    let architecture = ck.architecture()?.to_string();
    let supported = [
        "BertForSequenceClassification",
        "DistilBertForSequenceClassification",
        "RobertaForSequenceClassification",
    ];
    if !supported.contains(&architecture.as_str()) {
        return Err(ExportError::Unsupported(format!(
            "architecture `{architecture}` in {} (kinglet exports {})",
            dir.join("config.json").display(),
            supported.join(", ")
        )));
    }
    let labels = ck.labels()?;
    let multi_label = ck.multi_label()?;
    let tokenizer_json = ck.tokenizer_json()?;
    let weights = Weights::open(dir)?;
    let parameter_count = weights.parameter_count();
    let (model, max_position_embeddings) = match architecture.as_str() {
        "DistilBertForSequenceClassification" => {
            let config: distilbert::Config = ck.arch_config()?;
            (
                distilbert::build(weights, &config, labels.len())?,
                config.max_position_embeddings,
            )
        }
        arch => {
            let flavour = if arch.starts_with("Roberta") {
                bert::Flavour::Roberta
            } else {
                bert::Flavour::Bert
            };
            let config: bert::Config = ck.arch_config()?;
            (
                bert::build(weights, &config, flavour, labels.len())?,
                bert::max_tokens(&config, flavour),
            )
        }
    };
    Ok(BuiltClassifier {
        model,
        architecture,
        labels,
        multi_label,
        max_position_embeddings,
        tokenizer_json,
        parameter_count,
    })
}

/// Serializes a decluttered graph to a deterministic NNEF tar.
pub fn graph_to_nnef(model: &TypedModel) -> Result<Vec<u8>> {
    kinglet_runtime::nnef_ext::nnef()
        .write_to_tar_with_config(model, Vec::new(), false, true)
        .map_err(ExportError::graph)
}

/// Exports a Hugging Face classifier checkpoint to `out`, self-tested and reloaded.
pub fn export_hf_classifier(
    dir: &Path,
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportReport> {
    let built = build_hf_classifier(dir)?;
    let meta = ClassifierMeta {
        labels: built.labels.clone(),
        multi_label: built.multi_label,
        max_tokens: options.max_tokens.min(built.max_position_embeddings),
        max_position_embeddings: built.max_position_embeddings,
    };
    let source = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut bundle = Bundle {
        path: out.to_owned(),
        manifest: Manifest {
            exporter_version: kinglet_runtime::VERSION.to_string(),
            architecture: built.architecture.clone(),
            precision: "f32".into(),
            source,
            parameter_count: built.parameter_count,
            model: ModelKind::Classifier(meta.clone()),
            self_test: SelfTest::default(),
        },
        graph: graph_to_nnef(&built.model)?,
        tokenizer: Some(built.tokenizer_json),
    };

    // The expected outputs come from the graph as the runtime will load it (NNEF bytes), and
    // are checked against the in-memory graph so a lossy serialization cannot slip through.
    let mut reloaded = Classifier::from_bundle(&bundle)?;
    let mut in_memory = Classifier::with_engine(
        meta,
        bundle.tokenizer.as_deref().unwrap_or_default(),
        kinglet_runtime::engine::Engine::from_typed(built.model)?,
    )?;
    let mut cases = Vec::new();
    let mut round_trip_deviation = 0f32;
    for text in SELF_TEST_TEXTS {
        let expected = reloaded.classify(text, None)?.logits;
        let direct = in_memory.classify(text, None)?.logits;
        round_trip_deviation =
            round_trip_deviation.max(kinglet_runtime::verify::max_deviation(&expected, &direct));
        cases.push(SelfTestCase {
            text: Some(text.to_string()),
            expected,
        });
    }
    if round_trip_deviation > 1e-5 {
        return Err(ExportError::SelfTest(format!(
            "the serialized graph deviates from the built one by {round_trip_deviation:e}"
        )));
    }
    bundle.manifest.self_test = SelfTest {
        tolerance: F32_SELF_TEST_TOLERANCE,
        cases,
    };

    bundle.write(out).map_err(ExportError::io(out))?;
    let on_disk = Bundle::read(out)?;
    let report = kinglet_runtime::verify::verify(&on_disk)?;
    if !report.passed() {
        let _ = std::fs::remove_file(out);
        return Err(ExportError::SelfTest(format!(
            "written bundle deviates by {:e} (tolerance {:e})",
            report.max_abs_deviation, report.tolerance
        )));
    }
    let bundle_bytes = std::fs::metadata(out).map_err(ExportError::io(out))?.len();
    Ok(ExportReport {
        architecture: built.architecture,
        parameter_count: built.parameter_count,
        bundle_bytes,
        round_trip_deviation,
    })
}
