//! `kinglet-export`: see `kinglet-export --help`.

fn main() -> std::process::ExitCode {
    kinglet_exporter::cli::main()
}
