//! Scopes (with implication) and roles (named scope sets, one default).

use super::{Actor, Keyward, Need, Run, audit_event};
use crate::error::{Error, Result, Step};
use crate::model::{self, Description, RoleName, ScopeName};
use crate::store::Cx;
use crate::store::credentials as cred;
use crate::store::directory::{self as dir, RoleRow, ScopeRow};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// All scopes and their implication edges, for closure computations.
#[derive(Debug, Clone, Default)]
pub struct ScopeGraph {
    pub all: BTreeSet<String>,
    pub implies: BTreeMap<String, BTreeSet<String>>,
}

impl ScopeGraph {
    pub async fn load(cx: &mut Cx<'_>) -> Result<ScopeGraph> {
        let mut g = ScopeGraph::default();
        for s in dir::scopes(cx).await? {
            g.all.insert(s.name);
        }
        for (s, i) in dir::implications(cx).await? {
            g.implies.entry(s).or_default().insert(i);
        }
        Ok(g)
    }

    /// The set expanded through implication.
    pub fn closure<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<String> = names.into_iter().map(str::to_string).collect();
        while let Some(n) = stack.pop() {
            if out.insert(n.clone())
                && let Some(next) = self.implies.get(&n)
            {
                stack.extend(next.iter().cloned());
            }
        }
        out
    }

    /// If giving `scope` the implications `implies` would close a cycle, the cycle's path.
    pub fn cycle_with(&self, scope: &str, implies: &BTreeSet<String>) -> Option<Vec<String>> {
        // A cycle exists iff `scope` is reachable from one of its new implied scopes.
        for start in implies {
            let mut path = vec![scope.to_string()];
            if self.reaches(start, scope, &mut path, &mut BTreeSet::new()) {
                return Some(path);
            }
        }
        None
    }

    fn reaches(
        &self,
        from: &str,
        target: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        path.push(from.to_string());
        if from == target {
            return true;
        }
        if seen.insert(from.to_string())
            && let Some(next) = self.implies.get(from)
        {
            for n in next {
                if self.reaches(n, target, path, seen) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }
}

/// A role's effective scopes (after implication; every scope for `all_scopes` roles).
pub async fn effective_scopes(cx: &mut Cx<'_>, role: &RoleRow) -> Result<BTreeSet<String>> {
    let g = ScopeGraph::load(cx).await?;
    if role.all_scopes {
        return Ok(g.all.clone());
    }
    let granted = dir::role_scope_names(cx, &role.id).await?;
    Ok(g.closure(granted.iter().map(String::as_str)))
}

#[derive(Debug, Clone, Serialize)]
pub struct ScopeView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub implies: Vec<String>,
    pub builtin: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub default: bool,
    pub all_scopes: bool,
    pub builtin: bool,
    pub scopes: Vec<String>,
    pub effective_scopes: Vec<String>,
    pub users: i64,
    pub version: i64,
}

/// What narrowing a role or moving a user did to credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Narrowing {
    pub revoked_tokens: u64,
    pub trimmed_keys: u64,
}

impl Narrowing {
    pub fn summary(&self) -> String {
        format!(
            "revoked {} token(s) and trimmed {} key(s) that exceeded the new scopes",
            self.revoked_tokens, self.trimmed_keys
        )
    }
}

async fn scope_views(cx: &mut Cx<'_>) -> Result<Vec<ScopeView>> {
    let g = ScopeGraph::load(cx).await?;
    Ok(dir::scopes(cx)
        .await?
        .into_iter()
        .map(|s| ScopeView {
            implies: g
                .implies
                .get(&s.name)
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default(),
            id: s.id,
            name: s.name,
            description: s.description,
            builtin: s.builtin,
        })
        .collect())
}

pub async fn role_view(cx: &mut Cx<'_>, r: RoleRow) -> Result<RoleView> {
    let g = ScopeGraph::load(cx).await?;
    let granted = if r.all_scopes {
        g.all.iter().cloned().collect()
    } else {
        dir::role_scope_names(cx, &r.id).await?
    };
    let effective = g.closure(granted.iter().map(String::as_str));
    let users = dir::role_user_count(cx, &r.id).await?;
    Ok(RoleView {
        id: r.id,
        name: r.name,
        description: r.description,
        default: r.is_default,
        all_scopes: r.all_scopes,
        builtin: r.builtin,
        scopes: granted,
        effective_scopes: effective.into_iter().collect(),
        users,
        version: r.version,
    })
}

/// Why a role cannot be removed whatever its users: built in, or the default for new
/// users. (The console asks before it offers a confirmation.)
pub fn role_removal_refused(name: &str, builtin: bool, default: bool) -> Option<Error> {
    if builtin {
        Some(Error::Refused(format!(
            "role {name} is built in and cannot be removed"
        )))
    } else {
        default.then(|| {
            Error::blocked(
                format!("role {name} is the default for new users"),
                Step::SetDefaultRole { other: true },
            )
        })
    }
}

/// Why a scope cannot be removed whatever uses it: built in.
pub fn scope_removal_refused(name: &str, builtin: bool) -> Option<Error> {
    builtin.then(|| Error::Refused(format!("scope {name} is built in and cannot be removed")))
}

pub async fn find_role(cx: &mut Cx<'_>, name: &str) -> Result<RoleRow> {
    match dir::role_by_name(cx, name.trim()).await? {
        Some(r) => Ok(r),
        None => {
            let names: Vec<String> = dir::roles(cx).await?.into_iter().map(|r| r.name).collect();
            Err(Error::not_found_hint(
                "role",
                name,
                format!("roles are: {}", names.join(", ")),
            ))
        }
    }
}

/// Refuses a new role whose name looks like an existing one's (`Ρartner` with a Greek
/// capital rho beside `Partner`): pickers and `--reassign-to` could not tell them apart.
pub async fn refuse_look_alike_role(cx: &mut Cx<'_>, name: &RoleName) -> Result<()> {
    let looks = name.skeleton();
    for r in dir::roles(cx).await? {
        if model::looks(&r.name) == looks && r.name.to_lowercase() != name.normalized() {
            return Err(Error::Conflict(format!(
                "role {:?} looks like the existing role {:?}; choose a name that reads \
                 differently",
                name.as_str(),
                r.name
            )));
        }
    }
    Ok(())
}

/// One scope by name; not found names the known ones.
async fn scope_row(cx: &mut Cx<'_>, name: &ScopeName) -> Result<ScopeRow> {
    if let Some(row) = dir::scope_by_name(cx, name.as_str()).await? {
        return Ok(row);
    }
    let known: Vec<String> = dir::scopes(cx).await?.into_iter().map(|s| s.name).collect();
    Err(Error::not_found_hint(
        "scope",
        name.as_str(),
        format!("known scopes: {}", known.join(", ")),
    ))
}

pub async fn find_scopes(cx: &mut Cx<'_>, names: &[ScopeName]) -> Result<Vec<ScopeRow>> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match dir::scope_by_name(cx, n.as_str()).await? {
            Some(s) => out.push(s),
            None => missing.push(n.to_string()),
        }
    }
    if !missing.is_empty() {
        let known: Vec<String> = dir::scopes(cx).await?.into_iter().map(|s| s.name).collect();
        return Err(Error::not_found_step(
            "scope",
            missing.join(", "),
            Some(format!("known scopes: {}", known.join(", "))),
            Step::AddScope,
        ));
    }
    Ok(out)
}

/// Revokes tokens and trims keys of the users selected by `who` so that nothing
/// exceeds `allowed`. Runs in the caller's transaction.
pub async fn enforce_scopes(
    cx: &mut Cx<'_>,
    actor: &Actor,
    who: cred::Holders<'_>,
    allowed: &BTreeSet<String>,
    reason: &str,
) -> Result<Narrowing> {
    let now = model::now();
    let mut n = Narrowing::default();
    let exceeds = |scopes: &str| scopes.split_whitespace().any(|s| !allowed.contains(s));
    let tokens = cred::active_token_scopes(cx, who, now).await?;
    let jtis: Vec<String> = tokens
        .into_iter()
        .filter(|(_, s)| exceeds(s))
        .map(|(j, _)| j)
        .collect();
    if !jtis.is_empty() {
        n.revoked_tokens = cred::revoke_jtis(cx, &jtis, now, &actor.label(), reason).await?;
    }
    for (id, scopes) in cred::key_scopes(cx, who).await? {
        if exceeds(&scopes) {
            let kept: Vec<&str> = scopes
                .split_whitespace()
                .filter(|s| allowed.contains(*s))
                .collect();
            cred::set_key_scopes(cx, &id, &kept.join(" ")).await?;
            n.trimmed_keys += 1;
        }
    }
    Ok(n)
}

impl Keyward {
    pub async fn scope_list(&self, _actor: &Actor) -> Result<Vec<ScopeView>> {
        self.read(async |cx| scope_views(cx).await).await
    }

    pub async fn scope_add(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<&str>,
        implies: &[String],
    ) -> Result<ScopeView> {
        actor.require(Need::Global)?;
        let name = ScopeName::parse(name)?;
        let desc = Description::parse(description.unwrap_or(""))?;
        let implies: Vec<ScopeName> = implies
            .iter()
            .map(|s| ScopeName::parse(s))
            .collect::<Result<_>>()?;
        let actor = actor.clone();
        self.write(async move |cx| {
            if dir::scope_by_name(cx, name.as_str()).await?.is_some() {
                return Err(Error::Conflict(format!("scope {name} already exists")));
            }
            if implies.contains(&name) {
                return Err(Error::Refused(format!("scope {name} cannot imply itself")));
            }
            let targets = find_scopes(cx, &implies).await?;
            let row = ScopeRow {
                id: model::new_id(),
                name: name.to_string(),
                description: desc.to_string(),
                builtin: false,
                created_at: model::now(),
                version: 1,
            };
            dir::insert_scope(cx, &row).await?;
            for t in &targets {
                dir::insert_implication(cx, &row.id, &t.id).await?;
            }
            let implied: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
            audit_event(
                cx,
                &actor,
                "scope.add",
                &row.name,
                None,
                json!({"description": row.description, "implies": implied}),
            )
            .await?;
            Ok(ScopeView {
                id: row.id,
                name: row.name,
                description: row.description,
                implies: implied,
                builtin: false,
            })
        })
        .await
    }

    /// Changes a scope's description and/or implications (cycles rejected).
    pub async fn scope_edit(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<&str>,
        implies: Option<&[String]>,
    ) -> Result<ScopeView> {
        actor.require(Need::Global)?;
        let name = ScopeName::parse(name)?;
        let desc = description.map(Description::parse).transpose()?;
        let implies: Option<Vec<ScopeName>> = implies
            .map(|v| v.iter().map(|s| ScopeName::parse(s)).collect::<Result<_>>())
            .transpose()?;
        let actor = actor.clone();
        self.write(async move |cx| {
            let row = scope_row(cx, &name).await?;
            let g = ScopeGraph::load(cx).await?;
            let before: Vec<String> = g
                .implies
                .get(name.as_str())
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let mut changes = serde_json::Map::new();
            if let Some(d) = &desc
                && d.as_str() != row.description
            {
                let sql_ok =
                    dir::set_scope_description(cx, &row.id, d.as_str(), row.version).await?;
                if !sql_ok {
                    return Err(Error::stale("scope", name.as_str()));
                }
                changes.insert(
                    "description".into(),
                    json!({"before": row.description, "after": d.as_str()}),
                );
            }
            if let Some(imp) = &implies {
                let set: BTreeSet<String> = imp.iter().map(|s| s.to_string()).collect();
                if set.contains(name.as_str()) {
                    return Err(Error::Refused(format!("scope {name} cannot imply itself")));
                }
                if let Some(path) = g.cycle_with(name.as_str(), &set) {
                    return Err(Error::Refused(format!(
                        "implication cycle: {} (a scope cannot end up implying itself)",
                        path.join(" → ")
                    )));
                }
                let targets = find_scopes(cx, imp).await?;
                dir::clear_implications(cx, &row.id).await?;
                for t in &targets {
                    dir::insert_implication(cx, &row.id, &t.id).await?;
                }
                let after: Vec<String> = set.into_iter().collect();
                if after != before {
                    changes.insert("implies".into(), json!({"before": before, "after": after}));
                }
            }
            if !changes.is_empty() {
                audit_event(
                    cx,
                    &actor,
                    "scope.edit",
                    name.as_str(),
                    None,
                    serde_json::Value::Object(changes),
                )
                .await?;
            }
            scope_views(cx)
                .await?
                .into_iter()
                .find(|s| s.name == name.as_str())
                .ok_or_else(|| Error::not_found("scope", name.as_str()))
        })
        .await
    }

    pub async fn scope_rm(&self, actor: &Actor, name: &str) -> Result<()> {
        actor.require(Need::Global)?;
        let name = ScopeName::parse(name)?;
        let actor = actor.clone();
        self.write(async move |cx| {
            let row = scope_row(cx, &name).await?;
            if let Some(e) = scope_removal_refused(name.as_str(), row.builtin) {
                return Err(e);
            }
            let (roles, implied_by) = dir::scope_usage(cx, &row.id).await?;
            if !roles.is_empty() {
                return Err(Error::blocked(
                    format!("scope {name} is granted by role(s) {}", roles.join(", ")),
                    Step::RevokeScope {
                        scope: name.to_string(),
                    },
                ));
            }
            if !implied_by.is_empty() {
                return Err(Error::blocked(
                    format!("scope {name} is implied by {}", implied_by.join(", ")),
                    Step::EditImplying,
                ));
            }
            // Credentials that named the scope lose it: it no longer exists.
            let all: BTreeSet<String> = ScopeGraph::load(cx)
                .await?
                .all
                .into_iter()
                .filter(|s| s != name.as_str())
                .collect();
            let n = enforce_scopes(cx, &actor, cred::Holders::All, &all, "scope removed").await?;
            dir::delete_scope(cx, &row.id).await?;
            audit_event(
                cx,
                &actor,
                "scope.rm",
                name.as_str(),
                None,
                json!({"revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys}),
            )
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn role_list(&self, _actor: &Actor) -> Result<Vec<RoleView>> {
        self.read(async |cx| {
            let mut out = Vec::new();
            for r in dir::roles(cx).await? {
                out.push(role_view(cx, r).await?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn role_show(&self, _actor: &Actor, name: &str) -> Result<RoleView> {
        let name = name.to_string();
        self.read(async move |cx| {
            let r = find_role(cx, &name).await?;
            role_view(cx, r).await
        })
        .await
    }

    pub async fn role_add(
        &self,
        actor: &Actor,
        name: &str,
        scopes: &[String],
        description: Option<&str>,
    ) -> Result<RoleView> {
        actor.require(Need::Global)?;
        let name = RoleName::parse(name)?;
        let desc = Description::parse(description.unwrap_or(""))?;
        let scopes: Vec<ScopeName> = scopes
            .iter()
            .map(|s| ScopeName::parse(s))
            .collect::<Result<_>>()?;
        let actor = actor.clone();
        self.write(async move |cx| {
            if dir::role_by_name(cx, name.as_str()).await?.is_some() {
                return Err(Error::Conflict(format!(
                    "role {name} already exists (role names are case-insensitive)"
                )));
            }
            refuse_look_alike_role(cx, &name).await?;
            let rows = find_scopes(cx, &scopes).await?;
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
            for s in &rows {
                dir::grant_role_scope(cx, &row.id, &s.id).await?;
            }
            let names: Vec<&str> = rows.iter().map(|s| s.name.as_str()).collect();
            audit_event(
                cx,
                &actor,
                "role.add",
                &row.name,
                None,
                json!({"scopes": names}),
            )
            .await?;
            role_view(cx, row).await
        })
        .await
    }

    /// Grants scopes to a role (widening: nothing is revoked).
    pub async fn role_grant(
        &self,
        actor: &Actor,
        role: &str,
        scopes: &[String],
    ) -> Result<RoleView> {
        actor.require(Need::Global)?;
        let scopes: Vec<ScopeName> = scopes
            .iter()
            .map(|s| ScopeName::parse(s))
            .collect::<Result<_>>()?;
        let (role, actor) = (role.to_string(), actor.clone());
        self.write(async move |cx| {
            let r = find_role(cx, &role).await?;
            if r.all_scopes {
                return Err(Error::Refused(format!(
                    "role {} already has every scope",
                    r.name
                )));
            }
            let rows = find_scopes(cx, &scopes).await?;
            let mut added = Vec::new();
            for s in &rows {
                if dir::grant_role_scope(cx, &r.id, &s.id).await? {
                    added.push(s.name.clone());
                }
            }
            if !added.is_empty() {
                if !dir::touch_role(cx, &r.id, r.version).await? {
                    return Err(Error::stale("role", &r.name));
                }
                audit_event(
                    cx,
                    &actor,
                    "role.grant",
                    &r.name,
                    None,
                    json!({"added": added}),
                )
                .await?;
            }
            let r = dir::role_by_id(cx, &r.id).await?.expect("exists");
            role_view(cx, r).await
        })
        .await
    }

    /// Revokes scopes from a role; tokens and keys that now exceed it are revoked/trimmed.
    pub async fn role_revoke(
        &self,
        actor: &Actor,
        role: &str,
        scopes: &[String],
    ) -> Result<(RoleView, Vec<String>, Narrowing)> {
        self.role_revoke_as(actor, role, scopes, Run::Commit).await
    }

    /// What [`Keyward::role_revoke`] would revoke and trim, without changing anything.
    pub async fn role_revoke_preview(
        &self,
        actor: &Actor,
        role: &str,
        scopes: &[String],
    ) -> Result<Narrowing> {
        Ok(self
            .role_revoke_as(actor, role, scopes, Run::Rehearse)
            .await?
            .2)
    }

    async fn role_revoke_as(
        &self,
        actor: &Actor,
        role: &str,
        scopes: &[String],
        run: Run,
    ) -> Result<(RoleView, Vec<String>, Narrowing)> {
        actor.require(Need::Global)?;
        let scopes: Vec<ScopeName> = scopes
            .iter()
            .map(|s| ScopeName::parse(s))
            .collect::<Result<_>>()?;
        let (role, actor) = (role.to_string(), actor.clone());
        self.write_as(run, async move |cx| {
            let r = find_role(cx, &role).await?;
            if r.all_scopes {
                return Err(Error::Refused(format!(
                    "role {} has every scope by definition; create a narrower role instead",
                    r.name
                )));
            }
            let rows = find_scopes(cx, &scopes).await?;
            let mut removed = Vec::new();
            for s in &rows {
                if dir::revoke_role_scope(cx, &r.id, &s.id).await? {
                    removed.push(s.name.clone());
                }
            }
            let mut n = Narrowing::default();
            if !removed.is_empty() {
                if !dir::touch_role(cx, &r.id, r.version).await? {
                    return Err(Error::stale("role", &r.name));
                }
                let allowed = effective_scopes(cx, &r).await?;
                n = enforce_scopes(cx, &actor, cred::Holders::Role(&r.id), &allowed, "role narrowed").await?;
                audit_event(
                    cx,
                    &actor,
                    "role.revoke",
                    &r.name,
                    None,
                    json!({"removed": removed, "revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys}),
                )
                .await?;
            }
            let r = dir::role_by_id(cx, &r.id).await?.expect("exists");
            Ok((role_view(cx, r).await?, removed, n))
        })
        .await
    }

    /// Makes a role the default for new users.
    pub async fn role_default(&self, actor: &Actor, role: &str) -> Result<RoleView> {
        actor.require(Need::Global)?;
        let (role, actor) = (role.to_string(), actor.clone());
        self.write(async move |cx| {
            let r = find_role(cx, &role).await?;
            let before = dir::default_role(cx).await?.map(|d| d.name);
            if !r.is_default {
                dir::set_default_role(cx, &r.id).await?;
                audit_event(
                    cx,
                    &actor,
                    "role.default",
                    &r.name,
                    None,
                    json!({"before": before}),
                )
                .await?;
            }
            let r = dir::role_by_id(cx, &r.id).await?.expect("exists");
            role_view(cx, r).await
        })
        .await
    }

    /// Removes a role; users holding it must be moved with `reassign_to`.
    pub async fn role_rm(
        &self,
        actor: &Actor,
        role: &str,
        reassign_to: Option<&str>,
    ) -> Result<(u64, Narrowing)> {
        self.role_rm_as(actor, role, reassign_to, Run::Commit).await
    }

    /// What [`Keyward::role_rm`] would move, revoke and trim, without changing anything.
    pub async fn role_rm_preview(
        &self,
        actor: &Actor,
        role: &str,
        reassign_to: Option<&str>,
    ) -> Result<(u64, Narrowing)> {
        self.role_rm_as(actor, role, reassign_to, Run::Rehearse)
            .await
    }

    async fn role_rm_as(
        &self,
        actor: &Actor,
        role: &str,
        reassign_to: Option<&str>,
        run: Run,
    ) -> Result<(u64, Narrowing)> {
        actor.require(Need::Global)?;
        let (role, to, actor) = (
            role.to_string(),
            reassign_to.map(str::to_string),
            actor.clone(),
        );
        self.write_as(run, async move |cx| {
            let r = find_role(cx, &role).await?;
            if let Some(e) = role_removal_refused(&r.name, r.builtin, r.is_default) {
                return Err(e);
            }
            let users = dir::role_user_count(cx, &r.id).await?;
            let mut moved = 0;
            let mut n = Narrowing::default();
            if users > 0 {
                let Some(to) = &to else {
                    return Err(Error::Refused(format!(
                        "role {} is held by {users} user(s); name a replacement with --reassign-to ROLE",
                        r.name
                    )));
                };
                let target = find_role(cx, to).await?;
                if target.id == r.id {
                    return Err(Error::invalid("--reassign-to", to, "a role other than the one being removed"));
                }
                let allowed = effective_scopes(cx, &target).await?;
                n = enforce_scopes(cx, &actor, cred::Holders::Role(&r.id), &allowed, "role changed").await?;
                moved = dir::reassign_role_users(cx, &r.id, &target.id, model::now()).await?;
            }
            if !dir::touch_role(cx, &r.id, r.version).await? {
                return Err(Error::stale("role", &r.name));
            }
            dir::delete_role(cx, &r.id).await?;
            audit_event(
                cx,
                &actor,
                "role.rm",
                &r.name,
                None,
                json!({"reassigned_users": moved, "reassign_to": to, "revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys}),
            )
            .await?;
            Ok((moved, n))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> ScopeGraph {
        let mut g = ScopeGraph::default();
        for (a, b) in edges {
            g.all.insert(a.to_string());
            g.all.insert(b.to_string());
            g.implies
                .entry(a.to_string())
                .or_default()
                .insert(b.to_string());
        }
        g
    }

    #[test]
    fn closure_follows_chains() {
        let g = graph(&[("admin", "write"), ("write", "read")]);
        let c = g.closure(["admin"]);
        assert_eq!(
            c.into_iter().collect::<Vec<_>>(),
            vec!["admin", "read", "write"]
        );
        assert_eq!(g.closure(["read"]).len(), 1);
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let g = graph(&[("admin", "write"), ("write", "read")]);
        let p = g
            .cycle_with("read", &BTreeSet::from(["admin".to_string()]))
            .unwrap();
        assert_eq!(p, vec!["read", "admin", "write", "read"]);
        assert!(
            g.cycle_with("admin", &BTreeSet::from(["read".to_string()]))
                .is_none()
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Closure is extensive, idempotent and closed under implication.
        #[test]
        fn closure_is_a_closure(edges in proptest::collection::vec((0u8..8, 0u8..8), 0..20), start in proptest::collection::vec(0u8..8, 0..4)) {
            let mut g = ScopeGraph::default();
            for (a, b) in &edges {
                g.all.insert(format!("s{a}"));
                g.all.insert(format!("s{b}"));
                g.implies.entry(format!("s{a}")).or_default().insert(format!("s{b}"));
            }
            let names: Vec<String> = start.iter().map(|x| format!("s{x}")).collect();
            let c = g.closure(names.iter().map(String::as_str));
            for n in &names {
                prop_assert!(c.contains(n));
            }
            let again = g.closure(c.iter().map(String::as_str));
            prop_assert_eq!(&again, &c);
            for s in &c {
                if let Some(next) = g.implies.get(s) {
                    prop_assert!(next.is_subset(&c));
                }
            }
        }
    }
}
