//! Bulk sign-ups from CSV: `email,name[,role][,station]`, one transaction per batch,
//! with a per-row report of what was refused and why.

use super::directory::{check_assignable, find_domain, prepare_user};
use super::scopes::{effective_scopes, find_role};
use super::{Actor, Keyward, Need, audit_event};
use crate::error::{Error, Result, Step};
use crate::model::{self, OperatorRole};
use crate::store::audit::OwnedEvent;
use crate::store::directory::{self as dir, RoleRow};
use serde::Serialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// A row that was not imported.
#[derive(Debug, Clone, Serialize)]
pub struct RowError {
    pub line: u64,
    pub email: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub created: u64,
    pub dry_run: bool,
    pub errors: Vec<RowError>,
}

/// Rows per transaction.
const BATCH: usize = 2000;

/// The columns of an import file.
const COLUMNS: &str = "email,name[,role][,station]";

/// One data row of an import file as read (fields trimmed, empty optional fields
/// `None`), not yet validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// 1-based line of the row in the file.
    pub line: u64,
    pub email: String,
    pub name: Option<String>,
    pub role: Option<String>,
    pub station: Option<String>,
}

/// Reads the rows of an import file: one item per data row, skipping blank rows and an
/// `email,...` header on the first row. Rows that are not valid CSV (e.g. not UTF-8) or
/// have more than four columns come out as a [`RowError`] with their line. Never panics,
/// whatever the bytes.
pub fn read_rows(csv_text: &[u8]) -> impl Iterator<Item = std::result::Result<CsvRow, RowError>> {
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text);
    let mut first = true;
    rdr.into_records().filter_map(move |rec| {
        let is_first = std::mem::take(&mut first);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                return Some(Err(RowError {
                    line: e.position().map_or(0, |p| p.line()),
                    email: String::new(),
                    reason: format!("not valid CSV: {e}"),
                }));
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let email = rec.get(0).unwrap_or("").to_string();
        if (is_first && email.eq_ignore_ascii_case("email")) || rec.iter().all(str::is_empty) {
            return None;
        }
        if rec.len() > 4 {
            return Some(Err(RowError {
                line,
                email,
                reason: format!("{} columns; expected {COLUMNS}", rec.len()),
            }));
        }
        let field = |i: usize| rec.get(i).filter(|f| !f.is_empty()).map(str::to_string);
        Some(Ok(CsvRow {
            line,
            name: field(1),
            role: field(2),
            station: field(3),
            email,
        }))
    })
}

impl Keyward {
    /// Imports users from CSV text. Valid rows go in (batch by batch); invalid rows are
    /// reported with their line numbers and change nothing. With `dry_run` nothing is written.
    pub async fn user_import(
        &self,
        actor: &Actor,
        domain: &str,
        role: Option<&str>,
        csv_text: &[u8],
        dry_run: bool,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportReport> {
        actor.require(Need::Support)?;
        let (a, domain, role) = (actor.clone(), domain.to_string(), role.map(str::to_string));
        // Resolve the domain and roles once.
        let (d, default_role, roles) = self
            .read(async move |cx| {
                let d = find_domain(cx, &a, &domain).await?;
                a.require_domain(&d.id, &d.name)?;
                let default_role = match &role {
                    Some(r) => find_role(cx, r).await?,
                    None => dir::default_role(cx).await?.ok_or_else(|| {
                        Error::blocked(
                            "no default role is set",
                            Step::SetDefaultRole { other: false },
                        )
                    })?,
                };
                // Rows without a role get this one: as `user add` would.
                check_assignable(cx, &a, &default_role).await?;
                let mut roles: HashMap<String, (RoleRow, bool)> = HashMap::new();
                for r in dir::roles(cx).await? {
                    let has_admin = effective_scopes(cx, &r).await?.contains("admin");
                    roles.insert(r.name.to_lowercase(), (r, has_admin));
                }
                Ok((d, default_role, roles))
            })
            .await?;
        let may_assign_admin = actor.role == OperatorRole::Admin;
        let mut report = ImportReport {
            dry_run,
            ..Default::default()
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut batch = Vec::new();
        let now = model::now();
        for row in read_rows(csv_text) {
            report.rows += 1;
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    report.errors.push(e);
                    continue;
                }
            };
            let (line, email) = (row.line, row.email.as_str());
            let fail = |reason: String| RowError {
                line,
                email: email.to_string(),
                reason,
            };
            let role_row = match row.role.as_deref() {
                None => &default_role,
                Some(r) => match roles.get(&r.to_lowercase()) {
                    None => {
                        report.errors.push(fail(format!("unknown role {r:?}")));
                        continue;
                    }
                    Some((_, true)) if !may_assign_admin => {
                        report.errors.push(fail(format!(
                            "role {r} includes admin; only an admin operator may assign it"
                        )));
                        continue;
                    }
                    Some((role_row, _)) => role_row,
                },
            };
            match prepare_user(
                &d.id,
                &role_row.id,
                email,
                row.name.as_deref(),
                None,
                row.station.as_deref(),
                now,
            ) {
                Err(e) => report.errors.push(fail(e.to_string())),
                Ok(p) => {
                    if !seen.insert(p.user.email_norm.clone()) {
                        report
                            .errors
                            .push(fail("duplicate of an earlier row in this file".into()));
                        continue;
                    }
                    batch.push((line, p, role_row.name.clone()));
                }
            }
            if batch.len() >= BATCH {
                self.import_batch(
                    actor,
                    &d.id,
                    std::mem::take(&mut batch),
                    dry_run,
                    &mut report,
                )
                .await?;
                progress(report.rows);
            }
        }
        self.import_batch(actor, &d.id, batch, dry_run, &mut report)
            .await?;
        progress(report.rows);
        report.errors.sort_by_key(|e| e.line);
        if !dry_run && report.created > 0 {
            let (a, r) = (actor.clone(), report.clone());
            let did = d.id.clone();
            self.write(async move |cx| {
                audit_event(
                    cx,
                    &a,
                    "user.import",
                    &d.name,
                    Some(&did),
                    json!({"rows": r.rows, "created": r.created, "errors": r.errors.len()}),
                )
                .await
            })
            .await?;
        }
        Ok(report)
    }

    /// Inserts a batch of users with their first stations, each audited as a
    /// `user.add` (with the role and station, as `user add` is), in one transaction.
    async fn import_batch(
        &self,
        actor: &Actor,
        domain_id: &str,
        batch: Vec<(u64, super::directory::PreparedUser, String)>,
        dry_run: bool,
        report: &mut ImportReport,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let did = domain_id.to_string();
        let (who, origin) = (actor.label(), actor.origin.clone());
        let (created, errors) = self
            .write(async move |cx| {
                let emails: Vec<String> = batch
                    .iter()
                    .map(|(_, p, _)| p.user.email_norm.clone())
                    .collect();
                let existing: HashSet<String> = dir::existing_emails(cx, &did, &emails)
                    .await?
                    .into_iter()
                    .collect();
                let mut errors = Vec::new();
                let mut users = Vec::new();
                let mut stations = Vec::new();
                let mut events = Vec::new();
                let at = model::now();
                for (line, p, role) in batch {
                    if existing.contains(&p.user.email_norm) {
                        errors.push(RowError {
                            line,
                            email: p.user.email.clone(),
                            reason: "a user with this email already exists in the domain".into(),
                        });
                    } else {
                        events.push(OwnedEvent {
                            at,
                            actor: who.clone(),
                            origin: origin.clone(),
                            action: "user.add".into(),
                            target: p.user.email.clone(),
                            domain_id: Some(did.clone()),
                            details:
                                json!({"role": role, "station": p.station.name, "import": true})
                                    .to_string(),
                        });
                        users.push(p.user);
                        stations.push(p.station);
                    }
                }
                if !dry_run {
                    dir::insert_users(cx, &users).await?;
                    dir::insert_stations(cx, &stations).await?;
                    crate::store::audit::append_many(cx, events).await?;
                }
                Ok((users.len() as u64, errors))
            })
            .await?;
        report.created += created;
        report.errors.extend(errors);
        Ok(())
    }
}
