//! Signing key material: generation (aws-lc-rs), storage form, jsonwebtoken keys,
//! public JWKs (RFC 7517) and `kid`s (RFC 7638 thumbprints).

use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use aws_lc_rs::{digest, rsa};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{Alg, TokenError};
use crate::secret::{fill_random, generate_id};

/// Length of a generated HS256 shared secret.
const HMAC_SECRET_LEN: usize = 32;
/// P-256 coordinate length.
const P256_COORD_LEN: usize = 32;

/// Public half of a key, kept decoded so JWKs and decoding keys need no re-parsing.
#[derive(Clone)]
enum Public {
    /// P-256 point coordinates.
    Ec { x: Vec<u8>, y: Vec<u8> },
    /// Ed25519 public key.
    Ed { x: Vec<u8> },
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// HS256: nothing public.
    Shared,
}

/// A signing key: private bytes (zeroized on drop) plus what can be derived from them.
///
/// Build it once per key (parsing is not free) and keep the [`EncodingKey`] /
/// [`DecodingKey`] it produces cached.
#[derive(Clone)]
pub struct KeyMaterial {
    alg: Alg,
    /// PKCS#8 v1 DER for asymmetric keys; the raw secret for HS256.
    private: Zeroizing<Vec<u8>>,
    /// What jsonwebtoken signs with (for RS256 the PKCS#1 form it needs).
    encoding: EncodingKey,
    public: Public,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("alg", &self.alg)
            .field("private", &"[redacted]")
            .finish_non_exhaustive()
    }
}

fn invalid(alg: Alg, detail: impl Into<String>) -> TokenError {
    TokenError::InvalidKey {
        alg,
        detail: detail.into(),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    bytes[start..].to_vec()
}

impl KeyMaterial {
    /// Generates a new key for `alg` with aws-lc-rs (P-256, Ed25519, RSA-2048, or 32
    /// random bytes for HS256).
    ///
    /// # Panics
    /// If the crypto library fails to generate a key (a broken RNG); there is no safe
    /// way to continue then.
    pub fn generate(alg: Alg) -> KeyMaterial {
        let rng = SystemRandom::new();
        let der: Zeroizing<Vec<u8>> = match alg {
            Alg::ES256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .expect("P-256 key generation failed");
                Zeroizing::new(doc.as_ref().to_vec())
            }
            Alg::EdDSA => {
                let doc =
                    Ed25519KeyPair::generate_pkcs8v1(&rng).expect("Ed25519 key generation failed");
                Zeroizing::new(doc.as_ref().to_vec())
            }
            Alg::RS256 => {
                let pair =
                    rsa::KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation failed");
                let der = pair.as_der().expect("RSA key serialisation failed");
                Zeroizing::new(der.as_ref().to_vec())
            }
            Alg::HS256 => {
                let mut secret = Zeroizing::new(vec![0u8; HMAC_SECRET_LEN]);
                fill_random(&mut secret);
                secret
            }
        };
        KeyMaterial::from_private_der(alg, &der).expect("a freshly generated key is valid")
    }

    /// Rebuilds a key from its [`private_der`](KeyMaterial::private_der) form (after
    /// decrypting it). Fails if the bytes are not a valid key for `alg`.
    pub fn from_private_der(alg: Alg, der: &[u8]) -> Result<KeyMaterial, TokenError> {
        let (encoding, public) = match alg {
            Alg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| invalid(alg, format!("not a PKCS#8 P-256 key ({e})")))?;
                let point = pair.public_key().as_ref();
                if point.len() != 1 + 2 * P256_COORD_LEN || point[0] != 0x04 {
                    return Err(invalid(alg, "unexpected public point encoding"));
                }
                let (x, y) = point[1..].split_at(P256_COORD_LEN);
                (
                    EncodingKey::from_ec_der(der),
                    Public::Ec {
                        x: x.to_vec(),
                        y: y.to_vec(),
                    },
                )
            }
            Alg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|e| invalid(alg, format!("not a PKCS#8 Ed25519 key ({e})")))?;
                let x = pair.public_key().as_ref().to_vec();
                (EncodingKey::from_ed_der(der), Public::Ed { x })
            }
            Alg::RS256 => {
                let pair = rsa::KeyPair::from_pkcs8(der)
                    .map_err(|e| invalid(alg, format!("not a PKCS#8 RSA key ({e})")))?;
                if pair.public_modulus_len() < 256 {
                    return Err(invalid(alg, "RSA keys must have at least 2048 bits"));
                }
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let public = Public::Rsa {
                    n: strip_leading_zeros(&components.n),
                    e: strip_leading_zeros(&components.e),
                };
                (rsa_encoding_key(der)?, public)
            }
            Alg::HS256 => {
                if der.len() < HMAC_SECRET_LEN {
                    return Err(invalid(alg, "HS256 secrets must be at least 32 bytes"));
                }
                (EncodingKey::from_secret(der), Public::Shared)
            }
        };
        Ok(KeyMaterial {
            alg,
            private: Zeroizing::new(der.to_vec()),
            encoding,
            public,
        })
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The private key bytes to encrypt at rest (PKCS#8 DER, or the HS256 secret).
    pub fn private_der(&self) -> &[u8] {
        &self.private
    }

    /// The key jsonwebtoken signs with. Build once and cache.
    pub fn encoding_key(&self) -> EncodingKey {
        self.encoding.clone()
    }

    /// The key jsonwebtoken verifies with. Build once and cache.
    pub fn decoding_key(&self) -> DecodingKey {
        match &self.public {
            Public::Ec { x, y } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            Public::Ed { x } => DecodingKey::from_ed_der(x),
            Public::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            Public::Shared => DecodingKey::from_secret(&self.private),
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key: the natural
    /// `kid` of an asymmetric key. `None` for HS256.
    pub fn thumbprint(&self) -> Option<String> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        // Required members only, in lexicographic order, no whitespace (RFC 7638 §3).
        // Base64url text needs no JSON escaping.
        let canonical = match &self.public {
            Public::Ec { x, y } => {
                format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                )
            }
            Public::Ed { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
            Public::Rsa { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
            }
            Public::Shared => return None,
        };
        Some(b64(
            digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()
        ))
    }

    /// A `kid` for a new key: the thumbprint for asymmetric keys, a random id
    /// (`hs_` + 16 hex) for HS256. Call it once when the key is created and store it.
    pub fn new_kid(&self) -> String {
        self.thumbprint().unwrap_or_else(|| generate_id("hs_", 8))
    }

    /// The public key as a JWK (RFC 7517/7518) with `kid`, `alg` and `use: sig`.
    /// `None` for HS256: a shared secret is never published.
    pub fn public_jwk(&self, kid: &str) -> Option<Value> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.public {
            Public::Ec { x, y } => json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}),
            Public::Ed { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}),
            Public::Rsa { n, e } => json!({"kty": "RSA", "n": b64(n), "e": b64(e)}),
            Public::Shared => return None,
        };
        let obj = jwk.as_object_mut().expect("built as an object");
        obj.insert("kid".into(), kid.into());
        obj.insert("alg".into(), self.alg.as_str().into());
        obj.insert("use".into(), "sig".into());
        Some(jwk)
    }
}

/// jsonwebtoken's RSA signer wants PKCS#1 `RSAPrivateKey` DER while aws-lc-rs produces
/// PKCS#8. jsonwebtoken's own PEM reader unwraps PKCS#8, so hand it the key as PEM.
fn rsa_encoding_key(pkcs8: &[u8]) -> Result<EncodingKey, TokenError> {
    let b64 = Zeroizing::new(STANDARD.encode(pkcs8));
    let mut pem = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    pem.push_str("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| invalid(Alg::RS256, format!("cannot convert to PKCS#1 ({e})")))?;
    // Make sure what jsonwebtoken will sign with is a key aws-lc-rs accepts.
    rsa::KeyPair::from_der(key.as_bytes())
        .map_err(|e| invalid(Alg::RS256, format!("PKCS#1 form rejected ({e})")))?;
    Ok(key)
}

/// A JWK Set (RFC 7517 §5): `{"keys": [...]}`.
pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}
