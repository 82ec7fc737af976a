//! Multivariate series from CSV: columns found by header name, values checked, an optional
//! date/time column kept to label forecasts.

use crate::error::{Error, Result};
use chrono::NaiveDateTime;
use std::path::Path;

/// Rows of the requested columns, in real units.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The requested columns, in the order asked for.
    pub columns: Vec<String>,
    /// `rows × columns.len()` values, row-major.
    pub values: Vec<f32>,
    /// Timestamps of the rows, when the file has a date/time column that parses throughout.
    pub times: Option<Vec<NaiveDateTime>>,
}

impl Series {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        if self.columns.is_empty() {
            0
        } else {
            self.values.len() / self.columns.len()
        }
    }

    /// Values of rows `[start, end)`, row-major.
    pub fn slice_rows(&self, start: usize, end: usize) -> &[f32] {
        let f = self.columns.len();
        &self.values[start * f..end * f]
    }

    /// The median spacing of the timestamps, in seconds.
    pub fn step_seconds(&self) -> Option<i64> {
        let times = self.times.as_ref()?;
        let mut steps: Vec<i64> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).num_seconds())
            .collect();
        if steps.is_empty() {
            return None;
        }
        steps.sort_unstable();
        Some(steps[steps.len() / 2]).filter(|&s| s > 0)
    }
}

/// `horizon` timestamps after `last`, `step_seconds` apart; `None` when they would leave the
/// calendar chrono can represent (the forecast is then labelled by step, `+1`, `+2` …).
pub fn continue_times(
    last: NaiveDateTime,
    step_seconds: i64,
    horizon: usize,
) -> Option<Vec<NaiveDateTime>> {
    (1..=i64::try_from(horizon).ok()?)
        .map(|i| {
            let seconds = step_seconds.checked_mul(i)?;
            last.checked_add_signed(chrono::TimeDelta::try_seconds(seconds)?)
        })
        .collect()
}

/// Header names recognised as the date/time column (case-insensitive).
const TIME_COLUMNS: &[&str] = &["date", "time", "datetime", "timestamp", "ds"];
const TIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// Parses a timestamp in one of the usual CSV forms (a bare date counts as midnight).
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    TIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// Reads `columns` from a CSV file with a header row.
pub fn read_csv(path: &Path, columns: &[String]) -> Result<Series> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
    parse_csv(file, columns, &path.display().to_string())
}

/// Where each requested column sits in a CSV header, and the time column if any.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    /// Field index of each requested column.
    pub fields: Vec<usize>,
    /// Field index of the date/time column.
    pub time: Option<usize>,
}

impl HeaderMap {
    /// Finds `columns` in `header` by name (any order; extra columns ignored).
    pub fn new(header: &csv::StringRecord, columns: &[String], name: &str) -> Result<HeaderMap> {
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        let mut fields = Vec::with_capacity(columns.len());
        for c in columns {
            let i = names.iter().position(|n| n == c).ok_or_else(|| {
                Error::BadInput(format!(
                    "{name}: column `{c}` not found (header has: {})",
                    names.join(", ")
                ))
            })?;
            fields.push(i);
        }
        let time = names
            .iter()
            .position(|n| TIME_COLUMNS.contains(&n.to_ascii_lowercase().as_str()));
        Ok(HeaderMap { fields, time })
    }

    /// Parses one record into `out` (one value per requested column), checking every value.
    pub fn parse_row(
        &self,
        record: &csv::StringRecord,
        columns: &[String],
        out: &mut Vec<f32>,
        where_: &dyn Fn() -> String,
    ) -> Result<()> {
        for (&field, column) in self.fields.iter().zip(columns) {
            let cell = record.get(field).ok_or_else(|| {
                Error::BadInput(format!(
                    "{}: missing column `{column}` (row too short)",
                    where_()
                ))
            })?;
            let v: f32 = cell.trim().parse().map_err(|_| {
                Error::BadInput(format!(
                    "{}, column `{column}`: `{cell}` is not a number",
                    where_()
                ))
            })?;
            if !v.is_finite() {
                return Err(Error::BadInput(format!(
                    "{}, column `{column}`: {v} is not a finite number",
                    where_()
                )));
            }
            out.push(v);
        }
        Ok(())
    }
}

/// [`read_csv`] on any reader; `name` names the source in errors.
pub fn parse_csv(reader: impl std::io::Read, columns: &[String], name: &str) -> Result<Series> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(crate::lines::LineLimit::new(
            reader,
            crate::lines::MAX_ROW_BYTES,
        ));
    let header = rdr
        .headers()
        .map_err(|e| Error::BadInput(format!("{name}: cannot read the header: {e}")))?
        .clone();
    let map = HeaderMap::new(&header, columns, name)?;
    let mut values = Vec::new();
    let mut times = map.time.map(|_| Vec::new());
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        let more = rdr
            .read_record(&mut record)
            .map_err(|e| Error::BadInput(format!("{name} data row {row}: {e}")))?;
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        map.parse_row(&record, columns, &mut values, &|| {
            format!("{name} line {line} (data row {row})")
        })?;
        if let (Some(t), Some(ts)) = (map.time, times.as_mut()) {
            match record.get(t).and_then(parse_time) {
                Some(time) => ts.push(time),
                None => times = None,
            }
        }
        row += 1;
    }
    Ok(Series {
        columns: columns.to_vec(),
        values,
        times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_columns_by_name_in_any_order_and_keeps_time() {
        let csv = "date,b,a,extra\n2024-01-01 00:00:00,1,2,x\n2024-01-01 01:00:00,3,4,y\n";
        let s = parse_csv(csv.as_bytes(), &cols(&["a", "b"]), "t").unwrap();
        assert_eq!(s.values, vec![2.0, 1.0, 4.0, 3.0]);
        assert_eq!(s.rows(), 2);
        assert_eq!(s.step_seconds(), Some(3600));
    }

    #[test]
    fn names_missing_column() {
        let err = parse_csv("a,b\n1,2\n".as_bytes(), &cols(&["a", "OT"]), "t.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`OT` not found") && err.contains("a, b"),
            "{err}"
        );
    }

    #[test]
    fn names_row_and_column_of_a_non_number() {
        let err = parse_csv("a,b\n1,2\n3,oops\n".as_bytes(), &cols(&["a", "b"]), "t.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3")
                && err.contains("data row 1")
                && err.contains("`b`")
                && err.contains("oops"),
            "{err}"
        );
    }

    #[test]
    fn refuses_nan_and_infinity() {
        for bad in ["NaN", "inf", "-inf"] {
            let csv = format!("a\n1\n{bad}\n");
            let err = parse_csv(csv.as_bytes(), &cols(&["a"]), "t")
                .unwrap_err()
                .to_string();
            assert!(err.contains("not a finite number"), "{bad}: {err}");
        }
    }
}
