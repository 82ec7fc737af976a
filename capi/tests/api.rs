//! The C API on the shipped models, called as C calls it: answers equal to the runtime's,
//! failures as the CLI's exit codes with a one-line message.

use kinglet_capi::*;
use kinglet_runtime::memory::LoadOptions;
use kinglet_runtime::{Classifier, Forecaster};
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::{Mutex, MutexGuard};

/// One test at a time: a load measures the process's allocations, which another test's
/// inference would add to.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn model_path(name: &str) -> CString {
    CString::new(format!("{}/../models/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn last_error() -> String {
    // SAFETY: kinglet_last_error returns a NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(kinglet_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn load(name: &str) -> *mut KingletModel {
    let mut model = ptr::null_mut();
    // SAFETY: a NUL-terminated path and storage for one pointer.
    let status = unsafe { kinglet_load(model_path(name).as_ptr(), 0, &mut model) };
    assert_eq!(status, KingletStatus::KingletOk, "{}", last_error());
    assert!(!model.is_null());
    model
}

#[test]
fn a_classification_equals_the_runtimes_with_labels_and_scores() {
    let _serial = serial();
    let model = load("sentiment.kinglet");
    // SAFETY: model is a live handle until kinglet_free below.
    unsafe {
        assert_eq!(kinglet_kind(model), KingletKind::KingletClassifier);
        assert_eq!(kinglet_label_count(model), 2);
        let label = |i| CStr::from_ptr(kinglet_label(model, i)).to_str().unwrap();
        assert_eq!((label(0), label(1)), ("negative", "positive"));
        assert!(kinglet_label(model, 2).is_null());
        assert_eq!(kinglet_window_len(model), 0);
    }
    let path = model_path("sentiment.kinglet").into_string().unwrap();
    let mut reference = Classifier::load(&path, &LoadOptions::default()).unwrap();
    for text in ["a gorgeous, moving film", "the worst movie of the year"] {
        let expected = reference.classify(text, None).unwrap();
        let (mut answer, mut scores) = (KingletClassification::default(), [0f32; 2]);
        let text_c = CString::new(text).unwrap();
        // SAFETY: live handle, NUL-terminated text, writable answer and two floats.
        let status = unsafe {
            kinglet_classify(model, text_c.as_ptr(), &mut answer, scores.as_mut_ptr(), 2)
        };
        assert_eq!(status, KingletStatus::KingletOk, "{}", last_error());
        assert_eq!(answer.label_index, expected.label_index);
        assert_eq!(answer.score, expected.score);
        assert_eq!(scores.to_vec(), expected.scores);
        assert_eq!(
            (answer.tokens, answer.truncated),
            (expected.tokens, expected.truncated)
        );
        assert_eq!(last_error(), "");
    }
    // SAFETY: the handle from load, freed once.
    unsafe { kinglet_free(model) };
}

#[test]
fn a_forecast_equals_the_runtimes() {
    let _serial = serial();
    let model = load("etth1-dlinear.kinglet");
    let path = model_path("etth1-dlinear.kinglet").into_string().unwrap();
    let mut reference = Forecaster::load(&path, &LoadOptions::default()).unwrap();
    let window = reference.typical_window();
    let expected = reference.forecast(&window).unwrap().values;
    // SAFETY: model is a live handle; window and out are sized as the model says.
    unsafe {
        assert_eq!(kinglet_kind(model), KingletKind::KingletForecaster);
        assert_eq!(kinglet_window_len(model), window.len());
        let mut out = vec![0f32; kinglet_forecast_len(model)];
        assert_eq!(out.len(), expected.len());
        let status = kinglet_forecast(
            model,
            window.as_ptr(),
            window.len(),
            out.as_mut_ptr(),
            out.len(),
        );
        assert_eq!(status, KingletStatus::KingletOk, "{}", last_error());
        assert_eq!(out, expected);
        kinglet_free(model);
    }
}

#[test]
fn failures_are_the_clis_exit_codes_with_a_one_line_message() {
    let _serial = serial();
    let mut model = ptr::null_mut();
    let missing = CString::new("/nonexistent/x.kinglet").unwrap();
    // SAFETY: every pointer below is valid or deliberately null.
    unsafe {
        let status = kinglet_load(missing.as_ptr(), 0, &mut model);
        assert_eq!(status, KingletStatus::KingletBadModel);
        assert!(model.is_null());
        assert!(
            last_error().contains("/nonexistent/x.kinglet"),
            "{}",
            last_error()
        );
        assert_eq!(
            kinglet_load(ptr::null(), 0, &mut model),
            KingletStatus::KingletBadArgument
        );
        assert_eq!(
            kinglet_load(missing.as_ptr(), 0, ptr::null_mut()),
            KingletStatus::KingletBadArgument
        );
        // a budget far below what the model needs
        let path = model_path("etth1-lstm.kinglet");
        assert_eq!(
            kinglet_load(path.as_ptr(), 4096, &mut model),
            KingletStatus::KingletBudget,
            "{}",
            last_error()
        );
        assert_eq!(kinglet_kind(ptr::null()), KingletKind::KingletNoModel);
        kinglet_free(ptr::null_mut());
    }

    let classifier = load("sentiment.kinglet");
    let mut answer = KingletClassification::default();
    let not_utf8: &[u8] = b"caf\xe9\0";
    let empty = CString::new("").unwrap();
    // SAFETY: a live handle; the texts are NUL-terminated.
    unsafe {
        let status = kinglet_classify(
            classifier,
            not_utf8.as_ptr() as *const c_char,
            &mut answer,
            ptr::null_mut(),
            0,
        );
        assert_eq!(status, KingletStatus::KingletBadInput);
        assert!(last_error().contains("not UTF-8"), "{}", last_error());
        let status = kinglet_classify(classifier, empty.as_ptr(), &mut answer, ptr::null_mut(), 0);
        assert_eq!(status, KingletStatus::KingletBadInput, "{}", last_error());
        let mut one = [0f32; 1];
        let text = CString::new("fine").unwrap();
        let status = kinglet_classify(classifier, text.as_ptr(), &mut answer, one.as_mut_ptr(), 1);
        assert_eq!(status, KingletStatus::KingletBadArgument);
        let mut out = [0f32; 4];
        let status = kinglet_forecast(classifier, out.as_ptr(), 4, out.as_mut_ptr(), 4);
        assert_eq!(status, KingletStatus::KingletBadArgument);
        assert!(
            last_error().contains("kinglet_classify"),
            "{}",
            last_error()
        );
        kinglet_free(classifier);
    }

    let forecaster = load("etth1-lstm.kinglet");
    // SAFETY: a live handle; buffers sized as the model says.
    unsafe {
        let mut window = vec![1f32; kinglet_window_len(forecaster)];
        let mut out = vec![0f32; kinglet_forecast_len(forecaster)];
        window[10] = f32::NAN;
        let status = kinglet_forecast(
            forecaster,
            window.as_ptr(),
            window.len(),
            out.as_mut_ptr(),
            out.len(),
        );
        assert_eq!(status, KingletStatus::KingletBadInput);
        assert!(
            last_error().contains("not a finite number"),
            "{}",
            last_error()
        );
        let status = kinglet_forecast(forecaster, window.as_ptr(), 3, out.as_mut_ptr(), out.len());
        assert_eq!(status, KingletStatus::KingletBadInput, "{}", last_error());
        let text = CString::new("fine").unwrap();
        let status = kinglet_classify(forecaster, text.as_ptr(), &mut answer, ptr::null_mut(), 0);
        assert_eq!(status, KingletStatus::KingletBadArgument);
        kinglet_free(forecaster);
    }
}

#[test]
fn an_embedding_equals_the_runtimes_and_other_kinds_are_refused() {
    let _serial = serial();
    let model = load("minilm-embed.kinglet");
    let path = model_path("minilm-embed.kinglet").into_string().unwrap();
    let mut reference = kinglet_runtime::Embedder::load(&path, &LoadOptions::default()).unwrap();
    // SAFETY: model is a live handle until kinglet_free below.
    let dimensions = unsafe {
        assert_eq!(kinglet_kind(model), KingletKind::KingletEmbedder);
        kinglet_embedding_len(model)
    };
    assert_eq!(dimensions, 384);
    let text = CString::new("a gorgeous, moving film").unwrap();
    let mut vector = vec![0f32; dimensions];
    // SAFETY: live handle, NUL-terminated text, `dimensions` writable floats.
    let status = unsafe { kinglet_embed(model, text.as_ptr(), vector.as_mut_ptr(), vector.len()) };
    assert_eq!(status, KingletStatus::KingletOk, "{}", last_error());
    let expected = reference.embed("a gorgeous, moving film", None).unwrap();
    assert_eq!(vector, expected.vector);
    // too small a buffer, and a classify call on an embedder, are bad arguments
    // SAFETY: as above; the buffer is shorter than the vector and is not written.
    let status = unsafe { kinglet_embed(model, text.as_ptr(), vector.as_mut_ptr(), 10) };
    assert_eq!(status, KingletStatus::KingletBadArgument);
    let mut answer = KingletClassification::default();
    // SAFETY: live handle, NUL-terminated text, writable answer, no scores.
    let status = unsafe { kinglet_classify(model, text.as_ptr(), &mut answer, ptr::null_mut(), 0) };
    assert_eq!(status, KingletStatus::KingletBadArgument);
    assert!(last_error().contains("kinglet_embed"), "{}", last_error());
    // SAFETY: the handle from load, freed once.
    unsafe { kinglet_free(model) };
    let classifier = load("sentiment.kinglet");
    // SAFETY: live handle; an embed call on a classifier is refused before any write.
    unsafe {
        assert_eq!(kinglet_embedding_len(classifier), 0);
        let status = kinglet_embed(classifier, text.as_ptr(), vector.as_mut_ptr(), vector.len());
        assert_eq!(status, KingletStatus::KingletBadArgument);
        kinglet_free(classifier);
    }
}
