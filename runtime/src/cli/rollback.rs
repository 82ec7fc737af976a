//! `kinglet rollback --into DIR [--require-signed KEYS] [--budget SIZE]`

use super::model_path::read_trusted;
use crate::memory::LoadOptions;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Install directory of `kinglet install`.
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
    /// Roll back only to a bundle signed by one of the keys in FILE.
    #[arg(long, value_name = "FILE")]
    require_signed: Option<PathBuf>,
    /// Memory budget the bundle must load under [default: the bundle's own].
    #[arg(long, value_name = "SIZE", value_parser = crate::memory::parse_bytes)]
    budget: Option<u64>,
    /// Print the result as one JSON object (and a failure as a JSON error on standard error).
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = LoadOptions {
        budget_bytes: args.budget,
        trusted: read_trusted(args.require_signed.as_deref())?,
        ..Default::default()
    };
    let report = crate::install::rollback(&args.into, &options)?;
    if args.json {
        let object = serde_json::json!({
            "current": report.current.path,
            "sha256": report.current.sha256_hex,
            "signer": report.current.signer.as_ref().map(|k| k.to_hex()),
            "self_test_cases": report.current.self_test.cases,
            "previous": report.previous,
        });
        outln!("{object}");
        return Ok(());
    }
    outln!(
        "rolled back: {} is current again ({}; self-test {} cases: ok); previous: {}",
        report.current.path.display(),
        super::verify::signed_by(report.current.signer.as_ref()),
        report.current.self_test.cases,
        report.previous.display()
    );
    Ok(())
}
