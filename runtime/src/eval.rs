//! What `kinglet eval` measures, as reports: a classifier's accuracy, macro-F1 and confusion on
//! labeled rows, a forecaster's errors over every window of a row range beside the naive
//! baselines of the same windows.

use crate::baselines::Baselines;
use crate::forecast::ForecastErrors;
use crate::metrics::{ClassMetrics, ClassificationReport};
use serde::Serialize;
use std::collections::BTreeMap;

/// A classifier evaluated on labeled rows.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierEval {
    /// Rows evaluated.
    pub rows: usize,
    /// Fraction of rows predicted right.
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1.
    pub macro_f1: f64,
    /// Per label name.
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// Label names, in the model's order (the confusion matrix's order).
    pub labels: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Rows classified per second (tokenizing included).
    pub rows_per_second: f64,
    /// Precision of the bundle's graph.
    pub precision: String,
}

impl ClassifierEval {
    /// The report of `(true, predicted)` label index pairs classified in `seconds`.
    pub fn new(
        pairs: &[(usize, usize)],
        labels: &[String],
        seconds: f64,
        precision: &str,
    ) -> ClassifierEval {
        let report = ClassificationReport::from_pairs(pairs, labels.len());
        ClassifierEval {
            rows: report.rows,
            accuracy: report.accuracy,
            macro_f1: report.macro_f1,
            per_class: labels.iter().cloned().zip(report.per_class).collect(),
            labels: labels.to_vec(),
            confusion: report.confusion,
            rows_per_second: report.rows as f64 / seconds.max(1e-9),
            precision: precision.to_owned(),
        }
    }
}

/// Errors of one forecast target in real units.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TargetErrors {
    /// Mean squared error.
    pub mse_raw: f64,
    /// Mean absolute error.
    pub mae_raw: f64,
}

/// A forecaster evaluated over every window of a row range.
#[derive(Debug, Clone, Serialize)]
pub struct ForecasterEval {
    /// Windows evaluated.
    pub windows: usize,
    /// The data rows `[start, end)`.
    pub rows: [usize; 2],
    /// Lookback of the model.
    pub lookback: usize,
    /// Horizon of the model.
    pub horizon: usize,
    /// MSE on normalized values, over all targets.
    pub mse: f64,
    /// MAE on normalized values.
    pub mae: f64,
    /// The model's MASE (see [`crate::baselines`]): below 1 beats seasonal naive in sample.
    pub mase: f64,
    /// Per target name, in real units.
    pub per_target: BTreeMap<String, TargetErrors>,
    /// Naive and seasonal naive on the same windows.
    pub baselines: Baselines,
    /// Windows forecast per second.
    pub windows_per_second: f64,
    /// Precision of the bundle's graph.
    pub precision: String,
}

impl ForecasterEval {
    /// The report of `errors` over rows `[start, end)`, measured in `seconds`, beside the
    /// `baselines` of the same windows.
    pub fn new(
        errors: &ForecastErrors,
        baselines: Baselines,
        (start, end): (usize, usize),
        meta: &crate::manifest::ForecasterMeta,
        seconds: f64,
        precision: &str,
    ) -> ForecasterEval {
        ForecasterEval {
            mase: baselines.mase(&errors.mae_raw),
            baselines,
            windows: errors.windows,
            rows: [start, end],
            lookback: meta.lookback,
            horizon: meta.horizon,
            mse: errors.mse,
            mae: errors.mae,
            per_target: meta
                .targets
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let e = TargetErrors {
                        mse_raw: errors.mse_raw[k],
                        mae_raw: errors.mae_raw[k],
                    };
                    (name.clone(), e)
                })
                .collect(),
            windows_per_second: errors.windows as f64 / seconds.max(1e-9),
            precision: precision.to_owned(),
        }
    }
}

/// Evaluates `forecaster` on every window of rows `[start, end)` of `series` (its columns),
/// beside the naive baselines of the same windows (`season`: rows, else from the time step);
/// `tick` is called after each window.
pub fn evaluate_forecaster(
    forecaster: &mut crate::forecast::Forecaster,
    series: &crate::series::Series,
    (start, end): (usize, usize),
    season: Option<usize>,
    precision: &str,
    tick: &dyn Fn(),
) -> crate::error::Result<ForecasterEval> {
    let meta = forecaster.meta.clone();
    let started = std::time::Instant::now();
    let errors = forecaster.evaluate(series, start, end, tick)?;
    let seconds = started.elapsed().as_secs_f64();
    let season = crate::baselines::season_for(series, meta.step_seconds, season);
    let baselines = crate::baselines::baselines(series, &meta, (start, end), season)?;
    Ok(ForecasterEval::new(
        &errors,
        baselines,
        (start, end),
        &meta,
        seconds,
        precision,
    ))
}
