//! Memory budget acceptance, in a test binary of its own because it installs kinglet's
//! counting allocator as the global allocator: after warm-up, inferences make no call to the
//! system allocator at all (they allocate from the arena reserved at load).
//!
//! Runs natively and under qemu for aarch64 and armv7 in CI. Uses only committed files: the
//! shipped bundles and the random-weight BERT fixture (exported here to int8).

use kinglet_runtime::memory::{self, system_calls, LoadOptions, SystemCalls};
use kinglet_runtime::{Classifier, Forecaster};
use std::path::PathBuf;
use std::sync::Mutex;

#[global_allocator]
static ALLOCATOR: memory::KingletAllocator = memory::KingletAllocator;

/// What an inference after warm-up may ask of the system allocator: nothing.
const NO_CALLS: SystemCalls = SystemCalls {
    allocations: 0,
    frees: 0,
};

/// The arena is one per process: tests that measure it take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Texts of 1, 2, 3 … words of real SST-2 sentences, cycling past `longest` words (so the
/// longest ones are truncated at the model's limit).
fn texts_of_every_length(count: usize, longest: usize) -> Vec<String> {
    let sample =
        std::fs::read_to_string(repo().join("tests/fixtures/sst2_dev_sample.tsv")).unwrap();
    let words: Vec<&str> = sample
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .flat_map(str::split_whitespace)
        .collect();
    (0..count)
        .map(|i| {
            let n = i % longest + 1;
            let start = (i * 7) % (words.len() - n);
            words[start..start + n].join(" ")
        })
        .collect()
}

/// Classifies `texts` after warm-up and returns the system-allocator calls they made.
fn calls_while_classifying(c: &mut Classifier, texts: &[String]) -> SystemCalls {
    for t in texts.iter().take(8) {
        c.classify(t, None).unwrap();
    }
    let before = system_calls();
    let mut tokens_seen = (usize::MAX, 0);
    for t in texts {
        let r = c.classify(t, None).unwrap();
        tokens_seen = (tokens_seen.0.min(r.tokens), tokens_seen.1.max(r.tokens));
    }
    let calls = system_calls() - before;
    assert_eq!(
        tokens_seen.0, 3,
        "shortest input: one word plus [CLS] and [SEP]"
    );
    assert_eq!(
        tokens_seen.1,
        c.meta().max_tokens,
        "longest input: the model's limit"
    );
    calls
}

#[test]
fn classifications_of_every_length_make_no_system_allocation_after_warm_up() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("tiny-int8.kinglet");
    kinglet_exporter::export::export_hf_classifier(
        &repo().join("tests/fixtures/hf/bert-f32"),
        &bundle,
        &kinglet_exporter::export::ExportOptions {
            max_tokens: 64,
            precision: kinglet_exporter::quantize::Precision::Int8,
            check: None,
        },
    )
    .unwrap();
    let mut c = Classifier::load(&bundle, &LoadOptions::default()).unwrap();
    let report = c
        .memory()
        .expect("measured under kinglet's allocator")
        .clone();
    assert!(report.arena_bytes > report.activation_peak_bytes);
    // every length 1..=70 words: 1,000 texts natively, each length once under emulation
    let texts = texts_of_every_length(
        if cfg!(target_arch = "x86_64") {
            1000
        } else {
            70
        },
        70,
    );
    let count = texts.len();
    let calls = calls_while_classifying(&mut c, &texts);
    let before = system_calls();
    drop(std::hint::black_box(vec![0u8; 64]));
    assert_eq!(
        (system_calls() - before).allocations,
        1,
        "the counter sees an allocation outside the arena"
    );
    eprintln!("tiny BERT int8: {count} classifications of 3..=64 tokens: {calls:?}; {report:?}");
    assert_eq!(calls, NO_CALLS);
}

#[test]
fn shipped_sentiment_classifications_make_no_system_allocation_after_warm_up() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Classifier::load(
        repo().join("models/sentiment.kinglet"),
        &LoadOptions::default(),
    )
    .unwrap();
    // 1,000 texts of every length natively; under emulation (qemu is ~20× slower) a sweep of
    // 1, 9, 17 … 129 words, still reaching the 128-token limit.
    let texts = if cfg!(target_arch = "x86_64") {
        texts_of_every_length(1000, 130)
    } else {
        texts_of_every_length(130, 130)
            .into_iter()
            .step_by(8)
            .collect()
    };
    let count = texts.len();
    let calls = calls_while_classifying(&mut c, &texts);
    eprintln!(
        "sentiment int8: {count} classifications of 3..=128 tokens: {calls:?}; {:?}",
        c.memory()
    );
    assert_eq!(calls, NO_CALLS);
}

#[test]
fn forecasts_make_no_system_allocation_after_warm_up() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for name in ["etth1-dlinear", "etth1-lstm"] {
        let path = repo().join("models").join(format!("{name}.kinglet"));
        let mut f = Forecaster::load(&path, &LoadOptions::default()).unwrap();
        let (l, n) = (f.meta.lookback, f.meta.columns.len());
        let series: Vec<f32> = (0..(l + 1000) * n)
            .map(|i| 10.0 * ((i / n) as f32 * 0.05 + (i % n) as f32).sin() + f.meta.mean[i % n])
            .collect();
        let window = |s: usize| &series[s * n..(s + l) * n];
        for s in 0..4 {
            f.forecast(window(s)).unwrap();
        }
        // 1,000 sliding windows natively, 100 under emulation
        let runs = if cfg!(target_arch = "x86_64") {
            1000
        } else {
            100
        };
        let before = system_calls();
        let mut checksum = 0f32;
        for s in 0..runs {
            checksum += f.forecast(window(s)).unwrap().values[0];
        }
        let calls = system_calls() - before;
        eprintln!(
            "{name}: {runs} forecasts: {calls:?} (checksum {checksum}); {:?}",
            f.memory()
        );
        assert!(checksum.is_finite());
        assert_eq!(calls, NO_CALLS, "{name}");
    }
}

#[test]
fn a_request_that_outgrows_the_arena_fails_alone_and_the_next_is_served() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = repo().join("models/etth1-lstm.kinglet");
    let mut f = Forecaster::load(&path, &LoadOptions::default()).unwrap();
    let report = f.memory().unwrap().clone();
    let window = f.typical_window();
    let (arena_total, _) = memory::arena_bytes();
    let too_big = memory::run_in_arena(Some(&report), || {
        let hog = vec![1u8; arena_total + 1];
        Ok(std::hint::black_box(hog).len())
    });
    let err = too_big.unwrap_err().to_string();
    assert!(
        err.contains("inference arena") && err.contains("keeps serving"),
        "{err}"
    );
    let before = system_calls();
    f.forecast(&window).unwrap();
    assert_eq!(system_calls().allocations - before.allocations, 0);
}
