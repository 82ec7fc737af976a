//! Storing every distinct weight once: ALBERT reads one set of layer weights in every layer.
//!
//! Two places can hold a copy: the graph (one constant per layer, merged by
//! [`share_equal_constants`]) and the NNEF tar, where tract's writer stores a weight again,
//! with a unit batch axis, for a matrix product it rewrote (the last layer, which runs for the
//! `[CLS]` row only): [`share_equal_variables`] makes that copy a `reshape` of the first.

use crate::error::{ExportError, Result};
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::konst::Const;

/// Makes every constant equal to an earlier one (ALBERT's shared layer, read once per layer)
/// feed its consumers from that earlier node, and drops it: a bundle stores each distinct
/// weight once. A copy in another shape (declutter reshapes the last layer's weights, which
/// run for the `[CLS]` row only) becomes a reshape of the earlier constant. Returns how many
/// constants were dropped.
pub fn share_equal_constants(model: &mut TypedModel) -> TractResult<usize> {
    use tract_nnef::tract_core::ops::change_axes::AxisOp;
    let mut kept: Vec<(OutletId, Arc<Tensor>)> = Vec::new();
    let mut shared = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(konst) = node.op_as::<Const>() else {
            continue;
        };
        let value = konst.val().clone();
        if konst.exotic_fact().is_some() || !value.datum_type().is_copy() || value.len() < 2 {
            continue;
        }
        let same = kept.iter().find(|(_, v)| {
            v.datum_type() == value.datum_type()
                && v.len() == value.len()
                && v.as_bytes() == value.as_bytes()
        });
        let Some((earlier, earlier_value)) = same.cloned() else {
            kept.push((id.into(), value));
            continue;
        };
        let name = node.name.clone();
        let mut patch = TypedModelPatch::new("share equal constant");
        let mut wire = patch.tap_model(model, earlier)?;
        if earlier_value.shape() != value.shape() {
            let dims = |shape: &[usize]| shape.iter().map(|&d| d.to_dim()).collect();
            let reshape = AxisOp::Reshape(0, dims(earlier_value.shape()), dims(value.shape()));
            wire = patch.wire_node(format!("{name}.shared"), reshape, &[wire])?[0];
        }
        patch.shunt_outside(model, id.into(), wire)?;
        patch.apply(model)?;
        shared += 1;
    }
    if shared > 0 {
        model.compact()?;
    }
    Ok(shared)
}

/// Rewrites an NNEF tar so that a `variable` whose stored values equal an earlier variable's
/// becomes a `reshape` of it, and its `.dat` is dropped. Returns the tar unchanged when no two
/// variables are equal.
pub fn share_equal_variables(tar_bytes: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| ExportError::Graph(format!("rewriting the NNEF tar: {e}"));
    let mut entries = Vec::new();
    for entry in tar::Archive::new(tar_bytes).entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(bad)?;
        entries.push((path, header, data));
    }
    let Some(graph) = entries.iter().position(|(p, _, _)| p == "graph.nnef") else {
        return Ok(tar_bytes.to_vec());
    };
    let text = String::from_utf8_lossy(&entries[graph].2).into_owned();
    // `  name = variable<scalar>(label = "label", shape = [a, b]);`, in the text's order
    let mut first: Vec<(String, String, &[u8])> = Vec::new();
    let mut dropped = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let Some((name, kind, label, shape)) = variable(line) else {
            lines.push(line.to_string());
            continue;
        };
        let dat = format!("{label}.dat");
        let values = entries
            .iter()
            .find(|(p, _, _)| *p == dat)
            .map(|(_, _, d)| d.get(DAT_HEADER_BYTES..).unwrap_or_default());
        let earlier = values.and_then(|v| {
            first
                .iter()
                .find(|(_, k, stored)| k == kind && *stored == v)
                .map(|(n, _, _)| n.clone())
        });
        match (values, earlier) {
            (Some(_), Some(earlier)) => {
                lines.push(format!("  {name} = reshape({earlier}, shape = {shape});"));
                dropped.push(dat);
            }
            (Some(v), None) => {
                first.push((name.to_string(), kind.to_string(), v));
                lines.push(line.to_string());
            }
            (None, _) => lines.push(line.to_string()),
        }
    }
    if dropped.is_empty() {
        return Ok(tar_bytes.to_vec());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let mut builder = tar::Builder::new(Vec::new());
    for (path, mut header, data) in entries {
        if dropped.contains(&path) {
            continue;
        }
        let data = if path == "graph.nnef" {
            text.clone().into_bytes()
        } else {
            data
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data.as_slice()).map_err(bad)?;
    }
    builder.into_inner().map_err(bad)
}

/// Bytes before a `.dat` file's values.
const DAT_HEADER_BYTES: usize = 128;

/// `(name, type, label, shape)` of a `variable` declaration line as tract writes it.
fn variable(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (name, rest) = line.trim().split_once(" = variable<")?;
    let (kind, rest) = rest.split_once(">(label = \"")?;
    let (label, rest) = rest.split_once("\", shape = ")?;
    let shape = rest.strip_suffix(");")?;
    Some((name, kind, label, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_line_is_read_as_tract_writes_it() {
        let line = r#"  w_fix_b = variable<scalar>(label = "enc.w.fix_b", shape = [1, 48, 80]);"#;
        assert_eq!(
            variable(line),
            Some(("w_fix_b", "scalar", "enc.w.fix_b", "[1, 48, 80]"))
        );
        assert_eq!(variable("  y = matmul(a, b);"), None);
    }
}
