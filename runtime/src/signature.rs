//! Signed bundles: an Ed25519 signature over every byte of the bundle before it, in a last
//! `signature` section, and the key files that make and check it.
//!
//! A signed bundle is an ordinary bundle (see [`crate::bundle`]) whose last section is
//! `signature`, lying directly before the CRC trailer, of [`SIGNATURE_BYTES`] bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | `ed25519\0` |
//! | 8 | 32 | the signer's public key |
//! | 40 | 64 | Ed25519 signature of [`MESSAGE_PREFIX`] followed by the SHA-256 of the file's bytes `0 .. offset of this section` |
//!
//! The signed bytes hold the header (with the file's total length) and the section table
//! (with this section's place), so nothing can be added, removed or moved without breaking
//! the signature; the CRC after it still catches accidents first.
//!
//! Key files are one line of text: `kinglet-ed25519-secret:` or `kinglet-ed25519-public:`
//! followed by 64 hex digits (the 32-byte seed or public key). A trusted-keys file holds any
//! number of public-key lines; blank lines and lines starting with `#` are ignored.

use ed25519_dalek::{Signer as _, Verifier as _};
use std::path::{Path, PathBuf};

/// Name of the section that holds the signature.
pub const SECTION_SIGNATURE: &str = "signature";
/// Length of the `signature` section body.
pub const SIGNATURE_BYTES: usize = 8 + 32 + 64;
/// First bytes of the section body.
pub const SIGNATURE_TAG: &[u8; 8] = b"ed25519\0";
/// What is signed: these bytes, then the 32-byte SHA-256 of the bundle up to the signature.
pub const MESSAGE_PREFIX: &[u8] = b"kinglet bundle signature v1\0";
const PUBLIC_TAG: &str = "kinglet-ed25519-public:";
const SECRET_TAG: &str = "kinglet-ed25519-secret:";
/// A key file is one short line; anything longer is not one.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// Why a key file or a signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a key of the expected kind.
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// An Ed25519 public key: who signed a bundle, or whom to trust.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// The 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The line a public-key file holds.
    pub fn to_line(&self) -> String {
        format!("{PUBLIC_TAG}{}", self.to_hex())
    }

    /// Parses one key line (`kinglet-ed25519-public:` and 64 hex digits).
    pub fn from_line(line: &str) -> Result<PublicKey, String> {
        let hex = line
            .trim()
            .strip_prefix(PUBLIC_TAG)
            .ok_or_else(|| format!("not a kinglet public key (expected `{PUBLIC_TAG}…`)"))?;
        let bytes = decode_32(hex)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| "not a valid Ed25519 public key".to_string())
    }

    /// Reads a public-key file (one key).
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_key_file(path)?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default();
        PublicKey::from_line(line).map_err(|reason| malformed(path, reason))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// An Ed25519 signing key (keep it off the devices: they only need the public half).
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<SecretKey, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no random numbers: {e}"))?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The public half, to give to devices.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The line a secret-key file holds.
    pub fn to_line(&self) -> String {
        format!("{SECRET_TAG}{}", hex::encode(self.0.to_bytes()))
    }

    /// Reads a secret-key file.
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let text = read_key_file(path)?;
        let hex = text.trim().strip_prefix(SECRET_TAG).ok_or_else(|| {
            malformed(
                path,
                format!("not a kinglet secret key (expected `{SECRET_TAG}…`)"),
            )
        })?;
        let seed = decode_32(hex).map_err(|r| malformed(path, r))?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The `signature` section body for a bundle whose bytes before it hash to `digest`.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> [u8; SIGNATURE_BYTES] {
        let signature = self.0.sign(&message(digest));
        let mut body = [0u8; SIGNATURE_BYTES];
        body[..8].copy_from_slice(SIGNATURE_TAG);
        body[8..40].copy_from_slice(&self.0.verifying_key().to_bytes());
        body[40..].copy_from_slice(&signature.to_bytes());
        body
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public().to_hex())
    }
}

/// The public keys a device accepts bundles from.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    /// The keys, in file order.
    pub keys: Vec<PublicKey>,
    /// The file they were read from, for messages.
    pub path: PathBuf,
}

impl TrustedKeys {
    /// Reads a file of public-key lines (`#` comments and blank lines ignored); at least one.
    pub fn read(path: &Path) -> Result<TrustedKeys, KeyError> {
        let text = read_key_file(path)?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(
                PublicKey::from_line(line)
                    .map_err(|r| malformed(path, format!("line {}: {r}", n + 1)))?,
            );
        }
        if keys.is_empty() {
            return Err(malformed(path, "holds no public key".into()));
        }
        Ok(TrustedKeys {
            keys,
            path: path.to_owned(),
        })
    }

    /// Whether `key` is one of them.
    pub fn trusts(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }
}

/// What is signed for a bundle whose bytes before the signature hash to `digest`.
pub fn message(digest: &[u8; 32]) -> Vec<u8> {
    [MESSAGE_PREFIX, digest].concat()
}

/// Checks a `signature` section body against the digest of the bytes before it; returns the
/// signer on success.
pub fn check_body(body: &[u8], digest: &[u8; 32]) -> Result<PublicKey, String> {
    if body.len() != SIGNATURE_BYTES || &body[..8] != SIGNATURE_TAG {
        return Err("its signature section is not an Ed25519 signature".into());
    }
    let key_bytes: [u8; 32] = body[8..40].try_into().expect("32 bytes");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| "its signer key is not a valid Ed25519 key".to_string())?;
    let signature = ed25519_dalek::Signature::from_bytes(&body[40..].try_into().expect("64 bytes"));
    key.verify(&message(digest), &signature).map_err(|_| {
        "its signature does not match its contents: the bundle was changed after it was signed"
            .to_string()
    })?;
    Ok(PublicKey(key))
}

/// Writes a new key pair: `<stem>.key` (secret, mode 0600, never overwritten) and
/// `<stem>.pub`. Returns the two paths.
pub fn write_key_pair(stem: &Path) -> Result<(PathBuf, PathBuf, PublicKey), KeyError> {
    use std::io::Write;
    let secret_path = stem.with_extension("key");
    let public_path = stem.with_extension("pub");
    let key = SecretKey::generate().map_err(|r| malformed(&secret_path, r))?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&secret_path).map_err(io(&secret_path))?;
    writeln!(f, "{}", key.to_line()).map_err(io(&secret_path))?;
    f.sync_all().map_err(io(&secret_path))?;
    let public = key.public();
    std::fs::write(&public_path, format!("{}\n", public.to_line())).map_err(io(&public_path))?;
    Ok((secret_path, public_path, public))
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    use std::io::Read;
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(io)?;
    Ok(text)
}

fn malformed(path: &Path, reason: String) -> KeyError {
    KeyError::Malformed {
        path: path.to_owned(),
        reason,
    }
}

fn decode_32(hex: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex.trim()).map_err(|_| "the key is not 64 hex digits".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "the key is not 64 hex digits".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_checks_only_against_its_own_digest() {
        let key = SecretKey::generate().unwrap();
        let body = key.sign_digest(&[7; 32]);
        assert_eq!(check_body(&body, &[7; 32]).unwrap(), key.public());
        let e = check_body(&body, &[8; 32]).unwrap_err();
        assert!(e.contains("changed after it was signed"), "{e}");
        let mut spoiled = body;
        spoiled[50] ^= 1;
        assert!(check_body(&spoiled, &[7; 32]).is_err());
        assert!(check_body(&body[..100], &[7; 32]).is_err());
    }

    #[test]
    fn key_lines_round_trip_and_refuse_other_text() {
        let key = SecretKey::generate().unwrap();
        let line = key.public().to_line();
        assert!(line.starts_with("kinglet-ed25519-public:") && line.len() == 23 + 64);
        assert_eq!(PublicKey::from_line(&line).unwrap(), key.public());
        assert!(
            PublicKey::from_line(&key.to_line()).is_err(),
            "a secret is not a public key"
        );
        assert!(PublicKey::from_line("kinglet-ed25519-public:abcd").is_err());
    }

    #[test]
    fn key_files_are_written_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public, key) = write_key_pair(&dir.path().join("fleet")).unwrap();
        assert_eq!(SecretKey::read(&secret).unwrap().public(), key);
        assert_eq!(PublicKey::read(&public).unwrap(), key);
        let trusted = TrustedKeys::read(&public).unwrap();
        assert!(trusted.trusts(&key));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_key_pair(&dir.path().join("fleet")).is_err(),
            "an existing secret key is never overwritten"
        );
    }
}
