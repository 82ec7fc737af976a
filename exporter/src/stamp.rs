//! The last step of every export, and `kinglet-export sign`: name and version the bundle, and
//! sign it (see `kinglet_runtime::signature`).

use crate::error::{ExportError, Result};
use kinglet_runtime::signature::SecretKey;
use kinglet_runtime::Bundle;
use std::path::Path;

/// What to put on a written bundle.
#[derive(Debug, Default)]
pub struct Stamp {
    /// The model's name; `None` keeps the bundle's, or takes the file's stem if it has none.
    pub name: Option<String>,
    /// The model's version; `None` keeps the bundle's.
    pub version: Option<String>,
    /// Sign with this key.
    pub key: Option<SecretKey>,
}

/// What [`stamp`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StampReport {
    /// The name now in the bundle.
    pub name: String,
    /// The version now in the bundle (may be empty).
    pub version: String,
    /// The signer's public key line, when signed.
    pub signer: Option<String>,
    /// Bytes of the written file.
    pub bundle_bytes: u64,
}

/// Rewrites the bundle `input` as `output` (atomically; the two may be the same file) with the
/// stamp applied. The bundle is read and checked first, so a broken one is never signed.
pub fn stamp(input: &Path, output: &Path, stamp: &Stamp) -> Result<StampReport> {
    let mut bundle = Bundle::read(input)?;
    let m = &mut bundle.manifest;
    if let Some(name) = &stamp.name {
        m.name = name.clone();
    } else if m.name.is_empty() {
        m.name = output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    if let Some(version) = &stamp.version {
        m.version = version.clone();
    }
    m.validate()
        .map_err(|reason| ExportError::Unsupported(format!("--name/--model-version: {reason}")))?;
    let bytes = match &stamp.key {
        Some(key) => bundle.to_signed_bytes(key),
        None => bundle.to_bytes(),
    };
    kinglet_runtime::bundle::write_atomically(output, &bytes).map_err(ExportError::io(output))?;
    Ok(StampReport {
        name: bundle.manifest.name.clone(),
        version: bundle.manifest.version.clone(),
        signer: stamp.key.as_ref().map(|k| k.public().to_line()),
        bundle_bytes: bytes.len() as u64,
    })
}
