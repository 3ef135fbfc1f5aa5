//! End-to-end tests of `keyward serve` over real HTTP on loopback: the real binary,
//! prepared through the CLI, on SQLite and (when configured) PostgreSQL. Grants are
//! driven by the `oauth2` crate as a real client would; tokens are verified with plain
//! `jsonwebtoken` from the published JWK Set only.

#[path = "common/mod.rs"]
mod common;
#[path = "server/hardening.rs"]
mod hardening;

use common::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername,
    Scope, TokenResponse, TokenUrl,
};
use reqwest::blocking::Client as Http;
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "free.example.com";
const OTHER: &str = "other.example.org";
const PASSWORD: &str = "correct horse battery";

/// A running `keyward serve`, stopped (SIGTERM, then kill) when dropped.
struct Server {
    child: Option<Child>,
    base: String,
    http: Http,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

impl Server {
    fn start(env: &Env, domain: Option<&str>) -> Server {
        Server::start_with(env, domain, None)
    }

    /// With `log`, the service logs at `trace` into that file (else warnings to stderr).
    fn start_with(env: &Env, domain: Option<&str>, log: Option<&std::path::Path>) -> Server {
        Server::start_full(env, domain, log, &[])
    }

    fn start_full(
        env: &Env,
        domain: Option<&str>,
        log: Option<&std::path::Path>,
        extra: &[&str],
    ) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--listen", &listen];
        if let Some(d) = domain {
            args.extend(["--domain", d]);
        }
        args.extend(extra);
        let mut cmd = env.cmd(&args);
        match log {
            Some(path) => cmd
                .env("KEYWARD_LOG", "trace")
                .env("RUST_LOG", "trace")
                .stderr(std::fs::File::create(path).unwrap()),
            None => cmd.env("KEYWARD_LOG", "warn").stderr(Stdio::inherit()),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn keyward serve");
        let s = Server {
            child: Some(child),
            base: format!("http://{listen}"),
            http: Http::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = s.http.get(s.url("/healthz")).send()
                && r.status() == 200
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "keyward serve did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn oauth(
        &self,
        id: &str,
        secret: &str,
    ) -> oauth2::basic::BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    > {
        BasicClient::new(ClientId::new(id.into()))
            .set_client_secret(ClientSecret::new(secret.into()))
            .set_token_uri(TokenUrl::new(self.url("/auth/token")).unwrap())
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(st) = c.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// oauth2's blocking HTTP client over reqwest, sending a Host header naming `host`.
fn http_client(
    host: &'static str,
) -> impl Fn(oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let c = Http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    move |req: oauth2::HttpRequest| {
        let (parts, body) = req.into_parts();
        let mut rb = c
            .request(
                parts.method.as_str().parse().unwrap(),
                parts.uri.to_string(),
            )
            .body(body);
        for (k, v) in parts.headers.iter() {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
        rb = rb.header("host", host);
        let resp = rb.send()?;
        let mut out = oauth2::http::Response::builder().status(resp.status().as_u16());
        for (k, v) in resp.headers() {
            out = out.header(k.as_str(), v.as_bytes());
        }
        Ok(out.body(resp.bytes()?.to_vec()).unwrap())
    }
}

/// Domain set-up through the CLI: alice (Administrator, password) with a write key,
/// bob (Consumer) with a read key, carol on the other domain with a read key.
struct Setup {
    alice_key: (String, String),
    bob_key: (String, String),
    carol_key: (String, String),
}

fn key(env: &Env, user: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["key", "create", "--user", user];
    args.extend_from_slice(extra);
    let v = env.json(&args);
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    )
}

fn setup(env: &Env) -> Setup {
    env.init();
    let o = env.run_stdin(
        &[
            "user",
            "add",
            "alice@free.example.com",
            "--domain",
            DOMAIN,
            "--role",
            "Administrator",
            "--name",
            "Alice",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    env.ok(&["user", "add", "bob@free.example.com", "--domain", DOMAIN]);
    env.ok(&["user", "add", "carol@other.example.org", "--domain", OTHER]);
    Setup {
        alice_key: key(env, "alice@free.example.com", &["--scopes", "write"]),
        bob_key: key(env, "bob@free.example.com", &[]),
        carol_key: key(env, "carol@other.example.org", &[]),
    }
}

/// The service's RFC 8414 metadata document.
fn metadata(s: &Server) -> Value {
    body_json(
        s.http
            .get(s.url("/.well-known/oauth-authorization-server"))
            .send()
            .unwrap(),
    )
}

/// Verifies a JWT with `jsonwebtoken` and the published JWK Set only.
fn verify_with_jwks(s: &Server, jwt: &str, aud: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWK Set");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let meta = metadata(s);
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[meta["issuer"].as_str().unwrap()]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .expect("token verifies against the JWK Set")
        .claims
}

fn cc(s: &Server, k: &(String, String), scopes: &[&str]) -> oauth2::basic::BasicTokenResponse {
    let client = s.oauth(&k.0, &k.1);
    let mut req = client.exchange_client_credentials();
    for sc in scopes {
        req = req.add_scope(Scope::new(sc.to_string()));
    }
    req.request(&http_client("127.0.0.1"))
        .expect("client_credentials grant")
}

fn get_stations(s: &Server, tok: &str) -> reqwest::blocking::Response {
    s.http
        .get(s.url("/api/v1/stations"))
        .bearer_auth(tok)
        .send()
        .unwrap()
}

fn post_form(s: &Server, path: &str, form: &[(&str, &str)]) -> reqwest::blocking::Response {
    s.http.post(s.url(path)).form(form).send().unwrap()
}

fn body_json(r: reqwest::blocking::Response) -> Value {
    let t = r.text().unwrap();
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

/// Polls until the token is refused by the resource; returns how long it took.
fn until_refused(s: &Server, tok: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if get_stations(s, tok).status() == 401 {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

both!(client_credentials_and_resource, |env| {
    let k = setup(env);
    let s = Server::start(env, None);

    // Discovery.
    let meta = metadata(&s);
    assert!(
        meta["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/auth/token")
    );
    // The public sign-in client authenticates with nothing (RFC 8414 §2).
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );

    // Basic auth (oauth2's default), full key scopes, verified from the JWK Set.
    let t = cc(&s, &k.alice_key, &[]);
    assert!(
        t.refresh_token().is_some(),
        "keys issue refresh tokens by default"
    );
    let claims = verify_with_jwks(&s, t.access_token().secret(), DOMAIN);
    assert_eq!(claims["client_id"], json!(k.alice_key.0));
    assert_eq!(claims["scope"], json!("read write"));

    // Credentials in the body; a narrower scope is granted, a wider one refused.
    let t2 = s
        .oauth(&k.alice_key.0, &k.alice_key.1)
        .set_auth_type(AuthType::RequestBody)
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request(&http_client("127.0.0.1"))
        .unwrap();
    assert_eq!(t2.scopes().unwrap()[0].as_str(), "read");
    let r = post_form(
        &s,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &k.alice_key.0),
            ("client_secret", &k.alice_key.1),
            ("scope", "admin"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r)["error"], "invalid_scope");
    // An unknown scope is named with the known ones; an API client is not told
    // which command adds one.
    let r = post_form(
        &s,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &k.alice_key.0),
            ("client_secret", &k.alice_key.1),
            ("scope", "read bulk"),
        ],
    );
    assert_eq!(r.status(), 400);
    let v = body_json(r);
    assert_eq!(v["error"], "invalid_scope", "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(
        d.contains("\"bulk\"") && d.contains("known scopes") && !d.contains("keyward"),
        "{d}"
    );

    // A key that expires in 10 minutes grants tokens that end with it, not in an hour;
    // its refresh tokens do too.
    let brief = key(env, "alice@free.example.com", &["--expires-in", "10m"]);
    let key_exp = keyward::model::now() + 600;
    let t = cc(&s, &brief, &[]);
    let lasts = t.expires_in().unwrap().as_secs();
    assert!((590..=600).contains(&lasts), "expires_in {lasts}");
    let claims = verify_with_jwks(&s, t.access_token().secret(), DOMAIN);
    assert!(claims["exp"].as_i64().unwrap() <= key_exp, "{claims}");
    let t = s
        .oauth(&brief.0, &brief.1)
        .exchange_refresh_token(t.refresh_token().unwrap())
        .request(&http_client("127.0.0.1"))
        .unwrap();
    assert!(t.expires_in().unwrap().as_secs() <= 600);

    // JSON bodies work too, and the token response is not cacheable.
    let r = s
        .http
        .post(s.url("/api/auth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": k.bob_key.0, "client_secret": k.bob_key.1}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let bob_token = body_json(r)["access_token"].as_str().unwrap().to_string();

    // Wrong secret: invalid_client, 401, with a Basic challenge when Basic was used.
    let r = s
        .http
        .post(s.url("/auth/token"))
        .basic_auth(&k.alice_key.0, Some("kws_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(body_json(r)["error"], "invalid_client");
    let err = s
        .oauth("kw_unknown", "x")
        .exchange_client_credentials()
        .request(&http_client("127.0.0.1"))
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_client"), "{err:?}");
    let r = post_form(
        &s,
        "/authorization/token",
        &[
            ("grant_type", "magic"),
            ("client_id", &k.bob_key.0),
            ("client_secret", &k.bob_key.1),
        ],
    );
    assert_eq!(body_json(r)["error"], "unsupported_grant_type");

    // A key set not to issue refresh tokens.
    let nr = key(env, "bob@free.example.com", &["--no-refresh"]);
    assert!(cc(&s, &nr, &[]).refresh_token().is_none());

    // last_used_at is recorded.
    let keys = env.json(&["key", "list", "--user", "alice@free.example.com"]);
    assert!(!keys[0]["last_used_at"].is_null(), "{keys}");
    // Every token is recorded before it is handed out.
    let list = env.json(&["token", "list", "--user", "alice@free.example.com"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["jti"] == claims["jti"])
    );

    // The protected resource.
    let r = get_stations(&s, t.access_token().secret());
    assert_eq!(r.status(), 200);
    let v = body_json(r);
    let names: Vec<&str> = v["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Alice") && !names.iter().any(|n| n.contains("carol")),
        "{names:?}"
    );
    let r = s
        .http
        .post(s.url("/api/v1/stations"))
        .bearer_auth(t.access_token().secret())
        .json(&json!({"name": "Alice GmbH", "euVatId": "DE 123 456 789"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(body_json(r)["station"]["euVatId"], "DE123456789");
    // A registration number needs its country; the error speaks the API's names.
    let r = s
        .http
        .post(s.url("/api/v1/stations"))
        .bearer_auth(t.access_token().secret())
        .json(&json!({"name": "Alice KG", "rn": "HRB 1"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let v = body_json(r);
    assert!(!v.to_string().contains("--"), "{v}");
    assert!(
        v["errors"]["rn"].as_str().unwrap().contains("country code"),
        "{v}"
    );
    // read-only token: 403 insufficient_scope.
    let r = s
        .http
        .post(s.url("/api/v1/stations"))
        .bearer_auth(&bob_token)
        .json(&json!({"name": "Bob's"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // No token, a garbage token, a token of an unknown domain's shape.
    let r = s.http.get(s.url("/api/v1/stations")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = get_stations(&s, "not.a.jwt");
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(
        body_json(r),
        json!({"status": "error", "msg": "Invalid token"})
    );
});

both!(refresh_rotation_and_reuse, |env| {
    let k = setup(env);
    let s = Server::start(env, None);
    let http = http_client("127.0.0.1");
    let client = s.oauth(&k.alice_key.0, &k.alice_key.1);
    let t1 = cc(&s, &k.alice_key, &[]);
    let r1 = t1.refresh_token().unwrap().clone();
    let t2 = client.exchange_refresh_token(&r1).request(&http).unwrap();
    let r2 = t2
        .refresh_token()
        .expect("rotation returns a new refresh token")
        .clone();
    assert_ne!(r1.secret(), r2.secret());
    verify_with_jwks(&s, t2.access_token().secret(), DOMAIN);
    // Narrowing on refresh.
    let t3 = client
        .exchange_refresh_token(&r2)
        .add_scope(Scope::new("read".into()))
        .request(&http)
        .unwrap();
    assert_eq!(t3.scopes().unwrap()[0].as_str(), "read");
    let r3 = t3.refresh_token().unwrap().clone();
    // Another client cannot use it.
    let err = s
        .oauth(&k.bob_key.0, &k.bob_key.1)
        .exchange_refresh_token(&r3)
        .request(&http)
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    // Reuse of a spent token revokes the family: r3 (unspent) dies too, and the
    // family's access tokens are refused by the resource.
    let err = client
        .exchange_refresh_token(&r1)
        .request(&http)
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    let err = client
        .exchange_refresh_token(&r3)
        .request(&http)
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    // At once: the server took the revocation in before it answered the reuse (the
    // tick, which brings other processes' revocations, runs every 500 ms).
    assert_eq!(get_stations(&s, t2.access_token().secret()).status(), 401);
    assert_eq!(get_stations(&s, t3.access_token().secret()).status(), 401);
    // Recorded as theft detection, not as an administrator's revocation.
    let v = env.json(&["token", "inspect", t3.access_token().secret()]);
    assert_eq!(v["revoke_reason"], "refresh token reused", "{v}");
    assert_eq!(v["revoked_by"], "keyward", "{v}");
    // Unknown refresh token.
    let err = client
        .exchange_refresh_token(&RefreshToken::new("kwr_nope".into()))
        .request(&http)
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    // Asking a refresh for more than the token carries: invalid_scope (RFC 6749 §5.2).
    let t4 = cc(&s, &k.alice_key, &["read"]);
    let narrowed = |scope: &str| {
        let r = post_form(
            &s,
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t4.refresh_token().unwrap().secret()),
                ("client_id", &k.alice_key.0),
                ("client_secret", &k.alice_key.1),
                ("scope", scope),
            ],
        );
        assert_eq!(r.status(), 400);
        body_json(r)
    };
    assert_eq!(narrowed("read write")["error"], "invalid_scope");
    // An unknown one is named; an API client is not told which command adds it.
    let v = narrowed("bulk");
    assert_eq!(v["error"], "invalid_scope", "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.contains("\"bulk\"") && !d.contains("keyward"), "{d}");
    // Without client authentication, an API key's refresh token is the client's
    // failure, not the grant's (and the token stays usable by its client).
    let r = post_form(
        &s,
        "/auth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t4.refresh_token().unwrap().secret()),
        ],
    );
    assert_eq!(r.status(), 401);
    let e = body_json(r);
    assert_eq!(e["error"], "invalid_client");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("must authenticate"),
        "{e}"
    );
    client
        .exchange_refresh_token(t4.refresh_token().unwrap())
        .request(&http)
        .expect("still usable by its own client");
    // A narrower scope narrows that access token only: the new refresh token carries
    // the scope of the one presented (RFC 6749 §6), so the next refresh may have it all.
    let t5 = cc(&s, &k.alice_key, &["write"]);
    let t6 = client
        .exchange_refresh_token(t5.refresh_token().unwrap())
        .add_scope(Scope::new("read".into()))
        .request(&http)
        .expect("a narrower refresh");
    let scope_of = |t: &oauth2::basic::BasicTokenResponse| -> Vec<String> {
        let mut v: Vec<String> = t.scopes().unwrap().iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(scope_of(&t6), ["read"]);
    let t7 = client
        .exchange_refresh_token(t6.refresh_token().unwrap())
        .add_scope(Scope::new("write".into()))
        .request(&http)
        .expect("the whole grant again");
    assert_eq!(scope_of(&t7), ["read", "write"]);
});

both!(concurrent_refreshes_all_succeed, |env| {
    // Several refreshes at once, each in its own write transaction: one used to take a
    // second pooled connection inside its transaction, and with the pool held by the
    // others (waiting for the write lock) all of them stalled for the 10 s busy timeout,
    // half then failing.
    let k = setup(env);
    let s = Server::start(env, None);
    let tokens: Vec<String> = (0..8)
        .map(|_| {
            let t = cc(&s, &k.alice_key, &[]);
            t.refresh_token().unwrap().secret().clone()
        })
        .collect();
    let start = std::sync::Barrier::new(tokens.len());
    let answers: Vec<(u16, Value)> = std::thread::scope(|sc| {
        let handles: Vec<_> = tokens
            .iter()
            .map(|rt| {
                let (s, k, start) = (&s, &k, &start);
                sc.spawn(move || {
                    start.wait();
                    let r = post_form(
                        s,
                        "/auth/token",
                        &[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt),
                            ("client_id", &k.alice_key.0),
                            ("client_secret", &k.alice_key.1),
                        ],
                    );
                    (r.status().as_u16(), body_json(r))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        verify_with_jwks(&s, body["access_token"].as_str().unwrap(), DOMAIN);
    }
});

both!(introspection_and_revocation, |env| {
    let k = setup(env);
    let s = Server::start(env, None);
    let t = cc(&s, &k.alice_key, &[]);
    let tok = t.access_token().secret().clone();
    let intro = |key: &(String, String), token: &str| {
        s.http
            .post(s.url("/oauth/introspect"))
            .basic_auth(&key.0, Some(&key.1))
            .form(&[("token", token)])
            .send()
            .unwrap()
    };
    let v = body_json(intro(&k.bob_key, &tok));
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], json!(k.alice_key.0));
    // Another user's address is an operator's business, not a client's: `sub` only.
    assert!(v.get("username").is_none(), "{v}");
    assert_eq!(v["aud"], DOMAIN);
    // Another domain's client learns nothing.
    assert_eq!(
        body_json(intro(&k.carol_key, &tok)),
        json!({"active": false})
    );
    // Client authentication is required.
    let r = post_form(&s, "/oauth/introspect", &[("token", &tok)]);
    assert_eq!(r.status(), 401);
    assert_eq!(
        body_json(intro(&k.bob_key, "garbage")),
        json!({"active": false})
    );

    // Revocation (RFC 7009): only by the client it was issued to (§2.1: another
    // client's request is refused); an unknown token is 200.
    let revoke = |key: &(String, String), token: &str| {
        s.http
            .post(s.url("/oauth/revoke"))
            .basic_auth(&key.0, Some(&key.1))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .unwrap()
    };
    let r = revoke(&k.bob_key, &tok);
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r)["error"], "unauthorized_client");
    assert_eq!(body_json(intro(&k.bob_key, &tok))["active"], true);
    // Another domain's client: answered as for an unknown token, and nothing changes
    // (nothing crosses domains, not even whether the token exists).
    let r = revoke(&k.carol_key, &tok);
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(intro(&k.bob_key, &tok))["active"], true);
    assert_eq!(revoke(&k.alice_key, &tok).status(), 200);
    assert_eq!(body_json(intro(&k.bob_key, &tok)), json!({"active": false}));
    // Revoked through this service: refused by it from the very next request.
    assert_eq!(get_stations(&s, &tok).status(), 401);
    assert_eq!(revoke(&k.alice_key, "unknown-token").status(), 200);
    // A refresh token is revoked with its family.
    let t2 = cc(&s, &k.alice_key, &[]);
    let rt = t2.refresh_token().unwrap().secret().clone();
    // Introspected by its own client, a live refresh token is active (RFC 7662
    // token_type refresh_token); to any other client it is not.
    let v = body_json(intro(&k.alice_key, &rt));
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["token_type"], "refresh_token");
    assert!(v.get("jti").is_none(), "no null members: {v}");
    assert_eq!(v["client_id"], json!(k.alice_key.0));
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["aud"], DOMAIN);
    assert!(v["exp"].as_i64().unwrap() > v["iat"].as_i64().unwrap());
    assert_eq!(body_json(intro(&k.bob_key, &rt)), json!({"active": false}));
    assert_eq!(revoke(&k.bob_key, &rt).status(), 400);
    assert_eq!(body_json(intro(&k.alice_key, &rt))["active"], true);
    assert_eq!(revoke(&k.alice_key, &rt).status(), 200);
    assert_eq!(
        body_json(intro(&k.alice_key, &rt)),
        json!({"active": false})
    );
    let err = s
        .oauth(&k.alice_key.0, &k.alice_key.1)
        .exchange_refresh_token(&RefreshToken::new(rt))
        .request(&http_client("127.0.0.1"))
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    // The family's access token went with it, recorded as the client's doing.
    let t2 = t2.access_token().secret().clone();
    assert_eq!(
        body_json(intro(&k.alice_key, &t2)),
        json!({"active": false})
    );
    let why = env.ok(&["token", "inspect", &t2]);
    let reason = format!("revoked by client {}", k.alice_key.0);
    assert!(why.contains("INACTIVE") && why.contains(&reason), "{why}");
    let v = env.json(&["token", "inspect", &t2]);
    assert_eq!(
        (&v["active"], &v["reason"]),
        (&json!(false), &json!("revoked"))
    );
    assert_eq!(v["revoke_reason"], json!(reason), "{v}");
    assert!(
        v["revoked_by"]
            .as_str()
            .unwrap()
            .starts_with("keyward-serve@"),
        "{v}"
    );
    assert!(v["revoked_at"].as_str().unwrap().ends_with('Z'), "{v}");
    // Revocations are audited.
    let audit = env.json(&["audit", "--since", "1h"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "token.revoke")
            .count()
            >= 2,
        "{audit}"
    );
});

both!(cli_revocation_seen_within_a_second, |env| {
    let k = setup(env);
    let s = Server::start(env, None);
    let t = cc(&s, &k.bob_key, &[]);
    let tok = t.access_token().secret().clone();
    assert_eq!(get_stations(&s, &tok).status(), 200);
    let jti = verify_with_jwks(&s, &tok, DOMAIN)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["token", "revoke", &jti, "--reason", "test"]);
    let took = until_refused(&s, &tok, Duration::from_secs(2))
        .expect("the running server refuses a token revoked through the CLI");
    assert!(took <= Duration::from_millis(1000), "took {took:?}");
    // Deleting a key through the CLI stops new grants at once (cache re-validated).
    env.ok(&["key", "rm", &k.bob_key.0]);
    let r = post_form(
        &s,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &k.bob_key.0),
            ("client_secret", &k.bob_key.1),
        ],
    );
    assert_eq!(r.status(), 401);
});

both!(signup_login_renew_and_self_service, |env| {
    let k = setup(env);
    let s = Server::start(env, None);
    let signup = |host: &str, body: Value| {
        s.http
            .post(s.url("/signup"))
            .header("host", host)
            .json(&body)
            .send()
            .unwrap()
    };
    let r = signup(
        DOMAIN,
        json!({"email": "dave@free.example.com", "password": "s3cret-enough", "name": "Dave"}),
    );
    assert_eq!(r.status(), 201);
    let first = body_json(r);
    // Created in the Host's domain with the default role, pending API access, no token.
    let u = env.json(&["user", "show", "dave@free.example.com"]);
    assert_eq!(u["domain"], DOMAIN);
    assert_eq!(u["role"], "Consumer");
    assert_eq!(u["api_access"], "pending");
    assert_eq!(u["stations"].as_array().unwrap().len(), 1);
    assert_eq!(u["active_tokens"], 0);
    // Duplicate: same answer, nothing revealed.
    let r = signup(
        DOMAIN,
        json!({"email": "DAVE@free.example.com", "password": "another-pass"}),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(body_json(r), first);
    // Validation: 422 with field messages.
    let r = signup(
        DOMAIN,
        json!({"email": "not-an-email", "password": "s3cret-enough"}),
    );
    assert_eq!(r.status(), 422);
    assert!(body_json(r)["errors"]["email"].is_string());
    let r = signup(
        DOMAIN,
        json!({"email": "erin@free.example.com", "password": "short"}),
    );
    assert_eq!(r.status(), 422);
    assert!(body_json(r)["errors"]["password"].is_string());
    let r = signup(DOMAIN, json!({}));
    assert_eq!(r.status(), 422);
    let e = body_json(r)["errors"].clone();
    assert_eq!(
        (e["email"].as_str(), e["password"].as_str()),
        (Some("required"), Some("required"))
    );
    // The initial station may carry its identifiers (normalised), so a participant is
    // recognised from the first sign-in; bad ones are named like any field.
    let r = signup(
        DOMAIN,
        json!({"email": "vat@free.example.com", "password": "s3cret-enough",
               "euVatId": "de 123 456 789", "rn": "HRB 42", "countryCode": "de"}),
    );
    assert_eq!(r.status(), 201);
    let st = &env.json(&["user", "show", "vat@free.example.com"])["stations"][0];
    assert_eq!(
        (
            &st["eu_vat_id"],
            &st["registration_number"],
            &st["country_code"]
        ),
        (&json!("DE123456789"), &json!("HRB 42"), &json!("DE")),
        "{st}"
    );
    let r = signup(
        DOMAIN,
        json!({"email": "ids@free.example.com", "password": "s3cret-enough",
               "euVatId": "nonsense!", "rn": "HRB 43"}),
    );
    assert_eq!(r.status(), 422);
    let b = body_json(r);
    assert!(b["errors"]["euVatId"].is_string(), "{b}");
    assert!(
        b["errors"]["rn"].as_str().unwrap().contains("country code"),
        "{b}"
    );
    assert!(!b.to_string().contains("--"), "{b}");
    // Every bad field is named at once, and nothing is created.
    let r = signup(
        DOMAIN,
        json!({"email": "fay@@free", "password": "short", "name": "x".repeat(300), "station": "\u{7}bell"}),
    );
    assert_eq!(r.status(), 422);
    let b = body_json(r);
    for field in ["email", "password", "name", "station"] {
        assert!(b["errors"][field].is_string(), "{field} not named: {b}");
    }
    assert!(
        !b.to_string().contains("short"),
        "the password is echoed: {b}"
    );
    assert_eq!(env.json(&["user", "list", "--search", "fay"]), json!([]));
    // Unknown host and no --domain: refused.
    let r = signup(
        "unknown.example.net",
        json!({"email": "x@y.example", "password": "s3cret-enough"}),
    );
    assert_eq!(r.status(), 400);

    // Sign-in with the seeds' JSON shape.
    let login = |user: &str, pw: &str| {
        s.http
            .post(s.url("/consumer/login"))
            .header("host", DOMAIN)
            .json(&json!({"username": user, "password": pw}))
            .send()
            .unwrap()
    };
    let r = login("Dave@free.example.com", "s3cret-enough");
    assert_eq!(r.status(), 200);
    let l = body_json(r);
    let tok = l["token"].as_str().unwrap().to_string();
    assert!(l["expires_in"].as_i64().unwrap() > 0);
    let claims = verify_with_jwks(&s, &tok, DOMAIN);
    assert_eq!(claims["client_id"], "keyward-login");
    for (u, p) in [
        ("dave@free.example.com", "wrong-password"),
        ("nobody@free.example.com", "s3cret-enough"),
        ("bob@free.example.com", "anything"),
    ] {
        let r = login(u, p);
        assert_eq!(r.status(), 401);
        assert_eq!(
            body_json(r),
            json!({"status": "error", "msg": "Invalid username or password"})
        );
    }
    // Renewal rotates; the old refresh token is spent.
    let renew = |rt: &str| {
        s.http
            .post(s.url("/api/auth/renew"))
            .json(&json!({"refresh_token": rt}))
            .send()
            .unwrap()
    };
    let r = renew(l["refresh_token"].as_str().unwrap());
    assert_eq!(r.status(), 200);
    let l2 = body_json(r);
    assert!(l2["token"].is_string() && l2["refresh_token"].is_string());
    assert_eq!(renew(l["refresh_token"].as_str().unwrap()).status(), 401);
    // That reuse revoked the family: the renewed token is refused at once.
    assert_eq!(
        get_stations(&s, l2["token"].as_str().unwrap()).status(),
        401
    );
    // A key's refresh token cannot be renewed without the key's secret.
    let kt = cc(&s, &k.bob_key, &[]);
    assert_eq!(renew(kt.refresh_token().unwrap().secret()).status(), 401);
    // Signing out: the public sign-in client revokes its own tokens with its client id
    // alone (RFC 7009 §2.1 asks credentials of confidential clients only) ...
    let public_revoke = |token: &str| {
        s.http
            .post(s.url("/oauth/revoke"))
            .header("host", DOMAIN)
            .form(&[("client_id", "keyward-login"), ("token", token)])
            .send()
            .unwrap()
    };
    let l3 = body_json(login("dave@free.example.com", "s3cret-enough"));
    let rt3 = l3["refresh_token"].as_str().unwrap();
    assert_eq!(public_revoke(rt3).status(), 200);
    assert_eq!(renew(rt3).status(), 401);
    assert_eq!(
        get_stations(&s, l3["token"].as_str().unwrap()).status(),
        401
    );
    // ... but not a key's, whose client must authenticate.
    let r = public_revoke(kt.access_token().secret());
    assert_eq!(r.status(), 401);
    let e = body_json(r);
    assert_eq!(e["error"], "invalid_client", "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("must authenticate")
    );
    assert_eq!(get_stations(&s, kt.access_token().secret()).status(), 200);

    // Self-service tokens (with a fresh sign-in, since the reuse above revoked the family).
    let tok = body_json(login("dave@free.example.com", "s3cret-enough"))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .http
        .post(s.url("/api/v1/tokens"))
        .bearer_auth(&tok)
        .json(&json!({"scope": "read", "ttl": "30d"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let personal = body_json(r);
    assert_eq!(personal["scope"], "read");
    let r = s
        .http
        .post(s.url("/api/v1/tokens"))
        .bearer_auth(&tok)
        .json(&json!({"scope": "write"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422, "beyond the role");
    // Errors speak the API's names, not the CLI's flags.
    let r = s
        .http
        .post(s.url("/api/v1/tokens"))
        .bearer_auth(&tok)
        .json(&json!({"scope": "read", "ttl": "400d"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let v = body_json(r);
    assert!(
        v["errors"]["ttl"].as_str().unwrap().contains("max_ttl"),
        "{v}"
    );
    assert!(!v.to_string().contains("--"), "{v}");
    let list = body_json(
        s.http
            .get(s.url("/api/v1/tokens"))
            .bearer_auth(&tok)
            .send()
            .unwrap(),
    );
    assert!(
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["jti"] == personal["jti"])
    );
    assert_eq!(
        get_stations(&s, personal["access_token"].as_str().unwrap()).status(),
        200
    );
    // Only login tokens may use self-service; only one's own tokens can be revoked.
    let r = s
        .http
        .get(s.url("/api/v1/tokens"))
        .bearer_auth(kt.access_token().secret())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let bob_jti = verify_with_jwks(&s, kt.access_token().secret(), DOMAIN)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/tokens/{bob_jti}")))
        .bearer_auth(&tok)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .http
        .delete(s.url(&format!(
            "/api/v1/tokens/{}",
            personal["jti"].as_str().unwrap()
        )))
        .bearer_auth(&tok)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get_stations(&s, personal["access_token"].as_str().unwrap()).status(),
        401,
        "revoked here, refused here at once"
    );

    // The password grant is off by default; `config set` turns it on for the running server.
    let http = http_client(DOMAIN);
    let pw_client = BasicClient::new(ClientId::new("keyward-login".into()))
        .set_token_uri(TokenUrl::new(s.url("/auth/token")).unwrap());
    let user = ResourceOwnerUsername::new("dave@free.example.com".into());
    let pass = ResourceOwnerPassword::new("s3cret-enough".into());
    let err = pw_client
        .exchange_password(&user, &pass)
        .request(&http)
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("unsupported_grant_type"),
        "{err:?}"
    );
    env.ok(&["config", "set", "password_grant", "on"]);
    let start = Instant::now();
    let t = loop {
        match pw_client.exchange_password(&user, &pass).request(&http) {
            Ok(t) => break t,
            Err(_) if start.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("password grant stayed off: {e:?}"),
        }
    };
    assert_eq!(
        verify_with_jwks(&s, t.access_token().secret(), DOMAIN)["client_id"],
        "keyward-login"
    );
    let bad = ResourceOwnerPassword::new("wrong".into());
    let err = pw_client
        .exchange_password(&user, &bad)
        .request(&http)
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");

    // Public lookup by affiliate id.
    let aff = env.json(&["affiliate", "show", "dave@free.example.com"]);
    let id = aff["affiliate_id"].as_str().unwrap();
    let r = s
        .http
        .get(s.url(&format!("/api/lookup?affiliateId={id}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = body_json(r);
    assert_eq!(v["name"], "Dave");
    assert!(v.get("email").is_none());
    // A user added without a name got a station named after the email: the lookup
    // does not give it away there either.
    env.ok(&[
        "user",
        "add",
        "Nameless@free.example.com",
        "--domain",
        DOMAIN,
    ]);
    let aff = env.json(&["affiliate", "show", "nameless@free.example.com"]);
    let r = s
        .http
        .get(s.url(&format!(
            "/api/lookup?affiliateId={}",
            aff["affiliate_id"].as_str().unwrap()
        )))
        .send()
        .unwrap();
    let v = body_json(r);
    assert_eq!(v["stations"].as_array().unwrap().len(), 1, "{v}");
    assert!(!v.to_string().to_lowercase().contains("nameless@"), "{v}");
    let r = s
        .http
        .get(s.url(&format!("/api/lookup?affiliateId={id}")))
        .header("host", OTHER)
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "an affiliate id is only valid on its own domain"
    );
    let r = s
        .http
        .get(s.url("/api/lookup?affiliateId=00000000-0000-4000-8000-000000000000"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s.http.get(s.url("/api/lookup")).send().unwrap();
    assert_eq!(r.status(), 400);
});

both!(domain_fallback, |env| {
    setup(env);
    let s = Server::start(env, Some(DOMAIN));
    let r = s
        .http
        .post(s.url("/signup"))
        .json(&json!({"email": "frank@free.example.com", "password": "s3cret-enough"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    // A Host naming a known domain wins over --domain.
    let r = s
        .http
        .post(s.url("/signup"))
        .header("host", format!("{OTHER}:443"))
        .form(&[
            ("email", "frank@other.example.org"),
            ("password", "s3cret-enough"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        env.json(&["user", "show", "frank@other.example.org"])["domain"],
        OTHER
    );
    // X-Forwarded-Host is ignored without --trust-proxy.
    let r = s
        .http
        .post(s.url("/signup"))
        .header("x-forwarded-host", OTHER)
        .json(&json!({"email": "gina@free.example.com", "password": "s3cret-enough"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        env.json(&["user", "show", "gina@free.example.com"])["domain"],
        DOMAIN
    );
    // A JSON member that Keyward reads, sent as a list or an object, is named as such
    // (not called missing), and nothing is created.
    let r = s
        .http
        .post(s.url("/signup"))
        .json(&json!({"email": "hank@free.example.com", "password": "s3cret-enough", "name": {"first": "Hank"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let v = body_json(r);
    assert_eq!(v["errors"]["name"], "a string", "{v}");
    assert_eq!(v["msg"], "name must be a string, not an object", "{v}");
    env.fails(&["user", "show", "hank@free.example.com"], 1);
    let r = s
        .http
        .post(s.url("/consumer/login"))
        .json(&json!({"username": ["frank@free.example.com"], "password": "s3cret-enough"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r)["msg"], "username must be a string, not a list");
    let r = s
        .http
        .post(s.url("/auth/token"))
        .json(&json!({"grant_type": {"client_credentials": true}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let v = body_json(r);
    assert_eq!(v["error"], "invalid_request", "{v}");
    assert_eq!(
        v["error_description"],
        "grant_type must be a string, not an object"
    );
});

both!(rate_limits, |env| {
    let k = setup(env);
    env.ok(&["config", "set", "rate_limit_per_client", "3"]);
    env.ok(&["config", "set", "rate_limit_per_address", "8"]);
    let s = Server::start(env, None);
    let grant = |key: &(String, String)| {
        s.http
            .post(s.url("/auth/token"))
            .basic_auth(&key.0, Some(&key.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap()
    };
    // Client ids are public (every token names one): wrong secrets spend the
    // sender's budget, not the client's, so nobody can lock a client out.
    let forged = (k.alice_key.0.clone(), "kws_wrong".to_string());
    for _ in 0..2 {
        assert_eq!(grant(&forged).status(), 401);
    }
    for _ in 0..3 {
        assert_eq!(grant(&k.alice_key).status(), 200);
    }
    let r = grant(&k.alice_key);
    assert_eq!(r.status(), 429, "per client");
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    assert_eq!(grant(&k.bob_key).status(), 200);
    assert_eq!(grant(&k.bob_key).status(), 200);
    let r = grant(&k.bob_key);
    assert_eq!(r.status(), 429, "per address");
    assert!(r.headers().contains_key("retry-after"));
    // The JSON API's endpoints answer in their own shape, not OAuth's, and a sign-in
    // answer is never cached, even an error.
    let r = s
        .http
        .post(s.url("/consumer/login"))
        .header("host", DOMAIN)
        .json(&json!({"username": "alice@free.example.com", "password": "nope"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v = body_json(r);
    assert_eq!(v["status"], "error", "{v}");
    assert!(v["msg"].as_str().unwrap().contains("retry in"), "{v}");
    // A key created with --rate-exempt (by an admin) passes both limits, but only
    // with its secret: its id alone exempts nothing.
    let exempt = key(env, "alice@free.example.com", &["--rate-exempt"]);
    let r = grant(&(exempt.0.clone(), "kws_wrong".into()));
    assert_eq!(r.status(), 429, "an exempt key's id without its secret");
    for _ in 0..8 {
        assert_eq!(grant(&exempt).status(), 200, "exempt keys skip the limits");
    }
    drop(s);

    // With limits on, the limiter authenticates the client and the endpoint uses that
    // proof: a wrong secret is still refused everywhere, the right one still works.
    env.ok(&["config", "set", "rate_limit_per_address", "100"]);
    let s = Server::start(env, None);
    let form = |path: &str, secret: &str, fields: &[(&str, &str)]| {
        s.http
            .post(s.url(path))
            .basic_auth(&exempt.0, Some(secret))
            .form(fields)
            .send()
            .unwrap()
    };
    let t = body_json(form(
        "/auth/token",
        &exempt.1,
        &[("grant_type", "client_credentials")],
    ));
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(
        form("/oauth/introspect", "kws_wrong", &[("token", at)]).status(),
        401
    );
    let r = form("/oauth/introspect", &exempt.1, &[("token", at)]);
    assert_eq!(body_json(r)["active"], true);
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    assert_eq!(form("/auth/token", "kws_wrong", &refresh).status(), 401);
    assert_eq!(form("/auth/token", &exempt.1, &refresh).status(), 200);
    assert_eq!(
        form("/oauth/revoke", "kws_wrong", &[("token", at)]).status(),
        401
    );
    assert_eq!(
        form("/oauth/revoke", &exempt.1, &[("token", at)]).status(),
        200
    );
    drop(s);

    // Self-service minting is limited too: per signed-in user and per address.
    env.ok(&["config", "set", "rate_limit_per_address", "6"]);
    let s = Server::start(env, None);
    let tok = body_json(
        s.http
            .post(s.url("/consumer/login"))
            .header("host", DOMAIN)
            .json(&json!({"username": "alice@free.example.com", "password": PASSWORD}))
            .send()
            .unwrap(),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mint = || {
        s.http
            .post(s.url("/api/v1/tokens"))
            .bearer_auth(&tok)
            .json(&json!({"scope": "read"}))
            .send()
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(mint().status(), 201);
    }
    let r = mint();
    assert_eq!(r.status(), 429, "per user");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(body_json(r)["status"], "error");
});

both!(a_key_that_grants_nothing_is_refused, |env| {
    setup(env);
    env.ok(&["role", "add", "Bare", "--scopes", "read"]);
    env.ok(&[
        "user",
        "add",
        "dee@free.example.com",
        "--domain",
        DOMAIN,
        "--role",
        "Bare",
    ]);
    let k = key(env, "dee@free.example.com", &[]);
    let s = Server::start(env, None);
    cc(&s, &k, &[]);
    // The role loses its last scope: the key now grants nothing, and says so
    // instead of handing out a token with an empty scope.
    env.ok(&["role", "revoke", "Bare", "read"]);
    let r = post_form(
        &s,
        "/auth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &k.0),
            ("client_secret", &k.1),
        ],
    );
    assert_eq!(r.status(), 400);
    let v = body_json(r);
    assert_eq!(v["error"], "invalid_scope", "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("allows no scope"),
        "{v}"
    );
});

both!(behind_a_trusted_proxy, |env| {
    let k = setup(env);
    env.ok(&["config", "set", "rate_limit_per_client", "0"]);
    env.ok(&["config", "set", "rate_limit_per_address", "2"]);
    let s = Server::start_full(env, Some(DOMAIN), None, &["--trust-proxy"]);
    // The proxy names the domain: the entry it appended, the last.
    let r = s
        .http
        .post(s.url("/signup"))
        .header("x-forwarded-host", format!("{DOMAIN}, {OTHER}"))
        .json(&json!({"email": "hal@other.example.org", "password": "s3cret-enough"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        env.json(&["user", "show", "hal@other.example.org"])["domain"],
        OTHER
    );
    // The client address is the entry the proxy appended, the last one: what the
    // client put before it does not buy it a fresh limit.
    let grant = |key: &(String, String), xff: &str| {
        s.http
            .post(s.url("/auth/token"))
            .basic_auth(&key.0, Some(&key.1))
            .header("x-forwarded-for", xff)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(grant(&k.alice_key, "198.51.100.1, 203.0.113.5"), 200);
    assert_eq!(grant(&k.bob_key, "198.51.100.2, 203.0.113.5"), 200);
    assert_eq!(
        grant(&k.alice_key, "198.51.100.3, 203.0.113.5"),
        429,
        "a spoofed first entry must not reset the per-address limit"
    );
    assert_eq!(grant(&k.bob_key, "203.0.113.6"), 200, "another address");
});

/// (method, path, content type, body, extra headers)
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    Vec<(&'static str, String)>,
);

both!(malformed_requests_never_fail_the_server, |env| {
    let k = setup(env);
    let s = Server::start(env, None);
    let basic = |v: &str| ("authorization", v.to_string());
    let cases: Vec<Case> = vec![
        ("POST", "/auth/token", None, vec![], vec![]),
        (
            "POST",
            "/auth/token",
            Some("text/plain"),
            b"grant_type=client_credentials".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/xml"),
            b"<x/>".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/json"),
            b"{not json".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/json"),
            b"[1,2]".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/json"),
            br#"{"grant_type":{"a":1}}"#.to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials&grant_type=password".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=%zz".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=%ff%fe".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"=x&&&".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials".to_vec(),
            vec![basic("Basic !!!")],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials".to_vec(),
            vec![basic("Basic Zm9v")],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials".to_vec(),
            vec![basic("Basic")],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=client_credentials".to_vec(),
            vec![basic("Basic OnNlY3JldA==")],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_secret={}",
                k.bob_key.1
            )
            .into_bytes(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&client_id=x",
                k.bob_key.0, k.bob_key.1
            )
            .into_bytes(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}&scope=%00%01",
                k.bob_key.0
            )
            .into_bytes(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope=read+READ+",
                k.bob_key.0, k.bob_key.1
            )
            .into_bytes(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            format!(
                "grant_type=client_credentials&client_id={}",
                "x".repeat(5000)
            )
            .into_bytes(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=refresh_token".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=refresh_token&refresh_token=x&client_id=kwapp_x".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=password&username=a&password=b".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/auth/token",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=authorization_code&code=x".to_vec(),
            vec![],
        ),
        ("GET", "/auth/token", None, vec![], vec![]),
        (
            "POST",
            "/oauth/introspect",
            Some("application/json"),
            b"{}".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/oauth/introspect",
            Some("application/x-www-form-urlencoded"),
            b"token=a&token=b".to_vec(),
            vec![basic("Basic a3dfeDp5")],
        ),
        (
            "POST",
            "/oauth/revoke",
            Some("application/x-www-form-urlencoded"),
            b"token=".to_vec(),
            vec![basic("Bearer x")],
        ),
        (
            "POST",
            "/consumer/login",
            Some("application/json"),
            b"null".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/consumer/login",
            Some("application/json"),
            br#"{"username":"a","password":"b"}"#.to_vec(),
            vec![],
        ),
        (
            "POST",
            "/api/auth/renew",
            Some("text/plain"),
            b"x".to_vec(),
            vec![],
        ),
        (
            "POST",
            "/signup",
            Some("application/json"),
            br#"{"email":"x@free.example.com","password":"p","email":"y"}"#.to_vec(),
            vec![("host", DOMAIN.into())],
        ),
        (
            "POST",
            "/signup",
            Some("application/json"),
            br#"{"email":"\u0000@free.example.com","password":"s3cret-enough"}"#.to_vec(),
            vec![("host", DOMAIN.into())],
        ),
        (
            "GET",
            "/api/v1/stations",
            None,
            vec![],
            vec![("authorization", "Bearer".into())],
        ),
        (
            "GET",
            "/api/v1/stations",
            None,
            vec![],
            vec![("authorization", "Bearer a.b.c".into())],
        ),
        (
            "GET",
            "/api/v1/stations",
            None,
            vec![],
            vec![("authorization", format!("Bearer {}", "A".repeat(6000)))],
        ),
        (
            "POST",
            "/api/v1/stations",
            Some("application/json"),
            b"{}".to_vec(),
            vec![],
        ),
        ("DELETE", "/api/v1/tokens/..%2F..", None, vec![], vec![]),
        ("GET", "/api/lookup?affiliateId=%ZZ", None, vec![], vec![]),
        (
            "GET",
            "/api/lookup?affiliateId=x&affiliateId=y",
            None,
            vec![],
            vec![],
        ),
        ("GET", "/nope", None, vec![], vec![]),
        // A request head over 64 KiB: 431, not buffered.
        (
            "GET",
            "/healthz",
            None,
            vec![],
            vec![("x-padding", "a".repeat(80 * 1024))],
        ),
    ];
    for (method, path, ct, body, headers) in cases {
        let mut rb = s
            .http
            .request(method.parse().unwrap(), s.url(path))
            .body(body.clone());
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        for (h, v) in &headers {
            rb = rb.header(*h, v);
        }
        let r = rb.send().unwrap();
        let st = r.status();
        let html = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        let text = r.text().unwrap_or_default();
        assert!(
            st.is_client_error(),
            "{method} {path} {ct:?} {:?} {headers:?}: {st} {text}",
            String::from_utf8_lossy(&body),
        );
        // Every error has a body a client can parse, in its endpoint's shape (the
        // consent page's are HTML pages; a 431 is hyper's, before any request exists).
        if !html && st != 431 {
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path}: {st} not JSON: {text:?}"));
            let oauth = path.starts_with("/auth/token") || path.starts_with("/oauth/");
            if oauth {
                assert!(v["error"].is_string(), "{method} {path}: {v}");
            } else {
                assert_eq!(v["status"], "error", "{method} {path}: {v}");
            }
        }
    }
    // Wrong methods: 405 with Allow and a JSON body of the endpoint's shape.
    let r = s.http.get(s.url("/auth/token")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_eq!(body_json(r)["error"], "invalid_request");
    let r = s.http.delete(s.url("/signup")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(body_json(r)["status"], "error");
    // A Host that is missing, doubled, contradicted by the request target or not a
    // host[:port] at all is ambiguous about the domain: 400, before any endpoint runs.
    for head in [
        "GET /healthz HTTP/1.1\r\n".to_string(),
        format!("GET /healthz HTTP/1.1\r\nHost: {DOMAIN}\r\nHost: {OTHER}\r\n"),
        format!("GET http://{OTHER}/healthz HTTP/1.1\r\nHost: {DOMAIN}\r\n"),
        "GET /healthz HTTP/1.1\r\nHost: free example\r\n".to_string(),
        "GET /healthz HTTP/1.1\r\nHost: fr\u{e9}e.example.com\r\n".to_string(),
        format!("GET /healthz HTTP/1.1\r\nHost: user@{DOMAIN}\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: {DOMAIN}:99999\r\n"),
        format!("GET /healthz HTTP/1.1\r\nHost: {DOMAIN}:0\r\n"),
    ] {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(c, "{head}Connection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 400"), "{head:?}: {out}");
        assert!(out.contains("\"status\":\"error\""), "{head:?}: {out}");
    }
    // Two Authorization headers: which credentials count is ambiguous (RFC 6750 §3.1:
    // invalid_request), whether or not either is good.
    for (method, path, shape) in [
        ("POST", "/auth/token", "\"error\":\"invalid_request\""),
        ("GET", "/api/v1/stations", "\"status\":\"error\""),
    ] {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nAuthorization: Basic eDp5\r\n\
             Authorization: Bearer x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 29\r\nConnection: close\r\n\r\ngrant_type=client_credentials"
        )
        .unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 400"), "{path}: {out}");
        assert!(
            out.contains(shape) && out.contains("more than one Authorization header"),
            "{path}: {out}"
        );
        // The protected resource's 400 has its challenge (RFC 6750 §3).
        assert_eq!(
            path == "/api/v1/stations",
            out.to_ascii_lowercase()
                .contains("www-authenticate: bearer realm=\"keyward\", error=\"invalid_request\""),
            "{path}: {out}"
        );
    }
    // A Bearer header whose token is not one token is malformed (400 invalid_request,
    // RFC 6750 §3.1); no token at all, or another scheme, is a bare challenge (401).
    for (auth, status, challenge) in [
        (
            "Bearer ",
            400,
            "Bearer realm=\"keyward\", error=\"invalid_request\"",
        ),
        (
            "Bearer a b",
            400,
            "Bearer realm=\"keyward\", error=\"invalid_request\"",
        ),
        ("Basic eDp5", 401, "Bearer realm=\"keyward\""),
        (
            "Bearer abc",
            401,
            "Bearer realm=\"keyward\", error=\"invalid_token\"",
        ),
    ] {
        let r = s
            .http
            .get(s.url("/api/v1/stations"))
            .header("authorization", auth)
            .send()
            .unwrap();
        assert_eq!(r.status(), status, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], challenge, "{auth:?}");
        assert_eq!(body_json(r)["status"], "error");
    }
    // A huge body is refused from its Content-Length, before it is read (raw TCP, so
    // the client cannot trip over the early answer while still sending).
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "POST /auth/token HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            64 * 1024 * 1024
        )
        .unwrap();
        c.write_all(&[b'a'; 1024]).unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    // A body over the limit that fits the socket buffers: 413 too.
    let r = Http::new()
        .post(s.url("/signup"))
        .header("content-type", "application/json")
        .body(vec![b' '; 65 * 1024])
        .send();
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
        assert_eq!(body_json(r)["status"], "error");
    }
    // The server is still fine (on a new connection: the server closes one whose body
    // it refused, and a pooled client may not have noticed yet).
    let fresh = Http::builder().pool_max_idle_per_host(0).build().unwrap();
    assert_eq!(fresh.get(s.url("/healthz")).send().unwrap().status(), 200);
    cc(&s, &k.bob_key, &[]);
});

/// Connections that never complete a request are closed, not kept forever: one that
/// sends nothing, one stopped mid-headers, one trickling a header line a second
/// (slowloris), and a keep-alive connection left idle after a request. Meanwhile the
/// service answers others. (The server allows 15 s for a request's head; the
/// deadline here only bounds the test.)
#[test]
fn idle_and_slow_connections_are_closed() {
    use std::io::{Read, Write};
    let env = Env::sqlite();
    env.init();
    let s = Server::start(&env, None);
    let addr = s.base.trim_start_matches("http://").to_string();
    let start = Instant::now();
    let deadline = Duration::from_secs(90);
    let probes: Vec<_> = [
        ("sends nothing", "", false),
        (
            "stops mid-headers",
            "POST /auth/token HTTP/1.1\r\nHost: x\r\n",
            false,
        ),
        (
            "trickles headers",
            "POST /auth/token HTTP/1.1\r\nHost: x\r\n",
            true,
        ),
        (
            "idles after a request",
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            false,
        ),
    ]
    .into_iter()
    .map(|(what, first, trickle)| {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.write_all(first.as_bytes()).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(1000)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                assert!(
                    start.elapsed() < deadline,
                    "{what}: still open after {deadline:?}"
                );
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        if trickle && c.write_all(b"X-Slow: 1\r\n").is_err() {
                            break;
                        }
                    }
                    // Reset by the server: closed too.
                    Err(_) => break,
                }
            }
            (what, String::from_utf8_lossy(&got).into_owned())
        })
    })
    .collect();
    // The service keeps answering while those connections hang.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.http.get(s.url("/healthz")).send().unwrap().status(), 200);
    for p in probes {
        let (what, got) = p.join().unwrap();
        if what == "idles after a request" {
            assert!(got.starts_with("HTTP/1.1 200"), "{what}: {got}");
        } else {
            assert!(!got.contains(" 200 "), "{what}: answered {got}");
        }
    }
}

/// SIGTERM: the service finishes, records every grant it answered in the token tables
/// and closes the database cleanly (the last connection to close a SQLite file removes
/// its WAL; the recorder's connection closed late, or not at all, left them behind).
#[test]
fn graceful_shutdown_on_sigterm() {
    let env = Env::sqlite();
    let k = setup(&env);
    let mut s = Server::start(&env, None);
    let mut jtis = Vec::new();
    for _ in 0..20 {
        let t = cc(&s, &k.bob_key, &[]);
        jtis.push(verify_with_jwks(&s, t.access_token().secret(), DOMAIN)["jti"].clone());
    }
    let st = s.stop().expect("keyward serve exits after SIGTERM");
    assert!(st.success(), "{st:?}");
    for f in ["k.db-wal", "k.db-shm", "k.db.grants-wal", "k.db.grants-shm"] {
        assert!(
            !env.path(f).exists(),
            "{f} is left after the service stopped"
        );
    }
    let listed = env.json(&["token", "list", "--limit", "100"]);
    for jti in &jtis {
        assert!(
            listed.as_array().unwrap().iter().any(|t| &t["jti"] == jti),
            "{jti} is not recorded"
        );
    }
}

/// A service started on another address than the default issuer's says so (its
/// tokens' `iss` and the discovery document's endpoints would name a URL nobody
/// serves), and stops saying so once an issuer is set; the discovery document then
/// names that issuer.
#[test]
fn serve_warns_while_the_issuer_is_the_default_and_not_its_address() {
    let env = Env::sqlite();
    env.init();
    let log = env.path("serve.log");
    let mut s = Server::start_with(&env, None, Some(&log));
    s.stop();
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        out.contains("the issuer is still the default http://127.0.0.1:8080")
            && out.contains("keyward config set issuer"),
        "no warning about the default issuer:\n{out}"
    );

    env.ok(&["config", "set", "issuer", "https://auth.example.com/"]);
    let s = Server::start_with(&env, None, Some(&log));
    let meta = metadata(&s);
    assert_eq!(meta["issuer"], "https://auth.example.com");
    assert_eq!(
        meta["token_endpoint"],
        "https://auth.example.com/auth/token"
    );
    drop(s);
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        out.contains("listening on") && !out.contains("issuer is still the default"),
        "warned although the issuer is set:\n{out}"
    );
}

// ---------------------------------------------------------------- authorization code

const REDIRECT: &str = "http://127.0.0.1:9/callback";

type AuthzClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// Registers an app owned by alice; (client_id, secret).
fn register_app(env: &Env) -> (String, String) {
    let a = env.json(&[
        "app",
        "create",
        "Ledger <b>&</b> Co",
        "--owner",
        "alice@free.example.com",
        "--redirect-uri",
        REDIRECT,
        "--scopes",
        "read,write",
    ]);
    (
        a["client_id"].as_str().unwrap().to_string(),
        a["client_secret"].as_str().unwrap().to_string(),
    )
}

fn authz_client(s: &Server, app: &(String, String)) -> AuthzClient {
    BasicClient::new(ClientId::new(app.0.clone()))
        .set_client_secret(ClientSecret::new(app.1.clone()))
        .set_auth_uri(AuthUrl::new(s.url("/api/auth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(s.url("/auth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

/// An authorization URL with PKCE: (url, verifier, state).
fn authz_url(c: &AuthzClient, extra: &[(&str, &str)]) -> (String, PkceCodeVerifier, CsrfToken) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut r = c
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge);
    for (k, v) in extra {
        r = r.add_extra_param(*k, *v);
    }
    let (url, state) = r.url();
    (url.to_string(), verifier, state)
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden fields of a page's form.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in page.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = part.split_once('"').unwrap();
        let v = rest.split_once("value=\"").unwrap().1;
        let v = v.split_once('"').unwrap().0;
        out.push((name.to_string(), unescape(v)));
    }
    out
}

fn no_redirects() -> Http {
    Http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A page and its form's hidden fields, with the session cookie it set as the
/// pseudo-field `__cookie` (sent back as a cookie by [`post_authz`], as a browser would).
fn form_of(r: reqwest::blocking::Response) -> (String, Vec<(String, String)>) {
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let page = r.text().unwrap();
    let mut form = hidden_fields(&page);
    if let Some(c) = cookie {
        assert!(c.starts_with("kw_authz="), "{c}");
        form.push(("__cookie".into(), c));
    }
    (page, form)
}

fn post_authz(s: &Server, form: &[(String, String)]) -> reqwest::blocking::Response {
    let cookie = form.iter().find(|(k, _)| k == "__cookie");
    let form: Vec<_> = form.iter().filter(|(k, _)| k != "__cookie").collect();
    let mut rb = no_redirects()
        .post(s.url("/api/auth/authorize"))
        .form(&form);
    if let Some((_, c)) = cookie {
        rb = rb.header("cookie", c.as_str());
    }
    rb.send().unwrap()
}

/// GETs the page and posts the sign-in form; returns the response to the POST.
fn sign_in(s: &Server, url: &str, action: &str) -> reqwest::blocking::Response {
    let r = s.http.get(url).send().unwrap();
    assert_eq!(r.status(), 200);
    let (_, mut form) = form_of(r);
    form.push(("email".into(), "alice@free.example.com".into()));
    form.push(("password".into(), PASSWORD.into()));
    form.push(("action".into(), action.into()));
    post_authz(s, &form)
}

/// The query parameters of a 302's Location.
fn location(r: &reqwest::blocking::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(r.status(), 302, "expected a redirect");
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    oauth2::url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn code_for(s: &Server, c: &AuthzClient) -> (String, PkceCodeVerifier) {
    let (url, verifier, state) = authz_url(c, &[]);
    let q = location(&sign_in(s, &url, "allow"));
    assert_eq!(q["state"], *state.secret());
    (q["code"].clone(), verifier)
}

fn exchange_raw(
    s: &Server,
    app: &(String, String),
    code: &str,
    redirect: &str,
    verifier: &str,
) -> reqwest::blocking::Response {
    post_form(
        s,
        "/auth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", &app.0),
            ("client_secret", &app.1),
        ],
    )
}

both!(authorization_code_flow, |env| {
    setup(env);
    let app = register_app(env);
    let s = Server::start(env, Some(DOMAIN));
    let meta = metadata(&s);
    assert!(
        meta["authorization_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/api/auth/authorize")
    );
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    for scope in ["read", "write", "admin"] {
        assert!(
            meta["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(scope)),
            "{meta}"
        );
    }
    assert!(
        meta["revocation_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
    );
    let c = authz_client(&s, &app);

    // The page: app name escaped, scopes in plain words, no script.
    let (url, verifier, state) = authz_url(&c, &[]);
    let (page, fields) = form_of(s.http.get(&url).send().unwrap());
    assert!(
        page.contains("Ledger &lt;b&gt;&amp;&lt;/b&gt; Co"),
        "{page}"
    );
    assert!(!page.contains("<b>"));
    assert!(!page.contains("<script"));
    assert!(page.contains("<code>read</code>"));
    assert!(
        !page.contains("<code>write</code>"),
        "only the requested scope"
    );

    // Its answer redirects to the client, which browsers check against the page's
    // `form-action`: the redirect URI's origin is allowed.
    let r = s.http.get(&url).send().unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9;"),
        "{csp}"
    );
    // A native app listens on a port of its choosing: a loopback redirect URI matches
    // whatever its port (RFC 8252 §7.3), not another path.
    for (uri, status) in [
        ("http://127.0.0.1:53111/callback", 200),
        ("http://127.0.0.1:53111/elsewhere", 400),
    ] {
        let other = authz_client(&s, &app).set_redirect_uri(RedirectUrl::new(uri.into()).unwrap());
        let (u, _, _) = authz_url(&other, &[]);
        assert_eq!(s.http.get(&u).send().unwrap().status(), status, "{uri}");
    }

    // Full flow: sign in, allow, exchange with the oauth2 client, call the API.
    let mut form = fields;
    form.push(("email".into(), "alice@free.example.com".into()));
    form.push(("password".into(), PASSWORD.into()));
    form.push(("action".into(), "allow".into()));
    let q = location(&post_authz(&s, &form));
    assert_eq!(q["state"], *state.secret());
    // RFC 9207: the answer names the issuer of the metadata.
    assert_eq!(json!(q["iss"]), meta["issuer"]);
    let code = q["code"].clone();
    let t = c
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request(&http_client("127.0.0.1"))
        .expect("authorization_code grant");
    assert!(t.refresh_token().is_some());
    let tok = t.access_token().secret().clone();
    let claims = verify_with_jwks(&s, &tok, DOMAIN);
    assert_eq!(claims["client_id"], json!(app.0));
    assert_eq!(claims["scope"], json!("read"));
    assert_eq!(get_stations(&s, &tok).status(), 200);

    // Reuse: invalid_grant, and the tokens issued from the code are revoked.
    let r = exchange_raw(&s, &app, &code, REDIRECT, "x".repeat(43).as_str());
    assert_eq!(r.status(), 400);
    let v = body_json(r);
    assert_eq!(v["error"], "invalid_grant");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("are revoked"),
        "{v}"
    );
    assert_eq!(
        get_stations(&s, &tok).status(),
        401,
        "tokens of a reused code are refused from the reuse's answer on"
    );

    // Wrong verifier: refused, and the code is spent; presented again (even with the
    // right verifier) it is refused without a word of tokens, as none were issued.
    let (code, v) = code_for(&s, &c);
    let r = exchange_raw(&s, &app, &code, REDIRECT, &"a".repeat(43));
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r)["error"], "invalid_grant");
    let r = exchange_raw(&s, &app, &code, REDIRECT, v.secret());
    let v = body_json(r);
    assert_eq!(v["error"], "invalid_grant");
    let d = v["error_description"].as_str().unwrap();
    assert!(
        d.contains("start the authorization again") && !d.contains("revoked"),
        "{d}"
    );

    // Wrong redirect_uri at the token endpoint.
    let (code, v) = code_for(&s, &c);
    let r = exchange_raw(&s, &app, &code, "http://127.0.0.1:9/other", v.secret());
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r)["error"], "invalid_grant");

    // Unregistered redirect_uri at the authorization endpoint: an error page, no redirect.
    let (url, _, _) = authz_url(&c, &[]);
    let bad = url.replace("9%2Fcallback", "9%2Fevil");
    assert_ne!(bad, url);
    let r = no_redirects().get(&bad).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // PKCE is required.
    let r = no_redirects()
        .get(format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&state=s1",
            s.url("/api/auth/authorize"),
            app.0,
            "http%3A%2F%2F127.0.0.1%3A9%2Fcallback"
        ))
        .send()
        .unwrap();
    let q = location(&r);
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "s1");

    // A POST without (or with a forged) CSRF token is refused.
    let (url, _, _) = authz_url(&c, &[]);
    let (_, fields) = form_of(s.http.get(&url).send().unwrap());
    let mut form: Vec<(String, String)> = fields
        .clone()
        .into_iter()
        .filter(|(k, _)| k != "csrf")
        .collect();
    form.push(("email".into(), "alice@free.example.com".into()));
    form.push(("password".into(), PASSWORD.into()));
    form.push(("action".into(), "allow".into()));
    let r = post_authz(&s, &form);
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    form.push(("csrf".into(), "n.9999999999.v1$forged".into()));
    assert_eq!(post_authz(&s, &form).status(), 403);
    // The CSRF token is bound to the browser's session cookie.
    let no_cookie: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "__cookie")
        .cloned()
        .chain([
            ("email".into(), "alice@free.example.com".into()),
            ("password".into(), PASSWORD.into()),
            ("action".into(), "allow".into()),
        ])
        .collect();
    assert_eq!(post_authz(&s, &no_cookie).status(), 403);
    let mut other_cookie = no_cookie.clone();
    other_cookie.push(("__cookie".into(), format!("kw_authz={}", "A".repeat(43))));
    assert_eq!(post_authz(&s, &other_cookie).status(), 403);

    // Wrong password: the page again, no code.
    let r = s.http.get(&url).send().unwrap();
    let (_, mut form) = form_of(r);
    form.push(("email".into(), "alice@free.example.com".into()));
    form.push(("password".into(), "wrong".into()));
    form.push(("action".into(), "allow".into()));
    let r = post_authz(&s, &form);
    assert_eq!(r.status(), 401);
    assert!(r.text().unwrap().contains("wrong email or password"));

    // Deny.
    let (url, _, state) = authz_url(&c, &[]);
    let q = location(&sign_in(&s, &url, "deny"));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], *state.secret());
    assert!(!q.contains_key("code"));

    // A user whose role does not grant what the app asks for: an error that names the
    // missing scope (SPEC), back to the client, and no consent or code recorded.
    let o = env.run_stdin(
        &[
            "user",
            "add",
            "dave@free.example.com",
            "--domain",
            DOMAIN,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = c
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("write".into()))
        .set_pkce_challenge(challenge)
        .url();
    let (page, mut form) = form_of(s.http.get(url.as_str()).send().unwrap());
    assert!(page.contains("<code>write</code>"), "{page}");
    form.push(("email".into(), "dave@free.example.com".into()));
    form.push(("password".into(), PASSWORD.into()));
    form.push(("action".into(), "allow".into()));
    let q = location(&post_authz(&s, &form));
    assert_eq!(q["error"], "invalid_scope");
    assert!(
        q["error_description"].ends_with("does not grant scope(s) write"),
        "{q:?}"
    );
    assert_eq!(q["state"], *state.secret());
    assert!(!q.contains_key("code"));
    let consents = env.json(&["consent", "list", "--user", "dave@free.example.com"]);
    assert_eq!(consents.as_array().map(Vec::len), Some(0), "{consents}");

    // Several stations: a station select, pre-selected from euVatId.
    env.ok(&[
        "station",
        "add",
        "Main",
        "--user",
        "alice@free.example.com",
        "--eu-vat-id",
        "DE123456789",
    ]);
    let branch = env.json(&[
        "station",
        "add",
        "Branch",
        "--user",
        "alice@free.example.com",
        "--eu-vat-id",
        "ATU12345678",
    ]);
    let branch_id = branch["id"].as_str().unwrap().to_string();
    let (url, verifier, _) = authz_url(&c, &[("euVatId", " atu 1234 5678")]);
    let r = sign_in(&s, &url, "allow");
    assert_eq!(r.status(), 200);
    let (page, fields) = form_of(r);
    assert!(
        page.contains(&format!("<option value=\"{branch_id}\" selected>")),
        "{page}"
    );
    assert_eq!(page.matches(" selected>").count(), 1);
    // Another user's station is refused, without a code.
    let bobs = env.json(&["station", "add", "Bob's", "--user", "bob@free.example.com"]);
    let mut forged = fields.clone();
    forged.push(("station".into(), bobs["id"].as_str().unwrap().into()));
    forged.push(("action".into(), "allow".into()));
    let r = post_authz(&s, &forged);
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().unwrap().contains("not one of this account"));
    let mut form = fields;
    form.push(("station".into(), branch_id.clone()));
    form.push(("action".into(), "allow".into()));
    let q = location(&post_authz(&s, &form));
    let t = c
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .set_pkce_verifier(verifier)
        .request(&http_client("127.0.0.1"))
        .expect("authorization_code grant after choosing a station");
    assert_eq!(get_stations(&s, t.access_token().secret()).status(), 200);

    // A request that names no known domain is refused (SPEC §5), without a redirect.
    let s2 = Server::start(env, None);
    let (url, _, _) = authz_url(&authz_client(&s2, &app), &[]);
    let r = no_redirects().get(&url).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
});

both!(authorization_code_for_own_key, |env| {
    setup(env);
    let app = register_app(env);
    let own = key(
        env,
        "alice@free.example.com",
        &["--scopes", "read,write", "--redirect-uri", REDIRECT],
    );
    let s = Server::start(env, Some(DOMAIN));
    // The owner's own flow with an API key that has redirect URIs: no consent needed.
    let c = authz_client(&s, &own);
    let (code, verifier) = code_for(&s, &c);
    let t = c
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http_client("127.0.0.1"))
        .expect("authorization_code grant for an API key");
    let claims = verify_with_jwks(&s, t.access_token().secret(), DOMAIN);
    assert_eq!(claims["client_id"], json!(own.0));
    assert_eq!(claims["scope"], json!("read"));
    assert_eq!(get_stations(&s, t.access_token().secret()).status(), 200);
    assert!(
        env.json(&["consent", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "no consent for the owner's own key"
    );

    // A code is bound to its client: the app's code is useless to the key.
    let (code, v) = code_for(&s, &authz_client(&s, &app));
    let r = exchange_raw(&s, &own, &code, REDIRECT, v.secret());
    assert_eq!(r.status(), 400);
    assert_eq!(body_json(r)["error"], "invalid_grant");

    // A key without redirect URIs cannot start the flow (an error page, no redirect).
    let other = key(env, "alice@free.example.com", &[]);
    let (url, _, _) = authz_url(&authz_client(&s, &other), &[]);
    let r = no_redirects().get(&url).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
});
