//! A seeded mutation harness over the shipped bundles: each case edits one part of a bundle
//! (manifest JSON, tokenizer JSON, NNEF text, `.dat` headers, tar headers, section table, any
//! byte), re-seals it so the checksum passes, and runs the real `kinglet` on it. Every case
//! must end in an answer or a one-line refusal with a documented exit code, in under 10 s and
//! 256 MB of RSS: no abort, no hang, no runaway allocation.
//!
//! `cargo test --test e2e mutations` runs a lean sample. The full run of the issue:
//!
//! ```sh
//! KINGLET_MUTATION_CASES=4000 KINGLET_MUTATION_JOBS=2 KINGLET_BIN=target/release/kinglet \
//!   cargo test --test e2e mutations -- --nocapture
//! ```
//!
//! `KINGLET_MUTATION_SEED` changes the seed (default 14); `KINGLET_MUTATION_CASE=N` runs case
//! `N` alone. A case that fails is kept in `target/mutations/` with the command that ran it.

use crate::shared::repo_root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RSS_BYTES: u64 = 256 << 20;
/// Exit codes the CLI documents for a refusal.
const REFUSAL_CODES: [i32; 6] = [1, 3, 4, 5, 6, 7];

/// SplitMix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A bundle's sections, in table order.
pub(crate) type Sections = Vec<(String, Vec<u8>)>;

pub(crate) fn sections_of(bytes: &[u8]) -> Sections {
    let count = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    (0..count)
        .map(|i| {
            let e = &bytes[32 + 32 * i..64 + 32 * i];
            let name = String::from_utf8_lossy(&e[..16])
                .trim_end_matches('\0')
                .to_string();
            let off = u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(e[24..32].try_into().unwrap()) as usize;
            (name, bytes[off..off + len].to_vec())
        })
        .collect()
}

/// The container layout of `runtime/src/bundle.rs`, written independently of it.
pub(crate) fn seal(sections: &Sections) -> Vec<u8> {
    let table_end = 32 + 32 * sections.len();
    let total = table_end + sections.iter().map(|s| s.1.len()).sum::<usize>() + 4;
    let mut out = b"KINGLET\0".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.resize(32, 0);
    let mut offset = table_end as u64;
    for (name, body) in sections {
        let mut field = [0u8; 16];
        field[..name.len().min(16)].copy_from_slice(&name.as_bytes()[..name.len().min(16)]);
        out.extend_from_slice(&field);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        offset += body.len() as u64;
    }
    for (_, body) in sections {
        out.extend_from_slice(body);
    }
    reseal_crc(out)
}

/// Replaces (or appends) the trailing CRC so the file's checksum is valid again.
pub(crate) fn reseal_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let total = bytes.len() + 4;
    if bytes.len() >= 20 {
        bytes[12..20].copy_from_slice(&(total as u64).to_le_bytes());
    }
    let crc = crc32fast_hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// CRC-32 (IEEE), bitwise: the harness does not borrow the runtime's checksum code.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    !bytes.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Values that break assumptions: bounds, signs, types, sizes.
fn hostile_value(rng: &mut Rng, old: &serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    match rng.below(16) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(i64::MIN),
        4 => json!(1e308),
        5 => json!(4_294_967_296u64),
        6 => json!(1u64 << 40),
        7 => Value::Null,
        8 => json!(""),
        9 => json!("\u{1b}[31m\u{0}x".repeat(1 + rng.below(3))),
        10 => json!("x".repeat(1 << (10 + rng.below(10)))),
        11 => json!([]),
        12 => json!({}),
        13 => match old {
            Value::Array(a) if !a.is_empty() => {
                let keep = rng.below(a.len());
                Value::Array(a[..keep].to_vec())
            }
            Value::Array(_) => Value::Array(vec![json!(1.5); 1 << 16]),
            Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) * -1e6),
            _ => json!(true),
        },
        14 => {
            let mut v = json!(1);
            for _ in 0..(64 + rng.below(4000)) {
                v = json!([v]);
            }
            v
        }
        _ => match old {
            Value::Number(n) => json!(n
                .as_i64()
                .unwrap_or(0)
                .wrapping_add(1 + rng.below(3) as i64)),
            Value::String(s) => json!(format!("{s}{s}")),
            Value::Array(a) => {
                let mut a = a.clone();
                a.reverse();
                Value::Array(a)
            }
            _ => json!(7),
        },
    }
}

/// Picks a node of `root` by a random walk that stops early (so the structure near the top,
/// not the 30,000 vocabulary entries, gets most mutations) and replaces, deletes or adds.
fn mutate_json(rng: &mut Rng, root: &mut serde_json::Value) {
    use serde_json::Value;
    let mut node = root;
    loop {
        let stop = rng.chance(25);
        let next_is_container = match node {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        };
        if stop || !next_is_container {
            break;
        }
        let child = match node {
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                let key = rng.pick(&keys).clone();
                let child = &m[&key];
                let leaf = !matches!(child, Value::Object(_) | Value::Array(_));
                if leaf || rng.chance(30) {
                    // act on this field of the object
                    match rng.below(4) {
                        0 => {
                            m.remove(&key);
                        }
                        1 => {
                            let v = m[&key].clone();
                            m.insert(key, hostile_value(rng, &v));
                        }
                        2 => {
                            let v = m[&key].clone();
                            let extra = format!("{key}_{}", rng.below(100));
                            m.insert(extra, v);
                        }
                        _ => {
                            let v = m[&key].clone();
                            m.insert(key, hostile_value(rng, &v));
                        }
                    }
                    return;
                }
                m.get_mut(&key).unwrap()
            }
            Value::Array(a) => {
                let i = rng.below(a.len());
                a.get_mut(i).unwrap()
            }
            _ => unreachable!(),
        };
        node = child;
    }
    let old = node.clone();
    *node = hostile_value(rng, &old);
}

fn flip_bytes(rng: &mut Rng, data: &mut [u8], within: std::ops::Range<usize>) {
    if within.is_empty() {
        return;
    }
    for _ in 0..1 + rng.below(8) {
        let at = within.start + rng.below(within.len());
        data[at] = match rng.below(4) {
            0 => data[at] ^ (1 << rng.below(8)),
            1 => *rng.pick(b"0123456789-[](),;:\"{}\\ e.\0\xff"),
            2 => 0,
            _ => rng.next() as u8,
        };
    }
}

/// Tar entries: (header offset, name, data offset, size).
fn tar_entries(tar: &[u8]) -> Vec<(usize, String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let h = &tar[at..at + 512];
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size_text = String::from_utf8_lossy(&h[124..136]);
        let size =
            usize::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .unwrap_or(0);
        out.push((at, name, at + 512, size));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

fn set_tar_checksum(header: &mut [u8]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Rebuilds the tar with one entry's data replaced (sizes and checksums fixed up).
fn replace_tar_entry(tar: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, n, d, size) in tar_entries(tar) {
        let mut header = tar[h..h + 512].to_vec();
        let body = if n == name { data } else { &tar[d..d + size] };
        header[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
        set_tar_checksum(&mut header);
        out.extend_from_slice(&header);
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

const MUTATORS: [&str; 11] = [
    "manifest-json",
    "manifest-bytes",
    "tokenizer-json",
    "tokenizer-bytes",
    "nnef-text",
    "dat-header",
    "tar-header",
    "section-table",
    "any-byte",
    "section-resize",
    "tokenizer-known-traps",
];

/// Builds case `index`: which bundle, which mutation, the mutated bytes.
fn build_case(
    seed: u64,
    index: u64,
    sources: &[(String, Vec<u8>)],
) -> (String, &'static str, Vec<u8>) {
    let mut rng = Rng(seed.wrapping_mul(1_000_003).wrapping_add(index));
    // the sentiment bundle is the only one with a tokenizer and costs ~10x a forecaster
    let source = &sources[rng.below(sources.len())];
    let has_tokenizer = sources_of(&source.1).iter().any(|s| s.0 == "tokenizer");
    let mut mutator = *rng.pick(&MUTATORS);
    if mutator.starts_with("tokenizer") && !has_tokenizer {
        mutator = "manifest-json";
    }
    let mut sections = sections_of(&source.1);
    let find = |sections: &Sections, name: &str| sections.iter().position(|s| s.0 == name).unwrap();
    let bytes = match mutator {
        "manifest-json" | "tokenizer-json" | "tokenizer-known-traps" => {
            let name = if mutator == "manifest-json" {
                "manifest"
            } else {
                "tokenizer"
            };
            let i = find(&sections, name);
            let mut value: serde_json::Value = serde_json::from_slice(&sections[i].1).unwrap();
            if mutator == "tokenizer-known-traps" {
                tokenizer_trap(&mut rng, &mut value);
            } else {
                for _ in 0..1 + rng.below(3) {
                    mutate_json(&mut rng, &mut value);
                }
            }
            sections[i].1 = serde_json::to_vec(&value).unwrap();
            seal(&sections)
        }
        "manifest-bytes" | "tokenizer-bytes" => {
            let name = if mutator == "manifest-bytes" {
                "manifest"
            } else {
                "tokenizer"
            };
            let i = find(&sections, name);
            let len = sections[i].1.len();
            // mostly the structure near the top, where the fields are
            let span = if rng.chance(70) { len.min(4096) } else { len };
            flip_bytes(&mut rng, &mut sections[i].1, 0..span);
            seal(&sections)
        }
        "nnef-text" | "dat-header" | "tar-header" => {
            let g = find(&sections, "graph");
            let tar = sections[g].1.clone();
            let entries = tar_entries(&tar);
            let new_tar = match mutator {
                "nnef-text" => {
                    let (_, _, d, size) = entries
                        .iter()
                        .find(|e| e.1 == "graph.nnef")
                        .unwrap()
                        .clone();
                    let text = String::from_utf8_lossy(&tar[d..d + size]).into_owned();
                    replace_tar_entry(&tar, "graph.nnef", &mutate_nnef(&mut rng, text))
                }
                "dat-header" => {
                    let dats: Vec<_> = entries.iter().filter(|e| e.1.ends_with(".dat")).collect();
                    let (_, name, d, size) = (*rng.pick(&dats)).clone();
                    let mut data = tar[d..d + size].to_vec();
                    flip_bytes(&mut rng, &mut data, 0..size.min(128));
                    if rng.chance(30) {
                        data.truncate(rng.below(size));
                    }
                    replace_tar_entry(&tar, &name, &data)
                }
                _ => {
                    let (h, ..) = *rng.pick(&entries);
                    let mut tar = tar.clone();
                    let field = rng
                        .pick(&[0..100usize, 124..136, 156..157, 100..124, 257..265, 0..512])
                        .clone();
                    flip_bytes(&mut rng, &mut tar[h..h + 512], field);
                    if rng.chance(70) {
                        set_tar_checksum(&mut tar[h..h + 512]);
                    }
                    tar
                }
            };
            sections[g].1 = new_tar;
            seal(&sections)
        }
        "section-table" => {
            let sealed = seal(&sections);
            let mut body = sealed[..sealed.len() - 4].to_vec();
            let table = 10..32 + 32 * sections.len();
            flip_bytes(&mut rng, &mut body, table);
            let mut out = body;
            let crc = crc32fast_hash(&out);
            out.extend_from_slice(&crc.to_le_bytes());
            out
        }
        "section-resize" => {
            let i = rng.below(sections.len());
            let len = sections[i].1.len();
            if rng.chance(50) {
                sections[i].1.truncate(rng.below(len));
            } else {
                let extra = 1 + rng.below(4096);
                sections[i].1.extend((0..extra).map(|_| rng.next() as u8));
            }
            seal(&sections)
        }
        _ => {
            let sealed = seal(&sections);
            let mut body = sealed[..sealed.len() - 4].to_vec();
            let len = body.len();
            flip_bytes(&mut rng, &mut body, 20..len);
            let crc = crc32fast_hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            body
        }
    };
    (source.0.clone(), mutator, bytes)
}

fn sources_of(bytes: &[u8]) -> Sections {
    sections_of(bytes)
}

/// Edits of the NNEF text: numbers made extreme, brackets nested, lines repeated or cut.
fn mutate_nnef(rng: &mut Rng, text: String) -> Vec<u8> {
    let mut bytes = text.into_bytes();
    match rng.below(6) {
        0 => {
            let len = bytes.len();
            flip_bytes(rng, &mut bytes, 0..len);
        }
        1 => {
            // one number replaced by an extreme one
            let s = String::from_utf8_lossy(&bytes).into_owned();
            let digits: Vec<usize> = s
                .match_indices(|c: char| c.is_ascii_digit())
                .map(|m| m.0)
                .collect();
            if let Some(&at) = digits.get(rng.below(digits.len().max(1))) {
                let end = s[at..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(s.len(), |e| at + e);
                let with = *rng.pick(&[
                    "0",
                    "-1",
                    "-9223372036854775808",
                    "18446744073709551616",
                    "4294967296",
                    "99999999999",
                ]);
                bytes = format!("{}{}{}", &s[..at], with, &s[end..]).into_bytes();
            }
        }
        2 => {
            let depth = 1 + rng.below(3000);
            let s = String::from_utf8_lossy(&bytes).into_owned();
            let at = s.find("matmul(").or_else(|| s.find("add(")).unwrap_or(0);
            bytes = format!("{}{}{}", &s[..at], "(".repeat(depth), &s[at..]).into_bytes();
        }
        3 => {
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
        }
        4 => {
            let s = String::from_utf8_lossy(&bytes).into_owned();
            let lines: Vec<&str> = s.lines().collect();
            let line = *rng.pick(&lines);
            let times = 1 + rng.below(2000);
            bytes = s
                .replacen(line, &format!("{line}\n").repeat(times), 1)
                .into_bytes();
        }
        _ => {
            let s = String::from_utf8_lossy(&bytes).into_owned();
            let junk = *rng.pick(&[
                "x = external(shape = [1, 1, 1]);",
                "x = variable<scalar>(label = \"nope\", shape = [2, 2]);",
                "fragment f(x: tensor<scalar>) -> (y: tensor<scalar>) { y = f(x); }",
                "y = tract_core_gather(window, window, axis = 9);",
                "forecast = reshape(window, shape = [0, -1, -1]);",
            ]);
            let at = s.find("graph network").unwrap_or(0);
            bytes = format!("{}{junk}\n{}", &s[..at], &s[at..]).into_bytes();
        }
    }
    bytes
}

/// The tokenizer traps the issue found by hand, varied at random.
fn tokenizer_trap(rng: &mut Rng, tok: &mut serde_json::Value) {
    use serde_json::json;
    match rng.below(6) {
        0 => {
            tok["post_processor"] = json!({
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[NOPE]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {}
            })
        }
        1 => tok["normalizer"] = json!({"type": "Precompiled", "precompiled_charsmap": "AAAA////"}),
        2 => {
            let grow = "x".repeat(1 + rng.below(200));
            tok["normalizer"] =
                json!({"type": "Replace", "pattern": {"String": "a"}, "content": grow})
        }
        3 => tok["model"]["vocab"] = json!({"[UNK]": 0}),
        4 => tok["model"]["unk_token"] = json!("[MISSING]"),
        _ => {
            tok["truncation"] = json!({"max_length": u64::MAX, "stride": u64::MAX, "strategy": "LongestFirst", "direction": "Right"});
            tok["padding"] = json!({"strategy": {"Fixed": 1u64 << 40}, "pad_id": 1u64 << 40, "pad_token": "[PAD]", "pad_type_id": 0, "direction": "Right", "pad_to_multiple_of": null});
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Answered,
    Refused(i32),
    Aborted,
    Hung,
    OverMemory,
    NotOneLine,
}

struct Ran {
    outcome: Outcome,
    stderr: String,
    rss_bytes: u64,
    elapsed: Duration,
}

fn kinglet_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KINGLET_BIN") {
        let p = PathBuf::from(p);
        return if p.is_absolute() {
            p
        } else {
            repo_root().join(p)
        };
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("kinglet")
}

/// Runs `kinglet args…` with a deadline, reading its peak RSS from `wait4`.
fn run_limited(args: &[&std::ffi::OsStr]) -> Ran {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let start = Instant::now();
    let mut command = std::process::Command::new(kinglet_bin());
    #[allow(
        clippy::zombie_processes,
        reason = "reaped by the wait4 loop below, which also reads its usage"
    )]
    let mut child = command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kinglet");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = (&mut stderr_pipe).take(1 << 20).read_to_end(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut hung = false;
    // `ru_maxrss` from wait4 carries the peak of the address space the child was spawned
    // from (this harness's), so kinglet's own peak is read from /proc while it runs: VmHWM
    // is the high-water mark of its own address space, and it only grows
    let status_path = format!("/proc/{pid}/status");
    let mut peak_kib = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        // SAFETY: plain syscall on our own child, with valid out-pointers
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if start.elapsed() > TIMEOUT && !hung {
            hung = true;
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    // the wait4 figure bounds kinglet's peak from above: under the limit, it settles it;
    // over it, kinglet's own high-water mark as read from /proc decides
    let bound_bytes = usage.ru_maxrss as u64 * 1024;
    let rss_bytes = if bound_bytes <= MAX_RSS_BYTES {
        bound_bytes
    } else {
        peak_kib * 1024
    };
    let exit = std::process::ExitStatus::from_raw(status);
    let outcome = if hung {
        Outcome::Hung
    } else if exit.signal().is_some() || exit.code() == Some(101) || stderr.contains("panicked") {
        Outcome::Aborted
    } else if rss_bytes > MAX_RSS_BYTES {
        Outcome::OverMemory
    } else {
        match exit.code() {
            Some(0) => Outcome::Answered,
            Some(code) if REFUSAL_CODES.contains(&code) => {
                let lines: Vec<&str> = stderr.lines().collect();
                if lines.len() == 1 && lines[0].starts_with("kinglet: error: ") {
                    Outcome::Refused(code)
                } else {
                    Outcome::NotOneLine
                }
            }
            _ => Outcome::NotOneLine,
        }
    };
    Ran {
        outcome,
        stderr,
        rss_bytes,
        elapsed,
    }
}

/// Which command a case runs: mostly `verify` (load, preflight, self-test), some `inspect`
/// and a real request.
fn command_for(index: u64, bundle: &Path, source: &str) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = match index % 5 {
        0 => vec!["inspect".into()],
        1 if source.starts_with("sentiment") => vec![
            "classify".into(),
            "a quietly moving film, if a little long".into(),
        ],
        1 => vec![
            "forecast".into(),
            "--csv".into(),
            repo_root()
                .join("tests/fixtures/forecast/etth1_tail.csv")
                .into(),
        ],
        _ => vec!["verify".into()],
    };
    args.push("--model".into());
    args.push(bundle.into());
    args
}

#[test]
fn re_sealed_mutations_of_the_shipped_bundles_never_abort_hang_or_balloon() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let under_emulator = std::env::var("KINGLET_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty());
    if under_emulator {
        eprintln!("note: skipping the mutation harness under an emulator (it runs on the host)");
        return;
    }
    let seed = env("KINGLET_MUTATION_SEED").unwrap_or(14);
    let cases = env("KINGLET_MUTATION_CASES").unwrap_or(110);
    let jobs = env("KINGLET_MUTATION_JOBS").unwrap_or(1).max(1);
    let only = env("KINGLET_MUTATION_CASE");
    let sources: Vec<(String, Vec<u8>)> = [
        "sentiment.kinglet",
        "etth1-dlinear.kinglet",
        "etth1-lstm.kinglet",
    ]
    .iter()
    .map(|n| {
        (
            n.to_string(),
            std::fs::read(repo_root().join("models").join(n)).unwrap(),
        )
    })
    .collect();
    let keep = repo_root().join("target/mutations");
    std::fs::create_dir_all(&keep).unwrap();
    let indices: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let tmp = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for job in 0..jobs {
            let (indices, sources, next, results, tmp, keep) =
                (&indices, &sources, &next, &results, tmp.path(), &keep);
            // deep JSON values (thousands of nested arrays) need a deep stack to build and drop
            let builder = std::thread::Builder::new().stack_size(256 << 20);
            builder
                .spawn_scoped(s, move || loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&index) = indices.get(k) else { break };
                    let (source, mutator, bytes) = build_case(seed, index, sources);
                    let path = tmp.join(format!("case-{job}.kinglet"));
                    std::fs::write(&path, &bytes).unwrap();
                    let args = command_for(index, &path, &source);
                    let argv: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
                    let ran = run_limited(&argv);
                    if !matches!(ran.outcome, Outcome::Answered | Outcome::Refused(_)) {
                        let kept = keep.join(format!("case-{seed}-{index}.kinglet"));
                        std::fs::copy(&path, &kept).unwrap();
                    }
                    results.lock().unwrap().push((
                        index,
                        source,
                        mutator,
                        args[0].to_string_lossy().into_owned(),
                        ran,
                    ));
                })
                .expect("spawn a harness thread");
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let mut by_outcome: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut by_mutator: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    let (mut max_rss, mut max_elapsed) = ((0u64, 0u64), (Duration::ZERO, 0u64));
    let mut bad = Vec::new();
    for (index, source, mutator, command, ran) in &results {
        *by_outcome.entry(ran.outcome).or_default() += 1;
        let kind = match ran.outcome {
            Outcome::Answered => "answered",
            Outcome::Refused(_) => "refused",
            _ => "FAILED",
        };
        *by_mutator.entry((mutator, kind)).or_default() += 1;
        if let Outcome::Refused(_) = ran.outcome {
            // the message without file names and numbers: how many distinct refusals
            let shape: String = ran
                .stderr
                .replace(&*tmp.path().to_string_lossy(), "")
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(90)
                .collect();
            *messages.entry(shape).or_default() += 1;
        }
        max_rss = max_rss.max((ran.rss_bytes, *index));
        max_elapsed = max_elapsed.max((ran.elapsed, *index));
        if !matches!(ran.outcome, Outcome::Answered | Outcome::Refused(_)) {
            bad.push(format!(
                "case {index} ({source}, {mutator}, {command}): {:?} in {:.1} s, {} MB: {}  [kept as target/mutations/case-{seed}-{index}.kinglet]",
                ran.outcome,
                ran.elapsed.as_secs_f64(),
                ran.rss_bytes >> 20,
                ran.stderr.trim()
            ));
        }
    }
    eprintln!(
        "mutation harness: seed {seed}, {} cases, binary {}",
        results.len(),
        kinglet_bin().display()
    );
    eprintln!("  outcomes: {by_outcome:?}");
    eprintln!("  by mutator: {by_mutator:?}");
    eprintln!(
        "  slowest case {:.2} s (case {}), highest RSS {} MB (case {}), {} distinct refusal messages",
        max_elapsed.0.as_secs_f64(),
        max_elapsed.1,
        max_rss.0 >> 20,
        max_rss.1,
        messages.len()
    );
    if std::env::var_os("KINGLET_MUTATION_MESSAGES").is_some() {
        for (m, n) in &messages {
            eprintln!("  {n:5} {}", m.trim());
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} cases failed:\n{}",
        bad.len(),
        results.len(),
        bad.join("\n")
    );
    let refused = by_outcome
        .iter()
        .filter(|(o, _)| matches!(o, Outcome::Refused(_)))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert!(
        refused > 0 && by_outcome.contains_key(&Outcome::Answered),
        "a harness that only answers or only refuses mutates nothing useful: {by_outcome:?}"
    );
}
