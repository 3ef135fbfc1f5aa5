//! Queries over credentials and token records that the directory services need
//! (narrowing roles, cascading revocations).

use super::{Cx, Sql, Val};
use crate::error::Result;
use crate::{bind_all, on};
use sqlx::AssertSqlSafe;

/// Whose credentials a query selects.
#[derive(Debug, Clone, Copy)]
pub enum Holders<'a> {
    All,
    Role(&'a str),
    User(&'a str),
}

fn holders_filter(q: &mut Sql, who: Holders<'_>, user_col: &str) {
    match who {
        Holders::All => {}
        Holders::Role(r) => {
            q.push(&format!(
                " AND {user_col} IN (SELECT id FROM users WHERE role_id = "
            ))
            .bind(r)
            .push(")");
        }
        Holders::User(u) => {
            q.push(&format!(" AND {user_col} = ")).bind(u);
        }
    }
}

/// (jti, scopes) of unrevoked, unexpired tokens.
pub async fn active_token_scopes(
    cx: &mut Cx<'_>,
    who: Holders<'_>,
    now: i64,
) -> Result<Vec<(String, String)>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT jti, scopes FROM tokens WHERE revoked_at IS NULL AND expires_at > ",
    );
    q.bind(now);
    holders_filter(&mut q, who, "user_id");
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// Marks tokens revoked; returns how many changed.
pub async fn revoke_jtis(
    cx: &mut Cx<'_>,
    jtis: &[String],
    now: i64,
    by: &str,
    reason: &str,
) -> Result<u64> {
    let mut total = 0;
    for chunk in jtis.chunks(500) {
        let mut q = Sql::new(cx.engine(), "UPDATE tokens SET revoked_at = ");
        q.bind(now)
            .push(", revoked_by = ")
            .bind(by)
            .push(", revoke_reason = ")
            .bind(reason);
        q.push(" WHERE revoked_at IS NULL AND jti ")
            .bind_in(chunk.iter().map(Val::from));
        total += super::directory::exec(cx, q).await?;
    }
    Ok(total)
}

/// Revokes every active token of the holders; returns how many.
pub async fn revoke_tokens_of(
    cx: &mut Cx<'_>,
    who: Holders<'_>,
    now: i64,
    by: &str,
    reason: &str,
) -> Result<u64> {
    let mut q = Sql::new(cx.engine(), "UPDATE tokens SET revoked_at = ");
    q.bind(now)
        .push(", revoked_by = ")
        .bind(by)
        .push(", revoke_reason = ")
        .bind(reason);
    q.push(" WHERE revoked_at IS NULL AND expires_at > ")
        .bind(now);
    holders_filter(&mut q, who, "user_id");
    super::directory::exec(cx, q).await
}

/// Counts active tokens of the holders.
pub async fn count_active_tokens(cx: &mut Cx<'_>, who: Holders<'_>, now: i64) -> Result<i64> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL AND expires_at > ",
    );
    q.bind(now);
    holders_filter(&mut q, who, "user_id");
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

/// (key id, scopes) of API keys.
pub async fn key_scopes(cx: &mut Cx<'_>, who: Holders<'_>) -> Result<Vec<(String, String)>> {
    let mut q = Sql::new(cx.engine(), "SELECT id, scopes FROM api_keys WHERE 1 = 1");
    holders_filter(&mut q, who, "user_id");
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

pub async fn set_key_scopes(cx: &mut Cx<'_>, key_id: &str, scopes: &str) -> Result<()> {
    let sql = "UPDATE api_keys SET scopes = $1, version = version + 1 WHERE id = $2";
    on!(cx, c => sqlx::query(sql).bind(scopes).bind(key_id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Counts of (keys, apps) a user owns.
pub async fn user_credential_counts(cx: &mut Cx<'_>, user_id: &str) -> Result<(i64, i64)> {
    let sql = "SELECT (SELECT COUNT(*) FROM api_keys WHERE user_id = $1), (SELECT COUNT(*) FROM apps WHERE owner_id = $1)";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(user_id).fetch_one(&mut *c).await?))
}

/// Removes a user's pending refresh tokens and authorization codes (token records stay,
/// revoked, for the audit trail). Refresh tokens are found through the families of the
/// user's token records (both indexed); one whose family has no record left (purged)
/// can no longer be used anyway, as its user is gone, and is purged when it expires.
pub async fn delete_user_grants(cx: &mut Cx<'_>, user_id: &str) -> Result<()> {
    on!(cx, c => {
        sqlx::query("DELETE FROM refresh_tokens WHERE family_id IN (SELECT family_id FROM tokens WHERE user_id = $1 AND family_id IS NOT NULL) AND user_id = $1").bind(user_id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM auth_codes WHERE user_id = $1").bind(user_id).execute(&mut *c).await?;
    });
    Ok(())
}

/// A token record as stored (the JWT itself is never stored).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct TokenRecord {
    pub jti: String,
    pub domain_id: String,
    pub user_id: String,
    pub key_id: Option<String>,
    pub app_id: Option<String>,
    pub client_id: String,
    pub kid: String,
    pub scopes: String,
    pub source: String,
    pub family_id: Option<String>,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub issued_at: i64,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub expires_at: i64,
    #[serde(serialize_with = "crate::model::ser_opt_ts")]
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

/// Inserts token records in multi-row statements.
pub async fn insert_token_records(cx: &mut Cx<'_>, rows: &[TokenRecord]) -> Result<()> {
    super::directory::insert_rows(
        cx,
        "INSERT INTO tokens (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, expires_at, revoked_at, revoked_by, revoke_reason) VALUES ",
        rows,
        |t| {
            vec![
                t.jti.clone().into(),
                t.domain_id.clone().into(),
                t.user_id.clone().into(),
                t.key_id.clone().into(),
                t.app_id.clone().into(),
                t.client_id.clone().into(),
                t.kid.clone().into(),
                t.scopes.clone().into(),
                t.source.clone().into(),
                t.family_id.clone().into(),
                t.issued_at.into(),
                t.expires_at.into(),
                t.revoked_at.into(),
                t.revoked_by.clone().into(),
                t.revoke_reason.clone().into(),
            ]
        },
    )
    .await
}

/// The kid of the active signing key, if any.
pub async fn active_kid(cx: &mut Cx<'_>) -> Result<Option<String>> {
    Ok(
        on!(cx, c => sqlx::query_scalar("SELECT kid FROM signing_keys WHERE status = 'active'").fetch_optional(&mut *c).await?),
    )
}

// ---------------------------------------------------------------- API keys

/// An API key joined with its owner.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct KeyRow {
    pub id: String,
    pub domain_id: String,
    pub domain: String,
    pub user_id: String,
    pub user_email: String,
    pub client_id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub scopes: String,
    pub redirect_uris: String,
    #[serde(serialize_with = "crate::model::ser_opt_ts")]
    pub expires_at: Option<i64>,
    pub issue_refresh: bool,
    pub rate_exempt: bool,
    #[serde(serialize_with = "crate::model::ser_opt_ts")]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

impl KeyRow {
    /// A token lifetime of `ttl` seconds from `now`, cut so that it ends when the key
    /// does: what a key grants must not outlive it.
    pub fn ttl_within(&self, ttl: i64, now: i64) -> i64 {
        match self.expires_at {
            Some(e) => ttl.min(e - now).max(0),
            None => ttl,
        }
    }
}

const KEY_SELECT: &str = "SELECT k.id, k.domain_id, d.name AS domain, k.user_id, u.email AS user_email, k.client_id, k.name, \
     k.secret_hash, k.scopes, k.redirect_uris, k.expires_at, k.issue_refresh, k.rate_exempt, k.last_used_at, k.created_at, k.version \
     FROM api_keys k JOIN domains d ON d.id = k.domain_id JOIN users u ON u.id = k.user_id";

pub async fn key_by_client_id(cx: &mut Cx<'_>, client_id: &str) -> Result<Option<KeyRow>> {
    let sql = AssertSqlSafe(format!("{KEY_SELECT} WHERE k.client_id = $1"));
    Ok(on!(cx, c => sqlx::query_as(sql).bind(client_id).fetch_optional(&mut *c).await?))
}

pub async fn insert_key(cx: &mut Cx<'_>, k: &KeyRow) -> Result<()> {
    let sql = "INSERT INTO api_keys (id, domain_id, user_id, client_id, name, secret_hash, scopes, redirect_uris, expires_at, issue_refresh, rate_exempt, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)";
    on!(cx, c => sqlx::query(sql).bind(&k.id).bind(&k.domain_id).bind(&k.user_id).bind(&k.client_id).bind(&k.name)
        .bind(&k.secret_hash).bind(&k.scopes).bind(&k.redirect_uris).bind(k.expires_at).bind(k.issue_refresh)
        .bind(k.rate_exempt).bind(k.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn delete_key(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => {
        sqlx::query("DELETE FROM refresh_tokens WHERE key_id = $1").bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected()
    });
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct KeyQuery {
    pub domains: Option<Vec<String>>,
    pub user_id: Option<String>,
    /// Keys not used since this time (or never used and created before it).
    pub unused_since: Option<i64>,
    /// Keys expiring before this time (and not yet expired).
    pub expiring_before: Option<i64>,
    pub now: i64,
    /// A client id prefix, or the owner's email prefix / email-or-name substring.
    pub search: Option<String>,
    pub sort: KeySort,
    /// Newest first (the console); `after` then continues downwards.
    pub desc: bool,
    /// Keyset cursor: (sort value, id) of the last row seen.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// The orders of API key lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeySort {
    #[default]
    Created,
    /// By last use, a key never used as used at time 0 (see [`KeyRow::used_key`]).
    LastUsed,
}

impl KeySort {
    fn col(&self) -> &'static str {
        match self {
            KeySort::Created => "k.created_at",
            KeySort::LastUsed => "coalesce(k.last_used_at, 0)",
        }
    }
}

impl KeyRow {
    /// The value [`KeySort::LastUsed`] orders by.
    pub fn used_key(&self) -> i64 {
        self.last_used_at.unwrap_or(0)
    }
}

fn key_filters(q: &mut Sql, f: &KeyQuery) {
    if let Some(ds) = &f.domains {
        q.push(" AND k.domain_id ")
            .bind_in(ds.iter().map(Val::from));
    }
    if let Some(u) = &f.user_id {
        q.push(" AND k.user_id = ").bind(u);
    }
    if let Some(t) = f.unused_since {
        q.push(" AND COALESCE(k.last_used_at, k.created_at) < ")
            .bind(t);
    }
    if let Some(t) = f.expiring_before {
        q.push(" AND k.expires_at IS NOT NULL AND k.expires_at < ")
            .bind(t)
            .push(" AND k.expires_at > ")
            .bind(f.now);
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        q.push(" AND (");
        super::sql::prefix_match(q, "k.client_id", s);
        q.push(" OR k.user_id IN (SELECT u.id FROM users u WHERE 1 = 1");
        super::directory::user_search_filter(q, s);
        q.push("))");
    }
}

pub async fn list_keys(cx: &mut Cx<'_>, f: &KeyQuery) -> Result<Vec<KeyRow>> {
    let mut q = Sql::new(cx.engine(), KEY_SELECT);
    q.push(" WHERE 1 = 1");
    key_filters(&mut q, f);
    let col = f.sort.col();
    let (cmp, dir) = if f.desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some((v, id)) = &f.after {
        // As for stations: a bound on the sort value alone, for SQLite to seek.
        q.push(&format!(" AND {col} {cmp}= "))
            .bind(*v)
            .push(&format!(" AND ({col}, k.id) {cmp} ("))
            .bind(*v)
            .push(", ")
            .bind(id)
            .push(")");
    }
    q.push(&format!(" ORDER BY {col} {dir}, k.id {dir} LIMIT "))
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

pub async fn count_keys(cx: &mut Cx<'_>, f: &KeyQuery) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM api_keys k WHERE 1 = 1");
    key_filters(&mut q, f);
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

pub async fn touch_key_used(cx: &mut Cx<'_>, id: &str, now: i64) -> Result<()> {
    let sql = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";
    on!(cx, c => sqlx::query(sql).bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

// ---------------------------------------------------------------- apps and consents

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AppRow {
    pub id: String,
    pub domain_id: String,
    pub domain: String,
    pub owner_id: String,
    pub owner_email: String,
    pub client_id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub scopes: String,
    pub redirect_uris: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

const APP_SELECT: &str = "SELECT a.id, a.domain_id, d.name AS domain, a.owner_id, u.email AS owner_email, a.client_id, a.name, \
     a.secret_hash, a.scopes, a.redirect_uris, a.created_at, a.version \
     FROM apps a JOIN domains d ON d.id = a.domain_id JOIN users u ON u.id = a.owner_id";

pub async fn app_by_client_id(cx: &mut Cx<'_>, client_id: &str) -> Result<Option<AppRow>> {
    let sql = AssertSqlSafe(format!("{APP_SELECT} WHERE a.client_id = $1"));
    Ok(on!(cx, c => sqlx::query_as(sql).bind(client_id).fetch_optional(&mut *c).await?))
}

/// Apps of these domains (all with None): the filter of listing and counting.
fn app_domains(q: &mut Sql, domains: Option<&[String]>) {
    q.push(" WHERE 1 = 1");
    if let Some(ds) = domains {
        q.push(" AND a.domain_id ")
            .bind_in(ds.iter().map(Val::from));
    }
}

pub async fn list_apps(cx: &mut Cx<'_>, domains: Option<&[String]>) -> Result<Vec<AppRow>> {
    let mut q = Sql::new(cx.engine(), APP_SELECT);
    app_domains(&mut q, domains);
    q.push(" ORDER BY a.name, a.id LIMIT 10000");
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// Developer apps in these domains (all with None).
pub async fn count_apps(cx: &mut Cx<'_>, domains: Option<&[String]>) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM apps a");
    app_domains(&mut q, domains);
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

pub async fn insert_app(cx: &mut Cx<'_>, a: &AppRow) -> Result<()> {
    let sql = "INSERT INTO apps (id, domain_id, owner_id, client_id, name, secret_hash, scopes, redirect_uris, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)";
    on!(cx, c => sqlx::query(sql).bind(&a.id).bind(&a.domain_id).bind(&a.owner_id).bind(&a.client_id).bind(&a.name)
        .bind(&a.secret_hash).bind(&a.scopes).bind(&a.redirect_uris).bind(a.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn delete_app(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => {
        sqlx::query("DELETE FROM refresh_tokens WHERE app_id = $1").bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM consents WHERE app_id = $1").bind(id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM apps WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected()
    });
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ConsentRow {
    pub id: String,
    pub user_id: String,
    pub user_email: String,
    pub app_id: String,
    pub app_client_id: String,
    pub app_name: String,
    pub domain_id: String,
    pub scopes: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
}

const CONSENT_SELECT: &str = "SELECT c.id, c.user_id, u.email AS user_email, c.app_id, a.client_id AS app_client_id, a.name AS app_name, \
     u.domain_id, c.scopes, c.created_at FROM consents c JOIN users u ON u.id = c.user_id JOIN apps a ON a.id = c.app_id";

pub async fn consent(cx: &mut Cx<'_>, user_id: &str, app_id: &str) -> Result<Option<ConsentRow>> {
    let sql = AssertSqlSafe(format!(
        "{CONSENT_SELECT} WHERE c.user_id = $1 AND c.app_id = $2"
    ));
    Ok(on!(cx, c => sqlx::query_as(sql).bind(user_id).bind(app_id).fetch_optional(&mut *c).await?))
}

pub async fn list_consents(
    cx: &mut Cx<'_>,
    user_id: Option<&str>,
    domains: Option<&[String]>,
    limit: i64,
) -> Result<Vec<ConsentRow>> {
    let mut q = Sql::new(cx.engine(), CONSENT_SELECT);
    q.push(" WHERE 1 = 1");
    if let Some(u) = user_id {
        q.push(" AND c.user_id = ").bind(u);
    }
    if let Some(ds) = domains {
        q.push(" AND u.domain_id ")
            .bind_in(ds.iter().map(Val::from));
    }
    q.push(" ORDER BY u.email, a.name LIMIT ")
        .bind(limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// How many consents each app has (apps without any are absent).
pub async fn consent_counts(
    cx: &mut Cx<'_>,
    domains: Option<&[String]>,
) -> Result<Vec<(String, i64)>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT c.app_id, COUNT(*) FROM consents c JOIN apps a ON a.id = c.app_id WHERE 1 = 1",
    );
    if let Some(ds) = domains {
        q.push(" AND a.domain_id ")
            .bind_in(ds.iter().map(Val::from));
    }
    q.push(" GROUP BY c.app_id");
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// Creates or replaces a consent.
pub async fn upsert_consent(
    cx: &mut Cx<'_>,
    id: &str,
    user_id: &str,
    app_id: &str,
    scopes: &str,
    now: i64,
) -> Result<()> {
    let sql = "INSERT INTO consents (id, user_id, app_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (user_id, app_id) DO UPDATE SET scopes = excluded.scopes";
    on!(cx, c => sqlx::query(sql).bind(id).bind(user_id).bind(app_id).bind(scopes).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn delete_consent(cx: &mut Cx<'_>, user_id: &str, app_id: &str) -> Result<u64> {
    Ok(on!(cx, c => {
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND app_id = $2").bind(user_id).bind(app_id).execute(&mut *c).await?;
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND app_id = $2").bind(user_id).bind(app_id).execute(&mut *c).await?.rows_affected()
    }))
}

// ---------------------------------------------------------------- token records

const TOKEN_COLS: &str = "SELECT jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, \
     expires_at, revoked_at, revoked_by, revoke_reason FROM tokens";

/// A token record by jti; on SQLite also one still in the token journal (issued by the
/// token service moments ago, not yet moved into `tokens`: see migration 0003).
pub async fn token_by_jti(cx: &mut Cx<'_>, jti: &str) -> Result<Option<TokenRecord>> {
    let sql = AssertSqlSafe(format!("{TOKEN_COLS} WHERE jti = $1"));
    let found = on!(cx, c => sqlx::query_as(sql).bind(jti).fetch_optional(&mut *c).await?);
    match (found, cx) {
        (None, Cx::Sqlite(c)) => Ok(sqlx::query_as(
            "SELECT jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, \
             issued_at, expires_at, NULL AS revoked_at, NULL AS revoked_by, NULL AS revoke_reason \
             FROM token_journal WHERE jti = $1",
        )
        .bind(jti)
        .fetch_optional(&mut **c)
        .await?),
        (found, _) => Ok(found),
    }
}

#[derive(Debug, Clone, Default)]
pub struct TokenQuery {
    pub domains: Option<Vec<String>>,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    /// Only unrevoked, unexpired tokens at `now`.
    pub active: bool,
    /// Only tokens expiring before this time (and not yet expired).
    pub expiring_before: Option<i64>,
    pub now: i64,
    /// Keyset cursor over (issued_at, jti), newest first.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

fn token_filters(q: &mut Sql, f: &TokenQuery) {
    if let Some(ds) = &f.domains {
        q.push(" AND domain_id ").bind_in(ds.iter().map(Val::from));
    }
    if let Some(u) = &f.user_id {
        q.push(" AND user_id = ").bind(u);
    }
    if let Some(k) = &f.key_id {
        q.push(" AND key_id = ").bind(k);
    }
    if f.active || f.expiring_before.is_some() {
        q.push(" AND revoked_at IS NULL AND expires_at > ")
            .bind(f.now);
    }
    if let Some(t) = f.expiring_before {
        q.push(" AND expires_at < ").bind(t);
    }
}

/// Token records newest first.
pub async fn list_tokens(cx: &mut Cx<'_>, f: &TokenQuery) -> Result<Vec<TokenRecord>> {
    let mut q = Sql::new(cx.engine(), TOKEN_COLS);
    q.push(" WHERE 1 = 1");
    token_filters(&mut q, f);
    if let Some((at, jti)) = &f.before {
        q.push(" AND (issued_at, jti) < (")
            .bind(*at)
            .push(", ")
            .bind(jti)
            .push(")");
    }
    q.push(" ORDER BY issued_at DESC, jti DESC LIMIT ")
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

pub async fn count_tokens(cx: &mut Cx<'_>, f: &TokenQuery) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM tokens WHERE 1 = 1");
    token_filters(&mut q, f);
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

/// Revokes active tokens minted through a key or app (optionally for one user).
pub async fn revoke_tokens_where(
    cx: &mut Cx<'_>,
    col: &str,
    id: &str,
    user_id: Option<&str>,
    now: i64,
    by: &str,
    reason: &str,
) -> Result<u64> {
    debug_assert!(col == "key_id" || col == "app_id");
    let mut q = Sql::new(cx.engine(), "UPDATE tokens SET revoked_at = ");
    q.bind(now)
        .push(", revoked_by = ")
        .bind(by)
        .push(", revoke_reason = ")
        .bind(reason);
    q.push(" WHERE revoked_at IS NULL AND expires_at > ")
        .bind(now);
    q.push(&format!(" AND {col} = ")).bind(id);
    if let Some(u) = user_id {
        q.push(" AND user_id = ").bind(u);
    }
    super::directory::exec(cx, q).await
}

/// Revocations since `since` (inclusive): (jti, reason), for revocation views.
pub async fn revoked_since(
    cx: &mut Cx<'_>,
    since: i64,
    now: i64,
) -> Result<Vec<(String, Option<String>, i64)>> {
    let sql = "SELECT jti, revoke_reason, expires_at FROM tokens WHERE revoked_at IS NOT NULL AND revoked_at >= $1 AND expires_at > $2";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(since).bind(now).fetch_all(&mut *c).await?))
}

/// What [`purge_tokens`] would delete: token records (counted from the index on
/// `expires_at`), and refresh tokens and authorization codes together.
pub async fn count_purgeable(cx: &mut Cx<'_>, cutoff: i64) -> Result<(u64, u64)> {
    let sql = "SELECT (SELECT count(*) FROM tokens WHERE expires_at < $1), \
               (SELECT count(*) FROM refresh_tokens WHERE expires_at < $1) \
               + (SELECT count(*) FROM auth_codes WHERE expires_at < $1)";
    let (t, o): (i64, i64) =
        on!(cx, c => sqlx::query_as(sql).bind(cutoff).fetch_one(&mut *c).await?);
    Ok((t.max(0) as u64, o.max(0) as u64))
}

/// Deletes records of tokens that expired before `cutoff` (and refresh tokens and
/// authorization codes that did); returns how many token records.
pub async fn purge_tokens(cx: &mut Cx<'_>, cutoff: i64) -> Result<u64> {
    Ok(on!(cx, c => {
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1").bind(cutoff).execute(&mut *c).await?;
        sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1").bind(cutoff).execute(&mut *c).await?;
        sqlx::query("DELETE FROM tokens WHERE expires_at < $1").bind(cutoff).execute(&mut *c).await?.rows_affected()
    }))
}

// ---------------------------------------------------------------- refresh tokens

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub family_id: String,
    pub token_hash: String,
    pub domain_id: String,
    pub user_id: String,
    pub key_id: Option<String>,
    pub app_id: Option<String>,
    pub client_id: String,
    pub scopes: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub async fn insert_refresh(cx: &mut Cx<'_>, r: &RefreshRow) -> Result<()> {
    insert_refresh_rows(cx, std::slice::from_ref(r)).await
}

/// Inserts refresh tokens in multi-row statements.
pub async fn insert_refresh_rows(cx: &mut Cx<'_>, rows: &[RefreshRow]) -> Result<()> {
    super::directory::insert_rows(
        cx,
        "INSERT INTO refresh_tokens (token_hash, family_id, domain_id, user_id, key_id, app_id, client_id, scopes, issued_at, expires_at) VALUES ",
        rows,
        |r| {
            vec![
                r.token_hash.clone().into(),
                r.family_id.clone().into(),
                r.domain_id.clone().into(),
                r.user_id.clone().into(),
                r.key_id.clone().into(),
                r.app_id.clone().into(),
                r.client_id.clone().into(),
                r.scopes.clone().into(),
                r.issued_at.into(),
                r.expires_at.into(),
            ]
        },
    )
    .await
}

pub async fn refresh_by_hash(cx: &mut Cx<'_>, hash: &str) -> Result<Option<RefreshRow>> {
    let sql = "SELECT family_id, token_hash, domain_id, user_id, key_id, app_id, client_id, scopes, issued_at, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(hash).fetch_optional(&mut *c).await?))
}

/// The refresh token stored under any of `hashes` (one per hash key version).
pub async fn refresh_by_any_hash(cx: &mut Cx<'_>, hashes: &[String]) -> Result<Option<RefreshRow>> {
    for h in hashes {
        if let Some(r) = refresh_by_hash(cx, h).await? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Marks a refresh token used if it was unused; false when someone used it first.
pub async fn spend_refresh(cx: &mut Cx<'_>, token_hash: &str, now: i64) -> Result<bool> {
    let sql = "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL";
    Ok(
        on!(cx, c => sqlx::query(sql).bind(now).bind(token_hash).execute(&mut *c).await?.rows_affected())
            == 1,
    )
}

/// Revokes a whole refresh family and the access tokens minted from it, recording who
/// revoked them (`keyward` itself when it detects reuse, else the revoking client) and why.
pub async fn revoke_family(
    cx: &mut Cx<'_>,
    family_id: &str,
    now: i64,
    by: &str,
    reason: &str,
) -> Result<u64> {
    Ok(on!(cx, c => {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL").bind(now).bind(family_id).execute(&mut *c).await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 WHERE family_id = $4 AND revoked_at IS NULL AND expires_at > $1")
            .bind(now).bind(by).bind(reason).bind(family_id).execute(&mut *c).await?.rows_affected()
    }))
}

/// Keys of a user, by name (for provisioning).
pub async fn keys_of_user(cx: &mut Cx<'_>, user_id: &str) -> Result<Vec<KeyRow>> {
    let sql = AssertSqlSafe(format!(
        "{KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.name, k.created_at, k.id"
    ));
    Ok(on!(cx, c => sqlx::query_as(sql).bind(user_id).fetch_all(&mut *c).await?))
}

pub async fn update_app(
    cx: &mut Cx<'_>,
    id: &str,
    scopes: &str,
    redirect_uris: &str,
) -> Result<()> {
    let sql =
        "UPDATE apps SET scopes = $1, redirect_uris = $2, version = version + 1 WHERE id = $3";
    on!(cx, c => sqlx::query(sql).bind(scopes).bind(redirect_uris).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Every key of a domain (for export), ordered by owner and name.
pub async fn keys_of_domain(cx: &mut Cx<'_>, domain_id: &str) -> Result<Vec<KeyRow>> {
    let sql = AssertSqlSafe(format!(
        "{KEY_SELECT} WHERE k.domain_id = $1 ORDER BY u.email_norm, k.name, k.created_at, k.id"
    ));
    Ok(on!(cx, c => sqlx::query_as(sql).bind(domain_id).fetch_all(&mut *c).await?))
}
