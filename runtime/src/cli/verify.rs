//! `kinglet verify --model M`

use super::{CliError, ModelArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Print the result as one JSON object (and a failure as a JSON error on standard error).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.model.path()?;
    let mut loaded = args.model.load()?;
    let report = crate::verify::verify_loaded(&mut loaded, &path)?;
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        let verdict = if report.passed { "ok" } else { "FAILED" };
        outln!(
            "{}: {} self-test cases, max |Δ| = {:.3e} (tolerance {:.1e}): {verdict}",
            path.display(),
            report.cases,
            report.max_abs_deviation,
            report.tolerance
        );
        outln!("{}", signed_by(loaded.signer.as_ref()));
    }
    if !report.passed {
        return Err(CliError::SelfTest(format!(
            "self-test deviation {:.3e} exceeds tolerance {:.1e}",
            report.max_abs_deviation, report.tolerance
        ))
        .into());
    }
    Ok(())
}

/// `signed by ed25519 HEX (signature checked)` or `unsigned`.
pub fn signed_by(signer: Option<&crate::signature::PublicKey>) -> String {
    match signer {
        Some(key) => format!("signed by ed25519 {} (signature checked)", key.to_hex()),
        None => "unsigned".into(),
    }
}
