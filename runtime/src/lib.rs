//! # kinglet-runtime
//!
//! Owns everything that happens on the device: reading and checking a `.kinglet` bundle
//! ([`bundle`]), tokenizing ([`tokenize`]), running the tract plan ([`engine`]) and turning its
//! outputs into answers ([`classify`]). It depends on `kinglet-firmware` (the wire protocol) and
//! must never depend on the exporter: nothing here parses ONNX or safetensors.

pub mod bundle;
pub mod classify;
pub mod cli;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod forecast;
pub mod graph_check;
#[cfg(feature = "http")]
pub mod http;
pub mod inspect;
pub mod install;
pub mod kernels;
pub mod lines;
pub mod manifest;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod nnef_ext;
pub mod ops;
pub mod plot;
pub mod reload;
pub mod serial;
pub mod series;
pub mod serve;
pub mod signature;
pub mod tokenize;
pub mod verify;
pub mod window;
pub mod workers;

pub use bundle::Bundle;
pub use classify::{Classification, Classifier};
pub use error::{Error, Result};
pub use forecast::Forecaster;
pub use manifest::Manifest;
pub use model::Model;

/// Version of this crate, recorded in every bundle the exporter writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from (`git rev-parse --short=12 HEAD` at build time,
/// or `$KINGLET_COMMIT`; `unknown` outside a checkout).
pub const COMMIT: &str = env!("KINGLET_COMMIT");

/// The tract release kinglet is built on (pinned exactly in the workspace's Cargo.toml: kinglet
/// uses tract's internal APIs).
pub const TRACT_VERSION: &str = "0.23.9";
