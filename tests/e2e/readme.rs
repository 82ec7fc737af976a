//! The README's commands, run as written: every line of every `sh` block, from a scratch
//! directory that links the repository's `models/`, `examples/` and `tests/`, with `kinglet` and
//! `kinglet-export` first on `PATH` (the binaries under test, through `KINGLET_TEST_RUNNER` when
//! set; `.ci/run` points `KINGLET_BIN_DIR` at the static release binaries).
//!
//! A command whose comment says `# exit N` must fail with exit code N and one error line;
//! `# runs until stopped` must print a first answer and is then stopped. Lines that build or
//! benchmark (`cargo …`, `benches/…`) are listed as not run: `.ci/run` runs `cargo test
//! --workspace` itself, and the builds' cold times are measured by hand (see the README).
//! Commands that need a serial device, a server left running or Docker sit in `text` blocks
//! and are run by `serial.rs` (over a pseudo-terminal pair), `http.rs` (`serve --http` with
//! curl) or not at all (`cross`).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a README command must do.
#[derive(Debug, PartialEq)]
enum Expect {
    Exit(i32),
    UntilStopped,
}

#[derive(Debug)]
struct ReadmeCommand {
    /// 1-based line of the README where it starts.
    line: usize,
    /// The shell text, continuation lines joined, comment removed.
    shell: String,
    expect: Expect,
}

/// First words of lines not run here: builds and benchmarks.
const CI_STEPS: &[&str] = &["cargo", "benches/compare-ort.sh", "benches/x86-proxy.sh"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The commands of the `sh` blocks, and the skipped lines.
fn commands(readme: &str) -> (Vec<ReadmeCommand>, Vec<String>) {
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in readme.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && info.trim() == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = raw.trim_end().strip_suffix('\\') {
            text.push_str(body);
            text.push(' ');
            pending = Some((start, text));
            continue;
        }
        text.push_str(raw);
        let (shell, comment) = match text.find("  #").or_else(|| text.find(" # ")) {
            Some(at) => (text[..at].trim().to_string(), text[at..].trim().to_string()),
            None => (text.trim().to_string(), String::new()),
        };
        if shell.is_empty() || shell.starts_with('#') {
            continue;
        }
        let first = shell.split_whitespace().next().unwrap_or_default();
        if CI_STEPS.contains(&first) {
            skipped.push(shell);
            continue;
        }
        let expect = if comment.contains("runs until stopped") {
            Expect::UntilStopped
        } else if let Some(code) = comment
            .split("exit ")
            .nth(1)
            .and_then(|c| c.split(|ch: char| !ch.is_ascii_digit()).next())
            .and_then(|c| c.parse().ok())
        {
            Expect::Exit(code)
        } else {
            Expect::Exit(0)
        };
        out.push(ReadmeCommand {
            line: start,
            shell,
            expect,
        });
    }
    (out, skipped)
}

/// A scratch working directory with the repository's inputs linked in and `bin/` holding
/// `kinglet` and `kinglet-export` shims that start the binaries under test.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["models", "examples", "tests"] {
        std::os::unix::fs::symlink(repo().join(name), dir.path().join(name)).unwrap();
    }
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let runner = super::cli::runner().join(" ");
    for name in ["kinglet", "kinglet-export"] {
        let target = super::cli::bin(name);
        let shim = bin.join(name);
        std::fs::write(
            &shim,
            format!("#!/bin/sh\nexec {runner} '{}' \"$@\"\n", target.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

fn shell(dir: &Path, text: &str) -> Command {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(text)
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env_remove("KINGLET_MODEL")
        .env_remove("KINGLET_MODEL_PATH")
        .env_remove("KINGLET_REQUIRE_SIGNED")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    cmd
}

/// Runs a `# runs until stopped` command until its first line of output, then stops its whole
/// process group; returns what it printed.
fn run_until_first_answer(mut cmd: Command, deadline: Duration) -> String {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut lines = Vec::new();
    while started.elapsed() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                lines.push(line);
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    // SAFETY: kill(2) on the process group this test created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    lines.join("\n")
}

#[test]
fn every_readme_command_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (commands, skipped) = commands(&readme);
    assert!(
        commands.len() >= 30,
        "only {} README commands found: is the parser still reading the sh blocks?",
        commands.len()
    );
    let dir = scratch();
    let emulated = !super::cli::runner().is_empty();
    let mut failures = Vec::new();
    for c in &commands {
        let started = Instant::now();
        let cmd = shell(dir.path(), &c.shell);
        let outcome = match c.expect {
            Expect::UntilStopped => {
                let deadline = Duration::from_secs(if emulated { 300 } else { 60 });
                let printed = run_until_first_answer(cmd, deadline);
                if printed.trim().is_empty() {
                    Err("printed nothing before it was stopped".to_string())
                } else {
                    Ok(())
                }
            }
            Expect::Exit(code) => {
                let mut cmd = cmd;
                let out: super::cli::Run = super::cli::run(&mut cmd);
                if out.code != code {
                    Err(format!(
                        "exit {} (expected {code}); stdout: {} stderr: {}",
                        out.code,
                        out.stdout.chars().take(600).collect::<String>(),
                        out.stderr.chars().take(600).collect::<String>()
                    ))
                } else if code != 0 && out.stderr.trim_end().lines().count() != 1 {
                    Err(format!("expected a one-line error, got: {}", out.stderr))
                } else if out.stderr.contains("panicked") {
                    Err(format!("panicked: {}", out.stderr))
                } else {
                    Ok(())
                }
            }
        };
        println!(
            "README line {:>3}: {:>6.1} s  {}  {}",
            c.line,
            started.elapsed().as_secs_f64(),
            if outcome.is_ok() { "ok  " } else { "FAIL" },
            c.shell
        );
        if let Err(why) = outcome {
            failures.push(format!("README line {}: `{}`: {why}", c.line, c.shell));
        }
    }
    for s in &skipped {
        println!("README, not run here (a build or a benchmark): {s}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn readme_commands_are_parsed_with_their_expectations() {
    let text = "```sh\nkinglet a \\\n  --b  # exit 6\ncargo build\n# note\n```\n```text\nkinglet c\n```\n```sh\ntail -f x | kinglet d  # runs until stopped\n```\n";
    let (commands, skipped) = commands(text);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[0].shell, "kinglet a    --b");
    assert_eq!(commands[0].expect, Expect::Exit(6));
    assert_eq!(commands[0].line, 2);
    assert_eq!(commands[1].expect, Expect::UntilStopped);
    assert_eq!(skipped, vec!["cargo build".to_string()]);
}
