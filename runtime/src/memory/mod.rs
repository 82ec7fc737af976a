//! Memory: how much a model needs, the budget it must stay inside, and the fixed arena its
//! inferences run in.
//!
//! Loading a bundle with [`crate::Classifier::load`] or [`crate::Forecaster::load`] measures,
//! with kinglet's counting allocator ([`allocator`]):
//!
//! * the tokenizer, the weights (the graph's constant tensors as parsed) and the optimized plan
//!   (everything else tract keeps: packed weights, state);
//! * the **preflight**: one inference at the largest input the bundle accepts (its max tokens,
//!   or its lookback window), whose peak above the resident model is the activation peak;
//! * `peak_bytes`: the most bytes held at any moment from opening the file through that
//!   inference (loading's transient copies included).
//!
//! The arena is the activation peak plus a margin of a quarter of it, at least 1 MiB
//! ([`margin_bytes`]), for the allocator's bookkeeping and fragmentation. A model needs
//! `peak_bytes + margin`; a budget below that is refused at load with both numbers. Once loaded,
//! every inference allocates from the arena only; one that would not fit gets an error of its
//! own and the next request is served normally.

pub mod allocator;

pub use allocator::{
    arena_bytes, installed, live_bytes, peak_bytes, reserve_arena, reset_peak, system_calls,
    ArenaScope, KingletAllocator, SystemCalls,
};

use crate::error::{Error, Result};
use serde::Serialize;

const MIB: f64 = 1024.0 * 1024.0;

/// `bytes` as MiB with one decimal, e.g. `37.9 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// Parses a memory size: `48MiB`, `64MB`, `1.5GiB`, `512KiB`, `65536` (bytes), `32M` (MiB).
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 48MiB or 64MB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => MIB,
        "mb" => 1e6,
        "g" | "gib" => MIB * 1024.0,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok(bytes.round() as u64)
}

/// Headroom added to a measured activation peak to size the arena.
pub fn margin_bytes(activation_peak_bytes: u64) -> u64 {
    (activation_peak_bytes / 4).max(1 << 20)
}

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Memory budget in bytes; `None` uses the bundle's default (if it has one).
    pub budget_bytes: Option<u64>,
    /// Refuse a bundle that is not signed by one of these keys (`--require-signed`);
    /// `None` accepts unsigned bundles (a signed one is always checked).
    pub trusted: Option<crate::signature::TrustedKeys>,
    /// The model replaces one already loaded in this process that is dropped after it (a
    /// reload in `kinglet serve`): the arena already reserved is reused for as much as its
    /// free space covers, instead of reserving a second one beside it.
    pub reuse_arena: bool,
}

/// What a loaded model holds, measured at load.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemoryReport {
    /// Parsed tokenizer (0 for forecasters).
    pub tokenizer_bytes: u64,
    /// The graph's constant tensors as parsed from the bundle.
    pub weights_bytes: u64,
    /// What the optimized plan holds besides those weights (packed copies replace them, so
    /// this can be below zero; reported as the difference).
    pub plan_bytes: i64,
    /// Held between requests: tokenizer, weights, plan, reusable buffers.
    pub resident_bytes: u64,
    /// Most bytes held while loading (file reads, parsed and packed weights side by side).
    pub load_peak_bytes: u64,
    /// Most bytes one inference at the largest input allocated on top of the resident model.
    pub activation_peak_bytes: u64,
    /// Most bytes held at any moment from opening the file through the preflight inference.
    pub peak_bytes: u64,
    /// Headroom added to the activation peak for the arena.
    pub margin_bytes: u64,
    /// The inference arena reserved at load: activation peak plus margin.
    pub arena_bytes: u64,
    /// What the model needs: `peak_bytes + margin_bytes`.
    pub needs_bytes: u64,
    /// The budget it was loaded under, if any.
    pub budget_bytes: Option<u64>,
    /// The input size of the preflight, e.g. `128 tokens`.
    pub measured_at: String,
}

/// Measures a load step by step (live bytes relative to its start, and the peak).
#[derive(Debug)]
pub(crate) struct LoadMeter {
    start_bytes: usize,
    enabled: bool,
}

impl LoadMeter {
    pub(crate) fn start() -> LoadMeter {
        let enabled = installed();
        reset_peak();
        LoadMeter {
            start_bytes: live_bytes(),
            enabled,
        }
    }

    /// Bytes allocated since the start and still held.
    pub(crate) fn held(&self) -> u64 {
        live_bytes().saturating_sub(self.start_bytes) as u64
    }

    /// Peak since the start.
    pub(crate) fn peak(&self) -> u64 {
        peak_bytes().saturating_sub(self.start_bytes) as u64
    }

    /// Runs the preflight inference, reserves the arena and checks the budget; then runs the
    /// preflight again inside the arena, and while it does not fit (the arena's heap fragments:
    /// a text of 16 K one-byte tokens needs more arena than its peak of live bytes), adds what
    /// overflowed and half as much again, so that the worst request the limits allow fits.
    pub(crate) fn finish(
        self,
        parts: Parts,
        budget: Budget,
        measured_at: String,
        mut preflight: impl FnMut() -> Result<()>,
    ) -> Result<Option<MemoryReport>> {
        if !self.enabled {
            // A bundle's default budget cannot be checked without the allocator and is
            // skipped; a budget the caller asked for is refused rather than silently ignored.
            return match budget.explicit_bytes {
                Some(_) => Err(Error::Budget(
                    "a memory budget needs kinglet's allocator, which this program does not \
                     install (#[global_allocator])"
                        .into(),
                )),
                None => {
                    preflight()?;
                    Ok(None)
                }
            };
        }
        let budget_bytes = budget.explicit_bytes.or(budget.default_bytes);
        let load_peak_bytes = self.peak();
        let before = live_bytes();
        reset_peak();
        preflight()?;
        let activation_peak_bytes = peak_bytes().saturating_sub(before) as u64;
        let resident_bytes = self.held();
        let peak = load_peak_bytes
            .max(before.saturating_sub(self.start_bytes) as u64 + activation_peak_bytes);
        let margin = margin_bytes(activation_peak_bytes);
        let mut report = MemoryReport {
            tokenizer_bytes: parts.tokenizer_bytes,
            weights_bytes: parts.weights_bytes,
            plan_bytes: parts.model_bytes as i64 - parts.weights_bytes as i64,
            resident_bytes,
            load_peak_bytes,
            activation_peak_bytes,
            peak_bytes: peak,
            margin_bytes: margin,
            arena_bytes: activation_peak_bytes + margin,
            needs_bytes: peak + margin,
            budget_bytes,
            measured_at,
        };
        let check_budget = |report: &MemoryReport| match budget_bytes {
            Some(budget) if report.needs_bytes > budget => Err(Error::Budget(format!(
                "model needs {} at {}; budget is {}",
                mib(report.needs_bytes),
                report.measured_at,
                mib(budget)
            ))),
            _ => Ok(()),
        };
        check_budget(&report)?;
        let reserve =
            |bytes: u64| reserve_arena(bytes as usize).map_err(|e| Error::Budget(e.to_string()));
        let (arena_total, arena_used) = arena_bytes();
        let free = match budget.reuse_arena {
            true => arena_total.saturating_sub(arena_used) as u64,
            false => 0,
        };
        if report.arena_bytes > free {
            reserve(report.arena_bytes - free)?;
        }
        for _ in 0..4 {
            let scope = ArenaScope::enter();
            let result = preflight();
            let overflow = scope.finish() as u64;
            result?;
            if overflow == 0 {
                return Ok(Some(report));
            }
            let extra = overflow + overflow / 2;
            report.margin_bytes += extra;
            report.arena_bytes += extra;
            report.needs_bytes += extra;
            check_budget(&report)?;
            reserve(extra)?;
        }
        Err(Error::Budget(format!(
            "the largest request does not settle inside a {} arena",
            mib(report.arena_bytes)
        )))
    }
}

/// The budget a model is loaded under.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Budget {
    /// Asked for by the caller (`--budget`).
    pub explicit_bytes: Option<u64>,
    /// Stored in the bundle by the exporter.
    pub default_bytes: Option<u64>,
    /// See [`LoadOptions::reuse_arena`].
    pub reuse_arena: bool,
}

impl Budget {
    pub(crate) fn new(options: &LoadOptions, manifest: &crate::manifest::Manifest) -> Budget {
        Budget {
            explicit_bytes: options.budget_bytes,
            default_bytes: manifest.memory.as_ref().map(|m| m.budget_bytes),
            reuse_arena: options.reuse_arena,
        }
    }
}

/// Sizes of the parts of a model, measured while loading it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Parts {
    pub tokenizer_bytes: u64,
    pub weights_bytes: u64,
    /// Optimized model (weights as the plan holds them + plan).
    pub model_bytes: u64,
}

/// Bytes of every constant tensor in a model (its weights as parsed).
pub fn constant_bytes(model: &tract_nnef::prelude::TypedModel) -> u64 {
    use tract_nnef::tract_core::ops::konst::Const;
    model
        .nodes()
        .iter()
        .filter_map(|n| n.op_as::<Const>())
        .map(|c| {
            let t = c.val();
            if t.datum_type().is_copy() {
                (t.len() * t.datum_type().size_of()) as u64
            } else {
                0 // blobs and strings: none in kinglet graphs
            }
        })
        .sum()
}

/// Runs `f` inside the arena when the model has one; an inference that outgrew the arena
/// becomes an error for this request only.
pub fn run_in_arena<T>(report: Option<&MemoryReport>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let Some(report) = report else {
        return f();
    };
    let scope = ArenaScope::enter();
    let result = f();
    let overflow = scope.finish();
    if overflow > 0 {
        drop(result);
        return Err(Error::ArenaExceeded(format!(
            "this request needed {} more than the {} inference arena; the request was refused \
             and the model keeps serving (load with a larger --budget or send a shorter input)",
            mib(overflow as u64),
            mib(report.arena_bytes)
        )));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_bytes("48MiB"), Ok(48 << 20));
        assert_eq!(parse_bytes("64MB"), Ok(64_000_000));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("32m"), Ok(32 << 20));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn mib_has_one_decimal() {
        assert_eq!(mib(37_900_000), "36.1 MiB");
        assert_eq!(mib(32 << 20), "32.0 MiB");
    }
}
