//! Declarative provisioning: apply, dry run, atomicity, prune, export round trip.

use crate::both;
use crate::common::Env;
use serde_json::Value;

const EXAMPLE: &str = include_str!("../../assets/provision.example.toml");

fn write(e: &Env, name: &str, text: &str) -> String {
    let p = e.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn apply(e: &Env, file: &str, extra: &[&str]) -> Value {
    let mut a = vec!["apply", "-f", file];
    a.extend_from_slice(extra);
    e.json(&a)
}

fn audit_len(e: &Env) -> usize {
    e.json(&["audit", "--limit", "100000"])
        .as_array()
        .unwrap()
        .len()
}

both!(example_applies_idempotently, |e| {
    e.ok(&["init"]);
    let f = write(e, "env.toml", EXAMPLE);
    // Dry run: the plan, no secrets, nothing changed.
    let before = audit_len(e);
    let plan = apply(e, &f, &["--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    let n = plan["changes"].as_array().unwrap().len();
    assert!(n >= 10, "{plan}");
    assert!(plan["secrets"].as_array().unwrap().is_empty());
    assert_eq!(audit_len(e), before);
    assert!(e.json(&["user", "list"]).as_array().unwrap().is_empty());
    // Real run: the same plan, secrets once.
    let r = apply(e, &f, &[]);
    assert_eq!(r["changes"].as_array().unwrap().len(), n);
    let secrets = r["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 3);
    assert!(
        secrets
            .iter()
            .all(|s| s["client_secret"].as_str().unwrap().starts_with("kw"))
    );
    let alice = e.json(&["user", "show", "alice@acme.example"]);
    assert_eq!(alice["role"], "Partner");
    assert_eq!(alice["stations"].as_array().unwrap().len(), 2);
    // The plan named each station the run created, a new user's first one included.
    let stations = e.json(&["station", "list"]);
    let planned = plan["changes"].to_string();
    for s in stations.as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        assert!(planned.contains(&format!("{name} of ")), "{name}: {plan}");
    }
    assert_eq!(alice["api_access"], "enabled");
    let p = e.json(&["role", "show", "Partner"]);
    assert_eq!(
        p["effective_scopes"],
        serde_json::json!(["read", "receive_documents", "send_documents"])
    );
    // Every change audited with the file's name, each station of a new user too.
    let ev = e.json(&["audit", "--limit", "1000"]);
    let ev = &ev.as_array().unwrap()[..audit_len(e) - before];
    assert!(
        ev.iter().all(|v| v["details"]["file"] == "env.toml"),
        "{ev:#?}"
    );
    for (action, target) in [
        ("domain.add", "partners.example.org"),
        ("user.add", "alice@acme.example"),
        ("station.add", "Acme Billing"),
    ] {
        assert!(
            ev.iter()
                .any(|v| v["action"] == action && v["target"] == target),
            "{action} {target}: {ev:#?}"
        );
    }
    // Second run: no changes.
    let again = apply(e, &f, &[]);
    assert!(again["changes"].as_array().unwrap().is_empty(), "{again}");
    assert!(e.ok(&["apply", "-f", &f]).contains("no changes"));
});

both!(a_failure_anywhere_changes_nothing, |e| {
    e.ok(&["init"]);
    // Valid entities first, then a user with an unknown role at the end.
    let bad = format!(
        "{EXAMPLE}\n[[users]]\nemail = \"zed@x.example\"\ndomain = \"free.example.com\"\nrole = \"Ghost\"\n"
    );
    let bad = bad.replace("[prune]\nkeys = false\n", "");
    let f = write(e, "bad.toml", &bad);
    let before = audit_len(e);
    let err = e.fails(&["apply", "-f", &f], 1);
    let line = bad
        .lines()
        .position(|l| l.contains("zed@x.example"))
        .unwrap(); // 0-based line of the email; the entry header is the line before
    assert!(
        err.contains(&format!("bad.toml:{line} users[3] (zed@x.example)")),
        "{err}"
    );
    assert!(err.contains("role \"Ghost\" not found"), "{err}");
    assert_eq!(audit_len(e), before);
    assert!(e.json(&["user", "list"]).as_array().unwrap().is_empty());
    assert_eq!(e.json(&["domain", "list"]).as_array().unwrap().len(), 0);
    // --secrets-out is not left behind after a failure.
    let out = e.path("secrets.json");
    e.fails(
        &[
            "apply",
            "-f",
            &f,
            "--secrets-out",
            &out.display().to_string(),
        ],
        1,
    );
    assert!(!out.exists());
});

both!(bad_files_are_rejected_with_their_location, |e| {
    e.ok(&["init"]);
    let f = write(
        e,
        "typo.toml",
        "[[domains]]\nname = \"a.example\"\ncolour = \"blue\"\n",
    );
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(
        err.contains("typo.toml") && err.contains("colour") && err.contains("line 3"),
        "{err}"
    );
    // A parse error names its place and stays short, however long the line.
    let deep = format!(
        "[[domains]]\nname = {}{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let f = write(e, "deep.toml", &deep);
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(
        err.contains("deep.toml") && err.contains("line 2, column ") && err.len() < 400,
        "{err}"
    );
    let f = write(e, "scope.toml", "[[scopes]]\nname = \"Bad Scope\"\n");
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(
        err.contains("scope.toml:1 scopes[0]") && err.contains("^[a-z]"),
        "{err}"
    );
    let f = write(
        e,
        "dup.toml",
        "[[domains]]\nname = \"a.example\"\n[[users]]\nemail = \"x@a.example\"\ndomain = \"a.example\"\n[[users]]\nemail = \"X@A.example\"\ndomain = \"a.example\"\n",
    );
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(
        err.contains("duplicate user") && err.contains("dup.toml:6"),
        "{err}"
    );
    let f = write(
        e,
        "cycle.toml",
        "[[scopes]]\nname = \"read\"\nimplies = [\"admin\"]\n",
    );
    assert!(e.fails(&["apply", "-f", &f], 1).contains("cycle"));
    let keyed = |extra: &str| {
        format!(
            "[[domains]]\nname = \"a.example\"\n[[users]]\nemail = \"x@a.example\"\ndomain = \"a.example\"\n[[keys]]\nuser = \"x@a.example\"\ndomain = \"a.example\"\nname = \"k\"\n{extra}"
        )
    };
    let f = write(e, "when.toml", &keyed("expires_at = \"next tuesday\"\n"));
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(
        err.contains("when.toml:6 keys[0]")
            && err.contains("next tuesday")
            && err.contains("RFC 3339"),
        "{err}"
    );
    let f = write(
        e,
        "both.toml",
        &keyed("expires_in = \"90d\"\nexpires_at = \"2030-01-01T00:00:00Z\"\n"),
    );
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(err.contains("not both"), "{err}");
    // A new key that has expired already is created as the file says, with a warning
    // that names the entry (stderr; `warnings` in JSON).
    let f = write(
        e,
        "past.toml",
        &keyed("expires_at = \"2020-01-01T00:00:00Z\"\n"),
    );
    let r = apply(e, &f, &["--dry-run"]);
    assert_eq!(r["warnings"].as_array().map(Vec::len), Some(1), "{r}");
    let w = r["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("past.toml:6 keys[0] (k)") && w.contains("2020-01-01T00:00:00Z has passed"),
        "{w}"
    );
    let o = e.run(&["apply", "-f", &f, "--dry-run"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: ") && err.contains("has passed"),
        "{err}"
    );
    // With --json, stderr stays JSON: a document per warning.
    let o = e.run(&["--json", "apply", "-f", &f, "--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    let docs: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        docs.len() == 1 && docs[0]["warning"].as_str().unwrap().contains("has passed"),
        "{err}"
    );
    let ok = apply(
        e,
        &write(e, "later.toml", &keyed("expires_in = \"90d\"\n")),
        &["--dry-run"],
    );
    assert_eq!(ok["warnings"], serde_json::json!([]));
    let f = write(e, "syntax.toml", "[[domains]\nname = 1\n");
    assert!(e.fails(&["apply", "-f", &f], 1).contains("syntax.toml"));
    assert!(e.json(&["domain", "list"]).as_array().unwrap().is_empty());
    // The expiry is used only when the key is created, but a bad one fails every run,
    // not only the first.
    apply(
        e,
        &write(e, "made.toml", &keyed("expires_in = \"90d\"\n")),
        &[],
    );
    let f = write(e, "negative.toml", &keyed("expires_in = \"-5m\"\n"));
    let err = e.fails(&["apply", "-f", &f], 1);
    assert!(
        err.contains("negative.toml:6 keys[0]") && err.contains("-5m"),
        "{err}"
    );
});

both!(prune_removes_what_the_file_no_longer_names, |e| {
    e.ok(&["init"]);
    let f = write(e, "env.toml", EXAMPLE);
    apply(e, &f, &[]);
    let t = e.json(&["token", "mint", "--user", "bob@globex.example"]);
    // Without prune, dropping bob from the file leaves him alone.
    let without_bob = EXAMPLE.replace("[[users]]\nemail = \"bob@globex.example\"\ndomain = \"free.example.com\"\nname = \"Bob Novak\"\nstations = [{ name = \"Globex\" }]\n", "");
    assert_ne!(without_bob, EXAMPLE);
    let f2 = write(e, "env2.toml", &without_bob);
    assert!(apply(e, &f2, &[])["changes"].as_array().unwrap().is_empty());
    // With prune, the plan lists the removal first (dry run), then removes.
    let pruned = without_bob.replace(
        "[prune]\nkeys = false",
        "[prune]\nusers = true\nkeys = true",
    );
    let f3 = write(e, "env3.toml", &pruned);
    let plan = apply(e, &f3, &["--dry-run"]);
    let ch = plan["changes"].as_array().unwrap();
    assert_eq!(ch.len(), 1, "{plan}");
    assert_eq!(ch[0]["op"], "-");
    assert!(
        ch[0]["name"]
            .as_str()
            .unwrap()
            .contains("bob@globex.example")
    );
    assert!(
        ch[0]["detail"]
            .as_str()
            .unwrap()
            .contains("revokes 1 token")
    );
    assert_eq!(e.json(&["user", "list"]).as_array().unwrap().len(), 3);
    apply(e, &f3, &[]);
    assert_eq!(e.json(&["user", "list"]).as_array().unwrap().len(), 2);
    let o = e.run_stdin(
        &["--json", "token", "verify", "-"],
        t["access_token"].as_str().unwrap(),
    );
    assert_eq!(o.status.code(), Some(1));
});

both!(export_then_apply_reproduces_the_state, |e| {
    e.ok(&["init"]);
    let f = write(e, "env.toml", EXAMPLE);
    apply(e, &f, &[]);
    // Names are not unique: two keys under the default name, one that expires, and
    // an app of the same name as another in its domain all come back as themselves.
    for extra in [&[][..], &[][..], &["--expires-in", "90d"][..]] {
        let mut args = vec!["key", "create", "--user", "bob@globex.example"];
        args.extend(extra);
        e.ok(&args);
    }
    e.ok(&[
        "app",
        "create",
        "Ledger Connect",
        "--owner",
        "bob@globex.example",
        "--redirect-uri",
        "https://globex.example/cb",
    ]);
    e.ok(&["user", "disable", "bob@globex.example"]);
    let exported = e.ok(&["export"]);
    assert!(exported.contains("expires_at = \""), "{exported}");
    assert!(
        !exported.contains("kws_")
            && !exported.contains("kwa_")
            && !exported.contains("client_secret"),
        "{exported}"
    );
    // Per-key settings made at creation travel with the export.
    assert!(
        exported.contains("rate_exempt = true") && exported.contains("refresh = false"),
        "{exported}"
    );
    // Applying the export to the same database changes nothing.
    let x = write(e, "export.toml", &exported);
    assert!(apply(e, &x, &[])["changes"].as_array().unwrap().is_empty());
    // Nor with pruning: every key and app the export names is matched, none removed.
    let pruned = write(
        e,
        "pruned.toml",
        &format!("{exported}\n[prune]\nkeys = true\napps = true\n"),
    );
    assert!(
        apply(e, &pruned, &[])["changes"]
            .as_array()
            .unwrap()
            .is_empty(),
        "prune removed what the export names"
    );
    let bobs: Vec<Value> = e
        .json(&["key", "list", "--user", "bob@globex.example"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(bobs.len(), 3, "{bobs:?}");
    // Applying it to an empty database reproduces the state.
    let other = if e.engine == "sqlite" {
        Env::sqlite()
    } else {
        Env::pg().unwrap()
    };
    other.ok(&["init"]);
    apply(&other, &x, &[]);
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with("# Keyward state exported"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(other.ok(&["export"])), strip(exported.clone()));
    assert_eq!(
        other.json(&["user", "show", "bob@globex.example"])["status"],
        "disabled"
    );
    // --domain exports one domain's users only.
    let one = e.ok(&["export", "--domain", "partners.example.org"]);
    assert!(one.contains("carla@initech.example") && !one.contains("alice@acme.example"));
    // --json: the same document as one JSON object, still without secrets.
    let j = e.json(&["export"]);
    let users = j["users"].as_array().expect("users");
    let bob = users
        .iter()
        .find(|u| u["email"] == "bob@globex.example")
        .expect("bob exported");
    assert_eq!(bob["status"], "disabled");
    let toml_users = exported.matches("[[users]]").count();
    assert_eq!(users.len(), toml_users);
    assert_eq!(
        j["keys"].as_array().map(Vec::len),
        Some(exported.matches("[[keys]]").count())
    );
    let text = j.to_string();
    assert!(
        !text.contains("kws_") && !text.contains("client_secret"),
        "{text}"
    );
});

#[test]
fn secrets_out_is_private_and_never_overwritten() {
    let e = Env::sqlite();
    e.ok(&["init"]);
    let f = write(&e, "env.toml", EXAMPLE);
    let out = e.path("secrets.json");
    let o = e.ok(&[
        "apply",
        "-f",
        &f,
        "--secrets-out",
        &out.display().to_string(),
    ]);
    assert!(
        !o.contains("kws_"),
        "secrets printed despite --secrets-out: {o}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let secrets: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(secrets.as_array().unwrap().len(), 3);
    let written = std::fs::read(&out).unwrap();
    // A re-run of the same script: nothing to create, so the file is not needed.
    let o = e.ok(&[
        "apply",
        "-f",
        &f,
        "--secrets-out",
        &out.display().to_string(),
    ]);
    assert!(o.contains("no changes"), "{o}");
    assert_eq!(std::fs::read(&out).unwrap(), written);
    // One that creates a key is refused before anything changes: its secret would
    // have nowhere to go.
    let more = write(
        &e,
        "more.toml",
        &format!(
            "{EXAMPLE}\n[[keys]]\nname = \"extra\"\nuser = \"alice@acme.example\"\ndomain = \"free.example.com\"\n"
        ),
    );
    // The state, without export's header line (it carries the time).
    let state = || {
        let x = e.ok(&["export"]);
        x.split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or(x)
    };
    let before = state();
    let err = e.fails(
        &[
            "apply",
            "-f",
            &more,
            "--secrets-out",
            &out.display().to_string(),
        ],
        1,
    );
    assert!(
        err.contains("does not exist yet") && err.contains("would create 1 credential"),
        "{err}"
    );
    assert_eq!(state(), before);
    assert_eq!(std::fs::read(&out).unwrap(), written);
}

both!(
    purge_keeps_tokens_within_retention_and_unexpired_revoked_ones,
    |e| {
        e.ok(&["init", "--domain", "free.example.com"]);
        e.json(&["demo", "--users", "40", "--tokens", "400"]);
        e.ok(&["user", "add", "r@x.example", "--domain", "free.example.com"]);
        let t = e.json(&["token", "mint", "--user", "r@x.example"]);
        e.ok(&["token", "revoke", t["jti"].as_str().unwrap()]);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let exp = |v: &serde_json::Value| {
            time::OffsetDateTime::parse(
                v["expires_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
            .unix_timestamp()
        };
        let before = e.json(&["token", "list", "--limit", "10000"]);
        let all = before.as_array().unwrap();
        let old = all.iter().filter(|x| exp(x) < now - 30 * 86400).count();
        assert!(old > 0, "the demo data has long-expired tokens");
        let r = e.json(&["token", "purge", "--expired-before", "30d"]);
        assert_eq!(r["removed"].as_u64().unwrap() as usize, old);
        let after = e.json(&["token", "list", "--limit", "10000"]);
        let after = after.as_array().unwrap();
        assert_eq!(after.len(), all.len() - old);
        assert!(after.iter().all(|x| exp(x) >= now - 30 * 86400 - 5));
        // The revoked, unexpired token is kept (its revocation must stay visible).
        assert!(
            after
                .iter()
                .any(|x| x["jti"] == t["jti"] && !x["revoked_at"].is_null())
        );
        assert_eq!(
            e.json(&["token", "purge", "--expired-before", "30d"])["removed"],
            0
        );
    }
);
