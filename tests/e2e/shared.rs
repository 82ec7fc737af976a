//! The one gate for tests that need ../shared, and other paths the tests use.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ../shared (or `$KINGLET_SHARED`) when present. When absent: `None` after printing a skip
/// notice for `test`, or a panic when `KINGLET_REQUIRE_SHARED=1`.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("KINGLET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var("KINGLET_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!(
            "{test}: KINGLET_REQUIRE_SHARED=1 but {} is missing",
            dir.display()
        );
    }
    eprintln!(
        "note: skipping {test}: {} not found (set KINGLET_SHARED to point at it)",
        dir.display()
    );
    None
}

/// Returns early from a test when ../shared is absent (see [`shared_dir`]).
#[macro_export]
macro_rules! require_shared {
    ($name:expr) => {
        match $crate::shared::shared_dir($name) {
            Some(dir) => dir,
            None => return,
        }
    };
}

/// The committed fixture checkpoints.
pub fn hf_fixture(name: &str) -> PathBuf {
    repo_root()
        .join("tests")
        .join("fixtures")
        .join("hf")
        .join(name)
}

/// The shipped default model.
pub fn shipped_sentiment() -> PathBuf {
    repo_root().join("models").join("sentiment.kinglet")
}

/// Copies a directory, subdirectories too, into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// How many rows a data-heavy test uses: all of them natively, `emulated` under qemu (ARM
/// CI), unless `KINGLET_PARITY_ROWS` says otherwise.
pub fn rows_for(emulated: usize) -> usize {
    if let Ok(n) = std::env::var("KINGLET_PARITY_ROWS") {
        return n.parse().expect("KINGLET_PARITY_ROWS is a number");
    }
    if cfg!(target_arch = "x86_64") {
        usize::MAX
    } else {
        emulated
    }
}

/// A JSON array of numbers as f32.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON array of integers.
pub fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}
