//! # kinglet-capi
//!
//! Owns kinglet's C ABI: an opaque [`KingletModel`] handle, load / classify / forecast / free,
//! status codes equal to the CLI's exit codes and a per-thread error message. It only renders
//! what `kinglet-runtime` returns and depends on nothing else in the workspace; the header
//! `include/kinglet.h` is generated from this file by cbindgen (`tests/header.rs` checks it).
//!
//! Every function is safe to call with null pointers (they are refused with
//! [`KingletStatus::KingletBadArgument`]); strings are NUL-terminated UTF-8; memory handed to
//! the caller is either the caller's own buffer or owned by the model handle.

use kinglet_runtime::manifest::ModelKind;
use kinglet_runtime::memory::LoadOptions;
use kinglet_runtime::{Classifier, Embedder, Error, Forecaster, Model, TaskKind};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::sync::Mutex;

/// Counts allocations and serves inferences from the model's fixed arena, as in the `kinglet`
/// binary: a program that links this library gets the memory budget and the arena.
#[global_allocator]
static ALLOCATOR: kinglet_runtime::memory::KingletAllocator =
    kinglet_runtime::memory::KingletAllocator;

/// What a call did. The values are the `kinglet` CLI's exit codes, so a C program and a shell
/// script read failures the same way.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KingletStatus {
    /// Success.
    KingletOk = 0,
    /// Any other failure (inference failed inside tract).
    KingletFailed = 1,
    /// A null pointer, a buffer too small, or a call that does not fit the model's kind.
    KingletBadArgument = 2,
    /// The bundle cannot be loaded: missing, truncated, corrupted or unsupported.
    KingletBadModel = 3,
    /// The input is refused: not UTF-8, empty, too long, not finite, wrong window size.
    KingletBadInput = 4,
    /// The bundle's self-test failed.
    KingletSelfTest = 5,
    /// The model does not fit the memory budget, or one inference outgrew its arena.
    KingletBudget = 6,
    /// The bundle's signature is broken.
    KingletSignature = 7,
}

/// What a model does.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KingletKind {
    /// No model: the handle is null.
    KingletNoModel = 0,
    /// A text classifier: [`kinglet_classify`].
    KingletClassifier = 1,
    /// A time-series forecaster: [`kinglet_forecast`].
    KingletForecaster = 2,
    /// A sentence-embedding model: [`kinglet_embed`].
    KingletEmbedder = 3,
    /// A token classifier (named entities); not answered through the C API yet.
    KingletTagger = 4,
}

/// A loaded model: opaque to C. Made by [`kinglet_load`], released by [`kinglet_free`]. One
/// handle answers one call at a time; use one handle per thread.
pub struct KingletModel {
    model: Model,
    /// Label names (classifiers) or target column names (forecasters), NUL-terminated.
    names: Vec<CString>,
}

/// The answer for one text. The probabilities of every label go to the caller's buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KingletClassification {
    /// Index of the winning label ([`kinglet_label`] names it).
    pub label_index: usize,
    /// Probability of the winning label (softmax, or sigmoid for multi-label models).
    pub score: f32,
    /// Tokens the model saw, special tokens included.
    pub tokens: usize,
    /// True when the text was cut to the model's token limit.
    pub truncated: bool,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(message: &str) {
    // an interior NUL cannot reach C: cut there
    let cut = message.split('\0').next().unwrap_or_default();
    let text = CString::new(cut).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

fn fail(status: KingletStatus, message: &str) -> KingletStatus {
    set_error(message);
    status
}

fn status_of(e: &Error) -> KingletStatus {
    match e.exit_code() {
        2 => KingletStatus::KingletBadArgument,
        3 => KingletStatus::KingletBadModel,
        4 => KingletStatus::KingletBadInput,
        5 => KingletStatus::KingletSelfTest,
        6 => KingletStatus::KingletBudget,
        7 => KingletStatus::KingletSignature,
        _ => KingletStatus::KingletFailed,
    }
}

fn runtime_error(e: Error) -> KingletStatus {
    fail(status_of(&e), &e.to_string())
}

/// The refusal of a call (`call`) made for a `wanted` model on another kind.
fn wrong_kind(model: &Model, call: &str, wanted: TaskKind) -> KingletStatus {
    let found = model.kind();
    let answer = match found {
        TaskKind::Classifier => "kinglet_classify",
        TaskKind::Forecaster => "kinglet_forecast",
        TaskKind::Embedder => "kinglet_embed",
        TaskKind::Tagger => "the kinglet CLI or HTTP API (kinglet tag)",
    };
    fail(
        KingletStatus::KingletBadArgument,
        &format!(
            "this model is {}, not {}: {call} cannot answer with it; call {answer}",
            found.described(),
            wanted.described()
        ),
    )
}

/// The message of the last failed call on this thread, one line; empty after a success. Owned
/// by the library: valid until the next call on this thread.
#[no_mangle]
pub extern "C" fn kinglet_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library's version, e.g. `"0.1.0"`. A static string.
#[no_mangle]
pub extern "C" fn kinglet_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// Reads a NUL-terminated UTF-8 string the caller passed.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string.
unsafe fn utf8<'a>(s: *const c_char, what: &str) -> Result<&'a str, KingletStatus> {
    if s.is_null() {
        return Err(fail(
            KingletStatus::KingletBadArgument,
            &format!("{what} is a null pointer"),
        ));
    }
    // SAFETY: the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(s) };
    bytes.to_str().map_err(|e| {
        fail(
            KingletStatus::KingletBadInput,
            &format!(
                "{what} is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Loads the bundle at `path` (a file), checks it (checksum, signature if signed, self-test
/// preflight) and reserves its memory arena. `budget_bytes` caps the memory the model may use;
/// 0 takes the bundle's own budget. On success `*out` is a new handle for [`kinglet_free`].
/// Loads from several threads run one after another (each measures the memory it needs); load
/// before answering on other threads, whose requests would count in the measurement.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` points to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn kinglet_load(
    path: *const c_char,
    budget_bytes: u64,
    out: *mut *mut KingletModel,
) -> KingletStatus {
    if out.is_null() {
        return fail(KingletStatus::KingletBadArgument, "out is a null pointer");
    }
    // SAFETY: out is not null and points to storage for one pointer (the caller's promise).
    unsafe { *out = std::ptr::null_mut() };
    // SAFETY: forwarded from the caller.
    let path = match unsafe { utf8(path, "path") } {
        Ok(p) => p,
        Err(status) => return status,
    };
    let options = LoadOptions {
        budget_bytes: (budget_bytes > 0).then_some(budget_bytes),
        ..LoadOptions::default()
    };
    // the memory preflight measures the process's allocations: two loads at once would each
    // count the other's
    static LOADING: Mutex<()> = Mutex::new(());
    let guard = LOADING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let loaded = Model::load(Path::new(path), &options);
    drop(guard);
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => return runtime_error(e),
    };
    let names: Vec<&str> = match &loaded.manifest.model {
        ModelKind::Classifier(c) => c.labels.iter().map(String::as_str).collect(),
        ModelKind::Forecaster(f) => f.targets.iter().map(String::as_str).collect(),
    };
    let names = names
        .into_iter()
        .map(|n| CString::new(n.replace('\0', " ")).unwrap_or_default())
        .collect();
    let handle = Box::new(KingletModel {
        model: loaded.model,
        names,
    });
    set_error("");
    // SAFETY: checked non-null above.
    unsafe { *out = Box::into_raw(handle) };
    KingletStatus::KingletOk
}

/// Releases a handle from [`kinglet_load`] and its arena. Null is ignored.
///
/// # Safety
/// `model` is null or a handle from [`kinglet_load`] not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kinglet_free(model: *mut KingletModel) {
    if !model.is_null() {
        // SAFETY: the caller hands back a pointer made by Box::into_raw in kinglet_load.
        drop(unsafe { Box::from_raw(model) });
    }
}

/// # Safety
/// `model` is null or a live handle.
unsafe fn handle<'a>(model: *const KingletModel) -> Option<&'a KingletModel> {
    // SAFETY: forwarded from the caller.
    unsafe { model.as_ref() }
}

/// What the model does ([`KingletKind::KingletNoModel`] for a null handle).
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kinglet_kind(model: *const KingletModel) -> KingletKind {
    // SAFETY: forwarded from the caller.
    match unsafe { handle(model) }.map(|m| m.model.kind()) {
        Some(TaskKind::Classifier) => KingletKind::KingletClassifier,
        Some(TaskKind::Forecaster) => KingletKind::KingletForecaster,
        Some(TaskKind::Embedder) => KingletKind::KingletEmbedder,
        Some(TaskKind::Tagger) => KingletKind::KingletTagger,
        None => KingletKind::KingletNoModel,
    }
}

/// Number of labels of a classifier, or of target columns of a forecaster (0 for null).
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kinglet_label_count(model: *const KingletModel) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { handle(model) }.map_or(0, |m| m.names.len())
}

/// Name of label `index` (classifier) or target column `index` (forecaster); null when out of
/// range. Owned by the handle.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kinglet_label(model: *const KingletModel, index: usize) -> *const c_char {
    // SAFETY: forwarded from the caller.
    unsafe { handle(model) }
        .and_then(|m| m.names.get(index))
        .map_or(std::ptr::null(), |n| n.as_ptr())
}

/// Floats a forecast window holds (lookback rows × columns, row-major); 0 for a classifier.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kinglet_window_len(model: *const KingletModel) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { handle(model) }
        .and_then(|m| m.model.task_ref::<Forecaster>())
        .map_or(0, |f| f.meta.lookback * f.meta.columns.len())
}

/// Floats a forecast holds (horizon rows × targets, row-major); 0 for a classifier.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kinglet_forecast_len(model: *const KingletModel) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { handle(model) }
        .and_then(|m| m.model.task_ref::<Forecaster>())
        .map_or(0, |f| f.meta.horizon * f.meta.targets.len())
}

/// Classifies `text` (NUL-terminated UTF-8), truncated to the bundle's token limit. Writes the
/// answer to `*out` and, when `scores` is not null, the probability of every label in label
/// order to `scores[0 .. kinglet_label_count(model)]` (`scores_len` must hold them).
///
/// # Safety
/// `model` is a live handle; `text` a NUL-terminated string; `out` writable; `scores` null or
/// writable for `scores_len` floats.
#[no_mangle]
pub unsafe extern "C" fn kinglet_classify(
    model: *mut KingletModel,
    text: *const c_char,
    out: *mut KingletClassification,
    scores: *mut f32,
    scores_len: usize,
) -> KingletStatus {
    // SAFETY: forwarded from the caller.
    let Some(m) = (unsafe { model.as_mut() }) else {
        return fail(KingletStatus::KingletBadArgument, "model is a null pointer");
    };
    if out.is_null() {
        return fail(KingletStatus::KingletBadArgument, "out is a null pointer");
    }
    let Some(classifier) = m.model.task_mut::<Classifier>() else {
        return wrong_kind(&m.model, "kinglet_classify", TaskKind::Classifier);
    };
    let labels = m.names.len();
    if !scores.is_null() && scores_len < labels {
        return fail(
            KingletStatus::KingletBadArgument,
            &format!("scores holds {scores_len} floats; this model has {labels} labels"),
        );
    }
    // SAFETY: forwarded from the caller.
    let text = match unsafe { utf8(text, "text") } {
        Ok(t) => t,
        Err(status) => return status,
    };
    let answer = match classifier.classify(text, None) {
        Ok(a) => a,
        Err(e) => return runtime_error(e),
    };
    // SAFETY: out is writable (checked non-null; the caller's promise).
    unsafe {
        *out = KingletClassification {
            label_index: answer.label_index,
            score: answer.score,
            tokens: answer.tokens,
            truncated: answer.truncated,
        };
    }
    if !scores.is_null() {
        // SAFETY: scores is writable for scores_len >= labels floats (checked above).
        let dst = unsafe { std::slice::from_raw_parts_mut(scores, labels) };
        dst.copy_from_slice(&answer.scores[..labels]);
    }
    set_error("");
    KingletStatus::KingletOk
}

/// Forecasts from `window` (`kinglet_window_len(model)` floats: lookback rows × columns in real
/// units, oldest row first) into `out` (`kinglet_forecast_len(model)` floats: horizon rows ×
/// targets in real units). A window with NaN or ∞ is refused.
///
/// # Safety
/// `model` is a live handle; `window` readable for `window_len` floats; `out` writable for
/// `out_len` floats.
#[no_mangle]
pub unsafe extern "C" fn kinglet_forecast(
    model: *mut KingletModel,
    window: *const f32,
    window_len: usize,
    out: *mut f32,
    out_len: usize,
) -> KingletStatus {
    // SAFETY: forwarded from the caller.
    let Some(m) = (unsafe { model.as_mut() }) else {
        return fail(KingletStatus::KingletBadArgument, "model is a null pointer");
    };
    let Some(forecaster) = m.model.task_mut::<Forecaster>() else {
        return wrong_kind(&m.model, "kinglet_forecast", TaskKind::Forecaster);
    };
    if window.is_null() || out.is_null() {
        return fail(
            KingletStatus::KingletBadArgument,
            "window or out is a null pointer",
        );
    }
    let need = forecaster.meta.horizon * forecaster.meta.targets.len();
    if out_len < need {
        return fail(
            KingletStatus::KingletBadArgument,
            &format!("out holds {out_len} floats; this model forecasts {need}"),
        );
    }
    // SAFETY: window is readable for window_len floats (the caller's promise).
    let window = unsafe { std::slice::from_raw_parts(window, window_len) };
    let forecast = match forecaster.forecast(window) {
        Ok(f) => f,
        Err(e) => return runtime_error(e),
    };
    // SAFETY: out is writable for out_len >= need floats (checked above).
    let dst = unsafe { std::slice::from_raw_parts_mut(out, need) };
    dst.copy_from_slice(&forecast.values[..need]);
    set_error("");
    KingletStatus::KingletOk
}

/// Floats one sentence vector holds; 0 for a model that makes none.
///
/// # Safety
/// `model` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kinglet_embedding_len(model: *const KingletModel) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { handle(model) }
        .and_then(|m| m.model.task_ref::<Embedder>())
        .map_or(0, Embedder::dimensions)
}

/// The sentence vector of `text` (NUL-terminated UTF-8), truncated to the bundle's token
/// limit, into `out` (`kinglet_embedding_len(model)` floats), pooled and normalized as the
/// model's sentence-transformers folder configured it.
///
/// # Safety
/// `model` is a live handle; `text` a NUL-terminated string; `out` writable for `out_len`
/// floats.
#[no_mangle]
pub unsafe extern "C" fn kinglet_embed(
    model: *mut KingletModel,
    text: *const c_char,
    out: *mut f32,
    out_len: usize,
) -> KingletStatus {
    // SAFETY: forwarded from the caller.
    let Some(m) = (unsafe { model.as_mut() }) else {
        return fail(KingletStatus::KingletBadArgument, "model is a null pointer");
    };
    let Some(embedder) = m.model.task_mut::<Embedder>() else {
        return wrong_kind(&m.model, "kinglet_embed", TaskKind::Embedder);
    };
    if out.is_null() {
        return fail(KingletStatus::KingletBadArgument, "out is a null pointer");
    }
    let need = embedder.dimensions();
    if out_len < need {
        return fail(
            KingletStatus::KingletBadArgument,
            &format!("out holds {out_len} floats; this model's vectors have {need}"),
        );
    }
    // SAFETY: forwarded from the caller.
    let text = match unsafe { utf8(text, "text") } {
        Ok(t) => t,
        Err(status) => return status,
    };
    let embedding = match embedder.embed(text, None) {
        Ok(e) => e,
        Err(e) => return runtime_error(e),
    };
    // SAFETY: out is writable for out_len >= need floats (checked above).
    let dst = unsafe { std::slice::from_raw_parts_mut(out, need) };
    dst.copy_from_slice(&embedding.vector[..need]);
    set_error("");
    KingletStatus::KingletOk
}
