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
//! At load, where [`crate::kernels`] has a fused attention kernel for this CPU (AVX-512 F
//! today), [`fuse_attention`] replaces that chain by [`Attention`]; elsewhere the graph runs as
//! stored, on tract's kernels. tract would run it as two packed matrix products around a softmax
//! over a materialized `[heads, S, S]` tensor; the fused form never materializes more than a
//! few rows of scores per head. Queries may have fewer rows than keys and values (the graph's
//! last layer, pruned to the rows the head reads).

use crate::kernels::math::{AttentionKernel, Head};
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::array::Slice;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::ops::math;
use tract_nnef::tract_core::ops::nn::{Softmax, SoftmaxKind};

/// The fused kernel for this CPU, if any.
fn kernel() -> Option<&'static AttentionKernel> {
    crate::kernels::native().attention
}

/// Whether this CPU runs attention as one fused kinglet operator.
pub fn available() -> bool {
    kernel().is_some()
}

/// Fused self-attention: inputs `q` f32 `[Sq, heads, head_dim]`, `k`, `v` `[Sk, heads,
/// head_dim]`, output the context `[Sq, heads, head_dim]`. Built at load by [`fuse_attention`]; never serialized.
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
        let kv_rows = k.shape().first().copied().unwrap_or(0);
        ensure!(k.shape() == [kv_rows, heads, head_dim] && v.shape() == k.shape());
        let kernel = kernel().context("no fused attention kernel on this CPU")?;
        ensure!(kernel.takes(head_dim), "head size {head_dim}");
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
        if s > 0 && kv_rows > 0 && heads > 0 {
            let mut plain = out.try_as_plain_ram_mut()?;
            let y = plain.as_slice_mut::<f32>()?;
            let pool = crate::workers::pool();
            attention(
                kernel,
                (q, k, v),
                y,
                [s, kv_rows, heads, head_dim],
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
        let macs =
            shape[0].clone() * inputs[1].shape[0].clone() * shape[1].clone() * shape[2].clone() * 2;
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs)))
    }

    as_op!();
}

/// Runs attention with `kernel` over row-major `q` `[s, heads, head_dim]` and `k`, `v`
/// `[kv_rows, heads, head_dim]` into `y`; heads are shared out among the `pool`'s threads when
/// the work is large enough.
pub fn attention(
    kernel: &AttentionKernel,
    (q, k, v): (&[f32], &[f32], &[f32]),
    y: &mut [f32],
    shape: [usize; 4],
    scale: f32,
    pool: Option<&crate::workers::Workers>,
) {
    let [s, kv_rows, heads, head_dim] = shape;
    assert!(kernel.takes(head_dim));
    assert!(q.len() == s * heads * head_dim && y.len() == q.len());
    assert!(k.len() == kv_rows * heads * head_dim && v.len() == k.len());
    let out = crate::workers::SharedOut(y.as_mut_ptr());
    let run = |range: std::ops::Range<usize>| {
        let mut scratch = (Vec::new(), Vec::new());
        for h in range {
            let offset = h * head_dim;
            let head = Head {
                // SAFETY (pointer arithmetic): head `h` of tensors of `s` / `kv_rows` rows of
                // `heads · head_dim`, within the sizes asserted above.
                q: unsafe { q.as_ptr().add(offset) },
                k: unsafe { k.as_ptr().add(offset) },
                v: unsafe { v.as_ptr().add(offset) },
                out: unsafe { out.ptr().add(offset) },
                q_rows: s,
                kv_rows,
                row_stride: heads * head_dim,
                head_dim,
                scale,
            };
            // SAFETY: `head` addresses the tensors asserted above; heads write disjoint
            // columns of `y`.
            unsafe { (kernel.head)(&head, &mut scratch.0, &mut scratch.1) };
        }
    };
    crate::workers::share_out(pool, heads, 2 * s * kv_rows * heads * head_dim, &run);
}

/// Where the fused kernel runs, replaces each `einsum → × scale → softmax → einsum` attention
/// chain (as the exporter writes it, after declutter) by one [`Attention`]. Returns how many.
pub fn fuse_attention(model: &mut TypedModel) -> TractResult<usize> {
    let Some(kernel) = kernel() else {
        return Ok(0);
    };
    let mut fused = 0;
    for id in model.eval_order()? {
        let Some(found) = match_chain(model, id, kernel)? else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let mut inputs = patch.taps(model, &found.inputs)?;
        let node = model.node(id);
        if let Some((start, end)) = found.q_rows {
            // tract pushes this slice on up through the query projection when it optimizes
            let name = format!("{}.query_rows", node.name);
            inputs[0] = patch.wire_node(name, Slice::new(0, start, end), &[inputs[0]])?[0];
        }
        let mut y = patch.wire_node(&node.name, Attention { scale: found.scale }, &inputs)?;
        if found.drops_row_axis {
            let name = format!("{}.drop_row_axis", node.name);
            y = patch.wire_node(name, AxisOp::Rm(0), &y)?;
        }
        patch.shunt_outside(model, id.into(), y[0])?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

struct Chain {
    inputs: [OutletId; 3],
    scale: f32,
    /// The query rows the context is read for, when the graph slices the probabilities.
    q_rows: Option<(TDim, TDim)>,
    /// The context einsum reads one query row and drops its axis (`hst,thd->hd`).
    drops_row_axis: bool,
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
fn match_chain(
    model: &TypedModel,
    id: usize,
    kernel: &AttentionKernel,
) -> TractResult<Option<Chain>> {
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
    let drops_row_axis = einsum_is(context, "hst,thd->hd");
    if !(einsum_is(context, "hst,thd->shd") || drops_row_axis) || !only_feeds(context.inputs[0])? {
        return Ok(None);
    }
    // a slice of the query rows (the `[CLS]` row pushed up from the head) may sit between the
    // softmax and the context
    let mut probs = context.inputs[0];
    let mut q_rows = None;
    if let Some(slice) = model.node(probs.node).op_as::<Slice>() {
        if slice.axis != 1 {
            return Ok(None);
        }
        if drops_row_axis && (slice.end.clone() - slice.start.clone()).to_i64().ok() != Some(1) {
            return Ok(None);
        }
        q_rows = Some((slice.start.clone(), slice.end.clone()));
        probs = model.node(probs.node).inputs[0];
        if !only_feeds(probs)? {
            return Ok(None);
        }
    }
    if drops_row_axis && q_rows.is_none() {
        return Ok(None);
    }
    let softmax = model.node(probs.node);
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
    let ranks = qf.rank() == 3 && kf.rank() == 3;
    let same = ranks && qf.shape[1..] == kf.shape[1..] && kf.shape == vf.shape;
    let f32s = [qf, kf, vf]
        .iter()
        .all(|f| f.datum_type == f32::datum_type());
    match head_dim {
        Some(d) if same && f32s && kernel.takes(d) => Ok(Some(Chain {
            inputs: [q, k, v],
            scale,
            q_rows,
            drops_row_axis,
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
            eprintln!("no fused attention kernel on this CPU");
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
                    kernel().unwrap(),
                    (
                        plain[0].as_slice::<f32>()?,
                        plain[1].as_slice::<f32>()?,
                        plain[2].as_slice::<f32>()?,
                    ),
                    &mut threaded,
                    [rows, rows, heads, head_dim],
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
