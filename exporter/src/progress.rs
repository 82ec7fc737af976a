//! What an export is doing, for a progress display: the library names each stage as it
//! begins and counts steps within long ones; the CLI draws them (on a terminal only). A
//! library caller that installs nothing hears nothing.

use std::sync::OnceLock;

/// Hears an export's progress.
pub trait Progress: Send + Sync {
    /// A stage begins (`reading checkpoint`, `comparing with f32 on dev.tsv` …).
    fn stage(&self, what: &str);
    /// Within the current stage, `done` of `total` steps are done.
    fn step(&self, done: u64, total: u64);
}

static OBSERVER: OnceLock<Box<dyn Progress>> = OnceLock::new();

/// Installs the process's progress observer (the first call wins).
pub fn observe(observer: Box<dyn Progress>) {
    let _ = OBSERVER.set(observer);
}

pub(crate) fn stage(what: &str) {
    if let Some(o) = OBSERVER.get() {
        o.stage(what);
    }
}

pub(crate) fn step(done: u64, total: u64) {
    if let Some(o) = OBSERVER.get() {
        o.step(done, total);
    }
}
