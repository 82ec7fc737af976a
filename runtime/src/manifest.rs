//! The bundle manifest: what the model is, how to feed it and how to check it.
//!
//! Serialized as JSON in the bundle's `manifest` section. Fields are only ever added, with
//! `#[serde(default)]`, so older bundles stay readable.

use serde::{Deserialize, Serialize};

/// Everything the runtime needs to know about a bundle besides the graph itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Version of `kinglet-export` that wrote the bundle.
    pub exporter_version: String,
    /// Architecture the graph was built from, e.g. `BertForSequenceClassification`.
    pub architecture: String,
    /// Numeric precision of the stored weights: `f32`, `f16`, `int8`, `q4`.
    pub precision: String,
    /// Where the model came from (checkpoint directory name or ONNX file name).
    #[serde(default)]
    pub source: String,
    /// Number of parameters (weights and biases) in the source model.
    #[serde(default)]
    pub parameter_count: u64,
    /// What kind of model this is and its kind-specific metadata.
    pub model: ModelKind,
    /// Inputs with the exporter's outputs, rerun by `kinglet verify`.
    pub self_test: SelfTest,
    /// How the quantized graph compared with the float one at export (absent for f32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantizationReport>,
    /// The exporter's memory preflight: what the model needed at its largest input, and the
    /// budget the runtime applies when none is given (absent in bundles from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryManifest>,
}

/// Memory needs measured by the exporter's preflight (see `kinglet_runtime::memory`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryManifest {
    /// Most bytes held at once from opening the bundle through one inference at the largest
    /// input, on the machine that exported it.
    pub peak_bytes: u64,
    /// Headroom added to the activation arena on top of the measured activation peak.
    pub margin_bytes: u64,
    /// Default budget for `kinglet` commands: the preflight's needs plus a quarter, for CPUs
    /// whose kernels pack weights differently, rounded up to a whole MiB.
    pub budget_bytes: u64,
    /// The input size the peak was measured at, e.g. `128 tokens`.
    pub measured_at: String,
    /// Target triple of the exporting machine.
    pub measured_on: String,
}

/// The exporter's comparison of a quantized graph with the float graph it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuantizationReport {
    /// What was compared: `self-test` texts, or the file given to `--check`.
    pub data: String,
    /// Rows compared.
    pub rows: usize,
    /// Accuracy of the float graph, when the rows were labeled.
    #[serde(default)]
    pub float_accuracy: Option<f64>,
    /// Accuracy of the quantized graph, when the rows were labeled.
    #[serde(default)]
    pub quantized_accuracy: Option<f64>,
    /// Fraction of rows where both graphs pick the same label (classifiers).
    #[serde(default)]
    pub label_agreement: Option<f64>,
    /// Largest absolute output difference (logits, or normalized forecast values).
    pub max_abs_logit_delta: f32,
    /// Mean absolute output difference.
    pub mean_abs_logit_delta: f32,
    /// Normalized MSE of the float graph on the check windows (forecasters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub float_mse: Option<f64>,
    /// Normalized MSE of the quantized graph on the check windows (forecasters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantized_mse: Option<f64>,
}

/// The kind of model, with the metadata that kind needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelKind {
    /// A text classifier: graph input `input_ids` `[1, S]` i64, output `logits` `[1, labels]`.
    Classifier(ClassifierMeta),
    /// A time-series forecaster: graph input `window` `[1, lookback, features]` (or
    /// `[1, features, lookback]`) f32 in normalized units, output `[1, horizon, targets]` or
    /// `[1, horizon]`.
    Forecaster(ForecasterMeta),
}

/// Metadata of a forecaster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ForecasterMeta {
    /// Input columns, in the order the graph takes them.
    pub columns: Vec<String>,
    /// Columns the graph predicts, in output order (all columns, or one target).
    pub targets: Vec<String>,
    /// Rows of history the graph takes.
    pub lookback: usize,
    /// Rows it predicts.
    pub horizon: usize,
    /// Per input column: mean subtracted before the graph (real units).
    pub mean: Vec<f32>,
    /// Per input column: standard deviation divided by before the graph (real units).
    pub std: Vec<f32>,
    /// True when the graph takes `[1, features, lookback]` instead of `[1, lookback, features]`.
    #[serde(default)]
    pub channels_first: bool,
    /// Time between rows in seconds, when known (continues a date column in forecasts).
    #[serde(default)]
    pub step_seconds: Option<i64>,
}

impl ForecasterMeta {
    /// Index in `columns` of each target.
    pub fn target_indices(&self) -> Vec<usize> {
        self.targets
            .iter()
            .map(|t| self.columns.iter().position(|c| c == t).unwrap_or(0))
            .collect()
    }
}

/// Metadata of a text classifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassifierMeta {
    /// Label names in logit order (from the checkpoint's `id2label`).
    pub labels: Vec<String>,
    /// True for `problem_type = multi_label_classification`: scores are sigmoids, not a softmax.
    #[serde(default)]
    pub multi_label: bool,
    /// Default truncation length in tokens, special tokens included.
    pub max_tokens: usize,
    /// Hard limit in tokens: the number of position embeddings the graph holds (the exporter
    /// keeps only as many as the longest input it was asked to accept).
    pub max_position_embeddings: usize,
}

/// Self-test vectors: inputs and the outputs the exporter computed for them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SelfTest {
    /// Largest acceptable absolute deviation of any output value.
    pub tolerance: f32,
    /// The test cases.
    pub cases: Vec<SelfTestCase>,
}

/// One self-test case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelfTestCase {
    /// Text input, for classifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Window in real units, `lookback × columns` row-major, for forecasters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Vec<f32>>,
    /// Expected raw outputs (logits for classifiers).
    pub expected: Vec<f32>,
}
