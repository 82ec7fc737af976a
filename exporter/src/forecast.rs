//! From an ONNX forecaster plus its normalization to a verified bundle on disk.

use crate::error::{ExportError, Result};
use crate::export::{graph_to_nnef, ExportReport};
use crate::onnx::{load_forecaster, ForecastShape};
use crate::quantize::{transform_graph, Precision};
use kinglet_runtime::bundle::Bundle;
use kinglet_runtime::engine::Engine;
use kinglet_runtime::forecast::Forecaster;
use kinglet_runtime::manifest::{
    ForecasterMeta, Manifest, ModelKind, QuantizationReport, SelfTest, SelfTestCase,
};
use kinglet_runtime::series::read_csv;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tract_nnef::prelude::TypedModel;

/// Columns, window sizes and per-column statistics of a forecaster.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Input columns in graph order.
    pub columns: Vec<String>,
    /// Output columns (all columns, or one target).
    pub targets: Vec<String>,
    /// Per input column.
    pub mean: Vec<f32>,
    /// Per input column (population standard deviation).
    pub std: Vec<f32>,
    /// Rows in.
    pub lookback: usize,
    /// Rows out.
    pub horizon: usize,
}

/// The norm.json written by the training scripts.
#[derive(Debug, Deserialize)]
struct NormJson {
    columns: Vec<String>,
    mean: Vec<f32>,
    std: Vec<f32>,
    target: String,
    lookback: usize,
    horizon: usize,
}

/// Resolves `target` (`all` or a column name) against `columns`.
pub fn targets_of(target: &str, columns: &[String]) -> Result<Vec<String>> {
    if target == "all" {
        return Ok(columns.to_vec());
    }
    if !columns.iter().any(|c| c == target) {
        return Err(ExportError::Unsupported(format!(
            "target `{target}` is not one of the columns {}",
            columns.join(", ")
        )));
    }
    Ok(vec![target.to_string()])
}

impl Normalization {
    /// Reads a norm.json (`columns`, `mean`, `std`, `target`, `lookback`, `horizon`).
    pub fn from_norm_json(path: &Path) -> Result<Normalization> {
        let bytes = std::fs::read(path).map_err(ExportError::io(path))?;
        let n: NormJson = serde_json::from_slice(&bytes).map_err(|e| ExportError::BadFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let norm = Normalization {
            targets: targets_of(&n.target, &n.columns)?,
            columns: n.columns,
            mean: n.mean,
            std: n.std,
            lookback: n.lookback,
            horizon: n.horizon,
        };
        norm.check().map_err(|reason| ExportError::BadFile {
            path: path.to_owned(),
            reason,
        })?;
        Ok(norm)
    }

    /// Computes mean and population std of `columns` over data rows `[start, end)` of a CSV.
    pub fn fit(
        csv: &Path,
        rows: (usize, usize),
        columns: Vec<String>,
        target: &str,
        lookback: usize,
        horizon: usize,
    ) -> Result<Normalization> {
        let series = read_csv(csv, &columns)?;
        let (start, end) = rows;
        if end > series.rows() || start >= end {
            return Err(ExportError::Unsupported(format!(
                "--fit-rows {start}..{end}: {} has {} data rows",
                csv.display(),
                series.rows()
            )));
        }
        let f = columns.len();
        let n = (end - start) as f64;
        let mut mean = vec![0f64; f];
        let mut sq = vec![0f64; f];
        for r in start..end {
            for c in 0..f {
                let v = series.values[r * f + c] as f64;
                mean[c] += v;
                sq[c] += v * v;
            }
        }
        let mean: Vec<f64> = mean.iter().map(|s| s / n).collect();
        let std: Vec<f32> = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / n - m * m).max(0.0).sqrt() as f32)
            .collect();
        let norm = Normalization {
            targets: targets_of(target, &columns)?,
            columns,
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
            lookback,
            horizon,
        };
        norm.check().map_err(|reason| ExportError::BadFile {
            path: csv.to_owned(),
            reason,
        })?;
        Ok(norm)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let f = self.columns.len();
        if f == 0 || self.mean.len() != f || self.std.len() != f {
            return Err(format!(
                "{f} columns but {} means and {} stds",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(i) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!(
                "column `{}` has std {}: it must be positive",
                self.columns[i], self.std[i]
            ));
        }
        if let Some(i) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(format!(
                "column `{}` has mean {}",
                self.columns[i], self.mean[i]
            ));
        }
        if self.lookback == 0 || self.horizon == 0 {
            return Err("lookback and horizon must be positive".into());
        }
        Ok(())
    }
}

/// Real data on which a quantized forecaster must keep the float one's accuracy.
#[derive(Debug, Clone)]
pub struct ForecastCheck {
    /// CSV with the model's columns.
    pub csv: PathBuf,
    /// Data rows `[start, end)`.
    pub rows: (usize, usize),
    /// Largest allowed relative MSE increase, in percent.
    pub max_increase_percent: f64,
}

/// What the forecaster exporter was asked for.
#[derive(Debug, Clone)]
pub struct ForecastExportOptions {
    /// Columns, statistics and window sizes.
    pub norm: Normalization,
    /// Input is `[1, features, lookback]`.
    pub channels_first: bool,
    /// Weight format.
    pub precision: Precision,
    /// Time between rows, stored to continue date columns.
    pub step_seconds: Option<i64>,
    /// Accuracy guard for quantized exports.
    pub check: Option<ForecastCheck>,
    /// The ONNX output holding the forecast, when the model has several.
    pub output: Option<String>,
}

/// Deterministic self-test windows in real units: the column means, and a mix of sines.
fn self_test_windows(norm: &Normalization) -> Vec<Vec<f32>> {
    let (l, f) = (norm.lookback, norm.columns.len());
    let flat: Vec<f32> = (0..l * f).map(|i| norm.mean[i % f]).collect();
    let wave: Vec<f32> = (0..l * f)
        .map(|i| {
            let (r, c) = ((i / f) as f32, i % f);
            let z = (r * 0.26 + c as f32).sin() + 0.3 * (r * 0.041 * (c as f32 + 1.0)).cos();
            norm.mean[c] + z * norm.std[c]
        })
        .collect();
    vec![flat, wave]
}

/// Exports an ONNX forecaster to `out`: checks shapes, then [`seal_forecaster`].
pub fn export_onnx_forecaster(
    onnx: &Path,
    out: &Path,
    options: &ForecastExportOptions,
) -> Result<ExportReport> {
    let norm = &options.norm;
    let shape = ForecastShape {
        lookback: norm.lookback,
        features: norm.columns.len(),
        horizon: norm.horizon,
        targets: norm.targets.len(),
        channels_first: options.channels_first,
    };
    crate::progress::stage(&format!("reading {}", onnx.display()));
    let float_model = load_forecaster(onnx, shape, options.output.as_deref())?;
    let source = onnx
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    seal_forecaster(float_model, "onnx-forecaster", &source, out, options)
}

/// Writes a forecaster's decluttered f32 graph (`[1, lookback, columns]` normalized in,
/// `[1, horizon, targets]` out) to `out`: applies the precision, self-tests the serialized
/// graph, guards quantized accuracy on real data, writes atomically, reloads and verifies.
pub fn seal_forecaster(
    float_model: TypedModel,
    architecture: &str,
    source: &str,
    out: &Path,
    options: &ForecastExportOptions,
) -> Result<ExportReport> {
    let norm = &options.norm;
    let parameter_count = parameter_count(&float_model);
    crate::progress::stage(&format!("building the {} graph", options.precision));
    let model = match options.precision {
        Precision::F32 => crate::affine::fold_affine(&float_model, parameter_count)?
            .unwrap_or_else(|| float_model.clone()),
        Precision::F16 => transform_graph(float_model.clone(), Precision::F16)?,
        Precision::Int8 => {
            let model = crate::quantize::int8_matmul_weights(float_model.clone())?;
            let layers = kinglet_runtime::layers::of_model(&model);
            if !layers.iter().any(|l| l.stored == "int8") {
                let mut ops: Vec<String> = layers.iter().map(|l| l.op.clone()).collect();
                ops.dedup();
                return Err(ExportError::Unsupported(format!(
                    "int8 quantizes matrix products whose weight is one constant matrix; this \
                     model's weights are in {} and would all stay f32: export it as f32 or f16",
                    ops.join(", ")
                )));
            }
            model
        }
        Precision::Q4 => {
            return Err(ExportError::Unsupported(
                "q4 is for transformer classifiers; use f32, f16 or int8 for forecasters".into(),
            ))
        }
    };
    let step_seconds = options.step_seconds.or_else(|| {
        let csv = options.check.as_ref().map(|c| c.csv.clone())?;
        read_csv(&csv, &norm.columns).ok()?.step_seconds()
    });
    let meta = ForecasterMeta {
        columns: norm.columns.clone(),
        targets: norm.targets.clone(),
        lookback: norm.lookback,
        horizon: norm.horizon,
        mean: norm.mean.clone(),
        std: norm.std.clone(),
        channels_first: options.channels_first,
        step_seconds,
    };
    let mut bundle = Bundle {
        path: out.to_owned(),
        manifest: Manifest {
            exporter_version: kinglet_runtime::VERSION.to_string(),
            name: String::new(),
            version: String::new(),
            architecture: architecture.into(),
            precision: options.precision.name().into(),
            source: source.into(),
            parameter_count,
            model: ModelKind::Forecaster(meta.clone()),
            self_test: SelfTest::default(),
            quantization: None,
            memory: None,
        },
        graph: graph_to_nnef(&model)?,
        tokenizer: None,
        signer: None,
    };
    let mut reloaded = Forecaster::from_bundle(&bundle)?;
    let mut in_memory = Forecaster::with_engine(meta.clone(), Engine::from_typed(model)?)?;
    let inputs = self_test_windows(norm)
        .into_iter()
        .map(|window| SelfTestCase {
            text: None,
            window: Some(window),
            expected: Vec::new(),
        })
        .collect();
    let (cases, round_trip_deviation) =
        crate::seal::self_test_cases(&mut reloaded, &mut in_memory, inputs)?;
    drop(in_memory);
    let tolerance = crate::export::self_test_tolerance(options.precision);
    bundle.manifest.self_test = SelfTest { tolerance, cases };

    if options.precision != Precision::F32 {
        crate::progress::stage("comparing with f32");
        let mut float = Forecaster::with_engine(meta, Engine::from_typed(float_model)?)?;
        bundle.manifest.quantization = Some(compare(&mut float, &mut reloaded, options)?);
    }

    let sealed = crate::seal::seal(&mut bundle, out)?;
    Ok(ExportReport {
        architecture: architecture.into(),
        parameter_count,
        bundle_bytes: sealed.bundle_bytes,
        round_trip_deviation,
        quantization: bundle.manifest.quantization,
        layers: sealed.layers,
    })
}

fn compare(
    float: &mut Forecaster,
    quantized: &mut Forecaster,
    options: &ForecastExportOptions,
) -> Result<QuantizationReport> {
    let Some(check) = &options.check else {
        let (mut max, mut sum, mut n) = (0f32, 0f64, 0usize);
        for window in self_test_windows(&options.norm) {
            let a = float.forecast(&window)?.normalized;
            let b = quantized.forecast(&window)?.normalized;
            for (x, y) in a.iter().zip(&b) {
                max = max.max((x - y).abs());
                sum += (x - y).abs() as f64;
                n += 1;
            }
        }
        return Ok(QuantizationReport {
            data: "self-test".into(),
            rows: 2,
            max_abs_logit_delta: max,
            mean_abs_logit_delta: (sum / n.max(1) as f64) as f32,
            ..Default::default()
        });
    };
    let series = read_csv(&check.csv, &options.norm.columns)?;
    let (start, end) = check.rows;
    let f = float.evaluate(&series, start, end, &|| ())?;
    let q = quantized.evaluate(&series, start, end, &|| ())?;
    let increase = 100.0 * (q.mse - f.mse) / f.mse.max(1e-12);
    if increase > check.max_increase_percent {
        return Err(ExportError::QualityGate(format!(
            "{} MSE rises {increase:.2} % on {} rows {start}..{end} ({:.4} float → {:.4}), more than \
             --max-increase {} %; nothing written",
            options.precision,
            check.csv.display(),
            f.mse,
            q.mse,
            check.max_increase_percent
        )));
    }
    Ok(QuantizationReport {
        data: format!("{} rows {start}..{end}", check.csv.display()),
        rows: f.windows,
        max_abs_logit_delta: 0.0,
        mean_abs_logit_delta: (q.mae - f.mae).abs() as f32,
        float_mse: Some(f.mse),
        quantized_mse: Some(q.mse),
        ..Default::default()
    })
}

/// Scalar count of the graph's constants.
fn parameter_count(model: &TypedModel) -> u64 {
    use tract_nnef::tract_core::ops::konst::Const;
    model
        .nodes()
        .iter()
        .filter_map(|n| n.op_as::<Const>().map(|c| c.val().len() as u64))
        .filter(|&n| n > 1)
        .sum()
}
