//! The CSV and TSV readers behind `forecast --csv`, `eval --csv` and `eval --tsv`: bounded
//! lines, headers, times, numbers. The first byte picks the reader.
//!
//! cd runtime/fuzz && cargo +nightly fuzz run tables corpus/tables -- -max_len=65536 \
//!     -rss_limit_mb=512 -timeout=10 -max_total_time=600
#![no_main]

use libfuzzer_sys::fuzz_target;

const COLUMNS: [&str; 7] = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    match mode % 3 {
        0 => {
            if let Ok(series) = kinglet_runtime::series::parse_csv(rest, &columns, "fuzz.csv") {
                let _ = series.step_seconds();
                let rows = series.rows();
                let _ = series.slice_rows(rows / 2, rows);
            }
        }
        1 => {
            let labels = vec!["negative".to_string(), "positive".to_string()];
            let _ = kinglet_runtime::dataset::parse_labeled_tsv(rest, &labels, "fuzz.tsv");
        }
        _ => {
            let _ = kinglet_runtime::lines::read_all(rest, 4096);
        }
    }
});
