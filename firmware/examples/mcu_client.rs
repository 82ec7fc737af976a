//! The microcontroller side of a kinglet link, with nothing but the `no_std` crate: encode a
//! `Classify` request, feed received bytes, decode the answer. Built as a static library with
//! C entry points so C firmware (or a Rust one) can link it:
//!
//! ```sh
//! cargo build -p kinglet-firmware --example mcu_client --target thumbv7em-none-eabihf --no-default-features
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

use kinglet_firmware::frame::{decode_response, encode_request, FeedResult, FrameAccumulator};
use kinglet_firmware::wire::{bounded, Request, Response};

/// Bytes of the longest text this example sends.
pub const TEXT_BYTES: usize = 64;
/// Bytes of the frame buffer it encodes into.
pub const FRAME_BYTES: usize = 128;
/// Bytes it can receive per answer frame (a classifier's answer is ~20 bytes).
pub const REPLY_BYTES: usize = 96;

/// Encodes `Classify { text }` under `id` into `out`; returns the frame length, 0 on error.
#[no_mangle]
pub extern "C" fn kinglet_encode_classify(
    id: u32,
    text: &[u8; TEXT_BYTES],
    text_len: usize,
    out: &mut [u8; FRAME_BYTES],
) -> usize {
    let Some(bytes) = text.get(..text_len) else {
        return 0;
    };
    let Ok(text) = core::str::from_utf8(bytes) else {
        return 0;
    };
    let request = Request::Classify {
        text: bounded(text),
    };
    encode_request(id, &request, out).unwrap_or(0)
}

/// Receive state: the accumulator and the last answer. Opaque to C: allocate
/// [`KINGLET_RECEIVER_BYTES`] aligned bytes and call [`kinglet_receiver_reset`].
pub struct Receiver {
    acc: FrameAccumulator<REPLY_BYTES>,
    /// Id of the last classification received (0 when none).
    pub id: u32,
    /// Its label index.
    pub label_index: u8,
    /// Its score.
    pub score: f32,
}

/// Size of a [`Receiver`], for C code that allocates one.
#[no_mangle]
pub static KINGLET_RECEIVER_BYTES: usize = core::mem::size_of::<Receiver>();

/// Empties a receiver.
#[no_mangle]
pub extern "C" fn kinglet_receiver_reset(rx: &mut Receiver) {
    *rx = Receiver {
        acc: FrameAccumulator::new(),
        id: 0,
        label_index: 0,
        score: 0.0,
    };
}

/// Feeds received bytes; returns 1 when a classification was completed (see the receiver's
/// fields), 0 otherwise. Corrupted or unrelated frames are skipped.
#[no_mangle]
pub extern "C" fn kinglet_receiver_feed(rx: &mut Receiver, bytes: &[u8; 64], len: usize) -> u8 {
    let mut input = &bytes[..len.min(64)];
    let mut done = 0;
    loop {
        match rx.acc.feed(input) {
            FeedResult::Consumed => return done,
            FeedResult::OverFull(rest)
            | FeedResult::Corrupt {
                remaining: rest, ..
            } => input = rest,
            FeedResult::Frame { frame, remaining } => {
                if let Ok(Response::Classified(c)) = decode_response(&frame) {
                    rx.id = frame.id;
                    rx.label_index = c.label_index;
                    rx.score = c.score;
                    done = 1;
                }
                input = remaining;
            }
        }
    }
}

#[cfg(not(feature = "std"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
