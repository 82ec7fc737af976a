//! Rerunning a bundle's self-test vectors on this machine.

use crate::bundle::Bundle;
use crate::classify::Classifier;
use crate::error::{Error, Result};
use crate::forecast::Forecaster;
use crate::manifest::ModelKind;

/// Outcome of a self-test run.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// Number of cases run.
    pub cases: usize,
    /// Largest absolute deviation between stored and recomputed outputs.
    pub max_abs_deviation: f32,
    /// Tolerance stored in the bundle.
    pub tolerance: f32,
}

impl VerifyReport {
    /// True when every output is within tolerance.
    pub fn passed(&self) -> bool {
        self.max_abs_deviation <= self.tolerance
    }
}

/// Runs every self-test case of `bundle` and measures the deviation from the stored outputs.
pub fn verify(bundle: &Bundle) -> Result<VerifyReport> {
    let test = &bundle.manifest.self_test;
    let mut max_abs_deviation = 0f32;
    match &bundle.manifest.model {
        ModelKind::Classifier(_) => {
            let mut classifier = Classifier::from_bundle(bundle)?;
            for (i, case) in test.cases.iter().enumerate() {
                let text = case
                    .text
                    .as_deref()
                    .ok_or_else(|| missing(bundle, i, "text"))?;
                let got = classifier.classify(text, None)?;
                max_abs_deviation =
                    max_abs_deviation.max(max_deviation(&got.logits, &case.expected));
            }
        }
        ModelKind::Forecaster(_) => {
            let mut forecaster = Forecaster::from_bundle(bundle)?;
            for (i, case) in test.cases.iter().enumerate() {
                let window = case
                    .window
                    .as_deref()
                    .ok_or_else(|| missing(bundle, i, "window"))?;
                let got = forecaster.forecast(window)?;
                max_abs_deviation =
                    max_abs_deviation.max(max_deviation(&got.normalized, &case.expected));
            }
        }
    }
    Ok(VerifyReport {
        cases: test.cases.len(),
        max_abs_deviation,
        tolerance: test.tolerance,
    })
}

fn missing(bundle: &Bundle, case: usize, what: &str) -> Error {
    Error::BadBundle {
        path: bundle.path.clone(),
        reason: format!("self-test case {case} has no {what}"),
    }
}

/// Largest absolute element-wise difference; infinite when the lengths differ or a value is NaN.
pub fn max_deviation(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}
