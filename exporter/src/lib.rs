//! # kinglet-exporter
//!
//! Owns turning a trained model into a `.kinglet` bundle: reading Hugging Face checkpoints
//! natively ([`checkpoint`], [`weights`]), building the tract graph for each model family
//! ([`bert`], [`distilbert`]) from shared blocks ([`graph`]), and writing a checked bundle
//! ([`export`]). It depends on `kinglet-runtime` (bundle format, NNEF dialect, engine) and is
//! never shipped to the device.

pub mod affine;
pub mod albert;
pub mod bert;
pub mod checkpoint;
pub mod cli;
pub mod distilbert;
pub mod error;
pub mod export;
pub mod fit;
pub mod forecast;
pub mod graph;
pub mod gru;
pub mod lstm;
pub mod onnx;
pub mod progress;
pub mod quantize;
pub mod rec;
pub(crate) mod seal;
pub mod sentence;
pub mod shared_weights;
pub mod stamp;
pub mod weights;

pub use error::{ExportError, Result};
