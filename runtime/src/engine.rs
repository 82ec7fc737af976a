//! Turning a bundle's NNEF graph into a runnable tract plan, and running it.

use crate::error::{Error, Result};
use tract_nnef::prelude::*;

/// Makes every loop (`Scan`: LSTM, GRU …) start from its initial state on every run. tract
/// otherwise carries a constant-seeded loop state from one run to the next (for streaming
/// audio); a kinglet inference is one self-contained window, so the carry would make an
/// answer depend on the previous request.
pub fn one_shot_scans(model: &mut TypedModel) {
    use tract_nnef::tract_core::ops::scan::Scan;
    for node in model.nodes_mut() {
        if let Some(scan) = node.op_as_mut::<Scan>() {
            scan.reset_every_turn = true;
            one_shot_scans(&mut scan.body);
        }
    }
}

/// f16 is a storage precision in kinglet: an f16 bundle's weights (half the bytes of f32) are
/// widened once at load and the graph computes in f32. None of the CPUs kinglet targets has
/// f16 arithmetic that tract's kernels use across the whole graph (x86, armv7, Cortex-A53/A72
/// have none; emulated, SST-2 rows ran ~15× slower than in f32), and f32 arithmetic on f16-rounded
/// weights is closer to the float model than f16 arithmetic would be.
pub fn compute_f16_in_f32(model: &mut TypedModel) -> Result<()> {
    let f16 = DatumType::F16;
    let has_f16 = model
        .nodes()
        .iter()
        .any(|n| n.outputs.iter().any(|o| o.fact.datum_type == f16));
    if has_f16 {
        let widen = tract_nnef::tract_core::transform::get_transform("f16_to_f32")
            .map_err(Error::inference)?
            .ok_or_else(|| Error::Inference("tract has no f16_to_f32 transform".into()))?;
        widen.transform(model).map_err(Error::inference)?;
        widen_constants(model).map_err(Error::inference)?;
    }
    Ok(())
}

/// Replaces every cast of a constant (the f16 weights and embedding table the widening left
/// behind a `Cast`) by the widened constant, so it is cast once at load, not on every run.
fn widen_constants(model: &mut TypedModel) -> TractResult<()> {
    use tract_nnef::tract_core::ops::{cast::Cast, konst::Const};
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(cast) = node.op_as::<Cast>() else {
            continue;
        };
        let Some(konst) = model.node(node.inputs[0].node).op_as::<Const>() else {
            continue;
        };
        if konst.exotic_fact().is_some() {
            continue;
        }
        let widened = konst.val().cast_to_dt(cast.to)?.into_owned();
        let mut patch = TypedModelPatch::new("widen constant");
        let wire = patch.add_const(format!("{}.widened", node.name), widened)?;
        patch.shunt_outside(model, id.into(), wire)?;
        patch.apply(model)?;
    }
    Ok(())
}

/// Runs kinglet's own kernels (int8 linear layers, attention) on `threads` threads from now on
/// (1: the calling thread only, the edge default); see `workers::set_threads`.
pub fn set_threads(threads: usize) -> Result<()> {
    crate::workers::set_threads(threads)
        .map_err(|e| Error::Inference(format!("cannot start {threads} threads: {e}")))
}

/// An optimized, runnable graph with its reusable execution state.
#[derive(Debug)]
pub struct Engine {
    state: TypedSimpleState,
}

impl Engine {
    /// Parses an NNEF tar (as stored in a bundle), optimizes it for this CPU and prepares a plan.
    pub fn from_nnef_tar(graph: &[u8]) -> Result<Engine> {
        crate::graph_check::check_nnef_tar(&mut std::io::Cursor::new(graph), 0, graph.len() as u64)
            .map_err(|e| Error::Inference(format!("cannot load graph: {e}")))?;
        let model = crate::nnef_ext::nnef()
            .model_for_read(&mut std::io::Cursor::new(graph))
            .map_err(|e| Error::Inference(format!("cannot load graph: {e:#}")))?;
        Engine::from_typed(model)
    }

    /// Optimizes an in-memory decluttered model and prepares a plan (used by the exporter to
    /// run the graph it just built, exactly as the runtime will).
    pub fn from_typed(mut model: TypedModel) -> Result<Engine> {
        one_shot_scans(&mut model);
        compute_f16_in_f32(&mut model)?;
        crate::ops::moving_sum::rewrite_sum_pools(&mut model).map_err(Error::inference)?;
        // after declutter, so that no-op casts the NNEF reader adds do not hide the patterns
        model = model.into_decluttered().map_err(Error::inference)?;
        crate::ops::linear_i8::fuse_epilogues(&mut model).map_err(Error::inference)?;
        crate::ops::attention::fuse_attention(&mut model).map_err(Error::inference)?;
        crate::ops::layer_norm::fuse_layer_norm(&mut model).map_err(Error::inference)?;
        crate::ops::time_linear_f32::fuse_time_linear_f32(&mut model).map_err(Error::inference)?;
        crate::ops::linear_f32::fuse_linear_f32(&mut model).map_err(Error::inference)?;
        crate::ops::gelu::use_kinglet_gelu(&mut model).map_err(Error::inference)?;
        let plan = model.into_optimized().map_err(Error::inference)?;
        let runnable = plan.into_runnable().map_err(Error::inference)?;
        let state = runnable.spawn().map_err(Error::inference)?;
        Ok(Engine { state })
    }

    /// Runs the graph on one input tensor and returns its first output flattened and cast to f32.
    /// A graph with more inputs (a text model's `token_type_ids`) gets zeros of the same shape
    /// for them: one segment.
    pub fn run_f32(&mut self, input: Tensor) -> Result<Vec<f32>> {
        let inputs = self.with_zeros(input)?;
        self.run_f32_inputs(inputs)
    }

    /// Runs the graph on all of its inputs, in the graph's order.
    pub fn run_f32_inputs(&mut self, inputs: TVec<TValue>) -> Result<Vec<f32>> {
        let outputs = self.state.run(inputs).map_err(Error::inference)?;
        let output = outputs
            .first()
            .ok_or_else(|| Error::Inference("graph has no output".into()))?;
        let output = output.cast_to::<f32>().map_err(Error::inference)?;
        // a plain tensor is one contiguous slice: copy it whole, not element by element
        let plain = output.try_as_plain_ram().map_err(Error::inference)?;
        Ok(plain.as_slice::<f32>().map_err(Error::inference)?.to_vec())
    }

    /// Names of the matrix-multiplication kernels picked for this CPU, with how many
    /// matmuls use each (e.g. `avx2_mmm_i32_8x8`, `arm64simd_mmm_i32_8x8`, or kinglet's own
    /// fused int8 kernels, e.g. `kinglet_avx512vnni_i32_6x64`).
    pub fn matmul_kernels(&self) -> Vec<(String, usize)> {
        use crate::ops::linear_i8::LinearI8Packed;
        use tract_nnef::tract_core::ops::matmul::optimized::OptMatMul;
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for node in self.model().nodes() {
            if let Some(op) = node.op_as::<LinearI8Packed>() {
                *counts.entry(op.kernel_name().to_string()).or_default() += 1;
            }
            if let Some(op) = node.op_as::<crate::ops::linear_f32::LinearF32Packed>() {
                *counts.entry(op.kernel_name().to_string()).or_default() += 1;
            }
            if let Some(op) = node.op_as::<crate::ops::time_linear_f32::TimeLinearF32Packed>() {
                *counts.entry(op.kernel_name().to_string()).or_default() += 1;
            }
            if let Some(op) = node.op_as::<OptMatMul>() {
                for mmm in &op.mmm {
                    *counts.entry(mmm.name().to_string()).or_default() += 1;
                }
            }
        }
        counts.into_iter().collect()
    }

    /// Runs once, timing every node; returns `(op name, total seconds, node count)` per
    /// operator kind, slowest first.
    pub fn profile(&mut self, input: Tensor) -> Result<Vec<(String, f64, usize)>> {
        use std::collections::HashMap;
        let mut times: HashMap<String, (f64, usize)> = HashMap::new();
        self.state
            .run_plan_with_eval(self.with_zeros(input)?, |ctx, state, node, inputs| {
                let started = std::time::Instant::now();
                let out = tract_nnef::tract_core::plan::eval(ctx, state, node, inputs);
                let entry = times.entry(node.op().name().to_string()).or_default();
                entry.0 += started.elapsed().as_secs_f64();
                entry.1 += 1;
                out
            })
            .map_err(Error::inference)?;
        let mut rows: Vec<(String, f64, usize)> =
            times.into_iter().map(|(k, (t, n))| (k, t, n)).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(rows)
    }

    /// Runs once and lists every node output: `(node name, op name, shape, bytes)`, largest
    /// first.
    pub fn intermediate_tensors(&mut self, input: Tensor) -> Result<Vec<TensorSize>> {
        let mut sizes = Vec::new();
        self.state
            .run_plan_with_eval(self.with_zeros(input)?, |ctx, state, node, inputs| {
                let out = tract_nnef::tract_core::plan::eval(ctx, state, node, inputs);
                if let Ok(outputs) = &out {
                    for t in outputs.iter() {
                        let bytes = if t.datum_type().is_copy() {
                            t.len() * t.datum_type().size_of()
                        } else {
                            0
                        };
                        sizes.push(TensorSize {
                            node: node.name.clone(),
                            op: node.op().name().to_string(),
                            shape: format!("{:?}{:?}", t.shape(), t.datum_type()),
                            bytes: bytes as u64,
                        });
                    }
                }
                out
            })
            .map_err(Error::inference)?;
        sizes.sort_by_key(|t| std::cmp::Reverse(t.bytes));
        Ok(sizes)
    }

    /// The optimized model, for inspection.
    pub fn model(&self) -> &TypedModel {
        self.state.model()
    }

    /// How many inputs the graph takes: 1, or 2 for a text model with `token_type_ids`.
    pub fn input_count(&self) -> usize {
        self.model().inputs.len()
    }

    /// `input` and, for every further input of the graph, zeros of its shape and type.
    fn with_zeros(&self, input: Tensor) -> Result<TVec<TValue>> {
        let mut inputs = tvec![];
        for _ in 1..self.input_count() {
            let zeros =
                Tensor::zero_dt(input.datum_type(), input.shape()).map_err(Error::inference)?;
            inputs.push(zeros.into_tvalue());
        }
        inputs.insert(0, input.into_tvalue());
        Ok(inputs)
    }

    /// Rows of the largest constant table a `Gather` looks up in (a text model's word
    /// embeddings), when the graph has one: every token id fed to the graph must be below it.
    pub fn gather_rows(&self) -> Option<usize> {
        self.gather_tables(|_| true).max()
    }

    /// Rows of the smallest constant table a `Gather` looks up with the graph's input
    /// `input` (through reshapes only): every value fed there must be below it.
    pub fn input_rows(&self, input: usize) -> Option<usize> {
        let model = self.model();
        let source = model.inputs.get(input)?.node;
        self.gather_tables(|mut indices: OutletId| loop {
            if indices.node == source {
                return true;
            }
            let node = model.node(indices.node);
            let reshape = node.op_is::<tract_nnef::tract_core::ops::change_axes::AxisOp>()
                || node.op_is::<tract_nnef::tract_core::ops::cast::Cast>();
            if !reshape || node.inputs.len() != 1 {
                return false;
            }
            indices = node.inputs[0];
        })
        .min()
    }

    /// Rows of every constant table a `Gather` looks up in with indices that `keep`.
    fn gather_tables<'a>(
        &'a self,
        keep: impl Fn(OutletId) -> bool + 'a,
    ) -> impl Iterator<Item = usize> + 'a {
        let model = self.model();
        model
            .nodes()
            .iter()
            .filter(|node| node.op.name() == "Gather" && node.inputs.len() == 2)
            .filter(move |node| keep(node.inputs[1]))
            .filter_map(move |node| {
                let table = model.outlet_fact(node.inputs[0]).ok()?;
                table.konst.as_ref()?;
                tract_nnef::tract_core::internal::DimLike::to_usize(table.shape.iter().next()?).ok()
            })
    }
}

/// One intermediate tensor of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorSize {
    /// Node that produced it.
    pub node: String,
    /// Its operator.
    pub op: String,
    /// Shape and element type, e.g. `[1, 12, 128, 128]F32`.
    pub shape: String,
    /// Bytes of its elements.
    pub bytes: u64,
}
