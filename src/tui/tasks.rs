//! The runtime side of effects: each runs as a tokio task calling the core's
//! services and sends its answer back as an [`Action`]. Never on the render path.

use super::app::{
    Action, AppOp, Effect, IssueOp, Loaded, Rehearsed, Request, Reveal, Rows, Secret, WriteOp,
};
use super::screens::ScreenId;
use super::widgets::list::{CursorKey, PageSpec};
use keyward::model::UserStatus;
use keyward::service::credentials::KeySpec;
use keyward::service::demo::DemoOptions;
use keyward::service::directory::NewUser;
use keyward::service::tokens::MintSpec;
use keyward::store::Val;
use keyward::store::console::{AuditPage, StationPage, StationSort, TokenQuery, TokenSort};
use keyward::store::credentials::{KeyQuery, KeySort};
use keyward::store::directory::{UserQuery, UserSort};
use keyward::{Actor, Keyward};
use secrecy::ExposeSecret;
use tokio::sync::mpsc::UnboundedSender;

pub fn spawn(kw: &Keyward, actor: &Actor, effect: Effect, tx: &UnboundedSender<Action>) {
    if let Effect::Clipboard(secret) = &effect {
        copy_to_clipboard(secret);
        return;
    }
    let (kw, actor, tx) = (kw.clone(), actor.clone(), tx.clone());
    tokio::spawn(async move {
        let action = match effect {
            Effect::Load(req) => Action::Loaded(load(&kw, &actor, req).await),
            Effect::Write(op) => Action::Wrote(write(&kw, &actor, op).await),
            Effect::Issue(op) => Action::Issued(issue(&kw, &actor, op).await.map(Box::new)),
            Effect::IssueApp(op) => Action::Issued(issue_app(&kw, &actor, op).await.map(Box::new)),
            Effect::Clipboard(_) => return,
        };
        let _ = tx.send(action);
    });
}

/// A core error as the console says it: next steps name keys, not CLI commands.
pub fn msg(e: keyward::Error) -> String {
    e.render(super::keymap::step)
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        None
    } else {
        Some(s.to_string())
    }
}

fn int(k: &CursorKey) -> i64 {
    match k {
        CursorKey::Int(i) => *i,
        CursorKey::Str(_) => 0,
    }
}

/// A cursor key as the store binds it.
fn val(k: &CursorKey) -> Val {
    match k {
        CursorKey::Int(i) => Val::I(*i),
        CursorKey::Str(s) => Val::S(s.clone()),
    }
}

pub async fn load(kw: &Keyward, actor: &Actor, req: Request) -> Loaded {
    match req {
        Request::Domains => Loaded::Domains(kw.domain_list(actor).await.map_err(msg)),
        Request::Dashboard { generation, domain } => Loaded::Dashboard {
            generation,
            result: kw
                .dashboard(
                    actor,
                    domain.as_deref(),
                    keyward::model::now(),
                    super::app::DASH_LIST,
                )
                .await
                .map(Box::new)
                .map_err(msg),
        },
        Request::Settings => Loaded::Settings(kw.config_list(actor).await.map_err(msg)),
        Request::AuditVerify => Loaded::AuditVerify(kw.audit_verify(actor).await.map_err(msg)),
        Request::UserDetail { id } => Loaded::UserDetail {
            result: match kw.user_show(actor, &id, None).await {
                Ok(d) => Ok(Some(Box::new(d))),
                // Removed since the row was listed (the list's reload follows).
                Err(keyward::Error::NotFound { kind: "user", .. }) => Ok(None),
                Err(e) => Err(msg(e)),
            },
            id,
        },
        Request::Roles { generation } => {
            let result = async {
                let roles = kw.role_list(actor).await?;
                let scopes = kw.scope_list(actor).await?;
                Ok::<_, keyward::Error>((roles, scopes))
            }
            .await
            .map_err(msg);
            Loaded::Roles { generation, result }
        }
        Request::Introspect { jwt } => Loaded::Introspect {
            result: kw
                .introspect(Some(actor), &jwt)
                .await
                .map(Box::new)
                .map_err(msg),
            jwt,
        },
        Request::Apps { generation } => {
            let result = async {
                let apps = kw.app_list(actor).await?;
                let consents = kw
                    .consent_list_limited(actor, None, super::app::CONSENTS_SHOWN)
                    .await?;
                let counts = kw.consent_counts(actor).await?;
                Ok::<_, keyward::Error>((apps, consents, counts))
            }
            .await
            .map_err(msg);
            Loaded::Apps { generation, result }
        }
        Request::SigningKeys { generation } => Loaded::SigningKeys {
            generation,
            result: kw.signing_key_list(actor).await.map_err(msg),
        },
        Request::Narrowing(confirm) => {
            let result = match &confirm.op {
                WriteOp::UserRole { id, role, .. } => kw
                    .user_set_role_preview(actor, id, role)
                    .await
                    .map(|n| Rehearsed::Narrowing(0, n)),
                WriteOp::RoleRevoke { role, scopes } => kw
                    .role_revoke_preview(actor, role, scopes)
                    .await
                    .map(|n| Rehearsed::Narrowing(0, n)),
                WriteOp::RoleRm { role, reassign } => kw
                    .role_rm_preview(actor, role, reassign.as_deref())
                    .await
                    .map(|(moved, n)| Rehearsed::Narrowing(moved, n)),
                WriteOp::DomainRm { name } => kw
                    .domain_usage(actor, name)
                    .await
                    .map(|(u, s)| Rehearsed::DomainUse(u, s)),
                WriteOp::TokenPurge { retention, .. } => kw
                    .token_purge_count(actor, retention)
                    .await
                    .map(Rehearsed::Purge),
                other => Err(keyward::Error::Refused(format!(
                    "nothing to rehearse for {other:?}"
                ))),
            };
            Loaded::Narrowing {
                confirm,
                result: result.map_err(msg),
            }
        }
        Request::KeyLiveTokens { client_id } => Loaded::KeyLiveTokens {
            result: kw.key_live_tokens(actor, &client_id).await.map_err(msg),
            client_id,
        },
        Request::Operators { generation } => Loaded::Operators {
            generation,
            result: kw.operator_list(actor).await.map_err(msg),
        },
        Request::Count {
            screen,
            spec,
            domain,
        } => Loaded::Count {
            screen,
            generation: spec.generation,
            result: count(kw, actor, &list_query(screen, &spec, domain))
                .await
                .map_err(msg),
        },
        Request::Page {
            screen,
            spec,
            domain,
        } => {
            let generation = spec.generation;
            let pos = spec.pos.clone();
            let result = page(kw, actor, screen, &spec, domain).await.map_err(msg);
            Loaded::Page {
                screen,
                generation,
                pos,
                result,
            }
        }
    }
}

/// A list screen's query for one [`PageSpec`].
#[derive(Clone)]
enum ListQuery {
    Users(UserQuery),
    Stations(StationPage),
    Tokens(TokenQuery),
    Audit(AuditPage),
    Keys(KeyQuery),
}

fn list_query(screen: ScreenId, spec: &PageSpec, domain: Option<String>) -> ListQuery {
    let domains = domain.map(|d| vec![d]);
    let store_desc = if spec.pos.forward() {
        spec.desc
    } else {
        !spec.desc
    };
    let cursor = spec.pos.cursor();
    let search = opt(&spec.filter);
    match screen {
        ScreenId::Users => ListQuery::Users(UserQuery {
            domains,
            search,
            sort: if spec.sort == 1 {
                UserSort::Created
            } else {
                UserSort::Email
            },
            desc: store_desc,
            after: cursor.map(|c| (val(&c.key), c.id.clone())),
            limit: spec.limit,
            ..Default::default()
        }),
        ScreenId::Stations => ListQuery::Stations(StationPage {
            domains,
            search,
            sort: if spec.sort == 1 {
                StationSort::Name
            } else {
                StationSort::Created
            },
            desc: store_desc,
            after: cursor.map(|c| (val(&c.key), c.id.clone())),
            limit: spec.limit,
        }),
        ScreenId::Tokens => ListQuery::Tokens(TokenQuery {
            domains,
            search,
            sort: if spec.sort == 1 {
                TokenSort::Expires
            } else {
                TokenSort::Issued
            },
            desc: store_desc,
            after: cursor.map(|c| (int(&c.key), c.id.clone())),
            limit: spec.limit,
            ..Default::default()
        }),
        ScreenId::Audit => ListQuery::Audit(AuditPage {
            domains,
            search,
            ascending: !store_desc,
            after_seq: cursor.map(|c| int(&c.key)),
            limit: spec.limit,
        }),
        ScreenId::Keys => ListQuery::Keys(KeyQuery {
            domains,
            search,
            sort: if spec.sort == 1 {
                KeySort::LastUsed
            } else {
                KeySort::Created
            },
            desc: store_desc,
            now: keyward::model::now(),
            after: cursor.map(|c| (int(&c.key), c.id.clone())),
            limit: spec.limit,
            ..Default::default()
        }),
        _ => unreachable!("only list screens are paged"),
    }
}

/// How many rows match a list's filter (the cursor is ignored).
async fn count(kw: &Keyward, actor: &Actor, q: &ListQuery) -> keyward::Result<i64> {
    match q {
        ListQuery::Users(q) => {
            let q = UserQuery {
                after: None,
                ..q.clone()
            };
            kw.user_count(actor, q).await
        }
        ListQuery::Stations(q) => {
            let q = StationPage {
                after: None,
                ..q.clone()
            };
            kw.station_page_count(actor, q).await
        }
        ListQuery::Tokens(q) => {
            let q = TokenQuery {
                after: None,
                ..q.clone()
            };
            kw.token_page_count(actor, q).await
        }
        ListQuery::Audit(q) => {
            let q = AuditPage {
                after_seq: None,
                ..q.clone()
            };
            kw.audit_page_count(actor, q).await
        }
        ListQuery::Keys(q) => {
            let q = KeyQuery {
                after: None,
                ..q.clone()
            };
            kw.key_count(actor, q).await
        }
    }
}

async fn rows(kw: &Keyward, actor: &Actor, q: ListQuery) -> keyward::Result<Rows> {
    Ok(match q {
        ListQuery::Users(q) => Rows::Users(kw.user_list(actor, q).await?),
        ListQuery::Stations(q) => Rows::Stations(kw.station_page(actor, q).await?),
        ListQuery::Tokens(q) => Rows::Tokens(kw.token_page(actor, q).await?),
        ListQuery::Audit(q) => Rows::Audit(kw.audit_page(actor, q).await?),
        ListQuery::Keys(q) => Rows::Keys(kw.key_list(actor, q).await?),
    })
}

/// One page, and the count when the spec asks for it (both on their own connection,
/// at the same time).
async fn page(
    kw: &Keyward,
    actor: &Actor,
    screen: ScreenId,
    spec: &PageSpec,
    domain: Option<String>,
) -> keyward::Result<(Rows, Option<i64>)> {
    let q = list_query(screen, spec, domain);
    if !spec.count {
        return Ok((rows(kw, actor, q).await?, None));
    }
    let (total, rows) = tokio::join!(count(kw, actor, &q), rows(kw, actor, q.clone()));
    Ok((rows?, Some(total?)))
}

pub async fn write(kw: &Keyward, actor: &Actor, op: WriteOp) -> Result<String, String> {
    use keyward::text::inert;
    let r: keyward::Result<String> = async {
        Ok(match op {
            WriteOp::DomainAdd { name } => {
                let d = kw.domain_add(actor, &name).await?;
                format!("added domain {}", d.name)
            }
            WriteOp::UserAdd {
                email,
                domain,
                name,
                role,
            } => {
                let d = kw
                    .user_add(
                        actor,
                        NewUser {
                            email,
                            domain,
                            name: opt(&name),
                            role: opt(&role),
                            ..Default::default()
                        },
                    )
                    .await?;
                format!(
                    "created {} in {} with role {} (API access pending; no token issued)",
                    inert(&d.user.email),
                    d.user.domain,
                    d.user.role
                )
            }
            WriteOp::UserStatus { id, email, disable } => {
                let status = if disable {
                    UserStatus::Disabled
                } else {
                    UserStatus::Active
                };
                match kw.user_set_status(actor, &id, status).await? {
                    (u, None) => format!("{} is {} already", inert(&email), u.status),
                    (_, Some(n)) if disable => {
                        format!("disabled {}; revoked {n} token(s)", inert(&email))
                    }
                    _ => format!("enabled {}", inert(&email)),
                }
            }
            WriteOp::UserRole { id, email, role } => {
                let (u, n) = kw.user_set_role(actor, &id, &role).await?;
                format!("{} now has role {}; {}", inert(&email), u.role, n.summary())
            }
            WriteOp::StationAdd {
                user,
                domain,
                name,
                vat,
                rn,
                country,
            } => {
                let s = kw
                    .station_add(
                        actor,
                        &name,
                        &user,
                        domain.as_deref(),
                        vat.as_deref(),
                        rn.as_deref(),
                        country.as_deref(),
                    )
                    .await?;
                format!(
                    "added station {} for {}",
                    inert(&s.name),
                    inert(&s.user_email)
                )
            }
            WriteOp::StationRm { id, name } => {
                kw.station_rm(actor, &id).await?;
                format!("removed station {}", inert(&name))
            }
            WriteOp::RoleAdd {
                name,
                description,
                scopes,
            } => {
                let r = kw
                    .role_add(actor, &name, &scopes, opt(&description).as_deref())
                    .await?;
                format!("added role {} ({})", r.name, r.effective_scopes.join(" "))
            }
            WriteOp::RoleGrant { role, scopes } => {
                let r = kw.role_grant(actor, &role, &scopes).await?;
                format!("{} now allows {}", r.name, r.effective_scopes.join(" "))
            }
            WriteOp::RoleRevoke { role, scopes } => {
                let (r, removed, n) = kw.role_revoke(actor, &role, &scopes).await?;
                if removed.is_empty() {
                    return Ok(format!(
                        "{} did not grant {}; nothing changed",
                        r.name,
                        scopes.join(" ")
                    ));
                }
                format!(
                    "{} now allows {}; {}",
                    r.name,
                    r.effective_scopes.join(" "),
                    n.summary()
                )
            }
            WriteOp::RoleDefault { role } => {
                let r = kw.role_default(actor, &role).await?;
                format!("{} is now the default role", r.name)
            }
            WriteOp::RoleRm { role, reassign } => {
                let (moved, n) = kw.role_rm(actor, &role, reassign.as_deref()).await?;
                format!(
                    "removed role {role}; moved {moved} user(s); {}",
                    n.summary()
                )
            }
            WriteOp::ScopeAdd {
                name,
                description,
                implies,
            } => {
                let s = kw
                    .scope_add(actor, &name, opt(&description).as_deref(), &implies)
                    .await?;
                format!("added scope {}", s.name)
            }
            WriteOp::ScopeRm { name } => {
                kw.scope_rm(actor, &name).await?;
                format!("removed scope {name}")
            }
            WriteOp::OperatorAdd {
                account,
                role,
                domains,
            } => {
                let o = kw.operator_add(actor, &account, &role, &domains).await?;
                format!("{} is now a {} operator", o.account, o.role)
            }
            WriteOp::ConsentGrant { user, app, scopes } => {
                let c = kw.consent_grant(actor, &user, &app, &scopes).await?;
                format!(
                    "{} consented to {} ({})",
                    inert(&c.user_email),
                    inert(&c.app_name),
                    c.scopes
                )
            }
            WriteOp::ConfigSet { key, value } => {
                let (k, v) = kw.config_set(actor, &key, &value).await?;
                format!("{k} = {v}")
            }
            WriteOp::UserRm { email, domain } => {
                let n = kw.user_rm(actor, &email, Some(&domain)).await?;
                format!("removed {}; revoked {n} token(s)", inert(&email))
            }
            WriteOp::AffiliateRotate { email, domain: _ } => {
                let u = kw.affiliate_rotate(actor, &email).await?;
                format!("{}: new affiliate id {}", inert(&u.email), u.affiliate_id)
            }
            WriteOp::UserImport {
                path,
                domain,
                dry_run,
            } => {
                let bytes = tokio::fs::read(&path).await.map_err(|e| {
                    keyward::Error::invalid("file", &path, format!("a readable CSV file ({e})"))
                })?;
                let r = kw
                    .user_import(actor, &domain, None, &bytes, dry_run, |_| {})
                    .await?;
                let verb = if dry_run { "would create" } else { "created" };
                let mut m = format!(
                    "{} row(s): {verb} {}, refused {}",
                    r.rows,
                    r.created,
                    r.errors.len()
                );
                // Every refused row, each on a line of its own (a pop-up shows them).
                const SHOWN: usize = 12;
                for e in r.errors.iter().take(SHOWN) {
                    m.push_str(&format!(
                        "\nline {} {}: {}",
                        e.line,
                        inert(&e.email),
                        inert(&e.reason)
                    ));
                }
                if r.errors.len() > SHOWN {
                    m.push_str(&format!(
                        "\n… and {} more: `keyward user import FILE --domain {} --dry-run` lists them all",
                        r.errors.len() - SHOWN,
                        inert(&domain)
                    ));
                }
                m
            }
            WriteOp::TokenPurge { retention, before } => {
                let n = match before {
                    Some(b) => kw.token_purge_before(actor, b).await?,
                    None => kw.token_purge(actor, &retention).await?,
                };
                format!("purged {n} expired token record(s)")
            }
            WriteOp::MasterKeyRotate => {
                let path = kw.master_key_rotate(actor).await?;
                format!("new master key in {}: back it up", path.display())
            }
            WriteOp::ScopeEdit {
                name,
                description,
                implies,
            } => {
                let sc = kw
                    .scope_edit(actor, &name, Some(&description), Some(&implies))
                    .await?;
                format!("scope {} updated", sc.name)
            }
            WriteOp::UserRename {
                id,
                version,
                email,
                name,
            } => {
                kw.user_rename(actor, &id, version, &name).await?;
                format!("renamed {}", inert(&email))
            }
            WriteOp::StationEdit {
                id,
                eu_vat_id,
                rn,
                country,
            } => {
                let s = kw
                    .station_edit(actor, &id, Some(&eu_vat_id), Some(&rn), Some(&country))
                    .await?;
                format!("station {} updated", inert(&s.name))
            }
            WriteOp::DomainRm { name } => {
                kw.domain_rm(actor, &name).await?;
                format!("removed domain {name}")
            }
            WriteOp::ConsentRevoke { user, app } => {
                let n = kw.consent_revoke(actor, &user, &app).await?;
                format!(
                    "revoked {}'s consent to {app}; revoked {n} token(s)",
                    inert(&user)
                )
            }
            WriteOp::AppRm { client_id } => {
                let n = kw.app_rm(actor, &client_id).await?;
                format!("removed developer app {client_id}; revoked {n} token(s)")
            }
            WriteOp::KeyRm { client_id } => {
                let n = kw.key_rm(actor, &client_id).await?;
                format!("deleted API key {client_id}; revoked {n} token(s)")
            }
            WriteOp::TokenRevoke { jti, reason } => {
                let n = kw
                    .token_revoke(
                        actor,
                        keyward::service::tokens::RevokeWhat::Jtis(vec![jti.clone()]),
                        reason.as_deref(),
                    )
                    .await?;
                format!("revoked {n} token ({jti})")
            }
            WriteOp::SigningRotate { alg } => {
                let a: keyward::token::Alg = alg
                    .parse()
                    .map_err(|e| keyward::Error::Refused(format!("{e}")))?;
                let k = kw
                    .signing_key_rotate(actor, a, a == keyward::token::Alg::HS256)
                    .await?;
                format!("new {} signing key {} is active", k.alg, k.kid)
            }
            WriteOp::SigningRetire { kid, revoke_tokens } => {
                let n = kw.signing_key_retire(actor, &kid, revoke_tokens).await?;
                format!("retired signing key {kid}; revoked {n} token(s)")
            }
            WriteOp::OperatorRm { account } => {
                kw.operator_rm(actor, &account).await?;
                format!("removed operator {account}")
            }
            WriteOp::Demo { users } => {
                let r = kw
                    .demo(
                        actor,
                        DemoOptions {
                            users,
                            tokens: users * 3,
                        },
                        |_, _| {},
                    )
                    .await?;
                format!(
                    "loaded demo data: {} domains, {} users, {} stations, {} API keys, {} apps, {} tokens",
                    r.domains.len(),
                    r.users,
                    r.stations,
                    r.keys,
                    r.apps,
                    r.tokens
                )
            }
        })
    }
    .await;
    r.map_err(msg)
}

/// Writes OSC 52 (set the clipboard) to the terminal, base64 in a wiped buffer.
fn copy_to_clipboard(secret: &Secret) {
    use base64::Engine;
    use std::io::Write;
    let seq = zeroize::Zeroizing::new(format!(
        "\x1b]52;c;{}\x07",
        *zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(secret.expose().as_bytes())
        )
    ));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(seq.as_bytes());
    let _ = out.flush();
}

/// Issues an API key or a token for the "Enable API access" dialog.
pub async fn issue(kw: &Keyward, actor: &Actor, op: IssueOp) -> Result<Reveal, String> {
    if op.token {
        let m = kw
            .mint(
                actor,
                MintSpec {
                    user: op.email.clone(),
                    domain: Some(op.domain.clone()).filter(|d| !d.is_empty()),
                    scopes: op.scopes.clone(),
                    ttl: op.expires.clone(),
                    key: None,
                },
            )
            .await
            .map_err(msg)?;
        Ok(Reveal {
            title: None,
            email: op.email,
            client_id: None,
            secret: Secret::new(m.access_token),
            scope: m.scope,
            expiry: format!("expires in {}", super::fmt::span(m.expires_in)),
            copied: false,
        })
    } else {
        let n = kw
            .key_create(
                actor,
                KeySpec {
                    user: op.email.clone(),
                    domain: Some(op.domain.clone()).filter(|d| !d.is_empty()),
                    scopes: op.scopes.clone(),
                    expires_in: op.expires.clone(),
                    name: op.name.clone(),
                    issue_refresh: op.refresh,
                    rate_exempt: op.rate_exempt,
                    ..Default::default()
                },
            )
            .await
            .map_err(msg)?;
        Ok(Reveal {
            title: None,
            email: op.email,
            client_id: Some(n.key.client_id.clone()),
            secret: Secret::new(n.client_secret.expose_secret().to_string()),
            scope: n.key.scopes.clone(),
            expiry: match n.key.expires_at {
                Some(t) => format!("expires {}", super::fmt::date(t)),
                None => "never expires".into(),
            },
            copied: false,
        })
    }
}

/// Creates a developer app; its secret goes to the reveal dialog.
pub async fn issue_app(kw: &Keyward, actor: &Actor, op: AppOp) -> Result<Reveal, String> {
    let n = kw
        .app_create(
            actor,
            &op.name,
            &op.owner,
            &op.redirect_uris,
            op.scopes.as_deref(),
        )
        .await
        .map_err(msg)?;
    Ok(Reveal {
        title: Some(format!(
            "App {} of {}",
            keyward::text::inert(&n.app.name),
            keyward::text::inert(&n.app.owner_email)
        )),
        email: n.app.owner_email.clone(),
        client_id: Some(n.app.client_id.clone()),
        secret: Secret::new(n.client_secret.expose_secret().to_string()),
        scope: n.app.scopes.clone(),
        expiry: "never expires".into(),
        copied: false,
    })
}
