//! The `kinglet` binary's documented contract: usage errors exit 2, help lists the
//! subcommands and exit codes. (Its presence also makes `cargo test` build the binary that the
//! workspace's end-to-end tests drive.)

use std::process::Command;

fn kinglet() -> Command {
    let bin = env!("CARGO_BIN_EXE_kinglet");
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
fn help_lists_subcommands_and_exit_codes() {
    let out = kinglet().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "classify",
        "forecast",
        "eval",
        "verify",
        "inspect",
        "Exit codes",
    ] {
        assert!(text.contains(word), "help should mention {word}: {text}");
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = kinglet().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
