//! Typed errors of the exporter library.

use std::path::PathBuf;

/// Everything that can stop an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint file is present but its content is wrong.
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    /// A required file is missing from the checkpoint directory.
    #[error("{path}: missing ({what})")]
    Missing { path: PathBuf, what: String },
    /// A tensor the architecture needs is absent or has the wrong shape or type.
    #[error("weights: {0}")]
    Weights(String),
    /// The checkpoint asks for something kinglet does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// tract refused the graph.
    #[error("graph: {0}")]
    Graph(String),
    /// The runtime failed on the freshly built bundle.
    #[error(transparent)]
    Runtime(#[from] kinglet_runtime::Error),
    /// The quantized model loses more accuracy than allowed.
    #[error("accuracy guard: {0}")]
    QualityGate(String),
    /// The reloaded bundle does not reproduce the exporter's outputs.
    #[error("self-test failed: {0}")]
    SelfTest(String),
}

/// Result alias of the exporter library.
pub type Result<T> = std::result::Result<T, ExportError>;

impl ExportError {
    pub(crate) fn graph(e: impl std::fmt::Display) -> ExportError {
        ExportError::Graph(format!("{e:#}"))
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
        move |source| ExportError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
