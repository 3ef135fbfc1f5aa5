//! Declarative provisioning: `apply` makes the database match a TOML file (in one
//! transaction, audited, idempotent), `export` writes the current state in the same
//! format (never secrets).

use super::credentials::{narrow_scopes, validate_redirect_uri};
use super::directory::{find_domain, insert_domain, prepare_user};
use super::scopes::{ScopeGraph, effective_scopes, enforce_scopes};
use super::{Actor, Keyward, Need};
use crate::error::{Error, Result};
use crate::model::{
    self, CountryCode, Description, DisplayName, DomainName, EuVatId, RegistrationNumber, RoleName,
    ScopeName, Ttl, UserStatus,
};
use crate::store::credentials::{self as cred, Holders, KeyRow};
use crate::store::directory::{self as dir, NewStationRow, RoleRow, ScopeRow};
use crate::store::{Cx, Val};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use toml::Spanned;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<Spanned<DomainEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Spanned<ScopeEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Spanned<RoleEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Spanned<UserEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Spanned<KeyEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<Spanned<AppEntry>>,
    #[serde(default, skip_serializing_if = "Prune::is_empty")]
    pub prune: Prune,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DomainEntry {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Implied scopes; absent = leave as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implies: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Granted scopes; absent = leave as they are (roles with every scope take none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub email: String,
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<StationEntry>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StationEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eu_vat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub user: String,
    pub domain: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Expiry of a key created by this file (e.g. "90d"); existing keys keep theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// Expiry of a key created by this file as an RFC 3339 time (what `export`
    /// writes for a key that expires); existing keys keep theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// `false`: grants of a key created by this file return no refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<bool>,
    /// `true`: a key created by this file skips the token service's rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_exempt: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    pub name: String,
    pub domain: String,
    pub owner: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Which kinds are pruned: entities of that kind not named in the file are removed
/// (users, keys and apps only within the file's domains).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    #[serde(default)]
    pub scopes: bool,
    #[serde(default)]
    pub roles: bool,
    #[serde(default)]
    pub users: bool,
    #[serde(default)]
    pub keys: bool,
    #[serde(default)]
    pub apps: bool,
}

impl Prune {
    fn is_empty(&self) -> bool {
        !(self.scopes || self.roles || self.users || self.keys || self.apps)
    }
}

/// One planned change: `+` create, `~` update, `-` remove.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub op: char,
    pub kind: &'static str,
    pub name: String,
    pub detail: String,
}

/// A secret of a key or app created by apply, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedSecret {
    pub kind: &'static str,
    pub name: String,
    pub owner: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// What was done as the file says but is probably not what its author meant (a
    /// new key whose `expires_at` has passed), each naming its place in the file.
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub secrets: Vec<CreatedSecret>,
    /// With [`ApplyMode::UnlessSecrets`]: how many credentials the file would have
    /// created (their secrets shown once), for which the run was rolled back.
    #[serde(skip)]
    pub withheld: usize,
}

/// Whether [`Keyward::apply`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// Do the work and roll it back: the plan.
    DryRun,
    Commit,
    /// Commit unless the file creates credentials, whose secrets the caller has no
    /// place for (then roll back, as a dry run, and say how many).
    UnlessSecrets,
}

/// Where in the file an entry is, for messages: `env.toml:12 users[3] (alice@x)`.
struct Loc<'a> {
    file: &'a str,
    text: &'a str,
}

impl Loc<'_> {
    fn at<T>(
        &self,
        kind: &str,
        i: usize,
        name: &str,
        span: std::ops::Range<usize>,
        r: Result<T>,
    ) -> Result<T> {
        r.map_err(|e| Error::Invalid {
            field: "provisioning file",
            value: self.place(kind, i, name, span),
            accepted: e.to_string(),
        })
    }

    /// `env.toml:12 keys[3] (ci)`.
    fn place(&self, kind: &str, i: usize, name: &str, span: std::ops::Range<usize>) -> String {
        let (line, _) = position(self.text, span.start);
        format!("{}:{line} {kind}[{i}] ({name})", self.file)
    }
}

/// The line and column (from 1, in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().map(|s| s.trim().to_string()).collect()
}

fn words(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(" ")
}

/// When a key created from `k` expires: `expires_in` from now, or `expires_at`.
fn key_expiry(k: &KeyEntry) -> Result<Option<i64>> {
    match (&k.expires_in, &k.expires_at) {
        (Some(_), Some(at)) => Err(Error::invalid(
            "expires_at",
            at.clone(),
            "either expires_in or expires_at, not both",
        )),
        (Some(ttl), None) => Ok(Some(model::now() + Ttl::parse("expires_in", ttl)?.secs())),
        (None, Some(at)) => {
            time::OffsetDateTime::parse(at.trim(), &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| {
                    Error::invalid(
                        "expires_at",
                        at.clone(),
                        "an RFC 3339 time such as 2027-06-30T00:00:00Z",
                    )
                })
        }
        (None, None) => Ok(None),
    }
}

fn scope_names(v: &[String]) -> Result<Vec<ScopeName>> {
    v.iter().map(|s| ScopeName::parse(s)).collect()
}

/// Parses a provisioning file; errors name the file, the line and column, and what is
/// wrong there (not the parser's multi-line excerpt of the source, which flattened
/// into one line is hard to read and, for a long line, as long as the line).
pub fn parse(file: &str, text: &str) -> Result<EnvFile> {
    toml::from_str::<EnvFile>(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let (line, column) = position(text, s.start);
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        Error::Invalid {
            field: "provisioning file",
            value: file.to_string(),
            accepted: format!("{at}{}", e.message().trim().replace('\n', " ")),
        }
    })
}

struct Apply<'a> {
    actor: &'a Actor,
    file: &'a str,
    report: ApplyReport,
    secrets_key: Option<std::sync::Arc<super::keyring::Secrets>>,
    /// Audit events, appended (chained, in order) in the same transaction at the end.
    events: Vec<crate::store::audit::OwnedEvent>,
}

impl Apply<'_> {
    fn change(
        &mut self,
        op: char,
        kind: &'static str,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.report.changes.push(Change {
            op,
            kind,
            name: name.into(),
            detail: detail.into(),
        });
    }

    /// Buffers an audit event; all are appended, chained, before the commit.
    async fn audit(
        &mut self,
        _cx: &mut Cx<'_>,
        action: &str,
        target: &str,
        domain_id: Option<&str>,
        mut details: serde_json::Value,
    ) -> Result<()> {
        details["file"] = json!(self.file);
        self.events.push(crate::store::audit::OwnedEvent {
            at: model::now(),
            actor: self.actor.label(),
            origin: self.actor.origin.clone(),
            action: action.to_string(),
            target: target.to_string(),
            domain_id: domain_id.map(str::to_string),
            details: details.to_string(),
        });
        Ok(())
    }
}

impl Keyward {
    /// Makes the database match the file, in one transaction. A dry run does the same
    /// work and rolls it back, so the plan shown is exactly what a real run does.
    pub async fn apply(
        &self,
        actor: &Actor,
        file: &str,
        text: &str,
        mode: ApplyMode,
    ) -> Result<ApplyReport> {
        let dry_run = mode == ApplyMode::DryRun;
        actor.require(Need::Global)?;
        let env = parse(file, text)?;
        let needs_secrets = !env.keys.is_empty() || !env.apps.is_empty();
        let secrets_key = if needs_secrets {
            Some(self.secrets().await?)
        } else {
            None
        };
        let mut tx = self.begin().await?;
        let mut report = {
            let mut cx = tx.cx();
            let mut ap = Apply {
                actor,
                file,
                report: ApplyReport {
                    dry_run,
                    ..Default::default()
                },
                secrets_key,
                events: Vec::new(),
            };
            apply_all(&mut cx, &mut ap, &env, &Loc { file, text }).await?;
            crate::store::audit::append_many(&mut cx, std::mem::take(&mut ap.events)).await?;
            ap.report
        };
        if mode == ApplyMode::UnlessSecrets && !report.secrets.is_empty() {
            report.withheld = report.secrets.len();
            report.dry_run = true;
        }
        if report.dry_run {
            tx.rollback().await?;
            report.secrets.clear(); // never created
        } else {
            tx.commit().await?;
        }
        Ok(report)
    }

    /// The current state as apply's TOML file (never secrets), with a header comment
    /// naming the time. Domain-limited operators export only their domains.
    pub async fn export(&self, actor: &Actor, domain: Option<&str>) -> Result<String> {
        let env = self.export_state(actor, domain).await?;
        let body = toml::to_string(&env)
            .map_err(|e| Error::Database(format!("cannot write TOML: {e}")))?;
        Ok(format!(
            "# Keyward state exported {} (no secrets). Apply with: keyward apply -f FILE\n\n{body}",
            model::rfc3339(model::now())
        ))
    }

    /// The current state as the document [`Keyward::export`] writes (never secrets),
    /// for other serialisations (the CLI's `--json`).
    pub async fn export_state(&self, actor: &Actor, domain: Option<&str>) -> Result<EnvFile> {
        let (a, domain) = (actor.clone(), domain.map(str::to_string));
        self.read(async move |cx| {
            let domains = match &domain {
                Some(d) => vec![find_domain(cx, &a, d).await?],
                None => dir::domains(cx)
                    .await?
                    .into_iter()
                    .filter(|d| a.can_see(&d.id))
                    .collect(),
            };
            let g = ScopeGraph::load(cx).await?;
            let mut env = EnvFile::default();
            let sp = |v| Spanned::new(0..0, v);
            for d in &domains {
                env.domains.push(sp(DomainEntry {
                    name: d.name.clone(),
                }));
            }
            for s in dir::scopes(cx).await? {
                let implies: Vec<String> = g
                    .implies
                    .get(&s.name)
                    .map(|v| v.iter().cloned().collect())
                    .unwrap_or_default();
                env.scopes.push(Spanned::new(
                    0..0,
                    ScopeEntry {
                        name: s.name,
                        description: Some(s.description).filter(|d| !d.is_empty()),
                        implies: Some(implies),
                    },
                ));
            }
            for r in dir::roles(cx).await? {
                let scopes = if r.all_scopes {
                    None
                } else {
                    Some(dir::role_scope_names(cx, &r.id).await?)
                };
                env.roles.push(Spanned::new(
                    0..0,
                    RoleEntry {
                        name: r.name,
                        description: Some(r.description).filter(|d| !d.is_empty()),
                        scopes,
                        default: r.is_default,
                    },
                ));
            }
            for d in &domains {
                // One query per table and domain, not per user.
                let mut stations: HashMap<String, Vec<crate::store::directory::StationRow>> =
                    HashMap::new();
                for st in dir::stations_of_domain(cx, &d.id).await? {
                    stations.entry(st.user_id.clone()).or_default().push(st);
                }
                let mut keys: HashMap<String, Vec<KeyRow>> = HashMap::new();
                for k in cred::keys_of_domain(cx, &d.id).await? {
                    keys.entry(k.user_id.clone()).or_default().push(k);
                }
                for u in dir::users_of_domain(cx, &d.id).await? {
                    let mut st = stations.remove(&u.id).unwrap_or_default();
                    st.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                    env.users.push(Spanned::new(
                        0..0,
                        UserEntry {
                            email: u.email.clone(),
                            domain: d.name.clone(),
                            name: Some(u.name.clone()).filter(|n| !n.is_empty()),
                            role: Some(u.role.clone()),
                            status: Some(u.status.clone()),
                            stations: st
                                .into_iter()
                                .map(|s| StationEntry {
                                    name: s.name,
                                    eu_vat_id: s.eu_vat_id,
                                    rn: s.registration_number,
                                    country: s.country_code,
                                })
                                .collect(),
                        },
                    ));
                    for k in keys.remove(&u.id).unwrap_or_default() {
                        env.keys.push(Spanned::new(
                            0..0,
                            KeyEntry {
                                user: u.email.clone(),
                                domain: d.name.clone(),
                                name: k.name,
                                scopes: Some(
                                    k.scopes.split_whitespace().map(str::to_string).collect(),
                                ),
                                expires_in: None,
                                expires_at: k.expires_at.map(model::rfc3339),
                                refresh: (!k.issue_refresh).then_some(false),
                                rate_exempt: k.rate_exempt.then_some(true),
                            },
                        ));
                    }
                }
            }
            let ids: Vec<String> = domains.iter().map(|d| d.id.clone()).collect();
            for app in cred::list_apps(cx, Some(&ids)).await? {
                env.apps.push(Spanned::new(
                    0..0,
                    AppEntry {
                        name: app.name,
                        domain: app.domain,
                        owner: app.owner_email,
                        redirect_uris: app
                            .redirect_uris
                            .split_whitespace()
                            .map(str::to_string)
                            .collect(),
                        scopes: app.scopes.split_whitespace().map(str::to_string).collect(),
                    },
                ));
            }
            Ok(env)
        })
        .await
    }
}

async fn apply_all(
    cx: &mut Cx<'_>,
    ap: &mut Apply<'_>,
    env: &EnvFile,
    loc: &Loc<'_>,
) -> Result<()> {
    // ---- domains
    let mut file_domains: BTreeMap<String, String> = BTreeMap::new();
    for (i, e) in env.domains.iter().enumerate() {
        let name = loc.at(
            "domains",
            i,
            &e.get_ref().name,
            e.span(),
            DomainName::parse(&e.get_ref().name),
        )?;
        let row = match dir::domain_by_name(cx, name.as_str()).await? {
            Some(r) => r,
            None => {
                ap.change('+', "domain", name.as_str(), "");
                insert_domain(cx, ap.actor, &name, json!({"file": ap.file})).await?
            }
        };
        file_domains.insert(row.name.clone(), row.id.clone());
    }
    // ---- scopes: create, then descriptions and implications, then check for cycles.
    let listed_scopes: BTreeSet<String> = env
        .scopes
        .iter()
        .map(|s| s.get_ref().name.trim().to_string())
        .collect();
    for (i, e) in env.scopes.iter().enumerate() {
        let s = e.get_ref();
        let name = loc.at("scopes", i, &s.name, e.span(), ScopeName::parse(&s.name))?;
        let desc = loc.at(
            "scopes",
            i,
            &s.name,
            e.span(),
            Description::parse(s.description.as_deref().unwrap_or("")),
        )?;
        if dir::scope_by_name(cx, name.as_str()).await?.is_none() {
            let row = ScopeRow {
                id: model::new_id(),
                name: name.to_string(),
                description: desc.to_string(),
                builtin: false,
                created_at: model::now(),
                version: 1,
            };
            dir::insert_scope(cx, &row).await?;
            ap.change('+', "scope", name.as_str(), desc.as_str());
            ap.audit(
                cx,
                "scope.add",
                name.as_str(),
                None,
                json!({"description": desc.as_str()}),
            )
            .await?;
        }
    }
    let before = ScopeGraph::load(cx).await?;
    for (i, e) in env.scopes.iter().enumerate() {
        let s = e.get_ref();
        let row = dir::scope_by_name(cx, s.name.trim())
            .await?
            .expect("created above");
        if let Some(d) = &s.description
            && d.trim() != row.description
            && !ap
                .report
                .changes
                .iter()
                .any(|c| c.kind == "scope" && c.op == '+' && c.name == row.name)
        {
            dir::set_scope_description(cx, &row.id, d.trim(), row.version).await?;
            ap.change(
                '~',
                "scope",
                &row.name,
                format!("description: {:?} → {:?}", row.description, d.trim()),
            );
            ap.audit(
                cx,
                "scope.edit",
                &row.name,
                None,
                json!({"description": d.trim()}),
            )
            .await?;
        }
        if let Some(imp) = &s.implies {
            let want = set(imp);
            let have: BTreeSet<String> = before.implies.get(&row.name).cloned().unwrap_or_default();
            if want != have {
                let names = loc.at("scopes", i, &s.name, e.span(), scope_names(imp))?;
                let targets = loc.at(
                    "scopes",
                    i,
                    &s.name,
                    e.span(),
                    super::scopes::find_scopes(cx, &names).await,
                )?;
                dir::clear_implications(cx, &row.id).await?;
                for t in &targets {
                    dir::insert_implication(cx, &row.id, &t.id).await?;
                }
                match ap
                    .report
                    .changes
                    .iter_mut()
                    .find(|c| c.kind == "scope" && c.op == '+' && c.name == row.name)
                {
                    Some(created) => {
                        created.detail = format!("implies [{}]  {}", join(&want), created.detail)
                            .trim()
                            .to_string()
                    }
                    None => ap.change(
                        '~',
                        "scope",
                        &row.name,
                        format!("implies: [{}] → [{}]", join(&have), join(&want)),
                    ),
                }
                ap.audit(cx, "scope.edit", &row.name, None, json!({"implies": want}))
                    .await?;
            }
        }
    }
    let g = ScopeGraph::load(cx).await?;
    for (i, e) in env.scopes.iter().enumerate() {
        let name = e.get_ref().name.trim();
        let next: BTreeSet<String> = g.implies.get(name).cloned().unwrap_or_default();
        let mut without = g.clone();
        without.implies.remove(name);
        if let Some(path) = without.cycle_with(name, &next) {
            return loc.at(
                "scopes",
                i,
                name,
                e.span(),
                Err(Error::Refused(format!(
                    "implication cycle: {}",
                    path.join(" → ")
                ))),
            );
        }
    }
    // ---- roles
    let defaults: Vec<&str> = env
        .roles
        .iter()
        .filter(|r| r.get_ref().default)
        .map(|r| r.get_ref().name.as_str())
        .collect();
    if defaults.len() > 1 {
        return Err(Error::Invalid {
            field: "provisioning file",
            value: ap.file.to_string(),
            accepted: format!(
                "exactly one default role; the file marks {}",
                defaults.join(", ")
            ),
        });
    }
    let mut listed_roles = BTreeSet::new();
    for (i, e) in env.roles.iter().enumerate() {
        let r = e.get_ref();
        let name = loc.at("roles", i, &r.name, e.span(), RoleName::parse(&r.name))?;
        listed_roles.insert(name.normalized());
        let desc = loc.at(
            "roles",
            i,
            &r.name,
            e.span(),
            Description::parse(r.description.as_deref().unwrap_or("")),
        )?;
        let scopes = loc.at(
            "roles",
            i,
            &r.name,
            e.span(),
            scope_names(r.scopes.as_deref().unwrap_or(&[])),
        )?;
        let scope_rows = loc.at(
            "roles",
            i,
            &r.name,
            e.span(),
            super::scopes::find_scopes(cx, &scopes).await,
        )?;
        let row = match dir::role_by_name(cx, name.as_str()).await? {
            None => {
                loc.at(
                    "roles",
                    i,
                    &r.name,
                    e.span(),
                    super::scopes::refuse_look_alike_role(cx, &name).await,
                )?;
                let row = RoleRow {
                    id: model::new_id(),
                    name: name.to_string(),
                    description: desc.to_string(),
                    is_default: false,
                    all_scopes: false,
                    builtin: false,
                    created_at: model::now(),
                    version: 1,
                };
                dir::insert_role(cx, &row).await?;
                for s in &scope_rows {
                    dir::grant_role_scope(cx, &row.id, &s.id).await?;
                }
                let names: BTreeSet<String> = scope_rows.iter().map(|s| s.name.clone()).collect();
                ap.change('+', "role", &row.name, format!("scopes: {}", join(&names)));
                ap.audit(cx, "role.add", &row.name, None, json!({"scopes": names}))
                    .await?;
                row
            }
            Some(row) => {
                if let Some(want) = &r.scopes {
                    if row.all_scopes {
                        if !want.is_empty() {
                            return loc.at(
                                "roles",
                                i,
                                &r.name,
                                e.span(),
                                Err(Error::Refused(format!(
                                    "role {} has every scope; leave out `scopes`",
                                    row.name
                                ))),
                            );
                        }
                    } else {
                        let have: BTreeSet<String> = dir::role_scope_names(cx, &row.id)
                            .await?
                            .into_iter()
                            .collect();
                        let want = set(want);
                        if have != want {
                            for s in &scope_rows {
                                if !have.contains(&s.name) {
                                    dir::grant_role_scope(cx, &row.id, &s.id).await?;
                                }
                            }
                            for s in have.difference(&want) {
                                let sc = dir::scope_by_name(cx, s)
                                    .await?
                                    .expect("granted scope exists");
                                dir::revoke_role_scope(cx, &row.id, &sc.id).await?;
                            }
                            let allowed = effective_scopes(cx, &row).await?;
                            let n = enforce_scopes(
                                cx,
                                ap.actor,
                                Holders::Role(&row.id),
                                &allowed,
                                "role narrowed",
                            )
                            .await?;
                            ap.change(
                                '~',
                                "role",
                                &row.name,
                                format!(
                                    "scopes: {} → {}{}",
                                    join(&have),
                                    join(&want),
                                    if n.revoked_tokens + n.trimmed_keys > 0 {
                                        format!(" ({})", n.summary())
                                    } else {
                                        String::new()
                                    }
                                ),
                            );
                            ap.audit(cx, "role.edit", &row.name, None, json!({"scopes": want, "revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys})).await?;
                        }
                    }
                }
                if r.description.is_some() && desc.as_str() != row.description {
                    dir::set_role_description(cx, &row.id, desc.as_str()).await?;
                    ap.change(
                        '~',
                        "role",
                        &row.name,
                        format!("description: {:?} → {:?}", row.description, desc.as_str()),
                    );
                }
                row
            }
        };
        if r.default && !row.is_default {
            dir::set_default_role(cx, &row.id).await?;
            ap.change('~', "role", &row.name, "becomes the default role");
            ap.audit(cx, "role.default", &row.name, None, json!({}))
                .await?;
        }
    }
    // ---- users and stations. Each domain's users and stations are loaded once; new
    // users and stations are inserted in multi-row batches (a 100k-user file is one
    // pass, not 100k round trips).
    struct DomainState {
        row: crate::store::directory::DomainRow,
        users: HashMap<String, crate::store::directory::UserRow>,
        stations: HashMap<String, Vec<crate::store::directory::StationRow>>,
    }
    let mut states: HashMap<String, DomainState> = HashMap::new();
    let mut roles_by_name: HashMap<String, RoleRow> = HashMap::new();
    let default_role = dir::default_role(cx).await?;
    let mut seen_users: HashMap<(String, String), usize> = HashMap::new();
    let mut listed_user_ids: BTreeSet<String> = BTreeSet::new();
    let mut new_users = Vec::new();
    let mut new_stations = Vec::new();
    for (i, e) in env.users.iter().enumerate() {
        let u = e.get_ref();
        macro_rules! here {
            ($r:expr) => {
                loc.at("users", i, &u.email, e.span(), $r)
            };
        }
        let dkey = u.domain.trim().to_lowercase();
        if !states.contains_key(&dkey) {
            let row = here!(find_domain(cx, ap.actor, &u.domain).await)?;
            let users = dir::users_of_domain(cx, &row.id)
                .await?
                .into_iter()
                .map(|x| (x.email.to_lowercase(), x))
                .collect();
            let mut stations: HashMap<String, Vec<_>> = HashMap::new();
            for st in dir::stations_of_domain(cx, &row.id).await? {
                stations.entry(st.user_id.clone()).or_default().push(st);
            }
            states.insert(
                dkey.clone(),
                DomainState {
                    row,
                    users,
                    stations,
                },
            );
        }
        let st = states.get_mut(&dkey).expect("loaded");
        let d = st.row.clone();
        let email = here!(model::Email::parse(&u.email))?;
        if let Some(j) = seen_users.insert((d.id.clone(), email.normalized()), i) {
            return here!(Err(Error::Conflict(format!(
                "duplicate user: also users[{j}]"
            ))));
        }
        let status = here!(u.status.as_deref().map(UserStatus::parse).transpose())?;
        let role = match &u.role {
            Some(r) => {
                let k = r.trim().to_lowercase();
                if !roles_by_name.contains_key(&k) {
                    let row = here!(super::scopes::find_role(cx, r).await)?;
                    roles_by_name.insert(k.clone(), row);
                }
                Some(roles_by_name[&k].clone())
            }
            None => None,
        };
        let user_id = match st.users.get(&email.normalized()).cloned() {
            None => {
                let role = match role.clone().or_else(|| default_role.clone()) {
                    Some(r) => r,
                    None => return here!(Err(Error::Refused("no default role is set".into()))),
                };
                let first = u.stations.first().map(|s| s.name.as_str());
                let mut p = here!(prepare_user(
                    &d.id,
                    &role.id,
                    &u.email,
                    u.name.as_deref(),
                    None,
                    first,
                    model::now()
                ))?;
                if let Some(s) = status {
                    p.user.status = s.to_string();
                }
                if let Some(se) = u.stations.first() {
                    here!(fill_station(&mut p.station, se))?;
                }
                ap.change(
                    '+',
                    "user",
                    format!("{} ({})", p.user.email, d.name),
                    format!("role {}", role.name),
                );
                // Its first station comes with it: listed too, so that the plan names
                // every row the run creates.
                ap.change(
                    '+',
                    "station",
                    format!("{} of {}", p.station.name, p.user.email),
                    "",
                );
                ap.audit(
                    cx,
                    "user.add",
                    &p.user.email,
                    Some(&d.id),
                    json!({"role": role.name, "station": p.station.name}),
                )
                .await?;
                for se in u.stations.iter().skip(1) {
                    let mut row = NewStationRow {
                        id: model::new_id(),
                        domain_id: d.id.clone(),
                        user_id: p.user.id.clone(),
                        name: here!(DisplayName::parse_required("station name", &se.name))?
                            .to_string(),
                        eu_vat_id: None,
                        registration_number: None,
                        country_code: None,
                        created_at: model::now(),
                    };
                    here!(fill_station(&mut row, se))?;
                    ap.change(
                        '+',
                        "station",
                        format!("{} of {}", row.name, p.user.email),
                        "",
                    );
                    ap.audit(
                        cx,
                        "station.add",
                        &row.name,
                        Some(&row.domain_id),
                        json!({"user": p.user.email}),
                    )
                    .await?;
                    new_stations.push(row);
                }
                let id = p.user.id.clone();
                new_users.push(p.user);
                new_stations.push(p.station);
                id
            }
            Some(cur) => {
                let mut sets: Vec<(&str, Val)> = Vec::new();
                let mut what = Vec::new();
                if let Some(n) = &u.name {
                    let n = here!(DisplayName::parse(n))?;
                    if n.as_str() != cur.name {
                        what.push(format!("name {:?} → {:?}", cur.name, n.as_str()));
                        sets.push(("name", Val::from(n.as_str())));
                    }
                }
                if let Some(r) = &role
                    && r.id != cur.role_id
                {
                    let allowed = effective_scopes(cx, r).await?;
                    let n = enforce_scopes(
                        cx,
                        ap.actor,
                        Holders::User(&cur.id),
                        &allowed,
                        "role changed",
                    )
                    .await?;
                    let extra = if n.revoked_tokens + n.trimmed_keys > 0 {
                        format!(" ({})", n.summary())
                    } else {
                        String::new()
                    };
                    what.push(format!("role {} → {}{extra}", cur.role, r.name));
                    sets.push(("role_id", Val::from(&r.id)));
                }
                if let Some(s) = status
                    && s.as_str() != cur.status
                {
                    if s == UserStatus::Disabled {
                        let n = cred::revoke_tokens_of(
                            cx,
                            Holders::User(&cur.id),
                            model::now(),
                            &ap.actor.label(),
                            "user_disabled",
                        )
                        .await?;
                        what.push(format!(
                            "status {} → {} (revoked {n} token(s))",
                            cur.status, s
                        ));
                    } else {
                        what.push(format!("status {} → {}", cur.status, s));
                    }
                    sets.push(("status", Val::from(s.as_str())));
                }
                if !sets.is_empty() {
                    if !dir::update_user_fields(cx, &cur.id, cur.version, model::now(), &sets)
                        .await?
                    {
                        return Err(Error::stale("user", &cur.email));
                    }
                    ap.change(
                        '~',
                        "user",
                        format!("{} ({})", cur.email, d.name),
                        what.join("; "),
                    );
                    ap.audit(
                        cx,
                        "user.edit",
                        &cur.email,
                        Some(&d.id),
                        json!({"changes": what}),
                    )
                    .await?;
                }
                let have = st.stations.get(&cur.id).cloned().unwrap_or_default();
                for se in &u.stations {
                    let mut row = NewStationRow {
                        id: model::new_id(),
                        domain_id: cur.domain_id.clone(),
                        user_id: cur.id.clone(),
                        name: here!(DisplayName::parse_required("station name", &se.name))?
                            .to_string(),
                        eu_vat_id: None,
                        registration_number: None,
                        country_code: None,
                        created_at: model::now(),
                    };
                    here!(fill_station(&mut row, se))?;
                    match have.iter().find(|s| s.name == row.name) {
                        None => {
                            ap.change('+', "station", format!("{} of {}", row.name, cur.email), "");
                            ap.audit(
                                cx,
                                "station.add",
                                &row.name,
                                Some(&row.domain_id),
                                json!({"user": cur.email}),
                            )
                            .await?;
                            new_stations.push(row);
                        }
                        Some(s)
                            if (
                                s.eu_vat_id.as_deref(),
                                s.registration_number.as_deref(),
                                s.country_code.as_deref(),
                            ) != (
                                row.eu_vat_id.as_deref(),
                                row.registration_number.as_deref(),
                                row.country_code.as_deref(),
                            ) =>
                        {
                            row.id = s.id.clone();
                            dir::update_station(cx, &row).await?;
                            ap.change(
                                '~',
                                "station",
                                format!("{} of {}", row.name, cur.email),
                                "identifiers",
                            );
                            ap.audit(
                                cx,
                                "station.edit",
                                &row.name,
                                Some(&row.domain_id),
                                json!({"user": cur.email}),
                            )
                            .await?;
                        }
                        Some(_) => {}
                    }
                }
                cur.id
            }
        };
        listed_user_ids.insert(user_id);
    }
    dir::insert_users(cx, &new_users).await?;
    dir::insert_stations(cx, &new_stations).await?;
    // ---- keys
    let mut listed_keys: BTreeSet<String> = BTreeSet::new();
    for (i, e) in env.keys.iter().enumerate() {
        let k = e.get_ref();
        macro_rules! here {
            ($r:expr) => {
                loc.at("keys", i, &k.name, e.span(), $r)
            };
        }
        let u = here!(super::directory::find_user(cx, ap.actor, &k.user, Some(&k.domain)).await)?;
        let name = here!(DisplayName::parse_required("key name", &k.name))?;
        let g = ScopeGraph::load(cx).await?;
        let allowed = super::credentials::user_role_scopes(cx, &u.role_id).await?;
        let requested = here!(k.scopes.as_deref().map(scope_names).transpose())?;
        let granted = here!(narrow_scopes(
            &g,
            requested.as_deref(),
            &allowed,
            &format!("role {}", u.role)
        ))?;
        // The expiry applies only when the key is created, but the file is checked the
        // same whatever the database holds: a bad one fails on every run.
        let expires_at = here!(key_expiry(k))?;
        // Names need not be unique (a user may have two keys called "api key"): an
        // entry matches the first of that user's keys of its name that no earlier
        // entry matched, in creation order, as export lists them. So two entries
        // are two keys, and nothing a file names is mistaken for a key to prune.
        let existing = cred::keys_of_user(cx, &u.id)
            .await?
            .into_iter()
            .find(|x| x.name == name.as_str() && !listed_keys.contains(&x.id));
        match existing {
            None => {
                if expires_at.is_some_and(|t| t <= model::now()) {
                    ap.report.warnings.push(format!(
                        "{}: expires_at {} has passed: the key is created expired and \
                         issues no tokens",
                        loc.place("keys", i, &k.name, e.span()),
                        k.expires_at.as_deref().unwrap_or_default().trim()
                    ));
                }
                let (mut row, secret) = super::credentials::new_key_row(
                    &u,
                    name.as_str(),
                    &granted,
                    &[],
                    expires_at,
                    k.refresh.unwrap_or(true),
                    ap.secrets_key.as_ref().expect("loaded for keys").hash_key(),
                );
                row.rate_exempt = k.rate_exempt.unwrap_or(false);
                cred::insert_key(cx, &row).await?;
                super::directory::mark_api_enabled(cx, &u).await?;
                ap.change(
                    '+',
                    "key",
                    format!("{} of {}", row.name, u.email),
                    format!("{} scopes: {}", row.client_id, row.scopes),
                );
                ap.audit(
                    cx,
                    "key.create",
                    &row.client_id,
                    Some(&row.domain_id),
                    json!({"user": u.email, "scopes": row.scopes, "issue_refresh": row.issue_refresh, "rate_exempt": row.rate_exempt}),
                )
                .await?;
                ap.report.secrets.push(CreatedSecret {
                    kind: "key",
                    name: row.name.clone(),
                    owner: u.email.clone(),
                    client_id: row.client_id.clone(),
                    client_secret: secret.expose_secret().to_string(),
                });
                listed_keys.insert(row.id);
            }
            Some(cur) => {
                if k.scopes.is_some() && words(&cur.scopes) != granted {
                    cred::set_key_scopes(cx, &cur.id, &join(&granted)).await?;
                    ap.change(
                        '~',
                        "key",
                        format!("{} of {}", cur.name, u.email),
                        format!("scopes: {} → {}", cur.scopes, join(&granted)),
                    );
                    ap.audit(
                        cx,
                        "key.edit",
                        &cur.client_id,
                        Some(&cur.domain_id),
                        json!({"scopes": join(&granted)}),
                    )
                    .await?;
                }
                listed_keys.insert(cur.id);
            }
        }
    }
    // ---- apps
    let mut listed_apps: BTreeSet<String> = BTreeSet::new();
    for (i, e) in env.apps.iter().enumerate() {
        let a = e.get_ref();
        macro_rules! here {
            ($r:expr) => {
                loc.at("apps", i, &a.name, e.span(), $r)
            };
        }
        let owner =
            here!(super::directory::find_user(cx, ap.actor, &a.owner, Some(&a.domain)).await)?;
        let name = here!(DisplayName::parse_required("app name", &a.name))?;
        if a.redirect_uris.is_empty() {
            return here!(Err(Error::invalid(
                "redirect_uris",
                "",
                "at least one redirect URI"
            )));
        }
        let uris: Vec<String> = here!(
            a.redirect_uris
                .iter()
                .map(|u| validate_redirect_uri(u))
                .collect()
        )?;
        let names = here!(scope_names(&a.scopes))?;
        let rows = here!(super::scopes::find_scopes(cx, &names).await)?;
        let g = ScopeGraph::load(cx).await?;
        let scopes = g.closure(rows.iter().map(|r| r.name.as_str()));
        // As with keys, an entry matches an app of its name that no earlier entry
        // matched, the owner's own first.
        let existing = cred::list_apps(cx, Some(std::slice::from_ref(&owner.domain_id)))
            .await?
            .into_iter()
            .filter(|x| x.name == name.as_str() && !listed_apps.contains(&x.id))
            .min_by_key(|x| x.owner_id != owner.id);
        match existing {
            None => {
                let (row, secret) = super::credentials::new_app_row(
                    &owner,
                    name.as_str(),
                    &scopes,
                    &uris,
                    ap.secrets_key.as_ref().expect("loaded for apps").hash_key(),
                );
                cred::insert_app(cx, &row).await?;
                ap.change(
                    '+',
                    "app",
                    format!("{} ({})", row.name, row.domain),
                    format!("{} scopes: {}", row.client_id, row.scopes),
                );
                ap.audit(
                    cx,
                    "app.create",
                    &row.client_id,
                    Some(&row.domain_id),
                    json!({"name": row.name}),
                )
                .await?;
                ap.report.secrets.push(CreatedSecret {
                    kind: "app",
                    name: row.name.clone(),
                    owner: owner.email.clone(),
                    client_id: row.client_id.clone(),
                    client_secret: secret.expose_secret().to_string(),
                });
                listed_apps.insert(row.id);
            }
            Some(cur) => {
                let (s, r) = (join(&scopes), uris.join(" "));
                if s != cur.scopes || r != cur.redirect_uris {
                    cred::update_app(cx, &cur.id, &s, &r).await?;
                    ap.change(
                        '~',
                        "app",
                        format!("{} ({})", cur.name, cur.domain),
                        format!("scopes: {s}; redirect URIs: {r}"),
                    );
                    ap.audit(
                        cx,
                        "app.edit",
                        &cur.client_id,
                        Some(&cur.domain_id),
                        json!({"scopes": s, "redirect_uris": r}),
                    )
                    .await?;
                }
                listed_apps.insert(cur.id);
            }
        }
    }
    // ---- pruning (only kinds the file asks for; users, keys, apps within its domains)
    let domain_ids: Vec<String> = {
        let mut ids: BTreeSet<String> = file_domains.values().cloned().collect();
        for e in &env.users {
            if let Some(d) =
                dir::domain_by_name(cx, &e.get_ref().domain.trim().to_lowercase()).await?
            {
                ids.insert(d.id);
            }
        }
        ids.into_iter().collect()
    };
    if env.prune.apps {
        for app in cred::list_apps(cx, Some(&domain_ids)).await? {
            if !listed_apps.contains(&app.id) {
                let n = cred::revoke_tokens_where(
                    cx,
                    "app_id",
                    &app.id,
                    None,
                    model::now(),
                    &ap.actor.label(),
                    "revoked",
                )
                .await?;
                cred::delete_app(cx, &app.id).await?;
                ap.change(
                    '-',
                    "app",
                    format!("{} ({})", app.name, app.domain),
                    format!("revokes {n} token(s)"),
                );
                ap.audit(
                    cx,
                    "app.rm",
                    &app.client_id,
                    Some(&app.domain_id),
                    json!({"revoked_tokens": n}),
                )
                .await?;
            }
        }
    }
    if env.prune.keys || env.prune.users {
        for did in &domain_ids {
            for u in dir::users_of_domain(cx, did).await? {
                let keep_user = listed_user_ids.contains(&u.id) || !env.prune.users;
                if !keep_user {
                    let n = cred::revoke_tokens_of(
                        cx,
                        Holders::User(&u.id),
                        model::now(),
                        &ap.actor.label(),
                        "revoked",
                    )
                    .await?;
                    cred::delete_user_grants(cx, &u.id).await?;
                    dir::delete_user(cx, &u.id).await?;
                    ap.change(
                        '-',
                        "user",
                        format!("{} ({})", u.email, u.domain),
                        format!("with stations and keys; revokes {n} token(s)"),
                    );
                    ap.audit(
                        cx,
                        "user.rm",
                        &u.email,
                        Some(&u.domain_id),
                        json!({"revoked_tokens": n}),
                    )
                    .await?;
                    continue;
                }
                if env.prune.keys {
                    for k in cred::keys_of_user(cx, &u.id).await? {
                        if !listed_keys.contains(&k.id) {
                            let n = cred::revoke_tokens_where(
                                cx,
                                "key_id",
                                &k.id,
                                None,
                                model::now(),
                                &ap.actor.label(),
                                "key_deleted",
                            )
                            .await?;
                            cred::delete_key(cx, &k.id).await?;
                            ap.change(
                                '-',
                                "key",
                                format!("{} of {}", k.name, u.email),
                                format!("{} revokes {n} token(s)", k.client_id),
                            );
                            ap.audit(
                                cx,
                                "key.rm",
                                &k.client_id,
                                Some(&k.domain_id),
                                json!({"revoked_tokens": n}),
                            )
                            .await?;
                        }
                    }
                }
            }
        }
    }
    if env.prune.roles {
        for r in dir::roles(cx).await? {
            if r.builtin || r.is_default || listed_roles.contains(&r.name.to_lowercase()) {
                continue;
            }
            let users = dir::role_user_count(cx, &r.id).await?;
            if users > 0 {
                return Err(Error::Refused(format!(
                    "{}: prune would remove role {} but {users} user(s) hold it; move them in the file first",
                    ap.file, r.name
                )));
            }
            dir::delete_role(cx, &r.id).await?;
            ap.change('-', "role", &r.name, "");
            ap.audit(cx, "role.rm", &r.name, None, json!({})).await?;
        }
    }
    if env.prune.scopes {
        for s in dir::scopes(cx).await? {
            if s.builtin || listed_scopes.contains(&s.name) {
                continue;
            }
            let (roles, implied_by) = dir::scope_usage(cx, &s.id).await?;
            if !roles.is_empty() || !implied_by.is_empty() {
                return Err(Error::Refused(format!(
                    "{}: prune would remove scope {} but it is still used by {}",
                    ap.file,
                    s.name,
                    roles
                        .into_iter()
                        .chain(implied_by)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let all: BTreeSet<String> = ScopeGraph::load(cx)
                .await?
                .all
                .into_iter()
                .filter(|x| x != &s.name)
                .collect();
            enforce_scopes(cx, ap.actor, Holders::All, &all, "scope removed").await?;
            dir::delete_scope(cx, &s.id).await?;
            ap.change('-', "scope", &s.name, "");
            ap.audit(cx, "scope.rm", &s.name, None, json!({})).await?;
        }
    }
    Ok(())
}

fn fill_station(row: &mut NewStationRow, se: &StationEntry) -> Result<()> {
    row.eu_vat_id = se
        .eu_vat_id
        .as_deref()
        .map(EuVatId::parse)
        .transpose()?
        .map(|v| v.into_string());
    row.registration_number = se
        .rn
        .as_deref()
        .map(RegistrationNumber::parse)
        .transpose()?
        .map(|v| v.into_string());
    row.country_code = se
        .country
        .as_deref()
        .map(CountryCode::parse)
        .transpose()?
        .map(|v| v.into_string());
    if row.registration_number.is_some() != row.country_code.is_some() {
        return Err(Error::invalid(
            "station",
            &se.name,
            "rn and country together",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The parser never panics, whatever the file holds; errors name the file.
        #[test]
        fn parser_never_panics(text in ".{0,400}") {
            if let Err(e) = parse("f.toml", &text) {
                prop_assert!(e.to_string().contains("f.toml"));
            }
        }

        /// Structured near-misses: valid-looking tables with hostile values.
        #[test]
        fn parser_handles_hostile_values(name in "[\\x00-\\x7f\u{202e}\u{1b}]{0,40}", key in "[a-z_]{1,12}") {
            let text = format!("[[users]]\nemail = {name:?}\ndomain = \"d.example\"\n{key} = 1\n");
            let _ = parse("f.toml", &text);
        }
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_line() {
        let e = parse("env.toml", "[[roles]]\nname = \"R\"\nscope = [\"read\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("env.toml") && e.contains("scope") && e.contains("line 3"),
            "{e}"
        );
    }
}
