//! Records the git commit for `kinglet --version` (`$KINGLET_COMMIT` wins, e.g. for a build from
//! a source tarball; `unknown` outside a checkout).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=KINGLET_COMMIT");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // appended to on every commit, checkout and reset
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    let commit = std::env::var("KINGLET_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=KINGLET_COMMIT={commit}");
}
