//! Sentence embeddings: a text to the vector a sentence-transformers folder computes (pooled
//! and normalized as the folder configured it), for semantic search ([`crate::index`]).

use crate::engine::Engine;
use crate::error::Result;
use crate::inspect::TaskReport;
use crate::manifest::ClassifierMeta;
use crate::memory::LoadOptions;
use crate::text::{TextModel, TextTask};
use std::path::Path;

/// A loaded sentence-embedding model, ready to answer.
#[derive(Debug)]
pub struct Embedder {
    text: TextModel,
}

impl Embedder {
    /// Loads a bundle file for serving, with the memory preflight of the longest text (see
    /// [`crate::classify::Classifier::load`]).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Embedder> {
        let meter = crate::memory::LoadMeter::start();
        let file = crate::bundle::BundleFile::open(path)?;
        TextModel::load_task(meter, file, options)
    }

    /// Builds an embedder from a bundle, optimizing its graph for this CPU.
    pub fn from_bundle(bundle: &crate::bundle::Bundle) -> Result<Embedder> {
        TextModel::task_from_bundle(bundle)
    }

    /// Builds an embedder around an already prepared engine (the exporter's graph in memory).
    pub fn with_engine(
        meta: ClassifierMeta,
        tokenizer_json: &[u8],
        engine: Engine,
    ) -> Result<Embedder> {
        TextModel::task_with_engine(meta, tokenizer_json, engine)
    }

    /// Token limits and the pooling from the manifest.
    pub fn meta(&self) -> &ClassifierMeta {
        &self.text.meta
    }

    /// The length of the vectors.
    pub fn dimensions(&self) -> usize {
        self.text.meta.outputs()
    }

    /// The text model inside: metadata, tokenizer and graph.
    pub fn text(&self) -> &TextModel {
        &self.text
    }

    /// The special tokens written literally in `text`.
    pub fn special_tokens_in(&self, text: &str) -> Vec<String> {
        self.text.special_tokens_in(text)
    }

    /// The sentence embedding of one text, truncated to `max_tokens` (the bundle's default
    /// when `None`), inside the arena when loaded with one.
    pub fn embed(&mut self, text: &str, max_tokens: Option<usize>) -> Result<Embedding> {
        let max_tokens = self.text.request(text, max_tokens, "embed")?;
        self.text.run_text(text, max_tokens, |_, tokens, vector| {
            Ok(Embedding {
                vector,
                truncated: tokens.truncated,
                tokens: tokens.ids.len(),
            })
        })
    }
}

impl TextTask for Embedder {
    fn wrap(text: TextModel) -> Embedder {
        Embedder { text }
    }

    fn text_model(&self) -> &TextModel {
        &self.text
    }

    fn text_model_mut(&mut self) -> &mut TextModel {
        &mut self.text
    }

    fn outputs(&mut self, text: &str) -> Result<Vec<f32>> {
        Ok(self.embed(text, None)?.vector)
    }

    fn report(&self) -> TaskReport {
        let meta = &self.text.meta;
        let embedding = meta
            .embedding
            .clone()
            .unwrap_or_else(|| crate::manifest::EmbeddingMeta {
                dimensions: meta.outputs(),
                pooling: String::new(),
                normalized: false,
            });
        TaskReport::Embedder {
            dimensions: embedding.dimensions,
            pooling: embedding.pooling,
            normalized: embedding.normalized,
            max_tokens: meta.max_tokens,
            max_position_embeddings: meta.max_position_embeddings,
        }
    }

    fn run_worst(&mut self, text: &str, longest: usize) -> Result<()> {
        self.embed(text, Some(longest)).map(drop)
    }
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
