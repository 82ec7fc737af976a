//! Rerunning a bundle's self-test vectors on this machine.

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::manifest::SelfTest;
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
    let mut model = Model::from_task(crate::task::from_bundle(bundle)?);
    verify_model(&bundle.manifest.self_test, &mut model, &bundle.path)
}

/// Runs every case of `test` on a loaded model (`path` names the bundle in errors).
pub fn verify_model(test: &SelfTest, model: &mut Model, path: &Path) -> Result<VerifyReport> {
    let mut max_abs_deviation = 0f32;
    for (i, case) in test.cases.iter().enumerate() {
        // an input the model refuses is the bundle's fault, not the caller's
        let outputs = model
            .task_dyn()
            .self_test_outputs(case)
            .map_err(|e| match e {
                Error::BadInput(reason) => Error::BadBundle {
                    path: path.to_owned(),
                    reason: format!("self-test case {i}: {reason}"),
                },
                e => e,
            })?;
        max_abs_deviation = max_abs_deviation.max(max_deviation(&outputs, &case.expected));
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
