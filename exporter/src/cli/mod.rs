//! Command line of `kinglet-export`: argument parsing here, work in the library.
//!
//! Exit codes: 0 success; 1 the export failed (bad checkpoint, unsupported model, failed
//! self-test — nothing is written); 2 bad command line.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod forecast;
mod hf;

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
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bert(args) => hf::run(args),
        Command::Forecast(args) => forecast::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kinglet-export: error: {e:#}");
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
}
