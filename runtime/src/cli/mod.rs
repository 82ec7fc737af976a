//! Command line of `kinglet`: argument parsing here, one module per subcommand, the work in
//! the library.
//!
//! Exit codes (also in `kinglet --help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (inference error, I/O on output) |
//! | 2 | bad command line |
//! | 3 | the model could not be loaded: missing, truncated, corrupted or unsupported bundle |
//! | 4 | bad input: empty text, non-UTF-8 text, unreadable input file |
//! | 5 | `verify`: the bundle's self-test deviates past its tolerance |
//! | 6 | memory: the model needs more than `--budget`, or one input outgrew the arena |

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

mod bench;
mod call;
mod classify;
mod eval;
mod forecast;
mod inspect;
mod model_path;
mod serve;
mod verify;

pub use eval::parse_rows;
pub use model_path::{default_model_path, ModelArg};

const EXIT_CODES: &str = "Exit codes: 0 success, 1 other failure, 2 bad command line, \
3 model cannot be loaded, 4 bad input, 5 self-test failed, 6 over the memory budget.";

/// Run kinglet bundles on an edge CPU.
#[derive(Debug, Parser)]
#[command(name = "kinglet", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify texts: one result per argument or input line.
    Classify(classify::Args),
    /// Forecast the next rows of a series from a CSV file or a live stream.
    Forecast(forecast::Args),
    /// Measure a model on data: a classifier's accuracy, precision, recall, F1 and confusion
    /// on labeled rows; a forecaster's MSE and MAE over sliding windows of a CSV.
    Eval(eval::Args),
    /// Rerun the bundle's self-test vectors and print the largest deviation.
    Verify(verify::Args),
    /// Time a model: latency percentiles, throughput, load time, peak memory.
    Bench(bench::Args),
    /// Serve the model over a serial port (or stdio) with kinglet's framed protocol.
    Serve(serve::Args),
    /// Call a device that runs `kinglet serve`.
    Call(call::Args),
    /// Describe a bundle: kind, labels, precision, sizes.
    Inspect(inspect::Args),
}

/// An error the CLI attaches its own exit code to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Input given on the command line or in a file is unusable.
    #[error("{0}")]
    Input(String),
    /// The self-test failed.
    #[error("{0}")]
    SelfTest(String),
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    // `--version` also names the CPU features seen and the kernels chosen
    let long_version = format!("{}\n{}", crate::VERSION, crate::kernels::report());
    let long_version: &'static str = Box::leak(long_version.into_boxed_str());
    let matches = Cli::command().long_version(long_version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Forecast(args) => forecast::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Call(args) => call::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kinglet: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The documented exit code for an error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use crate::Error;
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<Error>() {
            return match err {
                Error::Io { .. } | Error::BadBundle { .. } | Error::Unsupported { .. } => 3,
                Error::BadInput(_) | Error::Tokenizer(_) => 4,
                Error::Inference(_) => 1,
                Error::Budget(_) | Error::ArenaExceeded(_) => 6,
            };
        }
        if let Some(err) = cause.downcast_ref::<CliError>() {
            return match err {
                CliError::Input(_) => 4,
                CliError::SelfTest(_) => 5,
            };
        }
    }
    1
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}
