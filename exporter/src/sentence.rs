//! Sentence embeddings from a sentence-transformers folder.
//!
//! A folder that `SentenceTransformer.save` wrote: `modules.json` lists a `Transformer` at the
//! root (a `BertModel` or `RobertaModel`/`XLMRobertaModel` checkpoint), a `Pooling` module
//! (`1_Pooling/config.json`: mean, CLS or max over the tokens) and optionally `Normalize`.
//! The graph is the encoder, the pooling and the normalization: `input_ids` → the sentence's
//! vector `[1, hidden]`, as `SentenceTransformer.encode` computes it (one sentence, so no
//! padding to mask).

use crate::bert;
use crate::error::{ExportError, Result};
use crate::graph::{BuildOptions, GraphBuilder};
use crate::weights::Weights;
use kinglet_runtime::manifest::EmbeddingMeta;
use serde::Deserialize;
use std::path::Path;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::array::Slice;
use tract_nnef::tract_core::ops::math;
use tract_nnef::tract_core::ops::nn::{Reduce, Reducer};

/// What the sentence-transformers files of a folder say.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceConfig {
    /// `mean`, `cls` or `max`.
    pub pooling: String,
    /// A `Normalize` module follows the pooling.
    pub normalize: bool,
    /// The token limit sentence-transformers applies, when the folder sets one.
    pub max_seq_length: Option<usize>,
}

/// One entry of `modules.json`.
#[derive(Debug, Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// `1_Pooling/config.json`, in either of the forms sentence-transformers has written.
#[derive(Debug, Deserialize)]
struct Pooling {
    /// sentence-transformers 5 and later: `"mean"`, `"cls"`, `"max"` … or a list of them.
    #[serde(default)]
    pooling_mode: Option<serde_json::Value>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

impl SentenceConfig {
    /// Reads the folder's sentence-transformers files; `None` when it has no `modules.json`.
    pub fn read(dir: &Path) -> Result<Option<SentenceConfig>> {
        let path = dir.join("modules.json");
        if !path.exists() {
            return Ok(None);
        }
        let modules: Vec<Module> = read_json(&path)?;
        let bad = |reason: String| ExportError::BadFile {
            path: path.clone(),
            reason,
        };
        let mut pooling = None;
        let mut normalize = false;
        for m in &modules {
            let kind = m.kind.rsplit('.').next().unwrap_or_default();
            match kind {
                "Transformer" if m.path.is_empty() => {}
                "Transformer" => {
                    return Err(ExportError::Unsupported(format!(
                        "the Transformer module is in {}/{}; kinglet reads a folder whose \
                         checkpoint is at its root (as SentenceTransformer.save writes it)",
                        dir.display(),
                        m.path
                    )))
                }
                "Pooling" => pooling = Some(pooling_mode(&dir.join(&m.path).join("config.json"))?),
                "Normalize" => normalize = true,
                other => {
                    return Err(ExportError::Unsupported(format!(
                        "sentence-transformers module `{other}` ({}); kinglet exports \
                         Transformer, Pooling and Normalize",
                        m.kind
                    )))
                }
            }
        }
        let pooling = pooling.ok_or_else(|| bad("no Pooling module".into()))?;
        // the limit sentence-transformers truncates at: `max_seq_length` of
        // sentence_bert_config.json, else (version 5 and later) the tokenizer's
        // `model_max_length`
        let limit = |file: &str, field: &str| -> Result<Option<usize>> {
            let path = dir.join(file);
            if !path.exists() {
                return Ok(None);
            }
            let v: serde_json::Value = read_json(&path)?;
            Ok(v.get(field).and_then(|m| m.as_u64()).map(|m| m as usize))
        };
        let max_seq_length = match limit("sentence_bert_config.json", "max_seq_length")? {
            Some(m) => Some(m),
            None => limit("tokenizer_config.json", "model_max_length")?,
        };
        Ok(Some(SentenceConfig {
            pooling,
            normalize,
            max_seq_length,
        }))
    }

    /// The manifest's record of it, for vectors of `dimensions`.
    pub fn meta(&self, dimensions: usize) -> EmbeddingMeta {
        EmbeddingMeta {
            dimensions,
            pooling: self.pooling.clone(),
            normalized: self.normalize,
        }
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(ExportError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| ExportError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The one pooling mode a Pooling config sets.
fn pooling_mode(path: &Path) -> Result<String> {
    let p: Pooling = read_json(path)?;
    let mut modes: Vec<String> = match &p.pooling_mode {
        Some(serde_json::Value::String(m)) => vec![m.clone()],
        Some(serde_json::Value::Array(ms)) => ms
            .iter()
            .map(|m| m.as_str().unwrap_or("?").to_string())
            .collect(),
        _ => [
            (p.pooling_mode_cls_token, "cls"),
            (p.pooling_mode_mean_tokens, "mean"),
            (p.pooling_mode_max_tokens, "max"),
            (p.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len_tokens"),
            (p.pooling_mode_weightedmean_tokens, "weightedmean"),
            (p.pooling_mode_lasttoken, "lasttoken"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, m)| m.to_string())
        .collect(),
    };
    modes.dedup();
    match modes.as_slice() {
        [m] if ["mean", "cls", "max"].contains(&m.as_str()) => Ok(m.clone()),
        [] => Err(ExportError::BadFile {
            path: path.to_owned(),
            reason: "no pooling mode is set".into(),
        }),
        _ => Err(ExportError::Unsupported(format!(
            "pooling {} in {} (kinglet pools with one of mean, cls, max)",
            modes.join(" + "),
            path.display()
        ))),
    }
}

/// Builds the embedding graph of a BERT- or RoBERTa-family encoder.
pub fn build(
    weights: Weights,
    config: &bert::Config,
    flavour: bert::Flavour,
    sentence: &SentenceConfig,
    options: BuildOptions,
) -> Result<TypedModel> {
    let (mut g, x) = bert::encoder(&weights, config, flavour, options)?;
    let pooled = pool(&mut g, x, &sentence.pooling)?;
    let out = if sentence.normalize {
        normalize(&mut g, pooled)?
    } else {
        pooled
    };
    g.finish(out, "sentence_embedding")
}

/// `[S, H]` → `[1, H]`: the mean of the rows, the first row, or the largest value per column.
fn pool(g: &mut GraphBuilder, x: OutletId, pooling: &str) -> Result<OutletId> {
    let over_tokens = |reducer| Reduce::new(tvec!(0), reducer);
    match pooling {
        "cls" => g.first_token("pooling.cls", x),
        "max" => g.wire("pooling.max", over_tokens(Reducer::Max), &[x]),
        _ => {
            let sum = g.wire("pooling.sum", over_tokens(Reducer::Sum), &[x])?;
            // the token count, as a value of the graph (the length is symbolic): a column of
            // ones summed
            let column = g.wire("pooling.column", Slice::new(1, 0, 1), &[x])?;
            let zeros = g.scale("pooling.zeros", column, 0.0)?;
            let one = g.konst("pooling.one", tensor0(1f32))?;
            let ones = g.binary("pooling.ones", math::add(), zeros, one)?;
            let count = g.wire("pooling.count", over_tokens(Reducer::Sum), &[ones])?;
            g.binary("pooling.mean", math::div(), sum, count)
        }
    }
}

/// `v / max(‖v‖₂, 1e-12)` over the last axis, as `torch.nn.functional.normalize`.
fn normalize(g: &mut GraphBuilder, v: OutletId) -> Result<OutletId> {
    let squares = g.wire("normalize.square", math::square(), &[v])?;
    let sum = g.wire(
        "normalize.sum",
        Reduce::new(tvec!(1), Reducer::Sum),
        &[squares],
    )?;
    let norm = g.wire("normalize.sqrt", math::sqrt(), &[sum])?;
    let floor = g.konst("normalize.eps", tensor0(1e-12f32))?;
    let norm = g.binary("normalize.floor", math::max(), norm, floor)?;
    g.binary("normalize.divide", math::div(), v, norm)
}
