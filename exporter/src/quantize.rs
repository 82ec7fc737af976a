//! Weight quantization: the numeric formats a bundle can store, and the per-channel int8 and
//! block-q4 encodings of weight matrices.

use crate::error::{ExportError, Result};
use tract_nnef::internal::*;
use tract_nnef::tract_core::tract_linalg::block_quant::{
    BlockQuant, BlockQuantFact, BlockQuantStorage, Q4_0,
};

/// Numeric format of a bundle's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Everything in f32.
    F32,
    /// Everything (weights and compute) in f16, by tract's `f32_to_f16` transform.
    F16,
    /// int8 weights, symmetric per output channel, for every matmul and the embedding tables;
    /// activations quantized per row at run time; i8×i8→i32 matmuls.
    Int8,
    /// Q4_0 block quantization (32 weights + one f16 scale per block) of every matmul weight
    /// and of the token embedding table; f32 compute.
    Q4,
}

impl Precision {
    /// Name used on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
            Precision::Q4 => "q4",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            "int8" | "i8" => Ok(Precision::Int8),
            "q4" => Ok(Precision::Q4),
            other => Err(ExportError::Unsupported(format!(
                "precision `{other}` (f32, f16, int8, q4)"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Moves the axes of `x`, named `from`, into the order `to` (a permutation of `from`).
fn wire_permutation(
    patch: &mut TypedModelPatch,
    name: &str,
    mut x: OutletId,
    from: &[char],
    to: &[char],
) -> TractResult<OutletId> {
    let mut cur = from.to_vec();
    for (i, a) in to.iter().enumerate() {
        let at = cur.iter().position(|c| c == a).expect("a permutation");
        if at != i {
            x = patch.wire_node(format!("{name}.move{i}"), AxisOp::Move(at, i), &[x])?[0];
            let c = cur.remove(at);
            cur.insert(i, c);
        }
    }
    Ok(x)
}

/// Reshapes `x` to `dims` (nothing when it has them already).
fn wire_reshape(
    patch: &mut TypedModelPatch,
    name: &str,
    x: OutletId,
    dims: &[usize],
) -> TractResult<OutletId> {
    let from = patch.outlet_fact(x)?.shape.to_tvec();
    let to: TVec<TDim> = dims.iter().map(|d| d.to_dim()).collect();
    if from == to {
        return Ok(x);
    }
    Ok(patch.wire_node(name, AxisOp::Reshape(0, from, to), &[x])?[0])
}

/// Symmetric int8 quantization of each row of a `[rows, cols]` f32 matrix: returns the i8
/// matrix and one f32 scale per row (`w ≈ q · scale`).
pub fn int8_per_row(w: &Tensor) -> Result<(Tensor, Tensor)> {
    kinglet_runtime::ops::quantize_rows::int8_per_row(w).map_err(ExportError::graph)
}

/// Q4_0 block quantization of a `[rows, cols]` f32 matrix (cols a multiple of 32), as a tensor
/// tract's Gather and matmuls read directly.
pub fn q4_blocks(w: &Tensor) -> Result<(Tensor, Box<BlockQuantFact>)> {
    let (rows, cols) = match w.shape() {
        [r, c] => (*r, *c),
        other => {
            return Err(ExportError::Graph(format!(
                "q4 quantization of a rank-{} tensor",
                other.len()
            )))
        }
    };
    if cols % Q4_0.block_len() != 0 {
        return Err(ExportError::Unsupported(format!(
            "q4 needs rows whose length is a multiple of {}; this model has {cols}",
            Q4_0.block_len()
        )));
    }
    let plain = w.try_as_plain_ram().map_err(ExportError::graph)?;
    let blob = Q4_0
        .quant_f32(plain.as_slice::<f32>().map_err(ExportError::graph)?)
        .map_err(ExportError::graph)?;
    let storage = BlockQuantStorage::new(Box::new(Q4_0), rows, cols, Arc::new(blob))
        .map_err(ExportError::graph)?;
    let fact = Box::new(BlockQuantFact::new(Box::new(Q4_0), tvec!(rows, cols)));
    let tensor = storage.into_tensor_with_shape(f32::datum_type(), &[rows, cols]);
    Ok((tensor, fact))
}

/// Applies the whole-graph precision transforms (f16 and q4 matmul weights) to a decluttered
/// f32 graph; int8 is built in place by the graph builder and needs nothing here.
pub fn transform_graph(model: TypedModel, precision: Precision) -> Result<TypedModel> {
    let name = match precision {
        Precision::F32 | Precision::Int8 => return Ok(model),
        Precision::F16 => "f32_to_f16",
        Precision::Q4 => "block_quant",
    };
    let mut model = model;
    if precision == Precision::F16 {
        // kinglet's own operators (fused LSTM and GRU layers) compute in f32: they keep f32
        // inputs, their weights are stored in f16 and cast at load like every other
        use tract_nnef::tract_core::floats::FloatPrecisionTranslator;
        use tract_nnef::tract_core::transform::ModelTransform;
        FloatPrecisionTranslator::with_filter(DatumType::F32, DatumType::F16, |node| {
            !node.op.name().starts_with("Kinglet")
        })
        .transform(&mut model)
        .map_err(ExportError::graph)?;
    } else {
        let transform = tract_nnef::tract_core::transform::get_transform(name)
            .map_err(ExportError::graph)?
            .ok_or_else(|| ExportError::Graph(format!("tract has no `{name}` transform")))?;
        transform
            .transform(&mut model)
            .map_err(ExportError::graph)?;
    }
    keep_f32_inputs(&mut model).map_err(ExportError::graph)?;
    model.into_decluttered().map_err(ExportError::graph)
}

/// The f16 transform turns f32 graph inputs into f16 ones; a bundle's interface stays f32 at
/// every precision (the runtime feeds normalized f32 windows), so each such input is read as f32
/// again and cast to f16 inside the graph.
fn keep_f32_inputs(model: &mut TypedModel) -> TractResult<()> {
    use tract_nnef::tract_core::ops::cast::cast;
    use tract_nnef::tract_core::ops::source::TypedSource;
    for input in model.input_outlets()?.to_vec() {
        let fact = model.outlet_fact(input)?.clone();
        if fact.datum_type != f16::datum_type() {
            continue;
        }
        let successors = model.outlet_successors(input).to_vec();
        let f32_fact = f32::fact(fact.shape.clone());
        model.node_mut(input.node).op = Box::new(TypedSource::new(f32_fact.clone()));
        model.set_outlet_fact(input, f32_fact)?;
        let name = format!("{}.f16", model.node(input.node).name);
        let half = model.wire_node(name, cast(f16::datum_type()), &[input])?[0];
        for inlet in successors {
            model.add_edge(half, inlet)?;
        }
    }
    Ok(())
}

/// Rewrites every top-level f32 matmul of an imported graph whose weight is a constant
/// matrix into the int8 form the transformer builder uses: activations quantized per row at
/// run time, weights per output channel, i8×i8→i32, then both scales. The contracted axes must
/// be the activation's trailing ones (several when tract folded a flatten into the product, then
/// reshaped around it); other matmuls (and those inside loops) stay f32.
pub fn int8_matmul_weights(mut model: TypedModel) -> Result<TypedModel> {
    use kinglet_runtime::ops::linear_i8::wire_linear_i8;
    use tract_nnef::tract_core::ops::einsum::EinSum;

    let candidates: Vec<usize> = model
        .eval_order()
        .map_err(ExportError::graph)?
        .into_iter()
        .filter(|&id| {
            model
                .node(id)
                .op_as::<EinSum>()
                .is_some_and(|op| op.q_params.is_none())
        })
        .collect();
    for id in candidates {
        let node = model.node(id).clone();
        let op = node.op_as::<EinSum>().expect("filtered").clone();
        let facts: Vec<TypedFact> = model
            .node_input_facts(id)
            .map_err(ExportError::graph)?
            .into_iter()
            .cloned()
            .collect();
        if node.inputs.len() != 2 || facts.iter().any(|f| f.datum_type != f32::datum_type()) {
            continue;
        }
        let (w_slot, x_slot) = match (facts[0].konst.is_some(), facts[1].konst.is_some()) {
            (false, true) => (1, 0),
            (true, false) => (0, 1),
            _ => continue,
        };
        let w = facts[w_slot].konst.clone().expect("const");
        let chars = |io| op.axes.axes(io).map(|a| a.repr).collect::<Vec<char>>();
        let (x_axes, w_axes, out_axes) = (
            chars(InOut::In(x_slot)),
            chars(InOut::In(w_slot)),
            chars(InOut::Out(0)),
        );
        // n: the weight's one axis the activation lacks; the other weight axes are contracted
        let outer: Vec<char> = w_axes
            .iter()
            .filter(|a| !x_axes.contains(a))
            .copied()
            .collect();
        let [n] = outer[..] else {
            continue;
        };
        let contracted: Vec<char> = w_axes.iter().filter(|&&a| a != n).copied().collect();
        if contracted.is_empty()
            || !out_axes.contains(&n)
            || contracted
                .iter()
                .any(|a| out_axes.contains(a) || !x_axes.contains(a))
        {
            continue;
        }
        let rest: Vec<char> = x_axes
            .iter()
            .filter(|a| !contracted.contains(a))
            .copied()
            .collect();
        let mut rest_n = rest.clone();
        rest_n.push(n);
        let x_shape = facts[x_slot].shape.to_tvec();
        let out_shape = node.outputs[0].fact.shape.to_tvec();
        let simple =
            contracted.len() == 1 && x_axes.last() == Some(&contracted[0]) && out_axes == rest_n;
        let dim = |axes: &[char], dims: &[TDim], a: char| {
            axes.iter()
                .position(|&c| c == a)
                .and_then(|i| dims[i].to_usize().ok())
        };
        // otherwise: move the contracted axes last, flatten to rows, and back to the output's
        // axes (which may drop or add axes of size 1), on concrete shapes
        let kept: Vec<char> = rest
            .iter()
            .copied()
            .filter(|a| out_axes.contains(a))
            .collect();
        if !simple {
            let concrete = |dims: &[TDim]| dims.iter().all(|d| d.to_usize().is_ok());
            let dropped_ok = rest
                .iter()
                .all(|&a| out_axes.contains(&a) || dim(&x_axes, &x_shape, a) == Some(1));
            let added_ok = out_axes
                .iter()
                .all(|&a| a == n || rest.contains(&a) || dim(&out_axes, &out_shape, a) == Some(1));
            if !concrete(&x_shape) || !concrete(&out_shape) || !dropped_ok || !added_ok {
                continue;
            }
        }
        let n_pos = w_axes
            .iter()
            .position(|&a| a == n)
            .expect("n is a weight axis");
        let mut perm = vec![n_pos];
        perm.extend((0..w_axes.len()).filter(|&i| i != n_pos));
        let w_n = w.shape()[n_pos];
        let w_nk = (*w)
            .clone()
            .permute_axes(&perm)
            .and_then(|t| t.into_shape(&[w_n, w.len() / w_n]))
            .map_err(ExportError::graph)?;
        let mut patch = TypedModelPatch::default();
        let graph = |e| ExportError::graph(e);
        let mut xin = patch
            .tap_model(&model, node.inputs[x_slot])
            .map_err(graph)?;
        if !simple {
            let mut order = rest.clone();
            order.extend(&contracted);
            xin = wire_permutation(&mut patch, &node.name, xin, &x_axes, &order).map_err(graph)?;
            let k = w_nk.shape()[1];
            let m = rest
                .iter()
                .map(|&a| dim(&x_axes, &x_shape, a).unwrap_or(1))
                .product::<usize>();
            xin = wire_reshape(&mut patch, &format!("{}.rows", node.name), xin, &[m, k])
                .map_err(graph)?;
        }
        let mut y = wire_linear_i8(&mut patch, &node.name, xin, &w_nk, None).map_err(graph)?;
        if !simple {
            let mut dims: Vec<usize> = kept
                .iter()
                .map(|&a| dim(&x_axes, &x_shape, a).unwrap_or(1))
                .collect();
            dims.push(w_n);
            y = wire_reshape(&mut patch, &format!("{}.cols", node.name), y, &dims)
                .map_err(graph)?;
            let mut cur = kept.clone();
            cur.push(n);
            let target: Vec<char> = out_axes
                .iter()
                .copied()
                .filter(|a| cur.contains(a))
                .collect();
            y = wire_permutation(&mut patch, &format!("{}.out", node.name), y, &cur, &target)
                .map_err(graph)?;
            let out: Vec<usize> = out_shape
                .iter()
                .map(|d| d.to_usize().unwrap_or(1))
                .collect();
            y = wire_reshape(&mut patch, &format!("{}.out", node.name), y, &out).map_err(graph)?;
        }
        patch
            .shunt_outside(&model, OutletId::new(id, 0), y)
            .map_err(graph)?;
        patch.apply(&mut model).map_err(graph)?;
    }
    model.into_decluttered().map_err(ExportError::graph)
}
