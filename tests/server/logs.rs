//! Secrets hygiene of what the service and the CLI leave behind: `keyward serve`'s log
//! at the most verbose level, the CLI's diagnostics with logging turned up, and the
//! SQLite database afterwards, scanned for every secret the session created or sent.

use super::*;
use base64::Engine as _;
use oauth2::AuthType;

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_never_reach_the_logs_or_the_database() {
    let env = Env::sqlite();
    let k = setup(&env);
    let mut secrets: Vec<(&str, String)> = vec![
        ("password", PASSWORD.into()),
        (
            "master key",
            std::fs::read_to_string(env.path("master.key"))
                .unwrap()
                .trim()
                .into(),
        ),
    ];
    for key in [&k.alice_key, &k.bob_key, &k.carol_key] {
        secrets.push(("client secret", key.1.clone()));
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", key.0, key.1));
        secrets.push(("Basic credentials", basic));
    }

    // The CLI with every logging knob turned up: secrets go to stdout only.
    let mut cli_stderr = Vec::new();
    let loud = |args: &[&str], input: &str| {
        let mut c = env.cmd(args);
        c.env("KEYWARD_LOG", "trace").env("RUST_LOG", "trace");
        let o = output_with_stdin(c, input);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (String::from_utf8(o.stdout).unwrap(), o.stderr)
    };
    let (out, err) = loud(
        &["--json", "key", "create", "--user", "bob@free.example.com"],
        "",
    );
    cli_stderr.extend(err);
    let v: Value = serde_json::from_str(&out).unwrap();
    secrets.push(("client secret", v["client_secret"].as_str().unwrap().into()));
    let (out, err) = loud(
        &["--json", "token", "mint", "--user", "bob@free.example.com"],
        "",
    );
    cli_stderr.extend(err);
    let minted: Value = serde_json::from_str(&out).unwrap();
    let minted = minted["access_token"].as_str().unwrap().to_string();
    secrets.push(("access token", minted.clone()));
    let cli_pw = "cli-password-7f3a9c";
    let (_, err) = loud(
        &[
            "user",
            "add",
            "frank@free.example.com",
            "--domain",
            DOMAIN,
            "--password-stdin",
        ],
        &format!("{cli_pw}\n"),
    );
    cli_stderr.extend(err);
    secrets.push(("password", cli_pw.into()));
    let (_, err) = loud(&["token", "inspect", "-"], &minted);
    cli_stderr.extend(err);

    // The service, logging at trace, through every grant that carries a secret.
    let log = env.path("serve.log");
    let mut s = Server::start_with(&env, None, Some(&log));
    let http = http_client(DOMAIN);
    let mut tokens = Vec::new();
    // client_credentials with HTTP Basic, then with the secret in the form body.
    let t = cc(&s, &k.alice_key, &[]);
    tokens.push(t.access_token().secret().clone());
    let refresh = t.refresh_token().unwrap().secret().clone();
    let t = s
        .oauth(&k.bob_key.0, &k.bob_key.1)
        .set_auth_type(AuthType::RequestBody)
        .exchange_client_credentials()
        .request(&http)
        .unwrap();
    tokens.push(t.access_token().secret().clone());
    // ... and in a JSON body.
    let r = s
        .http
        .post(s.url("/auth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": k.carol_key.0, "client_secret": k.carol_key.1}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = body_json(r);
    tokens.push(v["access_token"].as_str().unwrap().into());
    tokens.push(v["refresh_token"].as_str().unwrap().into());
    // refresh_token grant (rotation), then reuse of the spent one.
    let t = s
        .oauth(&k.alice_key.0, &k.alice_key.1)
        .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
        .request(&http)
        .unwrap();
    tokens.push(t.access_token().secret().clone());
    tokens.push(t.refresh_token().unwrap().secret().clone());
    tokens.push(refresh.clone());
    assert!(
        s.oauth(&k.alice_key.0, &k.alice_key.1)
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .request(&http)
            .is_err()
    );
    // Sign-up, sign-in (right and wrong password), renewal.
    let signup_pw = "signup-password-4e1d07";
    let r = s
        .http
        .post(s.url("/signup"))
        .header("host", DOMAIN)
        .json(&json!({"email": "gina@free.example.com", "password": signup_pw, "name": "Gina"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    secrets.push(("password", signup_pw.into()));
    let login = |user: &str, pw: &str| {
        s.http
            .post(s.url("/consumer/login"))
            .header("host", DOMAIN)
            .json(&json!({"username": user, "password": pw}))
            .send()
            .unwrap()
    };
    let wrong_pw = "wrong-password-b81c2e";
    assert_eq!(login("gina@free.example.com", wrong_pw).status(), 401);
    secrets.push(("password", wrong_pw.into()));
    let l = body_json(login("gina@free.example.com", signup_pw));
    tokens.push(l["token"].as_str().unwrap().into());
    let r = s
        .http
        .post(s.url("/api/auth/renew"))
        .json(&json!({"refresh_token": l["refresh_token"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let l2 = body_json(r);
    tokens.push(l["refresh_token"].as_str().unwrap().into());
    tokens.push(l2["token"].as_str().unwrap().into());
    tokens.push(l2["refresh_token"].as_str().unwrap().into());
    // The password grant (turned on for the running server).
    env.ok(&["config", "set", "password_grant", "on"]);
    let pw_client = BasicClient::new(ClientId::new("keyward-login".into()))
        .set_token_uri(TokenUrl::new(s.url("/auth/token")).unwrap());
    let user = ResourceOwnerUsername::new("alice@free.example.com".into());
    let pass = ResourceOwnerPassword::new(PASSWORD.into());
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
    tokens.push(t.access_token().secret().clone());
    // Using, introspecting and revoking tokens; a token in a query string too. (Alice's
    // first tokens died with the refresh reuse above; bob's and carol's are live.)
    let tok = tokens[1].clone();
    assert_eq!(get_stations(&s, &tok).status(), 200);
    let r = s
        .http
        .get(s.url(&format!("/api/v1/stations?access_token={tok}")))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a token in the query string is not a credential"
    );
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .basic_auth(&k.bob_key.0, Some(&k.bob_key.1))
        .form(&[("token", tok.as_str())])
        .send()
        .unwrap();
    assert_eq!(body_json(r)["active"], true);
    let r = s
        .http
        .post(s.url("/oauth/revoke"))
        .basic_auth(&k.carol_key.0, Some(&k.carol_key.1))
        .form(&[("token", tokens[3].as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        s.stop().is_some_and(|st| st.success()),
        "serve did not stop cleanly"
    );

    for t in &tokens {
        secrets.push(("token", t.clone()));
        // A JWT's signature alone would let nobody in, but its presence means the
        // token was written out.
        if let Some((_, sig)) = t.rsplit_once('.') {
            secrets.push(("token signature", sig.into()));
        }
    }
    let serve_log = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&serve_log);
    // The log is really there, and at trace level: request lines and more.
    assert!(
        text.contains("keyward::access")
            && text.contains("/auth/token")
            && text.contains("/consumer/login"),
        "the request log is missing: {}",
        &text[..text.len().min(2000)]
    );
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "not logging verbosely"
    );
    for (what, secret) in &secrets {
        assert!(
            !contains(&serve_log, secret),
            "the serve log contains a {what}"
        );
        assert!(
            !contains(&cli_stderr, secret),
            "CLI stderr contains a {what}"
        );
    }
    // The database (and its WAL, if any is left): refresh tokens, passwords, client
    // secrets and access tokens are stored only as hashes or by their jti.
    for f in ["k.db", "k.db-wal"] {
        let bytes = std::fs::read(env.path(f)).unwrap_or_default();
        for (what, secret) in &secrets {
            assert!(!contains(&bytes, secret), "{f} contains a {what}");
        }
    }
}
