//! Text classification: tokenizer + graph + label mapping.

use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{ClassifierMeta, ModelKind};
use crate::tokenize::TextTokenizer;
use tract_nnef::prelude::*;

/// A loaded text classifier, ready to answer.
#[derive(Debug)]
pub struct Classifier {
    /// Labels, truncation limits and scoring mode from the manifest.
    pub meta: ClassifierMeta,
    tokenizer: TextTokenizer,
    engine: Engine,
}

/// The answer for one text.
#[derive(Debug, Clone, PartialEq)]
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
        Ok(Classifier {
            meta,
            tokenizer,
            engine,
        })
    }

    /// Classifies one text, truncated to `max_tokens` (the bundle's default when `None`).
    pub fn classify(&mut self, text: &str, max_tokens: Option<usize>) -> Result<Classification> {
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
        let logits = self.logits(&tokens.ids)?;
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
        let text = "kinglet ".repeat(self.meta.max_tokens * 2);
        Ok(self.tokenizer.encode(&text, self.meta.max_tokens)?.ids)
    }

    /// Token ids of `text` as the model would see them (truncated to the bundle's limit).
    pub fn token_ids(&mut self, text: &str) -> Result<Vec<i64>> {
        Ok(self.tokenizer.encode(text, self.meta.max_tokens)?.ids)
    }

    /// Runs the graph on token ids and returns the raw logits.
    pub fn logits(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
        let input = Tensor::from_shape(&[1, ids.len()], ids).map_err(Error::inference)?;
        let logits = self.engine.run_f32(input)?;
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
