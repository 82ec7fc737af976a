//! `kinglet_linear_i8`: `y = x · Wᵀ + b` with int8 weights and dynamically quantized int8
//! activations, as one operator.
//!
//! Inputs: `x` f32 `[.., K]`, `weight` i8 `[N, K]` (one scale per output channel),
//! `weight_scale` f32 `[N]`, `bias` f32 `[N]`; output f32 `[.., N]`.
//!
//! The bundle stores this single operator; what runs depends on the CPU, chosen when the plan
//! is optimized ([`TypedOp::codegen`]):
//! * where [`crate::kernels`] has a fused int8 kernel for this CPU (x86-64 AVX-512 VNNI,
//!   aarch64 SDOT or SMULL/SADALP): [`LinearI8Packed`], weights packed once at load,
//!   quantization, products, rescaling, bias and the GELU or residual that follows in one pass
//!   over the activations;
//! * everywhere else: the same computation spelled with tract operators —
//!   [`QuantizeRows`], an i8×i8→i32 einsum (tract's integer kernels), a cast and the two
//!   scales and the bias as broadcast multiplies and an add.
//!
//! Its leading axes map straight through, so tract pushes a slice of the output (the `[CLS]`
//! row the classifier head reads) up through it: the last layer runs only for that row.
//!
//! Both compute the same integer products; they differ only in float rounding of the rescale.

use super::fast_math::gelu_exact;
use super::quantize_rows::{int8_per_row, quantize_rows, QuantizeRows};
use crate::kernels::{self, Epilogue, LinearI8Kernel, PackedI8};
use tract_nnef::internal::*;
use tract_nnef::ser::invocation;
use tract_nnef::tract_core::ops::cast::cast;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::math;

/// NNEF name of the operator.
pub const NNEF_NAME: &str = "kinglet_linear_i8";

/// The serialized operator (four inputs; weights are graph constants).
///
/// At load, on CPUs with the fused kernel, [`fuse_epilogues`] may fold the GELU that follows
/// into it (`gelu`) and the residual add after it (a fifth input, `residual`, same shape as the
/// output): `y = gelu?(x · Wᵀ + b) + residual?`. The fused forms are never serialized.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct LinearI8 {
    /// Apply exact GELU before the residual.
    pub gelu: bool,
}

/// Wires `x · Wᵀ + b` in int8: quantizes `weight` (`[N, K]` f32) per output channel and stores
/// it as constants beside the operator. `bias` `[N]`, or zeros when `None`.
pub fn wire_linear_i8(
    patch: &mut TypedModel,
    name: &str,
    x: OutletId,
    weight: &Tensor,
    bias: Option<Tensor>,
) -> TractResult<OutletId> {
    let (q, scales) = int8_per_row(weight)?;
    let n = q.shape()[0];
    let bias = match bias {
        Some(b) => b,
        None => Tensor::zero::<f32>(&[n])?,
    };
    ensure!(bias.shape() == [n], "{name}: bias must be [{n}]");
    let w = patch.add_const(format!("{name}.weight"), q)?;
    let s = patch.add_const(format!("{name}.weight_scale"), scales)?;
    let b = patch.add_const(format!("{name}.bias"), bias)?;
    Ok(patch.wire_node(name, LinearI8::default(), &[x, w, s, b])?[0])
}

impl Op for LinearI8 {
    fn name(&self) -> StaticName {
        "KingletLinearI8".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

fn output_fact(inputs: &[&TypedFact], n: TDim) -> TractResult<TVec<TypedFact>> {
    ensure!(
        inputs[0].datum_type == f32::datum_type(),
        "linear_i8 takes f32"
    );
    let mut shape = inputs[0].shape.to_tvec();
    ensure!(!shape.is_empty(), "linear_i8 needs rank ≥ 1");
    *shape.last_mut().unwrap() = n;
    Ok(tvec!(f32::fact(shape)))
}

impl EvalOp for LinearI8 {
    op_out_of_plan!();

    /// Unoptimized evaluation (plain loops), used only when a graph runs without codegen.
    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let residual = if inputs.len() == 5 {
            inputs.pop()
        } else {
            None
        };
        let (x, w, ws, b) = args_4!(inputs);
        let [n, k] = *w.shape() else {
            bail!("linear_i8 weight must be rank 2")
        };
        let x_plain = x.try_as_plain_ram()?;
        let xs = x_plain.as_slice::<f32>()?;
        let (w_plain, ws_plain, b_plain) = (
            w.try_as_plain_ram()?,
            ws.try_as_plain_ram()?,
            b.try_as_plain_ram()?,
        );
        let (w, ws, b) = (
            w_plain.as_slice::<i8>()?,
            ws_plain.as_slice::<f32>()?,
            b_plain.as_slice::<f32>()?,
        );
        let m = xs.len() / k.max(1);
        let mut q = vec![0i8; xs.len()];
        let mut s = vec![0f32; m];
        quantize_rows(xs, k, &mut q, &mut s);
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let acc: i32 = q[r * k..(r + 1) * k]
                    .iter()
                    .zip(&w[c * k..(c + 1) * k])
                    .map(|(&a, &b)| a as i32 * b as i32)
                    .sum();
                y[r * n + c] = acc as f32 * s[r] * ws[c] + b[c];
            }
        }
        if self.gelu {
            y.iter_mut().for_each(|v| *v = gelu_exact(*v));
        }
        if let Some(residual) = residual {
            let plain = residual.try_as_plain_ram()?;
            for (y, r) in y.iter_mut().zip(plain.as_slice::<f32>()?) {
                *y += r;
            }
        }
        let mut shape: TVec<usize> = x.shape().into();
        *shape.last_mut().unwrap() = n;
        Ok(tvec!(Tensor::from_shape(&shape, &y)?.into_tvalue()))
    }
}

impl TypedOp for LinearI8 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 4 || inputs.len() == 5,
            "linear_i8 takes x, weight, weight_scale, bias (and a residual)"
        );
        ensure!(
            inputs[1].datum_type == i8::datum_type(),
            "linear_i8 weight is i8"
        );
        ensure!(inputs[1].rank() == 2, "linear_i8 weight is [N, K]");
        ensure!(
            inputs[0].shape.last() == Some(&inputs[1].shape[1]),
            "linear_i8: input's last axis must match the weight's K"
        );
        output_fact(inputs, inputs[1].shape[0].clone())
    }

    fn codegen(
        &self,
        model: &TypedModel,
        node: &TypedNode,
    ) -> TractResult<Option<TypedModelPatch>> {
        let facts = model.node_input_facts(node.id)?;
        let consts: Option<Vec<Arc<Tensor>>> =
            facts[1..4].iter().map(|f| f.konst.clone()).collect();
        if let Some(kernel) = kernels::native().linear_i8 {
            if let Some(c) = consts {
                let [n, k] = *c[0].shape() else {
                    bail!("linear_i8 weight must be rank 2")
                };
                let packed = PackedI8::pack(
                    kernel,
                    c[0].try_as_plain_ram()?.as_slice::<i8>()?,
                    n,
                    k,
                    c[1].try_as_plain_ram()?.as_slice::<f32>()?,
                    c[2].try_as_plain_ram()?.as_slice::<f32>()?,
                );
                let residual = node.inputs.len() == 5;
                let op = LinearI8Packed {
                    kernel,
                    weights: Arc::new(packed),
                    gelu: self.gelu,
                    residual,
                };
                let mut inputs: TVec<OutletId> = tvec!(node.inputs[0]);
                if residual {
                    inputs.push(node.inputs[4]);
                }
                return TypedModelPatch::replace_single_op(model, node, &inputs, op).map(Some);
            }
        }
        lower_to_tract_ops(model, node, self.gelu).map(Some)
    }

    /// Every leading axis of the input maps to the same output axis (and residual axis).
    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        let residual: &[usize] = if inputs.len() == 5 { &[4] } else { &[] };
        super::leading_axes_mapping(inputs, outputs, residual)
    }

    /// Rows are independent: a slice of the output is the operator on the sliced input.
    #[allow(clippy::too_many_arguments)]
    fn slice(
        &self,
        patch: &mut TypedModelPatch,
        model: &TypedModel,
        _node: &TypedNode,
        prefix: &str,
        inputs: &[OutletId],
        output_axis: usize,
        _start: &TDim,
        _end: &TDim,
    ) -> TractResult<Option<TVec<OutletId>>> {
        let _ = model;
        if output_axis + 1 >= patch.outlet_fact(inputs[0])?.rank() {
            return Ok(None);
        }
        patch.wire_node(prefix, self.clone(), inputs).map(Some)
    }

    as_op!();
}

/// Folds, where the fused kernel runs, each GELU and each same-shape residual add that is the
/// only consumer of a [`LinearI8`] into it. Returns how many were folded.
pub fn fuse_epilogues(model: &mut TypedModel) -> TractResult<usize> {
    use tract_nnef::tract_core::ops::binary::TypedBinOp;
    use tract_nnef::tract_core::ops::element_wise::ElementWiseOp;
    use tract_nnef::tract_core::ops::nn::GeluExact;
    if kernels::native().linear_i8.is_none() {
        return Ok(0);
    }
    let mut folded = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let is_gelu = node
            .op_as::<ElementWiseOp>()
            .is_some_and(|e| e.0.is::<GeluExact>());
        let is_add = node
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.is::<math::Add>());
        if !is_gelu && !is_add {
            continue;
        }
        // the LinearI8 producing one input, which feeds nothing else
        let sole_linear = |slot: usize| -> Option<(usize, LinearI8)> {
            let outlet = node.inputs.get(slot)?;
            let producer = model.node(outlet.node);
            let op = producer.op_as::<LinearI8>()?;
            let single = model.outlet_successors(*outlet).len() == 1
                && !model.output_outlets().ok()?.contains(outlet);
            (single && producer.inputs.len() == 4).then(|| (producer.id, op.clone()))
        };
        let mut patch = TypedModelPatch::default();
        if is_gelu {
            let Some((lin, op)) = sole_linear(0) else {
                continue;
            };
            if op.gelu {
                continue;
            }
            let lin_node = model.node(lin);
            let inputs = patch.taps(model, &lin_node.inputs)?;
            let y = patch.wire_node(&lin_node.name, LinearI8 { gelu: true }, &inputs)?;
            patch.shunt_outside(model, id.into(), y[0])?;
        } else {
            let facts = model.node_input_facts(id)?;
            if facts.len() != 2 || facts[0].shape != facts[1].shape {
                continue;
            }
            let Some((slot, (lin, op))) = (0..2).find_map(|s| Some((s, sole_linear(s)?))) else {
                continue;
            };
            let lin_node = model.node(lin);
            let mut inputs: TVec<OutletId> = lin_node.inputs.iter().copied().collect();
            inputs.push(node.inputs[1 - slot]);
            let inputs = patch.taps(model, &inputs)?;
            let y = patch.wire_node(&lin_node.name, op, &inputs)?;
            patch.shunt_outside(model, id.into(), y[0])?;
        }
        patch.apply(model)?;
        folded += 1;
    }
    Ok(folded)
}

/// The unfused form: quantize rows → i8×i8→i32 einsum → f32 → × row scale × weight scale + bias.
fn lower_to_tract_ops(
    model: &TypedModel,
    node: &TypedNode,
    gelu: bool,
) -> TractResult<TypedModelPatch> {
    let mut patch = TypedModelPatch::default();
    let inputs = patch.taps(model, &node.inputs)?;
    let rank = model.outlet_fact(node.inputs[0])?.rank();
    let name = &node.name;
    let lead: String = "abcdefghij".chars().take(rank - 1).collect();
    let expr: AxesMapping = format!("{lead}k,nk,,,,,,,->{lead}n").parse()?;
    let xq = patch.wire_node(format!("{name}.quantize_input"), QuantizeRows, &[inputs[0]])?;
    let zero_i8 = patch.add_const(format!("{name}.zero_i8"), tensor0(0i8))?;
    let zero_i32 = patch.add_const(format!("{name}.zero_i32"), tensor0(0i32))?;
    let one = patch.add_const(format!("{name}.one"), tensor0(1f32))?;
    // zero points 0 and unit scales: a pure i8×i8→i32 product on tract's integer kernels
    let q = EinSum::newq(expr, i32::datum_type(), i32::datum_type());
    let q_inputs = [
        xq[0], inputs[1], zero_i32, zero_i8, one, zero_i8, one, zero_i32, one,
    ];
    let acc = patch.wire_node(format!("{name}.matmul_i8"), q, &q_inputs)?;
    let acc = patch.wire_node(format!("{name}.to_f32"), cast(f32::datum_type()), &acc)?;
    let mul = |patch: &mut TypedModelPatch, suffix: &str, a, b| {
        wire_with_rank_broadcast(format!("{name}.{suffix}"), patch, math::mul(), &[a, b])
    };
    let y = mul(&mut patch, "input_scale", acc[0], xq[1])?;
    let y = mul(&mut patch, "weight_scale", y[0], inputs[2])?;
    let mut y = wire_with_rank_broadcast(
        format!("{name}.add_bias"),
        &mut patch,
        math::add(),
        &[y[0], inputs[3]],
    )?;
    if gelu {
        y = patch.wire_node(format!("{name}.gelu"), super::gelu::gelu(), &y)?;
    }
    if let Some(&residual) = inputs.get(4) {
        y = patch.wire_node(format!("{name}.residual"), math::add(), &[y[0], residual])?;
    }
    patch.shunt_outside(model, node.id.into(), y[0])?;
    Ok(patch)
}

/// [`LinearI8`] with its weights packed for this CPU's fused kernel. Built at load; never
/// serialized.
#[derive(Debug, Clone)]
pub struct LinearI8Packed {
    kernel: &'static LinearI8Kernel,
    weights: Arc<PackedI8>,
    gelu: bool,
    residual: bool,
}

impl LinearI8Packed {
    /// The kernel's name, as listed by `kinglet inspect --profile` beside tract's.
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name
    }
}

impl PartialEq for LinearI8Packed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights)
            && self.gelu == other.gelu
            && self.residual == other.residual
    }
}
impl Eq for LinearI8Packed {}

impl Op for LinearI8Packed {
    fn name(&self) -> StaticName {
        "KingletLinearI8Fused".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let w = &self.weights;
        Ok(vec![format!(
            "{} K={} N={} packed {} bytes{}{}",
            self.kernel.name,
            w.k,
            w.n,
            w.size_bytes(),
            if self.gelu { " +gelu" } else { "" },
            if self.residual { " +residual" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for LinearI8Packed {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let residual = if self.residual {
            inputs.get(1).cloned()
        } else {
            None
        };
        let x = inputs[0].clone();
        let w = &self.weights;
        let mut shape: TVec<usize> = x.shape().into();
        *shape.last_mut().context("linear_i8 needs rank ≥ 1")? = w.n;
        let plain = x.try_as_plain_ram()?;
        let xs = plain.as_slice::<f32>()?;
        let m = xs.len() / w.k.max(1);
        // SAFETY: the kernel writes every element of y (m rows × n columns).
        let mut y = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        if m > 0 && w.n > 0 {
            let mut y_plain = y.try_as_plain_ram_mut()?;
            let pool = crate::workers::pool();
            let y = y_plain.as_slice_mut::<f32>()?;
            let residual_plain = match &residual {
                Some(r) => Some(r.try_as_plain_ram()?),
                None => None,
            };
            let residual = match &residual_plain {
                Some(r) => Some(r.as_slice::<f32>()?),
                None => None,
            };
            let epilogue = Epilogue {
                gelu: self.gelu,
                residual,
            };
            w.matmul(self.kernel, xs, y, m, pool.as_deref(), epilogue);
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for LinearI8Packed {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        output_fact(inputs, self.weights.n.to_dim())
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let m = inputs[0].shape.iter().product::<TDim>() / self.weights.k as u64;
        Ok(tvec!((
            Cost::FMA(i32::datum_type()),
            m * (self.weights.k * self.weights.n) as u64
        )))
    }

    as_op!();
}

fn ser(ast: &mut IntoAst, node: &TypedNode, op: &LinearI8) -> TractResult<Option<Arc<RValue>>> {
    ensure!(
        !op.gelu && node.inputs.len() == 4,
        "fused linear_i8 epilogues exist only in loaded plans"
    );
    let inputs: TVec<_> = node.inputs.iter().map(|i| ast.mapping[i].clone()).collect();
    Ok(Some(invocation(NNEF_NAME, &inputs, &[])))
}

fn de(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let x = invocation.named_arg_as(builder, "input")?;
    let w = invocation.named_arg_as(builder, "weight")?;
    let s = invocation.named_arg_as(builder, "weight_scale")?;
    let b = invocation.named_arg_as(builder, "bias")?;
    builder.wire(LinearI8::default(), &[x, w, s, b])
}

/// Registers the operator's NNEF form.
pub fn register(registry: &mut Registry) {
    registry.register_dumper(ser);
    registry.register_primitive(
        NNEF_NAME,
        &[
            TypeName::Scalar.tensor().named("input"),
            TypeName::Integer.tensor().named("weight"),
            TypeName::Scalar.tensor().named("weight_scale"),
            TypeName::Scalar.tensor().named("bias"),
        ],
        &[("output", TypeName::Scalar.tensor())],
        de,
    );
}
