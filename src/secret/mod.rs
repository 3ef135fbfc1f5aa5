//! TEMPORARY until the secret module lands from the token branch.
use secrecy::{ExposeSecret, SecretString};

pub fn hash_password(p: &SecretString) -> String {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(p.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
}
