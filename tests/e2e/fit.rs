//! `kinglet-export fit`: forecasters trained from a CSV with no Python.

use crate::cli::{kinglet, kinglet_export, run};
use crate::require_shared;
use std::path::Path;

fn fit_json(csv: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let r = run(kinglet_export()
        .args(["--json", "fit"])
        .arg(csv)
        .arg("-o")
        .arg(out)
        .args(args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

const ETTH1_COLUMNS: &str = "HUFL,HULL,MUFL,MULL,LUFL,LULL,OT";

#[test]
fn fit_dlinear_on_etth1_matches_the_paper_on_the_test_rows() {
    let shared = require_shared!("fit_dlinear_on_etth1_matches_the_paper_on_the_test_rows");
    if !crate::cli::runner().is_empty() {
        eprintln!("note: the ETTh1 fit runs natively only (one least-squares pass, 6 GFLOP)");
        return;
    }
    let csv = shared.join("data/etth1/ETTh1.csv");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dlinear.kinglet");
    let v = fit_json(
        &csv,
        &out,
        &[
            "--columns",
            ETTH1_COLUMNS,
            "--lookback",
            "336",
            "--horizon",
            "96",
            "--train",
            "0..8640",
            "--valid",
            "8640..11520",
        ],
    );
    eprintln!("fit: {}", v["fit"]);
    assert_eq!(v["fit"]["family"], "dlinear");
    assert_eq!(v["fit"]["train_windows"], 8640 - 336 - 96 + 1);
    assert_eq!(v["architecture"], "fit-dlinear");
    // the validation report sits beside both baselines
    let valid = &v["validation"];
    assert!(
        valid["mse"].as_f64().unwrap()
            < valid["baselines"]["seasonal_naive"]["mse"]
                .as_f64()
                .unwrap()
    );
    let r = run(kinglet()
        .args(["eval", "--json", "--model"])
        .arg(&out)
        .arg("--csv")
        .arg(&csv)
        .args(["--rows", "11184..14400"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let test: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let mse = test["mse"].as_f64().unwrap();
    eprintln!("fitted DLinear on ETTh1 test rows: MSE {mse:.4}");
    assert!(mse <= 0.380, "test MSE {mse}");
    assert!(mse < test["baselines"]["seasonal_naive"]["mse"].as_f64().unwrap());
}

/// A small CSV: an hourly daily cycle plus a slow trend, two columns.
fn cycle_csv(dir: &Path, rows: usize) -> std::path::PathBuf {
    let mut text = String::from("time,load,temp\n");
    for r in 0..rows {
        let t = r as f64;
        let load = 10.0 + 3.0 * (t * std::f64::consts::TAU / 24.0).sin() + 0.01 * t;
        let temp = 20.0 + 2.0 * (t * std::f64::consts::TAU / 24.0 + 1.0).cos();
        let (d, h) = (r / 24, r % 24);
        text.push_str(&format!(
            "2024-01-{:02}T{h:02}:00:00Z,{load:.4},{temp:.4}\n",
            1 + d % 28
        ));
    }
    let path = dir.join("cycle.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_family_fits_a_small_csv_and_the_bundle_forecasts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = cycle_csv(tmp.path(), 600);
    for (family, extra) in [
        ("linear", &[][..]),
        ("nlinear", &["--individual"][..]),
        ("dlinear", &["--target", "load"][..]),
    ] {
        let out = tmp.path().join(format!("{family}.kinglet"));
        let mut args = vec![
            "--columns",
            "load,temp",
            "--lookback",
            "48",
            "--horizon",
            "6",
            "--family",
            family,
            "--moving-average",
            "5",
        ];
        args.extend(extra);
        let v = fit_json(&csv, &out, &args);
        assert_eq!(v["fit"]["family"], family);
        let valid = &v["validation"];
        assert!(
            valid["mse"].as_f64().unwrap()
                < 0.2 * valid["baselines"]["naive"]["mse"].as_f64().unwrap(),
            "{family}: {valid}"
        );
        let r = run(kinglet().args(["verify", "--model"]).arg(&out));
        assert_eq!(r.code, 0, "{family}: {}", r.stderr);
        let r = run(kinglet()
            .args(["forecast", "--json", "--model"])
            .arg(&out)
            .arg("--csv")
            .arg(&csv));
        assert_eq!(r.code, 0, "{family}: {}", r.stderr);
        assert!(
            r.stdout.contains("\"2024-01-26 00:00:00\""),
            "{family}: {}",
            r.stdout
        );
    }
}

#[test]
fn fit_refuses_ranges_past_the_file_and_unknown_columns_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = cycle_csv(tmp.path(), 200);
    let out = tmp.path().join("m.kinglet");
    for (args, code, says) in [
        (
            &["--columns", "load", "--train", "0..500"][..],
            4,
            "200 data rows",
        ),
        (&["--columns", "watts"][..], 3, "watts"),
        (&["--columns", "load", "--train", "1.5"][..], 2, "fraction"),
    ] {
        let r = run(kinglet_export()
            .arg("fit")
            .arg(&csv)
            .arg("-o")
            .arg(&out)
            .args(["--lookback", "24", "--horizon", "4"])
            .args(args));
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!out.exists());
    }
}
