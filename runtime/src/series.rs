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
    /// Why a date/time column was found but not used (a cell no format reads), to be shown
    /// as a warning: forecasts are then labelled by step.
    pub time_problem: Option<String>,
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

    /// `horizon` timestamps after the last row, `step_seconds` apart (else the rows' median
    /// step), on `calendar` (else the one [`Calendar::detect`] sees in the rows); `None` without
    /// times.
    pub fn continue_after(
        &self,
        step_seconds: Option<i64>,
        horizon: usize,
        calendar: Option<Calendar>,
    ) -> Option<Vec<NaiveDateTime>> {
        let times = self.times.as_ref()?;
        let step = step_seconds.or_else(|| self.step_seconds())?;
        let calendar = calendar.unwrap_or_else(|| Calendar::detect(times, step));
        continue_times(*times.last()?, step, horizon, calendar)
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

/// How forecast timestamps continue after the last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// One step after another (sensor logs, crypto markets).
    AllDays,
    /// Steps that land on a Saturday or Sunday move to Monday (stock markets).
    BusinessDays,
}

impl Calendar {
    /// [`Calendar::BusinessDays`] when the rows are daily, span at least two weeks and none
    /// falls on a weekend; else [`Calendar::AllDays`].
    pub fn detect(times: &[NaiveDateTime], step_seconds: i64) -> Calendar {
        let span_days = match (times.first(), times.last()) {
            (Some(a), Some(b)) => (*b - *a).num_days(),
            _ => 0,
        };
        let weekend = times.iter().any(|&t| is_weekend(t));
        Calendar::of_history(step_seconds, span_days, weekend)
    }

    /// [`Calendar::detect`]'s rule from a summary of the history (a stream keeps only that).
    pub fn of_history(step_seconds: i64, span_days: i64, weekend_seen: bool) -> Calendar {
        if step_seconds == 86_400 && span_days >= 14 && !weekend_seen {
            Calendar::BusinessDays
        } else {
            Calendar::AllDays
        }
    }
}

/// True on Saturdays and Sundays.
pub fn is_weekend(t: NaiveDateTime) -> bool {
    use chrono::Datelike;
    matches!(t.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
}

/// `horizon` timestamps after `last`, `step_seconds` apart (skipping weekends on a
/// [`Calendar::BusinessDays`] calendar); `None` when they would leave the calendar chrono can
/// represent (the forecast is then labelled by step, `+1`, `+2` …).
pub fn continue_times(
    last: NaiveDateTime,
    step_seconds: i64,
    horizon: usize,
    calendar: Calendar,
) -> Option<Vec<NaiveDateTime>> {
    let step = chrono::TimeDelta::try_seconds(step_seconds)?;
    let day = chrono::TimeDelta::days(1);
    let mut t = last;
    (0..horizon)
        .map(|_| {
            t = t.checked_add_signed(step)?;
            while calendar == Calendar::BusinessDays && is_weekend(t) {
                t = t.checked_add_signed(day)?;
            }
            Some(t)
        })
        .collect()
}

/// Header names recognised as the date/time column (case-insensitive).
const TIME_COLUMNS: &[&str] = &["date", "time", "datetime", "timestamp", "ds"];
const TIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
];
const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%Y%m%d"];

/// The forms [`parse_time`] reads, for messages.
pub const TIME_FORMS: &str = "YYYY-MM-DD[ HH:MM[:SS]], RFC 3339 (2024-01-02T03:04:05Z, \
                              +01:00), YYYY/MM/DD, MM/DD/YYYY, epoch seconds or milliseconds";

/// Parses a timestamp in one of the usual CSV forms (a bare date counts as midnight): see
/// [`TIME_FORMS`]. RFC 3339 times keep the wall-clock time they were written in; epoch
/// numbers (10 digits: seconds, 13: milliseconds) are UTC.
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() != 8 {
        let n: i64 = s.parse().ok()?;
        return match s.len() {
            9..=11 => chrono::DateTime::from_timestamp(n, 0),
            12..=14 => chrono::DateTime::from_timestamp_millis(n),
            _ => None,
        }
        .map(|t| t.naive_utc());
    }
    TIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z"))
                .ok()
                .map(|t| t.naive_local())
        })
        .or_else(|| {
            DATE_FORMATS
                .iter()
                .find_map(|f| chrono::NaiveDate::parse_from_str(s, f).ok())
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
            crate::lines::CrlfAsLf::new(std::io::BufReader::new(reader)),
            crate::lines::MAX_ROW_BYTES,
        ));
    let header = rdr
        .headers()
        .map_err(|e| Error::BadInput(format!("{name}: cannot read the header: {e}")))?
        .clone();
    let map = HeaderMap::new(&header, columns, name)?;
    let mut time_problem = None;
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
                None => {
                    time_problem = Some(format!(
                        "{name}: column `{}` looks like times, but `{}` on line {line} is not a \
                         time kinglet reads ({TIME_FORMS}); forecasts are labelled by step",
                        header.get(t).unwrap_or("").trim(),
                        record.get(t).unwrap_or("").trim(),
                    ));
                    times = None;
                }
            }
        }
        row += 1;
    }
    Ok(Series {
        columns: columns.to_vec(),
        values,
        times,
        time_problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

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
    fn times_in_the_forms_people_write_them() {
        let at = |y, mo, d, h, mi, se| {
            chrono::NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, se)
                .unwrap()
        };
        for (text, want) in [
            ("2024-01-02 03:04:05", at(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05Z", at(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05+01:00", at(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02T03:04:05.250-05:00", at(2024, 1, 2, 3, 4, 5)),
            ("2024-01-02 03:04:05.5", at(2024, 1, 2, 3, 4, 5)),
            ("2024/01/02", at(2024, 1, 2, 0, 0, 0)),
            ("2024/01/02 03:04", at(2024, 1, 2, 3, 4, 0)),
            ("01/02/2024", at(2024, 1, 2, 0, 0, 0)),
            ("20240102", at(2024, 1, 2, 0, 0, 0)),
            ("1704164645", at(2024, 1, 2, 3, 4, 5)),
            ("1704164645000", at(2024, 1, 2, 3, 4, 5)),
        ] {
            assert_eq!(
                parse_time(text).map(|t| t.with_nanosecond(0).unwrap()),
                Some(want),
                "{text}"
            );
        }
        for text in ["", "13/45/2024", "yesterday", "12", "2024-02-30"] {
            assert_eq!(parse_time(text), None, "{text}");
        }
    }

    #[test]
    fn a_time_column_that_does_not_parse_is_reported_not_dropped_silently() {
        let csv = "date,a\n2024-01-01,1\n2024-01-02,2\nsoon,3\n";
        let s = parse_csv(csv.as_bytes(), &cols(&["a"]), "t.csv").unwrap();
        assert_eq!(s.times, None);
        let problem = s.time_problem.unwrap();
        assert!(
            problem.contains("`soon` on line 4") && problem.contains("`date`"),
            "{problem}"
        );
    }

    #[test]
    fn a_crlf_file_names_the_same_line_as_an_lf_file() {
        for text in ["a,b\n1,2\n3,oops\n", "a,b\r\n1,2\r\n3,oops\r\n"] {
            let err = parse_csv(text.as_bytes(), &cols(&["a", "b"]), "t.csv").unwrap_err();
            assert!(err.to_string().contains("line 3 (data row 1)"), "{err}");
        }
    }

    #[test]
    fn daily_rows_without_weekends_continue_on_business_days() {
        let day = |d| {
            chrono::NaiveDate::from_ymd_opt(2024, 1, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        // 2024-01-01 is a Monday: three weeks of weekdays
        let trading: Vec<_> = (1..=19)
            .map(day)
            .filter(|t| t.weekday().number_from_monday() <= 5)
            .collect();
        assert_eq!(Calendar::detect(&trading, 86_400), Calendar::BusinessDays);
        let all: Vec<_> = (1..=19).map(day).collect();
        assert_eq!(Calendar::detect(&all, 86_400), Calendar::AllDays);
        assert_eq!(Calendar::detect(&trading, 3600), Calendar::AllDays);
        // after Friday the 19th: Mon 22, Tue 23, Wed 24 …
        let next = continue_times(day(19), 86_400, 3, Calendar::BusinessDays).unwrap();
        assert_eq!(next, vec![day(22), day(23), day(24)]);
        let next = continue_times(day(19), 86_400, 2, Calendar::AllDays).unwrap();
        assert_eq!(next, vec![day(20), day(21)]);
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
