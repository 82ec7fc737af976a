//! `MovingSum`: a stride-1 sliding-window sum (or mean) along one axis, in O(length) per lane.
//!
//! Moving-average decompositions (DLinear, Autoformer) average a series over a window of 25
//! steps with an ONNX `AveragePool`. tract runs it as a generic pooling kernel that adds the
//! whole window for every output, which dominated a DLinear forecast (44 of 70 µs). This op keeps
//! a running sum in f64 instead (add the entering value, subtract the leaving one), so its cost
//! does not depend on the window. It is not stored in bundles: [`rewrite_sum_pools`] swaps it in
//! for eligible `SumPool` nodes when a graph is prepared for this CPU.

use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::cnn::{PaddingSpec, SumPool};

/// Sliding-window sum along `axis`, window `window`, stride 1, no padding; divided by the
/// window when `mean`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct MovingSum {
    /// Axis the window slides along.
    pub axis: usize,
    /// Window length.
    pub window: usize,
    /// Divide each sum by the window (an average pool).
    pub mean: bool,
}

impl Op for MovingSum {
    fn name(&self) -> StaticName {
        "KingletMovingSum".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

/// Series advanced together when each is contiguous.
const LANES: usize = 8;

/// Sums every window of `window` consecutive rows: `xs` is `outer × len × inner` row-major,
/// `out` is `outer × (len − window + 1) × inner`.
pub fn moving_sum(
    xs: &[f32],
    outer: usize,
    len: usize,
    inner: usize,
    window: usize,
    mean: bool,
    out: &mut [f32],
) {
    let out_len = len + 1 - window;
    let scale = if mean { 1.0 / window as f64 } else { 1.0 };
    if inner == 1 {
        // one series per outer index (channels-first, as DLinear's pooling): advance 8 series
        // together so their add chains overlap instead of waiting on each other
        for first in (0..outer).step_by(LANES) {
            let lanes = (outer - first).min(LANES);
            let x = |l: usize, t: usize| xs[(first + l) * len + t] as f64;
            let mut sums = [0f64; LANES];
            for (l, s) in sums.iter_mut().enumerate().take(lanes) {
                *s = (0..window).map(|t| x(l, t)).sum();
            }
            for t in 0..out_len {
                for (l, s) in sums.iter_mut().enumerate().take(lanes) {
                    if t > 0 {
                        *s += x(l, t + window - 1) - x(l, t - 1);
                    }
                    out[(first + l) * out_len + t] = (*s * scale) as f32;
                }
            }
        }
        return;
    }
    let mut sums = vec![0f64; inner];
    for o in 0..outer {
        let x = &xs[o * len * inner..][..len * inner];
        let y = &mut out[o * out_len * inner..][..out_len * inner];
        sums.iter_mut().for_each(|s| *s = 0.0);
        for row in x[..window * inner].chunks_exact(inner) {
            for (s, v) in sums.iter_mut().zip(row) {
                *s += *v as f64;
            }
        }
        for (y, s) in y[..inner].iter_mut().zip(&sums) {
            *y = (*s * scale) as f32;
        }
        for t in 1..out_len {
            let entering = &x[(t + window - 1) * inner..][..inner];
            let leaving = &x[(t - 1) * inner..][..inner];
            let y = &mut y[t * inner..][..inner];
            for i in 0..inner {
                sums[i] += entering[i] as f64 - leaving[i] as f64;
                y[i] = (sums[i] * scale) as f32;
            }
        }
    }
}

impl EvalOp for MovingSum {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        let len = shape[self.axis];
        ensure!(
            len >= self.window,
            "moving sum of {} over {len} steps",
            self.window
        );
        let outer: usize = shape[..self.axis].iter().product();
        let inner: usize = shape[self.axis + 1..].iter().product();
        let mut out_shape: TVec<usize> = shape.into();
        out_shape[self.axis] = len + 1 - self.window;
        let plain = input.try_as_plain_ram()?;
        let mut out = Tensor::zero::<f32>(&out_shape)?;
        {
            let mut out_plain = out.try_as_plain_ram_mut()?;
            moving_sum(
                plain.as_slice::<f32>()?,
                outer,
                len,
                inner,
                self.window,
                self.mean,
                out_plain.as_slice_mut::<f32>()?,
            );
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for MovingSum {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == f32::datum_type());
        let mut shape = inputs[0].shape.to_tvec();
        shape[self.axis] = shape[self.axis].clone() + 1 - self.window as i64;
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Replaces every f32 `SumPool` with one spatial axis, stride 1, no dilation and no padding by
/// a [`MovingSum`]. Returns how many were replaced.
pub fn rewrite_sum_pools(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(pool) = node.op_as::<SumPool>() else {
            continue;
        };
        let spec = &pool.pool_spec;
        let fact = model.outlet_fact(node.inputs[0])?;
        let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&s| s == 1));
        let unpadded = match &spec.padding {
            PaddingSpec::Valid => true,
            PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, _) => {
                b.iter().chain(a.iter()).all(|&p| p == 0)
            }
            _ => false,
        };
        if spec.kernel_shape.len() != 1
            || !ones(&spec.strides)
            || !ones(&spec.dilations)
            || !unpadded
            || fact.datum_type != f32::datum_type()
            || fact.rank() != spec.data_format.has_n() as usize + 2
        {
            continue;
        }
        let op = MovingSum {
            axis: spec.data_format.h_axis(),
            window: spec.kernel_shape[0],
            mean: pool.normalize,
        };
        let inputs = node.inputs.clone();
        let patch = TypedModelPatch::replace_single_op(model, model.node(id), &inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_sum_equals_direct_window_sums() {
        // interleaved series, and contiguous ones (more than one group of lanes)
        for (outer, inner) in [(3, 2), (11, 1)] {
            running_sums_match(outer, inner);
        }
    }

    fn running_sums_match(outer: usize, inner: usize) {
        let (len, window) = (40, 7);
        let xs: Vec<f32> = (0..outer * len * inner)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.13)
            .collect();
        let out_len = len + 1 - window;
        let mut out = vec![0f32; outer * out_len * inner];
        moving_sum(&xs, outer, len, inner, window, true, &mut out);
        for o in 0..outer {
            for t in 0..out_len {
                for i in 0..inner {
                    let direct: f32 = (0..window)
                        .map(|j| xs[(o * len + t + j) * inner + i])
                        .sum::<f32>()
                        / window as f32;
                    let got = out[(o * out_len + t) * inner + i];
                    assert!(
                        (got - direct).abs() < 1e-5,
                        "{o} {t} {i}: {got} vs {direct}"
                    );
                }
            }
        }
    }
}
