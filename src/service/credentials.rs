//! API keys, developer apps and consents.

use super::directory::{find_user, mark_api_enabled};
use super::scopes::{ScopeGraph, effective_scopes, find_scopes};
use super::{Actor, Keyward, Need, audit_event};
use crate::error::{Error, Listing, Result, Step};
use crate::model::{self, DisplayName, ScopeName, Ttl};
use crate::secret::{generate_id, generate_secret};
use crate::store::Cx;
use crate::store::credentials::{self as cred, AppRow, ConsentRow, KeyQuery, KeyRow};
use crate::store::directory as dir;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeSet;

/// Validates a redirect URI: absolute https to a host name (LDH labels, so no `*`
/// wildcard: it is matched exactly) or an IP address, or http on a loopback host (RFC
/// 8252). Parsed with `url` (WHATWG); kept as written, since it is compared as a string.
pub fn validate_redirect_uri(u: &str) -> Result<String> {
    let v = u.trim();
    let accepted = "an absolute https:// URL to a host name or address, or http:// on 127.0.0.1, [::1] or localhost (no fragment, no user name, no wildcard)";
    let bad = || Error::invalid("redirect URI", u, accepted);
    if v.len() > 2000 || v.contains('#') || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let url = url::Url::parse(v).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    let named = match url.host() {
        Some(url::Host::Domain(d)) => crate::model::DomainName::parse(d).is_ok(),
        Some(_) => true,
        None => return Err(bad()),
    };
    match (url.scheme(), url.host_str()) {
        ("https", _) if named => Ok(v.to_string()),
        ("http", Some("127.0.0.1" | "[::1]" | "localhost")) => Ok(v.to_string()),
        _ => Err(bad()),
    }
}

/// Whether a requested redirect URI is the `registered` one: the same string, or, for
/// a loopback IP literal over http, the same but for the port, which a native app picks
/// when it starts listening (RFC 8252 §7.3; `localhost` is matched exactly).
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(mut reg), Ok(mut req)) = (url::Url::parse(registered), url::Url::parse(requested))
    else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    if !loopback(&reg) || !loopback(&req) {
        return false;
    }
    // Both are http URLs with a host: the port can be cleared.
    let _ = reg.set_port(None);
    let _ = req.set_port(None);
    reg == req
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(" ")
}

/// Checks requested scopes against what is allowed; returns the effective (closed) set.
/// Without a request, the allowed set is granted.
/// [`narrow_scopes`] for issuing a token: a token with no scope at all would be
/// accepted nowhere, so it is refused instead, saying why.
pub fn token_scopes(
    g: &ScopeGraph,
    requested: Option<&[ScopeName]>,
    allowed: &BTreeSet<String>,
    what: &str,
) -> Result<BTreeSet<String>> {
    let granted = narrow_scopes(g, requested, allowed, what)?;
    if granted.is_empty() {
        return Err(Error::Refused(format!(
            "{what} allows no scope, so a token would grant nothing; give it scopes first"
        )));
    }
    Ok(granted)
}

pub fn narrow_scopes(
    g: &ScopeGraph,
    requested: Option<&[ScopeName]>,
    allowed: &BTreeSet<String>,
    what: &str,
) -> Result<BTreeSet<String>> {
    let Some(req) = requested else {
        return Ok(allowed.clone());
    };
    let unknown: Vec<&str> = req
        .iter()
        .map(|s| s.as_str())
        .filter(|s| !g.all.contains(*s))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::not_found_step(
            "scope",
            unknown.join(", "),
            Some(format!("known scopes: {}", join(&g.all))),
            crate::error::Step::AddScope,
        ));
    }
    let closed = g.closure(req.iter().map(|s| s.as_str()));
    let missing: Vec<&str> = closed
        .iter()
        .map(String::as_str)
        .filter(|s| !allowed.contains(*s))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Refused(format!(
            "{what} does not allow scope(s) {}; allowed: {}",
            missing.join(", "),
            if allowed.is_empty() {
                "none".to_string()
            } else {
                join(allowed)
            }
        )));
    }
    Ok(closed)
}

/// A new API key row for `user` with a fresh client id and secret (stored only as a keyed
/// hash). Shared by `key create` and `apply`, so credential rules live in one place.
pub(crate) fn new_key_row(
    user: &crate::store::directory::UserRow,
    name: &str,
    scopes: &BTreeSet<String>,
    redirect_uris: &[String],
    expires_at: Option<i64>,
    issue_refresh: bool,
    hash_key: &crate::secret::HashKey,
) -> (KeyRow, SecretString) {
    let secret = generate_secret("kws_");
    let now = model::now();
    let row = KeyRow {
        id: model::new_id(),
        domain_id: user.domain_id.clone(),
        domain: user.domain.clone(),
        user_id: user.id.clone(),
        user_email: user.email.clone(),
        client_id: generate_id("kw_", 6),
        name: name.to_string(),
        secret_hash: hash_key.keyed_hash(secret.expose_secret()),
        scopes: join(scopes),
        redirect_uris: redirect_uris.join(" "),
        expires_at,
        issue_refresh,
        rate_exempt: false,
        last_used_at: None,
        created_at: now,
        version: 1,
    };
    (row, secret)
}

/// A new developer app row owned by `owner`, with a fresh client id and secret.
pub(crate) fn new_app_row(
    owner: &crate::store::directory::UserRow,
    name: &str,
    scopes: &BTreeSet<String>,
    redirect_uris: &[String],
    hash_key: &crate::secret::HashKey,
) -> (AppRow, SecretString) {
    let secret = generate_secret("kwa_");
    let row = AppRow {
        id: model::new_id(),
        domain_id: owner.domain_id.clone(),
        domain: owner.domain.clone(),
        owner_id: owner.id.clone(),
        owner_email: owner.email.clone(),
        client_id: generate_id("kwapp_", 6),
        name: name.to_string(),
        secret_hash: hash_key.keyed_hash(secret.expose_secret()),
        scopes: join(scopes),
        redirect_uris: redirect_uris.join(" "),
        created_at: model::now(),
        version: 1,
    };
    (row, secret)
}

/// A new API key with its secret (shown once).
pub struct NewKey {
    pub key: KeyRow,
    pub client_secret: SecretString,
}

/// A new app with its secret (shown once).
pub struct NewApp {
    pub app: AppRow,
    pub client_secret: SecretString,
}

/// Options of `key create`.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    pub user: String,
    pub domain: Option<String>,
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_in: Option<String>,
    pub redirect_uris: Vec<String>,
    pub issue_refresh: bool,
    /// Exempt from the token service's rate limits (admins only).
    pub rate_exempt: bool,
}

pub(crate) async fn user_role_scopes(cx: &mut Cx<'_>, role_id: &str) -> Result<BTreeSet<String>> {
    let role = dir::role_by_id(cx, role_id)
        .await?
        .ok_or_else(|| Error::not_found("role", role_id))?;
    effective_scopes(cx, &role).await
}

impl Keyward {
    /// Creates an API key for a user within the user's role; enables API access.
    pub async fn key_create(&self, actor: &Actor, spec: KeySpec) -> Result<NewKey> {
        actor.require(if spec.rate_exempt {
            Need::Admin
        } else {
            Need::Support
        })?;
        let scopes: Option<Vec<ScopeName>> = spec
            .scopes
            .as_ref()
            .map(|v| v.iter().map(|s| ScopeName::parse(s)).collect::<Result<_>>())
            .transpose()?;
        let ttl = spec
            .expires_in
            .as_deref()
            .map(|t| Ttl::parse("expires_in", t))
            .transpose()?;
        let name =
            DisplayName::parse_required("key name", spec.name.as_deref().unwrap_or("api key"))?;
        let uris: Vec<String> = spec
            .redirect_uris
            .iter()
            .map(|u| validate_redirect_uri(u))
            .collect::<Result<_>>()?;
        let secrets = self.secrets().await?;
        let a = actor.clone();
        self.write(async move |cx| {
            let u = find_user(cx, &a, &spec.user, spec.domain.as_deref()).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            if dir::lock_user_status(cx, &u.id).await?.as_deref() != Some("active") {
                return Err(Error::blocked(format!("{} is disabled", u.email), Step::EnableUser));
            }
            let g = ScopeGraph::load(cx).await?;
            let allowed = user_role_scopes(cx, &u.role_id).await?;
            let granted = token_scopes(&g, scopes.as_deref(), &allowed, &format!("role {}", u.role))?;
            let (mut key, secret) = new_key_row(
                &u,
                name.as_str(),
                &granted,
                &uris,
                ttl.map(|t| model::now() + t.secs()),
                spec.issue_refresh,
                secrets.hash_key(),
            );
            key.rate_exempt = spec.rate_exempt;
            cred::insert_key(cx, &key).await?;
            mark_api_enabled(cx, &u).await?;
            audit_event(
                cx,
                &a,
                "key.create",
                &key.client_id,
                Some(&key.domain_id),
                json!({"user": u.email, "name": key.name, "scopes": key.scopes, "expires_at": key.expires_at.map(model::rfc3339), "rate_exempt": key.rate_exempt}),
            )
            .await?;
            Ok(NewKey { key, client_secret: secret })
        })
        .await
    }

    pub async fn key_list(&self, actor: &Actor, mut q: KeyQuery) -> Result<Vec<KeyRow>> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = Some(ids);
        }
        self.read(async move |cx| cred::list_keys(cx, &q).await)
            .await
    }

    pub async fn key_count(&self, actor: &Actor, mut q: KeyQuery) -> Result<i64> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = Some(ids);
        }
        self.read(async move |cx| cred::count_keys(cx, &q).await)
            .await
    }

    /// Resolves `key list --user` into a query.
    pub async fn key_query(&self, actor: &Actor, user: Option<&str>) -> Result<KeyQuery> {
        let (a, user) = (actor.clone(), user.map(str::to_string));
        self.read(async move |cx| {
            let mut q = KeyQuery {
                limit: 1000,
                now: model::now(),
                ..Default::default()
            };
            if let Some(u) = &user {
                q.user_id = Some(find_user(cx, &a, u, None).await?.id);
            }
            Ok(q)
        })
        .await
    }

    /// Finds a key visible to the actor.
    pub async fn key_show(&self, actor: &Actor, client_id: &str) -> Result<KeyRow> {
        let (a, id) = (actor.clone(), client_id.trim().to_string());
        self.read(async move |cx| find_key(cx, &a, &id).await).await
    }

    /// Active tokens that deleting this key would revoke.
    pub async fn key_live_tokens(&self, actor: &Actor, client_id: &str) -> Result<i64> {
        let (a, id) = (actor.clone(), client_id.trim().to_string());
        self.read_tokens(async move |cx| {
            let k = find_key(cx, &a, &id).await?;
            let q = cred::TokenQuery {
                key_id: Some(k.id),
                active: true,
                now: model::now(),
                ..Default::default()
            };
            cred::count_tokens(cx, &q).await
        })
        .await
    }

    /// Deletes a key and revokes every token minted through it.
    pub async fn key_rm(&self, actor: &Actor, client_id: &str) -> Result<u64> {
        actor.require(Need::Support)?;
        let (a, id) = (actor.clone(), client_id.trim().to_string());
        self.write(async move |cx| {
            let k = find_key(cx, &a, &id).await?;
            a.require_domain(&k.domain_id, &k.domain)?;
            let n = cred::revoke_tokens_where(
                cx,
                "key_id",
                &k.id,
                None,
                model::now(),
                &a.label(),
                "key_deleted",
            )
            .await?;
            cred::delete_key(cx, &k.id).await?;
            audit_event(
                cx,
                &a,
                "key.rm",
                &k.client_id,
                Some(&k.domain_id),
                json!({"user": k.user_email, "revoked_tokens": n}),
            )
            .await?;
            Ok(n)
        })
        .await
    }

    // ------------------------------------------------------------ apps

    /// Registers a developer app (OAuth client) owned by a user.
    pub async fn app_create(
        &self,
        actor: &Actor,
        name: &str,
        owner: &str,
        redirect_uris: &[String],
        scopes: Option<&[String]>,
    ) -> Result<NewApp> {
        actor.require(Need::Admin)?;
        let name = DisplayName::parse_required("app name", name)?;
        if redirect_uris.is_empty() {
            return Err(Error::invalid(
                "redirect URI",
                "",
                "at least one --redirect-uri",
            ));
        }
        let uris: Vec<String> = redirect_uris
            .iter()
            .map(|u| validate_redirect_uri(u))
            .collect::<Result<_>>()?;
        let scopes: Option<Vec<ScopeName>> = scopes
            .map(|v| v.iter().map(|s| ScopeName::parse(s)).collect::<Result<_>>())
            .transpose()?;
        let secrets = self.secrets().await?;
        let (a, owner) = (actor.clone(), owner.to_string());
        self.write(async move |cx| {
            let u = find_user(cx, &a, &owner, None).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            let g = ScopeGraph::load(cx).await?;
            let granted = match &scopes {
                Some(s) => g.closure(find_scopes(cx, s).await?.iter().map(|r| r.name.as_str())),
                None => ["read".to_string()].into_iter().collect(),
            };
            let (app, secret) = new_app_row(&u, name.as_str(), &granted, &uris, secrets.hash_key());
            cred::insert_app(cx, &app).await?;
            audit_event(
                cx,
                &a,
                "app.create",
                &app.client_id,
                Some(&app.domain_id),
                json!({"name": app.name, "owner": u.email, "scopes": app.scopes, "redirect_uris": uris}),
            )
            .await?;
            Ok(NewApp { app, client_secret: secret })
        })
        .await
    }

    pub async fn app_list(&self, actor: &Actor) -> Result<Vec<AppRow>> {
        let ids = actor.domain_ids();
        self.read(async move |cx| cred::list_apps(cx, ids.as_deref()).await)
            .await
    }

    /// Removes an app with its consents; revokes its tokens.
    pub async fn app_rm(&self, actor: &Actor, client_id: &str) -> Result<u64> {
        actor.require(Need::Admin)?;
        let (a, id) = (actor.clone(), client_id.trim().to_string());
        self.write(async move |cx| {
            let app = find_app(cx, &a, &id).await?;
            let n = cred::revoke_tokens_where(
                cx,
                "app_id",
                &app.id,
                None,
                model::now(),
                &a.label(),
                "revoked",
            )
            .await?;
            cred::delete_app(cx, &app.id).await?;
            audit_event(
                cx,
                &a,
                "app.rm",
                &app.client_id,
                Some(&app.domain_id),
                json!({"name": app.name, "revoked_tokens": n}),
            )
            .await?;
            Ok(n)
        })
        .await
    }

    // ------------------------------------------------------------ consents

    /// Records a user's consent to an app for some of the app's scopes.
    pub async fn consent_grant(
        &self,
        actor: &Actor,
        user: &str,
        app: &str,
        scopes: &[String],
    ) -> Result<ConsentRow> {
        actor.require(Need::Support)?;
        let scopes: Vec<ScopeName> = scopes
            .iter()
            .map(|s| ScopeName::parse(s))
            .collect::<Result<_>>()?;
        let (a, user, app) = (actor.clone(), user.to_string(), app.to_string());
        self.write(async move |cx| {
            let u = find_user(cx, &a, &user, None).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            let app = find_app(cx, &a, &app).await?;
            if app.domain_id != u.domain_id {
                return Err(Error::Refused(format!(
                    "app {} belongs to {} and user {} to {}; consents never cross domains",
                    app.client_id, app.domain, u.email, u.domain
                )));
            }
            let g = ScopeGraph::load(cx).await?;
            let app_scopes: BTreeSet<String> =
                app.scopes.split_whitespace().map(str::to_string).collect();
            let granted = narrow_scopes(
                &g,
                Some(&scopes),
                &app_scopes,
                &format!("app {}", app.client_id),
            )?;
            // A consent to more than the user's role grants would never be honoured
            // (tokens stay within the role): refused, naming what is missing, as the
            // consent page refuses it.
            let role = user_role_scopes(cx, &u.role_id).await?;
            narrow_scopes(&g, Some(&scopes), &role, &format!("role {}", u.role))?;
            cred::upsert_consent(
                cx,
                &model::new_id(),
                &u.id,
                &app.id,
                &join(&granted),
                model::now(),
            )
            .await?;
            audit_event(
                cx,
                &a,
                "consent.grant",
                &format!("{} → {}", u.email, app.client_id),
                Some(&u.domain_id),
                json!({"scopes": join(&granted)}),
            )
            .await?;
            cred::consent(cx, &u.id, &app.id)
                .await?
                .ok_or_else(|| Error::not_found("consent", &app.client_id))
        })
        .await
    }

    pub async fn consent_list(&self, actor: &Actor, user: Option<&str>) -> Result<Vec<ConsentRow>> {
        self.consent_list_limited(actor, user, 10_000).await
    }

    /// The first `limit` consents (by user email), with each app's total count.
    pub async fn consent_list_limited(
        &self,
        actor: &Actor,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConsentRow>> {
        let (a, user) = (actor.clone(), user.map(str::to_string));
        self.read(async move |cx| {
            let uid = match &user {
                Some(u) => Some(find_user(cx, &a, u, None).await?.id),
                None => None,
            };
            cred::list_consents(cx, uid.as_deref(), a.domain_ids().as_deref(), limit).await
        })
        .await
    }

    /// How many consents each app has, by app id.
    pub async fn consent_counts(&self, actor: &Actor) -> Result<Vec<(String, i64)>> {
        let ids = actor.domain_ids();
        self.read(async move |cx| cred::consent_counts(cx, ids.as_deref()).await)
            .await
    }

    /// Withdraws a consent and revokes the app's tokens for that user.
    pub async fn consent_revoke(&self, actor: &Actor, user: &str, app: &str) -> Result<u64> {
        actor.require(Need::Support)?;
        let (a, user, app) = (actor.clone(), user.to_string(), app.to_string());
        self.write(async move |cx| {
            let u = find_user(cx, &a, &user, None).await?;
            let app = find_app(cx, &a, &app).await?;
            if cred::delete_consent(cx, &u.id, &app.id).await? == 0 {
                return Err(Error::not_found(
                    "consent",
                    format!("{} → {}", u.email, app.client_id),
                ));
            }
            let n = cred::revoke_tokens_where(
                cx,
                "app_id",
                &app.id,
                Some(&u.id),
                model::now(),
                &a.label(),
                "consent_revoked",
            )
            .await?;
            audit_event(
                cx,
                &a,
                "consent.revoke",
                &format!("{} → {}", u.email, app.client_id),
                Some(&u.domain_id),
                json!({"revoked_tokens": n}),
            )
            .await?;
            Ok(n)
        })
        .await
    }
}

pub(crate) async fn find_key(cx: &mut Cx<'_>, a: &Actor, client_id: &str) -> Result<KeyRow> {
    cred::key_by_client_id(cx, client_id)
        .await?
        .filter(|k| a.can_see(&k.domain_id))
        .ok_or_else(|| {
            Error::not_found_step(
                "API key",
                client_id,
                Some("keys are named by client_id".into()),
                Step::List(Listing::Keys),
            )
        })
}

pub(crate) async fn find_app(cx: &mut Cx<'_>, a: &Actor, client_id: &str) -> Result<AppRow> {
    cred::app_by_client_id(cx, client_id)
        .await?
        .filter(|k| a.can_see(&k.domain_id))
        .ok_or_else(|| {
            Error::not_found_step(
                "app",
                client_id,
                Some("apps are named by client_id".into()),
                Step::List(Listing::Apps),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:8910/cb",
            "http://localhost/cb",
            "http://[::1]:5/x",
            "https://10.0.0.7:8443/oauth/cb?tenant=1",
            "https://xn--bcher-kva.example/cb",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://",
            "ftp://x/y",
            "https://a.example/#frag",
            "https://u@evil.example/",
            "/relative",
            "http://127.0.0.1.evil.example/",
            "https://*.example/cb",
            "https://app.example.com:99999/cb",
            "https://a b.example/",
            "http://127.0.0.2/cb",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_loopback_redirect_may_use_any_port() {
        let reg = "http://127.0.0.1/cb";
        assert!(redirect_matches(reg, reg));
        assert!(redirect_matches(reg, "http://127.0.0.1:53111/cb"));
        assert!(redirect_matches(
            "http://127.0.0.1:8000/cb",
            "http://127.0.0.1:9/cb"
        ));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:4000/cb"));
        for other in [
            "http://127.0.0.1:53111/cb2",
            "http://127.0.0.1:53111/cb?x=1",
            "http://127.0.0.2.evil.example:1/cb",
            "https://127.0.0.1:53111/cb",
            "http://[::1]:53111/cb",
        ] {
            assert!(!redirect_matches(reg, other), "{other}");
        }
        // Only loopback IP literals: a host name and https keep their port.
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:1/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb"
        ));
    }
}
