//! The bundle loader on checksum-valid hostile files: the harness re-seals what the fuzzer
//! writes, so mutations reach the manifest, the NNEF tar and the `.dat` tensors instead of
//! stopping at the CRC. Loading may fail (with an error); it must not panic, hang or grow past
//! libFuzzer's `-rss_limit_mb`. A bundle that loads is self-tested and asked one forecast.
//!
//! The first input byte picks what the rest of the input is:
//! 0: a whole bundle file (its trailing CRC and length are rewritten);
//! 1 / 2: the manifest / graph section of the shipped DLinear bundle;
//! 3 / 4: the manifest / graph section of the shipped LSTM bundle.
//!
//! cd runtime/fuzz && cargo +nightly fuzz run bundle corpus/bundle -- -max_len=400000 \
//!     -rss_limit_mb=512 -timeout=10 -max_total_time=600
#![no_main]

use kinglet_runtime::memory::{KingletAllocator, LoadOptions};
use kinglet_runtime::model::Model;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[global_allocator]
static ALLOCATOR: KingletAllocator = KingletAllocator;

const DLINEAR: &[u8] = include_bytes!("../../../models/etth1-dlinear.kinglet");
const LSTM: &[u8] = include_bytes!("../../../models/etth1-lstm.kinglet");

type Sections = Vec<(Vec<u8>, Vec<u8>)>;

fn sections_of(bytes: &[u8]) -> Sections {
    let count = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    (0..count)
        .map(|i| {
            let e = &bytes[32 + 32 * i..64 + 32 * i];
            let off = u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(e[24..32].try_into().unwrap()) as usize;
            (e[..16].to_vec(), bytes[off..off + len].to_vec())
        })
        .collect()
}

fn seal(sections: &Sections) -> Vec<u8> {
    let table_end = 32 + 32 * sections.len();
    let mut out = b"KINGLET\0".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    out.resize(32, 0);
    let mut offset = table_end as u64;
    for (name, body) in sections {
        out.extend_from_slice(name);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        offset += body.len() as u64;
    }
    for (_, body) in sections {
        out.extend_from_slice(body);
    }
    reseal(out)
}

fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let total = bytes.len() + 4;
    if bytes.len() >= 20 {
        bytes[12..20].copy_from_slice(&(total as u64).to_le_bytes());
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn with_section(shipped: &[u8], name: &str, body: &[u8]) -> Vec<u8> {
    let mut sections = sections_of(shipped);
    for s in &mut sections {
        if s.0.starts_with(name.as_bytes()) && s.0[name.len()..].iter().all(|&b| b == 0) {
            s.1 = body.to_vec();
        }
    }
    seal(&sections)
}

fn scratch() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("kinglet-fuzz-{}.kinglet", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = match mode % 5 {
        0 => {
            let body = rest.get(..rest.len().saturating_sub(4)).unwrap_or(rest);
            reseal(body.to_vec())
        }
        1 => with_section(DLINEAR, "manifest", rest),
        2 => with_section(DLINEAR, "graph", rest),
        3 => with_section(LSTM, "manifest", rest),
        _ => with_section(LSTM, "graph", rest),
    };
    let path = scratch();
    std::fs::write(path, &file).unwrap();
    if let Ok(mut loaded) = Model::load(path, &LoadOptions::default()) {
        let _ = kinglet_runtime::verify::verify_model(
            &loaded.manifest.self_test,
            &mut loaded.model,
            path,
        );
        if let Model::Forecaster(f) = &mut loaded.model {
            let n = f.meta.lookback * f.meta.columns.len();
            let _ = f.forecast(&vec![0.5f32; n]);
        }
    }
});
