//! Typed errors of the runtime library. The CLI maps each kind to an exit code.

use std::path::PathBuf;

/// Everything that can go wrong while loading a bundle or running it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle file could not be read at all.
    #[error("cannot read bundle {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bundle's bytes are not a valid kinglet bundle (bad magic, truncated, bad checksum …).
    #[error("bundle {path} is invalid: {reason}")]
    BadBundle { path: PathBuf, reason: String },
    /// The bundle's signature is broken, or it is not signed by a trusted key when one is
    /// required.
    #[error("bundle {path} is refused: {reason}")]
    Signature { path: PathBuf, reason: String },
    /// The bundle is valid but its manifest says something this runtime cannot honour.
    #[error("bundle {path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    /// The input given to the model is not acceptable (empty text, too long, NaN …).
    #[error("{0}")]
    BadInput(String),
    /// tract failed while optimizing or running the graph.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The tokenizer failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The model does not fit the memory budget (refused at load).
    #[error("memory budget: {0}")]
    Budget(String),
    /// One inference outgrew the arena reserved at load; only that request failed.
    #[error("memory arena: {0}")]
    ArenaExceeded(String),
    /// The bundle loaded but its self-test vectors no longer match (refused by an install).
    #[error("self-test failed: {0}")]
    SelfTest(String),
    /// An install directory could not be read or switched (see [`crate::install`]).
    #[error("install directory {dir}: {reason}")]
    Install { dir: PathBuf, reason: String },
}

/// Result alias of the runtime library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn inference(e: impl std::fmt::Display) -> Error {
        Error::Inference(format!("{e:#}"))
    }
}
