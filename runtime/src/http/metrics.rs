//! What `GET /metrics` reports, in the Prometheus text exposition format (version 0.0.4):
//! requests by endpoint and status, errors by kind, a histogram of inference request
//! durations (queue wait included), queue depth, reloads, the memory arena, the process's
//! resident memory and the served model's identity.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the duration histogram's buckets: a 16-token int8 classification
/// takes about 1 ms on a desktop core and tens on a Cortex-A53; a 20,000-request backlog can
/// wait seconds.
pub const DURATION_BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Identity of the served model (`kinglet_model_info`'s labels).
#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    /// Bundle name.
    pub name: String,
    /// Bundle version (may be empty).
    pub version: String,
    /// SHA-256 of the bundle file.
    pub sha256: String,
    /// `classifier` or `forecaster`.
    pub kind: String,
    /// Precision of the graph.
    pub precision: String,
    /// The memory budget the model was loaded under, bytes.
    pub budget_bytes: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    errors: BTreeMap<&'static str, u64>,
    buckets: [u64; DURATION_BUCKETS_S.len()],
    duration_sum_s: f64,
    duration_count: u64,
    queued: usize,
    reloads: BTreeMap<&'static str, u64>,
    model: ModelInfo,
}

/// Counters shared by the HTTP front and the inference loop.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::default(),
            started: Instant::now(),
        }
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    /// Counts one answered request (`endpoint` is the route, or `other` for unknown paths).
    pub fn answered(&self, endpoint: &'static str, status: u16, error_kind: Option<&'static str>) {
        self.with(|m| {
            *m.requests.entry((endpoint, status)).or_default() += 1;
            if let Some(kind) = error_kind {
                *m.errors.entry(kind).or_default() += 1;
            }
        });
    }

    /// Records how long an inference request took from arrival to answer.
    pub fn observe(&self, took: Duration) {
        let s = took.as_secs_f64();
        self.with(|m| {
            for (bucket, &le) in m.buckets.iter_mut().zip(&DURATION_BUCKETS_S) {
                if s <= le {
                    *bucket += 1;
                }
            }
            m.duration_sum_s += s;
            m.duration_count += 1;
        });
    }

    /// Adds `delta` (±1) to the requests waiting for the model.
    pub fn queue(&self, delta: isize) {
        self.with(|m| m.queued = m.queued.saturating_add_signed(delta));
    }

    /// Counts a reload attempt (`ok` or `refused`).
    pub fn reloaded(&self, outcome: &'static str) {
        self.with(|m| *m.reloads.entry(outcome).or_default() += 1);
    }

    /// Sets the served model's identity.
    pub fn set_model(&self, model: ModelInfo) {
        self.with(|m| m.model = model);
    }

    /// Requests answered 2xx, answered with an error status, and of those refused as busy.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.with(|m| {
            let (mut ok, mut errors) = (0, 0);
            for (&(_, code), &n) in &m.requests {
                if (200..300).contains(&code) {
                    ok += n;
                } else {
                    errors += n;
                }
            }
            (ok, errors, m.errors.get("busy").copied().unwrap_or(0))
        })
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let (arena_bytes, arena_used_bytes) = crate::memory::allocator::arena_bytes();
        let heap = crate::memory::allocator::installed().then(crate::memory::allocator::live_bytes);
        let rss = resident_bytes();
        let uptime_s = self.started.elapsed().as_secs_f64();
        self.with(|m| {
            let mut out = String::with_capacity(4096);
            let o = &mut out;
            header(o, "kinglet_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
            for ((endpoint, code), n) in &m.requests {
                let _ = writeln!(o, "kinglet_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}");
            }
            header(o, "kinglet_errors_total", "counter", "Requests answered with an error, by kind (bad_input, too_large, wrong_model_kind, busy, unauthorized, not_found, inference, memory).");
            for (kind, n) in &m.errors {
                let _ = writeln!(o, "kinglet_errors_total{{kind=\"{kind}\"}} {n}");
            }
            header(o, "kinglet_request_duration_seconds", "histogram", "Inference requests (classify, forecast) from arrival to answer, queue wait included.");
            for (le, n) in DURATION_BUCKETS_S.iter().zip(&m.buckets) {
                let _ = writeln!(o, "kinglet_request_duration_seconds_bucket{{le=\"{le}\"}} {n}");
            }
            let _ = writeln!(o, "kinglet_request_duration_seconds_bucket{{le=\"+Inf\"}} {}", m.duration_count);
            let _ = writeln!(o, "kinglet_request_duration_seconds_sum {}", m.duration_sum_s);
            let _ = writeln!(o, "kinglet_request_duration_seconds_count {}", m.duration_count);
            header(o, "kinglet_queue_depth", "gauge", "Inference requests waiting for the model.");
            let _ = writeln!(o, "kinglet_queue_depth {}", m.queued);
            header(o, "kinglet_reloads_total", "counter", "Model reloads (SIGHUP or a switched install link), by outcome.");
            for outcome in ["ok", "refused"] {
                let n = m.reloads.get(outcome).copied().unwrap_or(0);
                let _ = writeln!(o, "kinglet_reloads_total{{outcome=\"{outcome}\"}} {n}");
            }
            header(o, "kinglet_arena_bytes", "gauge", "Bytes reserved for the inference arena at load.");
            let _ = writeln!(o, "kinglet_arena_bytes {arena_bytes}");
            header(o, "kinglet_arena_used_bytes", "gauge", "Bytes of the arena in use now (0 between requests).");
            let _ = writeln!(o, "kinglet_arena_used_bytes {arena_used_bytes}");
            if let Some(heap) = heap {
                header(o, "kinglet_heap_live_bytes", "gauge", "Bytes allocated through kinglet's allocator and not freed.");
                let _ = writeln!(o, "kinglet_heap_live_bytes {heap}");
            }
            if let Some(rss) = rss {
                header(o, "process_resident_memory_bytes", "gauge", "Resident memory of the process.");
                let _ = writeln!(o, "process_resident_memory_bytes {rss}");
            }
            if let Some(budget) = m.model.budget_bytes {
                header(o, "kinglet_model_budget_bytes", "gauge", "The memory budget the model was loaded under.");
                let _ = writeln!(o, "kinglet_model_budget_bytes {budget}");
            }
            header(o, "kinglet_model_info", "gauge", "The served model (always 1).");
            let i = &m.model;
            let _ = writeln!(
                o,
                "kinglet_model_info{{name=\"{}\",version=\"{}\",sha256=\"{}\",kind=\"{}\",precision=\"{}\"}} 1",
                escape(&i.name),
                escape(&i.version),
                escape(&i.sha256),
                escape(&i.kind),
                escape(&i.precision)
            );
            header(o, "kinglet_build_info", "gauge", "This kinglet (always 1).");
            let _ = writeln!(
                o,
                "kinglet_build_info{{version=\"{}\",commit=\"{}\",tract=\"{}\",arch=\"{}\"}} 1",
                crate::VERSION,
                escape(crate::COMMIT),
                crate::TRACT_VERSION,
                std::env::consts::ARCH
            );
            header(o, "kinglet_uptime_seconds", "gauge", "Seconds since the server started.");
            let _ = writeln!(o, "kinglet_uptime_seconds {uptime_s:.3}");
            out
        })
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Resident set size from `/proc/self/statm` (Linux), bytes.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_the_text_format_wants() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_every_observation() {
        let m = Metrics::default();
        m.observe(Duration::from_micros(500));
        m.observe(Duration::from_millis(20));
        m.observe(Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains("kinglet_request_duration_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("kinglet_request_duration_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("kinglet_request_duration_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("kinglet_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("kinglet_request_duration_seconds_count 3\n"));
    }
}
