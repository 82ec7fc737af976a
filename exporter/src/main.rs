//! `kinglet-export`: see `kinglet-export --help`.

/// kinglet's counting allocator, so the export can run the runtime's memory preflight and
/// store `peak_bytes` and a default budget in the bundle.
#[global_allocator]
static ALLOCATOR: kinglet_runtime::memory::KingletAllocator =
    kinglet_runtime::memory::KingletAllocator;

fn main() -> std::process::ExitCode {
    kinglet_exporter::cli::main()
}
