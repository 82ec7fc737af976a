//! The seam every task sits behind: a loaded bundle is one [`Task`] — a
//! [`crate::classify::Classifier`], [`crate::embed::Embedder`], [`crate::tag::Tagger`] or
//! [`crate::forecast::Forecaster`] — and the commands that take any bundle (`verify`, `bench`,
//! `inspect`, `eval`, `serve`) call the trait, not a match over kinds. The manifest names the
//! task ([`TaskKind::of`]); `load` and [`from_bundle`] are the one place a kind picks a
//! type. A new task is a new file implementing [`Task`], a [`TaskKind`] variant and, for the
//! serial protocol, appended wire variants.

use crate::bench::BenchInput;
use crate::bundle::{Bundle, BundleFile};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::inspect::TaskReport;
use crate::manifest::{ModelKind, SelfTestCase};
use crate::memory::{LoadMeter, LoadOptions, MemoryReport};
use std::any::Any;
use tract_nnef::prelude::Tensor;

/// What a bundle does, as its manifest says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Labels a whole text (or a sentence pair).
    Classifier,
    /// Turns a text into a sentence vector.
    Embedder,
    /// Labels each word of a text (named entities).
    Tagger,
    /// Forecasts a time series.
    Forecaster,
}

impl TaskKind {
    /// The task of a manifest's model.
    pub fn of(model: &ModelKind) -> TaskKind {
        match model {
            ModelKind::Classifier(meta) => meta.task(),
            ModelKind::Forecaster(_) => TaskKind::Forecaster,
        }
    }

    /// The name `/healthz`, `inspect --json` and the metrics use.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Classifier => "classifier",
            TaskKind::Embedder => "embedder",
            TaskKind::Tagger => "tagger",
            TaskKind::Forecaster => "forecaster",
        }
    }

    /// The kind in a sentence ("a sentence-embedding model").
    pub fn described(self) -> &'static str {
        match self {
            TaskKind::Classifier => "a text classifier",
            TaskKind::Embedder => "a sentence-embedding model",
            TaskKind::Tagger => "a token classifier",
            TaskKind::Forecaster => "a forecaster",
        }
    }

    /// The command that answers with this kind of model.
    pub fn command(self) -> &'static str {
        match self {
            TaskKind::Classifier => "kinglet classify",
            TaskKind::Embedder => "kinglet embed",
            TaskKind::Tagger => "kinglet tag",
            TaskKind::Forecaster => "kinglet forecast",
        }
    }
}

/// One timed request of `kinglet bench`, and what it runs on.
pub struct BenchRun<'a> {
    /// Runs request `i` (inputs are cycled).
    pub step: Box<dyn FnMut(usize) -> Result<()> + 'a>,
    /// The input, described (`128 tokens`, `96 rows × 7 columns`).
    pub input: String,
}

/// A loaded model of one task.
pub trait Task: std::fmt::Debug + Send + Any {
    /// Which task this is.
    fn kind(&self) -> TaskKind;
    /// What the model holds and needs, when it was loaded under kinglet's allocator.
    fn memory(&self) -> Option<&MemoryReport>;
    /// The graph engine, for inspection and profiling.
    fn engine(&mut self) -> &mut Engine;
    /// The graph input of the largest request the model accepts, and its description.
    fn largest_input(&mut self) -> Result<(Tensor, String)>;
    /// The graph's outputs for a self-test case's input (what the exporter stored).
    fn self_test_outputs(&mut self, case: &SelfTestCase) -> Result<Vec<f32>>;
    /// The requests `kinglet bench` times.
    fn bench(&mut self, input: BenchInput) -> Result<BenchRun<'_>>;
    /// The task's part of `kinglet inspect`.
    fn report(&self) -> TaskReport;
    /// For downcasting to the task's own type.
    fn as_any(&self) -> &dyn Any;
    /// For [`crate::model::Model::task_mut`].
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// For [`crate::model::Model::into_task`].
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// A task's own type and the kind it is (for [`crate::model::Model::into_task`]; an
/// associated constant would keep [`Task`] from being a trait object).
pub trait TaskType {
    /// The kind of the type.
    const KIND: TaskKind;
}

impl TaskType for crate::classify::Classifier {
    const KIND: TaskKind = TaskKind::Classifier;
}
impl TaskType for crate::embed::Embedder {
    const KIND: TaskKind = TaskKind::Embedder;
}
impl TaskType for crate::tag::Tagger {
    const KIND: TaskKind = TaskKind::Tagger;
}
impl TaskType for crate::forecast::Forecaster {
    const KIND: TaskKind = TaskKind::Forecaster;
}

/// Loads an opened bundle as the task its manifest names, measured from `meter`'s start.
pub(crate) fn load(
    meter: LoadMeter,
    file: BundleFile,
    options: &LoadOptions,
) -> Result<Box<dyn Task>> {
    use crate::text::TextModel;
    Ok(match TaskKind::of(&file.manifest.model) {
        TaskKind::Classifier => Box::new(TextModel::load_task::<crate::classify::Classifier>(
            meter, file, options,
        )?),
        TaskKind::Embedder => Box::new(TextModel::load_task::<crate::embed::Embedder>(
            meter, file, options,
        )?),
        TaskKind::Tagger => Box::new(TextModel::load_task::<crate::tag::Tagger>(
            meter, file, options,
        )?),
        TaskKind::Forecaster => Box::new(crate::forecast::Forecaster::load_file(
            meter, file, options,
        )?),
    })
}

/// Builds the task a read bundle's manifest names, its graph optimized for this CPU (no
/// memory preflight).
pub fn from_bundle(bundle: &Bundle) -> Result<Box<dyn Task>> {
    use crate::text::TextModel;
    Ok(match TaskKind::of(&bundle.manifest.model) {
        TaskKind::Classifier => Box::new(
            TextModel::task_from_bundle::<crate::classify::Classifier>(bundle)?,
        ),
        TaskKind::Embedder => Box::new(TextModel::task_from_bundle::<crate::embed::Embedder>(
            bundle,
        )?),
        TaskKind::Tagger => Box::new(TextModel::task_from_bundle::<crate::tag::Tagger>(bundle)?),
        TaskKind::Forecaster => Box::new(crate::forecast::Forecaster::from_bundle(bundle)?),
    })
}

/// Builds a text task around an already prepared engine, as `meta` names it (the exporter
/// runs the graph it has in memory with this).
pub fn text_with_engine(
    meta: crate::manifest::ClassifierMeta,
    tokenizer_json: &[u8],
    engine: Engine,
) -> Result<Box<dyn Task>> {
    use crate::text::TextModel;
    Ok(match meta.task() {
        TaskKind::Embedder => Box::new(TextModel::task_with_engine::<crate::embed::Embedder>(
            meta,
            tokenizer_json,
            engine,
        )?),
        TaskKind::Tagger => Box::new(TextModel::task_with_engine::<crate::tag::Tagger>(
            meta,
            tokenizer_json,
            engine,
        )?),
        _ => Box::new(TextModel::task_with_engine::<crate::classify::Classifier>(
            meta,
            tokenizer_json,
            engine,
        )?),
    })
}

/// The task as its own type (`None` when it is another).
pub fn downcast<T: Task>(task: &mut dyn Task) -> Option<&mut T> {
    task.as_any_mut().downcast_mut()
}

/// The text of a self-test case, or the bundle error of a case without one.
pub(crate) fn case_text(case: &SelfTestCase) -> Result<&str> {
    case.text.as_deref().ok_or_else(|| missing("text"))
}

/// The window of a self-test case, or the bundle error of a case without one.
pub(crate) fn case_window(case: &SelfTestCase) -> Result<&[f32]> {
    case.window.as_deref().ok_or_else(|| missing("window"))
}

fn missing(what: &str) -> Error {
    Error::BadInput(format!("a self-test case has no {what}"))
}
