//! Host side (`std`): send a request over any byte stream and wait for its answer.

use crate::frame::{decode_response, encode_request, FeedResult, FrameAccumulator};
use crate::wire::*;
use std::io::{Read, Write};

/// True for the errors a polled serial read returns when nothing arrived in time: the caller
/// should simply read again.
pub fn no_data_yet(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(e.kind(), TimedOut | WouldBlock | Interrupted)
}

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The link failed.
    Io(std::io::Error),
    /// No answer with the request's id arrived in time.
    Timeout,
    /// The request does not fit in a frame.
    TooLarge,
    /// The link closed.
    Closed,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "serial link: {e}"),
            ClientError::Timeout => write!(f, "no answer from the device in time"),
            ClientError::TooLarge => write!(
                f,
                "request too large for one frame ({MAX_FRAME_BYTES} bytes)"
            ),
            ClientError::Closed => write!(f, "the link closed"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A blocking client over a byte stream whose reads time out (a serial port, a pty).
pub struct Client<P: Read + Write> {
    port: P,
    next_id: u32,
    acc: Box<FrameAccumulator<MAX_FRAME_BYTES>>,
    pending: Vec<u8>,
    out: Vec<u8>,
    deadline: std::time::Duration,
    retry_after: Option<std::time::Duration>,
}

/// How long to wait for an answer before sending a request again, at `baud` (8N1): long
/// enough for a request and its answer of a whole frame each to cross the line, plus 250 ms
/// for the device to think.
pub fn retry_after_for_baud(baud: u32) -> std::time::Duration {
    let frame_s = (MAX_FRAME_BYTES as f64 + 1.0) * 10.0 / f64::from(baud.max(1));
    std::time::Duration::from_secs_f64(0.25 + 2.0 * frame_s)
}

impl<P: Read + Write> Client<P> {
    /// A client on `port`, giving each call up to `deadline` to be answered.
    pub fn new(port: P, deadline: std::time::Duration) -> Self {
        Client {
            port,
            next_id: 1,
            acc: Box::new(FrameAccumulator::new()),
            pending: Vec::new(),
            out: vec![0; MAX_FRAME_BYTES + 1],
            deadline,
            retry_after: None,
        }
    }

    /// Sends a request once more, with the same id, when no answer came within `after` (once
    /// per call). `Push` is never sent twice: it is not idempotent.
    pub fn with_retry(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Sends `request` and returns the answer carrying its id; answers to other ids (late
    /// replies, id-0 notices, the second answer to a retried request) are skipped.
    ///
    /// Each request goes out led by a frame delimiter (`0x00`): whatever line noise the device
    /// has buffered ends there as one rejected frame, and the request itself arrives whole.
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.out[0] = 0;
        let n =
            encode_request(id, request, &mut self.out[1..]).map_err(|_| ClientError::TooLarge)?;
        self.send(n + 1)?;
        let started = std::time::Instant::now();
        let mut retry_after = match request {
            Request::Push { .. } => None,
            _ => self.retry_after,
        };
        let mut buf = [0u8; 512];
        loop {
            if let Some(response) = self.take_answer(id) {
                return Ok(response);
            }
            if started.elapsed() > self.deadline {
                return Err(ClientError::Timeout);
            }
            if retry_after.is_some_and(|after| started.elapsed() > after) {
                retry_after = None;
                self.send(n + 1)?;
            }
            match self.port.read(&mut buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if no_data_yet(&e) => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    fn send(&mut self, n: usize) -> Result<(), ClientError> {
        self.port
            .write_all(&self.out[..n])
            .map_err(ClientError::Io)?;
        self.port.flush().map_err(ClientError::Io)
    }

    fn take_answer(&mut self, id: u32) -> Option<Response> {
        let pending = std::mem::take(&mut self.pending);
        let mut input = pending.as_slice();
        let mut found = None;
        while found.is_none() {
            match self.acc.feed(input) {
                FeedResult::Consumed => {
                    input = &[];
                    break;
                }
                FeedResult::OverFull(rest)
                | FeedResult::Corrupt {
                    remaining: rest, ..
                } => input = rest,
                FeedResult::Frame { frame, remaining } => {
                    if frame.id == id {
                        found = decode_response(&frame).ok();
                    }
                    input = remaining;
                }
            }
        }
        self.pending = input.to_vec();
        found
    }

    /// The underlying port.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }
}
