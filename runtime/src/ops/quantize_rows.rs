//! `kinglet_quantize_rows`: dynamic, symmetric, per-row int8 quantization of activations.
//!
//! For `x` of shape `[.., K]` it returns `q` (i8, same shape) and `scale` (f32, `[.., 1]`) with
//! `scale = max|row| / 127` and `q = round(x / scale)`, so that `x ≈ q · scale` row by row.
//! Feeding `q` to an i8×i8→i32 matmul against per-output-channel int8 weights lets tract run
//! its integer kernels (x86 AVX2/VNNI, arm64 SMLAL/SDOT, armv7 NEON); one scale per token keeps
//! an outlier token from crushing the resolution of all the others.

use tract_nnef::internal::*;
use tract_nnef::ser::invocation;

/// Largest quantized magnitude; -128 is never produced, so the range is symmetric.
pub const Q_MAX: f32 = 127.0;

/// NNEF name of the operator.
pub const NNEF_NAME: &str = "kinglet_quantize_rows";

/// The operator. Stateless; one input, two outputs.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq)]
pub struct QuantizeRows;

impl Op for QuantizeRows {
    fn name(&self) -> StaticName {
        "KingletQuantizeRows".into()
    }

    op_as_typed_op!();
}

/// Quantizes `xs` (rows of `k` values) into `qs` and one scale per row into `scales`.
pub fn quantize_rows(xs: &[f32], k: usize, qs: &mut [i8], scales: &mut [f32]) {
    for ((row, q), scale) in xs
        .chunks_exact(k)
        .zip(qs.chunks_exact_mut(k))
        .zip(scales.iter_mut())
    {
        let max_abs = max_abs(row);
        *scale = if max_abs > 0.0 && max_abs.is_finite() {
            max_abs / Q_MAX
        } else {
            1.0
        };
        let inv = 1.0 / *scale;
        for (x, q) in row.iter().zip(q.iter_mut()) {
            *q = round_to_i8(x * inv);
        }
    }
}

/// Quantizes a constant `[rows, cols]` f32 matrix row by row (per output channel): the i8
/// matrix and one f32 scale per row (`w ≈ q · scale`).
pub fn int8_per_row(w: &Tensor) -> TractResult<(Tensor, Tensor)> {
    let [rows, cols] = *w.shape() else {
        bail!("int8 quantization of a rank-{} tensor", w.rank());
    };
    let plain = w.try_as_plain_ram()?;
    let mut q = vec![0i8; rows * cols];
    let mut scales = vec![0f32; rows];
    quantize_rows(plain.as_slice::<f32>()?, cols, &mut q, &mut scales);
    Ok((
        Tensor::from_shape(&[rows, cols], &q)?,
        Tensor::from_shape(&[rows], &scales)?,
    ))
}

/// Largest magnitude of a row (NaN ignored), in eight independent lanes so it vectorizes.
#[inline(always)]
fn max_abs(row: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            let a = v.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    let mut m = tail
        .iter()
        .fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    for l in lanes {
        m = if l > m { l } else { m };
    }
    m
}

/// Rounds half away from zero (as `f32::round`) and saturates to ±127 (NaN to 0), written as
/// selects, an add and a truncating conversion so the loop vectorizes on every target
/// (`f32::round` is a libm call on baseline x86_64, and the saturating `as` is scalar there).
#[inline(always)]
fn round_to_i8(v: f32) -> i8 {
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(-Q_MAX, Q_MAX)
    };
    // SAFETY: finite and within ±127.5, so representable as i32.
    unsafe { (v + 0.5f32.copysign(v)).to_int_unchecked::<i32>() as i8 }
}

impl EvalOp for QuantizeRows {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape: TVec<usize> = input.shape().into();
        let k = *shape.last().context("quantize_rows needs rank ≥ 1")?;
        let plain = input.try_as_plain_ram()?;
        let xs = plain.as_slice::<f32>()?;
        let rows = xs.len().checked_div(k).unwrap_or(0);
        let mut scale_shape = shape.clone();
        *scale_shape.last_mut().unwrap() = 1;
        // SAFETY: `quantize_rows` below writes every element: the tensor has rows × k of them
        // (none when k = 0, the only case where `rows` is 0 for a non-empty row count).
        let mut q = unsafe { Tensor::uninitialized::<i8>(&shape)? };
        let mut scales = Tensor::zero::<f32>(&scale_shape)?;
        if rows > 0 {
            let mut q_plain = q.try_as_plain_ram_mut()?;
            let mut s_plain = scales.try_as_plain_ram_mut()?;
            quantize_rows(
                xs,
                k,
                q_plain.as_slice_mut::<i8>()?,
                s_plain.as_slice_mut::<f32>()?,
            );
        }
        Ok(tvec!(q.into_tvalue(), scales.into_tvalue()))
    }
}

impl TypedOp for QuantizeRows {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == f32::datum_type(),
            "quantize_rows takes f32"
        );
        let shape = inputs[0].shape.to_tvec();
        ensure!(!shape.is_empty(), "quantize_rows needs rank ≥ 1");
        let mut scale_shape = shape.clone();
        *scale_shape.last_mut().unwrap() = 1.to_dim();
        Ok(tvec!(i8::fact(shape), f32::fact(scale_shape)))
    }

    as_op!();
}

fn ser(
    ast: &mut IntoAst,
    node: &TypedNode,
    _op: &QuantizeRows,
) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    Ok(Some(invocation(NNEF_NAME, &[input], &[])))
}

fn de(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    builder.wire(QuantizeRows, &[input])
}

/// Registers the operator's NNEF form.
pub fn register(registry: &mut Registry) {
    registry.register_dumper(ser);
    registry.register_primitive(
        NNEF_NAME,
        &[TypeName::Scalar.tensor().named("input")],
        &[
            ("q", TypeName::Integer.tensor()),
            ("scale", TypeName::Scalar.tensor()),
        ],
        de,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_scaled_to_their_own_max() {
        let xs = [1.0, -0.5, 0.25, 0.0, 0.0, 0.0, 10.0, 20.0, -40.0];
        let mut qs = [0i8; 9];
        let mut scales = [0f32; 3];
        quantize_rows(&xs, 3, &mut qs, &mut scales);
        assert_eq!(qs, [127, -64, 32, 0, 0, 0, 32, 64, -127]);
        assert_eq!(scales, [1.0 / 127.0, 1.0, 40.0 / 127.0]);
    }

    #[test]
    fn rounding_matches_round_half_away_from_zero_and_saturates() {
        for i in -40_000..=40_000 {
            let v = i as f32 * 0.00731;
            let want = v.round().clamp(-Q_MAX, Q_MAX) as i8;
            assert_eq!(round_to_i8(v), want, "{v}");
        }
        assert_eq!(round_to_i8(2.5), 3);
        assert_eq!(round_to_i8(-2.5), -3);
        assert_eq!(round_to_i8(1e9), 127);
        assert_eq!(round_to_i8(-1e9), -127);
        assert_eq!(round_to_i8(f32::NAN), 0);
        assert_eq!(round_to_i8(f32::INFINITY), 127);
        assert_eq!(round_to_i8(f32::NEG_INFINITY), -127);
    }
}
