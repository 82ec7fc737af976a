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
//! Sections are `manifest` (JSON, see [`crate::manifest`]), `graph` (NNEF tar), `tokenizer`
//! (Hugging Face tokenizer.json) and, in a signed bundle, `signature` (last, directly before the
//! CRC; see [`crate::signature`]).

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::signature::{PublicKey, SecretKey, SECTION_SIGNATURE, SIGNATURE_BYTES};
use sha2::Digest as _;
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
    /// Who signed the file it was read from (its signature checked); `None` if unsigned.
    /// [`Bundle::to_bytes`] writes an unsigned bundle, [`Bundle::to_signed_bytes`] a signed one.
    pub signer: Option<PublicKey>,
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
        let layout = Layout::parse(bytes, bytes.len() as u64, path)?;
        let body_end = bytes.len() - TRAILER_BYTES;
        let stored_crc = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
        check_crc(stored_crc, crc32fast::hash(&bytes[..body_end]), path)?;
        let signer = match layout.signature(body_end, path)? {
            Some(sig) => Some(
                crate::signature::check_body(
                    &bytes[sig.clone()],
                    &sha2::Sha256::digest(&bytes[..sig.start]).into(),
                )
                .map_err(|reason| signature_error(path, reason))?,
            ),
            None => None,
        };
        let section = |name: &str| layout.get(name).map(|r| bytes[r].to_vec());
        let manifest = layout.manifest(section(SECTION_MANIFEST), path)?;
        let graph = section(SECTION_GRAPH).ok_or_else(|| bad(path, "no `graph` section"))?;
        Ok(Bundle {
            path: path.to_owned(),
            manifest,
            graph,
            tokenizer: section(SECTION_TOKENIZER),
            signer,
        })
    }

    /// Serializes the bundle to bytes in the layout documented at the top of this module,
    /// unsigned.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode(None)
    }

    /// Serializes the bundle signed by `key`: a last `signature` section holds the Ed25519
    /// signature of every byte before it (see [`crate::signature`]).
    pub fn to_signed_bytes(&self, key: &SecretKey) -> Vec<u8> {
        self.encode(Some(key))
    }

    fn encode(&self, key: Option<&SecretKey>) -> Vec<u8> {
        let manifest = serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes");
        let mut sections: Vec<(&str, &[u8])> =
            vec![(SECTION_MANIFEST, &manifest), (SECTION_GRAPH, &self.graph)];
        if let Some(tok) = &self.tokenizer {
            sections.push((SECTION_TOKENIZER, tok));
        }
        // signed last, over everything before it; a placeholder until then
        let placeholder = [0u8; SIGNATURE_BYTES];
        if key.is_some() {
            sections.push((SECTION_SIGNATURE, &placeholder));
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
        for (name, body) in &sections {
            match key {
                Some(key) if *name == SECTION_SIGNATURE => {
                    let digest: [u8; 32] = sha2::Sha256::digest(&out).into();
                    out.extend_from_slice(&key.sign_digest(&digest));
                }
                _ => out.extend_from_slice(body),
            }
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

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadBundle {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn signature_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Signature {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn check_crc(stored: u32, actual: u32, path: &Path) -> Result<()> {
    if stored != actual {
        return Err(bad(
            path,
            format!("checksum mismatch (stored {stored:08x}, computed {actual:08x}): the file is corrupted"),
        ));
    }
    Ok(())
}

/// Where each section lies, read from a bundle's header and section table and checked
/// against the file's length.
struct Layout {
    sections: Vec<(String, std::ops::Range<usize>)>,
}

impl Layout {
    /// Parses the header and section table at the start of `head` (which holds at least the
    /// table, or the whole file if shorter) of a file of `file_bytes` bytes.
    fn parse(head: &[u8], file_bytes: u64, path: &Path) -> Result<Layout> {
        if head.len() < 8 || &head[..8] != MAGIC {
            return Err(bad(path, "not a kinglet bundle (bad magic bytes)"));
        }
        if head.len() < HEADER_BYTES + TRAILER_BYTES {
            return Err(bad(path, format!("truncated: only {file_bytes} bytes")));
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != FORMAT_VERSION {
            return Err(bad(
                path,
                format!(
                    "format version {version} is not supported by this kinglet (reads version {FORMAT_VERSION}); \
                     re-export the model or upgrade kinglet"
                ),
            ));
        }
        let count = u16::from_le_bytes([head[10], head[11]]) as usize;
        let declared_bytes = read_u64(head, 12);
        if declared_bytes != file_bytes {
            return Err(bad(
                path,
                format!("truncated or padded: header says {declared_bytes} bytes, file has {file_bytes}"),
            ));
        }
        let body_end = file_bytes - TRAILER_BYTES as u64;
        let table_end = HEADER_BYTES + count * ENTRY_BYTES;
        if table_end as u64 > body_end || table_end > head.len() {
            return Err(bad(
                path,
                format!("section table of {count} entries overruns the file"),
            ));
        }
        let mut sections = Vec::with_capacity(count);
        for i in 0..count {
            let entry = &head[HEADER_BYTES + i * ENTRY_BYTES..][..ENTRY_BYTES];
            let name_end = entry[..NAME_BYTES]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(NAME_BYTES);
            let name = std::str::from_utf8(&entry[..name_end])
                .map_err(|_| bad(path, format!("section {i} has a non-ASCII name")))?;
            let offset = read_u64(entry, NAME_BYTES);
            let len = read_u64(entry, NAME_BYTES + 8);
            let end = offset.checked_add(len).filter(|&e| e <= body_end);
            let Some(end) = end.filter(|_| offset >= table_end as u64) else {
                return Err(bad(path, format!("section `{name}` lies outside the file")));
            };
            // unknown sections are kept but unused: newer exporters may add optional ones
            sections.push((name.to_string(), offset as usize..end as usize));
        }
        Ok(Layout { sections })
    }

    fn get(&self, name: &str) -> Option<std::ops::Range<usize>> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
    }

    /// Where the signature lies, if the bundle is signed: it must be the last section, of
    /// [`SIGNATURE_BYTES`], ending where the CRC starts, so that every other byte is signed.
    fn signature(&self, body_end: usize, path: &Path) -> Result<Option<std::ops::Range<usize>>> {
        let Some(at) = self
            .sections
            .iter()
            .position(|(n, _)| n == SECTION_SIGNATURE)
        else {
            return Ok(None);
        };
        let range = self.sections[at].1.clone();
        let after_every_other = self
            .sections
            .iter()
            .enumerate()
            .all(|(i, (_, r))| i == at || r.end <= range.start);
        if at + 1 != self.sections.len()
            || range.len() != SIGNATURE_BYTES
            || range.end != body_end
            || !after_every_other
        {
            return Err(signature_error(
                path,
                "its signature section is not the last thing before the checksum",
            ));
        }
        Ok(Some(range))
    }

    fn manifest(&self, body: Option<Vec<u8>>, path: &Path) -> Result<Manifest> {
        let body = body.ok_or_else(|| bad(path, "no `manifest` section"))?;
        let manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| bad(path, format!("manifest is not valid: {e}")))?;
        // checked before anything is sized from it
        manifest
            .validate()
            .map_err(|reason| bad(path, format!("manifest: {reason}")))?;
        Ok(manifest)
    }
}

/// A checked bundle file whose graph is left on disk until it is parsed, so loading never
/// holds the graph's bytes in memory besides the tensors made from them.
#[derive(Debug)]
pub struct BundleFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// tokenizer.json bytes, for text models.
    pub tokenizer: Option<Vec<u8>>,
    /// Length of the whole file.
    pub file_bytes: u64,
    /// SHA-256 of the whole file, as `sha256sum` prints it.
    pub sha256: [u8; 32],
    /// Who signed it (the signature checked against every byte before it); `None` if unsigned.
    pub signer: Option<PublicKey>,
    graph: std::ops::Range<usize>,
    /// CRC-32 of the graph section as the checksum pass read it.
    graph_crc: u32,
    /// The file that was checked: the graph is parsed from this same open file, never from
    /// the path again, so a file put in its place after the check is not loaded.
    file: std::fs::File,
}

impl BundleFile {
    /// Opens a bundle: checks magic, version, length and the checksum of every byte (read in
    /// chunks), then reads the manifest and tokenizer.
    pub fn open(path: impl AsRef<Path>) -> Result<BundleFile> {
        use std::io::{Read, Seek, SeekFrom};
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        let mut head = vec![0u8; HEADER_BYTES.min(file_bytes as usize)];
        file.read_exact(&mut head).map_err(io)?;
        if head.len() == HEADER_BYTES && head.starts_with(MAGIC) {
            // the section table follows the header; `Layout::parse` checks it fits the file
            let count = u16::from_le_bytes([head[10], head[11]]) as usize;
            let table_end = (HEADER_BYTES + count * ENTRY_BYTES).min(file_bytes as usize);
            head.resize(table_end.max(HEADER_BYTES), 0);
            file.read_exact(&mut head[HEADER_BYTES..]).map_err(io)?;
        }
        let layout = Layout::parse(&head, file_bytes, path)?;
        let graph = layout
            .get(SECTION_GRAPH)
            .ok_or_else(|| bad(path, "no `graph` section"))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let body_end = file_bytes - TRAILER_BYTES as u64;
        let signature = layout.signature(body_end as usize, path)?;
        let signed_end = signature.as_ref().map_or(usize::MAX, |r| r.start);
        let mut hasher = crc32fast::Hasher::new();
        let mut graph_hasher = crc32fast::Hasher::new();
        let mut sha = sha2::Sha256::new();
        let mut signed_digest = None;
        let mut chunk = vec![0u8; 1 << 16];
        let mut body = (&mut file).take(body_end);
        let mut at = 0usize;
        loop {
            let n = body.read(&mut chunk).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            let (from, to) = (graph.start.max(at), graph.end.min(at + n));
            if from < to {
                graph_hasher.update(&chunk[from - at..to - at]);
            }
            if (at..at + n).contains(&signed_end) {
                // the signed bytes end inside this chunk: keep their digest, hash on
                sha.update(&chunk[..signed_end - at]);
                signed_digest = Some(sha.clone().finalize());
                sha.update(&chunk[signed_end - at..n]);
            } else {
                sha.update(&chunk[..n]);
            }
            at += n;
        }
        let mut trailer = [0u8; TRAILER_BYTES];
        file.read_exact(&mut trailer).map_err(io)?;
        check_crc(u32::from_le_bytes(trailer), hasher.finalize(), path)?;
        sha.update(trailer);
        let mut section = |name: &str| -> Result<Option<Vec<u8>>> {
            let Some(range) = layout.get(name) else {
                return Ok(None);
            };
            let mut body = vec![0u8; range.len()];
            file.seek(SeekFrom::Start(range.start as u64)).map_err(io)?;
            file.read_exact(&mut body).map_err(io)?;
            Ok(Some(body))
        };
        let signer = match (&signature, signed_digest) {
            (Some(_), Some(digest)) => {
                let body = section(SECTION_SIGNATURE)?.expect("the section was found");
                Some(
                    crate::signature::check_body(&body, &digest.into())
                        .map_err(|reason| signature_error(path, reason))?,
                )
            }
            (Some(_), None) => return Err(signature_error(path, "its signature was not read")),
            (None, _) => None,
        };
        let manifest = layout.manifest(section(SECTION_MANIFEST)?, path)?;
        let tokenizer = section(SECTION_TOKENIZER)?;
        Ok(BundleFile {
            path: path.to_owned(),
            manifest,
            tokenizer,
            file_bytes,
            sha256: sha.finalize().into(),
            signer,
            graph,
            graph_crc: graph_hasher.finalize(),
            file,
        })
    }

    /// Refuses the bundle unless one of `trusted` signed it (nothing to check when `None`:
    /// the signature of a signed bundle was checked at open).
    pub fn check_trust(&self, trusted: Option<&crate::signature::TrustedKeys>) -> Result<()> {
        let Some(trusted) = trusted else {
            return Ok(());
        };
        match &self.signer {
            Some(signer) if trusted.trusts(signer) => Ok(()),
            Some(signer) => Err(signature_error(
                &self.path,
                format!(
                    "it is signed by {}, which is not among the {} trusted key(s) in {}",
                    signer.to_hex(),
                    trusted.keys.len(),
                    trusted.path.display()
                ),
            )),
            None => Err(signature_error(
                &self.path,
                format!(
                    "it is not signed, and signatures by the keys in {} are required",
                    trusted.path.display()
                ),
            )),
        }
    }

    /// SHA-256 of the whole file as 64 hex digits (what `sha256sum` prints).
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// Length of the graph section (the NNEF tar).
    pub fn graph_bytes(&self) -> usize {
        self.graph.len()
    }

    /// Parses the graph section straight from the checked file into a tract model. The bytes
    /// parsed are hashed again on the way: if they are not those the checksum pass read (the
    /// file was written to in between), the model is refused.
    pub fn read_graph(&self) -> Result<tract_nnef::prelude::TypedModel> {
        use std::io::{Read, Seek, SeekFrom};
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.graph.start as u64))
            .map_err(io)?;
        let mut magic = [0u8; 2];
        file.read_exact(&mut magic).map_err(io)?;
        if magic == [0x1f, 0x8b] {
            // a compressed graph could expand without bound before any size check
            return Err(bad(
                &self.path,
                "the graph section is gzip-compressed; bundles hold a plain NNEF tar",
            ));
        }
        crate::graph_check::check_nnef_tar(
            &mut file,
            self.graph.start as u64,
            self.graph.len() as u64,
        )
        .map_err(|e| bad(&self.path, format!("graph: {e}")))?;
        file.seek(SeekFrom::Start(self.graph.start as u64))
            .map_err(io)?;
        let mut hashed = Hashed {
            inner: file.take(self.graph.len() as u64),
            hasher: crc32fast::Hasher::new(),
        };
        let parsed = {
            let mut reader = std::io::BufReader::new(&mut hashed);
            use tract_nnef::prelude::Framework;
            crate::nnef_ext::nnef().model_for_read(&mut reader)
        };
        // the tar reader may stop before the section's end: hash the rest too
        std::io::copy(&mut hashed, &mut std::io::sink()).map_err(io)?;
        if hashed.hasher.finalize() != self.graph_crc {
            return Err(bad(
                &self.path,
                "the graph changed on disk while it was loaded",
            ));
        }
        parsed.map_err(|e| bad(&self.path, format!("graph: {e:#}")))
    }
}

/// A reader that hashes what passes through it.
struct Hashed<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: std::io::Read> std::io::Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
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
                name: String::new(),
                version: String::new(),
                architecture: "Test".into(),
                precision: "f32".into(),
                source: String::new(),
                parameter_count: 0,
                model: ModelKind::Classifier(ClassifierMeta {
                    labels: vec!["a".into(), "b".into()],
                    multi_label: false,
                    max_tokens: 8,
                    max_position_embeddings: 8,
                    embedding: None,
                    per_token: false,
                }),
                self_test: SelfTest::default(),
                quantization: None,
                memory: None,
            },
            graph: b"graph-bytes".to_vec(),
            tokenizer: Some(b"{}".to_vec()),
            signer: None,
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
    fn opened_file_holds_the_same_sections_as_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.kinglet");
        let b = tiny();
        b.write(&path).unwrap();
        let f = BundleFile::open(&path).unwrap();
        assert_eq!(f.manifest, b.manifest);
        assert_eq!(f.tokenizer, b.tokenizer);
        assert_eq!(f.graph_bytes(), b.graph.len());
        assert_eq!(f.file_bytes, b.to_bytes().len() as u64);
    }

    #[test]
    fn opening_refuses_every_truncation_and_bit_flip_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.kinglet");
        let bytes = tiny().to_bytes();
        for len in 0..bytes.len() {
            std::fs::write(&path, &bytes[..len]).unwrap();
            assert!(BundleFile::open(&path).is_err(), "length {len}");
        }
        for at in 0..bytes.len() {
            let mut spoiled = bytes.clone();
            spoiled[at] ^= 1 << (at % 8);
            std::fs::write(&path, &spoiled).unwrap();
            assert!(BundleFile::open(&path).is_err(), "byte {at}");
        }
        std::fs::write(&path, b"just some text that is not a bundle at all").unwrap();
        let err = BundleFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a kinglet bundle"), "{err}");
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

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name)
    }

    #[test]
    fn a_bundle_replaced_after_its_check_is_not_the_one_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("current.kinglet");
        std::fs::copy(shipped("etth1-dlinear.kinglet"), &path).unwrap();
        let opened = BundleFile::open(&path).unwrap();
        // another valid bundle takes its place, as an attacker's rename would do
        let other = std::fs::read(shipped("etth1-lstm.kinglet")).unwrap();
        write_atomically(&path, &other).unwrap();
        let loaded = opened.read_graph().unwrap();
        let want = BundleFile::open(shipped("etth1-dlinear.kinglet"))
            .unwrap()
            .read_graph()
            .unwrap();
        assert_eq!(loaded.nodes.len(), want.nodes.len());
        let lstm = BundleFile::open(&path).unwrap().read_graph().unwrap();
        assert_ne!(
            loaded.nodes.len(),
            lstm.nodes.len(),
            "the two graphs differ"
        );
    }

    #[test]
    fn a_graph_written_to_after_its_check_is_refused() {
        use std::io::{Seek, SeekFrom, Write};
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("b.kinglet");
        std::fs::copy(shipped("etth1-dlinear.kinglet"), &path).unwrap();
        let opened = BundleFile::open(&path).unwrap();
        let mut same_file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let at = (opened.graph.start + opened.graph.len() / 2) as u64;
        same_file.seek(SeekFrom::Start(at)).unwrap();
        same_file.write_all(&[0x55; 64]).unwrap();
        drop(same_file);
        let e = opened.read_graph().unwrap_err();
        assert!(e.to_string().contains("changed on disk"), "{e}");
    }

    #[test]
    fn a_compressed_graph_is_refused_before_it_is_expanded() {
        let mut b = tiny();
        b.graph = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("gz.kinglet");
        b.write(&path).unwrap();
        let e = BundleFile::open(&path).unwrap().read_graph().unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e}");
    }
}
