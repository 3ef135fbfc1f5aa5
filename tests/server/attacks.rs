//! Token-verification attacks replayed through the running service: every forged
//! token is refused by the protected resource (401, `error="invalid_token"`) and by
//! introspection (`{"active":false}`), with the same fixed answer whatever the attack,
//! never a 500; a genuine token keeps working before and after.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(claims.to_string())
    )
}

/// A header of the real token's shape with one field replaced (or removed with Null).
fn header_with(real: &Value, field: &str, v: Value) -> Value {
    let mut h = real.clone();
    match v {
        Value::Null => h.as_object_mut().unwrap().remove(field),
        v => h.as_object_mut().unwrap().insert(field.into(), v),
    };
    h
}

/// The public key as an attacker would feed it to HS256: the published JWK itself, its
/// coordinates, and the SubjectPublicKeyInfo in PEM and DER built from it (P-256).
fn public_key_forms(jwk: &Value) -> Vec<Vec<u8>> {
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 04 || x || y }
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    der.extend(&x);
    der.extend(&y);
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    let mut point = vec![0x04];
    point.extend(&x);
    point.extend(&y);
    vec![pem.into_bytes(), der, point, jwk.to_string().into_bytes()]
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = header["kid"].as_str().map(str::to_string);
    jsonwebtoken::encode(&h, claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap()
}

/// The forged tokens, each named by its attack.
fn attacks(real: &str, jwk: &Value) -> Vec<(String, String)> {
    let parts: Vec<&str> = real.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let sig = parts[2];
    let kid = header["kid"].as_str().unwrap().to_string();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, t: String| out.push((name.to_string(), t));

    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = header_with(&header, "alg", json!(alg));
        add(&format!("alg {alg}, no signature"), jwt(&h, &claims, ""));
        add(&format!("alg {alg}, real signature"), jwt(&h, &claims, sig));
    }
    for (i, secret) in public_key_forms(jwk).iter().enumerate() {
        add(
            &format!("HS256 keyed with public key form {i}"),
            hs256(&header, &claims, secret),
        );
    }
    for k in [
        "../../../../../../etc/passwd",
        "/dev/zero",
        "' OR '1'='1",
        "x'; DROP TABLE signing_keys; --",
        "\" OR 1=1 --",
        "%00",
        "\u{0}",
        &format!("{kid}' OR '1'='1"),
        &format!("{kid}/../{kid}"),
        &"k".repeat(8000),
    ] {
        let h = header_with(&header, "kid", json!(k));
        add(
            &format!("kid {:?}", &k[..k.len().min(40)]),
            jwt(&h, &claims, sig),
        );
    }
    for k in [json!(7), json!(null), json!([kid]), json!({"$ne": ""})] {
        add(
            &format!("kid {k}"),
            jwt(&header_with(&header, "kid", k), &claims, sig),
        );
    }
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt "),
        json!("application/jwt"),
        json!("at+jwt; x=1"),
        json!(["at+jwt"]),
        json!(null),
    ] {
        add(
            &format!("typ {typ}"),
            jwt(&header_with(&header, "typ", typ), &claims, sig),
        );
    }
    // Escalated claims under the real signature.
    for (field, v) in [
        ("scope", json!("read write admin")),
        ("exp", json!(4_102_444_800_i64)),
        ("aud", json!(OTHER)),
        ("sub", json!("00000000-0000-0000-0000-000000000000")),
    ] {
        let mut c = claims.clone();
        c[field] = v;
        add(&format!("claims {field} changed"), jwt(&header, &c, sig));
    }
    add("signature stripped", format!("{}.{}.", parts[0], parts[1]));
    add("two segments", format!("{}.{}", parts[0], parts[1]));
    add(
        "crit header",
        jwt(&header_with(&header, "crit", json!(["exp"])), &claims, sig),
    );
    // Oversized: a padded claim set, and plain bulk just over the 16 KiB limit.
    let mut big = claims.clone();
    big["pad"] = json!("A".repeat(16 * 1024));
    add("oversized claims", jwt(&header, &big, sig));
    add("oversized bulk", format!("{real}{}", "A".repeat(16 * 1024)));
    // JSON nesting bombs in the header and in the claims, under the size limit.
    let depth = 5000;
    let bomb = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","x":{bomb}}}"#);
    add(
        "nested JSON header",
        format!("{}.{}.{sig}", b64(&nested_header), parts[1]),
    );
    add(
        "nested JSON claims",
        format!("{}.{}.{sig}", parts[0], b64(format!(r#"{{"a":{bomb}}}"#))),
    );
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    add(
        "nested JSON object claims",
        format!("{}.{}.{sig}", parts[0], b64(deep_object)),
    );
    out
}

both!(
    token_verification_attacks_are_refused_by_the_service,
    |env| {
        let k = setup(env);
        let s = Server::start(env, None);
        let real = cc(&s, &k.alice_key, &["read"])
            .access_token()
            .secret()
            .clone();
        let kid = jsonwebtoken::decode_header(&real).unwrap().kid.unwrap();
        let jwks = body_json(s.http.get(s.url("/.well-known/jwks.json")).send().unwrap());
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["kid"] == json!(kid))
            .expect("the token's key is published")
            .clone();
        assert_eq!(jwk["kty"], "EC", "the default signing key is ES256");
        let introspect = |token: &str| {
            s.http
                .post(s.url("/oauth/introspect"))
                .basic_auth(&k.bob_key.0, Some(&k.bob_key.1))
                .form(&[("token", token)])
                .send()
                .unwrap()
        };
        let genuine_works = || {
            assert_eq!(get_stations(&s, &real).status(), 200);
            assert_eq!(body_json(introspect(&real))["active"], true);
        };
        genuine_works();

        let forged = attacks(&real, &jwk);
        assert!(forged.len() > 40);
        for (name, token) in &forged {
            assert_ne!(token, &real);
            let r = get_stations(&s, token);
            assert_eq!(r.status(), 401, "resource accepted or failed on: {name}");
            let challenge = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                challenge.starts_with("Bearer ") && challenge.contains(r#"error="invalid_token""#),
                "{name}: {challenge}"
            );
            assert_eq!(
                body_json(r),
                json!({"status": "error", "msg": "Invalid token"}),
                "{name}"
            );
            let r = introspect(token);
            assert_eq!(r.status(), 200, "introspection failed on: {name}");
            assert_eq!(body_json(r), json!({"active": false}), "{name}");
        }

        // Nothing was disturbed: the genuine token, the key store and the server still work.
        genuine_works();
        let keys = env.json(&["signing-key", "list"]);
        assert!(keys.to_string().contains(&kid));
        assert_eq!(s.http.get(s.url("/healthz")).send().unwrap().status(), 200);
    }
);
