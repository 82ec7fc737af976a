//! ONNX recurrent layers (LSTM, GRU) exported as one kinglet operator per layer instead of
//! tract's per-step `Scan` (or its `GruSeq`): the plumbing both share. What each layer wires
//! is in [`crate::lstm`] and [`crate::gru`].
//!
//! Applies to one direction, no `sequence_lens`, no peepholes, concrete batch and hidden size;
//! anything else keeps tract's own lowering.

use tract_onnx::ops::rec::common::CommonRec;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::expandable::{expand, Expansion};

/// The layer kinds kinglet runs as one operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `kinglet_lstm`.
    Lstm,
    /// `kinglet_gru` (`linear_before_reset = 1`).
    Gru,
}

/// Replaces every ONNX LSTM and GRU node of `model` that a kinglet operator computes by
/// [`FusedRec`]; returns how many.
pub fn fuse_recurrent_layers(model: &mut InferenceModel) -> usize {
    let mut count = 0;
    for node in model.nodes_mut() {
        let Some(exp) = node.op_as::<Box<dyn Expansion>>() else {
            continue;
        };
        let Some(rec) = exp.as_any().downcast_ref::<CommonRec>() else {
            continue;
        };
        if rec.optional_sequence_lens_input.is_some() || rec.optional_p_input.is_some() {
            continue;
        }
        let kind = match rec.body.name() {
            "LSTM" => Kind::Lstm,
            // tract offers its whole-sequence GRU exactly for `linear_before_reset = 1` with
            // the standard activations: the cell kinglet_gru computes
            "GRU" if rec.body.fused_sequence_op(1, true, 1, 4, true).is_some() => Kind::Gru,
            _ => continue,
        };
        node.op = expand(FusedRec {
            rec: rec.clone(),
            kind,
        });
        count += 1;
    }
    count
}

/// An ONNX recurrent layer that lowers to a kinglet operator when it can, to tract's own
/// lowering otherwise.
#[derive(Debug, Clone)]
pub struct FusedRec {
    rec: CommonRec,
    kind: Kind,
}

impl Expansion for FusedRec {
    fn name(&self) -> StaticName {
        match self.kind {
            Kind::Lstm => "KingletFusedLstm".into(),
            Kind::Gru => "KingletFusedGru".into(),
        }
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
        let Some(layer) = Layer::new(&self.rec, prefix, target, inputs)? else {
            return self.rec.wire(prefix, target, inputs);
        };
        match self.kind {
            Kind::Lstm => crate::lstm::wire(&layer, target),
            Kind::Gru => crate::gru::wire(&layer, target),
        }
    }
}

/// One fusable layer being wired: its ONNX node, inputs and sizes.
pub struct Layer<'a> {
    /// The ONNX node's options (which inputs and outputs it has, batch-first or not).
    pub rec: &'a CommonRec,
    /// Node name, prefix of every wired node.
    pub prefix: &'a str,
    /// The ONNX node's inputs in `target`.
    pub inputs: &'a [OutletId],
    /// Hidden units.
    pub hidden: usize,
    /// Batch.
    pub batch: usize,
}

impl<'a> Layer<'a> {
    /// The layer, when a kinglet operator takes it: one direction, f32, concrete sizes.
    fn new(
        rec: &'a CommonRec,
        prefix: &'a str,
        target: &TypedModel,
        inputs: &'a [OutletId],
    ) -> TractResult<Option<Layer<'a>>> {
        let x_fact = target.outlet_fact(inputs[0])?;
        let r_fact = target.outlet_fact(inputs[2])?;
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
        Ok(Some(Layer {
            rec,
            prefix,
            inputs,
            hidden,
            batch,
        }))
    }

    /// `prefix.what`.
    pub fn name(&self, what: &str) -> String {
        format!("{}.{what}", self.prefix)
    }

    /// The input sequence, time-major `[T, B, I]`.
    pub fn x(&self, target: &mut TypedModel) -> TractResult<OutletId> {
        let x = self.inputs[0];
        if !self.rec.batch_first {
            return Ok(x);
        }
        Ok(target.wire_node(self.name("x_time_major"), AxisOp::Move(1, 0), &[x])?[0])
    }

    /// ONNX weights `[1, G·H, K]` (input `slot`) as `[K, G·H]`.
    pub fn transposed(
        &self,
        target: &mut TypedModel,
        slot: usize,
        what: &str,
    ) -> TractResult<OutletId> {
        let m = target.wire_node(self.name(what), AxisOp::Rm(0), &[self.inputs[slot]])?;
        Ok(target.wire_node(self.name(&format!("{what}_t")), AxisOp::Move(0, 1), &m)?[0])
    }

    /// An initial state `[B, H]`: input `slot` (ONNX `[1, B, H]`, batch-first `[B, 1, H]`), or
    /// zeros.
    pub fn state(
        &self,
        target: &mut TypedModel,
        slot: Option<usize>,
        what: &str,
    ) -> TractResult<OutletId> {
        match slot {
            Some(slot) => {
                let axis = if self.rec.batch_first { 1 } else { 0 };
                Ok(target.wire_node(self.name(what), AxisOp::Rm(axis), &[self.inputs[slot]])?[0])
            }
            None => target.add_const(
                self.name(what),
                Tensor::zero::<f32>(&[self.batch, self.hidden])?,
            ),
        }
    }

    /// The ONNX outputs from the operator's `y` (`[T, B, H]`) and final states (`[B, H]`,
    /// each with the ONNX output slot it fills).
    pub fn outputs(
        &self,
        target: &mut TypedModel,
        y: OutletId,
        states: &[(Option<usize>, OutletId, &str)],
    ) -> TractResult<TVec<OutletId>> {
        let rec = self.rec;
        let mut result = tvec!(OutletId::new(0, 0); rec.nboutputs()?);
        if let Some(slot) = rec.optional_y_output {
            // [T, B, H] → ONNX Y: [T, 1, B, H] (batch_first: [B, T, 1, H])
            result[slot] = if rec.batch_first {
                let y = target.wire_node(self.name("y_batch_major"), AxisOp::Move(1, 0), &[y])?;
                target.wire_node(self.name("y"), AxisOp::Add(2), &y)?[0]
            } else {
                target.wire_node(self.name("y"), AxisOp::Add(1), &[y])?[0]
            };
        }
        let state_axis = if rec.batch_first { 1 } else { 0 };
        for &(slot, out, what) in states {
            if let Some(slot) = slot {
                result[slot] =
                    target.wire_node(self.name(what), AxisOp::Add(state_axis), &[out])?[0];
            }
        }
        Ok(result)
    }
}
