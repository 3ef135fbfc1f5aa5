//! Entry points for hostile-input testing, shared by the cargo-fuzz targets in `fuzz/`
//! and by `tests/security.rs`, which replays the kept corpus and generated inputs
//! through them on the stable toolchain. Each takes arbitrary bytes, runs one parser of
//! untrusted input and panics only when an invariant of that parser is broken.
//!
//! Not part of the supported API.

use std::sync::LazyLock;

use crate::service::directory::prepare_user;
use crate::service::{import, provision};
use crate::token::{self, Alg, KeyMaterial, MAX_TOKEN_LEN, Reason, VerifyKey};

/// A fuzz target's entry point: arbitrary bytes in, a panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target: its name (the `fuzz/fuzz_targets/<name>.rs` file and the
/// `fuzz/corpus/<name>/` folder) and its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("token", token),
    ("provisioning", provisioning),
    ("csv_import", csv_import),
    ("sanitiser", sanitiser),
];

/// One verification key, generated once per process; the lookup hands it out for any
/// `kid`, so inputs reach the signature check.
static KEY: LazyLock<VerifyKey> =
    LazyLock::new(|| VerifyKey::new(&KeyMaterial::generate(Alg::ES256)));

/// Token parsing (`token inspect`) and verification. Nothing the fuzzer can produce
/// verifies (it would need the private key); oversized input is `malformed` for both.
pub fn token(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let parts = token::decode_parts(&s);
    let known = token::verify(&s, |_| Some(&*KEY), "iss", |_| true, 0, 30);
    let unknown = token::verify(&s, |_| None::<&VerifyKey>, "iss", |_| true, 0, 30);
    assert!(known.is_err(), "a token verified without a signature");
    assert!(unknown.is_err(), "a token verified without a key");
    if s.len() > MAX_TOKEN_LEN {
        assert_eq!(parts.err(), Some(Reason::Malformed));
        assert_eq!(known.err(), Some(Reason::Malformed));
    }
}

/// The provisioning-file parser (`apply -f`). Errors name the file.
pub fn provisioning(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match provision::parse("fuzz.toml", text) {
        Ok(env) => {
            // What parsed can be written back out (as `export` does) without panicking.
            let _ = toml::to_string(&env);
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml"), "{e}"),
    }
}

/// CSV import (`user import`): reading rows, then validating each as the import does.
/// Every row is reported with its line, in file order; refused rows name a reason.
pub fn csv_import(data: &[u8]) {
    let mut last = 0;
    for row in import::read_rows(data) {
        let line = match row {
            Ok(r) => {
                assert!(
                    !r.email.is_empty()
                        || r.name.is_some()
                        || r.role.is_some()
                        || r.station.is_some()
                );
                let _ = prepare_user(
                    "domain",
                    "role",
                    &r.email,
                    r.name.as_deref(),
                    None,
                    r.station.as_deref(),
                    0,
                );
                r.line
            }
            Err(e) => {
                assert!(!e.reason.is_empty());
                e.line
            }
        };
        assert!(line >= 1 && line >= last, "row line {line} after {last}");
        last = line;
    }
}

/// The console's text sanitiser: the output never holds a control or invisible
/// formatting character, and sanitising twice changes nothing more.
pub fn sanitiser(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let out = crate::text::inert(&s);
    assert!(!out.chars().any(crate::text::needs_escape), "{out:?}");
    assert_eq!(crate::text::inert(&out), out);
}
