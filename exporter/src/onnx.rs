//! ONNX forecasters: load with tract-onnx, pin the declared window shape, check the output.
//!
//! The exporter is the only crate that parses ONNX; bundles carry the decluttered graph as
//! NNEF, so the device binary never links the ONNX parser.

use crate::error::{ExportError, Result};
use std::path::Path;
use tract_nnef::internal::DimLike;
use tract_onnx::prelude::*;

/// The shape a forecaster is declared to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForecastShape {
    /// Rows of history in.
    pub lookback: usize,
    /// Input columns.
    pub features: usize,
    /// Rows out.
    pub horizon: usize,
    /// Columns out (1 for a single target).
    pub targets: usize,
    /// Input is `[1, features, lookback]` instead of `[1, lookback, features]`.
    pub channels_first: bool,
}

/// Loads an ONNX forecaster and returns its decluttered f32 graph with the input pinned to
/// the declared shape, after checking the ONNX's own shapes and its output against it.
pub fn load_forecaster(path: &Path, shape: ForecastShape) -> Result<TypedModel> {
    let bad = |reason: String| ExportError::BadFile {
        path: path.to_owned(),
        reason,
    };
    if !path.is_file() {
        return Err(ExportError::Missing {
            path: path.to_owned(),
            what: "no such ONNX file".into(),
        });
    }
    let mut model = tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| bad(format!("not a loadable ONNX model: {e:#}")))?;
    crate::rec::fuse_recurrent_layers(&mut model);
    for node in model.nodes() {
        let name = node.op.name();
        if name.contains("Unimplemented") || name.contains("Unknown") {
            return Err(ExportError::Unsupported(format!(
                "{}: operator `{}` (node `{}`) is not supported by tract",
                path.display(),
                onnx_op_type(&node.op).unwrap_or(name.to_string()),
                node.name
            )));
        }
    }
    if model.inputs.len() != 1 || model.outputs.len() != 1 {
        return Err(bad(format!(
            "a forecaster has one input and one output; this model has {} and {}",
            model.inputs.len(),
            model.outputs.len()
        )));
    }
    let want: [usize; 3] = if shape.channels_first {
        [1, shape.features, shape.lookback]
    } else {
        [1, shape.lookback, shape.features]
    };
    let layout = if shape.channels_first {
        "[1, features, lookback]"
    } else {
        "[1, lookback, features]"
    };
    let declared = format!(
        "{:?}",
        model.input_fact(0).map_err(|e| bad(e.to_string()))?.shape
    );
    let model = model
        .with_input_fact(0, f32::fact(want).into())
        .and_then(|m| m.into_typed())
        .map(|mut m| {
            kinglet_runtime::engine::one_shot_scans(&mut m);
            m
        })
        .and_then(|m| m.into_decluttered())
        .map_err(|e| {
            bad(format!(
                "the ONNX input is [{declared}]; the declared window is {want:?} {layout} \
                 (lookback {}, {} columns), and tract cannot run the graph with it: {e}",
                shape.lookback, shape.features
            ))
        })?;
    let out = model.output_fact(0).map_err(|e| bad(e.to_string()))?;
    let got: Vec<Option<usize>> = out.shape.iter().map(|d| d.to_usize().ok()).collect();
    let ok = match got.as_slice() {
        [Some(1), Some(h), Some(t)] => *h == shape.horizon && *t == shape.targets,
        [Some(1), Some(h)] => *h == shape.horizon && shape.targets == 1,
        _ => false,
    };
    if !ok {
        return Err(bad(format!(
            "the ONNX output is {:?}; the declared forecast is [1, {}, {}] (or [1, {}] for one target)",
            out.shape, shape.horizon, shape.targets, shape.horizon
        )));
    }
    if out.datum_type != f32::datum_type() {
        return Err(bad(format!(
            "the ONNX output is {:?}, not f32",
            out.datum_type
        )));
    }
    Ok(model)
}

fn onnx_op_type(op: &dyn std::fmt::Debug) -> Option<String> {
    let dbg = format!("{op:?}");
    // UnimplementedOp's debug form carries the ONNX op type first.
    dbg.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty() && *w != "UnimplementedOp" && *w != "Unimplemented")
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .map(str::to_string)
}
