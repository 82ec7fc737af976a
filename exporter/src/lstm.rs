//! ONNX `LSTM` layers as one `kinglet_lstm` operator each (see `kinglet_runtime::ops::lstm`);
//! which layers qualify, and the shared wiring, are in [`crate::rec`].

use crate::rec::Layer;
use kinglet_runtime::ops::lstm::Lstm;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::array::Slice;
use tract_onnx::tract_hir::tract_core::ops::math;

/// Wires `layer` as `kinglet_lstm`; returns the ONNX node's outputs.
pub fn wire(layer: &Layer, target: &mut TypedModel) -> TractResult<TVec<OutletId>> {
    let rec = layer.rec;
    let x = layer.x(target)?;
    let w_t = layer.transposed(target, 1, "w")?;
    let r_t = layer.transposed(target, 2, "r")?;
    let g4 = 4 * layer.hidden;
    // ONNX B: [1, 8H] = input-side biases, then recurrent-side ones; kinglet_lstm takes the sum
    let bias = match rec.optional_bias_input {
        Some(slot) => {
            let b = target.wire_node(layer.name("b"), AxisOp::Rm(0), &[layer.inputs[slot]])?;
            let wb = target.wire_node(layer.name("wb"), Slice::new(0, 0, g4), &b)?;
            let rb = target.wire_node(layer.name("rb"), Slice::new(0, g4, 2 * g4), &b)?;
            target.wire_node(layer.name("bias"), math::add(), &[wb[0], rb[0]])?[0]
        }
        None => target.add_const(layer.name("bias"), Tensor::zero::<f32>(&[g4])?)?,
    };
    let h0 = layer.state(target, rec.optional_initial_h_input, "h0")?;
    let c0 = layer.state(target, rec.optional_initial_c_input, "c0")?;
    let outs = target.wire_node(layer.prefix, Lstm, &[x, w_t, r_t, bias, h0, c0])?;
    layer.outputs(
        target,
        outs[0],
        &[
            (rec.optional_y_h_output, outs[1], "y_h"),
            (rec.optional_y_c_output, outs[2], "y_c"),
        ],
    )
}
