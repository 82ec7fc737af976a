//! `kinglet install NEW.kinglet --into DIR [--require-signed KEYS] [--budget SIZE]`

use super::model_path::read_trusted;
use crate::memory::LoadOptions;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new bundle.
    #[arg(value_name = "NEW.kinglet")]
    bundle: PathBuf,
    /// Install directory: the bundle is copied to DIR/bundles, checked there, and DIR/current
    /// switched to it; the bundle it replaces stays as DIR/previous.
    #[arg(long, value_name = "DIR")]
    into: PathBuf,
    /// Install only a bundle signed by one of the keys in FILE (see `kinglet verify`).
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
    let report = crate::install::install(&args.bundle, &args.into, &options)?;
    let i = &report.installed;
    let current = args.into.join(crate::install::CURRENT);
    if args.json {
        let object = serde_json::json!({
            "bundle": args.bundle,
            "current": current,
            "installed": i.path,
            "already_current": report.already_current,
            "sha256": i.sha256_hex,
            "signer": i.signer.as_ref().map(|k| k.to_hex()),
            "self_test_cases": i.self_test.cases,
            "max_abs_deviation": i.self_test.max_abs_deviation,
            "previous": report.previous,
            "removed": report.removed,
        });
        outln!("{object}");
        return Ok(());
    }
    if report.already_current {
        outln!(
            "{} is already current ({})",
            args.bundle.display(),
            i.path.display()
        );
    } else {
        outln!(
            "installed {} as {}",
            args.bundle.display(),
            current.display()
        );
    }
    outln!(
        "  {} (sha256 {}), {}; self-test {} cases, max |Δ| = {:.3e}: ok",
        i.path.display(),
        i.sha256_hex,
        super::verify::signed_by(i.signer.as_ref()),
        i.self_test.cases,
        i.self_test.max_abs_deviation
    );
    match &report.previous {
        Some(p) => outln!(
            "  previous: {} (kinglet rollback --into {})",
            p.display(),
            args.into.display()
        ),
        None => outln!("  previous: none"),
    }
    for r in &report.removed {
        outln!("  removed {}", r.display());
    }
    Ok(())
}
