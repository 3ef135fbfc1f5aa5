//! The command line against SQLite and PostgreSQL: every test runs on both engines.

mod common;
use common::Env;

#[path = "cli/tokens.rs"]
mod tokens;

#[path = "cli/provision.rs"]
mod provision;
use serde_json::Value;
use std::process::Stdio;

fn emails(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect()
}

both!(init_is_idempotent_and_reports, |e| {
    let out = e.ok(&["init", "--domain", "free.example.com"]);
    assert!(out.contains("created scope read"), "{out}");
    assert!(out.contains("created role Consumer (default)"), "{out}");
    assert!(out.contains("as the first admin operator"), "{out}");
    let again = e.ok(&["init"]);
    assert!(again.contains("Nothing to do"), "{again}");
    let j = e.json(&["init", "--domain", "free.example.com"]);
    assert_eq!(j["changed"], false);
    // --domain adds a domain on an existing database.
    let j = e.json(&["init", "--domain", "second.example.com"]);
    assert_eq!(j["changed"], true);
    let ds = e.json(&["domain", "list"]);
    assert_eq!(ds.as_array().unwrap().len(), 2);
    // Built-ins.
    let scopes = e.json(&["scope", "list"]);
    let write = scopes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "write")
        .unwrap();
    assert_eq!(write["implies"], serde_json::json!(["read"]));
    let c = e.json(&["role", "show", "Consumer"]);
    assert_eq!(c["default"], true);
    assert_eq!(c["effective_scopes"], serde_json::json!(["read"]));
    let a = e.json(&["role", "show", "administrator"]);
    assert_eq!(
        a["effective_scopes"],
        serde_json::json!(["admin", "read", "write"])
    );
    let ops = e.json(&["operator", "list"]);
    assert_eq!(ops[0]["role"], "admin");
});

/// A CLI command makes one PostgreSQL connection and reuses it: sqlx pings a connection
/// before it is idle again, and a pool of several opened another one for a statement
/// that came meanwhile (three handshakes a command with the connection check; with TLS
/// on loopback each cost ~95 ms).
#[test]
fn a_command_makes_one_postgres_connection() {
    let Some(e) = Env::pg() else { return };
    e.init();
    let before = e.pg_sessions().unwrap();
    e.ok(&[
        "user",
        "add",
        "a@free.example.com",
        "--domain",
        "free.example.com",
    ]);
    e.ok(&["user", "list"]);
    e.json(&["key", "create", "--user", "a@free.example.com"]);
    assert_eq!(
        e.pg_sessions().unwrap() - before,
        3,
        "one session per command"
    );
}

/// What is wrong with a PostgreSQL URL is said at once, named, with the password hidden.
#[test]
fn an_unreachable_postgres_is_named() {
    let e = Env::sqlite();
    let url = "postgres://kw:s3cret@127.0.0.1:1/nowhere";
    let err = e.fails(&["--database-url", url, "user", "list"], 3);
    assert!(
        err.contains("cannot connect to postgres://kw:***@127.0.0.1:1/nowhere")
            && err.contains("refused")
            && !err.contains("s3cret"),
        "{err}"
    );
    if let Some(pg) = Env::pg() {
        let mut wrong = reqwest::Url::parse(&pg.url).unwrap();
        wrong.set_password(Some("wrong-password")).unwrap();
        let wrong = wrong.to_string();
        let err = e.fails(&["--database-url", &wrong, "user", "list"], 3);
        assert!(
            err.contains("cannot connect to") && err.contains("password authentication failed"),
            "{err}"
        );
        let missing = format!("{}_missing", pg.url);
        let err = e.fails(&["--database-url", &missing, "user", "list"], 3);
        assert!(err.contains("does not exist"), "{err}");
    }
}

both!(
    explicit_url_to_missing_database_is_an_environment_error,
    |e| {
        let err = e.fails(&["user", "list"], 3);
        assert!(err.contains("keyward init"), "{err}");
        let j = e.run(&["--json", "domain", "list"]);
        assert_eq!(j.status.code(), Some(3));
        let v: Value = serde_json::from_slice(&j.stderr).unwrap();
        assert_eq!(v["error"], "environment");
        assert!(j.stdout.is_empty());
    }
);

#[test]
fn another_programs_sqlite_file_is_refused_and_left_unchanged() {
    use sqlx::Connection;
    let e = Env::sqlite();
    let other = e.path("app.db");
    let url = format!("sqlite://{}", other.display());
    common::rt().block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let before = std::fs::read(&other).unwrap();
    for args in [&["init"][..], &["user", "list"][..]] {
        let mut full = vec!["--database-url", url.as_str()];
        full.extend(args);
        let err = e.fails(&full, 3);
        assert!(
            err.contains("another program's database") && err.contains("invoices"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(&other).unwrap(),
        before,
        "the file was changed"
    );
    let siblings: Vec<_> = std::fs::read_dir(other.parent().unwrap())
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("app.db"))
        .collect();
    assert_eq!(siblings, ["app.db"], "files left beside it");
    // Not SQLite at all.
    let text = e.path("notes.txt");
    std::fs::write(&text, "dear diary, today I was opened as a database").unwrap();
    let url = format!("sqlite://{}", text.display());
    let err = e.fails(&["--database-url", &url, "init"], 3);
    assert!(err.contains("is not a SQLite database"), "{err}");
    // An empty file is fine: init makes it Keyward's.
    let empty = e.path("empty.db");
    std::fs::write(&empty, "").unwrap();
    let url = format!("sqlite://{}", empty.display());
    e.ok(&[
        "--database-url",
        &url,
        "init",
        "--domain",
        "free.example.com",
    ]);
    e.ok(&["--database-url", &url, "user", "list"]);
}

both!(signup_creates_user_and_station_but_no_token, |e| {
    e.init();
    let u = e.json(&[
        "user",
        "add",
        "Newbie@Acme.example",
        "--domain",
        "free.example.com",
        "--name",
        "New Bie",
    ]);
    assert_eq!(u["email"], "Newbie@Acme.example");
    assert_eq!(u["role"], "Consumer");
    assert_eq!(u["status"], "active");
    assert_eq!(u["api_access"], "pending");
    assert_eq!(u["active_tokens"], 0);
    assert_eq!(u["keys"], 0);
    assert_eq!(u["stations"].as_array().unwrap().len(), 1);
    assert_eq!(u["stations"][0]["name"], "New Bie");
    let pending = e.json(&["user", "list", "--pending"]);
    assert_eq!(emails(&pending), vec!["Newbie@Acme.example"]);
    // A disabled user is not waiting: access cannot be given to it.
    e.ok(&["user", "disable", "newbie@acme.example"]);
    let pending = e.json(&["user", "list", "--pending"]);
    assert!(emails(&pending).is_empty(), "{pending}");
    e.ok(&["user", "enable", "newbie@acme.example"]);
    // Renaming, and a station's identifiers (only the flags given change).
    let r = e.json(&["user", "edit", "newbie@acme.example", "--name", "Nu Bie"]);
    assert_eq!(r["name"], "Nu Bie");
    let sid = u["stations"][0]["id"].as_str().unwrap().to_string();
    let st = e.json(&["station", "edit", &sid, "--rn", "HRB 9", "--country", "at"]);
    assert_eq!(
        (
            st["registration_number"].clone(),
            st["country_code"].clone()
        ),
        ("HRB 9".into(), "AT".into())
    );
    let err = e.fails(&["station", "edit", &sid, "--country", ""], 1);
    assert!(err.contains("HRB 9"), "{err}");
    let st = e.json(&["station", "edit", &sid, "--eu-vat-id", "ATU12345678"]);
    assert_eq!(
        (st["eu_vat_id"].clone(), st["country_code"].clone()),
        ("ATU12345678".into(), "AT".into())
    );
    // An empty listing says so rather than printing a header over nothing.
    assert_eq!(
        e.ok(&["key", "list", "--user", "newbie@acme.example"])
            .trim(),
        "(none)"
    );
    // Enabling an active user changes nothing and says so (and audits nothing).
    let out = e.ok(&["user", "enable", "newbie@acme.example"]);
    assert!(out.contains("is active already; nothing changed"), "{out}");
    let r = e.json(&["user", "enable", "newbie@acme.example"]);
    assert_eq!(
        (r["changed"].clone(), r["status"].clone()),
        (false.into(), "active".into())
    );
    let shown = e.json(&["user", "show", "newbie@acme.example"]);
    assert_eq!(shown["id"], u["id"]);
    assert_eq!(shown["domain"], "free.example.com");
});

both!(email_is_unique_per_domain_case_insensitively, |e| {
    e.init();
    e.ok(&[
        "user",
        "add",
        "alice@example.com",
        "--domain",
        "free.example.com",
    ]);
    let err = e.fails(
        &[
            "user",
            "add",
            "ALICE@example.COM",
            "--domain",
            "free.example.com",
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    // Same email in another domain is another user.
    e.ok(&[
        "user",
        "add",
        "Alice@Example.com",
        "--domain",
        "other.example.org",
    ]);
    let err = e.fails(&["user", "show", "alice@example.com"], 1);
    let u = e.json(&[
        "user",
        "show",
        "alice@example.com",
        "--domain",
        "other.example.org",
    ]);
    assert_eq!(u["domain"], "other.example.org");
    // The ambiguity names each user's id, which every command accepts (user disable
    // has no --domain).
    let id = u["id"].as_str().unwrap();
    assert!(
        err.contains("2 domains") && err.contains(&format!("other.example.org (id {id})")),
        "{err}"
    );
    e.fails(&["user", "disable", "alice@example.com"], 1);
    e.ok(&["user", "disable", id]);
    assert_eq!(e.json(&["user", "show", id])["status"], "disabled");
    // One address however the accent is encoded: added decomposed, it is stored
    // composed, found either way, and the composed spelling is the same user; a
    // full-width look-alike is refused with the ordinary spelling.
    let u = e.json(&[
        "user",
        "add",
        "Jose\u{301}@example.com",
        "--domain",
        "free.example.com",
    ]);
    assert_eq!(u["email"], "Jos\u{e9}@example.com");
    for spelling in ["jos\u{e9}@example.com", "JOSE\u{301}@EXAMPLE.COM"] {
        assert_eq!(
            e.json(&["user", "show", spelling])["id"],
            u["id"],
            "{spelling}"
        );
    }
    let err = e.fails(
        &[
            "user",
            "add",
            "jos\u{e9}@example.com",
            "--domain",
            "free.example.com",
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    let err = e.fails(
        &[
            "user",
            "add",
            "\u{ff41}lice@example.com",
            "--domain",
            "free.example.com",
        ],
        1,
    );
    assert!(
        err.contains("full-width") && err.contains(": alice@example.com"),
        "{err}"
    );
});

both!(bad_input_is_named_and_changes_nothing, |e| {
    e.init();
    let before = e
        .json(&["audit", "--limit", "1000"])
        .as_array()
        .unwrap()
        .len();
    for (args, needle) in [
        (
            vec![
                "user",
                "add",
                "not-an-email",
                "--domain",
                "free.example.com",
            ],
            "invalid email \"not-an-email\"",
        ),
        (
            vec!["user", "add", "a@b.example", "--domain", "nope.example"],
            "domain \"nope.example\" not found",
        ),
        (
            vec![
                "user",
                "add",
                "a@b.example",
                "--domain",
                "free.example.com",
                "--role",
                "Ghost",
            ],
            "role \"Ghost\" not found",
        ),
        (
            vec![
                "user",
                "add",
                "a@b.example",
                "--domain",
                "free.example.com",
                "--name",
                "x\u{1b}[2J",
            ],
            "control",
        ),
        (
            vec![
                "user",
                "add",
                "a@b.example",
                "--domain",
                "free.example.com",
                "--name",
                &"n".repeat(201),
            ],
            "200 characters",
        ),
        (
            vec![
                "user",
                "add",
                "x'); DROP TABLE users;--@e.com",
                "--domain",
                "free.example.com",
            ],
            "invalid email",
        ),
        (
            vec!["scope", "add", "Bad Scope"],
            "^[a-z][a-z0-9_.:-]{0,63}$",
        ),
        (
            vec!["scope", "add", "ok_scope", "--implies", "ghost"],
            "scope \"ghost\" not found",
        ),
        (
            vec!["role", "add", "Robert'); DROP TABLE roles;--"],
            "invalid role",
        ),
        (
            vec!["role", "add", "Partner", "--scopes", "read,nope"],
            "scope \"nope\" not found",
        ),
        (vec!["domain", "add", "bad_domain!"], "invalid domain"),
        // Look-alikes: a Cyrillic letter among Latin ones; a role that reads as another.
        (
            vec![
                "user",
                "add",
                "n\u{435}wbie@acme.example",
                "--domain",
                "free.example.com",
            ],
            "mixes them ('\u{435}', U+0435",
        ),
        (
            vec!["role", "add", "Adrninistrator"],
            "looks like the existing role \"Administrator\"",
        ),
        (
            vec!["config", "set", "default_ttl", "forever"],
            "a duration such as",
        ),
        (
            vec!["config", "set", "max_ttl", "1h"],
            "invalid max_ttl \"1h\": at least default_ttl (1d)",
        ),
        (
            vec!["config", "set", "default_ttl", "400d"],
            "invalid default_ttl \"400d\": at most max_ttl (365d)",
        ),
        // A negative duration is a value, not a flag, and is named as such.
        (
            vec!["token", "purge", "--expired-before", "-3d"],
            "invalid --expired-before \"-3d\": a positive duration",
        ),
        (
            vec!["config", "set", "grant_ttl", "5x"],
            "\"x\" is not a unit (s, m, h, d, w)",
        ),
        // The token service's lifetime is an access token's too.
        (
            vec!["config", "set", "grant_ttl", "400d"],
            "invalid grant_ttl \"400d\": at most max_ttl (365d)",
        ),
        (vec!["config", "set", "issuer", "ftp://x"], "http(s) URL"),
        (
            vec!["config", "set", "issuer", "https://auth.example.com/p?q=1"],
            "without query, fragment or credentials",
        ),
        (
            vec!["config", "set", "issuer", "http://user:pw@x.example"],
            "invalid issuer",
        ),
        (
            vec!["config", "set", "issuer", "https://a.example/#f"],
            "invalid issuer",
        ),
        (
            vec!["signing-key", "rotate", "--shared-secret"],
            "--shared-secret makes an HS256 key; add --alg HS256",
        ),
        (
            vec!["config", "set", "max_ttl", "1ms"],
            "invalid max_ttl \"1ms\"",
        ),
        (
            vec!["demo", "--users", "0"],
            "invalid users \"0\": from 1 to 1000000",
        ),
        (
            vec!["demo", "--users", "5000000"],
            "invalid users \"5000000\"",
        ),
        (vec!["config", "set", "colour", "blue"], "one of: issuer"),
        (
            vec!["operator", "add", "bob", "--role", "root"],
            "one of: viewer, support, admin",
        ),
        (
            vec!["station", "add", "S", "--user", "ghost@x.example"],
            "user \"ghost@x.example\" not found",
        ),
    ] {
        let err = e.fails(&args, 1);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Nothing was written: no new audit events, no users, tables intact.
    let after = e
        .json(&["audit", "--limit", "1000"])
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    assert_eq!(e.json(&["user", "list"]).as_array().unwrap().len(), 0);
    assert_eq!(e.json(&["role", "list"]).as_array().unwrap().len(), 2);
    // Usage errors exit 2; a closed set of values is listed (and completed by shells),
    // in any case.
    e.fails(&["user", "add"], 2);
    let err = e.fails(&["signing-key", "rotate", "--alg", "PS256"], 2);
    assert!(
        err.contains("[possible values: ES256, EdDSA, RS256, HS256]"),
        "{err}"
    );
    assert!(
        e.ok(&["completions", "bash"])
            .contains("ES256 EdDSA RS256 HS256")
    );
    e.fails(&["frobnicate"], 2);
    let out = e.ok(&["signing-key", "rotate", "--alg", "eddsa"]);
    assert!(out.contains("EdDSA"), "{out}");
});

both!(
    scopes_expand_through_implication_and_cycles_are_rejected,
    |e| {
        e.init();
        e.ok(&["scope", "add", "send_documents", "--implies", "read"]);
        e.ok(&["scope", "add", "bulk_send", "--implies", "send_documents"]);
        let r = e.json(&["role", "add", "Sender", "--scopes", "bulk_send"]);
        assert_eq!(r["scopes"], serde_json::json!(["bulk_send"]));
        assert_eq!(
            r["effective_scopes"],
            serde_json::json!(["bulk_send", "read", "send_documents"])
        );
        let err = e.fails(&["scope", "edit", "read", "--implies", "bulk_send"], 1);
        assert!(
            err.contains("cycle") && err.contains("read → bulk_send → send_documents → read"),
            "{err}"
        );
        let err = e.fails(&["scope", "edit", "write", "--implies", "write"], 1);
        assert!(err.contains("cannot imply itself"), "{err}");
        // The graph is unchanged.
        let s = e.json(&["scope", "list"]);
        let read = s
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "read")
            .unwrap();
        assert_eq!(read["implies"], serde_json::json!([]));
        // A scope granted by a role cannot be removed; built-ins never.
        // The CLI says the way out as a command.
        let err = e.fails(&["scope", "rm", "bulk_send"], 1);
        assert!(
            err.contains("granted by role(s) Sender")
                && err.contains("`keyward role revoke ROLE bulk_send`"),
            "{err}"
        );
        assert!(e.fails(&["scope", "rm", "read"], 1).contains("built in"));
        let out = e.ok(&["role", "revoke", "Sender", "bulk_send"]);
        assert!(
            out.contains("Narrowed role Sender (removed bulk_send)"),
            "{out}"
        );
        // Revoking what the role does not grant changes nothing and says so.
        let out = e.ok(&["role", "revoke", "Sender", "bulk_send"]);
        assert!(
            out.contains("Role Sender did not grant bulk_send; nothing changed.")
                && !out.contains("Narrowed"),
            "{out}"
        );
        let r = e.json(&["role", "revoke", "Sender", "send_documents"]);
        assert_eq!(r["removed"], serde_json::json!([]));
        // ... and a scope it allows only through another says which.
        e.ok(&["role", "grant", "Sender", "bulk_send"]);
        let out = e.ok(&["role", "revoke", "Sender", "send_documents"]);
        assert!(
            out.contains("does not grant send_documents itself: its scopes (bulk_send) imply it"),
            "{out}"
        );
        e.ok(&["role", "revoke", "Sender", "bulk_send"]);
        let err = e.fails(&["scope", "rm", "send_documents"], 1);
        assert!(
            err.contains("implied by bulk_send") && err.contains("`keyward scope edit`"),
            "{err}"
        );
        e.ok(&["scope", "rm", "bulk_send"]);
    }
);

both!(exactly_one_default_role, |e| {
    e.init();
    e.ok(&["role", "add", "Partner", "--scopes", "read,write"]);
    e.ok(&["role", "default", "Partner"]);
    let roles = e.json(&["role", "list"]);
    let defaults: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["default"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, vec!["Partner"]);
    let u = e.json(&["user", "add", "p@x.example", "--domain", "free.example.com"]);
    assert_eq!(u["role"], "Partner");
    // The default role cannot be removed.
    assert!(
        e.fails(&["role", "rm", "Partner", "--reassign-to", "Consumer"], 1)
            .contains("default")
    );
});

both!(role_in_use_needs_a_replacement, |e| {
    e.init();
    e.ok(&["role", "add", "Partner", "--scopes", "write"]);
    e.ok(&[
        "user",
        "add",
        "p@x.example",
        "--domain",
        "free.example.com",
        "--role",
        "Partner",
    ]);
    let err = e.fails(&["role", "rm", "Partner"], 1);
    assert!(
        err.contains("held by 1 user") && err.contains("--reassign-to"),
        "{err}"
    );
    let j = e.json(&["role", "rm", "Partner", "--reassign-to", "Consumer"]);
    assert_eq!(j["reassigned_users"], 1);
    assert_eq!(e.json(&["user", "show", "p@x.example"])["role"], "Consumer");
    assert!(e.fails(&["role", "rm", "Consumer"], 1).contains("built in"));
});

both!(cross_domain_references_are_rejected, |e| {
    e.init();
    e.ok(&["user", "add", "a@x.example", "--domain", "free.example.com"]);
    let err = e.fails(
        &[
            "station",
            "add",
            "S",
            "--user",
            "a@x.example",
            "--domain",
            "other.example.org",
        ],
        1,
    );
    assert!(err.contains("not found"), "{err}");
    // An operator limited to other.example.org neither sees nor changes free.example.com.
    let me = e.json(&["operator", "list"])[0]["account"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!me.is_empty());
    let err = e.fails(
        &[
            "operator",
            "add",
            "limited",
            "--role",
            "admin",
            "--domains",
            "nope.example",
        ],
        1,
    );
    assert!(err.contains("not found"), "{err}");
    e.ok(&[
        "operator",
        "add",
        "limited",
        "--role",
        "support",
        "--domains",
        "other.example.org",
    ]);
    let ops = e.json(&["operator", "list"]);
    let l = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["account"] == "limited")
        .unwrap();
    assert_eq!(l["domains"], serde_json::json!(["other.example.org"]));
});

both!(stations_belong_to_their_users_domain, |e| {
    e.init();
    e.ok(&[
        "user",
        "add",
        "a@x.example",
        "--domain",
        "free.example.com",
        "--station",
        "Acme HQ",
    ]);
    let s = e.json(&[
        "station",
        "add",
        "Acme Billing",
        "--user",
        "a@x.example",
        "--eu-vat-id",
        "de 123 456 789",
        "--rn",
        "hrb  12345",
        "--country",
        "de",
    ]);
    assert_eq!(s["eu_vat_id"], "DE123456789");
    assert_eq!(s["registration_number"], "HRB 12345");
    assert_eq!(s["country_code"], "DE");
    assert_eq!(s["domain"], "free.example.com");
    assert!(
        e.fails(
            &["station", "add", "X", "--user", "a@x.example", "--rn", "1"],
            2
        )
        .contains("--country")
    );
    let err = e.fails(
        &[
            "station",
            "add",
            "X",
            "--user",
            "a@x.example",
            "--rn",
            "1",
            "--country",
            "UK",
        ],
        1,
    );
    assert!(
        err.contains("invalid country code \"UK\": an ISO 3166-1 alpha-2 country code"),
        "{err}"
    );
    // user add gives the initial station its identifiers too.
    let u = e.json(&[
        "user",
        "add",
        "ids@x.example",
        "--domain",
        "free.example.com",
        "--eu-vat-id",
        "ATU 1234 5678",
        "--rn",
        "FN 1",
        "--country",
        "at",
    ]);
    assert_eq!(u["stations"][0]["eu_vat_id"], "ATU12345678");
    assert_eq!(u["stations"][0]["country_code"], "AT");
    let list = e.json(&["station", "list", "--user", "a@x.example"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let id = s["id"].as_str().unwrap();
    e.ok(&["station", "rm", id]);
    let last = e.json(&["station", "list", "--user", "a@x.example"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        e.fails(&["station", "rm", &last], 1)
            .contains("only station")
    );
    assert!(
        e.json(&["station", "list", "--domain", "other.example.org"])
            .as_array()
            .unwrap()
            .is_empty()
    );
});

both!(every_change_is_audited_with_the_os_account, |e| {
    e.init();
    e.ok(&["user", "add", "a@x.example", "--domain", "free.example.com"]);
    e.ok(&["user", "disable", "a@x.example"]);
    e.ok(&["user", "enable", "a@x.example"]);
    e.ok(&["config", "set", "default_ttl", "12h"]);
    let ev = e.json(&["audit"]);
    let actions: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..4],
        &["config.set", "user.enable", "user.disable", "user.add"]
    );
    let account = nix_account();
    let actor = ev[0]["actor"].as_str().unwrap();
    assert!(
        actor.starts_with(&format!("{account}@")),
        "{actor} vs {account}"
    );
    assert_eq!(ev[0]["origin"], "local");
    assert_eq!(ev[0]["details"]["before"], "24h");
    assert_eq!(ev[0]["details"]["after"], "12h");
    let seqs: Vec<i64> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    // Filters.
    let t = e.json(&["audit", "--target", "a@x.example"]);
    assert_eq!(t.as_array().unwrap().len(), 3);
    assert!(
        e.json(&["audit", "--actor", "nobody"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        e.json(&["audit", "--since", "1h"])
            .as_array()
            .unwrap()
            .len(),
        ev.as_array().unwrap().len()
    );
    let v = e.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true);
    // --limit cuts the newest N and says so on stderr; 0 prints all, paged.
    let all = ev.as_array().unwrap().len();
    let o = e.run(&["--json", "audit", "--limit", "2"]);
    let two: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert_eq!(two[1]["seq"], ev[1]["seq"]);
    let note = String::from_utf8_lossy(&o.stderr);
    assert!(
        note.contains("the newest 2 events") && note.contains("--limit 0"),
        "{note}"
    );
    let o = e.run(&["audit", "--limit", &all.to_string()]);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        e.json(&["audit", "--limit", "0"]).as_array().unwrap().len(),
        all
    );
    // SSH origin is recorded.
    let o = e
        .cmd(&["domain", "add", "ssh.example.net"])
        .env("SSH_CONNECTION", "203.0.113.7 50000 10.0.0.1 22")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        e.json(&["audit", "--limit", "1"])[0]["origin"],
        "ssh:203.0.113.7"
    );
    // Anything but an address there is not an SSH origin.
    let o = e
        .cmd(&["domain", "add", "forged.example.net"])
        .env("SSH_CONNECTION", "\u{1b}[2Jtrusted-host 1 2 3")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(e.json(&["audit", "--limit", "1"])[0]["origin"], "local");
});

fn nix_account() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

both!(listing_pages_filters_and_searches, |e| {
    e.init();
    for (m, d) in [
        ("zed@a.example", "free.example.com"),
        ("amy@b.example", "free.example.com"),
        ("bob@c.example", "other.example.org"),
    ] {
        e.ok(&[
            "user",
            "add",
            m,
            "--domain",
            d,
            "--name",
            &format!("Name of {m}"),
        ]);
    }
    assert_eq!(
        emails(&e.json(&["user", "list"])),
        vec!["amy@b.example", "bob@c.example", "zed@a.example"]
    );
    assert_eq!(
        emails(&e.json(&["user", "list", "--desc"])),
        vec!["zed@a.example", "bob@c.example", "amy@b.example"]
    );
    assert_eq!(emails(&e.json(&["user", "list", "--limit", "2"])).len(), 2);
    assert_eq!(
        emails(&e.json(&["user", "list", "--domain", "other.example.org"])),
        vec!["bob@c.example"]
    );
    assert_eq!(
        emails(&e.json(&["user", "list", "--search", "am"])),
        vec!["amy@b.example"]
    );
    // Substring (trigram) search over email and name.
    assert_eq!(
        emails(&e.json(&["user", "list", "--search", "c.exam"])),
        vec!["bob@c.example"]
    );
    assert_eq!(
        emails(&e.json(&["user", "list", "--search", "NAME OF Z"])),
        vec!["zed@a.example"]
    );
    // LIKE and FTS metacharacters are literal.
    assert!(
        e.json(&["user", "list", "--search", "%"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        e.json(&["user", "list", "--search", "\"a\" OR b*"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    e.ok(&["user", "disable", "zed@a.example"]);
    assert_eq!(
        emails(&e.json(&["user", "list", "--status", "disabled"])),
        vec!["zed@a.example"]
    );
    // Human table.
    let t = e.ok(&["user", "list"]);
    assert!(t.starts_with("EMAIL"), "{t}");
    assert_eq!(t.lines().count(), 4);
});

both!(role_changes_report_and_enforce, |e| {
    e.init();
    e.ok(&["role", "add", "Partner", "--scopes", "read,write"]);
    e.ok(&[
        "user",
        "add",
        "p@x.example",
        "--domain",
        "free.example.com",
        "--role",
        "Partner",
    ]);
    let j = e.json(&["user", "set-role", "p@x.example", "Consumer"]);
    assert_eq!(j["role"], "Consumer");
    assert_eq!(j["revoked_tokens"], 0);
    let j = e.json(&["role", "revoke", "Partner", "write"]);
    assert_eq!(j["effective_scopes"], serde_json::json!(["read"]));
    assert_eq!(j["revoked_tokens"], 0);
});

both!(operators_are_managed_by_admins, |e| {
    e.init();
    // An account this host does not have is added (the database may be shared), with
    // a warning; one it has is added quietly.
    let o = e.run(&["operator", "add", "viewer1", "--role", "viewer"]);
    assert!(o.status.success());
    let warned = String::from_utf8_lossy(&o.stderr);
    assert!(warned.contains("no OS account \"viewer1\""), "{warned}");
    let o = e.run(&["operator", "add", "daemon", "--role", "viewer"]);
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    e.ok(&["operator", "rm", "daemon"]);
    let err = e.fails(&["operator", "add", "viewer1", "--role", "admin"], 1);
    assert!(err.contains("already an operator"), "{err}");
    let me = nix_account();
    let err = e.fails(&["operator", "rm", &me], 1);
    assert!(err.contains("last admin"), "{err}");
    e.ok(&["operator", "rm", "viewer1"]);
    assert_eq!(e.json(&["operator", "list"]).as_array().unwrap().len(), 1);
});

both!(demo_fills_the_database, |e| {
    e.init();
    let r = e.json(&["demo", "--users", "300", "--tokens", "900"]);
    assert_eq!(r["users"], 300);
    assert_eq!(r["tokens"], 900);
    // Audited batch by batch: the events add up to what was loaded.
    let events = e.json(&["audit", "--limit", "10000"]);
    let loads: Vec<serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["action"] == "demo.load")
        .map(|ev| match &ev["details"] {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        })
        .collect();
    assert!(!loads.is_empty());
    let users: u64 = loads.iter().map(|d| d["users"].as_u64().unwrap()).sum();
    assert_eq!(users, 300);
    // API keys and developer apps to look at, with tokens and consents of their own.
    let keys = e.json(&["key", "list"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(r["keys"].as_u64().unwrap() as usize, keys.len());
    assert!((20..=40).contains(&keys.len()), "{}", keys.len());
    let tokens = e.json(&["token", "list", "--limit", "10000"]);
    let by_key = |k: &serde_json::Value| {
        tokens
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["client_id"] == k["client_id"])
            .count()
    };
    assert!(keys.iter().all(|k| by_key(k) > 0), "each key issued tokens");
    assert!(
        keys.iter().all(|k| k["last_used_at"].is_string()),
        "{keys:?}"
    );
    let apps = e.json(&["app", "list"]);
    assert_eq!(apps.as_array().unwrap().len(), 2);
    assert_eq!(r["apps"], 2);
    let consents = e.json(&["consent", "list"]);
    assert_eq!(consents.as_array().unwrap().len(), 10);
    let all = e.json(&["user", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 300);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|u| u["status"] == "disabled")
    );
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|u| u["role"] == "Partner")
    );
    let d = e.json(&["domain", "list"]);
    assert!(d.as_array().unwrap().len() >= 3);
    // A second run adds more without colliding.
    e.ok(&["demo", "--users", "10"]);
    assert_eq!(e.json(&["user", "list"]).as_array().unwrap().len(), 310);
    assert_eq!(
        e.json(&["app", "list"]).as_array().unwrap().len(),
        2,
        "no second app of a name"
    );
    assert_eq!(e.json(&["audit", "verify"])["ok"], true);
});

both!(passwords_are_read_from_stdin_and_never_stored_plain, |e| {
    e.init();
    let o = e.run_stdin(
        &[
            "--json",
            "user",
            "add",
            "pw@x.example",
            "--domain",
            "free.example.com",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["has_password"], true);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("correct horse"));
    let o = e.run_stdin(
        &[
            "user",
            "add",
            "pw2@x.example",
            "--domain",
            "free.example.com",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("8 to 1024"));
    if e.engine == "sqlite" {
        for f in ["k.db", "k.db-wal"] {
            let bytes = std::fs::read(e.path(f)).unwrap_or_default();
            assert!(
                !bytes
                    .windows(b"correct horse".len())
                    .any(|w| w == b"correct horse"),
                "{f}"
            );
        }
    }
});

#[test]
fn implicit_default_database_is_created_on_first_use() {
    let e = Env::sqlite();
    let o = std::process::Command::new(common::BIN)
        .args(["--json", "domain", "list"])
        .env("XDG_DATA_HOME", e.path("data"))
        .env("XDG_CONFIG_HOME", e.path("config"))
        .env_remove("KEYWARD_DATABASE_URL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let db = e.path("data").join("keyward").join("keyward.db");
    assert!(db.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o077,
        0,
        "database must not be readable by others"
    );
}

#[test]
fn a_first_init_with_a_bad_value_leaves_nothing_half_done() {
    let e = Env::sqlite();
    let default = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .args(args)
            .env("XDG_DATA_HOME", e.path("data"))
            .env("XDG_CONFIG_HOME", e.path("config"))
            .env_remove("KEYWARD_DATABASE_URL")
            .env_remove("KEYWARD_MASTER_KEY_FILE")
            .output()
            .unwrap()
    };
    for bad in [
        vec!["init", "--issuer", "bad"],
        vec!["init", "--domain", "bad domain"],
    ] {
        let o = default(&bad);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("\"bad"), "{bad:?}: {err}");
    }
    // The next command finds the first use still to do, and does it.
    let o = default(&["--json", "domain", "list"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    let o = default(&["init", "--domain", "free.example.com"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An explicit database whose set-up never finished says to run init, not to ask
    // an admin who does not exist.
    let url = format!("sqlite://{}", e.path("half.db").display());
    e.ok(&["--database-url", &url, "init"]);
    common::rt().block_on(async {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(e.path("half.db"));
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        for sql in ["DELETE FROM operator_domains", "DELETE FROM operators"] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    });
    let err = e.fails(&["--database-url", &url, "domain", "list"], 3);
    assert!(err.contains("run `keyward init`"), "{err}");
}

#[test]
fn processes_opening_a_new_database_at_once_all_succeed() {
    // Eight first uses of the implicit default database at the same moment: each
    // must find (or make) one complete schema, not trip over another's migration.
    let e = Env::sqlite();
    let start = std::sync::Barrier::new(8);
    let outs: Vec<std::process::Output> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    let mut c = std::process::Command::new(common::BIN);
                    c.args(["--json", "domain", "list"])
                        .env("XDG_DATA_HOME", e.path("data"))
                        .env("XDG_CONFIG_HOME", e.path("config"))
                        .env_remove("KEYWARD_DATABASE_URL")
                        .env_remove("KEYWARD_MASTER_KEY_FILE");
                    start.wait();
                    c.output().unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    }
    // And init with an explicit URL beside commands on the same new file.
    let url = format!("sqlite://{}", e.path("shared.db").display());
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| e.run(&["--database-url", &url, "init"])))
            .collect();
        for h in hs {
            let o = h.join().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    });
    e.ok(&["--database-url", &url, "audit", "verify"]);
}

#[test]
fn environment_problems_are_reported_at_once_and_in_the_asked_format() {
    let e = Env::sqlite();
    // Nothing listens on port 1: the cause, at once, not a pool timeout 10 s later.
    let o = e
        .cmd(&["user", "list"])
        .env("KEYWARD_DATABASE_URL", "postgres://kw@127.0.0.1:1/db")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Connection refused"), "{err}");
    // The console without a terminal, with --json: the error is JSON too.
    let o = e.cmd(&["--json"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["error"], "usage");
    assert!(v["message"].as_str().unwrap().contains("needs a terminal"));
    // A bad revocation reason is called a reason.
    e.init();
    let err = e.fails(
        &[
            "token",
            "revoke",
            "--user",
            "nobody@x.example",
            "--reason",
            "a\u{1b}b",
        ],
        1,
    );
    assert!(err.contains("invalid reason"), "{err}");
}

#[test]
fn password_in_argv_url_is_warned_about() {
    let e = Env::sqlite();
    let o = e
        .cmd(&[])
        .args([
            "--database-url",
            "postgres://u:secret@127.0.0.1:1/x",
            "domain",
            "list",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: the database password is visible"),
        "{err}"
    );
    assert!(
        !err.contains("secret@"),
        "password leaked into a message: {err}"
    );
    assert_eq!(o.status.code(), Some(3));
}

both!(csv_import_takes_good_rows_and_reports_bad_ones, |e| {
    e.init();
    e.ok(&["role", "add", "Partner", "--scopes", "write"]);
    e.ok(&[
        "user",
        "add",
        "exists@x.example",
        "--domain",
        "free.example.com",
    ]);
    let csv = "email,name,role,station\n\
               ok1@x.example,Ok One,,\n\
               ok2@x.example,\"Two, Jr.\",Partner,Two HQ\n\
               not-an-email,Bad,,\n\
               ok3@x.example,Three,Ghost,\n\
               OK1@x.example,Dup,,\n\
               exists@x.example,Again,,\n\
               ok4@x.example,Admin Wannabe,Administrator,\n";
    std::fs::write(e.path("users.csv"), csv).unwrap();
    let file = e.path("users.csv").display().to_string();
    // Dry run: full report, nothing written.
    let o = e.run(&[
        "--json",
        "user",
        "import",
        &file,
        "--domain",
        "free.example.com",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["rows"], 7);
    assert_eq!(r["created"], 3);
    assert_eq!(e.json(&["user", "list"]).as_array().unwrap().len(), 1);
    // Real run.
    let o = e.run(&[
        "--json",
        "user",
        "import",
        &file,
        "--domain",
        "free.example.com",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["created"], 3);
    let lines: Vec<i64> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5, 6, 7]);
    let reasons = r["errors"].to_string();
    assert!(
        reasons.contains("invalid email")
            && reasons.contains("unknown role")
            && reasons.contains("duplicate")
            && reasons.contains("already exists"),
        "{reasons}"
    );
    let u = e.json(&["user", "show", "ok2@x.example"]);
    assert_eq!(u["name"], "Two, Jr.");
    assert_eq!(u["role"], "Partner");
    assert_eq!(u["stations"][0]["name"], "Two HQ");
    assert_eq!(u["api_access"], "pending");
    // Administrator rows were imported by an admin operator.
    assert_eq!(
        e.json(&["user", "show", "ok4@x.example"])["role"],
        "Administrator"
    );
    assert_eq!(e.json(&["user", "list"]).as_array().unwrap().len(), 4);
    // Importing the same file again creates nothing.
    let o = e.run(&[
        "--json",
        "user",
        "import",
        &file,
        "--domain",
        "free.example.com",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["created"], 0);
});

#[test]
fn usage_errors_exit_2_and_are_json_with_json() {
    let e = Env::sqlite();
    let o = e.run(&["--json", "user", "add"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["error"], "usage");
    assert!(v["message"].as_str().unwrap().contains("required"), "{v}");
    assert!(o.stdout.is_empty());
    let o = e.run(&["token", "revoke", "x", "--user", "y"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `keyward audit | head -1`: the reader goes first. Rust ignores SIGPIPE, so the
    // write failed and `println!` panicked (exit 101, a panic message on stderr).
    let e = Env::sqlite();
    e.ok(&["init", "--domain", "free.example.com"]);
    for i in 0..3 {
        e.ok(&[
            "user",
            "add",
            &format!("u{i}@free.example.com"),
            "--domain",
            "free.example.com",
        ]);
    }
    for _ in 0..5 {
        let mut child = e
            .cmd(&["audit"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_ne!(out.status.code(), Some(101), "{err}");
    }
}
