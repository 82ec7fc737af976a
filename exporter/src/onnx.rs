//! ONNX forecasters: load with tract-onnx, pin the declared window shape, check the output.
//!
//! The exporter is the only crate that parses ONNX; bundles carry the decluttered graph as
//! NNEF, so the device binary never links the ONNX parser.

use crate::error::{ExportError, Result};
use std::path::Path;
use tract_nnef::internal::DimLike;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::AxisOp;

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
///
/// Accepted beyond `[1, lookback, features]` → `[1, horizon, targets]`: one output of several
/// chosen by `output`, a 1-D `[horizon]` output (one target), and a 2-D `[1, lookback]` input
/// (one column); the bundle's graph takes and returns the standard shapes either way.
pub fn load_forecaster(
    path: &Path,
    shape: ForecastShape,
    output: Option<&str>,
) -> Result<TypedModel> {
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
            let op = onnx_op_type(&node.op).unwrap_or(name.to_string());
            return Err(ExportError::Unsupported(format!(
                "{}: operator `{op}` (node `{}`) is not supported by tract{}",
                path.display(),
                node.name,
                way_out(&op, &node.name)
            )));
        }
    }
    let names: Vec<String> = model
        .outputs
        .iter()
        .map(|&o| {
            model
                .outlet_label(o)
                .unwrap_or(&model.node(o.node).name)
                .to_string()
        })
        .collect();
    match output {
        Some(name) => {
            let Some(i) = names.iter().position(|n| n == name) else {
                return Err(bad(format!(
                    "--onnx-output {name}: the model's outputs are {}",
                    names.join(", ")
                )));
            };
            let chosen = model.outputs[i];
            model
                .select_output_outlets(&[chosen])
                .map_err(|e| bad(e.to_string()))?;
        }
        None if names.len() > 1 => {
            return Err(ExportError::Unsupported(format!(
                "{}: the model has {} outputs ({}); pick the forecast with --onnx-output NAME",
                path.display(),
                names.len(),
                names.join(", ")
            )))
        }
        None => {}
    }
    if model.inputs.len() != 1 {
        return Err(bad(format!(
            "a forecaster has one input; this model has {}",
            model.inputs.len()
        )));
    }
    // `[1, lookback]` for a one-column model: fed as such, the bundle's graph takes the
    // standard `[1, lookback, 1]` and drops the last axis
    let declared_rank = model
        .input_fact(0)
        .ok()
        .and_then(|f| f.shape.rank().concretize());
    let two_d = declared_rank == Some(2) && shape.features == 1 && !shape.channels_first;
    let want: TVec<usize> = if two_d {
        tvec![1, shape.lookback]
    } else if shape.channels_first {
        tvec![1, shape.features, shape.lookback]
    } else {
        tvec![1, shape.lookback, shape.features]
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
    let mut model = model
        .with_input_fact(0, f32::fact(&*want).into())
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
    if two_d {
        add_trailing_input_axis(&mut model).map_err(|e| bad(e.to_string()))?;
    }
    let out = model
        .output_fact(0)
        .map_err(|e| bad(e.to_string()))?
        .clone();
    let got: Vec<Option<usize>> = out.shape.iter().map(|d| d.to_usize().ok()).collect();
    let ok = match got.as_slice() {
        [Some(1), Some(h), Some(t)] => *h == shape.horizon && *t == shape.targets,
        [Some(1), Some(h)] => *h == shape.horizon && shape.targets == 1,
        [Some(h)] if *h == shape.horizon && shape.targets == 1 => {
            // `[horizon]`: one obvious meaning, `[1, horizon]`
            let y = model.outputs[0];
            let y = model
                .wire_node("forecast.batch", AxisOp::Add(0), &[y])
                .map_err(|e| bad(e.to_string()))?[0];
            model
                .select_output_outlets(&[y])
                .map_err(|e| bad(e.to_string()))?;
            true
        }
        _ => false,
    };
    if !ok {
        return Err(bad(format!(
            "the ONNX output is {:?}; the declared forecast is [1, {}, {}] (or [1, {}] or [{}] for one target)",
            out.shape, shape.horizon, shape.targets, shape.horizon, shape.horizon
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

/// Makes the graph's `[1, lookback]` input a `[1, lookback, 1]` one whose last axis is dropped
/// inside the graph.
fn add_trailing_input_axis(model: &mut TypedModel) -> TractResult<()> {
    use tract_onnx::tract_hir::tract_core::ops::source::TypedSource;
    let input = model.input_outlets()?[0];
    let fact = model.outlet_fact(input)?.clone();
    let mut shape = fact.shape.to_tvec();
    shape.push(1.to_dim());
    let wide = f32::fact(&*shape);
    let successors = model.outlet_successors(input).to_vec();
    model.node_mut(input.node).op = Box::new(TypedSource::new(wide.clone()));
    model.set_outlet_fact(input, wide)?;
    let name = format!("{}.one_column", model.node(input.node).name);
    let narrow = model.wire_node(name, AxisOp::Rm(2), &[input])?[0];
    for inlet in successors {
        model.add_edge(narrow, inlet)?;
    }
    Ok(())
}

/// How to re-export a model whose operator tract lacks, when there is a known way.
fn way_out(op: &str, node: &str) -> &'static str {
    if op != "Loop" {
        return "";
    }
    let node = node.to_lowercase();
    if node.contains("lstm") {
        "; this is how tf2onnx converts a Keras LSTM whose Input has a fixed batch size: \
         build it with `keras.Input(shape=(lookback, features))` (batch None) and tf2onnx writes \
         one ONNX LSTM, which kinglet runs as one operator (or use `LSTM(..., unroll=True)`)"
    } else if node.contains("gru") || node.contains("rnn") {
        "; tf2onnx converts every Keras GRU and SimpleRNN to a Loop: rebuild the layer with \
         `unroll=True` before converting (the steps become plain matrix products), or export the \
         model from PyTorch, whose nn.GRU becomes one ONNX GRU"
    } else {
        "; an ONNX Loop is a while-loop (tf2onnx writes one for Keras recurrent layers): \
         re-export with the loop unrolled"
    }
}

fn onnx_op_type(op: &dyn std::fmt::Debug) -> Option<String> {
    let dbg = format!("{op:?}");
    // UnimplementedOp's debug form carries the ONNX op type first.
    dbg.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty() && *w != "UnimplementedOp" && *w != "Unimplemented")
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .map(str::to_string)
}
