//! `kinglet-export keygen NAME`, `kinglet-export sign BUNDLE --key KEY [-o OUT]`

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Path without extension: NAME.key and NAME.pub are written (an existing key is never
    /// overwritten).
    #[arg(value_name = "NAME")]
    name: PathBuf,
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<super::Report> {
    let (secret, public, key) = kinglet_runtime::signature::write_key_pair(&args.name)?;
    let text = vec![format!(
        "wrote {} (secret: keep it on the build machine) and {} ({key})",
        secret.display(),
        public.display()
    )];
    let json =
        serde_json::json!({ "secret_key": secret, "public_key": public, "key": key.to_string() });
    Ok(super::Report::Done { text, json })
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Bundle to sign.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Secret key (from `kinglet-export keygen`).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Write here instead of replacing BUNDLE.
    #[arg(short, long, value_name = "OUT.kinglet")]
    output: Option<PathBuf>,
    /// Set the model's name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Set the model's version.
    #[arg(long, value_name = "V")]
    model_version: Option<String>,
}

pub fn sign(args: SignArgs) -> anyhow::Result<super::Report> {
    let stamp = crate::stamp::Stamp {
        name: args.name,
        version: args.model_version,
        key: Some(kinglet_runtime::signature::SecretKey::read(&args.key)?),
    };
    let out = args.output.unwrap_or_else(|| args.bundle.clone());
    let report = crate::stamp::stamp(&args.bundle, &out, &stamp)?;
    let text = vec![format!(
        "signed {} ({} {}) by {}",
        out.display(),
        report.name,
        report.version,
        report.signer.clone().unwrap_or_default()
    )];
    let json = serde_json::json!({ "output": out, "stamp": report });
    Ok(super::Report::Done { text, json })
}
