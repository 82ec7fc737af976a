//! End-to-end tests of kinglet: exporter, bundle, runtime and CLI together.
//!
//! All integration tests build into this one binary. Tests that need ../shared (real data and
//! models) go through [`shared::shared_dir`], which skips with a notice when it is absent and
//! fails when `KINGLET_REQUIRE_SHARED=1`.

mod bad_input;
mod cli;
mod conventions;
mod embed;
mod fit;
mod forecast;
mod hf_fixtures;
mod hostile_bundles;
mod http;
mod memory;
mod mutations;
mod ordinary_input;
mod pairs;
mod protocol;
mod quantized;
mod readme;
mod sentiment;
mod serial;
mod shared;
mod signing;
mod tag;
mod updates;
