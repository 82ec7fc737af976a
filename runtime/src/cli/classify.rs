//! `kinglet classify [--model M] [--json] [--max-tokens N] [TEXT ... | --input FILE | -]`

use super::{CliError, ModelArg};
use crate::bundle::Bundle;
use crate::classify::{Classification, Classifier};
use anyhow::Context;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object per input: text, label, score, logits, scores, truncated, tokens.
    #[arg(long)]
    json: bool,
    /// Truncate inputs to this many tokens, special tokens included [default: the bundle's].
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// Read one text per line from FILE (`-` for standard input).
    #[arg(long, short, value_name = "FILE", conflicts_with = "texts")]
    input: Option<PathBuf>,
    /// Texts to classify; a single `-` reads lines from standard input.
    #[arg(value_name = "TEXT", value_parser = clap::value_parser!(OsString))]
    texts: Vec<OsString>,
}

/// One input with where it came from, for error messages.
struct Input {
    origin: String,
    text: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let inputs = collect_inputs(&args)?;
    let path = args.model.path()?;
    let bundle = Bundle::read(&path)?;
    let mut classifier = Classifier::from_bundle(&bundle)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for input in &inputs {
        let result = classifier
            .classify(&input.text, args.max_tokens)
            .with_context(|| input.origin.clone())?;
        write_result(&mut out, &input.text, &result, args.json)?;
    }
    out.flush()?;
    Ok(())
}

pub(super) fn write_result(
    out: &mut impl Write,
    text: &str,
    r: &Classification,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "text": text,
            "label": r.label,
            "label_index": r.label_index,
            "score": r.score,
            "logits": r.logits,
            "scores": r.scores,
            "truncated": r.truncated,
            "tokens": r.tokens,
        });
        writeln!(out, "{v}")?;
    } else {
        let note = if r.truncated { " (truncated)" } else { "" };
        writeln!(out, "{} {:.4}{note}", r.label, r.score)?;
    }
    Ok(())
}

/// Reads and checks every input before any model work, so bad input fails fast and whole.
fn collect_inputs(args: &Args) -> anyhow::Result<Vec<Input>> {
    let from_stdin = args.texts.len() == 1 && args.texts[0] == "-";
    if let Some(file) = &args.input {
        if file.as_os_str() == "-" {
            return lines_of(read_stdin()?, "standard input");
        }
        let bytes = std::fs::read(file)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
        return lines_of(bytes, &file.display().to_string());
    }
    if from_stdin {
        return lines_of(read_stdin()?, "standard input");
    }
    if args.texts.is_empty() {
        return Err(CliError::Input(
            "nothing to classify: give TEXT arguments, --input FILE or -".into(),
        )
        .into());
    }
    args.texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let origin = format!("argument {}", i + 1);
            let text = t
                .to_str()
                .ok_or_else(|| CliError::Input(format!("{origin} is not valid UTF-8")))?
                .to_string();
            if text.trim().is_empty() {
                return Err(CliError::Input(format!("{origin} is empty")).into());
            }
            Ok(Input { origin, text })
        })
        .collect()
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Input(format!("cannot read standard input: {e}")))?;
    Ok(bytes)
}

/// Splits input bytes into lines (LF or CRLF); every line must be UTF-8 and non-empty.
fn lines_of(bytes: Vec<u8>, name: &str) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if body.is_empty() {
        return Err(CliError::Input(format!("{name} is empty: nothing to classify")).into());
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let origin = format!("{name} line {}", i + 1);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|e| {
            CliError::Input(format!(
                "{origin} is not valid UTF-8 (byte {})",
                e.valid_up_to()
            ))
        })?;
        if text.trim().is_empty() {
            return Err(CliError::Input(format!("{origin} is empty")).into());
        }
        inputs.push(Input {
            origin,
            text: text.to_string(),
        });
    }
    Ok(inputs)
}
