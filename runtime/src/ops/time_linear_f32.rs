//! `KingletTimeLinearF32`: a linear map over the time axis of a `[1, steps, features]` window,
//! `y[1, n, m] = Σₖ W[n, k] · x[1, k, m] + b`, as DLinear and NLinear forecasters (and
//! kinglet's affine fold of them) are exported: one `einsum` with a constant `W` and the constant
//! add that is its only consumer.
//!
//! tract runs that product with the features (7 for ETTh1) as the kernel's column count, so
//! every tile is a border tile (computed in scratch and copied out element by element) and the
//! window is re-packed on each call. Here the window is transposed once into `[m, k]` rows, the
//! product runs on this CPU's f32 kernel from [`crate::kernels`] with `W` packed at load, and
//! the bias is added while the result is transposed back. Never serialized: made at load by
//! [`fuse_time_linear_f32`] where a native f32 kernel exists.

use crate::kernels::linear_f32::{LinearF32Kernel, PackedF32};
use crate::kernels::{self, Epilogue};
use crate::ops::linear_f32::{f32_const, sole_successor};
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::math;

/// Input `x` f32 `[1, k, m]`; output `[1, n, m]`.
#[derive(Debug, Clone)]
pub struct TimeLinearF32Packed {
    kernel: &'static LinearF32Kernel,
    /// `W` as `[n, k]`, packed for `kernel`, with no bias (it is added in the transpose).
    weights: Arc<PackedF32>,
    /// Features (`m`).
    features: usize,
    /// `[n, m]`, row-major: the bias broadcast over features or one per output value.
    bias: Arc<Vec<f32>>,
}

impl TimeLinearF32Packed {
    /// The kernel's name, as listed by `kinglet inspect --profile`.
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name
    }

    /// `y [n, m] = W [n, k] · x [k, m] + bias`, both row-major, on one thread.
    fn product(&self, x: &[f32], y: &mut [f32]) {
        let (k, n, m) = (self.weights.k, self.weights.n, self.features);
        let mut rows = Vec::with_capacity(m * k);
        for feature in 0..m {
            rows.extend(x[feature..].iter().step_by(m));
        }
        let mut products = vec![0f32; m * n];
        let epilogue = Epilogue {
            gelu: false,
            residual: None,
        };
        let pool = crate::workers::pool();
        self.weights.matmul(
            self.kernel,
            &rows,
            &mut products,
            m,
            pool.as_deref(),
            epilogue,
        );
        for (out, (y_row, bias_row)) in y
            .chunks_exact_mut(m)
            .zip(self.bias.chunks_exact(m))
            .enumerate()
        {
            let column = products[out..].iter().step_by(n);
            for ((y, &b), &v) in y_row.iter_mut().zip(bias_row).zip(column) {
                *y = v + b;
            }
        }
    }
}

impl PartialEq for TimeLinearF32Packed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights) && Arc::ptr_eq(&self.bias, &other.bias)
    }
}
impl Eq for TimeLinearF32Packed {}

impl Op for TimeLinearF32Packed {
    fn name(&self) -> StaticName {
        "KingletTimeLinearF32".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let w = &self.weights;
        Ok(vec![format!(
            "{} K={} N={} features={} packed {} bytes",
            self.kernel.name,
            w.k,
            w.n,
            self.features,
            w.size_bytes()
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for TimeLinearF32Packed {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (k, n, m) = (self.weights.k, self.weights.n, self.features);
        let x = &inputs[0];
        ensure!(
            x.shape() == [1, k, m],
            "time_linear_f32 takes [1, {k}, {m}], got {:?}",
            x.shape()
        );
        // SAFETY: `product` writes every element of y (n × m).
        let mut y = unsafe { Tensor::uninitialized::<f32>(&[1, n, m])? };
        {
            let plain = x.try_as_plain_ram()?;
            let mut y_plain = y.try_as_plain_ram_mut()?;
            self.product(plain.as_slice::<f32>()?, y_plain.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for TimeLinearF32Packed {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() == 3 && inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(f32::fact([1, self.weights.n, self.features])))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let w = &self.weights;
        Ok(tvec!((
            Cost::FMA(f32::datum_type()),
            (w.k * w.n * self.features).to_dim()
        )))
    }

    as_op!();
}

/// Where this CPU has a native f32 linear kernel, replaces each `einsum` that maps a
/// non-constant `x [1, k, m]` and a constant `W` (`[k, n]`, `[n, k]`, or either with a leading
/// unit axis) to `[1, n, m]`, and the constant add that is its only consumer (`[1, n, m]`,
/// `[1, n, 1]` or `[n, 1]`), by one [`TimeLinearF32Packed`]. Returns how many.
pub fn fuse_time_linear_f32(model: &mut TypedModel) -> TractResult<usize> {
    let Some(kernel) = kernels::native().linear_f32 else {
        return Ok(0);
    };
    let mut fused = 0;
    for id in model.eval_order()? {
        if let Some(patch) = time_linear_patch(model, kernel, id)? {
            patch.apply(model)?;
            fused += 1;
        }
    }
    Ok(fused)
}

fn time_linear_patch(
    model: &TypedModel,
    kernel: &'static LinearF32Kernel,
    id: usize,
) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(einsum) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let (w_slot, w) = match (
        f32_const(model, node.inputs[0])?,
        f32_const(model, node.inputs[1])?,
    ) {
        (Some(w), None) => (0, w),
        (None, Some(w)) => (1, w),
        _ => return Ok(None),
    };
    let x = node.inputs[1 - w_slot];
    let x_fact = model.outlet_fact(x)?;
    let Some(x_shape) = x_fact.shape.as_concrete() else {
        return Ok(None);
    };
    let &[1, k, m] = x_shape else {
        return Ok(None);
    };
    let lead = match w.rank() {
        2 => 0,
        3 if w.shape()[0] == 1 => 1,
        _ => return Ok(None),
    };
    // each axis by role: batch (x and output, W's leading unit axis if any), k (W and x),
    // n (W and output), m (x and output)
    let (mut w_k, mut w_n) = (None, None);
    for axis in einsum.axes.iter_all_axes() {
        let (in_w, in_x, out) = (
            axis.inputs[w_slot].as_slice(),
            axis.inputs[1 - w_slot].as_slice(),
            axis.outputs[0].as_slice(),
        );
        match (in_w, in_x, out) {
            ([], [0], [0]) if lead == 0 => {}
            ([0], [0], [0]) if lead == 1 => {}
            ([p], [1], []) => w_k = Some(*p - lead),
            ([p], [], [1]) => w_n = Some(*p - lead),
            ([], [2], [2]) => {}
            _ => return Ok(None),
        }
    }
    let (Some(w_k), Some(w_n)) = (w_k, w_n) else {
        return Ok(None);
    };
    let dims = (w.shape()[lead], w.shape()[lead + 1]);
    let w_view = w
        .to_plain_array_view::<f32>()?
        .into_shape_with_order(dims)?;
    if w_k == w_n || w_view.shape()[w_k] != k {
        return Ok(None);
    }
    let n = w_view.shape()[w_n];
    let w_nk: Vec<f32> = if w_n == 0 {
        w_view.iter().copied().collect()
    } else {
        w_view.t().iter().copied().collect()
    };
    let mut last = OutletId::new(id, 0);
    let mut bias = vec![0f32; n * m];
    if let Some(add) = sole_successor(model, last)? {
        if add
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.is::<math::Add>())
        {
            let other = add.inputs[(add.inputs[0] == last) as usize];
            if let Some(b) = f32_const(model, other)? {
                let values = b.to_plain_array_view::<f32>()?;
                let per_feature = matches!(b.shape(), [1, nn, mm] if *nn == n && *mm == m);
                let per_step = matches!(b.shape(), [1, nn, 1] | [nn, 1] if *nn == n);
                if per_feature || per_step {
                    let values: Vec<f32> = values.iter().copied().collect();
                    for (i, v) in bias.iter_mut().enumerate() {
                        *v = if per_feature {
                            values[i]
                        } else {
                            values[i / m]
                        };
                    }
                    last = OutletId::new(add.id, 0);
                }
            }
        }
    }
    let op = TimeLinearF32Packed {
        kernel,
        weights: Arc::new(PackedF32::pack(kernel, &w_nk, n, k, &vec![0f32; n])),
        features: m,
        bias: Arc::new(bias),
    };
    let mut patch = TypedModelPatch::new("time-axis linear on kinglet's f32 kernel");
    let x = patch.tap_model(model, x)?;
    let y = patch.wire_node(&node.name, op, &[x])?;
    patch.shunt_outside(model, last, y[0])?;
    Ok(Some(patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generic;

    fn op(
        kernel: &'static LinearF32Kernel,
        w_nk: &[f32],
        bias: Vec<f32>,
        k: usize,
        n: usize,
        m: usize,
    ) -> TimeLinearF32Packed {
        TimeLinearF32Packed {
            kernel,
            weights: Arc::new(PackedF32::pack(kernel, w_nk, n, k, &vec![0f32; n])),
            features: m,
            bias: Arc::new(bias),
        }
    }

    #[test]
    fn time_linear_is_the_product_over_steps_for_each_feature() {
        let (k, n, m) = (336, 96, 7);
        let x: Vec<f32> = (0..k * m)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.031)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) * 0.002)
            .collect();
        let bias: Vec<f32> = (0..n * m).map(|i| i as f32 * 0.01 - 1.0).collect();
        let mut candidates = vec![&generic::LINEAR_F32];
        candidates.extend(kernels::linear_f32_candidates());
        for kernel in candidates {
            let mut y = vec![f32::NAN; n * m];
            op(kernel, &w, bias.clone(), k, n, m).product(&x, &mut y);
            for o in 0..n {
                for f in 0..m {
                    let want: f32 =
                        (0..k).map(|s| w[o * k + s] * x[s * m + f]).sum::<f32>() + bias[o * m + f];
                    let got = y[o * m + f];
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{} [{o}, {f}]: {got} vs {want}",
                        kernel.name
                    );
                }
            }
        }
    }
}
