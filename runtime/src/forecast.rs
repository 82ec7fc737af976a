//! Forecasting: normalize a window of real values, run the graph, de-normalize the forecast.

use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::manifest::{ForecasterMeta, ModelKind, SelfTestCase};
use crate::memory::{LoadMeter, LoadOptions, MemoryReport, Parts};
use crate::task::{BenchRun, Task, TaskKind};
use std::path::Path;
use tract_nnef::prelude::*;

/// A loaded forecaster, ready to answer.
#[derive(Debug)]
pub struct Forecaster {
    /// Columns, targets, window sizes and normalization from the manifest.
    pub meta: ForecasterMeta,
    engine: Engine,
    targets: Vec<usize>,
    memory: Option<MemoryReport>,
    scales: Scales,
}

/// The manifest's normalization laid out like the tensors it applies to, so that normalizing a
/// window and restoring a forecast are each one pass over four flat slices (which the compiler
/// vectorizes) instead of a column lookup per value.
#[derive(Debug, Clone, Default)]
struct Scales {
    /// `lookback × columns`: each row the columns' means, and their standard deviations.
    window_mean: Vec<f32>,
    window_std: Vec<f32>,
    /// `horizon × targets`: the targets' means and standard deviations, row after row.
    forecast_mean: Vec<f32>,
    forecast_std: Vec<f32>,
}

impl Scales {
    fn new(meta: &ForecasterMeta, targets: &[usize]) -> Scales {
        let tile = |values: &[f32], rows: usize| -> Vec<f32> {
            values
                .iter()
                .copied()
                .cycle()
                .take(rows * values.len())
                .collect()
        };
        let pick = |values: &[f32]| -> Vec<f32> {
            targets
                .iter()
                .map(|&c| values.get(c).copied().unwrap_or(f32::NAN))
                .collect()
        };
        Scales {
            window_mean: tile(&meta.mean, meta.lookback),
            window_std: tile(&meta.std, meta.lookback),
            forecast_mean: tile(&pick(&meta.mean), meta.horizon),
            forecast_std: tile(&pick(&meta.std), meta.horizon),
        }
    }
}

/// One forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// `horizon × targets` values in real units, row-major.
    pub values: Vec<f32>,
    /// The same in normalized units (what the graph returned).
    pub normalized: Vec<f32>,
}

impl Forecaster {
    /// Loads a bundle file for serving: parses the graph straight from the file, optimizes it,
    /// runs the memory preflight on a full window, refuses a model that needs more than the
    /// budget, and reserves the arena every later forecast runs in (see [`crate::memory`]).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Forecaster> {
        let meter = LoadMeter::start();
        let file = crate::bundle::BundleFile::open(path)?;
        Forecaster::load_file(meter, file, options)
    }

    /// [`Forecaster::load`] of an opened bundle file, measured from `meter`'s start.
    pub(crate) fn load_file(
        meter: LoadMeter,
        file: crate::bundle::BundleFile,
        options: &LoadOptions,
    ) -> Result<Forecaster> {
        let ModelKind::Forecaster(meta) = &file.manifest.model else {
            let found = crate::task::TaskKind::of(&file.manifest.model);
            return Err(crate::text::wrong_task(
                &file.path,
                found,
                TaskKind::Forecaster,
            ));
        };
        file.check_trust(options.trusted.as_ref())?;
        let budget = crate::memory::Budget::new(options, &file.manifest);
        let meta = meta.clone();
        let model = file.read_graph()?;
        let weights_bytes = crate::memory::constant_bytes(&model);
        drop(file);
        let engine = Engine::from_typed(model)?;
        let parts = Parts {
            tokenizer_bytes: 0,
            weights_bytes,
            model_bytes: meter.held(),
        };
        let targets = meta.target_indices();
        let mut forecaster = Forecaster {
            scales: Scales::new(&meta, &targets),
            targets,
            meta,
            engine,
            memory: None,
        };
        let at = format!("{} rows", forecaster.meta.lookback);
        let report = meter.finish(parts, budget, at, || {
            let window = forecaster.typical_window();
            forecaster.forecast(&window).map(drop)
        })?;
        forecaster.memory = report;
        Ok(forecaster)
    }

    /// What the model holds and needs, when it was loaded with [`Forecaster::load`] under
    /// kinglet's allocator.
    pub fn memory(&self) -> Option<&MemoryReport> {
        self.memory.as_ref()
    }

    /// A window of every column at its mean (a valid input of the full size).
    pub fn typical_window(&self) -> Vec<f32> {
        let f = self.meta.columns.len();
        (0..self.meta.lookback * f)
            .map(|i| self.meta.mean[i % f])
            .collect()
    }

    /// Builds a forecaster from a bundle, optimizing its graph for this CPU.
    pub fn from_bundle(bundle: &Bundle) -> Result<Forecaster> {
        let ModelKind::Forecaster(meta) = &bundle.manifest.model else {
            let found = crate::task::TaskKind::of(&bundle.manifest.model);
            return Err(crate::text::wrong_task(
                &bundle.path,
                found,
                TaskKind::Forecaster,
            ));
        };
        let engine = Engine::from_nnef_tar(&bundle.graph)?;
        Forecaster::with_engine(meta.clone(), engine)
    }

    /// Builds a forecaster around an already prepared engine, and runs it once so the plan's
    /// buffers exist before the first real request.
    pub fn with_engine(meta: ForecasterMeta, engine: Engine) -> Result<Forecaster> {
        let targets = meta.target_indices();
        let mut f = Forecaster {
            scales: Scales::new(&meta, &targets),
            targets,
            meta,
            engine,
            memory: None,
        };
        let zeros = vec![0f32; f.meta.lookback * f.meta.columns.len()];
        f.run_normalized(&zeros)?;
        Ok(f)
    }

    /// Forecasts from `window`: `lookback` rows × `columns` values in real units, oldest first.
    /// With a memory report (see [`Forecaster::load`]) it runs inside the arena.
    pub fn forecast(&mut self, window: &[f32]) -> Result<Forecast> {
        let memory = self.memory.take();
        let result =
            crate::memory::run_in_arena(memory.as_ref(), || self.forecast_unscoped(window));
        self.memory = memory;
        result
    }

    fn forecast_unscoped(&mut self, window: &[f32]) -> Result<Forecast> {
        let (l, f) = (self.meta.lookback, self.meta.columns.len());
        if window.len() != l * f {
            return Err(Error::BadInput(format!(
                "the window has {} values; this model takes {l} rows × {f} columns",
                window.len()
            )));
        }
        let sc = &self.scales;
        let normalized: Vec<f32> = window
            .iter()
            .zip(&sc.window_mean)
            .zip(&sc.window_std)
            .map(|((v, mean), std)| (v - mean) / std)
            .collect();
        // one branch-free pass: NaN, ±∞ (and a finite value that normalizes out of range) show
        // up in the normalized window
        if normalized.iter().fold(false, |bad, v| bad | !v.is_finite()) {
            let i = normalized.iter().position(|v| !v.is_finite()).unwrap_or(0);
            let why = if window[i].is_finite() {
                "out of the range this model was normalized for"
            } else {
                "not a finite number"
            };
            return Err(Error::BadInput(format!(
                "window row {}, column `{}` is {}: {why}",
                i / f,
                self.meta.columns[i % f],
                window[i]
            )));
        }
        let normalized = self.run_normalized(&normalized)?;
        let sc = &self.scales;
        let values: Vec<f32> = normalized
            .iter()
            .zip(&sc.forecast_std)
            .zip(&sc.forecast_mean)
            .map(|((v, std), mean)| v * std + mean)
            .collect();
        if values.iter().fold(false, |bad, v| bad | !v.is_finite()) {
            return Err(Error::BadInput(
                "the forecast from this window is not a finite number: its values are far \
                 outside the range this model was trained on"
                    .into(),
            ));
        }
        Ok(Forecast { values, normalized })
    }

    /// Runs the graph on a normalized window (`lookback × columns`, row-major) and returns the
    /// normalized forecast (`horizon × targets`).
    pub fn run_normalized(&mut self, window: &[f32]) -> Result<Vec<f32>> {
        let (l, f) = (self.meta.lookback, self.meta.columns.len());
        let input = if self.meta.channels_first {
            let mut t = vec![0f32; l * f];
            for r in 0..l {
                for c in 0..f {
                    t[c * l + r] = window[r * f + c];
                }
            }
            Tensor::from_shape(&[1, f, l], &t)
        } else {
            Tensor::from_shape(&[1, l, f], window)
        }
        .map_err(Error::inference)?;
        let out = self.engine.run_f32(input)?;
        let want = self.meta.horizon * self.targets.len();
        if out.len() != want {
            return Err(Error::Inference(format!(
                "graph returned {} values, expected {want}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// The engine, for inspection and profiling.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

/// Errors of a forecast against the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastErrors {
    /// Windows evaluated.
    pub windows: usize,
    /// Mean squared error on normalized values, over all windows, steps and targets.
    pub mse: f64,
    /// Mean absolute error on normalized values.
    pub mae: f64,
    /// Per target column, in real units.
    pub mse_raw: Vec<f64>,
    /// Per target column, in real units.
    pub mae_raw: Vec<f64>,
}

impl Forecaster {
    /// Evaluates every window (stride 1) whose inputs and targets lie in rows `[start, end)`
    /// of `series` (whose columns are the model's), calling `tick` after each.
    pub fn evaluate(
        &mut self,
        series: &crate::series::Series,
        start: usize,
        end: usize,
        tick: &dyn Fn(),
    ) -> Result<ForecastErrors> {
        let (l, h, f) = (
            self.meta.lookback,
            self.meta.horizon,
            self.meta.columns.len(),
        );
        let end = end.min(series.rows());
        if start + l + h > end {
            return Err(Error::BadInput(format!(
                "rows {start}..{end} hold no window of {l} + {h} rows"
            )));
        }
        let t = self.targets.len();
        let (mut se, mut ae) = (0f64, 0f64);
        let (mut se_raw, mut ae_raw) = (vec![0f64; t], vec![0f64; t]);
        let windows = end - start - l - h + 1;
        for s in start..start + windows {
            let forecast = self.forecast(series.slice_rows(s, s + l))?;
            let truth = series.slice_rows(s + l, s + l + h);
            for step in 0..h {
                for (k, &c) in self.targets.iter().enumerate() {
                    let raw = truth[step * f + c] as f64;
                    let norm = (raw - self.meta.mean[c] as f64) / self.meta.std[c] as f64;
                    let d = forecast.normalized[step * t + k] as f64 - norm;
                    se += d * d;
                    ae += d.abs();
                    let d_raw = forecast.values[step * t + k] as f64 - raw;
                    se_raw[k] += d_raw * d_raw;
                    ae_raw[k] += d_raw.abs();
                }
            }
            tick();
        }
        let n = (windows * h * t) as f64;
        let per_col = (windows * h) as f64;
        Ok(ForecastErrors {
            windows,
            mse: se / n,
            mae: ae / n,
            mse_raw: se_raw.iter().map(|v| v / per_col).collect(),
            mae_raw: ae_raw.iter().map(|v| v / per_col).collect(),
        })
    }
}

impl Task for Forecaster {
    fn kind(&self) -> TaskKind {
        TaskKind::Forecaster
    }

    fn memory(&self) -> Option<&MemoryReport> {
        self.memory.as_ref()
    }

    fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    fn largest_input(&mut self) -> Result<(Tensor, String)> {
        let (l, n) = (self.meta.lookback, self.meta.columns.len());
        let shape = if self.meta.channels_first {
            [1, n, l]
        } else {
            [1, l, n]
        };
        let window = vec![0f32; l * n];
        let desc = format!("{l} rows × {n} columns");
        Ok((
            Tensor::from_shape(&shape, &window).map_err(Error::inference)?,
            desc,
        ))
    }

    fn self_test_outputs(&mut self, case: &SelfTestCase) -> Result<Vec<f32>> {
        Ok(self.forecast(crate::task::case_window(case)?)?.normalized)
    }

    fn bench(&mut self, _input: crate::bench::BenchInput) -> Result<BenchRun<'_>> {
        let (l, n) = (self.meta.lookback, self.meta.columns.len());
        let window: Vec<f32> = (0..l * n).map(|i| ((i as f32) * 0.1).sin()).collect();
        Ok(BenchRun {
            step: Box::new(move |_| self.forecast(&window).map(drop)),
            input: format!("{l} rows × {n} columns"),
        })
    }

    fn report(&self) -> crate::inspect::TaskReport {
        let f = &self.meta;
        crate::inspect::TaskReport::Forecaster {
            columns: f.columns.clone(),
            targets: f.targets.clone(),
            lookback: f.lookback,
            horizon: f.horizon,
            step_seconds: f.step_seconds,
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}
