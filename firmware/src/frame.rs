//! Framing: `COBS( version ‖ id ‖ message ‖ CRC-32 ) ‖ 0x00`.
//!
//! * **COBS** removes every zero byte from the payload, so `0x00` only ever delimits frames: a
//!   receiver that loses sync (dropped, inserted or flipped bytes, garbage on the line) is back
//!   in step at the next delimiter.
//! * **CRC-32** (ISO-HDLC, the zlib/Ethernet polynomial, little-endian on the wire) over
//!   version, id and message. Frames reach ~10 KiB; at that length a 16-bit CRC lets one in
//!   65,536 random corruptions through, a 32-bit one one in four billion, and it detects every
//!   burst up to 32 bits. Its cost is negligible next to inference.
//! * **id** is a postcard varint `u32` chosen by the host and echoed in the answer; 0 is
//!   reserved for answers to frames whose id could not be read.
//!
//! The accumulator never panics: any byte sequence yields `Consumed`, `OverFull`, `Corrupt`
//! or `Frame`, and decoding resumes after the next delimiter.

use crate::wire::{ErrorCode, Request, Response, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION};
use crc::{Crc, CRC_32_ISO_HDLC};
use serde::Serialize;

/// The frame checksum.
pub const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
const CRC_BYTES: usize = 4;

/// Why a frame was rejected before its message could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes are not valid COBS.
    BadCobs,
    /// Too short to hold version, id and CRC.
    TooShort,
    /// The CRC does not match: the frame was corrupted on the way.
    BadCrc,
    /// Version and CRC are fine but the id is not a valid varint.
    BadId,
}

/// Why a message could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The message does not fit in [`MAX_PAYLOAD_BYTES`] or the output buffer.
    TooLarge,
}

/// A checked frame: CRC verified, id read, message bytes not yet decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Version byte the sender speaks.
    pub version: u8,
    /// Request id.
    pub id: u32,
    /// postcard-encoded message.
    pub body: &'a [u8],
}

/// Frames `message` under `id` with a chosen version byte into `out`; returns the length
/// written, delimiter included. (Tests use other versions; normal code calls
/// [`encode_request`] / [`encode_response`].)
pub fn encode_with_version<T: Serialize>(
    version: u8,
    id: u32,
    message: &T,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut payload = [0u8; MAX_PAYLOAD_BYTES];
    payload[0] = version;
    let body_end = {
        let room = &mut payload[1..MAX_PAYLOAD_BYTES - CRC_BYTES];
        let id_len = postcard::to_slice(&id, room)
            .map_err(|_| EncodeError::TooLarge)?
            .len();
        let msg_len = postcard::to_slice(message, &mut room[id_len..])
            .map_err(|_| EncodeError::TooLarge)?
            .len();
        1 + id_len + msg_len
    };
    let crc = CRC32.checksum(&payload[..body_end]);
    payload[body_end..body_end + CRC_BYTES].copy_from_slice(&crc.to_le_bytes());
    let n = cobs::try_encode(&payload[..body_end + CRC_BYTES], out)
        .map_err(|_| EncodeError::TooLarge)?;
    *out.get_mut(n).ok_or(EncodeError::TooLarge)? = 0;
    Ok(n + 1)
}

/// Frames a request (host side).
pub fn encode_request(id: u32, request: &Request, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_with_version(PROTOCOL_VERSION, id, request, out)
}

/// Frames a response (device side).
pub fn encode_response(id: u32, response: &Response, out: &mut [u8]) -> Result<usize, EncodeError> {
    encode_with_version(PROTOCOL_VERSION, id, response, out)
}

/// Decodes the COBS bytes of one frame (without its delimiter) in place and checks it.
pub fn open_frame(raw: &mut [u8]) -> Result<Frame<'_>, FrameError> {
    let n = cobs::decode_in_place(raw).map_err(|_| FrameError::BadCobs)?;
    if n < 1 + 1 + CRC_BYTES {
        return Err(FrameError::TooShort);
    }
    let (data, crc) = raw[..n].split_at(n - CRC_BYTES);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32.checksum(data) != stored {
        return Err(FrameError::BadCrc);
    }
    let (id, body) = postcard::take_from_bytes::<u32>(&data[1..]).map_err(|_| FrameError::BadId)?;
    Ok(Frame {
        version: data[0],
        id,
        body,
    })
}

/// Reads a request from a checked frame.
pub fn decode_request(frame: &Frame<'_>) -> Result<Request, ErrorCode> {
    if frame.version != PROTOCOL_VERSION {
        return Err(ErrorCode::UnsupportedVersion);
    }
    postcard::from_bytes(frame.body).map_err(|_| ErrorCode::UnknownMessage)
}

/// Reads a response from a checked frame.
pub fn decode_response(frame: &Frame<'_>) -> Result<Response, ErrorCode> {
    if frame.version != PROTOCOL_VERSION {
        return Err(ErrorCode::UnsupportedVersion);
    }
    postcard::from_bytes(frame.body).map_err(|_| ErrorCode::UnknownMessage)
}

/// Outcome of feeding bytes to a [`FrameAccumulator`].
#[derive(Debug)]
pub enum FeedResult<'a, 'b> {
    /// Every byte was taken; no frame is complete yet.
    Consumed,
    /// A frame ran past the buffer; it was dropped up to its delimiter. Bytes after it follow.
    OverFull(&'b [u8]),
    /// A complete frame failed its checks and was dropped.
    Corrupt {
        /// Why.
        error: FrameError,
        /// Bytes after the frame's delimiter.
        remaining: &'b [u8],
    },
    /// A complete, checked frame.
    Frame {
        /// The frame.
        frame: Frame<'a>,
        /// Bytes after its delimiter.
        remaining: &'b [u8],
    },
}

/// Collects bytes up to each `0x00` delimiter in a buffer of `N` bytes.
#[derive(Debug, Clone)]
pub struct FrameAccumulator<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> Default for FrameAccumulator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameAccumulator<N> {
    /// An empty accumulator.
    pub const fn new() -> Self {
        FrameAccumulator {
            buf: [0; N],
            len: 0,
            overflowed: false,
        }
    }

    /// Feeds bytes; call again with the `remaining` bytes of the result until `Consumed`.
    /// Empty frames (consecutive delimiters) are skipped.
    pub fn feed<'a, 'b>(&'a mut self, mut input: &'b [u8]) -> FeedResult<'a, 'b> {
        loop {
            let Some(end) = input.iter().position(|&b| b == 0) else {
                if !self.overflowed {
                    if self.len + input.len() > N {
                        self.overflowed = true;
                        self.len = 0;
                    } else {
                        self.buf[self.len..self.len + input.len()].copy_from_slice(input);
                        self.len += input.len();
                    }
                }
                return FeedResult::Consumed;
            };
            let (chunk, rest) = (&input[..end], &input[end + 1..]);
            if self.overflowed || self.len + chunk.len() > N {
                self.overflowed = false;
                self.len = 0;
                return FeedResult::OverFull(rest);
            }
            if self.len + chunk.len() == 0 {
                input = rest;
                continue;
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            let n = self.len + chunk.len();
            self.len = 0;
            return match open_frame(&mut self.buf[..n]) {
                Ok(frame) => FeedResult::Frame {
                    frame,
                    remaining: rest,
                },
                Err(error) => FeedResult::Corrupt {
                    error,
                    remaining: rest,
                },
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::*;

    fn frame_of<T: Serialize>(version: u8, id: u32, msg: &T) -> std::vec::Vec<u8> {
        let mut out = [0u8; 256];
        let n = encode_with_version(version, id, msg, &mut out).unwrap();
        out[..n].to_vec()
    }

    #[test]
    fn ping_request_bytes_are_pinned() {
        // payload 01 (version) 01 (id) 02 (Ping) 07 (nonce) + CRC-32 6f 25 68 34; COBS; 00
        assert_eq!(
            frame_of(1, 1, &Request::Ping { nonce: 7 }),
            [0x09, 0x01, 0x01, 0x02, 0x07, 0x6f, 0x25, 0x68, 0x34, 0x00]
        );
    }

    #[test]
    fn hello_request_bytes_are_pinned() {
        assert_eq!(
            frame_of(1, 2, &Request::Hello),
            [0x03, 0x01, 0x02, 0x05, 0xa7, 0xd1, 0xb5, 0xcc, 0x00]
        );
    }

    #[test]
    fn classify_request_bytes_are_pinned() {
        let f = frame_of(
            1,
            3,
            &Request::Classify {
                text: bounded("hi"),
            },
        );
        assert_eq!(
            f,
            [0x0b, 0x01, 0x03, 0x03, 0x02, 0x68, 0x69, 0x05, 0x4b, 0x45, 0xb5, 0x00]
        );
    }

    #[test]
    fn classified_response_bytes_are_pinned() {
        let logits = heapless::Vec::from_slice(&[-1.0, 1.0]).unwrap();
        let f = frame_of(
            1,
            3,
            &Response::Classified(Classified {
                label_index: 1,
                score: 0.5,
                logits,
            }),
        );
        assert_eq!(
            f,
            [
                0x05, 0x01, 0x03, 0x03, 0x01, 0x01, 0x01, 0x03, 0x3f, 0x02, 0x01, 0x03, 0x80, 0xbf,
                0x01, 0x07, 0x80, 0x3f, 0x5b, 0xca, 0x3f, 0x5d, 0x00
            ]
        );
    }

    #[test]
    fn frame_too_long_error_bytes_are_pinned() {
        let f = frame_of(
            1,
            0,
            &Response::Error {
                code: ErrorCode::FrameTooLong,
                detail: bounded(""),
            },
        );
        assert_eq!(
            f,
            [0x02, 0x01, 0x02, 0x06, 0x01, 0x05, 0x1f, 0xa2, 0xcf, 0xff, 0x00]
        );
    }

    #[test]
    fn classify_pair_request_bytes_are_pinned() {
        let f = frame_of(
            1,
            4,
            &Request::ClassifyPair {
                first: bounded("a"),
                second: bounded("b"),
            },
        );
        assert_eq!(
            f,
            [0x0c, 0x01, 0x04, 0x07, 0x01, 0x61, 0x01, 0x62, 0x8b, 0xbd, 0xa4, 0x59, 0x00]
        );
    }

    #[test]
    fn embed_request_and_embedded_response_bytes_are_pinned() {
        let f = frame_of(
            1,
            5,
            &Request::Embed {
                text: bounded("hi"),
            },
        );
        assert_eq!(
            f,
            [0x0b, 0x01, 0x05, 0x08, 0x02, 0x68, 0x69, 0xa4, 0x39, 0x04, 0xed, 0x00]
        );
        let vector = heapless::Vec::from_slice(&[0.5, -1.0]).unwrap();
        let f = frame_of(1, 5, &Response::Embedded { vector });
        assert_eq!(
            f,
            [
                0x05, 0x01, 0x05, 0x07, 0x02, 0x01, 0x01, 0x02, 0x3f, 0x01, 0x07, 0x80, 0xbf, 0xbc,
                0x0c, 0x21, 0x1e, 0x00
            ]
        );
    }

    #[test]
    fn tag_request_and_tagged_response_bytes_are_pinned() {
        let f = frame_of(
            1,
            6,
            &Request::Tag {
                text: bounded("hi"),
            },
        );
        assert_eq!(
            f,
            [0x0b, 0x01, 0x06, 0x09, 0x02, 0x68, 0x69, 0x11, 0x24, 0x18, 0x12, 0x00]
        );
        let mut entities = heapless::Vec::new();
        entities
            .push(TaggedEntity {
                label: bounded("PER"),
                score: 1.0,
                start: 0,
                end: 1,
            })
            .unwrap();
        let f = frame_of(1, 6, &Response::Tagged { entities });
        assert_eq!(
            f,
            [
                0x09, 0x01, 0x06, 0x08, 0x01, 0x03, 0x50, 0x45, 0x52, 0x01, 0x03, 0x80, 0x3f, 0x06,
                0x01, 0x30, 0x04, 0xe8, 0xd2, 0x00
            ]
        );
    }

    #[test]
    fn accumulator_resynchronizes_after_garbage() {
        let mut acc = FrameAccumulator::<64>::new();
        let mut stream = std::vec![0x13, 0x37, 0xff, 0x00];
        stream.extend(frame_of(1, 9, &Request::Ping { nonce: 1 }));
        let FeedResult::Corrupt { remaining, .. } = acc.feed(&stream) else {
            panic!("garbage is rejected")
        };
        let FeedResult::Frame { frame, remaining } = acc.feed(remaining) else {
            panic!("next frame is read")
        };
        assert_eq!(frame.id, 9);
        assert_eq!(decode_request(&frame), Ok(Request::Ping { nonce: 1 }));
        assert!(remaining.is_empty());
    }

    #[test]
    fn accumulator_reports_overfull_then_serves_next_frame() {
        let mut acc = FrameAccumulator::<16>::new();
        let mut stream = std::vec![0x55; 40];
        stream.push(0);
        stream.extend(frame_of(1, 4, &Request::Hello));
        assert!(matches!(acc.feed(&stream[..20]), FeedResult::Consumed));
        let FeedResult::OverFull(rest) = acc.feed(&stream[20..]) else {
            panic!("too long")
        };
        let FeedResult::Frame { frame, .. } = acc.feed(rest) else {
            panic!("next frame")
        };
        assert_eq!(frame.id, 4);
    }

    #[test]
    fn flipped_bit_fails_the_crc() {
        let mut f = frame_of(1, 1, &Request::Ping { nonce: 7 });
        f[5] ^= 0x08;
        let mut acc = FrameAccumulator::<64>::new();
        assert!(matches!(
            acc.feed(&f),
            FeedResult::Corrupt {
                error: FrameError::BadCrc,
                ..
            }
        ));
    }

    #[test]
    fn newer_version_and_unknown_variant_are_named() {
        let mut acc = FrameAccumulator::<64>::new();
        let f = frame_of(2, 5, &Request::Hello);
        let FeedResult::Frame { frame, .. } = acc.feed(&f) else {
            panic!()
        };
        assert_eq!(
            (frame.id, decode_request(&frame)),
            (5, Err(ErrorCode::UnsupportedVersion))
        );
        let f = frame_of(1, 6, &42u8); // variant index 42
        let FeedResult::Frame { frame, .. } = acc.feed(&f) else {
            panic!()
        };
        assert_eq!(
            (frame.id, decode_request(&frame)),
            (6, Err(ErrorCode::UnknownMessage))
        );
    }
}

#[cfg(test)]
mod limit_tests {
    use crate::wire::*;

    #[test]
    fn documented_limits_hold() {
        assert_eq!(MAX_PAYLOAD_BYTES, 10_254);
        assert_eq!(MAX_FRAME_BYTES, 10_296);
    }
}
