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

use crate::error::Result;
use crate::tokenize::{TextTokenizer, TokenDetail};

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
        let (label, score) =
            scores
                .iter()
                .copied()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (j, s)| {
                    if s > best.1 {
                        (j, s)
                    } else {
                        best
                    }
                });
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
