//! Text classification: a whole text, or a sentence pair, to labels.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::inspect::TaskReport;
use crate::manifest::ClassifierMeta;
use crate::memory::{LoadOptions, MemoryReport};
use crate::text::{TextModel, TextTask};
use crate::tokenize::{PairTruncation, Tokens};
use std::path::Path;

pub use crate::text::MAX_TEXT_BYTES;

/// The zero-shot pipeline's default hypothesis (`{}` is where a candidate label goes).
pub const DEFAULT_HYPOTHESIS: &str = "This example is {}.";

/// A loaded text classifier, ready to answer.
#[derive(Debug)]
pub struct Classifier {
    text: TextModel,
}

/// The answer for one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Classification {
    /// Index of the winning label.
    pub label_index: usize,
    /// Name of the winning label.
    pub label: String,
    /// Probability of the winning label (softmax, or sigmoid for multi-label models).
    pub score: f32,
    /// Raw logits in the model's label order.
    pub logits: Vec<f32>,
    /// Probability of every label, in label order.
    pub scores: Vec<f32>,
    /// True when the text was cut to the token limit.
    pub truncated: bool,
    /// Number of tokens the model saw, special tokens included.
    pub tokens: usize,
}

impl Classifier {
    /// Loads a bundle file for serving: parses the graph straight from the file, optimizes it
    /// for this CPU, runs the memory preflight at the largest input, refuses a model that
    /// needs more than the budget, and reserves the arena every later inference runs in (see
    /// [`crate::memory`]).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Classifier> {
        let meter = crate::memory::LoadMeter::start();
        let file = crate::bundle::BundleFile::open(path)?;
        TextModel::load_task(meter, file, options)
    }

    /// Builds a classifier from a bundle, optimizing its graph for this CPU.
    pub fn from_bundle(bundle: &crate::bundle::Bundle) -> Result<Classifier> {
        TextModel::task_from_bundle(bundle)
    }

    /// Builds a classifier around an already prepared engine (the exporter uses this to run
    /// the graph it has in memory). Without the bundle's architecture, a graph without token
    /// types classifies single texts only.
    pub fn with_engine(
        meta: ClassifierMeta,
        tokenizer_json: &[u8],
        engine: Engine,
    ) -> Result<Classifier> {
        TextModel::task_with_engine(meta, tokenizer_json, engine)
    }

    /// The text model inside: metadata, tokenizer and graph.
    pub fn text(&self) -> &TextModel {
        &self.text
    }

    /// What the model holds and needs, when it was loaded with [`Classifier::load`] under
    /// kinglet's allocator.
    pub fn memory(&self) -> Option<&MemoryReport> {
        self.text.memory()
    }

    /// The text model inside, to run its graph on token ids directly.
    pub fn text_mut(&mut self) -> &mut TextModel {
        &mut self.text
    }

    /// Labels, token limits and scoring mode from the manifest.
    pub fn meta(&self) -> &ClassifierMeta {
        &self.text.meta
    }

    /// Classifies one text, truncated to `max_tokens` (the bundle's default when `None`).
    /// With a memory report (see [`Classifier::load`]) it runs inside the arena.
    pub fn classify(&mut self, text: &str, max_tokens: Option<usize>) -> Result<Classification> {
        let max_tokens = self.text.request(text, max_tokens, "classify")?;
        self.text.run_text(text, max_tokens, |t, tokens, logits| {
            Ok(answer(&t.meta, tokens, logits))
        })
    }

    /// Classifies a sentence pair (NLI premise and hypothesis, a cross-encoder's query and
    /// passage) the way Transformers does `model(**tokenizer(first, second, truncation=True))`:
    /// the tokenizer's pair template, the second text as segment 1 where the model has token
    /// types, the longer text cut first past `max_tokens`.
    pub fn classify_pair(
        &mut self,
        first: &str,
        second: &str,
        max_tokens: Option<usize>,
    ) -> Result<Classification> {
        self.pair(first, second, max_tokens, PairTruncation::LongestFirst)
    }

    fn pair(
        &mut self,
        first: &str,
        second: &str,
        max_tokens: Option<usize>,
        truncation: PairTruncation,
    ) -> Result<Classification> {
        crate::text::check_length(first.len() + second.len())?;
        let max_tokens = self.text.max_tokens(max_tokens)?;
        for (which, text) in [("first", first), ("second", second)] {
            if text.trim().is_empty() {
                return Err(Error::BadInput(format!(
                    "the pair's {which} text is empty: nothing to classify"
                )));
            }
        }
        self.text.run_pair(
            (first, second),
            max_tokens,
            truncation,
            |t, tokens, logits| Ok(answer(&t.meta, tokens, logits)),
        )
    }

    /// Zero-shot classification with an NLI model, as Transformers'
    /// `pipeline("zero-shot-classification")` does it: every candidate label is put into
    /// `hypothesis` (at its `{}`) and paired with `text` (the text cut first past the limit);
    /// the entailment logits are softmaxed across the candidates, or, with `multi_label` (or a
    /// single candidate), each candidate's entailment against its contradiction. The answer
    /// lists the candidates best first.
    pub fn zero_shot(
        &mut self,
        text: &str,
        candidates: &[String],
        hypothesis: &str,
        multi_label: bool,
        max_tokens: Option<usize>,
    ) -> Result<ZeroShot> {
        let entailment = self.entailment_index()?;
        let contradiction = if entailment == 0 {
            self.text.meta.labels.len() - 1
        } else {
            0
        };
        if candidates.is_empty() || candidates.iter().any(|c| c.trim().is_empty()) {
            return Err(Error::BadInput(
                "zero-shot needs one or more non-empty candidate labels".into(),
            ));
        }
        if !hypothesis.contains("{}") {
            return Err(Error::BadInput(format!(
                "the hypothesis {hypothesis:?} has no {{}} for the label to go into"
            )));
        }
        let mut logits = Vec::with_capacity(candidates.len());
        for label in candidates {
            let hypothesis = hypothesis.replacen("{}", label, 1);
            let answer = self.pair(text, &hypothesis, max_tokens, PairTruncation::OnlyFirst)?;
            logits.push((answer.logits[entailment], answer.logits[contradiction]));
        }
        let scores: Vec<f32> = if multi_label || candidates.len() == 1 {
            logits
                .iter()
                .map(|&(entail, contra)| softmax(&[contra, entail])[1])
                .collect()
        } else {
            softmax(&logits.iter().map(|l| l.0).collect::<Vec<_>>())
        };
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        // best first; a tie keeps the later candidate first, as the pipeline's reversed
        // argsort does
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(b.cmp(&a)));
        Ok(ZeroShot {
            labels: order.iter().map(|&i| candidates[i].clone()).collect(),
            scores: order.iter().map(|&i| scores[i]).collect(),
        })
    }

    /// The index of the model's entailment label: the first whose name starts with `entail`
    /// (any case), as the zero-shot pipeline finds it in `id2label`.
    pub fn entailment_index(&self) -> Result<usize> {
        let labels = &self.text.meta.labels;
        labels
            .iter()
            .position(|l| l.to_lowercase().starts_with("entail"))
            .ok_or_else(|| {
                Error::BadInput(format!(
                    "zero-shot classification needs an NLI model with an entailment label; this \
                     model's labels are {}",
                    labels.join(", ")
                ))
            })
    }

    /// Whether the graph reads token types, so that a pair's second text is segment 1.
    pub fn has_token_types(&self) -> bool {
        self.text.has_token_types()
    }

    /// The special tokens written literally in `text` (see
    /// [`crate::tokenize::TextTokenizer::special_tokens_in`]).
    pub fn special_tokens_in(&self, text: &str) -> Vec<String> {
        self.text.special_tokens_in(text)
    }

    /// Token ids of `text` as the model would see them (truncated to the bundle's limit).
    pub fn token_ids(&mut self, text: &str) -> Result<Vec<i64>> {
        self.text.token_ids(text)
    }

    /// Runs the graph on token ids (one segment) and returns the raw logits (inside the
    /// arena, if any).
    pub fn logits(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
        self.text.logits(ids)
    }
}

/// The classification of a graph's logits for `tokens`.
fn answer(meta: &ClassifierMeta, tokens: Tokens, logits: Vec<f32>) -> Classification {
    let scores = if meta.multi_label {
        sigmoid(&logits)
    } else {
        softmax(&logits)
    };
    let (label_index, score) = argmax(&scores);
    Classification {
        label_index,
        label: meta.labels.get(label_index).cloned().unwrap_or_default(),
        score,
        logits,
        scores,
        truncated: tokens.truncated,
        tokens: tokens.ids.len(),
    }
}

impl TextTask for Classifier {
    fn wrap(text: TextModel) -> Classifier {
        Classifier { text }
    }

    fn text_model(&self) -> &TextModel {
        &self.text
    }

    fn text_model_mut(&mut self) -> &mut TextModel {
        &mut self.text
    }

    fn outputs(&mut self, text: &str) -> Result<Vec<f32>> {
        Ok(self.classify(text, None)?.logits)
    }

    fn report(&self) -> TaskReport {
        let meta = &self.text.meta;
        TaskReport::Classifier {
            labels: meta.labels.clone(),
            multi_label: meta.multi_label,
            max_tokens: meta.max_tokens,
            max_position_embeddings: meta.max_position_embeddings,
        }
    }

    fn run_worst(&mut self, text: &str, longest: usize) -> Result<()> {
        self.classify(text, Some(longest))?;
        // and as a pair of halves (a pair's texts share the byte limit)
        if self.text.reads_pairs() {
            let (first, second) = text.split_at(text.len() / 2);
            self.classify_pair(first, second, Some(longest))?;
        }
        Ok(())
    }
}

/// The index and value of the largest score (the first of equals).
pub(crate) fn argmax(scores: &[f32]) -> (usize, f32) {
    scores
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, s)| {
            if s > best.1 {
                (i, s)
            } else {
                best
            }
        })
}

/// The answer of [`Classifier::zero_shot`]: the candidate labels, best first, with their
/// scores (as the pipeline's `labels` and `scores`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ZeroShot {
    /// Candidate labels, best first.
    pub labels: Vec<String>,
    /// Their scores: summing to 1 across candidates, or each in 0..1 with `multi_label`.
    pub scores: Vec<f32>,
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// Element-wise logistic function.
pub fn sigmoid(logits: &[f32]) -> Vec<f32> {
    logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect()
}
