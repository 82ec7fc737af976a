//! Command line of `kinglet-export`: argument parsing here, work in the library.
//!
//! Exit codes (also in `kinglet-export --help`); a failed export writes nothing:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (tract refused the graph, the runtime failed on the built bundle) |
//! | 2 | bad command line |
//! | 3 | bad checkpoint or input: a file missing, malformed, or weights of the wrong shape |
//! | 4 | unsupported: an architecture, operator or option kinglet does not support |
//! | 5 | the accuracy guard refused the quantized model (`--check`, `--max-drop`, `--max-increase`) |
//! | 6 | the written bundle failed its self-test |
//! | 7 | I/O: a file could not be read or written |
//!
//! `--json` prints the result as one JSON object on standard output and an error as one
//! `{"error": …, "exit_code": …}` object on standard error; `-q` hides the stage display that
//! a terminal otherwise shows while an export runs.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod fit;
mod forecast;
mod hf;
mod sign;

const EXIT_CODES: &str = "Exit codes: 0 success, 1 other failure, 2 bad command line, \
3 bad checkpoint or input, 4 unsupported, 5 accuracy guard refused the quantized model, \
6 self-test of the written bundle failed, 7 I/O error. A failed export writes nothing.";

/// Turn a trained model into a kinglet bundle.
#[derive(Debug, Parser)]
#[command(name = "kinglet-export", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print the result as one JSON object (and an error as one JSON object on standard error).
    #[arg(long, global = true)]
    json: bool,
    /// No stage display while exporting.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Export a Hugging Face BERT-family checkpoint directory (config.json, model.safetensors,
    /// tokenizer.json or vocab.txt): a sequence or token classifier (BERT, DistilBERT,
    /// RoBERTa, XLM-R, CamemBERT, ELECTRA, ALBERT) or a sentence-transformers folder.
    #[command(alias = "hf")]
    Bert(hf::Args),
    /// Export an ONNX time-series forecaster with its normalization.
    Forecast(forecast::Args),
    /// Train a linear forecaster (DLinear, NLinear or ridge) from a CSV, in closed form, and
    /// write its bundle.
    Fit(fit::Args),
    /// Make an Ed25519 key pair for signing bundles: NAME.key (secret, mode 0600, stays on the
    /// build machine) and NAME.pub (for the devices' --require-signed).
    Keygen(sign::KeygenArgs),
    /// Sign (or re-sign, rename, re-version) an existing bundle.
    Sign(sign::SignArgs),
    /// Print a shell completion script: `kinglet-export completions bash`.
    Completions(Completions),
    /// Write man pages (kinglet-export.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    ManPages(ManPages),
}

#[derive(Debug, clap::Args)]
struct Completions {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
struct ManPages {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// The command line's definition, with the long `--version` (commit, tract).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let long_version = kinglet_runtime::cli::long_version();
    Cli::command().long_version(&*Box::leak(long_version.into_boxed_str()))
}

/// The documented exit code for an export error (see the module documentation).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use crate::ExportError as E;
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<E>() {
            return match err {
                E::BadFile { .. } | E::Missing { .. } | E::Weights(_) => 3,
                E::Unsupported(_) => 4,
                E::QualityGate(_) => 5,
                E::SelfTest(_) => 6,
                E::Io { .. } => 7,
                E::Graph(_) => 1,
                E::Runtime(r) => match r {
                    kinglet_runtime::Error::Io { .. } => 7,
                    kinglet_runtime::Error::Unsupported { .. } => 4,
                    kinglet_runtime::Error::SelfTest(_) => 6,
                    kinglet_runtime::Error::BadInput(_)
                    | kinglet_runtime::Error::BadBundle { .. }
                    | kinglet_runtime::Error::Tokenizer(_)
                    | kinglet_runtime::Error::Signature { .. } => 3,
                    _ => 1,
                },
            };
        }
        if let Some(err) = cause.downcast_ref::<kinglet_runtime::Error>() {
            return match err {
                kinglet_runtime::Error::Io { .. } => 7,
                kinglet_runtime::Error::Signature { .. } | kinglet_runtime::Error::BadInput(_) => 3,
                _ => 1,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return 7;
        }
    }
    1
}

/// Draws the library's stages as a spinner with the stage's name, and counted stages as a bar,
/// on standard error when it is a terminal.
struct StageDisplay {
    bar: indicatif::ProgressBar,
}

impl crate::progress::Progress for StageDisplay {
    fn stage(&self, what: &str) {
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
            self.bar.set_style(style);
        }
        self.bar.set_length(0);
        self.bar.set_position(0);
        self.bar.set_message(what.to_string());
    }

    fn step(&self, done: u64, total: u64) {
        if self.bar.length() != Some(total) {
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
            ) {
                self.bar.set_style(style.progress_chars("=> "));
            }
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
    }
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let json = cli.json;
    let bar = indicatif::ProgressBar::new_spinner();
    if cli.quiet || json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    crate::progress::observe(Box::new(StageDisplay { bar: bar.clone() }));
    let result = match cli.command {
        Command::Bert(args) => hf::run(args),
        Command::Forecast(args) => forecast::run(args),
        Command::Fit(args) => fit::run(args),
        Command::Keygen(args) => sign::keygen(args),
        Command::Sign(args) => sign::sign(args),
        Command::Completions(args) => kinglet_runtime::cli::write_completions(
            command(),
            args.shell,
            &mut std::io::stdout().lock(),
        )
        .map_err(Into::into)
        .map(|()| Report::Silent),
        Command::ManPages(args) => {
            kinglet_runtime::cli::write_man_pages(command(), &args.dir).map(|_| Report::Silent)
        }
    };
    bar.finish_and_clear();
    let result = result.and_then(|report| report.print(json));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if kinglet_runtime::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            kinglet_runtime::cli::print_error(
                "kinglet-export",
                &kinglet_runtime::cli::error_text(&e),
                code,
                json,
            );
            ExitCode::from(code)
        }
    }
}

/// What a command did: text lines for a terminal and the same facts as one JSON object.
pub enum Report {
    /// Printed already (completions) or nothing to say.
    Silent,
    /// Lines for standard output, and the JSON form.
    Done {
        text: Vec<String>,
        json: serde_json::Value,
    },
}

impl Report {
    fn print(self, json: bool) -> anyhow::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        match self {
            Report::Silent => {}
            Report::Done { json: value, .. } if json => writeln!(out, "{value}")?,
            Report::Done { text, .. } => {
                for line in text {
                    writeln!(out, "{line}")?;
                }
            }
        }
        Ok(())
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

/// Applies the stamp to the written bundle; returns the signer, if it signed.
pub fn finish(
    out: &std::path::Path,
    stamp: &crate::stamp::Stamp,
) -> anyhow::Result<crate::stamp::StampReport> {
    Ok(crate::stamp::stamp(out, out, stamp)?)
}

/// `signed OUT by KEY` when the stamp signed, else nothing.
fn signed_line(out: &std::path::Path, stamped: &crate::stamp::StampReport) -> Vec<String> {
    stamped
        .signer
        .iter()
        .map(|signer| format!("signed {} by {signer}", out.display()))
        .collect()
}

/// The JSON report of a written bundle.
fn export_json(
    out: &std::path::Path,
    precision: crate::quantize::Precision,
    seconds: f64,
    report: &crate::export::ExportReport,
    stamped: &crate::stamp::StampReport,
) -> serde_json::Value {
    serde_json::json!({
        "output": out,
        "name": stamped.name,
        "version": stamped.version,
        "signer": stamped.signer,
        "precision": precision.name(),
        "architecture": report.architecture,
        "parameter_count": report.parameter_count,
        "bundle_bytes": stamped.bundle_bytes,
        "round_trip_deviation": report.round_trip_deviation,
        "quantization": report.quantization,
        "layers": report.layers,
        "seconds": seconds,
    })
}
