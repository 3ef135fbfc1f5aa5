//! Access tokens: mint (sign + record), list, revoke, introspect, purge; refresh-token
//! families; and the long-running [`Verifier`] with an in-memory revocation view.

use super::credentials::{find_key, narrow_scopes, token_scopes, user_role_scopes};
use super::directory::{find_user, mark_api_enabled};
use super::keyring::{Secrets, SigningRing};
use super::scopes::ScopeGraph;
use super::settings::Settings;
use super::{Actor, Keyward, Need, audit_event};
use crate::error::{Error, Listing, Result, Step};
use crate::model::{self, ScopeName, Ttl};
use crate::secret::generate_secret;
use crate::store::Cx;
use crate::store::credentials::{self as cred, RefreshRow, TokenQuery, TokenRecord};
use crate::store::directory as dir;
use crate::token::{self, AccessClaims, Reason};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

/// Clock-skew leeway for `nbf` (`exp` has none: see [`crate::token::verify`]).
pub const LEEWAY_SECS: u64 = 30;

/// `client_id` of tokens minted without a key (console and CLI).
pub const CONSOLE_CLIENT: &str = "keyward-console";
/// `client_id` of tokens from sign-in (login endpoint, password grant).
pub const LOGIN_CLIENT: &str = "keyward-login";

/// RFC 6749 §5.1 token response.
#[derive(Debug, Clone, Serialize)]
pub struct Minted {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct Grant {
    pub domain_id: String,
    pub domain: String,
    pub user_id: String,
    pub key_id: Option<String>,
    pub app_id: Option<String>,
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    pub ttl: i64,
    pub source: &'static str,
    pub family_id: Option<String>,
}

/// Hex digits that begin a refresh token's value after `kwr_`: its issue time in
/// microseconds since the Unix epoch, strictly increasing within the process.
const REFRESH_ORDER_DIGITS: usize = 16;
/// The older form: the issue time in seconds (12 hex digits), without a separator.
const REFRESH_SECONDS_DIGITS: usize = 12;

/// The issue time of a new refresh token in microseconds, one more than the last when
/// the clock has not moved on: so the keys of the index on stored hashes only grow.
fn refresh_order() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(0);
    now.max(prev + 1)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new refresh token for a grant and its row (see [`new_refresh_value`]).
pub(crate) fn new_refresh(
    secrets: &Secrets,
    g: &Grant,
    family_id: &str,
    now: i64,
    ttl: Ttl,
) -> (SecretString, RefreshRow) {
    let (value, token_hash) = new_refresh_value(secrets);
    let row = RefreshRow {
        family_id: family_id.to_string(),
        token_hash,
        domain_id: g.domain_id.clone(),
        user_id: g.user_id.clone(),
        key_id: g.key_id.clone(),
        app_id: g.app_id.clone(),
        client_id: g.client_id.clone(),
        scopes: g.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
        issued_at: now,
        expires_at: now + ttl.secs(),
        used_at: None,
        revoked_at: None,
    };
    (value, row)
}

/// A new refresh token's value and its stored hash. The value is `kwr_`, its issue time
/// ([`refresh_order`], 16 hex digits), `.` and 256 random bits; the stored keyed hash
/// of the whole value is prefixed with the same digits. So the index on stored hashes
/// grows at its end, like the other token indexes. (With a prefix in seconds, the
/// thousands of tokens of one second went to random places in that second's range: a
/// page of the index to write for nearly every grant.)
pub(crate) fn new_refresh_value(secrets: &Secrets) -> (SecretString, String) {
    let order = format!("{:0width$x}", refresh_order(), width = REFRESH_ORDER_DIGITS);
    let value = generate_secret(&format!("kwr_{order}."));
    let hash = format!(
        "{order}.{}",
        secrets.hash_key().keyed_hash(value.expose_secret())
    );
    (value, hash)
}

/// The stored hashes a presented refresh token can have: under every hash key
/// version, current first, with the prefix its value begins with ([`new_refresh_value`], or
/// the older seconds form) and in the plain form of tokens issued before either.
pub(crate) fn refresh_hashes(secrets: &Secrets, value: &str) -> Vec<String> {
    let rest = value.strip_prefix("kwr_").unwrap_or_default();
    let ordered = rest
        .get(..REFRESH_ORDER_DIGITS)
        .filter(|t| is_lower_hex(t) && rest.as_bytes().get(REFRESH_ORDER_DIGITS) == Some(&b'.'));
    let prefix = ordered.or_else(|| {
        rest.get(..REFRESH_SECONDS_DIGITS)
            .filter(|t| is_lower_hex(t))
    });
    let mut out: Vec<String> = Vec::new();
    for h in std::iter::once(secrets.hash_key()).chain(secrets.all_hash_keys()) {
        let plain = h.keyed_hash(value);
        for x in prefix
            .map(|t| format!("{t}.{plain}"))
            .into_iter()
            .chain([plain])
        {
            if !out.contains(&x) {
                out.push(x);
            }
        }
    }
    out
}

/// Signs a token for a grant; returns the JWT and its record (not yet stored).
pub fn sign_grant(
    ring: &SigningRing,
    issuer: &str,
    g: &Grant,
    now: i64,
) -> Result<(String, TokenRecord)> {
    let active = ring.active.as_ref().ok_or_else(|| {
        Error::Environment("no active signing key; run `keyward signing-key rotate`".into())
    })?;
    let scope = g.scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    let claims = AccessClaims {
        iss: issuer.to_string(),
        sub: g.user_id.clone(),
        aud: g.domain.clone(),
        exp: now + g.ttl,
        iat: now,
        nbf: now,
        jti: model::new_id(),
        client_id: g.client_id.clone(),
        scope: scope.clone(),
    };
    let jwt = active
        .signer
        .sign(&claims)
        .map_err(|e| Error::Environment(e.to_string()))?;
    let rec = TokenRecord {
        jti: claims.jti,
        domain_id: g.domain_id.clone(),
        user_id: g.user_id.clone(),
        key_id: g.key_id.clone(),
        app_id: g.app_id.clone(),
        client_id: g.client_id.clone(),
        kid: active.kid.clone(),
        scopes: scope,
        source: g.source.to_string(),
        family_id: g.family_id.clone(),
        issued_at: now,
        expires_at: now + g.ttl,
        revoked_at: None,
        revoked_by: None,
        revoke_reason: None,
    };
    Ok((jwt, rec))
}

/// RFC 7662 introspection result, plus decoded header and claims for inspection.
#[derive(Debug, Clone, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip)]
    pub header: Option<Value>,
    #[serde(skip)]
    pub claims: Option<Value>,
    /// The token's record, when one exists (who revoked it, when, why).
    #[serde(skip)]
    pub record: Option<TokenRecord>,
    /// The user's email (RFC 7662 `username`), for an operator only: the token
    /// service's clients get `sub`, never another user's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A refresh token (RFC 7662 `token_type` `refresh_token`), not an access token.
    #[serde(skip)]
    pub refresh: bool,
}

impl Introspection {
    pub(crate) fn inactive(reason: Reason) -> Self {
        Introspection {
            active: false,
            sub: None,
            scope: None,
            client_id: None,
            exp: None,
            iat: None,
            jti: None,
            iss: None,
            aud: None,
            reason: Some(reason),
            header: None,
            claims: None,
            record: None,
            username: None,
            refresh: false,
        }
    }
    fn fill(&mut self, c: &AccessClaims) {
        self.sub = Some(c.sub.clone());
        self.scope = Some(c.scope.clone());
        self.client_id = Some(c.client_id.clone());
        self.exp = Some(c.exp);
        self.iat = Some(c.iat);
        self.jti = Some(c.jti.clone());
        self.iss = Some(c.iss.clone());
        self.aud = Some(c.aud.clone());
    }
}

/// Maps a stored revocation reason to the closed list of SPEC.md.
pub fn reason_of(stored: Option<&str>) -> Reason {
    match stored {
        Some("user_disabled") => Reason::UserDisabled,
        Some("key_deleted") => Reason::KeyDeleted,
        Some("consent_revoked") => Reason::ConsentRevoked,
        _ => Reason::Revoked,
    }
}

/// Options of `token mint`.
#[derive(Debug, Clone, Default)]
pub struct MintSpec {
    pub user: String,
    pub domain: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub ttl: Option<String>,
    pub key: Option<String>,
}

/// Options of `token revoke`.
#[derive(Debug, Clone)]
pub enum RevokeWhat {
    Jtis(Vec<String>),
    User(String),
    Key(String),
}

/// The expiry before which [`Keyward::token_purge`] deletes records: `retention` ago.
fn purge_cutoff(retention: &str) -> Result<i64> {
    Ok(model::now() - Ttl::parse("--expired-before", retention)?.secs())
}

/// What a purge would delete ([`Keyward::token_purge_count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purgeable {
    /// The cutoff counted with (Unix seconds): records that expired before it.
    pub before: i64,
    /// Token records.
    pub tokens: u64,
    /// Refresh tokens and authorization codes.
    pub others: u64,
}

impl Keyward {
    /// Mints a token for a user within the user's role (and the key's scopes with
    /// `key`). Enables the user's API access.
    pub async fn mint(&self, actor: &Actor, spec: MintSpec) -> Result<Minted> {
        actor.require(Need::Support)?;
        let scopes: Option<Vec<ScopeName>> = spec
            .scopes
            .as_ref()
            .map(|v| v.iter().map(|s| ScopeName::parse(s)).collect::<Result<_>>())
            .transpose()?;
        let ttl = spec
            .ttl
            .as_deref()
            .map(|t| Ttl::parse("ttl", t))
            .transpose()?;
        let settings = self.settings().await?;
        let ttl = ttl.unwrap_or(settings.default_ttl);
        if ttl > settings.max_ttl {
            return Err(Error::invalid(
                "ttl",
                spec.ttl.clone().unwrap_or_else(|| ttl.to_string()),
                format!("at most max_ttl ({})", settings.max_ttl),
            ));
        }
        let ring = self.signing_ring().await?;
        let a = actor.clone();
        self.write(async move |cx| {
            let u = find_user(cx, &a, &spec.user, spec.domain.as_deref()).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            if dir::lock_user_status(cx, &u.id).await?.as_deref() != Some("active") {
                return Err(Error::blocked(format!("{} is disabled", u.email), Step::EnableUser));
            }
            let g = ScopeGraph::load(cx).await?;
            let role_scopes = user_role_scopes(cx, &u.role_id).await?;
            let (key, allowed, what) = match &spec.key {
                Some(k) => {
                    let key = find_key(cx, &a, k).await?;
                    if key.user_id != u.id {
                        return Err(Error::Refused(format!("key {} belongs to {}, not {}", key.client_id, key.user_email, u.email)));
                    }
                    if key.expires_at.is_some_and(|e| e <= model::now()) {
                        return Err(Error::Refused(format!("key {} has expired", key.client_id)));
                    }
                    if let Some(e) = key.expires_at
                        && key.ttl_within(ttl.secs(), model::now()) < ttl.secs()
                    {
                        return Err(Error::invalid(
                            "ttl",
                            ttl.to_string(),
                            format!(
                                "a lifetime ending by {}, when key {} expires",
                                model::rfc3339(e),
                                key.client_id
                            ),
                        ));
                    }
                    let key_scopes: BTreeSet<String> = g.closure(key.scopes.split_whitespace());
                    let allowed: BTreeSet<String> = key_scopes.intersection(&role_scopes).cloned().collect();
                    (Some(key), allowed, format!("role {} with key {}", u.role, k))
                }
                None => (None, role_scopes, format!("role {}", u.role)),
            };
            let granted = token_scopes(&g, scopes.as_deref(), &allowed, &what)?;
            let grant = Grant {
                domain_id: u.domain_id.clone(),
                domain: u.domain.clone(),
                user_id: u.id.clone(),
                key_id: key.as_ref().map(|k| k.id.clone()),
                app_id: None,
                client_id: key.as_ref().map(|k| k.client_id.clone()).unwrap_or_else(|| CONSOLE_CLIENT.to_string()),
                scopes: granted,
                ttl: ttl.secs(),
                source: "console",
                family_id: None,
            };
            let (jwt, rec) = sign_grant(&ring, &settings.issuer, &grant, model::now())?;
            cred::insert_token_records(cx, std::slice::from_ref(&rec)).await?;
            mark_api_enabled(cx, &u).await?;
            audit_event(
                cx,
                &a,
                "token.mint",
                &rec.jti,
                Some(&rec.domain_id),
                json!({"user": u.email, "scope": rec.scopes, "client_id": rec.client_id, "expires_at": model::rfc3339(rec.expires_at)}),
            )
            .await?;
            Ok(Minted {
                access_token: jwt,
                token_type: "Bearer",
                expires_in: grant.ttl,
                scope: rec.scopes,
                jti: rec.jti,
                refresh_token: None,
            })
        })
        .await
    }

    /// Token records newest first (restricted to the actor's domains).
    pub async fn token_list(&self, actor: &Actor, mut q: TokenQuery) -> Result<Vec<TokenRecord>> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = Some(ids);
        }
        self.read_tokens(async move |cx| cred::list_tokens(cx, &q).await)
            .await
    }

    pub async fn token_count(&self, actor: &Actor, mut q: TokenQuery) -> Result<i64> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = Some(ids);
        }
        self.read_tokens(async move |cx| cred::count_tokens(cx, &q).await)
            .await
    }

    /// Resolves `token list --user` into a query.
    pub async fn token_query(&self, actor: &Actor, user: Option<&str>) -> Result<TokenQuery> {
        let (a, user) = (actor.clone(), user.map(str::to_string));
        self.read(async move |cx| {
            let mut q = TokenQuery {
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

    /// Revokes tokens by jti, of a user, or minted through a key; audited.
    pub async fn token_revoke(
        &self,
        actor: &Actor,
        what: RevokeWhat,
        reason: Option<&str>,
    ) -> Result<u64> {
        actor.require(Need::Support)?;
        let reason = reason
            .map(|r| crate::model::Description::parse_as("reason", r))
            .transpose()?;
        let a = actor.clone();
        self.write(async move |cx| {
            let now = model::now();
            let why = reason
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "revoked".into());
            let by = a.label();
            let (n, target, domain) = match &what {
                RevokeWhat::Jtis(jtis) => {
                    let mut ids = Vec::new();
                    let mut domain = None;
                    for j in jtis {
                        let rec = cred::token_by_jti(cx, j.trim())
                            .await?
                            .filter(|r| a.can_see(&r.domain_id))
                            .ok_or_else(|| {
                                Error::not_found_step(
                                    "token",
                                    j.trim(),
                                    Some("tokens are named by jti".into()),
                                    Step::List(Listing::Tokens),
                                )
                            })?;
                        domain = Some(rec.domain_id.clone());
                        ids.push(rec.jti);
                    }
                    (
                        cred::revoke_jtis(cx, &ids, now, &by, &why).await?,
                        ids.join(" "),
                        domain,
                    )
                }
                RevokeWhat::User(u) => {
                    let u = find_user(cx, &a, u, None).await?;
                    a.require_domain(&u.domain_id, &u.domain)?;
                    (
                        cred::revoke_tokens_of(cx, cred::Holders::User(&u.id), now, &by, &why)
                            .await?,
                        u.email,
                        Some(u.domain_id),
                    )
                }
                RevokeWhat::Key(k) => {
                    let k = find_key(cx, &a, k).await?;
                    (
                        cred::revoke_tokens_where(cx, "key_id", &k.id, None, now, &by, &why)
                            .await?,
                        k.client_id,
                        Some(k.domain_id),
                    )
                }
            };
            // Nothing left to revoke (already revoked): no revocation to audit, and the
            // hash-chained log does not fill with reasons recorded against nothing.
            if n > 0 {
                audit_event(
                    cx,
                    &a,
                    "token.revoke",
                    &target,
                    domain.as_deref(),
                    json!({"revoked": n, "reason": why}),
                )
                .await?;
            }
            Ok(n)
        })
        .await
    }

    /// What [`Self::token_purge`] with this retention would delete now, for its
    /// confirmation (counted, not rehearsed: a rehearsal would delete and restore every
    /// row). Confirmed, [`Self::token_purge_before`] with its `before` deletes exactly
    /// what was counted, however long the confirmation took.
    pub async fn token_purge_count(&self, actor: &Actor, retention: &str) -> Result<Purgeable> {
        actor.require(Need::Global)?;
        let before = purge_cutoff(retention)?;
        let (tokens, others) = self
            .read_tokens(async move |cx| cred::count_purgeable(cx, before).await)
            .await?;
        Ok(Purgeable {
            before,
            tokens,
            others,
        })
    }

    /// Drops records of tokens that expired before `retention` ago (revoked tokens
    /// only once expired, too).
    pub async fn token_purge(&self, actor: &Actor, retention: &str) -> Result<u64> {
        actor.require(Need::Global)?;
        self.token_purge_before(actor, purge_cutoff(retention)?)
            .await
    }

    /// Drops records of tokens that expired before `before` (Unix seconds, not in the
    /// future: a purge never takes a live token), with the refresh tokens and
    /// authorization codes that did; returns how many token records.
    pub async fn token_purge_before(&self, actor: &Actor, before: i64) -> Result<u64> {
        actor.require(Need::Global)?;
        let now = model::now();
        if before > now {
            return Err(Error::Invalid {
                field: "purge cutoff",
                value: model::rfc3339(before),
                accepted: format!(
                    "a time not after now ({}): a purge takes only what has expired",
                    model::rfc3339(now)
                ),
            });
        }
        let cutoff = before;
        let a = actor.clone();
        self.write(async move |cx| {
            let n = cred::purge_tokens(cx, cutoff).await?;
            audit_event(
                cx,
                &a,
                "token.purge",
                "tokens",
                None,
                json!({"removed": n, "expired_before": model::rfc3339(cutoff)}),
            )
            .await?;
            Ok(n)
        })
        .await
    }

    /// Verifies a token against the signing keys and the database (records,
    /// revocations, users, keys, consents): RFC 7662 shape with header and claims.
    pub async fn introspect(&self, actor: Option<&Actor>, jwt: &str) -> Result<Introspection> {
        let jwt = jwt.trim();
        let (header, claims) = match token::decode_parts(jwt) {
            Ok(p) => p,
            Err(r) => return Ok(Introspection::inactive(r)),
        };
        if let (Some(a), Some(aud)) = (actor, claims.get("aud").and_then(Value::as_str))
            && a.is_limited()
            && !a
                .domains
                .as_ref()
                .is_some_and(|ds| ds.iter().any(|(_, n)| n == aud))
        {
            return Err(Error::PermissionDenied(format!(
                "{} is not an operator of domain {aud}, which this token belongs to",
                a.account
            )));
        }
        let settings = self.settings().await?;
        let mut ring = self.signing_ring().await?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !ring.verify.contains_key(&kid) {
            ring = self.reload_signing_keys().await?;
        }
        let domains: BTreeSet<String> = self
            .read(async |cx| {
                Ok(dir::domains(cx)
                    .await?
                    .into_iter()
                    .map(|d| d.name)
                    .collect())
            })
            .await?;
        let now = model::now();
        let verified = token::verify(
            jwt,
            |k| ring.verify.get(k).cloned(),
            &settings.issuer,
            |aud| domains.contains(aud),
            now,
            LEEWAY_SECS,
        );
        let mut out = match verified {
            Err(r) => Introspection::inactive(r),
            Ok(c) => {
                let mut i = Introspection::inactive(Reason::Revoked);
                i.fill(&c);
                let jti = c.jti.clone();
                let (rec, user, key_gone, consent_gone) = self
                    .read(async move |cx| {
                        let rec = cred::token_by_jti(cx, &jti).await?;
                        let user = match &rec {
                            Some(r) => dir::user_by_id(cx, &r.user_id).await?,
                            None => None,
                        };
                        let key_gone = match rec.as_ref().and_then(|r| r.key_id.as_deref()) {
                            Some(_)
                                if rec.as_ref().is_some_and(|r| r.client_id.starts_with("kw_")) =>
                            {
                                cred::key_by_client_id(cx, &rec.as_ref().expect("some").client_id)
                                    .await?
                                    .is_none()
                            }
                            _ => false,
                        };
                        let consent_gone = match rec.as_ref().and_then(|r| r.app_id.as_deref()) {
                            Some(app) => {
                                cred::consent(cx, &rec.as_ref().expect("some").user_id, app)
                                    .await?
                                    .is_none()
                            }
                            None => false,
                        };
                        Ok((rec, user, key_gone, consent_gone))
                    })
                    .await?;
                i.reason = match (&rec, &user) {
                    (None, _) | (_, None) => Some(Reason::Revoked),
                    (Some(r), _) if r.revoked_at.is_some() => {
                        Some(reason_of(r.revoke_reason.as_deref()))
                    }
                    (_, Some(u)) if u.status != "active" => Some(Reason::UserDisabled),
                    _ if key_gone => Some(Reason::KeyDeleted),
                    _ if consent_gone => Some(Reason::ConsentRevoked),
                    _ => None,
                };
                i.active = i.reason.is_none();
                i.record = rec;
                i.username = user.filter(|_| actor.is_some()).map(|u| u.email);
                i
            }
        };
        out.header = Some(header);
        out.claims = Some(claims);
        Ok(out)
    }

    // ------------------------------------------------------------ refresh tokens

    /// Issues a refresh token for a grant (in the caller's transaction).
    pub async fn issue_refresh(
        cx: &mut Cx<'_>,
        secrets: &Secrets,
        settings: &Settings,
        g: &Grant,
        family_id: &str,
    ) -> Result<SecretString> {
        // The secrets and settings come from the caller: this runs inside its
        // transaction, which must not take a second connection.
        let (value, row) = new_refresh(secrets, g, family_id, model::now(), settings.refresh_ttl);
        cred::insert_refresh(cx, &row).await?;
        Ok(value)
    }

    /// Exchanges a refresh token for a new access token and refresh token (rotation).
    /// A spent token used again revokes its whole family. `client_id`, when given,
    /// must be the client the token was issued to.
    pub async fn redeem_refresh(
        &self,
        refresh: &str,
        client_id: Option<&str>,
        scopes: Option<&[ScopeName]>,
    ) -> Result<Minted> {
        let secrets = self.secrets().await?;
        let settings = self.settings().await?;
        let ring = self.signing_ring().await?;
        let hashes = refresh_hashes(&secrets, refresh);
        let client = client_id.map(str::to_string);
        let scopes = scopes.map(<[ScopeName]>::to_vec);
        let outcome: Result<std::result::Result<Minted, Error>> = self
            .write(async move |cx| {
                let Some(r) = cred::refresh_by_any_hash(cx, &hashes).await? else {
                    return Ok(Err(Error::Refused("unknown refresh token".into())));
                };
                if client.as_deref() == Some(LOGIN_CLIENT) && r.client_id != LOGIN_CLIENT {
                    // Presented without client authentication (the sign-in's public
                    // client), but issued to an API key or app: that client must
                    // authenticate (RFC 6749 §6).
                    return Ok(Err(Error::PermissionDenied(format!(
                        "this refresh token was issued to {}, which must authenticate \
                         (HTTP Basic or client_id and client_secret)",
                        r.client_id
                    ))));
                }
                if client.as_deref().is_some_and(|c| c != r.client_id) {
                    return Ok(Err(Error::Refused(
                        "refresh token was issued to another client".into(),
                    )));
                }
                let now = model::now();
                if r.revoked_at.is_some() {
                    return Ok(Err(Error::Refused("refresh token was revoked".into())));
                }
                // Reuse of a spent token: assume theft, revoke the family.
                let reused = async |cx: &mut Cx<'_>| -> Result<std::result::Result<Minted, Error>> {
                    cred::revoke_family(cx, &r.family_id, now, "keyward", "refresh token reused")
                        .await?;
                    Ok(Err(Error::Reused(
                        "refresh token was already used; its family has been revoked".into(),
                    )))
                };
                if r.used_at.is_some() {
                    return reused(cx).await;
                }
                if r.expires_at <= now {
                    return Ok(Err(Error::Refused("refresh token has expired".into())));
                }
                let locked = dir::lock_user_status(cx, &r.user_id).await?;
                let user = dir::user_by_id(cx, &r.user_id)
                    .await?
                    .filter(|_| locked.as_deref() == Some("active"));
                let Some(user) = user.filter(|u| u.status == "active") else {
                    return Ok(Err(Error::Refused("the user is disabled".into())));
                };
                let mut ttl = settings.grant_ttl.secs();
                if let Some(kid) = &r.key_id {
                    let key = cred::key_by_client_id(cx, &r.client_id)
                        .await?
                        .filter(|k| &k.id == kid && k.user_id == user.id);
                    let Some(key) = key else {
                        return Ok(Err(Error::Refused("the key was deleted".into())));
                    };
                    if key.expires_at.is_some_and(|e| e <= now) {
                        return Ok(Err(Error::Refused("the API key has expired".into())));
                    }
                    ttl = key.ttl_within(ttl, now);
                }
                if let Some(app) = &r.app_id
                    && cred::consent(cx, &user.id, app).await?.is_none()
                {
                    return Ok(Err(Error::Refused("the consent was revoked".into())));
                }
                let g = ScopeGraph::load(cx).await?;
                let role = user_role_scopes(cx, &user.role_id).await?;
                let had: BTreeSet<String> = r
                    .scopes
                    .split_whitespace()
                    .filter(|s| role.contains(*s))
                    .map(str::to_string)
                    .collect();
                let granted = match narrow_scopes(&g, scopes.as_deref(), &had, "the refresh token")
                {
                    Ok(s) => s,
                    // `invalid_scope` at the token endpoint, not `invalid_grant`.
                    Err(e) => {
                        let asked: Vec<&str> =
                            scopes.iter().flatten().map(ScopeName::as_str).collect();
                        return Ok(Err(Error::invalid(
                            "scope",
                            asked.join(" "),
                            e.without_step(),
                        )));
                    }
                };
                // Spent only now that the exchange will succeed: a refused request
                // (a wider scope, say) leaves the token usable, and a retry is not
                // mistaken for theft. The update is conditional, so of two
                // concurrent redemptions one wins and the other is a reuse.
                if !cred::spend_refresh(cx, &r.token_hash, now).await? {
                    return reused(cx).await;
                }
                let grant = Grant {
                    domain_id: r.domain_id.clone(),
                    domain: dir::domain_by_id(cx, &r.domain_id)
                        .await?
                        .map(|d| d.name)
                        .unwrap_or_default(),
                    user_id: r.user_id.clone(),
                    key_id: r.key_id.clone(),
                    app_id: r.app_id.clone(),
                    client_id: r.client_id.clone(),
                    scopes: granted,
                    ttl,
                    source: "refresh",
                    family_id: Some(r.family_id.clone()),
                };
                let (jwt, rec) = sign_grant(&ring, &settings.issuer, &grant, now)?;
                cred::insert_token_records(cx, std::slice::from_ref(&rec)).await?;
                // The new refresh token carries the scope of the one presented (RFC 6749
                // §6: identical), less only what the role no longer grants: a narrower
                // `scope` narrows this access token, not the rest of the grant.
                let carried = Grant {
                    scopes: had,
                    ..grant.clone()
                };
                let next =
                    Keyward::issue_refresh(cx, &secrets, &settings, &carried, &r.family_id).await?;
                Ok(Ok(Minted {
                    access_token: jwt,
                    token_type: "Bearer",
                    expires_in: grant.ttl,
                    scope: rec.scopes,
                    jti: rec.jti,
                    refresh_token: Some(next.expose_secret().to_string()),
                }))
            })
            .await;
        match outcome? {
            Ok(m) => Ok(m),
            Err(why) => Err(why),
        }
    }
}

/// A long-running verifier (token service): signature and claims checked in memory,
/// revocations seen through a view refreshed from the database (cheap: only rows
/// revoked since the last refresh).
pub struct Verifier {
    kw: Keyward,
    issuer: RwLock<String>,
    ring: RwLock<Arc<SigningRing>>,
    domains: RwLock<BTreeSet<String>>,
    revoked: RwLock<HashMap<String, (Reason, i64)>>,
    watermark: RwLock<i64>,
}

impl Verifier {
    pub async fn new(kw: Keyward) -> Result<Verifier> {
        let ring = kw.signing_ring().await?;
        let v = Verifier {
            issuer: RwLock::new(kw.settings().await?.issuer),
            ring: RwLock::new(ring),
            domains: RwLock::new(BTreeSet::new()),
            revoked: RwLock::new(HashMap::new()),
            watermark: RwLock::new(0),
            kw,
        };
        v.refresh().await?;
        Ok(v)
    }

    /// Pulls revocations made since the last refresh (by any process), the domain list,
    /// and drops entries of tokens that have expired.
    pub async fn refresh(&self) -> Result<()> {
        let since = *self.watermark.read().expect("lock");
        let now = model::now();
        let rows = self
            .kw
            .read(async |cx| cred::revoked_since(cx, since.saturating_sub(2), now).await)
            .await?;
        let domains: BTreeSet<String> = self
            .kw
            .read(async |cx| {
                Ok(dir::domains(cx)
                    .await?
                    .into_iter()
                    .map(|d| d.name)
                    .collect())
            })
            .await?;
        {
            let mut map = self.revoked.write().expect("lock");
            map.retain(|_, (_, exp)| *exp > now);
            for (jti, reason, exp) in rows {
                map.insert(jti, (reason_of(reason.as_deref()), exp));
            }
        }
        *self.domains.write().expect("lock") = domains;
        *self.watermark.write().expect("lock") = now;
        Ok(())
    }

    /// Reloads signing keys and the issuer (after a rotation or `config set issuer`).
    pub async fn reload_keys(&self) -> Result<()> {
        let ring = self.kw.reload_signing_keys().await?;
        *self.ring.write().expect("lock") = ring;
        *self.issuer.write().expect("lock") = self.kw.settings().await?.issuer;
        Ok(())
    }

    /// Verifies a token: signature, type, times, issuer, audience (a known domain),
    /// then the revocation view.
    pub fn verify(&self, jwt: &str) -> std::result::Result<AccessClaims, Reason> {
        let ring = self.ring.read().expect("lock").clone();
        let issuer = self.issuer.read().expect("lock").clone();
        let claims = {
            let domains = self.domains.read().expect("lock");
            token::verify(
                jwt,
                |k| ring.verify.get(k).cloned(),
                &issuer,
                |aud| domains.contains(aud),
                model::now(),
                LEEWAY_SECS,
            )?
        };
        if let Some((r, _)) = self.revoked.read().expect("lock").get(&claims.jti) {
            return Err(*r);
        }
        Ok(claims)
    }

    /// Whether a kid is unknown (the caller may reload keys once).
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.ring.read().expect("lock").verify.contains_key(kid)
    }
}
