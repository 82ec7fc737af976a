//! `kinglet serve --http`: the real binary on a loopback port, driven by curl (a real HTTP
//! client), compared with what the CLI answers for the same input.

use crate::cli::{kinglet, run};
use crate::shared::repo_root;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn model(name: &str) -> PathBuf {
    repo_root().join("models").join(format!("{name}.kinglet"))
}

/// A running `kinglet serve --http 127.0.0.1:0`, stopped with SIGTERM on drop.
struct Served {
    child: Child,
    base: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(model: &Path, extra: &[&str]) -> Served {
        let mut cmd = kinglet();
        cmd.args(["serve", "--model"]).arg(model);
        if !extra.contains(&"--http") {
            cmd.args(["--http", "127.0.0.1:0"]);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(i) = line.find("http://") {
                    let addr: String = line[i..].split_whitespace().next().unwrap().into();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("serve --http never said where: {:?}", lines.lock()));
        Served {
            child,
            base,
            stderr: lines,
        }
    }

    /// `curl -X METHOD URL [args]` → (status, body).
    fn curl(&self, method: &str, path: &str, args: &[&str]) -> (u16, String) {
        curl(&format!("{}{path}", self.base), method, args)
    }

    fn post_json(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.curl(
            "POST",
            path,
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
        );
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.curl("GET", path, &[]);
        (status, serde_json::from_str(&text).unwrap())
    }

    /// Stops with SIGTERM and returns everything it wrote on standard error.
    fn stop(mut self) -> Vec<String> {
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let log = self.stderr.lock().unwrap().clone();
        log
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON value with every number rounded to f32: kinglet's values are f32, the CLI prints them
/// widened to f64 (`0.0011122592259198427`), the HTTP API at f32's shortest (`0.0011122592`).
fn as_f32(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if !n.is_u64() && !n.is_i64() => {
            serde_json::json!(n.as_f64().unwrap() as f32)
        }
        Value::Array(a) => Value::Array(a.iter().map(as_f32).collect()),
        other => other.clone(),
    }
}

fn curl(url: &str, method: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "120",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl (a real HTTP client) must be installed");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

#[test]
fn every_endpoint_answers_as_the_cli_does() {
    let sentiment = model("sentiment");
    let served = Served::start(&sentiment, &[]);
    let text = "a gorgeous, moving film";
    let (status, answer) = served.post_json("/v1/classify", &format!("{{\"text\":\"{text}\"}}"));
    assert_eq!(status, 200, "{answer}");
    let cli = run(kinglet()
        .args(["classify", "--json", "--model"])
        .arg(&sentiment)
        .arg(text))
    .json_lines();
    for key in [
        "label",
        "label_index",
        "scores",
        "logits",
        "tokens",
        "truncated",
        "text",
    ] {
        assert_eq!(as_f32(&answer[key]), as_f32(&cli[0][key]), "{key}");
    }

    let (status, many) = served.post_json("/v1/classify", r#"{"texts":["awful","lovely"]}"#);
    assert_eq!(status, 200);
    let labels: Vec<&str> = many["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["negative", "positive"]);

    let (status, health) = served.get_json("/healthz");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["self_test"]["passed"], true);

    let (status, report) = served.get_json("/v1/model");
    assert_eq!(status, 200);
    let inspect = run(kinglet()
        .args(["inspect", "--json", "--model"])
        .arg(&sentiment))
    .json_lines();
    for key in [
        "name",
        "sha256",
        "kind",
        "labels",
        "precision",
        "file_bytes",
        "budget_bytes",
        "largest_tensors_at",
    ] {
        assert_eq!(report[key], inspect[0][key], "{key}");
    }

    let (status, page) = served.curl("GET", "/", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("<title>kinglet</title>") && page.contains("/v1/classify"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN"
    );

    let (status, metrics) = served.curl("GET", "/metrics", &[]);
    assert_eq!(status, 200);
    let lines = metrics.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?} in\n{metrics}"));
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a number"),
        }
    };
    assert_eq!(
        value("kinglet_requests_total", Some(("endpoint", "/v1/classify"))),
        2.0
    );
    assert_eq!(
        value("kinglet_model_info", Some(("name", "sentiment"))),
        1.0
    );
    assert!(value("process_resident_memory_bytes", None) > 1e6);
    assert!(value("kinglet_arena_bytes", None) > 1e6);
    let histogram = scrape
        .samples
        .iter()
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(h)
                if s.metric == "kinglet_request_duration_seconds" =>
            {
                Some(h.clone())
            }
            _ => None,
        })
        .expect("a duration histogram");
    assert_eq!(
        histogram.last().unwrap().count,
        2.0,
        "two inference requests"
    );

    let log = served.stop();
    assert!(
        log.iter()
            .any(|l| l.contains("stopped by signal") && l.contains("answered")),
        "closing statistics on SIGTERM: {log:?}"
    );
}

#[test]
fn a_forecast_over_http_equals_the_cli_forecast_of_the_same_csv() {
    let dlinear = model("etth1-dlinear");
    let csv_path = repo_root().join("examples").join("sensors.csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let served = Served::start(&dlinear, &[]);
    let body = serde_json::json!({ "csv": csv, "plot": true }).to_string();
    let (status, answer) = served.post_json("/v1/forecast", &body);
    assert_eq!(status, 200, "{answer}");
    let cli = run(kinglet()
        .args(["forecast", "--json", "--model"])
        .arg(&dlinear)
        .arg("--csv")
        .arg(&csv_path))
    .json_lines();
    for key in ["targets", "horizon", "times", "forecast"] {
        assert_eq!(as_f32(&answer[key]), as_f32(&cli[0][key]), "{key}");
    }
    assert!(answer["svg"].as_str().unwrap().starts_with("<svg"));

    // the same window as rows of numbers
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    let (status, by_rows) = served.post_json(
        "/v1/forecast",
        &serde_json::json!({ "rows": rows }).to_string(),
    );
    assert_eq!(status, 200, "{by_rows}");
    assert_eq!(as_f32(&by_rows["forecast"]), as_f32(&cli[0]["forecast"]));
    assert_eq!(by_rows["times"], serde_json::Value::Null);

    let (status, short) = served.post_json("/v1/forecast", r#"{"rows":[[1,2,3,4,5,6,7]]}"#);
    assert_eq!(
        (status, short["exit_code"].as_u64()),
        (400, Some(4)),
        "{short}"
    );
    let (status, nan) = served.post_json("/v1/forecast", r#"{"rows":[[1,2,3]], "csv":"x"}"#);
    assert_eq!(status, 400, "{nan}");
}

#[test]
fn bad_requests_get_one_json_error_with_the_cli_exit_code() {
    let served = Served::start(&model("sentiment"), &["--http-max-body", "64KiB"]);
    let dir = tempfile::tempdir().unwrap();
    let error = |(status, body): (u16, String)| -> (u16, u64, String) {
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert!(
            v["error"].as_str().is_some_and(|m| !m.contains('\n')),
            "{v}"
        );
        (
            status,
            v["exit_code"].as_u64().unwrap(),
            v["kind"].as_str().unwrap().to_owned(),
        )
    };
    let kind = |s: u16, c: u64, k: &str| (s, c, k.to_owned());
    assert_eq!(
        error(served.curl("POST", "/v1/classify", &["--data-binary", "{\"text\": "])),
        kind(400, 4, "bad_input")
    );
    assert_eq!(
        error(served.curl(
            "POST",
            "/v1/classify",
            &["--data-binary", "{\"txt\": \"x\"}"]
        )),
        kind(400, 4, "bad_input")
    );
    let latin1 = dir.path().join("latin1.json");
    std::fs::write(&latin1, b"{\"text\": \"caf\xe9\"}").unwrap();
    let at = format!("@{}", latin1.display());
    assert_eq!(
        error(served.curl("POST", "/v1/classify", &["--data-binary", &at])),
        kind(400, 4, "bad_input")
    );
    let big = dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"text\": \"{}\"}}", "a".repeat(100_000))).unwrap();
    let at = format!("@{}", big.display());
    assert_eq!(
        error(served.curl("POST", "/v1/classify", &["--data-binary", &at])),
        kind(413, 4, "too_large")
    );
    // no Content-Length: bounded while read
    assert_eq!(
        error(served.curl(
            "POST",
            "/v1/classify",
            &["-H", "Transfer-Encoding: chunked", "--data-binary", &at]
        )),
        kind(413, 4, "too_large")
    );
    assert_eq!(
        error(served.curl("POST", "/v1/forecast", &["--data-binary", "{\"rows\": []}"])),
        kind(409, 2, "wrong_model_kind")
    );
    assert_eq!(
        error(served.curl("GET", "/v2/classify", &[])),
        kind(404, 2, "not_found")
    );
    assert_eq!(
        error(served.curl("GET", "/v1/classify", &[])),
        kind(405, 2, "method_not_allowed")
    );
    let (status, after) = served.post_json("/v1/classify", r#"{"text":"still here"}"#);
    assert_eq!(status, 200, "{after}");
}

#[test]
fn requests_beyond_the_queue_are_answered_503_and_the_rest_in_full() {
    let served = Served::start(&model("sentiment"), &["--http-queue", "1"]);
    // each request: 64 long texts (a few hundred ms of inference), 12 sent at once
    let texts: Vec<String> = (0..64)
        .map(|i| {
            format!("{i} the film is long and slow but the acting is warm and true. ").repeat(12)
        })
        .collect();
    let body = serde_json::json!({ "texts": texts }).to_string();
    let url = format!("{}/v1/classify", served.base);
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || curl(&url, "POST", &["--data-binary", &body]))
        })
        .collect();
    let answers: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(ok + busy.len(), 12, "only 200 and 503: {answers:?}");
    assert!(ok >= 1, "the model answers while busy ones are refused");
    assert!(
        !busy.is_empty(),
        "12 at once with a queue of 1 must refuse some"
    );
    assert!(busy[0].1.contains("\"kind\":\"busy\""), "{}", busy[0].1);
    for (_, body) in answers.iter().filter(|(s, _)| *s == 200) {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["results"].as_array().unwrap().len(), 64);
    }
    let (_, metrics) = served.curl("GET", "/metrics", &[]);
    assert!(
        metrics.contains(&format!(
            "kinglet_errors_total{{kind=\"busy\"}} {}",
            busy.len()
        )),
        "{metrics}"
    );
}

#[test]
fn a_token_is_required_off_loopback_and_checked_when_given() {
    let sentiment = model("sentiment");
    let refused = run(kinglet()
        .args(["serve", "--http", "0.0.0.0:0", "--model"])
        .arg(&sentiment));
    refused.assert_clean_error(4, &["--token-file"]);

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "kiosk-7f3a9c2e51d84b60\n").unwrap();
    let token = token_file.to_str().unwrap();
    let served = Served::start(
        &sentiment,
        &["--http", "127.0.0.1:0", "--token-file", token],
    );
    assert_eq!(served.curl("GET", "/v1/model", &[]).0, 401);
    assert_eq!(
        served
            .curl(
                "GET",
                "/v1/model",
                &["-H", "Authorization: Bearer wrong-token-000000"]
            )
            .0,
        401
    );
    let good = ["-H", "Authorization: Bearer kiosk-7f3a9c2e51d84b60"];
    assert_eq!(served.curl("GET", "/v1/model", &good).0, 200);
    assert_eq!(served.curl("GET", "/metrics", &good).0, 200);
    assert_eq!(
        served.curl("GET", "/healthz", &[]).0,
        200,
        "health checks need no token"
    );
    assert_eq!(
        served.curl("GET", "/", &[]).0,
        200,
        "the page itself holds no data"
    );
}

#[test]
fn an_embedding_model_answers_embed_and_search_as_the_cli_does() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("st.kinglet");
    let options = kinglet_exporter::export::ExportOptions::default();
    kinglet_exporter::export::export_hf_classifier(
        &crate::shared::hf_fixture("st-bert-mean"),
        &bundle,
        &options,
    )
    .unwrap();
    let index = tmp.path().join("docs.kidx");
    let r = crate::cli::run(
        kinglet()
            .args(["index", "build", "--storage", "f16", "--model"])
            .arg(&bundle)
            .arg("--input")
            .arg(repo_root().join("examples/sst2-sentences.txt"))
            .arg("-o")
            .arg(&index),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let served = Served::start(&bundle, &["--index", index.to_str().unwrap()]);
    let (status, health) = served.get_json("/healthz");
    assert_eq!((status, health["kind"].as_str()), (200, Some("embedder")));
    let (status, one) = served.post_json("/v1/embed", r#"{"text": "a fine film"}"#);
    assert_eq!(status, 200, "{one}");
    let cli = crate::cli::run(
        kinglet()
            .args(["embed", "--json", "--model"])
            .arg(&bundle)
            .arg("a fine film"),
    );
    assert_eq!(
        as_f32(&one["embedding"]),
        as_f32(&cli.json_lines()[0]["embedding"])
    );
    let (status, many) = served.post_json("/v1/embed", r#"{"texts": ["a", "b"]}"#);
    assert_eq!(
        (status, many["results"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    let (status, found) = served.post_json(
        "/v1/search",
        r#"{"query": "a gorgeous, moving film", "k": 3}"#,
    );
    assert_eq!(status, 200, "{found}");
    let cli = crate::cli::run(
        kinglet()
            .args(["search", "--json", "-k", "3", "--model"])
            .arg(&bundle)
            .arg("--index")
            .arg(&index)
            .arg("a gorgeous, moving film"),
    );
    let want = &cli.json_lines()[0]["hits"];
    let documents = |hits: &serde_json::Value| -> Vec<u64> {
        hits.as_array()
            .unwrap()
            .iter()
            .map(|h| h["document"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(documents(&found["hits"]), documents(want));
    let (status, e) = served.post_json("/v1/search", r#"{"query": "x", "k": 0}"#);
    assert_eq!((status, e["exit_code"].as_u64()), (400, Some(4)), "{e}");
    let (status, e) = served.post_json("/v1/classify", r#"{"text": "x"}"#);
    assert_eq!(
        (status, e["kind"].as_str()),
        (409, Some("wrong_model_kind")),
        "{e}"
    );
    served.stop();
}

#[test]
fn pairs_zero_shot_and_entities_over_http_equal_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let nli = crate::pairs::export_nli(tmp.path(), 64);
    let served = Served::start(&nli, &[]);
    let (first, second) = ("A man is playing a guitar.", "Someone makes music.");
    let body = serde_json::json!({ "pair": [first, second] }).to_string();
    let (status, one) = served.post_json("/v1/classify", &body);
    assert_eq!(status, 200, "{one}");
    let cli = crate::cli::run(
        kinglet()
            .args(["classify", "--json", "--model"])
            .arg(&nli)
            .args(["--pair", first, second]),
    );
    let cli = &cli.json_lines()[0];
    assert_eq!(
        (&one["second"], &one["label"]),
        (&cli["second"], &cli["label"])
    );
    assert_eq!(as_f32(&one["logits"]), as_f32(&cli["logits"]));
    let body = serde_json::json!({ "pairs": [[first, second], [second, first]] }).to_string();
    let (status, many) = served.post_json("/v1/classify", &body);
    assert_eq!(
        (status, many["results"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    let body = serde_json::json!({
        "text": first,
        "candidates": ["music", "sports", "cooking"],
        "multi_label": true,
    })
    .to_string();
    let (status, ranked) = served.post_json("/v1/classify", &body);
    assert_eq!(status, 200, "{ranked}");
    let cli = crate::cli::run(
        kinglet()
            .args(["classify", "--json", "--multi-label", "--model"])
            .arg(&nli)
            .args(["--zero-shot", "music,sports,cooking", first]),
    );
    let cli = &cli.json_lines()[0];
    assert_eq!(ranked["labels"], cli["labels"]);
    assert_eq!(as_f32(&ranked["scores"]), as_f32(&cli["scores"]));
    // a tag request to a classifier is refused with the wrong-kind error
    let (status, refused) = served.post_json("/v1/tag", r#"{"text": "x"}"#);
    assert_eq!(status, 409, "{refused}");
    drop(served);

    let (ner, _) = crate::tag::export(tmp.path(), kinglet_exporter::quantize::Precision::F32);
    let served = Served::start(&ner, &[]);
    let (status, health) = served.get_json("/healthz");
    assert_eq!((status, health["kind"].as_str()), (200, Some("tagger")));
    let text = "Wolfgang lives in Berlin and works for Siemens.";
    let (status, tagged) =
        served.post_json("/v1/tag", &serde_json::json!({ "text": text }).to_string());
    assert_eq!(status, 200, "{tagged}");
    let cli = crate::cli::run(
        kinglet()
            .args(["tag", "--json", "--model"])
            .arg(&ner)
            .arg(text),
    );
    let cli = &cli.json_lines()[0];
    assert_eq!(tagged["entities"], cli["entities"]);
    let (status, refused) = served.post_json("/v1/classify", r#"{"text": "x"}"#);
    assert_eq!(status, 409, "{refused}");
}
