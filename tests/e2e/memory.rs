//! The memory budget through the CLI: preflight numbers in `kinglet inspect`, refusal below
//! the model's needs with both numbers, and a normal run at exactly its needs.

use crate::cli::{kinglet, run};
use crate::shared::repo_root;
use std::path::PathBuf;

fn model(name: &str) -> PathBuf {
    repo_root().join("models").join(name)
}

fn inspect_json(bundle: &PathBuf) -> serde_json::Value {
    let r = run(kinglet().args(["inspect", "--json", "--model"]).arg(bundle));
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// `needs` in MiB as the error message prints it.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

fn budget_refuses_below_needs_and_runs_at_needs(bundle: &str, at: &str, job: &[&str]) {
    let bundle = model(bundle);
    let v = inspect_json(&bundle);
    let memory = &v["memory"];
    let peak = memory["peak_bytes"].as_u64().unwrap();
    let needs = memory["needs_bytes"].as_u64().unwrap();
    assert_eq!(needs, peak + memory["margin_bytes"].as_u64().unwrap());
    assert_eq!(memory["measured_at"], at);

    let below = peak - 1;
    let r = run(kinglet()
        .args(job)
        .arg("--model")
        .arg(&bundle)
        .args(["--budget", &below.to_string()]));
    // refused before the arena is reserved: the needs named are those measured before the
    // arena was grown to hold the worst request (at most what inspect reports)
    let message = format!("at {at}; budget is {}", mib(below));
    r.assert_clean_error(6, &["model needs", &message]);
    assert!(r.stdout.is_empty(), "nothing answered: {}", r.stdout);

    let r = run(kinglet()
        .args(job)
        .arg("--model")
        .arg(&bundle)
        .args(["--budget", &needs.to_string()]));
    assert_eq!(r.code, 0, "at peak + margin it runs: {}", r.stderr);
    assert!(!r.stdout.is_empty());
}

#[test]
fn classifier_budget_below_its_needs_is_refused_and_at_its_needs_it_runs() {
    budget_refuses_below_needs_and_runs_at_needs(
        "sentiment.kinglet",
        "128 tokens",
        &["classify", "an uplifting, beautifully acted film"],
    );
}

#[test]
fn forecaster_budget_below_its_needs_is_refused_and_at_its_needs_it_runs() {
    let csv = repo_root().join("tests/fixtures/forecast/etth1_tail.csv");
    budget_refuses_below_needs_and_runs_at_needs(
        "etth1-lstm.kinglet",
        "96 rows",
        &["forecast", "--csv", csv.to_str().unwrap()],
    );
}

#[test]
fn budget_takes_units_and_refuses_nonsense() {
    let r = run(kinglet().args(["classify", "--budget", "lots", "good"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a size"), "{}", r.stderr);
    let r = run(kinglet().args(["classify", "--budget", "1MiB", "good"]));
    r.assert_clean_error(6, &["budget is 1.0 MiB"]);
}

#[test]
fn inspect_reports_parts_peak_budget_and_ten_largest_tensors() {
    let v = inspect_json(&model("sentiment.kinglet"));
    let m = &v["memory"];
    for part in [
        "weights_bytes",
        "plan_bytes",
        "tokenizer_bytes",
        "activation_peak_bytes",
        "resident_bytes",
        "arena_bytes",
    ] {
        assert!(m[part].is_i64() || m[part].is_u64(), "{part}: {m}");
    }
    let weights = m["weights_bytes"].as_u64().unwrap();
    // 22.7 M parameters, int8 matrices with f32 scales, biases and LayerNorms
    assert!(weights > 20_000_000 && weights < 30_000_000, "{weights}");
    assert!(m["tokenizer_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["peak_bytes"], m["peak_bytes"]);
    // the exporter stored its own preflight and a default budget in the bundle
    assert!(v["budget_bytes"].as_u64().unwrap() >= m["needs_bytes"].as_u64().unwrap());
    let largest = v["largest_tensors"].as_array().unwrap();
    assert_eq!(largest.len(), 10);
    let bytes: Vec<u64> = largest
        .iter()
        .map(|t| t["bytes"].as_u64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");
    // attention scores of 12 heads at 128 × 128 f32
    assert_eq!(bytes[0], 12 * 128 * 128 * 4);
    assert_eq!(v["labels"], serde_json::json!(["negative", "positive"]));
    assert_eq!(v["parameter_count"], 22_713_986);
}

#[test]
fn classify_input_streams_lines_and_catches_a_bad_one_before_any_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lines.txt");
    let mut text = "a fine film\n".repeat(50);
    text.push_str("not \u{ff}valid\n");
    std::fs::write(&file, text.replace('\u{ff}', "")).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 7;
    bytes.insert(at, 0xff);
    std::fs::write(&file, &bytes).unwrap();
    let r = run(kinglet().arg("classify").arg("--input").arg(&file));
    r.assert_clean_error(4, &["line 51", "not valid UTF-8"]);
    assert!(
        r.stdout.is_empty(),
        "checked before any answer: {}",
        r.stdout
    );
}
