//! The `.kinglet` container: one file holding a manifest, a tract NNEF graph and, for text
//! models, a tokenizer.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `KINGLET\0` |
//! | 8 | 2 | format version ([`FORMAT_VERSION`]) |
//! | 10 | 2 | section count `n` |
//! | 12 | 8 | total file length in bytes, trailer included |
//! | 20 | 12 | reserved, zero |
//! | 32 | 32 × n | section table: name (16 bytes, NUL-padded ASCII), offset (u64, from file start), length (u64) |
//! | … | … | section bodies, in table order |
//! | len − 4 | 4 | CRC-32 (IEEE) of every preceding byte |
//!
//! The length field lets a truncated copy be named as such; the CRC catches bit flips anywhere.
//! Sections are `manifest` (JSON, see [`crate::manifest`]), `graph` (NNEF tar) and `tokenizer`
//! (Hugging Face tokenizer.json).

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use std::path::{Path, PathBuf};

/// First eight bytes of every bundle.
pub const MAGIC: &[u8; 8] = b"KINGLET\0";
/// Container version written by this crate; readers refuse newer ones.
pub const FORMAT_VERSION: u16 = 1;
const HEADER_BYTES: usize = 32;
const ENTRY_BYTES: usize = 32;
const NAME_BYTES: usize = 16;
const TRAILER_BYTES: usize = 4;

/// Section holding the JSON manifest.
pub const SECTION_MANIFEST: &str = "manifest";
/// Section holding the NNEF tar of the decluttered graph.
pub const SECTION_GRAPH: &str = "graph";
/// Section holding tokenizer.json, for text models.
pub const SECTION_TOKENIZER: &str = "tokenizer";

/// A bundle held in memory: its manifest and its raw sections.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where it was read from (for error messages); empty for a bundle built in memory.
    pub path: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// NNEF tar bytes of the graph.
    pub graph: Vec<u8>,
    /// tokenizer.json bytes, for text models.
    pub tokenizer: Option<Vec<u8>>,
}

impl Bundle {
    /// Reads and checks a bundle file: magic, version, length, checksum, sections, manifest.
    pub fn read(path: impl AsRef<Path>) -> Result<Bundle> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Bundle::from_bytes(&bytes, path)
    }

    /// Parses bundle bytes; `path` is only used to name the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Bundle> {
        let bad = |reason: String| Error::BadBundle {
            path: path.to_owned(),
            reason,
        };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(bad("not a kinglet bundle (bad magic bytes)".into()));
        }
        if bytes.len() < HEADER_BYTES + TRAILER_BYTES {
            return Err(bad(format!("truncated: only {} bytes", bytes.len())));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version} is not supported by this kinglet (reads version {FORMAT_VERSION}); \
                 re-export the model or upgrade kinglet"
            )));
        }
        let count = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
        let declared_bytes = read_u64(bytes, 12);
        if declared_bytes != bytes.len() as u64 {
            return Err(bad(format!(
                "truncated or padded: header says {declared_bytes} bytes, file has {}",
                bytes.len()
            )));
        }
        let body_end = bytes.len() - TRAILER_BYTES;
        let stored_crc = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
        let actual_crc = crc32fast::hash(&bytes[..body_end]);
        if stored_crc != actual_crc {
            return Err(bad(format!(
                "checksum mismatch (stored {stored_crc:08x}, computed {actual_crc:08x}): the file is corrupted"
            )));
        }
        let table_end = HEADER_BYTES + count * ENTRY_BYTES;
        if table_end > body_end {
            return Err(bad(format!(
                "section table of {count} entries overruns the file"
            )));
        }
        let mut manifest = None;
        let mut graph = None;
        let mut tokenizer = None;
        for i in 0..count {
            let entry = &bytes[HEADER_BYTES + i * ENTRY_BYTES..][..ENTRY_BYTES];
            let name_end = entry[..NAME_BYTES]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(NAME_BYTES);
            let name = std::str::from_utf8(&entry[..name_end])
                .map_err(|_| bad(format!("section {i} has a non-ASCII name")))?;
            let offset = read_u64(entry, NAME_BYTES);
            let len = read_u64(entry, NAME_BYTES + 8);
            let end = offset.checked_add(len).filter(|&e| e <= body_end as u64);
            let Some(end) = end.filter(|_| offset >= table_end as u64) else {
                return Err(bad(format!("section `{name}` lies outside the file")));
            };
            let body = bytes[offset as usize..end as usize].to_vec();
            match name {
                SECTION_MANIFEST => manifest = Some(body),
                SECTION_GRAPH => graph = Some(body),
                SECTION_TOKENIZER => tokenizer = Some(body),
                _ => {} // unknown sections are skipped: newer exporters may add optional ones
            }
        }
        let manifest = manifest.ok_or_else(|| bad("no `manifest` section".into()))?;
        let manifest: Manifest = serde_json::from_slice(&manifest)
            .map_err(|e| bad(format!("manifest is not valid: {e}")))?;
        let graph = graph.ok_or_else(|| bad("no `graph` section".into()))?;
        Ok(Bundle {
            path: path.to_owned(),
            manifest,
            graph,
            tokenizer,
        })
    }

    /// Serializes the bundle to bytes in the layout documented at the top of this module.
    pub fn to_bytes(&self) -> Vec<u8> {
        let manifest = serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes");
        let mut sections: Vec<(&str, &[u8])> =
            vec![(SECTION_MANIFEST, &manifest), (SECTION_GRAPH, &self.graph)];
        if let Some(tok) = &self.tokenizer {
            sections.push((SECTION_TOKENIZER, tok));
        }
        let table_end = HEADER_BYTES + sections.len() * ENTRY_BYTES;
        let total = table_end + sections.iter().map(|s| s.1.len()).sum::<usize>() + TRAILER_BYTES;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(sections.len() as u16).to_le_bytes());
        out.extend_from_slice(&(total as u64).to_le_bytes());
        out.resize(HEADER_BYTES, 0);
        let mut offset = table_end as u64;
        for (name, body) in &sections {
            let mut name_field = [0u8; NAME_BYTES];
            name_field[..name.len()].copy_from_slice(name.as_bytes());
            out.extend_from_slice(&name_field);
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&(body.len() as u64).to_le_bytes());
            offset += body.len() as u64;
        }
        for (_, body) in &sections {
            out.extend_from_slice(body);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len(), total);
        out
    }

    /// Writes the bundle atomically: to a temporary file beside `path`, then renamed over it,
    /// so a failure never leaves a partial bundle behind.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        write_atomically(path.as_ref(), &self.to_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ClassifierMeta, ModelKind, SelfTest};

    fn tiny() -> Bundle {
        Bundle {
            path: PathBuf::from("tiny.kinglet"),
            manifest: Manifest {
                exporter_version: "0.0.0".into(),
                architecture: "Test".into(),
                precision: "f32".into(),
                source: String::new(),
                parameter_count: 0,
                model: ModelKind::Classifier(ClassifierMeta {
                    labels: vec!["a".into(), "b".into()],
                    multi_label: false,
                    max_tokens: 8,
                    max_position_embeddings: 8,
                }),
                self_test: SelfTest::default(),
                quantization: None,
            },
            graph: b"graph-bytes".to_vec(),
            tokenizer: Some(b"{}".to_vec()),
        }
    }

    #[test]
    fn header_layout_is_pinned() {
        let bytes = tiny().to_bytes();
        assert_eq!(&bytes[..8], b"KINGLET\0");
        assert_eq!(&bytes[8..12], [1, 0, 3, 0], "version 1, three sections");
        assert_eq!(
            u64::from_le_bytes(bytes[12..20].try_into().unwrap()),
            bytes.len() as u64
        );
        assert_eq!(&bytes[20..32], [0; 12]);
        assert_eq!(&bytes[32..48], b"manifest\0\0\0\0\0\0\0\0");
        assert_eq!(
            u64::from_le_bytes(bytes[48..56].try_into().unwrap()),
            32 + 3 * 32
        );
        let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&bytes[..bytes.len() - 4]));
    }

    #[test]
    fn round_trips_through_bytes() {
        let b = tiny();
        let back = Bundle::from_bytes(&b.to_bytes(), Path::new("x")).unwrap();
        assert_eq!(back.manifest, b.manifest);
        assert_eq!(back.graph, b.graph);
        assert_eq!(back.tokenizer, b.tokenizer);
    }

    #[test]
    fn refuses_every_truncation() {
        let bytes = tiny().to_bytes();
        for len in 0..bytes.len() {
            assert!(
                Bundle::from_bytes(&bytes[..len], Path::new("x")).is_err(),
                "length {len}"
            );
        }
    }

    #[test]
    fn refuses_any_single_bit_flip() {
        let bytes = tiny().to_bytes();
        for at in 0..bytes.len() {
            let mut spoiled = bytes.clone();
            spoiled[at] ^= 1 << (at % 8);
            assert!(
                Bundle::from_bytes(&spoiled, Path::new("x")).is_err(),
                "byte {at}"
            );
        }
    }

    #[test]
    fn refuses_newer_format_version_by_name() {
        let mut bytes = tiny().to_bytes();
        bytes[8] = 2;
        let err = Bundle::from_bytes(&bytes, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 2"), "{err}");
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.kinglet");
        tiny().write(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.kinglet")]);
    }
}
