//! The committed C headers are exactly what cbindgen generates: `include/kinglet.h` from
//! `src/lib.rs` with `cbindgen.toml`, and the MCU client's `firmware/examples/mcu_client.h`
//! from `mcu_client.rs` with `mcu_client.cbindgen.toml`. `KINGLET_BLESS_HEADER=1` rewrites them
//! after an API change.
#![cfg(target_arch = "x86_64")]

use std::path::PathBuf;

/// Generates `header` from `source` with `config` (paths relative to this crate) and compares
/// it with the committed file, or rewrites it under `KINGLET_BLESS_HEADER`.
fn check(source: &str, config: &str, header: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join(config)).expect("cbindgen config");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join(source))
        .generate()
        .expect("cbindgen reads the source")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = dir.join(header);
    if std::env::var_os("KINGLET_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{header} differs from cbindgen's output; regenerate it with \
         KINGLET_BLESS_HEADER=1 cargo test -p kinglet-capi --test header\n--- generated\n{generated}"
    );
}

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    check("src/lib.rs", "cbindgen.toml", "include/kinglet.h");
}

#[test]
fn the_mcu_clients_header_is_what_cbindgen_generates() {
    check(
        "../firmware/examples/mcu_client.rs",
        "../firmware/examples/mcu_client.cbindgen.toml",
        "../firmware/examples/mcu_client.h",
    );
}
