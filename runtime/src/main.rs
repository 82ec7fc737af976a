//! `kinglet`: see `kinglet --help`.

fn main() -> std::process::ExitCode {
    kinglet_runtime::cli::main()
}
