//! `KingletLinearF32`: an f32 linear layer `x · Wᵀ + b` with the GELU and the residual add
//! that follow it, as one operator on this CPU's f32 kernel from [`crate::kernels`].
//!
//! Bundles spell an f32 linear layer as tract's `einsum("sk,nk->sn", x, W)` plus a bias add
//! (the exporter's `GraphBuilder::linear`). At load, where a native f32 kernel exists (NEON on
//! aarch64, AVX-512 on x86-64), [`fuse_linear_f32`] replaces each such pair — and the exact GELU
//! and same-shape residual add that are its only consumers — by [`LinearF32Packed`], weights
//! packed once: no per-call packing of the activations, no separate passes for bias, GELU or
//! residual. Never serialized.

use crate::kernels::linear_f32::{LinearF32Kernel, PackedF32};
use crate::kernels::{self, Epilogue};
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::element_wise::ElementWiseOp;
use tract_nnef::tract_core::ops::math;
use tract_nnef::tract_core::ops::nn::GeluExact;

/// Inputs `x` f32 `[m, k..]` (trailing axes flattened, and a residual `[m, n]`); output
/// `[m, n]`.
#[derive(Debug, Clone)]
pub struct LinearF32Packed {
    kernel: &'static LinearF32Kernel,
    weights: Arc<PackedF32>,
    gelu: bool,
    residual: bool,
}

impl LinearF32Packed {
    /// The kernel's name, as listed by `kinglet inspect --profile`.
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name
    }
}

impl PartialEq for LinearF32Packed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights)
            && self.gelu == other.gelu
            && self.residual == other.residual
    }
}
impl Eq for LinearF32Packed {}

impl Op for LinearF32Packed {
    fn name(&self) -> StaticName {
        "KingletLinearF32".into()
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

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for LinearF32Packed {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let w = &self.weights;
        let x = &inputs[0];
        let Some((&m, rest)) = x.shape().split_first() else {
            bail!("linear_f32 takes [m, k..]")
        };
        let k: usize = rest.iter().product();
        ensure!(k == w.k, "linear_f32: K is {k}, weights take {}", w.k);
        // SAFETY: the kernel writes every element of y (m rows × n columns).
        let mut y = unsafe { Tensor::uninitialized::<f32>(&[m, w.n])? };
        if m > 0 && w.n > 0 {
            let plain = x.try_as_plain_ram()?;
            let residual_plain = match self.residual {
                true => Some(inputs[1].try_as_plain_ram()?),
                false => None,
            };
            let residual = match &residual_plain {
                Some(r) => Some(r.as_slice::<f32>()?),
                None => None,
            };
            let mut y_plain = y.try_as_plain_ram_mut()?;
            let pool = crate::workers::pool();
            let epilogue = Epilogue {
                gelu: self.gelu,
                residual,
            };
            w.matmul(
                self.kernel,
                plain.as_slice::<f32>()?,
                y_plain.as_slice_mut::<f32>()?,
                m,
                pool.as_deref(),
                epilogue,
            );
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for LinearF32Packed {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() >= 2 && inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(f32::fact([
            inputs[0].shape[0].clone(),
            self.weights.n.to_dim()
        ])))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let m = inputs[0].shape[0].clone();
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            m * (self.weights.k * self.weights.n) as u64
        )))
    }

    /// Rows map through (input, residual and output), so tract pushes row slices up.
    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        let mut mapping = AxesMapping::disconnected(inputs, outputs)?
            .renaming((InOut::In(0), 0), 'M')?
            .linking('M', (InOut::Out(0), 0))?;
        if inputs.len() == 2 {
            mapping = mapping.linking('M', (InOut::In(1), 0))?;
        }
        Ok(mapping)
    }

    #[allow(clippy::too_many_arguments)]
    fn slice(
        &self,
        patch: &mut TypedModelPatch,
        _model: &TypedModel,
        _node: &TypedNode,
        prefix: &str,
        inputs: &[OutletId],
        output_axis: usize,
        _start: &TDim,
        _end: &TDim,
    ) -> TractResult<Option<TVec<OutletId>>> {
        if output_axis != 0 {
            return Ok(None);
        }
        patch.wire_node(prefix, self.clone(), inputs).map(Some)
    }

    as_op!();
}

/// The only consumer of `outlet`, if it has exactly one and is not a graph output.
pub(crate) fn sole_successor(
    model: &TypedModel,
    outlet: OutletId,
) -> TractResult<Option<&TypedNode>> {
    let succ = model.outlet_successors(outlet);
    if succ.len() != 1 || model.output_outlets()?.contains(&outlet) {
        return Ok(None);
    }
    Ok(Some(model.node(succ[0].node)))
}

pub(crate) fn f32_const(model: &TypedModel, outlet: OutletId) -> TractResult<Option<Arc<Tensor>>> {
    let fact = model.outlet_fact(outlet)?;
    // plain storage only: a q4 bundle's weights are f32 block-quantized constants, which the
    // f32 kernels cannot read (tract's own block-quant matmul runs them)
    Ok(fact
        .konst
        .clone()
        .filter(|k| k.datum_type() == f32::datum_type() && k.try_as_plain_ram().is_ok()))
}

/// Where this CPU has a native f32 linear kernel, replaces each `einsum("mk,nk->mn", x, W)`
/// with a constant `W` (and the bias add, GELU and residual add that are each the only
/// consumer of the one before) by one [`LinearF32Packed`]. Returns how many.
pub fn fuse_linear_f32(model: &mut TypedModel) -> TractResult<usize> {
    let Some(kernel) = kernels::native().linear_f32 else {
        return Ok(0);
    };
    let mut fused = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(einsum) = node.op_as::<EinSum>() else {
            continue;
        };
        // "mk,nk->mn" with any letters, `k` possibly several trailing axes in the same order
        // in both (tract folds the attention heads' reshape into the output projection:
        // "mak,nak->mn"): x [m, K..], W [n, K..], out [m, n]
        let expr = einsum.axes.to_string();
        let mut sides = expr.split("->");
        let (ins, out) = (sides.next().unwrap_or(""), sides.next().unwrap_or(""));
        let parts: Vec<&[u8]> = ins.split(',').map(str::as_bytes).collect();
        let out = out.as_bytes();
        let is_linear = einsum.q_params.is_none()
            && einsum.operating_dt == f32::datum_type()
            && parts.len() == 2
            && parts[0].len() >= 2
            && parts[0].len() == parts[1].len()
            && parts[0][1..] == parts[1][1..]
            && parts[0][0] != parts[1][0]
            && out == [parts[0][0], parts[1][0]];
        if !is_linear || node.inputs.len() != 2 {
            continue;
        }
        let Some(w) = f32_const(model, node.inputs[1])? else {
            continue;
        };
        let (n, k) = (w.shape()[0], w.shape()[1..].iter().product::<usize>());
        let x = node.inputs[0];
        let mut last = OutletId::new(id, 0);
        let mut bias = vec![0f32; n];
        if let Some(add) = sole_successor(model, last)? {
            if add
                .op_as::<TypedBinOp>()
                .is_some_and(|b| b.0.is::<math::Add>())
            {
                let other = add.inputs[(add.inputs[0] == last) as usize];
                if let Some(b) = f32_const(model, other)? {
                    if b.len() == n && b.shape().last() == Some(&n) {
                        bias = b.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
                        last = OutletId::new(add.id, 0);
                    }
                }
            }
        }
        let mut gelu = false;
        if let Some(g) = sole_successor(model, last)? {
            if g.op_as::<ElementWiseOp>()
                .is_some_and(|e| e.0.is::<GeluExact>() && e.1.is_none())
            {
                gelu = true;
                last = OutletId::new(g.id, 0);
            }
        }
        let mut residual = None;
        if let Some(add) = sole_successor(model, last)? {
            if add
                .op_as::<TypedBinOp>()
                .is_some_and(|b| b.0.is::<math::Add>())
            {
                let other = add.inputs[(add.inputs[0] == last) as usize];
                let same = model.outlet_fact(other)?.shape == model.outlet_fact(last)?.shape;
                if same && other != last && f32_const(model, other)?.is_none() {
                    residual = Some(other);
                    last = OutletId::new(add.id, 0);
                }
            }
        }
        let packed = PackedF32::pack(
            kernel,
            w.try_as_plain_ram()?.as_slice::<f32>()?,
            n,
            k,
            &bias,
        );
        let op = LinearF32Packed {
            kernel,
            weights: Arc::new(packed),
            gelu,
            residual: residual.is_some(),
        };
        let mut patch = TypedModelPatch::default();
        let mut inputs = tvec!(patch.tap_model(model, x)?);
        if let Some(r) = residual {
            inputs.push(patch.tap_model(model, r)?);
        }
        let name = model.node(id).name.clone();
        let y = patch.wire_node(name, op, &inputs)?;
        patch.shunt_outside(model, last, y[0])?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}
