//! ONNX `GRU` layers exported as one `kinglet_gru` operator each (see
//! `kinglet_runtime::ops::gru`) instead of tract's `GruSeq` or per-step `Scan`.
//!
//! Applies to what PyTorch exports: one direction, `linear_before_reset = 1`, sigmoid and tanh,
//! no `sequence_lens`, concrete batch. Anything else keeps tract's own lowering.

use kinglet_runtime::ops::gru::Gru;
use tract_onnx::ops::rec::common::CommonRec;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::expandable::{expand, Expansion};
use tract_onnx::tract_hir::tract_core::ops::array::Slice;

/// Replaces every ONNX GRU node of `model` that `kinglet_gru` computes by [`FusedGru`];
/// returns how many.
pub fn fuse_grus(model: &mut InferenceModel) -> usize {
    let mut count = 0;
    for node in model.nodes_mut() {
        let Some(exp) = node.op_as::<Box<dyn Expansion>>() else {
            continue;
        };
        let Some(rec) = exp.as_any().downcast_ref::<CommonRec>() else {
            continue;
        };
        // tract offers its whole-sequence GRU exactly for `linear_before_reset = 1` with the
        // standard activations: the cell kinglet_gru computes
        let standard_cell = rec.body.fused_sequence_op(1, true, 1, 4, true).is_some();
        if rec.body.name() != "GRU"
            || !standard_cell
            || rec.optional_sequence_lens_input.is_some()
            || rec.optional_p_input.is_some()
        {
            continue;
        }
        node.op = expand(FusedGru { rec: rec.clone() });
        count += 1;
    }
    count
}

/// An ONNX GRU that lowers to `kinglet_gru` when it can, to tract's own lowering otherwise.
#[derive(Debug, Clone)]
pub struct FusedGru {
    rec: CommonRec,
}

impl Expansion for FusedGru {
    fn name(&self) -> StaticName {
        "KingletFusedGru".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    fn nboutputs(&self) -> TractResult<usize> {
        self.rec.nboutputs()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        self.rec.rules(s, inputs, outputs)
    }

    fn wire(
        &self,
        prefix: &str,
        target: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        match self.wire_fused(prefix, target, inputs)? {
            Some(outputs) => Ok(outputs),
            None => self.rec.wire(prefix, target, inputs),
        }
    }
}

impl FusedGru {
    fn wire_fused(
        &self,
        prefix: &str,
        target: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<Option<TVec<OutletId>>> {
        let rec = &self.rec;
        let x_fact = target.outlet_fact(inputs[0])?.clone();
        let r_fact = target.outlet_fact(inputs[2])?.clone();
        let batch_axis = if rec.batch_first { 0 } else { 1 };
        let (Ok(dirs), Ok(hidden), Ok(batch)) = (
            r_fact.shape[0].to_usize(),
            r_fact.shape[2].to_usize(),
            x_fact.shape[batch_axis].to_usize(),
        ) else {
            return Ok(None);
        };
        if dirs != 1 || x_fact.datum_type != f32::datum_type() {
            return Ok(None);
        }
        let name = |s: &str| format!("{prefix}.{s}");
        let mut x = inputs[0];
        if rec.batch_first {
            x = target.wire_node(name("x_time_major"), AxisOp::Move(1, 0), &[x])?[0];
        }
        let transposed = |target: &mut TypedModel, slot: usize, what: &str| -> TractResult<_> {
            let m = target.wire_node(name(what), AxisOp::Rm(0), &[inputs[slot]])?;
            Ok(target.wire_node(name(&format!("{what}_t")), AxisOp::Move(0, 1), &m)?[0])
        };
        let w_t = transposed(target, 1, "w")?;
        let r_t = transposed(target, 2, "r")?;
        let g3 = 3 * hidden;
        // ONNX B: [dirs, 6H] = input-side biases, then recurrent-side ones
        let (w_bias, r_bias) = match rec.optional_bias_input {
            Some(slot) => {
                let b = target.wire_node(name("b"), AxisOp::Rm(0), &[inputs[slot]])?;
                let wb = target.wire_node(name("wb"), Slice::new(0, 0, g3), &b)?;
                let rb = target.wire_node(name("rb"), Slice::new(0, g3, 2 * g3), &b)?;
                (wb[0], rb[0])
            }
            None => (
                target.add_const(name("wb"), Tensor::zero::<f32>(&[g3])?)?,
                target.add_const(name("rb"), Tensor::zero::<f32>(&[g3])?)?,
            ),
        };
        let h0 = match rec.optional_initial_h_input {
            // ONNX: [dirs, B, H] (batch_first: [B, dirs, H])
            Some(slot) => {
                let axis = if rec.batch_first { 1 } else { 0 };
                target.wire_node(name("h0"), AxisOp::Rm(axis), &[inputs[slot]])?[0]
            }
            None => target.add_const(name("h0"), Tensor::zero::<f32>(&[batch, hidden])?)?,
        };
        let outs = target.wire_node(prefix, Gru, &[x, w_t, r_t, w_bias, r_bias, h0])?;
        let mut result = tvec!(OutletId::new(0, 0); rec.nboutputs()?);
        if let Some(slot) = rec.optional_y_output {
            // [T, B, H] → ONNX Y: [T, 1, B, H] (batch_first: [B, T, 1, H])
            result[slot] = if rec.batch_first {
                let y = target.wire_node(name("y_batch_major"), AxisOp::Move(1, 0), &[outs[0]])?;
                target.wire_node(name("y"), AxisOp::Add(2), &y)?[0]
            } else {
                target.wire_node(name("y"), AxisOp::Add(1), &[outs[0]])?[0]
            };
        }
        if let Some(slot) = rec.optional_y_h_output {
            let state_axis = if rec.batch_first { 1 } else { 0 };
            result[slot] = target.wire_node(name("y_h"), AxisOp::Add(state_axis), &[outs[1]])?[0];
        }
        Ok(Some(result))
    }
}
