//! Bounds check of a SentencePiece `Precompiled` charsmap before tokenizers reads it.
//!
//! The charsmap is `trie_size: u32 LE`, `trie_size / 4` little-endian u32 double-array units,
//! then the normalized strings (UTF-8, NUL-separated). spm_precompiled reserves `trie_size / 4`
//! units before reading them (a capacity overflow on 32-bit targets for a 4-byte header, 8 GiB
//! of address space on 64-bit) and indexes the array and the strings unchecked while it
//! normalizes. This walks every node a key can reach and refuses a charsmap where any of those
//! reads would leave the array or split a character.

/// Why a charsmap is refused.
pub(super) fn check_charsmap(charsmap: &[u8]) -> Result<(), String> {
    let header: [u8; 4] = charsmap
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or("precompiled_charsmap is shorter than its 4-byte header")?;
    let trie_bytes = u32::from_le_bytes(header) as usize / 4 * 4;
    let rest = &charsmap[4..];
    if trie_bytes > rest.len() {
        return Err(format!(
            "precompiled_charsmap declares a {trie_bytes}-byte trie in {} bytes",
            rest.len()
        ));
    }
    let units: Vec<usize> = rest[..trie_bytes]
        .chunks_exact(4)
        .map(|u| u32::from_le_bytes([u[0], u[1], u[2], u[3]]) as usize)
        .collect();
    let normalized = std::str::from_utf8(&rest[trie_bytes..])
        .map_err(|_| "precompiled_charsmap strings are not UTF-8".to_string())?;
    check_trie(&units, normalized)
}

// The unit layout spm_precompiled (and SentencePiece's darts-clone) decode.
fn has_leaf(unit: usize) -> bool {
    (unit >> 8) & 1 == 1
}
fn value(unit: usize) -> usize {
    unit & ((1 << 31) - 1)
}
fn label(unit: usize) -> usize {
    unit & ((1 << 31) | 0xFF)
}
fn offset(unit: usize) -> usize {
    (unit >> 10) << ((unit & (1 << 9)) >> 6)
}

fn check_trie(units: &[usize], normalized: &str) -> Result<(), String> {
    let out_of_trie = |at: usize| format!("precompiled_charsmap trie points outside itself ({at})");
    let first = *units.first().ok_or("precompiled_charsmap trie is empty")?;
    let mut seen = vec![false; units.len()];
    // `base` is a node's position after `^= offset`; its children are `base ^ byte`.
    let mut bases = vec![offset(first)];
    while let Some(base) = bases.pop() {
        for byte in 1..=255usize {
            let at = base ^ byte;
            let unit = *units.get(at).ok_or_else(|| out_of_trie(at))?;
            if label(unit) != byte || std::mem::replace(&mut seen[at], true) {
                continue;
            }
            let child = at ^ offset(unit);
            if has_leaf(unit) {
                let leaf = *units.get(child).ok_or_else(|| out_of_trie(child))?;
                let start = value(leaf);
                if !normalized.is_char_boundary(start.min(normalized.len() + 1)) {
                    return Err(format!(
                        "precompiled_charsmap string offset {start} is outside its {} bytes",
                        normalized.len()
                    ));
                }
            }
            bases.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charsmap(units: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut out = ((units.len() * 4) as u32).to_le_bytes().to_vec();
        for u in units {
            out.extend(u.to_le_bytes());
        }
        out.extend(strings);
        out
    }

    #[test]
    fn a_header_declaring_more_trie_than_the_bytes_hold_is_refused() {
        let err = check_charsmap(&[0, 0, 0, 0xFF, 0xFF, 0xFF]).unwrap_err();
        assert!(err.contains("trie"), "{err}");
        assert!(check_charsmap(&[1, 2]).is_err());
    }

    #[test]
    fn a_trie_whose_children_leave_the_array_is_refused() {
        // one unit: every child position base ^ byte is past the end
        assert!(check_charsmap(&charsmap(&[0], b"")).is_err());
        assert!(check_charsmap(&charsmap(&[], b"")).is_err());
    }

    #[test]
    fn a_trie_mapping_one_byte_to_a_string_passes_and_a_bad_offset_is_refused() {
        // root at 0 with offset 0: children at 0 ^ byte = byte. Unit 0x41 ('A') labelled 'A',
        // leaf flag set, offset 0 -> its leaf is unit 0x41 ^ 0 = itself, whose value is the
        // string offset. Every other position holds a unit whose label matches nothing.
        let mut units = vec![0xFFu32; 256];
        units[0] = 0;
        let a = 0x41u32 | 1 << 8;
        units[0x41] = a;
        assert!(check_charsmap(&charsmap(&units, &[0u8; 0x142])).is_ok());
        assert!(check_charsmap(&charsmap(&units, b"short")).is_err());
        // string offset inside a two-byte character
        let mut strings = vec![b'x'; 0x140];
        strings.extend("é".as_bytes());
        let mut split = units.clone();
        split[0x41] = (0x141 << 10) | 1 << 8 | 0x41; // leaf at 0x41 ^ 0x141 = 0x100
        split.resize(0x200, 0xFF);
        split[0x100] = 0x141;
        let err = check_charsmap(&charsmap(&split, &strings)).unwrap_err();
        assert!(err.contains("string offset 321"), "{err}");
        split[0x100] = 0x140;
        assert!(check_charsmap(&charsmap(&split, &strings)).is_ok());
    }
}
