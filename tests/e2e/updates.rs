//! Safe model updates: `kinglet install … --into DIR`, `kinglet rollback`, and a running
//! `kinglet serve --model DIR` that follows them (and `SIGHUP`) while a client keeps asking.

use crate::cli::{kinglet, run, Run};
use crate::mutations::{seal, sections_of};
use crate::shared::repo_root;
use crate::signing::{dlinear, keygen, sign};
use kinglet_firmware::frame::{decode_response, encode_request, FeedResult, FrameAccumulator};
use kinglet_firmware::wire::{Request, Response, MAX_FRAME_BYTES};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn lstm() -> PathBuf {
    repo_root().join("models").join("etth1-lstm.kinglet")
}

fn install(bundle: &Path, dir: &Path, keys: Option<&Path>) -> Run {
    let mut cmd = kinglet();
    cmd.arg("install").arg(bundle).arg("--into").arg(dir);
    if let Some(keys) = keys {
        cmd.arg("--require-signed").arg(keys);
    }
    run(&mut cmd)
}

fn current(dir: &Path) -> PathBuf {
    std::fs::read_link(dir.join("current")).unwrap()
}

#[test]
fn install_checks_before_switching_and_rollback_swaps_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let (a, b) = (tmp.path().join("a.kinglet"), tmp.path().join("b.kinglet"));
    sign(&dlinear(), &key, &a);
    sign(&lstm(), &key, &b);
    let dir = tmp.path().join("models");

    let r = install(&a, &dir, Some(&public));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("signed by ed25519"), "{}", r.stdout);
    let first = current(&dir);
    assert!(!dir.join("previous").exists());

    // an unsigned bundle, a corrupted one and a missing one are refused; nothing switches
    install(&lstm(), &dir, Some(&public)).assert_clean_error(7, &["not signed"]);
    let mut bytes = std::fs::read(&b).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let broken = tmp.path().join("broken.kinglet");
    std::fs::write(&broken, bytes).unwrap();
    install(&broken, &dir, None).assert_clean_error(3, &["broken.kinglet"]);
    install(&tmp.path().join("none.kinglet"), &dir, None).assert_clean_error(3, &["none.kinglet"]);
    assert_eq!(current(&dir), first);
    let names = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir.join("bundles"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&dir).len(), 1, "{:?}", names(&dir));

    let r = install(&b, &dir, Some(&public));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let second = current(&dir);
    assert_ne!(second, first);
    assert_eq!(std::fs::read_link(dir.join("previous")).unwrap(), first);

    let r = run(kinglet().args(["rollback", "--into"]).arg(&dir));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(current(&dir), first);
    assert_eq!(std::fs::read_link(dir.join("previous")).unwrap(), second);
    // `--model DIR` means DIR/current
    let r = run(kinglet().arg("verify").arg("--model").arg(&dir));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // a third install drops the bundle neither link names
    let c = tmp.path().join("c.kinglet");
    let mut sections = sections_of(&std::fs::read(&a).unwrap());
    sections.retain(|s| s.0 != "signature");
    std::fs::write(&c, seal(&sections)).unwrap();
    let r = install(&c, &dir, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("removed"), "{}", r.stdout);
    assert_eq!(names(&dir).len(), 2, "{:?}", names(&dir));
}

/// `kinglet serve --stdio` with a client thread that sends `Info` every few milliseconds and
/// records, per answer, the lookback the device reported.
struct Served {
    child: Child,
    answers: mpsc::Receiver<(u32, Response)>,
    stderr: Arc<Mutex<Vec<String>>>,
    sent: u32,
    stdin: std::process::ChildStdin,
}

impl Served {
    fn start(model: &Path, keys: Option<&Path>) -> Served {
        let mut cmd = kinglet();
        cmd.args(["serve", "--stdio", "--model"]).arg(model);
        if let Some(keys) = keys {
            cmd.arg("--require-signed").arg(keys);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut acc = Box::new(FrameAccumulator::<MAX_FRAME_BYTES>::new());
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let mut input = &buf[..n];
                loop {
                    match acc.feed(input) {
                        FeedResult::Frame { frame, remaining } => {
                            let _ = tx.send((frame.id, decode_response(&frame).unwrap()));
                            input = remaining;
                        }
                        FeedResult::Consumed => break,
                        other => panic!("serve wrote a bad frame: {other:?}"),
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let stdin = child.stdin.take().unwrap();
        Served {
            child,
            answers,
            stderr,
            sent: 0,
            stdin,
        }
    }

    /// Sends one `Info` and waits for its answer; returns the lookback it reports.
    fn lookback(&mut self) -> u32 {
        self.sent += 1;
        let mut out = vec![0u8; MAX_FRAME_BYTES];
        let n = encode_request(self.sent, &Request::Info, &mut out).unwrap();
        self.stdin.write_all(&out[..n]).unwrap();
        self.stdin.flush().unwrap();
        let (id, response) = self
            .answers
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no answer to request {}: {:?}", self.sent, self.log()));
        assert_eq!(id, self.sent, "answers out of order");
        match response {
            Response::Info(info) => info.lookback,
            other => panic!("request {id}: {other:?}"),
        }
    }

    /// Asks until the reported lookback is `want` (a reload happens between two frames);
    /// every request on the way must be answered.
    fn until_lookback(&mut self, want: u32) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.lookback() != want {
            assert!(
                Instant::now() < deadline,
                "never switched: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn hangup(&self) {
        let r = unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
        assert_eq!(r, 0);
    }

    fn log(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.log().iter().any(|l| l.contains(needle)) {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const DLINEAR_LOOKBACK: u32 = 336;
const LSTM_LOOKBACK: u32 = 96;

#[test]
fn serve_follows_install_and_rollback_and_keeps_its_model_when_the_new_one_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let (a, b) = (tmp.path().join("a.kinglet"), tmp.path().join("b.kinglet"));
    sign(&dlinear(), &key, &a);
    sign(&lstm(), &key, &b);
    let dir = tmp.path().join("models");
    assert_eq!(install(&a, &dir, Some(&public)).code, 0);

    let mut served = Served::start(&dir, Some(&public));
    assert_eq!(served.lookback(), DLINEAR_LOOKBACK);

    // install while the client keeps asking: every request answered, then the new model
    let installer = {
        let (b, dir, public) = (b.clone(), dir.clone(), public.clone());
        std::thread::spawn(move || install(&b, &dir, Some(&public)))
    };
    while !installer.is_finished() {
        served.lookback();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(installer.join().unwrap().code, 0);
    let during_install = served.sent;
    served.until_lookback(LSTM_LOOKBACK);
    served.wait_for_log("reloaded");
    eprintln!(
        "{during_install} requests answered while installing, {} in all before the switch",
        served.sent
    );

    let r = run(kinglet().args(["rollback", "--into"]).arg(&dir));
    assert_eq!(r.code, 0, "{}", r.stderr);
    served.until_lookback(DLINEAR_LOOKBACK);

    // a bundle the device does not trust, put in place by hand: refused, the old model stays
    let unsigned = dir.join("bundles").join("unsigned.kinglet");
    std::fs::copy(lstm(), &unsigned).unwrap();
    let link = dir.join("hand-made");
    std::os::unix::fs::symlink("bundles/unsigned.kinglet", &link).unwrap();
    std::fs::rename(&link, dir.join("current")).unwrap();
    served.hangup();
    served.wait_for_log("refused");
    for _ in 0..5 {
        assert_eq!(served.lookback(), DLINEAR_LOOKBACK);
    }
    assert!(
        served.log().iter().any(|l| l.contains("not signed")),
        "{:?}",
        served.log()
    );
}

#[test]
fn sighup_reloads_a_bundle_replaced_under_the_same_path() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model.kinglet");
    std::fs::copy(dlinear(), &model).unwrap();
    let mut served = Served::start(&model, None);
    assert_eq!(served.lookback(), DLINEAR_LOOKBACK);
    // replaced by rename: the path resolves to the same name, so only SIGHUP tells serve
    let incoming = tmp.path().join("incoming.kinglet");
    std::fs::copy(lstm(), &incoming).unwrap();
    std::fs::rename(&incoming, &model).unwrap();
    assert_eq!(served.lookback(), DLINEAR_LOOKBACK);
    served.hangup();
    served.until_lookback(LSTM_LOOKBACK);
    served.wait_for_log("reloaded");
}
