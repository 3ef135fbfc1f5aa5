//! Read-only queries the console needs beyond the directory lists: dashboard counts,
//! token records, and keyset pages that can run in both directions (so `G` jumps to
//! the end of any list without walking it).

use super::{Cx, Sql, Val};
use crate::error::Result;
use crate::{bind_all, on};
use serde::Serialize;
use sqlx::AssertSqlSafe;

fn domain_filter(q: &mut Sql, col: &str, domains: &Option<Vec<String>>) {
    if let Some(ds) = domains {
        q.push(&format!(" AND {col} "))
            .bind_in(ds.iter().map(Val::from));
    }
}

async fn scalar(cx: &mut Cx<'_>, q: Sql) -> Result<i64> {
    let Sql { text, args, .. } = q;
    Ok(
        on!(cx, c => bind_all!(sqlx::query_scalar(AssertSqlSafe(text)), args).fetch_one(&mut *c).await?),
    )
}

// ---------------------------------------------------------------- tokens

/// A token record joined with its user's email and domain name.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct TokenRow {
    pub jti: String,
    pub domain_id: String,
    pub domain: String,
    pub user_id: String,
    pub user_email: String,
    pub client_id: String,
    pub scopes: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// How it was issued (`client_credentials`, `console`, `refresh`, …).
    pub source: String,
    /// The signing key's id.
    pub kid: String,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenSort {
    #[default]
    Issued,
    Expires,
}

impl TokenSort {
    fn col(&self) -> &'static str {
        match self {
            TokenSort::Issued => "t.issued_at",
            TokenSort::Expires => "t.expires_at",
        }
    }
}

/// Filter and keyset paging for token lists.
#[derive(Debug, Clone, Default)]
pub struct TokenQuery {
    pub domains: Option<Vec<String>>,
    /// A user's email prefix or email/name substring, a jti prefix, or the client id
    /// prefix of an API key or app.
    pub search: Option<String>,
    /// Only unrevoked tokens expiring in `[now, until)`.
    pub expiring: Option<(i64, i64)>,
    pub sort: TokenSort,
    pub desc: bool,
    /// Keyset cursor: (sort value, jti) of the last row seen.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

const TOKEN_SELECT: &str = "SELECT t.jti, t.domain_id, d.name AS domain, t.user_id, COALESCE(u.email, '') AS user_email, \
     t.client_id, t.scopes, t.issued_at, t.expires_at, t.revoked_at, t.source, t.kid, t.revoked_by, t.revoke_reason \
     FROM tokens t JOIN domains d ON d.id = t.domain_id LEFT JOIN users u ON u.id = t.user_id";

/// A token search names a user (email prefix, or email/name substring from three
/// characters), a jti prefix, or the client id prefix of an API key or app.
///
/// How SQLite serves it depends on how many tokens match, probed through the indexes
/// first: a few thousand are gathered through `tokens_user`/`tokens_key`/the primary
/// key and sorted; more are found by walking the sort index and probing each row
/// (`+` keeps the planner from gathering them all). PostgreSQL's planner makes that
/// choice itself from its statistics.
///
/// A search that matches nothing that way but looks like the end of a jti, as lists
/// show it (`…` and the jti's last characters), matches the jti's end instead: no
/// index serves that, so the sort index is walked and each jti compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Gather,
    Walk,
    Tail(String),
}

/// The end of a jti, lowercased, when `s` can be one: four to 36 hex digits and
/// dashes, perhaps after the `…` (or `...`) that lists put before it.
fn jti_tail(s: &str) -> Option<String> {
    let t = s
        .strip_prefix('…')
        .or_else(|| s.strip_prefix("..."))
        .unwrap_or(s)
        .trim();
    ((4..=36).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| t.to_ascii_lowercase())
}

/// Matches a search may gather and sort; beyond it, pages walk the sort index.
const GATHER_MAX: i64 = 5_000;

fn token_filters(q: &mut Sql, f: &TokenQuery, plan: &Plan) {
    let search = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let sqlite = q.engine() == super::Engine::Sqlite;
    match (search, plan) {
        // Gathering: the domain only filters what the search indexes found.
        (Some(_), Plan::Gather) if sqlite => domain_filter(q, "+t.domain_id", &f.domains),
        _ => domain_filter(q, "t.domain_id", &f.domains),
    }
    if let Plan::Tail(tail) = plan {
        // Hex digits and dashes only: nothing to escape.
        q.push(" AND t.jti LIKE ").bind(format!("%{tail}"));
    } else if let Some(s) = search {
        let user = if *plan == Plan::Walk && sqlite {
            "+t.user_id"
        } else {
            "t.user_id"
        };
        q.push(&format!(
            " AND ({user} IN (SELECT u.id FROM users u WHERE 1 = 1"
        ));
        domain_filter(q, "u.domain_id", &f.domains);
        super::directory::user_search_filter(q, s);
        q.push(") OR ");
        super::sql::prefix_match(q, "t.jti", s);
        q.push(" OR t.key_id IN (SELECT k.id FROM api_keys k WHERE ");
        super::sql::prefix_match(q, "k.client_id", s);
        q.push(") OR t.app_id IN (SELECT a.id FROM apps a WHERE ");
        super::sql::prefix_match(q, "a.client_id", s);
        q.push("))");
    }
    if let Some((from, until)) = f.expiring {
        q.push(" AND t.revoked_at IS NULL AND t.expires_at >= ")
            .bind(from)
            .push(" AND t.expires_at < ")
            .bind(until);
    }
}

/// Probes how many tokens a search matches: on SQLite up to [`GATHER_MAX`] + 1, to
/// choose between gathering and walking; on PostgreSQL, whether any does when the
/// search could be a jti's end ([`Plan::Tail`]).
async fn token_plan(cx: &mut Cx<'_>, f: &TokenQuery) -> Result<Plan> {
    let Some(search) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Plan::Gather);
    };
    let sqlite = cx.engine() == super::Engine::Sqlite;
    let tail = jti_tail(search);
    if !sqlite && tail.is_none() {
        return Ok(Plan::Gather);
    }
    let mut q = Sql::new(
        cx.engine(),
        "SELECT COUNT(*) FROM (SELECT 1 FROM tokens t WHERE 1 = 1",
    );
    token_filters(&mut q, f, &Plan::Gather);
    let probe = if sqlite { GATHER_MAX + 1 } else { 1 };
    q.push(" LIMIT ").bind(probe).push(") AS probe");
    let found = scalar(cx, q).await?;
    Ok(match tail {
        Some(tail) if found == 0 => Plan::Tail(tail),
        _ if found > GATHER_MAX => Plan::Walk,
        _ => Plan::Gather,
    })
}

pub async fn list_tokens(cx: &mut Cx<'_>, f: &TokenQuery) -> Result<Vec<TokenRow>> {
    let plan = token_plan(cx, f).await?;
    let mut q = Sql::new(cx.engine(), TOKEN_SELECT);
    q.push(" WHERE 1 = 1");
    token_filters(&mut q, f, &plan);
    let col = f.sort.col();
    let (cmp, dir) = if f.desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some((v, id)) = &f.after {
        q.push(&format!(" AND ({col}, t.jti) {cmp} ("))
            .bind(*v)
            .push(", ")
            .bind(id)
            .push(")");
    }
    q.push(&format!(" ORDER BY {col} {dir}, t.jti {dir} LIMIT "))
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// Counts matching tokens; a search is counted through its indexes (a jti's end
/// by a scan, when nothing else matches).
pub async fn count_tokens(cx: &mut Cx<'_>, f: &TokenQuery) -> Result<i64> {
    let plan = match token_plan(cx, f).await? {
        Plan::Walk => Plan::Gather,
        p => p,
    };
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM tokens t WHERE 1 = 1");
    token_filters(&mut q, f, &plan);
    scalar(cx, q).await
}

/// Unrevoked, unexpired tokens.
pub async fn count_active_tokens(
    cx: &mut Cx<'_>,
    domains: &Option<Vec<String>>,
    now: i64,
) -> Result<i64> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT COUNT(*) FROM tokens t WHERE t.revoked_at IS NULL AND t.expires_at > ",
    );
    q.bind(now);
    domain_filter(&mut q, "t.domain_id", domains);
    scalar(cx, q).await
}

// ---------------------------------------------------------------- stations

/// The orders of the console's station list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StationSort {
    #[default]
    Created,
    /// Case-blind, by the database's `lower` (the row's `name_key`).
    Name,
}

impl StationSort {
    fn col(&self) -> &'static str {
        match self {
            StationSort::Created => "s.created_at",
            StationSort::Name => "lower(s.name)",
        }
    }
}

/// A station page in either direction, ordered by (sort value, id).
#[derive(Debug, Clone, Default)]
pub struct StationPage {
    pub domains: Option<Vec<String>>,
    /// Prefix of the name or EU VAT id.
    pub search: Option<String>,
    pub sort: StationSort,
    pub desc: bool,
    /// Keyset cursor: (sort value, id) of the last row seen.
    pub after: Option<(Val, String)>,
    pub limit: i64,
}

fn station_filters(q: &mut Sql, f: &StationPage) {
    domain_filter(q, "s.domain_id", &f.domains);
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pat = format!("{}%", super::sql::like_escape(&s.to_lowercase()));
        q.push(" AND (lower(s.name) LIKE ")
            .bind(pat.clone())
            .push(" ESCAPE '\\' OR lower(s.eu_vat_id) LIKE ")
            .bind(pat)
            .push(" ESCAPE '\\')");
    }
}

pub async fn station_page(
    cx: &mut Cx<'_>,
    f: &StationPage,
) -> Result<Vec<super::directory::StationRow>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT s.id, s.domain_id, d.name AS domain, s.user_id, u.email AS user_email, s.name, s.eu_vat_id, \
         s.registration_number, s.country_code, s.created_at, s.version, lower(s.name) AS name_key \
         FROM stations s JOIN domains d ON d.id = s.domain_id JOIN users u ON u.id = s.user_id WHERE 1 = 1",
    );
    station_filters(&mut q, f);
    let col = f.sort.col();
    let (cmp, dir) = if f.desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some((v, id)) = &f.after {
        // The bound on the sort value alone lets SQLite seek in an expression's index
        // (it walks one from the start for a row value over an expression).
        q.push(&format!(" AND {col} {cmp}= "))
            .bind(v.clone())
            .push(&format!(" AND ({col}, s.id) {cmp} ("))
            .bind(v.clone())
            .push(", ")
            .bind(id)
            .push(")");
    }
    q.push(&format!(" ORDER BY {col} {dir}, s.id {dir} LIMIT "))
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

pub async fn station_page_count(cx: &mut Cx<'_>, f: &StationPage) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM stations s WHERE 1 = 1");
    station_filters(&mut q, f);
    scalar(cx, q).await
}

// ---------------------------------------------------------------- audit

/// An audit page in either direction by sequence number.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub domains: Option<Vec<String>>,
    /// Substring of the action or target, or prefix of the actor.
    pub search: Option<String>,
    /// Oldest first when true (the console shows newest first).
    pub ascending: bool,
    /// Keyset cursor: events strictly after this seq in the page's direction.
    pub after_seq: Option<i64>,
    pub limit: i64,
}

fn audit_filters(q: &mut Sql, f: &AuditPage) {
    domain_filter(q, "domain_id", &f.domains);
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let esc = super::sql::like_escape(s);
        // `revoke` finds `token.revoke` and `consent.revoke` (the action has no
        // index to serve a prefix anyway).
        q.push(" AND (action LIKE ")
            .bind(format!("%{esc}%"))
            .push(" ESCAPE '\\' OR actor LIKE ")
            .bind(format!("{esc}%"))
            .push(" ESCAPE '\\' OR target LIKE ")
            .bind(format!("%{esc}%"))
            .push(" ESCAPE '\\')");
    }
}

pub async fn audit_page(cx: &mut Cx<'_>, f: &AuditPage) -> Result<Vec<super::audit::AuditRow>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT seq, at, actor, origin, action, target, domain_id, details, prev_hash, hash FROM audit_events WHERE 1 = 1",
    );
    audit_filters(&mut q, f);
    let (cmp, dir) = if f.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some(s) = f.after_seq {
        q.push(&format!(" AND seq {cmp} ")).bind(s);
    }
    q.push(&format!(" ORDER BY seq {dir} LIMIT "))
        .bind(f.limit.clamp(1, 10_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

pub async fn audit_page_count(cx: &mut Cx<'_>, f: &AuditPage) -> Result<i64> {
    let mut q = Sql::new(cx.engine(), "SELECT COUNT(*) FROM audit_events WHERE 1 = 1");
    audit_filters(&mut q, f);
    scalar(cx, q).await
}
