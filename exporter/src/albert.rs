//! ALBERT sequence classifiers.
//!
//! Mirrors `transformers.models.albert.modeling_albert.AlbertForSequenceClassification`;
//! tensor names are spelled as in its checkpoints. ALBERT factorizes its embeddings
//! (`embedding_size` wide, mapped to `hidden_size` by `encoder.embedding_hidden_mapping_in`)
//! and shares one set of layer weights across its layers (`num_hidden_groups` sets, each of
//! `inner_group_num` layers). Every layer of the graph reads the same tensors, and the bundle
//! stores each of them once (see [`crate::shared_weights`]).

use crate::bert::{self, linear, EmbeddingShape, LayerNames, LayerShape};
use crate::error::{ExportError, Result};
use crate::graph::{Activation, BuildOptions, GraphBuilder};
use crate::weights::Weights;
use serde::Deserialize;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::math;

/// `transformers.AlbertConfig`, field for field where kinglet uses them.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub embedding_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    #[serde(default = "one")]
    pub num_hidden_groups: usize,
    #[serde(default = "one")]
    pub inner_group_num: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn one() -> usize {
    1
}
fn default_act() -> String {
    "gelu_new".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// `AlbertLayer`'s names.
const ALBERT_LAYER: LayerNames = LayerNames {
    query: "attention.query",
    key: "attention.key",
    value: "attention.value",
    attention: "attention",
    attention_output: "attention.dense",
    attention_norm: "attention.LayerNorm",
    intermediate: "ffn",
    output: "ffn_output",
    output_norm: "full_layer_layer_norm",
};

/// Builds the decluttered graph: `input_ids` `[1, S]` and `token_type_ids` `[1, S]` →
/// `logits` `[1, num_labels]`.
pub fn build(
    weights: Weights,
    config: &Config,
    num_labels: usize,
    options: BuildOptions,
) -> Result<TypedModel> {
    if let Some(kind) = config
        .position_embedding_type
        .as_deref()
        .filter(|k| *k != "absolute")
    {
        return Err(ExportError::Unsupported(format!(
            "position_embedding_type `{kind}` (only `absolute`)"
        )));
    }
    let groups = config.num_hidden_groups;
    if groups == 0
        || config.inner_group_num == 0
        || !config.num_hidden_layers.is_multiple_of(groups)
    {
        return Err(ExportError::Unsupported(format!(
            "{} layers in {groups} groups of {} (the layers must split evenly into groups)",
            config.num_hidden_layers, config.inner_group_num
        )));
    }
    let w = weights.with_prefix("albert");
    let h = config.hidden_size;
    let eps = config.layer_norm_eps as f32;
    let (mut g, ids) = GraphBuilder::new(options)?;
    let shape = EmbeddingShape {
        vocab: config.vocab_size,
        positions: config.max_position_embeddings,
        position_offset: 0,
        token_types: config.type_vocab_size,
        width: config.embedding_size,
        eps,
    };
    let x = bert::embeddings(&mut g, &w, ids, &shape)?;
    let mapping = linear(
        &w,
        "encoder.embedding_hidden_mapping_in",
        h,
        config.embedding_size,
    )?;
    let mut x = g.linear("encoder.embedding_hidden_mapping_in", x, mapping)?;
    let layer = LayerShape {
        hidden: h,
        intermediate: config.intermediate_size,
        heads: config.num_attention_heads,
        act: Activation::from_hf(&config.hidden_act)?,
        eps,
    };
    let per_group = config.num_hidden_layers / groups;
    for i in 0..config.num_hidden_layers {
        let group = i / per_group;
        for j in 0..config.inner_group_num {
            let weights = format!("encoder.albert_layer_groups.{group}.albert_layers.{j}");
            let nodes = format!("encoder.layer.{i}.{j}");
            x = bert::encoder_layer(&mut g, &w, &weights, &nodes, &ALBERT_LAYER, &layer, x)?;
        }
    }
    // pooler (dense + tanh on `[CLS]`), then the classifier
    let cls = g.first_token("first_token", x)?;
    let pooled = g.linear("pooler", cls, linear(&w, "pooler", h, h)?)?;
    let pooled = g.wire("pooler.tanh", math::tanh(), &[pooled])?;
    let logits = g.linear(
        "classifier",
        pooled,
        linear(&w, "classifier", num_labels, h)?,
    )?;
    g.finish(logits, "logits")
}
