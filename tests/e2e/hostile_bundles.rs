//! Bundles whose checksum is valid but whose contents are hostile: each one is re-sealed after
//! the edit (so the CRC passes) and must be refused with one line and exit code 3 before
//! anything is allocated from what it declares.

use crate::cli::{kinglet, run, Run};
use crate::shared::{repo_root, shipped_sentiment};
use kinglet_runtime::manifest::ModelKind;
use kinglet_runtime::Bundle;
use std::path::{Path, PathBuf};

fn dlinear() -> PathBuf {
    repo_root().join("models/etth1-dlinear.kinglet")
}

/// Reads `src`, edits it, writes it re-sealed (fresh CRC) into `dir`.
fn resealed(src: &Path, dir: &Path, edit: impl FnOnce(&mut Bundle)) -> PathBuf {
    let mut b = Bundle::read(src).unwrap();
    edit(&mut b);
    let out = dir.join("hostile.kinglet");
    b.write(&out).unwrap();
    out
}

/// The graph tar with `edit(name, bytes)` applied to every entry.
fn edit_tar(graph: &[u8], mut edit: impl FnMut(&str, &mut Vec<u8>)) -> Vec<u8> {
    let mut archive = tar::Archive::new(graph);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        edit(&name, &mut data);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, &name, &data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

fn verify(path: &Path) -> Run {
    run(kinglet().arg("verify").arg("--model").arg(path))
}

fn graph_edit(src: &Path, edit: impl FnMut(&str, &mut Vec<u8>)) -> (Run, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = resealed(src, tmp.path(), |b| b.graph = edit_tar(&b.graph, edit));
    (verify(&path), tmp)
}

fn edit_text(name: &str, data: &mut Vec<u8>, f: impl FnOnce(String) -> String) {
    if name == "graph.nnef" {
        *data = f(String::from_utf8(std::mem::take(data)).unwrap()).into_bytes();
    }
}

#[test]
fn an_untouched_re_sealed_bundle_still_loads() {
    let (r, _t) = graph_edit(&dlinear(), |_, _| {});
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_tensor_header_declaring_4_gib_is_refused_before_allocation() {
    let mut first = true;
    let (r, _t) = graph_edit(&dlinear(), |name, data| {
        if name.ends_with(".dat") && std::mem::take(&mut first) {
            data[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        }
    });
    r.assert_clean_error(3, &["graph: tensor", "declares 4294967295 bytes"]);
}

#[test]
fn deeply_nested_graph_text_is_refused_before_parsing() {
    let (r, _t) = graph_edit(&dlinear(), |name, data| {
        edit_text(name, data, |text| {
            let nested = format!("{}x{}", "(".repeat(1000), ")".repeat(1000));
            text.replacen(";\n", &format!(";\n# next\nzz = {nested};\n"), 1)
        })
    });
    r.assert_clean_error(3, &["graph.nnef", "nested more than"]);
}

#[test]
fn negative_and_huge_variable_shapes_are_refused() {
    for dims in ["-5, ", "9223372036854775807, 9223372036854775807, "] {
        let (r, _t) = graph_edit(&dlinear(), |name, data| {
            edit_text(name, data, |text| {
                assert!(text.contains("variable"), "{text}");
                let at = text.find("variable").unwrap();
                let shape = at + text[at..].find("shape = [").unwrap() + "shape = [".len();
                format!("{}{dims}{}", &text[..shape], &text[shape..])
            })
        });
        r.assert_clean_error(3, &["graph.nnef", "shape"]);
    }
}

#[test]
fn an_overlong_graph_line_is_refused() {
    let (r, _t) = graph_edit(&dlinear(), |name, data| {
        edit_text(name, data, |text| {
            format!("{text}\n# {}\n", "x".repeat(70_000))
        })
    });
    r.assert_clean_error(3, &["graph.nnef", "bytes; at most"]);
}

#[test]
fn a_gzip_compressed_graph_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = resealed(&dlinear(), tmp.path(), |b| {
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        gz.extend_from_slice(&b.graph[..4096]);
        b.graph = gz;
    });
    verify(&path).assert_clean_error(3, &["gzip"]);
}

#[test]
fn forecaster_manifests_that_disagree_with_themselves_are_refused() {
    type Edit = fn(&mut kinglet_runtime::manifest::ForecasterMeta);
    let cases: [(Edit, &str); 5] = [
        (|f| f.mean.truncate(6), "mean has 6 values for 7 columns"),
        (|f| f.columns.clear(), "columns is empty"),
        (|f| f.lookback = u32::MAX as usize, "lookback is"),
        (|f| f.step_seconds = Some(i64::MAX), "step_seconds"),
        (|f| f.std[2] = 0.0, "std of column"),
    ];
    for (edit, needle) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let path = resealed(&dlinear(), tmp.path(), |b| {
            let ModelKind::Forecaster(f) = &mut b.manifest.model else {
                unreachable!()
            };
            edit(f);
        });
        verify(&path).assert_clean_error(3, &["manifest:", needle]);
    }
}

#[test]
fn an_escape_sequence_in_a_label_reaches_the_terminal_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let path = resealed(&shipped_sentiment(), tmp.path(), |b| {
        let ModelKind::Classifier(c) = &mut b.manifest.model else {
            unreachable!()
        };
        c.labels[1] = "\u{1b}[2Jpositive".into();
    });
    let r = run(kinglet()
        .args(["classify", "a fine film", "--model"])
        .arg(&path));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(
        r.stdout.starts_with("\\u{1b}[2Jpositive "),
        "{:?}",
        r.stdout
    );
    let r = run(kinglet().args(["inspect", "--model"]).arg(&path));
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    // JSON keeps the label as it is, escaped the JSON way
    let r = run(kinglet()
        .args(["classify", "--json", "a fine film", "--model"])
        .arg(&path));
    assert!(r.stdout.contains("\\u001b[2Jpositive"), "{}", r.stdout);
}

#[test]
fn a_tokenizer_with_ids_past_the_embedding_table_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let path = resealed(&shipped_sentiment(), tmp.path(), |b| {
        let mut json: serde_json::Value =
            serde_json::from_slice(b.tokenizer.as_ref().unwrap()).unwrap();
        json["added_tokens"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "id": 40000, "content": "[FAR]", "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            }));
        b.tokenizer = Some(serde_json::to_vec(&json).unwrap());
    });
    verify(&path).assert_clean_error(3, &["the tokenizer has token id", "past the 30522 rows"]);
}

#[test]
fn token_ids_outside_the_vocabulary_are_bad_input_not_a_crash() {
    let bundle = Bundle::read(shipped_sentiment()).unwrap();
    let mut c = kinglet_runtime::Classifier::from_bundle(&bundle).unwrap();
    assert!(
        c.logits(&[101, 30521, 102]).is_ok(),
        "the last row is in the table"
    );
    for bad in [30522, 1 << 40, -1] {
        let e = c.logits(&[101, bad, 102]).unwrap_err();
        assert!(
            matches!(e, kinglet_runtime::Error::BadInput(_)),
            "{bad}: {e}"
        );
        assert!(e.to_string().contains("30522 tokens"), "{e}");
    }
    assert!(c.logits(&[]).is_err());
}
