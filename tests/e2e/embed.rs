//! Sentence embeddings from a sentence-transformers folder against `SentenceTransformer.encode`,
//! on `tests/fixtures/hf/st-bert-mean` (made by `tests/fixtures/make_hf_fixtures.py`).

use crate::cli::{kinglet, kinglet_export, run};
use crate::shared::{copy_dir, floats, hf_fixture};
use kinglet_exporter::export::{export_hf_classifier, ExportOptions, ExportReport};
use kinglet_exporter::quantize::Precision;
use kinglet_runtime::embed::cosine;
use kinglet_runtime::tokenize::TextTokenizer;
use kinglet_runtime::{Bundle, Embedder};
use std::path::{Path, PathBuf};

fn reference() -> serde_json::Value {
    let path = hf_fixture("st-bert-mean").join("reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Exports `dir` at `precision` into `tmp`.
pub(crate) fn export(dir: &Path, tmp: &Path, precision: Precision) -> (PathBuf, ExportReport) {
    let out = tmp.join(format!("st-{precision}.kinglet"));
    let options = ExportOptions {
        precision,
        ..Default::default()
    };
    let report = export_hf_classifier(dir, &out, &options).unwrap();
    (out, report)
}

/// Cosine of every reference row's vector (`field`) to the bundle's: (min, mean).
fn cosines(bundle: &Path, field: &str) -> (f32, f32) {
    let reference = reference();
    let bundle = Bundle::read(bundle).unwrap();
    let mut model = Embedder::from_bundle(&bundle).unwrap();
    let rows = reference["rows"].as_array().unwrap();
    let all: Vec<f32> = rows
        .iter()
        .map(|row| {
            let got = model.embed(row["text"].as_str().unwrap(), None).unwrap();
            cosine(&got.vector, &floats(&row[field]))
        })
        .collect();
    let min = all.iter().copied().fold(f32::INFINITY, f32::min);
    (min, all.iter().sum::<f32>() / all.len() as f32)
}

#[test]
fn sentence_embeddings_match_sentence_transformers_encode_on_80_sentences() {
    let reference = reference();
    let rows = reference["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 80);
    let tmp = tempfile::tempdir().unwrap();
    let (out, report) = export(&hf_fixture("st-bert-mean"), tmp.path(), Precision::F32);
    assert_eq!(report.architecture, "BertModel");
    let bundle = Bundle::read(&out).unwrap();
    // the folder's limit (24 tokens) is the bundle's
    let mut tokenizer = TextTokenizer::from_bytes(bundle.tokenizer.as_ref().unwrap()).unwrap();
    for row in rows {
        let want: Vec<i64> = row["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let text = row["text"].as_str().unwrap();
        assert_eq!(tokenizer.encode(text, 24).unwrap().ids, want, "{text:?}");
    }
    let (min, mean) = cosines(&out, "embedding");
    assert!(min >= 0.99999, "min cosine {min}");
    eprintln!("st-bert-mean f32: 80 sentences, cosine to sentence-transformers min {min:.7} mean {mean:.7}");
}

#[test]
fn cls_and_max_pooling_follow_the_folders_pooling_config() {
    for (mode, field) in [("cls", "cls"), ("max", "max")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("st");
        copy_dir(&hf_fixture("st-bert-mean"), &dir);
        // the older form of the config, as sentence-transformers 2–4 wrote it
        let config = serde_json::json!({
            "word_embedding_dimension": 48,
            "pooling_mode_cls_token": mode == "cls",
            "pooling_mode_mean_tokens": false,
            "pooling_mode_max_tokens": mode == "max",
        });
        std::fs::write(dir.join("1_Pooling/config.json"), config.to_string()).unwrap();
        let (out, _) = export(&dir, tmp.path(), Precision::F32);
        let (min, mean) = cosines(&out, field);
        assert!(min >= 0.99999, "{mode}: min cosine {min}");
        eprintln!("st-bert-mean {mode} pooling: cosine min {min:.7} mean {mean:.7}");
    }
}

#[test]
fn int8_embeddings_stay_close_to_the_float_model_and_say_how_close() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, report) = export(&hf_fixture("st-bert-mean"), tmp.path(), Precision::Int8);
    let q = report.quantization.unwrap();
    assert!(q.label_agreement.is_none());
    let (stored_min, stored_mean) = (q.min_cosine.unwrap(), q.mean_cosine.unwrap());
    assert!(
        stored_min > 0.99 && stored_mean > 0.995,
        "{stored_min} {stored_mean}"
    );
    let (min, mean) = cosines(&out, "embedding");
    assert!(min >= 0.99 && mean >= 0.995, "int8: min {min}, mean {mean}");
    eprintln!(
        "st-bert-mean int8: cosine to sentence-transformers on 80 sentences min {min:.5} mean \
         {mean:.5}; stored self-test comparison min {stored_min:.5} mean {stored_mean:.5}"
    );
}

#[test]
fn embed_prints_vectors_and_each_command_refuses_the_other_kind_of_text_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = export(&hf_fixture("st-bert-mean"), tmp.path(), Precision::F32);
    let r = run(kinglet()
        .args(["embed", "--json", "--model"])
        .arg(&out)
        .args(["a fine film", "the worst movie of the year"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["dimensions"], 48);
    let v = floats(&lines[0]["embedding"]);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "normalized: {norm}");
    let plain = run(kinglet()
        .args(["embed", "--model"])
        .arg(&out)
        .arg("a fine film"));
    assert_eq!(
        plain.stdout.split_whitespace().count(),
        48,
        "{}",
        plain.stdout
    );
    let r = run(kinglet()
        .args(["classify", "--model"])
        .arg(&out)
        .arg("a fine film"));
    r.assert_clean_error(3, &["sentence embeddings", "kinglet embed"]);
    let r = run(kinglet()
        .args(["embed", "--model"])
        .arg(crate::shared::shipped_sentiment())
        .arg("a fine film"));
    r.assert_clean_error(
        3,
        &["not a sentence-embedding model", "sentence-transformers"],
    );
}

#[test]
fn a_folder_with_a_module_or_pooling_kinglet_lacks_is_refused_with_what_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("st");
    copy_dir(&hf_fixture("st-bert-mean"), &dir);
    let pooling = serde_json::json!({"embedding_dimension": 48, "pooling_mode": "weightedmean"});
    std::fs::write(dir.join("1_Pooling/config.json"), pooling.to_string()).unwrap();
    let r = run(kinglet_export()
        .args(["bert"])
        .arg(&dir)
        .arg("-o")
        .arg(tmp.path().join("x.kinglet")));
    r.assert_clean_error(4, &["weightedmean", "mean, cls, max"]);
    copy_dir(&hf_fixture("st-bert-mean"), &dir);
    let modules = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#;
    std::fs::write(dir.join("modules.json"), modules).unwrap();
    let r = run(kinglet_export()
        .args(["bert"])
        .arg(&dir)
        .arg("-o")
        .arg(tmp.path().join("x.kinglet")));
    r.assert_clean_error(4, &["Dense"]);
}

/// The committed 1,000 SST-2 phrases.
fn documents() -> PathBuf {
    crate::shared::repo_root().join("examples/sst2-sentences.txt")
}

#[test]
fn an_index_of_1000_sentences_answers_as_exact_float_search() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = export(&hf_fixture("st-bert-mean"), tmp.path(), Precision::F32);
    let texts: Vec<String> = std::fs::read_to_string(documents())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(texts.len(), 1000);
    let mut embedder = Embedder::from_bundle(&Bundle::read(&model).unwrap()).unwrap();
    let vectors: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| embedder.embed(t, None).unwrap().vector)
        .collect();
    let queries = [
        "a gorgeous, moving film",
        "the worst movie of the year",
        "funny and warm",
        "the plot makes no sense",
        "東京 😀",
    ];
    for storage in ["f32", "f16", "int8"] {
        let index = tmp.path().join(format!("docs-{storage}.kidx"));
        let r = run(kinglet()
            .args(["index", "build", "--json", "--storage", storage, "--model"])
            .arg(&model)
            .arg("--input")
            .arg(documents())
            .arg("-o")
            .arg(&index));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let report = &r.json_lines()[0];
        assert_eq!(report["documents"], 1000);
        let recall = report["recall_at_5"].as_f64().unwrap();
        let r = run(kinglet()
            .args(["search", "--json", "-k", "5", "--model"])
            .arg(&model)
            .arg("--index")
            .arg(&index)
            .args(queries));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut same = 0;
        for (answer, query) in r.json_lines().iter().zip(queries) {
            let q = embedder.embed(query, None).unwrap().vector;
            let exact = kinglet_runtime::index::exact_top_k(&vectors, &q, 5);
            let got: Vec<usize> = answer["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["document"].as_u64().unwrap() as usize)
                .collect();
            if storage != "int8" {
                assert_eq!(got, exact, "{storage}: {query:?}");
            }
            same += (got == exact) as usize;
        }
        // f32 is exact; f16 and int8 are measured (this random-weight model's vectors all lie
        // within a few degrees of each other: near-ties that rounding can reorder)
        match storage {
            "f32" => assert_eq!(recall, 1.0),
            "f16" => assert!(recall >= 0.99, "f16 recall@5 {recall}"),
            _ => assert!(recall > 0.9, "int8 recall@5 {recall}"),
        }
        eprintln!(
            "index {storage}: recall@5 on 200 documents as queries {recall:.4}; top-5 equal to \
             exact f32 search for {same} of {} queries; {} bytes",
            queries.len(),
            std::fs::metadata(&index).unwrap().len()
        );
    }
}

#[test]
fn search_refuses_an_index_of_another_model_and_a_damaged_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = export(&hf_fixture("st-bert-mean"), tmp.path(), Precision::F32);
    let (other, _) = export(&hf_fixture("st-bert-mean"), tmp.path(), Precision::Int8);
    let index = tmp.path().join("docs.kidx");
    let r = run(kinglet()
        .args(["index", "build", "--model"])
        .arg(&model)
        .args(["--input", "examples/reviews.txt", "-o"])
        .arg(&index)
        .current_dir(crate::shared::repo_root()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let search = |model: &Path, index: &Path| {
        run(kinglet()
            .args(["search", "--model"])
            .arg(model)
            .arg("--index")
            .arg(index)
            .arg("a fine film"))
    };
    assert_eq!(search(&model, &index).stdout.lines().count(), 5);
    search(&other, &index).assert_clean_error(4, &["rebuild it with kinglet index build"]);
    let bytes = std::fs::read(&index).unwrap();
    let damaged = tmp.path().join("damaged.kidx");
    std::fs::write(&damaged, &bytes[..bytes.len() - 3]).unwrap();
    search(&model, &damaged).assert_clean_error(4, &["damaged.kidx", "not a kinglet index"]);
    search(&crate::shared::shipped_sentiment(), &index)
        .assert_clean_error(3, &["sentence-embedding bundle"]);
}

#[test]
fn the_shipped_minilm_bundle_embeds_as_sentence_transformers_does() {
    // all-MiniLM-L6-v2 itself (models/minilm-embed.kinglet, int8) against
    // SentenceTransformer.encode's vectors (tests/fixtures/make_minilm_reference.py)
    let root = crate::shared::repo_root();
    let path = root.join("tests/fixtures/minilm/reference.json");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let bundle = Bundle::read(root.join("models/minilm-embed.kinglet")).unwrap();
    let mut model = Embedder::from_bundle(&bundle).unwrap();
    assert_eq!(model.dimensions(), 384);
    let rows = reference["rows"].as_array().unwrap();
    let (mut worst, mut sum) = (1f32, 0f32);
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let got = model.embed(text, None).unwrap();
        let c = cosine(&got.vector, &floats(&row["embedding"]));
        assert!(c >= 0.99, "{text:?}: cosine {c}");
        worst = worst.min(c);
        sum += c;
    }
    let mean = sum / rows.len() as f32;
    assert!(mean >= 0.995, "mean cosine {mean}");
    eprintln!(
        "minilm-embed int8: {} texts, cosine to sentence-transformers min {worst:.5} mean {mean:.5}",
        rows.len()
    );
}
