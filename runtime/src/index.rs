//! A local search index: sentence vectors of documents, stored compactly, searched exactly.
//!
//! `kinglet index build` embeds every document with a sentence-embedding bundle and writes a
//! `.kidx` file; `kinglet search` embeds a query with the same bundle and ranks every document
//! by cosine similarity (exact: every vector is scored, no approximate structure).
//!
//! # File format (version 1), all integers little-endian
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `KIDX` |
//! | 2 | version, `1` |
//! | 1 | storage: 0 f32, 1 f16, 2 int8 |
//! | 1 | reserved, 0 |
//! | 4 | dimensions `d` |
//! | 4 | documents `n` |
//! | 32 | SHA-256 of the bundle that made the vectors |
//! | n × … | vectors: f32 `4d` bytes; f16 `2d` bytes; int8 a scale (f32) then `d` bytes |
//! | n × … | documents: byte length (u32), then the UTF-8 text |
//!
//! The golden bytes of a two-document index are in this module's tests.

use crate::error::{Error, Result};

/// How the index stores each vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// 4 bytes per value, as computed.
    F32,
    /// 2 bytes per value (half precision).
    F16,
    /// 1 byte per value and a scale per vector (symmetric, `max |v| / 127`).
    Int8,
}

impl Storage {
    fn code(self) -> u8 {
        match self {
            Storage::F32 => 0,
            Storage::F16 => 1,
            Storage::Int8 => 2,
        }
    }

    fn from_code(code: u8) -> Option<Storage> {
        match code {
            0 => Some(Storage::F32),
            1 => Some(Storage::F16),
            2 => Some(Storage::Int8),
            _ => None,
        }
    }

    /// Bytes of one stored vector of `dims` values.
    pub fn vector_bytes(self, dims: usize) -> usize {
        match self {
            Storage::F32 => 4 * dims,
            Storage::F16 => 2 * dims,
            Storage::Int8 => 4 + dims,
        }
    }

    /// `f32`, `f16` or `int8`.
    pub fn name(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Storage {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Storage, String> {
        match s {
            "f32" => Ok(Storage::F32),
            "f16" => Ok(Storage::F16),
            "int8" => Ok(Storage::Int8),
            other => Err(format!("storage `{other}`: f32, f16 or int8")),
        }
    }
}

const MAGIC: &[u8; 4] = b"KIDX";
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 48;
/// Most dimensions an index accepts (as a bundle's embedding).
pub const MAX_DIMENSIONS: usize = crate::manifest::limits::MAX_EMBEDDING_DIMENSIONS;

/// A loaded (or built) index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    /// How the vectors are stored.
    pub storage: Storage,
    /// Values per vector.
    pub dims: usize,
    /// SHA-256 of the bundle that embedded the documents.
    pub model_sha256: [u8; 32],
    /// The stored vectors, `documents × storage.vector_bytes(dims)` bytes.
    vectors: Vec<u8>,
    /// Euclidean length of every stored vector (as stored, after rounding).
    norms: Vec<f32>,
    /// The documents, in file order.
    pub texts: Vec<String>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Position of the document in the index (its line among the non-blank input lines).
    pub document: usize,
    /// Cosine similarity to the query.
    pub score: f32,
}

impl Index {
    /// Stores `vectors` (one per text, each `dims` long) at `storage`.
    pub fn build(
        vectors: &[Vec<f32>],
        texts: Vec<String>,
        storage: Storage,
        model_sha256: [u8; 32],
    ) -> Result<Index> {
        let dims = vectors.first().map_or(0, Vec::len);
        if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != dims) {
            return Err(Error::BadInput(
                "every document needs one vector of the same length".into(),
            ));
        }
        let mut bytes = Vec::with_capacity(vectors.len() * storage.vector_bytes(dims));
        for v in vectors {
            match storage {
                Storage::F32 => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
                Storage::F16 => v
                    .iter()
                    .for_each(|x| bytes.extend(half::f16::from_f32(*x).to_le_bytes())),
                Storage::Int8 => {
                    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                    bytes.extend(scale.to_le_bytes());
                    bytes.extend(
                        v.iter()
                            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8 as u8),
                    );
                }
            }
        }
        Index::assemble(storage, dims, model_sha256, bytes, texts)
    }

    fn assemble(
        storage: Storage,
        dims: usize,
        model_sha256: [u8; 32],
        vectors: Vec<u8>,
        texts: Vec<String>,
    ) -> Result<Index> {
        let mut index = Index {
            storage,
            dims,
            model_sha256,
            vectors,
            norms: Vec::new(),
            texts,
        };
        index.norms = (0..index.len())
            .map(|i| {
                let v = index.vector(i);
                v.iter().map(|x| x * x).sum::<f32>().sqrt()
            })
            .collect();
        Ok(index)
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// True when the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Document `i`'s vector as stored, widened to f32.
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let size = self.storage.vector_bytes(self.dims);
        let raw = &self.vectors[i * size..(i + 1) * size];
        match self.storage {
            Storage::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Storage::F16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Storage::Int8 => {
                let scale = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                raw[4..].iter().map(|&q| q as i8 as f32 * scale).collect()
            }
        }
    }

    /// The `k` documents most similar to `query` (cosine), best first; ties keep file order.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        if query.len() != self.dims {
            return Err(Error::BadInput(format!(
                "the query has {} values; the index's vectors have {}",
                query.len(),
                self.dims
            )));
        }
        let query_norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let size = self.storage.vector_bytes(self.dims);
        let mut hits: Vec<Hit> = Vec::with_capacity(self.len());
        for (i, raw) in self.vectors.chunks_exact(size.max(1)).enumerate() {
            let dot = match self.storage {
                Storage::F32 => raw
                    .chunks_exact(4)
                    .zip(query)
                    .map(|(b, q)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * q)
                    .sum::<f32>(),
                Storage::F16 => raw
                    .chunks_exact(2)
                    .zip(query)
                    .map(|(b, q)| half::f16::from_le_bytes([b[0], b[1]]).to_f32() * q)
                    .sum::<f32>(),
                Storage::Int8 => {
                    let scale = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                    let dot: f32 = raw[4..]
                        .iter()
                        .zip(query)
                        .map(|(&v, q)| v as i8 as f32 * q)
                        .sum();
                    dot * scale
                }
            };
            let denominator = self.norms[i] * query_norm;
            let score = if denominator > 0.0 {
                dot / denominator
            } else {
                0.0
            };
            hits.push(Hit { document: i, score });
        }
        // the best `k` first (a partial selection, not a sort of every document), then in order
        let order = |a: &Hit, b: &Hit| {
            b.score
                .total_cmp(&a.score)
                .then(a.document.cmp(&b.document))
        };
        if k < hits.len() {
            hits.select_nth_unstable_by(k, order);
            hits.truncate(k);
        }
        hits.sort_by(order);
        Ok(hits)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.vectors.len());
        out.extend(MAGIC);
        out.extend(VERSION.to_le_bytes());
        out.push(self.storage.code());
        out.push(0);
        out.extend((self.dims as u32).to_le_bytes());
        out.extend((self.len() as u32).to_le_bytes());
        out.extend(self.model_sha256);
        out.extend(&self.vectors);
        for text in &self.texts {
            out.extend((text.len() as u32).to_le_bytes());
            out.extend(text.as_bytes());
        }
        out
    }

    /// Reads an index file's bytes, checking every length against the file (a damaged or
    /// hostile file is an error, never a panic or an allocation it does not back).
    pub fn from_bytes(bytes: &[u8]) -> Result<Index> {
        let bad = |what: String| Error::BadInput(format!("not a kinglet index: {what}"));
        if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
            return Err(bad("no KIDX header".into()));
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(bad(format!(
                "version {version}; this kinglet reads {VERSION}"
            )));
        }
        let storage = Storage::from_code(bytes[6])
            .ok_or_else(|| bad(format!("storage code {}", bytes[6])))?;
        let dims = u32_at(8) as usize;
        let count = u32_at(12) as usize;
        if !(1..=MAX_DIMENSIONS).contains(&dims) {
            return Err(bad(format!("{dims} dimensions; 1 to {MAX_DIMENSIONS}")));
        }
        let mut model_sha256 = [0u8; 32];
        model_sha256.copy_from_slice(&bytes[16..48]);
        let vectors_bytes = count
            .checked_mul(storage.vector_bytes(dims))
            .filter(|&n| n <= bytes.len() - HEADER_BYTES)
            .ok_or_else(|| bad(format!("{count} vectors of {dims} values overrun the file")))?;
        let vectors = bytes[HEADER_BYTES..HEADER_BYTES + vectors_bytes].to_vec();
        let mut at = HEADER_BYTES + vectors_bytes;
        let mut texts = Vec::with_capacity(count.min(bytes.len() / 4));
        for i in 0..count {
            if at + 4 > bytes.len() {
                return Err(bad(format!("document {i} is cut off")));
            }
            let len = u32_at(at) as usize;
            at += 4;
            let text = bytes
                .get(at..at.saturating_add(len))
                .ok_or_else(|| bad(format!("document {i} overruns the file")))?;
            let text =
                std::str::from_utf8(text).map_err(|_| bad(format!("document {i} is not UTF-8")))?;
            texts.push(text.to_string());
            at += len;
        }
        if at != bytes.len() {
            return Err(bad(format!(
                "{} bytes after the last document",
                bytes.len() - at
            )));
        }
        let index = Index::assemble(storage, dims, model_sha256, vectors, texts)?;
        if index.norms.iter().any(|n| !n.is_finite()) {
            return Err(bad(
                "a vector holds a value that is not a finite number".into()
            ));
        }
        Ok(index)
    }
}

/// Exact top-`k` of `query` among f32 `vectors` by cosine (the reference a compact index is
/// measured against).
pub fn exact_top_k(vectors: &[Vec<f32>], query: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(usize, f32)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (i, crate::embed::cosine(v, query)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(k).map(|(i, _)| i).collect()
}

/// How often the compact index's top `k` holds the exact f32 top `k`, over `queries` (indices
/// of documents used as queries): the fraction of the exact results found.
pub fn recall_at(index: &Index, vectors: &[Vec<f32>], queries: &[usize], k: usize) -> Result<f64> {
    let (mut found, mut wanted) = (0usize, 0usize);
    for &q in queries {
        let exact = exact_top_k(vectors, &vectors[q], k);
        let got: Vec<usize> = index
            .search(&vectors[q], k)?
            .iter()
            .map(|h| h.document)
            .collect();
        found += exact.iter().filter(|d| got.contains(d)).count();
        wanted += exact.len();
    }
    Ok(found as f64 / wanted.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(storage: Storage) -> Index {
        let vectors = vec![vec![1.0, 0.0], vec![0.6, 0.8]];
        Index::build(&vectors, vec!["a".into(), "bc".into()], storage, [7; 32]).unwrap()
    }

    #[test]
    fn the_file_format_is_the_documented_bytes() {
        let bytes = tiny(Storage::F32).to_bytes();
        let mut want = Vec::new();
        want.extend(b"KIDX");
        want.extend([1, 0, 0, 0]); // version 1, f32, reserved
        want.extend([2, 0, 0, 0, 2, 0, 0, 0]); // 2 dimensions, 2 documents
        want.extend([7; 32]);
        want.extend([0x00, 0x00, 0x80, 0x3f, 0, 0, 0, 0]); // 1.0, 0.0
        want.extend([0x9a, 0x99, 0x19, 0x3f, 0xcd, 0xcc, 0x4c, 0x3f]); // 0.6, 0.8
        want.extend([1, 0, 0, 0, b'a', 2, 0, 0, 0, b'b', b'c']);
        assert_eq!(bytes, want);
        assert_eq!(Index::from_bytes(&bytes).unwrap(), tiny(Storage::F32));
        // int8: a scale per vector (1/127 = 0x3c010204), then one byte per value
        let int8 = tiny(Storage::Int8).to_bytes();
        assert_eq!(&int8[48..54], &[0x04, 0x02, 0x01, 0x3c, 127, 0][..]);
    }

    #[test]
    fn search_ranks_by_cosine_at_every_storage() {
        for storage in [Storage::F32, Storage::F16, Storage::Int8] {
            let index = tiny(storage);
            let hits = index.search(&[0.0, 2.0], 2).unwrap();
            assert_eq!(hits[0].document, 1, "{storage:?}");
            assert!((hits[0].score - 0.8).abs() < 0.01, "{storage:?}: {hits:?}");
            let back = Index::from_bytes(&index.to_bytes()).unwrap();
            assert_eq!(back.search(&[0.0, 2.0], 2).unwrap(), hits);
        }
    }

    #[test]
    fn a_damaged_index_is_an_error_not_a_panic() {
        let bytes = tiny(Storage::Int8).to_bytes();
        for cut in 0..bytes.len() {
            assert!(Index::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Index::from_bytes(&huge).is_err());
        let mut dims = bytes.clone();
        dims[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(Index::from_bytes(&dims).is_err());
        let mut text = bytes;
        let last = text.len() - 1;
        text[last] = 0xff;
        assert!(Index::from_bytes(&text).is_err());
    }
}
