//! Labeled text data: `text<TAB>label` rows, the label as an index or a name.

use crate::error::{Error, Result};
use std::path::Path;

/// One labeled row.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledText {
    /// 1-based line number in the file, for error messages.
    pub line: usize,
    /// The text.
    pub text: String,
    /// Index of the true label.
    pub label: usize,
}

/// Reads a TSV of `text<TAB>label` rows against a model's label names.
///
/// A first line whose label is neither an index nor a label name is a header and skipped. Any
/// later such line, a line without a tab, an empty text or non-UTF-8 bytes is an error naming
/// the line.
pub fn read_labeled_tsv(path: &Path, labels: &[String]) -> Result<Vec<LabeledText>> {
    let bytes = std::fs::File::open(path)
        .and_then(|file| crate::lines::read_all(file, crate::lines::MAX_ROW_BYTES))
        .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
    parse_labeled_tsv(&bytes, labels, &path.display().to_string())
}

/// [`read_labeled_tsv`] on bytes; `name` names the source in errors.
pub fn parse_labeled_tsv(bytes: &[u8], labels: &[String], name: &str) -> Result<Vec<LabeledText>> {
    let bad = |line: usize, what: String| Error::BadInput(format!("{name} line {line}: {what}"));
    let mut rows = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(raw).map_err(|_| bad(line, "not valid UTF-8".into()))?;
        let Some((sentence, label)) = text.rsplit_once('\t') else {
            return Err(bad(line, "expected `text<TAB>label`, found no tab".into()));
        };
        let label = label.trim();
        let index = label
            .parse::<usize>()
            .ok()
            .filter(|&i| i < labels.len())
            .or_else(|| labels.iter().position(|l| l == label));
        let Some(index) = index else {
            if line == 1 {
                continue; // header
            }
            return Err(bad(
                line,
                format!(
                    "label `{label}` is not one of {} (or an index below {})",
                    labels.join(", "),
                    labels.len()
                ),
            ));
        };
        if sentence.trim().is_empty() {
            return Err(bad(line, "empty text".into()));
        }
        rows.push(LabeledText {
            line,
            text: sentence.to_string(),
            label: index,
        });
    }
    if rows.is_empty() {
        return Err(Error::BadInput(format!("{name} has no labeled rows")));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["negative".into(), "positive".into()]
    }

    #[test]
    fn reads_indices_names_and_skips_header() {
        let rows = parse_labeled_tsv(
            b"sentence\tlabel\ngood film\t1\nbad\tnegative\r\n",
            &labels(),
            "t",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].line, rows[0].label, rows[0].text.as_str()),
            (2, 1, "good film")
        );
        assert_eq!(rows[1].label, 0);
    }

    #[test]
    fn names_the_line_of_an_unknown_label() {
        let err = parse_labeled_tsv(b"a\t1\nb\tneutral\n", &labels(), "t.tsv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.tsv line 2") && err.contains("neutral"),
            "{err}"
        );
    }

    #[test]
    fn names_the_line_of_a_row_without_tab() {
        let err = parse_labeled_tsv(b"a\t1\nno tab here\n", &labels(), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("no tab"), "{err}");
    }

    #[test]
    fn refuses_empty_file() {
        let err = parse_labeled_tsv(b"", &labels(), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no labeled rows"), "{err}");
    }
}
