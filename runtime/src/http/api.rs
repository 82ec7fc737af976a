//! The JSON bodies of `serve --http` and what the served model does with them, apart from any
//! HTTP machinery (the server in [`super`] reads and writes the bytes).

use crate::classify::{Classification, Classifier};
use crate::embed::Embedder;
use crate::error::Error;
use crate::model::Model;
use crate::tag::Tagger;
use serde::{Deserialize, Serialize};

/// Texts one `POST /v1/classify` may carry.
pub const MAX_TEXTS: usize = 64;

/// `POST /v1/classify`: `{"text": "…"}` or `{"texts": ["…", …]}`; a sentence pair as
/// `{"pair": ["…", "…"]}` or several as `{"pairs": [["…", "…"], …]}`; zero-shot labels as
/// `{"text": "…", "candidates": ["…", …]}` with optional `"hypothesis"` and `"multi_label"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// One text: answered with one [`ClassifyAnswer`].
    #[serde(default)]
    pub text: Option<String>,
    /// Several texts: answered with `{"results": [...]}`.
    #[serde(default)]
    pub texts: Option<Vec<String>>,
    /// One sentence pair: answered with one [`ClassifyAnswer`] with its `text_pair`.
    #[serde(default)]
    pub pair: Option<[String; 2]>,
    /// Several sentence pairs: answered with `{"results": [...]}`.
    #[serde(default)]
    pub pairs: Option<Vec<[String; 2]>>,
    /// Zero-shot candidate labels for `text` (an NLI model): answered with a [`ZeroShotAnswer`].
    #[serde(default)]
    pub candidates: Option<Vec<String>>,
    /// The zero-shot hypothesis, `{}` where the label goes (default
    /// `"This example is {}."`, the pipeline's).
    #[serde(default)]
    pub hypothesis: Option<String>,
    /// Score every candidate on its own (entailment against contradiction).
    #[serde(default)]
    pub multi_label: bool,
}

/// Zero-shot labels, best first, as `kinglet classify --zero-shot --json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct ZeroShotAnswer {
    /// The text classified.
    pub text: String,
    /// The candidates and their scores, best first.
    #[serde(flatten)]
    pub ranked: crate::classify::ZeroShot,
}

/// `POST /v1/tag`: `{"text": "…"}` or `{"texts": ["…", …]}`.
pub type TagRequest = EmbedRequest;

/// One text's entities, as `kinglet tag --json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct TagAnswer {
    /// The text tagged.
    pub text: String,
    /// Its entities, their spans and what the model saw.
    #[serde(flatten)]
    pub tagged: crate::tag::Tagged,
}

/// One classification, as `kinglet classify --json` prints it: the text and its
/// [`Classification`].
#[derive(Debug, Clone, Serialize)]
pub struct ClassifyAnswer {
    /// The text classified (a pair's first).
    pub text: String,
    /// A pair's second text (`text_pair`, as Transformers and `kinglet classify --json` call
    /// it).
    #[serde(rename = "text_pair", skip_serializing_if = "Option::is_none")]
    pub second: Option<String>,
    /// What the model said.
    #[serde(flatten)]
    pub classification: Classification,
}

impl ClassifyAnswer {
    fn new(text: String, classification: Classification) -> ClassifyAnswer {
        ClassifyAnswer {
            text,
            second: None,
            classification,
        }
    }
}

/// `POST /v1/forecast`: the window as `rows` (the last `lookback` rows are used, each with the
/// model's columns in order) or as `csv` text with a header (columns found by name, as
/// `kinglet forecast --csv`); `plot: true` adds an SVG drawing of history and forecast.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// Rows of the model's columns, oldest first.
    #[serde(default)]
    pub rows: Option<Vec<Vec<f32>>>,
    /// A CSV document with a header row.
    #[serde(default)]
    pub csv: Option<String>,
    /// Also draw the plot.
    #[serde(default)]
    pub plot: bool,
}

/// A forecast, as `kinglet forecast --json` prints it (plus the optional plot).
#[derive(Debug, Clone, Serialize)]
pub struct ForecastAnswer {
    /// Forecast columns.
    pub targets: Vec<String>,
    /// Rows forecast.
    pub horizon: usize,
    /// Timestamps of the forecast rows, when the CSV had a time column.
    pub times: Option<Vec<String>>,
    /// `horizon` rows of `targets.len()` values.
    pub forecast: Vec<Vec<f32>>,
    /// The SVG drawing, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svg: Option<String>,
}

/// Why a request was not answered: its HTTP status, the CLI's exit code for the same failure
/// and a kind for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// The exit code `kinglet` gives the same failure.
    pub exit_code: u8,
    /// Short machine name (`bad_input`, `wrong_model_kind`, `busy` …), the `kind` label of
    /// `kinglet_errors_total`.
    pub kind: &'static str,
    /// One line for a person.
    pub message: String,
}

/// The JSON body of an error: `{"error": MESSAGE, "exit_code": N, "kind": KIND}`, the CLI's
/// `--json` error object plus the kind.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    exit_code: u8,
    kind: &'a str,
}

impl ApiError {
    /// An error of the request itself.
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            exit_code: 4,
            kind: "bad_input",
            message: message.into(),
        }
    }

    /// The body as JSON.
    pub fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            error: &self.message,
            exit_code: self.exit_code,
            kind: self.kind,
        })
        .unwrap_or_default()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let exit_code = e.exit_code();
        let (status, kind) = match &e {
            Error::BadInput(_) | Error::Tokenizer(_) => (400, "bad_input"),
            Error::ArenaExceeded(_) | Error::Budget(_) => (507, "memory"),
            _ => (500, "inference"),
        };
        ApiError {
            status,
            exit_code,
            kind,
            message: crate::cli::one_line(&e.to_string()),
        }
    }
}

fn wrong_kind(wanted: &str) -> ApiError {
    ApiError {
        status: 409,
        exit_code: 2,
        kind: "wrong_model_kind",
        message: format!("the served model is not a {wanted}"),
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_input(format!("request body: {e}")))
}

/// Answers a `POST /v1/classify` body (JSON text).
pub fn classify(model: &mut Model, body: &[u8]) -> Result<String, ApiError> {
    let Some(c) = model.task_mut::<Classifier>() else {
        return Err(wrong_kind("classifier"));
    };
    let request: ClassifyRequest = parse(body)?;
    let ClassifyRequest {
        text,
        texts,
        pair,
        pairs,
        candidates,
        hypothesis,
        multi_label,
    } = request;
    let mut answer_pair = |[first, second]: [String; 2]| -> Result<ClassifyAnswer, ApiError> {
        let r = c.classify_pair(&first, &second, None)?;
        Ok(ClassifyAnswer {
            text: first,
            second: Some(second),
            classification: r,
        })
    };
    match (text, texts, pair, pairs, candidates) {
        (Some(text), None, None, None, Some(candidates)) => {
            let hypothesis =
                hypothesis.unwrap_or_else(|| crate::classify::DEFAULT_HYPOTHESIS.to_string());
            let ranked = c.zero_shot(&text, &candidates, &hypothesis, multi_label, None)?;
            Ok(to_json(&ZeroShotAnswer { text, ranked }))
        }
        (Some(text), None, None, None, None) => {
            let r = c.classify(&text, None)?;
            Ok(to_json(&ClassifyAnswer::new(text, r)))
        }
        (None, Some(texts), None, None, None) if texts.len() <= MAX_TEXTS => {
            let mut results = Vec::with_capacity(texts.len());
            for text in texts {
                let r = c.classify(&text, None)?;
                results.push(ClassifyAnswer::new(text, r));
            }
            Ok(to_json(&Results { results }))
        }
        (None, None, Some(pair), None, None) => Ok(to_json(&answer_pair(pair)?)),
        (None, None, None, Some(pairs), None) if pairs.len() <= MAX_TEXTS => {
            let results = pairs
                .into_iter()
                .map(answer_pair)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(to_json(&Results { results }))
        }
        (None, Some(many), None, None, None) => Err(too_many(many.len())),
        (None, None, None, Some(many), None) => Err(too_many(many.len())),
        _ => Err(ApiError::bad_input(
            "give exactly one of \"text\" (a string), \"texts\" (a list of strings), \
             \"pair\" (two strings) or \"pairs\" (a list of them); \"candidates\" goes with \
             \"text\"",
        )),
    }
}

fn too_many(n: usize) -> ApiError {
    ApiError::bad_input(format!("{n} inputs in one request; at most {MAX_TEXTS}"))
}

/// Answers a `POST /v1/tag` body (JSON text).
pub fn tag(model: &mut Model, body: &[u8]) -> Result<String, ApiError> {
    let Some(t) = model.task_mut::<Tagger>() else {
        return Err(wrong_kind("token classifier"));
    };
    let request: TagRequest = parse(body)?;
    let mut one = |text: String| -> Result<TagAnswer, ApiError> {
        let tagged = t.tag(&text, None)?;
        Ok(TagAnswer { text, tagged })
    };
    match (request.text, request.texts) {
        (Some(text), None) => Ok(to_json(&one(text)?)),
        (None, Some(texts)) if texts.len() <= MAX_TEXTS => {
            let results = texts.into_iter().map(one).collect::<Result<Vec<_>, _>>()?;
            Ok(to_json(&serde_json::json!({ "results": results })))
        }
        (None, Some(texts)) => Err(too_many(texts.len())),
        _ => Err(ApiError::bad_input(
            "give exactly one of \"text\" (a string) or \"texts\" (a list of strings)",
        )),
    }
}

#[derive(Serialize)]
struct Results {
    results: Vec<ClassifyAnswer>,
}

/// `POST /v1/embed`: `{"text": "…"}` or `{"texts": ["…", …]}`, as [`ClassifyRequest`].
pub type EmbedRequest = ClassifyRequest;

/// One sentence vector, as `kinglet embed --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedAnswer {
    /// The text embedded.
    pub text: String,
    /// Its vector.
    pub embedding: Vec<f32>,
    /// The vector's length.
    pub dimensions: usize,
    /// True when the text was cut to the token limit.
    pub truncated: bool,
    /// Tokens the model saw.
    pub tokens: usize,
}

/// Answers a `POST /v1/embed` body (JSON text).
pub fn embed(model: &mut Model, body: &[u8]) -> Result<String, ApiError> {
    let Some(c) = model.task_mut::<Embedder>() else {
        return Err(wrong_kind("sentence-embedding model"));
    };
    let request: EmbedRequest = parse(body)?;
    let mut one = |text: String| -> Result<EmbedAnswer, ApiError> {
        let e = c.embed(&text, None)?;
        Ok(EmbedAnswer {
            text,
            dimensions: e.vector.len(),
            embedding: e.vector,
            truncated: e.truncated,
            tokens: e.tokens,
        })
    };
    match (request.text, request.texts) {
        (Some(text), None) => Ok(to_json(&one(text)?)),
        (None, Some(texts)) if texts.len() <= MAX_TEXTS => {
            let results = texts.into_iter().map(one).collect::<Result<Vec<_>, _>>()?;
            Ok(to_json(&serde_json::json!({ "results": results })))
        }
        (None, Some(texts)) => Err(ApiError::bad_input(format!(
            "{} texts in one request; at most {MAX_TEXTS}",
            texts.len()
        ))),
        _ => Err(ApiError::bad_input(
            "give exactly one of \"text\" (a string) or \"texts\" (a list of strings)",
        )),
    }
}

/// `POST /v1/search`: `{"query": "…", "k": 5}` against the index `serve --index` loaded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// How many documents to answer with (default 5, at most [`MAX_HITS`]).
    #[serde(default)]
    pub k: Option<usize>,
}

/// Documents one search may answer with.
pub const MAX_HITS: usize = 100;

/// One document found, as `kinglet search --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// Its position in the index.
    pub document: usize,
    /// Cosine similarity to the query.
    pub score: f32,
    /// Its text.
    pub text: String,
}

/// Answers a `POST /v1/search` body: embeds the query with the served model and ranks the
/// documents of `index` (built with that model: `model_sha256` must match).
pub fn search(
    model: &mut Model,
    index: Option<&crate::index::Index>,
    model_sha256: &str,
    body: &[u8],
) -> Result<String, ApiError> {
    let Some(index) = index else {
        return Err(ApiError {
            status: 409,
            exit_code: 2,
            kind: "no_index",
            message: "no index is served: start kinglet serve --http with --index FILE".into(),
        });
    };
    if hex::encode(index.model_sha256) != model_sha256 {
        return Err(ApiError {
            status: 409,
            exit_code: 4,
            kind: "index_mismatch",
            message: "the served index was built with another model; rebuild it with kinglet \
                      index build"
                .into(),
        });
    }
    let Some(c) = model.task_mut::<Embedder>() else {
        return Err(wrong_kind("sentence-embedding model"));
    };
    let request: SearchRequest = parse(body)?;
    let k = request.k.unwrap_or(5);
    if !(1..=MAX_HITS).contains(&k) {
        return Err(ApiError::bad_input(format!("k is {k}; 1 to {MAX_HITS}")));
    }
    let vector = c.embed(&request.query, None)?.vector;
    let hits: Vec<SearchHit> = index
        .search(&vector, k)?
        .into_iter()
        .map(|h| SearchHit {
            document: h.document,
            score: h.score,
            text: index.texts[h.document].clone(),
        })
        .collect();
    Ok(to_json(
        &serde_json::json!({"query": request.query, "hits": hits}),
    ))
}

/// Answers a `POST /v1/forecast` body (JSON text).
pub fn forecast(model: &mut Model, body: &[u8]) -> Result<String, ApiError> {
    let Some(f) = model.task_mut::<crate::forecast::Forecaster>() else {
        return Err(wrong_kind("forecaster"));
    };
    let request: ForecastRequest = parse(body)?;
    let meta = f.meta.clone();
    let columns = meta.columns.len();
    let (window, times) =
        match (request.rows, request.csv) {
            (Some(rows), None) => {
                if rows.len() < meta.lookback {
                    return Err(ApiError::bad_input(format!(
                        "{} rows; the model needs the last {} (lookback)",
                        rows.len(),
                        meta.lookback
                    )));
                }
                let last = &rows[rows.len() - meta.lookback..];
                if let Some((i, row)) = last.iter().enumerate().find(|(_, r)| r.len() != columns) {
                    return Err(ApiError::bad_input(format!(
                        "row {} has {} values; the model's rows have {columns} ({})",
                        rows.len() - meta.lookback + i + 1,
                        row.len(),
                        meta.columns.join(", ")
                    )));
                }
                (last.concat(), None)
            }
            (None, Some(csv)) => {
                let series = crate::series::parse_csv(csv.as_bytes(), &meta.columns, "csv")?;
                let rows = series.rows();
                if rows < meta.lookback {
                    return Err(ApiError::bad_input(format!(
                        "the CSV has {rows} rows; the model needs the last {} (lookback)",
                        meta.lookback
                    )));
                }
                let times = series
                    .continue_after(meta.step_seconds, meta.horizon, None)
                    .map(|f| (series.times.clone().unwrap_or_default(), f));
                (
                    series.slice_rows(rows - meta.lookback, rows).to_vec(),
                    times,
                )
            }
            _ => return Err(ApiError::bad_input(
                "give exactly one of \"rows\" (a list of rows) or \"csv\" (CSV text with a header)",
            )),
        };
    let result = f.forecast(&window)?;
    let t = meta.targets.len().max(1);
    let svg = if request.plot {
        let targets = meta.target_indices();
        let history: Vec<f32> = (0..meta.lookback)
            .flat_map(|r| {
                targets
                    .iter()
                    .map(|&c| window[r * columns + c])
                    .collect::<Vec<_>>()
            })
            .collect();
        Some(crate::plot::svg_text(&crate::plot::Plot {
            targets: &meta.targets,
            history: &history,
            forecast: &result.values,
            history_times: times.as_ref().map(|(h, _)| &h[..]),
            forecast_times: times.as_ref().map(|(_, f)| &f[..]),
        })?)
    } else {
        None
    };
    let forecast: Vec<Vec<f32>> = result.values.chunks(t).map(<[f32]>::to_vec).collect();
    Ok(to_json(&ForecastAnswer {
        targets: meta.targets.clone(),
        horizon: forecast.len(),
        times: times.map(|(_, ts)| {
            ts.iter()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .collect()
        }),
        forecast,
        svg,
    }))
}

/// Our answer types are plain data: serializing them cannot fail.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
