//! Bounds checked on a bundle's graph section (an NNEF tar) before tract reads a byte of it.
//!
//! tract trusts what it reads: a `.dat` header's declared size is allocated before the data is
//! read, the NNEF text parser recurses once per nested bracket, and its error positions are
//! 16-bit columns. A bundle whose checksum is valid can still carry any of those, so kinglet
//! walks the tar first, without allocating more than one header or the graph text:
//!
//! * every entry lies inside the section; at most [`MAX_ENTRIES`] entries;
//! * every `.dat` tensor header has the NNEF magic, a rank ≤ 8, and declares no more data
//!   than its entry holds (so no allocation outgrows the file);
//! * `graph.nnef` is UTF-8, at most [`MAX_TEXT_BYTES`], no line longer than
//!   [`MAX_LINE_BYTES`], brackets nested at most [`MAX_DEPTH`] deep, and every `shape = [...]`
//!   list holds non-negative dimensions whose product is at most [`MAX_ELEMENTS`].

use std::io::{Read, Seek, SeekFrom};

/// Entries in the tar (a BERT graph has a few hundred).
pub const MAX_ENTRIES: usize = 100_000;
/// Size of `graph.nnef` (the shipped sentiment graph's is about 60 KiB).
pub const MAX_TEXT_BYTES: u64 = 16 << 20;
/// Longest line of `graph.nnef` (kinglet's graphs have lines of at most about 250 bytes).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Deepest nesting of `(`, `[` and `{` in `graph.nnef`. kinglet's graphs nest 4 deep; tract's
/// parser takes time exponential in the depth (measured on the DLinear bundle: 0.26 s at 15,
/// 9.3 s at 20, over 60 s at 24).
pub const MAX_DEPTH: usize = 12;
/// Largest element count of one tensor shape written in the text.
pub const MAX_ELEMENTS: u64 = 1 << 32;

const BLOCK: u64 = 512;
const DAT_HEADER_BYTES: usize = 128;

/// Checks the NNEF tar at `start..start + len` of `file`; the reason names the entry.
pub fn check_nnef_tar(file: &mut (impl Read + Seek), start: u64, len: u64) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot read the graph: {e}");
    let mut at = 0u64;
    let mut long_name: Option<String> = None;
    for _ in 0..MAX_ENTRIES {
        if at + BLOCK > len {
            // tar writers end with zero blocks, but a reader stops at the section's end too
            return Ok(());
        }
        let mut header = [0u8; BLOCK as usize];
        file.seek(SeekFrom::Start(start + at)).map_err(io)?;
        file.read_exact(&mut header).map_err(io)?;
        if header.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let size = entry_size(&header).ok_or("a tar entry has an unreadable size")?;
        let data_at = at + BLOCK;
        let padded = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        if data_at.saturating_add(padded) > len.div_ceil(BLOCK) * BLOCK {
            return Err(format!(
                "a tar entry of {size} bytes overruns the {len}-byte graph section"
            ));
        }
        let name = match long_name.take() {
            Some(n) => n,
            None => entry_name(&header),
        };
        match header[156] {
            // GNU long name, pax extended header: the name of the next entry
            b'L' | b'x' => {
                if size > 64 * 1024 {
                    return Err(format!("a tar name record of {size} bytes"));
                }
                let mut data = vec![0u8; size as usize];
                file.read_exact(&mut data).map_err(io)?;
                long_name = if header[156] == b'L' {
                    Some(
                        String::from_utf8_lossy(&data)
                            .trim_end_matches('\0')
                            .to_string(),
                    )
                } else {
                    pax_path(&data)
                };
            }
            _ if name.ends_with(".dat") => {
                check_dat(file, &name, size).map_err(|e| format!("tensor `{name}`: {e}"))?
            }
            _ if name == "graph.nnef" || name.ends_with("/graph.nnef") => {
                if size > MAX_TEXT_BYTES {
                    return Err(format!(
                        "graph.nnef is {size} bytes; at most {MAX_TEXT_BYTES}"
                    ));
                }
                let mut text = vec![0u8; size as usize];
                file.read_exact(&mut text).map_err(io)?;
                check_nnef_text(&text).map_err(|e| format!("graph.nnef: {e}"))?;
            }
            _ => {}
        }
        at = data_at + padded;
    }
    Err(format!("the graph tar has more than {MAX_ENTRIES} entries"))
}

fn entry_size(header: &[u8]) -> Option<u64> {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        // base-256: big-endian in the remaining bytes
        return field[1..].iter().try_fold(0u64, |acc, &b| {
            acc.checked_mul(256).map(|a| a + u64::from(b))
        });
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

fn entry_name(header: &[u8]) -> String {
    let field = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    let name = field(&header[..100]);
    let prefix = if &header[257..262] == b"ustar" {
        field(&header[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

fn pax_path(data: &[u8]) -> Option<String> {
    String::from_utf8_lossy(data)
        .lines()
        .find_map(|record| record.split_once(" path=").map(|(_, p)| p.to_string()))
}

fn check_dat(file: &mut impl Read, name: &str, size: u64) -> Result<(), String> {
    let _ = name;
    if size < DAT_HEADER_BYTES as u64 {
        return Err(format!("{size} bytes, shorter than a tensor header"));
    }
    let mut h = [0u8; DAT_HEADER_BYTES];
    file.read_exact(&mut h)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    if h[..2] != [0x4e, 0xef] {
        return Err("not an NNEF tensor (bad magic)".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
    let data_bytes = u64::from(u32_at(4));
    let rank = u32_at(8) as usize;
    if rank > 8 {
        return Err(format!("rank {rank}; at most 8"));
    }
    if data_bytes > size - DAT_HEADER_BYTES as u64 {
        return Err(format!(
            "its header declares {data_bytes} bytes of data; the entry holds {}",
            size - DAT_HEADER_BYTES as u64
        ));
    }
    let elements = (0..rank)
        .map(|d| u64::from(u32_at(12 + 4 * d)))
        .try_fold(1u64, u64::checked_mul);
    match elements {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        _ => Err("its shape holds more elements than any tensor kinglet loads".into()),
    }
}

/// Checks the NNEF text of a graph against the bounds above.
pub fn check_nnef_text(text: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(text)
        .map_err(|e| format!("not valid UTF-8 (byte {})", e.valid_up_to()))?;
    for (i, line) in text.lines().enumerate() {
        if line.len() > MAX_LINE_BYTES {
            return Err(format!(
                "line {} is {} bytes; at most {MAX_LINE_BYTES}",
                i + 1,
                line.len()
            ));
        }
    }
    let code = strip_strings_and_comments(text);
    let mut depth = 0usize;
    for (i, c) in code.bytes().enumerate() {
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let line = code[..i].bytes().filter(|&b| b == b'\n').count() + 1;
                    return Err(format!(
                        "brackets nested more than {MAX_DEPTH} deep at line {line}"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    check_shapes(&code)?;
    check_statements(&code)
}

/// Assignments to one name the graph body may hold. NNEF is single-assignment, but bundles of
/// kinglet 0.1 reuse one name where a stacked LSTM or GRU layer's second output meets the
/// next layer's first (`__rnn_LSTM_1`), which tract reads as "the later one"; those stay
/// loadable.
const MAX_ASSIGNMENTS: usize = 2;

/// In the graph body: no tensor assigned more than [`MAX_ASSIGNMENTS`] times (tract's reading
/// of a name assigned thousands of times did not finish in 20 s), and a `transpose`'s
/// literal `axes` are a permutation (`[0, 0, 2]` drove tract past 4 GB).
fn check_statements(code: &str) -> Result<(), String> {
    let Some(graph) = code
        .match_indices("graph")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || !code.as_bytes()[i - 1].is_ascii_alphanumeric())
    else {
        return Ok(());
    };
    let Some(open) = code[graph..].find('{') else {
        return Ok(());
    };
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut seen = std::collections::HashMap::new();
    for statement in code[graph + open + 1..].split(';') {
        let Some(eq) = statement.find('=') else {
            continue;
        };
        for name in statement[..eq].split(|c: char| !is_ident(c)) {
            if name.is_empty() {
                continue;
            }
            let count = seen.entry(name).or_insert(0usize);
            *count += 1;
            if *count > MAX_ASSIGNMENTS {
                return Err(format!(
                    "`{name}` is assigned more than {MAX_ASSIGNMENTS} times (NNEF assigns each \
                     tensor once)"
                ));
            }
        }
        let rhs = statement[eq + 1..].trim_start();
        if rhs.starts_with("transpose") {
            check_permutation(rhs)?;
        }
    }
    Ok(())
}

fn check_permutation(call: &str) -> Result<(), String> {
    let Some(i) = call.find("axes") else {
        return Ok(());
    };
    let Some(list) = call[i + 4..]
        .trim_start()
        .strip_prefix('=')
        .and_then(|r| r.trim_start().strip_prefix('['))
    else {
        return Ok(());
    };
    let Some(end) = list.find(']') else {
        return Err("a transpose's axes list is not closed".into());
    };
    let mut axes = Vec::new();
    for a in list[..end]
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        match a.parse::<usize>() {
            Ok(v) => axes.push(v),
            Err(_) => return Ok(()), // not a literal list: tract's to check
        }
    }
    let mut sorted = axes.clone();
    sorted.sort_unstable();
    if sorted.iter().enumerate().any(|(i, &a)| i != a) {
        return Err(format!(
            "transpose axes {axes:?} are not a permutation of 0..{}",
            axes.len()
        ));
    }
    Ok(())
}

/// `text` with string literals and `#` comments blanked (same length, newlines kept).
fn strip_strings_and_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut comment = false;
    for c in text.chars() {
        let keep = match (quote, comment) {
            (_, true) if c == '\n' => {
                comment = false;
                true
            }
            (_, true) => false,
            (Some(q), _) => {
                if c == q {
                    quote = None;
                }
                c == '\n'
            }
            (None, _) if c == '"' || c == '\'' => {
                quote = Some(c);
                false
            }
            (None, _) if c == '#' => {
                comment = true;
                false
            }
            _ => true,
        };
        out.push(if keep { c } else { ' ' });
    }
    out
}

/// The literal shapes of `variable` and `external` declarations (a `reshape`'s `-1` is not a
/// dimension, so other operators' shape lists are left alone).
fn check_shapes(code: &str) -> Result<(), String> {
    code.split(';')
        .filter(|statement| statement.contains("variable") || statement.contains("external"))
        .try_for_each(check_statement_shapes)
}

fn check_statement_shapes(code: &str) -> Result<(), String> {
    let mut rest = code;
    while let Some(i) = rest.find("shape") {
        let after = rest[i + 5..].trim_start();
        rest = &rest[i + 5..];
        let Some(after) = after.strip_prefix('=') else {
            continue;
        };
        let Some(list) = after.trim_start().strip_prefix('[') else {
            continue;
        };
        let Some(end) = list.find(']') else {
            return Err("a shape list is not closed".into());
        };
        let mut elements = 1u64;
        for dim in list[..end]
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            // symbolic dimensions (`S`, `S + 1`) are tract's to check; literals are ours
            if !dim.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                continue;
            }
            let value: i64 = dim
                .parse()
                .map_err(|_| format!("shape dimension `{dim}` is not an integer"))?;
            if value < 0 {
                return Err(format!("shape dimension {value} is negative"));
            }
            elements = elements.saturating_mul(value as u64);
        }
        if elements > MAX_ELEMENTS {
            return Err(format!(
                "a shape of {elements} elements; at most {MAX_ELEMENTS}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_past_the_bound_is_refused_with_its_line() {
        let ok = format!(
            "graph g(x) -> (y) {{\n y = {}x{};\n}}\n",
            "(".repeat(10),
            ")".repeat(10)
        );
        check_nnef_text(ok.as_bytes()).unwrap();
        let deep = format!(
            "version 1.0;\n y = {}x{};\n",
            "(".repeat(1000),
            ")".repeat(1000)
        );
        let e = check_nnef_text(deep.as_bytes()).unwrap_err();
        assert!(e.contains("nested more than 12 deep at line 2"), "{e}");
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let text = format!(
            "# {}\ny = external(shape = [1, 2], label = '{}');\n",
            "(".repeat(100),
            "[".repeat(100)
        );
        check_nnef_text(text.as_bytes()).unwrap();
    }

    #[test]
    fn negative_huge_and_malformed_shapes_are_refused() {
        check_nnef_text(b"x = external<scalar>(shape = [1, S, 384]);").unwrap();
        for (text, needle) in [
            ("x = external(shape = [-5, 384]);", "negative"),
            (
                "x = variable(shape = [9223372036854775807, 2], label = 'w');",
                "elements",
            ),
            (
                "x = variable(shape = [99999999999999999999]);",
                "not an integer",
            ),
            ("x = variable(shape = [65536, 65536, 2]);", "elements"),
        ] {
            let e = check_nnef_text(text.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_tensor_assigned_twice_or_a_transpose_that_is_no_permutation_is_refused() {
        let graph = |body: &str| format!("version 1.0;\ngraph g(x) -> (y) {{\n{body}\n}}\n");
        let ok = "x = external<scalar>(shape = [1, 2]);\n  y = transpose(x, axes = [1, 0]);";
        assert_eq!(check_nnef_text(graph(ok).as_bytes()), Ok(()));
        let twice = "x = external<scalar>(shape = [1, 2]);\n  y = x;\n  y = x;";
        assert_eq!(check_nnef_text(graph(twice).as_bytes()), Ok(()));
        let thrice = format!("{twice}\n  y = x;");
        let err = check_nnef_text(graph(&thrice).as_bytes()).unwrap_err();
        assert!(err.contains("`y` is assigned more than 2 times"), "{err}");
        let tuple = "x = external<scalar>(shape = [2]);\n  (a, x) = split(x, axis = 0, ratios = [1, 1]);\n  (x, b) = split(a, axis = 0, ratios = [1, 1]);";
        assert!(check_nnef_text(graph(tuple).as_bytes()).is_err());
        let bad = "x = external<scalar>(shape = [1, 2, 3]);\n  y = transpose(x, axes = [0, 0, 2]);";
        let err = check_nnef_text(graph(bad).as_bytes()).unwrap_err();
        assert!(err.contains("not a permutation"), "{err}");
    }

    #[test]
    fn reshape_may_say_minus_one() {
        check_nnef_text(b"y = reshape(x, shape = [1, -1, 12, 32]);").unwrap();
    }

    #[test]
    fn the_shipped_graphs_pass() {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        for name in [
            "sentiment.kinglet",
            "etth1-dlinear.kinglet",
            "etth1-lstm.kinglet",
        ] {
            let b = crate::Bundle::read(models.join(name)).unwrap();
            let mut cursor = std::io::Cursor::new(&b.graph);
            check_nnef_tar(&mut cursor, 0, b.graph.len() as u64)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_line_past_the_bound_is_refused() {
        let text = format!("version 1.0;\n{}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let e = check_nnef_text(text.as_bytes()).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
