//! Text classification: tokenizer + graph + label mapping.

use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{ClassifierMeta, ModelKind};
use crate::memory::{LoadMeter, LoadOptions, MemoryReport, Parts};
use crate::tokenize::{PairTruncation, TextTokenizer, Tokens};
use std::path::Path;
use tract_nnef::prelude::*;

/// Longest text accepted, in bytes. Tokenizing happens before truncation, so the text's length
/// (not only the token limit) bounds a request's memory; the preflight tokenizes a text this
/// long. Real sentences are far shorter (SST-2's longest is under 300 bytes).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// A loaded text classifier, ready to answer.
#[derive(Debug)]
pub struct Classifier {
    /// Labels, truncation limits and scoring mode from the manifest.
    pub meta: ClassifierMeta,
    tokenizer: TextTokenizer,
    engine: Engine,
    memory: Option<MemoryReport>,
    /// Rows of the word embedding table: token ids must be below it.
    embedding_rows: Option<usize>,
    /// How the graph tells a pair's second text from the first.
    segments: Segments,
}

/// How a classifier's graph tells a sentence pair's two texts apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segments {
    /// By `token_type_ids`, its second input, with this many rows in the type table.
    TokenTypes(usize),
    /// By the pair template's separator tokens alone: the family has no token types
    /// (DistilBERT, RoBERTa, XLM-R, CamemBERT), so the tokenizer's type ids are not read, as
    /// Transformers does not pass them.
    Separators,
    /// Not at all: a BERT graph exported without `token_type_ids` (before kinglet read pairs).
    Unread,
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
        let meter = LoadMeter::start();
        let file = crate::bundle::BundleFile::open(path)?;
        Classifier::load_file(meter, file, options)
    }

    /// [`Classifier::load`] of an opened bundle file, measured from `meter`'s start.
    pub(crate) fn load_file(
        meter: LoadMeter,
        file: crate::bundle::BundleFile,
        options: &LoadOptions,
    ) -> Result<Classifier> {
        let unsupported = |reason: &str| Error::Unsupported {
            path: file.path.clone(),
            reason: reason.to_string(),
        };
        let ModelKind::Classifier(meta) = &file.manifest.model else {
            return Err(unsupported("this bundle is a forecaster, not a classifier"));
        };
        file.check_trust(options.trusted.as_ref())?;
        let budget = crate::memory::Budget::new(options, &file.manifest);
        let before = meter.held();
        let tokenizer = TextTokenizer::from_bytes(
            file.tokenizer
                .as_deref()
                .ok_or_else(|| unsupported("classifier bundle has no tokenizer"))?,
        )
        .map_err(|e| Error::BadBundle {
            path: file.path.clone(),
            reason: e.to_string(),
        })?;
        let tokenizer_bytes = meter.held().saturating_sub(before);
        let meta = meta.clone();
        let architecture = file.manifest.architecture.clone();
        let before = meter.held();
        let model = file.read_graph()?;
        let weights_bytes = crate::memory::constant_bytes(&model);
        let path = file.path.clone();
        drop(file);
        let engine = Engine::from_typed(model)?;
        let parts = Parts {
            tokenizer_bytes,
            weights_bytes,
            model_bytes: meter.held().saturating_sub(before),
        };
        let mut classifier = Classifier::checked(meta, tokenizer, engine, &path, &architecture)?;
        // The largest input a request may ask for: --max-tokens can go up to the positions.
        let longest = classifier.meta.max_position_embeddings;
        let at = format!("{longest} tokens");
        let report = meter.finish(parts, budget, at, || {
            // the arena must hold the worst request: the most words and the most tokens
            let embeds = classifier.meta.embedding.is_some();
            let tags = classifier.meta.per_token;
            for text in classifier.worst_texts() {
                if embeds {
                    classifier.embed(&text, Some(longest))?;
                    continue;
                }
                if tags {
                    classifier.tag(&text, Some(longest))?;
                    continue;
                }
                classifier.classify(&text, Some(longest))?;
                // and as a pair of halves (a pair's texts share the byte limit)
                if classifier.segments != Segments::Unread {
                    let (first, second) = text.split_at(text.len() / 2);
                    classifier.classify_pair(first, second, Some(longest))?;
                }
            }
            Ok(())
        })?;
        classifier.memory = report;
        Ok(classifier)
    }

    /// What the model holds and needs, when it was loaded with [`Classifier::load`] under
    /// kinglet's allocator.
    pub fn memory(&self) -> Option<&MemoryReport> {
        self.memory.as_ref()
    }

    /// Builds a classifier from a bundle, optimizing its graph for this CPU.
    pub fn from_bundle(bundle: &Bundle) -> Result<Classifier> {
        let unsupported = |reason: &str| Error::Unsupported {
            path: bundle.path.clone(),
            reason: reason.to_string(),
        };
        let ModelKind::Classifier(meta) = &bundle.manifest.model else {
            return Err(unsupported("this bundle is a forecaster, not a classifier"));
        };
        let tokenizer_json = bundle
            .tokenizer
            .as_ref()
            .ok_or_else(|| unsupported("classifier bundle has no tokenizer"))?;
        let engine = Engine::from_nnef_tar(&bundle.graph)?;
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json)?;
        Classifier::checked(
            meta.clone(),
            tokenizer,
            engine,
            &bundle.path,
            &bundle.manifest.architecture,
        )
    }

    /// Builds a classifier around an already prepared engine (the exporter uses this to run
    /// the graph it has in memory). Without the bundle's architecture, a graph without token
    /// types classifies single texts only.
    pub fn with_engine(
        meta: ClassifierMeta,
        tokenizer_json: &[u8],
        engine: Engine,
    ) -> Result<Classifier> {
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json)?;
        Classifier::checked(meta, tokenizer, engine, std::path::Path::new("bundle"), "")
    }

    /// Puts the parts together once the tokenizer is known to emit only ids the graph's
    /// embedding table has rows for.
    fn checked(
        meta: ClassifierMeta,
        tokenizer: TextTokenizer,
        engine: Engine,
        path: &std::path::Path,
        architecture: &str,
    ) -> Result<Classifier> {
        let embedding_rows = engine.gather_rows();
        if let (Some(rows), Some(max_id)) = (embedding_rows, tokenizer.max_id()) {
            if max_id >= rows {
                return Err(Error::BadBundle {
                    path: path.to_owned(),
                    reason: format!(
                        "the tokenizer has token id {max_id}, past the {rows} rows of the \
                         graph's embedding table"
                    ),
                });
            }
        }
        let bad = |reason: String| Error::BadBundle {
            path: path.to_owned(),
            reason,
        };
        let segments = match engine.input_count() {
            1 if architecture.is_empty() || architecture.starts_with("Bert") => Segments::Unread,
            1 => Segments::Separators,
            2 => Segments::TokenTypes(engine.input_rows(1).ok_or_else(|| {
                bad("the graph's second input is not a token type lookup".into())
            })?),
            n => {
                return Err(bad(format!(
                    "the graph takes {n} inputs; a text classifier takes input_ids and at most \
                     token_type_ids"
                )))
            }
        };
        Ok(Classifier {
            meta,
            tokenizer,
            engine,
            memory: None,
            embedding_rows,
            segments,
        })
    }

    /// The special tokens written literally in `text` (see
    /// [`crate::tokenize::TextTokenizer::special_tokens_in`]).
    pub fn special_tokens_in(&self, text: &str) -> Vec<String> {
        self.tokenizer.special_tokens_in(text)
    }

    /// Classifies one text, truncated to `max_tokens` (the bundle's default when `None`).
    /// With a memory report (see [`Classifier::load`]) it runs inside the arena.
    pub fn classify(&mut self, text: &str, max_tokens: Option<usize>) -> Result<Classification> {
        self.labelled()?;
        check_length(text.len())?;
        let max_tokens = self.max_tokens(max_tokens)?;
        if text.trim().is_empty() {
            return Err(Error::BadInput("empty text: nothing to classify".into()));
        }
        self.in_arena(|c| {
            let tokens = c.tokenizer.encode(text, max_tokens)?;
            c.answer(tokens)
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
        self.labelled()?;
        check_length(first.len() + second.len())?;
        let max_tokens = self.max_tokens(max_tokens)?;
        for (which, text) in [("first", first), ("second", second)] {
            if text.trim().is_empty() {
                return Err(Error::BadInput(format!(
                    "the pair's {which} text is empty: nothing to classify"
                )));
            }
        }
        self.in_arena(|c| {
            let tokens = c
                .tokenizer
                .encode_pair(first, second, max_tokens, truncation)?;
            c.answer(tokens)
        })
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
            self.meta.labels.len() - 1
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
        self.meta
            .labels
            .iter()
            .position(|l| l.to_lowercase().starts_with("entail"))
            .ok_or_else(|| {
                Error::BadInput(format!(
                    "zero-shot classification needs an NLI model with an entailment label; this \
                     model's labels are {}",
                    self.meta.labels.join(", ")
                ))
            })
    }

    /// The sentence embedding of one text (a bundle exported from a sentence-transformers
    /// folder), pooled and normalized as the folder configured it; truncated to `max_tokens`
    /// (the bundle's default when `None`).
    pub fn embed(&mut self, text: &str, max_tokens: Option<usize>) -> Result<Embedding> {
        if self.meta.embedding.is_none() {
            return Err(Error::BadInput(
                "this bundle is a classifier; it makes no sentence embeddings".into(),
            ));
        }
        check_length(text.len())?;
        let max_tokens = self.max_tokens(max_tokens)?;
        if text.trim().is_empty() {
            return Err(Error::BadInput("empty text: nothing to embed".into()));
        }
        self.in_arena(|c| {
            let tokens = c.tokenizer.encode(text, max_tokens)?;
            let vector = c.logits_unscoped(&tokens.ids, &tokens.type_ids)?;
            Ok(Embedding {
                vector,
                truncated: tokens.truncated,
                tokens: tokens.ids.len(),
            })
        })
    }

    /// The entities of one text (a token classifier's bundle), grouped as Transformers'
    /// token-classification pipeline with `aggregation_strategy="simple"` (see
    /// [`crate::tag`]); truncated to `max_tokens` (the bundle's default when `None`).
    pub fn tag(&mut self, text: &str, max_tokens: Option<usize>) -> Result<crate::tag::Tagged> {
        let (detail, logits) = self.token_logits(text, max_tokens)?;
        let entities =
            crate::tag::group(&self.meta.labels, &detail, &logits, &self.tokenizer, text)?;
        Ok(crate::tag::Tagged {
            entities,
            truncated: detail.tokens.truncated,
            tokens: detail.tokens.ids.len(),
        })
    }

    /// A token classifier's logits, one row per token.
    fn token_logits(
        &mut self,
        text: &str,
        max_tokens: Option<usize>,
    ) -> Result<(crate::tokenize::TokenDetail, Vec<f32>)> {
        if !self.meta.per_token {
            return Err(Error::BadInput(
                "this bundle classifies whole texts; it tags no tokens".into(),
            ));
        }
        check_length(text.len())?;
        let max_tokens = self.max_tokens(max_tokens)?;
        if text.trim().is_empty() {
            return Err(Error::BadInput("empty text: nothing to tag".into()));
        }
        self.in_arena(|c| {
            let detail = c.tokenizer.encode_detailed(text, max_tokens)?;
            let logits = c.logits_unscoped(&detail.tokens.ids, &detail.tokens.type_ids)?;
            Ok((detail, logits))
        })
    }

    /// The graph's raw output for one text at the bundle's token limit: logits (a token
    /// classifier's for every token, row after row), or the embedding (what self-tests
    /// compare).
    pub fn outputs(&mut self, text: &str) -> Result<Vec<f32>> {
        if self.meta.per_token {
            return Ok(self.token_logits(text, None)?.1);
        }
        match self.meta.embedding {
            Some(_) => Ok(self.embed(text, None)?.vector),
            None => Ok(self.classify(text, None)?.logits),
        }
    }

    /// Refuses to classify with an embedding model or a token classifier.
    fn labelled(&self) -> Result<()> {
        if self.meta.per_token {
            return Err(Error::BadInput(
                "this bundle tags tokens (kinglet tag); it does not classify whole texts".into(),
            ));
        }
        match self.meta.embedding {
            Some(_) => Err(Error::BadInput(
                "this bundle makes sentence embeddings (kinglet embed); it has no labels to \
                 classify with"
                    .into(),
            )),
            None => Ok(()),
        }
    }

    /// Whether the graph reads token types, so that a pair's second text is segment 1.
    pub fn has_token_types(&self) -> bool {
        matches!(self.segments, Segments::TokenTypes(_))
    }

    fn max_tokens(&self, max_tokens: Option<usize>) -> Result<usize> {
        let max_tokens = max_tokens.unwrap_or(self.meta.max_tokens);
        if max_tokens < 2 || max_tokens > self.meta.max_position_embeddings {
            return Err(Error::BadInput(format!(
                "max tokens must be between 2 and {} for this model, got {max_tokens}",
                self.meta.max_position_embeddings
            )));
        }
        Ok(max_tokens)
    }

    /// Runs `f` inside the arena when the classifier was loaded with one.
    fn in_arena<T>(&mut self, f: impl FnOnce(&mut Classifier) -> Result<T>) -> Result<T> {
        let memory = self.memory.take();
        let result = crate::memory::run_in_arena(memory.as_ref(), || f(self));
        self.memory = memory;
        result
    }

    fn answer(&mut self, tokens: Tokens) -> Result<Classification> {
        let logits = self.logits_unscoped(&tokens.ids, &tokens.type_ids)?;
        let scores = if self.meta.multi_label {
            sigmoid(&logits)
        } else {
            softmax(&logits)
        };
        let (label_index, score) =
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
                });
        Ok(Classification {
            label_index,
            label: self
                .meta
                .labels
                .get(label_index)
                .cloned()
                .unwrap_or_default(),
            score,
            logits,
            scores,
            truncated: tokens.truncated,
            tokens: tokens.ids.len(),
        })
    }

    /// The engine, for inspection and profiling.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Token ids of a text that fills `max_tokens` (the largest input the bundle accepts).
    pub fn longest_input(&mut self) -> Result<Vec<i64>> {
        let text = self.longest_text();
        Ok(self.tokenizer.encode(&text, self.meta.max_tokens)?.ids)
    }

    /// The largest text a request may carry ([`MAX_TEXT_BYTES`]), far past the token limit.
    pub fn longest_text(&self) -> String {
        let word = "kinglet ";
        word.repeat(MAX_TEXT_BYTES / word.len())
    }

    /// The texts the arena preflight runs: [`Classifier::longest_text`] (words) and a text of
    /// [`MAX_TEXT_BYTES`] punctuation, one token per byte, which is what makes the tokenizer
    /// hold the most before truncation.
    pub fn worst_texts(&self) -> [String; 2] {
        let marks = ".,!?;:-'";
        [
            self.longest_text(),
            marks.repeat(MAX_TEXT_BYTES / marks.len()),
        ]
    }

    /// Token ids of `text` as the model would see them (truncated to the bundle's limit).
    pub fn token_ids(&mut self, text: &str) -> Result<Vec<i64>> {
        Ok(self.tokenizer.encode(text, self.meta.max_tokens)?.ids)
    }

    /// Runs the graph on token ids (one segment) and returns the raw logits (inside the
    /// arena, if any).
    pub fn logits(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
        self.in_arena(|c| c.logits_unscoped(ids, &[]))
    }

    /// `type_ids` empty: all tokens in segment 0.
    fn logits_unscoped(&mut self, ids: &[i64], type_ids: &[i64]) -> Result<Vec<f32>> {
        if let Some(rows) = self.embedding_rows {
            if let Some(bad) = ids.iter().find(|&&id| id < 0 || id as u64 >= rows as u64) {
                return Err(Error::BadInput(format!(
                    "token id {bad} is not in the model's vocabulary of {rows} tokens"
                )));
            }
        }
        if ids.is_empty() {
            return Err(Error::BadInput("no token ids to classify".into()));
        }
        let input = Tensor::from_shape(&[1, ids.len()], ids).map_err(Error::inference)?;
        let second = type_ids.iter().any(|&t| t != 0);
        let logits = match self.segments {
            Segments::TokenTypes(rows) => {
                if let Some(bad) = type_ids.iter().find(|&&t| t < 0 || t as u64 >= rows as u64) {
                    return Err(Error::BadInput(format!(
                        "token type {bad} is not one of the model's {rows} token types"
                    )));
                }
                let types = if type_ids.is_empty() {
                    Tensor::zero::<i64>(&[1, ids.len()]).map_err(Error::inference)?
                } else if type_ids.len() == ids.len() {
                    Tensor::from_shape(&[1, ids.len()], type_ids).map_err(Error::inference)?
                } else {
                    return Err(Error::BadInput(format!(
                        "{} token types for {} token ids",
                        type_ids.len(),
                        ids.len()
                    )));
                };
                self.engine
                    .run_f32_inputs(tvec!(input.into_tvalue(), types.into_tvalue()))?
            }
            Segments::Unread if second => {
                return Err(Error::BadInput(
                    "this bundle's graph reads every token as the first text (it takes no \
                     token_type_ids), so it cannot classify a sentence pair; export the \
                     checkpoint again with this kinglet-export, which adds token types for \
                     models with type_vocab_size 2 or more"
                        .into(),
                ))
            }
            Segments::Unread | Segments::Separators => self.engine.run_f32(input)?,
        };
        if logits.iter().any(|l| !l.is_finite()) {
            return Err(Error::Inference(
                "the model's logits are not finite numbers".into(),
            ));
        }
        let outputs = match self.meta.per_token {
            true => ids.len() * self.meta.labels.len(),
            false => self.meta.outputs(),
        };
        if logits.len() != outputs {
            return Err(Error::Inference(format!(
                "graph returned {} values; the manifest says {outputs}",
                logits.len()
            )));
        }
        Ok(logits)
    }
}
/// Refuses a request longer than [`MAX_TEXT_BYTES`] (a pair counts both texts).
fn check_length(bytes: usize) -> Result<()> {
    if bytes > MAX_TEXT_BYTES {
        return Err(Error::BadInput(format!(
            "text is {bytes} bytes; the limit is {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A sentence embedding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Embedding {
    /// The vector.
    pub vector: Vec<f32>,
    /// True when the text was cut to the token limit.
    pub truncated: bool,
    /// Number of tokens the model saw, special tokens included.
    pub tokens: usize,
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        (dot / denominator) as f32
    }
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
