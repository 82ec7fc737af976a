//! Token classification (NER): every token's label, grouped into entities the way
//! Transformers' `pipeline("token-classification", aggregation_strategy="simple")` does.
//!
//! Each token but the special ones takes its highest-scoring label (softmax over the labels).
//! Consecutive tokens join one entity while their tags agree and the later one is not a `B-`
//! (`B-PER I-PER` is one person, `B-PER B-PER` two; `O` is a tag too); an entity's label is
//! its first token's without the `B-`/`I-`, its score the mean of its tokens' scores, its
//! word the tokens joined by the tokenizer's decoder (an unknown token stands for its span of
//! the text), its span from its first token's start to its last token's end, in characters.
//! Entities labelled `O` are dropped.

use crate::engine::Engine;
use crate::error::Result;
use crate::inspect::TaskReport;
use crate::manifest::ClassifierMeta;
use crate::memory::LoadOptions;
use crate::text::{TextModel, TextTask};
use crate::tokenize::{TextTokenizer, TokenDetail};
use std::path::Path;

/// A loaded token classifier, ready to answer.
#[derive(Debug)]
pub struct Tagger {
    text: TextModel,
}

impl Tagger {
    /// Loads a bundle file for serving, with the memory preflight of the longest text (see
    /// [`crate::classify::Classifier::load`]).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Tagger> {
        let meter = crate::memory::LoadMeter::start();
        let file = crate::bundle::BundleFile::open(path)?;
        TextModel::load_task(meter, file, options)
    }

    /// Builds a tagger from a bundle, optimizing its graph for this CPU.
    pub fn from_bundle(bundle: &crate::bundle::Bundle) -> Result<Tagger> {
        TextModel::task_from_bundle(bundle)
    }

    /// Builds a tagger around an already prepared engine (the exporter's graph in memory).
    pub fn with_engine(
        meta: ClassifierMeta,
        tokenizer_json: &[u8],
        engine: Engine,
    ) -> Result<Tagger> {
        TextModel::task_with_engine(meta, tokenizer_json, engine)
    }

    /// Labels and token limits from the manifest.
    pub fn meta(&self) -> &ClassifierMeta {
        &self.text.meta
    }

    /// The text model inside: metadata, tokenizer and graph.
    pub fn text(&self) -> &TextModel {
        &self.text
    }

    /// The special tokens written literally in `text`.
    pub fn special_tokens_in(&self, text: &str) -> Vec<String> {
        self.text.special_tokens_in(text)
    }

    /// The entities of one text, grouped as Transformers' token-classification pipeline with
    /// `aggregation_strategy="simple"`; truncated to `max_tokens` (the bundle's default when
    /// `None`), inside the arena when loaded with one.
    pub fn tag(&mut self, text: &str, max_tokens: Option<usize>) -> Result<Tagged> {
        Ok(self.tag_with_logits(text, max_tokens)?.0)
    }

    /// [`Tagger::tag`], with the logits it grouped (`[tokens, labels]`, row-major).
    pub fn tag_with_logits(
        &mut self,
        text: &str,
        max_tokens: Option<usize>,
    ) -> Result<(Tagged, Vec<f32>)> {
        let max_tokens = self.text.request(text, max_tokens, "tag")?;
        self.text
            .run_detailed(text, max_tokens, |t, detail, logits| {
                let entities = group(&t.meta.labels, &detail, &logits, t.tokenizer(), text)?;
                let tagged = Tagged {
                    entities,
                    truncated: detail.tokens.truncated,
                    tokens: detail.tokens.ids.len(),
                };
                Ok((tagged, logits))
            })
    }
}

impl TextTask for Tagger {
    fn wrap(text: TextModel) -> Tagger {
        Tagger { text }
    }

    fn text_model(&self) -> &TextModel {
        &self.text
    }

    fn text_model_mut(&mut self) -> &mut TextModel {
        &mut self.text
    }

    fn outputs(&mut self, text: &str) -> Result<Vec<f32>> {
        Ok(self.tag_with_logits(text, None)?.1)
    }

    fn report(&self) -> TaskReport {
        let meta = &self.text.meta;
        TaskReport::Tagger {
            labels: meta.labels.clone(),
            max_tokens: meta.max_tokens,
            max_position_embeddings: meta.max_position_embeddings,
        }
    }

    fn run_worst(&mut self, text: &str, longest: usize) -> Result<()> {
        self.tag(text, Some(longest)).map(drop)
    }
}

/// One entity found in a text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entity {
    /// Its label without the `B-`/`I-` prefix (`PER`, `LOC` …).
    pub entity_group: String,
    /// Mean probability of its tokens' labels.
    pub score: f32,
    /// Its text as the tokenizer joins its tokens.
    pub word: String,
    /// First character, counted in Unicode scalar values of the text.
    pub start: usize,
    /// One past its last character.
    pub end: usize,
}

/// The answer for one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tagged {
    /// The entities, in text order.
    pub entities: Vec<Entity>,
    /// True when the text was cut to the token limit (what was cut is not tagged).
    pub truncated: bool,
    /// Number of tokens the model saw, special tokens included.
    pub tokens: usize,
}

/// `B`/`I` and the tag of a label, as the pipeline's `get_tag`.
fn split_tag(label: &str) -> (bool, &str) {
    match label.split_once('-') {
        Some(("B", tag)) => (true, tag),
        Some(("I", tag)) => (false, tag),
        _ => (false, label),
    }
}

/// One token's choice.
struct Token {
    label: usize,
    score: f32,
    piece: String,
    start: usize,
    end: usize,
}

/// Groups one text's per-token `logits` (`[tokens, labels]`, row-major) into entities.
pub(crate) fn group(
    labels: &[String],
    detail: &TokenDetail,
    logits: &[f32],
    tokenizer: &TextTokenizer,
    text: &str,
) -> Result<Vec<Entity>> {
    let unk = tokenizer.unk_id();
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    for (i, row) in logits.chunks_exact(labels.len()).enumerate() {
        if detail.special.get(i).copied().unwrap_or(true) {
            continue;
        }
        let scores = crate::classify::softmax(row);
        let (label, score) = crate::classify::argmax(&scores);
        let (start, end) = detail.offsets[i];
        let piece = match unk {
            Some(unk) if detail.tokens.ids[i] == i64::from(unk) => chars
                [start.min(chars.len())..end.min(chars.len())]
                .iter()
                .collect(),
            _ => detail.pieces[i].clone(),
        };
        tokens.push(Token {
            label,
            score,
            piece,
            start,
            end,
        });
    }
    let mut entities = Vec::new();
    let mut run: Vec<Token> = Vec::new();
    for token in tokens {
        if let Some(last) = run.last() {
            let (begins, tag) = split_tag(&labels[token.label]);
            let (_, last_tag) = split_tag(&labels[last.label]);
            if tag != last_tag || begins {
                entities.extend(entity(labels, &std::mem::take(&mut run), tokenizer)?);
            }
        }
        run.push(token);
    }
    entities.extend(entity(labels, &run, tokenizer)?);
    Ok(entities)
}

/// The entity of a run of tokens, unless it is `O` (or empty).
fn entity(labels: &[String], run: &[Token], tokenizer: &TextTokenizer) -> Result<Option<Entity>> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(None);
    };
    let name = &labels[first.label];
    let group = name.split_once('-').map_or(name.as_str(), |(_, tag)| tag);
    if group == "O" {
        return Ok(None);
    }
    let pieces: Vec<String> = run.iter().map(|t| t.piece.clone()).collect();
    Ok(Some(Entity {
        entity_group: group.to_string(),
        score: run.iter().map(|t| t.score).sum::<f32>() / run.len() as f32,
        word: tokenizer.join_pieces(&pieces)?,
        start: first.start,
        end: last.end,
    }))
}
