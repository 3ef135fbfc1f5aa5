//! Access tokens: RFC 9068 JWTs signed with jsonwebtoken (aws-lc-rs backend), signing
//! key material and JWK Sets, and verification that names the reason a token is refused.
//!
//! Database-free: revocation, user status and consent are checked by the caller, which
//! reports them with the matching [`Reason`] variants.

mod keys;
mod signer;

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use keys::{KeyMaterial, jwks};
pub use signer::Signer;

/// Largest token accepted anywhere (verification and inspection): 16 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";

/// Errors of the token module other than verification results.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// An algorithm name that is not supported.
    #[error("unknown signing algorithm {given:?}: accepted values are ES256, EdDSA, RS256, HS256")]
    UnknownAlg {
        /// What was given.
        given: String,
    },
    /// Stored key bytes that are not a valid key for the algorithm.
    #[error("the stored {alg} signing key is invalid: {detail}; rotate to a new signing key")]
    InvalidKey {
        /// The algorithm the key was meant for.
        alg: Alg,
        /// What is wrong.
        detail: String,
    },
    /// Signing failed (e.g. the key does not match the algorithm).
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256 (the default).
    #[default]
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// HMAC-SHA256 with a shared secret; never published in the JWK Set.
    HS256,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::HS256];

    /// The JOSE name (`ES256`, `EdDSA`, `RS256`, `HS256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
            Alg::HS256 => "HS256",
        }
    }

    /// Whether the key is a shared secret (HS256).
    pub fn is_symmetric(self) -> bool {
        self == Alg::HS256
    }

    /// The jsonwebtoken algorithm.
    pub fn jwt_alg(self) -> Algorithm {
        match self {
            Alg::ES256 => Algorithm::ES256,
            Alg::EdDSA => Algorithm::EdDSA,
            Alg::RS256 => Algorithm::RS256,
            Alg::HS256 => Algorithm::HS256,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = TokenError;

    /// Case-insensitive: `es256`, `EDDSA`, ... are accepted.
    fn from_str(s: &str) -> Result<Alg, TokenError> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| TokenError::UnknownAlg {
                given: s.to_owned(),
            })
    }
}

/// Why a token is not accepted. The closed list of SPEC §3 (`reason` in
/// `token verify --json` / introspection). [`verify`] produces the first nine; the
/// others are decided by callers that look at the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not a well-formed JWS compact token with JSON header and claims (or too large).
    Malformed,
    /// The `kid` is missing or names no known signing key.
    UnknownKey,
    /// The signature does not verify with the named key (including a header `alg` that
    /// is not the key's algorithm, e.g. `none` or HS256 against a public key).
    BadSignature,
    /// The `typ` header is not `at+jwt`.
    InvalidType,
    /// The `iss` claim is not this issuer.
    InvalidIssuer,
    /// The `aud` claim is not an accepted audience.
    InvalidAudience,
    /// The `nbf` claim is in the future.
    NotYetValid,
    /// The `exp` claim is in the past.
    Expired,
    /// The token was revoked.
    Revoked,
    /// The token's user is disabled.
    UserDisabled,
    /// The API key the token was minted through was deleted.
    KeyDeleted,
    /// The consent the developer-app token relied on was revoked.
    ConsentRevoked,
    /// The token lacks a required scope.
    InsufficientScope,
}

impl Reason {
    /// Every reason, in SPEC order.
    pub const ALL: [Reason; 13] = [
        Reason::Malformed,
        Reason::UnknownKey,
        Reason::BadSignature,
        Reason::InvalidType,
        Reason::InvalidIssuer,
        Reason::InvalidAudience,
        Reason::NotYetValid,
        Reason::Expired,
        Reason::Revoked,
        Reason::UserDisabled,
        Reason::KeyDeleted,
        Reason::ConsentRevoked,
        Reason::InsufficientScope,
    ];

    /// The snake_case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::UnknownKey => "unknown_key",
            Reason::BadSignature => "bad_signature",
            Reason::InvalidType => "invalid_type",
            Reason::InvalidIssuer => "invalid_issuer",
            Reason::InvalidAudience => "invalid_audience",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::Revoked => "revoked",
            Reason::UserDisabled => "user_disabled",
            Reason::KeyDeleted => "key_deleted",
            Reason::ConsentRevoked => "consent_revoked",
            Reason::InsufficientScope => "insufficient_scope",
        }
    }

    /// What the reason means, in words, for a person reading a verdict.
    pub fn explain(self) -> &'static str {
        match self {
            Reason::Malformed => "not a JWT (base64url header.claims.signature, JSON, ≤ 16 KiB)",
            Reason::UnknownKey => "its kid is missing or names no signing key of this Keyward",
            Reason::BadSignature => {
                "its signature does not verify with its kid's key: altered or forged"
            }
            Reason::InvalidType => "its typ header is not at+jwt",
            Reason::InvalidIssuer => "its iss is not this Keyward's issuer setting",
            Reason::InvalidAudience => "its aud is not a domain it may be used for",
            Reason::NotYetValid => "its nbf is still in the future",
            Reason::Expired => "its exp has passed",
            Reason::Revoked => "it was revoked",
            Reason::UserDisabled => "its user is disabled",
            Reason::KeyDeleted => "the API key it was minted through was deleted",
            Reason::ConsentRevoked => "the user withdrew the consent the app's token relied on",
            Reason::InsufficientScope => "it lacks a scope that was required",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Reason {}

/// Claims of an access token (RFC 9068 §2.2). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (the `issuer` setting).
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience: the domain.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id (the record to revoke).
    pub jti: String,
    /// The API key / app `client_id`, or `keyward-console` / `keyward-login`.
    pub client_id: String,
    /// Granted scopes, space separated.
    pub scope: String,
}

impl AccessClaims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Signs `claims` as an RFC 9068 access token: header `alg`, `typ: at+jwt`, `kid`.
pub fn sign(
    claims: &AccessClaims,
    alg: Alg,
    kid: &str,
    key: &EncodingKey,
) -> Result<String, TokenError> {
    let mut header = Header::new(alg.jwt_alg());
    header.typ = Some(TOKEN_TYPE.to_owned());
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, key)?)
}

/// Base64url, padding optional (for lenient inspection).
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Splits a compact JWS into its three segments.
fn split_token(token: &str) -> Result<[&str; 3], Reason> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Reason::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok([h, p, s]),
        _ => Err(Reason::Malformed),
    }
}

fn decode_json_object(segment: &str) -> Result<Value, Reason> {
    let bytes = LENIENT_B64.decode(segment).map_err(|_| Reason::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Reason::Malformed),
    }
}

/// Decodes header and claims WITHOUT verifying anything, for `token inspect`.
/// Never panics; tokens over [`MAX_TOKEN_LEN`], with other than three segments, or
/// whose header or claims are not base64url JSON objects are [`Reason::Malformed`].
pub fn decode_parts(token: &str) -> Result<(Value, Value), Reason> {
    let [header, payload, _signature] = split_token(token)?;
    Ok((decode_json_object(header)?, decode_json_object(payload)?))
}

/// A verification key as the caller caches it: built once per `kid`.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    /// The algorithm the key belongs to; a token must name exactly this `alg`.
    pub alg: Alg,
    /// The jsonwebtoken key ([`KeyMaterial::decoding_key`]).
    pub key: DecodingKey,
}

impl VerifyKey {
    /// The verification key of `material`.
    pub fn new(material: &KeyMaterial) -> VerifyKey {
        VerifyKey {
            alg: material.alg(),
            key: material.decoding_key(),
        }
    }
}

/// The header fields verification looks at.
#[derive(Deserialize)]
struct HeaderView {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

fn is_access_token_type(typ: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case(TOKEN_TYPE)
}

/// One jsonwebtoken `Validation` per algorithm: signature only. Claims are checked by
/// [`verify`] itself against the caller's clock, in a fixed order.
static VALIDATIONS: LazyLock<[Validation; 4]> = LazyLock::new(|| {
    Alg::ALL.map(|alg| {
        let mut v = Validation::new(alg.jwt_alg());
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.leeway = 0;
        v
    })
});

fn reason_from_jwt_error(kind: &ErrorKind) -> Reason {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::RsaFailedSigning
        | ErrorKind::Signing(_)
        | ErrorKind::Provider(_) => Reason::BadSignature,
        // The caller's key for this kid is not usable with its algorithm.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::UnsupportedAlgorithm => Reason::UnknownKey,
        ErrorKind::ExpiredSignature => Reason::Expired,
        ErrorKind::ImmatureSignature => Reason::NotYetValid,
        ErrorKind::InvalidIssuer => Reason::InvalidIssuer,
        ErrorKind::InvalidAudience => Reason::InvalidAudience,
        _ => Reason::Malformed,
    }
}

/// Verifies an access token and returns its claims, or the first reason it fails.
///
/// Checks, in order: size (≤ 16 KiB) and shape → `malformed`; `typ` is `at+jwt` or
/// `application/at+jwt` (case-insensitive) → `invalid_type`; `kid` present and known to
/// `lookup` → `unknown_key`; header `alg` is exactly the key's algorithm (so `none` and
/// HS256-with-a-public-key are refused) and the signature verifies → `bad_signature`;
/// claims are a valid [`AccessClaims`] → `malformed`; then against `now`: `exp` →
/// `expired` (no leeway: `exp` is Keyward's own, and a token past it must not be called
/// active), `nbf` with `leeway_secs` of clock skew (a token minted by another host
/// whose clock runs ahead) → `not_yet_valid`; `iss == expected_iss` →
/// `invalid_issuer`; `aud_ok(aud)` → `invalid_audience`.
///
/// `lookup` may return the key by value, by reference or as an `Arc`.
pub fn verify<K: Borrow<VerifyKey>>(
    token: &str,
    lookup: impl FnOnce(&str) -> Option<K>,
    expected_iss: &str,
    aud_ok: impl FnOnce(&str) -> bool,
    now: i64,
    leeway_secs: u64,
) -> Result<AccessClaims, Reason> {
    let [header_b64, _, _] = split_token(token)?;
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| Reason::Malformed)?;
    let header: HeaderView = serde_json::from_slice(&header_json).map_err(|_| Reason::Malformed)?;
    if header.crit.is_some() {
        // We understand no JWS extensions, so a critical one cannot be honoured.
        return Err(Reason::Malformed);
    }
    if !header.typ.as_deref().is_some_and(is_access_token_type) {
        return Err(Reason::InvalidType);
    }
    let kid = header.kid.as_deref().ok_or(Reason::UnknownKey)?;
    let found = lookup(kid).ok_or(Reason::UnknownKey)?;
    let key: &VerifyKey = found.borrow();
    if header.alg != key.alg.as_str() {
        return Err(Reason::BadSignature);
    }
    let claims =
        jsonwebtoken::decode::<AccessClaims>(token, &key.key, &VALIDATIONS[key.alg.index()])
            .map_err(|e| reason_from_jwt_error(e.kind()))?
            .claims;

    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    if now >= claims.exp {
        return Err(Reason::Expired);
    }
    if claims.nbf > now.saturating_add(leeway) {
        return Err(Reason::NotYetValid);
    }
    if claims.iss != expected_iss {
        return Err(Reason::InvalidIssuer);
    }
    if !aud_ok(&claims.aud) {
        return Err(Reason::InvalidAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
