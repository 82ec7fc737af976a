//! Signed bundles: `kinglet-export keygen` / `sign` / `--sign`, and `--require-signed` on the
//! device. A re-sealed checksum cannot hide an edit from the signature.

use crate::cli::{kinglet, kinglet_export, run, Run};
use crate::mutations::{reseal_crc, seal, sections_of};
use crate::shared::{repo_root, shipped_sentiment};
use std::path::{Path, PathBuf};

pub(crate) fn dlinear() -> PathBuf {
    repo_root().join("models").join("etth1-dlinear.kinglet")
}

/// A fresh key pair `dir/name.{key,pub}`; returns the `.key` and `.pub` paths.
pub(crate) fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let r = run(kinglet_export().arg("keygen").arg(dir.join(name)));
    assert_eq!(r.code, 0, "{}", r.stderr);
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

pub(crate) fn sign(bundle: &Path, key: &Path, out: &Path) {
    let r = run(kinglet_export()
        .arg("sign")
        .arg(bundle)
        .arg("--key")
        .arg(key)
        .arg("-o")
        .arg(out)
        .args(["--name", "etth1", "--model-version", "7"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

fn verify(bundle: &Path, trusted: Option<&Path>) -> Run {
    let mut cmd = kinglet();
    cmd.arg("verify").arg("--model").arg(bundle);
    if let Some(keys) = trusted {
        cmd.arg("--require-signed").arg(keys);
    }
    run(&mut cmd)
}

/// The file with `edit` applied to the body of section `name`, the checksum recomputed.
fn edited_and_resealed(bundle: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let bytes = std::fs::read(bundle).unwrap();
    let mut sections = sections_of(&bytes);
    let body = &mut sections.iter_mut().find(|s| s.0 == name).unwrap().1;
    edit(body);
    seal(&sections)
}

#[test]
fn a_signed_bundle_verifies_and_shows_its_signer_name_version_and_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let signed = tmp.path().join("signed.kinglet");
    sign(&dlinear(), &key, &signed);

    let r = verify(&signed, Some(&public));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hex = std::fs::read_to_string(&public).unwrap();
    let hex = hex.trim().trim_start_matches("kinglet-ed25519-public:");
    assert!(
        r.stdout.contains(&format!("signed by ed25519 {hex}")),
        "{}",
        r.stdout
    );

    let r = run(kinglet()
        .args(["inspect", "--json", "--model"])
        .arg(&signed));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = &r.json_lines()[0];
    assert_eq!(v["signed_by"], hex);
    assert_eq!(v["name"], "etth1");
    assert_eq!(v["version"], "7");
    let sha = v["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));

    // a signed bundle loads where no signature is required, too
    let r = run(kinglet()
        .args(["forecast", "--csv"])
        .arg(repo_root().join("tests/fixtures/forecast/etth1_tail.csv"))
        .arg("--model")
        .arg(&signed));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn an_edit_under_a_resealed_checksum_breaks_the_signature_and_is_refused_with_exit_7() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "fleet");
    let signed = tmp.path().join("signed.kinglet");
    sign(&dlinear(), &key, &signed);
    let spoiled = tmp.path().join("spoiled.kinglet");

    // one weight byte in the graph
    let bytes = edited_and_resealed(&signed, "graph", |g| {
        let at = g.len() / 2;
        g[at] ^= 0x10;
    });
    std::fs::write(&spoiled, bytes).unwrap();
    // refused even when no signature is required: a broken signature is never loaded
    verify(&spoiled, None).assert_clean_error(7, &["spoiled.kinglet", "signature"]);

    // one byte of the signature itself
    let mut bytes = std::fs::read(&signed).unwrap();
    let at = bytes.len() - 4 - 10;
    bytes[at] ^= 1;
    std::fs::write(&spoiled, reseal_crc(bytes[..bytes.len() - 4].to_vec())).unwrap();
    verify(&spoiled, None).assert_clean_error(7, &["signature"]);
}

#[test]
fn swapped_labels_under_a_resealed_checksum_are_refused_with_exit_7() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let signed = tmp.path().join("sentiment.kinglet");
    sign(&shipped_sentiment(), &key, &signed);
    let swapped = edited_and_resealed(&signed, "manifest", |m| {
        let text = String::from_utf8(m.clone()).unwrap();
        let (neg, pos) = (
            text.find("\"negative\"").unwrap(),
            text.find("\"positive\"").unwrap(),
        );
        assert!(neg < pos, "{text}");
        *m = text
            .replace("\"negative\"", "\"@@\"")
            .replace("\"positive\"", "\"negative\"")
            .replace("\"@@\"", "\"positive\"")
            .into_bytes();
    });
    let path = tmp.path().join("swapped.kinglet");
    std::fs::write(&path, swapped).unwrap();
    verify(&path, Some(&public)).assert_clean_error(7, &["swapped.kinglet", "signature"]);
    let r = run(kinglet()
        .arg("classify")
        .arg("--model")
        .arg(&path)
        .arg("a fine film"));
    r.assert_clean_error(7, &["signature"]);
}

#[test]
fn a_stripped_signature_or_another_key_is_refused_where_signatures_are_required() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let (other_key, _) = keygen(tmp.path(), "other");
    let signed = tmp.path().join("signed.kinglet");
    sign(&dlinear(), &key, &signed);

    // the signature section removed and the file re-sealed: a valid unsigned bundle
    let bytes = std::fs::read(&signed).unwrap();
    let stripped: Vec<_> = sections_of(&bytes)
        .into_iter()
        .filter(|s| s.0 != "signature")
        .collect();
    let path = tmp.path().join("stripped.kinglet");
    std::fs::write(&path, seal(&stripped)).unwrap();
    assert_eq!(
        verify(&path, None).code,
        0,
        "an unsigned bundle is a valid bundle"
    );
    verify(&path, Some(&public)).assert_clean_error(7, &["not signed", "fleet.pub"]);

    // signed, but by a key the device does not trust
    let by_other = tmp.path().join("by-other.kinglet");
    sign(&dlinear(), &other_key, &by_other);
    verify(&by_other, Some(&public)).assert_clean_error(7, &["not among", "fleet.pub"]);

    // the shipped bundles are unsigned and load without a requirement
    assert_eq!(verify(&dlinear(), None).code, 0);
    verify(&dlinear(), Some(&public)).assert_clean_error(7, &["not signed"]);
}

#[test]
fn keys_are_checked_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let before = std::fs::read(&key).unwrap();
    let r = run(kinglet_export().arg("keygen").arg(tmp.path().join("fleet")));
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the secret key is kept"
    );

    // a public key file that is not one
    let junk = tmp.path().join("junk.pub");
    std::fs::write(&junk, "kinglet-ed25519-public:zz\n").unwrap();
    verify(&dlinear(), Some(&junk)).assert_clean_error(7, &["junk.pub"]);
    // signing with the public key by mistake
    let r = run(kinglet_export()
        .arg("sign")
        .arg(dlinear())
        .arg("--key")
        .arg(&public)
        .arg("-o")
        .arg(tmp.path().join("x.kinglet")));
    assert_ne!(r.code, 0);
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    assert!(!tmp.path().join("x.kinglet").exists());
}

#[test]
fn a_trusted_keys_file_configured_in_the_environment_or_given_as_key_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "fleet");
    let signed = tmp.path().join("signed.kinglet");
    sign(&dlinear(), &key, &signed);
    let with_env = |bundle: &Path| {
        run(kinglet()
            .env("KINGLET_REQUIRE_SIGNED", &public)
            .arg("verify")
            .arg("--model")
            .arg(bundle))
    };
    with_env(&dlinear()).assert_clean_error(7, &["not signed"]);
    assert_eq!(with_env(&signed).code, 0);
    let r = run(kinglet()
        .arg("verify")
        .arg("--model")
        .arg(dlinear())
        .arg("--key")
        .arg(&public));
    r.assert_clean_error(7, &["not signed"]);
}
