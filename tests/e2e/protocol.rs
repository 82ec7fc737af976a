//! The serial protocol under fault injection, with a deterministic engine: corrupted frames
//! are dropped, intact ones answered exactly once, oversized and unknown ones get defined
//! errors, and no byte sequence makes the device panic.

use kinglet_firmware::frame::{
    decode_response, encode_request, encode_with_version, FeedResult, FrameAccumulator,
};
use kinglet_firmware::heapless::Vec as HVec;
use kinglet_firmware::wire::*;
use kinglet_firmware::{Device, EngineError, InferenceEngine};
use proptest::prelude::*;

/// Answers derived from the request, so every answer can be checked.
struct Echo;

impl InferenceEngine for Echo {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            protocol_version: PROTOCOL_VERSION,
            kind: ModelKind::Classifier,
            names: ["negative", "positive"]
                .iter()
                .map(|s| bounded(s))
                .collect(),
            targets: HVec::new(),
            max_text_bytes: MAX_TEXT_BYTES as u32,
            lookback: 0,
            features: 0,
            horizon: 0,
            budget_bytes: 0,
            frames_rejected: 0,
        }
    }
    fn classify(&mut self, text: &str) -> Result<Classified, EngineError> {
        let n = text.len() as f32;
        Ok(Classified {
            label_index: (text.len() % 2) as u8,
            score: n,
            logits: HVec::from_slice(&[-n, n]).unwrap(),
        })
    }
    fn forecast(
        &mut self,
        _: &[f32],
        _: &mut HVec<f32, MAX_FORECAST_VALUES>,
    ) -> Result<(), EngineError> {
        Err(EngineError::new(ErrorCode::WrongModelKind, "classifier"))
    }
}

fn request_for(id: u32) -> Request {
    if id.is_multiple_of(2) {
        Request::Ping {
            nonce: id.wrapping_mul(7),
        }
    } else {
        Request::Classify {
            text: bounded(&format!("message number {id}")),
        }
    }
}

fn answer_is_right(id: u32, response: &Response) -> bool {
    match (request_for(id), response) {
        (Request::Ping { nonce }, Response::Pong { nonce: got }) => nonce == *got,
        (Request::Classify { text }, Response::Classified(c)) => {
            c.score == text.len() as f32 && c.label_index as usize == text.len() % 2
        }
        _ => false,
    }
}

fn frame(id: u32, request: &Request) -> Vec<u8> {
    let mut out = vec![0u8; MAX_FRAME_BYTES];
    let n = encode_request(id, request, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Runs bytes through a device in chunks; returns the (id, response) pairs it wrote.
fn serve_bytes(device: &mut Device<Echo>, stream: &[u8], chunk: usize) -> Vec<(u32, Response)> {
    let mut written = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        device
            .handle(piece, |bytes| -> Result<(), ()> {
                written.extend_from_slice(bytes);
                Ok(())
            })
            .unwrap();
    }
    let mut acc = Box::new(FrameAccumulator::<MAX_FRAME_BYTES>::new());
    let mut answers = Vec::new();
    let mut input = written.as_slice();
    loop {
        match acc.feed(input) {
            FeedResult::Consumed => break,
            FeedResult::Frame { frame, remaining } => {
                answers.push((
                    frame.id,
                    decode_response(&frame).expect("device frames decode"),
                ));
                input = remaining;
            }
            other => panic!("device wrote a bad frame: {other:?}"),
        }
    }
    answers
}

/// xorshift64*: a deterministic generator so the run (and its counts) is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn ten_thousand_frames_through_a_noisy_link_each_intact_one_answered_once() {
    let mut rng = Rng(0x6b69_6e67_6c65_7421);
    let total = 10_000u32;
    let mut stream = Vec::new();
    let mut intact = std::collections::BTreeSet::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut merge_next_into_corrupt = false;
    for id in 1..=total {
        let mut f = frame(id, &request_for(id));
        let body = f.len() - 1; // last byte is the delimiter
        let fault = match rng.below(100) {
            0..=59 => "intact",
            60..=67 => "bit flips",
            68..=75 => "dropped byte",
            76..=83 => "duplicated byte",
            84..=91 => "inserted byte",
            92..=97 => "garbage before",
            _ => "delimiter lost",
        };
        *counts.entry(fault).or_default() += 1;
        match fault {
            "bit flips" => {
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(body);
                    f[at] ^= 1 << rng.below(8);
                }
            }
            "dropped byte" => {
                f.remove(rng.below(body));
            }
            "duplicated byte" => {
                let at = rng.below(body);
                f.insert(at, f[at]);
            }
            "inserted byte" => {
                f.insert(rng.below(body), 1 + rng.below(255) as u8);
            }
            "garbage before" => {
                let garbage: Vec<u8> = (0..1 + rng.below(40))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                stream.extend(garbage);
                stream.push(0);
            }
            "delimiter lost" => {
                f.pop();
            }
            _ => {}
        }
        // A frame whose predecessor lost its delimiter is merged into it, unless garbage
        // (ended by its own delimiter) comes between them.
        let merged = merge_next_into_corrupt && fault != "garbage before";
        let clean = matches!(fault, "intact" | "garbage before") && !merged;
        merge_next_into_corrupt = fault == "delimiter lost";
        if clean {
            intact.insert(id);
        }
        stream.extend(f);
    }
    let mut device = Device::new(Echo);
    let answers = serve_bytes(&mut device, &stream, 1 + rng.below(300));
    let mut answered = std::collections::BTreeMap::<u32, usize>::new();
    for (id, response) in &answers {
        assert!(
            intact.contains(id),
            "frame {id} was corrupted but got an answer: {response:?}"
        );
        assert!(
            answer_is_right(*id, response),
            "wrong answer to {id}: {response:?}"
        );
        *answered.entry(*id).or_default() += 1;
    }
    assert!(
        answered.values().all(|&n| n == 1),
        "every answer exactly once"
    );
    assert_eq!(answered.len(), intact.len(), "every intact frame answered");
    let stats = device.stats();
    eprintln!(
        "fault injection: {total} frames, faults {counts:?}; {} intact frames answered once each, \
         {} corrupted frames rejected by the device ({} too long), 0 panics",
        intact.len(),
        stats.corrupt,
        stats.too_long
    );
    assert!(stats.corrupt as usize >= total as usize - intact.len() - counts["delimiter lost"]);
}

#[test]
fn oversized_frame_gets_frame_too_long_and_the_next_frame_is_served() {
    let mut device = Device::new(Echo);
    let mut stream = vec![0x41u8; MAX_FRAME_BYTES + 100];
    stream.push(0);
    stream.extend(frame(8, &Request::Ping { nonce: 99 }));
    let answers = serve_bytes(&mut device, &stream, 4096);
    assert_eq!(answers.len(), 2);
    assert!(
        matches!(
            &answers[0],
            (
                0,
                Response::Error {
                    code: ErrorCode::FrameTooLong,
                    ..
                }
            )
        ),
        "{:?}",
        answers[0]
    );
    assert_eq!(answers[1], (8, Response::Pong { nonce: 99 }));
}

#[test]
fn unknown_message_and_newer_version_get_defined_errors() {
    let mut device = Device::new(Echo);
    let mut out = vec![0u8; 64];
    let n = encode_with_version(PROTOCOL_VERSION, 5, &200u8, &mut out).unwrap();
    let mut stream = out[..n].to_vec();
    let n = encode_with_version(PROTOCOL_VERSION + 1, 6, &Request::Hello, &mut out).unwrap();
    stream.extend_from_slice(&out[..n]);
    stream.extend(frame(7, &Request::Hello));
    let answers = serve_bytes(&mut device, &stream, 7);
    assert!(matches!(
        &answers[0],
        (
            5,
            Response::Error {
                code: ErrorCode::UnknownMessage,
                ..
            }
        )
    ));
    assert!(matches!(
        &answers[1],
        (
            6,
            Response::Error {
                code: ErrorCode::UnsupportedVersion,
                ..
            }
        )
    ));
    assert!(matches!(&answers[2], (7, Response::Hello(info)) if info.names.len() == 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any bytes at all: no panic, and after a delimiter the device is back in sync.
    #[test]
    fn any_bytes_then_a_delimiter_and_a_frame_get_that_frame_answered(
        noise in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..512,
    ) {
        let mut device = Device::new(Echo);
        let mut stream = noise;
        stream.push(0);
        stream.extend(frame(4242, &Request::Ping { nonce: 1 }));
        let answers = serve_bytes(&mut device, &stream, chunk);
        prop_assert_eq!(answers.last(), Some(&(4242, Response::Pong { nonce: 1 })));
    }

    /// Every request round-trips through framing unchanged.
    #[test]
    fn requests_round_trip(text in "\\PC{0,200}", nonce in any::<u32>(), id in any::<u32>()) {
        let mut acc = Box::new(FrameAccumulator::<MAX_FRAME_BYTES>::new());
        for request in [Request::Ping { nonce }, Request::Classify { text: bounded(&text) }] {
            let bytes = frame(id, &request);
            let FeedResult::Frame { frame, .. } = acc.feed(&bytes) else { panic!("frame") };
            prop_assert_eq!(frame.id, id);
            prop_assert_eq!(kinglet_firmware::frame::decode_request(&frame), Ok(request));
        }
    }
}
