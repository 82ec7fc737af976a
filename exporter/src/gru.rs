//! ONNX `GRU` layers (`linear_before_reset = 1`, as PyTorch exports them) as one `kinglet_gru`
//! operator each (see `kinglet_runtime::ops::gru`) instead of tract's `GruSeq`; which layers
//! qualify, and the shared wiring, are in [`crate::rec`].

use crate::rec::Layer;
use kinglet_runtime::ops::gru::Gru;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::array::Slice;

/// Wires `layer` as `kinglet_gru`; returns the ONNX node's outputs.
pub fn wire(layer: &Layer, target: &mut TypedModel) -> TractResult<TVec<OutletId>> {
    let rec = layer.rec;
    let x = layer.x(target)?;
    let w_t = layer.transposed(target, 1, "w")?;
    let r_t = layer.transposed(target, 2, "r")?;
    let g3 = 3 * layer.hidden;
    // ONNX B: [1, 6H] = input-side biases, then recurrent-side ones (kept apart: the reset
    // gate multiplies the recurrent side of `n`)
    let (w_bias, r_bias) = match rec.optional_bias_input {
        Some(slot) => {
            let b = target.wire_node(layer.name("b"), AxisOp::Rm(0), &[layer.inputs[slot]])?;
            let wb = target.wire_node(layer.name("wb"), Slice::new(0, 0, g3), &b)?;
            let rb = target.wire_node(layer.name("rb"), Slice::new(0, g3, 2 * g3), &b)?;
            (wb[0], rb[0])
        }
        None => (
            target.add_const(layer.name("wb"), Tensor::zero::<f32>(&[g3])?)?,
            target.add_const(layer.name("rb"), Tensor::zero::<f32>(&[g3])?)?,
        ),
    };
    let h0 = layer.state(target, rec.optional_initial_h_input, "h0")?;
    let outs = target.wire_node(layer.prefix, Gru, &[x, w_t, r_t, w_bias, r_bias, h0])?;
    layer.outputs(
        target,
        outs[0],
        &[(rec.optional_y_h_output, outs[1], "y_h")],
    )
}
