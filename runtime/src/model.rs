//! A loaded model of either kind, for commands that take any bundle.

use crate::bundle::BundleFile;
use crate::classify::Classifier;
use crate::error::Result;
use crate::forecast::Forecaster;
use crate::manifest::{Manifest, ModelKind};
use crate::memory::{LoadMeter, LoadOptions, MemoryReport};
use std::path::Path;

/// A classifier or a forecaster, loaded under a memory budget.
#[derive(Debug)]
pub enum Model {
    /// A text classifier.
    Classifier(Box<Classifier>),
    /// A time-series forecaster.
    Forecaster(Box<Forecaster>),
}

/// A loaded model with what its bundle said about itself.
#[derive(Debug)]
pub struct Loaded {
    /// The model, ready to answer.
    pub model: Model,
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// Bytes of the bundle file, and of its graph and tokenizer sections.
    pub file_bytes: u64,
    /// Bytes of the graph section.
    pub graph_bytes: usize,
    /// Bytes of the tokenizer section (0 for forecasters).
    pub tokenizer_bytes: usize,
    /// SHA-256 of the whole bundle file, as `sha256sum` prints it.
    pub sha256_hex: String,
    /// The key that signed the bundle (its signature checked), if it is signed.
    pub signer: Option<crate::signature::PublicKey>,
}

impl Model {
    /// Loads any bundle with the memory preflight of its kind (see [`crate::memory`]).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Loaded> {
        let meter = LoadMeter::start();
        let file = BundleFile::open(path)?;
        let manifest = file.manifest.clone();
        let file_bytes = file.file_bytes;
        let graph_bytes = file.graph_bytes();
        let tokenizer_bytes = file.tokenizer.as_ref().map_or(0, Vec::len);
        let sha256_hex = file.sha256_hex();
        let signer = file.signer.clone();
        let model = match &file.manifest.model {
            ModelKind::Classifier(_) => {
                Model::Classifier(Box::new(Classifier::load_file(meter, file, options)?))
            }
            ModelKind::Forecaster(_) => {
                Model::Forecaster(Box::new(Forecaster::load_file(meter, file, options)?))
            }
        };
        Ok(Loaded {
            model,
            manifest,
            file_bytes,
            graph_bytes,
            tokenizer_bytes,
            sha256_hex,
            signer,
        })
    }

    /// The memory report of the load, when measured.
    pub fn memory(&self) -> Option<&MemoryReport> {
        match self {
            Model::Classifier(c) => c.memory(),
            Model::Forecaster(f) => f.memory(),
        }
    }

    /// The graph input of the largest request the model accepts, and its description
    /// (`128 tokens`, `96 rows × 7 columns`).
    pub fn largest_input(&mut self) -> Result<(tract_nnef::prelude::Tensor, String)> {
        use tract_nnef::prelude::Tensor;
        let inference = crate::error::Error::inference;
        match self {
            Model::Classifier(c) => {
                let ids = c.longest_input()?;
                let desc = format!("{} tokens", ids.len());
                Ok((
                    Tensor::from_shape(&[1, ids.len()], &ids).map_err(inference)?,
                    desc,
                ))
            }
            Model::Forecaster(f) => {
                let (l, n) = (f.meta.lookback, f.meta.columns.len());
                let shape = if f.meta.channels_first {
                    [1, n, l]
                } else {
                    [1, l, n]
                };
                let window = vec![0f32; l * n];
                let desc = format!("{l} rows × {n} columns");
                Ok((
                    Tensor::from_shape(&shape, &window).map_err(inference)?,
                    desc,
                ))
            }
        }
    }

    /// The graph engine, for inspection and profiling.
    pub fn engine(&mut self) -> &mut crate::engine::Engine {
        match self {
            Model::Classifier(c) => c.engine(),
            Model::Forecaster(f) => f.engine(),
        }
    }
}
