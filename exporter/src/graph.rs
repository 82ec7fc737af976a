//! Transformer building blocks wired as tract core operators.
//!
//! Every model family file (`bert.rs`, `distilbert.rs`) composes these; they only use operators
//! that survive tract's declutter and NNEF round trip (see `kinglet_runtime::nnef_ext`).
//! Activations are rank 2, `[S, hidden]`, with `S` the symbolic sequence length: the graph runs
//! at the real length of each input, never padded.

use crate::error::{ExportError, Result};
use crate::quantize::{int8_per_row, q4_blocks, Precision};
use kinglet_runtime::ops::linear_i8::wire_linear_i8;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::array::{Gather, Slice};
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::cast::cast;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::konst::Const;
use tract_nnef::tract_core::ops::math;
use tract_nnef::tract_core::ops::nn::{self, Reduce, Reducer, Softmax, SoftmaxKind};

/// Name of the graph's first input: token ids, `[1, S]` i64.
pub const INPUT_IDS: &str = "input_ids";
/// Name of the second input of a model with several token types (BERT's sentence pairs):
/// the segment of every token, `[1, S]` i64, 0 for the first text and 1 for the second.
pub const TOKEN_TYPE_IDS: &str = "token_type_ids";
/// Name of the symbolic sequence length.
pub const SEQ_SYMBOL: &str = "S";

/// Non-linearity of a feed-forward block, as named in HF configs (`hidden_act`, `activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: exact, erf-based.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Activation {
    /// Parses an HF activation name.
    pub fn from_hf(name: &str) -> Result<Activation> {
        match name {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(ExportError::Unsupported(format!(
                "activation `{other}` (kinglet supports gelu, gelu_new, gelu_pytorch_tanh, relu)"
            ))),
        }
    }
}

/// A tract model under construction, with helpers named after transformer blocks.
pub struct GraphBuilder {
    /// The model being built.
    pub model: TypedModel,
    /// Symbolic sequence length `S`.
    pub seq: TDim,
    /// What to build.
    pub options: BuildOptions,
}

/// Choices that shape the graph beyond the checkpoint itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildOptions {
    /// How weights are stored and matmuls computed.
    pub precision: Precision,
    /// Longest input the graph accepts, in tokens: only this many position embeddings are
    /// kept, which bounds memory at run time and keeps the bundle small.
    pub max_tokens: usize,
}

/// Weights of a linear layer as stored by PyTorch: `weight` `[out, in]`, `bias` `[out]`.
pub struct Linear {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Tensor,
}

impl GraphBuilder {
    /// Starts a graph with the `input_ids` source; returns the builder and the ids as `[S]`.
    pub fn new(options: BuildOptions) -> Result<(GraphBuilder, OutletId)> {
        let mut model = TypedModel::default();
        let seq: TDim = model.symbols.sym(SEQ_SYMBOL).into();
        let fact = i64::fact([1.to_dim(), seq.clone()]);
        let ids = model
            .add_source(INPUT_IDS, fact)
            .map_err(ExportError::graph)?;
        let mut builder = GraphBuilder {
            model,
            seq,
            options,
        };
        let ids = builder.wire("input_ids.squeeze", AxisOp::Rm(0), &[ids])?;
        Ok((builder, ids))
    }

    /// Adds another `[1, S]` i64 input beside the ids (e.g. [`TOKEN_TYPE_IDS`]); returns it as
    /// `[S]`.
    pub fn index_input(&mut self, name: &str) -> Result<OutletId> {
        let fact = i64::fact([1.to_dim(), self.seq.clone()]);
        let input = self
            .model
            .add_source(name, fact)
            .map_err(ExportError::graph)?;
        self.wire(&format!("{name}.squeeze"), AxisOp::Rm(0), &[input])
    }

    /// Declares the output and declutters the graph into the form bundles store.
    pub fn finish(mut self, output: OutletId, name: &str) -> Result<TypedModel> {
        self.model
            .select_output_outlets(&[output])
            .map_err(ExportError::graph)?;
        self.model
            .set_outlet_label(output, name.to_string())
            .map_err(ExportError::graph)?;
        let model = self.model.into_decluttered().map_err(ExportError::graph)?;
        let mut model = crate::quantize::transform_graph(model, self.options.precision)?;
        crate::shared_weights::share_equal_constants(&mut model).map_err(ExportError::graph)?;
        Ok(model)
    }

    /// Adds a constant.
    pub fn konst(&mut self, name: &str, tensor: Tensor) -> Result<OutletId> {
        self.model
            .add_const(name, tensor)
            .map_err(ExportError::graph)
    }

    /// Wires a single-output node.
    pub fn wire(
        &mut self,
        name: &str,
        op: impl Into<Box<dyn TypedOp>>,
        inputs: &[OutletId],
    ) -> Result<OutletId> {
        Ok(self
            .model
            .wire_node(name, op, inputs)
            .map_err(ExportError::graph)?[0])
    }

    /// Wires a broadcasting binary op.
    pub fn binary(
        &mut self,
        name: &str,
        op: TypedBinOp,
        a: OutletId,
        b: OutletId,
    ) -> Result<OutletId> {
        Ok(wire_with_rank_broadcast(name, &mut self.model, op, &[a, b])
            .map_err(ExportError::graph)?[0])
    }

    /// `x * c` for a scalar constant.
    pub fn scale(&mut self, name: &str, x: OutletId, c: f32) -> Result<OutletId> {
        let c = self.konst(&format!("{name}.c"), tensor0(c))?;
        self.binary(name, math::mul(), x, c)
    }

    /// Rows of `table` (`[V, H]`) picked by `ids` (`[S]`): `[S, H]`.
    pub fn embedding(&mut self, name: &str, table: Tensor, ids: OutletId) -> Result<OutletId> {
        match self.options.precision {
            Precision::F32 | Precision::F16 => {
                let table = self.konst(name, table)?;
                self.wire(&format!("{name}.gather"), Gather::new(0), &[table, ids])
            }
            Precision::Int8 => {
                let (q, scales) = int8_per_row(&table)?;
                let q = self.konst(name, q)?;
                let rows = self.wire(&format!("{name}.gather"), Gather::new(0), &[q, ids])?;
                let scales = scales
                    .into_shape(&[table.shape()[0], 1])
                    .map_err(ExportError::graph)?;
                let scales = self.konst(&format!("{name}.scale"), scales)?;
                let row_scales = self.wire(
                    &format!("{name}.gather_scale"),
                    Gather::new(0),
                    &[scales, ids],
                )?;
                self.dequantize(name, rows, row_scales)
            }
            Precision::Q4 => {
                let (blocks, fact) = q4_blocks(&table)?;
                let op = Const::new_with_exotic_fact(blocks.into_arc_tensor(), fact)
                    .map_err(ExportError::graph)?;
                let table = self.wire(name, op, &[])?;
                let gather = Gather {
                    axis: 0,
                    output_type: Some(f32::datum_type()),
                };
                self.wire(&format!("{name}.gather"), gather, &[table, ids])
            }
        }
    }

    /// `q` (i8) as f32, times `scale` broadcast along the last axis.
    fn dequantize(&mut self, name: &str, q: OutletId, scale: OutletId) -> Result<OutletId> {
        let f = self.wire(&format!("{name}.to_f32"), cast(f32::datum_type()), &[q])?;
        self.binary(&format!("{name}.dequantize"), math::mul(), f, scale)
    }

    /// The first `S` rows of a position table, starting at `offset`: `[S, H]`. Only the rows
    /// up to `offset + max_tokens` are stored.
    pub fn positions(&mut self, name: &str, table: Tensor, offset: usize) -> Result<OutletId> {
        let rows = offset + self.options.max_tokens;
        if rows > table.shape()[0] {
            return Err(ExportError::Unsupported(format!(
                "{} tokens requested, the model has {} positions",
                self.options.max_tokens,
                table.shape()[0].saturating_sub(offset)
            )));
        }
        let table = table.slice(0, 0, rows).map_err(ExportError::graph)?;
        let table = self.konst(name, table)?;
        let end = self.seq.clone() + offset as i64;
        self.wire(
            &format!("{name}.slice"),
            Slice::new(0, offset, end),
            &[table],
        )
    }

    /// `x · Wᵀ + b` for `x` `[S, in]`.
    /// With int8 precision: one `kinglet_linear_i8` operator — `x` quantized per row at run
    /// time, multiplied against per-channel int8 weights in integers, rescaled, plus bias.
    pub fn linear(&mut self, name: &str, x: OutletId, linear: Linear) -> Result<OutletId> {
        if self.options.precision == Precision::Int8 {
            return wire_linear_i8(&mut self.model, name, x, &linear.weight, Some(linear.bias))
                .map_err(ExportError::graph);
        }
        let axes: AxesMapping = "sk,nk->sn".parse().map_err(ExportError::graph)?;
        let w = self.konst(&format!("{name}.weight"), linear.weight)?;
        let y = self.wire(name, EinSum::new(axes, f32::datum_type()), &[x, w])?;
        let b = self.konst(&format!("{name}.bias"), linear.bias)?;
        self.binary(&format!("{name}.add_bias"), math::add(), y, b)
    }

    /// LayerNorm over the last axis of `[S, H]`, with the biased variance PyTorch uses.
    pub fn layer_norm(
        &mut self,
        name: &str,
        x: OutletId,
        gamma: Tensor,
        beta: Tensor,
        eps: f32,
    ) -> Result<OutletId> {
        let hidden = gamma.len() as f32;
        let sum = self.wire(
            &format!("{name}.sum"),
            Reduce::new(tvec!(1), Reducer::Sum),
            &[x],
        )?;
        let mean = self.scale(&format!("{name}.mean"), sum, 1.0 / hidden)?;
        let centered = self.binary(&format!("{name}.center"), math::sub(), x, mean)?;
        let sq = self.wire(&format!("{name}.square"), math::square(), &[centered])?;
        let sq_sum = self.wire(
            &format!("{name}.sq_sum"),
            Reduce::new(tvec!(1), Reducer::Sum),
            &[sq],
        )?;
        let var = self.scale(&format!("{name}.var"), sq_sum, 1.0 / hidden)?;
        let eps = self.konst(&format!("{name}.eps"), tensor0(eps))?;
        let var_eps = self.binary(&format!("{name}.var_eps"), math::add(), var, eps)?;
        let inv = self.wire(&format!("{name}.rsqrt"), math::rsqrt(), &[var_eps])?;
        let normed = self.binary(&format!("{name}.normed"), math::mul(), centered, inv)?;
        let gamma = self.konst(&format!("{name}.weight"), gamma)?;
        let scaled = self.binary(&format!("{name}.scaled"), math::mul(), normed, gamma)?;
        let beta = self.konst(&format!("{name}.bias"), beta)?;
        self.binary(&format!("{name}.shifted"), math::add(), scaled, beta)
    }

    /// Applies an activation.
    pub fn activation(&mut self, name: &str, x: OutletId, act: Activation) -> Result<OutletId> {
        match act {
            Activation::Gelu => self.wire(name, nn::gelu_exact::gelu_exact(), &[x]),
            Activation::GeluTanh => {
                self.wire(name, nn::gelu_approximate::gelu_approximate(false), &[x])
            }
            Activation::Relu => {
                let zero = self.konst(&format!("{name}.zero"), tensor0(0f32))?;
                self.binary(name, math::max(), x, zero)
            }
        }
    }

    /// Multi-head self-attention without mask (one unpadded sequence): `[S, H]` → `[S, H]`,
    /// before the output projection.
    pub fn self_attention(
        &mut self,
        name: &str,
        x: OutletId,
        [query, key, value]: [Linear; 3],
        heads: usize,
    ) -> Result<OutletId> {
        let hidden = query.weight.shape()[0];
        if heads == 0 || hidden % heads != 0 {
            return Err(ExportError::Unsupported(format!(
                "hidden size {hidden} is not a multiple of {heads} attention heads"
            )));
        }
        let head_dim = hidden / heads;
        let split = AxisOp::Reshape(
            1,
            tvec!(hidden.to_dim()),
            tvec!(heads.to_dim(), head_dim.to_dim()),
        );
        let project = |b: &mut GraphBuilder, part: &str, lin: Linear| -> Result<OutletId> {
            let y = b.linear(&format!("{name}.{part}"), x, lin)?;
            b.wire(&format!("{name}.{part}.heads"), split.clone(), &[y])
        };
        let q = project(self, "query", query)?;
        let k = project(self, "key", key)?;
        let v = project(self, "value", value)?;
        let qk = "shd,thd->hst".parse().map_err(ExportError::graph)?;
        let scores = self.wire(
            &format!("{name}.scores"),
            EinSum::new(qk, f32::datum_type()),
            &[q, k],
        )?;
        let scores = self.scale(
            &format!("{name}.scaled"),
            scores,
            1.0 / (head_dim as f32).sqrt(),
        )?;
        let probs = self.wire(
            &format!("{name}.softmax"),
            Softmax::new(tvec!(2), None, SoftmaxKind::Softmax),
            &[scores],
        )?;
        let pv = "hst,thd->shd".parse().map_err(ExportError::graph)?;
        let ctx = self.wire(
            &format!("{name}.context"),
            EinSum::new(pv, f32::datum_type()),
            &[probs, v],
        )?;
        let merge = AxisOp::Reshape(
            1,
            tvec!(heads.to_dim(), head_dim.to_dim()),
            tvec!(hidden.to_dim()),
        );
        self.wire(&format!("{name}.merge"), merge, &[ctx])
    }

    /// The first token's vector (`[CLS]` / `<s>`): `[S, H]` → `[1, H]`.
    pub fn first_token(&mut self, name: &str, x: OutletId) -> Result<OutletId> {
        self.wire(name, Slice::new(0, 0, 1), &[x])
    }
}
