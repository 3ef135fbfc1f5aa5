//! Queries of the token service's grants: batched records of issued tokens, liveness
//! checks of the credentials a batch relied on, authorization codes.

use super::credentials::RefreshRow;
use super::{Cx, Sql, Val};
use crate::error::Result;
use crate::{bind_all, on};
use sqlx::AssertSqlSafe;

/// Inserts refresh tokens in multi-row statements.
pub async fn insert_refresh_rows(cx: &mut Cx<'_>, rows: &[RefreshRow]) -> Result<()> {
    let engine = cx.engine();
    for chunk in rows.chunks(500) {
        let mut q = Sql::new(
            engine,
            "INSERT INTO refresh_tokens (id, family_id, token_hash, domain_id, user_id, key_id, app_id, client_id, scopes, issued_at, expires_at) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind_row(vec![
                r.id.clone().into(),
                r.family_id.clone().into(),
                r.token_hash.clone().into(),
                r.domain_id.clone().into(),
                r.user_id.clone().into(),
                r.key_id.clone().into(),
                r.app_id.clone().into(),
                r.client_id.clone().into(),
                r.scopes.clone().into(),
                r.issued_at.into(),
                r.expires_at.into(),
            ]);
        }
        super::directory::exec(cx, q).await?;
    }
    Ok(())
}

/// The state of an API key that a cached grant relied on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyLiveness {
    pub id: String,
    pub version: i64,
    pub expires_at: Option<i64>,
    pub user_status: String,
    pub user_version: i64,
}

/// Liveness of some API keys (missing ids were deleted).
pub async fn key_liveness(cx: &mut Cx<'_>, ids: &[String]) -> Result<Vec<KeyLiveness>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT k.id, k.version, k.expires_at, u.status AS user_status, u.version AS user_version \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id ",
    );
    q.bind_in(ids.iter().map(Val::from));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// Sets `last_used_at` of keys (never moving it backwards).
pub async fn touch_keys(cx: &mut Cx<'_>, ids: &[String], now: i64) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new(cx.engine(), "UPDATE api_keys SET last_used_at = ");
    q.bind(now)
        .push(" WHERE (last_used_at IS NULL OR last_used_at < ")
        .bind(now)
        .push(") AND id ")
        .bind_in(ids.iter().map(Val::from));
    super::directory::exec(cx, q).await?;
    Ok(())
}

/// The user a key belongs to, with its version (for cache validation).
pub async fn user_version(cx: &mut Cx<'_>, user_id: &str) -> Result<Option<(String, i64)>> {
    let sql = "SELECT status, version FROM users WHERE id = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(user_id).fetch_optional(&mut *c).await?))
}

/// A user's id and password hash by normalised email within a domain.
pub async fn login_row(
    cx: &mut Cx<'_>,
    domain_id: &str,
    email_norm: &str,
) -> Result<Option<(String, Option<String>)>> {
    let sql = "SELECT id, password_hash FROM users WHERE domain_id = $1 AND email_norm = $2";
    Ok(
        on!(cx, c => sqlx::query_as(sql).bind(domain_id).bind(email_norm).fetch_optional(&mut *c).await?),
    )
}

/// A single-use authorization code (stored by its keyed hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthCodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub station_id: Option<String>,
    pub redirect_uri: String,
    pub scopes: String,
    pub code_challenge: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn insert_auth_code(cx: &mut Cx<'_>, r: &AuthCodeRow) -> Result<()> {
    let sql = "INSERT INTO auth_codes (code_hash, client_id, user_id, station_id, redirect_uri, scopes, code_challenge, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    on!(cx, c => sqlx::query(sql).bind(&r.code_hash).bind(&r.client_id).bind(&r.user_id).bind(&r.station_id)
        .bind(&r.redirect_uri).bind(&r.scopes).bind(&r.code_challenge).bind(r.expires_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn auth_code(cx: &mut Cx<'_>, code_hash: &str) -> Result<Option<AuthCodeRow>> {
    let sql = "SELECT code_hash, client_id, user_id, station_id, redirect_uri, scopes, code_challenge, expires_at, used_at \
               FROM auth_codes WHERE code_hash = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(code_hash).fetch_optional(&mut *c).await?))
}

/// Marks a code used; false when it already was (a concurrent redemption).
pub async fn spend_auth_code(cx: &mut Cx<'_>, code_hash: &str, now: i64) -> Result<bool> {
    let sql = "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL";
    let n = on!(cx, c => sqlx::query(sql).bind(now).bind(code_hash).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Deletes codes that expired long ago.
pub async fn purge_auth_codes(cx: &mut Cx<'_>, cutoff: i64) -> Result<u64> {
    let sql = "DELETE FROM auth_codes WHERE expires_at < $1";
    Ok(on!(cx, c => sqlx::query(sql).bind(cutoff).execute(&mut *c).await?.rows_affected()))
}
