//! `include/kinglet.h` is exactly what cbindgen generates from `src/lib.rs` with
//! `cbindgen.toml`. `KINGLET_BLESS_HEADER=1` rewrites it after an API change.
#![cfg(target_arch = "x86_64")]

use std::path::PathBuf;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen reads src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = dir.join("include/kinglet.h");
    if std::env::var_os("KINGLET_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/kinglet.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/kinglet.h differs from cbindgen's output; regenerate it with \
         KINGLET_BLESS_HEADER=1 cargo test -p kinglet-capi --test header\n--- generated\n{generated}"
    );
}
