//! `kinglet`: see `kinglet --help`.

/// Counts every allocation and serves inferences from the model's fixed arena
/// (see `kinglet_runtime::memory`).
#[global_allocator]
static ALLOCATOR: kinglet_runtime::memory::KingletAllocator =
    kinglet_runtime::memory::KingletAllocator;

fn main() -> std::process::ExitCode {
    kinglet_runtime::cli::main()
}
