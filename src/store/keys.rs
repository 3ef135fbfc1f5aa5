//! Keyring (master-key check values, sealed hash keys) and signing keys.

use super::Cx;
use crate::error::Result;
use crate::on;
use serde::Serialize;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyringRow {
    pub version: i64,
    pub check_value: String,
    pub hash_key_sealed: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub public_jwk: Option<String>,
    #[serde(skip)]
    pub private_enc: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

pub async fn keyring(cx: &mut Cx<'_>) -> Result<Vec<KeyringRow>> {
    let sql =
        "SELECT version, check_value, hash_key_sealed, created_at FROM keyring ORDER BY version";
    Ok(on!(cx, c => sqlx::query_as(sql).fetch_all(&mut *c).await?))
}

pub async fn insert_keyring(cx: &mut Cx<'_>, r: &KeyringRow) -> Result<()> {
    let sql = "INSERT INTO keyring (version, check_value, hash_key_sealed, created_at) VALUES ($1, $2, $3, $4)";
    on!(cx, c => sqlx::query(sql).bind(r.version).bind(&r.check_value).bind(&r.hash_key_sealed).bind(r.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn reseal_keyring(
    cx: &mut Cx<'_>,
    version: i64,
    check_value: &str,
    sealed: &str,
) -> Result<()> {
    let sql = "UPDATE keyring SET check_value = $1, hash_key_sealed = $2 WHERE version = $3";
    on!(cx, c => sqlx::query(sql).bind(check_value).bind(sealed).bind(version).execute(&mut *c).await?.rows_affected());
    Ok(())
}

const SK_COLS: &str =
    "SELECT kid, alg, status, public_jwk, private_enc, created_at, version FROM signing_keys";

pub async fn signing_keys(cx: &mut Cx<'_>) -> Result<Vec<SigningKeyRow>> {
    let sql = sqlx::AssertSqlSafe(format!("{SK_COLS} ORDER BY created_at DESC, kid"));
    Ok(on!(cx, c => sqlx::query_as(sql).fetch_all(&mut *c).await?))
}

pub async fn insert_signing_key(cx: &mut Cx<'_>, k: &SigningKeyRow) -> Result<()> {
    let sql = "INSERT INTO signing_keys (kid, alg, status, public_jwk, private_enc, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, 1)";
    on!(cx, c => sqlx::query(sql).bind(&k.kid).bind(&k.alg).bind(&k.status).bind(&k.public_jwk).bind(&k.private_enc).bind(k.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Demotes the active key to verify-only.
pub async fn demote_active(cx: &mut Cx<'_>) -> Result<()> {
    let sql =
        "UPDATE signing_keys SET status = 'verify', version = version + 1 WHERE status = 'active'";
    on!(cx, c => sqlx::query(sql).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn set_private_enc(cx: &mut Cx<'_>, kid: &str, sealed: &str) -> Result<()> {
    let sql = "UPDATE signing_keys SET private_enc = $1, version = version + 1 WHERE kid = $2";
    on!(cx, c => sqlx::query(sql).bind(sealed).bind(kid).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn delete_signing_key(cx: &mut Cx<'_>, kid: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(kid).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Unexpired, unrevoked tokens signed by a key.
pub async fn live_tokens_of_kid(cx: &mut Cx<'_>, kid: &str, now: i64) -> Result<i64> {
    let sql =
        "SELECT COUNT(*) FROM tokens WHERE kid = $1 AND expires_at > $2 AND revoked_at IS NULL";
    Ok(on!(cx, c => sqlx::query_scalar(sql).bind(kid).bind(now).fetch_one(&mut *c).await?))
}

pub async fn revoke_tokens_of_kid(cx: &mut Cx<'_>, kid: &str, now: i64, by: &str) -> Result<u64> {
    let sql = "UPDATE tokens SET revoked_at = $1, revoked_by = $2, revoke_reason = 'signing key retired' WHERE kid = $3 AND expires_at > $1 AND revoked_at IS NULL";
    Ok(
        on!(cx, c => sqlx::query(sql).bind(now).bind(by).bind(kid).execute(&mut *c).await?.rows_affected()),
    )
}
