//! Arbitrary bytes, in arbitrary chunks, into the frame accumulator and the device loop:
//! nothing may panic, and every byte the device writes must be a well-formed frame.
//!
//! cargo +nightly fuzz run frame_decoder -- -max_total_time=600
#![no_main]

use kinglet_firmware::frame::{decode_request, decode_response, FeedResult, FrameAccumulator};
use kinglet_firmware::heapless::Vec as HVec;
use kinglet_firmware::wire::*;
use kinglet_firmware::{Device, EngineError, InferenceEngine};
use libfuzzer_sys::fuzz_target;

struct Engine;

impl InferenceEngine for Engine {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            protocol_version: PROTOCOL_VERSION,
            kind: ModelKind::Forecaster,
            names: ["a", "b"].iter().map(|s| bounded(s)).collect(),
            targets: ["b"].iter().map(|s| bounded(s)).collect(),
            max_text_bytes: 0,
            lookback: 3,
            features: 2,
            horizon: 2,
            budget_bytes: 0,
            frames_rejected: 0,
        }
    }
    fn classify(&mut self, _: &str) -> Result<Classified, EngineError> {
        Err(EngineError::new(ErrorCode::WrongModelKind, "forecaster"))
    }
    fn forecast(&mut self, window: &[f32], out: &mut HVec<f32, MAX_FORECAST_VALUES>) -> Result<(), EngineError> {
        if window.len() != 6 {
            return Err(EngineError::new(ErrorCode::BadInput, "window"));
        }
        out.clear();
        let _ = out.extend_from_slice(&window[..2]);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let (split, bytes) = match data.split_first() {
        Some((s, rest)) => (*s as usize + 1, rest),
        None => return,
    };
    // 1. the bare accumulator, in chunks
    let mut acc = Box::new(FrameAccumulator::<512>::new());
    for chunk in bytes.chunks(split) {
        let mut input = chunk;
        loop {
            match acc.feed(input) {
                FeedResult::Consumed => break,
                FeedResult::OverFull(rest) | FeedResult::Corrupt { remaining: rest, .. } => input = rest,
                FeedResult::Frame { frame, remaining } => {
                    let _ = decode_request(&frame);
                    let _ = decode_response(&frame);
                    input = remaining;
                }
            }
        }
    }
    // 2. the device loop: everything it writes must decode
    let mut device = Box::new(Device::new(Engine));
    let mut written = Vec::new();
    for chunk in bytes.chunks(split) {
        let _ = device.handle(chunk, |out| -> Result<(), ()> {
            written.extend_from_slice(out);
            Ok(())
        });
    }
    let mut acc = Box::new(FrameAccumulator::<MAX_FRAME_BYTES>::new());
    let mut input = written.as_slice();
    loop {
        match acc.feed(input) {
            FeedResult::Consumed => break,
            FeedResult::Frame { frame, remaining } => {
                assert!(decode_response(&frame).is_ok());
                input = remaining;
            }
            other => panic!("device wrote a malformed frame: {other:?}"),
        }
    }
});
