//! Weight quantization: the numeric formats a bundle can store, and the per-channel int8 and
//! block-q4 encodings of weight matrices.

use crate::error::{ExportError, Result};
use tract_nnef::internal::*;
use tract_nnef::tract_core::tract_linalg::block_quant::{
    BlockQuant, BlockQuantFact, BlockQuantStorage, Q4_0,
};

/// Numeric format of a bundle's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Everything in f32.
    F32,
    /// Everything (weights and compute) in f16, by tract's `f32_to_f16` transform.
    F16,
    /// int8 weights, symmetric per output channel, for every matmul and the embedding tables;
    /// activations quantized per row at run time; i8×i8→i32 matmuls.
    Int8,
    /// Q4_0 block quantization (32 weights + one f16 scale per block) of every matmul weight
    /// and of the token embedding table; f32 compute.
    Q4,
}

impl Precision {
    /// Name used on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
            Precision::Q4 => "q4",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            "int8" | "i8" => Ok(Precision::Int8),
            "q4" => Ok(Precision::Q4),
            other => Err(ExportError::Unsupported(format!(
                "precision `{other}` (f32, f16, int8, q4)"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Symmetric int8 quantization of each row of a `[rows, cols]` f32 matrix: returns the i8
/// matrix and one f32 scale per row (`w ≈ q · scale`).
pub fn int8_per_row(w: &Tensor) -> Result<(Tensor, Tensor)> {
    let (rows, cols) = match w.shape() {
        [r, c] => (*r, *c),
        other => {
            return Err(ExportError::Graph(format!(
                "int8 quantization of a rank-{} tensor",
                other.len()
            )))
        }
    };
    let plain = w.try_as_plain_ram().map_err(ExportError::graph)?;
    let data = plain.as_slice::<f32>().map_err(ExportError::graph)?;
    let mut q = vec![0i8; rows * cols];
    let mut scales = vec![0f32; rows];
    kinglet_runtime::ops::quantize_rows::quantize_rows(data, cols, &mut q, &mut scales);
    Ok((
        Tensor::from_shape(&[rows, cols], &q).map_err(ExportError::graph)?,
        Tensor::from_shape(&[rows], &scales).map_err(ExportError::graph)?,
    ))
}

/// Q4_0 block quantization of a `[rows, cols]` f32 matrix (cols a multiple of 32), as a tensor
/// tract's Gather and matmuls read directly.
pub fn q4_blocks(w: &Tensor) -> Result<(Tensor, Box<BlockQuantFact>)> {
    let (rows, cols) = match w.shape() {
        [r, c] => (*r, *c),
        other => {
            return Err(ExportError::Graph(format!(
                "q4 quantization of a rank-{} tensor",
                other.len()
            )))
        }
    };
    if cols % Q4_0.block_len() != 0 {
        return Err(ExportError::Unsupported(format!(
            "q4 needs rows whose length is a multiple of {}; this model has {cols}",
            Q4_0.block_len()
        )));
    }
    let plain = w.try_as_plain_ram().map_err(ExportError::graph)?;
    let blob = Q4_0
        .quant_f32(plain.as_slice::<f32>().map_err(ExportError::graph)?)
        .map_err(ExportError::graph)?;
    let storage = BlockQuantStorage::new(Box::new(Q4_0), rows, cols, Arc::new(blob))
        .map_err(ExportError::graph)?;
    let fact = Box::new(BlockQuantFact::new(Box::new(Q4_0), tvec!(rows, cols)));
    let tensor = storage.into_tensor_with_shape(f32::datum_type(), &[rows, cols]);
    Ok((tensor, fact))
}

/// Applies the whole-graph precision transforms (f16 and q4 matmul weights) to a decluttered
/// f32 graph; int8 is built in place by the graph builder and needs nothing here.
pub fn transform_graph(model: TypedModel, precision: Precision) -> Result<TypedModel> {
    let name = match precision {
        Precision::F32 | Precision::Int8 => return Ok(model),
        Precision::F16 => "f32_to_f16",
        Precision::Q4 => "block_quant",
    };
    let mut model = model;
    let transform = tract_nnef::tract_core::transform::get_transform(name)
        .map_err(ExportError::graph)?
        .ok_or_else(|| ExportError::Graph(format!("tract has no `{name}` transform")))?;
    transform
        .transform(&mut model)
        .map_err(ExportError::graph)?;
    model.into_decluttered().map_err(ExportError::graph)
}
