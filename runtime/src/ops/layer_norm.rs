//! LayerNorm over the last axis as one operator, `KingletLayerNorm`.
//!
//! Bundles spell LayerNorm with tract operators (the exporter's `GraphBuilder::layer_norm`),
//! which tract declutters to `Reduce<Sum> → × 1/H → Sub → RmsNorm → × gamma → + beta`: five
//! passes over the activations. At load, [`fuse_layer_norm`] replaces each such chain by
//! [`LayerNorm`], which runs this CPU's kernel from [`crate::kernels`] (NEON on aarch64, a
//! vectorizing generic loop elsewhere) in three passes. Never serialized.

use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::math;
use tract_nnef::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

/// Inputs `x` f32 `[.., H]`, `gamma` and `beta` `[H]`; output like `x`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// Added to the variance.
    pub eps: f32,
}

impl PartialEq for LayerNorm {
    fn eq(&self, other: &Self) -> bool {
        self.eps.to_bits() == other.eps.to_bits()
    }
}
impl Eq for LayerNorm {}

impl Op for LayerNorm {
    fn name(&self) -> StaticName {
        "KingletLayerNorm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("eps={:e}", self.eps)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for LayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, gamma, beta) = args_3!(inputs);
        let (xp, gp, bp) = (
            x.try_as_plain_ram()?,
            gamma.try_as_plain_ram()?,
            beta.try_as_plain_ram()?,
        );
        let (xs, g, b) = (
            xp.as_slice::<f32>()?,
            gp.as_slice::<f32>()?,
            bp.as_slice::<f32>()?,
        );
        ensure!(g.len() == b.len() && x.shape().last() == Some(&g.len()));
        // SAFETY: the kernel writes every element (every row of H).
        let mut y = unsafe { Tensor::uninitialized::<f32>(x.shape())? };
        if !xs.is_empty() {
            let mut plain = y.try_as_plain_ram_mut()?;
            let kernel = crate::kernels::native().layer_norm;
            (kernel.run)(xs, g, b, self.eps, plain.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for LayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3 && inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(f32::fact(inputs[0].shape.to_tvec())))
    }

    /// Rows are independent: every leading axis maps through.
    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        super::leading_axes_mapping(inputs, outputs, &[])
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
        if output_axis + 1 >= patch.outlet_fact(inputs[0])?.rank() {
            return Ok(None);
        }
        patch.wire_node(prefix, self.clone(), inputs).map(Some)
    }

    as_op!();
}

/// A constant's values, flattened, when every axis but the last is 1 and the last is `h`.
fn row_const(model: &TypedModel, outlet: OutletId, h: usize) -> Option<Vec<f32>> {
    let k = model.outlet_fact(outlet).ok()?.konst.clone()?;
    let shape = k.shape();
    let ok = shape.last() == Some(&h) && shape.iter().rev().skip(1).all(|&d| d == 1);
    (ok && k.datum_type() == f32::datum_type()).then(|| {
        k.try_as_plain_ram()
            .ok()?
            .as_slice::<f32>()
            .ok()
            .map(|s| s.to_vec())
    })?
}

/// Replaces each decluttered LayerNorm chain ending in `+ beta` by one [`LayerNorm`]. Returns
/// how many.
pub fn fuse_layer_norm(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        let Some((x, gamma, beta, eps)) = match_chain(model, id)? else {
            continue;
        };
        let name = model.node(id).name.clone();
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, x)?;
        let h = gamma.len();
        let g = patch.add_const(format!("{name}.gamma"), Tensor::from_shape(&[h], &gamma)?)?;
        let b = patch.add_const(format!("{name}.beta"), Tensor::from_shape(&[h], &beta)?)?;
        let y = patch.wire_node(&name, LayerNorm { eps }, &[x, g, b])?;
        patch.shunt_outside(model, id.into(), y[0])?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

type Found = (OutletId, Vec<f32>, Vec<f32>, f32);

fn match_chain(model: &TypedModel, id: usize) -> TractResult<Option<Found>> {
    let only_feeds =
        |outlet: OutletId| -> TractResult<bool> {
            Ok(model.outlet_successors(outlet).len() == 1
                && !model.output_outlets()?.contains(&outlet))
        };
    let binop = |id: usize, is: fn(&TypedBinOp) -> bool| -> Option<&TypedNode> {
        let node = model.node(id);
        node.op_as::<TypedBinOp>().filter(|b| is(b)).map(|_| node)
    };
    let Some(add) = binop(id, |b| b.0.is::<math::Add>()) else {
        return Ok(None);
    };
    let fact = model.outlet_fact(add.inputs[0])?;
    if fact.datum_type != f32::datum_type() || fact.rank() == 0 {
        return Ok(None);
    }
    let Ok(h) = fact.shape[fact.rank() - 1].to_usize() else {
        return Ok(None);
    };
    let last = fact.rank() - 1;
    // one side + beta, the other × gamma
    for (scaled, beta) in [
        (add.inputs[0], add.inputs[1]),
        (add.inputs[1], add.inputs[0]),
    ] {
        let Some(beta) = row_const(model, beta, h) else {
            continue;
        };
        let Some(mul) = binop(scaled.node, |b| b.0.is::<math::Mul>()) else {
            continue;
        };
        if !only_feeds(scaled)? {
            continue;
        }
        for (normed, gamma) in [
            (mul.inputs[0], mul.inputs[1]),
            (mul.inputs[1], mul.inputs[0]),
        ] {
            let Some(gamma) = row_const(model, gamma, h) else {
                continue;
            };
            let rms = model.node(normed.node);
            let Some(op) = rms.op_as::<RmsNorm>() else {
                continue;
            };
            if op.axis != last || !only_feeds(normed)? {
                continue;
            }
            let eps = op.eps.cast_to_scalar::<f32>()?;
            let centered = rms.inputs[0];
            let Some(sub) = binop(centered.node, |b| b.0.is::<math::Sub>()) else {
                continue;
            };
            if !only_feeds(centered)? || !only_feeds(sub.inputs[1])? {
                continue;
            }
            let x = sub.inputs[0];
            let Some(mean) = binop(sub.inputs[1].node, |b| b.0.is::<math::Mul>()) else {
                continue;
            };
            let (sum, scale) = (mean.inputs[0], mean.inputs[1]);
            let inv_h = model
                .outlet_fact(scale)?
                .konst
                .as_ref()
                .filter(|k| k.len() == 1)
                .and_then(|k| k.cast_to_scalar::<f32>().ok());
            if inv_h.is_none_or(|v| (v * h as f32 - 1.0).abs() > 1e-6) || !only_feeds(sum)? {
                continue;
            }
            let reduce = model.node(sum.node);
            let is_sum = reduce
                .op_as::<Reduce>()
                .is_some_and(|r| r.reducer == Reducer::Sum && *r.axes == [last]);
            if is_sum && reduce.inputs[0] == x {
                return Ok(Some((x, gamma, beta, eps)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_layer_norm_matches_the_decluttered_chain() -> TractResult<()> {
        let h = 37;
        let mut model = TypedModel::default();
        let s = model.symbols.sym("S");
        let x = model.add_source("x", f32::fact(dims!(s, h)))?;
        let sum = model.wire_node("sum", Reduce::new(tvec!(1), Reducer::Sum), &[x])?;
        let inv = model.add_const("inv", tensor2(&[[1.0 / h as f32]]))?;
        let mean = model.wire_node("mean", math::mul(), &[sum[0], inv])?;
        let centered = model.wire_node("center", math::sub(), &[x, mean[0]])?;
        let sq = model.wire_node("square", math::square(), &centered)?;
        let sq_sum = model.wire_node("sq_sum", Reduce::new(tvec!(1), Reducer::Sum), &sq)?;
        let var = model.wire_node("var", math::mul(), &[sq_sum[0], inv])?;
        let eps = model.add_const("eps", tensor0(1e-12f32))?;
        let var_eps = wire_with_rank_broadcast("var_eps", &mut model, math::add(), &[var[0], eps])?;
        let r = model.wire_node("rsqrt", math::rsqrt(), &var_eps)?;
        let normed = model.wire_node("normed", math::mul(), &[centered[0], r[0]])?;
        let gamma: Vec<f32> = (0..h).map(|i| 0.5 + i as f32 * 0.01).collect();
        let beta: Vec<f32> = (0..h).map(|i| i as f32 * -0.02).collect();
        let g = model.add_const("gamma", Tensor::from_shape(&[1, h], &gamma)?)?;
        let b = model.add_const("beta", Tensor::from_shape(&[1, h], &beta)?)?;
        let scaled = model.wire_node("scaled", math::mul(), &[normed[0], g])?;
        let y = model.wire_node("shifted", math::add(), &[scaled[0], b])?;
        model.select_output_outlets(&y)?;
        let reference = model.into_decluttered()?;
        let mut fused = reference.clone();
        assert_eq!(fuse_layer_norm(&mut fused)?, 1);
        for rows in [1, 5] {
            let data: Vec<f32> = (0..rows * h)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.37)
                .collect();
            let input = tvec!(Tensor::from_shape(&[rows, h], &data)?.into_tvalue());
            let want = reference
                .clone()
                .into_optimized()?
                .into_runnable()?
                .run(input.clone())?;
            let got = fused
                .clone()
                .into_optimized()?
                .into_runnable()?
                .run(input)?;
            let (w, g) = (want[0].try_as_plain_ram()?, got[0].try_as_plain_ram()?);
            for (w, g) in w.as_slice::<f32>()?.iter().zip(g.as_slice::<f32>()?) {
                assert!((w - g).abs() < 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
        Ok(())
    }
}
