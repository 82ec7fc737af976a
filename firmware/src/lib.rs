//! # kinglet-firmware
//!
//! The device side of kinglet's serial protocol, and the interface crate both ends share:
//! message types ([`wire`]), framing with COBS and CRC-32 ([`frame`]), a fixed ring buffer for
//! streamed rows ([`ring`]) and a device loop generic over a byte transport and an inference
//! engine ([`device`]). `no_std` unless the `std` feature is on (which adds a blocking host
//! [`client`]); it depends on nothing else in the workspace, so a microcontroller can use it as
//! is. The byte layout is documented in `docs/wire-format.md` and pinned by golden-bytes tests.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub mod device;
pub mod frame;
pub mod ring;
pub mod wire;

#[cfg(feature = "std")]
pub mod client;

pub use device::{Device, EngineError, InferenceEngine, Transport};
pub use frame::{
    decode_request, decode_response, encode_request, encode_response, FeedResult, FrameAccumulator,
};
/// The heapless version the message types use, for callers that build them.
pub use heapless;
pub use wire::*;
