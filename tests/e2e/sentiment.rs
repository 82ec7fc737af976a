//! The shared sentiment checkpoint, exported natively, against PyTorch; the shipped bundle.

use crate::cli::{kinglet, run};
use crate::require_shared;
use crate::shared::shipped_sentiment;
use kinglet_exporter::export::{export_hf_classifier, ExportOptions};
use kinglet_runtime::{Bundle, Classifier};

#[test]
fn f32_export_agrees_with_pytorch_on_sst2_dev() {
    let shared = require_shared!("f32_export_agrees_with_pytorch_on_sst2_dev");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sentiment-f32.kinglet");
    let ckpt = shared.join("models/sentiment-minilm-sst2");
    export_hf_classifier(&ckpt, &out, &ExportOptions::default()).unwrap();
    let mut classifier = Classifier::from_bundle(&Bundle::read(&out).unwrap()).unwrap();

    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared.join("reference/sst2_dev_torch_f32.json")).unwrap(),
    )
    .unwrap();
    let ref_logits = reference["logits"].as_array().unwrap();
    let dev = std::fs::read_to_string(shared.join("data/sst2/dev.tsv")).unwrap();
    let rows: Vec<&str> = dev
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(rows.len(), 6735);
    assert_eq!(ref_logits.len(), rows.len());

    // every row natively; 32 under emulation (ARM CI: qemu runs f32 NEON arithmetic through
    // soft-float helpers, ~2 s a row)
    let n = crate::shared::rows_for(32).min(rows.len());
    let (mut agree, mut max_dev, mut correct) = (0usize, 0f32, 0usize);
    let labels: Vec<usize> = dev
        .lines()
        .skip(1)
        .map(|l| l.rsplit('\t').next().unwrap().trim().parse().unwrap())
        .collect();
    for i in 0..n {
        let want: Vec<f32> = ref_logits[i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = classifier.classify(rows[i], None).unwrap();
        let want_label = if want[1] > want[0] { 1 } else { 0 };
        agree += (got.label_index == want_label) as usize;
        correct += (got.label_index == labels[i]) as usize;
        max_dev = max_dev.max(kinglet_runtime::verify::max_deviation(&got.logits, &want));
    }
    eprintln!(
        "sst2 dev f32: {n} rows, label agreement {agree}/{n}, max |Δlogit| {max_dev:.3e}, accuracy {:.4}",
        correct as f64 / n as f64
    );
    assert_eq!(agree, n, "label agreement with PyTorch must be 100 %");
    assert!(max_dev <= 1e-3, "max |Δlogit| {max_dev:e} > 1e-3");
}

#[test]
fn classify_without_model_uses_shipped_bundle_from_any_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    let r = run(kinglet()
        .current_dir(elsewhere.path())
        .env_remove("KINGLET_MODEL")
        .args(["classify", "an uplifting, beautifully acted film"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stdout.trim();
    let (label, score) = line.split_once(' ').unwrap();
    assert_eq!(label, "positive");
    assert!(score.parse::<f32>().unwrap() > 0.9);
}

#[test]
fn a_bare_model_name_is_found_on_the_model_path_and_a_missing_one_lists_where_it_looked() {
    let (models, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::copy(shipped_sentiment(), models.path().join("reviews.kinglet")).unwrap();
    let r = run(kinglet()
        .current_dir(elsewhere.path())
        .env("KINGLET_MODEL_PATH", models.path())
        .args([
            "classify",
            "--model",
            "reviews",
            "an uplifting, beautifully acted film",
        ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("positive "), "{}", r.stdout);
    let r = run(kinglet()
        .current_dir(elsewhere.path())
        .env("KINGLET_MODEL_PATH", models.path())
        .args(["verify", "--model", "no-such-model"]));
    let looked_in = models.path().display().to_string();
    r.assert_clean_error(
        3,
        &["no-such-model", &looked_in, "/usr/share/kinglet/models"],
    );
    assert!(!r.stderr.contains("runtime/.."), "{}", r.stderr);
}

#[test]
fn classify_json_prints_one_object_per_input_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.txt");
    std::fs::write(
        &input,
        "a gorgeous, moving film\r\nthe worst movie of the year\n",
    )
    .unwrap();
    let r = run(kinglet()
        .arg("classify")
        .arg("--json")
        .arg("--model")
        .arg(shipped_sentiment())
        .arg("--input")
        .arg(&input));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objs = r.json_lines();
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0]["text"], "a gorgeous, moving film");
    assert_eq!(objs[0]["label"], "positive");
    assert_eq!(objs[1]["label"], "negative");
    for o in &objs {
        let logits: Vec<f64> = o["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(logits.len(), 2);
        let max = logits.iter().cloned().fold(f64::MIN, f64::max);
        let softmax_top = 1.0 / logits.iter().map(|l| (l - max).exp()).sum::<f64>();
        assert!((o["score"].as_f64().unwrap() - softmax_top).abs() < 1e-5);
        assert_eq!(o["truncated"], false);
    }
}

#[test]
fn classify_on_several_threads_prints_the_same_bits_as_on_one() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.txt");
    let long = "a slow, thoughtful and at times frustrating film that rewards patience ".repeat(12);
    std::fs::write(
        &input,
        format!("fine\nthe worst movie of the year\n{long}\n"),
    )
    .unwrap();
    let classify = |threads: &str| {
        let r = run(kinglet()
            .args(["classify", "--json", "--threads", threads, "--model"])
            .arg(shipped_sentiment())
            .arg("--input")
            .arg(&input));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    let one = classify("1");
    assert_eq!(one.lines().count(), 3);
    assert_eq!(classify("2"), one);
    assert_eq!(classify("3"), one);
}

#[test]
fn verify_cli_reports_deviation_and_succeeds_on_shipped_bundle() {
    let r = run(kinglet()
        .arg("verify")
        .arg("--model")
        .arg(shipped_sentiment()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("5 self-test cases") && r.stdout.contains("ok"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_text_with_a_literal_sep_token_is_answered_with_a_warning_about_segments() {
    let r = run(kinglet()
        .arg("classify")
        .arg("--model")
        .arg(crate::shared::shipped_sentiment())
        .args(["a dull plot [SEP] wonderful acting", "plain text"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(
        warnings[0].contains("argument 1")
            && warnings[0].contains("`[SEP]`")
            && warnings[0].contains("--pair FIRST SECOND"),
        "{}",
        r.stderr
    );
}
