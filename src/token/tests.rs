use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_700_000_000;
const ISS: &str = "https://keyward.example";
const AUD: &str = "free.example.com";

struct Fixture {
    material: KeyMaterial,
    kid: String,
}

/// One key per algorithm, generated once (RSA generation is slow).
static KEYS: LazyLock<HashMap<Alg, Fixture>> = LazyLock::new(|| {
    Alg::ALL
        .into_iter()
        .map(|alg| {
            let material = KeyMaterial::generate(alg);
            let kid = material.new_kid();
            (alg, Fixture { material, kid })
        })
        .collect()
});

/// The verification keys by kid, as a token service would cache them.
static VERIFY_KEYS: LazyLock<HashMap<String, Arc<VerifyKey>>> = LazyLock::new(|| {
    KEYS.values()
        .map(|f| (f.kid.clone(), Arc::new(VerifyKey::new(&f.material))))
        .collect()
});

fn fx(alg: Alg) -> &'static Fixture {
    &KEYS[&alg]
}

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "0190f5b2-7c1e-7000-8000-000000000001".into(),
        aud: AUD.into(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: "0190f5b2-7c1e-7000-8000-0000000000aa".into(),
        client_id: "keyward-console".into(),
        scope: "read write".into(),
    }
}

fn mint(alg: Alg, c: &AccessClaims) -> String {
    let f = fx(alg);
    sign(c, alg, &f.kid, &f.material.encoding_key()).unwrap()
}

fn check_at(token: &str, now: i64, leeway: u64) -> Result<AccessClaims, Reason> {
    verify(
        token,
        |kid| VERIFY_KEYS.get(kid).cloned(),
        ISS,
        |aud| aud == AUD,
        now,
        leeway,
    )
}

fn check(token: &str) -> Result<AccessClaims, Reason> {
    check_at(token, NOW, 0)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(v: &Value) -> String {
    b64(serde_json::to_vec(v).unwrap())
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

/// Signs arbitrary header/claims JSON with jsonwebtoken directly.
fn encode_raw(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

fn at_header(alg: Alg, kid: Option<&str>) -> Header {
    let mut h = Header::new(alg.jwt_alg());
    h.typ = Some("at+jwt".into());
    h.kid = kid.map(str::to_owned);
    h
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

#[test]
fn alg_parses_case_insensitively() {
    assert_eq!("es256".parse::<Alg>().unwrap(), Alg::ES256);
    assert_eq!("EDDSA".parse::<Alg>().unwrap(), Alg::EdDSA);
    assert_eq!("Rs256".parse::<Alg>().unwrap(), Alg::RS256);
    assert_eq!("HS256".parse::<Alg>().unwrap(), Alg::HS256);
    assert_eq!(Alg::default(), Alg::ES256);
    for alg in Alg::ALL {
        assert_eq!(alg.to_string().parse::<Alg>().unwrap(), alg);
    }
    let err = "none".parse::<Alg>().unwrap_err().to_string();
    assert!(
        err.contains("\"none\"") && err.contains("ES256, EdDSA, RS256, HS256"),
        "{err}"
    );
    assert!("ES384".parse::<Alg>().is_err());
}

#[test]
fn reasons_match_the_spec_list() {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "malformed",
            "unknown_key",
            "bad_signature",
            "invalid_type",
            "invalid_issuer",
            "invalid_audience",
            "not_yet_valid",
            "expired",
            "revoked",
            "user_disabled",
            "key_deleted",
            "consent_revoked",
            "insufficient_scope",
        ]
    );
    for r in Reason::ALL {
        assert_eq!(r.to_string(), r.as_str());
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
}

/// What another team's resource server does: fetch the JWK Set, pick the key by `kid`,
/// verify with plain jsonwebtoken.
#[test]
fn tokens_verify_with_plain_jsonwebtoken_from_the_jwk_set() {
    let now = unix_now();
    let published: Vec<Value> = [Alg::ES256, Alg::EdDSA, Alg::RS256]
        .into_iter()
        .map(|alg| fx(alg).material.public_jwk(&fx(alg).kid).unwrap())
        .collect();
    let served = serde_json::to_string(&jwks(&published)).unwrap();
    assert!(!served.contains("HS256"));

    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        let f = fx(alg);
        let c = claims(now);
        let token = mint(alg, &c);

        let set: JwkSet = serde_json::from_value(serde_json::from_str(&served).unwrap()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, alg.jwt_alg());
        let kid = header.kid.unwrap();
        assert_eq!(kid, f.kid);
        let jwk = set.find(&kid).expect("kid is in the JWK Set");
        // Our kid is the RFC 7638 thumbprint as jsonwebtoken computes it.
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            kid,
            "{alg}"
        );
        let key = DecodingKey::from_jwk(jwk).unwrap();

        let mut validation = Validation::new(alg.jwt_alg());
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        let data = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims, c, "{alg}");

        // The resource server's own checks bite too.
        validation.set_audience(&["other.example.com"]);
        assert!(jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation).is_err());

        // And our verifier agrees.
        assert_eq!(check_at(&token, now, 0).unwrap(), c, "{alg}");
    }
}

#[test]
fn public_jwks_have_the_rfc_7517_members() {
    let es = fx(Alg::ES256).material.public_jwk("k1").unwrap();
    assert_eq!(
        (es["kty"].as_str(), es["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(es["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(es["y"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let ed = fx(Alg::EdDSA).material.public_jwk("k2").unwrap();
    assert_eq!(
        (ed["kty"].as_str(), ed["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(ed["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let rs = fx(Alg::RS256).material.public_jwk("k3").unwrap();
    assert_eq!(rs["kty"], "RSA");
    assert_eq!(rs["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(rs["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    for (jwk, alg, kid) in [
        (&es, "ES256", "k1"),
        (&ed, "EdDSA", "k2"),
        (&rs, "RS256", "k3"),
    ] {
        assert_eq!(jwk["alg"], alg);
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], kid);
        assert!(jwk.get("d").is_none(), "no private members");
    }
    assert_eq!(jwks(std::slice::from_ref(&es)), json!({"keys": [es]}));
}

#[test]
fn hs256_is_never_published_but_signs_and_verifies() {
    let f = fx(Alg::HS256);
    assert!(f.material.public_jwk(&f.kid).is_none());
    assert!(f.material.thumbprint().is_none());
    assert!(f.kid.starts_with("hs_"));
    assert_eq!(f.material.private_der().len(), 32);
    let c = claims(NOW);
    assert_eq!(check(&mint(Alg::HS256, &c)).unwrap(), c);
}

#[test]
fn private_der_round_trips() {
    for alg in Alg::ALL {
        let f = fx(alg);
        let again = KeyMaterial::from_private_der(alg, f.material.private_der()).unwrap();
        assert_eq!(again.alg(), alg);
        assert_eq!(again.thumbprint(), f.material.thumbprint());
        let token = sign(&claims(NOW), alg, &f.kid, &again.encoding_key()).unwrap();
        check(&token).unwrap();
    }
    let ed_der = fx(Alg::EdDSA).material.private_der();
    let err = KeyMaterial::from_private_der(Alg::ES256, ed_der).unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::InvalidKey {
                alg: Alg::ES256,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(KeyMaterial::from_private_der(Alg::RS256, ed_der).is_err());
    assert!(KeyMaterial::from_private_der(Alg::EdDSA, b"garbage").is_err());
    assert!(KeyMaterial::from_private_der(Alg::HS256, &[7u8; 16]).is_err());
    assert!(!format!("{:?}", fx(Alg::HS256).material).contains(&b64(ed_der)));
}

#[test]
fn fresh_keys_differ() {
    let a = KeyMaterial::generate(Alg::ES256);
    let b = KeyMaterial::generate(Alg::ES256);
    assert_ne!(a.thumbprint(), b.thumbprint());
    let a = KeyMaterial::generate(Alg::EdDSA);
    let b = KeyMaterial::generate(Alg::EdDSA);
    assert_ne!(a.thumbprint(), b.thumbprint());
}

#[test]
fn lookup_may_return_a_reference_or_a_value() {
    let token = mint(Alg::EdDSA, &claims(NOW));
    let key = VerifyKey::new(&fx(Alg::EdDSA).material);
    assert!(verify(&token, |_| Some(&key), ISS, |_| true, NOW, 0).is_ok());
    assert!(verify(&token, |_| Some(key.clone()), ISS, |_| true, NOW, 0).is_ok());
}

#[test]
fn tampered_tokens_are_bad_signatures() {
    for alg in Alg::ALL {
        let token = mint(alg, &claims(NOW));
        let s = segments(&token);
        let mut forged = claims(NOW);
        forged.scope = "read write admin".into();
        let tampered = format!("{}.{}.{}", s[0], b64_json(&json!(forged)), s[2]);
        assert_eq!(check(&tampered), Err(Reason::BadSignature), "{alg}");

        let mut sig = URL_SAFE_NO_PAD.decode(&s[2]).unwrap();
        sig[0] ^= 0x01;
        let bad_sig = format!("{}.{}.{}", s[0], s[1], b64(&sig));
        assert_eq!(check(&bad_sig), Err(Reason::BadSignature), "{alg}");

        let no_sig = format!("{}.{}.", s[0], s[1]);
        assert_eq!(check(&no_sig), Err(Reason::BadSignature), "{alg}");
    }
}

#[test]
fn time_checks_use_the_given_clock_and_leeway() {
    let mut c = claims(NOW);
    c.exp = NOW - 100;
    c.nbf = NOW - 200;
    let t = mint(Alg::ES256, &c);
    assert_eq!(check_at(&t, NOW, 30), Err(Reason::Expired));
    assert_eq!(
        check_at(&t, NOW, 120),
        Err(Reason::Expired),
        "no leeway after exp"
    );
    assert_eq!(check_at(&t, NOW - 100, 120), Err(Reason::Expired));
    assert!(check_at(&t, NOW - 101, 120).is_ok(), "before expiry");
    c.exp = NOW;
    assert_eq!(
        check(&mint(Alg::ES256, &c)),
        Err(Reason::Expired),
        "exp is exclusive"
    );

    let mut c = claims(NOW);
    c.nbf = NOW + 100;
    let t = mint(Alg::ES256, &c);
    assert_eq!(check_at(&t, NOW, 30), Err(Reason::NotYetValid));
    assert!(check_at(&t, NOW, 100).is_ok(), "within leeway");
    assert!(check_at(&t, NOW + 100, 0).is_ok());

    // Extreme values neither overflow nor pass.
    let mut c = claims(NOW);
    c.exp = i64::MIN;
    assert_eq!(
        check_at(&mint(Alg::ES256, &c), NOW, u64::MAX),
        Err(Reason::Expired)
    );
    let mut c = claims(NOW);
    c.nbf = i64::MAX;
    assert_eq!(
        check_at(&mint(Alg::ES256, &c), NOW, 60),
        Err(Reason::NotYetValid)
    );
}

#[test]
fn issuer_and_audience_are_checked() {
    let mut c = claims(NOW);
    c.iss = "https://evil.example".into();
    assert_eq!(check(&mint(Alg::ES256, &c)), Err(Reason::InvalidIssuer));
    let mut c = claims(NOW);
    c.aud = "other.example.com".into();
    assert_eq!(check(&mint(Alg::EdDSA, &c)), Err(Reason::InvalidAudience));
    // Expiry is reported before issuer and audience.
    c.iss = "https://evil.example".into();
    c.exp = NOW - 1;
    assert_eq!(check(&mint(Alg::EdDSA, &c)), Err(Reason::Expired));
}

#[test]
fn unknown_or_missing_kid_is_unknown_key() {
    let f = fx(Alg::ES256);
    let c = json!(claims(NOW));
    let t = encode_raw(
        &at_header(Alg::ES256, Some("no-such-kid")),
        &c,
        &f.material.encoding_key(),
    );
    assert_eq!(check(&t), Err(Reason::UnknownKey));
    let t = encode_raw(&at_header(Alg::ES256, None), &c, &f.material.encoding_key());
    assert_eq!(check(&t), Err(Reason::UnknownKey));
    // A kid that no longer resolves (e.g. retired key).
    let t = mint(Alg::ES256, &claims(NOW));
    assert_eq!(
        verify(&t, |_| None::<VerifyKey>, ISS, |_| true, NOW, 0),
        Err(Reason::UnknownKey)
    );
}

#[test]
fn alg_none_is_refused() {
    let valid = mint(Alg::ES256, &claims(NOW));
    let s = segments(&valid);
    for none in ["none", "None", "NONE"] {
        let header = json!({"alg": none, "typ": "at+jwt", "kid": fx(Alg::ES256).kid});
        for sig in ["", s[2].as_str()] {
            let t = format!("{}.{}.{}", b64_json(&header), s[1], sig);
            assert_eq!(check(&t), Err(Reason::BadSignature), "{none} {sig:?}");
            // Inspection still shows it.
            assert_eq!(decode_parts(&t).unwrap().0["alg"], none);
        }
    }
}

/// HS256 tokens whose HMAC secret is public key material of an asymmetric key.
#[test]
fn algorithm_confusion_is_refused() {
    for alg in [Alg::ES256, Alg::RS256, Alg::EdDSA] {
        let f = fx(alg);
        let jwk = f.material.public_jwk(&f.kid).unwrap();
        let jwk_text = serde_json::to_string(&jwk).unwrap();
        let mut secrets: Vec<Vec<u8>> = vec![jwk_text.into_bytes()];
        for member in ["x", "y", "n"] {
            if let Some(v) = jwk[member].as_str() {
                secrets.push(v.as_bytes().to_vec());
                secrets.push(URL_SAFE_NO_PAD.decode(v).unwrap());
            }
        }
        if alg == Alg::ES256 {
            let mut point = vec![4u8];
            point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
            point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
            secrets.push(point);
        }
        for secret in secrets {
            let t = encode_raw(
                &at_header(Alg::HS256, Some(&f.kid)),
                &json!(claims(NOW)),
                &EncodingKey::from_secret(&secret),
            );
            assert_eq!(check(&t), Err(Reason::BadSignature), "{alg}");
        }
    }
    // A token signed by the EdDSA key but naming the ES256 key.
    let t = encode_raw(
        &at_header(Alg::EdDSA, Some(&fx(Alg::ES256).kid)),
        &json!(claims(NOW)),
        &fx(Alg::EdDSA).material.encoding_key(),
    );
    assert_eq!(check(&t), Err(Reason::BadSignature));
    // A mislabelled key given by the caller does not turn into acceptance.
    let t = mint(Alg::ES256, &claims(NOW));
    let wrong = VerifyKey {
        alg: Alg::ES256,
        key: DecodingKey::from_secret(b"x"),
    };
    assert!(verify(&t, |_| Some(&wrong), ISS, |_| true, NOW, 0).is_err());
}

#[test]
fn typ_must_be_at_jwt() {
    let f = fx(Alg::ES256);
    let c = json!(claims(NOW));
    let key = f.material.encoding_key();
    for (typ, expected) in [
        (Some("JWT"), Err(Reason::InvalidType)),
        (None, Err(Reason::InvalidType)),
        (Some("application/jwt"), Err(Reason::InvalidType)),
        (Some("at+jwt2"), Err(Reason::InvalidType)),
        (Some(""), Err(Reason::InvalidType)),
        (Some("AT+JWT"), Ok(())),
        (Some("application/at+jwt"), Ok(())),
        (Some("Application/AT+JWT"), Ok(())),
    ] {
        let mut h = at_header(Alg::ES256, Some(&f.kid));
        h.typ = typ.map(str::to_owned);
        let got = check(&encode_raw(&h, &c, &key)).map(|_| ());
        assert_eq!(got, expected, "{typ:?}");
    }
}

#[test]
fn oversized_tokens_are_malformed() {
    let mut c = claims(NOW);
    c.scope = "s ".repeat(MAX_TOKEN_LEN / 2);
    let t = mint(Alg::EdDSA, &c);
    assert!(t.len() > MAX_TOKEN_LEN);
    assert_eq!(check(&t), Err(Reason::Malformed));
    assert_eq!(decode_parts(&t), Err(Reason::Malformed));
    // Just under the limit is fine.
    let mut c = claims(NOW);
    c.scope = "s".repeat(MAX_TOKEN_LEN / 2);
    let t = mint(Alg::EdDSA, &c);
    assert!(t.len() <= MAX_TOKEN_LEN);
    check(&t).unwrap();
}

#[test]
fn garbage_is_malformed() {
    let kid = fx(Alg::ES256).kid.clone();
    let good_header = b64_json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}));
    let valid = mint(Alg::ES256, &claims(NOW));
    let s = segments(&valid);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_obj = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","x":{deep}}}"#);
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "abc".into(),
        "a.b".into(),
        "a.b.c".into(),
        "!!!.!!!.!!!".into(),
        format!("{}.{}.{}.{}.{}", s[0], s[1], s[2], s[1], s[2]),
        format!("{}.{}", s[0], s[1]),
        format!("{}=.{}.{}", s[0], s[1], s[2]),
        format!("{}.{}.{}", b64("not json"), s[1], s[2]),
        format!("{}.{}.{}", b64("[1,2]"), s[1], s[2]),
        format!("{}.{}.{}", b64("{\"alg\":1}"), s[1], s[2]),
        format!("{}.{}.{}", b64(&deep), s[1], s[2]),
        format!("{}.{}.{}", b64(&deep_obj), s[1], s[2]),
        format!("{}.{}.{}", b64(b"\xff\xfe{}"), s[1], s[2]),
        // Duplicate header members (parser-differential attacks).
        format!(
            "{}.{}.{}",
            b64(format!(
                r#"{{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"{kid}"}}"#
            )),
            s[1],
            s[2]
        ),
        // A critical extension we cannot honour.
        format!(
            "{}.{}.{}",
            b64_json(&json!({"alg":"ES256","typ":"at+jwt","kid":kid,"crit":["exp"],"exp":1})),
            s[1],
            s[2]
        ),
        format!("{}.{}.{}", s[0], s[1], "!!!"),
        format!("{good_header}.{}.{}", s[1], "a"),
    ];
    for t in &cases {
        assert_eq!(check(t), Err(Reason::Malformed), "{t:.80}");
    }

    // Payload garbage under a signature that does not match: the signature is checked
    // first, so it is bad_signature, and nothing panics.
    let t = format!("{good_header}.{}.{}", b64(&deep), s[2]);
    assert_eq!(check(&t), Err(Reason::BadSignature));

    // Properly signed but not our claims: malformed.
    let key = fx(Alg::ES256).material.encoding_key();
    let h = at_header(Alg::ES256, Some(&kid));
    let mut missing = json!(claims(NOW));
    missing.as_object_mut().unwrap().remove("client_id");
    let mut stringly = json!(claims(NOW));
    stringly["exp"] = json!("tomorrow");
    for c in [missing, stringly, json!({"sub": "x"}), json!({})] {
        assert_eq!(
            check(&encode_raw(&h, &c, &key)),
            Err(Reason::Malformed),
            "{c}"
        );
    }
}

#[test]
fn decode_parts_shows_header_and_claims() {
    let c = claims(NOW);
    let t = mint(Alg::RS256, &c);
    let (header, body) = decode_parts(&t).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], fx(Alg::RS256).kid.as_str());
    assert_eq!(body, json!(c));
    // Decoded even when it would not verify.
    let mut expired = c.clone();
    expired.exp = 0;
    assert_eq!(
        decode_parts(&mint(Alg::ES256, &expired)).unwrap().1["exp"],
        0
    );
    // Padded base64 is tolerated for inspection.
    let s = segments(&t);
    let pad = |seg: &str| format!("{seg}{}", "=".repeat((4 - seg.len() % 4) % 4));
    let padded = format!("{}.{}.{}", pad(&s[0]), pad(&s[1]), s[2]);
    assert_eq!(decode_parts(&padded).unwrap(), decode_parts(&t).unwrap());
    for bad in ["", "a.b.c", "e30.e30", "e30.W10.x", "W10.e30.x"] {
        assert_eq!(decode_parts(bad), Err(Reason::Malformed), "{bad}");
    }
    assert!(
        decode_parts("e30.e30.").is_ok(),
        "{{}}.{{}} with no signature"
    );
}

#[test]
fn garbage_never_panics() {
    let t = mint(Alg::ES256, &claims(NOW));
    // Every truncation and every single-byte corruption of a real token.
    for i in 0..=t.len() {
        let _ = decode_parts(&t[..i]);
        assert!(check(&t[..i]).is_err() || i == t.len());
    }
    let bytes = t.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [b'.', b'A', b'-', b'_', b'=', b'{', 0xff] {
            let mut b = bytes.to_vec();
            b[i] = replacement;
            let s = String::from_utf8_lossy(&b);
            let _ = decode_parts(&s);
            let _ = check(&s);
        }
    }
    // Random inputs from a fixed-seed generator (reproducible).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/{}\"";
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let s: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
            .collect();
        let _ = decode_parts(&s);
        assert!(check(&s).is_err());
        // Random JSON-ish segments that do decode.
        let h = b64((0..len).map(|_| (next() % 256) as u8).collect::<Vec<u8>>());
        let candidate = format!("{h}.{h}.{h}");
        let _ = decode_parts(&candidate);
        assert!(check(&candidate).is_err());
    }
}

proptest::proptest! {
    #[test]
    fn decode_parts_and_verify_never_panic(s in "\\PC{0,300}") {
        let _ = decode_parts(&s);
        proptest::prop_assert!(check(&s).is_err());
    }

    #[test]
    fn claims_round_trip(sub in "[a-z0-9-]{1,40}", scope in "[a-z:]{1,20}( [a-z:]{1,20}){0,5}") {
        let mut c = claims(NOW);
        c.sub = sub;
        c.scope = scope;
        let t = mint(Alg::EdDSA, &c);
        proptest::prop_assert_eq!(check(&t), Ok(c.clone()));
        proptest::prop_assert_eq!(decode_parts(&t).unwrap().1, json!(c));
    }
}

#[test]
fn scopes_helpers() {
    let c = claims(NOW);
    assert_eq!(c.scopes().collect::<Vec<_>>(), ["read", "write"]);
    assert!(c.has_scope("write"));
    assert!(!c.has_scope("rea"));
}

// ------------------------------------------------------------ the prepared signer

fn signer(alg: Alg) -> Signer {
    let f = fx(alg);
    Signer::new(&f.material, &f.kid).unwrap()
}

#[test]
fn prepared_signer_matches_jsonwebtoken_byte_for_byte_where_signing_is_deterministic() {
    // Ed25519, RSASSA-PKCS1-v1_5 and HMAC are deterministic: the same header, claims and
    // key must give exactly jsonwebtoken's token.
    for alg in [Alg::EdDSA, Alg::RS256, Alg::HS256] {
        let c = claims(NOW);
        assert_eq!(signer(alg).sign(&c).unwrap(), mint(alg, &c), "{alg}");
    }
}

#[test]
fn prepared_signer_tokens_verify_with_jsonwebtoken_and_with_keyward() {
    for alg in Alg::ALL {
        let s = signer(alg);
        assert_eq!((s.alg(), s.kid()), (alg, fx(alg).kid.as_str()));
        let c = claims(NOW);
        let token = s.sign(&c).unwrap();
        // The header and claims segments are jsonwebtoken's (ECDSA signatures are
        // randomised, so only those two can be compared).
        let reference = mint(alg, &c);
        let head = |t: &str| t.rsplit_once('.').unwrap().0.to_string();
        assert_eq!(head(&token), head(&reference), "{alg}");
        // Verified as another service would: jsonwebtoken with the published JWK (or
        // the shared secret for HS256).
        let key = match fx(alg).material.public_jwk(&fx(alg).kid) {
            Some(jwk) => DecodingKey::from_jwk(&serde_json::from_value(jwk).unwrap()).unwrap(),
            None => DecodingKey::from_secret(fx(alg).material.private_der()),
        };
        let mut v = Validation::new(alg.jwt_alg());
        v.set_audience(&[AUD]);
        v.set_issuer(&[ISS]);
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<AccessClaims>(&token, &key, &v).unwrap();
        assert_eq!(data.claims, c, "{alg}");
        assert_eq!(data.header.typ.as_deref(), Some(TOKEN_TYPE));
        assert_eq!(data.header.kid.as_deref(), Some(fx(alg).kid.as_str()));
        assert_eq!(check(&token), Ok(c), "{alg}");
        // A changed signature is refused.
        let (rest, sig) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[0] ^= 1;
        let forged = format!("{rest}.{}", b64(&bytes));
        assert_eq!(check(&forged), Err(Reason::BadSignature), "{alg}");
        assert!(jsonwebtoken::decode::<AccessClaims>(&forged, &key, &v).is_err());
    }
}

#[test]
fn prepared_ecdsa_signatures_are_fresh_each_time() {
    let s = signer(Alg::ES256);
    let (a, b) = (s.sign(&claims(NOW)).unwrap(), s.sign(&claims(NOW)).unwrap());
    assert_ne!(a, b, "ECDSA needs a new nonce per signature");
    assert_eq!(check(&a), check(&b));
}
