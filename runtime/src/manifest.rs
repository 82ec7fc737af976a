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
    /// The model's name for people and fleets (`kinglet-export --name`; empty in bundles from
    /// before it, where the file name stands in).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The model's own version (`kinglet-export --model-version`), e.g. `2026-12-02` or `3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
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

/// Bounds a manifest must keep to be loaded: far past any real model, small enough that
/// nothing sized from them can exhaust a board's memory before the graph is even read.
pub mod limits {
    /// Labels of a classifier, columns of a forecaster.
    pub const MAX_NAMES: usize = 4096;
    /// Bytes of one label, column, target or other manifest string.
    pub const MAX_NAME_BYTES: usize = 256;
    /// Position embeddings (BERT-family models have 512; long-context ones 8192).
    pub const MAX_POSITIONS: usize = 8192;
    /// Rows of history or forecast.
    pub const MAX_ROWS: usize = 100_000;
    /// Values of one window (`lookback × columns`) or one forecast (`horizon × targets`).
    pub const MAX_WINDOW_VALUES: usize = 1 << 22;
    /// Self-test cases.
    pub const MAX_SELF_TESTS: usize = 1024;
    /// Length of a sentence embedding (large models have 1,024 to 4,096).
    pub const MAX_EMBEDDING_DIMENSIONS: usize = 16_384;
    /// Seconds between two rows of a series: a century.
    pub const MAX_STEP_SECONDS: i64 = 100 * 366 * 86_400;
}

impl Manifest {
    /// Checks every field against the others and against [`limits`]; the reason names the
    /// field. Run on every bundle before anything is sized from it.
    pub fn validate(&self) -> Result<(), String> {
        use limits::*;
        for (field, s) in [
            ("exporter_version", &self.exporter_version),
            ("name", &self.name),
            ("version", &self.version),
            ("architecture", &self.architecture),
            ("precision", &self.precision),
            ("source", &self.source),
        ] {
            check_name(field, s)?;
        }
        let t = &self.self_test;
        if !t.tolerance.is_finite() || t.tolerance < 0.0 {
            return Err(format!("self_test.tolerance is {}", t.tolerance));
        }
        if t.cases.len() > MAX_SELF_TESTS {
            return Err(format!(
                "{} self-test cases; at most {MAX_SELF_TESTS}",
                t.cases.len()
            ));
        }
        match &self.model {
            ModelKind::Classifier(c) => c.validate(t),
            ModelKind::Forecaster(f) => f.validate(t),
        }
    }
}

fn check_name(field: &str, s: &str) -> Result<(), String> {
    if s.len() > limits::MAX_NAME_BYTES {
        return Err(format!(
            "{field} is {} bytes; at most {}",
            s.len(),
            limits::MAX_NAME_BYTES
        ));
    }
    Ok(())
}

fn check_names(field: &str, names: &[String]) -> Result<(), String> {
    if names.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if names.len() > limits::MAX_NAMES {
        return Err(format!(
            "{field} has {} entries; at most {}",
            names.len(),
            limits::MAX_NAMES
        ));
    }
    names.iter().try_for_each(|n| check_name(field, n))
}

fn check_expected(i: usize, case: &SelfTestCase, outputs: usize) -> Result<(), String> {
    if case.expected.len() != outputs {
        return Err(format!(
            "self-test case {i} expects {} outputs; the model gives {outputs}",
            case.expected.len()
        ));
    }
    if case.expected.iter().any(|v| !v.is_finite()) {
        return Err(format!("self-test case {i} expects a non-finite output"));
    }
    Ok(())
}

impl ClassifierMeta {
    /// The task of a text bundle: embeddings when it has an embedding, tagging when per
    /// token, else classification.
    pub fn task(&self) -> crate::task::TaskKind {
        use crate::task::TaskKind;
        match (&self.embedding, self.per_token) {
            (Some(_), _) => TaskKind::Embedder,
            (None, true) => TaskKind::Tagger,
            (None, false) => TaskKind::Classifier,
        }
    }

    fn validate(&self, t: &SelfTest) -> Result<(), String> {
        use limits::*;
        match &self.embedding {
            None => check_names("labels", &self.labels)?,
            Some(e) => {
                if !self.labels.is_empty() {
                    return Err("an embedding model has labels".into());
                }
                if !(1..=MAX_EMBEDDING_DIMENSIONS).contains(&e.dimensions) {
                    return Err(format!(
                        "embedding.dimensions is {}; must be 1 to {MAX_EMBEDDING_DIMENSIONS}",
                        e.dimensions
                    ));
                }
                if !["mean", "cls", "max"].contains(&e.pooling.as_str()) {
                    return Err(format!(
                        "embedding.pooling is {:?}; must be mean, cls or max",
                        e.pooling.chars().take(32).collect::<String>()
                    ));
                }
            }
        }
        let p = self.max_position_embeddings;
        if !(2..=MAX_POSITIONS).contains(&p) {
            return Err(format!(
                "max_position_embeddings is {p}; must be 2 to {MAX_POSITIONS}"
            ));
        }
        if !(2..=p).contains(&self.max_tokens) {
            return Err(format!(
                "max_tokens is {}; must be 2 to max_position_embeddings ({p})",
                self.max_tokens
            ));
        }
        for (i, case) in t.cases.iter().enumerate() {
            let text = case
                .text
                .as_deref()
                .ok_or_else(|| format!("self-test case {i} of a classifier has no text"))?;
            if text.trim().is_empty() || text.len() > crate::classify::MAX_TEXT_BYTES {
                return Err(format!(
                    "self-test case {i} has a text of {} bytes; must be 1 to {}",
                    text.len(),
                    crate::classify::MAX_TEXT_BYTES
                ));
            }
            if self.per_token {
                // one row of logits per token of the case's text
                let rows = case.expected.len() / self.labels.len().max(1);
                if rows == 0 || rows > p {
                    return Err(format!(
                        "self-test case {i} expects {} values; a token classifier gives 1 to \
                         {p} rows of {}",
                        case.expected.len(),
                        self.labels.len()
                    ));
                }
                check_expected(i, case, rows * self.labels.len())?;
            } else {
                check_expected(i, case, self.outputs())?;
            }
        }
        Ok(())
    }
}

impl ForecasterMeta {
    fn validate(&self, t: &SelfTest) -> Result<(), String> {
        use limits::*;
        check_names("columns", &self.columns)?;
        check_names("targets", &self.targets)?;
        if let Some(missing) = self.targets.iter().find(|t| !self.columns.contains(t)) {
            return Err(format!("target `{missing}` is not one of the columns"));
        }
        let f = self.columns.len();
        for (field, rows) in [("lookback", self.lookback), ("horizon", self.horizon)] {
            if !(1..=MAX_ROWS).contains(&rows) {
                return Err(format!("{field} is {rows}; must be 1 to {MAX_ROWS}"));
            }
        }
        if self.lookback * f > MAX_WINDOW_VALUES
            || self.horizon * self.targets.len() > MAX_WINDOW_VALUES
        {
            return Err(format!(
                "a window of {} × {f} or a forecast of {} × {} values is over {MAX_WINDOW_VALUES}",
                self.lookback,
                self.horizon,
                self.targets.len()
            ));
        }
        for (field, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.len() != f {
                return Err(format!(
                    "{field} has {} values for {f} columns",
                    values.len()
                ));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(format!("{field} holds a non-finite value"));
            }
        }
        if let Some(c) = self.std.iter().position(|&s| s <= 0.0) {
            return Err(format!(
                "std of column `{}` is {}; must be positive",
                self.columns[c], self.std[c]
            ));
        }
        if let Some(step) = self.step_seconds {
            if !(1..=MAX_STEP_SECONDS).contains(&step) {
                return Err(format!(
                    "step_seconds is {step}; must be 1 to {MAX_STEP_SECONDS}"
                ));
            }
        }
        for (i, case) in t.cases.iter().enumerate() {
            let window = case
                .window
                .as_deref()
                .ok_or_else(|| format!("self-test case {i} of a forecaster has no window"))?;
            if window.len() != self.lookback * f {
                return Err(format!(
                    "self-test case {i} has a window of {} values; the model takes {} × {f}",
                    window.len(),
                    self.lookback
                ));
            }
            check_expected(i, case, self.horizon * self.targets.len())?;
        }
        Ok(())
    }
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

/// The exporter's comparison of a quantized graph with the float graph it came from (each
/// task fills the measures that mean something for it; the rest stay `None`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
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
    /// Smallest cosine similarity between the float and quantized vectors of one text
    /// (embedding models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cosine: Option<f64>,
    /// Mean of those cosine similarities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_cosine: Option<f64>,
    /// F1 of the quantized graph's entities (label and span) against the float graph's
    /// (token classifiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_f1: Option<f64>,
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
    /// Set for a sentence-embedding model (a sentence-transformers folder): the graph's output
    /// is the sentence's vector, not logits, and `labels` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingMeta>,
    /// A token classifier (`…ForTokenClassification`, NER): the graph returns one row of
    /// logits per token, `[tokens, labels]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_token: bool,
}

/// What a sentence-embedding graph computes after the encoder, as its sentence-transformers
/// folder configured it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbeddingMeta {
    /// Length of the vector.
    pub dimensions: usize,
    /// `mean`, `cls` or `max` over the tokens.
    pub pooling: String,
    /// True when the vector is scaled to unit length (a `Normalize` module).
    pub normalized: bool,
}

impl ClassifierMeta {
    /// How many values the graph returns: one logit per label, or the embedding's length.
    pub fn outputs(&self) -> usize {
        match &self.embedding {
            Some(e) => e.dimensions,
            None => self.labels.len(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn forecaster() -> Manifest {
        Manifest {
            exporter_version: "0.1.0".into(),
            name: String::new(),
            version: String::new(),
            architecture: "DLinear".into(),
            precision: "f32".into(),
            source: "model.onnx".into(),
            parameter_count: 10,
            model: ModelKind::Forecaster(ForecasterMeta {
                columns: vec!["a".into(), "OT".into()],
                targets: vec!["OT".into()],
                lookback: 3,
                horizon: 2,
                mean: vec![0.0, 1.0],
                std: vec![1.0, 2.0],
                channels_first: false,
                step_seconds: Some(3600),
            }),
            self_test: SelfTest {
                tolerance: 1e-3,
                cases: vec![SelfTestCase {
                    text: None,
                    window: Some(vec![0.0; 6]),
                    expected: vec![1.0, 2.0],
                }],
            },
            quantization: None,
            memory: None,
        }
    }

    fn classifier() -> Manifest {
        Manifest {
            model: ModelKind::Classifier(ClassifierMeta {
                labels: vec!["negative".into(), "positive".into()],
                multi_label: false,
                max_tokens: 128,
                max_position_embeddings: 512,
                embedding: None,
                per_token: false,
            }),
            self_test: SelfTest {
                tolerance: 0.25,
                cases: vec![SelfTestCase {
                    text: Some("a fine film".into()),
                    window: None,
                    expected: vec![-1.0, 1.0],
                }],
            },
            ..forecaster()
        }
    }

    fn refused(m: Manifest, edit: impl FnOnce(&mut Manifest), needle: &str) {
        let mut m = m;
        edit(&mut m);
        let e = m.validate().unwrap_err();
        assert!(e.contains(needle), "`{e}` should mention `{needle}`");
    }

    fn fc(m: &mut Manifest) -> &mut ForecasterMeta {
        match &mut m.model {
            ModelKind::Forecaster(f) => f,
            _ => unreachable!(),
        }
    }

    fn cl(m: &mut Manifest) -> &mut ClassifierMeta {
        match &mut m.model {
            ModelKind::Classifier(c) => c,
            _ => unreachable!(),
        }
    }

    #[test]
    fn consistent_manifests_pass() {
        forecaster().validate().unwrap();
        classifier().validate().unwrap();
    }

    #[test]
    fn forecaster_fields_that_disagree_or_overflow_are_refused_by_name() {
        refused(
            forecaster(),
            |m| fc(m).mean.truncate(1),
            "mean has 1 values for 2 columns",
        );
        refused(forecaster(), |m| fc(m).std = vec![1.0], "std has 1 values");
        refused(forecaster(), |m| fc(m).std[0] = 0.0, "std of column `a`");
        refused(
            forecaster(),
            |m| fc(m).mean[1] = f32::NAN,
            "mean holds a non-finite",
        );
        refused(forecaster(), |m| fc(m).columns.clear(), "columns is empty");
        refused(
            forecaster(),
            |m| fc(m).targets = vec!["b".into()],
            "target `b`",
        );
        refused(forecaster(), |m| fc(m).lookback = 0, "lookback is 0");
        refused(forecaster(), |m| fc(m).lookback = usize::MAX, "lookback is");
        refused(
            forecaster(),
            |m| fc(m).horizon = u32::MAX as usize,
            "horizon is",
        );
        refused(
            forecaster(),
            |m| fc(m).step_seconds = Some(i64::MAX),
            "step_seconds",
        );
        refused(
            forecaster(),
            |m| fc(m).step_seconds = Some(-1),
            "step_seconds",
        );
        refused(
            forecaster(),
            |m| m.self_test.cases[0].window = Some(vec![0.0; 5]),
            "window of 5",
        );
        refused(
            forecaster(),
            |m| m.self_test.cases[0].expected.push(0.0),
            "expects 3 outputs",
        );
        refused(
            forecaster(),
            |m| m.self_test.tolerance = f32::INFINITY,
            "tolerance",
        );
        refused(
            forecaster(),
            |m| {
                let f = fc(m);
                f.columns = (0..5000).map(|i| format!("c{i}")).collect();
            },
            "at most 4096",
        );
    }

    #[test]
    fn classifier_fields_that_disagree_or_overflow_are_refused_by_name() {
        refused(classifier(), |m| cl(m).labels.clear(), "labels is empty");
        refused(
            classifier(),
            |m| cl(m).labels[0] = "x".repeat(300),
            "labels is 300 bytes",
        );
        refused(
            classifier(),
            |m| cl(m).max_tokens = 1000,
            "max_tokens is 1000",
        );
        refused(
            classifier(),
            |m| cl(m).max_position_embeddings = 1 << 20,
            "max_position_embeddings",
        );
        refused(
            classifier(),
            |m| m.self_test.cases[0].text = None,
            "no text",
        );
        refused(
            classifier(),
            |m| m.self_test.cases[0].expected.truncate(1),
            "expects 1 outputs",
        );
        refused(
            classifier(),
            |m| m.architecture = "A".repeat(1000),
            "architecture is 1000 bytes",
        );
    }
}
