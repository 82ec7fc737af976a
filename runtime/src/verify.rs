//! Rerunning a bundle's self-test vectors on this machine.

use crate::bundle::Bundle;
use crate::classify::Classifier;
use crate::error::{Error, Result};
use crate::forecast::Forecaster;
use crate::manifest::{ModelKind, SelfTest};
use crate::model::Model;
use std::path::Path;

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

/// What `kinglet verify` reports on a loaded bundle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelVerification {
    /// The bundle.
    pub model: std::path::PathBuf,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Self-test cases run.
    pub cases: usize,
    /// Largest deviation from the stored outputs.
    pub max_abs_deviation: f32,
    /// The bundle's tolerance.
    pub tolerance: f32,
    /// Every output within tolerance.
    pub passed: bool,
    /// The key (hex) whose signature was checked, when signed.
    pub signer: Option<String>,
}

/// Reruns the self-test of a loaded bundle read from `path`.
pub fn verify_loaded(loaded: &mut crate::model::Loaded, path: &Path) -> Result<ModelVerification> {
    let report = verify_model(&loaded.manifest.self_test, &mut loaded.model, path)?;
    Ok(ModelVerification {
        model: path.to_owned(),
        sha256: loaded.sha256_hex.clone(),
        cases: report.cases,
        max_abs_deviation: report.max_abs_deviation,
        tolerance: report.tolerance,
        passed: report.passed(),
        signer: loaded.signer.as_ref().map(|k| k.to_hex()),
    })
}

/// Runs every self-test case of `bundle` and measures the deviation from the stored outputs.
pub fn verify(bundle: &Bundle) -> Result<VerifyReport> {
    let mut model = match &bundle.manifest.model {
        ModelKind::Classifier(_) => Model::Classifier(Box::new(Classifier::from_bundle(bundle)?)),
        ModelKind::Forecaster(_) => Model::Forecaster(Box::new(Forecaster::from_bundle(bundle)?)),
    };
    verify_model(&bundle.manifest.self_test, &mut model, &bundle.path)
}

/// Runs every case of `test` on a loaded model (`path` names the bundle in errors).
pub fn verify_model(test: &SelfTest, model: &mut Model, path: &Path) -> Result<VerifyReport> {
    let missing = |case: usize, what: &str| Error::BadBundle {
        path: path.to_owned(),
        reason: format!("self-test case {case} has no {what}"),
    };
    let mut max_abs_deviation = 0f32;
    for (i, case) in test.cases.iter().enumerate() {
        let deviation = match model {
            Model::Classifier(classifier) => {
                let text = case.text.as_deref().ok_or_else(|| missing(i, "text"))?;
                max_deviation(&classifier.outputs(text)?, &case.expected)
            }
            Model::Forecaster(forecaster) => {
                let window = case.window.as_deref().ok_or_else(|| missing(i, "window"))?;
                max_deviation(&forecaster.forecast(window)?.normalized, &case.expected)
            }
        };
        max_abs_deviation = max_abs_deviation.max(deviation);
    }
    Ok(VerifyReport {
        cases: test.cases.len(),
        max_abs_deviation,
        tolerance: test.tolerance,
    })
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
