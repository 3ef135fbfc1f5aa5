//! The core library driven directly: permissions, concurrency, refresh families and
//! the long-running verifier. Every test runs on SQLite and (when configured) PostgreSQL.

mod common;
use common::{Env, open, rt};
use keyward::model::{OperatorRole, UserStatus};
use keyward::service::directory::NewUser;
use keyward::service::tokens::{Grant, MintSpec, Verifier};
use keyward::{Actor, Error, Keyward};
use std::collections::BTreeSet;

/// A `client_credentials` grant with the key's own secret (nothing proven beforehand,
/// no scope asked).
async fn grant(
    svc: &keyward::service::grants::TokenService,
    key: &keyward::service::credentials::NewKey,
) -> Result<keyward::service::tokens::Minted, keyward::service::grants::GrantError> {
    use secrecy::ExposeSecret;
    svc.client_credentials(
        &key.key.client_id,
        key.client_secret.expose_secret(),
        None,
        None,
    )
    .await
}

fn as_role(a: &Actor, role: OperatorRole, domains: Option<Vec<(String, String)>>) -> Actor {
    Actor {
        role,
        domains,
        account: format!("{}-test", role),
        ..a.clone()
    }
}

/// A user in `free.example.com` with an API key that issues refresh tokens.
async fn user_with_key(
    kw: &Keyward,
    admin: &Actor,
    email: &str,
) -> keyward::service::credentials::NewKey {
    kw.user_add(admin, new_user(email, "free.example.com"))
        .await
        .unwrap();
    kw.key_create(
        admin,
        keyward::service::credentials::KeySpec {
            user: email.into(),
            issue_refresh: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn new_user(email: &str, domain: &str) -> NewUser {
    NewUser {
        email: email.into(),
        domain: domain.into(),
        ..Default::default()
    }
}

macro_rules! both_async {
    ($name:ident, |$e:ident| $body:block) => {
        mod $name {
            use super::*;
            async fn body($e: &Env) $body
            #[test]
            fn sqlite() {
                rt().block_on(body(&Env::sqlite()));
            }
            #[test]
            fn postgres() {
                if let Some(e) = Env::pg() {
                    rt().block_on(body(&e));
                }
            }
        }
    };
}

both_async!(purge_count_is_what_the_purge_deletes, |e| {
    let (kw, admin) = open(e).await;
    kw.demo(
        &admin,
        keyward::service::demo::DemoOptions {
            users: 30,
            tokens: 300,
        },
        |_, _| {},
    )
    .await
    .unwrap();
    let counted = kw.token_purge_count(&admin, "10d").await.unwrap();
    let (tokens, others) = (counted.tokens, counted.others);
    assert!(tokens > 0, "the demo data has long-expired tokens");
    let at = |p: keyward::service::tokens::Purgeable| (p.tokens, p.others);
    // Counting changes nothing; the purge deletes what was counted, then nothing is left.
    assert_eq!(
        at(kw.token_purge_count(&admin, "10d").await.unwrap()),
        (tokens, others)
    );
    // The confirmed cutoff bounds the purge: an earlier one takes less.
    let earlier = kw
        .token_purge_before(&admin, counted.before - 30 * 86_400)
        .await
        .unwrap();
    assert!(earlier < tokens, "{earlier} of {tokens}");
    assert_eq!(
        kw.token_purge_before(&admin, counted.before).await.unwrap(),
        tokens - earlier
    );
    assert_eq!(
        at(kw.token_purge_count(&admin, "10d").await.unwrap()),
        (0, 0)
    );
    assert_eq!(kw.token_purge(&admin, "10d").await.unwrap(), 0);
    // A cutoff in the future would take live tokens: refused, naming it.
    let live = kw.token_purge_count(&admin, "1s").await.unwrap();
    let e = kw
        .token_purge_before(&admin, keyward::model::now() + 3_600)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("purge cutoff") && e.contains("not after now"),
        "{e}"
    );
    assert_eq!(kw.token_purge_count(&admin, "1s").await.unwrap(), live);
    let viewer = as_role(&admin, OperatorRole::Viewer, None);
    denied(kw.token_purge_count(&viewer, "10d").await);
    denied(kw.token_purge_before(&viewer, counted.before).await);
});

fn denied<T: std::fmt::Debug>(r: keyward::Result<T>) {
    match r {
        Err(Error::PermissionDenied(_)) => {}
        other => panic!("expected permission denied, got {other:?}"),
    }
}

both_async!(
    previews_of_narrowing_count_exactly_and_change_nothing,
    |e| {
        let (kw, admin) = open(e).await;
        let mut u = new_user("w@x.example", "free.example.com");
        u.role = Some("Administrator".into());
        kw.user_add(&admin, u).await.unwrap();
        let mint = |scopes: &str| MintSpec {
            user: "w@x.example".into(),
            scopes: Some(vec![scopes.to_string()]),
            ..Default::default()
        };
        for s in ["admin", "write", "read"] {
            kw.mint(&admin, mint(s)).await.unwrap();
        }
        kw.key_create(
            &admin,
            keyward::service::credentials::KeySpec {
                user: "w@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // To Consumer (read): the admin and write tokens go, the key is trimmed.
        let seen = kw
            .user_set_role_preview(&admin, "w@x.example", "Consumer")
            .await
            .unwrap();
        assert_eq!((seen.revoked_tokens, seen.trimmed_keys), (2, 1));
        // Nothing changed: the same preview says the same, the role is unchanged.
        let again = kw
            .user_set_role_preview(&admin, "w@x.example", "Consumer")
            .await
            .unwrap();
        assert_eq!(again, seen);
        let d = kw.user_show(&admin, "w@x.example", None).await.unwrap();
        assert_eq!(d.user.role, "Administrator");
        let (_, done) = kw
            .user_set_role(&admin, "w@x.example", "Consumer")
            .await
            .unwrap();
        assert_eq!(done, seen);
        // A role's scope revoked, and a role removed: previewed alike.
        kw.role_add(&admin, "Writers", &["write".into()], None)
            .await
            .unwrap();
        kw.user_set_role(&admin, "w@x.example", "Writers")
            .await
            .unwrap();
        kw.mint(&admin, mint("write")).await.unwrap();
        let p = kw
            .role_revoke_preview(&admin, "Writers", &["write".into()])
            .await
            .unwrap();
        // Writers keeps nothing: its read token (from Consumer) goes too.
        assert_eq!(p.revoked_tokens, 2);
        let (moved, p) = kw
            .role_rm_preview(&admin, "Writers", Some("Consumer"))
            .await
            .unwrap();
        assert_eq!((moved, p.revoked_tokens), (1, 1));
        assert!(kw.role_show(&admin, "Writers").await.is_ok());
        assert!(kw.audit_verify(&admin).await.unwrap().ok);
    }
);

both_async!(
    imports_assign_only_roles_the_operator_may_and_audit_each_user,
    |e| {
        let (kw, admin) = open(e).await;
        let support = as_role(&admin, OperatorRole::Support, None);
        let csv = b"email,name\nb6@x.example,B6\n";
        // Rows without a role get `--role`: an admin role is refused as `user add` would
        // refuse it, and nothing is created.
        denied(
            kw.user_import(
                &support,
                "free.example.com",
                Some("Administrator"),
                csv,
                false,
                |_| {},
            )
            .await,
        );
        assert_eq!(kw.user_count(&admin, Default::default()).await.unwrap(), 0);
        // Within the operator's rights: each user is audited, with role and station.
        let r = kw
            .user_import(
                &support,
                "free.example.com",
                Some("Consumer"),
                csv,
                false,
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(r.created, 1);
        let ev = kw
            .audit_list(
                &admin,
                keyward::store::audit::AuditQuery {
                    target: Some("b6@x.example".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].action, "user.add");
        assert_eq!(ev[0].details["role"], "Consumer", "{ev:?}");
        assert_eq!(ev[0].details["import"], true, "{ev:?}");
        assert!(kw.audit_verify(&admin).await.unwrap().ok);
    }
);

both_async!(operator_roles_are_enforced_in_the_services, |e| {
    let (kw, admin) = open(e).await;
    kw.user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    let viewer = as_role(&admin, OperatorRole::Viewer, None);
    let support = as_role(&admin, OperatorRole::Support, None);
    // viewer: reads only.
    assert_eq!(kw.user_count(&viewer, Default::default()).await.unwrap(), 1);
    denied(
        kw.user_add(&viewer, new_user("b@x.example", "free.example.com"))
            .await,
    );
    denied(
        kw.user_set_status(&viewer, "a@x.example", UserStatus::Disabled)
            .await,
    );
    denied(
        kw.station_add(&viewer, "S", "a@x.example", None, None, None, None)
            .await,
    );
    denied(kw.domain_add(&viewer, "v.example").await);
    denied(
        kw.mint(
            &viewer,
            MintSpec {
                user: "a@x.example".into(),
                ..Default::default()
            },
        )
        .await,
    );
    // support: users, stations, API access within the role; nothing global.
    kw.user_add(&support, new_user("c@x.example", "free.example.com"))
        .await
        .unwrap();
    kw.station_add(&support, "S2", "c@x.example", None, None, None, None)
        .await
        .unwrap();
    kw.mint(
        &support,
        MintSpec {
            user: "c@x.example".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    denied(kw.role_add(&support, "R", &[], None).await);
    denied(kw.scope_add(&support, "s1", None, &[]).await);
    denied(kw.config_set(&support, "default_ttl", "1h").await);
    denied(kw.operator_add(&support, "eve", "admin", &[]).await);
    denied(
        kw.signing_key_rotate(&support, keyward::token::Alg::ES256, false)
            .await,
    );
    denied(kw.user_rm(&support, "c@x.example", None).await);
    // Support creates keys, but exempting one from rate limits is for admins.
    denied(
        kw.key_create(
            &support,
            keyward::service::credentials::KeySpec {
                user: "c@x.example".into(),
                rate_exempt: true,
                ..Default::default()
            },
        )
        .await
        .map(|k| k.key.client_id),
    );
    // support cannot hand out a role that includes admin.
    denied(
        kw.user_set_role(&support, "c@x.example", "Administrator")
            .await,
    );
    let mut nu = new_user("d@x.example", "free.example.com");
    nu.role = Some("Administrator".into());
    denied(kw.user_add(&support, nu).await);
    // Nothing changed by the refused calls.
    assert_eq!(kw.user_count(&admin, Default::default()).await.unwrap(), 2);
    assert_eq!(kw.role_list(&admin).await.unwrap().len(), 2);
});

both_async!(domain_limited_operators_see_only_their_domains, |e| {
    let (kw, admin) = open(e).await;
    kw.user_add(&admin, new_user("free@x.example", "free.example.com"))
        .await
        .unwrap();
    kw.user_add(&admin, new_user("other@x.example", "other.example.org"))
        .await
        .unwrap();
    let other = kw
        .domain_list(&admin)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.name == "other.example.org")
        .unwrap();
    let limited = as_role(
        &admin,
        OperatorRole::Admin,
        Some(vec![(other.id.clone(), other.name.clone())]),
    );
    let users = kw
        .user_list(
            &limited,
            keyward::store::directory::UserQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        vec!["other@x.example"]
    );
    assert_eq!(kw.domain_list(&limited).await.unwrap().len(), 1);
    assert!(matches!(
        kw.user_show(&limited, "free@x.example", None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        kw.user_add(&limited, new_user("n@x.example", "free.example.com"))
            .await
            .is_err()
    );
    denied(kw.domain_add(&limited, "z.example").await);
    denied(kw.role_add(&limited, "R", &[], None).await);
    // A token of another domain cannot be inspected.
    let t = kw
        .mint(
            &admin,
            MintSpec {
                user: "free@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    denied(kw.introspect(Some(&limited), &t.access_token).await);
    let audit = kw
        .audit_list(
            &limited,
            keyward::store::audit::AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        audit.iter().all(|ev| ev.target != "free@x.example"),
        "{audit:?}"
    );
});

both_async!(stale_updates_fail_with_a_conflict, |e| {
    let (kw, admin) = open(e).await;
    let u = kw
        .user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    let v = u.user.version;
    kw.user_rename(&admin, &u.user.id, v, "First")
        .await
        .unwrap();
    // A second writer that read the same version loses instead of overwriting.
    match kw.user_rename(&admin, &u.user.id, v, "Second").await {
        Err(Error::Conflict(m)) => assert!(m.contains("changed by someone else"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        kw.user_show(&admin, "a@x.example", None)
            .await
            .unwrap()
            .user
            .name,
        "First"
    );
});

both_async!(refresh_tokens_rotate_and_reuse_revokes_the_family, |e| {
    let (kw, admin) = open(e).await;
    let u = kw
        .user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    let grant = Grant {
        domain_id: u.user.domain_id.clone(),
        domain: u.user.domain.clone(),
        user_id: u.user.id.clone(),
        key_id: None,
        app_id: None,
        client_id: "keyward-login".into(),
        scopes: BTreeSet::from(["read".to_string()]),
        ttl: 3600,
        source: "test",
        family_id: Some("fam-1".into()),
    };
    let g2 = grant.clone();
    let (secrets, settings) = (kw.secrets().await.unwrap(), kw.settings().await.unwrap());
    let first = kw
        .write(async move |cx| Keyward::issue_refresh(cx, &secrets, &settings, &g2, "fam-1").await)
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let r1 = first.expose_secret().to_string();
    assert!(r1.starts_with("kwr_"));
    let m1 = kw
        .redeem_refresh(&r1, Some("keyward-login"), None)
        .await
        .unwrap();
    let r2 = m1.refresh_token.clone().unwrap();
    assert_ne!(r1, r2);
    assert_eq!(m1.scope, "read");
    assert!(kw.introspect(None, &m1.access_token).await.unwrap().active);
    // Wrong client.
    assert!(
        kw.redeem_refresh(&r2, Some("someone-else"), None)
            .await
            .is_err()
    );
    // Reusing the spent r1 revokes the family: r2 and the access token it produced.
    let err = kw
        .redeem_refresh(&r1, None, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already used"), "{err}");
    assert!(kw.redeem_refresh(&r2, None, None).await.is_err());
    let i = kw.introspect(None, &m1.access_token).await.unwrap();
    assert!(!i.active);
    // The record says why: theft detection, told apart from an administrator's revocation.
    let rec = i.record.expect("the token's record");
    assert_eq!(rec.revoke_reason.as_deref(), Some("refresh token reused"));
    assert_eq!(rec.revoked_by.as_deref(), Some("keyward"));
    // Refresh tokens are stored only as keyed hashes, after the issue time (microseconds,
    // 16 hex digits) their value begins with; later tokens sort after earlier ones.
    let stored: Vec<String> = kw.read(async |cx| {
        keyward::on!(cx, c => Ok(sqlx::query_scalar::<_, String>("SELECT token_hash FROM refresh_tokens").fetch_all(&mut *c).await?))
    }).await.unwrap();
    assert_eq!(stored.len(), 2);
    let order = |r: &str| r[4..20].to_string();
    assert!(order(&r1) < order(&r2), "{r1} {r2}");
    for h in &stored {
        let (time, hash) = h.split_once('.').unwrap();
        assert_eq!(time.len(), 16, "{h}");
        // Each hash begins with the issue time of the token it belongs to.
        let prefix = format!("kwr_{time}.");
        assert!(r1.starts_with(&prefix) || r2.starts_with(&prefix), "{h}");
        assert!(hash.starts_with("v1$"), "{h}");
        assert!(!h.contains(&r1[4..]) && !h.contains(&r2[4..]), "{h}");
    }
});

both_async!(verifier_sees_revocations_by_other_processes, |e| {
    let (kw, admin) = open(e).await;
    kw.user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    let t = kw
        .mint(
            &admin,
            MintSpec {
                user: "a@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let v = Verifier::new(kw.clone()).await.unwrap();
    let claims = v.verify(&t.access_token).unwrap();
    assert_eq!(claims.scope, "read");
    // Another process (the CLI) revokes it.
    e.ok(&["token", "revoke", &t.jti, "--reason", "leaked"]);
    assert!(v.verify(&t.access_token).is_ok(), "not refreshed yet");
    v.refresh().await.unwrap();
    assert_eq!(
        v.verify(&t.access_token).unwrap_err(),
        keyward::token::Reason::Revoked
    );
    // Disabling the user cascades with its own reason.
    let t2 = kw
        .mint(
            &admin,
            MintSpec {
                user: "a@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    e.ok(&["user", "disable", "a@x.example"]);
    v.refresh().await.unwrap();
    assert_eq!(
        v.verify(&t2.access_token).unwrap_err(),
        keyward::token::Reason::UserDisabled
    );
});

both_async!(audit_is_atomic_with_the_change, |e| {
    let (kw, admin) = open(e).await;
    let before = kw
        .audit_list(
            &admin,
            keyward::store::audit::AuditQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len();
    // A failing change (duplicate) leaves neither data nor an audit event.
    kw.user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    assert!(
        kw.user_add(&admin, new_user("A@X.example", "free.example.com"))
            .await
            .is_err()
    );
    let after = kw
        .audit_list(
            &admin,
            keyward::store::audit::AuditQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1);
    assert!(kw.audit_verify(&admin).await.unwrap().ok);
});

async fn raw(kw: &Keyward, sql: &str) {
    kw.read(async |cx| {
        keyward::on!(cx, c => sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *c).await?.rows_affected());
        Ok(())
    })
    .await
    .unwrap();
}

both_async!(audit_tampering_is_detected, |e| {
    let (kw, admin) = open(e).await;
    for i in 0..5 {
        kw.domain_add(&admin, &format!("d{i}.example"))
            .await
            .unwrap();
    }
    let r = kw.audit_verify(&admin).await.unwrap();
    assert!(r.ok);
    let n = r.events;
    assert!(n >= 8, "{n}");
    // Edit an event's content.
    raw(
        &kw,
        "UPDATE audit_events SET target = 'evil.example' WHERE seq = 4",
    )
    .await;
    let r = kw.audit_verify(&admin).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.first_bad_seq, Some(4));
    assert_eq!(r.first_bad_position, Some(4));
    assert!(r.problem.unwrap().contains("edited"));
});

both_async!(audit_deletion_and_reordering_are_detected, |e| {
    let (kw, admin) = open(e).await;
    for i in 0..5 {
        kw.domain_add(&admin, &format!("d{i}.example"))
            .await
            .unwrap();
    }
    raw(&kw, "DELETE FROM audit_events WHERE seq = 3").await;
    let r = kw.audit_verify(&admin).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.first_bad_seq, Some(4));
    assert_eq!(r.first_bad_position, Some(3));
    assert!(r.problem.unwrap().contains("removed or reordered"));
});

both_async!(audit_swapped_events_are_detected, |e| {
    let (kw, admin) = open(e).await;
    for i in 0..5 {
        kw.domain_add(&admin, &format!("d{i}.example"))
            .await
            .unwrap();
    }
    // Swap the contents of events 5 and 6 (keeping their sequence numbers).
    raw(&kw, "UPDATE audit_events SET seq = -5 WHERE seq = 5").await;
    raw(&kw, "UPDATE audit_events SET seq = 5 WHERE seq = 6").await;
    raw(&kw, "UPDATE audit_events SET seq = 6 WHERE seq = -5").await;
    let r = kw.audit_verify(&admin).await.unwrap();
    assert!(!r.ok);
    assert_eq!(r.first_bad_seq, Some(5));
});

both_async!(console_token_search_finds_users_jtis_and_keys, |e| {
    use keyward::store::console::TokenQuery;
    let (kw, admin) = open(e).await;
    for (email, name) in [
        ("alice.meyer@acme.example", "Alice Meyer"),
        ("bob@acme.example", "Bob Builder"),
        ("carol@other.example", "Carol Meyerhof"),
    ] {
        let mut u = new_user(email, "free.example.com");
        u.name = Some(name.into());
        kw.user_add(&admin, u).await.unwrap();
    }
    let mint = async |user: &str, key: Option<String>| {
        kw.mint(
            &admin,
            MintSpec {
                user: user.into(),
                key,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .jti
    };
    let a1 = mint("alice.meyer@acme.example", None).await;
    let _a2 = mint("alice.meyer@acme.example", None).await;
    let _b1 = mint("bob@acme.example", None).await;
    let key = kw
        .key_create(
            &admin,
            keyward::service::credentials::KeySpec {
                user: "carol@other.example".into(),
                domain: None,
                name: Some("erp".into()),
                scopes: None,
                expires_in: None,
                redirect_uris: vec![],
                issue_refresh: false,
                rate_exempt: false,
            },
        )
        .await
        .unwrap();
    let c1 = mint("carol@other.example", Some(key.key.client_id.clone())).await;
    let search = async |s: &str| -> (Vec<String>, i64) {
        let q = TokenQuery {
            search: Some(s.into()),
            limit: 50,
            ..Default::default()
        };
        let rows = kw.token_page(&admin, q.clone()).await.unwrap();
        let n = kw.token_page_count(&admin, q).await.unwrap();
        (rows.into_iter().map(|r| r.user_email).collect(), n)
    };
    // An email prefix (short), a substring of email or name (three characters on).
    let (rows, n) = search("al").await;
    assert_eq!((rows.len(), n), (2, 2), "{rows:?}");
    let (rows, n) = search("meyer").await;
    assert_eq!(n, 3, "Alice Meyer twice and Carol Meyerhof: {rows:?}");
    let (rows, n) = search("ACME.example").await;
    assert_eq!(n, 3, "case-insensitive: {rows:?}");
    // A jti prefix finds exactly that token.
    let (rows, n) = search(&a1[..30]).await;
    assert_eq!((n, rows), (1, vec!["alice.meyer@acme.example".to_string()]));
    // So does the end of its jti, as the console's list shows it ("…" and the last 11
    // characters), typed bare or in capitals; a jti's end that no token has finds none.
    let tail = &a1[a1.len() - 11..];
    for s in [format!("…{tail}"), tail.to_string(), tail.to_uppercase()] {
        let (rows, n) = search(&s).await;
        assert_eq!(
            (n, rows),
            (1, vec!["alice.meyer@acme.example".to_string()]),
            "{s}"
        );
    }
    let (rows, n) = search("0000-0000ffff").await;
    assert_eq!((rows.len(), n), (0, 0), "{rows:?}");
    // The client id of an API key finds what it minted.
    let (rows, n) = search(&key.key.client_id).await;
    assert_eq!((n, rows), (1, vec!["carol@other.example".to_string()]));
    // Characters that mean something to LIKE or FTS match literally, or nothing.
    for s in ["%", "_", "\"", "a%c", "'; DROP TABLE tokens; --", "\\"] {
        let (rows, n) = search(s).await;
        assert_eq!((rows.len(), n), (0, 0), "{s}: {rows:?}");
    }
    assert!(!c1.is_empty());
    // The console's key list: a client id prefix or the owner, newest first.
    let keys = async |s: &str| -> Vec<String> {
        let q = keyward::store::credentials::KeyQuery {
            search: Some(s.into()),
            desc: true,
            limit: 50,
            ..Default::default()
        };
        let n = kw.key_count(&admin, q.clone()).await.unwrap();
        let rows = kw.key_list(&admin, q).await.unwrap();
        assert_eq!(n as usize, rows.len());
        rows.into_iter().map(|k| k.client_id).collect()
    };
    let cid = key.key.client_id.clone();
    assert_eq!(keys(&cid[..8]).await, vec![cid.clone()]);
    assert_eq!(keys("carol").await, vec![cid.clone()]);
    assert_eq!(keys("meyerhof").await, vec![cid.clone()]);
    assert!(keys("alice").await.is_empty());
    assert!(keys("%").await.is_empty());
});

both_async!(an_operator_sees_whose_token_it_is, |e| {
    let (kw, admin) = open(e).await;
    kw.user_add(&admin, new_user("owner@x.example", "free.example.com"))
        .await
        .unwrap();
    let m = kw
        .mint(
            &admin,
            keyward::service::tokens::MintSpec {
                user: "owner@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let i = kw.introspect(Some(&admin), &m.access_token).await.unwrap();
    assert_eq!(i.username.as_deref(), Some("owner@x.example"));
    assert_ne!(i.sub.as_deref(), Some("owner@x.example"), "sub is the id");
    // Without an operator (the token service's path), no address.
    let i = kw.introspect(None, &m.access_token).await.unwrap();
    assert!(i.active && i.username.is_none());
});

both_async!(station_identifiers_are_edited_validated_and_audited, |e| {
    let (kw, admin) = open(e).await;
    let u = kw
        .user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    let id = u.stations[0].id.clone();
    let s = kw
        .station_edit(
            &admin,
            &id,
            Some("de 123 456 789"),
            Some("HRB 1"),
            Some("de"),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            s.eu_vat_id.as_deref(),
            s.registration_number.as_deref(),
            s.country_code.as_deref()
        ),
        (Some("DE123456789"), Some("HRB 1"), Some("DE"))
    );
    // Only what is given changes; "" clears.
    let s = kw
        .station_edit(&admin, &id, Some(""), None, None)
        .await
        .unwrap();
    assert_eq!((s.eu_vat_id, s.country_code.as_deref()), (None, Some("DE")));
    // A number without its country, a bad code, an unknown station: refused, unchanged.
    let before = kw.audit_verify(&admin).await.unwrap();
    for (rn, cc) in [(Some("HRB 2"), Some("")), (None, Some("UK"))] {
        assert!(
            kw.station_edit(&admin, &id, None, rn, cc).await.is_err(),
            "{rn:?} {cc:?}"
        );
    }
    assert!(
        kw.station_edit(&admin, "nope", Some(""), None, None)
            .await
            .is_err()
    );
    let s = kw
        .station_edit(&admin, &id, None, None, None)
        .await
        .unwrap();
    assert_eq!(s.registration_number.as_deref(), Some("HRB 1"));
    assert_eq!(kw.audit_verify(&admin).await.unwrap().events, before.events);
    let viewer = as_role(&admin, OperatorRole::Viewer, None);
    denied(kw.station_edit(&viewer, &id, Some(""), None, None).await);
});

both_async!(dashboard_counts_keys_and_apps_per_domain, |e| {
    let (kw, admin) = open(e).await;
    kw.demo(
        &admin,
        keyward::service::demo::DemoOptions {
            users: 30,
            tokens: 30,
        },
        |_, _| {},
    )
    .await
    .unwrap();
    let all = kw
        .dashboard(&admin, None, keyward::model::now(), 5)
        .await
        .unwrap();
    let keys = kw.key_count(&admin, Default::default()).await.unwrap();
    let apps = kw.app_list(&admin).await.unwrap().len() as i64;
    assert!(keys > 0 && apps > 0, "the demo has keys and apps");
    assert_eq!((all.keys, all.apps), (keys, apps));
    // Per domain: each its own, and together all of them.
    let (mut keys_sum, mut apps_sum) = (0, 0);
    for d in kw.domain_list(&admin).await.unwrap() {
        let one = kw
            .dashboard(&admin, Some(&d.id), keyward::model::now(), 5)
            .await
            .unwrap();
        keys_sum += one.keys;
        apps_sum += one.apps;
    }
    assert_eq!((keys_sum, apps_sum), (keys, apps));
});

both_async!(domain_usage_counts_what_stands_in_the_way_of_removal, |e| {
    let (kw, admin) = open(e).await;
    kw.user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    assert_eq!(
        kw.domain_usage(&admin, "free.example.com").await.unwrap(),
        (1, 1)
    );
    assert!(kw.domain_rm(&admin, "free.example.com").await.is_err());
    kw.domain_add(&admin, "empty.example").await.unwrap();
    assert_eq!(
        kw.domain_usage(&admin, "empty.example").await.unwrap(),
        (0, 0)
    );
    let viewer = as_role(&admin, OperatorRole::Viewer, None);
    denied(kw.domain_usage(&viewer, "empty.example").await);
    kw.domain_rm(&admin, "empty.example").await.unwrap();
});

both_async!(audit_search_finds_an_action_by_any_part, |e| {
    use keyward::store::console::AuditPage;
    let (kw, admin) = open(e).await;
    kw.user_add(&admin, new_user("a@x.example", "free.example.com"))
        .await
        .unwrap();
    kw.user_set_status(&admin, "a@x.example", UserStatus::Disabled)
        .await
        .unwrap();
    let actions = async |s: &str| -> Vec<String> {
        let q = AuditPage {
            search: Some(s.into()),
            limit: 50,
            ..Default::default()
        };
        let n = kw.audit_page_count(&admin, q.clone()).await.unwrap();
        let rows = kw.audit_page(&admin, q).await.unwrap();
        assert_eq!(n as usize, rows.len());
        rows.into_iter().map(|r| r.action).collect()
    };
    // `disable` is the end of `user.disable`, not its start.
    assert_eq!(actions("disable").await, ["user.disable"]);
    assert_eq!(actions("user.").await, ["user.disable", "user.add"]);
    assert!(actions("%").await.is_empty());
});

both_async!(
    console_lists_page_by_station_name_and_key_use_without_gaps,
    |e| {
        use keyward::store::Val;
        use keyward::store::console::{StationPage, StationSort};
        use keyward::store::credentials::{KeyQuery, KeySort};
        let (kw, admin) = open(e).await;
        let key = user_with_key(&kw, &admin, "owner@x.example").await;
        // Names that differ only in case, and letters SQLite's `lower` does not fold.
        for name in [
            "beta", "Alpha", "Élan", "élan", "zeta", "ÅSA", "alpha", "Gamma",
        ] {
            kw.station_add(&admin, name, "owner@x.example", None, None, None, None)
                .await
                .unwrap();
        }
        // Every page of `limit` rows, each after the last row of the one before.
        let walk = async |desc: bool, limit: i64| -> Vec<(String, String)> {
            let mut seen = Vec::new();
            let mut after: Option<(Val, String)> = None;
            loop {
                let q = StationPage {
                    sort: StationSort::Name,
                    desc,
                    after: after.clone(),
                    limit,
                    ..Default::default()
                };
                let rows = kw.station_page(&admin, q).await.unwrap();
                let Some(last) = rows.last() else {
                    return seen;
                };
                after = Some((Val::S(last.name_key.clone()), last.id.clone()));
                seen.extend(rows.into_iter().map(|r| (r.name, r.id)));
            }
        };
        let whole = walk(false, 100).await;
        assert_eq!(
            whole.len(),
            9,
            "eight stations and the owner's first: {whole:?}"
        );
        assert_eq!(walk(false, 2).await, whole, "pages of two, ascending");
        let mut down = walk(true, 3).await;
        down.reverse();
        assert_eq!(down, whole, "pages of three, descending");
        // Case-blind: the ASCII names in alphabetical order, each spelling beside the other.
        let names: Vec<&str> = whole
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| ["alpha", "Alpha", "beta", "Gamma", "zeta"].contains(n))
            .collect();
        assert_eq!(&names[2..], ["beta", "Gamma", "zeta"], "{whole:?}");
        assert_eq!(
            (names[0].to_lowercase(), names[1].to_lowercase()),
            ("alpha".into(), "alpha".into())
        );

        // API keys by last use: never used first (as at time 0), then oldest use first.
        let mut ids = vec![key.key.id.clone()];
        for _ in 0..3 {
            let k = kw
                .key_create(
                    &admin,
                    keyward::service::credentials::KeySpec {
                        user: "owner@x.example".into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            ids.push(k.key.id);
        }
        let used = |id: &str, at: i64| {
            format!("UPDATE api_keys SET last_used_at = {at} WHERE id = '{id}'")
        };
        for (id, at) in [(&ids[0], 2_000), (&ids[2], 1_000), (&ids[3], 2_000)] {
            raw(&kw, &used(id, at)).await;
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let q = KeyQuery {
                sort: KeySort::LastUsed,
                after,
                limit: 1,
                ..Default::default()
            };
            let rows = kw.key_list(&admin, q).await.unwrap();
            let Some(k) = rows.first() else { break };
            after = Some((k.used_key(), k.id.clone()));
            seen.push((k.last_used_at, k.id.clone()));
        }
        let mut tied = [ids[0].clone(), ids[3].clone()];
        tied.sort();
        assert_eq!(
            seen,
            vec![
                (None, ids[1].clone()),
                (Some(1_000), ids[2].clone()),
                (Some(2_000), tied[0].clone()),
                (Some(2_000), tied[1].clone()),
            ]
        );
    }
);

both_async!(
    grants_of_the_token_service_are_seen_at_once_everywhere,
    |e| {
        use keyward::service::grants::TokenService;
        use keyward::service::tokens::RevokeWhat;
        let (kw, admin) = open(e).await;
        let key = user_with_key(&kw, &admin, "a@x.example").await;
        let svc = TokenService::start(kw.clone()).await.unwrap();
        let mut minted = Vec::new();
        for _ in 0..3 {
            minted.push(grant(&svc, &key).await.unwrap());
        }
        // On SQLite these grants sit in the token journal until it is settled; every path
        // must see them as if they were in the token tables already.
        let journaled = async || -> i64 {
            kw.read(async |cx| {
            keyward::on!(cx, c => Ok(sqlx::query_scalar("SELECT COUNT(*) FROM token_journal").fetch_one(&mut *c).await?))
        })
        .await
        .unwrap()
        };
        let sqlite = matches!(kw.db().engine(), keyward::store::Engine::Sqlite);
        if sqlite {
            assert_eq!(journaled().await, 3);
        }
        let q = kw.token_query(&admin, Some("a@x.example")).await.unwrap();
        let listed: BTreeSet<String> = kw
            .token_list(&admin, q.clone())
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.jti)
            .collect();
        for m in &minted {
            assert!(listed.contains(&m.jti), "{} not listed", m.jti);
        }
        assert_eq!(kw.token_count(&admin, q).await.unwrap(), 3);
        assert_eq!(
            kw.key_live_tokens(&admin, &key.key.client_id)
                .await
                .unwrap(),
            3
        );
        // A fresh grant (journaled again) is found by jti, and can be revoked at once.
        let fresh = grant(&svc, &key).await.unwrap();
        assert!(
            kw.introspect(None, &fresh.access_token)
                .await
                .unwrap()
                .active
        );
        let n = kw
            .token_revoke(&admin, RevokeWhat::Jtis(vec![fresh.jti.clone()]), None)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert!(
            !kw.introspect(None, &fresh.access_token)
                .await
                .unwrap()
                .active
        );
        // Its refresh token is redeemable at once too (rotation), then spent.
        let again = grant(&svc, &key).await.unwrap();
        let r = again.refresh_token.clone().unwrap();
        let rotated = kw
            .redeem_refresh(&r, Some(&key.key.client_id), None)
            .await
            .unwrap();
        assert!(
            kw.introspect(None, &rotated.access_token)
                .await
                .unwrap()
                .active
        );
        assert!(
            kw.redeem_refresh(&r, Some(&key.key.client_id), None)
                .await
                .is_err()
        );
        // Deleting the key revokes every token minted through it, journaled or not.
        let last = grant(&svc, &key).await.unwrap();
        kw.key_rm(&admin, &key.key.client_id).await.unwrap();
        assert!(
            !kw.introspect(None, &last.access_token)
                .await
                .unwrap()
                .active
        );
        assert_eq!(
            kw.token_count(
                &admin,
                kw.token_query(&admin, Some("a@x.example")).await.unwrap()
            )
            .await
            .unwrap(),
            7
        );
        // Nothing is left in the journal after a write (SQLite; PostgreSQL has none).
        if sqlite {
            assert_eq!(journaled().await, 0);
        }
    }
);

both_async!(a_batch_of_grants_is_recorded_whole_or_not_at_all, |e| {
    use keyward::service::credentials::KeySpec;
    use keyward::service::grants::{GrantError, TokenService};
    use keyward::store::credentials::TokenRecord;
    use keyward::store::grants::{Issued, IssuedRefresh, record_grants};
    use secrecy::ExposeSecret;
    let (kw, admin) = open(e).await;
    let domain = "free.example.com";
    for u in ["a@x.example", "b@x.example"] {
        kw.user_add(&admin, new_user(u, domain)).await.unwrap();
    }
    let key = async |user: &str, expires_in: Option<&str>| {
        kw.key_create(
            &admin,
            KeySpec {
                user: user.into(),
                expires_in: expires_in.map(Into::into),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    };
    let (ka, kb, kc) = (
        key("a@x.example", None).await,
        key("b@x.example", None).await,
        key("a@x.example", Some("1h")).await,
    );
    let svc = TokenService::start(kw.clone()).await.unwrap();
    let entry = async |k: &keyward::service::credentials::NewKey| {
        svc.key_entry(&k.key.client_id).await.unwrap().unwrap()
    };
    let (ea, eb, ec) = (entry(&ka).await, entry(&kb).await, entry(&kc).await);
    let now = keyward::model::now();
    // A grant as the token service records it, relying on the cached key state `e`.
    let issued = |e: &keyward::service::grants::KeyEntry, issued_at: i64| Issued {
        rec: TokenRecord {
            jti: keyward::model::new_id(),
            domain_id: e.key.domain_id.clone(),
            user_id: e.key.user_id.clone(),
            key_id: Some(e.key.id.clone()),
            app_id: None,
            client_id: e.key.client_id.clone(),
            kid: "k1".into(),
            scopes: "read".into(),
            source: "client_credentials".into(),
            family_id: None,
            issued_at,
            expires_at: issued_at + 600,
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
        },
        refresh: None,
        check: Some((e.key.version, e.user_version)),
    };
    let count = async |user: &str| {
        kw.token_count(&admin, kw.token_query(&admin, Some(user)).await.unwrap())
            .await
            .unwrap()
    };
    let listed = async || -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for user in ["a@x.example", "b@x.example"] {
            let q = kw.token_query(&admin, Some(user)).await.unwrap();
            all.extend(
                kw.token_list(&admin, q)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|t| t.jti),
            );
        }
        all
    };
    let mut w = kw.writer().await.unwrap();
    // Live keys of two owners: the whole batch is recorded.
    let ok = [issued(&ea, now), issued(&eb, now), issued(&ec, now)];
    assert!(record_grants(&mut w, &ok).await.unwrap());
    assert_eq!(
        (count("a@x.example").await, count("b@x.example").await),
        (2, 1)
    );
    let seen = listed().await;
    assert!(ok.iter().all(|i| seen.contains(&i.rec.jti)), "{seen:?}");
    // Clients interleaved in one batch, grants differing in scopes, signing key, issue
    // time and refresh token: every token record and refresh token keeps its own
    // columns (a refresh token's are taken from its grant's record).
    let mixed = || {
        let mut mixed = [
            issued(&ea, now),
            issued(&eb, now),
            issued(&ea, now + 1),
            issued(&ec, now),
            issued(&eb, now + 2),
            issued(&ea, now),
        ];
        mixed[1].rec.scopes = "read write".into();
        mixed[2].rec.kid = "k2".into();
        mixed[5].rec.scopes = "write".into();
        for (n, i) in mixed.iter_mut().enumerate().filter(|(n, _)| n % 2 == 0) {
            i.rec.family_id = Some(keyward::model::new_id());
            i.refresh = Some(IssuedRefresh {
                token_hash: format!("h{n}.{}", i.rec.jti),
                expires_at: now + 1000 + n as i64,
            });
        }
        mixed
    };
    let columns = |t: &TokenRecord| {
        format!(
            "{} {} {:?} {:?} {} {} {} {} {:?} {} {}",
            t.domain_id,
            t.user_id,
            t.key_id,
            t.app_id,
            t.client_id,
            t.kid,
            t.scopes,
            t.source,
            t.family_id,
            t.issued_at,
            t.expires_at
        )
    };
    type RefreshCols = (String, String, String, String, String, i64, i64);
    let refresh_columns = |i: &Issued| {
        let (t, r) = (&i.rec, i.refresh.as_ref()?);
        Some((
            r.token_hash.clone(),
            t.family_id.clone()?,
            t.user_id.clone(),
            t.client_id.clone(),
            t.scopes.clone(),
            t.issued_at,
            r.expires_at,
        ))
    };
    // In one statement (the batch's keys are live) and grant by grant (the path taken
    // when a key changed meanwhile).
    let (whole, by_grant) = (mixed(), mixed());
    let mut want: std::collections::BTreeMap<String, String> = whole
        .iter()
        .chain(&by_grant)
        .map(|i| (i.rec.jti.clone(), columns(&i.rec)))
        .collect();
    let mut want_refresh: Vec<RefreshCols> = whole
        .iter()
        .chain(&by_grant)
        .filter_map(refresh_columns)
        .collect();
    want_refresh.sort();
    assert!(record_grants(&mut w, &whole).await.unwrap());
    let ok = kw
        .write_on(&mut w, async |cx| {
            keyward::store::grants::record_batch(cx, Vec::from(by_grant), now).await
        })
        .await
        .unwrap();
    assert_eq!(ok, vec![true; 6]);
    for user in ["a@x.example", "b@x.example"] {
        let q = kw.token_query(&admin, Some(user)).await.unwrap();
        for t in kw.token_list(&admin, q).await.unwrap() {
            if let Some(c) = want.remove(&t.jti) {
                assert_eq!(columns(&t), c);
            }
        }
    }
    assert!(want.is_empty(), "not recorded: {want:?}");
    let refresh: Vec<RefreshCols> = kw
        .read(async |cx| {
            keyward::on!(cx, c => Ok(sqlx::query_as(
                "SELECT token_hash, family_id, user_id, client_id, scopes, issued_at, expires_at \
                 FROM refresh_tokens ORDER BY token_hash"
            ).fetch_all(&mut *c).await?))
        })
        .await
        .unwrap();
    assert_eq!(refresh, want_refresh);
    // A grant issued after its key expired spoils its batch: nothing is recorded.
    let expiry = kc.key.expires_at.expect("the key expires");
    let late = [issued(&ea, now), issued(&ec, expiry + 1)];
    assert!(!record_grants(&mut w, &late).await.unwrap());
    // So does an owner disabled since the key was read.
    kw.user_set_status(&admin, "b@x.example", UserStatus::Disabled)
        .await
        .unwrap();
    let stale = [issued(&ea, now), issued(&eb, now)];
    assert!(!record_grants(&mut w, &stale).await.unwrap());
    assert_eq!(
        (count("a@x.example").await, count("b@x.example").await),
        (10, 5)
    );
    let seen = listed().await;
    assert!(
        late.iter()
            .chain(&stale)
            .all(|i| !seen.contains(&i.rec.jti)),
        "{seen:?}"
    );
    // The service decides such a batch grant by grant: the stale cache entry is read
    // again and the disabled owner's key refused, while the live key still works.
    let refused = grant(&svc, &kb).await;
    assert!(
        matches!(refused, Err(GrantError::UnauthorizedClient(_))),
        "{refused:?}"
    );
    grant(&svc, &ka).await.unwrap();
    assert_eq!(
        (count("a@x.example").await, count("b@x.example").await),
        (11, 5)
    );
    // A client the caller has already authenticated for this request (the rate limiter
    // does, before it charges a client) is not checked again; one proven for another
    // client id is not taken for this one.
    let proven = svc
        .prove(&ka.key.client_id, ka.client_secret.expose_secret())
        .await
        .unwrap();
    svc.client_credentials(&ka.key.client_id, "", Some(proven.clone()), None)
        .await
        .unwrap();
    let other = svc
        .client_credentials(&kc.key.client_id, "", Some(proven), None)
        .await;
    assert!(
        matches!(other, Err(GrantError::InvalidClient(_))),
        "{other:?}"
    );
    assert_eq!(count("a@x.example").await, 12);
});

/// SQLite: the token service's checkpoint (every tick) restarts a WAL that has grown,
/// without waiting behind a reader that holds it and without leaving writers locked
/// out or pooled connections without their busy timeout.
#[test]
fn checkpoint_restarts_the_wal_without_waiting_for_readers() {
    use keyward::store::Db;
    use sqlx::Connection as _;
    rt().block_on(async {
        let e = Env::sqlite();
        let (kw, _) = open(&e).await;
        let Db::Sqlite(pool) = kw.db() else {
            unreachable!("a SQLite environment")
        };
        let frames = async || -> i64 {
            let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(pool)
                .await
                .unwrap();
            log
        };
        let mut w = kw.writer().await.unwrap();
        let keyward::store::Writer::Sqlite(wc) = &mut w else {
            unreachable!("a SQLite writer")
        };
        sqlx::query("CREATE TABLE filler (b BLOB)")
            .execute(&mut *wc)
            .await
            .unwrap();
        // ~6000 WAL frames in one transaction, more than the checkpoint lets the WAL keep.
        let mut tx = wc.begin().await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) \
             INSERT INTO filler SELECT randomblob(3000) FROM n",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();

        // A reader in the middle of a read transaction holds the WAL: the checkpoint
        // neither waits for it (the busy timeout is 10 s) nor keeps the writer out.
        let mut reader = pool.acquire().await.unwrap();
        sqlx::query("BEGIN").execute(&mut *reader).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM filler")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        assert_eq!(n, 6000);
        tokio::time::timeout(std::time::Duration::from_secs(5), kw.db().checkpoint())
            .await
            .expect("the checkpoint waited for the reader")
            .unwrap();
        assert!(frames().await > 4096, "the reader still reads the WAL");
        let keyward::store::Writer::Sqlite(wc) = &mut w else {
            unreachable!()
        };
        sqlx::query("INSERT INTO filler VALUES (x'00')")
            .execute(&mut *wc)
            .await
            .unwrap();
        sqlx::query("COMMIT").execute(&mut *reader).await.unwrap();
        drop(reader);

        // With the reader gone it restarts the WAL: the next commit writes it from the start.
        kw.db().checkpoint().await.unwrap();
        sqlx::query("INSERT INTO filler VALUES (x'01')")
            .execute(&mut *wc)
            .await
            .unwrap();
        assert!(frames().await < 16, "the WAL was not restarted");

        // Every pooled connection still waits for locks (none was left at 0).
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(pool.acquire().await.unwrap());
        }
        for c in &mut conns {
            let t: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut **c)
                .await
                .unwrap();
            assert_eq!(t, 10_000);
        }
    });
}

/// SQLite: the token journal's file has a WAL of its own, which the periodic checkpoint
/// restarts too while the recorder goes on appending (a passive checkpoint never
/// catches up with a steady writer: under load that WAL grew to 270 MB, checkpointed
/// only by the recorder's own safety net), and a WAL file that grew past the size limit
/// is cut back to it when it starts over.
#[test]
fn checkpoint_restarts_the_journal_wal_and_cuts_it_back() {
    use keyward::store::{Db, Writer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    rt().block_on(async {
        let e = Env::sqlite();
        let (kw, _) = open(&e).await;
        let Db::Sqlite(pool) = kw.db() else {
            unreachable!("a SQLite environment")
        };
        let mut wal = keyward::store::journal_file(&e.dir.path().join("k.db")).into_os_string();
        wal.push("-wal");
        let wal = std::path::PathBuf::from(wal);
        let Writer::Sqlite(mut wc) = kw.writer().await.unwrap() else {
            unreachable!("a SQLite writer")
        };
        // ~80 MB of journal in one commit: ~20k WAL frames, past the 64 MiB limit.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6500) \
             INSERT INTO grants.token_journal (jti, domain_id, user_id, client_id, kid, scopes, \
             source, issued_at, expires_at) \
             SELECT 'j' || i, 'd', 'u', 'c', 'k', hex(randomblob(6000)), 's', 0, 0 FROM n",
        )
        .execute(&mut wc)
        .await
        .unwrap();
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > 64 << 20, "the journal's WAL holds {grown} bytes");

        // The recorder appends meanwhile, a commit every few milliseconds.
        let stop = Arc::new(AtomicBool::new(false));
        let appender = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    sqlx::query(
                        "INSERT INTO grants.token_journal (jti, domain_id, user_id, client_id, \
                         kid, scopes, source, issued_at, expires_at) \
                         VALUES ('x' || ?, 'd', 'u', 'c', 'k', 'read', 's', 0, 0)",
                    )
                    .bind(n)
                    .execute(&mut wc)
                    .await
                    .unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                }
                n
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        kw.db().checkpoint().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stop.store(true, Ordering::Relaxed);
        assert!(appender.await.unwrap() > 3);

        // Restarted: what the WAL holds now was appended after the checkpoint.
        let (_, frames, _): (i64, i64, i64) =
            sqlx::query_as("PRAGMA grants.wal_checkpoint(PASSIVE)")
                .fetch_one(pool)
                .await
                .unwrap();
        assert!(
            frames < 4096,
            "the journal's WAL was not restarted: {frames} frames"
        );
        let now = std::fs::metadata(&wal).unwrap().len();
        assert!(now <= 64 << 20, "the journal's WAL still holds {now} bytes");
    });
}

/// SQLite: the token journal has a file (and so a write lock) of its own: grants are
/// recorded while another connection holds the main database's write lock (as the
/// journal's bulk copy into the token tables does), and journal entries copied but not
/// yet deleted (the two files do not commit together) are never copied twice.
#[test]
fn the_token_journal_has_a_file_and_a_write_lock_of_its_own() {
    use keyward::service::grants::TokenService;
    use keyward::store::Db;
    use std::os::unix::fs::PermissionsExt as _;
    rt().block_on(async {
        let e = Env::sqlite();
        let (kw, admin) = open(&e).await;
        let file = keyward::store::journal_file(&e.dir.path().join("k.db"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        let key = user_with_key(&kw, &admin, "a@x.example").await;
        let svc = TokenService::start(kw.clone()).await.unwrap();
        let Db::Sqlite(pool) = kw.db() else {
            unreachable!("a SQLite environment")
        };
        let count = async |sql: &'static str| -> i64 {
            sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
        };
        assert_eq!(
            count("SELECT COUNT(*) FROM main.sqlite_master WHERE name = 'token_journal'").await,
            0
        );

        // Another connection holds the main database's write lock (busy timeout 10 s).
        let mut holder = pool.acquire().await.unwrap();
        sqlx::query("BEGIN").execute(&mut *holder).await.unwrap();
        sqlx::query("CREATE TABLE held (x)")
            .execute(&mut *holder)
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), grant(&svc, &key))
            .await
            .expect("the grant waited for the main database's write lock")
            .unwrap();
        sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
        drop(holder);
        grant(&svc, &key).await.unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM grants.token_journal").await, 2);

        // Copied twice without deleting (as after a crash between the two commits),
        // then moved by a write transaction: each grant once, the journal empty.
        assert!(kw.copy_journal().await.unwrap().is_some());
        assert!(kw.copy_journal().await.unwrap().is_some());
        assert_eq!(count("SELECT COUNT(*) FROM tokens").await, 2);
        assert_eq!(count("SELECT COUNT(*) FROM refresh_tokens").await, 2);
        kw.settle_tokens().await.unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM token_journal").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM tokens").await, 2);
        assert_eq!(count("SELECT COUNT(*) FROM refresh_tokens").await, 2);
    });
}
