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
/// revoked, for the audit trail).
pub async fn delete_user_grants(cx: &mut Cx<'_>, user_id: &str) -> Result<()> {
    on!(cx, c => {
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1").bind(user_id).execute(&mut *c).await?;
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
    let engine = cx.engine();
    for chunk in rows.chunks(500) {
        let mut q = Sql::new(
            engine,
            "INSERT INTO tokens (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, expires_at, revoked_at, revoked_by, revoke_reason) VALUES ",
        );
        for (i, t) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind_row(vec![
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
            ]);
        }
        super::directory::exec(cx, q).await?;
    }
    Ok(())
}

/// The kid of the active signing key, if any.
pub async fn active_kid(cx: &mut Cx<'_>) -> Result<Option<String>> {
    Ok(
        on!(cx, c => sqlx::query_scalar("SELECT kid FROM signing_keys WHERE status = 'active'").fetch_optional(&mut *c).await?),
    )
}
