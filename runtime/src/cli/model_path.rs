//! Which bundle to load when `--model` is not given.

use std::path::PathBuf;

/// `--model` argument shared by every subcommand that loads a bundle.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArg {
    /// Bundle to load: a file, an install directory, or a bare name looked up in
    /// $KINGLET_MODEL_PATH, $XDG_DATA_HOME/kinglet/models, /usr/local/share/kinglet/models,
    /// /usr/share/kinglet/models and models/ beside the binary [default: $KINGLET_MODEL, else
    /// sentiment.kinglet from those directories].
    #[arg(short, long, value_name = "M")]
    pub model: Option<PathBuf>,
    /// Memory budget for the model (weights, plan, activations at the largest input,
    /// tokenizer, buffers), e.g. 48MiB or 64MB; a model that needs more is refused at load
    /// [default: the budget the exporter stored in the bundle].
    #[arg(long, value_name = "SIZE", value_parser = crate::memory::parse_bytes)]
    pub budget: Option<u64>,
    /// Threads for kinglet's own kernels, int8 linear layers and attention (1 = the calling
    /// thread only, the edge default; more start workers that poll for work between operators
    /// and allocate outside the arena).
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Load only bundles signed by one of the keys in FILE (lines `kinglet-ed25519-public:…`
    /// as `kinglet-export keygen` writes them; `#` starts a comment). An unsigned bundle or
    /// one signed by another key is refused with exit code 7 [default: $KINGLET_REQUIRE_SIGNED].
    #[arg(long, value_name = "FILE", alias = "key")]
    pub require_signed: Option<PathBuf>,
}

impl ModelArg {
    /// Loads the bundle with the memory preflight and budget.
    pub fn load(&self) -> anyhow::Result<crate::model::Loaded> {
        crate::engine::set_threads(self.threads as usize)?;
        let path = self.path()?;
        let started = std::time::Instant::now();
        let loaded = crate::model::Model::load(&path, &self.options()?)?;
        super::detail(format_args!(
            "loaded {} ({} bytes, sha256 {}, {}) in {} ms; memory budget {}",
            path.display(),
            loaded.file_bytes,
            loaded.sha256_hex,
            super::verify::signed_by(loaded.signer.as_ref()),
            started.elapsed().as_millis(),
            match (self.budget, &loaded.manifest.memory) {
                (Some(b), _) => format!("{b} bytes (--budget)"),
                (None, Some(m)) => format!("{} bytes (the bundle's)", m.budget_bytes),
                (None, None) => "none".into(),
            },
        ));
        Ok(loaded)
    }

    /// `--budget` and `--require-signed` as load options.
    pub fn options(&self) -> anyhow::Result<crate::memory::LoadOptions> {
        Ok(crate::memory::LoadOptions {
            budget_bytes: self.budget,
            trusted: self.trusted()?,
            ..Default::default()
        })
    }

    /// The keys of `--require-signed`, read.
    pub fn trusted(&self) -> anyhow::Result<Option<crate::signature::TrustedKeys>> {
        read_trusted(self.require_signed.as_deref())
    }

    /// The bundle `--model` names, found as [`resolve_model`] says.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        Ok(resolve_model(self.model.as_deref())?)
    }
}

/// Environment variable naming a trusted-keys file when `--require-signed` is not given (set it
/// once for a device, e.g. `Environment=KINGLET_REQUIRE_SIGNED=/etc/kinglet/fleet.pub` in the
/// systemd unit).
pub const REQUIRE_SIGNED_ENV: &str = "KINGLET_REQUIRE_SIGNED";

/// Reads a `--require-signed` keys file (else `$KINGLET_REQUIRE_SIGNED`'s); a missing or
/// malformed one is a signature refusal (exit 7): a device told to trust only some keys must
/// not fall back to trusting all.
pub fn read_trusted(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<crate::signature::TrustedKeys>> {
    let configured = std::env::var_os(REQUIRE_SIGNED_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    match path.or(configured.as_deref()) {
        None => Ok(None),
        Some(path) => Ok(Some(crate::signature::TrustedKeys::read(path).map_err(
            |e| crate::Error::Signature {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        )?)),
    }
}

/// File name of the shipped default model.
pub const DEFAULT_MODEL_FILE: &str = "sentiment.kinglet";

/// Environment variable naming the bundle to load when `--model` is not given.
pub const MODEL_ENV: &str = "KINGLET_MODEL";

/// Environment variable listing directories (`:`-separated) searched before the standard ones.
pub const MODEL_PATH_ENV: &str = "KINGLET_MODEL_PATH";

/// Where a model named without a directory is looked for, in order: `$KINGLET_MODEL_PATH`,
/// `$XDG_DATA_HOME/kinglet/models` (else `~/.local/share/kinglet/models`),
/// `/usr/local/share/kinglet/models`, `/usr/share/kinglet/models` (where the `.deb` puts the
/// shipped models), then `models/` beside the binary and up to three directories above it (an
/// unpacked tarball, or `target/[TRIPLE/]PROFILE/` in a checkout). Nothing of the build
/// machine is baked in.
pub fn model_search_dirs() -> Vec<PathBuf> {
    let env_path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut dirs: Vec<PathBuf> = env_path(MODEL_PATH_ENV)
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    let data_home = env_path("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| env_path("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data_home {
        dirs.push(d.join("kinglet/models"));
    }
    dirs.push("/usr/local/share/kinglet/models".into());
    dirs.push("/usr/share/kinglet/models".into());
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.to_path_buf()))
    {
        dirs.extend(exe_dir.ancestors().take(4).map(|d| d.join("models")));
    }
    dirs
}

/// `NAME` or `NAME.kinglet` in the first of `dirs` that holds it; else the directories
/// looked in, for the error.
pub fn find_model(name: &std::path::Path, dirs: &[PathBuf]) -> Result<PathBuf, crate::Error> {
    let mut with_ext = name.as_os_str().to_owned();
    with_ext.push(".kinglet");
    let names = [name.to_path_buf(), PathBuf::from(with_ext)];
    for dir in dirs {
        for n in &names {
            let p = dir.join(n);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(crate::Error::Io {
        path: name.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no such file, nor in {} (set {MODEL_PATH_ENV} to add a directory)",
                looked.join(", ")
            ),
        ),
    })
}

/// Which file `--model` (or its absence) names: an install directory serves its `current`
/// bundle; an existing file or a path with a directory is taken as given; a bare name that is
/// not a file here (`sentiment`, `etth1-lstm.kinglet`) is looked up in [`model_search_dirs`];
/// no `--model` means `$KINGLET_MODEL`, else `sentiment.kinglet` from the search dirs.
pub fn resolve_model(model: Option<&std::path::Path>) -> Result<PathBuf, crate::Error> {
    let bare = |p: &std::path::Path| {
        let mut parts = p.components();
        matches!(parts.next(), Some(std::path::Component::Normal(_))) && parts.next().is_none()
    };
    match model {
        Some(p) if p.is_dir() => Ok(p.join(crate::install::CURRENT)),
        Some(p) if p.exists() || !bare(p) => Ok(p.to_path_buf()),
        Some(p) => find_model(p, &model_search_dirs()),
        None => match std::env::var_os(MODEL_ENV).filter(|v| !v.is_empty()) {
            Some(p) => Ok(PathBuf::from(p)),
            None => find_model(DEFAULT_MODEL_FILE.as_ref(), &model_search_dirs()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_found_with_or_without_its_extension_in_the_first_dir_that_holds_it() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(b.path().join("m.kinglet"), b"x").unwrap();
        std::fs::write(a.path().join("m"), b"x").unwrap();
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(find_model("m".as_ref(), &dirs).unwrap(), a.path().join("m"));
        assert_eq!(
            find_model("m.kinglet".as_ref(), &dirs).unwrap(),
            b.path().join("m.kinglet")
        );
    }

    #[test]
    fn a_model_found_nowhere_names_every_directory_looked_in() {
        let dirs = [
            PathBuf::from("/nonexistent/one"),
            PathBuf::from("/nonexistent/two"),
        ];
        let err = find_model("sentiment.kinglet".as_ref(), &dirs).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/one, /nonexistent/two"), "{msg}");
        assert!(matches!(err, crate::Error::Io { .. }));
    }

    #[test]
    fn search_dirs_hold_the_standard_locations_and_no_build_machine_path() {
        let dirs = model_search_dirs();
        for want in [
            "/usr/local/share/kinglet/models",
            "/usr/share/kinglet/models",
        ] {
            assert!(
                dirs.iter().any(|d| d == std::path::Path::new(want)),
                "{dirs:?}"
            );
        }
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(!dirs.iter().any(|d| d.starts_with(source)), "{dirs:?}");
    }

    #[test]
    fn a_path_with_a_directory_is_taken_as_given_even_when_missing() {
        let p = std::path::Path::new("some/dir/missing.kinglet");
        assert_eq!(resolve_model(Some(p)).unwrap(), p);
    }
}
