//! Quantized bundles: accuracy on real data, agreement with float, integer kernels, the
//! accuracy guard, and `kinglet eval`.

use crate::cli::{kinglet, kinglet_export, run};
use crate::require_shared;
use crate::shared::{hf_fixture, repo_root, shipped_sentiment};
use kinglet_exporter::export::{export_hf_classifier, ExportOptions};
use kinglet_runtime::dataset::read_labeled_tsv;
use kinglet_runtime::metrics::ClassificationReport;
use kinglet_runtime::{Bundle, Classifier};

fn sample_tsv() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/sst2_dev_sample.tsv")
}

#[test]
fn shipped_bundle_is_int8_and_under_24_mb() {
    let bundle = Bundle::read(shipped_sentiment()).unwrap();
    assert_eq!(bundle.manifest.precision, "int8");
    let bytes = std::fs::metadata(shipped_sentiment()).unwrap().len();
    assert!(bytes <= 24_000_000, "{bytes} bytes");
}

#[test]
fn int8_matmuls_run_on_integer_kernels() {
    let mut c = Classifier::from_bundle(&Bundle::read(shipped_sentiment()).unwrap()).unwrap();
    let kernels = c.text_mut().engine().matmul_kernels();
    eprintln!("matmul kernels on this CPU: {kernels:?}");
    let int8: usize = kernels
        .iter()
        .filter(|(k, _)| k.contains("i32"))
        .map(|(_, n)| n)
        .sum();
    // 6 layers × 6 projections + pooler + classifier, each on an i8×i8→i32 kernel
    assert!(int8 >= 38, "integer kernels: {kernels:?}");
}

#[test]
fn attention_runs_as_one_fused_operator_per_layer_where_avx512_is_available() {
    let mut c = Classifier::from_bundle(&Bundle::read(shipped_sentiment()).unwrap()).unwrap();
    let model = c.text_mut().engine().model();
    let count = |name: &str| {
        model
            .nodes()
            .iter()
            .filter(|n| n.op().name() == name)
            .count()
    };
    let (fused, softmaxes) = (count("KingletAttention"), count("Softmax"));
    if kinglet_runtime::ops::attention::available() {
        // 6 layers; the classifier's own softmax is outside the graph
        assert_eq!((fused, softmaxes), (6, 0));
    } else {
        eprintln!("no AVX-512 F here: attention runs as stored, on tract's kernels");
        assert_eq!((fused, softmaxes), (0, 6));
    }
}

/// The labels and logits x86 produced with the shipped int8 bundle on the 256-row sample,
/// committed so every other architecture can be held to them.
#[test]
fn int8_bundle_keeps_accuracy_and_agrees_with_float_on_sst2_dev() {
    let shared = require_shared!("int8_bundle_keeps_accuracy_and_agrees_with_float_on_sst2_dev");
    let mut c = Classifier::from_bundle(&Bundle::read(shipped_sentiment()).unwrap()).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared.join("reference/sst2_dev_torch_f32.json")).unwrap(),
    )
    .unwrap();
    let float_logits = reference["logits"].as_array().unwrap();
    let rows = read_labeled_tsv(&shared.join("data/sst2/dev.tsv"), &c.meta().labels).unwrap();
    // Under emulation the cross-architecture check is the x86 reference test above.
    let n = crate::shared::rows_for(32).min(rows.len());
    let (mut right, mut agree) = (0usize, 0usize);
    for (row, float) in rows.iter().zip(float_logits).take(n) {
        let got = c.classify(&row.text, None).unwrap();
        right += (got.label_index == row.label) as usize;
        let float_label = (float[1].as_f64().unwrap() > float[0].as_f64().unwrap()) as usize;
        agree += (got.label_index == float_label) as usize;
    }
    let (accuracy, agreement) = (right as f64 / n as f64, agree as f64 / n as f64);
    eprintln!(
        "int8 on sst2 dev: {n} rows, accuracy {:.4}, agreement with PyTorch f32 {:.4}",
        accuracy, agreement
    );
    assert!(agreement >= 0.99, "agreement {agreement}");
    if n == rows.len() {
        assert!(accuracy >= 0.9429, "accuracy {accuracy}");
    }
}

/// q4 weights are block-quantized constants that only tract's own matmul reads: the f32
/// kernels' fusion must leave them be (an export used to fail at its self-test with "Tensor
/// storage is not plain"). Its stored comparison covers 205 texts, not 5.
#[cfg(target_arch = "x86_64")]
#[test]
fn q4_export_of_the_sentiment_checkpoint_loads_and_compares_on_205_texts() {
    let shared =
        require_shared!("q4_export_of_the_sentiment_checkpoint_loads_and_compares_on_205_texts");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q4.kinglet");
    let options = ExportOptions {
        precision: kinglet_exporter::quantize::Precision::Q4,
        ..Default::default()
    };
    let report =
        export_hf_classifier(&shared.join("models/sentiment-minilm-sst2"), &out, &options).unwrap();
    let q = report.quantization.unwrap();
    assert_eq!(q.rows, 205);
    let agreement = q.label_agreement.unwrap();
    assert!(agreement >= 0.97, "q4 label agreement {agreement}");
    let mut c = Classifier::from_bundle(&Bundle::read(&out).unwrap()).unwrap();
    assert_eq!(
        c.classify("an uplifting, beautifully acted film", None)
            .unwrap()
            .label,
        "positive"
    );
    eprintln!(
        "q4: {} bytes; stored comparison on {} texts: agreement {agreement:.4}, max |Δ logit| {:.4}",
        report.bundle_bytes, q.rows, q.max_abs_logit_delta
    );
}

// f16 arithmetic is emulated (slowly) on CPUs without it, and under qemu: measured natively.
#[cfg(target_arch = "x86_64")]
#[test]
fn f16_export_agrees_with_float_on_sst2_dev() {
    let shared = require_shared!("f16_export_agrees_with_float_on_sst2_dev");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f16.kinglet");
    let options = ExportOptions {
        precision: kinglet_exporter::quantize::Precision::F16,
        ..Default::default()
    };
    export_hf_classifier(&shared.join("models/sentiment-minilm-sst2"), &out, &options).unwrap();
    let mut c = Classifier::from_bundle(&Bundle::read(&out).unwrap()).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared.join("reference/sst2_dev_torch_f32.json")).unwrap(),
    )
    .unwrap();
    let rows = read_labeled_tsv(&shared.join("data/sst2/dev.tsv"), &c.meta().labels).unwrap();
    let n = rows.len();
    let mut agree = 0usize;
    for (row, float) in rows
        .iter()
        .zip(reference["logits"].as_array().unwrap())
        .take(n)
    {
        let got = c.classify(&row.text, None).unwrap();
        agree += (got.label_index
            == (float[1].as_f64().unwrap() > float[0].as_f64().unwrap()) as usize)
            as usize;
    }
    eprintln!("f16 on sst2 dev: {n} rows, agreement with PyTorch f32 {agree}/{n}");
    assert!(agree as f64 / n as f64 >= 0.999, "agreement {agree}/{n}");
}

#[test]
fn eval_numbers_equal_those_recomputed_from_classify_json() {
    let model = shipped_sentiment();
    // the whole 256-row sample natively, its first 40 rows under emulation
    let tmp = tempfile::tempdir().unwrap();
    let sample = tmp.path().join("sample.tsv");
    let keep = crate::shared::rows_for(40).saturating_add(1);
    let text = std::fs::read_to_string(sample_tsv()).unwrap();
    std::fs::write(
        &sample,
        text.lines().take(keep).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let r = run(kinglet()
        .arg("eval")
        .arg("--json")
        .arg("--model")
        .arg(&model)
        .arg("--tsv")
        .arg(&sample));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let eval: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();

    let labels = vec!["negative".to_string(), "positive".to_string()];
    let rows = read_labeled_tsv(&sample, &labels).unwrap();
    let texts = tmp.path().join("texts.txt");
    std::fs::write(
        &texts,
        rows.iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let r = run(kinglet()
        .arg("classify")
        .arg("--json")
        .arg("--model")
        .arg(&model)
        .arg("--input")
        .arg(&texts));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let predicted: Vec<usize> = r
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            labels
                .iter()
                .position(|n| n == v["label"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(predicted.len(), rows.len());
    let pairs: Vec<(usize, usize)> = rows.iter().map(|r| r.label).zip(predicted).collect();
    let mine = ClassificationReport::from_pairs(&pairs, 2);
    assert_eq!(eval["rows"].as_u64().unwrap() as usize, mine.rows);
    assert!((eval["accuracy"].as_f64().unwrap() - mine.accuracy).abs() < 1e-12);
    assert!((eval["macro_f1"].as_f64().unwrap() - mine.macro_f1).abs() < 1e-12);
    for (name, m) in labels.iter().zip(&mine.per_class) {
        let theirs = &eval["per_class"][name];
        assert!((theirs["precision"].as_f64().unwrap() - m.precision).abs() < 1e-12);
        assert!((theirs["recall"].as_f64().unwrap() - m.recall).abs() < 1e-12);
        assert!((theirs["f1"].as_f64().unwrap() - m.f1).abs() < 1e-12);
        assert_eq!(theirs["support"].as_u64().unwrap() as usize, m.support);
    }
    assert!(
        mine.accuracy > 0.9,
        "the sample is classified sensibly: {}",
        mine.accuracy
    );
}

fn eval_file(contents: &str) -> crate::cli::Run {
    let tmp = tempfile::tempdir().unwrap();
    let tsv = tmp.path().join("data.tsv");
    std::fs::write(&tsv, contents).unwrap();
    run(kinglet()
        .arg("eval")
        .arg("--model")
        .arg(shipped_sentiment())
        .arg("--tsv")
        .arg(&tsv))
}

#[test]
fn eval_refuses_label_not_in_model_with_line_number() {
    eval_file("sentence\tlabel\ngreat\t1\nfine\tneutral\n")
        .assert_clean_error(4, &["line 3", "neutral"]);
}

#[test]
fn eval_refuses_malformed_row_with_line_number() {
    eval_file("great\t1\nno label here\n").assert_clean_error(4, &["line 2", "tab"]);
}

#[test]
fn eval_refuses_empty_file() {
    eval_file("").assert_clean_error(4, &["no labeled rows"]);
}

#[test]
fn export_refuses_quantized_model_that_loses_accuracy() {
    // Label the sample with the float model's own answers: float accuracy is 100 % by
    // construction, and int8 of this tiny random model (small margins) flips some of them.
    let tmp = tempfile::tempdir().unwrap();
    let float_path = tmp.path().join("float.kinglet");
    export_hf_classifier(
        &hf_fixture("bert-f32"),
        &float_path,
        &ExportOptions::default(),
    )
    .unwrap();
    let mut float = Classifier::from_bundle(&Bundle::read(&float_path).unwrap()).unwrap();
    let labels = float.meta().labels.clone();
    let rows = read_labeled_tsv(&sample_tsv(), &["negative".into(), "positive".into()]).unwrap();
    let mut tsv = String::new();
    for row in &rows {
        let label = float.classify(&row.text, None).unwrap().label_index;
        tsv.push_str(&format!("{}\t{}\n", row.text, labels[label]));
    }
    let data = tmp.path().join("float-labels.tsv");
    std::fs::write(&data, tsv).unwrap();
    let out = tmp.path().join("int8.kinglet");
    let r = run(kinglet_export()
        .arg("bert")
        .arg(hf_fixture("bert-f32"))
        .arg("-o")
        .arg(&out)
        .args(["--precision", "int8", "--max-drop", "0"])
        .arg("--check")
        .arg(&data));
    r.assert_clean_error(5, &["accuracy", "--max-drop", "nothing written"]);
    assert!(!out.exists());
    // With a tolerant guard the same export goes through and records its check.
    let r = run(kinglet_export()
        .arg("bert")
        .arg(hf_fixture("bert-f32"))
        .arg("-o")
        .arg(&out)
        .args(["--precision", "int8", "--max-drop", "100"])
        .arg("--check")
        .arg(&data));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let q = Bundle::read(&out).unwrap().manifest.quantization.unwrap();
    assert_eq!(q.rows, rows.len());
    assert_eq!(q.float_accuracy, Some(1.0));
    assert!(q.quantized_accuracy.unwrap() < 1.0);
    assert!(r.stdout.contains("label agreement"), "{}", r.stdout);
}
