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
fn serve_bytes<E: InferenceEngine>(
    device: &mut Device<E>,
    stream: &[u8],
    chunk: usize,
) -> Vec<(u32, Response)> {
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

/// A forecaster of lookback 2 × 2 features that answers the sum of its window.
struct Sum;

impl InferenceEngine for Sum {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            kind: ModelKind::Forecaster,
            names: ["a", "b"].iter().map(|s| bounded(s)).collect(),
            targets: ["a"].iter().map(|s| bounded(s)).collect(),
            max_text_bytes: 0,
            lookback: 2,
            features: 2,
            horizon: 1,
            ..Echo.info()
        }
    }
    fn classify(&mut self, _: &str) -> Result<Classified, EngineError> {
        Err(EngineError::new(ErrorCode::WrongModelKind, "forecaster"))
    }
    fn forecast(
        &mut self,
        window: &[f32],
        out: &mut HVec<f32, MAX_FORECAST_VALUES>,
    ) -> Result<(), EngineError> {
        out.clear();
        out.push(window.iter().sum()).unwrap();
        Ok(())
    }
}

#[test]
fn push_refuses_non_finite_rows_and_keeps_the_window_clean() {
    let mut device = Device::new(Sum);
    let row = |values: &[f32]| Request::Push {
        row: HVec::from_slice(values).unwrap(),
    };
    let mut stream = Vec::new();
    for (id, request) in [
        row(&[1.0, 2.0]),
        row(&[f32::NAN, 0.0]),
        row(&[0.0, f32::INFINITY]),
        row(&[3.0, 4.0]),
        Request::ForecastNow,
    ]
    .iter()
    .enumerate()
    {
        stream.extend(frame(id as u32, request));
    }
    let answers = serve_bytes(&mut device, &stream, 64);
    assert_eq!(answers.len(), 5, "{answers:?}");
    assert!(matches!(answers[0].1, Response::Pushed { rows: 1, .. }));
    for (_, refused) in &answers[1..3] {
        let Response::Error { code, detail } = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(*code, ErrorCode::BadInput);
        assert!(detail.contains("NaN or infinite"), "{detail}");
    }
    assert!(matches!(
        answers[3].1,
        Response::Pushed {
            rows: 2,
            ready: true
        }
    ));
    assert_eq!(
        answers[4].1,
        Response::Forecast {
            values: HVec::from_slice(&[10.0]).unwrap()
        }
    );
}

/// A host's view of a device on a perfect line: writes go into the device, its answers come
/// back; the first `lose_writes` writes are lost on the way.
struct Line<E: InferenceEngine> {
    device: Device<E>,
    to_host: Vec<u8>,
    lose_writes: usize,
}

impl<E: InferenceEngine> std::io::Write for Line<E> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.lose_writes > 0 {
            self.lose_writes -= 1;
            return Ok(bytes.len());
        }
        let Line {
            device, to_host, ..
        } = self;
        device
            .handle(bytes, |answer| -> Result<(), ()> {
                to_host.extend_from_slice(answer);
                Ok(())
            })
            .unwrap();
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<E: InferenceEngine> std::io::Read for Line<E> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.to_host.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(1));
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let n = buf.len().min(self.to_host.len());
        buf[..n].copy_from_slice(&self.to_host[..n]);
        self.to_host.drain(..n);
        Ok(n)
    }
}

#[test]
fn the_first_request_after_line_noise_is_answered_at_once() {
    use kinglet_firmware::client::Client;
    let mut device = Device::new(Echo);
    // noise the device buffered before the host spoke: no delimiter, so it waits for one
    device
        .handle(
            b"\x13\x37 half a frame from a reset",
            |_| -> Result<(), ()> { Ok(()) },
        )
        .unwrap();
    let line = Line {
        device,
        to_host: Vec::new(),
        lose_writes: 0,
    };
    // no retry: the request itself must get through
    let mut client = Client::new(line, std::time::Duration::from_secs(5));
    let started = std::time::Instant::now();
    let answer = client.call(&Request::Ping { nonce: 41 }).unwrap();
    assert_eq!(answer, Response::Pong { nonce: 41 });
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(
        client.port_mut().device.stats().corrupt,
        1,
        "the noise, dropped"
    );
    // later requests are led by a delimiter too, and an empty frame is not counted
    let answer = client.call(&Request::Ping { nonce: 42 }).unwrap();
    assert_eq!(answer, Response::Pong { nonce: 42 });
    assert_eq!(client.port_mut().device.stats().corrupt, 1);
}

#[test]
fn a_lost_request_is_sent_once_more_but_a_lost_push_is_not() {
    use kinglet_firmware::client::{retry_after_for_baud, Client, ClientError};
    use std::time::Duration;
    let line = Line {
        device: Device::new(Echo),
        to_host: Vec::new(),
        lose_writes: 1,
    };
    let mut client =
        Client::new(line, Duration::from_secs(5)).with_retry(Duration::from_millis(50));
    let answer = client.call(&Request::Ping { nonce: 7 }).unwrap();
    assert_eq!(answer, Response::Pong { nonce: 7 });
    // lost twice: one retry only, then the deadline
    let mut short = Client::new(
        Line {
            device: Device::new(Sum),
            to_host: Vec::new(),
            lose_writes: 2,
        },
        Duration::from_millis(300),
    )
    .with_retry(Duration::from_millis(50));
    assert!(matches!(
        short.call(&Request::Ping { nonce: 1 }),
        Err(ClientError::Timeout)
    ));
    short.port_mut().lose_writes = 1;
    let push = Request::Push {
        row: HVec::from_slice(&[1.0, 2.0]).unwrap(),
    };
    assert!(matches!(short.call(&push), Err(ClientError::Timeout)));
    assert_eq!(
        short.port_mut().device.stats().answered,
        0,
        "the lost push was not repeated"
    );
    // the retry delay follows the baud rate: a frame each way at 115200 baud, plus 250 ms
    let at_115200 = retry_after_for_baud(115_200).as_secs_f64();
    assert!((at_115200 - (0.25 + 2.0 * 10_297.0 * 10.0 / 115_200.0)).abs() < 1e-9);
    assert!(retry_after_for_baud(9_600) > retry_after_for_baud(115_200));
}
