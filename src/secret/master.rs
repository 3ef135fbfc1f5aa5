//! The master key: derives a keyed-hash key per version, a check value, and the
//! key that seals private signing keys at rest.

use std::fmt;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{constant_time, hkdf, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::{SecretError, fill_random};

const KEY_LEN: usize = 32;
/// HKDF salt: fixed domain separation (the master key itself is uniformly random).
const HKDF_SALT: &[u8] = b"keyward master key";
const INFO_CHECK: &[u8] = b"keyward check v1";
const INFO_SEAL: &[u8] = b"keyward seal v1";
const INFO_HASH_PREFIX: &[u8] = b"keyward hash v";
const SEALED_PREFIX: &str = "v1.";
const TAG_LEN: usize = 16;
/// A master key file is one line of base64; anything much larger is not one.
const MAX_FILE_LEN: u64 = 1024;

/// Output length for HKDF expansion into raw bytes.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The installation's master key: 32 random bytes, zeroized on drop, never printed.
///
/// Sub-keys are derived from it with HKDF-SHA256 under distinct `info` strings, so the
/// master key itself is never used directly.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut());
        MasterKey { bytes }
    }

    /// Reads a master key file (base64 of 32 bytes, optionally followed by a newline).
    pub fn load(path: &Path) -> Result<MasterKey, SecretError> {
        let file = std::fs::File::open(path).map_err(|source| {
            if source.kind() == ErrorKind::NotFound {
                SecretError::MasterKeyMissing {
                    path: path.to_owned(),
                }
            } else {
                SecretError::MasterKeyUnreadable {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        // As OpenSSH does with private keys: a key any account can read is refused
        // rather than used (group access is left to the administrator's choice).
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = file
                .metadata()
                .map_err(|source| SecretError::MasterKeyUnreadable {
                    path: path.to_owned(),
                    source,
                })?;
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_file() && mode & 0o007 != 0 {
                return Err(SecretError::MasterKeyExposed {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let mut text = Zeroizing::new(Vec::with_capacity(64));
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut text)
            .map_err(|source| SecretError::MasterKeyUnreadable {
                path: path.to_owned(),
                source,
            })?;
        let malformed = |detail| SecretError::MasterKeyMalformed {
            path: path.to_owned(),
            detail,
        };
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(malformed("the file is far too large"));
        }
        let trimmed = text.trim_ascii();
        if trimmed.is_empty() {
            return Err(malformed("the file is empty"));
        }
        let mut decoded = Zeroizing::new([0u8; 48]);
        let n = STANDARD
            .decode_slice(trimmed, decoded.as_mut())
            .map_err(|_| malformed("not valid base64, or not 32 bytes"))?;
        if n != KEY_LEN {
            return Err(malformed("it does not decode to 32 bytes"));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded[..KEY_LEN]);
        Ok(MasterKey { bytes })
    }

    /// Generates a new master key and writes it to `path` (mode 0600, parent directories
    /// created with mode 0700). Refuses to overwrite an existing file.
    pub fn create_file(path: &Path) -> Result<MasterKey, SecretError> {
        let key = MasterKey::generate();
        key.write_new_file(path)?;
        Ok(key)
    }

    /// Writes this key to a new file at `path` (mode 0600); never overwrites an existing
    /// file. Useful for `master-key rotate`, which writes the new key next to the old one.
    pub fn write_new_file(&self, path: &Path) -> Result<(), SecretError> {
        let write_err = |source| SecretError::MasterKeyWrite {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(write_err)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| {
                if source.kind() == ErrorKind::AlreadyExists {
                    SecretError::MasterKeyExists {
                        path: path.to_owned(),
                    }
                } else {
                    write_err(source)
                }
            })?;
        let mut text = Zeroizing::new(String::with_capacity(48));
        STANDARD.encode_string(self.bytes.as_ref(), &mut text);
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        Ok(())
    }

    /// HKDF-SHA256(master key, info) into 32 bytes.
    fn derive(&self, info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.bytes.as_ref());
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        prk.expand(info, Len(KEY_LEN))
            .and_then(|okm| okm.fill(out.as_mut()))
            .expect("HKDF-SHA256 expansion to 32 bytes cannot fail");
        out
    }

    /// A value to store in the database that identifies this key without revealing it
    /// (HKDF-SHA256 with info `keyward check v1`, base64url). Compare it with
    /// [`MasterKey::matches_check_value`] to detect a wrong master key early.
    pub fn check_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.derive(&[INFO_CHECK]).as_ref())
    }

    /// Whether `stored` is this key's [`check_value`](MasterKey::check_value).
    pub fn matches_check_value(&self, stored: &str) -> bool {
        constant_time::verify_slices_are_equal(self.check_value().as_bytes(), stored.as_bytes())
            .is_ok()
    }

    /// The keyed-hash key of the given version (HKDF info `keyward hash v{version}`).
    pub fn hash_key(&self, version: u32) -> HashKey {
        let version_text = version.to_string();
        let raw = self.derive(&[INFO_HASH_PREFIX, version_text.as_bytes()]);
        HashKey {
            version,
            key: hmac::Key::new(hmac::HMAC_SHA256, raw.as_ref()),
        }
    }

    /// The raw bytes of the keyed-hash key of `version`, for sealing a copy that
    /// survives a master-key rotation (see [`HashKey::from_raw`]).
    pub fn hash_key_raw(&self, version: u32) -> Zeroizing<Vec<u8>> {
        let version_text = version.to_string();
        Zeroizing::new(
            self.derive(&[INFO_HASH_PREFIX, version_text.as_bytes()])
                .as_ref()
                .to_vec(),
        )
    }

    fn seal_key(&self) -> RandomizedNonceKey {
        let raw = self.derive(&[INFO_SEAL]);
        RandomizedNonceKey::new(&AES_256_GCM, raw.as_ref()).expect("32-byte AES-256-GCM key")
    }

    /// Encrypts `plaintext` with AES-256-GCM under a key derived from the master key
    /// (HKDF info `keyward seal v1`) and a random 96-bit nonce. `aad` is authenticated but
    /// not stored: pass the same bytes to [`decrypt`](MasterKey::decrypt) (e.g. the `kid`,
    /// so a sealed key cannot be swapped to another row).
    ///
    /// Output: `"v1." + base64url(nonce || ciphertext || tag)`.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let key = self.seal_key();
        let mut in_out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        in_out.extend_from_slice(plaintext);
        let nonce = key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .expect("AES-256-GCM sealing failed");
        let mut blob = Vec::with_capacity(NONCE_LEN + in_out.len());
        blob.extend_from_slice(nonce.as_ref());
        blob.extend_from_slice(&in_out);
        let mut out = String::from(SEALED_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&blob, &mut out);
        out
    }

    /// Decrypts a value produced by [`encrypt`](MasterKey::encrypt) with the same `aad`.
    ///
    /// A wrong master key, a wrong `aad` or altered data all give
    /// [`SecretError::WrongMasterKey`] (AES-GCM cannot tell them apart).
    pub fn decrypt(&self, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretError::MalformedSealed {
                detail: "unknown format version",
            })?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::MalformedSealed {
                detail: "not base64url",
            })?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::MalformedSealed {
                detail: "too short",
            });
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::MalformedSealed {
                detail: "bad nonce",
            })?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .seal_key()
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| SecretError::WrongMasterKey)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

/// A versioned HMAC-SHA256 key for hashing high-entropy secrets (client secrets,
/// refresh tokens). Derived with [`MasterKey::hash_key`].
#[derive(Clone)]
pub struct HashKey {
    version: u32,
    key: hmac::Key,
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl HashKey {
    /// A hash key from raw bytes kept sealed in the database (older versions).
    pub fn from_raw(version: u32, raw: &[u8]) -> HashKey {
        HashKey {
            version,
            key: hmac::Key::new(hmac::HMAC_SHA256, raw),
        }
    }

    /// The key version, as embedded in hashes.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// `"v{version}$" + base64url(HMAC-SHA256(key, secret))`.
    pub fn keyed_hash(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let mut out = format!("v{}$", self.version);
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
        out
    }

    /// Whether `stored` is the keyed hash of `secret` under this key (constant time).
    /// A hash made with another key version never matches: pick the key with
    /// [`keyed_hash_version`] first.
    pub fn verify_keyed_hash(&self, secret: &str, stored: &str) -> bool {
        let Some((version, tag_b64)) = split_keyed_hash(stored) else {
            return false;
        };
        if version != self.version {
            return false;
        }
        let mut tag = [0u8; 33];
        match URL_SAFE_NO_PAD.decode_slice(tag_b64, &mut tag) {
            Ok(32) => hmac::verify(&self.key, secret.as_bytes(), &tag[..32]).is_ok(),
            _ => false,
        }
    }
}

fn split_keyed_hash(stored: &str) -> Option<(u32, &str)> {
    let (version, tag) = stored.strip_prefix('v')?.split_once('$')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((version.parse().ok()?, tag))
}

/// The key version a stored keyed hash was made with (`"v3$..."` → `Some(3)`).
pub fn keyed_hash_version(stored: &str) -> Option<u32> {
    split_keyed_hash(stored).map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn keyed_hash_is_stable_per_key_and_version() {
        let mk = MasterKey::generate();
        let h1 = mk.hash_key(1);
        let a = h1.keyed_hash("kws_secret");
        assert_eq!(
            a,
            mk.hash_key(1).keyed_hash("kws_secret"),
            "stable for one key/version"
        );
        assert!(a.starts_with("v1$"));
        assert_eq!(a.len(), 3 + 43);
        assert_ne!(a, h1.keyed_hash("kws_secreT"), "depends on the secret");
        let b = mk.hash_key(2).keyed_hash("kws_secret");
        assert!(b.starts_with("v2$"));
        assert_ne!(a[3..], b[3..], "differs across versions");
        let other = MasterKey::generate().hash_key(1).keyed_hash("kws_secret");
        assert_ne!(a, other, "differs across master keys");
        assert_eq!(keyed_hash_version(&a), Some(1));
        assert_eq!(keyed_hash_version(&b), Some(2));
        assert_eq!(keyed_hash_version("x"), None);
    }

    #[test]
    fn keyed_hash_verifies() {
        let mk = MasterKey::generate();
        let k = mk.hash_key(7);
        let stored = k.keyed_hash("s3cret");
        assert!(k.verify_keyed_hash("s3cret", &stored));
        assert!(!k.verify_keyed_hash("s3cret!", &stored));
        assert!(
            !mk.hash_key(8).verify_keyed_hash("s3cret", &stored),
            "other version"
        );
        assert!(
            !MasterKey::generate()
                .hash_key(7)
                .verify_keyed_hash("s3cret", &stored)
        );
        // Same tag under a forged version prefix is rejected.
        let forged = format!("v8${}", &stored[3..]);
        assert!(!mk.hash_key(8).verify_keyed_hash("s3cret", &forged));
        for junk in [
            "",
            "v",
            "v7$",
            "v7$!!!",
            "7$abc",
            "v+7$abc",
            &stored[..stored.len() - 1],
        ] {
            assert!(!k.verify_keyed_hash("s3cret", junk), "{junk:?}");
        }
    }

    #[test]
    fn check_value_identifies_the_key() {
        let mk = MasterKey::generate();
        let cv = mk.check_value();
        assert_eq!(cv, mk.check_value());
        assert!(mk.matches_check_value(&cv));
        assert!(!MasterKey::generate().matches_check_value(&cv));
        assert!(!cv.contains(&URL_SAFE_NO_PAD.encode(mk.bytes.as_ref())));
        assert_ne!(cv, URL_SAFE_NO_PAD.encode(mk.bytes.as_ref()));
    }

    #[test]
    fn encrypt_decrypt_round_trip() {
        let mk = MasterKey::generate();
        let sealed = mk.encrypt(b"private key bytes", b"kid-1");
        assert!(sealed.starts_with("v1."));
        assert_eq!(
            &mk.decrypt(&sealed, b"kid-1").unwrap()[..],
            b"private key bytes"
        );
        assert_ne!(
            sealed,
            mk.encrypt(b"private key bytes", b"kid-1"),
            "random nonce"
        );
        let empty = mk.encrypt(b"", b"");
        assert!(mk.decrypt(&empty, b"").unwrap().is_empty());
    }

    #[test]
    fn wrong_key_or_aad_is_reported() {
        let mk = MasterKey::generate();
        let sealed = mk.encrypt(b"data", b"aad");
        let err = MasterKey::generate().decrypt(&sealed, b"aad").unwrap_err();
        assert!(matches!(err, SecretError::WrongMasterKey), "{err:?}");
        assert!(err.to_string().contains("master key"));
        assert!(matches!(
            mk.decrypt(&sealed, b"other"),
            Err(SecretError::WrongMasterKey)
        ));
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let mk = MasterKey::generate();
        let sealed = mk.encrypt(b"some data worth protecting", b"");
        let mut blob = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in [0, NONCE_LEN, blob.len() - 1] {
            blob[i] ^= 1;
            let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(&blob));
            assert!(matches!(
                mk.decrypt(&tampered, b""),
                Err(SecretError::WrongMasterKey)
            ));
            blob[i] ^= 1;
        }
        let truncated = format!(
            "v1.{}",
            URL_SAFE_NO_PAD.encode(&blob[..NONCE_LEN + TAG_LEN - 1])
        );
        for bad in ["", "v2.AAAA", "v1.", "v1.!!!!", truncated.as_str()] {
            assert!(
                matches!(
                    mk.decrypt(bad, b""),
                    Err(SecretError::MalformedSealed { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn master_key_file_is_0600_and_never_overwritten() {
        let dir = tempdir();
        let path = dir.path().join("conf/keyward/master.key");
        let mk = MasterKey::create_file(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);

        let loaded = MasterKey::load(&path).unwrap();
        assert_eq!(loaded.check_value(), mk.check_value());

        let err = MasterKey::create_file(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::MasterKeyExists { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "file unchanged"
        );
    }

    #[test]
    fn a_key_file_every_account_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir();
        let path = dir.path().join("master.key");
        MasterKey::create_file(&path).unwrap();
        MasterKey::load(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::load(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::MasterKeyExposed { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        MasterKey::load(&path).unwrap();
    }

    #[test]
    fn load_reports_missing_and_malformed_files_by_path() {
        let dir = tempdir();
        let missing = dir.path().join("nope.key");
        let err = MasterKey::load(&missing).unwrap_err();
        assert!(
            matches!(err, SecretError::MasterKeyMissing { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&missing.display().to_string()));

        let path = dir.path().join("bad.key");
        let short = STANDARD.encode([1u8; 31]);
        let long = STANDARD.encode([1u8; 33]);
        let huge = "A".repeat(5000);
        for content in [
            "",
            "\n",
            "not base64 at all!",
            short.as_str(),
            long.as_str(),
            huge.as_str(),
        ] {
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let err = MasterKey::load(&path).unwrap_err();
            assert!(
                matches!(err, SecretError::MasterKeyMalformed { .. }),
                "{content:?}: {err:?}"
            );
            assert!(err.to_string().contains(&path.display().to_string()));
        }

        // A directory is unreadable as a key file.
        let err = MasterKey::load(dir.path()).unwrap_err();
        assert!(
            matches!(err, SecretError::MasterKeyUnreadable { .. }),
            "{err:?}"
        );

        // Without the trailing newline is fine too.
        std::fs::write(&path, STANDARD.encode([9u8; 32])).unwrap();
        MasterKey::load(&path).unwrap();
    }

    #[test]
    fn debug_does_not_leak() {
        let mk = MasterKey::generate();
        let dbg = format!("{mk:?} {:?}", mk.hash_key(1));
        assert!(!dbg.contains(&STANDARD.encode(mk.bytes.as_ref())));
        assert!(dbg.contains("redacted"));
    }
}
