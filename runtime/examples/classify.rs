//! Classify texts with a kinglet bundle from Rust.
//!
//! `cargo run --release -p kinglet-runtime --example classify -- [MODEL.kinglet [TEXT…]]`
//! (default: the shipped `models/sentiment.kinglet` and three reviews; `cargo test --examples`
//! runs it so, ignoring the test harness's arguments).

use kinglet_runtime::{Classifier, LoadOptions};

/// Counts allocations and gives every inference its fixed arena (see `kinglet_runtime::memory`):
/// without it the model still answers, but no budget is measured or kept.
#[global_allocator]
static ALLOCATOR: kinglet_runtime::KingletAllocator = kinglet_runtime::KingletAllocator;

fn main() -> Result<(), kinglet_runtime::Error> {
    // MODEL.kinglet then texts; anything else (a test harness's filters) is not ours
    let args: Vec<String> = std::env::args().skip(1).collect();
    let given = args.iter().position(|a| a.ends_with(".kinglet"));
    let model = given.map_or_else(|| shipped("sentiment.kinglet"), |i| args[i].clone());
    let mut texts: Vec<String> = given.map_or_else(Vec::new, |i| args[i + 1..].to_vec());
    if texts.is_empty() {
        texts = [
            "a gorgeous, moving film",
            "the worst movie of the year",
            "fine",
        ]
        .map(String::from)
        .into();
    }
    // refuse to load past 48 MiB (weights, plan and the largest inference, measured at load)
    let options = LoadOptions {
        budget_bytes: Some(48 << 20),
        ..LoadOptions::default()
    };
    let mut classifier = Classifier::load(&model, &options)?;
    if let Some(memory) = classifier.memory() {
        println!(
            "{model}: needs {} bytes, arena {} bytes",
            memory.needs_bytes, memory.arena_bytes
        );
    }
    for text in &texts {
        let answer = classifier.classify(text, None)?;
        println!("{:<10} {:.4}  {text}", answer.label, answer.score);
    }
    Ok(())
}

/// A shipped model, found from the repository root or from `runtime/` (where `cargo test`
/// runs examples).
fn shipped(name: &str) -> String {
    ["models", "../models"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| format!("models/{name}"))
}
