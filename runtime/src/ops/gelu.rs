//! Exact (erf) GELU on f32 tensors, in kinglet's own vectorized code: the activation of every
//! BERT feed-forward block that is not already folded into the int8 linear kernel.
//!
//! Bundles store tract's `GeluExact`; at load, [`use_kinglet_gelu`] swaps each f32 one for
//! [`Gelu`], the same element-wise function in one pass: this CPU's GELU kernel from
//! [`crate::kernels`] (erf from Abramowitz–Stegun 7.1.26, error below 1.5e-7) where there is a
//! native one, elsewhere tract's own erf kernel for this CPU between two loops of kinglet's —
//! tract's algorithm, but not slowed down by the release profile, which builds tract's generic
//! operators for size.

use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::element_wise::{ElementWiseMiniOp, ElementWiseOp};
use tract_nnef::tract_core::ops::nn::GeluExact;
use tract_nnef::tract_core::tract_linalg::element_wise::ElementWise;
use tract_nnef::tract_core::tract_linalg::routines::Func;

/// Exact GELU on f32; other types are left to tract's [`GeluExact`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Gelu;

impl ElementWiseMiniOp for Gelu {
    fn name(&self) -> String {
        "KingletGelu".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    fn eval_in_place(&self, t: &mut Tensor, out_dt: Option<DatumType>) -> TractResult<()> {
        if t.datum_type() != f32::datum_type() {
            return GeluExact {}.eval_in_place(t, out_dt);
        }
        let mut plain = t.try_as_plain_ram_mut()?;
        gelu_in_place(plain.as_slice_mut::<f32>()?)
    }

    fn cost_per_element(&self, dt: DatumType) -> TVec<(Cost, usize)> {
        tvec!((Cost::FMA(dt), 16))
    }
}

/// The element-wise operator wrapping [`Gelu`].
pub fn gelu() -> ElementWiseOp {
    ElementWiseOp(Box::new(Gelu), None)
}

/// `x ← gelu(x)` for every element.
pub fn gelu_in_place(xs: &mut [f32]) -> TractResult<()> {
    let math = crate::kernels::native().math;
    if !std::ptr::eq(math, &crate::kernels::generic::MATH) {
        (math.gelu)(xs);
        return Ok(());
    }
    static ERF: std::sync::OnceLock<Box<dyn ElementWise<f32>>> = std::sync::OnceLock::new();
    if ERF.get().is_none() {
        let _ = ERF.set(Func::Erf.ew_f32()?);
    }
    let erf = ERF.get().expect("set just above");
    let mut scaled = [0f32; 256];
    for chunk in xs.chunks_mut(scaled.len()) {
        let scaled = &mut scaled[..chunk.len()];
        for (s, x) in scaled.iter_mut().zip(chunk.iter()) {
            *s = x * std::f32::consts::FRAC_1_SQRT_2;
        }
        erf.run(scaled)?;
        for (x, e) in chunk.iter_mut().zip(scaled.iter()) {
            *x = *x * 0.5 * (e + 1.0);
        }
    }
    Ok(())
}
/// Replaces every f32 `GeluExact` of `model` by [`Gelu`]. Returns how many.
pub fn use_kinglet_gelu(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let is_gelu = node
            .op_as::<ElementWiseOp>()
            .is_some_and(|e| e.0.is::<GeluExact>() && e.1.is_none());
        if is_gelu && model.outlet_fact(node.inputs[0])?.datum_type == f32::datum_type() {
            model.node_mut(id).op = Box::new(gelu());
            replaced += 1;
        }
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinglet_gelu_matches_tract_gelu_on_every_tail_length() -> TractResult<()> {
        for len in [1, 15, 16, 17, 100, 1536] {
            let xs: Vec<f32> = (0..len)
                .map(|i| (i as f32 - len as f32 / 2.0) * 0.013)
                .collect();
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact([len]))?;
            let y = model.wire_node(
                "gelu",
                tract_nnef::tract_core::ops::nn::gelu_exact::gelu_exact(),
                &[x],
            )?;
            model.select_output_outlets(&y)?;
            let mut ours = model.clone();
            assert_eq!(use_kinglet_gelu(&mut ours)?, 1);
            let input = tvec!(Tensor::from_shape(&[len], &xs)?.into_tvalue());
            let want = model.into_runnable()?.run(input.clone())?;
            let got = ours.into_runnable()?.run(input)?;
            let (want, got) = (want[0].try_as_plain_ram()?, got[0].try_as_plain_ram()?);
            for ((x, w), g) in xs
                .iter()
                .zip(want.as_slice::<f32>()?)
                .zip(got.as_slice::<f32>()?)
            {
                assert!(
                    (w - g).abs() < 2e-6 * (1.0 + x.abs()),
                    "gelu({x}): {g} vs {w}"
                );
            }
        }
        Ok(())
    }
}
