//! Line-oriented input with a bound on each line, so that an endless line (`/dev/zero`, a
//! binary file, a stream that never sends a newline) fails with a clear error instead of
//! growing a buffer until allocation fails.
//!
//! [`LineLimit`] wraps any reader: the bytes pass through unchanged, and a read fails with
//! [`LineTooLong`] (an [`std::io::ErrorKind::InvalidData`] error) as soon as more than
//! `max_line_bytes` bytes have come without a `\n`. The CSV, TSV and text readers all read
//! through it, so no reader allocates more than one line's bound before checking.

use std::io::Read;

/// The bound on one CSV or TSV row: far past any real row (a 1,000-column CSV of floats has
/// rows of about 10 KiB), small enough that holding it is harmless on a board.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// The error a [`LineLimit`] read fails with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a line is longer than {max_line_bytes} bytes")]
pub struct LineTooLong {
    /// The bound that was passed.
    pub max_line_bytes: usize,
}

impl LineTooLong {
    /// The [`LineTooLong`] inside an I/O error, if that is what it is.
    pub fn find(e: &std::io::Error) -> Option<LineTooLong> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<LineTooLong>())
            .copied()
    }
}

/// A reader that fails once a line outgrows `max_line_bytes` (the `\n` not counted).
#[derive(Debug)]
pub struct LineLimit<R> {
    inner: R,
    max_line_bytes: usize,
    /// Bytes since the last `\n`.
    run_bytes: usize,
}

impl<R: Read> LineLimit<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        LineLimit {
            inner,
            max_line_bytes,
            run_bytes: 0,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut run = self.run_bytes;
        for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
            let ends_line = piece.last() == Some(&b'\n');
            let len = piece.len() - usize::from(ends_line);
            if run + len > self.max_line_bytes {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    LineTooLong {
                        max_line_bytes: self.max_line_bytes,
                    },
                ));
            }
            run = if ends_line { 0 } else { run + len };
        }
        self.run_bytes = run;
        Ok(n)
    }
}

/// A reader that turns every `\r\n` into `\n` (a lone `\r` passes), so that a CSV written on
/// Windows has the same line numbers as one written on Linux: the csv crate ends a record at
/// the `\r` and counts lines by `\n`, which names the line before the one at fault.
#[derive(Debug)]
pub struct CrlfAsLf<R> {
    inner: R,
}

impl<R: std::io::BufRead> CrlfAsLf<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        CrlfAsLf { inner }
    }
}

impl<R: std::io::BufRead> Read for CrlfAsLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() || out.is_empty() {
                return Ok(0);
            }
            if buf[0] == b'\r' {
                self.inner.consume(1);
                if self.inner.fill_buf()?.first() == Some(&b'\n') {
                    continue;
                }
                out[0] = b'\r';
                return Ok(1);
            }
            // what is there, up to the next CR (never waits for more input)
            let max = buf.len().min(out.len());
            let run = buf[..max].iter().position(|&c| c == b'\r').unwrap_or(max);
            out[..run].copy_from_slice(&buf[..run]);
            self.inner.consume(run);
            return Ok(run);
        }
    }
}

/// Reads all of `reader`, every line at most `max_line_bytes` long.
pub fn read_all(reader: impl Read, max_line_bytes: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    LineLimit::new(reader, max_line_bytes).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_reads_as_lf_and_a_lone_cr_passes() {
        let read = |bytes: &[u8], capacity: usize| {
            let mut out = Vec::new();
            let inner = std::io::BufReader::with_capacity(capacity, bytes);
            CrlfAsLf::new(inner).read_to_end(&mut out).unwrap();
            out
        };
        let text = b"a,b\r\n1,2\r\n3\r4\r\n\r";
        // a CRLF split between two fills of the buffer is joined too
        for capacity in [1, 2, 3, 5, 64] {
            assert_eq!(
                read(text, capacity),
                b"a,b\n1,2\n3\r4\n\r",
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn lines_within_the_bound_pass_unchanged() {
        let text = b"abc\ndefg\n\nhi";
        assert_eq!(read_all(&text[..], 4).unwrap(), text);
    }

    #[test]
    fn an_endless_line_fails_after_the_bound_not_at_the_end() {
        // /dev/zero never ends: the read must stop by itself
        let zeros = std::io::repeat(0);
        let e = read_all(zeros, 1000).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            LineTooLong::find(&e),
            Some(LineTooLong {
                max_line_bytes: 1000
            })
        );
        assert_eq!(e.to_string(), "a line is longer than 1000 bytes");
    }

    #[test]
    fn a_line_split_over_reads_is_counted_whole() {
        // one byte per read: the count must carry over between reads
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        assert!(read_all(Trickle(b"12345\n1234"), 5).is_ok());
        assert!(read_all(Trickle(b"1234\n123456\n"), 5).is_err());
    }
}
