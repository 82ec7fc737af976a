//! Text to token ids, truncated the way Hugging Face does (`truncation=True, max_length=N`).

use crate::error::{Error, Result};
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

mod precompiled;

/// A tokenizer loaded from a bundle's tokenizer.json, with padding off.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The truncation `inner` is set to.
    truncation: (usize, PairTruncation),
}

/// Which text of a pair is cut when the two are longer than the limit, as Transformers'
/// `truncation=` argument names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairTruncation {
    /// `longest_first` (what `truncation=True` means): a token off the longer text at a time.
    LongestFirst,
    /// `only_first`: the second text is kept whole (the zero-shot pipeline's hypothesis).
    OnlyFirst,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").finish_non_exhaustive()
    }
}

/// Token ids of one text, special tokens included.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Ids as the graph takes them.
    pub ids: Vec<i64>,
    /// Segment of every token: 0 for a single text and a pair's first, 1 for its second
    /// (BERT's `token_type_ids`; all 0 for tokenizers without segments, RoBERTa's).
    pub type_ids: Vec<i64>,
    /// True when the text was longer than the limit and was cut.
    pub truncated: bool,
}

impl TextTokenizer {
    /// Parses tokenizer.json bytes.
    pub fn from_bytes(json: &[u8]) -> Result<TextTokenizer> {
        // Parsed as plain JSON first: tokenizers panics on some malformed tokenizer.json
        // (a syntax error inside `decoder`, a `Precompiled` charsmap that does not parse, a
        // `TemplateProcessing` naming a token it does not define), and release builds abort on
        // panic. From a well-formed value those paths return errors or are checked here.
        let value: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
        check_json(&value)?;
        let json = serde_json::to_vec(&value).map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut inner =
            Tokenizer::from_bytes(&json).map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextTokenizer {
            inner,
            truncation: (0, PairTruncation::LongestFirst),
        })
    }

    /// The largest id the tokenizer can emit (its vocabulary and added tokens).
    pub fn max_id(&self) -> Option<usize> {
        let added = self.inner.get_added_tokens_decoder().keys().copied().max();
        let vocab = self.inner.get_vocab(false).values().copied().max();
        added.max(vocab).map(|id| id as usize)
    }

    /// The special tokens (`[SEP]`, `</s>`, `[CLS]` …) written literally in `text`, which the
    /// tokenizer turns into those tokens.
    pub fn special_tokens_in(&self, text: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .inner
            .get_added_tokens_decoder()
            .values()
            .filter(|t| t.special && !t.content.is_empty() && text.contains(&t.content))
            .map(|t| t.content.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Tokenizes `text` with special tokens, truncating to `max_tokens` tokens in total.
    pub fn encode(&mut self, text: &str, max_tokens: usize) -> Result<Tokens> {
        self.truncate_to(max_tokens, PairTruncation::LongestFirst)?;
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(tokens(&encoding))
    }

    /// Tokenizes a pair with the tokenizer's pair template (`[CLS] A [SEP] B [SEP]`,
    /// `<s> A </s></s> B </s>`), truncating to `max_tokens` tokens in total as `truncation`
    /// says (tokenizers' own rules).
    ///
    /// The texts are cut before the template joins them, and what is cut off is dropped:
    /// tokenizers would otherwise keep every cut-off window of one text paired with every
    /// window of the other (the 16 KiB preflight pair made 24 GB of them).
    pub fn encode_pair(
        &mut self,
        first: &str,
        second: &str,
        max_tokens: usize,
        truncation: PairTruncation,
    ) -> Result<Tokens> {
        let added = self
            .inner
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, true));
        if max_tokens < added + 2 {
            return Err(Error::BadInput(format!(
                "a sentence pair takes at least {} tokens with this tokenizer ({added} of them \
                 special), not {max_tokens}",
                added + 2
            )));
        }
        self.truncate_to(0, PairTruncation::LongestFirst)?;
        let raw = |text: &str| {
            self.inner
                .encode(text, false)
                .map_err(|e| Error::Tokenizer(e.to_string()))
        };
        let (first, second) = (raw(first)?, raw(second)?);
        let params = TruncationParams {
            max_length: max_tokens - added,
            strategy: strategy(truncation),
            ..Default::default()
        };
        let (mut first, second) =
            tokenizers::utils::truncation::truncate_encodings(first, Some(second), &params)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut second = second.ok_or_else(|| Error::Tokenizer("pair lost its second".into()))?;
        let truncated =
            !first.take_overflowing().is_empty() | !second.take_overflowing().is_empty();
        let encoding = self
            .inner
            .post_process(first, Some(second), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Tokens {
            truncated,
            ..tokens(&encoding)
        })
    }

    /// Sets the tokenizer's own truncation (none for `max_tokens` 0).
    fn truncate_to(&mut self, max_tokens: usize, truncation: PairTruncation) -> Result<()> {
        if self.truncation != (max_tokens, truncation) {
            let params = (max_tokens > 0).then(|| TruncationParams {
                max_length: max_tokens,
                strategy: strategy(truncation),
                ..Default::default()
            });
            self.inner
                .with_truncation(params)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            self.truncation = (max_tokens, truncation);
        }
        Ok(())
    }
}

fn strategy(truncation: PairTruncation) -> TruncationStrategy {
    match truncation {
        PairTruncation::LongestFirst => TruncationStrategy::LongestFirst,
        PairTruncation::OnlyFirst => TruncationStrategy::OnlyFirst,
    }
}

/// A text's tokens with what token classification reads besides the ids.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDetail {
    /// The ids, types and truncation, as [`TextTokenizer::encode`] gives them.
    pub tokens: Tokens,
    /// Each token's span in the text, in characters (Unicode scalar values), end exclusive.
    pub offsets: Vec<(usize, usize)>,
    /// True for the special tokens the template added (`[CLS]`, `[SEP]` …).
    pub special: Vec<bool>,
    /// Each token as the vocabulary spells it (`##ing`, `Ġthe`).
    pub pieces: Vec<String>,
}

impl TextTokenizer {
    /// [`TextTokenizer::encode`] with character offsets, the special-token mask and the token
    /// strings.
    pub fn encode_detailed(&mut self, text: &str, max_tokens: usize) -> Result<TokenDetail> {
        self.truncate_to(max_tokens, PairTruncation::LongestFirst)?;
        let encoding = self
            .inner
            .encode_char_offsets(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TokenDetail {
            tokens: tokens(&encoding),
            offsets: encoding.get_offsets().to_vec(),
            special: encoding
                .get_special_tokens_mask()
                .iter()
                .map(|&m| m != 0)
                .collect(),
            pieces: encoding.get_tokens().to_vec(),
        })
    }

    /// Token strings joined back into text by the tokenizer's decoder (`##` pieces glued,
    /// byte-level pieces decoded), as Transformers' `convert_tokens_to_string`; without a
    /// decoder, joined with spaces.
    pub fn join_pieces(&self, pieces: &[String]) -> Result<String> {
        match self.inner.get_decoder() {
            Some(decoder) => tokenizers::Decoder::decode(decoder, pieces.to_vec())
                .map_err(|e| Error::Tokenizer(e.to_string())),
            None => Ok(pieces.join(" ")),
        }
    }

    /// The id of the tokenizer's unknown token, when its model has one.
    pub fn unk_id(&self) -> Option<u32> {
        use tokenizers::models::ModelWrapper;
        let token = match self.inner.get_model() {
            ModelWrapper::WordPiece(m) => Some(m.unk_token.clone()),
            ModelWrapper::BPE(m) => m.unk_token.clone(),
            ModelWrapper::WordLevel(m) => Some(m.unk_token.clone()),
            // (its unk id is private): the names SentencePiece models use
            ModelWrapper::Unigram(_) => {
                return ["<unk>", "[UNK]"]
                    .iter()
                    .find_map(|t| self.inner.token_to_id(t))
            }
        }?;
        self.inner.token_to_id(&token)
    }
}

fn tokens(encoding: &tokenizers::Encoding) -> Tokens {
    let wide = |v: &[u32]| v.iter().map(|&id| id as i64).collect();
    Tokens {
        ids: wide(encoding.get_ids()),
        type_ids: wide(encoding.get_type_ids()),
        truncated: !encoding.get_overflowing().is_empty(),
    }
}

fn refused(what: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("tokenizer.json: {what}"))
}

/// What tokenizers would panic on instead of returning an error.
///
/// tokenizers picks a post-processor by its fields, not by its `type` (an untagged enum: serde
/// checks no tag), and reads a normalizer of an unknown `type` by its fields too, so a
/// `TemplateProcessing` named `"TemplateProcessin+"` is still one. Every object of those two
/// parts is therefore checked by what it holds, whatever its `type` says.
fn check_json(root: &serde_json::Value) -> Result<()> {
    for part in ["normalizer", "post_processor"] {
        if let Some(v) = root.get(part) {
            check_parts(v, 0)?;
        }
    }
    Ok(())
}

/// Levels of objects and arrays in a normalizer or post-processor; a `Sequence` of templates
/// takes 6, more than this is not a tokenizer anyone exported.
const MAX_NESTING: usize = 16;

fn check_parts(v: &serde_json::Value, depth: usize) -> Result<()> {
    if depth > MAX_NESTING {
        return Err(refused("normalizers or post-processors nest too deeply"));
    }
    match v {
        serde_json::Value::Array(items) => {
            for item in items {
                check_parts(item, depth + 1)?;
            }
        }
        serde_json::Value::Object(fields) => {
            if fields.contains_key("precompiled_charsmap") {
                check_precompiled(v)?;
            }
            if fields.contains_key("single") || fields.contains_key("pair") {
                check_template(v)?;
            }
            for (name, inner) in fields {
                if name != "precompiled_charsmap" {
                    check_parts(inner, depth + 1)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A `Precompiled` normalizer: its charsmap is read unchecked by spm_precompiled.
fn check_precompiled(n: &serde_json::Value) -> Result<()> {
    let charsmap = n
        .get("precompiled_charsmap")
        .and_then(|c| c.as_str())
        .ok_or_else(|| refused("Precompiled normalizer without a precompiled_charsmap string"))?;
    let bytes =
        base64::decode(charsmap).map_err(|e| refused(format!("Precompiled normalizer: {e}")))?;
    precompiled::check_charsmap(&bytes)
        .map_err(|e| refused(format!("Precompiled normalizer: {e}")))?;
    // as tokenizers reads it: from text (the charsmap is read as a borrowed string)
    serde_json::from_str::<tokenizers::normalizers::precompiled::Precompiled>(&n.to_string())
        .map_err(|e| refused(format!("Precompiled normalizer: {e}")))?;
    Ok(())
}

/// A `TemplateProcessing`: every special token a template names is defined, with as many ids
/// as tokens (tokenizers indexes both unchecked).
fn check_template(p: &serde_json::Value) -> Result<()> {
    let empty = serde_json::Map::new();
    let specials = p
        .get("special_tokens")
        .and_then(|v| v.as_object())
        .unwrap_or(&empty);
    for (name, token) in specials {
        let len = |k: &str| token.get(k).and_then(|v| v.as_array()).map(Vec::len);
        if len("ids") != len("tokens") {
            return Err(refused(format!(
                "TemplateProcessing special token `{name}` has {} ids and {} tokens",
                len("ids").unwrap_or(0),
                len("tokens").unwrap_or(0)
            )));
        }
    }
    for template in ["single", "pair"] {
        for piece in p
            .get(template)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let Some(id) = piece.pointer("/SpecialToken/id").and_then(|v| v.as_str()) else {
                continue;
            };
            if !specials.contains_key(id) {
                return Err(refused(format!(
                    "TemplateProcessing uses the special token {id:?}, which it does not define"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/hf/bert-f32/tokenizer.json"
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn load(v: &serde_json::Value) -> Result<TextTokenizer> {
        TextTokenizer::from_bytes(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn tokenizer_json_that_tokenizers_would_panic_on_is_an_error() {
        let mut t = fixture();
        assert!(load(&t).is_ok());
        t["normalizer"] =
            serde_json::json!({"type": "Precompiled", "precompiled_charsmap": "AAAA////"});
        assert!(load(&t).unwrap_err().to_string().contains("Precompiled"));
        let mut t = fixture();
        t["post_processor"] = serde_json::json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[NOPE]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {}
        });
        assert!(load(&t).unwrap_err().to_string().contains("[NOPE]"));
        // tokenizers reads post-processors by their fields, whatever `type` says (found by the
        // tokenizer fuzz target), and normalizers of an unknown type too
        t["post_processor"]["type"] = "TemplateProcessin+".into();
        assert!(load(&t).unwrap_err().to_string().contains("[NOPE]"));
        t["post_processor"] =
            serde_json::json!({"type": "Sequence", "processors": [t["post_processor"].clone()]});
        assert!(load(&t).unwrap_err().to_string().contains("[NOPE]"));
        let mut t = fixture();
        t["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": [{"type": "Precompiledx", "precompiled_charsmap": "AAAA////"}]});
        assert!(load(&t).unwrap_err().to_string().contains("Precompiled"));
        // a syntax error inside `decoder` (tokenizers' decoder helper panics on it)
        let mut text = serde_json::to_string(&fixture()).unwrap();
        let at = text.find("\"decoder\"").unwrap();
        text.insert(at + 12, '\u{1}');
        assert!(TextTokenizer::from_bytes(text.as_bytes()).is_err());
    }
}
