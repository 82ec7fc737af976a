//! # kinglet-runtime
//!
//! Runs a `.kinglet` bundle on an edge CPU: a text classifier (single texts, sentence pairs,
//! zero-shot labels), a sentence embedder, a token classifier or a time-series forecaster,
//! inside a fixed memory budget, with the bundle's checksum, signature and self-test checked
//! at load. It owns everything that happens on the device (bundle reading, tokenizing, the
//! tract plan and kinglet's kernels, the serial protocol's device side, the local HTTP API)
//! and never parses ONNX or safetensors (that is `kinglet-export`).
//!
//! ## Embedding it
//!
//! ```no_run
//! use kinglet_runtime::{Classifier, LoadOptions};
//!
//! // Counts allocations and gives inferences their fixed arena: without it a model loads and
//! // answers, but no memory budget is measured or enforced.
//! #[global_allocator]
//! static ALLOCATOR: kinglet_runtime::KingletAllocator = kinglet_runtime::KingletAllocator;
//!
//! fn main() -> Result<(), kinglet_runtime::Error> {
//!     let options = LoadOptions { budget_bytes: Some(48 << 20), ..LoadOptions::default() };
//!     let mut classifier = Classifier::load("models/sentiment.kinglet", &options)?;
//!     let answer = classifier.classify("an uplifting, beautifully acted film", None)?;
//!     println!("{} {:.4}", answer.label, answer.score);
//!     Ok(())
//! }
//! ```
//!
//! The surface: [`Model::load`] for any bundle, as the [`Task`] its manifest names (or
//! [`Classifier::load`], [`Embedder::load`], [`Tagger::load`], [`Forecaster::load`]), [`LoadOptions`], the answers ([`Classification`], [`Forecast`]), the
//! reports the CLI renders as text or JSON and the HTTP API returns ([`ModelReport`] from
//! [`inspect::model_report`], [`ModelVerification`] from [`verify::verify_loaded`],
//! [`BenchReport`] from [`bench::bench`], [`ClassifierEval`] and [`ForecasterEval`],
//! [`MemoryReport`]), [`Error`] with [`Error::exit_code`], the serial protocol engine
//! ([`serve::RuntimeEngine`] for [`kinglet_firmware::Device`], over any byte transport) and the
//! HTTP server ([`http`], feature `http`). `runtime/examples/` has runnable programs; the
//! workspace README's "From Rust" section has the profile settings an embedder must copy
//! (tract is unusably slow unoptimized). Modules marked hidden are shared with the exporter
//! and the tests and are not part of the API.

pub mod baselines;
pub mod bench;
pub mod classify;
pub mod embed;
pub mod error;
pub mod eval;
pub mod forecast;
#[cfg(feature = "http")]
pub mod http;
pub mod index;
pub mod inspect;
pub mod install;
pub mod layers;
pub mod manifest;
pub mod memory;
pub mod model;
pub mod reload;
pub mod serve;
pub mod signature;
pub mod tag;
pub mod task;
pub mod text;
pub mod verify;

#[doc(hidden)]
pub mod bundle;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod dataset;
#[doc(hidden)]
pub mod engine;
pub(crate) mod graph_check;
#[doc(hidden)]
pub mod kernels;
#[doc(hidden)]
pub mod lines;
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod nnef_ext;
#[doc(hidden)]
pub mod ops;
#[doc(hidden)]
pub mod plot;
#[doc(hidden)]
pub mod serial;
#[doc(hidden)]
pub mod series;
#[doc(hidden)]
pub mod tokenize;
pub(crate) mod window;
pub(crate) mod workers;

pub use bench::BenchReport;
pub use bundle::Bundle;
pub use classify::{Classification, Classifier};
pub use embed::{Embedder, Embedding};
pub use error::{Error, Result};
pub use eval::{ClassifierEval, ForecasterEval};
pub use forecast::{Forecast, Forecaster};
pub use inspect::ModelReport;
pub use manifest::Manifest;
pub use memory::{KingletAllocator, LoadOptions, MemoryReport};
pub use model::{Loaded, Model};
pub use tag::{Tagged, Tagger};
pub use task::{Task, TaskKind};
pub use verify::{ModelVerification, VerifyReport};

/// Version of this crate, recorded in every bundle the exporter writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from (`git rev-parse --short=12 HEAD` at build time,
/// or `$KINGLET_COMMIT`; `unknown` outside a checkout).
pub const COMMIT: &str = env!("KINGLET_COMMIT");

/// The tract release kinglet is built on (pinned exactly in the workspace's Cargo.toml: kinglet
/// uses tract's internal APIs).
pub const TRACT_VERSION: &str = "0.23.9";
