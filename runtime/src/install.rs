//! Safe model updates on a device: an install directory whose `current` link names the bundle
//! being served, and whose `previous` link keeps the one before it for a rollback.
//!
//! ```text
//! DIR/bundles/sentiment-3f2a9c01b7e4.kinglet   (NAME-SHA256 prefix; immutable once written)
//! DIR/bundles/sentiment-91d0c2aa5e13.kinglet
//! DIR/current  -> bundles/sentiment-91d0c2aa5e13.kinglet
//! DIR/previous -> bundles/sentiment-3f2a9c01b7e4.kinglet
//! ```
//!
//! [`install`] copies the new bundle into `DIR/bundles` under a temporary name, loads *that
//! copy* (checksum, signature and trust, memory budget) and runs its self-test; only a copy
//! that passes is renamed into place, then `previous` and `current` are switched, each with an
//! atomic `rename(2)` of a fresh link over the old one. A reader of `DIR/current` (a `kinglet
//! serve --model DIR` that reloads) sees the old bundle or the new one, never a half-written
//! file. Bundles that neither link names are removed. [`rollback`] checks the previous bundle
//! the same way and swaps the two links. Links are relative, so the directory can be moved or
//! mounted elsewhere.
//!
//! OTA tools (Mender, RAUC, SWUpdate, balena) move the file; these two calls make the swap safe.

use crate::error::{Error, Result};
use crate::memory::LoadOptions;
use crate::model::Model;
use crate::signature::PublicKey;
use crate::verify::VerifyReport;
use std::path::{Path, PathBuf};

/// Name of the link to the bundle being served.
pub const CURRENT: &str = "current";
/// Name of the link to the bundle served before it.
pub const PREVIOUS: &str = "previous";
/// Folder of the installed bundles.
pub const BUNDLES: &str = "bundles";

/// A bundle that was checked before it was switched to.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Where it is installed (`DIR/bundles/…`).
    pub path: PathBuf,
    /// SHA-256 of the file.
    pub sha256_hex: String,
    /// The key that signed it, if signed.
    pub signer: Option<PublicKey>,
    /// Its self-test, rerun on this machine.
    pub self_test: VerifyReport,
}

/// What [`install`] did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The bundle `current` now names.
    pub installed: Checked,
    /// The bundle `previous` now names (the one that was current), if any.
    pub previous: Option<PathBuf>,
    /// True when the new bundle was already current (nothing switched).
    pub already_current: bool,
    /// Older bundles removed from `DIR/bundles`.
    pub removed: Vec<PathBuf>,
}

/// What [`rollback`] did.
#[derive(Debug, Clone)]
pub struct RollbackReport {
    /// The bundle `current` now names (the previous one, checked).
    pub current: Checked,
    /// The bundle `previous` now names (the one that was current).
    pub previous: PathBuf,
}

fn dir_error(dir: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Install {
        dir: dir.to_owned(),
        reason: reason.to_string(),
    }
}

/// The bundle `DIR/current` names, resolved to its path under `DIR`, if the link exists.
pub fn current(dir: &Path) -> Result<Option<PathBuf>> {
    link_target(dir, CURRENT)
}

/// The bundle `DIR/previous` names, if the link exists.
pub fn previous(dir: &Path) -> Result<Option<PathBuf>> {
    link_target(dir, PREVIOUS)
}

fn link_target(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    match std::fs::read_link(dir.join(name)) {
        Ok(target) => Ok(Some(dir.join(target))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(dir_error(
            dir,
            format!("cannot read the link `{name}`: {e}"),
        )),
    }
}

/// Loads `path` under `options` and reruns its self-test; any failure is the load's error, or
/// [`Error::SelfTest`].
pub fn check(path: &Path, options: &LoadOptions) -> Result<Checked> {
    check_loaded(path, options).map(|(_, checked)| checked)
}

/// [`check`], keeping the loaded model.
pub fn check_loaded(path: &Path, options: &LoadOptions) -> Result<(crate::model::Loaded, Checked)> {
    let mut loaded = Model::load(path, options)?;
    let self_test =
        crate::verify::verify_model(&loaded.manifest.self_test, &mut loaded.model, path)?;
    if !self_test.passed() {
        return Err(Error::SelfTest(format!(
            "{}: self-test deviation {:.3e} exceeds tolerance {:.1e}",
            path.display(),
            self_test.max_abs_deviation,
            self_test.tolerance
        )));
    }
    let checked = Checked {
        path: path.to_owned(),
        sha256_hex: loaded.sha256_hex.clone(),
        signer: loaded.signer.clone(),
        self_test,
    };
    Ok((loaded, checked))
}

/// Installs `new` into `dir` (created if missing) and makes it current; see the module
/// documentation. On any failure `dir`'s links are as they were.
pub fn install(new: &Path, dir: &Path, options: &LoadOptions) -> Result<InstallReport> {
    let bundles = dir.join(BUNDLES);
    std::fs::create_dir_all(&bundles)
        .map_err(|e| dir_error(dir, format!("cannot create {}: {e}", bundles.display())))?;
    let incoming = bundles.join(format!(".incoming-{}.kinglet", std::process::id()));
    copy_synced(new, &incoming).map_err(|e| {
        let _ = std::fs::remove_file(&incoming);
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::Io {
                path: new.to_owned(),
                source: e,
            },
            _ => dir_error(dir, format!("cannot copy {} in: {e}", new.display())),
        }
    })?;
    // the copy is what gets checked and what gets served: a file changed under `new` after
    // this point cannot slip in
    let checked = match check(&incoming, options) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&incoming);
            return Err(rename_in_error(e, &incoming, new));
        }
    };
    let file_name = format!(
        "{}-{}.kinglet",
        stem_of(new),
        &checked.sha256_hex[..12.min(checked.sha256_hex.len())]
    );
    let installed = bundles.join(&file_name);
    std::fs::rename(&incoming, &installed).map_err(|e| {
        let _ = std::fs::remove_file(&incoming);
        dir_error(dir, format!("cannot move the bundle into place: {e}"))
    })?;
    let target = Path::new(BUNDLES).join(&file_name);
    let old = std::fs::read_link(dir.join(CURRENT)).ok();
    let already_current = old.as_deref() == Some(target.as_path());
    if !already_current {
        if let Some(old) = &old {
            switch_link(dir, PREVIOUS, old)?;
        }
        switch_link(dir, CURRENT, &target)?;
    }
    sync_dir(dir);
    let removed = prune(dir)?;
    Ok(InstallReport {
        installed: Checked {
            path: installed,
            ..checked
        },
        previous: if already_current {
            previous(dir)?
        } else {
            old.map(|o| dir.join(o))
        },
        already_current,
        removed,
    })
}

/// Makes the previous bundle current again (after checking it as [`install`] does) and the
/// current one previous.
pub fn rollback(dir: &Path, options: &LoadOptions) -> Result<RollbackReport> {
    let current_link = std::fs::read_link(dir.join(CURRENT))
        .map_err(|e| dir_error(dir, format!("no `{CURRENT}` link: {e}")))?;
    let previous_link = std::fs::read_link(dir.join(PREVIOUS)).map_err(|_| {
        dir_error(
            dir,
            format!("nothing to roll back to: no `{PREVIOUS}` link (one install so far)"),
        )
    })?;
    let checked = check(&dir.join(&previous_link), options)?;
    switch_link(dir, CURRENT, &previous_link)?;
    switch_link(dir, PREVIOUS, &current_link)?;
    sync_dir(dir);
    Ok(RollbackReport {
        current: checked,
        previous: dir.join(current_link),
    })
}

/// A load error about the temporary copy, told about the file the user named.
fn rename_in_error(e: Error, incoming: &Path, new: &Path) -> Error {
    let fix = |p: PathBuf| if p == incoming { new.to_owned() } else { p };
    match e {
        Error::Io { path, source } => Error::Io {
            path: fix(path),
            source,
        },
        Error::BadBundle { path, reason } => Error::BadBundle {
            path: fix(path),
            reason,
        },
        Error::Signature { path, reason } => Error::Signature {
            path: fix(path),
            reason,
        },
        Error::Unsupported { path, reason } => Error::Unsupported {
            path: fix(path),
            reason,
        },
        Error::SelfTest(reason) => Error::SelfTest(
            reason.replace(&incoming.display().to_string(), &new.display().to_string()),
        ),
        other => other,
    }
}

/// The installed file's name stem: the source file's stem, reduced to `[A-Za-z0-9._-]`.
fn stem_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        "bundle".into()
    } else {
        clean
    }
}

fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut sink = std::fs::File::create(to)?;
    std::io::copy(&mut source, &mut sink)?;
    sink.sync_all()
}

/// Points `dir/name` at `target`: a new link under a temporary name, renamed over the old one.
fn switch_link(dir: &Path, name: &str, target: &Path) -> Result<()> {
    let temporary = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    symlink(target, &temporary)
        .map_err(|e| dir_error(dir, format!("cannot make the link `{name}`: {e}")))?;
    std::fs::rename(&temporary, dir.join(name)).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        dir_error(dir, format!("cannot switch the link `{name}`: {e}"))
    })
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "install directories need symbolic links (Unix)",
    ))
}

/// Makes the renames durable (best effort: not every file system syncs a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes bundles neither link names (and temporary copies of installs that died).
fn prune(dir: &Path) -> Result<Vec<PathBuf>> {
    let keep: Vec<PathBuf> = [CURRENT, PREVIOUS]
        .iter()
        .filter_map(|l| std::fs::read_link(dir.join(l)).ok())
        .filter_map(|t| t.file_name().map(PathBuf::from))
        .collect();
    let bundles = dir.join(BUNDLES);
    let entries = std::fs::read_dir(&bundles)
        .map_err(|e| dir_error(dir, format!("cannot list {}: {e}", bundles.display())))?;
    let mine = format!(".incoming-{}.kinglet", std::process::id());
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = PathBuf::from(entry.file_name());
        let is_bundle = name.extension().is_some_and(|e| e == "kinglet");
        if !is_bundle || keep.contains(&name) || name.as_os_str() == mine.as_str() {
            continue;
        }
        if std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_names_keep_only_plain_characters() {
        assert_eq!(
            stem_of(Path::new("/x/sentiment v2.kinglet")),
            "sentiment_v2"
        );
        assert_eq!(stem_of(Path::new("/x/.hidden.kinglet")), "hidden");
        assert_eq!(stem_of(Path::new("/x/\u{1b}[31m.kinglet")), "__31m");
        assert_eq!(stem_of(Path::new("/")), "bundle");
    }

    #[test]
    fn rollback_without_a_previous_install_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = rollback(dir.path(), &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("current"), "{err}");
        symlink(Path::new("bundles/a.kinglet"), &dir.path().join(CURRENT)).unwrap();
        let err = rollback(dir.path(), &LoadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("nothing to roll back to"), "{err}");
    }
}
