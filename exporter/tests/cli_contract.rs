//! The `kinglet-export` binary's documented contract: usage errors exit 2, and a missing
//! checkpoint is a one-line error with exit 1. (Its presence also makes `cargo test` build the
//! binary that the workspace's end-to-end tests drive.)

use std::process::Command;

fn kinglet_export() -> Command {
    let bin = env!("CARGO_BIN_EXE_kinglet-export");
    match std::env::var("KINGLET_TEST_RUNNER") {
        Ok(r) if !r.trim().is_empty() => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().unwrap());
            c.args(parts).arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

#[test]
fn missing_output_argument_is_a_usage_error() {
    let out = kinglet_export()
        .args(["bert", "somewhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_checkpoint_directory_is_a_one_line_error() {
    let out = kinglet_export()
        .args(["bert", "/nonexistent/ckpt", "-o", "/nonexistent/x.kinglet"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "a missing checkpoint is exit 3 (bad checkpoint)"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/ckpt"), "{err}");
}
