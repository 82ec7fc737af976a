//! `kinglet serve` and `kinglet call` over real pseudo-terminals.
//!
//! Two pty pairs joined by a relay thread that forwards bytes between their master sides at
//! the pace of a 115200-baud 8N1 UART (11,520 bytes/s): `serve` opens one slave, `call` the
//! other, exactly as they would open /dev/ttyAMA0 and /dev/ttyUSB0.

use crate::cli::{kinglet, run};
use crate::shared::{repo_root, shipped_sentiment};
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Bytes per second of a 115200-baud 8N1 line.
const LINE_BYTES_PER_S: f64 = 115_200.0 / 10.0;

struct Pty {
    master: File,
    _slave: OwnedFd,
    slave_path: PathBuf,
}

fn open_pty() -> Pty {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors we then own; termios is a plain C struct.
    unsafe {
        assert_eq!(
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null()
            ),
            0
        );
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(slave, &mut t);
        libc::cfmakeraw(&mut t);
        libc::tcsetattr(slave, libc::TCSANOW, &t);
        let name = std::ffi::CStr::from_ptr(libc::ttyname(slave))
            .to_string_lossy()
            .into_owned();
        Pty {
            master: File::from_raw_fd(master),
            _slave: OwnedFd::from_raw_fd(slave),
            slave_path: PathBuf::from(name),
        }
    }
}

/// Copies bytes from `from` to `to`, no faster than the UART would.
fn relay(mut from: File, mut to: File) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let mut sent = 0f64;
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sent += n as f64;
            let due = Duration::from_secs_f64(sent / LINE_BYTES_PER_S);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
}

/// A running `kinglet serve` on one pty, reachable through the other pty's slave.
struct Link {
    serve: Child,
    client_port: PathBuf,
    _ptys: (Pty, Pty),
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}

fn serve(model: &std::path::Path) -> Link {
    let (device, host) = (open_pty(), open_pty());
    relay(
        device.master.try_clone().unwrap(),
        host.master.try_clone().unwrap(),
    );
    relay(
        host.master.try_clone().unwrap(),
        device.master.try_clone().unwrap(),
    );
    let mut serve = kinglet()
        .arg("serve")
        .arg("--model")
        .arg(model)
        .arg("--port")
        .arg(&device.slave_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(serve.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("serving"), "serve did not start: {line}");
    let client_port = host.slave_path.clone();
    Link {
        serve,
        client_port,
        _ptys: (device, host),
    }
}

fn call(link: &Link, args: &[&str]) -> crate::cli::Run {
    run(kinglet()
        .arg("call")
        .arg("--port")
        .arg(&link.client_port)
        .args(args))
}

#[test]
fn classify_over_serial_equals_the_cli() {
    let link = serve(&shipped_sentiment());
    for text in [
        "an uplifting, beautifully acted film",
        "a tedious, joyless slog",
        "Crème brûlée 東京",
    ] {
        let over_serial = call(&link, &["--json", "classify", text]);
        assert_eq!(over_serial.code, 0, "{}", over_serial.stderr);
        let local = run(kinglet()
            .arg("classify")
            .arg("--json")
            .arg("--model")
            .arg(shipped_sentiment())
            .arg(text));
        let a: serde_json::Value = serde_json::from_str(over_serial.stdout.trim()).unwrap();
        let b: serde_json::Value = serde_json::from_str(local.stdout.trim()).unwrap();
        for field in ["text", "label", "score", "logits"] {
            assert_eq!(a[field], b[field], "{field} of {text:?}");
        }
        // the wire answer has no token count, truncation flag or scores: none is invented
        for field in ["tokens", "truncated", "scores"] {
            assert!(a.get(field).is_none(), "{field} invented: {a}");
        }
    }
    let info = call(&link, &["--json", "info"]);
    let v: serde_json::Value = serde_json::from_str(info.stdout.trim()).unwrap();
    assert_eq!(v["names"], serde_json::json!(["negative", "positive"]));
    assert_eq!(call(&link, &["ping"]).code, 0);
}

#[test]
fn forecast_and_push_over_serial_equal_the_cli() {
    let model = repo_root().join("models/etth1-lstm.kinglet");
    let link = serve(&model);
    // 100 hourly rows; the CLI and the device both use the last 96
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("rows.csv");
    let mut text = String::from("HUFL,HULL,MUFL,MULL,LUFL,LULL,OT\n");
    for r in 0..100 {
        let t = r as f32;
        let cells: Vec<String> = (0..7)
            .map(|c| format!("{:.3}", 5.0 + (t * 0.2 + c as f32).sin() * (c as f32 + 1.0)))
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(&csv, text).unwrap();
    let local = run(kinglet()
        .arg("forecast")
        .arg("--json")
        .arg("--model")
        .arg(&model)
        .arg("--csv")
        .arg(&csv));
    let local: serde_json::Value = serde_json::from_str(local.stdout.trim()).unwrap();
    for mode in ["forecast", "push"] {
        let r = call(&link, &["--json", mode, "--csv", csv.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{mode}: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(v["forecast"], local["forecast"], "{mode}");
        assert_eq!(v["targets"], serde_json::json!(["OT"]));
    }
    // a classifier request to a forecaster gets a defined error
    let r = call(&link, &["classify", "hello"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("WrongModelKind"), "{}", r.stderr);
}

/// Measures classify round trips through the throttled link with the protocol client itself
/// (no process start per request). Prints requests per second; asserts only correctness.
#[test]
fn classify_requests_per_second_at_115200_baud_is_reported() {
    use kinglet_firmware::client::Client;
    use kinglet_firmware::wire::{bounded, Request, Response};
    let link = serve(&shipped_sentiment());
    let port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&link.client_port)
        .unwrap();
    let mut client = Client::new(port, Duration::from_secs(30));
    let texts = [
        "a gorgeous, moving film",
        "the worst movie of the year",
        "it is what it is",
    ];
    let n = 30;
    let started = Instant::now();
    for i in 0..n {
        let r = client
            .call(&Request::Classify {
                text: bounded(texts[i % 3]),
            })
            .unwrap();
        assert!(matches!(r, Response::Classified(_)), "{r:?}");
    }
    let per_s = n as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "serial classify at 115200 baud over a pty pair: {n} requests, {per_s:.1} requests/s"
    );
    let _ = client.port_mut().as_raw_fd();
}

/// The answer of `kinglet call --json …` and of the local command, as JSON.
fn both(link: &Link, wire: &[&str], local: &mut std::process::Command) -> [serde_json::Value; 2] {
    let over_serial = call(link, wire);
    assert_eq!(over_serial.code, 0, "{wire:?}: {}", over_serial.stderr);
    let local = run(local);
    assert_eq!(local.code, 0, "{}", local.stderr);
    [over_serial.stdout, local.stdout].map(|out| serde_json::from_str(out.trim()).unwrap())
}

#[test]
fn pairs_embeddings_and_entities_over_serial_equal_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = ("A man is playing a guitar.", "Someone makes music.");

    let nli = crate::pairs::export_nli(tmp.path(), 64);
    let link = serve(&nli);
    let [wire, local] = both(
        &link,
        &["--json", "pair", first, second],
        kinglet()
            .args(["classify", "--json", "--model"])
            .arg(&nli)
            .args(["--pair", first, second]),
    );
    for field in ["label", "score", "logits"] {
        assert_eq!(wire[field], local[field], "{field}: {wire} vs {local}");
    }
    assert_eq!(wire["text_pair"], local["text_pair"]);
    // a request for another task gets a defined error, not an answer
    let r = call(&link, &["embed", first]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("WrongModelKind"), "{}", r.stderr);
    drop(link);

    let (st, _) = crate::embed::export(
        &crate::shared::hf_fixture("st-bert-mean"),
        tmp.path(),
        kinglet_exporter::quantize::Precision::F32,
    );
    let link = serve(&st);
    let info = call(&link, &["--json", "info"]);
    let info: serde_json::Value = serde_json::from_str(info.stdout.trim()).unwrap();
    assert_eq!(info["kind"], "embedder");
    let [wire, local] = both(
        &link,
        &["--json", "embed", first],
        kinglet()
            .args(["embed", "--json", "--model"])
            .arg(&st)
            .arg(first),
    );
    assert_eq!(wire["embedding"], local["embedding"]);
    assert_eq!(wire["dimensions"], info["features"]);
    drop(link);

    let (ner, _) = crate::tag::export(tmp.path(), kinglet_exporter::quantize::Precision::F32);
    let reference = crate::shared::hf_fixture("bert-ner-f32").join("reference.json");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reference).unwrap()).unwrap();
    let link = serve(&ner);
    let mut entities = 0;
    for row in reference["rows"].as_array().unwrap().iter().take(3) {
        let text = row["text"].as_str().unwrap();
        let [wire, local] = both(
            &link,
            &["--json", "tag", text],
            kinglet()
                .args(["tag", "--json", "--model"])
                .arg(&ner)
                .arg(text),
        );
        let (w, l) = (
            wire["entities"].as_array().unwrap(),
            local["entities"].as_array().unwrap(),
        );
        assert_eq!(w.len(), l.len(), "{text}: {wire} vs {local}");
        for (a, b) in w.iter().zip(l) {
            for field in ["entity_group", "score", "start", "end"] {
                assert_eq!(a[field], b[field], "{field} in {text:?}");
            }
        }
        entities += w.len();
    }
    assert!(entities > 0, "the three sentences have entities");
}
