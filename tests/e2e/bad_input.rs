//! Bad input always gets a clear one-line error, a documented exit code, no panic and no
//! partial output file.

use crate::cli::{kinglet, kinglet_export, run, Run};
use crate::shared::{copy_dir, hf_fixture};
use kinglet_exporter::export::{export_hf_classifier, ExportOptions};
use std::path::{Path, PathBuf};

/// Copies the small BERT fixture, lets `spoil` damage it, exports it, and checks the failure.
fn export_spoiled(spoil: impl FnOnce(&Path)) -> (Run, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    copy_dir(&hf_fixture("bert-f32"), &ckpt);
    spoil(&ckpt);
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let r = run(kinglet_export()
        .arg("bert")
        .arg(&ckpt)
        .arg("-o")
        .arg(out_dir.join("m.kinglet")));
    let left: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "a failed export left files behind: {left:?}"
    );
    (r, tmp)
}

#[test]
fn export_refuses_missing_config() {
    let (r, _t) = export_spoiled(|d| std::fs::remove_file(d.join("config.json")).unwrap());
    r.assert_clean_error(3, &["config.json", "missing"]);
}

#[test]
fn export_refuses_config_that_is_not_json() {
    let (r, _t) =
        export_spoiled(|d| std::fs::write(d.join("config.json"), "{ \"hidden_size\": ").unwrap());
    r.assert_clean_error(3, &["config.json", "invalid JSON"]);
}

#[test]
fn export_names_the_missing_config_field() {
    let (r, _t) = export_spoiled(|d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v.as_object_mut().unwrap().remove("num_attention_heads");
        std::fs::write(d.join("config.json"), v.to_string()).unwrap();
    });
    r.assert_clean_error(3, &["config.json", "num_attention_heads"]);
}

#[test]
fn export_refuses_unsupported_architecture() {
    let (r, _t) = export_spoiled(|d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        let text = text.replace(
            "BertForSequenceClassification",
            "GPT2ForSequenceClassification",
        );
        std::fs::write(d.join("config.json"), text).unwrap();
    });
    r.assert_clean_error(4, &["GPT2ForSequenceClassification", "unsupported"]);
}

#[test]
fn export_refuses_truncated_safetensors() {
    let (r, _t) = export_spoiled(|d| {
        let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
        std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    });
    r.assert_clean_error(3, &["model.safetensors"]);
}

#[test]
fn export_refuses_missing_weights() {
    let (r, _t) = export_spoiled(|d| std::fs::remove_file(d.join("model.safetensors")).unwrap());
    r.assert_clean_error(3, &["model.safetensors", "missing"]);
}

#[test]
fn export_refuses_missing_tokenizer() {
    let (r, _t) = export_spoiled(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
    r.assert_clean_error(3, &["tokenizer.json", "vocab.txt"]);
}

#[test]
fn export_refuses_corrupt_tokenizer() {
    let (r, _t) =
        export_spoiled(|d| std::fs::write(d.join("tokenizer.json"), "{\"model\": 3}").unwrap());
    r.assert_clean_error(3, &["tokenizer.json"]);
}

#[test]
fn export_names_tensor_with_wrong_shape() {
    let (r, _t) = export_spoiled(|d| {
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        let text = text.replace("\"intermediate_size\": 80", "\"intermediate_size\": 81");
        std::fs::write(d.join("config.json"), text).unwrap();
    });
    r.assert_clean_error(
        3,
        &["encoder.layer.0.intermediate.dense.weight", "[80, 48]"],
    );
}

/// A small valid bundle in a temp dir.
fn small_bundle() -> (PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("small.kinglet");
    export_hf_classifier(&hf_fixture("bert-f32"), &path, &ExportOptions::default()).unwrap();
    (path, tmp)
}

fn classify_with(model: &Path) -> Run {
    run(kinglet()
        .arg("classify")
        .arg("--model")
        .arg(model)
        .arg("good"))
}

#[test]
fn classify_works_on_the_small_bundle() {
    let (path, _t) = small_bundle();
    let r = classify_with(&path);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn refuses_truncated_bundle() {
    let (path, _t) = small_bundle();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    classify_with(&path).assert_clean_error(3, &["small.kinglet", "truncated"]);
}

#[test]
fn refuses_bundle_with_flipped_bit() {
    let (path, _t) = small_bundle();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    classify_with(&path).assert_clean_error(3, &["small.kinglet", "checksum"]);
    let r = run(kinglet().arg("verify").arg("--model").arg(&path));
    r.assert_clean_error(3, &["checksum"]);
}

#[test]
fn refuses_file_that_is_not_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.kinglet");
    std::fs::write(&path, "{\"hello\": 1}").unwrap();
    classify_with(&path).assert_clean_error(3, &["config.kinglet", "magic"]);
}

#[test]
fn refuses_missing_bundle_file() {
    classify_with(Path::new("/nonexistent/none.kinglet")).assert_clean_error(3, &["none.kinglet"]);
}

fn classify_file(contents: &[u8]) -> Run {
    let (path, tmp) = small_bundle();
    let input = tmp.path().join("input.txt");
    std::fs::write(&input, contents).unwrap();
    run(kinglet()
        .arg("classify")
        .arg("--model")
        .arg(&path)
        .arg("--input")
        .arg(&input))
}

#[test]
fn input_of_blank_lines_only_is_refused() {
    let r = classify_file(b"\n   \n\t\n");
    r.assert_clean_error(4, &["only blank lines"]);
    assert!(r.stdout.is_empty(), "nothing to print");
}

#[test]
fn non_utf8_input_line_is_refused_with_its_line_number() {
    classify_file(b"good\nbad \xff\xfe text\n").assert_clean_error(4, &["line 2", "UTF-8"]);
}

#[test]
fn empty_input_file_is_refused() {
    classify_file(b"").assert_clean_error(4, &["empty"]);
}

#[cfg(unix)]
#[test]
fn non_utf8_argument_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let (path, _t) = small_bundle();
    let arg = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let r = run(kinglet().arg("classify").arg("--model").arg(&path).arg(arg));
    r.assert_clean_error(4, &["argument 1", "UTF-8"]);
}

#[test]
fn empty_argument_is_refused() {
    let (path, _t) = small_bundle();
    run(kinglet()
        .arg("classify")
        .arg("--model")
        .arg(&path)
        .arg("  "))
    .assert_clean_error(4, &["empty"]);
}

#[test]
fn max_tokens_beyond_positions_is_refused() {
    let (path, _t) = small_bundle();
    let r = run(kinglet().arg("classify").arg("--model").arg(&path).args([
        "--max-tokens",
        "65",
        "good",
    ]));
    r.assert_clean_error(4, &["max tokens", "64"]);
}

#[test]
fn standard_input_lines_are_checked_like_a_file() {
    use std::io::Write;
    let feed = |bytes: &[u8]| -> crate::cli::Run {
        let mut child = crate::cli::kinglet()
            .args(["classify", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap().into()
    };
    let r = feed(b"a fine film\r\nnot \xffvalid\n");
    r.assert_clean_error(4, &["standard input line 2", "not valid UTF-8"]);
    assert!(
        r.stdout.is_empty(),
        "checked before any answer: {}",
        r.stdout
    );
    feed(b"").assert_clean_error(4, &["standard input is empty"]);
    let r = feed(b"a fine film\nthe worst movie of the year\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    feed(b"\n  \r\n\t\n").assert_clean_error(4, &["only blank lines"]);
}

#[test]
fn blank_lines_are_skipped_with_a_count_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reviews.txt");
    std::fs::write(
        &file,
        "a fine film\n\n   \r\nthe worst movie of the year\n\n",
    )
    .unwrap();
    for json in [false, true] {
        let mut cmd = crate::cli::kinglet();
        cmd.args(["classify", "--input"]).arg(&file);
        if json {
            cmd.arg("--json");
        }
        let r = crate::cli::run(&mut cmd);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
        assert_eq!(
            r.stderr.trim(),
            "kinglet: skipped 3 blank lines; classified 2"
        );
    }
}
