//! Queries of the token service's grants: batched records of issued tokens, liveness
//! checks of the credentials a batch relied on, authorization codes.

use super::credentials::{RefreshRow, TokenRecord};
use super::{Cx, Sql, Val, Writer};
use crate::error::Result;
use crate::{bind_all, on};
use sqlx::AssertSqlSafe;

/// One grant for the token recorder: its token record, its refresh token, and the
/// versions of the API key and of the key's owner that the grant relied on.
#[derive(Debug)]
pub struct Issued {
    pub rec: TokenRecord,
    /// The refresh token's stored hash and expiry; its other columns are the token
    /// record's (same family, owner, client, scopes and issue time).
    pub refresh: Option<IssuedRefresh>,
    /// `(key version, user version)`, checked against the key named by `rec.key_id`.
    pub check: Option<(i64, i64)>,
}

/// The refresh token of an [`Issued`] grant.
#[derive(Debug)]
pub struct IssuedRefresh {
    pub token_hash: String,
    pub expires_at: i64,
}

impl Issued {
    /// The refresh token's row, when the grant has one.
    fn refresh_row(&self) -> Option<RefreshRow> {
        let (t, r) = (&self.rec, self.refresh.as_ref()?);
        Some(RefreshRow {
            family_id: t.family_id.clone()?,
            token_hash: r.token_hash.clone(),
            domain_id: t.domain_id.clone(),
            user_id: t.user_id.clone(),
            key_id: t.key_id.clone(),
            app_id: t.app_id.clone(),
            client_id: t.client_id.clone(),
            scopes: t.scopes.clone(),
            issued_at: t.issued_at,
            expires_at: r.expires_at,
            used_at: None,
            revoked_at: None,
        })
    }
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

/// The state of the API keys `ids` (missing ids were deleted).
async fn key_liveness(cx: &mut Cx<'_>, ids: &[&str]) -> Result<Vec<KeyLiveness>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT k.id, k.version, k.expires_at, u.status AS user_status, u.version AS user_version \
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id ",
    );
    q.bind_in(ids.iter().map(|i| Val::from(*i)));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// PostgreSQL: through the `grant_rows` view, whose trigger checks each row.
const GRANT_ROWS_INSERT: &str = "INSERT INTO grant_rows (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, expires_at, refresh_hash, refresh_expires_at, key_version, user_version) VALUES ";

/// SQLite: straight into the journal (migration 0004), checked once per batch.
const JOURNAL_INSERT: &str = "INSERT INTO token_journal (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, expires_at, refresh_hash, refresh_expires_at) SELECT * FROM (VALUES ";

/// The message of the PostgreSQL `grant_rows` trigger when a grant's key or owner
/// changed.
const STALE_KEY: &str = "keyward: stale key";

/// The statement of [`record_grants`] for `rows` grants: on PostgreSQL into the
/// `grant_rows` view, on SQLite into the journal with a check of `checks` key states.
fn record_grants_sql(pg: bool, rows: usize, checks: usize) -> String {
    // Built directly (no intermediate values): this runs for every batch.
    let cols = if pg { 16 } else { 14 };
    let mut text = String::with_capacity(256 + rows * (cols * 5 + 4) + checks * 64);
    text.push_str(if pg {
        GRANT_ROWS_INSERT
    } else {
        JOURNAL_INSERT
    });
    let mut n = 0;
    for row in 0..rows {
        text.push_str(if row == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                text.push_str(", ");
            }
            if pg {
                n += 1;
                text.push('$');
                text.push_str(&n.to_string());
            } else {
                text.push('?');
            }
        }
        text.push(')');
    }
    if pg {
        return text;
    }
    text.push(')');
    if checks > 0 {
        text.push_str(
            " WHERE (SELECT COUNT(*) FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE u.status = 'active' AND (k.expires_at IS NULL OR k.expires_at > ?) AND (",
        );
        for c in 0..checks {
            if c > 0 {
                text.push_str(" OR ");
            }
            text.push_str("(k.id = ? AND k.version = ? AND u.version = ?)");
        }
        text.push_str(")) = ?");
    }
    text
}

/// Records a batch of grants in one statement, outside any transaction (so as one
/// atomic transaction of its own). The same statement checks what the grants relied
/// on: each API key still exists, is unexpired and unchanged (`version`), its owner
/// active and unchanged. `Ok(false)` when one of them changed since it was read: then
/// nothing was recorded, and [`record_batch`] decides grant by grant.
///
/// On SQLite the batch goes into the token journal with one check for the whole batch
/// (the distinct `(key, version, owner version)` it relied on must all be live); on
/// PostgreSQL through the `grant_rows` view (migration 0003), whose trigger writes the
/// token tables and checks row by row.
pub async fn record_grants(w: &mut Writer, items: &[Issued]) -> Result<bool> {
    if items.is_empty() {
        return Ok(true);
    }
    let pg = w.engine() == super::Engine::Postgres;
    // SQLite: the liveness the grants relied on, once per distinct key state, and the
    // latest issue time in the batch (a key must be unexpired then).
    let mut checks: Vec<(&str, i64, i64)> = Vec::new();
    if !pg {
        checks.extend(
            items
                .iter()
                .filter_map(|i| Some((i.rec.key_id.as_deref()?, i.check?.0, i.check?.1))),
        );
        checks.sort_unstable();
        checks.dedup();
    }
    let latest = items.iter().map(|i| i.rec.issued_at).max().unwrap_or(0);
    let text = record_grants_sql(pg, items.len(), checks.len());
    let done = on!(&mut w.cx(), c => {
        let mut q = sqlx::query(AssertSqlSafe(text));
        for i in items {
            let (t, r) = (&i.rec, i.refresh.as_ref());
            q = q
                .bind(t.jti.as_str())
                .bind(t.domain_id.as_str())
                .bind(t.user_id.as_str())
                .bind(t.key_id.as_deref())
                .bind(t.app_id.as_deref())
                .bind(t.client_id.as_str())
                .bind(t.kid.as_str())
                .bind(t.scopes.as_str())
                .bind(t.source.as_str())
                .bind(t.family_id.as_deref())
                .bind(t.issued_at)
                .bind(t.expires_at)
                .bind(r.map(|r| r.token_hash.as_str()))
                .bind(r.map(|r| r.expires_at));
            if pg {
                q = q.bind(i.check.map(|c| c.0)).bind(i.check.map(|c| c.1));
            }
        }
        if !checks.is_empty() {
            q = q.bind(latest);
            for (id, kv, uv) in &checks {
                q = q.bind(*id).bind(*kv).bind(*uv);
            }
            q = q.bind(checks.len() as i64);
        }
        q.execute(&mut *c).await.map(|r| r.rows_affected())
    });
    match done.map_err(crate::Error::from) {
        // PostgreSQL: the trigger either wrote every row or raised (its count of rows
        // is the trigger's to make).
        Ok(_) if pg => Ok(true),
        Ok(rows) if rows == items.len() as u64 => Ok(true),
        // The SQLite check failed: the statement inserted nothing.
        Ok(0) => Ok(false),
        Ok(rows) => Err(crate::Error::Database(format!(
            "recording {} grants wrote {rows} rows",
            items.len()
        ))),
        Err(crate::Error::Database(m)) if m.contains(STALE_KEY) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the token journal holds grants not yet moved into `tokens` (SQLite; the
/// PostgreSQL trigger writes the tables directly, so there it is always empty).
pub async fn journal_pending(cx: &mut Cx<'_>) -> Result<bool> {
    match cx {
        Cx::Sqlite(c) => Ok(sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM token_journal)",
        )
        .fetch_one(&mut **c)
        .await?),
        Cx::Pg(_) => Ok(false),
    }
}

/// The token journal's table in its own file (see [`super::journal_file`]): one row
/// per grant, appended by the token recorder. Same columns as migration 0003's.
pub(crate) const JOURNAL_TABLE: &str = "CREATE TABLE IF NOT EXISTS grants.token_journal (
    seq                INTEGER PRIMARY KEY,
    jti                TEXT NOT NULL,
    domain_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    key_id             TEXT,
    app_id             TEXT,
    client_id          TEXT NOT NULL,
    kid                TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    source             TEXT NOT NULL,
    family_id          TEXT,
    issued_at          BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    refresh_hash       TEXT,
    refresh_expires_at BIGINT
)";

// `ON CONFLICT DO NOTHING`: a copy committed in the main database whose entries were not
// yet deleted from the journal's file (the two files do not commit atomically together)
// is copied once only; a token revoked since keeps its revocation.
const SETTLE_TOKENS: &str = "INSERT INTO tokens (jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, expires_at) \
     SELECT jti, domain_id, user_id, key_id, app_id, client_id, kid, scopes, source, family_id, issued_at, expires_at \
     FROM token_journal WHERE seq <= $1 ORDER BY seq ON CONFLICT (jti) DO NOTHING";
const SETTLE_REFRESH: &str = "INSERT INTO refresh_tokens (token_hash, family_id, domain_id, user_id, key_id, app_id, client_id, scopes, issued_at, expires_at) \
     SELECT refresh_hash, family_id, domain_id, user_id, key_id, app_id, client_id, scopes, issued_at, refresh_expires_at \
     FROM token_journal WHERE seq <= $1 AND refresh_hash IS NOT NULL ORDER BY seq \
     ON CONFLICT (token_hash) DO NOTHING";

/// Moves the token journal into `tokens` and `refresh_tokens`, in the caller's write
/// transaction (which holds both files' write locks); returns how many grants it moved.
/// Every write transaction calls it first ([`super::Db::begin`]), so a change to tokens
/// always sees every token issued before it.
pub async fn settle(cx: &mut Cx<'_>) -> Result<u64> {
    let Some(last) = copy_journal(cx).await? else {
        return Ok(0);
    };
    forget_journal(cx, last).await
}

/// Copies the token journal into `tokens` and `refresh_tokens` (SQLite); returns the
/// last entry copied, `None` when the journal is empty.
pub async fn copy_journal(cx: &mut Cx<'_>) -> Result<Option<i64>> {
    let Cx::Sqlite(c) = cx else {
        return Ok(None);
    };
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM token_journal")
        .fetch_one(&mut **c)
        .await?;
    let Some(last) = last else {
        return Ok(None);
    };
    sqlx::query(SETTLE_TOKENS)
        .bind(last)
        .execute(&mut **c)
        .await?;
    sqlx::query(SETTLE_REFRESH)
        .bind(last)
        .execute(&mut **c)
        .await?;
    Ok(Some(last))
}

/// Deletes the journal's entries up to `upto`, once copied; returns how many.
pub async fn forget_journal(cx: &mut Cx<'_>, upto: i64) -> Result<u64> {
    let Cx::Sqlite(c) = cx else {
        return Ok(0);
    };
    Ok(sqlx::query("DELETE FROM token_journal WHERE seq <= $1")
        .bind(upto)
        .execute(&mut **c)
        .await?
        .rows_affected())
}

/// Records a batch of grants in the caller's transaction and tells which were
/// recorded: a grant whose key is gone, expired or changed (`version`), or whose owner
/// is disabled or changed, since the grant read it is not (see [`Issued::check`]).
pub async fn record_batch(cx: &mut Cx<'_>, items: Vec<Issued>, now: i64) -> Result<Vec<bool>> {
    let mut ids: Vec<&str> = items
        .iter()
        .filter(|i| i.check.is_some())
        .filter_map(|i| i.rec.key_id.as_deref())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let live = if ids.is_empty() {
        Vec::new()
    } else {
        key_liveness(cx, &ids).await?
    };
    let ok: Vec<bool> = items
        .iter()
        .map(|i| match (i.check, i.rec.key_id.as_deref()) {
            (None, _) => true,
            (Some((kv, uv)), Some(id)) => live.iter().any(|l| {
                l.id == id
                    && l.version == kv
                    && l.user_version == uv
                    && l.user_status == "active"
                    && l.expires_at.is_none_or(|e| e > now)
            }),
            (Some(_), None) => false,
        })
        .collect();
    let mut tokens = Vec::with_capacity(items.len());
    let mut refresh = Vec::with_capacity(items.len());
    for (i, ok) in items.into_iter().zip(&ok) {
        if *ok {
            refresh.extend(i.refresh_row());
            tokens.push(i.rec);
        }
    }
    super::credentials::insert_token_records(cx, &tokens).await?;
    super::credentials::insert_refresh_rows(cx, &refresh).await?;
    Ok(ok)
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
