//! The device loop: bytes in, framed answers out, generic over the byte transport and the
//! inference engine so the same code runs on a board's UART, a USB gadget, stdio or a test.

use crate::frame::{decode_request, encode_response, FeedResult, FrameAccumulator};
use crate::ring::Ring;
use crate::wire::*;
use heapless::{String, Vec};

/// A byte link: a UART, a USB CDC port, a pseudo-terminal, stdio.
pub trait Transport {
    /// Transport error.
    type Error;
    /// Reads at least one byte into `buf` (blocking); 0 means the link is closed.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;
    /// Writes all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// A failed inference, answered as [`Response::Error`].
#[derive(Debug, Clone, PartialEq)]
pub struct EngineError {
    /// Category.
    pub code: ErrorCode,
    /// Detail for the host.
    pub detail: String<MAX_DETAIL_BYTES>,
}

impl EngineError {
    /// An error with a message (cut to [`MAX_DETAIL_BYTES`]).
    pub fn new(code: ErrorCode, detail: &str) -> EngineError {
        EngineError {
            code,
            detail: bounded(detail),
        }
    }
}

/// What the device runs requests on.
pub trait InferenceEngine {
    /// Model description for `Hello` and `Info` (`frames_rejected` is filled in by the device).
    fn info(&self) -> DeviceInfo;
    /// Classifies a text.
    fn classify(&mut self, text: &str) -> Result<Classified, EngineError>;
    /// Forecasts from `lookback × features` values (real units, row-major) into `out`.
    fn forecast(
        &mut self,
        window: &[f32],
        out: &mut Vec<f32, MAX_FORECAST_VALUES>,
    ) -> Result<(), EngineError>;
    /// Classifies a sentence pair (a classifier that reads pairs).
    fn classify_pair(&mut self, first: &str, second: &str) -> Result<Classified, EngineError> {
        let _ = (first, second);
        Err(EngineError::new(
            ErrorCode::WrongModelKind,
            "this device classifies no sentence pairs",
        ))
    }
    /// The sentence vector of a text, into `out` (an embedding model).
    fn embed(
        &mut self,
        text: &str,
        out: &mut Vec<f32, MAX_EMBEDDING_VALUES>,
    ) -> Result<(), EngineError> {
        let _ = (text, out);
        Err(EngineError::new(
            ErrorCode::WrongModelKind,
            "this device makes no sentence vectors",
        ))
    }
    /// The entities of a text, into `out` (a token classifier).
    fn tag(
        &mut self,
        text: &str,
        out: &mut Vec<TaggedEntity, MAX_ENTITIES>,
    ) -> Result<(), EngineError> {
        let _ = (text, out);
        Err(EngineError::new(
            ErrorCode::WrongModelKind,
            "this device tags no entities",
        ))
    }
}

/// Counters of what the device has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames answered.
    pub answered: u32,
    /// Frames dropped for a bad CRC or bad COBS (not answered: their id is untrustworthy).
    pub corrupt: u32,
    /// Frames longer than [`MAX_FRAME_BYTES`] (answered with `FrameTooLong`, id 0).
    pub too_long: u32,
}

/// The device: accumulator, streaming ring buffer, output buffer and engine.
pub struct Device<E: InferenceEngine> {
    engine: E,
    info: DeviceInfo,
    acc: FrameAccumulator<MAX_FRAME_BYTES>,
    ring: Option<Ring<MAX_WINDOW_VALUES>>,
    window: [f32; MAX_WINDOW_VALUES],
    out: [u8; MAX_FRAME_BYTES],
    stats: Stats,
}

impl<E: InferenceEngine> Device<E> {
    /// A device serving `engine`.
    pub fn new(engine: E) -> Self {
        let info = engine.info();
        let ring = match info.kind {
            ModelKind::Forecaster => Ring::new(info.lookback as usize, info.features as usize),
            ModelKind::Classifier | ModelKind::Embedder | ModelKind::Tagger => None,
        };
        Device {
            engine,
            info,
            acc: FrameAccumulator::new(),
            ring,
            window: [0.0; MAX_WINDOW_VALUES],
            out: [0; MAX_FRAME_BYTES],
            stats: Stats::default(),
        }
    }

    /// Serves `engine` from the next frame on (a model reloaded by the host). A partly received
    /// frame and the counters carry over; so do the rows pushed so far when the new model's
    /// window has the same shape, otherwise the window starts empty.
    pub fn replace_engine(&mut self, engine: E) {
        let info = engine.info();
        let same_window = info.kind == self.info.kind
            && info.lookback == self.info.lookback
            && info.features == self.info.features;
        if !same_window {
            self.ring = match info.kind {
                ModelKind::Forecaster => Ring::new(info.lookback as usize, info.features as usize),
                ModelKind::Classifier | ModelKind::Embedder | ModelKind::Tagger => None,
            };
        }
        self.engine = engine;
        self.info = info;
    }

    /// The engine being served.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Serves a transport until it closes (a read of 0 bytes) or fails.
    pub fn run<T: Transport>(&mut self, transport: &mut T) -> Result<(), T::Error> {
        let mut buf = [0u8; 256];
        loop {
            let n = transport.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.handle(&buf[..n], |bytes| transport.write_all(bytes))?;
        }
    }

    /// Feeds received bytes and writes one framed answer per complete, intact frame.
    pub fn handle<Err>(
        &mut self,
        mut input: &[u8],
        mut write: impl FnMut(&[u8]) -> Result<(), Err>,
    ) -> Result<(), Err> {
        loop {
            let (id, response, rest) = match self.acc.feed(input) {
                FeedResult::Consumed => return Ok(()),
                FeedResult::OverFull(rest) => {
                    self.stats.too_long += 1;
                    let r = error(
                        ErrorCode::FrameTooLong,
                        "frame longer than the device accepts",
                    );
                    (0, r, rest)
                }
                FeedResult::Corrupt { remaining, .. } => {
                    self.stats.corrupt += 1;
                    input = remaining;
                    continue;
                }
                FeedResult::Frame { frame, remaining } => {
                    let id = frame.id;
                    let response = match decode_request(&frame) {
                        Ok(request) => answer(
                            &mut self.engine,
                            &self.info,
                            &mut self.ring,
                            &mut self.window,
                            self.stats.corrupt + self.stats.too_long,
                            request,
                        ),
                        Err(ErrorCode::UnsupportedVersion) => error(
                            ErrorCode::UnsupportedVersion,
                            "this device speaks kinglet protocol version 1",
                        ),
                        Err(code) => error(code, "not a request this device knows"),
                    };
                    (id, response, remaining)
                }
            };
            self.stats.answered += 1;
            let n = match encode_response(id, &response, &mut self.out) {
                Ok(n) => n,
                Err(_) => {
                    let fallback =
                        error(ErrorCode::InferenceFailed, "answer too large for a frame");
                    encode_response(id, &fallback, &mut self.out).unwrap_or(0)
                }
            };
            write(&self.out[..n])?;
            input = rest;
        }
    }
}

fn error(code: ErrorCode, detail: &str) -> Response {
    Response::Error {
        code,
        detail: bounded(detail),
    }
}

fn answer<E: InferenceEngine>(
    engine: &mut E,
    info: &DeviceInfo,
    ring: &mut Option<Ring<MAX_WINDOW_VALUES>>,
    window: &mut [f32; MAX_WINDOW_VALUES],
    rejected: u32,
    request: Request,
) -> Response {
    let info_now = || DeviceInfo {
        frames_rejected: rejected,
        ..info.clone()
    };
    let wrong_kind = |what: &str| error(ErrorCode::WrongModelKind, what);
    match request {
        Request::Hello => Response::Hello(info_now()),
        Request::Info => Response::Info(info_now()),
        Request::Ping { nonce } => Response::Pong { nonce },
        Request::Classify { text } => match info.kind {
            ModelKind::Classifier => classified(engine.classify(&text)),
            other => wrong_kind(runs(other)),
        },
        Request::ClassifyPair { first, second } => match info.kind {
            _ if first.len() + second.len() > MAX_TEXT_BYTES => error(
                ErrorCode::BadInput,
                "the pair's texts together exceed MAX_TEXT_BYTES",
            ),
            ModelKind::Classifier => classified(engine.classify_pair(&first, &second)),
            other => wrong_kind(runs(other)),
        },
        Request::Embed { text } => match info.kind {
            ModelKind::Embedder => {
                let mut vector = Vec::new();
                match engine.embed(&text, &mut vector) {
                    Ok(()) => Response::Embedded { vector },
                    Err(e) => engine_error(e),
                }
            }
            other => wrong_kind(runs(other)),
        },
        Request::Tag { text } => match info.kind {
            ModelKind::Tagger => {
                let mut entities = Vec::new();
                match engine.tag(&text, &mut entities) {
                    Ok(()) => Response::Tagged { entities },
                    Err(e) => engine_error(e),
                }
            }
            other => wrong_kind(runs(other)),
        },
        Request::Forecast { window: values } => match info.kind {
            ModelKind::Forecaster => forecast(engine, &values),
            other => wrong_kind(runs(other)),
        },
        Request::Push { row } => match ring {
            // a NaN or infinity in the ring would spoil the next `lookback` forecasts
            Some(_) if row.iter().any(|v| !v.is_finite()) => {
                error(ErrorCode::BadInput, "row has a NaN or infinite value")
            }
            Some(ring) => {
                if ring.push(&row) {
                    Response::Pushed {
                        rows: ring.len() as u32,
                        ready: ring.is_full(),
                    }
                } else {
                    error(ErrorCode::BadInput, "row has the wrong number of values")
                }
            }
            None => wrong_kind(runs(info.kind)),
        },
        Request::ForecastNow => match ring {
            Some(ring) if ring.is_full() => {
                let n = info.lookback as usize * info.features as usize;
                ring.copy_ordered(&mut window[..n]);
                forecast(engine, &window[..n])
            }
            Some(_) => error(
                ErrorCode::WindowNotFull,
                "push lookback rows before ForecastNow",
            ),
            None => wrong_kind(runs(info.kind)),
        },
    }
}

/// What a device of this kind runs, for `WrongModelKind` details.
fn runs(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Classifier => "this device runs a classifier",
        ModelKind::Forecaster => "this device runs a forecaster",
        ModelKind::Embedder => "this device runs a sentence-embedding model",
        ModelKind::Tagger => "this device runs a token classifier",
    }
}

fn classified(answer: Result<Classified, EngineError>) -> Response {
    match answer {
        Ok(c) => Response::Classified(c),
        Err(e) => engine_error(e),
    }
}

fn engine_error(e: EngineError) -> Response {
    Response::Error {
        code: e.code,
        detail: e.detail,
    }
}

fn forecast<E: InferenceEngine>(engine: &mut E, window: &[f32]) -> Response {
    let mut values = Vec::new();
    match engine.forecast(window, &mut values) {
        Ok(()) => Response::Forecast { values },
        Err(e) => engine_error(e),
    }
}
