//! Credentials and tokens through the CLI, on both engines.

use crate::both;
use crate::common::Env;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

fn setup(e: &Env) {
    e.init();
    e.ok(&["role", "add", "Partner", "--scopes", "read,write"]);
    e.ok(&[
        "user",
        "add",
        "alice@example.com",
        "--domain",
        "free.example.com",
        "--role",
        "Partner",
    ]);
    e.ok(&[
        "user",
        "add",
        "bob@example.com",
        "--domain",
        "free.example.com",
    ]);
}

fn mint(e: &Env, args: &[&str]) -> Value {
    let mut a = vec!["token", "mint"];
    a.extend_from_slice(args);
    e.json(&a)
}

fn verify(e: &Env, token: &str) -> Value {
    let o = e.run_stdin(&["--json", "token", "verify", "-"], token);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)))
}

/// Verifies a token as another team's resource server would: plain jsonwebtoken,
/// keys only from `keyward jwks`.
fn verify_externally(e: &Env, token: &str, aud: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(e.json(&["jwks"])).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&["http://127.0.0.1:8080"]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("verifies with the JWK Set")
        .claims
}

both!(support_flow_key_then_token, |e| {
    setup(e);
    assert_eq!(
        e.json(&["user", "list", "--pending"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let k = e.json(&[
        "key",
        "create",
        "--user",
        "alice@example.com",
        "--scopes",
        "read",
        "--expires-in",
        "90d",
        "--name",
        "erp-sync",
    ]);
    let client_id = k["client_id"].as_str().unwrap().to_string();
    let secret = k["client_secret"].as_str().unwrap().to_string();
    assert!(
        client_id.starts_with("kw_") && secret.starts_with("kws_") && secret.len() >= 47,
        "{k}"
    );
    assert_eq!(k["scopes"], "read");
    // Alice left the pending list.
    let pending = e.json(&["user", "list", "--pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["email"], "bob@example.com");
    // The secret is never shown again.
    let list = e.ok(&["--json", "key", "list"]);
    assert!(
        !list.contains(&secret) && !list.contains("secret_hash"),
        "{list}"
    );
    // Minting through the key is limited to the key's scopes, naming what is missing.
    let err = e.fails(
        &[
            "token",
            "mint",
            "--user",
            "alice@example.com",
            "--key",
            &client_id,
            "--scopes",
            "write",
        ],
        1,
    );
    assert!(
        err.contains("write") && err.contains("allowed: read"),
        "{err}"
    );
    // A token minted through a key may not outlive the key.
    let brief = e.json(&[
        "key",
        "create",
        "--user",
        "alice@example.com",
        "--scopes",
        "read",
        "--expires-in",
        "2h",
    ]);
    let brief_id = brief["client_id"].as_str().unwrap();
    let err = e.fails(
        &[
            "token",
            "mint",
            "--user",
            "alice@example.com",
            "--key",
            brief_id,
            "--ttl",
            "1d",
        ],
        1,
    );
    assert!(
        err.contains("ttl") && err.contains("when key") && err.contains(brief_id),
        "{err}"
    );
    let t = mint(
        e,
        &[
            "--user",
            "alice@example.com",
            "--key",
            brief_id,
            "--ttl",
            "1h",
        ],
    );
    assert_eq!(t["expires_in"], 3600);
    let t = mint(e, &["--user", "alice@example.com", "--key", &client_id]);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "read");
    assert_eq!(t["expires_in"], 86400);
    let claims = verify_externally(e, t["access_token"].as_str().unwrap(), "free.example.com");
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["jti"], t["jti"]);
    // Without a key: role scopes, expanded through implication.
    let t2 = mint(e, &["--user", "alice@example.com", "--scopes", "write"]);
    assert_eq!(t2["scope"], "read write");
    let c2 = verify_externally(e, t2["access_token"].as_str().unwrap(), "free.example.com");
    assert_eq!(c2["client_id"], "keyward-console");
    // Beyond the role: refused with the missing scope named.
    let err = e.fails(
        &[
            "token",
            "mint",
            "--user",
            "bob@example.com",
            "--scopes",
            "admin",
        ],
        1,
    );
    assert!(
        err.contains("admin") && err.contains("role Consumer"),
        "{err}"
    );
    let err = e.fails(
        &[
            "token",
            "mint",
            "--user",
            "bob@example.com",
            "--ttl",
            "400d",
        ],
        1,
    );
    assert!(err.contains("max_ttl"), "{err}");
    // An unknown scope: named, with what there is and how to add one.
    let err = e.fails(
        &[
            "key",
            "create",
            "--user",
            "bob@example.com",
            "--scopes",
            "read,bulk",
        ],
        1,
    );
    assert!(
        err.contains("scope \"bulk\" not found")
            && err.contains("known scopes: admin read write")
            && err.contains("`keyward scope add NAME`"),
        "{err}"
    );
    // A key needs a name (export writes it, apply needs it back).
    let err = e.fails(
        &["key", "create", "--user", "bob@example.com", "--name", ""],
        1,
    );
    assert!(err.contains("invalid key name \"\""), "{err}");
    // Lifetimes are whole seconds: `1ms` would be a token dead on arrival.
    let err = e.fails(
        &["token", "mint", "--user", "bob@example.com", "--ttl", "1ms"],
        1,
    );
    assert!(
        err.contains("\"1ms\"") && err.contains("whole seconds"),
        "{err}"
    );
    // Introspection shape.
    let v = verify(e, t["access_token"].as_str().unwrap());
    assert_eq!(v["active"], true);
    assert_eq!(v["aud"], "free.example.com");
    assert!(v.get("reason").is_none());
    // Every change audited, never with the secret.
    let audit = e.ok(&["--json", "audit"]);
    assert!(audit.contains("key.create") && audit.contains("token.mint"));
    assert!(!audit.contains(&secret));
});

both!(every_algorithm_verifies_from_the_jwk_set, |e| {
    setup(e);
    for alg in ["ES256", "EdDSA", "RS256"] {
        e.ok(&["signing-key", "rotate", "--alg", alg]);
        let t = mint(e, &["--user", "alice@example.com"]);
        let tok = t["access_token"].as_str().unwrap();
        let h = jsonwebtoken::decode_header(tok).unwrap();
        assert_eq!(format!("{:?}", h.alg), alg);
        let c = verify_externally(e, tok, "free.example.com");
        assert_eq!(c["sub"].as_str().unwrap().len(), 36);
        assert_eq!(verify(e, tok)["active"], true);
    }
    // HS256 only with --shared-secret, and never published.
    assert!(
        e.fails(&["signing-key", "rotate", "--alg", "HS256"], 1)
            .contains("--shared-secret")
    );
    e.ok(&["signing-key", "rotate", "--alg", "HS256", "--shared-secret"]);
    let t = mint(e, &["--user", "alice@example.com"]);
    let tok = t["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(tok).unwrap().kid.unwrap();
    let jwks = e.json(&["jwks"]);
    assert!(!jwks.to_string().contains(&kid), "HS256 key published");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);
    assert_eq!(verify(e, tok)["active"], true);
    let keys = e.json(&["signing-key", "list"]);
    assert_eq!(
        keys.as_array()
            .unwrap()
            .iter()
            .filter(|k| k["status"] == "active")
            .count(),
        1
    );
});

fn forge(header: Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(sig)
    )
}

both!(hostile_tokens_are_rejected_with_the_right_reason, |e| {
    setup(e);
    let t = mint(e, &["--user", "alice@example.com"]);
    let tok = t["access_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = tok.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let reason = |t: &str| verify(e, t)["reason"].as_str().unwrap_or("").to_string();

    // Tampered payload (scope widened) keeps the old signature.
    let mut wide = claims.clone();
    wide["scope"] = json!("read write admin");
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(wide.to_string()), parts[2]);
    assert_eq!(reason(&tampered), "bad_signature");
    // alg none.
    let mut h = header.clone();
    h["alg"] = json!("none");
    assert_eq!(reason(&forge(h, &claims, b"")), "bad_signature");
    // HS256 signed with the public key (algorithm confusion).
    let jwks = e.json(&["jwks"]);
    let pubjwk = jwks["keys"][0].to_string();
    let mut h = header.clone();
    h["alg"] = json!("HS256");
    let key = jsonwebtoken::EncodingKey::from_secret(pubjwk.as_bytes());
    let mut jh = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jh.typ = Some("at+jwt".into());
    jh.kid = header["kid"].as_str().map(str::to_string);
    let confused = jsonwebtoken::encode(&jh, &claims, &key).unwrap();
    assert_eq!(reason(&confused), "bad_signature");
    // Unknown kid, including injection attempts.
    for kid in ["nope", "../../etc/passwd", "' OR 1=1 --"] {
        let mut h = header.clone();
        h["kid"] = json!(kid);
        assert_eq!(reason(&forge(h, &claims, b"x")), "unknown_key", "{kid}");
    }
    // typ other than at+jwt.
    let mut h = header.clone();
    h["typ"] = json!("JWT");
    assert_eq!(reason(&forge(h, &claims, b"x")), "invalid_type");
    // Garbage and oversized input.
    assert_eq!(reason("not.a.token"), "malformed");
    assert_eq!(reason(&"a".repeat(20_000)), "malformed");
    // Wrong issuer: the setting changed after minting.
    e.ok(&["config", "set", "issuer", "https://auth.example.com"]);
    assert_eq!(reason(&tok), "invalid_issuer");
    e.ok(&["config", "set", "issuer", "http://127.0.0.1:8080"]);
    assert_eq!(verify(e, &tok)["active"], true);
    // inspect shows header and claims even when invalid.
    let o = e.run_stdin(&["--json", "token", "inspect", "-"], &tampered);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["active"], false);
    assert_eq!(v["reason"], "bad_signature");
    assert_eq!(v["claims"]["scope"], "read write admin");
    assert_eq!(v["header"]["typ"], "at+jwt");
    // The human verdict says what the reason means.
    let o = e.run_stdin(&["token", "inspect", "-"], &tampered);
    let human = String::from_utf8_lossy(&o.stdout);
    assert!(
        human.contains("✗ INACTIVE — bad_signature: its signature does not verify"),
        "{human}"
    );
    let o = e.run_stdin(&["token", "inspect", "-"], "not.a.token");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("malformed: not a JWT"),
        "{o:?}"
    );
    // verify exits 1 for invalid tokens, 0 for valid ones.
    assert_eq!(
        e.run_stdin(&["token", "verify", "-"], &tampered)
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        e.run_stdin(&["token", "verify", "-"], &tok).status.code(),
        Some(0)
    );
    let out = e.run_stdin(&["token", "verify", "-", "--require-scope", "admin"], &tok);
    assert_eq!(out.status.code(), Some(1));
    // It says which scope the token lacks.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("invalid: insufficient_scope (lacks admin; has "),
        "{said}"
    );
});

both!(revocation_cascades, |e| {
    setup(e);
    let k = e.json(&["key", "create", "--user", "alice@example.com"]);
    let cid = k["client_id"].as_str().unwrap().to_string();
    let by_key = mint(e, &["--user", "alice@example.com", "--key", &cid]);
    let direct = mint(e, &["--user", "alice@example.com"]);
    let other = mint(e, &["--user", "bob@example.com"]);
    let tok = |v: &Value| v["access_token"].as_str().unwrap().to_string();
    // Revoke one by jti, with a reason.
    let r = e.json(&[
        "token",
        "revoke",
        direct["jti"].as_str().unwrap(),
        "--reason",
        "customer asked",
    ]);
    assert_eq!(r["revoked"], 1);
    let v = verify(e, &tok(&direct));
    assert_eq!(
        (v["active"].clone(), v["reason"].clone()),
        (json!(false), json!("revoked"))
    );
    let human = e.run_stdin(&["token", "inspect", "-"], &tok(&direct));
    assert!(String::from_utf8_lossy(&human.stdout).contains("customer asked"));
    // Deleting the key revokes what was minted through it.
    let r = e.json(&["key", "rm", &cid]);
    assert_eq!(r["revoked_tokens"], 1);
    assert_eq!(verify(e, &tok(&by_key))["reason"], "key_deleted");
    // Disabling a user revokes their tokens; others are untouched.
    let again = mint(e, &["--user", "alice@example.com"]);
    let r = e.json(&["user", "disable", "alice@example.com"]);
    assert_eq!(r["revoked_tokens"], 1);
    assert_eq!(verify(e, &tok(&again))["reason"], "user_disabled");
    assert_eq!(verify(e, &tok(&other))["active"], true);
    assert!(
        e.fails(&["token", "mint", "--user", "alice@example.com"], 1)
            .contains("disabled")
    );
    // --user revokes all of a user's tokens.
    assert_eq!(
        e.json(&["token", "revoke", "--user", "bob@example.com"])["revoked"],
        1
    );
    assert_eq!(verify(e, &tok(&other))["reason"], "revoked");
    // Again: nothing left to revoke says so, and audits nothing.
    let events = || {
        let all = e.json(&["audit", "--limit", "0"]);
        all.as_array()
            .unwrap()
            .iter()
            .filter(|v| v["action"] == "token.revoke")
            .count()
    };
    let before = events();
    let out = e.ok(&["token", "revoke", "--user", "bob@example.com"]);
    assert!(out.contains("Nothing to revoke"), "{out}");
    assert_eq!(events(), before);
    // Listing shows state.
    let list = e.json(&["token", "list", "--active"]);
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    let audit = e.ok(&["--json", "audit"]);
    assert!(audit.contains("token.revoke") && audit.contains("key.rm"));
});

both!(narrowing_a_role_revokes_and_trims, |e| {
    setup(e);
    let k = e.json(&[
        "key",
        "create",
        "--user",
        "alice@example.com",
        "--scopes",
        "write",
    ]);
    assert_eq!(k["scopes"], "read write");
    let w = mint(e, &["--user", "alice@example.com", "--scopes", "write"]);
    let r = mint(e, &["--user", "alice@example.com", "--scopes", "read"]);
    let j = e.json(&["role", "revoke", "Partner", "write"]);
    assert_eq!(j["revoked_tokens"], 1);
    assert_eq!(j["trimmed_keys"], 1);
    assert_eq!(
        verify(e, w["access_token"].as_str().unwrap())["reason"],
        "revoked"
    );
    assert_eq!(
        verify(e, r["access_token"].as_str().unwrap())["active"],
        true
    );
    let keys = e.json(&["key", "list", "--user", "alice@example.com"]);
    assert_eq!(keys[0]["scopes"], "read");
    // Moving a user to a narrower role does the same, and says so.
    e.ok(&["role", "grant", "Partner", "write"]);
    let w2 = mint(e, &["--user", "alice@example.com", "--scopes", "write"]);
    let j = e.json(&["user", "set-role", "alice@example.com", "Consumer"]);
    assert_eq!(j["revoked_tokens"], 1);
    assert_eq!(
        verify(e, w2["access_token"].as_str().unwrap())["active"],
        false
    );
});

both!(signing_key_retirement_and_master_key_rotation, |e| {
    setup(e);
    let t = mint(e, &["--user", "alice@example.com"]);
    let old_kid = jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    assert!(
        e.fails(&["signing-key", "retire", &old_kid], 1)
            .contains("active signing key")
    );
    e.ok(&["signing-key", "rotate"]);
    // Old tokens still verify with the verify-only key, which stays published.
    assert_eq!(
        verify(e, t["access_token"].as_str().unwrap())["active"],
        true
    );
    assert!(e.json(&["jwks"]).to_string().contains(&old_kid));
    let err = e.fails(&["signing-key", "retire", &old_kid], 1);
    assert!(
        err.contains("1 unexpired token")
            && err.contains(&format!("signing-key retire {old_kid} --revoke-tokens")),
        "{err}"
    );
    let r = e.json(&["signing-key", "retire", &old_kid, "--revoke-tokens"]);
    assert_eq!(r["revoked_tokens"], 1);
    assert!(!e.json(&["jwks"]).to_string().contains(&old_kid));
    assert_eq!(
        verify(e, t["access_token"].as_str().unwrap())["reason"],
        "unknown_key"
    );
    // Master key rotation keeps every secret usable.
    let before = std::fs::read(e.path("master.key")).unwrap();
    e.ok(&["master-key", "rotate"]);
    assert_ne!(before, std::fs::read(e.path("master.key")).unwrap());
    let t2 = mint(e, &["--user", "alice@example.com"]);
    assert_eq!(
        verify(e, t2["access_token"].as_str().unwrap())["active"],
        true
    );
    // A wrong master key is an environment error that says what to do.
    std::fs::write(e.path("master.key"), &before).unwrap();
    let err = e.fails(&["token", "mint", "--user", "alice@example.com"], 3);
    assert!(
        err.contains("master key") && err.contains("KEYWARD_MASTER_KEY_FILE"),
        "{err}"
    );
    std::fs::remove_file(e.path("master.key")).unwrap();
    let err = e.fails(&["key", "create", "--user", "alice@example.com"], 3);
    // Not the circular "run keyward init": init cannot make a key for this database.
    assert!(
        err.contains("does not exist")
            && err.contains("Restore that file")
            && !err.contains("run `keyward init`"),
        "{err}"
    );
    // Directory work does not need the master key.
    e.ok(&["user", "list"]);
});

both!(apps_and_consents, |e| {
    setup(e);
    let err = e.fails(
        &[
            "app",
            "create",
            "Ledger",
            "--owner",
            "alice@example.com",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        1,
    );
    assert!(err.contains("https://"), "{err}");
    let a = e.json(&[
        "app",
        "create",
        "Ledger",
        "--owner",
        "alice@example.com",
        "--redirect-uri",
        "https://ledger.example/cb",
        "--scopes",
        "read,write",
    ]);
    let cid = a["client_id"].as_str().unwrap().to_string();
    assert!(a["client_secret"].as_str().unwrap().starts_with("kwa_"));
    assert_eq!(a["scopes"], "read write");
    let err = e.fails(
        &[
            "consent",
            "grant",
            "bob@example.com",
            &cid,
            "--scopes",
            "admin",
        ],
        1,
    );
    assert!(err.contains("admin"), "{err}");
    // The app allows write, bob's role does not: a consent that could never be honoured
    // is refused, naming the scope and the role.
    let err = e.fails(
        &[
            "consent",
            "grant",
            "bob@example.com",
            &cid,
            "--scopes",
            "write",
        ],
        1,
    );
    assert!(
        err.contains("write") && err.contains("role Consumer"),
        "{err}"
    );
    let c = e.json(&[
        "consent",
        "grant",
        "bob@example.com",
        &cid,
        "--scopes",
        "read",
    ]);
    assert_eq!(c["scopes"], "read");
    assert_eq!(
        e.json(&["consent", "list", "--user", "bob@example.com"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e.ok(&["consent", "revoke", "bob@example.com", &cid]);
    assert!(e.json(&["consent", "list"]).as_array().unwrap().is_empty());
    e.ok(&["app", "rm", &cid]);
    assert!(e.json(&["app", "list"]).as_array().unwrap().is_empty());
});

both!(lifecycle_purge_and_key_filters, |e| {
    setup(e);
    e.ok(&[
        "key",
        "create",
        "--user",
        "alice@example.com",
        "--expires-in",
        "3d",
        "--name",
        "soon",
    ]);
    e.ok(&[
        "key",
        "create",
        "--user",
        "alice@example.com",
        "--name",
        "forever",
    ]);
    let soon = e.json(&["key", "list", "--expiring-within", "14d"]);
    assert_eq!(soon.as_array().unwrap().len(), 1);
    assert_eq!(soon[0]["name"], "soon");
    assert!(
        e.json(&["key", "list", "--unused-for", "90d"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let t = mint(e, &["--user", "alice@example.com"]);
    // Nothing expired long enough ago: purge keeps everything.
    assert_eq!(
        e.json(&["token", "purge", "--expired-before", "30d"])["removed"],
        0
    );
    assert_eq!(e.json(&["token", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(
        verify(e, t["access_token"].as_str().unwrap())["active"],
        true
    );
});

#[test]
fn secrets_never_reach_the_database_file() {
    let e = Env::sqlite();
    setup(&e);
    let k = e.json(&["key", "create", "--user", "alice@example.com"]);
    let a = e.json(&[
        "app",
        "create",
        "Ledger",
        "--owner",
        "alice@example.com",
        "--redirect-uri",
        "https://l.example/cb",
    ]);
    let master = std::fs::read_to_string(e.path("master.key")).unwrap();
    let secrets = [
        k["client_secret"].as_str().unwrap().to_string(),
        a["client_secret"].as_str().unwrap().to_string(),
        master.trim().to_string(),
    ];
    // Checkpoint the WAL into the main file, then scan both.
    e.ok(&["signing-key", "list"]);
    for f in ["k.db", "k.db-wal"] {
        let bytes = std::fs::read(e.path(f)).unwrap_or_default();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{f} contains a secret"
            );
        }
        // No PKCS#8 private key in the clear either: the DER prefix of every PKCS#8 key.
        assert!(
            ![
                "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH",
                "MC4CAQAwBQYDK2VwBCIEI"
            ]
            .iter()
            .any(|p| bytes.windows(p.len()).any(|w| w == p.as_bytes())),
            "{f} holds a private key in base64 DER"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(e.path("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn secrets_never_reach_a_postgres_dump() {
    let Some(e) = Env::pg() else { return };
    setup(&e);
    let k = e.json(&["key", "create", "--user", "alice@example.com"]);
    let a = e.json(&[
        "app",
        "create",
        "Ledger",
        "--owner",
        "alice@example.com",
        "--redirect-uri",
        "https://l.example/cb",
    ]);
    let pw = "correct horse battery staple";
    let o = e.run_stdin(
        &[
            "user",
            "add",
            "pw@x.example",
            "--domain",
            "free.example.com",
            "--password-stdin",
        ],
        &format!("{pw}\n"),
    );
    assert!(o.status.success());
    let dump = std::process::Command::new("pg_dump")
        .arg(&e.url)
        .output()
        .expect("pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains("alice@example.com"),
        "the dump holds the data"
    );
    let master = std::fs::read_to_string(e.path("master.key")).unwrap();
    for s in [
        k["client_secret"].as_str().unwrap(),
        a["client_secret"].as_str().unwrap(),
        master.trim(),
        pw,
    ] {
        assert!(!text.contains(s), "the dump contains a secret");
    }
    assert!(
        !text.contains("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH")
            && !text.contains("MC4CAQAwBQYDK2VwBCIEI"),
        "the dump holds a private key in base64 DER"
    );
}

both!(token_list_prints_every_row_unless_limited, |e| {
    e.ok(&["init"]);
    // 600 users with two token records each: more than one page of 1000.
    e.ok(&["demo", "--users", "600"]);
    let all = e.json(&["token", "list"]);
    let jtis: std::collections::BTreeSet<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["jti"].as_str().unwrap())
        .collect();
    assert_eq!(all.as_array().unwrap().len(), 1200);
    assert_eq!(jtis.len(), 1200, "a row printed twice across pages");
    assert_eq!(all[0]["id"], all[0]["jti"]);
    let some = e.json(&["token", "list", "--limit", "1100"]);
    assert_eq!(some.as_array().unwrap().len(), 1100);
    // Newest first, across the page boundary too.
    let issued: Vec<&str> = some
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["issued_at"].as_str().unwrap())
        .collect();
    assert!(issued.windows(2).all(|w| w[0] >= w[1]));
    let text = e.ok(&["token", "list", "--limit", "3"]);
    assert_eq!(text.lines().count(), 4, "{text}");
    e.ok(&[
        "user",
        "add",
        "idle@free.example.com",
        "--domain",
        "free.example.com",
    ]);
    assert_eq!(
        e.ok(&["token", "list", "--user", "idle@free.example.com"])
            .trim(),
        "No tokens match."
    );
    assert_eq!(
        e.json(&["token", "list", "--user", "idle@free.example.com"]),
        json!([])
    );
});

both!(nothing_is_minted_or_created_that_grants_no_scope, |e| {
    e.ok(&["init", "--domain", "free.example.com"]);
    e.ok(&["role", "add", "Bare"]);
    e.ok(&[
        "user",
        "add",
        "b@free.example.com",
        "--domain",
        "free.example.com",
        "--role",
        "Bare",
    ]);
    for args in [
        &["token", "mint", "--user", "b@free.example.com"][..],
        &["key", "create", "--user", "b@free.example.com"][..],
    ] {
        let err = e.fails(args, 1);
        assert!(err.contains("role Bare allows no scope"), "{args:?}: {err}");
    }
    assert!(e.json(&["key", "list"]).as_array().unwrap().is_empty());
    assert!(e.json(&["token", "list"]).as_array().unwrap().is_empty());
});
