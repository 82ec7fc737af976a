//! A loaded bundle of any task, for commands that take any bundle.

use crate::bundle::BundleFile;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::memory::{LoadMeter, LoadOptions, MemoryReport};
use crate::task::{Task, TaskKind, TaskType};
use std::path::Path;

/// A model of the task its bundle names, loaded under a memory budget (see [`crate::task`]).
#[derive(Debug)]
pub struct Model {
    task: Box<dyn Task>,
}

/// A loaded model with what its bundle said about itself.
#[derive(Debug)]
pub struct Loaded {
    /// The model, ready to answer.
    pub model: Model,
    /// The bundle's manifest.
    pub manifest: Manifest,
    /// Bytes of the bundle file, and of its graph and tokenizer sections.
    pub file_bytes: u64,
    /// Bytes of the graph section.
    pub graph_bytes: usize,
    /// Bytes of the tokenizer section (0 for forecasters).
    pub tokenizer_bytes: usize,
    /// SHA-256 of the whole bundle file, as `sha256sum` prints it.
    pub sha256_hex: String,
    /// The key that signed the bundle (its signature checked), if it is signed.
    pub signer: Option<crate::signature::PublicKey>,
}

impl Model {
    /// Loads any bundle with the memory preflight of its task (see [`crate::memory`]).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Loaded> {
        let meter = LoadMeter::start();
        let file = BundleFile::open(path)?;
        let manifest = file.manifest.clone();
        let file_bytes = file.file_bytes;
        let graph_bytes = file.graph_bytes();
        let tokenizer_bytes = file.tokenizer.as_ref().map_or(0, Vec::len);
        let sha256_hex = file.sha256_hex();
        let signer = file.signer.clone();
        let task = crate::task::load(meter, file, options)?;
        Ok(Loaded {
            model: Model { task },
            manifest,
            file_bytes,
            graph_bytes,
            tokenizer_bytes,
            sha256_hex,
            signer,
        })
    }

    /// A model around a task built another way (from a read [`crate::bundle::Bundle`]).
    pub fn from_task(task: Box<dyn Task>) -> Model {
        Model { task }
    }

    /// Which task the model does.
    pub fn kind(&self) -> TaskKind {
        self.task.kind()
    }

    /// The task, through the trait every task implements.
    pub fn task(&self) -> &dyn Task {
        self.task.as_ref()
    }

    /// The task, through the trait every task implements.
    pub fn task_dyn(&mut self) -> &mut dyn Task {
        self.task.as_mut()
    }

    /// The task as its own type, when it is one (`model.task_ref::<Forecaster>()`).
    pub fn task_ref<T: Task>(&self) -> Option<&T> {
        self.task.as_any().downcast_ref()
    }

    /// The task as its own type, when it is one (`model.task_mut::<Classifier>()`).
    pub fn task_mut<T: Task>(&mut self) -> Option<&mut T> {
        self.task.as_any_mut().downcast_mut()
    }

    /// The task as its own type, or the refusal naming what the bundle is and the command
    /// that answers with it (`path` names the bundle).
    pub fn into_task<T: Task + TaskType>(self, path: &Path) -> Result<T> {
        let found = self.kind();
        self.task
            .into_any()
            .downcast()
            .map(|t| *t)
            .map_err(|_| crate::text::wrong_task(path, found, T::KIND))
    }

    /// The memory report of the load, when measured.
    pub fn memory(&self) -> Option<&MemoryReport> {
        self.task.memory()
    }

    /// The graph input of the largest request the model accepts, and its description
    /// (`128 tokens`, `96 rows × 7 columns`).
    pub fn largest_input(&mut self) -> Result<(tract_nnef::prelude::Tensor, String)> {
        self.task.largest_input()
    }

    /// The graph engine, for inspection and profiling.
    pub fn engine(&mut self) -> &mut crate::engine::Engine {
        self.task.engine()
    }
}
