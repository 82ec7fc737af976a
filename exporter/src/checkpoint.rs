//! A Hugging Face checkpoint directory: config.json, weights and tokenizer.
//!
//! Reads what every architecture shares (architecture name, labels, problem type) and the
//! tokenizer, either tokenizer.json as is or a BERT WordPiece tokenizer rebuilt from vocab.txt
//! and tokenizer_config.json.

use crate::error::{ExportError, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The architecture-independent part of an HF `config.json` (`PretrainedConfig`).
#[derive(Debug, Clone, Deserialize)]
pub struct PretrainedConfig {
    /// e.g. `["BertForSequenceClassification"]`
    #[serde(default)]
    pub architectures: Vec<String>,
    /// e.g. `bert`, `distilbert`, `roberta`
    #[serde(default)]
    pub model_type: String,
    /// Label names by index (keys are decimal strings in the JSON).
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
    /// Number of labels when `id2label` is absent.
    #[serde(default)]
    pub num_labels: Option<usize>,
    /// `single_label_classification`, `multi_label_classification` or `regression`.
    #[serde(default)]
    pub problem_type: Option<String>,
}

/// A checkpoint directory with its config parsed.
pub struct Checkpoint {
    /// The directory.
    pub dir: PathBuf,
    /// config.json as raw JSON, for the architecture-specific parsers.
    pub config_json: serde_json::Value,
    /// The shared part of config.json.
    pub config: PretrainedConfig,
}

impl Checkpoint {
    /// Opens a checkpoint directory and parses its config.json.
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        if !dir.is_dir() {
            return Err(ExportError::Missing {
                path: dir.to_owned(),
                what: "not a directory".into(),
            });
        }
        let path = dir.join("config.json");
        if !path.exists() {
            return Err(ExportError::Missing {
                path,
                what: "every Hugging Face checkpoint has a config.json".into(),
            });
        }
        let text = std::fs::read(&path).map_err(ExportError::io(&path))?;
        let config_json: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| ExportError::BadFile {
                path: path.clone(),
                reason: format!("invalid JSON: {e}"),
            })?;
        let config: PretrainedConfig =
            serde_json::from_value(config_json.clone()).map_err(|e| ExportError::BadFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Checkpoint {
            dir: dir.to_owned(),
            config_json,
            config,
        })
    }

    /// Parses config.json into an architecture's own `Config`.
    pub fn arch_config<C: for<'de> Deserialize<'de>>(&self) -> Result<C> {
        serde_json::from_value(self.config_json.clone()).map_err(|e| ExportError::BadFile {
            path: self.dir.join("config.json"),
            reason: e.to_string(),
        })
    }

    /// The architecture named in config.json.
    pub fn architecture(&self) -> Result<&str> {
        self.config
            .architectures
            .first()
            .map(|s| s.as_str())
            .ok_or_else(|| ExportError::BadFile {
                path: self.dir.join("config.json"),
                reason: "no `architectures` entry".into(),
            })
    }

    /// Label names in index order.
    pub fn labels(&self) -> Result<Vec<String>> {
        let bad = |reason: String| ExportError::BadFile {
            path: self.dir.join("config.json"),
            reason,
        };
        if self.config.id2label.is_empty() {
            let n = self.config.num_labels.unwrap_or(2);
            return Ok((0..n).map(|i| format!("LABEL_{i}")).collect());
        }
        let mut pairs = Vec::new();
        for (k, v) in &self.config.id2label {
            let i: usize = k
                .parse()
                .map_err(|_| bad(format!("id2label key `{k}` is not an index")))?;
            pairs.push((i, v.clone()));
        }
        pairs.sort();
        if pairs.iter().enumerate().any(|(pos, (i, _))| pos != *i) {
            return Err(bad("id2label indices are not 0..n".into()));
        }
        Ok(pairs.into_iter().map(|(_, v)| v).collect())
    }

    /// True for multi-label classifiers (sigmoid per label).
    pub fn multi_label(&self) -> Result<bool> {
        match self.config.problem_type.as_deref() {
            None | Some("single_label_classification") => Ok(false),
            Some("multi_label_classification") => Ok(true),
            Some(other) => Err(ExportError::Unsupported(format!(
                "problem_type `{other}` (kinglet exports single- and multi-label classifiers)"
            ))),
        }
    }

    /// tokenizer.json bytes: the checkpoint's own, or one built from vocab.txt.
    pub fn tokenizer_json(&self) -> Result<Vec<u8>> {
        let json_path = self.dir.join("tokenizer.json");
        let tokenizer = if json_path.exists() {
            let bytes = std::fs::read(&json_path).map_err(ExportError::io(&json_path))?;
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| ExportError::BadFile {
                path: json_path.clone(),
                reason: format!("not a valid tokenizer: {e}"),
            })?
        } else {
            self.wordpiece_from_vocab()?
        };
        tokenizer
            .to_string(false)
            .map(String::into_bytes)
            .map_err(|e| ExportError::BadFile {
                path: json_path,
                reason: e.to_string(),
            })
    }

    fn wordpiece_from_vocab(&self) -> Result<tokenizers::Tokenizer> {
        use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
        use tokenizers::models::wordpiece::WordPiece;
        use tokenizers::normalizers::BertNormalizer;
        use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
        use tokenizers::processors::bert::BertProcessing;

        let vocab_path = self.dir.join("vocab.txt");
        if !vocab_path.exists() {
            return Err(ExportError::Missing {
                path: self.dir.join("tokenizer.json"),
                what: "no tokenizer.json, and no vocab.txt to build one from".into(),
            });
        }
        let tc = TokenizerConfig::read(&self.dir)?;
        let bad = |reason: String| ExportError::BadFile {
            path: vocab_path.clone(),
            reason,
        };
        let wordpiece = WordPiece::from_file(&vocab_path.to_string_lossy())
            .unk_token(tc.unk_token.clone())
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let id_of = |token: &str| {
            tokenizers::Model::token_to_id(&wordpiece, token)
                .ok_or_else(|| bad(format!("special token `{token}` is not in the vocabulary")))
        };
        let (cls_id, sep_id) = (id_of(&tc.cls_token)?, id_of(&tc.sep_token)?);
        id_of(&tc.unk_token)?;
        let mut tokenizer = tokenizers::Tokenizer::new(wordpiece);
        let strip_accents = tc.strip_accents;
        tokenizer.with_normalizer(Some(BertNormalizer::new(
            true,
            tc.tokenize_chinese_chars,
            strip_accents,
            tc.do_lower_case,
        )));
        tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
        tokenizer.with_post_processor(Some(BertProcessing::new(
            (tc.sep_token, sep_id),
            (tc.cls_token, cls_id),
        )));
        tokenizer.with_decoder(Some(WordPieceDecoder::default()));
        Ok(tokenizer)
    }
}

/// The fields of `tokenizer_config.json` a WordPiece tokenizer needs (HF `BertTokenizer`).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenizerConfig {
    /// Lower-case input before WordPiece.
    #[serde(default = "yes")]
    pub do_lower_case: bool,
    /// Strip accents; HF default follows `do_lower_case` when unset.
    #[serde(default)]
    pub strip_accents: Option<bool>,
    /// Split CJK characters into single tokens.
    #[serde(default = "yes")]
    pub tokenize_chinese_chars: bool,
    /// Unknown token.
    #[serde(default = "unk")]
    pub unk_token: String,
    /// Classification token.
    #[serde(default = "cls")]
    pub cls_token: String,
    /// Separator token.
    #[serde(default = "sep")]
    pub sep_token: String,
}

fn yes() -> bool {
    true
}
fn unk() -> String {
    "[UNK]".into()
}
fn cls() -> String {
    "[CLS]".into()
}
fn sep() -> String {
    "[SEP]".into()
}

impl TokenizerConfig {
    /// Reads tokenizer_config.json, or HF's defaults when the file is absent.
    pub fn read(dir: &Path) -> Result<TokenizerConfig> {
        let path = dir.join("tokenizer_config.json");
        let text = if path.exists() {
            std::fs::read(&path).map_err(ExportError::io(&path))?
        } else {
            b"{}".to_vec()
        };
        serde_json::from_slice(&text).map_err(|e| ExportError::BadFile {
            path,
            reason: e.to_string(),
        })
    }
}

/// What a user with an `architecture` kinglet does not export can do instead.
pub fn instead_of(architecture: &str) -> String {
    let family = architecture
        .find("For")
        .map_or(architecture, |i| &architecture[..i]);
    let task = architecture.find("For").map(|i| &architecture[i..]);
    match (family, task) {
        (_, Some("ForSequenceClassification")) => format!(
            "{family} layers are not built by kinglet yet: fine-tune a BERT, DistilBERT, \
             RoBERTa, ELECTRA or ALBERT checkpoint (for instance distilbert-base-uncased, or xlm-roberta-base for \
             other languages) on the same data with AutoModelForSequenceClassification"
        ),
        (_, Some("ForTokenClassification")) => format!(
            "{family} token classification (NER) is not exported yet: kinglet exports BERT, \
             DistilBERT, RoBERTa, XLM-RoBERTa, CamemBERT and ELECTRA token classifiers \
             (AutoModelForTokenClassification)"
        ),
        (_, None) if family.ends_with("Model") => format!(
            "`{architecture}` is an encoder without a task head and without a \
             sentence-transformers pooling config: for sentence embeddings, export the folder \
             SentenceTransformer.save writes (modules.json, 1_Pooling/config.json beside the \
             checkpoint); to classify, fine-tune it with AutoModelForSequenceClassification"
        ),
        _ => "kinglet exports sequence classifiers: load and fine-tune the checkpoint with \
              AutoModelForSequenceClassification"
            .into(),
    }
}
