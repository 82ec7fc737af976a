//! The runtime as the engine of the serial protocol's device loop (`kinglet serve`), and the
//! byte transports it runs over.

use crate::classify::Classifier;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::forecast::Forecaster;
use crate::model::{Loaded, Model};
use crate::tag::Tagger;
use crate::task::TaskKind;
use kinglet_firmware::wire::{
    bounded, Classified, DeviceInfo, ErrorCode, ModelKind as WireKind, PROTOCOL_VERSION,
};
use kinglet_firmware::wire::{
    TaggedEntity, MAX_EMBEDDING_VALUES, MAX_ENTITIES, MAX_FORECAST_VALUES, MAX_NAMES,
    MAX_TEXT_BYTES,
};
use kinglet_firmware::{EngineError, InferenceEngine, Transport};
use std::io::{Read, Write};
use std::path::Path;

/// A loaded model answering protocol requests.
pub struct RuntimeEngine {
    model: Model,
}

impl RuntimeEngine {
    /// Wraps a loaded model; refuses models the protocol cannot describe (more than
    /// [`MAX_NAMES`] labels or columns, vectors longer than [`MAX_EMBEDDING_VALUES`]).
    pub fn from_loaded(loaded: Loaded, path: &Path) -> Result<RuntimeEngine> {
        let refuse = |reason: String| Error::Unsupported {
            path: path.to_owned(),
            reason,
        };
        let model = loaded.model;
        let names = match &loaded.manifest.model {
            crate::manifest::ModelKind::Classifier(c) => c.labels.len(),
            crate::manifest::ModelKind::Forecaster(f) => f.columns.len(),
        };
        let what = match model.kind() {
            TaskKind::Forecaster => "columns",
            _ => "labels",
        };
        if names > MAX_NAMES {
            return Err(refuse(format!(
                "{names} {what}: the serial protocol carries at most {MAX_NAMES}"
            )));
        }
        if let Some(e) = model.task_ref::<Embedder>() {
            if e.dimensions() > MAX_EMBEDDING_VALUES {
                return Err(refuse(format!(
                    "vectors of {} values: the serial protocol carries at most \
                     {MAX_EMBEDDING_VALUES}",
                    e.dimensions()
                )));
            }
        }
        Ok(RuntimeEngine { model })
    }

    fn classifier(&mut self) -> std::result::Result<&mut Classifier, EngineError> {
        self.model
            .task_mut::<Classifier>()
            .ok_or_else(|| EngineError::new(ErrorCode::WrongModelKind, "not a classifier"))
    }

    fn forecaster(&mut self) -> std::result::Result<&mut Forecaster, EngineError> {
        self.model
            .task_mut::<Forecaster>()
            .ok_or_else(|| EngineError::new(ErrorCode::WrongModelKind, "not a forecaster"))
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
        let any = self.model.task().as_any();
        info.kind = match self.model.kind() {
            TaskKind::Classifier => WireKind::Classifier,
            TaskKind::Embedder => WireKind::Embedder,
            TaskKind::Tagger => WireKind::Tagger,
            TaskKind::Forecaster => WireKind::Forecaster,
        };
        let text = any
            .downcast_ref::<Classifier>()
            .map(Classifier::text)
            .or_else(|| any.downcast_ref::<Embedder>().map(Embedder::text))
            .or_else(|| any.downcast_ref::<Tagger>().map(Tagger::text));
        if let Some(text) = text {
            info.names = names(&text.meta.labels);
            info.max_text_bytes = MAX_TEXT_BYTES as u32;
            if text.meta.embedding.is_some() {
                info.features = text.meta.outputs() as u32;
            }
        }
        if let Some(f) = any.downcast_ref::<Forecaster>() {
            info.names = names(&f.meta.columns);
            info.targets = names(&f.meta.targets);
            info.lookback = f.meta.lookback as u32;
            info.features = f.meta.columns.len() as u32;
            info.horizon = f.meta.horizon as u32;
        }
        info
    }

    fn classify(&mut self, text: &str) -> std::result::Result<Classified, EngineError> {
        let r = self
            .classifier()?
            .classify(text, None)
            .map_err(engine_error)?;
        Ok(Classified {
            label_index: r.label_index as u8,
            score: r.score,
            logits: r.logits.iter().copied().take(MAX_NAMES).collect(),
        })
    }

    fn classify_pair(
        &mut self,
        first: &str,
        second: &str,
    ) -> std::result::Result<Classified, EngineError> {
        let r = self
            .classifier()?
            .classify_pair(first, second, None)
            .map_err(engine_error)?;
        Ok(Classified {
            label_index: r.label_index as u8,
            score: r.score,
            logits: r.logits.iter().copied().take(MAX_NAMES).collect(),
        })
    }

    fn embed(
        &mut self,
        text: &str,
        out: &mut kinglet_firmware::heapless::Vec<f32, MAX_EMBEDDING_VALUES>,
    ) -> std::result::Result<(), EngineError> {
        let embedder = self
            .model
            .task_mut::<Embedder>()
            .ok_or_else(|| EngineError::new(ErrorCode::WrongModelKind, "not an embedding model"))?;
        let e = embedder.embed(text, None).map_err(engine_error)?;
        out.clear();
        out.extend_from_slice(&e.vector).map_err(|_| {
            EngineError::new(
                ErrorCode::InferenceFailed,
                "vector larger than a frame carries",
            )
        })
    }

    fn tag(
        &mut self,
        text: &str,
        out: &mut kinglet_firmware::heapless::Vec<TaggedEntity, MAX_ENTITIES>,
    ) -> std::result::Result<(), EngineError> {
        let tagger = self
            .model
            .task_mut::<Tagger>()
            .ok_or_else(|| EngineError::new(ErrorCode::WrongModelKind, "not a token classifier"))?;
        let tagged = tagger.tag(text, None).map_err(engine_error)?;
        out.clear();
        for e in &tagged.entities {
            let entity = TaggedEntity {
                label: bounded(&e.entity_group),
                score: e.score,
                start: e.start as u32,
                end: e.end as u32,
            };
            out.push(entity).map_err(|_| {
                EngineError::new(
                    ErrorCode::InferenceFailed,
                    "more entities than a frame carries",
                )
            })?;
        }
        Ok(())
    }

    fn forecast(
        &mut self,
        window: &[f32],
        out: &mut kinglet_firmware::heapless::Vec<f32, MAX_FORECAST_VALUES>,
    ) -> std::result::Result<(), EngineError> {
        let r = self.forecaster()?.forecast(window).map_err(engine_error)?;
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

/// Serves `device` until `reader` closes or `SIGTERM`/`SIGINT` arrives (once
/// [`crate::reload::watch_stop`] is installed), as [`kinglet_firmware::Device::run`] does, and
/// between frames lets `reloader` swap the model (see [`crate::reload`]); `on_reload` hears
/// each attempt. Read timeouts and interruptions (a `SIGHUP`) are where a reload is looked for
/// while the line is idle.
pub fn serve_reloading<R: Read, W: Write>(
    device: &mut kinglet_firmware::Device<RuntimeEngine>,
    reader: &mut R,
    writer: &mut W,
    reloader: &mut crate::reload::Reloader,
    mut on_reload: impl FnMut(&crate::reload::ReloadEvent),
) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    loop {
        if crate::reload::stop_requested() {
            return Ok(());
        }
        let read = reader.read(&mut buf);
        if let Some((event, engine)) = reloader.poll() {
            if let Some(engine) = engine {
                device.replace_engine(engine);
            }
            on_reload(&event);
        }
        match read {
            Ok(0) => return Ok(()),
            Ok(n) => device.handle(&buf[..n], |bytes| {
                writer.write_all(bytes)?;
                writer.flush()
            })?,
            Err(e) if kinglet_firmware::client::no_data_yet(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Standard input read straight from its descriptor (no buffer that could hold bytes the
/// descriptor no longer shows), each read waiting at most `timeout_ms` and then failing with
/// `TimedOut`, so that an idle serving loop still looks for a reload (a `SIGHUP` that lands
/// just before a read, a switched `current` link) a few times a second.
#[cfg(unix)]
pub struct PolledStdin {
    file: std::fs::File,
    timeout_ms: i32,
}

#[cfg(unix)]
impl PolledStdin {
    /// Standard input, duplicated.
    pub fn new(timeout_ms: i32) -> std::io::Result<PolledStdin> {
        use std::os::fd::FromRawFd;
        // SAFETY: dup of descriptor 0 returns a new descriptor this value alone owns.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(PolledStdin {
            // SAFETY: `fd` is open and owned by nothing else.
            file: unsafe { std::fs::File::from_raw_fd(fd) },
            timeout_ms,
        })
    }
}

#[cfg(unix)]
impl Read for PolledStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        let mut fds = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut fds, 1, self.timeout_ms) } {
            0 => Err(std::io::ErrorKind::TimedOut.into()),
            n if n < 0 => Err(std::io::Error::last_os_error()),
            _ => self.file.read(buf),
        }
    }
}
