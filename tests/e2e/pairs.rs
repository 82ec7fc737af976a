//! Sentence pairs and zero-shot classification against Transformers, on the NLI-shaped
//! fixture `tests/fixtures/hf/bert-nli-f32` (made by `tests/fixtures/make_hf_fixtures.py`).

use crate::cli::{kinglet, run};
use crate::shared::{floats, hf_fixture, ints};
use kinglet_exporter::export::{export_hf_classifier, ExportOptions};
use kinglet_runtime::tokenize::{PairTruncation, TextTokenizer};
use kinglet_runtime::{Bundle, Classifier};
use std::path::{Path, PathBuf};

fn reference() -> serde_json::Value {
    let path = hf_fixture("bert-nli-f32").join("reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Exports the NLI fixture in f32 with a token limit.
pub(crate) fn export_nli(dir: &Path, max_tokens: usize) -> PathBuf {
    let out = dir.join(format!("nli-{max_tokens}.kinglet"));
    let options = ExportOptions {
        max_tokens,
        ..Default::default()
    };
    export_hf_classifier(&hf_fixture("bert-nli-f32"), &out, &options).unwrap();
    out
}

#[test]
fn sentence_pairs_match_transformers_logits_and_token_types() {
    let reference = reference();
    let max_tokens = reference["max_tokens"].as_u64().unwrap() as usize;
    let tmp = tempfile::tempdir().unwrap();
    let bundle = Bundle::read(export_nli(tmp.path(), max_tokens)).unwrap();
    let mut tokenizer = TextTokenizer::from_bytes(bundle.tokenizer.as_ref().unwrap()).unwrap();
    let mut classifier = Classifier::from_bundle(&bundle).unwrap();
    assert!(classifier.has_token_types());
    let pairs = reference["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 50);
    let (mut max_dev, mut truncated) = (0f32, 0);
    for row in pairs {
        let (first, second) = (
            row["text"].as_str().unwrap(),
            row["text_pair"].as_str().unwrap(),
        );
        let tokens = tokenizer
            .encode_pair(first, second, max_tokens, PairTruncation::LongestFirst)
            .unwrap();
        assert_eq!(
            tokens.ids,
            ints(&row["input_ids"]),
            "ids of {first:?} / {second:?}"
        );
        assert_eq!(
            tokens.type_ids,
            ints(&row["token_type_ids"]),
            "types of {first:?}"
        );
        let answer = classifier.classify_pair(first, second, None).unwrap();
        let want = floats(&row["logits"]);
        let dev = kinglet_runtime::verify::max_deviation(&answer.logits, &want);
        assert!(
            dev <= 1e-4,
            "{first:?} / {second:?}: {:?} vs {want:?}",
            answer.logits
        );
        max_dev = max_dev.max(dev);
        truncated += answer.truncated as usize;
    }
    // the fixture's pairs cross the limit (longest_first cuts both texts)
    assert!(truncated >= 20, "{truncated} of 50 pairs truncated");
    eprintln!(
        "pairs: 50 pairs ({truncated} truncated), max |Δlogit| vs Transformers = {max_dev:.2e}"
    );
}

#[test]
fn zero_shot_labels_and_scores_equal_the_transformers_pipeline() {
    let reference = reference();
    let tmp = tempfile::tempdir().unwrap();
    // the pipeline does not truncate these (its limit is the tokenizer's, far above): the
    // bundle keeps all 64 positions
    let bundle = Bundle::read(export_nli(tmp.path(), 64)).unwrap();
    let mut classifier = Classifier::from_bundle(&bundle).unwrap();
    let cases = reference["zero_shot"].as_array().unwrap();
    let mut max_dev = 0f32;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let candidates: Vec<String> = case["candidate_labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let answer = classifier
            .zero_shot(
                text,
                &candidates,
                case["hypothesis_template"].as_str().unwrap(),
                case["multi_label"].as_bool().unwrap(),
                None,
            )
            .unwrap();
        let want_labels: Vec<&str> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(answer.labels, want_labels, "{text:?}");
        let dev = kinglet_runtime::verify::max_deviation(&answer.scores, &floats(&case["scores"]));
        assert!(
            dev <= 1e-5,
            "{text:?}: {:?} vs {}",
            answer.scores,
            case["scores"]
        );
        max_dev = max_dev.max(dev);
    }
    eprintln!(
        "zero-shot: {} cases, labels equal, max |Δscore| = {max_dev:.2e}",
        cases.len()
    );
}

#[test]
fn classify_pairs_from_a_tsv_file_and_from_arguments_answer_alike() {
    let reference = reference();
    let tmp = tempfile::tempdir().unwrap();
    let model = export_nli(tmp.path(), 24);
    let rows = &reference["pairs"].as_array().unwrap()[..6];
    let tsv = tmp.path().join("pairs.tsv");
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}\t{}",
                r["text"].as_str().unwrap(),
                r["text_pair"].as_str().unwrap()
            )
        })
        .collect();
    std::fs::write(&tsv, lines.join("\n") + "\n\n").unwrap();
    let r = run(kinglet()
        .args(["classify", "--json", "--pairs", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&tsv));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let answers = r.json_lines();
    assert_eq!(answers.len(), 6);
    for (answer, row) in answers.iter().zip(rows) {
        assert_eq!(answer["text"], row["text"]);
        assert_eq!(answer["text_pair"], row["text_pair"]);
        let dev = kinglet_runtime::verify::max_deviation(
            &floats(&answer["logits"]),
            &floats(&row["logits"]),
        );
        assert!(dev <= 1e-4, "{answer}");
    }
    assert!(r.stderr.contains("skipped 1 blank line"), "{}", r.stderr);
    let one = run(kinglet()
        .args(["classify", "--json", "--model"])
        .arg(&model)
        .arg("--pair")
        .args([
            rows[0]["text"].as_str().unwrap(),
            rows[0]["text_pair"].as_str().unwrap(),
        ]));
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert_eq!(one.json_lines()[0]["logits"], answers[0]["logits"]);
}

#[test]
fn zero_shot_from_the_command_line_ranks_the_candidates() {
    let reference = reference();
    let case = &reference["zero_shot"][1];
    let tmp = tempfile::tempdir().unwrap();
    let model = export_nli(tmp.path(), 64);
    let labels: Vec<&str> = case["candidate_labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let r = run(kinglet()
        .args(["classify", "--model"])
        .arg(&model)
        .args(["--zero-shot", &labels.join(",")])
        .arg(case["text"].as_str().unwrap()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `label score` pairs, best first, as the pipeline ranks them
    let ranked: Vec<&str> = r.stdout.split_whitespace().step_by(2).collect();
    let want: Vec<&str> = case["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(ranked, want, "{}", r.stdout);
}

#[test]
fn pairs_are_refused_where_they_would_be_read_wrong_and_bad_pair_input_is_one_line() {
    // the shipped sentiment bundle is a BERT graph without token_type_ids
    let r = run(kinglet()
        .args(["classify", "--model"])
        .arg(crate::shared::shipped_sentiment())
        .args(["--pair", "a fine film", "good"]));
    r.assert_clean_error(4, &["token_type_ids", "export the checkpoint again"]);
    let tmp = tempfile::tempdir().unwrap();
    let model = export_nli(tmp.path(), 24);
    let tsv = tmp.path().join("bad.tsv");
    std::fs::write(&tsv, "a\tb\nno tab on this line\n").unwrap();
    let r = run(kinglet()
        .args(["classify", "--pairs", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&tsv));
    r.assert_clean_error(4, &["line 2", "no TAB"]);
    assert!(
        r.stdout.is_empty(),
        "checked before any answer: {}",
        r.stdout
    );
    // zero-shot needs an entailment label
    let r = run(kinglet()
        .args(["classify", "--zero-shot", "a,b"])
        .arg("--model")
        .arg(crate::shared::shipped_sentiment())
        .arg("a fine film"));
    r.assert_clean_error(4, &["entailment", "negative, positive"]);
    let r = run(kinglet().args(["classify", "--model"]).arg(&model).args([
        "--zero-shot",
        "a",
        "--hypothesis",
        "no slot",
        "text",
    ]));
    r.assert_clean_error(4, &["{}"]);
}

#[test]
fn families_without_token_types_read_a_pair_by_its_separators() {
    // DistilBERT has no token types: Transformers passes no token_type_ids, nor does kinglet
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d.kinglet");
    export_hf_classifier(
        &hf_fixture("distilbert-bf16"),
        &out,
        &ExportOptions::default(),
    )
    .unwrap();
    let mut classifier = Classifier::from_bundle(&Bundle::read(&out).unwrap()).unwrap();
    assert!(!classifier.has_token_types());
    let pair = classifier
        .classify_pair("a fine film", "good", None)
        .unwrap();
    let joined = classifier.classify("a fine film [SEP] good", None).unwrap();
    // `[CLS] a fine film [SEP] good [SEP]` either way
    assert_eq!(pair.tokens, joined.tokens);
    assert_eq!(pair.logits, joined.logits);
}
