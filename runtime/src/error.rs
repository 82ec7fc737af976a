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
    /// The documented exit code of this error: `kinglet`'s exit status and the C API's
    /// status (1 other failure, 3 model cannot be loaded, 4 bad input, 5 self-test failed,
    /// 6 over the memory budget, 7 signature refused).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io { .. } | Error::BadBundle { .. } | Error::Unsupported { .. } => 3,
            Error::BadInput(_) | Error::Tokenizer(_) => 4,
            Error::Inference(_) | Error::Install { .. } => 1,
            Error::Budget(_) | Error::ArenaExceeded(_) => 6,
            Error::Signature { .. } => 7,
            Error::SelfTest(_) => 5,
        }
    }

    pub(crate) fn inference(e: impl std::fmt::Display) -> Error {
        Error::Inference(format!("{e:#}"))
    }
}
