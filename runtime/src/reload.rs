//! Swapping the model `kinglet serve` answers with, without stopping: on `SIGHUP`, or when the
//! bundle path now resolves to another file (an install directory's `current` link switched by
//! [`crate::install`]).
//!
//! The new bundle is loaded and self-tested beside the old one, between two frames, on the
//! serving thread (requests that arrive meanwhile wait in the port's buffer; none is dropped),
//! reusing the arena already reserved. Only a bundle that passes replaces the old engine; one
//! that fails leaves the old model serving and is not retried until the next `SIGHUP` or the
//! next change of the link.

use crate::error::Error;
use crate::memory::LoadOptions;
use crate::model::Loaded;
use crate::serve::RuntimeEngine;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

static HANGUP: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup(_signal: libc::c_int) {
    HANGUP.store(true, Ordering::Relaxed);
}

extern "C" fn on_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs `handler` for `signal` without `SA_RESTART`, so that a blocking read of the port or
/// of standard input returns at once and the serving loop sees the flag without waiting for the
/// next request.
fn install(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    // SAFETY: the handlers only store to an atomic, which is async-signal-safe; the sigaction
    // struct is zeroed and then filled as sigaction(2) documents.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Installs the `SIGHUP` handler: the next [`Reloader::poll`] reloads.
pub fn watch_hangup() -> std::io::Result<()> {
    install(libc::SIGHUP, on_hangup)
}

/// Installs `SIGTERM` (what `systemctl stop` sends) and `SIGINT` handlers that ask the serving
/// loop to end after the frame in hand, so that it can print its closing statistics.
pub fn watch_stop() -> std::io::Result<()> {
    install(libc::SIGTERM, on_stop)?;
    install(libc::SIGINT, on_stop)
}

/// Whether `SIGTERM` or `SIGINT` arrived since [`watch_stop`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// What a reload did.
#[derive(Debug)]
pub enum ReloadEvent {
    /// The new bundle passed and is served from the next frame on.
    Reloaded {
        /// The file now served.
        path: PathBuf,
        /// What was checked.
        checked: Box<crate::install::Checked>,
    },
    /// The new bundle was refused; the old model keeps serving.
    Refused {
        /// The file that was tried.
        path: PathBuf,
        /// Why.
        error: Error,
    },
}

/// Decides when to reload and does it.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    options: LoadOptions,
    /// What `path` resolved to when it was last loaded or tried.
    seen: Option<PathBuf>,
}

impl Reloader {
    /// Watches `path` (as given to `--model`), whose current file is being served.
    pub fn new(path: &Path, options: LoadOptions) -> Reloader {
        Reloader {
            path: path.to_owned(),
            options: LoadOptions {
                reuse_arena: true,
                ..options
            },
            seen: std::fs::canonicalize(path).ok(),
        }
    }

    /// When a `SIGHUP` came or the path resolves elsewhere: the new engine, or why not.
    pub fn poll(&mut self) -> Option<(ReloadEvent, Option<RuntimeEngine>)> {
        let (event, loaded) = self.poll_loaded()?;
        let Some(loaded) = loaded else {
            return Some((event, None));
        };
        let ReloadEvent::Reloaded { path, checked } = event else {
            unreachable!("a loaded model comes with a Reloaded event")
        };
        Some(match RuntimeEngine::from_loaded(loaded, &path) {
            Ok(engine) => (ReloadEvent::Reloaded { path, checked }, Some(engine)),
            Err(error) => (ReloadEvent::Refused { path, error }, None),
        })
    }

    /// [`Reloader::poll`], keeping the whole loaded model (manifest, hash, signer).
    pub fn poll_loaded(&mut self) -> Option<(ReloadEvent, Option<Loaded>)> {
        let hangup = HANGUP.swap(false, Ordering::Relaxed);
        let now = std::fs::canonicalize(&self.path).ok();
        if !hangup && now == self.seen {
            return None;
        }
        self.seen = now.clone();
        let path = now.unwrap_or_else(|| self.path.clone());
        Some(match crate::install::check_loaded(&path, &self.options) {
            Ok((loaded, checked)) => (
                ReloadEvent::Reloaded {
                    path,
                    checked: Box::new(checked),
                },
                Some(loaded),
            ),
            Err(error) => (ReloadEvent::Refused { path, error }, None),
        })
    }
}
