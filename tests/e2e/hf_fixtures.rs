//! Random-weight checkpoints with unusual shapes, exported natively, match Transformers.

use crate::shared::hf_fixture;
use kinglet_exporter::export::{export_hf_classifier, ExportOptions};
use kinglet_runtime::tokenize::TextTokenizer;
use kinglet_runtime::{Bundle, Classifier};

fn check_fixture_matches_transformers(name: &str) {
    let dir = hf_fixture(name);
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let max_tokens = reference["max_tokens"].as_u64().unwrap() as usize;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(format!("{name}.kinglet"));
    export_hf_classifier(
        &dir,
        &out,
        &ExportOptions {
            max_tokens,
            ..Default::default()
        },
    )
    .unwrap();
    let bundle = Bundle::read(&out).unwrap();
    let mut tokenizer = TextTokenizer::from_bytes(bundle.tokenizer.as_ref().unwrap()).unwrap();
    let mut classifier = Classifier::from_bundle(&bundle).unwrap();
    let rows = reference["rows"].as_array().unwrap();
    assert!(rows.len() >= 8);
    let mut max_dev = 0f32;
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let want_ids: Vec<i64> = row["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let got = tokenizer.encode(text, max_tokens).unwrap();
        assert_eq!(got.ids, want_ids, "{name}: token ids of {text:?}");
        let want: Vec<f32> = row["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let logits = classifier.classify(text, None).unwrap().logits;
        let dev = kinglet_runtime::verify::max_deviation(&logits, &want);
        assert!(
            dev <= 1e-4,
            "{name}: {text:?}: logits {logits:?} vs Transformers {want:?} (|Δ| {dev:e})"
        );
        max_dev = max_dev.max(dev);
    }
    eprintln!(
        "{name}: {} rows, max |Δlogit| vs Transformers = {max_dev:.2e}",
        rows.len()
    );
}

#[test]
fn bert_f32_with_tokenizer_json_matches_transformers() {
    check_fixture_matches_transformers("bert-f32");
}

#[test]
fn distilbert_bf16_multi_label_matches_transformers() {
    check_fixture_matches_transformers("distilbert-bf16");
}

#[test]
fn bert_sharded_f16_with_vocab_txt_only_matches_transformers() {
    check_fixture_matches_transformers("bert-vocab-sharded-f16");
}

#[test]
fn roberta_byte_level_bpe_matches_transformers() {
    check_fixture_matches_transformers("roberta-f32");
}

#[test]
fn xlm_roberta_with_a_sentencepiece_unigram_tokenizer_matches_transformers() {
    check_fixture_matches_transformers("xlm-roberta-f32");
}

#[test]
fn camembert_with_a_sentencepiece_unigram_tokenizer_matches_transformers() {
    check_fixture_matches_transformers("camembert-f32");
}

#[test]
fn electra_with_embeddings_projected_to_the_hidden_size_matches_transformers() {
    check_fixture_matches_transformers("electra-f32");
}

#[test]
fn albert_with_factorized_embeddings_and_a_shared_layer_matches_transformers() {
    check_fixture_matches_transformers("albert-f32");
}

#[test]
fn an_albert_bundle_stores_its_shared_layer_once() {
    let dir = hf_fixture("albert-f32");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("albert.kinglet");
    let report = export_hf_classifier(&dir, &out, &ExportOptions::default()).unwrap();
    let bundle = Bundle::read(&out).unwrap();
    use tract_nnef::prelude::Framework;
    let graph = kinglet_runtime::nnef_ext::nnef()
        .model_for_read(&mut std::io::Cursor::new(&bundle.graph))
        .unwrap();
    let stored: usize = graph
        .nodes()
        .iter()
        .filter_map(|n| n.op_as::<tract_nnef::tract_core::ops::konst::Const>())
        .map(|k| k.val().len())
        .sum();
    // four layers read one set of weights (17,328 values): stored once, the graph holds the
    // checkpoint's values and a few scalars of its own; one copy per layer would add 51,984
    let parameters = report.parameter_count as usize;
    assert!(
        stored < parameters + 1000,
        "the graph stores {stored} values for a checkpoint of {parameters}"
    );
    eprintln!(
        "albert-f32: {parameters} parameters, the graph stores {stored} values; bundle {} bytes",
        std::fs::metadata(&out).unwrap().len()
    );
}

#[test]
fn multi_label_bundle_scores_with_sigmoid() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.kinglet");
    export_hf_classifier(
        &hf_fixture("distilbert-bf16"),
        &out,
        &ExportOptions::default(),
    )
    .unwrap();
    let mut c = Classifier::from_bundle(&Bundle::read(&out).unwrap()).unwrap();
    assert!(c.meta().multi_label);
    let r = c.classify("good", None).unwrap();
    for (s, l) in r.scores.iter().zip(&r.logits) {
        assert!((s - 1.0 / (1.0 + (-l).exp())).abs() < 1e-6);
    }
}

#[test]
fn long_input_is_truncated_to_max_tokens_and_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b.kinglet");
    export_hf_classifier(
        &hf_fixture("bert-f32"),
        &out,
        &ExportOptions {
            max_tokens: 16,
            ..Default::default()
        },
    )
    .unwrap();
    let mut c = Classifier::from_bundle(&Bundle::read(&out).unwrap()).unwrap();
    let long = "good ".repeat(100);
    let r = c.classify(&long, None).unwrap();
    assert!(r.truncated);
    assert_eq!(r.tokens, 16);
    let r = c.classify(&long, Some(10)).unwrap();
    assert_eq!(r.tokens, 10);
    assert!(
        c.classify(&long, Some(17)).is_err(),
        "the bundle holds 16 positions"
    );

    let short = c.classify("good", None).unwrap();
    assert!(!short.truncated);
    assert_eq!(short.tokens, 3);
}

/// A copy of a fixture checkpoint with `edit` applied to its folder.
fn edited_fixture(name: &str, edit: impl FnOnce(&std::path::Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    crate::shared::copy_dir(&hf_fixture(name), tmp.path());
    edit(tmp.path());
    tmp
}

fn set_architecture(dir: &std::path::Path, architecture: &str) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["architectures"] = serde_json::json!([architecture]);
    std::fs::write(&path, config.to_string()).unwrap();
}

fn export_err(dir: &std::path::Path) -> crate::cli::Run {
    let out = dir.join("out.kinglet");
    let r = crate::cli::run(
        crate::cli::kinglet_export()
            .args(["bert", "--precision", "f32"])
            .arg(dir)
            .arg("-o")
            .arg(&out),
    );
    assert!(!out.exists());
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    r
}

#[test]
fn an_unsupported_architecture_is_refused_with_what_would_work_instead() {
    for (architecture, says) in [
        (
            "DebertaV2ForSequenceClassification",
            "fine-tune a BERT, DistilBERT, RoBERTa, ELECTRA or ALBERT checkpoint",
        ),
        (
            "MPNetForSequenceClassification",
            "fine-tune a BERT, DistilBERT, RoBERTa, ELECTRA or ALBERT checkpoint",
        ),
        (
            "DebertaV2ForTokenClassification",
            "DebertaV2 token classification (NER) is not exported yet",
        ),
        ("BertModel", "an encoder without a task head"),
        ("BertForMaskedLM", "AutoModelForSequenceClassification"),
    ] {
        let dir = edited_fixture("roberta-f32", |d| set_architecture(d, architecture));
        let r = export_err(dir.path());
        assert_eq!(r.code, 4, "{architecture}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{architecture}: {}", r.stderr);
    }
}

#[test]
fn a_pytorch_bin_checkpoint_names_the_file_it_found_and_the_conversion_line() {
    let dir = edited_fixture("bert-f32", |d| {
        std::fs::remove_file(d.join("model.safetensors")).unwrap();
        std::fs::write(d.join("pytorch_model.bin"), b"PK not really a pickle").unwrap();
    });
    let r = export_err(dir.path());
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("but pytorch_model.bin"), "{}", r.stderr);
    assert!(
        r.stderr.contains(".save_pretrained(") && r.stderr.contains("from_pretrained("),
        "{}",
        r.stderr
    );
}
