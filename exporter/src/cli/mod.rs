//! Command line of `kinglet-export`: argument parsing here, work in the library.
//!
//! Exit codes: 0 success; 1 the export failed (bad checkpoint, unsupported model, failed
//! self-test — nothing is written); 2 bad command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod forecast;
mod hf;
mod sign;

/// Turn a trained model into a kinglet bundle.
#[derive(Debug, Parser)]
#[command(name = "kinglet-export", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Export a Hugging Face BERT / DistilBERT / RoBERTa sequence classifier checkpoint
    /// directory (config.json, model.safetensors, tokenizer.json or vocab.txt).
    #[command(alias = "hf")]
    Bert(hf::Args),
    /// Export an ONNX time-series forecaster with its normalization.
    Forecast(forecast::Args),
    /// Make an Ed25519 key pair for signing bundles: NAME.key (secret, mode 0600, stays on the
    /// build machine) and NAME.pub (for the devices' --require-signed).
    Keygen(sign::KeygenArgs),
    /// Sign (or re-sign, rename, re-version) an existing bundle.
    Sign(sign::SignArgs),
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bert(args) => hf::run(args),
        Command::Forecast(args) => forecast::run(args),
        Command::Keygen(args) => sign::keygen(args),
        Command::Sign(args) => sign::sign(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "kinglet-export: error: {}",
                kinglet_runtime::cli::error_text(&e)
            );
            ExitCode::from(1)
        }
    }
}

/// Output file argument shared by every subcommand.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// Bundle to write (written to a temporary file, then renamed).
    #[arg(short, long, value_name = "OUT.kinglet")]
    pub output: PathBuf,
    #[command(flatten)]
    pub stamp: StampArgs,
}

/// Naming and signing, for every command that writes a bundle.
#[derive(Debug, clap::Args)]
pub struct StampArgs {
    /// Sign the bundle with this secret key (from `kinglet-export keygen`).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// The model's name, shown by `kinglet inspect` [default: the output file's stem].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The model's version, shown by `kinglet inspect`, e.g. 2026-12-02 or 3.
    #[arg(long, value_name = "V")]
    pub model_version: Option<String>,
}

impl StampArgs {
    /// The stamp, with the key read now (so a bad key fails before a long export).
    pub fn load(&self) -> anyhow::Result<crate::stamp::Stamp> {
        let key = match &self.sign {
            Some(path) => Some(kinglet_runtime::signature::SecretKey::read(path)?),
            None => None,
        };
        Ok(crate::stamp::Stamp {
            name: self.name.clone(),
            version: self.model_version.clone(),
            key,
        })
    }
}

/// Applies the stamp to the written bundle and prints what it did.
pub fn finish(out: &std::path::Path, stamp: &crate::stamp::Stamp) -> anyhow::Result<()> {
    let report = crate::stamp::stamp(out, out, stamp)?;
    if let Some(signer) = &report.signer {
        println!("signed {} by {signer}", out.display());
    }
    Ok(())
}
