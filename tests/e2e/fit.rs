//! `kinglet-export fit`: forecasters trained from a CSV with no Python.

use crate::cli::{kinglet, kinglet_export, run};
use crate::forecast::eval_json;
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
    let test = eval_json(&out, &csv, "11184..14400");
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

#[test]
fn the_shipped_stock_model_is_refitted_from_its_card_and_eval_shows_it_beside_naive() {
    let root = crate::shared::repo_root();
    let csv = root.join("examples/stocks/ibm.csv");
    let shipped = root.join("models/stock-ibm.kinglet");
    let v = eval_json(&shipped, &csv, "2617..3270");
    let b = &v["baselines"];
    assert_eq!(v["windows"], 619);
    assert_eq!(b["season_from"], "business_daily");
    let (mase, naive, seasonal) = (
        v["mase"].as_f64().unwrap(),
        b["naive"]["mase"].as_f64().unwrap(),
        b["seasonal_naive"]["mase"].as_f64().unwrap(),
    );
    // the card's numbers
    assert!(
        (mase - 0.9680).abs() < 5e-4 && (naive - 0.9674).abs() < 5e-4,
        "{v}"
    );
    assert!((seasonal - 1.3175).abs() < 5e-4, "{v}");
    // forecasts continue on business days: 2013-03-01 was a Friday
    let r = run(kinglet()
        .args(["forecast", "--json", "--model"])
        .arg(&shipped)
        .arg("--csv")
        .arg(&csv));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(f["times"][0], "2013-03-04 00:00:00", "{f}");
    assert_eq!(f["times"][4], "2013-03-08 00:00:00", "{f}");
    // the card's command makes the same model
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("stock-ibm.kinglet");
    fit_json(
        &csv,
        &out,
        &[
            "--columns",
            "open,high,low,close,volume",
            "--target",
            "close",
            "--lookback",
            "30",
            "--horizon",
            "5",
            "--family",
            "nlinear",
            "--train",
            "0..2290",
            "--valid",
            "2290..2617",
        ],
    );
    // (the same forecasts: f32 folding probes the graph with this CPU's kernels, so the bytes
    // may differ in the last bits between architectures)
    let columns = ["open", "high", "low", "close", "volume"].map(String::from);
    let series = kinglet_runtime::series::read_csv(&csv, &columns).unwrap();
    let window = series.slice_rows(series.rows() - 30, series.rows());
    let forecast = |p: &Path| {
        let bundle = kinglet_runtime::Bundle::read(p).unwrap();
        let mut f = kinglet_runtime::Forecaster::from_bundle(&bundle).unwrap();
        f.forecast(window).unwrap().values
    };
    let (a, b) = (forecast(&out), forecast(&shipped));
    let dev = kinglet_runtime::verify::max_deviation(&a, &b);
    assert!(dev <= 1e-3, "refitted {a:?} vs shipped {b:?}");
}
