//! `kinglet classify [--model M] [--json] [--max-tokens N] [TEXT ... | --input FILE | -]`,
//! sentence pairs (`--pair FIRST SECOND`, `--pairs` lines) and zero-shot labels
//! (`--zero-shot LABELS`).

use super::{CliError, ModelArg};
use crate::classify::{Classification, Classifier, ZeroShot, MAX_TEXT_BYTES};
use crate::embed::{Embedder, Embedding};
use crate::tag::Tagger;
use crate::task::TaskKind;
use crate::text::TextModel;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    text: TextArgs,
    /// Classify one sentence pair (NLI premise and hypothesis, a cross-encoder's query and
    /// passage): the second text is the model's second segment, as Transformers'
    /// `tokenizer(first, second)` makes it.
    #[arg(long, num_args = 2, value_names = ["FIRST", "SECOND"],
          conflicts_with_all = ["texts", "input", "pairs", "zero_shot"])]
    pair: Option<Vec<String>>,
    /// Read every line of --input (or standard input) as a pair: `FIRST<TAB>SECOND`.
    #[arg(long, conflicts_with = "zero_shot")]
    pairs: bool,
    /// Zero-shot classification with an NLI model: score each text against these
    /// comma-separated candidate labels (Transformers' zero-shot pipeline).
    #[arg(long, value_name = "LABELS")]
    zero_shot: Option<String>,
    /// The hypothesis each candidate label is put into, at `{}`.
    #[arg(long, value_name = "TEMPLATE", default_value = DEFAULT_HYPOTHESIS, requires = "zero_shot")]
    hypothesis: String,
    /// Zero-shot: score every label on its own (entailment against contradiction) instead of
    /// sharing one probability across the labels.
    #[arg(long, requires = "zero_shot")]
    multi_label: bool,
    /// Set by `kinglet embed`: sentence vectors instead of labels.
    #[arg(skip)]
    embed: bool,
    /// Set by `kinglet tag`: entities instead of labels.
    #[arg(skip)]
    tag: bool,
}

/// What `classify`, `embed` and `tag` read: `[--model M] [--json] [--max-tokens N] [TEXT ... |
/// --input FILE | -]`.
#[derive(Debug, clap::Args)]
pub struct TextArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Print one JSON object per input: the text and the command's answer (classify: label,
    /// score, logits, scores; embed: embedding, dimensions; tag: entities), truncated, tokens.
    #[arg(long)]
    json: bool,
    /// Truncate inputs to this many tokens, special tokens included [default: the bundle's].
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// Read one text per line from FILE (`-` for standard input).
    #[arg(long, short, value_name = "FILE", conflicts_with = "texts")]
    input: Option<PathBuf>,
    /// Texts; a single `-` reads lines from standard input.
    #[arg(value_name = "TEXT", value_parser = clap::value_parser!(OsString))]
    texts: Vec<OsString>,
}

/// Runs `kinglet embed`: the classify command's inputs, answered with sentence vectors.
pub fn run_embed(args: TextArgs) -> anyhow::Result<()> {
    run(args.into_classify(true, false))
}

/// Runs `kinglet tag`: the classify command's inputs, answered with entities.
pub fn run_tag(args: TextArgs) -> anyhow::Result<()> {
    run(args.into_classify(false, true))
}

impl TextArgs {
    fn into_classify(self, embed: bool, tag: bool) -> Args {
        Args {
            text: self,
            pair: None,
            pairs: false,
            zero_shot: None,
            hypothesis: DEFAULT_HYPOTHESIS.into(),
            multi_label: false,
            embed,
            tag,
        }
    }
}

/// The zero-shot pipeline's default hypothesis.
use crate::classify::DEFAULT_HYPOTHESIS;

/// One input with where it came from, for error messages.
struct Input {
    origin: String,
    text: String,
}

/// What every input is asked.
enum Task {
    /// One text, one answer.
    Single,
    /// One text, its sentence vector.
    Embed,
    /// One text, its entities.
    Tag,
    /// `FIRST<TAB>SECOND`: the pair's answer.
    Pairs,
    /// The candidate labels, ranked.
    ZeroShot {
        candidates: Vec<String>,
        hypothesis: String,
        multi_label: bool,
    },
}

/// The loaded model of the command's task.
enum TextTaskModel {
    Classify(Classifier),
    Embed(Embedder),
    Tag(Tagger),
}

impl TextTaskModel {
    fn text(&self) -> &TextModel {
        match self {
            TextTaskModel::Classify(c) => c.text(),
            TextTaskModel::Embed(e) => e.text(),
            TextTaskModel::Tag(t) => t.text(),
        }
    }
}

impl Task {
    fn of(args: &Args) -> anyhow::Result<Task> {
        if args.embed {
            return Ok(Task::Embed);
        }
        if args.tag {
            return Ok(Task::Tag);
        }
        if args.pair.is_some() || args.pairs {
            return Ok(Task::Pairs);
        }
        let Some(labels) = &args.zero_shot else {
            return Ok(Task::Single);
        };
        let candidates: Vec<String> = labels.split(',').map(|l| l.trim().to_string()).collect();
        if candidates.iter().any(String::is_empty) {
            return Err(CliError::Input(format!(
                "--zero-shot {labels:?} has an empty label; give comma-separated labels, e.g. \
                 \"sports,politics,tech\""
            ))
            .into());
        }
        if !args.hypothesis.contains("{}") {
            return Err(CliError::Input(format!(
                "--hypothesis {:?} has no {{}} for the label to go into",
                args.hypothesis
            ))
            .into());
        }
        Ok(Task::ZeroShot {
            candidates,
            hypothesis: args.hypothesis.clone(),
            multi_label: args.multi_label,
        })
    }

    /// The pair in a `--pairs` line, or why it is not one.
    fn split<'a>(&self, text: &'a str) -> Result<Option<(&'a str, &'a str)>, String> {
        if !matches!(self, Task::Pairs) {
            return Ok(None);
        }
        match text.split_once('\t') {
            Some((first, second)) if !second.contains('\t') => Ok(Some((first, second))),
            Some(_) => Err("has more than one TAB: --pairs reads `FIRST<TAB>SECOND` lines".into()),
            None => Err("has no TAB: --pairs reads `FIRST<TAB>SECOND` lines".into()),
        }
    }
}

/// One input's answer.
enum Answer {
    One(Classification),
    Vector(Embedding),
    Entities(crate::tag::Tagged),
    Pair(Classification),
    Ranked(ZeroShot),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Every input is checked before any model work, so bad input fails fast and whole. A file
    // is checked in one streaming pass and classified in a second, never held in memory: the
    // process's memory does not grow with the number of lines.
    let task = Task::of(&args)?;
    let (inputs, count, blank) = match &args.text.input {
        Some(file) if file.as_os_str() != "-" => {
            let mut count = 0usize;
            let blank = for_each_line(file, |line, text| {
                task.split(text)
                    .map_err(|e| CliError::Input(format!("{} line {line} {e}", file.display())))?;
                count += 1;
                Ok(())
            })?;
            (None, count, blank)
        }
        _ => {
            let (inputs, blank) = collect_inputs(&args)?;
            for input in &inputs {
                task.split(&input.text)
                    .map_err(|e| CliError::Input(format!("{} {e}", input.origin)))?;
            }
            let count = inputs.len();
            (Some(inputs), count, blank)
        }
    };
    let unsupported = |reason: &str| -> anyhow::Result<()> {
        Err(crate::Error::Unsupported {
            path: args.text.model.path()?,
            reason: reason.into(),
        }
        .into())
    };
    let model = args.text.model.load()?.model;
    let found = model.kind();
    match (&task, found) {
        (Task::Embed, TaskKind::Embedder) | (Task::Tag, TaskKind::Tagger) => {}
        (_, TaskKind::Forecaster) => unsupported("this bundle is a forecaster, not a text model")?,
        (Task::Embed, _) => unsupported(
            "this bundle is not a sentence-embedding model; kinglet embed needs one \
             (kinglet-export bert on a sentence-transformers folder)",
        )?,
        (Task::Tag, _) => unsupported(
            "this bundle is not a token classifier; kinglet tag needs one (a \
             …ForTokenClassification checkpoint)",
        )?,
        (_, TaskKind::Embedder) => unsupported(
            "this bundle makes sentence embeddings; it has no labels (use kinglet embed)",
        )?,
        (_, TaskKind::Tagger) => unsupported(
            "this bundle tags tokens; it does not classify whole texts (use kinglet tag)",
        )?,
        _ => {}
    }
    let path = args.text.model.path()?;
    let mut model = match found {
        TaskKind::Embedder => TextTaskModel::Embed(model.into_task(&path)?),
        TaskKind::Tagger => TextTaskModel::Tag(model.into_task(&path)?),
        _ => TextTaskModel::Classify(model.into_task(&path)?),
    };
    if let Some(n) = args.text.max_tokens {
        // one setting for every input: refused once, before any answer
        let positions = model.text().meta.max_position_embeddings;
        if !(2..=positions).contains(&n) {
            return Err(crate::Error::BadInput(format!(
                "max tokens must be between 2 and {positions} for this model, got {n}"
            ))
            .into());
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Of several inputs, one that fails (it outgrew the arena, say) fails alone: its error is
    // reported in its place (an error object with --json, a line on standard error without)
    // and the rest go on; the command then exits with the first failure's code.
    let mut failed = 0usize;
    let mut first_code: Option<u8> = None;
    let mut answer = |origin: &dyn Fn() -> String, text: &str| -> anyhow::Result<()> {
        let pair = task.split(text).map_err(CliError::Input)?;
        let texts = match pair {
            Some((first, second)) => vec![first, second],
            None => vec![text],
        };
        for text in &texts {
            warn_special_tokens(model.text(), &mut out, origin, text, &task)?;
        }
        let max_tokens = args.text.max_tokens;
        let answer = match (&mut model, &task, pair) {
            (TextTaskModel::Classify(c), _, Some((first, second))) => {
                c.classify_pair(first, second, max_tokens).map(Answer::Pair)
            }
            (
                TextTaskModel::Classify(c),
                Task::ZeroShot {
                    candidates,
                    hypothesis,
                    multi_label,
                },
                None,
            ) => c
                .zero_shot(text, candidates, hypothesis, *multi_label, max_tokens)
                .map(Answer::Ranked),
            (TextTaskModel::Classify(c), _, None) => c.classify(text, max_tokens).map(Answer::One),
            (TextTaskModel::Embed(e), _, _) => e.embed(text, max_tokens).map(Answer::Vector),
            (TextTaskModel::Tag(t), _, _) => t.tag(text, max_tokens).map(Answer::Entities),
        };
        match answer {
            Ok(result) => write_answer(&mut out, text, &result, args.text.json),
            Err(e) if count <= 1 => Err(anyhow::Error::new(e).context(origin())),
            Err(e) => {
                let e = anyhow::Error::new(e).context(origin());
                if args.text.json {
                    let v = serde_json::json!({
                        "text": text,
                        "error": super::error_text(&e),
                        "exit_code": super::exit_code(&e),
                    });
                    writeln!(out, "{v}")?;
                } else {
                    out.flush()?;
                    eprintln!(
                        "kinglet: error: {}",
                        super::one_line(&super::error_text(&e))
                    );
                }
                failed += 1;
                first_code.get_or_insert(super::exit_code(&e));
                Ok(())
            }
        }
    };
    // drawn when answers go to a file or pipe and standard error is a terminal: on a terminal
    // the answers themselves show the progress
    let bar = super::progress_bar(count as u64, "classify");
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    match (&inputs, &args.text.input) {
        (Some(inputs), _) => {
            for input in inputs {
                answer(&|| input.origin.clone(), &input.text)?;
                bar.inc(1);
            }
        }
        (None, Some(file)) => {
            for_each_line(file, |line, text| {
                answer(&|| format!("{} line {line}", file.display()), text)?;
                bar.inc(1);
                Ok(())
            })?;
        }
        (None, None) => unreachable!("no inputs only when --input is a file"),
    }
    bar.finish_and_clear();
    out.flush()?;
    drop(out);
    if blank > 0 {
        let plural = if blank == 1 { "" } else { "s" };
        super::note(format_args!(
            "skipped {blank} blank line{plural}; classified {count}"
        ));
    }
    match first_code {
        None => Ok(()),
        Some(exit_code) => Err(CliError::Failed {
            failed,
            total: count,
            exit_code,
        }
        .into()),
    }
}

/// Calls `f(line number, text)` for every line of `file` (LF or CRLF) that is not blank, read
/// in a streaming pass, and returns how many blank lines it skipped; every line must be UTF-8
/// and the file must hold one text.
pub(super) fn for_each_line(
    file: &std::path::Path,
    f: impl FnMut(usize, &str) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let name = file.display().to_string();
    let opened = std::fs::File::open(file)
        .map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
    let limited = crate::lines::LineLimit::new(opened, MAX_LINE_BYTES);
    each_line(std::io::BufReader::new(limited), &name, f)
}

/// [`for_each_line`] over any reader; `name` names it in errors.
fn each_line(
    mut reader: impl std::io::BufRead,
    name: &str,
    mut f: impl FnMut(usize, &str) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut buf = Vec::new();
    let (mut line, mut blank) = (0, 0);
    loop {
        buf.clear();
        let cannot_read = |e: std::io::Error| match crate::lines::LineTooLong::find(&e) {
            Some(_) => CliError::Input(format!(
                "{name} line {} is longer than {MAX_TEXT_BYTES} bytes, the limit of one text",
                line + 1
            )),
            None => CliError::Input(format!("cannot read {name}: {e}")),
        };
        if reader.read_until(b'\n', &mut buf).map_err(cannot_read)? == 0 {
            break;
        }
        line += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            CliError::Input(format!(
                "{name} line {line} is not valid UTF-8 (byte {})",
                e.valid_up_to()
            ))
        })?;
        if text.trim().is_empty() {
            blank += 1;
            continue;
        }
        f(line, text)?;
    }
    if line == 0 {
        return Err(CliError::Input(format!("{name} is empty: nothing to classify")).into());
    }
    if blank == line {
        return Err(
            CliError::Input(format!("{name} has only blank lines: nothing to classify")).into(),
        );
    }
    Ok(blank)
}

/// Warns when `text` holds a special token written out (`A [SEP] B`), which the tokenizer
/// reads as that token: not the sentence pair the model may have been trained on.
fn warn_special_tokens(
    model: &TextModel,
    out: &mut impl Write,
    origin: &dyn Fn() -> String,
    text: &str,
    task: &Task,
) -> anyhow::Result<()> {
    let specials = model.special_tokens_in(text);
    if specials.is_empty() {
        return Ok(());
    }
    let listed = specials
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let instead = match task {
        Task::Single => {
            "; kinglet reads it as one text, so `A [SEP] B` is not a sentence pair: give \
             --pair FIRST SECOND (or --pairs lines FIRST<TAB>SECOND)"
        }
        _ => "",
    };
    let segments = if model.has_token_types() {
        " (this model tells a pair's two texts apart by their token types)"
    } else {
        ""
    };
    out.flush()?;
    super::warn(&format!(
        "{}: the text contains {listed}, which the tokenizer reads as its special token{instead}{segments}",
        origin()
    ));
    Ok(())
}

/// Writes a text's entities on one line: `LABEL start..end "word" score` per entity,
/// `;`-separated; `-` for none.
pub(super) fn write_entities(out: &mut impl Write, t: &crate::tag::Tagged) -> anyhow::Result<()> {
    let found: Vec<String> = t
        .entities
        .iter()
        .map(|e| {
            format!(
                "{} {}..{} {:?} {:.4}",
                super::printable(&e.entity_group),
                e.start,
                e.end,
                e.word,
                e.score
            )
        })
        .collect();
    let line = if found.is_empty() {
        "-".into()
    } else {
        found.join("; ")
    };
    writeln!(out, "{line}")?;
    Ok(())
}

/// Writes one input's answer: a classification as [`write_result`]; a pair's with the second
/// text in its JSON; zero-shot candidates best first (`label score` pairs on one line).
fn write_answer(
    out: &mut impl Write,
    text: &str,
    answer: &Answer,
    json: bool,
) -> anyhow::Result<()> {
    match answer {
        Answer::One(r) => write_result(out, text, r, json),
        Answer::Vector(e) if json => {
            let v = serde_json::json!({
                "text": text,
                "embedding": e.vector,
                "dimensions": e.vector.len(),
                "truncated": e.truncated,
                "tokens": e.tokens,
            });
            writeln!(out, "{v}")?;
            Ok(())
        }
        Answer::Vector(e) => {
            let values: Vec<String> = e.vector.iter().map(|v| format!("{v:.6}")).collect();
            writeln!(out, "{}", values.join(" "))?;
            Ok(())
        }
        Answer::Entities(t) if json => {
            let v = serde_json::json!({
                "text": text,
                "entities": t.entities,
                "truncated": t.truncated,
                "tokens": t.tokens,
            });
            writeln!(out, "{v}")?;
            Ok(())
        }
        Answer::Entities(t) => write_entities(out, t),
        Answer::Pair(r) if json => {
            let (first, second) = text.split_once('\t').unwrap_or((text, ""));
            let mut v = result_json(first, r);
            v["text_pair"] = second.into();
            writeln!(out, "{v}")?;
            Ok(())
        }
        Answer::Pair(r) => write_result(out, text, r, false),
        Answer::Ranked(z) if json => {
            let v = serde_json::json!({"text": text, "labels": z.labels, "scores": z.scores});
            writeln!(out, "{v}")?;
            Ok(())
        }
        Answer::Ranked(z) => {
            let ranked: Vec<String> = z
                .labels
                .iter()
                .zip(&z.scores)
                .map(|(l, s)| format!("{} {s:.4}", super::printable(l)))
                .collect();
            writeln!(out, "{}", ranked.join("  "))?;
            Ok(())
        }
    }
}

pub(super) fn write_result(
    out: &mut impl Write,
    text: &str,
    r: &Classification,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = result_json(text, r);
        writeln!(out, "{v}")?;
    } else {
        let note = if r.truncated { " (truncated)" } else { "" };
        writeln!(out, "{} {:.4}{note}", super::printable(&r.label), r.score)?;
    }
    Ok(())
}

/// The JSON object of one classification.
pub(super) fn result_json(text: &str, r: &Classification) -> serde_json::Value {
    serde_json::json!({
            "text": text,
            "label": r.label,
            "label_index": r.label_index,
            "score": r.score,
            "logits": r.logits,
            "scores": r.scores,
            "truncated": r.truncated,
            "tokens": r.tokens,
    })
}

/// Reads and checks every input before any model work, so bad input fails fast and whole;
/// also returns the blank lines skipped (of standard input).
fn collect_inputs(args: &Args) -> anyhow::Result<(Vec<Input>, usize)> {
    let from_stdin = args.text.texts.len() == 1 && args.text.texts[0] == "-";
    if let Some(file) = &args.text.input {
        if file.as_os_str() == "-" {
            return stdin_lines();
        }
    }
    if from_stdin {
        return stdin_lines();
    }
    if let Some(pair) = &args.pair {
        for (which, text) in ["FIRST", "SECOND"].iter().zip(pair) {
            if text.trim().is_empty() {
                return Err(CliError::Input(format!("--pair's {which} text is empty")).into());
            }
            if text.contains('\t') {
                return Err(CliError::Input(format!("--pair's {which} text has a TAB")).into());
            }
        }
        let input = Input {
            origin: "--pair".into(),
            text: pair.join("\t"),
        };
        return Ok((vec![input], 0));
    }
    if args.text.texts.is_empty() {
        return Err(CliError::Input(
            "nothing to classify: give TEXT arguments, --input FILE or -".into(),
        )
        .into());
    }
    let texts = args
        .text
        .texts
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
        .collect::<anyhow::Result<_>>()?;
    Ok((texts, 0))
}

/// The longest input line: one text of [`MAX_TEXT_BYTES`] and a `\r`.
const MAX_LINE_BYTES: usize = MAX_TEXT_BYTES + 1;

/// The most standard input may carry (it is held whole, to be checked before any answer);
/// larger inputs go through `--input FILE`, which is streamed.
pub const MAX_STDIN_BYTES: u64 = 64 * 1024 * 1024;

/// Standard input, whole, every line bounded by [`MAX_LINE_BYTES`] and the total by
/// [`MAX_STDIN_BYTES`].
fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    crate::lines::LineLimit::new(std::io::stdin().lock(), MAX_LINE_BYTES)
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match crate::lines::LineTooLong::find(&e) {
            Some(_) => {
                let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
                CliError::Input(format!(
                    "standard input line {line} is longer than {MAX_TEXT_BYTES} bytes, the \
                     limit of one text"
                ))
            }
            None => CliError::Input(format!("cannot read standard input: {e}")),
        })?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(CliError::Input(format!(
            "standard input is over {} MiB; give a file with --input FILE, which is streamed",
            MAX_STDIN_BYTES >> 20
        ))
        .into());
    }
    Ok(bytes)
}

/// Every line of standard input (it cannot be read twice, so it is held), checked as
/// [`each_line`] checks a file.
fn stdin_lines() -> anyhow::Result<(Vec<Input>, usize)> {
    let name = "standard input";
    let mut inputs = Vec::new();
    let blank = each_line(std::io::Cursor::new(read_stdin()?), name, |line, text| {
        inputs.push(Input {
            origin: format!("{name} line {line}"),
            text: text.to_string(),
        });
        Ok(())
    })?;
    Ok((inputs, blank))
}
