//! ONNX `LSTM` layers exported as one `kinglet_lstm` operator each (see
//! `kinglet_runtime::ops::lstm`) instead of tract's per-step `Scan`.
//!
//! Applies to what kinglet's forecasters use: one direction, no `sequence_lens`, no peepholes,
//! concrete batch. Anything else keeps tract's own lowering.

use kinglet_runtime::ops::lstm::Lstm;
use tract_onnx::ops::rec::common::CommonRec;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::expandable::{expand, Expansion};
use tract_onnx::tract_hir::tract_core::ops::array::Slice;
use tract_onnx::tract_hir::tract_core::ops::math;

/// Replaces every ONNX LSTM node of `model` by [`FusedLstm`]; returns how many.
pub fn fuse_lstms(model: &mut InferenceModel) -> usize {
    let mut count = 0;
    for node in model.nodes_mut() {
        let Some(exp) = node.op_as::<Box<dyn Expansion>>() else {
            continue;
        };
        let Some(rec) = exp.as_any().downcast_ref::<CommonRec>() else {
            continue;
        };
        if rec.body.name() != "LSTM"
            || rec.optional_sequence_lens_input.is_some()
            || rec.optional_p_input.is_some()
        {
            continue;
        }
        node.op = expand(FusedLstm { rec: rec.clone() });
        count += 1;
    }
    count
}

/// An ONNX LSTM that lowers to `kinglet_lstm` when it can, to tract's `Scan` otherwise.
#[derive(Debug, Clone)]
pub struct FusedLstm {
    rec: CommonRec,
}

impl Expansion for FusedLstm {
    fn name(&self) -> StaticName {
        "KingletFusedLstm".into()
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

impl FusedLstm {
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
        let g4 = 4 * hidden;
        let bias = match rec.optional_bias_input {
            Some(slot) => {
                let b = target.wire_node(name("b"), AxisOp::Rm(0), &[inputs[slot]])?;
                let wb = target.wire_node(name("wb"), Slice::new(0, 0, g4), &b)?;
                let rb = target.wire_node(name("rb"), Slice::new(0, g4, 2 * g4), &b)?;
                target.wire_node(name("bias"), math::add(), &[wb[0], rb[0]])?[0]
            }
            None => target.add_const(name("bias"), Tensor::zero::<f32>(&[g4])?)?,
        };
        let state = |target: &mut TypedModel, slot: Option<usize>, what: &str| -> TractResult<_> {
            match slot {
                // ONNX: [dirs, B, H] (batch_first: [B, dirs, H])
                Some(slot) => {
                    let axis = if rec.batch_first { 1 } else { 0 };
                    Ok(target.wire_node(name(what), AxisOp::Rm(axis), &[inputs[slot]])?[0])
                }
                None => target.add_const(name(what), Tensor::zero::<f32>(&[batch, hidden])?),
            }
        };
        let h0 = state(target, rec.optional_initial_h_input, "h0")?;
        let c0 = state(target, rec.optional_initial_c_input, "c0")?;
        let outs = target.wire_node(prefix, Lstm, &[x, w_t, r_t, bias, h0, c0])?;
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
        let state_axis = if rec.batch_first { 1 } else { 0 };
        for (slot, out, what) in [
            (rec.optional_y_h_output, outs[1], "y_h"),
            (rec.optional_y_c_output, outs[2], "y_c"),
        ] {
            if let Some(slot) = slot {
                result[slot] = target.wire_node(name(what), AxisOp::Add(state_axis), &[out])?[0];
            }
        }
        Ok(Some(result))
    }
}
