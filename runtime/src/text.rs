//! What every text task shares: the tokenizer, the graph over token ids (and token types), the
//! token limits, the input checks and the arena. The tasks themselves
//! ([`crate::classify::Classifier`], [`crate::embed::Embedder`], [`crate::tag::Tagger`]) are
//! thin types around a [`TextModel`] that add what they answer.

use crate::bundle::{Bundle, BundleFile};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{ClassifierMeta, ModelKind};
use crate::memory::{LoadMeter, LoadOptions, MemoryReport, Parts};
use crate::task::{Task, TaskKind, TaskType};
use crate::tokenize::{PairTruncation, TextTokenizer, TokenDetail, Tokens};
use std::path::Path;
use tract_nnef::prelude::*;

/// Longest text accepted, in bytes. Tokenizing happens before truncation, so the text's length
/// (not only the token limit) bounds a request's memory; the preflight tokenizes a text this
/// long. Real sentences are far shorter (SST-2's longest is under 300 bytes).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// A tokenizer and the graph it feeds, with the bundle's text metadata.
#[derive(Debug)]
pub struct TextModel {
    /// Labels, truncation limits, scoring mode and task from the manifest.
    pub meta: ClassifierMeta,
    tokenizer: TextTokenizer,
    engine: Engine,
    memory: Option<MemoryReport>,
    /// Rows of the word embedding table: token ids must be below it.
    embedding_rows: Option<usize>,
    /// How the graph tells a pair's second text from the first.
    segments: Segments,
}

/// How a text graph tells a sentence pair's two texts apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segments {
    /// By `token_type_ids`, its second input, with this many rows in the type table.
    TokenTypes(usize),
    /// By the pair template's separator tokens alone: the family has no token types
    /// (DistilBERT, RoBERTa, XLM-R, CamemBERT), so the tokenizer's type ids are not read, as
    /// Transformers does not pass them.
    Separators,
    /// Not at all: a BERT graph exported without `token_type_ids` (before kinglet read pairs).
    Unread,
}

/// A task built on a [`TextModel`]: how it is made from one, the requests its arena preflight
/// runs, what its self-test compares and what `inspect` says of it. Every text task is a
/// [`Task`] through this (the blanket impl below): the rest is the text model's.
pub trait TextTask: TaskType + std::fmt::Debug + Send + Sized + 'static {
    /// Wraps a text model whose manifest names [`TaskType::KIND`].
    fn wrap(text: TextModel) -> Self;
    /// The text model inside.
    fn text_model(&self) -> &TextModel;
    /// The text model inside.
    fn text_model_mut(&mut self) -> &mut TextModel;
    /// Runs the largest requests the task accepts on `text` (`longest` tokens), so the arena
    /// is measured at its worst.
    fn run_worst(&mut self, text: &str, longest: usize) -> Result<()>;
    /// The graph's raw outputs for one text at the bundle's token limit (what self-tests
    /// store): logits, a vector, or every token's logits.
    fn outputs(&mut self, text: &str) -> Result<Vec<f32>>;
    /// The task's part of `kinglet inspect`.
    fn report(&self) -> crate::inspect::TaskReport;
}

impl<T: TextTask> Task for T {
    fn kind(&self) -> TaskKind {
        T::KIND
    }

    fn memory(&self) -> Option<&MemoryReport> {
        self.text_model().memory()
    }

    fn engine(&mut self) -> &mut Engine {
        self.text_model_mut().engine()
    }

    fn largest_input(&mut self) -> Result<(Tensor, String)> {
        let text = self.text_model_mut();
        let ids = text.longest_input()?;
        let desc = format!("{} tokens", ids.len());
        Ok((
            Tensor::from_shape(&[1, ids.len()], &ids).map_err(Error::inference)?,
            desc,
        ))
    }

    fn self_test_outputs(&mut self, case: &crate::manifest::SelfTestCase) -> Result<Vec<f32>> {
        self.outputs(crate::task::case_text(case)?)
    }

    fn bench(&mut self, input: crate::bench::BenchInput) -> Result<crate::task::BenchRun<'_>> {
        let text = self.text_model_mut();
        let (inputs, input) = bench_inputs(text, input)?;
        Ok(crate::task::BenchRun {
            step: Box::new(move |i| text.logits(&inputs[i % inputs.len()]).map(drop)),
            input,
        })
    }

    fn report(&self) -> crate::inspect::TaskReport {
        TextTask::report(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl TextModel {
    /// Loads a text task from an opened bundle file: the tokenizer, the graph optimized for
    /// this CPU, the memory preflight at the largest input under the budget, and the arena
    /// every later request runs in (see [`crate::memory`]).
    pub(crate) fn load_task<T: TextTask>(
        meter: LoadMeter,
        file: BundleFile,
        options: &LoadOptions,
    ) -> Result<T> {
        let meta = text_meta(&file.manifest.model, T::KIND, &file.path)?;
        file.check_trust(options.trusted.as_ref())?;
        let budget = crate::memory::Budget::new(options, &file.manifest);
        let before = meter.held();
        let tokenizer =
            TextTokenizer::from_bytes(file.tokenizer.as_deref().ok_or_else(|| {
                unsupported(&file.path, "a text model's bundle has no tokenizer")
            })?)
            .map_err(|e| Error::BadBundle {
                path: file.path.clone(),
                reason: e.to_string(),
            })?;
        let tokenizer_bytes = meter.held().saturating_sub(before);
        let architecture = file.manifest.architecture.clone();
        let before = meter.held();
        let model = file.read_graph()?;
        let weights_bytes = crate::memory::constant_bytes(&model);
        let path = file.path.clone();
        drop(file);
        let engine = Engine::from_typed(model)?;
        let parts = Parts {
            tokenizer_bytes,
            weights_bytes,
            model_bytes: meter.held().saturating_sub(before),
        };
        let text = TextModel::checked(meta, tokenizer, engine, &path, &architecture)?;
        let mut task = T::wrap(text);
        // The largest input a request may ask for: --max-tokens can go up to the positions.
        let longest = task.text_model_mut().meta.max_position_embeddings;
        let at = format!("{longest} tokens");
        let report = meter.finish(parts, budget, at, || {
            // the arena must hold the worst request: the most words and the most tokens
            for text in task.text_model_mut().worst_texts() {
                task.run_worst(&text, longest)?;
            }
            Ok(())
        })?;
        task.text_model_mut().memory = report;
        Ok(task)
    }

    /// Builds a text task from a bundle, optimizing its graph for this CPU.
    pub(crate) fn task_from_bundle<T: TextTask>(bundle: &Bundle) -> Result<T> {
        let meta = text_meta(&bundle.manifest.model, T::KIND, &bundle.path)?;
        let tokenizer_json = bundle
            .tokenizer
            .as_ref()
            .ok_or_else(|| unsupported(&bundle.path, "a text model's bundle has no tokenizer"))?;
        let engine = Engine::from_nnef_tar(&bundle.graph)?;
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json)?;
        let text = TextModel::checked(
            meta,
            tokenizer,
            engine,
            &bundle.path,
            &bundle.manifest.architecture,
        )?;
        Ok(T::wrap(text))
    }

    /// Builds a text task around an already prepared engine (the exporter uses this to run
    /// the graph it has in memory). Without the bundle's architecture, a graph without token
    /// types reads single texts only.
    pub(crate) fn task_with_engine<T: TextTask>(
        meta: ClassifierMeta,
        tokenizer_json: &[u8],
        engine: Engine,
    ) -> Result<T> {
        let path = Path::new("bundle");
        if meta.task() != T::KIND {
            return Err(wrong_task(path, meta.task(), T::KIND));
        }
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json)?;
        Ok(T::wrap(TextModel::checked(
            meta, tokenizer, engine, path, "",
        )?))
    }

    /// Puts the parts together once the tokenizer is known to emit only ids the graph's
    /// embedding table has rows for.
    fn checked(
        meta: ClassifierMeta,
        tokenizer: TextTokenizer,
        engine: Engine,
        path: &Path,
        architecture: &str,
    ) -> Result<TextModel> {
        let embedding_rows = engine.gather_rows();
        if let (Some(rows), Some(max_id)) = (embedding_rows, tokenizer.max_id()) {
            if max_id >= rows {
                return Err(Error::BadBundle {
                    path: path.to_owned(),
                    reason: format!(
                        "the tokenizer has token id {max_id}, past the {rows} rows of the \
                         graph's embedding table"
                    ),
                });
            }
        }
        let bad = |reason: String| Error::BadBundle {
            path: path.to_owned(),
            reason,
        };
        let segments = match engine.input_count() {
            1 if architecture.is_empty() || architecture.starts_with("Bert") => Segments::Unread,
            1 => Segments::Separators,
            2 => Segments::TokenTypes(engine.input_rows(1).ok_or_else(|| {
                bad("the graph's second input is not a token type lookup".into())
            })?),
            n => {
                return Err(bad(format!(
                    "the graph takes {n} inputs; a text model takes input_ids and at most \
                     token_type_ids"
                )))
            }
        };
        Ok(TextModel {
            meta,
            tokenizer,
            engine,
            memory: None,
            embedding_rows,
            segments,
        })
    }

    /// What the model holds and needs, when it was loaded under kinglet's allocator.
    pub fn memory(&self) -> Option<&MemoryReport> {
        self.memory.as_ref()
    }

    /// The engine, for inspection and profiling.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The special tokens written literally in `text` (see
    /// [`crate::tokenize::TextTokenizer::special_tokens_in`]).
    pub fn special_tokens_in(&self, text: &str) -> Vec<String> {
        self.tokenizer.special_tokens_in(text)
    }

    /// Whether the graph reads token types, so that a pair's second text is segment 1.
    pub fn has_token_types(&self) -> bool {
        matches!(self.segments, Segments::TokenTypes(_))
    }

    /// Whether the graph can tell a pair's two texts apart at all.
    pub(crate) fn reads_pairs(&self) -> bool {
        self.segments != Segments::Unread
    }

    /// Token ids of a text that fills `max_tokens` (the largest input the bundle accepts).
    pub fn longest_input(&mut self) -> Result<Vec<i64>> {
        let text = self.longest_text();
        Ok(self.tokenizer.encode(&text, self.meta.max_tokens)?.ids)
    }

    /// The largest text a request may carry ([`MAX_TEXT_BYTES`]), far past the token limit.
    pub fn longest_text(&self) -> String {
        let word = "kinglet ";
        word.repeat(MAX_TEXT_BYTES / word.len())
    }

    /// The texts the arena preflight runs: [`TextModel::longest_text`] (words) and a text of
    /// [`MAX_TEXT_BYTES`] punctuation, one token per byte, which is what makes the tokenizer
    /// hold the most before truncation.
    pub fn worst_texts(&self) -> [String; 2] {
        let marks = ".,!?;:-'";
        [
            self.longest_text(),
            marks.repeat(MAX_TEXT_BYTES / marks.len()),
        ]
    }

    /// Token ids of `text` as the model would see them (truncated to the bundle's limit).
    pub fn token_ids(&mut self, text: &str) -> Result<Vec<i64>> {
        Ok(self.tokenizer.encode(text, self.meta.max_tokens)?.ids)
    }

    /// Runs the graph on token ids (one segment) and returns its raw output (inside the
    /// arena, if any).
    pub fn logits(&mut self, ids: &[i64]) -> Result<Vec<f32>> {
        self.in_arena(|t| t.run(ids, &[]))
    }

    /// The token limit of a request: `max_tokens`, or the bundle's default.
    pub(crate) fn max_tokens(&self, max_tokens: Option<usize>) -> Result<usize> {
        let max_tokens = max_tokens.unwrap_or(self.meta.max_tokens);
        if max_tokens < 2 || max_tokens > self.meta.max_position_embeddings {
            return Err(Error::BadInput(format!(
                "max tokens must be between 2 and {} for this model, got {max_tokens}",
                self.meta.max_position_embeddings
            )));
        }
        Ok(max_tokens)
    }

    /// Checks one text of a request (`verb`: what the task does with it) and returns the
    /// token limit to encode it with.
    pub(crate) fn request(
        &self,
        text: &str,
        max_tokens: Option<usize>,
        verb: &str,
    ) -> Result<usize> {
        check_length(text.len())?;
        let max_tokens = self.max_tokens(max_tokens)?;
        if text.trim().is_empty() {
            return Err(Error::BadInput(format!("empty text: nothing to {verb}")));
        }
        Ok(max_tokens)
    }

    /// The graph's output for one text, tokenized to `max_tokens`, made into the task's answer
    /// by `then`; all inside the arena, so the answer's allocations come from it too.
    pub(crate) fn run_text<R>(
        &mut self,
        text: &str,
        max_tokens: usize,
        then: impl FnOnce(&TextModel, Tokens, Vec<f32>) -> Result<R>,
    ) -> Result<R> {
        self.in_arena(|t| {
            let tokens = t.tokenizer.encode(text, max_tokens)?;
            let output = t.run(&tokens.ids, &tokens.type_ids)?;
            then(t, tokens, output)
        })
    }

    /// [`TextModel::run_text`] of a pair, tokenized by the pair template.
    pub(crate) fn run_pair<R>(
        &mut self,
        (first, second): (&str, &str),
        max_tokens: usize,
        truncation: PairTruncation,
        then: impl FnOnce(&TextModel, Tokens, Vec<f32>) -> Result<R>,
    ) -> Result<R> {
        self.in_arena(|t| {
            let tokens = t
                .tokenizer
                .encode_pair(first, second, max_tokens, truncation)?;
            let output = t.run(&tokens.ids, &tokens.type_ids)?;
            then(t, tokens, output)
        })
    }

    /// [`TextModel::run_text`] with each token's offsets and word.
    pub(crate) fn run_detailed<R>(
        &mut self,
        text: &str,
        max_tokens: usize,
        then: impl FnOnce(&TextModel, TokenDetail, Vec<f32>) -> Result<R>,
    ) -> Result<R> {
        self.in_arena(|t| {
            let detail = t.tokenizer.encode_detailed(text, max_tokens)?;
            let output = t.run(&detail.tokens.ids, &detail.tokens.type_ids)?;
            then(t, detail, output)
        })
    }

    /// The tokenizer, for what a task reads from it after the graph ran (words of tokens).
    pub(crate) fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Runs `f` inside the arena when the model was loaded with one.
    fn in_arena<T>(&mut self, f: impl FnOnce(&mut TextModel) -> Result<T>) -> Result<T> {
        let memory = self.memory.take();
        let result = crate::memory::run_in_arena(memory.as_ref(), || f(self));
        self.memory = memory;
        result
    }

    /// The graph's output for token ids; `type_ids` empty: all tokens in segment 0.
    fn run(&mut self, ids: &[i64], type_ids: &[i64]) -> Result<Vec<f32>> {
        if let Some(rows) = self.embedding_rows {
            if let Some(bad) = ids.iter().find(|&&id| id < 0 || id as u64 >= rows as u64) {
                return Err(Error::BadInput(format!(
                    "token id {bad} is not in the model's vocabulary of {rows} tokens"
                )));
            }
        }
        if ids.is_empty() {
            return Err(Error::BadInput("no token ids to run".into()));
        }
        let input = Tensor::from_shape(&[1, ids.len()], ids).map_err(Error::inference)?;
        let second = type_ids.iter().any(|&t| t != 0);
        let output = match self.segments {
            Segments::TokenTypes(rows) => {
                if let Some(bad) = type_ids.iter().find(|&&t| t < 0 || t as u64 >= rows as u64) {
                    return Err(Error::BadInput(format!(
                        "token type {bad} is not one of the model's {rows} token types"
                    )));
                }
                let types = if type_ids.is_empty() {
                    Tensor::zero::<i64>(&[1, ids.len()]).map_err(Error::inference)?
                } else if type_ids.len() == ids.len() {
                    Tensor::from_shape(&[1, ids.len()], type_ids).map_err(Error::inference)?
                } else {
                    return Err(Error::BadInput(format!(
                        "{} token types for {} token ids",
                        type_ids.len(),
                        ids.len()
                    )));
                };
                self.engine
                    .run_f32_inputs(tvec!(input.into_tvalue(), types.into_tvalue()))?
            }
            Segments::Unread if second => {
                return Err(Error::BadInput(
                    "this bundle's graph reads every token as the first text (it takes no \
                     token_type_ids), so it cannot classify a sentence pair; export the \
                     checkpoint again with this kinglet-export, which adds token types for \
                     models with type_vocab_size 2 or more"
                        .into(),
                ))
            }
            Segments::Unread | Segments::Separators => self.engine.run_f32(input)?,
        };
        if output.iter().any(|l| !l.is_finite()) {
            return Err(Error::Inference(
                "the model's outputs are not finite numbers".into(),
            ));
        }
        let outputs = match self.meta.per_token {
            true => ids.len() * self.meta.labels.len(),
            false => self.meta.outputs(),
        };
        if output.len() != outputs {
            return Err(Error::Inference(format!(
                "graph returned {} values; the manifest says {outputs}",
                output.len()
            )));
        }
        Ok(output)
    }
}

/// The text metadata of a manifest whose task is `wanted`.
fn text_meta(model: &ModelKind, wanted: TaskKind, path: &Path) -> Result<ClassifierMeta> {
    let found = TaskKind::of(model);
    match model {
        ModelKind::Classifier(meta) if found == wanted => Ok(meta.clone()),
        _ => Err(wrong_task(path, found, wanted)),
    }
}

/// The refusal of a bundle of task `found` where `wanted` was asked for.
pub(crate) fn wrong_task(path: &Path, found: TaskKind, wanted: TaskKind) -> Error {
    unsupported(
        path,
        &format!(
            "this bundle is {} ({}), not {}",
            found.described(),
            found.command(),
            wanted.described()
        ),
    )
}

fn unsupported(path: &Path, reason: &str) -> Error {
    Error::Unsupported {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Refuses a request longer than [`MAX_TEXT_BYTES`] (a pair counts both texts).
pub(crate) fn check_length(bytes: usize) -> Result<()> {
    if bytes > MAX_TEXT_BYTES {
        return Err(Error::BadInput(format!(
            "text is {bytes} bytes; the limit is {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// What `kinglet bench` runs on a text model: the token ids of each text, or of one input
/// of `tokens` tokens (the bundle's limit when `None`), and its description.
fn bench_inputs(
    text: &mut TextModel,
    input: crate::bench::BenchInput,
) -> Result<(Vec<Vec<i64>>, String)> {
    use crate::bench::BenchInput;
    match input {
        BenchInput::Texts { texts, source } => {
            if texts.is_empty() {
                return Err(Error::BadInput(format!("{source} has no text")));
            }
            let ids = texts
                .iter()
                .map(|t| text.token_ids(t))
                .collect::<Result<Vec<_>>>()?;
            let desc = format!("{} texts of {source}", ids.len());
            Ok((ids, desc))
        }
        BenchInput::Tokens(tokens) => {
            let n = tokens.unwrap_or(text.meta.max_tokens);
            if n < 2 || n > text.meta.max_position_embeddings {
                return Err(Error::BadInput(format!(
                    "--tokens must be between 2 and {}",
                    text.meta.max_position_embeddings
                )));
            }
            let mut ids = text.longest_input()?;
            let last = *ids.last().unwrap_or(&0);
            ids.truncate(n - 1);
            ids.push(last);
            let desc = format!("{} tokens", ids.len());
            Ok((vec![ids], desc))
        }
    }
}
