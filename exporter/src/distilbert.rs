//! DistilBERT sequence classifiers.
//!
//! Mirrors `transformers.models.distilbert.modeling_distilbert.DistilBertForSequenceClassification`;
//! tensor names are spelled as in its checkpoints.

use crate::bert::{layer_norm_params, linear};
use crate::error::Result;
use crate::graph::{Activation, BuildOptions, GraphBuilder};
use crate::weights::Weights;
use serde::Deserialize;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::math;

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
    let (gamma, beta) = layer_norm_params(&w, "embeddings.LayerNorm", h)?;
    let mut x = g.layer_norm("embeddings.LayerNorm", x, gamma, beta, LAYER_NORM_EPS)?;

    for i in 0..config.n_layers {
        let p = format!("transformer.layer.{i}");
        let qkv = [
            linear(&w, &format!("{p}.attention.q_lin"), h, h)?,
            linear(&w, &format!("{p}.attention.k_lin"), h, h)?,
            linear(&w, &format!("{p}.attention.v_lin"), h, h)?,
        ];
        let ctx = g.self_attention(&format!("{p}.attention"), x, qkv, config.n_heads)?;
        let out = g.linear(
            &format!("{p}.attention.out_lin"),
            ctx,
            linear(&w, &format!("{p}.attention.out_lin"), h, h)?,
        )?;
        let res = g.binary(&format!("{p}.attention.residual"), math::add(), out, x)?;
        let (gamma, beta) = layer_norm_params(&w, &format!("{p}.sa_layer_norm"), h)?;
        let attn = g.layer_norm(
            &format!("{p}.sa_layer_norm"),
            res,
            gamma,
            beta,
            LAYER_NORM_EPS,
        )?;

        let ff = g.linear(
            &format!("{p}.ffn.lin1"),
            attn,
            linear(&w, &format!("{p}.ffn.lin1"), config.hidden_dim, h)?,
        )?;
        let ff = g.activation(&format!("{p}.ffn.act"), ff, act)?;
        let ff = g.linear(
            &format!("{p}.ffn.lin2"),
            ff,
            linear(&w, &format!("{p}.ffn.lin2"), h, config.hidden_dim)?,
        )?;
        let res = g.binary(&format!("{p}.ffn.residual"), math::add(), ff, attn)?;
        let (gamma, beta) = layer_norm_params(&w, &format!("{p}.output_layer_norm"), h)?;
        x = g.layer_norm(
            &format!("{p}.output_layer_norm"),
            res,
            gamma,
            beta,
            LAYER_NORM_EPS,
        )?;
    }

    let cls = g.first_token("first_token", x)?;
    let pre = g.linear("pre_classifier", cls, linear(&w, "pre_classifier", h, h)?)?;
    let pre = g.activation("pre_classifier.relu", pre, Activation::Relu)?;
    let logits = g.linear("classifier", pre, linear(&w, "classifier", num_labels, h)?)?;
    g.finish(logits, "logits")
}
