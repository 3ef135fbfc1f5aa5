//! The authorization-code flow (RFC 6749 §4.1 with PKCE, RFC 7636): checking an
//! authorization request, signing a user in and recording their consent, issuing a
//! single-use code, and redeeming it at the token endpoint. HTTP lives in the server;
//! SQL in the store.

use super::credentials::{narrow_scopes, user_role_scopes};
use super::grants::{GrantError, TokenService};
use super::scopes::ScopeGraph;
use super::tokens::{Grant, Minted, sign_grant};
use super::{Actor, audit_event};
use crate::error::{Error, Result};
use crate::model;
use crate::secret::generate_secret;
use crate::store::credentials::{self as cred, AppRow};
use crate::store::directory as dir;
use crate::store::grants as gs;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeSet;

/// How long an authorization code can be redeemed.
pub const CODE_TTL: i64 = 300;
/// What a signed-in user's Allow on the consent page comes to.
pub enum Allowed {
    /// The authorization code to send back to the client.
    Code(SecretString),
    /// The account may not authorize this client: disabled, of another domain, or not
    /// the owner of a client that is its owner's own.
    NotThisAccount,
    /// The user's role does not grant these of the requested scopes (implied ones
    /// included): nothing was recorded.
    Exceeds(Vec<String>),
}

/// How long a sign-in form (its CSRF token) stays valid.
pub const FORM_TTL: i64 = 600;

type GResult<T> = std::result::Result<T, GrantError>;

/// The client of an authorization request: a developer app, or an API key with its
/// own redirect URIs (for its owner's own flow; no consent is recorded).
#[derive(Debug, Clone)]
pub struct AuthzClient {
    pub client_id: String,
    pub name: String,
    pub domain_id: String,
    /// The app's id (apps), or None (keys).
    pub app_id: Option<String>,
    /// The key's owner (keys): the only user who can authorize it.
    pub owner_id: Option<String>,
}

/// A checked authorization request (the client and redirect URI are valid).
#[derive(Debug, Clone)]
pub struct AuthzRequest {
    pub client: AuthzClient,
    pub redirect_uri: String,
    /// Requested scopes ∩ the app's scopes (closed), with their descriptions.
    pub scopes: Vec<(String, String)>,
    pub code_challenge: String,
}

/// Why an authorization request cannot proceed.
#[derive(Debug)]
pub enum AuthzError {
    /// Unknown client or unregistered redirect URI: never redirect (RFC 6749 §4.1.2.1).
    NoRedirect(String),
    /// Reported to the client by redirect: (error code, description).
    Redirect(&'static str, String),
    Core(Error),
}

impl From<Error> for AuthzError {
    fn from(e: Error) -> Self {
        AuthzError::Core(e)
    }
}

/// The station a user picks, or the hints from the request.
#[derive(Debug, Clone, Default)]
pub struct StationHint {
    pub eu_vat_id: Option<String>,
    pub rn: Option<String>,
    pub country_code: Option<String>,
}

fn norm_id(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

fn norm_compact(s: &str) -> String {
    s.split_whitespace()
        .collect::<String>()
        .to_ascii_uppercase()
}

impl StationHint {
    /// Whether a station matches the hint (case-insensitive, whitespace-normalised).
    pub fn matches(&self, s: &dir::StationRow) -> bool {
        if let (Some(h), Some(v)) = (&self.eu_vat_id, &s.eu_vat_id)
            && norm_compact(h) == norm_compact(v)
        {
            return true;
        }
        if let (Some(rn), Some(cc), Some(srn), Some(scc)) = (
            &self.rn,
            &self.country_code,
            &s.registration_number,
            &s.country_code,
        ) && norm_id(rn) == norm_id(srn)
            && norm_id(cc) == norm_id(scc)
        {
            return true;
        }
        false
    }
}

/// The S256 code challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

fn valid_pkce(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The family id of the tokens issued from a code (to revoke them on reuse).
fn code_family(code_hash: &str) -> String {
    let tail: String = code_hash
        .chars()
        .rev()
        .take(32)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("code:{tail}")
}

fn csrf_input(nonce: &str, exp: i64, binding: &str) -> String {
    format!("keyward-authorize-csrf|{nonce}|{exp}|{binding}")
}

impl TokenService {
    /// A CSRF token for a sign-in form bound to `binding` (client, redirect URI,
    /// challenge): `nonce.expiry.mac`, the MAC keyed by a key derived from the master key.
    pub async fn csrf_token(&self, binding: &str) -> Result<String> {
        let secrets = self.keyward().secrets().await?;
        let nonce = generate_secret("").expose_secret().to_string();
        let exp = model::now() + FORM_TTL;
        let mac = secrets
            .hash_key()
            .keyed_hash(&csrf_input(&nonce, exp, binding));
        Ok(format!("{nonce}.{exp}.{mac}"))
    }

    /// Checks a CSRF token made by [`Self::csrf_token`] for the same binding.
    pub async fn csrf_check(&self, token: &str, binding: &str) -> Result<bool> {
        let mut it = token.splitn(3, '.');
        let (Some(nonce), Some(exp), Some(mac)) = (it.next(), it.next(), it.next()) else {
            return Ok(false);
        };
        let Ok(exp) = exp.parse::<i64>() else {
            return Ok(false);
        };
        if exp < model::now() {
            return Ok(false);
        }
        let secrets = self.keyward().secrets().await?;
        Ok(secrets.verify(&csrf_input(nonce, exp, binding), mac))
    }

    /// Checks an authorization request: the app, its redirect URI, PKCE and scopes.
    pub async fn authorize_check(
        &self,
        response_type: Option<&str>,
        client_id: Option<&str>,
        redirect_uri: Option<&str>,
        scope: Option<&str>,
        code_challenge: Option<&str>,
        method: Option<&str>,
    ) -> std::result::Result<AuthzRequest, AuthzError> {
        let no = |m: &str| AuthzError::NoRedirect(m.to_string());
        let cid = client_id.ok_or_else(|| no("the request has no client_id"))?;
        if !(cid.starts_with("kwapp_") || cid.starts_with("kw_")) || cid.len() > 100 {
            return Err(no("unknown client"));
        }
        let id = cid.to_string();
        let (found, graph, descs) = self
            .keyward()
            .read(async move |cx| {
                let found = if id.starts_with("kwapp_") {
                    cred::app_by_client_id(cx, &id).await?.map(|a: AppRow| {
                        (
                            AuthzClient {
                                client_id: a.client_id,
                                name: a.name,
                                domain_id: a.domain_id,
                                app_id: Some(a.id),
                                owner_id: None,
                            },
                            a.redirect_uris,
                            a.scopes,
                        )
                    })
                } else {
                    cred::key_by_client_id(cx, &id)
                        .await?
                        .filter(|k| k.expires_at.is_none_or(|e| e > model::now()))
                        .map(|k| {
                            (
                                AuthzClient {
                                    client_id: k.client_id,
                                    name: k.name,
                                    domain_id: k.domain_id,
                                    app_id: None,
                                    owner_id: Some(k.user_id),
                                },
                                k.redirect_uris,
                                k.scopes,
                            )
                        })
                };
                let g = ScopeGraph::load(cx).await?;
                let d = dir::scopes(cx).await?;
                Ok((found, g, d))
            })
            .await?;
        let (client, redirect_uris, client_scopes) = found.ok_or_else(|| no("unknown client"))?;
        let ru = redirect_uri.ok_or_else(|| no("the request has no redirect_uri"))?;
        if !redirect_uris
            .split_whitespace()
            .any(|u| super::credentials::redirect_matches(u, ru))
        {
            return Err(no("the redirect_uri is not registered for this client"));
        }
        if response_type != Some("code") {
            return Err(AuthzError::Redirect(
                "unsupported_response_type",
                "response_type must be code".into(),
            ));
        }
        let Some(ch) = code_challenge.filter(|c| valid_pkce(c)) else {
            return Err(AuthzError::Redirect(
                "invalid_request",
                "PKCE is required: code_challenge (S256)".into(),
            ));
        };
        if method != Some("S256") {
            return Err(AuthzError::Redirect(
                "invalid_request",
                "code_challenge_method must be S256".into(),
            ));
        }
        let requested = super::grants::parse_scope_param(scope)
            .map_err(|e| AuthzError::Redirect("invalid_scope", e.description()))?;
        let client_scopes: BTreeSet<String> = graph.closure(client_scopes.split_whitespace());
        let scopes = narrow_scopes(
            &graph,
            requested.as_deref(),
            &client_scopes,
            &format!("client {}", client.client_id),
        )
        .map_err(|e| AuthzError::Redirect("invalid_scope", e.without_step()))?;
        let scopes = scopes
            .into_iter()
            .map(|s| {
                let d = descs
                    .iter()
                    .find(|r| r.name == s)
                    .map(|r| r.description.clone())
                    .unwrap_or_default();
                (s, d)
            })
            .collect();
        Ok(AuthzRequest {
            client,
            redirect_uri: ru.to_string(),
            scopes,
            code_challenge: ch.to_string(),
        })
    }

    /// Verifies an email and password in a domain (argon2 off the async workers;
    /// unknown users cost the same). The user's id, or None.
    pub async fn check_password(
        &self,
        domain_id: &str,
        username: &str,
        password: SecretString,
    ) -> Result<Option<String>> {
        // Looked up by its key, not validated: an address stored before a rule was
        // tightened still signs in.
        let username = username.trim();
        let norm =
            (!username.is_empty() && username.len() <= 254).then(|| model::email_key(username));
        let found = match norm {
            Some(n) => {
                let d = domain_id.to_string();
                self.keyward()
                    .read(async move |cx| gs::login_row(cx, &d, &n).await)
                    .await?
            }
            None => None,
        };
        let (user_id, hash) = match found {
            Some((id, Some(h))) => (Some(id), Some(h)),
            _ => (None, None),
        };
        let ok = super::argon2(move || match &hash {
            Some(h) => crate::secret::verify_password(&password, h),
            None => crate::secret::verify_dummy(&password),
        })
        .await?;
        Ok(match (ok, user_id) {
            (true, Some(id)) => Some(id),
            _ => None,
        })
    }

    /// Records the consent of a signed-in user (the requested scopes, which the app
    /// allows and the user's role must grant) and issues a single-use code bound to the
    /// client, redirect URI, PKCE challenge, user and station (the chosen one, else the
    /// one matching the hint, else the only one).
    pub async fn authorize_allow(
        &self,
        req: &AuthzRequest,
        user_id: &str,
        station: Option<&str>,
        hint: &StationHint,
        origin: &str,
    ) -> Result<Allowed> {
        let user_id = user_id.to_string();
        let secrets = self.keyward().secrets().await?;
        let code = generate_secret("kwc_");
        let code_hash = secrets.hash_key().keyed_hash(code.expose_secret());
        let req = req.clone();
        let station = station.map(str::to_string);
        let hint = hint.clone();
        let actor = Actor::system("keyward-serve", origin);
        let ok = self
            .keyward()
            .write(async move |cx| {
                let Some(u) = dir::user_by_id(cx, &user_id).await? else {
                    return Ok(Err(Allowed::NotThisAccount));
                };
                if u.status != "active"
                    || u.domain_id != req.client.domain_id
                    || req.client.owner_id.as_ref().is_some_and(|o| *o != u.id)
                {
                    return Ok(Err(Allowed::NotThisAccount));
                }
                let g = ScopeGraph::load(cx).await?;
                let role = user_role_scopes(cx, &u.role_id).await?;
                let requested: BTreeSet<String> =
                    g.closure(req.scopes.iter().map(|(s, _)| s.as_str()));
                // Asking for more than the role grants is an error that names what is
                // missing (SPEC), not a code for less than the page listed.
                let missing: Vec<String> = requested.difference(&role).cloned().collect();
                if !missing.is_empty() {
                    return Ok(Err(Allowed::Exceeds(missing)));
                }
                let scopes = requested.iter().cloned().collect::<Vec<_>>().join(" ");
                let stations = dir::list_stations(
                    cx,
                    &dir::StationQuery {
                        user_id: Some(u.id.clone()),
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .await?;
                let station_id = match &station {
                    Some(s) => Some(stations.iter().find(|x| &x.id == s).ok_or_else(|| {
                        Error::invalid("station", s.clone(), "one of the user's own stations")
                    })?),
                    None => stations
                        .iter()
                        .find(|x| hint.matches(x))
                        .or_else(|| (stations.len() == 1).then(|| &stations[0])),
                }
                .map(|s| s.id.clone());
                if let Some(app_id) = &req.client.app_id {
                    cred::upsert_consent(
                        cx,
                        &model::new_id(),
                        &u.id,
                        app_id,
                        &scopes,
                        model::now(),
                    )
                    .await?;
                }
                gs::insert_auth_code(
                    cx,
                    &gs::AuthCodeRow {
                        code_hash,
                        client_id: req.client.client_id.clone(),
                        user_id: u.id.clone(),
                        station_id,
                        redirect_uri: req.redirect_uri.clone(),
                        scopes: scopes.clone(),
                        code_challenge: req.code_challenge.clone(),
                        expires_at: model::now() + CODE_TTL,
                        used_at: None,
                    },
                )
                .await?;
                gs::purge_auth_codes(cx, model::now() - 86_400).await?;
                if req.client.app_id.is_some() {
                    audit_event(
                        cx,
                        &actor,
                        "consent.grant",
                        &format!("{} → {}", u.email, req.client.client_id),
                        Some(&u.domain_id),
                        json!({"scopes": scopes, "via": "authorize"}),
                    )
                    .await?;
                }
                Ok(Ok(()))
            })
            .await?;
        Ok(match ok {
            Ok(()) => Allowed::Code(code),
            Err(refused) => refused,
        })
    }

    /// The stations of a user (for the station select), by id and label.
    pub async fn user_stations(&self, user_id: &str) -> Result<Vec<dir::StationRow>> {
        let id = user_id.to_string();
        self.keyward()
            .read(async move |cx| {
                dir::list_stations(
                    cx,
                    &dir::StationQuery {
                        user_id: Some(id),
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .await
            })
            .await
    }

    /// `authorization_code`: redeems a code for the authenticated app. A code used
    /// twice fails and revokes the tokens issued from it. `proven`: as for
    /// [`TokenService::client_credentials`].
    pub async fn authorization_code(
        &self,
        client_id: &str,
        secret: &str,
        proven: Option<super::grants::Proven>,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> GResult<Minted> {
        // (client_id, app id, key id, owner and row, the key's allowed scopes).
        let client = self.authenticate_unless(proven, client_id, secret).await?;
        let (cid, app_id, key, key_allowed) = match client {
            super::grants::Client::App(a) => (a.client_id.clone(), Some(a.id.clone()), None, None),
            super::grants::Client::Key(k) => (
                k.key.client_id.clone(),
                None,
                Some((k.key.id.clone(), k.key.user_id.clone(), k.key.clone())),
                Some(k.allowed.clone()),
            ),
        };
        let bad = |m: &str| GrantError::InvalidGrant(m.to_string());
        if code.is_empty() || code.len() > 200 {
            return Err(bad("unknown authorization code"));
        }
        let secrets = self.keyward().secrets().await?;
        let hashes: Vec<String> = secrets
            .all_hash_keys()
            .map(|h| h.keyed_hash(code))
            .collect();
        let settings = self.settings();
        let ring = self.keyward().signing_ring().await?;
        let (redirect_uri, verifier) = (
            redirect_uri.map(str::to_string),
            verifier.map(str::to_string),
        );
        let out: GResult<Minted> = self
            .keyward()
            .write(async move |cx| {
                let mut row = None;
                for h in &hashes {
                    if let Some(r) = gs::auth_code(cx, h).await? {
                        row = Some(r);
                        break;
                    }
                }
                let Some(row) = row else {
                    return Ok(Err(bad("unknown authorization code")));
                };
                if row.client_id != cid {
                    return Ok(Err(bad("the code was issued to another client")));
                }
                let now = model::now();
                let family = code_family(&row.code_hash);
                if row.used_at.is_some() || !gs::spend_auth_code(cx, &row.code_hash, now).await? {
                    let n = cred::revoke_family(cx, &family, now, "keyward", "authorization code reused")
                        .await?;
                    // A code is spent by any exchange, one refused for a wrong verifier
                    // or redirect_uri too; only say tokens were revoked when some were.
                    return Ok(Err(GrantError::Reused(if n > 0 {
                        "the authorization code was already used; tokens issued from it are revoked"
                            .into()
                    } else {
                        "the authorization code was already presented (codes are single-use); start the authorization again"
                            .into()
                    })));
                }
                if row.expires_at <= now {
                    return Ok(Err(bad("the authorization code has expired")));
                }
                if redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
                    return Ok(Err(bad(
                        "redirect_uri differs from the authorization request",
                    )));
                }
                match verifier.as_deref() {
                    Some(v) if valid_pkce(v) && s256(v) == row.code_challenge => {}
                    _ => return Ok(Err(bad("code_verifier does not match the code challenge"))),
                }
                let Some(u) = dir::user_by_id(cx, &row.user_id).await? else {
                    return Ok(Err(bad("the user no longer exists")));
                };
                if u.status != "active" {
                    return Ok(Err(bad("the user is disabled")));
                }
                // Apps: the consent's scopes; keys: the key's (both within the role).
                let allowed: BTreeSet<String> = match (&app_id, &key_allowed) {
                    (Some(app_id), _) => match cred::consent(cx, &u.id, app_id).await? {
                        Some(c) => c.scopes.split_whitespace().map(str::to_string).collect(),
                        None => return Ok(Err(bad("the consent was withdrawn"))),
                    },
                    (None, Some(a)) => a.clone(),
                    (None, None) => BTreeSet::new(),
                };
                if key.as_ref().is_some_and(|(_, owner, _)| *owner != u.id) {
                    return Ok(Err(bad("the code was issued to another user")));
                }
                let role = user_role_scopes(cx, &u.role_id).await?;
                let scopes: BTreeSet<String> = row
                    .scopes
                    .split_whitespace()
                    .filter(|s| allowed.contains(*s) && role.contains(*s))
                    .map(str::to_string)
                    .collect();
                let grant = Grant {
                    domain_id: u.domain_id.clone(),
                    domain: u.domain.clone(),
                    user_id: u.id.clone(),
                    key_id: key.as_ref().map(|(id, _, _)| id.clone()),
                    app_id: app_id.clone(),
                    client_id: cid.clone(),
                    scopes,
                    ttl: match &key {
                        Some((_, _, k)) => k.ttl_within(settings.grant_ttl.secs(), now),
                        None => settings.grant_ttl.secs(),
                    },
                    source: "authorization_code",
                    family_id: Some(family.clone()),
                };
                let (jwt, rec) = sign_grant(&ring, &settings.issuer, &grant, now)?;
                cred::insert_token_records(cx, std::slice::from_ref(&rec)).await?;
                let refresh =
                    super::Keyward::issue_refresh(cx, &secrets, &settings, &grant, &family).await?;
                Ok(Ok(Minted {
                    access_token: jwt,
                    token_type: "Bearer",
                    expires_in: grant.ttl,
                    scope: rec.scopes,
                    jti: rec.jti,
                    refresh_token: Some(refresh.expose_secret().to_string()),
                }))
            })
            .await?;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256() {
        // Computed independently (Python hashlib + base64url, no padding).
        assert_eq!(
            s256("dBjftJeZ4CJP-wfh6NwBFNgW5S6s3PwsyYmHDiFRaKA"),
            "Mjx1DP1L539vNpn1pnynrjb7xwbC3K2uzCfjXN9lZVs"
        );
    }

    #[test]
    fn hints() {
        let mut s = dir::StationRow {
            id: "1".into(),
            domain_id: String::new(),
            domain: String::new(),
            user_id: String::new(),
            user_email: String::new(),
            name: "S".into(),
            eu_vat_id: Some("DE123456789".into()),
            registration_number: Some("HRB 12345".into()),
            country_code: Some("DE".into()),
            created_at: 0,
            version: 1,
            name_key: String::new(),
        };
        let h = StationHint {
            eu_vat_id: Some(" de 123 456 789".into()),
            ..Default::default()
        };
        assert!(h.matches(&s));
        let h = StationHint {
            rn: Some("hrb   12345".into()),
            country_code: Some("de".into()),
            ..Default::default()
        };
        assert!(h.matches(&s));
        s.country_code = Some("AT".into());
        assert!(!h.matches(&s));
    }
}
