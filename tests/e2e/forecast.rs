//! Forecasters: ETTh1 metrics, PyTorch reference outputs, CSV handling, plots, streaming.

use crate::cli::{kinglet, kinglet_export, run, Run};
use crate::require_shared;
use crate::shared::repo_root;
use kinglet_exporter::forecast::{export_onnx_forecaster, ForecastExportOptions, Normalization};
use kinglet_exporter::quantize::Precision;
use kinglet_runtime::{Bundle, Forecaster};
use std::path::{Path, PathBuf};

fn shipped(name: &str) -> PathBuf {
    repo_root().join("models").join(name)
}

fn export(onnx: &Path, norm: &Path, channels_first: bool, out: &Path) {
    let options = ForecastExportOptions {
        norm: Normalization::from_norm_json(norm).unwrap(),
        channels_first,
        precision: Precision::F32,
        step_seconds: Some(3600),
        check: None,
        output: None,
    };
    export_onnx_forecaster(onnx, out, &options).unwrap();
}

/// Runs reference_io.json's normalized windows through a bundle; returns the max deviation.
fn reference_deviation(bundle: &Path, reference: &Path) -> (usize, f32) {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference).unwrap()).unwrap();
    let mut f = Forecaster::from_bundle(&Bundle::read(bundle).unwrap()).unwrap();
    let flat = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|x| match x.as_array() {
                Some(row) => row
                    .iter()
                    .map(|y| y.as_f64().unwrap() as f32)
                    .collect::<Vec<_>>(),
                None => vec![x.as_f64().unwrap() as f32],
            })
            .collect()
    };
    let inputs = reference["inputs"].as_array().unwrap();
    let outputs = reference["outputs"].as_array().unwrap();
    let mut max = 0f32;
    for (input, output) in inputs.iter().zip(outputs) {
        let got = f.run_normalized(&flat(input)).unwrap();
        max = max.max(kinglet_runtime::verify::max_deviation(&got, &flat(output)));
    }
    (inputs.len(), max)
}

fn check_reference(name: &str, bundle: &Path, reference: &Path) {
    let (n, dev) = reference_deviation(bundle, reference);
    eprintln!("{name}: {n} reference windows, max |Δ| vs PyTorch {dev:.2e}");
    assert!(n >= 6);
    assert!(dev <= 1e-4, "{name}: max |Δ| {dev}");
}

#[test]
fn dlinear_bundle_reproduces_pytorch_reference_outputs() {
    let shared = require_shared!("dlinear_bundle_reproduces_pytorch_reference_outputs");
    let r = shared.join("models/forecast/dlinear/reference_io.json");
    check_reference("dlinear", &shipped("etth1-dlinear.kinglet"), &r);
}

#[test]
fn lstm_bundle_reproduces_pytorch_reference_outputs() {
    let shared = require_shared!("lstm_bundle_reproduces_pytorch_reference_outputs");
    check_reference(
        "lstm",
        &shipped("etth1-lstm.kinglet"),
        &shared.join("models/forecast/lstm/reference_io.json"),
    );
}

#[test]
fn gru_export_reproduces_pytorch_reference_outputs() {
    let shared = require_shared!("gru_export_reproduces_pytorch_reference_outputs");
    let dir = shared.join("models/forecast/gru");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gru.kinglet");
    export(&dir.join("model.onnx"), &dir.join("norm.json"), false, &out);
    check_reference("gru", &out, &dir.join("reference_io.json"));
    // each of the two layers is one kinglet_gru (not tract's GruSeq or a per-step Scan)
    let ops = plan_ops(&out);
    assert!(ops.contains(&("KingletGru".to_string(), 2)), "{ops:?}");
    assert!(
        !ops.iter().any(|(o, _)| o == "GruSeq" || o == "Scan"),
        "{ops:?}"
    );
}

#[test]
fn conv1d_tcn_and_mlp_fixtures_reproduce_pytorch_outputs() {
    for (name, channels_first) in [("tcn", true), ("mlp", false)] {
        let dir = repo_root().join("tests/fixtures/forecast").join(name);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("m.kinglet");
        export(
            &dir.join("model.onnx"),
            &dir.join("norm.json"),
            channels_first,
            &out,
        );
        check_reference(name, &out, &dir.join("reference_io.json"));
    }
}

pub(crate) fn eval_json(bundle: &Path, csv: &Path, rows: &str) -> serde_json::Value {
    let r = run(kinglet()
        .arg("eval")
        .arg("--json")
        .arg("--model")
        .arg(bundle)
        .arg("--csv")
        .arg(csv)
        .args(["--rows", rows]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

#[test]
fn dlinear_eval_on_etth1_test_rows_matches_training_metrics() {
    let shared = require_shared!("dlinear_eval_on_etth1_test_rows_matches_training_metrics");
    let v = eval_json(
        &shipped("etth1-dlinear.kinglet"),
        &shared.join("data/etth1/ETTh1.csv"),
        "11184..14400",
    );
    eprintln!("dlinear eval: {v}");
    assert_eq!(v["windows"], 2785);
    assert!((v["mse"].as_f64().unwrap() - 0.3712).abs() <= 5e-4, "{v}");
    assert!((v["mae"].as_f64().unwrap() - 0.3930).abs() <= 5e-4, "{v}");
    assert!(v["per_target"]["OT"]["mse_raw"].as_f64().unwrap() > 0.0);
    // beside the baselines on the same 2,785 windows: DLinear beats both
    let b = &v["baselines"];
    assert_eq!(
        (b["season"].as_u64(), b["season_from"].as_str()),
        (Some(24), Some("hourly"))
    );
    assert_eq!(b["scale_rows"], serde_json::json!([0, 11184]));
    let naive = b["naive"]["mse"].as_f64().unwrap();
    let seasonal = b["seasonal_naive"]["mse"].as_f64().unwrap();
    assert!(
        (naive - 1.2944).abs() <= 5e-4 && (seasonal - 0.5122).abs() <= 5e-4,
        "{b}"
    );
    assert!(v["mse"].as_f64().unwrap() < seasonal.min(naive));
    assert!(v["mase"].as_f64().unwrap() < b["seasonal_naive"]["mase"].as_f64().unwrap());
}

#[test]
fn eval_shows_the_model_beside_naive_and_seasonal_naive_on_the_same_windows() {
    let lstm = shipped("etth1-lstm.kinglet");
    let csv = repo_root().join("examples/sensors.csv");
    let text = run(kinglet()
        .args(["eval", "--model"])
        .arg(&lstm)
        .arg("--csv")
        .arg(&csv));
    assert_eq!(text.code, 0, "{}", text.stderr);
    for needle in [
        "MASE",
        "naive (last value)",
        "seasonal naive (24 rows, hourly data)",
    ] {
        assert!(text.stdout.contains(needle), "{needle}: {}", text.stdout);
    }
    // the shipped LSTM does not beat "tomorrow = today" on these last 400 rows: said, not hidden
    let v = eval_json(&lstm, &csv, "0..400");
    let naive = v["baselines"]["naive"]["mse"].as_f64().unwrap();
    assert!(naive.is_finite() && naive > 0.0);
    let verdict = if v["mse"].as_f64().unwrap() < naive {
        "beats both"
    } else {
        "does NOT beat"
    };
    assert!(text.stdout.contains(verdict), "{}", text.stdout);
    // a season of one row is naive itself
    let r = run(kinglet()
        .args(["eval", "--json", "--season", "1", "--model"])
        .arg(&lstm)
        .arg("--csv")
        .arg(&csv));
    let one: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        one["baselines"]["naive"],
        one["baselines"]["seasonal_naive"]
    );
    assert_eq!(one["baselines"]["season_from"], "given");
    // a season longer than the history is a clean error
    let r = run(kinglet()
        .args(["eval", "--season", "100000", "--model"])
        .arg(&lstm)
        .arg("--csv")
        .arg(&csv));
    r.assert_clean_error(4, &["season of 100000 rows"]);
}

// The recurrent models take a few hundred thousand scan steps: measured natively only.
#[cfg(target_arch = "x86_64")]
#[test]
fn lstm_and_gru_eval_on_etth1_test_rows_match_training_metrics() {
    let shared = require_shared!("lstm_and_gru_eval_on_etth1_test_rows_match_training_metrics");
    let csv = shared.join("data/etth1/ETTh1.csv");
    let v = eval_json(&shipped("etth1-lstm.kinglet"), &csv, "11424..14400");
    eprintln!("lstm eval: {v}");
    assert_eq!(v["windows"], 2857);
    assert!((v["mse"].as_f64().unwrap() - 0.1335).abs() <= 5e-4, "{v}");
    let dir = shared.join("models/forecast/gru");
    let tmp = tempfile::tempdir().unwrap();
    let gru = tmp.path().join("gru.kinglet");
    export(&dir.join("model.onnx"), &dir.join("norm.json"), false, &gru);
    let v = eval_json(&gru, &csv, "11424..14400");
    eprintln!("gru eval: {v}");
    assert_eq!(v["windows"], 2857);
    assert!((v["mse"].as_f64().unwrap() - 0.1351).abs() <= 5e-4, "{v}");
}

/// A CSV of ETTh1-like rows (columns shuffled, an extra column) made from the LSTM's view.
fn small_csv(rows: usize, spoil: impl Fn(usize, &mut Vec<String>)) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("series.csv");
    let mut text = String::from("OT,date,HUFL,HULL,MUFL,MULL,LUFL,LULL,note\n");
    for r in 0..rows {
        let t = r as f32;
        let mut cells: Vec<String> = vec![
            format!("{:.3}", 20.0 + 5.0 * (t * 0.26).sin()),
            format!("2018-03-{:02} {:02}:00:00", 1 + r / 24, r % 24),
        ];
        for c in 0..6 {
            cells.push(format!("{:.3}", 3.0 + (t * 0.1 + c as f32).cos()));
        }
        cells.push("x".into());
        spoil(r, &mut cells);
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    (tmp, path)
}

fn forecast_csv(csv: &Path) -> Run {
    run(kinglet()
        .arg("forecast")
        .arg("--model")
        .arg(shipped("etth1-lstm.kinglet"))
        .arg("--csv")
        .arg(csv))
}

#[test]
fn forecast_reads_columns_by_name_and_continues_the_dates() {
    let (_t, csv) = small_csv(120, |_, _| ());
    let r = run(kinglet()
        .arg("forecast")
        .arg("--json")
        .arg("--model")
        .arg(shipped("etth1-lstm.kinglet"))
        .arg("--csv")
        .arg(&csv));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["targets"], serde_json::json!(["OT"]));
    assert_eq!(v["horizon"], 24);
    // the last row is 2018-03-05 23:00 (row 119); the forecast starts an hour later
    assert_eq!(v["times"][0], "2018-03-06 00:00:00");
    assert_eq!(v["times"][23], "2018-03-06 23:00:00");
    let first = v["forecast"][0][0].as_f64().unwrap();
    assert!(
        (0.0..60.0).contains(&first),
        "OT forecast in real units: {first}"
    );
}

#[test]
fn forecast_names_a_missing_column() {
    let (_t, csv) = small_csv(120, |_, _| ());
    let text = std::fs::read_to_string(&csv)
        .unwrap()
        .replacen("LULL", "LULZ", 1);
    std::fs::write(&csv, text).unwrap();
    forecast_csv(&csv).assert_clean_error(4, &["column `LULL` not found"]);
}

#[test]
fn forecast_names_row_and_column_of_a_non_numeric_cell() {
    let (_t, csv) = small_csv(120, |r, cells| {
        if r == 50 {
            cells[3] = "n/a".into()
        }
    });
    forecast_csv(&csv).assert_clean_error(4, &["line 52", "data row 50", "`HULL`", "n/a"]);
}

#[test]
fn forecast_refuses_nan_and_infinity() {
    for bad in ["NaN", "inf"] {
        let (_t, csv) = small_csv(120, |r, cells| {
            if r == 7 {
                cells[0] = bad.into()
            }
        });
        forecast_csv(&csv).assert_clean_error(4, &["data row 7", "`OT`", "not a finite number"]);
    }
}

#[test]
fn forecast_refuses_a_window_that_overflows() {
    // ±3.4e38 are finite f32s, but they overflow once normalized (or, for columns with a
    // large spread, in DLinear's linear forecast): an error, not an answer of infinities
    let (_t, csv) = small_csv(400, |r, cells| {
        for cell in &mut cells[2..8] {
            *cell = if r % 2 == 0 { "3.4e38" } else { "-3.4e38" }.into();
        }
    });
    let r = run(kinglet()
        .arg("forecast")
        .arg("--model")
        .arg(shipped("etth1-dlinear.kinglet"))
        .arg("--csv")
        .arg(&csv));
    r.assert_clean_error(4, &["range this model"]);
}

#[test]
fn forecast_refuses_fewer_rows_than_the_lookback() {
    let (_t, csv) = small_csv(95, |_, _| ());
    forecast_csv(&csv).assert_clean_error(4, &["95 rows", "96"]);
}

/// The plot's structure: per panel, the history and forecast lines, the shaded region, the
/// "now" marker, the legend's left edge and the x tick labels.
struct PlotPanel {
    target: String,
    history_points: usize,
    forecast_points: usize,
    forecast_dashed: bool,
    shaded: bool,
    now_label: String,
    data_right_x: f64,
    legend_left_x: f64,
    x_labels: Vec<String>,
}

fn plot_panels(svg: &str) -> Vec<PlotPanel> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let class = |n: &roxmltree::Node, c: &str| n.attribute("class") == Some(c);
    doc.descendants()
        .filter(|n| class(n, "panel"))
        .map(|panel| {
            let find = |c: &str| panel.descendants().find(|n| class(n, c));
            let points = |n: roxmltree::Node| -> Vec<f64> {
                n.attribute("points")
                    .unwrap_or("")
                    .split_whitespace()
                    .map(|p| p.split(',').next().unwrap().parse().unwrap())
                    .collect()
            };
            let history = points(find("history").expect("history line"));
            let forecast_line = find("forecast").expect("forecast line");
            let forecast = points(forecast_line);
            let legend = find("legend").expect("legend");
            let text = |n: roxmltree::Node| -> String {
                n.descendants()
                    .filter(|t| t.is_text())
                    .filter_map(|t| t.text())
                    .collect::<String>()
            };
            PlotPanel {
                target: panel.attribute("data-target").unwrap().to_string(),
                history_points: history.len(),
                forecast_points: forecast.len(),
                forecast_dashed: forecast_line.attribute("stroke-dasharray").is_some(),
                shaded: find("forecast-region").is_some(),
                now_label: text(find("now").expect("now marker")),
                data_right_x: history.iter().chain(&forecast).fold(0f64, |m, &x| m.max(x)),
                legend_left_x: legend
                    .descendants()
                    .filter_map(|n| n.attribute("x").or(n.attribute("x1")))
                    .map(|x| x.parse::<f64>().unwrap())
                    .fold(f64::INFINITY, f64::min),
                x_labels: panel
                    .descendants()
                    .filter(|n| class(n, "x-tick"))
                    .map(text)
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn plot_has_a_panel_per_target_dates_a_dashed_forecast_a_now_marker_and_the_legend_outside() {
    let (tmp, csv) = small_csv(120, |_, _| ());
    let plot = |model: &str, csv: &Path, name: &str| {
        let svg = tmp.path().join(name);
        let r = run(kinglet()
            .args(["forecast", "--model", model, "--csv"])
            .arg(csv)
            .arg("--plot")
            .arg(&svg));
        assert_eq!(r.code, 0, "{}", r.stderr);
        plot_panels(&std::fs::read_to_string(&svg).unwrap())
    };
    // the LSTM: one target (OT), 96 rows in, 24 out, hourly dates
    let panels = plot(
        shipped("etth1-lstm.kinglet").to_str().unwrap(),
        &csv,
        "lstm.svg",
    );
    assert_eq!(panels.len(), 1);
    let p = &panels[0];
    assert_eq!(p.target, "OT");
    assert_eq!(p.history_points, 96);
    assert_eq!(
        p.forecast_points, 25,
        "the forecast starts at the last observed point"
    );
    assert!(p.forecast_dashed && p.shaded);
    assert!(p.now_label.starts_with("now 2018-"), "{}", p.now_label);
    assert!(p.legend_left_x > p.data_right_x, "legend over the data");
    assert!(
        p.x_labels.iter().all(|l| l.contains(':')),
        "{:?}",
        p.x_labels
    );
    // DLinear: a panel for each of its 7 targets
    let panels = plot(
        shipped("etth1-dlinear.kinglet").to_str().unwrap(),
        &repo_root().join("examples/sensors.csv"),
        "dl.svg",
    );
    let targets: Vec<&str> = panels.iter().map(|p| p.target.as_str()).collect();
    assert_eq!(
        targets,
        ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    );
    assert!(panels.iter().all(|p| p.legend_left_x > p.data_right_x));
    // daily stock prices: dates without times, the forecast's last label a business day
    let panels = plot(
        shipped("stock-ibm.kinglet").to_str().unwrap(),
        &repo_root().join("examples/stocks/ibm.csv"),
        "ibm.svg",
    );
    assert_eq!(panels[0].now_label, "now 2013-03-01");
    assert_eq!(
        panels[0].x_labels.last().map(String::as_str),
        Some("2013-03-08")
    );
    // no date column: rows counted from now
    let dir = tempfile::tempdir().unwrap();
    let no_dates = dir.path().join("nodates.csv");
    let text = std::fs::read_to_string(repo_root().join("examples/sensors.csv")).unwrap();
    let stripped: String = text
        .lines()
        .map(|l| l.split_once(',').map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&no_dates, stripped).unwrap();
    let panels = plot(
        shipped("etth1-lstm.kinglet").to_str().unwrap(),
        &no_dates,
        "nodates.svg",
    );
    assert_eq!(panels[0].now_label, "now");
    assert!(
        panels[0].x_labels.iter().any(|l| l.starts_with('+')),
        "{:?}",
        panels[0].x_labels
    );
}

#[test]
fn follow_forecasts_every_n_rows_from_a_stream() {
    use std::io::Write;
    let (_t, csv) = small_csv(130, |_, _| ());
    let mut child = kinglet()
        .arg("forecast")
        .arg("--json")
        .arg("--follow")
        .args(["--every", "10"])
        .arg("--model")
        .arg(shipped("etth1-lstm.kinglet"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&csv).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // first forecast when the window fills (row 96), then after rows 106, 116, 126
    let after: Vec<u64> = lines
        .iter()
        .map(|v| v["after_row"].as_u64().unwrap())
        .collect();
    assert_eq!(after, vec![96, 106, 116, 126]);
    // the streamed forecast at row 96 equals the batch forecast on the first 96 rows
    let (_t2, first96) = small_csv(96, |_, _| ());
    let r = run(kinglet()
        .arg("forecast")
        .arg("--json")
        .arg("--model")
        .arg(shipped("etth1-lstm.kinglet"))
        .arg("--csv")
        .arg(&first96));
    let batch: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(batch["forecast"], lines[0]["forecast"]);
}

#[test]
fn export_names_an_operator_tract_lacks() {
    let fixtures = repo_root().join("tests/fixtures/forecast");
    let tmp = tempfile::tempdir().unwrap();
    let norm = tmp.path().join("norm.json");
    std::fs::write(
        &norm,
        r#"{"columns":["a","b"],"mean":[0,0],"std":[1,1],"target":"all","lookback":4,"horizon":2}"#,
    )
    .unwrap();
    let out = tmp.path().join("x.kinglet");
    let r = run(kinglet_export()
        .arg("forecast")
        .arg(fixtures.join("unsupported-op.onnx"))
        .arg("--norm")
        .arg(&norm)
        .arg("-o")
        .arg(&out));
    r.assert_clean_error(4, &["FancyTimeWarp", "not supported"]);
    assert!(!out.exists());
}

#[test]
fn export_refuses_onnx_whose_shapes_do_not_fit() {
    let dir = repo_root().join("tests/fixtures/forecast/mlp");
    let tmp = tempfile::tempdir().unwrap();
    let mut norm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("norm.json")).unwrap()).unwrap();
    norm["horizon"] = serde_json::json!(24);
    let norm_path = tmp.path().join("norm.json");
    std::fs::write(&norm_path, norm.to_string()).unwrap();
    let out = tmp.path().join("x.kinglet");
    let r = run(kinglet_export()
        .arg("forecast")
        .arg(dir.join("model.onnx"))
        .arg("--norm")
        .arg(&norm_path)
        .arg("-o")
        .arg(&out));
    r.assert_clean_error(3, &["output", "[1, 24"]);
    assert!(!out.exists());
}

#[test]
fn export_fits_normalization_from_csv_rows() {
    let shared = require_shared!("export_fits_normalization_from_csv_rows");
    let dir = shared.join("models/forecast/lstm");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fit.kinglet");
    let r = run(kinglet_export()
        .arg("forecast")
        .arg(dir.join("model.onnx"))
        .args([
            "--columns",
            "HUFL,HULL,MUFL,MULL,LUFL,LULL,OT",
            "--target",
            "OT",
            "--lookback",
            "96",
            "--horizon",
            "24",
        ])
        .arg("--fit")
        .arg(shared.join("data/etth1/ETTh1.csv"))
        .args(["--fit-rows", "0..8640"])
        .arg("-o")
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fitted = match Bundle::read(&out).unwrap().manifest.model {
        kinglet_runtime::manifest::ModelKind::Forecaster(m) => m,
        _ => panic!("not a forecaster"),
    };
    let norm = Normalization::from_norm_json(&dir.join("norm.json")).unwrap();
    for (a, b) in fitted
        .mean
        .iter()
        .zip(&norm.mean)
        .chain(fitted.std.iter().zip(&norm.std))
    {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "fitted {a} vs norm.json {b}"
        );
    }
}

#[test]
fn forecasting_twice_gives_identical_answers() {
    let mut f =
        Forecaster::from_bundle(&Bundle::read(shipped("etth1-lstm.kinglet")).unwrap()).unwrap();
    let window: Vec<f32> = (0..96 * 7)
        .map(|i| 5.0 + ((i as f32) * 0.37).sin())
        .collect();
    let a = f.forecast(&window).unwrap();
    let b = f.forecast(&window).unwrap();
    let c = f.forecast(&window).unwrap();
    assert_eq!(a, b);
    assert_eq!(b, c);
}

/// Operator kinds of a bundle's optimized plan, each with its node count, from
/// `kinglet inspect --json --profile`.
fn plan_ops(bundle: &std::path::Path) -> Vec<(String, u64)> {
    let r = crate::cli::run(
        crate::cli::kinglet()
            .args(["inspect", "--json", "--profile", "--model"])
            .arg(bundle),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["profile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["op"].as_str().unwrap().to_string(),
                p["nodes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn shipped_dlinear_is_folded_into_one_matrix_product() {
    let ops = plan_ops(&crate::shared::repo_root().join("models/etth1-dlinear.kinglet"));
    // on kinglet's f32 kernel where this CPU has one (NEON, AVX-512), else on tract's
    let products: u64 = ops
        .iter()
        .filter(|(o, _)| o == "OptMatMul" || o == "KingletTimeLinearF32")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(products, 1, "{ops:?}");
    let on_kinglet = ops.contains(&("KingletTimeLinearF32".to_string(), 1));
    assert_eq!(
        on_kinglet,
        kinglet_runtime::kernels::native().linear_f32.is_some(),
        "{ops:?}"
    );
    assert!(
        !ops.iter().any(|(o, _)| o == "MoveAxis"),
        "the window is read as it is: {ops:?}"
    );
    assert!(
        !ops.iter()
            .any(|(o, _)| o.contains("SumPool") || o.contains("MovingSum") || o == "Concat"),
        "{ops:?}"
    );
}

/// Exports the shared DLinear at `precision`, checked on ETTh1 validation rows, into `tmp`.
fn export_shared_dlinear(shared: &Path, precision: &str, tmp: &Path) -> PathBuf {
    let dir = shared.join("models/forecast/dlinear");
    let out = tmp.join(format!("dlinear-{precision}.kinglet"));
    let r = run(kinglet_export()
        .arg("forecast")
        .arg(dir.join("model.onnx"))
        .arg("--norm")
        .arg(dir.join("norm.json"))
        .args(["--precision", precision, "--check"])
        .arg(shared.join("data/etth1/ETTh1.csv"))
        .args(["--check-rows", "11184..12000", "-o"])
        .arg(&out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    out
}

#[test]
fn unfolded_dlinear_moving_average_runs_as_a_running_sum() {
    // int8 weights are not folded: the pooling stays, as kinglet's running sum
    let shared = require_shared!("unfolded_dlinear_moving_average_runs_as_a_running_sum");
    let tmp = tempfile::tempdir().unwrap();
    let ops = plan_ops(&export_shared_dlinear(&shared, "int8", tmp.path()));
    assert!(ops.iter().any(|(o, _)| o == "KingletMovingSum"), "{ops:?}");
    assert!(!ops.iter().any(|(o, _)| o.contains("SumPool")), "{ops:?}");
}

#[test]
fn f16_dlinear_takes_f32_windows_and_keeps_its_accuracy() {
    let shared = require_shared!("f16_dlinear_takes_f32_windows_and_keeps_its_accuracy");
    let tmp = tempfile::tempdir().unwrap();
    let out = export_shared_dlinear(&shared, "f16", tmp.path());
    let v = eval_json(&out, &shared.join("data/etth1/ETTh1.csv"), "11184..14400");
    eprintln!("dlinear f16 eval: {v}");
    assert_eq!(v["windows"], 2785);
    // f32: 0.3712 / 0.3930
    assert!((v["mse"].as_f64().unwrap() - 0.3712).abs() <= 2e-3, "{v}");
    assert!((v["mae"].as_f64().unwrap() - 0.3930).abs() <= 2e-3, "{v}");
}

#[test]
fn shipped_lstm_runs_each_layer_as_one_fused_operator() {
    let ops = plan_ops(&crate::shared::repo_root().join("models/etth1-lstm.kinglet"));
    assert!(ops.contains(&("KingletLstm".to_string(), 2)), "{ops:?}");
    assert!(!ops.iter().any(|(o, _)| o == "Scan"), "{ops:?}");
}

fn forecast_json(csv: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let r = run(kinglet()
        .args(["forecast", "--json", "--model"])
        .arg(shipped("etth1-lstm.kinglet"))
        .arg("--csv")
        .arg(csv)
        .args(extra));
    assert_eq!(r.code, 0, "{}", r.stderr);
    (serde_json::from_str(r.stdout.trim()).unwrap(), r.stderr)
}

#[test]
fn rfc3339_slash_and_epoch_times_are_read_and_continued() {
    // row r is 2018-03-01 00:00 UTC + r hours; the last (119) is 2018-03-05 23:00
    let epoch0 = 1_519_862_400i64;
    type Form = Box<dyn Fn(usize) -> String>;
    let forms: [(&str, Form); 4] = [
        (
            "rfc3339",
            Box::new(|r| format!("2018-03-{:02}T{:02}:00:00Z", 1 + r / 24, r % 24)),
        ),
        (
            "offset",
            Box::new(|r| format!("2018-03-{:02}T{:02}:00:00+01:00", 1 + r / 24, r % 24)),
        ),
        (
            "slash",
            Box::new(|r| format!("2018/03/{:02} {:02}:00", 1 + r / 24, r % 24)),
        ),
        (
            "epoch",
            Box::new(move |r| (epoch0 + 3600 * r as i64).to_string()),
        ),
    ];
    for (name, form) in forms {
        let (_t, csv) = small_csv(120, |r, cells| cells[1] = form(r));
        let (v, stderr) = forecast_json(&csv, &[]);
        assert_eq!(v["times"][0], "2018-03-06 00:00:00", "{name}: {v}");
        assert!(!stderr.contains("warning"), "{name}: {stderr}");
    }
}

#[test]
fn a_date_column_that_does_not_parse_is_a_warning_not_silence() {
    let (_t, csv) = small_csv(120, |r, cells| {
        if r == 7 {
            cells[1] = "7th of March".into()
        }
    });
    let (v, stderr) = forecast_json(&csv, &[]);
    assert_eq!(v["times"], serde_json::Value::Null, "labelled by step");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("kinglet: warning:") && stderr.contains("`7th of March` on line 9"),
        "{stderr}"
    );
    let quiet = run(kinglet()
        .args(["-q", "forecast", "--model"])
        .arg(shipped("etth1-lstm.kinglet"))
        .arg("--csv")
        .arg(&csv));
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""));
}

#[test]
fn a_business_day_calendar_continues_after_friday_on_monday() {
    // 216 hourly rows from Thursday 2018-03-01: the last is Friday 2018-03-09 23:00
    let (_t, csv) = small_csv(216, |_, _| ());
    let (v, _) = forecast_json(&csv, &[]);
    assert_eq!(
        v["times"][0], "2018-03-10 00:00:00",
        "hourly data: every day"
    );
    let (v, _) = forecast_json(&csv, &["--calendar", "business-days"]);
    assert_eq!(v["times"][0], "2018-03-12 00:00:00");
    assert_eq!(v["times"][1], "2018-03-12 01:00:00");
}

#[test]
fn a_crlf_csv_names_the_same_line_as_an_lf_one() {
    let (_t, csv) = small_csv(120, |r, cells| {
        if r == 50 {
            cells[3] = "n/a".into()
        }
    });
    let crlf = std::fs::read_to_string(&csv).unwrap().replace('\n', "\r\n");
    std::fs::write(&csv, crlf).unwrap();
    forecast_csv(&csv).assert_clean_error(4, &["line 52", "data row 50", "`HULL`", "n/a"]);
}

#[test]
fn follow_takes_the_header_once_for_a_stream_without_one() {
    use std::io::Write;
    let (_t, csv) = small_csv(120, |_, _| ());
    let text = std::fs::read_to_string(&csv).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let mut child = kinglet()
        .args([
            "forecast", "--json", "--follow", "--every", "200", "--header", header, "--model",
        ])
        .arg(shipped("etth1-lstm.kinglet"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rows.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    // one forecast, when the 96-row window first filled
    assert_eq!(v["after_row"], 96);
    assert_eq!(v["times"][0], "2018-03-05 00:00:00");
}

/// `kinglet-export [--json] forecast DIR/model.onnx --norm DIR/norm.json EXTRA… -o OUT`; the
/// run and, with `--json`, the report.
fn export_dir(dir: &Path, out: &Path, extra: &[&str], json: bool) -> (Run, serde_json::Value) {
    let mut cmd = kinglet_export();
    if json {
        cmd.arg("--json");
    }
    let r = run(cmd
        .arg("forecast")
        .arg(dir.join("model.onnx"))
        .arg("--norm")
        .arg(dir.join("norm.json"))
        .args(extra)
        .arg("-o")
        .arg(out));
    let v = serde_json::from_str(r.stdout.trim()).unwrap_or(serde_json::Value::Null);
    (r, v)
}

fn layer_precisions(v: &serde_json::Value) -> Vec<(String, String)> {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["op"].as_str().unwrap().to_string(),
                l["stored"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The layer summary line of `count` layers of `op` stored in `precision`.
fn layer_line(precision: &str, op: &str, count: usize) -> String {
    format!("{precision:<5} {op:<16} ×{count}")
}

fn fixture_dir(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/forecast").join(name)
}

#[test]
fn f16_export_of_the_shipped_lstm_and_gru_keeps_the_recurrent_layers_f32_and_the_mse() {
    let shared = require_shared!(
        "f16_export_of_the_shipped_lstm_and_gru_keeps_the_recurrent_layers_f32_and_the_mse"
    );
    let tmp = tempfile::tempdir().unwrap();
    let csv = shared.join("data/etth1/ETTh1.csv");
    for (name, op) in [("lstm", "KingletLstm"), ("gru", "KingletGru")] {
        let out = tmp.path().join(format!("{name}-f16.kinglet"));
        let check = ["--precision", "f16", "--check", csv.to_str().unwrap()];
        let (r, v) = export_dir(
            &shared.join("models/forecast").join(name),
            &out,
            &[&check[..], &["--check-rows", "11424..14400"]].concat(),
            true,
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let q = &v["quantization"];
        let (f, p) = (
            q["float_mse"].as_f64().unwrap(),
            q["quantized_mse"].as_f64().unwrap(),
        );
        eprintln!("{name} f16: MSE {f:.4} → {p:.4}");
        assert!((p - f).abs() <= 0.01 * f, "{name}: {q}");
        // the recurrent layers say they stayed f32; the head was converted
        let pair = |op: &str, p: &str| (op.to_string(), p.to_string());
        assert_eq!(
            layer_precisions(&v),
            [pair(op, "f32"), pair(op, "f32"), pair("EinSum", "f16")],
            "{name}"
        );
        // inspect reads the same from the written graph
        let r = run(kinglet().args(["inspect", "--model"]).arg(&out));
        assert_eq!(r.code, 0, "{}", r.stderr);
        for line in [layer_line("f32", op, 2), layer_line("f16", "EinSum", 1)] {
            assert!(r.stdout.contains(&line), "{line}: {}", r.stdout);
        }
    }
}

#[test]
fn int8_reports_per_layer_precision_and_refuses_a_model_it_would_not_quantize() {
    let tmp = tempfile::tempdir().unwrap();
    let int8 = ["--precision", "int8"];
    // the MLP's matmuls become int8, and the summary says so layer by layer
    let (r, v) = export_dir(
        &fixture_dir("mlp"),
        &tmp.path().join("mlp.kinglet"),
        &int8,
        true,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let layers = layer_precisions(&v);
    assert!(!layers.is_empty());
    assert!(layers.iter().all(|(_, p)| p == "int8"), "{layers:?}");
    // the TCN's head becomes int8, its convolutions stay f32, and the summary says which
    let channels_first = [&int8[..], &["--channels-first"]].concat();
    let (r, v) = export_dir(
        &fixture_dir("tcn"),
        &tmp.path().join("tcn.kinglet"),
        &channels_first,
        true,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let layers = layer_precisions(&v);
    let convs = layers.iter().filter(|(op, p)| op == "Conv" && p == "f32");
    assert_eq!(convs.count(), 3, "{layers:?}");
    assert!(layers.iter().any(|(_, p)| p == "int8"), "{layers:?}");
    // a convolution-only model has no int8 path: refused (exit 4), nothing written, instead
    // of a bundle labelled int8 that is f32 inside
    let out = tmp.path().join("conv-int8.kinglet");
    let (r, _) = export_dir(&fixture_dir("conv-only"), &out, &channels_first, false);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("would all stay f32: export it as f32 or f16"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn int8_of_the_shipped_lstm_and_gru_quantize_the_head_and_say_the_recurrent_layers_stay_f32() {
    let shared = require_shared!(
        "int8_of_the_shipped_lstm_and_gru_quantize_the_head_and_say_the_recurrent_layers_stay_f32"
    );
    let tmp = tempfile::tempdir().unwrap();
    for (name, op) in [("lstm", "KingletLstm"), ("gru", "KingletGru")] {
        let out = tmp.path().join(format!("{name}-int8.kinglet"));
        let dir = shared.join("models/forecast").join(name);
        let (r, _) = export_dir(&dir, &out, &["--precision", "int8"], false);
        assert_eq!(r.code, 0, "{}", r.stderr);
        for line in [
            layer_line("f32", op, 2),
            layer_line("int8", "KingletLinearI8", 1),
        ] {
            assert!(r.stdout.contains(&line), "{line}: {}", r.stdout);
        }
    }
}

#[test]
fn a_horizon_output_a_one_column_input_and_a_chosen_output_of_two_match_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("horizon-1d", &[][..]),
        ("lookback-2d", &[][..]),
        ("two-outputs", &["--onnx-output", "mean"][..]),
    ] {
        let out = tmp.path().join(format!("{name}.kinglet"));
        let (r, _) = export_dir(&fixture_dir(name), &out, extra, false);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        check_reference(name, &out, &fixture_dir(name).join("reference_io.json"));
    }
    // without --onnx-output, the two outputs are named and the way out given
    let (r, _) = export_dir(
        &fixture_dir("two-outputs"),
        &tmp.path().join("x.kinglet"),
        &[],
        false,
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("2 outputs (mean, scale); pick the forecast with --onnx-output NAME"),
        "{}",
        r.stderr
    );
}

#[test]
fn keras_recurrent_models_run_when_converted_as_tf2onnx_can_and_a_loop_is_refused_with_the_way_out()
{
    let tmp = tempfile::tempdir().unwrap();
    let export = |name: &str| {
        let out = tmp.path().join(format!("{name}.kinglet"));
        (export_dir(&fixture_dir(name), &out, &[], false).0, out)
    };
    // batch None: one ONNX LSTM, one kinglet operator; unroll=True GRU: plain steps
    for name in ["keras-lstm", "keras-gru-unrolled"] {
        let (r, out) = export(name);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        check_reference(name, &out, &fixture_dir(name).join("reference_io.json"));
    }
    let (_, out) = export("keras-lstm");
    assert!(plan_ops(&out).iter().any(|(op, _)| op == "KingletLstm"));
    // batch 1 LSTM and every Keras GRU: tf2onnx's Loop, refused with the exact way out
    for (name, says) in [
        (
            "keras-lstm-batch1",
            "build it with `keras.Input(shape=(lookback, features))` (batch None)",
        ),
        ("keras-gru", "rebuild the layer with `unroll=True`"),
    ] {
        let (r, out) = export(name);
        assert_eq!(r.code, 4, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains("operator `Loop`") && r.stderr.contains(says),
            "{name}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.trim().lines().count(), 1);
        assert!(!out.exists());
    }
}
