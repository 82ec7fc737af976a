//! Command line of `kinglet`: argument parsing here, one module per subcommand, the work in
//! the library.
//!
//! Exit codes (also in `kinglet --help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, also when the reader of standard output closes it early (`kinglet … \| head`) |
//! | 1 | any other failure (inference error, I/O on output) |
//! | 2 | bad command line |
//! | 3 | the model could not be loaded: missing, truncated, corrupted or unsupported bundle |
//! | 4 | bad input: empty text, non-UTF-8 text, unreadable input file |
//! | 5 | `verify`: the bundle's self-test deviates past its tolerance |
//! | 6 | memory: the model needs more than `--budget`, or one input outgrew the arena |
//! | 7 | trust: the bundle's signature is broken, or `--require-signed` and no trusted key signed it |
//!
//! Of several inputs (`classify` with a file, lines or arguments), one that fails does not
//! stop the others: it is reported in its place and the exit code is the first failure's.
//! Every line reader bounds its lines (a text line at 16 KiB, a CSV/TSV row at 1 MiB).
//!
//! With `--json`, a command's results are JSON and so is its error: one object
//! `{"error": "…", "exit_code": N}` on standard error. `-q` silences notes and progress bars
//! (results and errors still print); `-v` adds notes on what was loaded and how long it took.
//! Progress bars draw only when standard error is a terminal.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// `println!` that returns the write error instead of panicking, so that a closed pipe
/// (`kinglet inspect | head`) ends the command quietly (see [`is_broken_pipe`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

mod bench;
mod call;
mod classify;
mod completions;
pub mod eval;
mod forecast;
mod index;
pub mod inspect;
mod install;
mod model_path;
mod rollback;
mod serve;
mod verify;

pub use completions::{write_completions, write_man_pages};
pub use eval::parse_rows;
pub use model_path::{find_model, model_search_dirs, resolve_model, ModelArg};

const EXIT_CODES: &str = "Exit codes: 0 success, 1 other failure, 2 bad command line, \
3 model cannot be loaded, 4 bad input, 5 self-test failed, 6 over the memory budget, \
7 bundle not signed by a trusted key (or its signature is broken).";

/// Run kinglet bundles on an edge CPU.
#[derive(Debug, Parser)]
#[command(name = "kinglet", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Print only results and errors: no notes, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print, on standard error, which bundle was loaded, its size, SHA-256, memory
    /// budget and load time.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify texts: one result per argument or input line.
    Classify(classify::Args),
    /// Sentence embeddings: one vector per argument or input line (a bundle exported from a
    /// sentence-transformers folder).
    Embed(classify::TextArgs),
    /// Named entities (token classification): one line of entities per argument or input line
    /// (a bundle exported from a …ForTokenClassification checkpoint).
    Tag(classify::TextArgs),
    /// Build a local search index: every line of a file embedded and stored compactly.
    Index(index::IndexArgs),
    /// Search an index for the documents closest in meaning to a query (cosine, exact).
    Search(index::SearchArgs),
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
    /// Install a bundle into a directory after checking it (signature, budget, self-test),
    /// switch DIR/current to it atomically and keep the one it replaces for a rollback.
    Install(install::Args),
    /// Make the previous bundle of an install directory current again (checked first).
    Rollback(rollback::Args),
    /// Print a shell completion script: `kinglet completions bash > /etc/bash_completion.d/kinglet`.
    Completions(completions::Args),
    /// Write man pages (kinglet.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    ManPages(completions::ManArgs),
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
    /// Some of several inputs failed, each reported in its place; the exit code is the first
    /// failure's.
    #[error("{failed} of {total} inputs failed (each is reported in its place)")]
    Failed {
        failed: usize,
        total: usize,
        exit_code: u8,
    },
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    set_verbosity(if cli.quiet { 0 } else { 1 + cli.verbose });
    let json = matches
        .subcommand()
        .and_then(|(_, sub)| sub.try_get_one::<bool>("json").ok().flatten().copied())
        .unwrap_or(false);
    let result = match cli.command {
        Command::Classify(args) => classify::run(args),
        Command::Embed(args) => classify::run_embed(args),
        Command::Tag(args) => classify::run_tag(args),
        Command::Index(args) => index::run_index(args),
        Command::Search(args) => index::run_search(args),
        Command::Eval(args) => eval::run(args),
        Command::Forecast(args) => forecast::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Install(args) => install::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Call(args) => call::run(args),
        Command::Completions(args) => completions::run(args, command()),
        Command::ManPages(args) => completions::man_pages(args, command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // the reader went away (`| head`): nothing is wrong, as in ripgrep
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            print_error("kinglet", &error_text(&e), code, json);
            ExitCode::from(code)
        }
    }
}

/// The command line's definition, with the long `--version` (commit, tract, CPU features and
/// the kernels chosen on this CPU).
pub fn command() -> clap::Command {
    let long_version = format!("{}\n{}", long_version(), crate::kernels::report());
    // built once per process; clap takes `&'static str` without its `string` feature
    Cli::command().long_version(&*Box::leak(long_version.into_boxed_str()))
}

/// `0.1.0 (commit 1a2b3c4d5e6f, tract 0.23.9, aarch64)`.
pub fn long_version() -> String {
    format!(
        "{} (commit {}, tract {}, {})",
        crate::VERSION,
        crate::COMMIT,
        crate::TRACT_VERSION,
        std::env::consts::ARCH
    )
}

/// Prints an error as `NAME: error: MESSAGE` on one line, or with `json` as one JSON object
/// `{"error": MESSAGE, "exit_code": CODE}`.
pub fn print_error(name: &str, message: &str, exit_code: u8, json: bool) {
    if json {
        let object = serde_json::json!({ "error": message, "exit_code": exit_code });
        eprintln!("{object}");
    } else {
        eprintln!("{name}: error: {}", one_line(message));
    }
}

static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);

/// 0 with `-q`, 1 by default, 2 and more with `-v`, `-vv`.
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, std::sync::atomic::Ordering::Relaxed);
}

/// The level [`set_verbosity`] set.
pub fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// A note on standard error (`kinglet: …`), left out under `-q`.
pub fn note(message: std::fmt::Arguments<'_>) {
    if verbosity() >= 1 {
        eprintln!("kinglet: {message}");
    }
}

/// A warning on standard error (`kinglet: warning: …`, one line, control characters escaped),
/// left out under `-q`.
pub fn warn(message: &str) {
    if verbosity() >= 1 {
        eprintln!("kinglet: warning: {}", printable(&one_line(message)));
    }
}

/// A note printed only under `-v`.
pub fn detail(message: std::fmt::Arguments<'_>) {
    if verbosity() >= 2 {
        eprintln!("kinglet: {message}");
    }
}

/// `s` as it may reach a terminal: control characters (C0, DEL, C1, e.g. an ESC sequence in
/// a bundle's label) are shown escaped (`\u{1b}`), everything else unchanged.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `e` and its causes joined by `: `, each cause left out when the text before it already says
/// it (a message such as `cannot read bundle X: {source}` names its source itself; `{e:#}`
/// would print that source twice).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// An error message as one terminal line: line breaks (tract's parse errors quote the
/// source over several lines) become ` | `, control characters are escaped, and past
/// [`MAX_ERROR_CHARS`] it is cut with `…`.
pub fn one_line(message: &str) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut out: String = printable(&joined).chars().take(MAX_ERROR_CHARS).collect();
    if out.len() < printable(&joined).len() {
        out.push('…');
    }
    out
}

/// Longest error line printed, in characters.
pub const MAX_ERROR_CHARS: usize = 2000;

/// Whether `e` comes from writing into a pipe whose reader has closed it.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The documented exit code for an error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use crate::Error;
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<Error>() {
            return err.exit_code();
        }
        if let Some(err) = cause.downcast_ref::<CliError>() {
            return match err {
                CliError::Input(_) => 4,
                CliError::SelfTest(_) => 5,
                CliError::Failed { exit_code, .. } => *exit_code,
            };
        }
    }
    1
}

/// A progress bar on standard error, drawn only when that is a terminal and `-q` is not given.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if verbosity() == 0 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_whose_message_names_its_source_prints_the_source_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file (os error 2)");
        let e = anyhow::Error::new(crate::Error::Io {
            path: "m.kinglet".into(),
            source: io,
        })
        .context("loading the model");
        let text = error_text(&e);
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        assert!(
            text.starts_with("loading the model: cannot read bundle m.kinglet"),
            "{text}"
        );
    }

    #[test]
    fn multi_line_errors_print_as_one_escaped_bounded_line() {
        let m = one_line("cannot load graph: at line 2, in Tag:\nversion 1.0;\n^\n\u{1b}[2J");
        assert_eq!(
            m,
            "cannot load graph: at line 2, in Tag: | version 1.0; | ^ | \\u{1b}[2J"
        );
        let long = one_line(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn control_characters_from_a_bundle_reach_the_terminal_escaped() {
        assert_eq!(printable("positive"), "positive");
        assert_eq!(printable("très bien ✓"), "très bien ✓");
        assert_eq!(printable("\u{1b}[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(printable("a\u{9b}31mb\u{7f}"), "a\\u{9b}31mb\\u{7f}");
        assert_eq!(printable("tab\there"), "tab\\there");
    }

    #[test]
    fn a_closed_pipe_is_told_from_other_errors() {
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the answer");
        assert!(is_broken_pipe(&pipe));
        let other = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!is_broken_pipe(&other));
    }
}
