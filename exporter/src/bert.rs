//! BERT, RoBERTa and ELECTRA sequence classifiers.
//!
//! Mirrors `transformers.models.bert.modeling_bert.BertForSequenceClassification`,
//! `transformers.models.roberta.modeling_roberta.RobertaForSequenceClassification` and
//! `transformers.models.electra.modeling_electra.ElectraForSequenceClassification` (BERT's
//! layers under embeddings of their own width); tensor names are spelled as in their
//! checkpoints.

use crate::error::{ExportError, Result};
use crate::graph::{Activation, BuildOptions, GraphBuilder, Linear};
use crate::weights::Weights;
use serde::Deserialize;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::array::Gather;
use tract_nnef::tract_core::ops::math;

/// `transformers.BertConfig` / `RobertaConfig`, field for field where kinglet uses them.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
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
    pub pad_token_id: Option<usize>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// ELECTRA: width of the embeddings, projected to `hidden_size` when it differs.
    #[serde(default)]
    pub embedding_size: Option<usize>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// Which of the two heads (and position offsets) to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Pooler (dense + tanh on `[CLS]`) then `classifier`; positions start at 0.
    Bert,
    /// `classifier.dense` + tanh + `classifier.out_proj` on `<s>`; positions start at
    /// `pad_token_id + 1`.
    Roberta,
    /// `embeddings_project` from `embedding_size` to `hidden_size`, then BERT's layers;
    /// `classifier.dense` + gelu + `classifier.out_proj` on `[CLS]`; positions start at 0.
    Electra,
}

impl Flavour {
    fn prefix(self) -> &'static str {
        match self {
            Flavour::Bert => "bert",
            Flavour::Roberta => "roberta",
            Flavour::Electra => "electra",
        }
    }
}

/// Usable sequence length: positions the table holds, minus RoBERTa's offset.
pub fn max_tokens(config: &Config, flavour: Flavour) -> usize {
    config
        .max_position_embeddings
        .saturating_sub(position_offset(config, flavour))
}

fn position_offset(config: &Config, flavour: Flavour) -> usize {
    match flavour {
        Flavour::Bert | Flavour::Electra => 0,
        Flavour::Roberta => config.pad_token_id.unwrap_or(1) + 1,
    }
}

/// Loads a linear layer `name.weight` `[out, in]` and `name.bias` `[out]`.
pub fn linear(w: &Weights, name: &str, out: usize, inp: usize) -> Result<Linear> {
    Ok(Linear {
        weight: w.get(&format!("{name}.weight"), &[out, inp])?,
        bias: w.get(&format!("{name}.bias"), &[out])?,
    })
}

/// Loads a LayerNorm's weight and bias (`gamma`/`beta` in old checkpoints).
pub fn layer_norm_params(w: &Weights, name: &str, hidden: usize) -> Result<(Tensor, Tensor)> {
    Ok((
        w.get_either(
            &[&format!("{name}.weight"), &format!("{name}.gamma")],
            &[hidden],
        )?,
        w.get_either(
            &[&format!("{name}.bias"), &format!("{name}.beta")],
            &[hidden],
        )?,
    ))
}

/// Builds the decluttered graph: `input_ids` `[1, S]` (and `token_type_ids` `[1, S]` when the
/// model has several token types) → `logits` `[1, num_labels]`.
pub fn build(
    weights: Weights,
    config: &Config,
    flavour: Flavour,
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
    let w = weights.with_prefix(flavour.prefix());
    let h = config.hidden_size;
    let eps = config.layer_norm_eps as f32;
    let act = Activation::from_hf(&config.hidden_act)?;
    let (mut g, ids) = GraphBuilder::new(options)?;

    // Embeddings: word + position + token type, then LayerNorm (ELECTRA: `e` wide, then
    // projected to `h`).
    let e = match flavour {
        Flavour::Electra => config.embedding_size.unwrap_or(h),
        _ => h,
    };
    let word = w.get("embeddings.word_embeddings.weight", &[config.vocab_size, e])?;
    let x = g.embedding("embeddings.word_embeddings", word, ids)?;
    let pos = w.get(
        "embeddings.position_embeddings.weight",
        &[config.max_position_embeddings, e],
    )?;
    let pos = g.positions(
        "embeddings.position_embeddings",
        pos,
        position_offset(config, flavour),
    )?;
    let x = g.binary("embeddings.add_positions", math::add(), x, pos)?;
    let x = match config.type_vocab_size {
        0 => x,
        // one segment only (RoBERTa's type_vocab_size 1): its row is a constant
        1 => {
            let types = w.get("embeddings.token_type_embeddings.weight", &[1, e])?;
            let row = types.into_shape(&[e]).map_err(ExportError::graph)?;
            let row = g.konst("embeddings.token_type_embeddings.row0", row)?;
            g.binary("embeddings.add_token_type", math::add(), x, row)?
        }
        // sentence pairs: the segments come in as `token_type_ids` (a small f32 table at every
        // precision)
        rows => {
            let types = w.get("embeddings.token_type_embeddings.weight", &[rows, e])?;
            let type_ids = g.index_input(crate::graph::TOKEN_TYPE_IDS)?;
            let table = g.konst("embeddings.token_type_embeddings", types)?;
            let types = g.wire(
                "embeddings.token_type_embeddings.gather",
                Gather::new(0),
                &[table, type_ids],
            )?;
            g.binary("embeddings.add_token_type", math::add(), x, types)?
        }
    };
    let (gamma, beta) = layer_norm_params(&w, "embeddings.LayerNorm", e)?;
    let mut x = g.layer_norm("embeddings.LayerNorm", x, gamma, beta, eps)?;
    if flavour == Flavour::Electra && e != h {
        let project = linear(&w, "embeddings_project", h, e)?;
        x = g.linear("embeddings_project", x, project)?;
    }

    for i in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        let qkv = [
            linear(&w, &format!("{p}.attention.self.query"), h, h)?,
            linear(&w, &format!("{p}.attention.self.key"), h, h)?,
            linear(&w, &format!("{p}.attention.self.value"), h, h)?,
        ];
        let ctx = g.self_attention(
            &format!("{p}.attention.self"),
            x,
            qkv,
            config.num_attention_heads,
        )?;
        let out = g.linear(
            &format!("{p}.attention.output.dense"),
            ctx,
            linear(&w, &format!("{p}.attention.output.dense"), h, h)?,
        )?;
        let res = g.binary(
            &format!("{p}.attention.output.residual"),
            math::add(),
            out,
            x,
        )?;
        let (gamma, beta) = layer_norm_params(&w, &format!("{p}.attention.output.LayerNorm"), h)?;
        let attn = g.layer_norm(
            &format!("{p}.attention.output.LayerNorm"),
            res,
            gamma,
            beta,
            eps,
        )?;

        let inter = linear(
            &w,
            &format!("{p}.intermediate.dense"),
            config.intermediate_size,
            h,
        )?;
        let inter = g.linear(&format!("{p}.intermediate.dense"), attn, inter)?;
        let inter = g.activation(&format!("{p}.intermediate.act"), inter, act)?;
        let out = linear(
            &w,
            &format!("{p}.output.dense"),
            h,
            config.intermediate_size,
        )?;
        let out = g.linear(&format!("{p}.output.dense"), inter, out)?;
        let res = g.binary(&format!("{p}.output.residual"), math::add(), out, attn)?;
        let (gamma, beta) = layer_norm_params(&w, &format!("{p}.output.LayerNorm"), h)?;
        x = g.layer_norm(&format!("{p}.output.LayerNorm"), res, gamma, beta, eps)?;
    }

    let cls = g.first_token("first_token", x)?;
    let (dense, out) = match flavour {
        Flavour::Bert => (
            linear(&w, "pooler.dense", h, h)?,
            linear(&w, "classifier", num_labels, h)?,
        ),
        Flavour::Roberta | Flavour::Electra => (
            linear(&w, "classifier.dense", h, h)?,
            linear(&w, "classifier.out_proj", num_labels, h)?,
        ),
    };
    let pooled = g.linear("pooler.dense", cls, dense)?;
    let pooled = match flavour {
        // "although BERT uses tanh here, it seems Electra authors used gelu" (Transformers)
        Flavour::Electra => g.activation("pooler.gelu", pooled, Activation::Gelu)?,
        Flavour::Bert | Flavour::Roberta => g.wire("pooler.tanh", math::tanh(), &[pooled])?,
    };
    let logits = g.linear("classifier", pooled, out)?;
    g.finish(logits, "logits")
}
