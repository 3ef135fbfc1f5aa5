//! Reading and verifying the audit log.

use super::{Actor, Keyward};
use crate::error::Result;
use crate::model;
use crate::store::audit::{self, AuditQuery, AuditRow, GENESIS, chain_hash};
use serde::Serialize;

/// An audit event as shown to operators.
#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub origin: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

impl From<AuditRow> for AuditView {
    fn from(r: AuditRow) -> Self {
        AuditView {
            seq: r.seq,
            at: model::rfc3339(r.at),
            actor: r.actor,
            origin: r.origin,
            action: r.action,
            target: r.target,
            details: serde_json::from_str(&r.details)
                .unwrap_or(serde_json::Value::String(r.details)),
        }
    }
}

/// Result of walking the hash chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub events: i64,
    pub ok: bool,
    /// Sequence number of the first event that does not verify.
    pub first_bad_seq: Option<i64>,
    /// 1-based position (in chain order) of that event.
    pub first_bad_position: Option<i64>,
    pub problem: Option<String>,
}

impl Keyward {
    /// Events newest first; domain-limited operators see only their domains' events.
    pub async fn audit_list(&self, actor: &Actor, mut q: AuditQuery) -> Result<Vec<AuditView>> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = Some(ids);
        }
        let rows = self.read(async move |cx| audit::list(cx, &q).await).await?;
        Ok(rows.into_iter().map(AuditView::from).collect())
    }

    /// Walks the whole chain and reports the first broken link.
    pub async fn audit_verify(&self, _actor: &Actor) -> Result<ChainReport> {
        self.read(async |cx| {
            let mut prev_hash = GENESIS.to_string();
            let mut prev_seq = 0i64;
            let mut position = 0i64;
            loop {
                let page = audit::chain_page(cx, prev_seq, 5000).await?;
                if page.is_empty() {
                    break;
                }
                for row in page {
                    position += 1;
                    let problem = if row.seq != prev_seq + 1 {
                        Some(format!("expected event {} after {}, found {} (an event was removed or reordered)", prev_seq + 1, prev_seq, row.seq))
                    } else if row.prev_hash != prev_hash {
                        Some("its link to the previous event does not match (an earlier event was changed, removed or reordered)".to_string())
                    } else if chain_hash(&row) != row.hash {
                        Some("its content does not match its hash (the event was edited)".to_string())
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        return Ok(ChainReport {
                            events: position,
                            ok: false,
                            first_bad_seq: Some(row.seq),
                            first_bad_position: Some(position),
                            problem: Some(p),
                        });
                    }
                    prev_hash = row.hash;
                    prev_seq = row.seq;
                }
            }
            Ok(ChainReport {
                events: position,
                ok: true,
                first_bad_seq: None,
                first_bad_position: None,
                problem: None,
            })
        })
        .await
    }
}
