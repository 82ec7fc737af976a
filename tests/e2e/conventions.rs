//! Command-line conventions both binaries keep: `--json` everywhere with JSON errors, `-q`/`-v`,
//! completions and man pages, `--version` details, the exporter's exit codes by cause, progress
//! only on a terminal, and `serve`'s closing statistics on `SIGTERM`.

use crate::cli::{kinglet, kinglet_export, run};
use crate::shared::{hf_fixture, repo_root, shipped_sentiment};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The one JSON error object a `--json` command prints on standard error.
fn json_error(stderr: &str) -> serde_json::Value {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON error line expected: {stderr}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", lines[0]))
}

#[test]
fn every_command_with_json_reports_its_error_as_one_json_object() {
    let cases: &[&[&str]] = &[
        &["classify", "--json", "--model", "nowhere", "x"],
        &["verify", "--json", "--model", "nowhere"],
        &["inspect", "--json", "--model", "nowhere"],
        &["bench", "--json", "--model", "nowhere"],
        &["eval", "--json", "--model", "nowhere", "--tsv", "x.tsv"],
        &["forecast", "--json", "--model", "nowhere", "--csv", "x.csv"],
        &[
            "install",
            "--json",
            "nowhere.kinglet",
            "--into",
            "/nonexistent/dir",
        ],
    ];
    for args in cases {
        let r = run(kinglet().args(*args));
        assert_ne!(r.code, 0, "{args:?}");
        let e = json_error(&r.stderr);
        assert_eq!(e["exit_code"], r.code, "{args:?}: {e}");
        assert!(e["error"].as_str().unwrap().contains("nowhere"), "{e}");
    }
    let r = run(kinglet_export().args(["--json", "bert", "/nonexistent/ckpt", "-o", "x.kinglet"]));
    assert_eq!(r.code, 3);
    let e = json_error(&r.stderr);
    assert_eq!(e["exit_code"], 3);
    assert!(
        e["error"].as_str().unwrap().contains("/nonexistent/ckpt"),
        "{e}"
    );
}

#[test]
fn verify_install_and_rollback_answer_in_json() {
    let r = run(kinglet()
        .args(["verify", "--json", "--model"])
        .arg(shipped_sentiment()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = &r.json_lines()[0];
    assert_eq!(v["passed"], true);
    assert!(v["cases"].as_u64().unwrap() >= 1);
    assert!(v["max_abs_deviation"].as_f64().unwrap() <= v["tolerance"].as_f64().unwrap());
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);

    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("device");
    for model in ["models/etth1-lstm.kinglet", "models/etth1-dlinear.kinglet"] {
        let r = run(kinglet()
            .args(["install", "--json"])
            .arg(repo_root().join(model))
            .arg("--into")
            .arg(&into));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v = &r.json_lines()[0];
        assert_eq!(v["already_current"], false);
        assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    }
    let r = run(kinglet().args(["rollback", "--json", "--into"]).arg(&into));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = &r.json_lines()[0];
    assert!(v["current"].as_str().unwrap().contains("etth1-lstm"), "{v}");
}

#[test]
fn exporter_answers_in_json_and_its_exit_codes_tell_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.kinglet");
    let r = run(kinglet_export()
        .args(["--json", "bert"])
        .arg(hf_fixture("bert-f32"))
        .args(["--precision", "f32", "-o"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.trim().is_empty(),
        "--json prints no stages: {}",
        r.stderr
    );
    let v = &r.json_lines()[0];
    assert_eq!(v["precision"], "f32");
    assert_eq!(v["bundle_bytes"], std::fs::metadata(&out).unwrap().len());
    assert!(v["parameter_count"].as_u64().unwrap() > 0);

    // bad checkpoint: 3; unsupported architecture: 4
    let bad = dir.path().join("bad");
    crate::shared::copy_dir(&hf_fixture("bert-f32"), &bad);
    std::fs::write(bad.join("config.json"), "{ not json").unwrap();
    let r = run(kinglet_export().arg("bert").arg(&bad).arg("-o").arg(&out));
    r.assert_clean_error(3, &["config.json"]);
    let config = std::fs::read_to_string(hf_fixture("bert-f32").join("config.json")).unwrap();
    let gpt2 = config.replace(
        "BertForSequenceClassification",
        "GPT2ForSequenceClassification",
    );
    std::fs::write(bad.join("config.json"), gpt2).unwrap();
    let r = run(kinglet_export().arg("bert").arg(&bad).arg("-o").arg(&out));
    r.assert_clean_error(4, &["GPT2ForSequenceClassification"]);
    // I/O: the output's directory is a file
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let r = run(kinglet_export()
        .arg("bert")
        .arg(hf_fixture("bert-f32"))
        .args(["--precision", "f32", "-o"])
        .arg(file.join("x.kinglet")));
    r.assert_clean_error(7, &["a-file"]);
}

#[test]
fn version_names_the_commit_tract_and_the_kernels_in_use() {
    for cmd in [kinglet(), kinglet_export()] {
        let mut cmd = cmd;
        let r = run(cmd.arg("--version"));
        assert_eq!(r.code, 0);
        let first = r.stdout.lines().next().unwrap();
        assert!(first.contains("(commit "), "{first}");
        assert!(
            first.contains(&format!("tract {}", kinglet_runtime::TRACT_VERSION)),
            "{first}"
        );
    }
    let r = run(kinglet().arg("--version"));
    assert!(r.stdout.contains("kernels linear_i8="), "{}", r.stdout);
}

#[test]
fn the_tract_version_reported_is_the_one_locked() {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).unwrap();
    let entry = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"tract-core\""))
        .unwrap();
    assert!(
        entry.contains(&format!("version = \"{}\"", kinglet_runtime::TRACT_VERSION)),
        "TRACT_VERSION {} differs from Cargo.lock: {entry}",
        kinglet_runtime::TRACT_VERSION
    );
}

#[test]
fn completions_and_man_pages_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run(kinglet().args(["completions", shell]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        for sub in ["classify", "forecast", "verify", "serve", "install"] {
            assert!(r.stdout.contains(sub), "{shell} completion lacks {sub}");
        }
        let r = run(kinglet_export().args(["completions", shell]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("keygen"), "{shell}");
    }
    let r = run(kinglet().args(["completions", "tcsh"]));
    assert_eq!(r.code, 2);
    let dir = tempfile::tempdir().unwrap();
    let r = run(kinglet().arg("man-pages").arg(dir.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = std::fs::read_to_string(dir.path().join("kinglet-classify.1")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "{page:.200}"
    );
    assert!(
        page.contains("max\\-tokens"),
        "classify's options are on its page"
    );
    assert!(dir.path().join("kinglet.1").is_file());
    assert!(
        !dir.path().join("kinglet-man-pages.1").exists(),
        "hidden commands get no page"
    );
}

#[test]
fn quiet_silences_notes_and_verbose_says_what_was_loaded() {
    let r = run(kinglet()
        .args(["-v", "classify", "--model"])
        .arg(shipped_sentiment())
        .arg("fine"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("loaded ") && r.stderr.contains("sha256"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(" ms; memory budget "), "{}", r.stderr);
    // -q: results and errors only
    let r = run(kinglet()
        .args(["-q", "serve", "--stdio", "--model"])
        .arg(shipped_sentiment())
        .stdin(Stdio::null()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("serving"), "{}", r.stderr);
    let r = run(kinglet().args(["-q", "classify", "--model", "nowhere", "x"]));
    r.assert_clean_error(3, &["nowhere"]);
    let r = run(kinglet().args(["-q", "-v", "verify"]));
    assert_eq!(r.code, 2, "-q and -v conflict");
}

#[test]
fn progress_never_reaches_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, "good\nbad\n".repeat(20)).unwrap();
    let r = run(kinglet()
        .args(["classify", "--input"])
        .arg(&input)
        .arg("--model")
        .arg(shipped_sentiment()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 40);
    assert!(r.stderr.is_empty(), "no progress on a pipe: {:?}", r.stderr);
    let r = run(kinglet()
        .args(["bench", "--iterations", "3", "--tokens", "8", "--model"])
        .arg(shipped_sentiment()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("bench ["), "{:?}", r.stderr);
}

#[test]
fn serve_prints_its_statistics_when_stopped_by_sigterm() {
    let mut child = kinglet()
        .args(["serve", "--stdio", "--json", "--model"])
        .arg(shipped_sentiment())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let mut stderr = child.stderr.take().unwrap();
    // wait until it serves (its first note), then stop it as systemctl stop would
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains('\n') {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "serve never started"
        );
        if stderr.read(&mut byte).unwrap() == 0 {
            break;
        }
        seen.push(byte[0]);
    }
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    let stats = json_error_free(&rest);
    assert_eq!(stats["stopped"], "stopped by signal", "{rest}");
    assert_eq!(stats["answered"], 0);
}

/// The one JSON object (the closing statistics) in `stderr`.
fn json_error_free(stderr: &str) -> serde_json::Value {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON statistics: {stderr}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn the_readme_builds_both_binaries_with_one_cargo_invocation() {
    // `cargo run -p A` then `cargo run -p B` unify features differently and compile tract twice
    for doc in ["README.md", "models/README.md", "docs/raspberry-pi.md"] {
        let text = std::fs::read_to_string(repo_root().join(doc)).unwrap();
        for line in text.lines() {
            assert!(
                !(line.contains("cargo run") && line.contains(" -p ")),
                "{doc}: `{line}` builds one package alone; use target/release/… after `cargo build --release`"
            );
        }
    }
}
