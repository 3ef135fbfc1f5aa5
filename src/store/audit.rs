//! The append-only, hash-chained audit log.

use super::{Cx, Sql, Val};
use crate::error::Result;
use crate::{bind_all, on};
use serde::Serialize;
use sqlx::AssertSqlSafe;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub origin: String,
    pub action: String,
    pub target: String,
    pub domain_id: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The event as hashed: a fixed field order makes the serialisation canonical.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: i64,
    actor: &'a str,
    origin: &'a str,
    action: &'a str,
    target: &'a str,
    domain_id: Option<&'a str>,
    details: &'a str,
    prev_hash: &'a str,
}

/// Hash of an event chained over the previous event's hash (SHA-256, hex).
pub fn chain_hash(row: &AuditRow) -> String {
    let c = Canonical {
        seq: row.seq,
        at: row.at,
        actor: &row.actor,
        origin: &row.origin,
        action: &row.action,
        target: &row.target,
        domain_id: row.domain_id.as_deref(),
        details: &row.details,
        prev_hash: &row.prev_hash,
    };
    let bytes = serde_json::to_vec(&c).expect("serialising plain data cannot fail");
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash that precedes the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append.
pub struct NewEvent<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub origin: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub domain_id: Option<&'a str>,
    pub details: String,
}

/// Appends an event inside the caller's transaction, chaining it to the last one.
pub async fn append(cx: &mut Cx<'_>, ev: NewEvent<'_>) -> Result<i64> {
    if let Cx::Pg(c) = cx {
        // Serialise appenders so two transactions cannot chain onto the same event.
        sqlx::query("SELECT pg_advisory_xact_lock(7451032002)")
            .execute(&mut **c)
            .await?;
    }
    let last: Option<(i64, String)> = on!(cx, c => sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *c).await?);
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let mut row = AuditRow {
        seq,
        at: ev.at,
        actor: ev.actor.to_string(),
        origin: ev.origin.to_string(),
        action: ev.action.to_string(),
        target: ev.target.to_string(),
        domain_id: ev.domain_id.map(str::to_string),
        details: ev.details,
        prev_hash,
        hash: String::new(),
    };
    row.hash = chain_hash(&row);
    let sql = "INSERT INTO audit_events (seq, at, actor, origin, action, target, domain_id, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    on!(cx, c => sqlx::query(sql).bind(row.seq).bind(row.at).bind(&row.actor).bind(&row.origin).bind(&row.action)
        .bind(&row.target).bind(&row.domain_id).bind(&row.details).bind(&row.prev_hash).bind(&row.hash).execute(&mut *c).await?.rows_affected());
    Ok(seq)
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: Option<i64>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Restrict to events of these domains (None = all, including global events).
    pub domains: Option<Vec<String>>,
    /// Keyset cursor: only events with a smaller seq.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Events newest first.
pub async fn list(cx: &mut Cx<'_>, f: &AuditQuery) -> Result<Vec<AuditRow>> {
    let mut q = Sql::new(
        cx.engine(),
        "SELECT seq, at, actor, origin, action, target, domain_id, details, prev_hash, hash FROM audit_events WHERE 1 = 1",
    );
    if let Some(s) = f.since {
        q.push(" AND at >= ").bind(s);
    }
    if let Some(a) = &f.actor {
        let pat = format!("{}%", super::sql::like_escape(a));
        q.push(" AND actor LIKE ").bind(pat).push(" ESCAPE '\\'");
    }
    if let Some(t) = &f.target {
        let pat = format!("%{}%", super::sql::like_escape(t));
        q.push(" AND target LIKE ").bind(pat).push(" ESCAPE '\\'");
    }
    if let Some(ds) = &f.domains {
        q.push(" AND domain_id ").bind_in(ds.iter().map(Val::from));
    }
    if let Some(b) = f.before_seq {
        q.push(" AND seq < ").bind(b);
    }
    q.push(" ORDER BY seq DESC LIMIT ")
        .bind(f.limit.clamp(1, 100_000));
    let Sql { text, args, .. } = q;
    Ok(on!(cx, c => bind_all!(sqlx::query_as(AssertSqlSafe(text)), args).fetch_all(&mut *c).await?))
}

/// Events in chain order, from `after_seq` (exclusive), `limit` at a time.
pub async fn chain_page(cx: &mut Cx<'_>, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>> {
    let sql = "SELECT seq, at, actor, origin, action, target, domain_id, details, prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2";
    Ok(on!(cx, c => sqlx::query_as(sql).bind(after_seq).bind(limit).fetch_all(&mut *c).await?))
}

/// An owned event, for batched appends.
#[derive(Debug, Clone)]
pub struct OwnedEvent {
    pub at: i64,
    pub actor: String,
    pub origin: String,
    pub action: String,
    pub target: String,
    pub domain_id: Option<String>,
    pub details: String,
}

/// Appends many events in order, chained, with multi-row inserts.
pub async fn append_many(cx: &mut Cx<'_>, events: Vec<OwnedEvent>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if let Cx::Pg(c) = cx {
        sqlx::query("SELECT pg_advisory_xact_lock(7451032002)")
            .execute(&mut **c)
            .await?;
    }
    let last: Option<(i64, String)> = on!(cx, c => sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *c).await?);
    let (mut seq, mut prev) = last.unwrap_or((0, GENESIS.to_string()));
    let mut rows = Vec::with_capacity(events.len());
    for ev in events {
        seq += 1;
        let mut row = AuditRow {
            seq,
            at: ev.at,
            actor: ev.actor,
            origin: ev.origin,
            action: ev.action,
            target: ev.target,
            domain_id: ev.domain_id,
            details: ev.details,
            prev_hash: prev,
            hash: String::new(),
        };
        row.hash = chain_hash(&row);
        prev = row.hash.clone();
        rows.push(row);
    }
    super::directory::insert_rows(
        cx,
        "INSERT INTO audit_events (seq, at, actor, origin, action, target, domain_id, details, prev_hash, hash) VALUES ",
        &rows,
        |r| {
            vec![
                r.seq.into(),
                r.at.into(),
                r.actor.clone().into(),
                r.origin.clone().into(),
                r.action.clone().into(),
                r.target.clone().into(),
                r.domain_id.clone().into(),
                r.details.clone().into(),
                r.prev_hash.clone().into(),
                r.hash.clone().into(),
            ]
        },
    )
    .await
}
