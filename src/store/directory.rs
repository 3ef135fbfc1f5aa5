//! Queries for the directory: domains, settings, scopes, roles, users, stations, operators.

use super::{Cx, Engine, Sql, Val};
use crate::error::Result;
use crate::{bind_all, on};
use serde::Serialize;
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct DomainRow {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct SettingRow {
    pub key: String,
    pub value: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub updated_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ScopeRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct RoleRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    pub all_scopes: bool,
    pub builtin: bool,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

/// A user joined with its domain and role names.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct UserRow {
    pub id: String,
    pub domain_id: String,
    pub domain: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub role_id: String,
    pub role: String,
    pub api_access: String,
    pub affiliate_id: String,
    pub has_password: bool,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub updated_at: i64,
    pub version: i64,
}

/// A station joined with its domain and owner.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct StationRow {
    pub id: String,
    pub domain_id: String,
    pub domain: String,
    pub user_id: String,
    pub user_email: String,
    pub name: String,
    pub eu_vat_id: Option<String>,
    pub registration_number: Option<String>,
    pub country_code: Option<String>,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
    /// The name as the console's station list sorts it (the database's `lower`), so
    /// that a page's cursor is the very value the next page compares with; empty where
    /// a query does not select it.
    #[sqlx(default)]
    #[serde(skip)]
    pub name_key: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct OperatorRow {
    pub id: String,
    pub account: String,
    pub role: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
    pub version: i64,
}

// ---------------------------------------------------------------- domains

pub async fn domain_by_name(cx: &mut Cx<'_>, name: &str) -> Result<Option<DomainRow>> {
    let sql = "SELECT id, name, created_at, version FROM domains WHERE name = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(name).fetch_optional(&mut *c).await?))
}

pub async fn domain_by_id(cx: &mut Cx<'_>, id: &str) -> Result<Option<DomainRow>> {
    let sql = "SELECT id, name, created_at, version FROM domains WHERE id = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut *c).await?))
}

pub async fn domains(cx: &mut Cx<'_>) -> Result<Vec<DomainRow>> {
    let sql = "SELECT id, name, created_at, version FROM domains ORDER BY name";
    Ok(on!(cx, c => sqlx::query_as(sql).fetch_all(&mut *c).await?))
}

pub async fn insert_domain(cx: &mut Cx<'_>, d: &DomainRow) -> Result<()> {
    let sql = "INSERT INTO domains (id, name, created_at, version) VALUES ($1, $2, $3, 1)";
    on!(cx, c => sqlx::query(sql).bind(&d.id).bind(&d.name).bind(d.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn delete_domain(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM domains WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Counts of what a domain holds: (users, stations).
pub async fn domain_usage(cx: &mut Cx<'_>, id: &str) -> Result<(i64, i64)> {
    let sql = "SELECT (SELECT COUNT(*) FROM users WHERE domain_id = $1), (SELECT COUNT(*) FROM stations WHERE domain_id = $1)";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(id).fetch_one(&mut *c).await?))
}

// ---------------------------------------------------------------- settings

pub async fn settings(cx: &mut Cx<'_>) -> Result<Vec<SettingRow>> {
    let sql = "SELECT key, value, updated_at, version FROM settings ORDER BY key";
    Ok(on!(cx, c => sqlx::query_as(sql).fetch_all(&mut *c).await?))
}

pub async fn setting(cx: &mut Cx<'_>, key: &str) -> Result<Option<SettingRow>> {
    let sql = "SELECT key, value, updated_at, version FROM settings WHERE key = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(key).fetch_optional(&mut *c).await?))
}

/// Inserts a setting unless it exists; returns true when inserted.
pub async fn insert_setting_if_missing(
    cx: &mut Cx<'_>,
    key: &str,
    value: &str,
    now: i64,
) -> Result<bool> {
    let sql = "INSERT INTO settings (key, value, updated_at, version) VALUES ($1, $2, $3, 1) ON CONFLICT (key) DO NOTHING";
    let n = on!(cx, c => sqlx::query(sql).bind(key).bind(value).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Updates a setting if its version matches; returns false on a stale version.
pub async fn update_setting(
    cx: &mut Cx<'_>,
    key: &str,
    value: &str,
    version: i64,
    now: i64,
) -> Result<bool> {
    let sql = "UPDATE settings SET value = $1, updated_at = $2, version = version + 1 WHERE key = $3 AND version = $4";
    let n = on!(cx, c => sqlx::query(sql).bind(value).bind(now).bind(key).bind(version).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

// ---------------------------------------------------------------- scopes

const SCOPE_COLS: &str = "id, name, description, builtin, created_at, version";

pub async fn scopes(cx: &mut Cx<'_>) -> Result<Vec<ScopeRow>> {
    let sql = format!("SELECT {SCOPE_COLS} FROM scopes ORDER BY name");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *c).await?))
}

pub async fn scope_by_name(cx: &mut Cx<'_>, name: &str) -> Result<Option<ScopeRow>> {
    let sql = format!("SELECT {SCOPE_COLS} FROM scopes WHERE name = $1");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(name).fetch_optional(&mut *c).await?))
}

pub async fn insert_scope(cx: &mut Cx<'_>, s: &ScopeRow) -> Result<()> {
    let sql = "INSERT INTO scopes (id, name, description, builtin, created_at, version) VALUES ($1, $2, $3, $4, $5, 1)";
    on!(cx, c => sqlx::query(sql).bind(&s.id).bind(&s.name).bind(&s.description).bind(s.builtin).bind(s.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn delete_scope(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM scopes WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// All implication edges as (scope name, implied scope name).
pub async fn implications(cx: &mut Cx<'_>) -> Result<Vec<(String, String)>> {
    let sql = "SELECT s.name, i.name FROM scope_implies e JOIN scopes s ON s.id = e.scope_id JOIN scopes i ON i.id = e.implied_id ORDER BY s.name, i.name";
    Ok(on!(cx, c => sqlx::query_as(sql).fetch_all(&mut *c).await?))
}

pub async fn insert_implication(cx: &mut Cx<'_>, scope_id: &str, implied_id: &str) -> Result<()> {
    let sql =
        "INSERT INTO scope_implies (scope_id, implied_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    on!(cx, c => sqlx::query(sql).bind(scope_id).bind(implied_id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Names of the roles that grant a scope directly, and of scopes that imply it.
pub async fn scope_usage(cx: &mut Cx<'_>, scope_id: &str) -> Result<(Vec<String>, Vec<String>)> {
    let roles_sql = "SELECT r.name FROM role_scopes rs JOIN roles r ON r.id = rs.role_id WHERE rs.scope_id = $1 ORDER BY r.name";
    let impl_sql = "SELECT s.name FROM scope_implies e JOIN scopes s ON s.id = e.scope_id WHERE e.implied_id = $1 ORDER BY s.name";
    let roles: Vec<String> =
        on!(cx, c => sqlx::query_scalar(roles_sql).bind(scope_id).fetch_all(&mut *c).await?);
    let implied_by: Vec<String> =
        on!(cx, c => sqlx::query_scalar(impl_sql).bind(scope_id).fetch_all(&mut *c).await?);
    Ok((roles, implied_by))
}

// ---------------------------------------------------------------- roles

const ROLE_COLS: &str =
    "id, name, description, is_default, all_scopes, builtin, created_at, version";

pub async fn roles(cx: &mut Cx<'_>) -> Result<Vec<RoleRow>> {
    let sql = format!("SELECT {ROLE_COLS} FROM roles ORDER BY name_norm");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *c).await?))
}

pub async fn role_by_name(cx: &mut Cx<'_>, name: &str) -> Result<Option<RoleRow>> {
    let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE name_norm = $1 OR id = $2");
    Ok(
        on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(name.to_lowercase()).bind(name).fetch_optional(&mut *c).await?),
    )
}

pub async fn role_by_id(cx: &mut Cx<'_>, id: &str) -> Result<Option<RoleRow>> {
    let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE id = $1");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *c).await?))
}

pub async fn default_role(cx: &mut Cx<'_>) -> Result<Option<RoleRow>> {
    let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE is_default");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).fetch_optional(&mut *c).await?))
}

pub async fn insert_role(cx: &mut Cx<'_>, r: &RoleRow) -> Result<()> {
    let sql = "INSERT INTO roles (id, name, name_norm, description, is_default, all_scopes, builtin, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)";
    on!(cx, c => sqlx::query(sql).bind(&r.id).bind(&r.name).bind(r.name.to_lowercase()).bind(&r.description)
        .bind(r.is_default).bind(r.all_scopes).bind(r.builtin).bind(r.created_at).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Bumps a role's version if it matches (optimistic concurrency); false when stale.
pub async fn touch_role(cx: &mut Cx<'_>, id: &str, version: i64) -> Result<bool> {
    let sql = "UPDATE roles SET version = version + 1 WHERE id = $1 AND version = $2";
    let n = on!(cx, c => sqlx::query(sql).bind(id).bind(version).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Makes `id` the only default role.
pub async fn set_default_role(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => {
        sqlx::query("UPDATE roles SET is_default = FALSE, version = version + 1 WHERE is_default AND id <> $1").bind(id).execute(&mut *c).await?;
        sqlx::query("UPDATE roles SET is_default = TRUE, version = version + 1 WHERE id = $1 AND NOT is_default").bind(id).execute(&mut *c).await?;
    });
    Ok(())
}

pub async fn delete_role(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM roles WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Scope names granted directly to a role.
pub async fn role_scope_names(cx: &mut Cx<'_>, role_id: &str) -> Result<Vec<String>> {
    let sql = "SELECT s.name FROM role_scopes rs JOIN scopes s ON s.id = rs.scope_id WHERE rs.role_id = $1 ORDER BY s.name";
    Ok(on!(cx, c => sqlx::query_scalar(sql).bind(role_id).fetch_all(&mut *c).await?))
}

pub async fn grant_role_scope(cx: &mut Cx<'_>, role_id: &str, scope_id: &str) -> Result<bool> {
    let sql = "INSERT INTO role_scopes (role_id, scope_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    let n = on!(cx, c => sqlx::query(sql).bind(role_id).bind(scope_id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn revoke_role_scope(cx: &mut Cx<'_>, role_id: &str, scope_id: &str) -> Result<bool> {
    let sql = "DELETE FROM role_scopes WHERE role_id = $1 AND scope_id = $2";
    let n = on!(cx, c => sqlx::query(sql).bind(role_id).bind(scope_id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn role_user_count(cx: &mut Cx<'_>, role_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM users WHERE role_id = $1";
    Ok(on!(cx, c => sqlx::query_scalar(sql).bind(role_id).fetch_one(&mut *c).await?))
}

pub async fn reassign_role_users(cx: &mut Cx<'_>, from: &str, to: &str, now: i64) -> Result<u64> {
    let sql =
        "UPDATE users SET role_id = $1, updated_at = $2, version = version + 1 WHERE role_id = $3";
    Ok(
        on!(cx, c => sqlx::query(sql).bind(to).bind(now).bind(from).execute(&mut *c).await?.rows_affected()),
    )
}

// ---------------------------------------------------------------- users

const USER_SELECT: &str = "SELECT u.id, u.domain_id, d.name AS domain, u.email, u.name, u.status, u.role_id, r.name AS role, \
     u.api_access, u.affiliate_id, (u.password_hash IS NOT NULL) AS has_password, u.created_at, u.updated_at, u.version \
     FROM users u JOIN domains d ON d.id = u.domain_id JOIN roles r ON r.id = u.role_id";

pub async fn user_by_id(cx: &mut Cx<'_>, id: &str) -> Result<Option<UserRow>> {
    let sql = format!("{USER_SELECT} WHERE u.id = $1");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *c).await?))
}

/// Users with this email (case-insensitive), optionally within one domain.
pub async fn users_by_email(
    cx: &mut Cx<'_>,
    email_norm: &str,
    domain_id: Option<&str>,
) -> Result<Vec<UserRow>> {
    let sql = format!(
        "{USER_SELECT} WHERE u.email_norm = $1 AND ($2 IS NULL OR u.domain_id = $2) ORDER BY d.name"
    );
    let d = domain_id.map(str::to_string);
    Ok(
        on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(email_norm).bind(d).fetch_all(&mut *c).await?),
    )
}

pub async fn user_by_affiliate(cx: &mut Cx<'_>, affiliate_id: &str) -> Result<Option<UserRow>> {
    let sql = format!("{USER_SELECT} WHERE u.affiliate_id = $1");
    Ok(
        on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(affiliate_id).fetch_optional(&mut *c).await?),
    )
}

/// The stored password hash of a user, if any.
pub async fn user_password_hash(cx: &mut Cx<'_>, id: &str) -> Result<Option<String>> {
    let sql = "SELECT password_hash FROM users WHERE id = $1";
    let v: Option<Option<String>> =
        on!(cx, c => sqlx::query_scalar(sql).bind(id).fetch_optional(&mut *c).await?);
    Ok(v.flatten())
}

/// A new user as stored.
#[derive(Debug, Clone, Serialize)]
pub struct NewUserRow {
    pub id: String,
    pub domain_id: String,
    pub email: String,
    pub email_norm: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub status: String,
    pub role_id: String,
    pub api_access: String,
    pub affiliate_id: String,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
}

/// A new station as stored.
#[derive(Debug, Clone, Serialize)]
pub struct NewStationRow {
    pub id: String,
    pub domain_id: String,
    pub user_id: String,
    pub name: String,
    pub eu_vat_id: Option<String>,
    pub registration_number: Option<String>,
    pub country_code: Option<String>,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
}

fn user_vals(u: &NewUserRow) -> Vec<Val> {
    vec![
        u.id.clone().into(),
        u.domain_id.clone().into(),
        u.email.clone().into(),
        u.email_norm.clone().into(),
        u.name.clone().into(),
        u.password_hash.clone().into(),
        u.status.clone().into(),
        u.role_id.clone().into(),
        u.api_access.clone().into(),
        u.affiliate_id.clone().into(),
        u.created_at.into(),
        u.created_at.into(),
    ]
}

fn station_vals(s: &NewStationRow) -> Vec<Val> {
    vec![
        s.id.clone().into(),
        s.domain_id.clone().into(),
        s.user_id.clone().into(),
        s.name.clone().into(),
        s.eu_vat_id.clone().into(),
        s.registration_number.clone().into(),
        s.country_code.clone().into(),
        s.created_at.into(),
    ]
}

const USER_INSERT: &str = "INSERT INTO users (id, domain_id, email, email_norm, name, password_hash, status, role_id, api_access, affiliate_id, created_at, updated_at) VALUES ";
const STATION_INSERT: &str = "INSERT INTO stations (id, domain_id, user_id, name, eu_vat_id, registration_number, country_code, created_at) VALUES ";

/// Inserts users in multi-row statements (batched for speed on SQLite).
pub async fn insert_users(cx: &mut Cx<'_>, users: &[NewUserRow]) -> Result<()> {
    insert_rows(cx, USER_INSERT, users, user_vals).await
}

/// Inserts stations in multi-row statements.
pub async fn insert_stations(cx: &mut Cx<'_>, stations: &[NewStationRow]) -> Result<()> {
    insert_rows(cx, STATION_INSERT, stations, station_vals).await
}

/// Inserts `rows` with `head` (`INSERT INTO t (cols) VALUES `), 500 rows a statement,
/// each row's values given by `vals` in the order of `head`'s columns.
pub async fn insert_rows<T>(
    cx: &mut Cx<'_>,
    head: &str,
    rows: &[T],
    vals: impl Fn(&T) -> Vec<Val>,
) -> Result<()> {
    let engine = cx.engine();
    for chunk in rows.chunks(500) {
        let mut q = Sql::new(engine, head);
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind_row(vals(r));
        }
        exec(cx, q).await?;
    }
    Ok(())
}

/// Executes a dynamic statement; returns rows affected.
pub async fn exec(cx: &mut Cx<'_>, q: Sql) -> Result<u64> {
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query(AssertSqlSafe(text)), args).execute(&mut *c).await?.rows_affected()),
    )
}

/// Sets fields of a user with optimistic concurrency; false when the version is stale.
pub async fn update_user_fields(
    cx: &mut Cx<'_>,
    id: &str,
    version: i64,
    now: i64,
    sets: &[(&str, Val)],
) -> Result<bool> {
    let mut q = Sql::new(cx.engine(), "UPDATE users SET ");
    for (col, v) in sets {
        q.push(col).push(" = ").bind(v.clone()).push(", ");
    }
    q.push("updated_at = ")
        .bind(now)
        .push(", version = version + 1 WHERE id = ")
        .bind(id);
    q.push(" AND version = ").bind(version);
    Ok(exec(cx, q).await? == 1)
}

pub async fn delete_user(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Filter and paging for user lists.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Restrict to these domain ids (None = all).
    pub domains: Option<Vec<String>>,
    pub role_id: Option<String>,
    pub status: Option<String>,
    /// Waiting for API access: active, and access not enabled yet.
    pub pending: bool,
    /// Prefix of the email or substring of email/name.
    pub search: Option<String>,
    pub sort: UserSort,
    pub desc: bool,
    /// Keyset cursor: (sort value, id) of the last row seen.
    pub after: Option<(Val, String)>,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserSort {
    #[default]
    Email,
    Created,
}

impl UserSort {
    fn col(&self) -> &'static str {
        match self {
            UserSort::Email => "u.email_norm",
            UserSort::Created => "u.created_at",
        }
    }
}

fn user_filters(q: &mut Sql, f: &UserQuery) {
    if let Some(ds) = &f.domains {
        q.push(" AND u.domain_id ")
            .bind_in(ds.iter().map(Val::from));
    }
    if let Some(r) = &f.role_id {
        q.push(" AND u.role_id = ").bind(r);
    }
    if let Some(s) = &f.status {
        q.push(" AND u.status = ").bind(s);
    }
    if f.pending {
        // Literals, as the partial index `users_waiting` states them (a bound value
        // would not let SQLite's planner use it).
        q.push(" AND u.api_access = 'pending' AND u.status = 'active'");
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        user_search_filter(q, s);
    }
}

/// Text search: a prefix of the email served by the email index, or, from three
/// characters on, any substring of email or name served by the trigram index.
pub(crate) fn user_search_filter(q: &mut Sql, text: &str) {
    let norm = text.to_lowercase();
    if norm.chars().count() < 3 {
        // A range over the (already lowercase) email index: `LIKE` is case-insensitive
        // and so cannot use the index's binary order.
        q.push(" AND u.email_norm >= ").bind(norm.clone());
        if let Some(upper) = prefix_upper_bound(&norm) {
            q.push(" AND u.email_norm < ").bind(upper);
        }
        return;
    }
    match q.engine() {
        Engine::Sqlite => {
            // FTS5 trigram phrase query; double quotes escaped by doubling.
            let phrase = format!("\"{}\"", norm.replace('"', "\"\""));
            // `+` keeps SQLite walking the sort index and probing the matches, so the
            // cost is bounded by the table, not by (matches × sort).
            q.push(" AND +u.rowid IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ")
                .bind(phrase)
                .push(")");
        }
        Engine::Postgres => {
            let pat = format!("%{}%", super::sql::like_escape(&norm));
            q.push(" AND (u.email_norm || ' ' || lower(u.name)) LIKE ")
                .bind(pat)
                .push(" ESCAPE '\\'");
        }
    }
}

/// The smallest string greater than every string with this prefix (None if unbounded).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// One page of users and the cursor for the next page.
pub async fn list_users(cx: &mut Cx<'_>, f: &UserQuery) -> Result<Vec<UserRow>> {
    let mut q = Sql::new(cx.engine(), USER_SELECT);
    q.push(" WHERE 1 = 1");
    user_filters(&mut q, f);
    let col = f.sort.col();
    let (cmp, dir) = if f.desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some((v, id)) = &f.after {
        q.push(&format!(" AND ({col}, u.id) {cmp} ("))
            .bind(v.clone())
            .push(", ")
            .bind(id)
            .push(")");
    }
    q.push(&format!(" ORDER BY {col} {dir}, u.id {dir} LIMIT "))
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

pub async fn count_users(cx: &mut Cx<'_>, f: &UserQuery) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM users u WHERE 1 = 1");
    user_filters(&mut q, f);
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

// ---------------------------------------------------------------- stations

const STATION_SELECT: &str = "SELECT s.id, s.domain_id, d.name AS domain, s.user_id, u.email AS user_email, s.name, s.eu_vat_id, \
     s.registration_number, s.country_code, s.created_at, s.version \
     FROM stations s JOIN domains d ON d.id = s.domain_id JOIN users u ON u.id = s.user_id";

pub async fn station_by_id(cx: &mut Cx<'_>, id: &str) -> Result<Option<StationRow>> {
    let sql = format!("{STATION_SELECT} WHERE s.id = $1");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *c).await?))
}

#[derive(Debug, Clone, Default)]
pub struct StationQuery {
    pub domains: Option<Vec<String>>,
    pub user_id: Option<String>,
    pub search: Option<String>,
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

pub async fn list_stations(cx: &mut Cx<'_>, f: &StationQuery) -> Result<Vec<StationRow>> {
    let mut q = Sql::new(cx.engine(), STATION_SELECT);
    q.push(" WHERE 1 = 1");
    station_filters(&mut q, f);
    if let Some((at, id)) = &f.after {
        q.push(" AND (s.created_at, s.id) > (")
            .bind(*at)
            .push(", ")
            .bind(id)
            .push(")");
    }
    q.push(" ORDER BY s.created_at, s.id LIMIT ")
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

fn station_filters(q: &mut Sql, f: &StationQuery) {
    if let Some(ds) = &f.domains {
        q.push(" AND s.domain_id ")
            .bind_in(ds.iter().map(Val::from));
    }
    if let Some(u) = &f.user_id {
        q.push(" AND s.user_id = ").bind(u);
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = format!("{}%", super::sql::like_escape(&s.to_lowercase()));
        q.push(" AND (lower(s.name) LIKE ")
            .bind(pat.clone())
            .push(" ESCAPE '\\' OR lower(s.eu_vat_id) LIKE ");
        q.bind(pat).push(" ESCAPE '\\')");
    }
}

pub async fn count_stations(cx: &mut Cx<'_>, f: &StationQuery) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM stations s WHERE 1 = 1");
    station_filters(&mut q, f);
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

pub async fn user_station_count(cx: &mut Cx<'_>, user_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM stations WHERE user_id = $1";
    Ok(on!(cx, c => sqlx::query_scalar(sql).bind(user_id).fetch_one(&mut *c).await?))
}

pub async fn delete_station(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM stations WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

// ---------------------------------------------------------------- operators

pub async fn operator_by_account(cx: &mut Cx<'_>, account: &str) -> Result<Option<OperatorRow>> {
    let sql = "SELECT id, account, role, created_at, version FROM operators WHERE account = $1";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(account).fetch_optional(&mut *c).await?))
}

pub async fn operators(cx: &mut Cx<'_>) -> Result<Vec<OperatorRow>> {
    let sql = "SELECT id, account, role, created_at, version FROM operators ORDER BY account";
    Ok(on!(cx, c => sqlx::query_as(sql).fetch_all(&mut *c).await?))
}

pub async fn operator_count(cx: &mut Cx<'_>) -> Result<i64> {
    Ok(on!(cx, c => sqlx::query_scalar("SELECT COUNT(*) FROM operators").fetch_one(&mut *c).await?))
}

/// Domains an operator is limited to, as (id, name); empty = all domains.
pub async fn operator_domains(cx: &mut Cx<'_>, operator_id: &str) -> Result<Vec<(String, String)>> {
    let sql = "SELECT d.id, d.name FROM operator_domains od JOIN domains d ON d.id = od.domain_id WHERE od.operator_id = $1 ORDER BY d.name";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(operator_id).fetch_all(&mut *c).await?))
}

pub async fn insert_operator(
    cx: &mut Cx<'_>,
    o: &OperatorRow,
    domain_ids: &[String],
) -> Result<()> {
    let sql =
        "INSERT INTO operators (id, account, role, created_at, version) VALUES ($1, $2, $3, $4, 1)";
    on!(cx, c => sqlx::query(sql).bind(&o.id).bind(&o.account).bind(&o.role).bind(o.created_at).execute(&mut *c).await?.rows_affected());
    for d in domain_ids {
        on!(cx, c => sqlx::query("INSERT INTO operator_domains (operator_id, domain_id) VALUES ($1, $2)").bind(&o.id).bind(d).execute(&mut *c).await?.rows_affected());
    }
    Ok(())
}

pub async fn delete_operator(cx: &mut Cx<'_>, id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM operators WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn admin_count(cx: &mut Cx<'_>) -> Result<i64> {
    let sql = "SELECT COUNT(*) FROM operators o WHERE o.role = 'admin' AND NOT EXISTS (SELECT 1 FROM operator_domains od WHERE od.operator_id = o.id)";
    Ok(on!(cx, c => sqlx::query_scalar(sql).fetch_one(&mut *c).await?))
}

pub async fn set_scope_description(
    cx: &mut Cx<'_>,
    id: &str,
    description: &str,
    version: i64,
) -> Result<bool> {
    let sql =
        "UPDATE scopes SET description = $1, version = version + 1 WHERE id = $2 AND version = $3";
    let n = on!(cx, c => sqlx::query(sql).bind(description).bind(id).bind(version).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn clear_implications(cx: &mut Cx<'_>, scope_id: &str) -> Result<()> {
    on!(cx, c => sqlx::query("DELETE FROM scope_implies WHERE scope_id = $1").bind(scope_id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Which of these normalised emails already exist in a domain.
pub async fn existing_emails(
    cx: &mut Cx<'_>,
    domain_id: &str,
    emails: &[String],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in emails.chunks(500) {
        let mut q = Sql::new(
            cx.engine(),
            "SELECT email_norm FROM users WHERE domain_id = ",
        );
        q.bind(domain_id)
            .push(" AND email_norm ")
            .bind_in(chunk.iter().map(Val::from));
        let Sql { text, args, .. } = q;
        let found: Vec<String> = on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?);
        out.extend(found);
    }
    Ok(out)
}

/// Users of a domain (for provisioning and export), ordered by email.
pub async fn users_of_domain(cx: &mut Cx<'_>, domain_id: &str) -> Result<Vec<UserRow>> {
    let sql = format!("{USER_SELECT} WHERE u.domain_id = $1 ORDER BY u.email_norm");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(domain_id).fetch_all(&mut *c).await?))
}

/// Sets a station's identifiers if it is still at `version`; false when it changed
/// meanwhile (or is gone).
pub async fn edit_station(
    cx: &mut Cx<'_>,
    id: &str,
    version: i64,
    eu_vat_id: Option<&str>,
    rn: Option<&str>,
    country: Option<&str>,
) -> Result<bool> {
    let sql = "UPDATE stations SET eu_vat_id = $1, registration_number = $2, country_code = $3, version = version + 1 WHERE id = $4 AND version = $5";
    let n = on!(cx, c => sqlx::query(sql).bind(eu_vat_id).bind(rn).bind(country).bind(id).bind(version).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

pub async fn update_station(cx: &mut Cx<'_>, s: &NewStationRow) -> Result<()> {
    let sql = "UPDATE stations SET eu_vat_id = $1, registration_number = $2, country_code = $3, version = version + 1 WHERE id = $4";
    on!(cx, c => sqlx::query(sql).bind(&s.eu_vat_id).bind(&s.registration_number).bind(&s.country_code).bind(&s.id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

pub async fn set_role_description(cx: &mut Cx<'_>, id: &str, description: &str) -> Result<()> {
    let sql = "UPDATE roles SET description = $1, version = version + 1 WHERE id = $2";
    on!(cx, c => sqlx::query(sql).bind(description).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// Every station of a domain (for provisioning).
pub async fn stations_of_domain(cx: &mut Cx<'_>, domain_id: &str) -> Result<Vec<StationRow>> {
    let sql = format!("{STATION_SELECT} WHERE s.domain_id = $1");
    Ok(on!(cx, c => sqlx::query_as(AssertSqlSafe(sql)).bind(domain_id).fetch_all(&mut *c).await?))
}

/// Locks a user's row for the rest of the transaction (PostgreSQL `FOR UPDATE`; SQLite
/// write transactions are already exclusive) and returns its current status, so a
/// concurrent disable cannot slip between a status check and a token insert.
pub async fn lock_user_status(cx: &mut Cx<'_>, id: &str) -> Result<Option<String>> {
    Ok(match cx {
        Cx::Sqlite(c) => {
            sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **c)
                .await?
        }
        Cx::Pg(c) => {
            sqlx::query_scalar("SELECT status FROM users WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut **c)
                .await?
        }
    })
}
