//! CLI commands for credentials and tokens.

use super::args::*;
use super::output::{self, datetime, fields, json, table};
use super::{Failure, R};
use keyward::model::{self, Ttl};
use keyward::service::credentials::KeySpec;
use keyward::service::tokens::{MintSpec, RevokeWhat};
use keyward::token::{Alg, Reason};
use keyward::{Actor, Error, Keyward};
use secrecy::ExposeSecret;
use serde_json::json as j;
use std::io::Read;

/// Reads a token argument; `-` reads standard input (tokens do not belong in shell history).
fn token_arg(t: &str) -> R<String> {
    if t != "-" {
        return Ok(t.trim().to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut s)
        .map_err(|e| Failure::Usage(format!("cannot read the token from stdin: {e}")))?;
    Ok(s.trim().to_string())
}

fn within(s: Option<&str>, flag: &'static str) -> R<Option<i64>> {
    Ok(s.map(|v| Ttl::parse(flag, v))
        .transpose()?
        .map(|t| t.secs()))
}

fn opt_date(t: Option<i64>) -> String {
    t.map(datetime).unwrap_or_else(|| "never".into())
}

pub async fn key(kw: &Keyward, a: &Actor, js: bool, c: KeyCmd) -> R {
    match c {
        KeyCmd::Create {
            user,
            domain,
            name,
            scopes,
            expires_in,
            redirect_uri,
            no_refresh,
            rate_exempt,
        } => {
            let k = kw
                .key_create(
                    a,
                    KeySpec {
                        user,
                        domain,
                        name,
                        scopes,
                        expires_in,
                        redirect_uris: redirect_uri,
                        issue_refresh: !no_refresh,
                        rate_exempt,
                    },
                )
                .await?;
            if js {
                let mut v = serde_json::to_value(&k.key).expect("serialisable");
                v["client_secret"] = j!(k.client_secret.expose_secret());
                json(&v);
            } else {
                println!(
                    "API key for {} — the secret is shown only now; store it before you continue.",
                    k.key.user_email
                );
                fields(&[
                    ("client_id", k.key.client_id.clone()),
                    ("client_secret", k.client_secret.expose_secret().to_string()),
                    ("scope", k.key.scopes.clone()),
                    ("expires", opt_date(k.key.expires_at)),
                ]);
            }
        }
        KeyCmd::List {
            user,
            unused_for,
            expiring_within,
        } => {
            let mut q = kw.key_query(a, user.as_deref()).await?;
            let now = model::now();
            q.unused_since = within(unused_for.as_deref(), "--unused-for")?.map(|s| now - s);
            q.expiring_before =
                within(expiring_within.as_deref(), "--expiring-within")?.map(|s| now + s);
            let mut all = Vec::new();
            loop {
                let page = kw.key_list(a, q.clone()).await?;
                let full = page.len() as i64 == q.limit;
                if let Some(l) = page.last() {
                    q.after = Some((l.created_at, l.id.clone()));
                }
                all.extend(page);
                if !full {
                    break;
                }
            }
            if js {
                json(&all);
            } else {
                table(
                    &[
                        "CLIENT_ID",
                        "NAME",
                        "USER",
                        "SCOPES",
                        "EXPIRES",
                        "LAST USED",
                    ],
                    all.iter()
                        .map(|k| {
                            vec![
                                k.client_id.clone(),
                                k.name.clone(),
                                k.user_email.clone(),
                                k.scopes.clone(),
                                opt_date(k.expires_at),
                                opt_date(k.last_used_at),
                            ]
                        })
                        .collect(),
                );
            }
        }
        KeyCmd::Rm { client_id } => {
            let n = kw.key_rm(a, &client_id).await?;
            if js {
                json(&j!({"removed": client_id, "revoked_tokens": n}));
            } else {
                println!("Deleted key {client_id}; revoked {n} token(s) minted through it.");
            }
        }
    }
    Ok(())
}

pub async fn app(kw: &Keyward, a: &Actor, js: bool, c: AppCmd) -> R {
    match c {
        AppCmd::Create {
            name,
            owner,
            redirect_uri,
            scopes,
        } => {
            let n = kw
                .app_create(a, &name, &owner, &redirect_uri, scopes.as_deref())
                .await?;
            if js {
                let mut v = serde_json::to_value(&n.app).expect("serialisable");
                v["client_secret"] = j!(n.client_secret.expose_secret());
                json(&v);
            } else {
                println!(
                    "App {} — the secret is shown only now; store it before you continue.",
                    n.app.name
                );
                fields(&[
                    ("client_id", n.app.client_id.clone()),
                    ("client_secret", n.client_secret.expose_secret().to_string()),
                    ("scopes", n.app.scopes.clone()),
                    ("redirect URIs", n.app.redirect_uris.clone()),
                ]);
            }
        }
        AppCmd::List => {
            let apps = kw.app_list(a).await?;
            if js {
                json(&apps);
            } else {
                table(
                    &[
                        "CLIENT_ID",
                        "NAME",
                        "OWNER",
                        "DOMAIN",
                        "SCOPES",
                        "REDIRECT URIS",
                    ],
                    apps.iter()
                        .map(|x| {
                            vec![
                                x.client_id.clone(),
                                x.name.clone(),
                                x.owner_email.clone(),
                                x.domain.clone(),
                                x.scopes.clone(),
                                x.redirect_uris.clone(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        AppCmd::Rm { client_id } => {
            let n = kw.app_rm(a, &client_id).await?;
            if js {
                json(&j!({"removed": client_id, "revoked_tokens": n}));
            } else {
                println!("Removed app {client_id} with its consents; revoked {n} token(s).");
            }
        }
    }
    Ok(())
}

pub async fn consent(kw: &Keyward, a: &Actor, js: bool, c: ConsentCmd) -> R {
    match c {
        ConsentCmd::Grant { user, app, scopes } => {
            let r = kw.consent_grant(a, &user, &app, &scopes).await?;
            if js {
                json(&r)
            } else {
                println!(
                    "{} consents to {} for: {}",
                    r.user_email, r.app_client_id, r.scopes
                )
            }
        }
        ConsentCmd::List { user } => {
            let rs = kw.consent_list(a, user.as_deref()).await?;
            if js {
                json(&rs);
            } else {
                table(
                    &["USER", "APP", "CLIENT_ID", "SCOPES", "GRANTED"],
                    rs.iter()
                        .map(|r| {
                            vec![
                                r.user_email.clone(),
                                r.app_name.clone(),
                                r.app_client_id.clone(),
                                r.scopes.clone(),
                                datetime(r.created_at),
                            ]
                        })
                        .collect(),
                );
            }
        }
        ConsentCmd::Revoke { user, app } => {
            let n = kw.consent_revoke(a, &user, &app).await?;
            if js {
                json(&j!({"revoked_tokens": n}))
            } else {
                println!("Consent withdrawn; revoked {n} token(s) of the app for this user.")
            }
        }
    }
    Ok(())
}

/// A token record as `token list --json` prints it: with `id` (the jti) beside it.
#[derive(serde::Serialize)]
struct TokenOut {
    #[serde(flatten)]
    rec: keyward::store::credentials::TokenRecord,
    id: String,
}

fn human_delta(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let d = Ttl::from_secs(if a > 3600 { a / 60 * 60 } else { a }).to_string();
    if secs >= 0 {
        format!("in {d}")
    } else {
        format!("{d} ago")
    }
}

pub async fn token(kw: &Keyward, a: &Actor, js: bool, c: TokenCmd) -> R {
    match c {
        TokenCmd::Mint {
            user,
            domain,
            scopes,
            ttl,
            key,
        } => {
            let m = kw
                .mint(
                    a,
                    MintSpec {
                        user,
                        domain,
                        scopes,
                        ttl,
                        key,
                    },
                )
                .await?;
            if js {
                json(&m);
            } else {
                println!("{}", m.access_token);
                eprintln!(
                    "jti {} · scope {} · expires in {}",
                    m.jti,
                    m.scope,
                    Ttl::from_secs(m.expires_in.max(0) as u64)
                );
            }
        }
        TokenCmd::List {
            user,
            active,
            expiring_within,
            limit,
        } => {
            let mut q = kw.token_query(a, user.as_deref()).await?;
            q.active = active;
            q.expiring_before =
                within(expiring_within.as_deref(), "--expiring-within")?.map(|s| q.now + s);
            let fetch = async |want: i64| -> R<Vec<TokenOut>> {
                q.limit = want;
                let page = kw.token_list(a, q.clone()).await?;
                if let Some(l) = page.last() {
                    q.before = Some((l.issued_at, l.jti.clone()));
                }
                Ok(page
                    .into_iter()
                    .map(|r| TokenOut {
                        id: r.jti.clone(),
                        rec: r,
                    })
                    .collect())
            };
            let now = model::now();
            output::paged(
                js,
                limit,
                &["JTI", "CLIENT_ID", "SCOPES", "ISSUED", "EXPIRES", "STATE"],
                "No tokens match.",
                fetch,
                |t| {
                    let r = &t.rec;
                    let state = if r.revoked_at.is_some() {
                        "revoked"
                    } else if r.expires_at <= now {
                        "expired"
                    } else {
                        "active"
                    };
                    vec![
                        r.jti.clone(),
                        r.client_id.clone(),
                        r.scopes.clone(),
                        datetime(r.issued_at),
                        datetime(r.expires_at),
                        state.into(),
                    ]
                },
            )
            .await?;
        }
        TokenCmd::Revoke {
            jti,
            user,
            key,
            reason,
        } => {
            let what = match (user, key) {
                (Some(u), _) => RevokeWhat::User(u),
                (_, Some(k)) => RevokeWhat::Key(k),
                _ if !jti.is_empty() => RevokeWhat::Jtis(jti),
                _ => {
                    return Err(Failure::Usage(
                        "name tokens to revoke: JTI..., --user USER or --key CLIENT_ID".into(),
                    ));
                }
            };
            let n = kw.token_revoke(a, what, reason.as_deref()).await?;
            if js {
                json(&j!({"revoked": n}))
            } else if n == 0 {
                println!("Nothing to revoke: no unrevoked token matched; nothing changed.")
            } else {
                println!("Revoked {n} token(s).")
            }
        }
        TokenCmd::Inspect { token } => {
            let t = token_arg(&token)?;
            let i = kw.introspect(Some(a), &t).await?;
            if js {
                let mut v = serde_json::to_value(&i).expect("serialisable");
                v["header"] = i.header.clone().unwrap_or(serde_json::Value::Null);
                v["claims"] = i.claims.clone().unwrap_or(serde_json::Value::Null);
                // When, by whom and why it was revoked, as `token list --json` says it.
                if let Some(r) = i.record.as_ref().filter(|r| r.revoked_at.is_some()) {
                    let r = serde_json::to_value(r).expect("serialisable");
                    for k in ["revoked_at", "revoked_by", "revoke_reason"] {
                        v[k] = r[k].clone();
                    }
                }
                json(&v);
            } else {
                let now = model::now();
                let verdict = if i.active {
                    "✓ ACTIVE".to_string()
                } else {
                    let why = i.reason.map(|r| r.as_str()).unwrap_or("inactive");
                    match &i.record {
                        Some(r) if r.revoked_at.is_some() => format!(
                            "✗ INACTIVE — {why} {} by {} ({:?})",
                            opt_date(r.revoked_at),
                            r.revoked_by.clone().unwrap_or_default(),
                            r.revoke_reason.clone().unwrap_or_default()
                        ),
                        _ => match i.reason {
                            Some(r) => format!("✗ INACTIVE — {why}: {}", r.explain()),
                            None => format!("✗ INACTIVE — {why}"),
                        },
                    }
                };
                let h = i.header.clone().unwrap_or_default();
                let c = i.claims.clone().unwrap_or_default();
                let s = |v: &serde_json::Value, k: &str| {
                    v.get(k)
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .unwrap_or_else(|| "—".into())
                };
                let t = |k: &str| {
                    c.get(k)
                        .and_then(|x| x.as_i64())
                        .map(|x| format!("{} UTC ({})", datetime(x), human_delta(x - now)))
                        .unwrap_or_else(|| "—".into())
                };
                fields(&[
                    ("verdict", verdict),
                    (
                        "header",
                        format!(
                            "alg {} · typ {} · kid {}",
                            s(&h, "alg"),
                            s(&h, "typ"),
                            s(&h, "kid")
                        ),
                    ),
                    (
                        "sub",
                        match &i.username {
                            Some(email) => format!("{} ({email})", s(&c, "sub")),
                            None => s(&c, "sub"),
                        },
                    ),
                    ("aud", s(&c, "aud")),
                    ("iss", s(&c, "iss")),
                    ("scope", s(&c, "scope")),
                    ("client_id", s(&c, "client_id")),
                    ("jti", s(&c, "jti")),
                    ("iat", t("iat")),
                    ("exp", t("exp")),
                ]);
            }
        }
        TokenCmd::Verify {
            token,
            require_scope,
        } => {
            let t = token_arg(&token)?;
            let mut i = kw.introspect(Some(a), &t).await?;
            let mut missing: Vec<&str> = Vec::new();
            if i.active {
                let held: Vec<&str> = i
                    .scope
                    .as_deref()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                missing = require_scope
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !held.contains(s))
                    .collect();
                if !missing.is_empty() {
                    i.active = false;
                    i.reason = Some(Reason::InsufficientScope);
                }
            }
            if js {
                json(&i);
            } else if i.active {
                println!(
                    "valid: sub {} · scope {}",
                    i.sub.clone().unwrap_or_default(),
                    i.scope.clone().unwrap_or_default()
                );
            } else if !missing.is_empty() {
                println!(
                    "invalid: insufficient_scope (lacks {}; has {})",
                    missing.join(", "),
                    i.scope
                        .as_deref()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("none")
                );
            } else {
                println!(
                    "invalid: {}",
                    i.reason.map(|r| r.as_str()).unwrap_or("inactive")
                );
            }
            if !i.active {
                return Err(Failure::Silent(1));
            }
        }
        TokenCmd::Purge { expired_before } => {
            let n = kw.token_purge(a, &expired_before).await?;
            if js {
                json(&j!({"removed": n}))
            } else {
                println!("Removed {n} token record(s) that expired more than {expired_before} ago.")
            }
        }
    }
    Ok(())
}

pub async fn signing_key(kw: &Keyward, a: &Actor, js: bool, c: SigningKeyCmd) -> R {
    match c {
        SigningKeyCmd::List => {
            let ks = kw.signing_key_list(a).await?;
            if js {
                json(&ks);
            } else {
                table(
                    &[
                        "KID",
                        "ALG",
                        "STATUS",
                        "PUBLISHED",
                        "LIVE TOKENS",
                        "CREATED",
                    ],
                    ks.iter()
                        .map(|k| {
                            vec![
                                k.kid.clone(),
                                k.alg.clone(),
                                k.status.clone(),
                                if k.published {
                                    "yes".into()
                                } else {
                                    "no".into()
                                },
                                k.live_tokens.to_string(),
                                datetime(k.created_at),
                            ]
                        })
                        .collect(),
                );
            }
        }
        SigningKeyCmd::Rotate { alg, shared_secret } => {
            let alg: Alg = alg.parse().map_err(|e: keyward::token::TokenError| {
                Failure::Core(Error::invalid("--alg", alg.clone(), e.to_string()))
            })?;
            // The core says it in its own words; here the flags are the words.
            if alg == Alg::HS256 && !shared_secret {
                return Err(Failure::Core(Error::invalid(
                    "--alg",
                    alg.as_str(),
                    "HS256 only together with --shared-secret (its key is a shared secret, never published); otherwise ES256, EdDSA or RS256",
                )));
            }
            if shared_secret && alg != Alg::HS256 {
                return Err(Failure::Core(Error::Refused(format!(
                    "--shared-secret makes an HS256 key; add --alg HS256 (the algorithm is {})",
                    alg.as_str()
                ))));
            }
            let k = kw.signing_key_rotate(a, alg, shared_secret).await?;
            if js {
                json(&k)
            } else {
                println!(
                    "New active signing key {} ({}); the previous key stays verify-only.",
                    k.kid, k.alg
                )
            }
        }
        SigningKeyCmd::Retire { kid, revoke_tokens } => {
            let n = kw.signing_key_retire(a, &kid, revoke_tokens).await?;
            if js {
                json(&j!({"retired": kid, "revoked_tokens": n}))
            } else {
                println!("Retired signing key {kid}; revoked {n} token(s).")
            }
        }
    }
    Ok(())
}
