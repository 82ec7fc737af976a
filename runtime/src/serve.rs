//! The runtime as the engine of the serial protocol's device loop (`kinglet serve`), and the
//! byte transports it runs over.

use crate::classify::Classifier;
use crate::error::{Error, Result};
use crate::forecast::Forecaster;
use crate::model::{Loaded, Model};
use kinglet_firmware::wire::{
    bounded, Classified, DeviceInfo, ErrorCode, ModelKind as WireKind, PROTOCOL_VERSION,
};
use kinglet_firmware::wire::{MAX_FORECAST_VALUES, MAX_NAMES, MAX_TEXT_BYTES};
use kinglet_firmware::{EngineError, InferenceEngine, Transport};
use std::io::{Read, Write};
use std::path::Path;

/// A loaded model answering protocol requests.
pub enum RuntimeEngine {
    /// Text classification.
    Classifier(Box<Classifier>),
    /// Forecasting.
    Forecaster(Box<Forecaster>),
}

impl RuntimeEngine {
    /// Wraps a loaded model; refuses models the protocol cannot describe (more than
    /// [`MAX_NAMES`] labels or columns).
    pub fn from_loaded(loaded: Loaded, path: &Path) -> Result<RuntimeEngine> {
        let too_many = |what: &str, n: usize| Error::Unsupported {
            path: path.to_owned(),
            reason: format!("{n} {what}: the serial protocol carries at most {MAX_NAMES}"),
        };
        Ok(match loaded.model {
            Model::Classifier(c) if c.meta.labels.len() > MAX_NAMES => {
                return Err(too_many("labels", c.meta.labels.len()))
            }
            Model::Forecaster(f) if f.meta.columns.len() > MAX_NAMES => {
                return Err(too_many("columns", f.meta.columns.len()))
            }
            Model::Classifier(c) => RuntimeEngine::Classifier(c),
            Model::Forecaster(f) => RuntimeEngine::Forecaster(f),
        })
    }
}

fn names(
    list: &[String],
) -> kinglet_firmware::heapless::Vec<kinglet_firmware::heapless::String<32>, MAX_NAMES> {
    list.iter().take(MAX_NAMES).map(|n| bounded(n)).collect()
}

fn engine_error(e: Error) -> EngineError {
    let code = match e {
        Error::BadInput(_) | Error::Tokenizer(_) => ErrorCode::BadInput,
        _ => ErrorCode::InferenceFailed,
    };
    EngineError::new(code, &e.to_string())
}

impl InferenceEngine for RuntimeEngine {
    fn info(&self) -> DeviceInfo {
        let mut info = DeviceInfo {
            protocol_version: PROTOCOL_VERSION,
            kind: WireKind::Classifier,
            names: kinglet_firmware::heapless::Vec::new(),
            targets: kinglet_firmware::heapless::Vec::new(),
            max_text_bytes: 0,
            lookback: 0,
            features: 0,
            horizon: 0,
            budget_bytes: 0,
            frames_rejected: 0,
        };
        match self {
            RuntimeEngine::Classifier(c) => {
                info.names = names(&c.meta.labels);
                info.max_text_bytes = MAX_TEXT_BYTES as u32;
            }
            RuntimeEngine::Forecaster(f) => {
                info.kind = WireKind::Forecaster;
                info.names = names(&f.meta.columns);
                info.targets = names(&f.meta.targets);
                info.lookback = f.meta.lookback as u32;
                info.features = f.meta.columns.len() as u32;
                info.horizon = f.meta.horizon as u32;
            }
        }
        info
    }

    fn classify(&mut self, text: &str) -> std::result::Result<Classified, EngineError> {
        let RuntimeEngine::Classifier(c) = self else {
            return Err(EngineError::new(
                ErrorCode::WrongModelKind,
                "not a classifier",
            ));
        };
        let r = c.classify(text, None).map_err(engine_error)?;
        Ok(Classified {
            label_index: r.label_index as u8,
            score: r.score,
            logits: r.logits.iter().copied().take(MAX_NAMES).collect(),
        })
    }

    fn forecast(
        &mut self,
        window: &[f32],
        out: &mut kinglet_firmware::heapless::Vec<f32, MAX_FORECAST_VALUES>,
    ) -> std::result::Result<(), EngineError> {
        let RuntimeEngine::Forecaster(f) = self else {
            return Err(EngineError::new(
                ErrorCode::WrongModelKind,
                "not a forecaster",
            ));
        };
        let r = f.forecast(window).map_err(engine_error)?;
        out.clear();
        out.extend_from_slice(&r.values).map_err(|_| {
            EngineError::new(
                ErrorCode::InferenceFailed,
                "forecast larger than a frame carries",
            )
        })
    }
}

/// A byte stream as a protocol transport: read timeouts (serial ports poll) are retried.
pub struct IoTransport<R: Read, W: Write> {
    /// Where requests come from.
    pub reader: R,
    /// Where answers go.
    pub writer: W,
}

impl<R: Read, W: Write> Transport for IoTransport<R, W> {
    type Error = std::io::Error;

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.reader.read(buf) {
                Err(e) if kinglet_firmware::client::no_data_yet(&e) => {}
                other => return other,
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }
}
