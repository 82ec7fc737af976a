//! Folding a forecaster whose whole graph is affine (DLinear, NLinear, a plain linear head:
//! padding, moving averages, differences, transposes and matmuls only) into one matrix
//! product: `y = x · A + b`.
//!
//! Affinity is not taken from the operator list but measured: the graph must satisfy
//! superposition and scaling on probe windows, `A` is read off column by column from the basis
//! windows, and the folded graph must reproduce the original on fresh probes. Any nonlinearity
//! (an LSTM, a ReLU that bites) fails the probes and the graph is kept as it is.

use crate::error::{ExportError, Result};
use kinglet_runtime::engine::Engine;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::math;

/// Largest folded matrix, relative to the graph's own parameter count: folding trades bundle
/// bytes for speed, and is not worth more than this.
const MAX_GROWTH: usize = 4;
/// Relative agreement required between the folded and the original graph.
const TOLERANCE: f32 = 1e-4;

/// The folded graph, or `None` when `model` is not affine or the matrix would be too large.
pub fn fold_affine(model: &TypedModel, parameters: u64) -> Result<Option<TypedModel>> {
    let g = ExportError::graph;
    let concrete = |fact: &TypedFact| -> Option<Vec<usize>> {
        fact.shape.iter().map(|d| d.to_usize().ok()).collect()
    };
    let input = model.input_outlets().map_err(g)?[0];
    let output = model.output_outlets().map_err(g)?[0];
    let in_fact = model.outlet_fact(input).map_err(g)?.clone();
    let out_fact = model.outlet_fact(output).map_err(g)?.clone();
    let (Some(in_shape), Some(out_shape)) = (concrete(&in_fact), concrete(&out_fact)) else {
        return Ok(None);
    };
    if in_fact.datum_type != f32::datum_type() || out_fact.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let (n, m) = (
        in_shape.iter().product::<usize>(),
        out_shape.iter().product::<usize>(),
    );
    let channels = match (in_shape.as_slice(), out_shape.as_slice()) {
        ([1, _, f], [1, _, g]) if f == g && *f > 1 => Some(*f),
        _ => None,
    };
    let whole_fits = n * m <= MAX_GROWTH * parameters.max(1) as usize;
    if channels.is_none() && !whole_fits {
        return Ok(None);
    }
    let mut engine = Engine::from_typed(model.clone())?;
    let mut f = |x: &[f32]| -> Result<Vec<f32>> {
        let t = Tensor::from_shape(&in_shape, x).map_err(g)?;
        Ok(engine.run_f32(t)?)
    };
    let b = f(&vec![0f32; n])?;
    let (p, q) = (probe(n, 1), probe(n, 2));
    let (fp, fq) = (f(&p)?, f(&q)?);
    let sum: Vec<f32> = p.iter().zip(&q).map(|(a, b)| a + b).collect();
    let superposed: Vec<f32> = (0..m).map(|i| fp[i] + fq[i] - b[i]).collect();
    let scaled: Vec<f32> = p.iter().map(|v| 2.5 * v).collect();
    let scaled_expected: Vec<f32> = (0..m).map(|i| b[i] + 2.5 * (fp[i] - b[i])).collect();
    if !close(&f(&sum)?, &superposed) || !close(&f(&scaled)?, &scaled_expected) {
        return Ok(None);
    }
    // every channel through the same map (DLinear's shared weights): A is [L, H]
    if let Some(f_count) = channels {
        let (l, h) = (in_shape[1], out_shape[1]);
        let mut a = vec![0f32; l * h];
        let mut basis = vec![0f32; n];
        for t in 0..l {
            basis[t * f_count] = 1.0;
            let response = f(&basis)?;
            basis[t * f_count] = 0.0;
            for j in 0..h {
                a[t * h + j] = response[j * f_count] - b[j * f_count];
            }
        }
        let folded = build_per_channel(model, &in_fact, a, &b, l, h, f_count)?;
        if agrees(&folded, &in_shape, n, &mut f)? {
            return Ok(Some(folded));
        }
    }
    if !whole_fits {
        return Ok(None);
    }
    let mut a = vec![0f32; n * m];
    let mut basis = vec![0f32; n];
    for i in 0..n {
        basis[i] = 1.0;
        let column = f(&basis)?;
        basis[i] = 0.0;
        for (j, v) in column.iter().enumerate() {
            a[i * m + j] = v - b[j];
        }
    }
    let folded = build(model, &in_fact, &out_shape, a, &b, n, m)?;
    Ok(agrees(&folded, &in_shape, n, &mut f)?.then_some(folded))
}

/// Whether `folded` reproduces the original (`f`) on fresh probe windows.
fn agrees(
    folded: &TypedModel,
    in_shape: &[usize],
    n: usize,
    f: &mut impl FnMut(&[f32]) -> Result<Vec<f32>>,
) -> Result<bool> {
    let mut check = Engine::from_typed(folded.clone())?;
    for seed in 3..6 {
        let x = probe(n, seed);
        let t = Tensor::from_shape(in_shape, &x).map_err(ExportError::graph)?;
        if !close(&check.run_f32(t)?, &f(&x)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `source [1, L, F] → einsum(blf, lh → bhf) + b → [1, H, F]`: one `[L, H]` map shared by
/// every channel.
fn build_per_channel(
    model: &TypedModel,
    in_fact: &TypedFact,
    a: Vec<f32>,
    b: &[f32],
    l: usize,
    h: usize,
    channels: usize,
) -> Result<TypedModel> {
    let g = ExportError::graph;
    let mut folded = TypedModel::default();
    let input = model.input_outlets().map_err(g)?[0];
    let x = folded
        .add_source(&model.node(input.node).name, in_fact.clone())
        .map_err(g)?;
    let a = folded
        .add_const("affine.matrix", Tensor::from_shape(&[l, h], &a).map_err(g)?)
        .map_err(g)?;
    let axes: AxesMapping = "blf,lh->bhf".parse().map_err(g)?;
    let y = folded
        .wire_node(
            "affine.matmul",
            EinSum::new(axes, f32::datum_type()),
            &[x, a],
        )
        .map_err(g)?;
    let b = folded
        .add_const(
            "affine.bias",
            Tensor::from_shape(&[1, h, channels], b).map_err(g)?,
        )
        .map_err(g)?;
    let y = folded
        .wire_node("affine.add_bias", math::add(), &[y[0], b])
        .map_err(g)?;
    finish(model, folded, y[0])
}

fn finish(model: &TypedModel, mut folded: TypedModel, y: OutletId) -> Result<TypedModel> {
    let g = ExportError::graph;
    let output = model.output_outlets().map_err(g)?[0];
    folded.select_output_outlets(&[y]).map_err(g)?;
    let label = model
        .outlet_label(output)
        .map(str::to_string)
        .unwrap_or_else(|| model.node(output.node).name.clone());
    folded.set_outlet_label(y, label).map_err(g)?;
    folded.into_decluttered().map_err(g)
}

/// `source → [1, n] · A[n, m] + b → out_shape`, with the original's input and output names.
fn build(
    model: &TypedModel,
    in_fact: &TypedFact,
    out_shape: &[usize],
    a: Vec<f32>,
    b: &[f32],
    n: usize,
    m: usize,
) -> Result<TypedModel> {
    let g = ExportError::graph;
    let input = model.input_outlets().map_err(g)?[0];
    let mut folded = TypedModel::default();
    let x = folded
        .add_source(&model.node(input.node).name, in_fact.clone())
        .map_err(g)?;
    let dims = |s: &[usize]| s.iter().map(|d| d.to_dim()).collect::<TVec<TDim>>();
    let in_dims = dims(in_fact.shape.as_concrete().unwrap_or(&[]));
    let flat = AxisOp::Reshape(0, in_dims, tvec!(1.to_dim(), n.to_dim()));
    let x = folded.wire_node("affine.flatten", flat, &[x]).map_err(g)?;
    let a = folded
        .add_const("affine.matrix", Tensor::from_shape(&[n, m], &a).map_err(g)?)
        .map_err(g)?;
    let axes: AxesMapping = "bk,kn->bn".parse().map_err(g)?;
    let y = folded
        .wire_node(
            "affine.matmul",
            EinSum::new(axes, f32::datum_type()),
            &[x[0], a],
        )
        .map_err(g)?;
    let b = folded
        .add_const("affine.bias", Tensor::from_shape(&[1, m], b).map_err(g)?)
        .map_err(g)?;
    let y = folded
        .wire_node("affine.add_bias", math::add(), &[y[0], b])
        .map_err(g)?;
    let shape = AxisOp::Reshape(0, tvec!(1.to_dim(), m.to_dim()), dims(out_shape));
    let y = folded.wire_node("affine.output", shape, &y).map_err(g)?;
    finish(model, folded, y[0])
}

/// A deterministic window of values in [-3, 3], about the range of normalized data.
fn probe(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 6.0 - 3.0
        })
        .collect()
}

fn close(got: &[f32], want: &[f32]) -> bool {
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() <= TOLERANCE * scale)
}
