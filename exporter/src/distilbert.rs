//! DistilBERT sequence and token classifiers.
//!
//! Mirrors `transformers.models.distilbert.modeling_distilbert`: the encoder
//! (`DistilBertModel`: embeddings and `transformer.layer.*`) and the heads of
//! `DistilBertForSequenceClassification` and `DistilBertForTokenClassification`; tensor names
//! are spelled as in its checkpoints.

use crate::bert::{self, layer_norm_params, linear, LayerNames, LayerShape};
use crate::error::Result;
use crate::graph::{Activation, BuildOptions, GraphBuilder};
use crate::weights::Weights;
use serde::Deserialize;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::math;

/// `TransformerBlock`'s names.
const DISTILBERT_LAYER: LayerNames = LayerNames {
    query: "attention.q_lin",
    key: "attention.k_lin",
    value: "attention.v_lin",
    attention: "attention",
    attention_output: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    intermediate: "ffn.lin1",
    output: "ffn.lin2",
    output_norm: "output_layer_norm",
};

/// LayerNorm epsilon hard-coded in DistilBERT.
const LAYER_NORM_EPS: f32 = 1e-12;

/// `transformers.DistilBertConfig`, field for field where kinglet uses them.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    #[serde(default = "default_act")]
    pub activation: String,
    pub max_position_embeddings: usize,
}

fn default_act() -> String {
    "gelu".into()
}

/// Builds the decluttered graph: `input_ids` `[1, S]` → `logits` `[1, num_labels]`.
pub fn build(
    weights: Weights,
    config: &Config,
    num_labels: usize,
    options: BuildOptions,
) -> Result<TypedModel> {
    let w = weights.with_prefix("distilbert");
    let (mut g, x) = encoder(&w, config, options)?;
    let h = config.dim;
    let cls = g.first_token("first_token", x)?;
    let pre = g.linear("pre_classifier", cls, linear(&w, "pre_classifier", h, h)?)?;
    let pre = g.activation("pre_classifier.relu", pre, Activation::Relu)?;
    let logits = g.linear("classifier", pre, linear(&w, "classifier", num_labels, h)?)?;
    g.finish(logits, "logits")
}

/// Builds a token classifier (`DistilBertForTokenClassification`): `input_ids` `[1, S]` →
/// `logits` `[S, num_labels]`, the `classifier` layer on every token of the last hidden state.
pub fn build_token_classifier(
    weights: Weights,
    config: &Config,
    num_labels: usize,
    options: BuildOptions,
) -> Result<TypedModel> {
    let w = weights.with_prefix("distilbert");
    let (mut g, x) = encoder(&w, config, options)?;
    let head = linear(&w, "classifier", num_labels, config.dim)?;
    let logits = g.linear("classifier", x, head)?;
    g.finish(logits, "logits")
}

/// `DistilBertModel`: the embeddings and every transformer layer; the last hidden state
/// `[S, dim]` (`w` prefixed `distilbert`).
fn encoder(
    w: &Weights,
    config: &Config,
    options: BuildOptions,
) -> Result<(GraphBuilder, OutletId)> {
    let h = config.dim;
    let act = Activation::from_hf(&config.activation)?;
    let (mut g, ids) = GraphBuilder::new(options)?;

    let word = w.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
    let x = g.embedding("embeddings.word_embeddings", word, ids)?;
    let pos = w.get(
        "embeddings.position_embeddings.weight",
        &[config.max_position_embeddings, h],
    )?;
    let pos = g.positions("embeddings.position_embeddings", pos, 0)?;
    let x = g.binary("embeddings.add_positions", math::add(), x, pos)?;
    let (gamma, beta) = layer_norm_params(w, "embeddings.LayerNorm", h)?;
    let mut x = g.layer_norm("embeddings.LayerNorm", x, gamma, beta, LAYER_NORM_EPS)?;

    let layer = LayerShape {
        hidden: h,
        intermediate: config.hidden_dim,
        heads: config.n_heads,
        act,
        eps: LAYER_NORM_EPS,
    };
    for i in 0..config.n_layers {
        let p = format!("transformer.layer.{i}");
        x = bert::encoder_layer(&mut g, w, &p, &p, &DISTILBERT_LAYER, &layer, x)?;
    }
    Ok((g, x))
}
