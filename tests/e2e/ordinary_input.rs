//! Ordinary input that once aborted kinglet: a reader that goes away, endless lines, dates at
//! the end of the calendar, a text that tokenizes to one token per byte.

use crate::cli::{kinglet, run, Run};
use crate::shared::{repo_root, shipped_sentiment};
use std::path::PathBuf;
use std::process::Stdio;

fn dlinear() -> PathBuf {
    repo_root().join("models/etth1-dlinear.kinglet")
}

/// Runs `cmd` with its standard output closed by the reader before anything is written.
fn into_closed_pipe(cmd: &mut std::process::Command) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap().into()
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_success() {
    let model = shipped_sentiment();
    for args in [
        &["inspect", "--model"][..],
        &["verify", "--model"][..],
        &["classify", "a fine film", "--model"][..],
    ] {
        let r = into_closed_pipe(kinglet().args(args).arg(&model));
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
    }
    let r = into_closed_pipe(
        kinglet()
            .args(["forecast", "--model"])
            .arg(dlinear())
            .arg("--csv")
            .arg(repo_root().join("tests/fixtures/forecast/etth1_tail.csv")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn endless_input_is_refused_after_one_line_bound() {
    let zero = || Stdio::from(std::fs::File::open("/dev/zero").unwrap());
    let model = shipped_sentiment();
    run(kinglet()
        .args(["classify", "--input", "/dev/zero", "--model"])
        .arg(&model))
    .assert_clean_error(4, &["/dev/zero line 1 is longer than 16384 bytes"]);
    run(kinglet()
        .args(["classify", "-", "--model"])
        .arg(&model)
        .stdin(zero()))
    .assert_clean_error(4, &["standard input line 1 is longer than 16384 bytes"]);
    run(kinglet()
        .args(["eval", "--tsv", "/dev/zero", "--model"])
        .arg(&model))
    .assert_clean_error(4, &["/dev/zero", "longer than"]);
    run(kinglet()
        .args(["bench", "--input", "/dev/zero", "--model"])
        .arg(&model))
    .assert_clean_error(4, &["/dev/zero", "longer than"]);
    run(kinglet()
        .args(["forecast", "--csv", "/dev/zero", "--model"])
        .arg(dlinear()))
    .assert_clean_error(4, &["/dev/zero", "longer than"]);
    run(kinglet()
        .args(["forecast", "--follow", "--model"])
        .arg(dlinear())
        .stdin(zero()))
    .assert_clean_error(4, &["standard input", "longer than"]);
}

#[test]
fn a_forecast_past_the_end_of_the_calendar_is_labelled_by_step() {
    // ETTh1's last rows, moved to the last year chrono represents: the next hours do not exist
    let tail = std::fs::read_to_string(repo_root().join("tests/fixtures/forecast/etth1_tail.csv"))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("late.csv");
    // the last row four hours before the end: the fifth forecast hour does not exist
    let rows: Vec<&str> = tail.lines().collect();
    let mut late = vec![rows[0].to_string()];
    for (i, row) in rows[1..].iter().enumerate() {
        let hours_before_last = rows.len() - 2 - i;
        let (day, hour) = (
            31 - hours_before_last / 24,
            20 - (hours_before_last % 24) as i64,
        );
        let (day, hour) = if hour < 0 {
            (day - 1, hour + 24)
        } else {
            (day, hour)
        };
        let values = row.split_once(',').unwrap().1;
        late.push(format!("+262142-12-{day:02} {hour:02}:00:00,{values}"));
    }
    std::fs::write(&csv, late.join("\n")).unwrap();
    let r = run(kinglet()
        .args(["forecast", "--model"])
        .arg(dlinear())
        .arg("--csv")
        .arg(&csv));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("step"), "{}", r.stdout);
    assert!(r.stdout.contains("\n+1 "), "{}", r.stdout);
    // the same rows in 2018 get timestamps
    let r = run(kinglet()
        .args(["forecast", "--model"])
        .arg(dlinear())
        .arg("--csv")
        .arg(repo_root().join("tests/fixtures/forecast/etth1_tail.csv")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("time"), "{}", r.stdout);
}

#[test]
fn a_text_of_punctuation_at_the_byte_limit_fits_the_arena_and_the_file_goes_on() {
    // one token per byte before truncation: the most the tokenizer holds for one request
    let marks = "!?.,;:\"'()[]{}<>/\\|@#$%^&*-+=~`";
    let punctuation = marks.repeat(16 * 1024 / marks.len());
    assert!(punctuation.len() <= 16 * 1024);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input.txt");
    std::fs::write(
        &input,
        format!("{punctuation}\na fine film\n{}\n", "?".repeat(16 * 1024)),
    )
    .unwrap();
    let r = run(kinglet()
        .args(["classify", "--json", "--model"])
        .arg(shipped_sentiment())
        .arg("--input")
        .arg(&input));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = r.json_lines();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    for line in &lines {
        assert!(line.get("error").is_none(), "{line}");
        assert!(line["label"].is_string(), "{line}");
    }
    assert_eq!(lines[1]["label"], "positive");
}
