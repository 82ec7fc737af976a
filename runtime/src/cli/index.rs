//! `kinglet index build` and `kinglet search`: a local semantic search over documents embedded
//! with a sentence-embedding bundle (see [`crate::index`]).

use super::{CliError, ModelArg};
use crate::embed::Embedder;
use crate::index::{Index, Storage};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IndexCommand {
    /// Embed every line of a file and write the vectors and lines as an index.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Documents, one per line (blank lines skipped).
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,
    /// The index file to write.
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// How vectors are stored: int8 (1 byte a value and a scale), f16 or f32.
    #[arg(long, default_value = "int8")]
    storage: Storage,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `kinglet search --index FILE [--model M] [-k N] [--json] QUERY...`
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The index `kinglet index build` wrote with the same model.
    #[arg(long, value_name = "FILE")]
    index: PathBuf,
    /// How many documents to answer with, best first.
    #[arg(short, long, default_value_t = 5)]
    k: usize,
    /// One JSON object per query: query, hits (document, score, text), search_ms.
    #[arg(long)]
    json: bool,
    /// What to look for.
    #[arg(value_name = "QUERY", required = true)]
    queries: Vec<String>,
}

/// Queries the recall of a compact index is measured with at build time (documents spread
/// evenly through the file, each searched for among all).
const RECALL_QUERIES: usize = 200;
/// The `k` of that recall.
const RECALL_K: usize = 5;

/// What `index build` did.
#[derive(Debug, serde::Serialize)]
struct BuildReport {
    documents: usize,
    dimensions: usize,
    storage: &'static str,
    index_bytes: usize,
    /// Fraction of the exact f32 top 5 that the stored vectors' top 5 holds, over up to 200
    /// documents used as queries.
    recall_at_5: f64,
    recall_queries: usize,
    embed_seconds: f64,
}

fn embedder(model: &ModelArg) -> anyhow::Result<(Embedder, [u8; 32])> {
    let loaded = model.load()?;
    let mut sha = [0u8; 32];
    hex::decode_to_slice(&loaded.sha256_hex, &mut sha)?;
    let unsupported = |reason: &str| -> anyhow::Error {
        match model.path() {
            Ok(path) => crate::Error::Unsupported {
                path,
                reason: reason.into(),
            }
            .into(),
            Err(e) => e,
        }
    };
    match loaded.model.kind() {
        crate::TaskKind::Embedder => Ok((loaded.model.into_task(&model.path()?)?, sha)),
        _ => Err(unsupported(
            "an index needs a sentence-embedding bundle (kinglet-export bert on a \
             sentence-transformers folder)",
        )),
    }
}

pub fn run_index(args: IndexArgs) -> anyhow::Result<()> {
    let IndexCommand::Build(args) = args.command;
    let (mut model, sha) = embedder(&args.model)?;
    let mut texts = Vec::new();
    super::classify::for_each_line(&args.input, |_, text| {
        texts.push(text.to_string());
        Ok(())
    })?;
    let started = std::time::Instant::now();
    let bar = super::progress_bar(texts.len() as u64, "embed");
    let mut vectors = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let vector = model
            .embed(text, None)
            .map_err(|e| {
                anyhow::Error::new(e).context(format!("{} line {}", args.input.display(), i + 1))
            })?
            .vector;
        vectors.push(vector);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let embed_seconds = started.elapsed().as_secs_f64();
    let index = Index::build(&vectors, texts, args.storage, sha)?;
    let step = (index.len() / RECALL_QUERIES).max(1);
    let queries: Vec<usize> = (0..index.len())
        .step_by(step)
        .take(RECALL_QUERIES)
        .collect();
    let recall_at_5 = crate::index::recall_at(&index, &vectors, &queries, RECALL_K)?;
    let bytes = index.to_bytes();
    write_atomically(&args.output, &bytes)?;
    let report = BuildReport {
        documents: index.len(),
        dimensions: index.dims,
        storage: index.storage.name(),
        index_bytes: bytes.len(),
        recall_at_5,
        recall_queries: queries.len(),
        embed_seconds,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "indexed {} documents ({} dimensions, {}) into {} ({} bytes) in {:.1} s\n\
             recall@5 of the stored vectors against exact f32 search: {:.4} ({} documents as queries)",
            report.documents,
            report.dimensions,
            report.storage,
            args.output.display(),
            report.index_bytes,
            report.embed_seconds,
            report.recall_at_5,
            report.recall_queries
        )?;
    }
    Ok(())
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("kidx.tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CliError::Input(format!("cannot write {}: {e}", path.display())).into()
        })
}

pub fn run_search(args: SearchArgs) -> anyhow::Result<()> {
    if args.k == 0 {
        return Err(CliError::Input("-k must be 1 or more".into()).into());
    }
    let bytes = std::fs::read(&args.index)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", args.index.display())))?;
    let index = Index::from_bytes(&bytes)
        .map_err(|e| CliError::Input(format!("{}: {e}", args.index.display())))?;
    let (mut model, sha) = embedder(&args.model)?;
    if sha != index.model_sha256 {
        return Err(CliError::Input(format!(
            "{} was built with the bundle whose SHA-256 is {}, not this one ({}); rebuild it \
             with kinglet index build",
            args.index.display(),
            hex::encode(index.model_sha256),
            hex::encode(sha)
        ))
        .into());
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for query in &args.queries {
        let vector = model.embed(query, None)?.vector;
        let started = std::time::Instant::now();
        let hits = index.search(&vector, args.k)?;
        let search_ms = started.elapsed().as_secs_f64() * 1e3;
        if args.json {
            let hits: Vec<serde_json::Value> = hits
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "document": h.document,
                        "score": h.score,
                        "text": index.texts[h.document],
                    })
                })
                .collect();
            let v = serde_json::json!({"query": query, "hits": hits, "search_ms": search_ms});
            writeln!(out, "{v}")?;
        } else {
            for h in &hits {
                writeln!(
                    out,
                    "{:.4}\t{}",
                    h.score,
                    super::printable(&index.texts[h.document])
                )?;
            }
        }
        out.flush()?;
        super::note(format_args!(
            "searched {} documents in {search_ms:.2} ms",
            index.len()
        ));
    }
    Ok(())
}
