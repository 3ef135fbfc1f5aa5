//! Deterministic data for rendering tests and snapshots: fixed ids, fixed clock.
#![doc(hidden)]

use super::app::{Action, App, Info, Loaded, Rows};
use super::screens::ScreenId;
use super::theme::Theme;
use super::widgets::list::Pos;
use keyward::Actor;
use keyward::model::OperatorRole;
use keyward::service::console::Dashboard;
use keyward::service::directory::{OperatorView, UserDetail};
use keyward::service::scopes::{RoleView, ScopeView};
use keyward::store::audit::AuditRow;
use keyward::store::console::TokenRow;
use keyward::store::directory::{DomainRow, StationRow, UserRow};

/// 2026-11-24 12:00:00 UTC.
pub const NOW: i64 = 1_795_521_600;

pub fn actor(role: OperatorRole) -> Actor {
    Actor {
        account: "ana".into(),
        host: "bastion".into(),
        origin: "local".into(),
        role,
        domains: None,
    }
}

pub fn domain() -> DomainRow {
    DomainRow {
        id: "d1".into(),
        name: "free.example.com".into(),
        created_at: NOW - 400 * 86_400,
        version: 1,
    }
}

pub fn user(i: usize, email: &str, name: &str, role: &str, api: &str, status: &str) -> UserRow {
    UserRow {
        id: format!("u{i:04}"),
        domain_id: "d1".into(),
        domain: "free.example.com".into(),
        email: email.into(),
        name: name.into(),
        status: status.into(),
        role_id: format!("r-{role}"),
        role: role.into(),
        api_access: api.into(),
        affiliate_id: format!("6c1e0000-0000-4000-8000-{i:012}"),
        has_password: false,
        created_at: NOW - (i as i64 + 1) * 7_200,
        updated_at: NOW - (i as i64 + 1) * 7_200,
        version: 1,
    }
}

pub fn users() -> Vec<UserRow> {
    let mut v = vec![
        user(
            0,
            "alice@example.com",
            "Alice Meyer",
            "Consumer",
            "enabled",
            "active",
        ),
        user(
            1,
            "alina@example.com",
            "Alina Park",
            "Partner",
            "pending",
            "active",
        ),
        user(
            2,
            "bob@example.com",
            "Bob \u{1b}]0;pwned\u{7}\u{1b}[2J",
            "Consumer",
            "pending",
            "disabled",
        ),
    ];
    for i in 3..60 {
        v.push(user(
            i,
            &format!("user{i:02}@acme.example"),
            &format!("User {i}"),
            "Consumer",
            "enabled",
            "active",
        ));
    }
    v
}

pub fn station(i: usize) -> StationRow {
    StationRow {
        id: format!("s{i:04}"),
        domain_id: "d1".into(),
        domain: "free.example.com".into(),
        user_id: format!("u{i:04}"),
        user_email: users()[i % 3].email.clone(),
        name: format!("Station {i}"),
        eu_vat_id: i.is_multiple_of(2).then(|| format!("DE{:09}", 100_000 + i)),
        registration_number: None,
        country_code: None,
        created_at: NOW - 86_400 * (30 - i as i64),
        version: 1,
        name_key: format!("station {i}"),
    }
}

pub fn token(i: usize) -> TokenRow {
    TokenRow {
        // UUIDv7-like: the head is the issue time, shared by neighbours; the tail differs.
        jti: format!(
            "019ad8f2-{:04x}-7{:03x}-8000-{:012x}",
            0x6500 + i,
            i,
            (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
        ),
        domain_id: "d1".into(),
        domain: "free.example.com".into(),
        user_id: "u0000".into(),
        user_email: "alice@example.com".into(),
        client_id: format!("kw_4f1a{i:02}"),
        scopes: "read write".into(),
        issued_at: NOW - 3_600 * (i as i64 + 1),
        expires_at: NOW + 86_400 * (i as i64 % 9) - 3_600,
        revoked_at: (i % 5 == 4).then_some(NOW - 60),
        source: "client_credentials".into(),
        kid: "kid-es256-1".into(),
        revoked_by: (i % 5 == 4).then(|| "ana@bastion".into()),
        revoke_reason: (i % 5 == 4).then(|| "key leaked in a log".into()),
    }
}

pub fn event(seq: i64, action: &str, target: &str) -> AuditRow {
    AuditRow {
        seq,
        at: NOW - 600 * (20 - seq),
        actor: "ana@bastion".into(),
        origin: "local".into(),
        action: action.into(),
        target: target.into(),
        domain_id: Some("d1".into()),
        details: "{}".into(),
        prev_hash: String::new(),
        hash: format!("h{seq}"),
    }
}

pub fn roles() -> Vec<RoleView> {
    let r = |name: &str, default: bool, all: bool, scopes: &[&str], eff: &[&str], users: i64| {
        RoleView {
            id: format!("r-{name}"),
            name: name.into(),
            description: format!("{name} role"),
            default,
            all_scopes: all,
            builtin: name != "Partner",
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            effective_scopes: eff.iter().map(|s| s.to_string()).collect(),
            users,
            version: 1,
        }
    };
    vec![
        r(
            "Administrator",
            false,
            true,
            &[],
            &["admin", "read", "write"],
            2,
        ),
        r("Consumer", true, false, &["read"], &["read"], 55),
        r("Partner", false, false, &["write"], &["read", "write"], 3),
    ]
}

pub fn scopes() -> Vec<ScopeView> {
    let s = |n: &str, imp: &[&str]| ScopeView {
        id: format!("sc-{n}"),
        name: n.into(),
        description: format!("the {n} scope"),
        implies: imp.iter().map(|s| s.to_string()).collect(),
        builtin: true,
    };
    vec![
        s("admin", &["write"]),
        s("read", &[]),
        s("write", &["read"]),
    ]
}

pub fn dashboard() -> Dashboard {
    let us = users();
    Dashboard {
        domains: 1,
        users: 60,
        pending: 2,
        stations: 61,
        keys: 38,
        apps: 2,
        active_tokens: 412,
        expiring_tokens: 3,
        pending_users: vec![us[1].clone(), us[2].clone()],
        expiring: (0..3).map(token).collect(),
        recent: vec![
            event(3, "user.add", "alina@example.com"),
            event(2, "user.add", "alice@example.com"),
            event(1, "domain.add", "free.example.com"),
        ],
    }
}

pub fn detail(u: &UserRow) -> UserDetail {
    UserDetail {
        user: u.clone(),
        stations: vec![station(0)],
        keys: 1,
        apps: 0,
        active_tokens: 3,
        effective_scopes: vec!["read".into()],
    }
}

/// An app loaded with the fixture, on `screen`, with every background answer applied.
pub fn app(screen: ScreenId, size: (u16, u16), role: OperatorRole) -> App {
    let mut app = App::new(
        actor(role),
        Info {
            database: "sqlite /data/keyward.db".into(),
        },
        NOW,
        size,
    );
    app.theme = Theme::mono();
    let _ = app.start();
    app.update(Action::Loaded(Loaded::Domains(Ok(vec![domain()]))));
    app.update(Action::Loaded(Loaded::Roles {
        generation: app.roles.generation,
        result: Ok((roles(), scopes())),
    }));
    app.update(Action::Loaded(Loaded::Dashboard {
        generation: app.dash_generation,
        result: Ok(Box::new(dashboard())),
    }));
    feed(&mut app, screen);
    app
}

/// Switches to `screen` and answers its first request from the fixture.
pub fn feed(app: &mut App, screen: ScreenId) {
    let _ = app.switch(screen);
    let rows = match screen {
        ScreenId::Users => Some((Rows::Users(users()), 60)),
        ScreenId::Stations => Some((Rows::Stations((0..25).map(station).collect()), 25)),
        ScreenId::Tokens => Some((Rows::Tokens((0..30).map(token).collect()), 30)),
        ScreenId::Keys => Some((Rows::Keys(keys()), 2)),
        ScreenId::Audit => Some((
            Rows::Audit(
                (1..=3)
                    .rev()
                    .map(|s| event(s, "user.add", "x@example.com"))
                    .collect(),
            ),
            3,
        )),
        _ => None,
    };
    if let Some((rows, total)) = rows {
        let generation = match screen {
            ScreenId::Users => app.users.generation,
            ScreenId::Stations => app.stations.generation,
            ScreenId::Tokens => app.tokens.generation,
            ScreenId::Keys => app.keys.generation,
            _ => app.audit.generation,
        };
        let fx = app.update(Action::Loaded(Loaded::Page {
            screen,
            generation,
            pos: Pos::Top,
            result: Ok((rows, Some(total))),
        }));
        if screen == ScreenId::Users && !fx.is_empty() {
            let u = app.users.selected().cloned().expect("rows");
            app.update(Action::Loaded(Loaded::UserDetail {
                id: u.id.clone(),
                result: Ok(Some(Box::new(detail(&u)))),
            }));
        }
    }
    if screen == ScreenId::Apps {
        let generation = app.apps.generation;
        app.update(Action::Loaded(Loaded::Apps {
            generation,
            result: Ok({
                let (apps, consents) = apps();
                let counts = vec![("a1".to_string(), consents.len() as i64)];
                (apps, consents, counts)
            }),
        }));
    }
    if screen == ScreenId::SigningKeys {
        let generation = app.signing.generation;
        app.update(Action::Loaded(Loaded::SigningKeys {
            generation,
            result: Ok(signing_keys()),
        }));
    }
    if screen == ScreenId::Operators {
        let generation = app.operators.generation;
        app.update(Action::Loaded(Loaded::Operators {
            generation,
            result: Ok(vec![
                OperatorView {
                    id: "o1".into(),
                    account: "ana".into(),
                    role: "admin".into(),
                    domains: vec![],
                    created_at: NOW - 86_400 * 90,
                },
                OperatorView {
                    id: "o2".into(),
                    account: "sam".into(),
                    role: "support".into(),
                    domains: vec!["free.example.com".into()],
                    created_at: NOW - 86_400 * 10,
                },
            ]),
        }));
    }
}

/// A freshly issued API key for bob.
pub fn reveal() -> super::app::Reveal {
    super::app::Reveal {
        title: None,
        email: "bob@example.com".into(),
        client_id: Some("kw_9d2c41f07a".into()),
        secret: super::app::Secret::new("kws_4QJ0m7xVb3n8Lr2TqYw6ZkP1sHdE5gFcJu9aMiNoXy".into()),
        scope: "read".into(),
        expiry: "expires 2027-02-22".into(),
        copied: false,
    }
}

pub fn keys() -> Vec<keyward::store::credentials::KeyRow> {
    let k = |i: i64, email: &str, scopes: &str, exp: Option<i64>, used: Option<i64>| {
        keyward::store::credentials::KeyRow {
            id: format!("k{i}"),
            domain_id: "d1".into(),
            domain: "free.example.com".into(),
            user_id: format!("u{i}"),
            user_email: email.into(),
            client_id: format!("kw_9d2c41f0{i}a"),
            name: "api key".into(),
            secret_hash: String::new(),
            scopes: scopes.into(),
            redirect_uris: String::new(),
            expires_at: exp,
            issue_refresh: false,
            rate_exempt: false,
            last_used_at: used,
            created_at: NOW - 86_400 * (10 + i),
            version: 1,
        }
    };
    vec![
        k(
            1,
            "alice@example.com",
            "read write",
            Some(NOW + 86_400 * 80),
            Some(NOW - 3600),
        ),
        k(2, "bob@example.com", "read", None, None),
    ]
}

pub fn signing_keys() -> Vec<keyward::service::keyring::SigningKeyView> {
    let k = |kid: &str, alg: &str, status: &str, published: bool, live: i64, age: i64| {
        keyward::service::keyring::SigningKeyView {
            id: format!("sk-{kid}"),
            kid: kid.into(),
            alg: alg.into(),
            status: status.into(),
            published,
            created_at: NOW - 86_400 * age,
            live_tokens: live,
        }
    };
    vec![
        k("3f9c2a71", "ES256", "active", true, 412, 30),
        k("8b01d4e2", "ES256", "verify-only", true, 17, 200),
        k("c4e5a9b0", "HS256", "verify-only", false, 0, 400),
    ]
}

/// What introspection says of a token revoked by ana an hour ago.
pub fn introspection(active: bool) -> keyward::service::tokens::Introspection {
    let jti = "01a20001-0000-7000-8000-000000000000";
    keyward::service::tokens::Introspection {
        active,
        sub: Some("alice@example.com".into()),
        scope: Some("read write".into()),
        client_id: Some("kw_9d2c41f01a".into()),
        exp: Some(NOW + 3 * 3600),
        iat: Some(NOW - 3600),
        jti: Some(jti.into()),
        iss: Some("https://free.example.com".into()),
        aud: Some("free.example.com".into()),
        reason: (!active).then_some(keyward::token::Reason::Revoked),
        header: Some(serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "3f9c2a71"})),
        claims: Some(serde_json::json!({
            "sub": "alice@example.com",
            "aud": "free.example.com",
            "scope": "read write",
            "client_id": "kw_9d2c41f01a",
            "jti": jti,
            "iat": NOW - 3600,
            "exp": NOW + 3 * 3600,
        })),
        username: Some("alice@example.com".into()),
        refresh: false,
        record: Some(keyward::store::credentials::TokenRecord {
            jti: jti.into(),
            domain_id: "d1".into(),
            user_id: "u0000".into(),
            key_id: Some("k1".into()),
            app_id: None,
            client_id: "kw_9d2c41f01a".into(),
            kid: "3f9c2a71".into(),
            scopes: "read write".into(),
            source: "client_credentials".into(),
            family_id: None,
            issued_at: NOW - 3600,
            expires_at: NOW + 3 * 3600,
            revoked_at: (!active).then_some(NOW - 1800),
            revoked_by: (!active).then(|| "ana@bastion".into()),
            revoke_reason: (!active).then(|| "customer asked".into()),
        }),
    }
}

pub fn apps() -> (
    Vec<keyward::store::credentials::AppRow>,
    Vec<keyward::store::credentials::ConsentRow>,
) {
    let app = keyward::store::credentials::AppRow {
        id: "a1".into(),
        domain_id: "d1".into(),
        domain: "free.example.com".into(),
        owner_id: "u0002".into(),
        owner_email: "carol@example.com".into(),
        client_id: "kwa_51be0c9e".into(),
        name: "Invoice Sync".into(),
        secret_hash: String::new(),
        scopes: "read".into(),
        redirect_uris: "https://sync.example.net/cb".into(),
        created_at: NOW - 86_400 * 40,
        version: 1,
    };
    let consent = keyward::store::credentials::ConsentRow {
        id: "c1".into(),
        user_id: "u0000".into(),
        user_email: "alice@example.com".into(),
        app_id: "a1".into(),
        app_client_id: "kwa_51be0c9e".into(),
        app_name: "Invoice Sync".into(),
        domain_id: "d1".into(),
        scopes: "read".into(),
        created_at: NOW - 86_400 * 3,
    };
    (vec![app], vec![consent])
}
