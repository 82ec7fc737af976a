//! Which bundle to load when `--model` is not given.

use std::path::PathBuf;

/// `--model` argument shared by every subcommand that loads a bundle.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArg {
    /// Bundle to load [default: $KINGLET_MODEL, else the shipped models/sentiment.kinglet].
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
        Ok(crate::model::Model::load(self.path()?, &self.options()?)?)
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

    /// The explicit path, or the default one.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.model {
            // an install directory (`kinglet install … --into DIR`) serves its current bundle
            Some(p) if p.is_dir() => Ok(p.join(crate::install::CURRENT)),
            Some(p) => Ok(p.clone()),
            None => default_model_path().ok_or_else(|| {
                anyhow::anyhow!(
                    "no model given and no default found: pass --model M, set KINGLET_MODEL, or \
                     put sentiment.kinglet in a models/ directory beside the kinglet binary"
                )
            }),
        }
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

/// `$KINGLET_MODEL`; else `models/sentiment.kinglet` beside the binary or one or two levels
/// up (an installed tree, or `target/{debug,release}` in the repository); else the repository's
/// `models/` as seen at build time (so `cargo run` works from any directory).
pub fn default_model_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KINGLET_MODEL") {
        return Some(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(|d| d.to_path_buf());
        for _ in 0..3 {
            let Some(d) = dir else { break };
            candidates.push(d.join("models").join(DEFAULT_MODEL_FILE));
            dir = d.parent().map(|p| p.to_path_buf());
        }
    }
    candidates.push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("models")
            .join(DEFAULT_MODEL_FILE),
    );
    candidates.into_iter().find(|p| p.is_file())
}
