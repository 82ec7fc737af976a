//! Which layers of a graph hold weights, and in which precision they are stored: what
//! `kinglet inspect` and the exporter's summary show, read from the graph itself rather than
//! from the precision the exporter was asked for (an `int8` bundle whose LSTM stays f32 says so).
//!
//! kinglet computes every float layer in f32 (f16 is a storage precision, widened at load; see
//! [`crate::engine::compute_f16_in_f32`]) and every int8 layer with i8×i8→i32 products.

use crate::error::Result;
use serde::Serialize;
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::cast::Cast;
use tract_nnef::tract_core::ops::element_wise::ElementWiseOp;
use tract_nnef::tract_core::ops::konst::Const;

/// One operator with weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerPrecision {
    /// Node name in the graph (`/rnn/LSTM`, `encoder.layer.0.attention.self.query`).
    pub name: String,
    /// Operator (`EinSum`, `KingletLstm`, `Conv`, `LinearI8` …).
    pub op: String,
    /// Precision of its weights in the bundle: `f32`, `f16`, `int8` or `q4`.
    pub stored: String,
    /// Scalars in its weights.
    pub parameters: u64,
}

/// Smallest constant counted as a weight (smaller ones are scales, biases of tiny layers…).
const MIN_WEIGHT_LEN: usize = 16;

/// The layers of the bundle at `path`, read from its graph section.
pub fn of_bundle(path: &std::path::Path) -> Result<Vec<LayerPrecision>> {
    Ok(of_model(
        &crate::bundle::BundleFile::open(path)?.read_graph()?,
    ))
}

/// The layers of a typed graph, in evaluation order: every operator fed by a constant of rank
/// 2 or more (directly or through casts and axis changes), with that constant's precision;
/// element-wise operators (bias adds, norm scales) and slices are not counted.
pub fn of_model(model: &TypedModel) -> Vec<LayerPrecision> {
    let order = model
        .eval_order()
        .unwrap_or_else(|_| (0..model.nodes().len()).collect());
    let mut layers = Vec::new();
    for id in order {
        let node = model.node(id);
        // biases, norms' scales and table slices are not layers of their own
        let elementwise = node.op_is::<TypedBinOp>() || node.op_is::<ElementWiseOp>();
        if elementwise
            || node.op_is::<Const>()
            || node.op_is::<Cast>()
            || node.op_is::<AxisOp>()
            || node.op.name().contains("Slice")
        {
            continue;
        }
        let weights: Vec<(String, u64)> = node
            .inputs
            .iter()
            .filter_map(|&i| weight_behind(model, i))
            .collect();
        let Some((stored, _)) = weights.iter().max_by_key(|(_, n)| *n) else {
            continue;
        };
        layers.push(LayerPrecision {
            name: node.name.clone(),
            op: node.op.name().to_string(),
            stored: stored.clone(),
            parameters: weights.iter().map(|(_, n)| n).sum(),
        });
    }
    layers
}

/// The precision and size of the weight constant feeding `outlet`, looking through up to four
/// casts and axis changes.
fn weight_behind(model: &TypedModel, mut outlet: OutletId) -> Option<(String, u64)> {
    for _ in 0..5 {
        let node = model.node(outlet.node);
        if let Some(k) = node.op_as::<Const>() {
            let val = k.val();
            if k.exotic_fact().is_some() {
                return Some(("q4".into(), val.len() as u64));
            }
            // a weight has two axes longer than 1 (a `[n, 1]` column is scales)
            if val.shape().iter().filter(|&&d| d > 1).count() < 2 || val.len() < MIN_WEIGHT_LEN {
                return None;
            }
            return Some((precision_name(val.datum_type()), val.len() as u64));
        }
        if !(node.op_is::<Cast>() || node.op_is::<AxisOp>()) || node.inputs.len() != 1 {
            return None;
        }
        outlet = node.inputs[0];
    }
    None
}

/// `f32`, `f16`, `int8` … for a datum type.
pub fn precision_name(dt: DatumType) -> String {
    match dt {
        DatumType::F32 => "f32".into(),
        DatumType::F16 => "f16".into(),
        DatumType::I8 => "int8".into(),
        DatumType::U8 => "uint8".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_nnef::tract_core::ops::einsum::EinSum;

    #[test]
    fn a_layer_reports_the_precision_its_weight_is_stored_in_through_a_cast() {
        let mut m = TypedModel::default();
        let x = m.add_source("x", f32::fact([1, 8])).unwrap();
        let w16 = m
            .add_const("w", Tensor::zero::<f16>(&[4, 8]).unwrap())
            .unwrap();
        let w = m
            .wire_node("w.cast", Cast::new(f32::datum_type()), &[w16])
            .unwrap()[0];
        let y = m
            .wire_node(
                "dense",
                EinSum::new("bk,nk->bn".parse().unwrap(), f32::datum_type()),
                &[x, w],
            )
            .unwrap()[0];
        let scale = m.add_const("scale", tensor2(&[[2f32; 4]])).unwrap();
        let y = m
            .wire_node(
                "scaled",
                tract_nnef::tract_core::ops::math::mul(),
                &[y, scale],
            )
            .unwrap()[0];
        m.select_output_outlets(&[y]).unwrap();
        let layers = of_model(&m);
        assert_eq!(
            layers,
            vec![LayerPrecision {
                name: "dense".into(),
                op: "EinSum".into(),
                stored: "f16".into(),
                parameters: 32
            }]
        );
    }
}
