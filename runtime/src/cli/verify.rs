//! `kinglet verify --model M`

use super::{CliError, ModelArg};
use crate::bundle::Bundle;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bundle = Bundle::read(args.model.path()?)?;
    let report = crate::verify::verify(&bundle)?;
    let verdict = if report.passed() { "ok" } else { "FAILED" };
    println!(
        "{}: {} self-test cases, max |Δ| = {:.3e} (tolerance {:.1e}): {verdict}",
        bundle.path.display(),
        report.cases,
        report.max_abs_deviation,
        report.tolerance
    );
    if !report.passed() {
        return Err(CliError::SelfTest(format!(
            "self-test deviation {:.3e} exceeds tolerance {:.1e}",
            report.max_abs_deviation, report.tolerance
        ))
        .into());
    }
    Ok(())
}
