//! Messages and limits of the kinglet serial protocol.
//!
//! Enums are append-only: postcard writes the variant index, so a variant's position is its
//! wire value. Every capacity is a named constant and part of a type.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Version byte at the start of every frame. A device answers frames of a newer version with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u8 = 1;
/// Longest text a `Classify` request carries, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Most labels (classifiers) or columns (forecasters) a device reports.
pub const MAX_NAMES: usize = 16;
/// Longest label or column name, in bytes.
pub const MAX_NAME_BYTES: usize = 32;
/// Most values in a `Forecast` window (`lookback × features`; ETTh1 DLinear needs 2,352).
pub const MAX_WINDOW_VALUES: usize = 2560;
/// Most values in one streamed row.
pub const MAX_ROW_VALUES: usize = 32;
/// Most values in a forecast (`horizon × targets`).
pub const MAX_FORECAST_VALUES: usize = 1024;
/// Most values in an `Embedded` vector (MiniLM's 384, BERT-base's 768, BERT-large's 1,024).
pub const MAX_EMBEDDING_VALUES: usize = 1024;
/// Most entities in a `Tagged` answer (a text of [`MAX_TEXT_BYTES`] rarely names more).
pub const MAX_ENTITIES: usize = 32;
/// Longest error detail, in bytes.
pub const MAX_DETAIL_BYTES: usize = 96;
/// Largest frame payload before COBS: version, id, the largest message, CRC.
pub const MAX_PAYLOAD_BYTES: usize = 1 + 5 + 1 + 3 + 4 * MAX_WINDOW_VALUES + 4;
/// Largest encoded frame on the wire, delimiter included. Longer frames are answered with
/// [`ErrorCode::FrameTooLong`].
pub const MAX_FRAME_BYTES: usize = cobs::max_encoding_length(MAX_PAYLOAD_BYTES) + 1;

/// A request from the host.
// Capacities live in the type so a device never allocates; boxing the large variants is not
// an option without a heap.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// 0 — handshake: the device answers with [`Response::Hello`].
    Hello,
    /// 1 — device and model description.
    Info,
    /// 2 — liveness check; echoed in [`Response::Pong`].
    Ping {
        /// Any value.
        nonce: u32,
    },
    /// 3 — classify a text.
    Classify {
        /// UTF-8 text.
        text: String<MAX_TEXT_BYTES>,
    },
    /// 4 — forecast from a whole window (`lookback × features`, real units, row-major).
    Forecast {
        /// The window.
        window: Vec<f32, MAX_WINDOW_VALUES>,
    },
    /// 5 — append one row (`features` values, real units) to the device's ring buffer.
    Push {
        /// The row.
        row: Vec<f32, MAX_ROW_VALUES>,
    },
    /// 6 — forecast from the rows pushed so far (the last `lookback`).
    ForecastNow,
    /// 7 — classify a sentence pair (NLI premise and hypothesis, a query and a passage);
    /// the two texts together at most [`MAX_TEXT_BYTES`]. Answered with `Classified`.
    ClassifyPair {
        /// The first text.
        first: String<MAX_TEXT_BYTES>,
        /// The second text.
        second: String<MAX_TEXT_BYTES>,
    },
    /// 8 — the sentence vector of a text (an embedding model).
    Embed {
        /// UTF-8 text.
        text: String<MAX_TEXT_BYTES>,
    },
    /// 9 — the named entities of a text (a token classifier).
    Tag {
        /// UTF-8 text.
        text: String<MAX_TEXT_BYTES>,
    },
}

/// A response from the device; it carries the id of the request it answers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// 0 — answer to [`Request::Hello`].
    Hello(DeviceInfo),
    /// 1 — answer to [`Request::Info`].
    Info(DeviceInfo),
    /// 2 — answer to [`Request::Ping`].
    Pong {
        /// The request's nonce.
        nonce: u32,
    },
    /// 3 — answer to [`Request::Classify`].
    Classified(Classified),
    /// 4 — answer to [`Request::Forecast`] and [`Request::ForecastNow`]: `horizon × targets`
    /// values in real units, row-major.
    Forecast {
        /// The forecast.
        values: Vec<f32, MAX_FORECAST_VALUES>,
    },
    /// 5 — answer to [`Request::Push`].
    Pushed {
        /// Rows held (at most `lookback`).
        rows: u32,
        /// True once `lookback` rows are held, so `ForecastNow` can answer.
        ready: bool,
    },
    /// 6 — the request could not be served.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Human-readable detail.
        detail: String<MAX_DETAIL_BYTES>,
    },
    /// 7 — answer to [`Request::Embed`]: the sentence vector.
    Embedded {
        /// The vector (`DeviceInfo::features` values).
        vector: Vec<f32, MAX_EMBEDDING_VALUES>,
    },
    /// 8 — answer to [`Request::Tag`]: the entities in text order.
    Tagged {
        /// The entities.
        entities: Vec<TaggedEntity, MAX_ENTITIES>,
    },
}

/// What kind of model the device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// 0 — text classifier.
    Classifier,
    /// 1 — time-series forecaster.
    Forecaster,
    /// 2 — sentence-embedding model (`features` is the vector's length).
    Embedder,
    /// 3 — token classifier (`names` are its token labels, `O`, `B-PER` …).
    Tagger,
}

/// Handshake and `Info` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// [`PROTOCOL_VERSION`] of the device.
    pub protocol_version: u8,
    /// What the model does.
    pub kind: ModelKind,
    /// Labels (classifier, tagger) or input columns (forecaster).
    pub names: Vec<String<MAX_NAME_BYTES>, MAX_NAMES>,
    /// Forecast columns in output order (forecaster; empty for a classifier).
    pub targets: Vec<String<MAX_NAME_BYTES>, MAX_NAMES>,
    /// Longest text accepted, in bytes (text models; 0 otherwise).
    pub max_text_bytes: u32,
    /// Rows of history (forecasters; 0 otherwise).
    pub lookback: u32,
    /// Values per row (forecasters), the vector's length (embedders); 0 otherwise.
    pub features: u32,
    /// Rows forecast (forecasters; 0 otherwise).
    pub horizon: u32,
    /// Memory budget of the model on the device, in bytes (0 when unbounded).
    pub budget_bytes: u64,
    /// Frames rejected so far (bad CRC, bad COBS, too long).
    pub frames_rejected: u32,
}

/// A classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classified {
    /// Index of the winning label.
    pub label_index: u8,
    /// Its probability.
    pub score: f32,
    /// Logits in label order.
    pub logits: Vec<f32, MAX_NAMES>,
}

/// One entity of a [`Response::Tagged`]: its label and where it is in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaggedEntity {
    /// Its label without the `B-`/`I-` prefix (`PER`, `LOC` …).
    pub label: String<MAX_NAME_BYTES>,
    /// Mean probability of its tokens' labels.
    pub score: f32,
    /// First character, counted in Unicode scalar values of the text.
    pub start: u32,
    /// One past its last character.
    pub end: u32,
}

/// Why a request failed. Append-only; the wire value is the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// 0 — the frame exceeded [`MAX_FRAME_BYTES`]; it was dropped up to its delimiter.
    FrameTooLong,
    /// 1 — the frame's body is not a request this device knows.
    UnknownMessage,
    /// 2 — the frame's version byte is newer than the device's [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// 3 — a classifier was asked to forecast, or the reverse.
    WrongModelKind,
    /// 4 — the input is unusable (empty text, wrong window size, NaN …).
    BadInput,
    /// 5 — the model failed on a valid input.
    InferenceFailed,
    /// 6 — `ForecastNow` before `lookback` rows were pushed.
    WindowNotFull,
}

/// Builds a bounded string, cutting at a character boundary when too long.
pub fn bounded<const N: usize>(s: &str) -> String<N> {
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::new();
    let _ = out.push_str(&s[..end]);
    out
}
