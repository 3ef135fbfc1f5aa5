//! Human passwords: argon2id with the argon2 crate's defaults (OWASP: m=19456 KiB, t=2,
//! p=1), PHC strings. Each call takes ~20 ms: run it in `spawn_blocking`.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret as _, SecretString};

use super::fill_random;

const SALT_LEN: usize = 16;

/// Hashes a password with argon2id (default OWASP parameters, random 128-bit salt) and
/// returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash_password(password: &SecretString) -> String {
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.expose_secret().as_bytes(), &salt)
        .expect("argon2id with default parameters and a 16-byte salt cannot fail")
        .to_string()
}

/// Whether `password` matches the PHC string `phc` (parameters are taken from `phc`).
/// A malformed `phc` never matches.
pub fn verify_password(password: &SecretString, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.expose_secret().as_bytes(), phc)
        .is_ok()
}

/// Spends the same time as [`verify_password`] for a user that does not exist (or has
/// no password), so response time does not reveal which accounts exist. Always `false`.
pub fn verify_dummy(password: &SecretString) -> bool {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        hash_password(&SecretString::from(
            "keyward dummy password, matches nothing",
        ))
    });
    let _ = verify_password(password, &DUMMY);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let pw = SecretString::from("correct horse battery staple");
        let phc = hash_password(&pw);
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(
            &SecretString::from("Correct horse battery staple"),
            &phc
        ));
        assert!(!verify_password(&pw, "not a phc string"));
        assert!(!verify_password(&pw, ""));
    }
}
