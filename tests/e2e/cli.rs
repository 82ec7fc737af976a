//! Running the real `kinglet` and `kinglet-export` binaries.
//!
//! On a cross target the binaries are ARM executables: set `KINGLET_TEST_RUNNER` to the
//! emulator command (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`) and they run through it.
//! `KINGLET_BIN_DIR` takes the binaries from another directory: `.ci/run` runs this suite
//! (built for x86-64) against the static ARM release binaries it ships, under qemu.

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/e2e-xxxx → target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = match std::env::var_os("KINGLET_BIN_DIR") {
        // relative to where the suite runs (the repository root), absolute for tests that
        // start the binaries from another directory
        Some(dir) => std::env::current_dir().unwrap().join(dir),
        None => exe.parent().unwrap().parent().unwrap().to_owned(),
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} not built; run the tests with cargo test --workspace",
        path.display()
    );
    path
}

/// The emulator command of `KINGLET_TEST_RUNNER`, split into words (empty when unset).
pub fn runner() -> Vec<String> {
    std::env::var("KINGLET_TEST_RUNNER")
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn command(name: &str) -> Command {
    match std::env::var("KINGLET_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut cmd = Command::new(parts.next().unwrap());
            cmd.args(parts).arg(bin(name));
            cmd
        }
        _ => Command::new(bin(name)),
    }
}

/// `kinglet …`
pub fn kinglet() -> Command {
    command("kinglet")
}

/// `kinglet-export …`
pub fn kinglet_export() -> Command {
    command("kinglet-export")
}

/// Output of a finished command, with helpers for the assertions every error test makes.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs a command to completion.
pub fn run(cmd: &mut Command) -> Run {
    cmd.output().expect("spawn").into()
}

impl Run {
    /// Standard output read as one JSON value per line (what `--json` prints).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Asserts a clean failure: the given exit code, one line on stderr mentioning every
    /// `needle`, no panic.
    pub fn assert_clean_error(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "exit code; stderr: {}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one-line error expected: {}",
            self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr should mention `{n}`: {}",
                self.stderr
            );
        }
    }
}
