//! From a checkpoint directory to a verified bundle on disk.

use crate::checkpoint::Checkpoint;
use crate::error::{ExportError, Result};
use crate::graph::BuildOptions;
use crate::quantize::Precision;
use crate::weights::Weights;
use crate::{albert, bert, distilbert};
use kinglet_runtime::bundle::Bundle;
use kinglet_runtime::dataset::read_labeled_tsv;
use kinglet_runtime::engine::Engine;
use kinglet_runtime::manifest::{
    ClassifierMeta, Manifest, ModelKind, QuantizationReport, SelfTest, SelfTestCase,
};
use kinglet_runtime::{Classifier, Embedder, Tagger, Task, TaskKind};
use std::path::{Path, PathBuf};
use tract_nnef::prelude::*;

/// Default truncation length, as in the training and reference scripts.
pub const DEFAULT_MAX_TOKENS: usize = 128;

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
    /// Weight format of the bundle.
    pub precision: Precision,
    /// Labeled data to guard a quantized export's accuracy with.
    pub check: Option<CheckOptions>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            max_tokens: DEFAULT_MAX_TOKENS,
            precision: Precision::F32,
            check: None,
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
    /// Quantized versus float comparison (absent for f32).
    pub quantization: Option<QuantizationReport>,
    /// Every layer with weights and the precision it is stored in, read back from the written
    /// bundle.
    pub layers: Vec<kinglet_runtime::layers::LayerPrecision>,
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
    /// Longest input the graph takes, in tokens.
    pub max_tokens: usize,
    /// tokenizer.json bytes.
    pub tokenizer_json: Vec<u8>,
    /// Parameters in the checkpoint.
    pub parameter_count: u64,
    /// Set for a sentence-embedding model (`labels` is then empty).
    pub embedding: Option<kinglet_runtime::manifest::EmbeddingMeta>,
    /// A token classifier: logits for every token.
    pub per_token: bool,
}

/// Reads a Hugging Face checkpoint directory and builds its graph.
/// `max_tokens` is capped to what the architecture's position table allows.
pub fn build_hf_classifier(
    dir: &Path,
    precision: Precision,
    max_tokens: usize,
) -> Result<BuiltClassifier> {
    let ck = Checkpoint::open(dir)?;
    let architecture = ck.architecture()?.to_string();
    if let Some(sentence) = crate::sentence::SentenceConfig::read(dir)? {
        return build_sentence_embedder(&ck, &architecture, &sentence, precision, max_tokens);
    }
    let supported = [
        "BertForSequenceClassification",
        "DistilBertForSequenceClassification",
        "RobertaForSequenceClassification",
        "XLMRobertaForSequenceClassification",
        "CamembertForSequenceClassification",
        "ElectraForSequenceClassification",
        "AlbertForSequenceClassification",
        "BertForTokenClassification",
        "DistilBertForTokenClassification",
        "RobertaForTokenClassification",
        "XLMRobertaForTokenClassification",
        "CamembertForTokenClassification",
        "ElectraForTokenClassification",
    ];
    if !supported.contains(&architecture.as_str()) {
        return Err(ExportError::Unsupported(format!(
            "architecture `{architecture}` in {} (kinglet exports {}); {}",
            dir.join("config.json").display(),
            supported.join(", "),
            crate::checkpoint::instead_of(&architecture)
        )));
    }
    let labels = ck.labels()?;
    let multi_label = ck.multi_label()?;
    let tokenizer_json = ck.tokenizer_json()?;
    let weights = Weights::open(dir)?;
    let parameter_count = weights.parameter_count();
    // the graph keeps as many positions as the longest input asked for, at most the model's
    let limit = |positions: usize| {
        let max_tokens = max_tokens.min(positions);
        let options = BuildOptions {
            precision,
            max_tokens,
        };
        (max_tokens, options)
    };
    let (model, max_tokens) = match architecture.as_str() {
        "DistilBertForSequenceClassification" => {
            let config: distilbert::Config = ck.arch_config()?;
            let (max_tokens, options) = limit(config.max_position_embeddings);
            let model = distilbert::build(weights, &config, labels.len(), options)?;
            (model, max_tokens)
        }
        "AlbertForSequenceClassification" => {
            let config: albert::Config = ck.arch_config()?;
            let (max_tokens, options) = limit(config.max_position_embeddings);
            (
                albert::build(weights, &config, labels.len(), options)?,
                max_tokens,
            )
        }
        "DistilBertForTokenClassification" => {
            let config: distilbert::Config = ck.arch_config()?;
            let (max_tokens, options) = limit(config.max_position_embeddings);
            let model =
                distilbert::build_token_classifier(weights, &config, labels.len(), options)?;
            (model, max_tokens)
        }
        arch if arch.ends_with("ForTokenClassification") => {
            let flavour = bert_flavour(arch);
            let config: bert::Config = ck.arch_config()?;
            let (max_tokens, options) = limit(bert::max_tokens(&config, flavour));
            let model =
                bert::build_token_classifier(weights, &config, flavour, labels.len(), options)?;
            (model, max_tokens)
        }
        arch => {
            let flavour = bert_flavour(arch);
            let config: bert::Config = ck.arch_config()?;
            let (max_tokens, options) = limit(bert::max_tokens(&config, flavour));
            let model = bert::build(weights, &config, flavour, labels.len(), options)?;
            (model, max_tokens)
        }
    };
    let per_token = architecture.ends_with("ForTokenClassification");
    Ok(BuiltClassifier {
        model,
        architecture,
        labels,
        multi_label,
        max_tokens,
        tokenizer_json,
        parameter_count,
        embedding: None,
        per_token,
    })
}

/// The BERT-family graph an architecture name uses: XLM-RoBERTa and CamemBERT are RoBERTa's
/// (Transformers subclasses it) with a SentencePiece tokenizer.
fn bert_flavour(architecture: &str) -> bert::Flavour {
    if ["Roberta", "XLMRoberta", "Camembert"]
        .iter()
        .any(|f| architecture.starts_with(f))
    {
        bert::Flavour::Roberta
    } else if architecture.starts_with("Electra") {
        bert::Flavour::Electra
    } else {
        bert::Flavour::Bert
    }
}

/// [`build_hf_classifier`] of a sentence-transformers folder: the encoder, its pooling and
/// normalization.
fn build_sentence_embedder(
    ck: &Checkpoint,
    architecture: &str,
    sentence: &crate::sentence::SentenceConfig,
    precision: Precision,
    max_tokens: usize,
) -> Result<BuiltClassifier> {
    let flavour = match architecture {
        "BertModel" => bert::Flavour::Bert,
        "RobertaModel" | "XLMRobertaModel" | "CamembertModel" => bert::Flavour::Roberta,
        other => {
            return Err(ExportError::Unsupported(format!(
                "sentence embeddings from `{other}` (kinglet embeds with BertModel, \
                 RobertaModel, XLMRobertaModel and CamembertModel)"
            )))
        }
    };
    let config: bert::Config = ck.arch_config()?;
    let max_tokens = max_tokens
        .min(bert::max_tokens(&config, flavour))
        .min(sentence.max_seq_length.unwrap_or(usize::MAX));
    let weights = Weights::open(&ck.dir)?;
    let parameter_count = weights.parameter_count();
    let options = BuildOptions {
        precision,
        max_tokens,
    };
    Ok(BuiltClassifier {
        model: crate::sentence::build(weights, &config, flavour, sentence, options)?,
        architecture: architecture.to_string(),
        labels: Vec::new(),
        multi_label: false,
        max_tokens,
        tokenizer_json: ck.tokenizer_json()?,
        parameter_count,
        embedding: Some(sentence.meta(config.hidden_size)),
        per_token: false,
    })
}

/// Serializes a decluttered graph to a deterministic NNEF tar.
pub fn graph_to_nnef(model: &TypedModel) -> Result<Vec<u8>> {
    let tar = kinglet_runtime::nnef_ext::nnef()
        .write_to_tar_with_config(model, Vec::new(), false, true)
        .map_err(ExportError::graph)?;
    crate::shared_weights::share_equal_variables(&tar)
}

/// Largest self-test deviation `kinglet verify` accepts, in logit units. f32 kernels differ
/// between CPUs only in summation order. Quantized graphs also re-round activations at run
/// time, and a value that lands on the other side of a rounding step on another CPU moves a
/// logit further (0.085 measured between x86 and aarch64 on the int8 sentiment model); a
/// broken kernel moves it by whole units.
pub fn self_test_tolerance(precision: Precision) -> f32 {
    match precision {
        Precision::F32 => 1e-3,
        Precision::F16 | Precision::Int8 | Precision::Q4 => 0.25,
    }
}

/// [`self_test_tolerance`] of a sentence-embedding bundle: its outputs are the components of
/// a unit vector (a few hundredths each for 384 values), so a logit's tolerance would let a
/// broken kernel pass. A quantized one re-rounds on another CPU by a few thousandths.
pub fn embedding_tolerance(precision: Precision) -> f32 {
    match precision {
        Precision::F32 => 1e-4,
        Precision::F16 | Precision::Int8 | Precision::Q4 => 0.03,
    }
}

/// Exports a Hugging Face classifier checkpoint to `out`: builds the graph at the requested
/// precision, compares it with the float graph (on `--check` data when given, refusing past
/// the allowed accuracy drop), self-tests the serialized form, writes atomically and reloads.
pub fn export_hf_classifier(
    dir: &Path,
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportReport> {
    crate::progress::stage(&format!(
        "reading {} and building the {} graph",
        dir.display(),
        options.precision
    ));
    let built = build_hf_classifier(dir, options.precision, options.max_tokens)?;
    let meta = ClassifierMeta {
        labels: built.labels.clone(),
        multi_label: built.multi_label,
        max_tokens: built.max_tokens,
        max_position_embeddings: built.max_tokens,
        embedding: built.embedding.clone(),
        per_token: built.per_token,
    };
    let source = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut bundle = Bundle {
        path: out.to_owned(),
        manifest: Manifest {
            exporter_version: kinglet_runtime::VERSION.to_string(),
            name: String::new(),
            version: String::new(),
            architecture: built.architecture.clone(),
            precision: options.precision.name().into(),
            source,
            parameter_count: built.parameter_count,
            model: ModelKind::Classifier(meta.clone()),
            self_test: SelfTest::default(),
            quantization: None,
            memory: None,
        },
        graph: {
            crate::progress::stage("serializing the graph to NNEF");
            graph_to_nnef(&built.model)?
        },
        tokenizer: Some(built.tokenizer_json.clone()),
        signer: None,
    };
    let tokenizer_json = built.tokenizer_json.as_slice();

    // The expected outputs come from the graph as the runtime will load it (NNEF bytes), and
    // are checked against the in-memory graph so a lossy serialization cannot slip through.
    let mut reloaded = kinglet_runtime::task::from_bundle(&bundle)?;
    let mut in_memory = kinglet_runtime::task::text_with_engine(
        meta.clone(),
        tokenizer_json,
        Engine::from_typed(built.model)?,
    )?;
    let inputs = SELF_TEST_TEXTS
        .iter()
        .map(|text| SelfTestCase {
            text: Some(text.to_string()),
            window: None,
            expected: Vec::new(),
        })
        .collect();
    let (cases, round_trip_deviation) =
        crate::seal::self_test_cases(reloaded.as_mut(), in_memory.as_mut(), inputs)?;
    drop(in_memory);
    bundle.manifest.self_test = SelfTest {
        tolerance: match meta.task() {
            TaskKind::Embedder => embedding_tolerance(options.precision),
            _ => self_test_tolerance(options.precision),
        },
        cases,
    };

    if options.precision != Precision::F32 {
        crate::progress::stage("building the f32 reference graph");
        let float = build_hf_classifier(dir, Precision::F32, options.max_tokens)?;
        let mut float = kinglet_runtime::task::text_with_engine(
            meta.clone(),
            tokenizer_json,
            Engine::from_typed(float.model)?,
        )?;
        let (float, reloaded) = (float.as_mut(), reloaded.as_mut());
        let report = match (&options.check, meta.task()) {
            (_, TaskKind::Embedder) => {
                let report =
                    compare_embeddings(typed(float)?, typed(reloaded)?, options.check.as_ref())?;
                if let (Some(check), Some(mean)) = (&options.check, report.mean_cosine) {
                    let drop_points = 100.0 * (1.0 - mean);
                    if drop_points > check.max_drop_points {
                        return Err(ExportError::QualityGate(format!(
                            "{} embeddings' mean cosine to f32 is {mean:.5} on {}: a drop of \
                             {drop_points:.2} points, more than --max-drop {}; nothing written",
                            options.precision,
                            check.tsv.display(),
                            check.max_drop_points
                        )));
                    }
                }
                report
            }
            (_, TaskKind::Tagger) => {
                let report = compare_tags(typed(float)?, typed(reloaded)?, options.check.as_ref())?;
                if let (Some(check), Some(f1)) = (&options.check, report.entity_f1) {
                    let drop_points = 100.0 * (1.0 - f1);
                    if drop_points > check.max_drop_points {
                        return Err(ExportError::QualityGate(format!(
                            "{} entities agree with f32's at F1 {f1:.4} on {}: a drop of \
                             {drop_points:.2} points, more than --max-drop {}; nothing written",
                            options.precision,
                            check.tsv.display(),
                            check.max_drop_points
                        )));
                    }
                }
                report
            }
            (Some(check), _) => compare_on_tsv(typed(float)?, typed(reloaded)?, check)?,
            (None, _) => {
                let texts: Vec<(String, Option<usize>)> = default_check_texts()
                    .into_iter()
                    .map(|t| (t, None))
                    .collect();
                compare(
                    typed(float)?,
                    typed(reloaded)?,
                    &texts,
                    DEFAULT_CHECK_NAME,
                    &|| (),
                )?
            }
        };
        if let (Some(check), Some(f), Some(q)) = (
            &options.check,
            report.float_accuracy,
            report.quantized_accuracy,
        ) {
            let drop_points = 100.0 * (f - q);
            if drop_points > check.max_drop_points {
                return Err(ExportError::QualityGate(format!(
                    "{} accuracy drops {drop_points:.2} points on {} ({:.2} % float → {:.2} % {}), \
                     more than --max-drop {}; nothing written",
                    options.precision,
                    check.tsv.display(),
                    100.0 * f,
                    100.0 * q,
                    options.precision,
                    check.max_drop_points
                )));
            }
        }
        bundle.manifest.quantization = Some(report);
    }

    let sealed = crate::seal::seal(&mut bundle, out)?;
    Ok(ExportReport {
        architecture: built.architecture,
        parameter_count: built.parameter_count,
        bundle_bytes: sealed.bundle_bytes,
        round_trip_deviation,
        quantization: bundle.manifest.quantization,
        layers: sealed.layers,
    })
}

/// Labeled data the quantized graph must hold its accuracy on.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `text<TAB>label` file.
    pub tsv: PathBuf,
    /// Only the first this many rows.
    pub rows: Option<usize>,
    /// Largest allowed accuracy drop, in percentage points.
    pub max_drop_points: f64,
}

fn compare_on_tsv(
    float: &mut Classifier,
    quantized: &mut Classifier,
    check: &CheckOptions,
) -> Result<QuantizationReport> {
    let rows = read_labeled_tsv(&check.tsv, &float.meta().labels)?;
    let n = check.rows.unwrap_or(usize::MAX).min(rows.len());
    let texts: Vec<(String, Option<usize>)> = rows
        .into_iter()
        .take(n)
        .map(|r| (r.text, Some(r.label)))
        .collect();
    crate::progress::stage(&format!(
        "comparing with f32 on {} ({n} rows)",
        check.tsv.display()
    ));
    let done = std::sync::atomic::AtomicU64::new(0);
    let report = compare(
        float,
        quantized,
        &texts,
        &check.tsv.display().to_string(),
        &|| {
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            crate::progress::step(d, n as u64);
        },
    )?;
    Ok(report)
}

/// 1,000 SST-2 phrases (`examples/sst2-sentences.txt`), of which every fifth joins the
/// self-test texts as the comparison of a quantized export without `--check`: a handful of
/// texts says little about how often quantization changes an answer.
const BUILT_IN_PHRASES: &str = include_str!("../../examples/sst2-sentences.txt");

/// What the comparison without `--check` is called in the report.
pub const DEFAULT_CHECK_NAME: &str = "self-test texts and 200 SST-2 phrases";

/// The texts of the comparison without `--check`: the 5 self-test texts and 200 phrases.
pub fn default_check_texts() -> Vec<String> {
    SELF_TEST_TEXTS
        .iter()
        .map(|t| t.to_string())
        .chain(BUILT_IN_PHRASES.lines().step_by(5).map(str::to_string))
        .collect()
}

/// The texts a quantized embedding or token-classification graph is compared on: the
/// `--check` file's first column (a first line reading `sentence` or `text` is a header, at
/// most `--check-rows`), or [`default_check_texts`]; and what to call them.
fn check_texts(check: Option<&CheckOptions>) -> Result<(Vec<String>, String)> {
    Ok(match check {
        None => (default_check_texts(), DEFAULT_CHECK_NAME.to_string()),
        Some(check) => {
            let bad = |e: std::io::Error| ExportError::io(&check.tsv)(e);
            let file = std::fs::File::open(&check.tsv).map_err(bad)?;
            let bytes =
                kinglet_runtime::lines::read_all(file, kinglet_runtime::lines::MAX_ROW_BYTES)
                    .map_err(bad)?;
            let text = String::from_utf8_lossy(&bytes);
            let texts: Vec<String> = text
                .lines()
                .enumerate()
                .map(|(i, l)| (i, l.split('\t').next().unwrap_or_default().trim()))
                .filter(|&(i, t)| {
                    let header = i == 0 && ["sentence", "text"].contains(&t);
                    !t.is_empty() && !header
                })
                .map(|(_, t)| t.to_string())
                .take(check.rows.unwrap_or(usize::MAX))
                .collect();
            (texts, check.tsv.display().to_string())
        }
    })
}

/// Runs both token classifiers on the check texts (see [`check_texts`]) and measures how far
/// apart they are: the F1 of the quantized graph's entities (label and span) against the float
/// graph's, and the per-token logit differences.
fn compare_tags(
    float: &mut Tagger,
    quantized: &mut Tagger,
    check: Option<&CheckOptions>,
) -> Result<QuantizationReport> {
    let (texts, data) = check_texts(check)?;
    crate::progress::stage(&format!(
        "comparing with f32 on {data} ({} texts)",
        texts.len()
    ));
    let (mut matched, mut float_count, mut quantized_count) = (0usize, 0usize, 0usize);
    let mut deltas = Deltas::default();
    for (i, text) in texts.iter().enumerate() {
        let key = |e: &kinglet_runtime::tag::Entity| (e.entity_group.clone(), e.start, e.end);
        let (f, float_logits) = float.tag_with_logits(text, None)?;
        let (q, quantized_logits) = quantized.tag_with_logits(text, None)?;
        let f: Vec<_> = f.entities.iter().map(key).collect();
        let q: Vec<_> = q.entities.iter().map(key).collect();
        matched += q.iter().filter(|e| f.contains(e)).count();
        float_count += f.len();
        quantized_count += q.len();
        deltas.add(&float_logits, &quantized_logits);
        crate::progress::step(i as u64 + 1, texts.len() as u64);
    }
    let entity_f1 = match float_count + quantized_count {
        0 => 1.0,
        n => 2.0 * matched as f64 / n as f64,
    };
    Ok(QuantizationReport {
        data,
        rows: texts.len(),
        entity_f1: Some(entity_f1),
        ..deltas.report()
    })
}

/// Runs both embedding graphs on the check texts (see [`check_texts`]) and measures how far
/// apart their vectors are: cosine similarity and absolute differences.
fn compare_embeddings(
    float: &mut Embedder,
    quantized: &mut Embedder,
    check: Option<&CheckOptions>,
) -> Result<QuantizationReport> {
    let (texts, data) = check_texts(check)?;
    crate::progress::stage(&format!(
        "comparing with f32 on {data} ({} texts)",
        texts.len()
    ));
    let (mut min_cosine, mut sum_cosine) = (f64::INFINITY, 0f64);
    let mut deltas = Deltas::default();
    for (i, text) in texts.iter().enumerate() {
        let f = float.embed(text, None)?.vector;
        let q = quantized.embed(text, None)?.vector;
        let c = f64::from(kinglet_runtime::embed::cosine(&f, &q));
        min_cosine = min_cosine.min(c);
        sum_cosine += c;
        deltas.add(&f, &q);
        crate::progress::step(i as u64 + 1, texts.len() as u64);
    }
    if texts.is_empty() {
        return Err(ExportError::BadFile {
            path: check.map(|c| c.tsv.clone()).unwrap_or_default(),
            reason: "no texts to compare the embeddings on".into(),
        });
    }
    Ok(QuantizationReport {
        data,
        rows: texts.len(),
        min_cosine: Some(min_cosine),
        mean_cosine: Some(sum_cosine / texts.len() as f64),
        ..deltas.report()
    })
}

/// Runs both graphs on `texts` (with optional true labels) and measures how far apart they are.
fn compare(
    float: &mut Classifier,
    quantized: &mut Classifier,
    texts: &[(String, Option<usize>)],
    data: &str,
    tick: &dyn Fn(),
) -> Result<QuantizationReport> {
    let (mut agree, mut float_right, mut quant_right, mut labeled) =
        (0usize, 0usize, 0usize, 0usize);
    let mut deltas = Deltas::default();
    for (text, label) in texts {
        let f = float.classify(text, None)?;
        let q = quantized.classify(text, None)?;
        agree += (f.label_index == q.label_index) as usize;
        if let Some(label) = label {
            labeled += 1;
            float_right += (f.label_index == *label) as usize;
            quant_right += (q.label_index == *label) as usize;
        }
        deltas.add(&f.logits, &q.logits);
        tick();
    }
    let rows = texts.len().max(1) as f64;
    let accuracy = |right: usize| (labeled > 0).then(|| right as f64 / labeled as f64);
    Ok(QuantizationReport {
        data: data.to_string(),
        rows: texts.len(),
        float_accuracy: accuracy(float_right),
        quantized_accuracy: accuracy(quant_right),
        label_agreement: Some(agree as f64 / rows),
        ..deltas.report()
    })
}

/// The largest and mean absolute difference between the float and quantized outputs.
#[derive(Default)]
struct Deltas {
    max: f32,
    sum: f64,
    count: usize,
}

impl Deltas {
    fn add(&mut self, float: &[f32], quantized: &[f32]) {
        for (a, b) in float.iter().zip(quantized) {
            let d = (a - b).abs();
            self.max = self.max.max(d);
            self.sum += f64::from(d);
            self.count += 1;
        }
    }

    /// A report holding only the differences.
    fn report(&self) -> QuantizationReport {
        QuantizationReport {
            max_abs_logit_delta: self.max,
            mean_abs_logit_delta: (self.sum / self.count.max(1) as f64) as f32,
            ..Default::default()
        }
    }
}

/// The task a text graph was built for, as its own type.
fn typed<T: Task>(task: &mut dyn Task) -> Result<&mut T> {
    kinglet_runtime::task::downcast(task).ok_or_else(|| {
        ExportError::SelfTest("the reloaded bundle is not the task the graph was built as".into())
    })
}
