//! What a loaded bundle is, as one report: `kinglet inspect` renders it as text or JSON and
//! `kinglet serve --http` answers `GET /v1/model` with it.

use crate::engine::TensorSize;
use crate::error::Result;
use crate::kernels::KernelReport;
use crate::manifest::QuantizationReport;
use crate::memory::MemoryReport;
use crate::model::Loaded;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything `kinglet inspect` shows about a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// The file inspected.
    pub path: PathBuf,
    /// The bundle's name (the file's stem when the exporter was given none).
    pub name: String,
    /// The bundle's version (`--model-version` at export), may be empty.
    pub version: String,
    /// SHA-256 of the whole file.
    pub sha256: String,
    /// The Ed25519 key (hex) whose signature was checked, when signed.
    pub signed_by: Option<String>,
    /// The checkpoint's architecture (`BertForSequenceClassification` …).
    pub architecture: String,
    /// `f32`, `f16`, `int8` or `q4`.
    pub precision: String,
    /// Where the exporter read the model from.
    pub source: String,
    /// The exporter version that wrote the bundle.
    pub exporter_version: String,
    /// Parameters of the model.
    pub parameter_count: u64,
    /// Bytes of the bundle file.
    pub file_bytes: u64,
    /// Bytes of the graph section.
    pub graph_bytes: usize,
    /// Bytes of the tokenizer section (0 for forecasters).
    pub tokenizer_file_bytes: usize,
    /// The memory preflight of this load.
    pub memory: Option<MemoryReport>,
    /// `memory.peak_bytes`.
    pub peak_bytes: Option<u64>,
    /// `memory.budget_bytes`.
    pub budget_bytes: Option<u64>,
    /// The input the largest tensors were measured at (`128 tokens`, `336 rows × 7 columns`).
    pub largest_tensors_at: String,
    /// The ten largest intermediate tensors of one inference at that input.
    pub largest_tensors: Vec<TensorSize>,
    /// Self-test vectors in the bundle.
    pub self_test_cases: usize,
    /// The exporter's comparison of the quantized graph with the float one.
    pub quantization: Option<QuantizationReport>,
    /// Every layer with weights and the precision they are stored in, read from the graph.
    pub layers: Vec<crate::layers::LayerPrecision>,
    /// What the model answers.
    #[serde(flatten)]
    pub task: TaskReport,
    /// CPU features and kernels (with a profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<KernelReport>,
    /// Kernels and per-operator times (with a profile).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileReport>,
}

/// The task-specific part of a [`ModelReport`] (`"kind"` in JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TaskReport {
    /// A text classifier.
    Classifier {
        /// Label names, in logit order.
        labels: Vec<String>,
        /// Sigmoid scores (several labels may hold) instead of a softmax.
        multi_label: bool,
        /// Tokens per input, `[CLS]` and `[SEP]` included.
        max_tokens: usize,
        /// Position embeddings of the checkpoint.
        max_position_embeddings: usize,
    },
    /// A sentence-embedding model.
    Embedder {
        /// Length of the vectors.
        dimensions: usize,
        /// `mean`, `cls` or `max` over the tokens.
        pooling: String,
        /// True when the vectors have unit length.
        normalized: bool,
        /// Tokens per input, special tokens included.
        max_tokens: usize,
        /// Position embeddings of the checkpoint.
        max_position_embeddings: usize,
    },
    /// A token classifier (named entities).
    Tagger {
        /// Token label names (`O`, `B-PER` …), in logit order.
        labels: Vec<String>,
        /// Tokens per input, special tokens included.
        max_tokens: usize,
        /// Position embeddings of the checkpoint.
        max_position_embeddings: usize,
    },
    /// A forecaster.
    Forecaster {
        /// Input columns, in order.
        columns: Vec<String>,
        /// Forecast columns.
        targets: Vec<String>,
        /// Rows in.
        lookback: usize,
        /// Rows out.
        horizon: usize,
        /// Seconds between rows, when the training data had timestamps.
        step_seconds: Option<i64>,
    },
}

/// Where one inference spends its time on this CPU.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    /// Matrix-product kernel name → how many operators use it.
    pub matmul_kernels: BTreeMap<String, usize>,
    /// The input profiled.
    pub profile_input: String,
    /// Operator kinds, slowest first.
    pub profile: Vec<OperatorTime>,
}

/// Time of one operator kind in one inference.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorTime {
    /// Operator kind.
    pub op: String,
    /// Milliseconds, summed over its nodes.
    pub ms: f64,
    /// Nodes of that kind.
    pub nodes: usize,
}

/// Reports on a loaded bundle read from `path`; `profile` also times each operator kind on the
/// largest input (one extra inference, plus the plan's kernel list).
pub fn model_report(loaded: &mut Loaded, path: &Path, profile: bool) -> Result<ModelReport> {
    let (input, input_desc) = loaded.model.largest_input()?;
    let tensors = loaded.model.engine().intermediate_tensors(input.clone())?;
    let largest_tensors: Vec<_> = tensors.into_iter().take(10).collect();
    let profile = if profile {
        let ops = loaded.model.engine().profile(input)?;
        Some(ProfileReport {
            matmul_kernels: loaded.model.engine().matmul_kernels().into_iter().collect(),
            profile_input: input_desc.clone(),
            profile: ops
                .into_iter()
                .map(|(op, s, nodes)| OperatorTime {
                    op,
                    ms: s * 1e3,
                    nodes,
                })
                .collect(),
        })
    } else {
        None
    };
    let memory = loaded.model.memory().cloned();
    let m = &loaded.manifest;
    let name = if m.name.is_empty() {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        m.name.clone()
    };
    let task = loaded.model.task().report();
    Ok(ModelReport {
        path: path.to_owned(),
        name,
        version: m.version.clone(),
        sha256: loaded.sha256_hex.clone(),
        signed_by: loaded.signer.as_ref().map(|k| k.to_hex()),
        architecture: m.architecture.clone(),
        precision: m.precision.clone(),
        source: m.source.clone(),
        exporter_version: m.exporter_version.clone(),
        parameter_count: m.parameter_count,
        file_bytes: loaded.file_bytes,
        graph_bytes: loaded.graph_bytes,
        tokenizer_file_bytes: loaded.tokenizer_bytes,
        peak_bytes: memory.as_ref().map(|m| m.peak_bytes),
        budget_bytes: memory.as_ref().and_then(|m| m.budget_bytes),
        memory,
        largest_tensors_at: input_desc,
        largest_tensors,
        self_test_cases: m.self_test.cases.len(),
        quantization: m.quantization.clone(),
        layers: crate::layers::of_bundle(path)?,
        task,
        cpu: profile.as_ref().map(|_| crate::kernels::report()),
        profile,
    })
}
