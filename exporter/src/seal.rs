//! The steps every export ends with, whatever it built: self-test vectors computed by the
//! graph as the runtime will load it (and checked against the graph in memory), then the
//! bundle written atomically, read back, verified and its memory needs recorded.

use crate::error::{ExportError, Result};
use kinglet_runtime::bundle::Bundle;
use kinglet_runtime::manifest::SelfTestCase;
use kinglet_runtime::verify::max_deviation;
use kinglet_runtime::Task;
use std::path::Path;

/// Largest deviation allowed between the serialized graph and the graph in memory.
const ROUND_TRIP_TOLERANCE: f32 = 1e-5;

/// Fills the expected outputs of `cases` (inputs only) from `reloaded` (the task read back
/// from the bundle's NNEF bytes) and refuses a serialization that changed the graph: each
/// case's outputs from `in_memory` must agree. Returns the cases and the largest deviation.
pub(crate) fn self_test_cases(
    reloaded: &mut dyn Task,
    in_memory: &mut dyn Task,
    mut cases: Vec<SelfTestCase>,
) -> Result<(Vec<SelfTestCase>, f32)> {
    crate::progress::stage("self-test: reloading the serialized graph");
    let mut deviation = 0f32;
    for case in &mut cases {
        case.expected = reloaded.self_test_outputs(case)?;
        let direct = in_memory.self_test_outputs(case)?;
        deviation = deviation.max(max_deviation(&case.expected, &direct));
    }
    if deviation > ROUND_TRIP_TOLERANCE {
        return Err(ExportError::SelfTest(format!(
            "the serialized graph deviates from the built one by {deviation:e}"
        )));
    }
    Ok((cases, deviation))
}

/// What sealing measured of the written bundle.
pub(crate) struct Sealed {
    /// Size of the file.
    pub bundle_bytes: u64,
    /// Every layer with weights and the precision it is stored in, as written.
    pub layers: Vec<kinglet_runtime::layers::LayerPrecision>,
}

/// Writes `bundle` to `out` (atomically), reads it back and reruns its self-test (removing
/// the file when it fails), then records its memory needs in its manifest.
pub(crate) fn seal(bundle: &mut Bundle, out: &Path) -> Result<Sealed> {
    crate::progress::stage("writing and verifying the bundle");
    bundle.write(out).map_err(ExportError::io(out))?;
    let report = kinglet_runtime::verify::verify(&Bundle::read(out)?)?;
    if !report.passed() {
        let _ = std::fs::remove_file(out);
        return Err(ExportError::SelfTest(format!(
            "written bundle deviates by {:e} (tolerance {:e})",
            report.max_abs_deviation, report.tolerance
        )));
    }
    record_memory(bundle, out)?;
    Ok(Sealed {
        bundle_bytes: std::fs::metadata(out).map_err(ExportError::io(out))?.len(),
        layers: kinglet_runtime::layers::of_bundle(out)?,
    })
}

/// Runs the runtime's memory preflight on the written bundle (loading it exactly as `kinglet`
/// will) and stores the result, with a default budget, in its manifest. Without kinglet's
/// allocator in this program (a library caller) nothing can be measured and the manifest is
/// left without a `memory` entry.
pub(crate) fn record_memory(bundle: &mut Bundle, out: &Path) -> Result<()> {
    use kinglet_runtime::memory::LoadOptions;
    crate::progress::stage("measuring memory needs");
    use kinglet_runtime::Model;
    let loaded = Model::load(out, &LoadOptions::default())?;
    let Some(m) = loaded.model.memory() else {
        return Ok(());
    };
    const MIB: u64 = 1 << 20;
    bundle.manifest.memory = Some(kinglet_runtime::manifest::MemoryManifest {
        peak_bytes: m.peak_bytes,
        margin_bytes: m.margin_bytes,
        budget_bytes: (m.needs_bytes + m.needs_bytes / 4).div_ceil(MIB) * MIB,
        measured_at: m.measured_at.clone(),
        measured_on: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
    });
    drop(loaded);
    bundle.write(out).map_err(ExportError::io(out))
}
