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

/// Sizes of a BERT-style embedding block.
pub(crate) struct EmbeddingShape {
    /// Rows of the word table (`vocab_size`).
    pub vocab: usize,
    /// Rows of the position table (`max_position_embeddings`).
    pub positions: usize,
    /// Where positions start (RoBERTa: `pad_token_id + 1`).
    pub position_offset: usize,
    /// Rows of the token type table (`type_vocab_size`; 0 for none).
    pub token_types: usize,
    /// Width of every table (`hidden_size`, or ELECTRA's and ALBERT's `embedding_size`).
    pub width: usize,
    /// LayerNorm epsilon.
    pub eps: f32,
}

/// `embeddings.*`: word + position + token type, then LayerNorm, `[S, width]`. A model with
/// two or more token types gets the `token_type_ids` input; one type is a constant row.
pub(crate) fn embeddings(
    g: &mut GraphBuilder,
    w: &Weights,
    ids: OutletId,
    shape: &EmbeddingShape,
) -> Result<OutletId> {
    let e = shape.width;
    let word = w.get("embeddings.word_embeddings.weight", &[shape.vocab, e])?;
    let x = g.embedding("embeddings.word_embeddings", word, ids)?;
    let pos = w.get(
        "embeddings.position_embeddings.weight",
        &[shape.positions, e],
    )?;
    let pos = g.positions("embeddings.position_embeddings", pos, shape.position_offset)?;
    let x = g.binary("embeddings.add_positions", math::add(), x, pos)?;
    let x = match shape.token_types {
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
    let (gamma, beta) = layer_norm_params(w, "embeddings.LayerNorm", e)?;
    g.layer_norm("embeddings.LayerNorm", x, gamma, beta, shape.eps)
}

/// Sizes of a post-norm encoder layer.
pub(crate) struct LayerShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub act: Activation,
    pub eps: f32,
}

/// Where one encoder layer's tensors are, relative to its prefix; the graph's nodes take the
/// same names under their own prefix.
pub(crate) struct LayerNames {
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    /// The attention block's node name.
    pub attention: &'static str,
    pub attention_output: &'static str,
    pub attention_norm: &'static str,
    pub intermediate: &'static str,
    pub output: &'static str,
    pub output_norm: &'static str,
}

/// `BertLayer`'s names (also RoBERTa's and ELECTRA's).
pub(crate) const BERT_LAYER: LayerNames = LayerNames {
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention: "attention.self",
    attention_output: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    intermediate: "intermediate.dense",
    output: "output.dense",
    output_norm: "output.LayerNorm",
};

/// One post-norm transformer layer, `x` `[S, hidden]` → `[S, hidden]`: self-attention, its
/// output projection, residual + LayerNorm, then the feed-forward block, residual + LayerNorm.
/// Weights are read under `weights` (ALBERT reads one shared layer for every layer), nodes
/// are named under `nodes`.
pub(crate) fn encoder_layer(
    g: &mut GraphBuilder,
    w: &Weights,
    weights: &str,
    nodes: &str,
    names: &LayerNames,
    shape: &LayerShape,
    x: OutletId,
) -> Result<OutletId> {
    let (h, i) = (shape.hidden, shape.intermediate);
    let (wt, node) = (
        |name: &str| format!("{weights}.{name}"),
        |name: &str| format!("{nodes}.{name}"),
    );
    let qkv = [
        linear(w, &wt(names.query), h, h)?,
        linear(w, &wt(names.key), h, h)?,
        linear(w, &wt(names.value), h, h)?,
    ];
    let ctx = g.self_attention(&node(names.attention), x, qkv, shape.heads)?;
    let out = linear(w, &wt(names.attention_output), h, h)?;
    let out = g.linear(&node(names.attention_output), ctx, out)?;
    let residual = node(&format!("{}.residual", parent(names.attention_output)));
    let res = g.binary(&residual, math::add(), out, x)?;
    let (gamma, beta) = layer_norm_params(w, &wt(names.attention_norm), h)?;
    let attn = g.layer_norm(&node(names.attention_norm), res, gamma, beta, shape.eps)?;

    let inter = linear(w, &wt(names.intermediate), i, h)?;
    let inter = g.linear(&node(names.intermediate), attn, inter)?;
    let act = node(&format!("{}.act", parent(names.intermediate)));
    let inter = g.activation(&act, inter, shape.act)?;
    let out = linear(w, &wt(names.output), h, i)?;
    let out = g.linear(&node(names.output), inter, out)?;
    let residual = node(&format!("{}.residual", parent(names.output)));
    let res = g.binary(&residual, math::add(), out, attn)?;
    let (gamma, beta) = layer_norm_params(w, &wt(names.output_norm), h)?;
    g.layer_norm(&node(names.output_norm), res, gamma, beta, shape.eps)
}

/// `a.b.c` → `a.b`; a name without a dot is its own parent.
fn parent(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(p, _)| p)
}

/// The embeddings and encoder layers: the builder and the last hidden state `[S, hidden]`.
pub fn encoder(
    w: &Weights,
    config: &Config,
    flavour: Flavour,
    options: BuildOptions,
) -> Result<(GraphBuilder, OutletId)> {
    if let Some(kind) = config
        .position_embedding_type
        .as_deref()
        .filter(|k| *k != "absolute")
    {
        return Err(ExportError::Unsupported(format!(
            "position_embedding_type `{kind}` (only `absolute`)"
        )));
    }
    let h = config.hidden_size;
    let eps = config.layer_norm_eps as f32;
    let act = Activation::from_hf(&config.hidden_act)?;
    let (mut g, ids) = GraphBuilder::new(options)?;

    // Embeddings (ELECTRA: `e` wide, then projected to `h`).
    let e = match flavour {
        Flavour::Electra => config.embedding_size.unwrap_or(h),
        _ => h,
    };
    let shape = EmbeddingShape {
        vocab: config.vocab_size,
        positions: config.max_position_embeddings,
        position_offset: position_offset(config, flavour),
        token_types: config.type_vocab_size,
        width: e,
        eps,
    };
    let mut x = embeddings(&mut g, w, ids, &shape)?;
    if flavour == Flavour::Electra && e != h {
        let project = linear(w, "embeddings_project", h, e)?;
        x = g.linear("embeddings_project", x, project)?;
    }

    let layer = LayerShape {
        hidden: h,
        intermediate: config.intermediate_size,
        heads: config.num_attention_heads,
        act,
        eps,
    };
    for i in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        x = encoder_layer(&mut g, w, &p, &p, &BERT_LAYER, &layer, x)?;
    }
    Ok((g, x))
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
    let w = weights.with_prefix(flavour.prefix());
    let h = config.hidden_size;
    let (mut g, x) = encoder(&w, config, flavour, options)?;

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

/// Builds a token classifier (`…ForTokenClassification`: NER, part of speech): `input_ids`
/// `[1, S]` → `logits` `[S, num_labels]`, one row per token, from the `classifier` layer on
/// every token of the last hidden state.
pub fn build_token_classifier(
    weights: Weights,
    config: &Config,
    flavour: Flavour,
    num_labels: usize,
    options: BuildOptions,
) -> Result<TypedModel> {
    let w = weights.with_prefix(flavour.prefix());
    let (mut g, x) = encoder(&w, config, flavour, options)?;
    let head = linear(&w, "classifier", num_labels, config.hidden_size)?;
    let logits = g.linear("classifier", x, head)?;
    g.finish(logits, "logits")
}
