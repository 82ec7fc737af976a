//! Token classification (NER) against Transformers' token-classification pipeline
//! (`aggregation_strategy="simple"`), on `tests/fixtures/hf/bert-ner-f32` (made by
//! `tests/fixtures/make_hf_fixtures.py`).

use crate::cli::{kinglet, run};
use crate::shared::hf_fixture;
use kinglet_exporter::export::{export_hf_classifier, ExportOptions, ExportReport};
use kinglet_exporter::quantize::Precision;
use kinglet_runtime::{Bundle, Tagger};
use std::path::{Path, PathBuf};

fn reference() -> serde_json::Value {
    reference_of("bert-ner-f32")
}

fn reference_of(fixture: &str) -> serde_json::Value {
    let path = hf_fixture(fixture).join("reference.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Exports the BERT NER fixture with all 64 positions (the pipeline does not truncate).
pub(crate) fn export(tmp: &Path, precision: Precision) -> (PathBuf, ExportReport) {
    export_fixture("bert-ner-f32", tmp, precision)
}

fn export_fixture(fixture: &str, tmp: &Path, precision: Precision) -> (PathBuf, ExportReport) {
    let out = tmp.join(format!("{fixture}-{precision}.kinglet"));
    let options = ExportOptions {
        precision,
        max_tokens: 64,
        ..Default::default()
    };
    let report = export_hf_classifier(&hf_fixture(fixture), &out, &options).unwrap();
    (out, report)
}

/// `(group, start, end)` of every entity of every reference row, and of the bundle's answers,
/// with the number found in both (the F1's numerator).
fn agreement(bundle: &Path) -> (usize, usize, usize) {
    let reference = reference();
    let mut model = Tagger::from_bundle(&Bundle::read(bundle).unwrap()).unwrap();
    let (mut both, mut wanted, mut found) = (0, 0, 0);
    for row in reference["rows"].as_array().unwrap() {
        let want: Vec<(String, u64, u64)> = row["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let group = e["entity_group"].as_str().unwrap().to_string();
                (
                    group,
                    e["start"].as_u64().unwrap(),
                    e["end"].as_u64().unwrap(),
                )
            })
            .collect();
        let got = model.tag(row["text"].as_str().unwrap(), None).unwrap();
        let got: Vec<(String, u64, u64)> = got
            .entities
            .iter()
            .map(|e| (e.entity_group.clone(), e.start as u64, e.end as u64))
            .collect();
        both += got.iter().filter(|e| want.contains(e)).count();
        wanted += want.len();
        found += got.len();
    }
    (both, wanted, found)
}

#[test]
fn entity_groups_equal_the_transformers_pipeline_on_80_sentences() {
    groups_equal_the_pipeline("bert-ner-f32");
}

#[test]
fn distilbert_entity_groups_equal_the_transformers_pipeline_on_80_sentences() {
    groups_equal_the_pipeline("distilbert-ner-f32");
}

fn groups_equal_the_pipeline(fixture: &str) {
    let reference = reference_of(fixture);
    let rows = reference["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 80);
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = export_fixture(fixture, tmp.path(), Precision::F32);
    let mut model = Tagger::from_bundle(&Bundle::read(&out).unwrap()).unwrap();
    let (mut entities, mut worst) = (0, 0f32);
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let got = model.tag(text, None).unwrap().entities;
        let want = row["entities"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{text:?}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(
                g.entity_group,
                w["entity_group"].as_str().unwrap(),
                "{text:?}"
            );
            assert_eq!(g.word, w["word"].as_str().unwrap(), "{text:?}");
            assert_eq!(g.start as u64, w["start"].as_u64().unwrap(), "{text:?}");
            assert_eq!(g.end as u64, w["end"].as_u64().unwrap(), "{text:?}");
            let d = (g.score - w["score"].as_f64().unwrap() as f32).abs();
            assert!(d <= 1e-5, "{text:?}: score {} vs {}", g.score, w["score"]);
            worst = worst.max(d);
        }
        entities += got.len();
    }
    assert!(
        entities > 100,
        "{entities} entities: the fixture should find many"
    );
    eprintln!("{fixture}: 80 sentences, {entities} entity groups equal to the pipeline's (word, label, start, end), max |Δscore| {worst:.2e}");
}

#[test]
fn int8_entities_agree_with_the_float_model_and_the_agreement_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, report) = export(tmp.path(), Precision::Int8);
    let stored = report.quantization.unwrap().entity_f1.unwrap();
    let (both, wanted, found) = agreement(&out);
    let f1 = 2.0 * both as f64 / (wanted + found) as f64;
    assert!(f1 > 0.9 && stored > 0.9, "F1 {f1}, stored {stored}");
    eprintln!(
        "ner int8: entity F1 against the pipeline on 80 sentences {f1:.4} ({both} of {wanted} \
         found, {found} given); stored self-test F1 against f32 {stored:.4}"
    );
}

#[test]
fn tag_prints_entities_and_refuses_bundles_that_tag_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = export(tmp.path(), Precision::F32);
    let reference = reference();
    let row = &reference["rows"][0];
    let r = run(kinglet()
        .args(["tag", "--json", "--model"])
        .arg(&out)
        .arg(row["text"].as_str().unwrap()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let answer = &r.json_lines()[0];
    assert_eq!(
        answer["entities"].as_array().unwrap().len(),
        row["entities"].as_array().unwrap().len()
    );
    let plain = run(kinglet()
        .args(["tag", "--model"])
        .arg(&out)
        .arg(row["text"].as_str().unwrap()));
    assert!(
        plain.stdout.starts_with("PER 0..1 \"W\""),
        "{}",
        plain.stdout
    );
    let r = run(kinglet().args(["classify", "--model"]).arg(&out).arg("x"));
    r.assert_clean_error(3, &["tags tokens", "kinglet tag"]);
    let r = run(kinglet()
        .args(["tag", "--model"])
        .arg(crate::shared::shipped_sentiment())
        .arg("x"));
    r.assert_clean_error(3, &["not a token classifier"]);
}
