//! Secrets: random credentials and identifiers, the master key (keyed hashes and
//! encryption at rest), and argon2id password hashing.
//!
//! Everything here is synchronous and free of I/O except [`MasterKey::load`] and
//! [`MasterKey::create_file`]. Password hashing is deliberately slow (~20 ms): async
//! callers run it in `spawn_blocking`.
//!
//! All cryptography comes from `aws-lc-rs` (CSPRNG, HKDF, HMAC, AES-256-GCM) and
//! `argon2`; nothing is hand-rolled.

mod master;
mod password;

use std::path::PathBuf;

use aws_lc_rs::rand;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use zeroize::Zeroizing;

pub use master::{HashKey, MasterKey, keyed_hash_version};
pub use password::{hash_password, verify_dummy, verify_password};

/// Number of random bytes in a generated secret (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Errors of the secret module. Each message says what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The master key file does not exist.
    #[error(
        "master key file {} does not exist: run `keyward init` to create one, or point \
         KEYWARD_MASTER_KEY_FILE at the key this database was initialised with",
        path.display()
    )]
    MasterKeyMissing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The master key file exists but could not be read.
    #[error(
        "cannot read master key file {}: {source}; check that it is readable by this OS account",
        path.display()
    )]
    MasterKeyUnreadable {
        /// The path that was tried.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The master key file may be read by any account on the host.
    #[error(
        "master key file {} is readable by every account on this host (mode {mode:04o}); \
         make it private first: chmod 600 {}",
        path.display(),
        path.display()
    )]
    MasterKeyExposed {
        /// The path that was read.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The master key file does not hold a valid key.
    #[error(
        "master key file {} is malformed ({detail}): it must hold exactly 32 bytes encoded as \
         base64 on one line; restore the original file",
        path.display()
    )]
    MasterKeyMalformed {
        /// The path that was read.
        path: PathBuf,
        /// What exactly is wrong.
        detail: &'static str,
    },
    /// Refused to overwrite an existing master key file.
    #[error(
        "master key file {} already exists; refusing to overwrite it (everything encrypted \
         with it would become unreadable). Move it away first if you really mean to replace it",
        path.display()
    )]
    MasterKeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The master key file could not be created or written.
    #[error(
        "cannot write master key file {}: {source}; check the directory exists and is writable",
        path.display()
    )]
    MasterKeyWrite {
        /// The path that was tried.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Decryption failed: the master key is not the one the value was sealed with
    /// (or the stored value was altered).
    #[error(
        "cannot decrypt with this master key: it is not the key the data was encrypted with \
         (or the stored data was altered); use the master key file this database was \
         initialised with (KEYWARD_MASTER_KEY_FILE)"
    )]
    WrongMasterKey,
    /// A sealed value is not in the `v1.<base64url>` format.
    #[error(
        "encrypted value is malformed ({detail}): expected \"v1.\" followed by base64url; \
         the stored data is damaged"
    )]
    MalformedSealed {
        /// What exactly is wrong.
        detail: &'static str,
    },
}

/// Fills `buf` from the operating system CSPRNG (via aws-lc-rs).
///
/// # Panics
/// If the system random number generator fails, which leaves no safe way to continue.
pub(crate) fn fill_random(buf: &mut [u8]) {
    rand::fill(buf).expect("the system random number generator failed");
}

/// A new 256-bit random secret, base64url without padding, after `prefix`
/// (e.g. `generate_secret("kws_")` → `kws_` + 43 characters).
///
/// Used for client secrets and refresh tokens; store only a keyed hash of it
/// ([`HashKey::keyed_hash`]).
pub fn generate_secret(prefix: &str) -> SecretString {
    let mut raw = Zeroizing::new([0u8; SECRET_BYTES]);
    fill_random(raw.as_mut());
    let encoded_len = base64::encoded_len(SECRET_BYTES, false).expect("small length");
    // Exact capacity, so turning it into a boxed str does not reallocate and leave an
    // unzeroized copy behind.
    let mut out = String::with_capacity(prefix.len() + encoded_len);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(raw.as_ref(), &mut out);
    debug_assert_eq!(out.len(), out.capacity());
    SecretString::from(out)
}

/// A public random identifier: `prefix` followed by `n_bytes` random bytes as lowercase
/// hex (e.g. `generate_id("kw_", 6)` → `kw_3f9a0c11d2e4`). Not a secret.
pub fn generate_id(prefix: &str, n_bytes: usize) -> String {
    use std::fmt::Write as _;
    let mut raw = vec![0u8; n_bytes];
    fill_random(&mut raw);
    let mut out = String::with_capacity(prefix.len() + 2 * n_bytes);
    out.push_str(prefix);
    for b in raw {
        write!(out, "{b:02x}").expect("writing to a String");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn secrets_are_prefixed_random_and_256_bit() {
        let a = generate_secret("kws_");
        let b = generate_secret("kws_");
        let (a, b) = (a.expose_secret(), b.expose_secret());
        assert!(a.starts_with("kws_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
        let raw = URL_SAFE_NO_PAD.decode(&a[4..]).unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn ids_are_lowercase_hex() {
        let id = generate_id("kw_", 6);
        assert_eq!(id.len(), 3 + 12);
        assert!(id[3..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        assert_ne!(generate_id("kw_", 6), generate_id("kw_", 6));
        assert_eq!(generate_id("x", 0), "x");
    }
}
