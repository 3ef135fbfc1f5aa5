//! Realistic demo data, generated in batches (also the fixture for benchmarks).

use super::credentials::{new_app_row, new_key_row};
use super::directory::{insert_domain, prepare_user};
use super::{Actor, Keyward, Need, audit_event};
use crate::error::{Error, Result};
use crate::model::{self, DomainName};
use crate::store::credentials::{self as cred, AppRow, KeyRow, TokenRecord};
use crate::store::directory::{self as dir, NewStationRow, NewUserRow, RoleRow, ScopeRow};
use crate::store::{Cx, Val};
use serde::Serialize;
use serde_json::json;

const FIRST: &[&str] = &[
    "Alice", "Bruno", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kaja", "Luca", "Mona", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar",
    "Vera", "Wim", "Ximena", "Yusuf", "Zoe",
];
const LAST: &[&str] = &[
    "Meyer",
    "Rossi",
    "Dubois",
    "Novak",
    "Jansen",
    "Silva",
    "Kowalski",
    "Berg",
    "Costa",
    "Larsen",
    "Fischer",
    "Moreau",
    "Horvat",
    "Schmidt",
    "Lindqvist",
    "Garcia",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Weber",
];
const COMPANIES: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "gringotts",
    "oscorp",
    "vandelay",
    "dunder",
    "pied-piper",
];
const COUNTRIES: &[&str] = &["DE", "FR", "IT", "NL", "ES", "BE", "AT", "PL", "SE", "FI"];
const DOMAINS: &[&str] = &["free.example.com", "partners.example.com", "eu.example.org"];

/// Deterministic generator for demo data (not for secrets).
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoReport {
    pub domains: Vec<String>,
    pub users: u64,
    pub stations: u64,
    pub tokens: u64,
    /// API keys (their secrets are never shown: the demo's keys are to look at).
    pub keys: u64,
    /// Developer apps, each with a few users' consents.
    pub apps: u64,
}

/// API keys a demo run creates at most (one each for some of its first users).
const DEMO_KEYS: u64 = 40;
/// Developer apps a demo run creates: name, redirect URI, scopes.
const DEMO_APPS: &[(&str, &str, &str)] = &[
    (
        "Invoice Portal",
        "https://portal.example.com/oauth/callback",
        "read send_documents",
    ),
    (
        "Logistics Dashboard",
        "https://dash.example.net/callback",
        "read receive_documents",
    ),
];
/// Users who consent to each demo app (at most).
const DEMO_CONSENTS: usize = 5;

/// The most users `demo` creates.
pub const MAX_DEMO_USERS: u64 = 1_000_000;
/// The most token records `demo` creates.
pub const MAX_DEMO_TOKENS: u64 = 10_000_000;

/// Options for `demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub users: u64,
    pub tokens: u64,
}

impl Keyward {
    /// Loads demo data: domains, custom scopes and a Partner role, users with varied
    /// states, stations and token records. Batched; one transaction per 10,000 users.
    pub async fn demo(
        &self,
        actor: &Actor,
        opts: DemoOptions,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<DemoReport> {
        actor.require(Need::Global)?;
        // Demo data is for looking around and for load tests, not for filling a disk:
        // a million users (about 1 GB of SQLite with their tokens) is the most.
        if !(1..=MAX_DEMO_USERS).contains(&opts.users) {
            return Err(Error::invalid(
                "users",
                opts.users.to_string(),
                format!("from 1 to {MAX_DEMO_USERS}"),
            ));
        }
        if opts.tokens > MAX_DEMO_TOKENS {
            return Err(Error::invalid(
                "tokens",
                opts.tokens.to_string(),
                format!("at most {MAX_DEMO_TOKENS}"),
            ));
        }
        let a = actor.clone();
        // Set-up in one transaction: domains, scopes, role.
        let (domains, roles, kid, have_apps) = self
            .write(async move |cx| {
                let mut ds = Vec::new();
                for d in DOMAINS {
                    let name = DomainName::parse(d)?;
                    let row = match dir::domain_by_name(cx, name.as_str()).await? {
                        Some(r) => r,
                        None => insert_domain(cx, &a, &name, serde_json::json!({})).await?,
                    };
                    ds.push(row);
                }
                for (n, desc) in [
                    (
                        "send_documents",
                        "Send business documents to other participants",
                    ),
                    (
                        "receive_documents",
                        "Receive business documents addressed to the station",
                    ),
                ] {
                    if dir::scope_by_name(cx, n).await?.is_none() {
                        let row = ScopeRow {
                            id: model::new_id(),
                            name: n.into(),
                            description: desc.into(),
                            builtin: false,
                            created_at: model::now(),
                            version: 1,
                        };
                        dir::insert_scope(cx, &row).await?;
                        let read = dir::scope_by_name(cx, "read").await?.expect("built-in");
                        dir::insert_implication(cx, &row.id, &read.id).await?;
                    }
                }
                if dir::role_by_name(cx, "Partner").await?.is_none() {
                    let row = RoleRow {
                        id: model::new_id(),
                        name: "Partner".into(),
                        description: "Trading partners: exchange documents".into(),
                        is_default: false,
                        all_scopes: false,
                        builtin: false,
                        created_at: model::now(),
                        version: 1,
                    };
                    dir::insert_role(cx, &row).await?;
                    for s in ["read", "send_documents", "receive_documents"] {
                        let sc = dir::scope_by_name(cx, s).await?.expect("exists");
                        dir::grant_role_scope(cx, &row.id, &sc.id).await?;
                    }
                }
                let mut roles = Vec::new();
                for r in ["Consumer", "Partner", "Administrator"] {
                    if let Some(row) = dir::role_by_name(cx, r).await? {
                        let scopes = super::scopes::effective_scopes(cx, &row).await?;
                        roles.push((row.id, scopes.into_iter().collect::<Vec<_>>().join(" ")));
                    }
                }
                let kid = cred::active_kid(cx).await?.unwrap_or_else(|| "demo".into());
                // A second run adds no second app of the same name.
                let apps: Vec<String> = cred::list_apps(cx, None)
                    .await?
                    .into_iter()
                    .map(|a| a.name)
                    .collect();
                Ok((ds, roles, kid, apps))
            })
            .await?;
        let mut report = DemoReport {
            domains: domains.iter().map(|d| d.name.clone()).collect(),
            ..Default::default()
        };
        let start = self
            .read(async |cx| {
                let q = dir::UserQuery::default();
                dir::count_users(cx, &q).await
            })
            .await? as u64;
        let mut g = Gen(0x5EED ^ start);
        let now = model::now();
        let secrets = self.secrets().await?;
        let hash_key = secrets.hash_key();
        let mut tokens_left = opts.tokens;
        let batch = 10_000u64;
        let mut done = 0u64;
        while done < opts.users {
            let n = batch.min(opts.users - done);
            let mut users: Vec<NewUserRow> = Vec::with_capacity(n as usize);
            let mut stations: Vec<NewStationRow> = Vec::with_capacity(n as usize);
            let mut tokens: Vec<TokenRecord> = Vec::new();
            let mut enable: Vec<Val> = Vec::new();
            let mut keys: Vec<KeyRow> = Vec::new();
            // Active users of this batch: (their domain, their place in `users`).
            let mut active: Vec<(usize, usize)> = Vec::new();
            for i in 0..n {
                let k = start + done + i;
                let di = (g.below(10) as usize).min(9) * domains.len() / 10;
                let d = &domains[di];
                let (first, last, company) = (g.pick(FIRST), g.pick(LAST), g.pick(COMPANIES));
                let email = format!(
                    "{}.{}{}@{}.example",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    k,
                    company
                );
                let role_ix = match g.below(20) {
                    0 => 2.min(roles.len() - 1),
                    1..=5 => 1.min(roles.len() - 1),
                    _ => 0,
                };
                let created = now - g.below(400 * 86_400) as i64;
                let mut p = prepare_user(
                    &d.id,
                    &roles[role_ix].0,
                    &email,
                    Some(&format!("{first} {last}")),
                    None,
                    Some(&format!(
                        "{} {}",
                        capitalise(company),
                        g.pick(&["HQ", "Billing", "Logistics", "Sales"])
                    )),
                    created,
                )?;
                p.user.created_at = created;
                if g.below(25) == 0 {
                    p.user.status = "disabled".into();
                }
                if g.below(3) == 0 {
                    p.station.country_code = Some(g.pick(COUNTRIES).to_string());
                    p.station.eu_vat_id = Some(format!(
                        "{}{:09}",
                        p.station.country_code.as_deref().unwrap_or("DE"),
                        g.below(1_000_000_000)
                    ));
                    p.station.registration_number =
                        Some(format!("HRB {}", 10_000 + g.below(90_000)));
                }
                // Most users have API access; a few recent sign-ups wait for it.
                let remaining_users = opts.users - (done + i);
                let pending = g.below(50) == 0 && !(remaining_users == 1 && tokens_left > 0);
                let per = if pending {
                    0
                } else {
                    tokens_left.div_ceil(remaining_users)
                };
                if !pending {
                    enable.push(Val::from(p.user.id.clone()));
                }
                // Some of the first users with API access have an API key, whose
                // tokens these are (the others' were minted in the console). Chosen
                // by number, not by `g`, so the rest of the data stays as it was.
                let key = (!pending
                    && p.user.status == "active"
                    && k.is_multiple_of(5)
                    && report.keys + (keys.len() as u64) < DEMO_KEYS)
                    .then(|| {
                        let scopes = roles[role_ix].1.split(' ').map(str::to_string).collect();
                        let (mut key, _secret) = new_key_row(
                            &user_view(&p.user, &d.name),
                            "demo key",
                            &scopes,
                            &[],
                            [Some(now + 90 * 86_400), Some(now + 5 * 86_400), None]
                                [(k % 3) as usize],
                            true,
                            hash_key,
                        );
                        key.created_at = created;
                        keys.push(key);
                        keys.len() - 1
                    });
                for _ in 0..per {
                    // Issued some time between sign-up (or 120 days ago) and now.
                    let from = created.max(now - 120 * 86_400);
                    let issued = from + g.below((now - from).max(1) as u64) as i64;
                    let revoked = g.below(20) == 0;
                    // A key was last used when it issued its latest token.
                    let by = key.map(|i| &mut keys[i]).map(|k| {
                        k.last_used_at = k.last_used_at.max(Some(issued));
                        &*k
                    });
                    tokens.push(TokenRecord {
                        jti: model::new_id(),
                        domain_id: d.id.clone(),
                        user_id: p.user.id.clone(),
                        key_id: by.map(|k| k.id.clone()),
                        app_id: None,
                        client_id: by.map_or("keyward-console".into(), |k| k.client_id.clone()),
                        kid: kid.clone(),
                        scopes: roles[role_ix].1.clone(),
                        source: by.map_or("demo", |_| "client_credentials").into(),
                        family_id: None,
                        issued_at: issued,
                        expires_at: issued + [3600, 86_400, 30 * 86_400][g.below(3) as usize],
                        revoked_at: revoked.then_some(issued + 60),
                        revoked_by: revoked.then(|| actor.label()),
                        revoke_reason: revoked.then(|| "demo".to_string()),
                    });
                }
                tokens_left -= per;
                if p.user.status == "active" {
                    active.push((di, users.len()));
                }
                users.push(p.user);
                stations.push(p.station);
            }
            // The first batch also brings the developer apps: each owned by an active
            // user of the first domain, with the consents of a few others there.
            let mut apps: Vec<AppRow> = Vec::new();
            // (user, app), each consenting to "read".
            let mut consents: Vec<(String, String)> = Vec::new();
            if done == 0 {
                let local: Vec<&NewUserRow> = active
                    .iter()
                    .filter(|(di, _)| *di == 0)
                    .map(|(_, u)| &users[*u])
                    .collect();
                for (i, (name, uri, scopes)) in DEMO_APPS.iter().enumerate() {
                    let Some(owner) = local.get(i) else { break };
                    if have_apps.iter().any(|a| a == name) {
                        continue;
                    }
                    let scopes = scopes.split(' ').map(str::to_string).collect();
                    let (app, _secret) = new_app_row(
                        &user_view(owner, &domains[0].name),
                        name,
                        &scopes,
                        &[uri.to_string()],
                        hash_key,
                    );
                    for u in local
                        .iter()
                        .skip(DEMO_APPS.len() + i * DEMO_CONSENTS)
                        .take(DEMO_CONSENTS)
                    {
                        consents.push((u.id.clone(), app.id.clone()));
                    }
                    apps.push(app);
                }
            }
            let (nu, ns, nt, nk, na) = (
                users.len() as u64,
                stations.len() as u64,
                tokens.len() as u64,
                keys.len() as u64,
                apps.len() as u64,
            );
            // Each batch is audited in its own transaction, so an interrupted load
            // leaves an audit trail of exactly what it did commit.
            let a = actor.clone();
            self.write(async move |cx| {
                audit_event(
                    cx,
                    &a,
                    "demo.load",
                    "demo",
                    None,
                    json!({"users": nu, "stations": ns, "tokens": nt, "keys": nk, "apps": na}),
                )
                .await?;
                dir::insert_users(cx, &users).await?;
                dir::insert_stations(cx, &stations).await?;
                for k in &keys {
                    cred::insert_key(cx, k).await?;
                }
                for a in &apps {
                    cred::insert_app(cx, a).await?;
                }
                for (user, app) in &consents {
                    cred::upsert_consent(cx, &model::new_id(), user, app, "read", now).await?;
                }
                cred::insert_token_records(cx, &tokens).await?;
                // `insert_key` leaves `last_used_at` to the token service's marking.
                for k in &keys {
                    if let Some(at) = k.last_used_at {
                        crate::store::grants::touch_keys(cx, std::slice::from_ref(&k.id), at)
                            .await?;
                    }
                }
                mark_enabled(cx, enable).await
            })
            .await?;
            report.users += nu;
            report.stations += ns;
            report.tokens += nt;
            report.keys += nk;
            report.apps += na;
            done += n;
            progress(done, opts.users);
        }
        Ok(report)
    }
}

/// A new user as the credential builders take it (they read its ids, email and domain).
fn user_view(u: &NewUserRow, domain: &str) -> dir::UserRow {
    dir::UserRow {
        id: u.id.clone(),
        domain_id: u.domain_id.clone(),
        domain: domain.to_string(),
        email: u.email.clone(),
        name: u.name.clone(),
        status: u.status.clone(),
        role_id: u.role_id.clone(),
        role: String::new(),
        api_access: u.api_access.clone(),
        affiliate_id: u.affiliate_id.clone(),
        has_password: u.password_hash.is_some(),
        created_at: u.created_at,
        updated_at: u.created_at,
        version: 1,
    }
}

async fn mark_enabled(cx: &mut Cx<'_>, ids: Vec<Val>) -> Result<()> {
    for chunk in ids.chunks(500) {
        let mut q = crate::store::Sql::new(
            cx.engine(),
            "UPDATE users SET api_access = 'enabled' WHERE id ",
        );
        q.bind_in(chunk.iter().cloned());
        dir::exec(cx, q).await?;
    }
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
