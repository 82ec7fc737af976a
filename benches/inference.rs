//! criterion benches: tokenization, the sentiment model at 16/64/128 tokens in int8 (shipped)
//! and f32 (exported from ../shared into target/ when present), and each shipped forecaster.
//!
//! `cargo bench --bench inference` (add `-- sentiment/int8` to pick). Latency targets live here
//! and in `kinglet bench` / benches/compare-ort.sh, never in timed tests.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kinglet_runtime::bundle::BundleFile;
use kinglet_runtime::memory::LoadOptions;
use kinglet_runtime::tokenize::TextTokenizer;
use kinglet_runtime::{Classifier, Forecaster};
use std::path::PathBuf;

#[global_allocator]
static ALLOCATOR: kinglet_runtime::memory::KingletAllocator =
    kinglet_runtime::memory::KingletAllocator;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sst2_sentences() -> Vec<String> {
    std::fs::read_to_string(repo().join("tests/fixtures/sst2_dev_sample.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit_once('\t').map_or(l, |(t, _)| t).to_string())
        .collect()
}

fn tokenization(c: &mut Criterion) {
    let bundle = BundleFile::open(repo().join("models/sentiment.kinglet")).unwrap();
    let mut tokenizer = TextTokenizer::from_bytes(bundle.tokenizer.as_deref().unwrap()).unwrap();
    let sentences = sst2_sentences();
    let mut group = c.benchmark_group("tokenize");
    group.throughput(Throughput::Elements(sentences.len() as u64));
    group.bench_function("sst2 sample (256 sentences)", |b| {
        b.iter(|| {
            for s in &sentences {
                std::hint::black_box(tokenizer.encode(s, 128).unwrap());
            }
        })
    });
    group.finish();
}

/// The f32 bundle of the shipped checkpoint, exported once into target/ (needs ../shared).
fn f32_bundle() -> Option<PathBuf> {
    let out = repo().join("target/bench-sentiment-f32.kinglet");
    if out.is_file() {
        return Some(out);
    }
    let shared = std::env::var_os("KINGLET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    let checkpoint = shared.join("models/sentiment-minilm-sst2");
    if !checkpoint.is_dir() {
        eprintln!(
            "note: skipping sentiment/f32: {} not found",
            checkpoint.display()
        );
        return None;
    }
    kinglet_exporter::export::export_hf_classifier(
        &checkpoint,
        &out,
        &kinglet_exporter::export::ExportOptions::default(),
    )
    .unwrap();
    Some(out)
}

fn sentiment(c: &mut Criterion) {
    let mut bundles = vec![("int8", repo().join("models/sentiment.kinglet"))];
    bundles.extend(f32_bundle().map(|p| ("f32", p)));
    let mut group = c.benchmark_group("sentiment");
    for (precision, path) in bundles {
        let mut classifier = Classifier::load(&path, &LoadOptions::default()).unwrap();
        let longest = classifier.text_mut().longest_input().unwrap();
        for tokens in [16, 64, 128] {
            let mut ids = longest[..tokens - 1].to_vec();
            ids.push(*longest.last().unwrap());
            group.bench_with_input(BenchmarkId::new(precision, tokens), &ids, |b, ids| {
                b.iter(|| classifier.logits(ids).unwrap())
            });
        }
    }
    group.finish();
}

fn forecasters(c: &mut Criterion) {
    let mut group = c.benchmark_group("forecast");
    for name in ["etth1-dlinear", "etth1-lstm"] {
        let path = repo().join("models").join(format!("{name}.kinglet"));
        let mut f = Forecaster::load(&path, &LoadOptions::default()).unwrap();
        let window = f.typical_window();
        group.bench_function(name, |b| b.iter(|| f.forecast(&window).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, tokenization, sentiment, forecasters);
criterion_main!(benches);
