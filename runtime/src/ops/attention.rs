//! Multi-head self-attention as one operator: `softmax(scale · Q·Kᵀ) · V` per head, with the
//! scores, the softmax and the context for a block of rows computed while they are in cache.
//!
//! Bundles do not store this operator. They spell attention with tract operators (see the
//! exporter's `GraphBuilder::self_attention`):
//!
//! ```text
//! scores  = einsum("shd,thd->hst", q, k)     q, k, v: [S, heads, head_dim]
//! probs   = softmax(scores · scale, axis 2)
//! context = einsum("hst,thd->shd", probs, v) → [S, heads, head_dim]
//! ```
//!
//! At load, on x86-64 with AVX-512 F, [`fuse_attention`] replaces that chain by
//! [`Attention`]; everywhere else the graph runs as stored, on tract's kernels. tract would run
//! it as two packed matrix products around a softmax over a materialized `[heads, S, S]` tensor;
//! the fused form never materializes more than six rows of scores per head.

// The kernel exists only on x86-64; elsewhere the operator is never created.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::math;
use tract_nnef::tract_core::ops::nn::{Softmax, SoftmaxKind};

/// Rows of queries per block.
const MR: usize = 6;
/// Head sizes the kernel takes: a multiple of 16 lanes, at most four registers.
const MAX_HEAD_DIM: usize = 64;

/// Whether this CPU runs the fused kernel (x86-64 with AVX-512 F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Fused self-attention: inputs `q`, `k`, `v` f32 `[S, heads, head_dim]`, output the context
/// `[S, heads, head_dim]`. Built at load by [`fuse_attention`]; never serialized.
#[derive(Debug, Clone)]
pub struct Attention {
    /// Multiplies the scores before the softmax (`1/√head_dim`).
    pub scale: f32,
}

impl PartialEq for Attention {
    fn eq(&self, other: &Self) -> bool {
        self.scale.to_bits() == other.scale.to_bits()
    }
}
impl Eq for Attention {}

impl Op for Attention {
    fn name(&self) -> StaticName {
        "KingletAttention".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("scale={}", self.scale)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Attention {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (q, k, v) = args_3!(inputs);
        let &[s, heads, head_dim] = q.shape() else {
            bail!("attention takes [S, heads, head_dim]")
        };
        ensure!(k.shape() == q.shape() && v.shape() == q.shape());
        ensure!(available() && head_dim % 16 == 0 && head_dim <= MAX_HEAD_DIM);
        let (qp, kp, vp) = (
            q.try_as_plain_ram()?,
            k.try_as_plain_ram()?,
            v.try_as_plain_ram()?,
        );
        let (q, k, v) = (
            qp.as_slice::<f32>()?,
            kp.as_slice::<f32>()?,
            vp.as_slice::<f32>()?,
        );
        // SAFETY: the kernel writes every element (each head's rows × head_dim).
        let mut out = unsafe { Tensor::uninitialized::<f32>(&[s, heads, head_dim])? };
        if s > 0 && heads > 0 {
            let mut plain = out.try_as_plain_ram_mut()?;
            let y = plain.as_slice_mut::<f32>()?;
            let pool = crate::engine::thread_pool();
            attention(
                q,
                k,
                v,
                y,
                [s, heads, head_dim],
                self.scale,
                pool.as_deref(),
            );
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Attention {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3, "attention takes q, k, v");
        ensure!(inputs.iter().all(|f| f.datum_type == f32::datum_type()));
        ensure!(
            inputs[0].rank() == 3,
            "attention takes [S, heads, head_dim]"
        );
        Ok(tvec!(f32::fact(inputs[0].shape.to_tvec())))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let shape = &inputs[0].shape;
        let macs = shape[0].clone() * shape[0].clone() * shape[1].clone() * shape[2].clone() * 2;
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs)))
    }

    as_op!();
}

/// Runs attention over `[s, heads, head_dim]` row-major `q`, `k`, `v` into `y`; heads are
/// shared out among the `pool`'s threads when the work is large enough.
fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    y: &mut [f32],
    shape: [usize; 3],
    scale: f32,
    pool: Option<&crate::workers::Workers>,
) {
    let [s, heads, head_dim] = shape;
    assert!(available() && head_dim % 16 == 0 && head_dim <= MAX_HEAD_DIM);
    assert!(q.len() == s * heads * head_dim && k.len() == q.len() && v.len() == q.len());
    assert_eq!(y.len(), q.len());
    #[cfg(target_arch = "x86_64")]
    {
        let out = crate::workers::SharedOut(y.as_mut_ptr());
        let run = |range: std::ops::Range<usize>| {
            let mut scratch = (Vec::new(), Vec::new());
            for h in range {
                let offset = h * head_dim;
                // SAFETY: AVX-512 F checked above; the pointers address head `h` of tensors of
                // `s` rows of `heads · head_dim`; heads write disjoint columns of `y`.
                unsafe {
                    let head = avx512::Head {
                        q: q.as_ptr().add(offset),
                        k: k.as_ptr().add(offset),
                        v: v.as_ptr().add(offset),
                        out: out.ptr().add(offset),
                        rows: s,
                        row_stride: heads * head_dim,
                        head_dim,
                        scale,
                    };
                    avx512::head(&head, &mut scratch.0, &mut scratch.1);
                }
            }
        };
        crate::workers::share_out(pool, heads, 2 * s * s * heads * head_dim, &run);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (q, k, v, y, scale, pool);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::MR;
    use crate::ops::fast_math::avx512::exp16;
    use std::arch::x86_64::*;

    /// One head: row `r` of q/k/v starts at `q + r · row_stride`.
    pub struct Head {
        pub q: *const f32,
        pub k: *const f32,
        pub v: *const f32,
        pub out: *mut f32,
        pub rows: usize,
        pub row_stride: usize,
        pub head_dim: usize,
        pub scale: f32,
    }

    /// `kt` and `p` are scratch, resized here.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn head(h: &Head, kt: &mut Vec<f32>, p: &mut Vec<f32>) {
        // keys transposed to [head_dim, padded rows], zero-padded to whole registers
        let padded = h.rows.div_ceil(16) * 16;
        kt.clear();
        kt.resize(h.head_dim * padded, 0.0);
        for t in 0..h.rows {
            let row = std::slice::from_raw_parts(h.k.add(t * h.row_stride), h.head_dim);
            for (d, &x) in row.iter().enumerate() {
                *kt.get_unchecked_mut(d * padded + t) = x;
            }
        }
        p.clear();
        p.resize(MR * padded, 0.0);
        for first in (0..h.rows).step_by(MR) {
            match h.head_dim / 16 {
                1 => block::<1>(h, first, kt, padded, p),
                2 => block::<2>(h, first, kt, padded, p),
                3 => block::<3>(h, first, kt, padded, p),
                _ => block::<4>(h, first, kt, padded, p),
            }
        }
    }

    /// Rows `first .. first + MR` (fewer at the end: the last row is computed again in the
    /// unused slots and not stored).
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const DC: usize>(
        h: &Head,
        first: usize,
        kt: &[f32],
        padded: usize,
        p: &mut [f32],
    ) {
        let live = (h.rows - first).min(MR);
        let q: [*const f32; MR] =
            std::array::from_fn(|i| h.q.add((first + i.min(live - 1)) * h.row_stride));
        let scale = _mm512_set1_ps(h.scale);
        let kt = kt.as_ptr();
        let pp = p.as_mut_ptr();
        // scores · scale, 32 then 16 keys at a time
        let mut t = 0;
        while t + 32 <= padded {
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            for d in 0..h.head_dim {
                let k0 = _mm512_loadu_ps(kt.add(d * padded + t));
                let k1 = _mm512_loadu_ps(kt.add(d * padded + t + 16));
                for i in 0..MR {
                    let b = _mm512_set1_ps(*q[i].add(d));
                    acc[i][0] = _mm512_fmadd_ps(b, k0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(b, k1, acc[i][1]);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(pp.add(i * padded + t), _mm512_mul_ps(acc[0], scale));
                _mm512_storeu_ps(pp.add(i * padded + t + 16), _mm512_mul_ps(acc[1], scale));
            }
            t += 32;
        }
        if t < padded {
            let mut acc = [_mm512_setzero_ps(); MR];
            for d in 0..h.head_dim {
                let k0 = _mm512_loadu_ps(kt.add(d * padded + t));
                for (i, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(*q[i].add(d)), k0, *acc);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(pp.add(i * padded + t), _mm512_mul_ps(*acc, scale));
            }
        }
        // softmax numerators in place; the 1/Σ is applied to the context
        let mut inv_sum = [0f32; MR];
        for (i, inv_sum) in inv_sum.iter_mut().enumerate().take(live) {
            let row = pp.add(i * padded);
            let mask = |t: usize| -> __mmask16 {
                let left = h.rows - t;
                if left >= 16 {
                    0xffff
                } else {
                    (1u16 << left) - 1
                }
            };
            let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
            for t in (0..h.rows).step_by(16) {
                let x = _mm512_mask_loadu_ps(max, mask(t), row.add(t));
                max = _mm512_max_ps(max, x);
            }
            let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
            let mut sum = _mm512_setzero_ps();
            for t in (0..h.rows).step_by(16) {
                let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(row.add(t)), max));
                _mm512_storeu_ps(row.add(t), e);
                sum = _mm512_mask_add_ps(sum, mask(t), sum, e);
            }
            *inv_sum = 1.0 / _mm512_reduce_add_ps(sum);
        }
        // context = numerators · V
        let mut acc = [[_mm512_setzero_ps(); DC]; MR];
        for t in 0..h.rows {
            let v = h.v.add(t * h.row_stride);
            let v: [__m512; DC] = std::array::from_fn(|c| _mm512_loadu_ps(v.add(16 * c)));
            for (i, acc) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_ps(*pp.add(i * padded + t));
                for c in 0..DC {
                    acc[c] = _mm512_fmadd_ps(b, v[c], acc[c]);
                }
            }
        }
        for (i, acc) in acc.iter().enumerate().take(live) {
            let out = h.out.add((first + i) * h.row_stride);
            let s = _mm512_set1_ps(inv_sum[i]);
            for (c, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out.add(16 * c), _mm512_mul_ps(*acc, s));
            }
        }
    }
}

/// Where the fused kernel runs, replaces each `einsum → × scale → softmax → einsum` attention
/// chain (as the exporter writes it, after declutter) by one [`Attention`]. Returns how many.
pub fn fuse_attention(model: &mut TypedModel) -> TractResult<usize> {
    if !available() {
        return Ok(0);
    }
    let mut fused = 0;
    for id in model.eval_order()? {
        let Some(found) = match_chain(model, id)? else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let inputs = patch.taps(model, &found.inputs)?;
        let node = model.node(id);
        let y = patch.wire_node(&node.name, Attention { scale: found.scale }, &inputs)?;
        patch.shunt_outside(model, id.into(), y[0])?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

struct Chain {
    inputs: [OutletId; 3],
    scale: f32,
}

/// Axis letters renamed in order of first appearance: `"mak,nak->amn"` and `"shd,thd->hst"`
/// both read `"abc,dbc->bad"`.
fn canonical(expr: &str) -> String {
    let mut seen = Vec::new();
    expr.chars()
        .map(|c| {
            if !c.is_ascii_alphabetic() {
                return c;
            }
            let at = seen.iter().position(|&s| s == c).unwrap_or_else(|| {
                seen.push(c);
                seen.len() - 1
            });
            (b'a' + at as u8) as char
        })
        .collect()
}

/// The chain ending at `id` (the context einsum), if every link has exactly the expected form
/// and feeds only the next link.
fn match_chain(model: &TypedModel, id: usize) -> TractResult<Option<Chain>> {
    let einsum_is = |node: &TypedNode, expr: &str| {
        node.op_as::<EinSum>().is_some_and(|e| {
            e.q_params.is_none()
                && e.operating_dt == f32::datum_type()
                && canonical(&e.axes.to_string()) == canonical(expr)
        })
    };
    let only_feeds =
        |outlet: OutletId| -> TractResult<bool> {
            Ok(model.outlet_successors(outlet).len() == 1
                && !model.output_outlets()?.contains(&outlet))
        };
    let context = model.node(id);
    if !einsum_is(context, "hst,thd->shd") || !only_feeds(context.inputs[0])? {
        return Ok(None);
    }
    let softmax = model.node(context.inputs[0].node);
    let Some(op) = softmax.op_as::<Softmax>() else {
        return Ok(None);
    };
    if *op.axes != [2] || op.quant_output_dt.is_some() || op.kind != SoftmaxKind::Softmax {
        return Ok(None);
    }
    let mul = model.node(softmax.inputs[0].node);
    if !mul
        .op_as::<TypedBinOp>()
        .is_some_and(|b| b.0.is::<math::Mul>())
        || !only_feeds(softmax.inputs[0])?
    {
        return Ok(None);
    }
    let facts = model.node_input_facts(mul.id)?;
    let Some((slot, scale)) = (0..2).find_map(|s| {
        let k = facts[s].konst.as_ref()?;
        (k.len() == 1 && k.datum_type() == f32::datum_type()).then(|| {
            Some((
                s,
                *k.try_as_plain_ram().ok()?.as_slice::<f32>().ok()?.first()?,
            ))
        })?
    }) else {
        return Ok(None);
    };
    let scores = model.node(mul.inputs[1 - slot].node);
    if !einsum_is(scores, "shd,thd->hst") || !only_feeds(mul.inputs[1 - slot])? {
        return Ok(None);
    }
    let [q, k] = [scores.inputs[0], scores.inputs[1]];
    let v = context.inputs[1];
    let (qf, kf, vf) = (
        model.outlet_fact(q)?,
        model.outlet_fact(k)?,
        model.outlet_fact(v)?,
    );
    let head_dim = qf.shape[2].to_usize().ok();
    let same = qf.shape == kf.shape && qf.shape == vf.shape;
    let f32s = [qf, kf, vf]
        .iter()
        .all(|f| f.datum_type == f32::datum_type());
    match head_dim {
        Some(d) if same && f32s && d % 16 == 0 && d <= MAX_HEAD_DIM => Ok(Some(Chain {
            inputs: [q, k, v],
            scale,
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain exactly as the exporter writes it, for `rows` tokens.
    fn attention_graph(heads: usize, head_dim: usize) -> TractResult<TypedModel> {
        let mut model = TypedModel::default();
        let s = model.symbols.sym("S");
        let fact = f32::fact(dims!(s, heads, head_dim));
        let q = model.add_source("q", fact.clone())?;
        let k = model.add_source("k", fact.clone())?;
        let v = model.add_source("v", fact)?;
        let scores = model.wire_node(
            "scores",
            EinSum::new("shd,thd->hst".parse()?, f32::datum_type()),
            &[q, k],
        )?;
        let scale = model.add_const("scale", tensor3(&[[[1.0 / (head_dim as f32).sqrt()]]]))?;
        let scaled = model.wire_node("scaled", math::mul(), &[scores[0], scale])?;
        let probs = model.wire_node(
            "softmax",
            Softmax::new(tvec!(2), None, SoftmaxKind::Softmax),
            &scaled,
        )?;
        let context = model.wire_node(
            "context",
            EinSum::new("hst,thd->shd".parse()?, f32::datum_type()),
            &[probs[0], v],
        )?;
        model.select_output_outlets(&context)?;
        model.into_decluttered()
    }

    fn run(model: TypedModel, inputs: &[Tensor]) -> TractResult<Tensor> {
        let plan = model.into_optimized()?.into_runnable()?;
        let out = plan.run(inputs.iter().cloned().map(|t| t.into_tvalue()).collect())?;
        Ok(out[0].clone().into_tensor())
    }

    #[test]
    fn fused_attention_matches_tract_chain_for_every_length() -> TractResult<()> {
        if !available() {
            eprintln!("no AVX-512 F here: the fused attention kernel is not used on this CPU");
            return Ok(());
        }
        let mut seed = 7u32;
        let mut random = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 * 6.0 - 3.0
        };
        let pool = crate::workers::Workers::start(2)?;
        for (heads, head_dim) in [(12, 32), (2, 64), (3, 16), (2, 48)] {
            let reference = attention_graph(heads, head_dim)?;
            let mut fused = reference.clone();
            assert_eq!(fuse_attention(&mut fused)?, 1);
            assert!(fused.nodes().iter().any(|n| n.op_is::<Attention>()));
            for rows in [1, 5, 6, 7, 16, 17, 33, 128] {
                let inputs: Vec<Tensor> = (0..3)
                    .map(|_| {
                        let data: Vec<f32> =
                            (0..rows * heads * head_dim).map(|_| random()).collect();
                        Tensor::from_shape(&[rows, heads, head_dim], &data)
                    })
                    .collect::<TractResult<_>>()?;
                let want = run(reference.clone(), &inputs)?;
                let got = run(fused.clone(), &inputs)?;
                // three threads, heads shared out: the same bits
                let plain: Vec<_> = inputs
                    .iter()
                    .map(|t| t.try_as_plain_ram())
                    .collect::<TractResult<_>>()?;
                let mut threaded = vec![f32::NAN; rows * heads * head_dim];
                attention(
                    plain[0].as_slice::<f32>()?,
                    plain[1].as_slice::<f32>()?,
                    plain[2].as_slice::<f32>()?,
                    &mut threaded,
                    [rows, heads, head_dim],
                    1.0 / (head_dim as f32).sqrt(),
                    Some(&pool),
                );
                let single = got.try_as_plain_ram()?;
                assert_eq!(single.as_slice::<f32>()?, &threaded[..], "{rows} rows");
                assert_eq!(got.shape(), want.shape());
                let (got, want) = (got.try_as_plain_ram()?, want.try_as_plain_ram()?);
                let (got, want) = (got.as_slice::<f32>()?, want.as_slice::<f32>()?);
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                        "{rows} rows: {g} vs {w}"
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn chain_with_another_consumer_of_the_scores_is_left_alone() -> TractResult<()> {
        let mut model = attention_graph(2, 16)?;
        let scores = model.node_by_name("scores")?.id;
        let mut outputs = model.output_outlets()?.to_vec();
        outputs.push(scores.into());
        model.select_output_outlets(&outputs)?;
        assert_eq!(fuse_attention(&mut model)?, 0);
        Ok(())
    }
}
