//! Operators kinglet adds to tract, each in its own file with its NNEF (de)serialization.
//! Registered for both exporter and runtime by [`crate::nnef_ext`].

pub mod attention;
pub mod fast_math;
pub mod gelu;
pub mod gru;
pub mod layer_norm;
pub mod linear_f32;
pub mod linear_i8;
pub mod lstm;
pub mod moving_sum;
pub mod quantize_rows;
pub mod time_linear_f32;

use tract_nnef::internal::{AxesMapping, InOut, TractResult, TypedFact};

/// The axes mapping of an operator whose rows are independent: every leading axis of input 0
/// (all but the last) is the same axis of the output and of each input in `also`, so tract
/// pushes a slice of rows (the `[CLS]` row the head reads) up through it.
pub(crate) fn leading_axes_mapping(
    inputs: &[&TypedFact],
    outputs: &[&TypedFact],
    also: &[usize],
) -> TractResult<AxesMapping> {
    let mut mapping = AxesMapping::disconnected(inputs, outputs)?;
    for (axis, repr) in (0..inputs[0].rank().saturating_sub(1)).zip('A'..) {
        mapping = mapping
            .renaming((InOut::In(0), axis), repr)?
            .linking(repr, (InOut::Out(0), axis))?;
        for &slot in also {
            mapping = mapping.linking(repr, (InOut::In(slot), axis))?;
        }
    }
    Ok(mapping)
}
