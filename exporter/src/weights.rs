//! Reading safetensors checkpoints (single file or sharded) into f32 tract tensors.
//!
//! Checkpoint prefixes (`bert.`, `distilbert.`, `roberta.`) are tolerated here and nowhere else:
//! model code asks for `embeddings.word_embeddings.weight` and gets it with or without prefix.

use crate::error::{ExportError, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tract_nnef::prelude::*;

/// All tensors of a checkpoint, held as the raw files they came from.
pub struct Weights {
    files: Vec<(PathBuf, Vec<u8>)>,
    /// tensor name → index in `files`
    index: HashMap<String, usize>,
    prefix: String,
}

/// Why there are no weights to read: the other formats a checkpoint folder may hold instead,
/// and the one line that converts them.
fn missing_weights(dir: &Path) -> String {
    let others = [
        ("pytorch_model.bin", ""),
        ("pytorch_model.bin.index.json", ""),
        ("tf_model.h5", ", from_tf=True"),
        ("flax_model.msgpack", ", from_flax=True"),
    ];
    match others.iter().find(|(f, _)| dir.join(f).exists()) {
        Some((found, flag)) => format!(
            "no model.safetensors, but {found}, which kinglet does not read (a pickled .bin \
             can run code when it is loaded); convert it once with \
             python -c \"from transformers import AutoModelForSequenceClassification as M; \
             M.from_pretrained('{d}'{flag}).save_pretrained('{d}')\" \
             (save_pretrained writes model.safetensors)",
            d = dir.display()
        ),
        None => "no model.safetensors nor model.safetensors.index.json".into(),
    }
}

impl Weights {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Weights> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let paths: Vec<PathBuf> = if single.exists() {
            vec![single]
        } else if index_path.exists() {
            let text =
                std::fs::read_to_string(&index_path).map_err(ExportError::io(&index_path))?;
            let index: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| ExportError::BadFile {
                    path: index_path.clone(),
                    reason: e.to_string(),
                })?;
            let map = index
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ExportError::BadFile {
                    path: index_path.clone(),
                    reason: "no `weight_map` object".into(),
                })?;
            let files: std::collections::BTreeSet<&str> =
                map.values().filter_map(|v| v.as_str()).collect();
            files.into_iter().map(|f| dir.join(f)).collect()
        } else {
            return Err(ExportError::Missing {
                path: single,
                what: missing_weights(dir),
            });
        };
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(ExportError::io(&path))?;
            let st = SafeTensors::deserialize(&bytes).map_err(|e| ExportError::BadFile {
                path: path.clone(),
                reason: format!("not a valid safetensors file: {e}"),
            })?;
            for name in st.names() {
                index.insert(name.to_string(), files.len());
            }
            drop(st);
            files.push((path, bytes));
        }
        Ok(Weights {
            files,
            index,
            prefix: String::new(),
        })
    }

    /// Sets the checkpoint prefix (e.g. `bert`) tried before the bare name.
    pub fn with_prefix(mut self, prefix: &str) -> Weights {
        self.prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}.")
        };
        self
    }

    /// True when the checkpoint has this tensor (with or without prefix).
    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    fn resolve(&self, name: &str) -> Option<(String, usize)> {
        let prefixed = format!("{}{name}", self.prefix);
        [prefixed, name.to_string()]
            .into_iter()
            .find_map(|n| self.index.get(&n).map(|&i| (n, i)))
    }

    /// Loads a tensor as f32 and checks its shape.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.get_any(name)?;
        if tensor.shape() != shape {
            return Err(ExportError::Weights(format!(
                "tensor `{name}` has shape {:?}, the config implies {shape:?}",
                tensor.shape()
            )));
        }
        Ok(tensor)
    }

    /// Loads the first of several alternative names (old checkpoints say `gamma`/`beta`).
    pub fn get_either(&self, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        let found = names.iter().find(|n| self.contains(n)).unwrap_or(&names[0]);
        self.get(found, shape)
    }

    /// Loads a tensor as f32, whatever its shape.
    pub fn get_any(&self, name: &str) -> Result<Tensor> {
        let (full, file) = self.resolve(name).ok_or_else(|| {
            ExportError::Weights(format!(
                "tensor `{}{name}` is missing from the checkpoint",
                self.prefix
            ))
        })?;
        let (path, bytes) = &self.files[file];
        let st = SafeTensors::deserialize(bytes).map_err(|e| ExportError::BadFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let view = st.tensor(&full).map_err(|e| ExportError::BadFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ExportError::Weights(format!(
                    "tensor `{full}` is {other:?}; kinglet reads f32, f16 and bf16 checkpoints"
                )))
            }
        };
        Tensor::from_shape(view.shape(), &values)
            .map_err(|e| ExportError::Weights(format!("`{full}`: {e}")))
    }

    /// Total number of scalar parameters in the checkpoint.
    pub fn parameter_count(&self) -> u64 {
        let mut count = 0u64;
        for (_, bytes) in &self.files {
            if let Ok(st) = SafeTensors::deserialize(bytes) {
                for (_, view) in st.tensors() {
                    count += view.shape().iter().product::<usize>() as u64;
                }
            }
        }
        count
    }

    /// Names of all tensors, sorted (for error messages and inspection).
    pub fn names(&self) -> Vec<String> {
        let sorted: BTreeMap<&String, ()> = self.index.keys().map(|k| (k, ())).collect();
        sorted.into_keys().cloned().collect()
    }
}
