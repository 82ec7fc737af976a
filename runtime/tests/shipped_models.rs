//! The bundles in `models/` on the CPU these tests run on: the cross-architecture checks every
//! emulated CI suite runs (aarch64 on three modelled cores, armv7), with nothing but the runtime
//! built.

use kinglet_runtime::{verify, Bundle, Classifier};
use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shipped(name: &str) -> PathBuf {
    repo_root().join("models").join(name)
}

#[test]
fn shipped_bundles_pass_their_self_tests_on_this_cpu() {
    for name in [
        "sentiment.kinglet",
        "minilm-embed.kinglet",
        "etth1-dlinear.kinglet",
        "etth1-lstm.kinglet",
    ] {
        let bundle = Bundle::read(shipped(name)).unwrap();
        let report = verify::verify(&bundle).unwrap();
        eprintln!(
            "{name}: {} cases, max |Δ| {:.2e} (tolerance {:.2e})",
            report.cases, report.max_abs_deviation, report.tolerance
        );
        assert!(report.cases > 0, "{name}");
        assert!(report.passed(), "{name}: {report:?}");
    }
}

#[test]
fn int8_labels_on_this_cpu_match_the_x86_reference() {
    let path = repo_root().join("tests/fixtures/sentiment_int8_x86.json");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let bundle_bytes = std::fs::read(shipped("sentiment.kinglet")).unwrap();
    let crc = format!(
        "{:08x}",
        u32::from_le_bytes(bundle_bytes[bundle_bytes.len() - 4..].try_into().unwrap())
    );
    assert_eq!(
        reference["bundle_crc"],
        crc.as_str(),
        "fixture was made from another bundle; regenerate it"
    );
    let mut c =
        Classifier::from_bundle(&Bundle::read(shipped("sentiment.kinglet")).unwrap()).unwrap();
    let rows = reference["rows"].as_array().unwrap();
    assert!(rows.len() >= 200);
    let (mut same, mut max_dev) = (0, 0f32);
    for row in rows {
        let got = c.classify(row["text"].as_str().unwrap(), None).unwrap();
        same += (got.label_index as u64 == row["label_index"].as_u64().unwrap()) as usize;
        let want: Vec<f32> = row["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        max_dev = max_dev.max(verify::max_deviation(&got.logits, &want));
    }
    eprintln!(
        "int8 vs x86 reference: {same}/{} labels equal, max |Δlogit| {max_dev:.2e}",
        rows.len()
    );
    assert_eq!(same, rows.len());
    // labels must match exactly; logits within the bundle's own self-test tolerance
    assert!(max_dev <= 0.25, "max |Δlogit| {max_dev}");
}
