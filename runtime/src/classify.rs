//! Text classification: tokenizer + graph + label mapping.

use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{ClassifierMeta, ModelKind};
use crate::memory::{LoadMeter, LoadOptions, MemoryReport, Parts};
use crate::tokenize::TextTokenizer;
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
        let mut classifier = Classifier::checked(meta, tokenizer, engine, &path)?;
        // The largest input a request may ask for: --max-tokens can go up to the positions.
        let longest = classifier.meta.max_position_embeddings;
        let at = format!("{longest} tokens");
        let report = meter.finish(parts, budget, at, || {
            // the arena must hold the worst request: the most words and the most tokens
            for text in classifier.worst_texts() {
                classifier.classify(&text, Some(longest))?;
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
        Classifier::with_engine(meta.clone(), tokenizer_json, engine)
    }

    /// Builds a classifier around an already prepared engine (the exporter uses this to run
    /// the graph it has in memory).
    pub fn with_engine(
        meta: ClassifierMeta,
        tokenizer_json: &[u8],
        engine: Engine,
    ) -> Result<Classifier> {
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json)?;
        Classifier::checked(meta, tokenizer, engine, std::path::Path::new("bundle"))
    }

    /// Puts the parts together once the tokenizer is known to emit only ids the graph's
    /// embedding table has rows for.
    fn checked(
        meta: ClassifierMeta,
        tokenizer: TextTokenizer,
        engine: Engine,
        path: &std::path::Path,
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
        Ok(Classifier {
            meta,
            tokenizer,
            engine,
            memory: None,
            embedding_rows,
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
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::BadInput(format!(
                "text is {} bytes; the limit is {MAX_TEXT_BYTES} bytes",
                text.len()
            )));
        }
        let memory = self.memory.take();
        let result = crate::memory::run_in_arena(memory.as_ref(), || {
            self.classify_unscoped(text, max_tokens)
        });
        self.memory = memory;
        result
    }

    fn classify_unscoped(
        &mut self,
        text: &str,
        max_tokens: Option<usize>,
    ) -> Result<Classification> {
        let max_tokens = max_tokens.unwrap_or(self.meta.max_tokens);
        if max_tokens < 2 || max_tokens > self.meta.max_position_embeddings {
            return Err(Error::BadInput(format!(
                "max tokens must be between 2 and {} for this model, got {max_tokens}",
                self.meta.max_position_embeddings
            )));
        }
        if text.trim().is_empty() {
            return Err(Error::BadInput("empty text: nothing to classify".into()));
        }
        let tokens = self.tokenizer.encode(text, max_tokens)?;
        let logits = self.logits_unscoped(&tokens.ids)?;
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

    /// Runs the graph on token ids and returns the raw logits (inside the arena, if any).
    pub fn logits(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
        let memory = self.memory.take();
        let result = crate::memory::run_in_arena(memory.as_ref(), || self.logits_unscoped(ids));
        self.memory = memory;
        result
    }

    fn logits_unscoped(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
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
        let logits = self.engine.run_f32(input)?;
        if logits.iter().any(|l| !l.is_finite()) {
            return Err(Error::Inference(
                "the model's logits are not finite numbers".into(),
            ));
        }
        if logits.len() != self.meta.labels.len() {
            return Err(Error::Inference(format!(
                "graph returned {} logits for {} labels",
                logits.len(),
                self.meta.labels.len()
            )));
        }
        Ok(logits)
    }
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
