//! `kinglet serve --http ADDR`: the served model over local HTTP/1.1 (feature `http`, on by
//! default), for kiosk apps, scripts and fleet monitoring.
//!
//! | method and path     | answer |
//! |---------------------|--------|
//! | `GET /`             | the demo page (static, embedded, no CDN) |
//! | `GET /healthz`      | `{"status":"ok","model":…,"sha256":…,"self_test":{"cases":N,"passed":true}}` |
//! | `GET /metrics`      | Prometheus text format (see [`metrics`]) |
//! | `GET /v1/model`     | the [`crate::inspect::ModelReport`] of `kinglet inspect --json` |
//! | `POST /v1/classify` | `{"text": "…"}` → one [`api::ClassifyAnswer`]; `{"texts": […]}` → `{"results": […]}`; `{"pair": ["…", "…"]}` / `{"pairs": [[…], …]}` → the same with `text_pair`; `{"text": "…", "candidates": […]}` → [`api::ZeroShotAnswer`] |
//! | `POST /v1/forecast` | `{"rows": [[…], …]}` or `{"csv": "…"}`, optional `"plot": true` → [`api::ForecastAnswer`] |
//! | `POST /v1/embed`    | `{"text": "…"}` → one [`api::EmbedAnswer`]; `{"texts": […]}` → `{"results": […]}` |
//! | `POST /v1/tag`      | `{"text": "…"}` → one [`api::TagAnswer`]; `{"texts": […]}` → `{"results": […]}` |
//! | `POST /v1/search`   | `{"query": "…", "k": 5}` → `{"query": …, "hits": [`[`api::SearchHit`]`, …]}` (with `--index FILE`) |
//!
//! Errors are `{"error": MESSAGE, "exit_code": N, "kind": KIND}` with the exit code `kinglet`
//! gives the same failure: 400 bad JSON or input (4), 401 no or wrong bearer token (2), 404,
//! 405 (2), 409 wrong model kind (2), 413 body over the limit (4), 503 queue full (1, with
//! `Retry-After`), 500/507 inference or arena failure (1/6).
//!
//! One model answers one request at a time, inside the arena reserved at load: memory does not
//! grow with load. Inference requests wait in a bounded queue (`--http-queue`, default 16);
//! beyond it they are answered 503 at once. `GET` requests are answered by the front thread
//! without waiting for the model. Bodies are bounded (`--http-max-body`, default 1 MiB) before
//! they are read. A bearer token (`--token-file`) is required for every path but `/` and
//! `/healthz` when given, and binding anything but a loopback address requires one.
//! `SIGTERM`/`SIGINT` stop the server after the request in progress; `SIGHUP` and a switched
//! install link reload the model between requests, as the serial `serve` does.

pub mod api;
pub mod metrics;

use crate::error::Error;
use crate::model::Loaded;
use crate::reload::{ReloadEvent, Reloader};
use metrics::{Metrics, ModelInfo};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response};

/// The demo page served at `/`.
pub const PAGE_HTML: &str = include_str!("page.html");

/// Default bound on a request body, bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default number of inference requests that may wait for the model.
pub const DEFAULT_QUEUE: usize = 16;

/// How to serve.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `HOST:PORT` to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub addr: String,
    /// Bearer token every request but `/` and `/healthz` must carry.
    pub token: Option<String>,
    /// Bodies larger than this are refused with 413 before they are read.
    pub max_body_bytes: usize,
    /// Inference requests that may wait; more are answered 503.
    pub queue: usize,
    /// The index `POST /v1/search` ranks (built with the served model).
    pub index: Option<crate::index::Index>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address does not parse or resolve.
    #[error("cannot use address {addr}: {reason}")]
    Address {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A non-loopback address without a token.
    #[error("{addr} is reachable from other machines: give --token-file (a bearer token every request must carry), or bind 127.0.0.1")]
    NeedsToken {
        /// As given.
        addr: String,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// What a run of the server did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HttpStats {
    /// Requests answered 2xx.
    pub answered: u64,
    /// Requests answered with an error status.
    pub errors: u64,
    /// Inference requests answered 503 because the queue was full.
    pub busy: u64,
}

/// A bound server, not yet answering.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    options: HttpOptions,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// One inference request handed from the front thread to the model.
struct Job {
    request: Request,
    endpoint: &'static str,
    arrived: Instant,
}

/// What the front thread answers on its own.
struct Front {
    metrics: Metrics,
    model_json: RwLock<String>,
    health_json: RwLock<String>,
    token: Option<String>,
    max_body_bytes: usize,
}

impl HttpServer {
    /// Binds `options.addr`; refuses a non-loopback address without a token.
    pub fn bind(options: HttpOptions) -> Result<HttpServer, HttpError> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = options
            .addr
            .to_socket_addrs()
            .map_err(|e| HttpError::Address {
                addr: options.addr.clone(),
                reason: e.to_string(),
            })?
            .collect();
        let Some(&first) = addrs.first() else {
            return Err(HttpError::Address {
                addr: options.addr.clone(),
                reason: "resolves to nothing".into(),
            });
        };
        if options.token.is_none() && addrs.iter().any(|a| !a.ip().is_loopback()) {
            return Err(HttpError::NeedsToken {
                addr: options.addr.clone(),
            });
        }
        let server = tiny_http::Server::http(first).map_err(|e| HttpError::Bind {
            addr: options.addr.clone(),
            reason: e.to_string(),
        })?;
        let addr = server.server_addr().to_ip().unwrap_or(first);
        Ok(HttpServer {
            server: Arc::new(server),
            addr,
            options,
        })
    }

    /// The address listened on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `loaded` (read from `path`) until `SIGTERM`/`SIGINT` (once
    /// [`crate::reload::watch_stop`] is installed); `reloader` swaps the model between
    /// requests and `on_reload` hears each attempt. The model runs on the calling thread.
    pub fn run(
        mut self,
        loaded: Loaded,
        path: &Path,
        reloader: &mut Reloader,
        mut on_reload: impl FnMut(&ReloadEvent),
    ) -> Result<HttpStats, Error> {
        let front = Arc::new(Front {
            metrics: Metrics::default(),
            model_json: RwLock::default(),
            health_json: RwLock::default(),
            token: self.options.token.clone(),
            max_body_bytes: self.options.max_body_bytes,
        });
        let mut served = Served::new(loaded, path.to_owned(), &front)?;
        served.index = self.options.index.take();
        let (tx, rx) = sync_channel::<Job>(self.options.queue.max(1));
        let front_thread = {
            let (server, front) = (self.server.clone(), front.clone());
            std::thread::Builder::new()
                .name("kinglet-http".into())
                .spawn(move || front.accept(&server, tx))
                .map_err(|e| Error::Inference(format!("cannot start the HTTP thread: {e}")))?
        };
        served.answer_until_stopped(&rx, &front, reloader, &mut on_reload);
        self.server.unblock();
        drop(rx);
        let _ = front_thread.join();
        let (answered, errors, busy) = front.metrics.totals();
        Ok(HttpStats {
            answered,
            errors,
            busy,
        })
    }
}

/// The model side: owns the model, answers jobs, reloads between them.
struct Served {
    loaded: Loaded,
    path: PathBuf,
    index: Option<crate::index::Index>,
}

impl Served {
    fn new(mut loaded: Loaded, path: PathBuf, front: &Front) -> Result<Served, Error> {
        publish(&mut loaded, &path, front)?;
        Ok(Served {
            loaded,
            path,
            index: None,
        })
    }

    fn answer_until_stopped(
        &mut self,
        rx: &Receiver<Job>,
        front: &Front,
        reloader: &mut Reloader,
        on_reload: &mut impl FnMut(&ReloadEvent),
    ) {
        loop {
            if crate::reload::stop_requested() {
                return;
            }
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(job) => {
                    front.metrics.queue(-1);
                    self.answer(job, front);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Some((event, loaded)) = reloader.poll_loaded() {
                let event = match loaded {
                    Some(mut loaded) => {
                        let path = match &event {
                            ReloadEvent::Reloaded { path, .. } => path.clone(),
                            ReloadEvent::Refused { path, .. } => path.clone(),
                        };
                        match publish(&mut loaded, &path, front) {
                            Ok(()) => {
                                self.loaded = loaded;
                                self.path = path;
                                front.metrics.reloaded("ok");
                                event
                            }
                            Err(error) => {
                                front.metrics.reloaded("refused");
                                ReloadEvent::Refused { path, error }
                            }
                        }
                    }
                    None => {
                        front.metrics.reloaded("refused");
                        event
                    }
                };
                on_reload(&event);
            }
        }
    }

    fn answer(&mut self, mut job: Job, front: &Front) {
        let result =
            read_body(&mut job.request, front.max_body_bytes).and_then(|body| match job.endpoint {
                CLASSIFY => api::classify(&mut self.loaded.model, &body),
                EMBED => api::embed(&mut self.loaded.model, &body),
                TAG => api::tag(&mut self.loaded.model, &body),
                SEARCH => api::search(
                    &mut self.loaded.model,
                    self.index.as_ref(),
                    &self.loaded.sha256_hex,
                    &body,
                ),
                _ => api::forecast(&mut self.loaded.model, &body),
            });
        front.metrics.observe(job.arrived.elapsed());
        front.respond(job.request, job.endpoint, result.map(json_ok));
    }
}

/// Makes `loaded` what `/v1/model`, `/healthz` and `/metrics` describe.
fn publish(loaded: &mut Loaded, path: &Path, front: &Front) -> Result<(), Error> {
    let report = crate::inspect::model_report(loaded, path, false)?;
    let kind = loaded.model.kind().name();
    let health = serde_json::json!({
        "status": "ok",
        "model": report.name,
        "version": report.version,
        "kind": kind,
        "sha256": report.sha256,
        "self_test": {"cases": report.self_test_cases, "passed": true},
    });
    front.metrics.set_model(ModelInfo {
        name: report.name.clone(),
        version: report.version.clone(),
        sha256: report.sha256.clone(),
        kind: kind.into(),
        precision: report.precision.clone(),
        budget_bytes: report.budget_bytes,
    });
    let model_json = serde_json::to_string(&report).unwrap_or_default();
    if let Ok(mut j) = front.model_json.write() {
        *j = model_json;
    }
    if let Ok(mut j) = front.health_json.write() {
        *j = health.to_string();
    }
    Ok(())
}

const PAGE: &str = "/";
const HEALTHZ: &str = "/healthz";
const METRICS: &str = "/metrics";
const MODEL: &str = "/v1/model";
const CLASSIFY: &str = "/v1/classify";
const FORECAST: &str = "/v1/forecast";
const EMBED: &str = "/v1/embed";
const SEARCH: &str = "/v1/search";
const TAG: &str = "/v1/tag";
const OTHER: &str = "other";

/// The route of a path (query ignored), its metrics name and the method it takes.
fn route(url: &str) -> Option<(&'static str, Method)> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    [
        (PAGE, Method::Get),
        (HEALTHZ, Method::Get),
        (METRICS, Method::Get),
        (MODEL, Method::Get),
        (CLASSIFY, Method::Post),
        (FORECAST, Method::Post),
        (EMBED, Method::Post),
        (SEARCH, Method::Post),
        (TAG, Method::Post),
    ]
    .into_iter()
    .find(|(p, _)| *p == path)
}

/// A 2xx JSON body.
struct Ok200 {
    body: String,
    content_type: &'static str,
}

fn json_ok(body: String) -> Ok200 {
    Ok200 {
        body,
        content_type: "application/json",
    }
}

impl Front {
    fn accept(&self, server: &tiny_http::Server, tx: SyncSender<Job>) {
        loop {
            if crate::reload::stop_requested() {
                return;
            }
            match server.recv_timeout(Duration::from_millis(250)) {
                Ok(Some(request)) => self.dispatch(request, &tx),
                Ok(None) => {}
                // unblock() from the model side, or the listener failed
                Err(_) => return,
            }
        }
    }

    fn dispatch(&self, request: Request, tx: &SyncSender<Job>) {
        let Some((endpoint, method)) = route(request.url()) else {
            let e = error(
                404,
                2,
                "not_found",
                format!("no such path: {}", request.url()),
            );
            return self.respond(request, OTHER, Err(e));
        };
        if *request.method() != method
            && !(method == Method::Get && *request.method() == Method::Head)
        {
            let e = error(
                405,
                2,
                "method_not_allowed",
                format!("{endpoint} takes {method}, not {}", request.method()),
            );
            return self.respond(request, endpoint, Err(e));
        }
        if endpoint != PAGE && endpoint != HEALTHZ && !self.authorized(&request) {
            let e = error(
                401,
                2,
                "unauthorized",
                "this server wants `Authorization: Bearer TOKEN` (the token of --token-file)"
                    .into(),
            );
            return self.respond(request, endpoint, Err(e));
        }
        let read = |lock: &RwLock<String>| lock.read().map(|s| s.clone()).unwrap_or_default();
        let answer = match endpoint {
            PAGE => Ok(Ok200 {
                body: PAGE_HTML.into(),
                content_type: "text/html; charset=utf-8",
            }),
            HEALTHZ => Ok(json_ok(read(&self.health_json))),
            METRICS => Ok(Ok200 {
                body: self.metrics.render(),
                content_type: "text/plain; version=0.0.4; charset=utf-8",
            }),
            MODEL => Ok(json_ok(read(&self.model_json))),
            _ => {
                if let Some(n) = request.body_length().filter(|&n| n > self.max_body_bytes) {
                    let e = too_large(n, self.max_body_bytes);
                    return self.respond(request, endpoint, Err(e));
                }
                let job = Job {
                    request,
                    endpoint,
                    arrived: Instant::now(),
                };
                self.metrics.queue(1);
                match tx.try_send(job) {
                    Ok(()) => return,
                    Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                        self.metrics.queue(-1);
                        let e = error(
                            503,
                            1,
                            "busy",
                            "the model's queue is full; retry in a moment".into(),
                        );
                        return self.respond(job.request, endpoint, Err(e));
                    }
                }
            }
        };
        self.respond(request, endpoint, answer);
    }

    fn authorized(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        request
            .headers()
            .iter()
            .filter(|h| h.field.equiv("Authorization"))
            .filter_map(|h| h.value.as_str().strip_prefix("Bearer "))
            .any(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
    }

    fn respond(
        &self,
        request: Request,
        endpoint: &'static str,
        answer: Result<Ok200, api::ApiError>,
    ) {
        let (status, body, content_type, kind) = match answer {
            Ok(ok) => (200, ok.body, ok.content_type, None),
            Err(e) => (e.status, e.body(), "application/json", Some(e.kind)),
        };
        self.metrics.answered(endpoint, status, kind);
        let mut response = Response::from_string(body)
            .with_status_code(status)
            .with_header(header("Content-Type", content_type))
            .with_header(header("Cache-Control", "no-store"));
        match status {
            503 => response.add_header(header("Retry-After", "1")),
            401 => response.add_header(header("WWW-Authenticate", "Bearer")),
            _ => {}
        }
        // a client that went away is not our error
        let _ = request.respond(response);
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn error(status: u16, exit_code: u8, kind: &'static str, message: String) -> api::ApiError {
    api::ApiError {
        status,
        exit_code,
        kind,
        message,
    }
}

fn too_large(bytes: usize, limit: usize) -> api::ApiError {
    error(
        413,
        4,
        "too_large",
        format!("request body of {bytes} bytes; this server takes at most {limit}"),
    )
}

/// Reads a body of at most `limit` bytes (a missing `Content-Length`, chunked transfer, is
/// bounded the same way).
fn read_body(request: &mut Request, limit: usize) -> Result<Vec<u8>, api::ApiError> {
    let mut body = Vec::with_capacity(request.body_length().unwrap_or(0).min(limit));
    request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| api::ApiError::bad_input(format!("cannot read the request body: {e}")))?;
    if body.len() > limit {
        return Err(error(
            413,
            4,
            "too_large",
            format!("request body over {limit} bytes, the most this server takes"),
        ));
    }
    Ok(body)
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ignore_the_query_and_know_their_method() {
        assert_eq!(route("/v1/classify?x=1").map(|r| r.0), Some(CLASSIFY));
        assert_eq!(route("/metrics").map(|r| r.1), Some(Method::Get));
        assert!(route("/v1/nope").is_none());
        assert!(route("/v1/classify/").is_none());
    }

    #[test]
    fn a_token_compares_equal_only_to_itself() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn an_address_reachable_from_elsewhere_needs_a_token() {
        let options = HttpOptions {
            addr: "0.0.0.0:0".into(),
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            queue: DEFAULT_QUEUE,
            index: None,
        };
        assert!(matches!(
            HttpServer::bind(options),
            Err(HttpError::NeedsToken { .. })
        ));
    }
}
