//! Text to token ids, truncated the way Hugging Face does (`truncation=True, max_length=N`).

use crate::error::{Error, Result};
use tokenizers::{Tokenizer, TruncationParams};

/// A tokenizer loaded from a bundle's tokenizer.json, with padding off.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_tokens: usize,
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
    /// True when the text was longer than the limit and was cut.
    pub truncated: bool,
}

impl TextTokenizer {
    /// Parses tokenizer.json bytes.
    pub fn from_bytes(json: &[u8]) -> Result<TextTokenizer> {
        let mut inner = Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextTokenizer {
            inner,
            max_tokens: 0,
        })
    }

    /// The largest id the tokenizer can emit (its vocabulary and added tokens).
    pub fn max_id(&self) -> Option<usize> {
        let added = self.inner.get_added_tokens_decoder().keys().copied().max();
        let vocab = self.inner.get_vocab(false).values().copied().max();
        added.max(vocab).map(|id| id as usize)
    }

    /// Tokenizes `text` with special tokens, truncating to `max_tokens` tokens in total.
    pub fn encode(&mut self, text: &str, max_tokens: usize) -> Result<Tokens> {
        if self.max_tokens != max_tokens {
            let params = TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            };
            self.inner
                .with_truncation(Some(params))
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            self.max_tokens = max_tokens;
        }
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Tokens {
            ids: encoding.get_ids().iter().map(|&id| id as i64).collect(),
            truncated: !encoding.get_overflowing().is_empty(),
        })
    }
}
