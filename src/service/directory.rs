//! Domains, users, stations and operators.

use super::scopes::{self, Narrowing, enforce_scopes, find_role};
use super::{Actor, Keyward, Need, Run, audit_event};
use crate::error::{Error, Listing, Result, Step};
use crate::model::{
    self, ApiAccess, CountryCode, DisplayName, DomainName, Email, EuVatId, OperatorRole, OsAccount,
    RegistrationNumber, UserStatus,
};
use crate::store::credentials::{self as cred, Holders};
use crate::store::directory::{
    self as dir, DomainRow, NewStationRow, NewUserRow, OperatorRow, StationQuery, StationRow,
    UserQuery, UserRow,
};
use crate::store::{Cx, Val};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;

/// Inserts a domain and audits it with `details` (shared by `init --domain`,
/// `domain add`, `apply` and the demo data).
pub(crate) async fn insert_domain(
    cx: &mut Cx<'_>,
    actor: &Actor,
    name: &DomainName,
    details: serde_json::Value,
) -> Result<DomainRow> {
    let row = DomainRow {
        id: model::new_id(),
        name: name.to_string(),
        created_at: model::now(),
        version: 1,
    };
    dir::insert_domain(cx, &row).await?;
    audit_event(cx, actor, "domain.add", &row.name, Some(&row.id), details).await?;
    Ok(row)
}

/// Finds a domain the actor may see, by name or id.
pub async fn find_domain(cx: &mut Cx<'_>, actor: &Actor, name: &str) -> Result<DomainRow> {
    let by_name = match DomainName::parse(name) {
        Ok(n) => dir::domain_by_name(cx, n.as_str()).await?,
        Err(_) => None,
    };
    let row = match by_name {
        Some(r) => Some(r),
        None => dir::domain_by_id(cx, name.trim()).await?,
    };
    let Some(row) = row.filter(|r| actor.can_see(&r.id)) else {
        let known: Vec<String> = dir::domains(cx)
            .await?
            .into_iter()
            .filter(|d| actor.can_see(&d.id))
            .map(|d| d.name)
            .collect();
        return Err(if known.is_empty() {
            Error::not_found_step(
                "domain",
                name,
                Some("no domains yet".into()),
                Step::AddDomain,
            )
        } else {
            // Named when few; a long list would bury the message.
            let shown = match known.len() {
                n if n <= 8 => known.join(", "),
                n => format!("{} and {} more", known[..6].join(", "), n - 6),
            };
            Error::not_found_hint("domain", name, format!("domains are: {shown}"))
        });
    };
    Ok(row)
}

/// Finds a user by id or email (optionally within a domain), visible to the actor.
pub async fn find_user(
    cx: &mut Cx<'_>,
    actor: &Actor,
    user: &str,
    domain: Option<&str>,
) -> Result<UserRow> {
    let domain_row = match domain {
        Some(d) => Some(find_domain(cx, actor, d).await?),
        None => None,
    };
    let user = user.trim();
    if let Some(u) = dir::user_by_id(cx, user).await?
        && actor.can_see(&u.domain_id)
        && domain_row.as_ref().is_none_or(|d| d.id == u.domain_id)
    {
        return Ok(u);
    }
    let norm = crate::model::email_key(user);
    let found: Vec<UserRow> =
        dir::users_by_email(cx, &norm, domain_row.as_ref().map(|d| d.id.as_str()))
            .await?
            .into_iter()
            .filter(|u| actor.can_see(&u.domain_id))
            .collect();
    match found.len() {
        0 => Err(Error::not_found_step(
            "user",
            user,
            Some("name a user by email or id".into()),
            Step::SearchUsers,
        )),
        1 => Ok(found.into_iter().next().expect("one")),
        // Every command that names a user accepts its id, so the ids are the way out
        // (not every command has a --domain to narrow with).
        _ => Err(Error::Refused(format!(
            "{user} exists in {} domains: {}; name the user by id instead",
            found.len(),
            found
                .iter()
                .map(|u| format!("{} (id {})", u.domain, u.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A new user's details as given by a front-end.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub domain: String,
    pub name: Option<String>,
    pub role: Option<String>,
    pub password: Option<SecretString>,
    /// Name of the initial station (defaults to the display name or the email).
    pub station: Option<String>,
    /// Identifiers of the initial station (EU VAT id; registration number with its
    /// country), so that a participant is recognised from the first sign-in.
    pub station_ids: StationIds,
}

/// A station's identifiers as given (validated by [`new_user_problems`]).
#[derive(Debug, Clone, Default)]
pub struct StationIds {
    pub eu_vat_id: Option<String>,
    pub rn: Option<String>,
    pub country: Option<String>,
}

impl StationIds {
    /// Parsed and normalised: (EU VAT id, registration number, country code).
    #[allow(clippy::type_complexity)]
    fn parse(
        &self,
    ) -> Result<(
        Option<EuVatId>,
        Option<RegistrationNumber>,
        Option<CountryCode>,
    )> {
        let vat = self.eu_vat_id.as_deref().map(EuVatId::parse).transpose()?;
        let rn = self
            .rn
            .as_deref()
            .map(RegistrationNumber::parse)
            .transpose()?;
        let cc = self
            .country
            .as_deref()
            .map(CountryCode::parse)
            .transpose()?;
        if rn.is_some() != cc.is_some() {
            return Err(rn_without_country(
                rn.map(|r| r.to_string()).unwrap_or_default(),
            ));
        }
        Ok((vat, rn, cc))
    }
}

/// A registration number without its country, or a country without a number.
fn rn_without_country(rn: String) -> Error {
    Error::invalid(
        "registration number",
        rn,
        "a registration number together with its country code (a registration number is only unique within its country)",
    )
}

/// A user with what the console and `user show` need.
#[derive(Debug, Clone, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserRow,
    pub stations: Vec<StationRow>,
    pub keys: i64,
    pub apps: i64,
    pub active_tokens: i64,
    pub effective_scopes: Vec<String>,
}

/// Validated parts of a new user, ready to insert (shared by user add, import, apply, signup).
pub struct PreparedUser {
    pub user: NewUserRow,
    pub station: NewStationRow,
}

/// Validates a new user and its initial station against a domain and role.
pub fn prepare_user(
    domain_id: &str,
    role_id: &str,
    email: &str,
    name: Option<&str>,
    password_hash: Option<String>,
    station: Option<&str>,
    now: i64,
) -> Result<PreparedUser> {
    let email = Email::parse(email)?;
    let name = DisplayName::parse(name.unwrap_or(""))?;
    let station_name = match station {
        Some(s) => DisplayName::parse_required("station name", s)?.to_string(),
        None if !name.as_str().is_empty() => name.to_string(),
        None => email.to_string(),
    };
    let id = model::new_id();
    Ok(PreparedUser {
        station: NewStationRow {
            id: model::new_id(),
            domain_id: domain_id.to_string(),
            user_id: id.clone(),
            name: station_name,
            eu_vat_id: None,
            registration_number: None,
            country_code: None,
            created_at: now,
        },
        user: NewUserRow {
            id,
            domain_id: domain_id.to_string(),
            email_norm: email.normalized(),
            email: email.into_string(),
            name: name.into_string(),
            password_hash,
            status: "active".into(),
            role_id: role_id.to_string(),
            api_access: "pending".into(),
            affiliate_id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
        },
    })
}

/// Refuses assigning a role that includes `admin` unless the actor is an admin.
pub(super) async fn check_assignable(
    cx: &mut Cx<'_>,
    actor: &Actor,
    role: &crate::store::directory::RoleRow,
) -> Result<()> {
    if actor.role == OperatorRole::Admin {
        return Ok(());
    }
    let eff = scopes::effective_scopes(cx, role).await?;
    if eff.contains("admin") {
        return Err(Error::PermissionDenied(format!(
            "role {} includes the admin scope; only an admin operator may assign it",
            role.name
        )));
    }
    Ok(())
}

impl Keyward {
    // ------------------------------------------------------------ domains

    pub async fn domain_list(&self, actor: &Actor) -> Result<Vec<DomainRow>> {
        let a = actor.clone();
        self.read(async move |cx| {
            Ok(dir::domains(cx)
                .await?
                .into_iter()
                .filter(|d| a.can_see(&d.id))
                .collect())
        })
        .await
    }

    pub async fn domain_add(&self, actor: &Actor, name: &str) -> Result<DomainRow> {
        actor.require(Need::Global)?;
        let name = DomainName::parse(name)?;
        let actor = actor.clone();
        self.write(async move |cx| {
            if dir::domain_by_name(cx, name.as_str()).await?.is_some() {
                return Err(Error::Conflict(format!("domain {name} already exists")));
            }
            insert_domain(cx, &actor, &name, json!({})).await
        })
        .await
    }

    /// Removes an empty domain.
    /// What stands in the way of removing a domain: its users and stations (both 0 for
    /// a domain [`Self::domain_rm`] takes), for a confirmation that can refuse at once.
    pub async fn domain_usage(&self, actor: &Actor, name: &str) -> Result<(i64, i64)> {
        actor.require(Need::Global)?;
        let (name, actor) = (name.to_string(), actor.clone());
        self.read(async move |cx| {
            let d = find_domain(cx, &actor, &name).await?;
            dir::domain_usage(cx, &d.id).await
        })
        .await
    }

    pub async fn domain_rm(&self, actor: &Actor, name: &str) -> Result<()> {
        actor.require(Need::Global)?;
        let (name, actor) = (name.to_string(), actor.clone());
        self.write(async move |cx| {
            let d = find_domain(cx, &actor, &name).await?;
            let (users, stations) = dir::domain_usage(cx, &d.id).await?;
            if users > 0 || stations > 0 {
                return Err(Error::Refused(format!(
                    "domain {} still has {users} user(s) and {stations} station(s); remove them first",
                    d.name
                )));
            }
            dir::delete_domain(cx, &d.id).await?;
            audit_event(cx, &actor, "domain.rm", &d.name, None, json!({})).await?;
            Ok(())
        })
        .await
    }

    // ------------------------------------------------------------ users

    /// Creates a user with its initial station and the default (or given) role.
    /// Issues no token: API access stays `pending` until support enables it.
    pub async fn user_add(&self, actor: &Actor, new: NewUser) -> Result<UserDetail> {
        actor.require(Need::Support)?;
        // Validate before hashing (argon2 is slow; no point for bad input).
        if let Some(e) = new_user_problems(&new).into_iter().next() {
            return Err(e);
        }
        let password_hash = match &new.password {
            Some(p) => Some(hash_new_password(p.clone()).await?),
            None => None,
        };
        let actor = actor.clone();
        let id = self
            .write(async move |cx| {
                let d = find_domain(cx, &actor, &new.domain).await?;
                actor.require_domain(&d.id, &d.name)?;
                let role = match &new.role {
                    Some(r) => find_role(cx, r).await?,
                    None => dir::default_role(cx)
                        .await?
                        .ok_or_else(|| Error::blocked("no default role is set", Step::SetDefaultRole { other: false }))?,
                };
                check_assignable(cx, &actor, &role).await?;
                let mut p = prepare_user(
                    &d.id,
                    &role.id,
                    &new.email,
                    new.name.as_deref(),
                    password_hash,
                    new.station.as_deref(),
                    model::now(),
                )?;
                let (vat, rn, cc) = new.station_ids.parse()?;
                p.station.eu_vat_id = vat.map(|v| v.to_string());
                p.station.registration_number = rn.map(|v| v.to_string());
                p.station.country_code = cc.map(|v| v.to_string());
                if !dir::users_by_email(cx, &p.user.email_norm, Some(&d.id)).await?.is_empty() {
                    return Err(Error::Conflict(format!(
                        "a user with email {} already exists in {} (emails are case-insensitive)",
                        p.user.email, d.name
                    )));
                }
                dir::insert_users(cx, std::slice::from_ref(&p.user)).await?;
                dir::insert_stations(cx, std::slice::from_ref(&p.station)).await?;
                audit_event(
                    cx,
                    &actor,
                    "user.add",
                    &p.user.email,
                    Some(&d.id),
                    json!({"domain": d.name, "role": role.name, "station": p.station.name, "password": p.user.password_hash.is_some()}),
                )
                .await?;
                Ok(p.user.id)
            })
            .await?;
        self.user_detail_by_id(&id).await
    }

    async fn user_detail_by_id(&self, id: &str) -> Result<UserDetail> {
        let id = id.to_string();
        self.read_tokens(async move |cx| {
            let u = dir::user_by_id(cx, &id)
                .await?
                .ok_or_else(|| Error::not_found("user", &id))?;
            user_detail(cx, u).await
        })
        .await
    }

    pub async fn user_show(
        &self,
        actor: &Actor,
        user: &str,
        domain: Option<&str>,
    ) -> Result<UserDetail> {
        let (a, user, domain) = (actor.clone(), user.to_string(), domain.map(str::to_string));
        self.read_tokens(async move |cx| {
            let u = find_user(cx, &a, &user, domain.as_deref()).await?;
            user_detail(cx, u).await
        })
        .await
    }

    /// A page of users matching the query (restricted to the actor's domains).
    pub async fn user_list(&self, actor: &Actor, mut q: UserQuery) -> Result<Vec<UserRow>> {
        restrict_domains(&mut q.domains, actor);
        self.read(async move |cx| dir::list_users(cx, &q).await)
            .await
    }

    pub async fn user_count(&self, actor: &Actor, mut q: UserQuery) -> Result<i64> {
        restrict_domains(&mut q.domains, actor);
        self.read(async move |cx| dir::count_users(cx, &q).await)
            .await
    }

    /// Resolves list filters given by name (domain, role) into a query.
    pub async fn user_query(
        &self,
        actor: &Actor,
        domain: Option<&str>,
        role: Option<&str>,
        status: Option<&str>,
    ) -> Result<UserQuery> {
        let status = status.map(UserStatus::parse).transpose()?;
        let (a, domain, role) = (
            actor.clone(),
            domain.map(str::to_string),
            role.map(str::to_string),
        );
        self.read(async move |cx| {
            let mut q = UserQuery {
                limit: 100,
                ..Default::default()
            };
            if let Some(d) = &domain {
                q.domains = Some(vec![find_domain(cx, &a, d).await?.id]);
            }
            if let Some(r) = &role {
                q.role_id = Some(find_role(cx, r).await?.id);
            }
            q.status = status.map(|s| s.to_string());
            Ok(q)
        })
        .await
    }

    /// Disables or enables a user. Disabling revokes the user's active tokens.
    /// Enables or disables a user (disabling revokes their tokens); returns the user
    /// and how many tokens were revoked, or None when the user had that status already
    /// (nothing changed, nothing audited).
    pub async fn user_set_status(
        &self,
        actor: &Actor,
        user: &str,
        status: UserStatus,
    ) -> Result<(UserRow, Option<u64>)> {
        actor.require(Need::Support)?;
        let (a, user) = (actor.clone(), user.to_string());
        self.write(async move |cx| {
            let u = find_user(cx, &a, &user, None).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            if u.status == status.as_str() {
                return Ok((u, None));
            }
            if !dir::update_user_fields(
                cx,
                &u.id,
                u.version,
                model::now(),
                &[("status", Val::from(status.as_str()))],
            )
            .await?
            {
                return Err(Error::stale("user", &u.email));
            }
            let mut revoked = 0;
            if status == UserStatus::Disabled {
                revoked = cred::revoke_tokens_of(
                    cx,
                    Holders::User(&u.id),
                    model::now(),
                    &a.label(),
                    "user_disabled",
                )
                .await?;
            }
            let action = if status == UserStatus::Disabled {
                "user.disable"
            } else {
                "user.enable"
            };
            audit_event(
                cx,
                &a,
                action,
                &u.email,
                Some(&u.domain_id),
                json!({"revoked_tokens": revoked}),
            )
            .await?;
            let u = dir::user_by_id(cx, &u.id).await?.expect("exists");
            Ok((u, Some(revoked)))
        })
        .await
    }

    /// Deletes a user with its stations, keys and apps; revokes its tokens.
    pub async fn user_rm(&self, actor: &Actor, user: &str, domain: Option<&str>) -> Result<u64> {
        actor.require(Need::Admin)?;
        let (a, user, domain) = (actor.clone(), user.to_string(), domain.map(str::to_string));
        self.write(async move |cx| {
            let u = find_user(cx, &a, &user, domain.as_deref()).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            let now = model::now();
            let revoked =
                cred::revoke_tokens_of(cx, Holders::User(&u.id), now, &a.label(), "revoked")
                    .await?;
            cred::delete_user_grants(cx, &u.id).await?;
            dir::delete_user(cx, &u.id).await?;
            audit_event(
                cx,
                &a,
                "user.rm",
                &u.email,
                Some(&u.domain_id),
                json!({"revoked_tokens": revoked}),
            )
            .await?;
            Ok(revoked)
        })
        .await
    }

    /// Moves a user to another role; credentials beyond the new role are revoked/trimmed.
    pub async fn user_set_role(
        &self,
        actor: &Actor,
        user: &str,
        role: &str,
    ) -> Result<(UserRow, Narrowing)> {
        self.user_set_role_as(actor, user, role, Run::Commit).await
    }

    /// What [`Keyward::user_set_role`] would revoke and trim, without changing anything.
    pub async fn user_set_role_preview(
        &self,
        actor: &Actor,
        user: &str,
        role: &str,
    ) -> Result<Narrowing> {
        Ok(self
            .user_set_role_as(actor, user, role, Run::Rehearse)
            .await?
            .1)
    }

    async fn user_set_role_as(
        &self,
        actor: &Actor,
        user: &str,
        role: &str,
        run: Run,
    ) -> Result<(UserRow, Narrowing)> {
        actor.require(Need::Support)?;
        let (a, user, role) = (actor.clone(), user.to_string(), role.to_string());
        self.write_as(run, async move |cx| {
            let u = find_user(cx, &a, &user, None).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            let r = find_role(cx, &role).await?;
            check_assignable(cx, &a, &r).await?;
            if r.id == u.role_id {
                return Ok((u, Narrowing::default()));
            }
            let allowed = scopes::effective_scopes(cx, &r).await?;
            let n = enforce_scopes(cx, &a, Holders::User(&u.id), &allowed, "role changed").await?;
            if !dir::update_user_fields(cx, &u.id, u.version, model::now(), &[("role_id", Val::from(&r.id))]).await? {
                return Err(Error::stale("user", &u.email));
            }
            audit_event(
                cx,
                &a,
                "user.set_role",
                &u.email,
                Some(&u.domain_id),
                json!({"before": u.role, "after": r.name, "revoked_tokens": n.revoked_tokens, "trimmed_keys": n.trimmed_keys}),
            )
            .await?;
            let u = dir::user_by_id(cx, &u.id).await?.expect("exists");
            Ok((u, n))
        })
        .await
    }

    /// Changes a user's display name with optimistic concurrency (`version` as read).
    pub async fn user_rename(
        &self,
        actor: &Actor,
        user_id: &str,
        version: i64,
        name: &str,
    ) -> Result<UserRow> {
        actor.require(Need::Support)?;
        let name = DisplayName::parse(name)?;
        let (a, id) = (actor.clone(), user_id.to_string());
        self.write(async move |cx| {
            let u = find_user(cx, &a, &id, None).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            if !dir::update_user_fields(
                cx,
                &u.id,
                version,
                model::now(),
                &[("name", Val::from(name.as_str()))],
            )
            .await?
            {
                return Err(Error::stale("user", &u.email));
            }
            audit_event(
                cx,
                &a,
                "user.rename",
                &u.email,
                Some(&u.domain_id),
                json!({"before": u.name, "after": name.as_str()}),
            )
            .await?;
            Ok(dir::user_by_id(cx, &u.id).await?.expect("exists"))
        })
        .await
    }

    /// Shows a user's affiliate id.
    pub async fn affiliate_show(&self, actor: &Actor, user: &str) -> Result<UserRow> {
        let (a, user) = (actor.clone(), user.to_string());
        self.read(async move |cx| find_user(cx, &a, &user, None).await)
            .await
    }

    /// Replaces a user's affiliate id with a new random one.
    pub async fn affiliate_rotate(&self, actor: &Actor, user: &str) -> Result<UserRow> {
        actor.require(Need::Support)?;
        let (a, user) = (actor.clone(), user.to_string());
        self.write(async move |cx| {
            let u = find_user(cx, &a, &user, None).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            let new = uuid::Uuid::new_v4().to_string();
            if !dir::update_user_fields(
                cx,
                &u.id,
                u.version,
                model::now(),
                &[("affiliate_id", Val::from(&new))],
            )
            .await?
            {
                return Err(Error::stale("user", &u.email));
            }
            audit_event(
                cx,
                &a,
                "affiliate.rotate",
                &u.email,
                Some(&u.domain_id),
                json!({}),
            )
            .await?;
            Ok(dir::user_by_id(cx, &u.id).await?.expect("exists"))
        })
        .await
    }

    // ------------------------------------------------------------ stations

    #[allow(clippy::too_many_arguments)]
    pub async fn station_add(
        &self,
        actor: &Actor,
        name: &str,
        user: &str,
        domain: Option<&str>,
        eu_vat_id: Option<&str>,
        rn: Option<&str>,
        country: Option<&str>,
    ) -> Result<StationRow> {
        actor.require(Need::Support)?;
        let name = DisplayName::parse_required("station name", name)?;
        let vat = eu_vat_id.map(EuVatId::parse).transpose()?;
        let rn = rn.map(RegistrationNumber::parse).transpose()?;
        let cc = country.map(CountryCode::parse).transpose()?;
        if rn.is_some() != cc.is_some() {
            return Err(rn_without_country(
                rn.map(|r| r.to_string()).unwrap_or_default(),
            ));
        }
        let (a, user, domain) = (actor.clone(), user.to_string(), domain.map(str::to_string));
        self.write(async move |cx| {
            let u = find_user(cx, &a, &user, domain.as_deref()).await?;
            a.require_domain(&u.domain_id, &u.domain)?;
            let row = NewStationRow {
                id: model::new_id(),
                domain_id: u.domain_id.clone(),
                user_id: u.id.clone(),
                name: name.to_string(),
                eu_vat_id: vat.map(|v| v.into_string()),
                registration_number: rn.map(|v| v.into_string()),
                country_code: cc.map(|v| v.into_string()),
                created_at: model::now(),
            };
            dir::insert_stations(cx, std::slice::from_ref(&row)).await?;
            audit_event(
                cx,
                &a,
                "station.add",
                &row.name,
                Some(&row.domain_id),
                json!({"user": u.email, "eu_vat_id": row.eu_vat_id, "registration_number": row.registration_number, "country_code": row.country_code}),
            )
            .await?;
            Ok(dir::station_by_id(cx, &row.id).await?.expect("inserted"))
        })
        .await
    }

    /// Changes a station's identifiers (what the consent page recognises it by):
    /// `Some("")` clears one, None leaves it; a registration number needs its country.
    /// Audited with the values before and after.
    pub async fn station_edit(
        &self,
        actor: &Actor,
        id: &str,
        eu_vat_id: Option<&str>,
        rn: Option<&str>,
        country: Option<&str>,
    ) -> Result<StationRow> {
        actor.require(Need::Support)?;
        // Given and empty: cleared; given: validated as `station add` validates it.
        fn given(v: Option<&str>) -> Option<Option<&str>> {
            v.map(str::trim).map(|v| (!v.is_empty()).then_some(v))
        }
        let vat = given(eu_vat_id)
            .map(|v| v.map(EuVatId::parse).transpose())
            .transpose()?
            .map(|v| v.map(|v| v.into_string()));
        let rn = given(rn)
            .map(|v| v.map(RegistrationNumber::parse).transpose())
            .transpose()?
            .map(|v| v.map(|v| v.into_string()));
        let cc = given(country)
            .map(|v| v.map(CountryCode::parse).transpose())
            .transpose()?
            .map(|v| v.map(|v| v.into_string()));
        let (a, id) = (actor.clone(), id.trim().to_string());
        self.write(async move |cx| {
            let s = dir::station_by_id(cx, &id)
                .await?
                .filter(|s| a.can_see(&s.domain_id))
                .ok_or_else(|| {
                    Error::not_found_step("station", &id, None, Step::List(Listing::Stations))
                })?;
            a.require_domain(&s.domain_id, &s.domain)?;
            let vat = vat.unwrap_or(s.eu_vat_id.clone());
            let rn = rn.unwrap_or(s.registration_number.clone());
            let cc = cc.unwrap_or(s.country_code.clone());
            if rn.is_some() != cc.is_some() {
                return Err(rn_without_country(rn.unwrap_or_default()));
            }
            let same = (&vat, &rn, &cc) == (&s.eu_vat_id, &s.registration_number, &s.country_code);
            if same {
                return Ok(s);
            }
            if !dir::edit_station(cx, &s.id, s.version, vat.as_deref(), rn.as_deref(), cc.as_deref())
                .await?
            {
                return Err(Error::stale("station", &s.name));
            }
            audit_event(
                cx,
                &a,
                "station.edit",
                &s.name,
                Some(&s.domain_id),
                json!({
                    "id": s.id,
                    "before": {"eu_vat_id": s.eu_vat_id, "registration_number": s.registration_number, "country_code": s.country_code},
                    "after": {"eu_vat_id": vat, "registration_number": rn, "country_code": cc},
                }),
            )
            .await?;
            Ok(dir::station_by_id(cx, &s.id).await?.expect("exists"))
        })
        .await
    }

    pub async fn station_list(
        &self,
        actor: &Actor,
        mut q: StationQuery,
    ) -> Result<Vec<StationRow>> {
        restrict_domains(&mut q.domains, actor);
        self.read(async move |cx| dir::list_stations(cx, &q).await)
            .await
    }

    pub async fn station_count(&self, actor: &Actor, mut q: StationQuery) -> Result<i64> {
        restrict_domains(&mut q.domains, actor);
        self.read(async move |cx| dir::count_stations(cx, &q).await)
            .await
    }

    /// Resolves station list filters given by name.
    pub async fn station_query(
        &self,
        actor: &Actor,
        domain: Option<&str>,
        user: Option<&str>,
    ) -> Result<StationQuery> {
        let (a, domain, user) = (
            actor.clone(),
            domain.map(str::to_string),
            user.map(str::to_string),
        );
        self.read(async move |cx| {
            let mut q = StationQuery {
                limit: 100,
                ..Default::default()
            };
            if let Some(d) = &domain {
                q.domains = Some(vec![find_domain(cx, &a, d).await?.id]);
            }
            if let Some(u) = &user {
                q.user_id = Some(find_user(cx, &a, u, domain.as_deref()).await?.id);
            }
            Ok(q)
        })
        .await
    }

    /// Removes a station; a user's last station cannot be removed.
    pub async fn station_rm(&self, actor: &Actor, id: &str) -> Result<StationRow> {
        actor.require(Need::Support)?;
        let (a, id) = (actor.clone(), id.trim().to_string());
        self.write(async move |cx| {
            let s = dir::station_by_id(cx, &id)
                .await?
                .filter(|s| a.can_see(&s.domain_id))
                .ok_or_else(|| {
                    Error::not_found_step(
                        "station",
                        &id,
                        Some("stations are named by id".into()),
                        Step::List(Listing::Stations),
                    )
                })?;
            if dir::user_station_count(cx, &s.user_id).await? <= 1 {
                return Err(Error::Refused(format!(
                    "station {} is the only station of {}; every user keeps at least one",
                    s.name, s.user_email
                )));
            }
            dir::delete_station(cx, &s.id).await?;
            audit_event(
                cx,
                &a,
                "station.rm",
                &s.name,
                Some(&s.domain_id),
                json!({"id": s.id, "user": s.user_email}),
            )
            .await?;
            Ok(s)
        })
        .await
    }

    // ------------------------------------------------------------ operators

    pub async fn operator_list(&self, _actor: &Actor) -> Result<Vec<OperatorView>> {
        self.read(async |cx| {
            let mut out = Vec::new();
            for o in dir::operators(cx).await? {
                let domains = dir::operator_domains(cx, &o.id)
                    .await?
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect();
                out.push(OperatorView {
                    id: o.id,
                    account: o.account,
                    role: o.role,
                    domains,
                    created_at: o.created_at,
                });
            }
            Ok(out)
        })
        .await
    }

    pub async fn operator_add(
        &self,
        actor: &Actor,
        account: &str,
        role: &str,
        domains: &[String],
    ) -> Result<OperatorView> {
        actor.require(Need::Global)?;
        let account = OsAccount::parse(account)?;
        let role = OperatorRole::parse(role)?;
        let (a, domains) = (actor.clone(), domains.to_vec());
        self.write(async move |cx| {
            if dir::operator_by_account(cx, account.as_str())
                .await?
                .is_some()
            {
                return Err(Error::Conflict(format!(
                    "{account} is already an operator; remove it first to change its role"
                )));
            }
            let mut ds = Vec::new();
            for d in &domains {
                ds.push(find_domain(cx, &a, d).await?);
            }
            let row = OperatorRow {
                id: model::new_id(),
                account: account.to_string(),
                role: role.to_string(),
                created_at: model::now(),
                version: 1,
            };
            let ids: Vec<String> = ds.iter().map(|d| d.id.clone()).collect();
            dir::insert_operator(cx, &row, &ids).await?;
            let names: Vec<String> = ds.into_iter().map(|d| d.name).collect();
            audit_event(
                cx,
                &a,
                "operator.add",
                &row.account,
                None,
                json!({"role": row.role, "domains": names}),
            )
            .await?;
            Ok(OperatorView {
                id: row.id,
                account: row.account,
                role: row.role,
                domains: names,
                created_at: row.created_at,
            })
        })
        .await
    }

    pub async fn operator_rm(&self, actor: &Actor, account: &str) -> Result<()> {
        actor.require(Need::Global)?;
        let account = OsAccount::parse(account)?;
        let a = actor.clone();
        self.write(async move |cx| {
            let o = dir::operator_by_account(cx, account.as_str())
                .await?
                .ok_or_else(|| Error::not_found("operator", account.as_str()))?;
            let unrestricted = dir::operator_domains(cx, &o.id).await?.is_empty();
            if o.role == "admin" && unrestricted && dir::admin_count(cx).await? <= 1 {
                return Err(Error::Refused(format!(
                    "{} is the last admin of all domains; add another admin first",
                    o.account
                )));
            }
            dir::delete_operator(cx, &o.id).await?;
            audit_event(
                cx,
                &a,
                "operator.rm",
                &o.account,
                None,
                json!({"role": o.role}),
            )
            .await?;
            Ok(())
        })
        .await
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub id: String,
    pub account: String,
    pub role: String,
    pub domains: Vec<String>,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub created_at: i64,
}

/// Restricts a domain filter to the actor's domains.
fn restrict_domains(domains: &mut Option<Vec<String>>, actor: &Actor) {
    if let Some(allowed) = actor.domain_ids() {
        *domains = Some(match domains.take() {
            Some(ds) => ds.into_iter().filter(|d| allowed.contains(d)).collect(),
            None => allowed,
        });
    }
}

async fn user_detail(cx: &mut Cx<'_>, u: UserRow) -> Result<UserDetail> {
    let stations = dir::list_stations(
        cx,
        &StationQuery {
            user_id: Some(u.id.clone()),
            limit: 1000,
            ..Default::default()
        },
    )
    .await?;
    let (keys, apps) = cred::user_credential_counts(cx, &u.id).await?;
    let active_tokens = cred::count_active_tokens(cx, Holders::User(&u.id), model::now()).await?;
    let role = dir::role_by_id(cx, &u.role_id)
        .await?
        .ok_or_else(|| Error::not_found("role", &u.role_id))?;
    let effective_scopes = scopes::effective_scopes(cx, &role)
        .await?
        .into_iter()
        .collect();
    Ok(UserDetail {
        user: u,
        stations,
        keys,
        apps,
        active_tokens,
        effective_scopes,
    })
}

/// Marks a user's API access enabled (first key or token issued).
pub async fn mark_api_enabled(cx: &mut Cx<'_>, user: &UserRow) -> Result<()> {
    if user.api_access != ApiAccess::Enabled.as_str() {
        let sql_ok = dir::update_user_fields(
            cx,
            &user.id,
            user.version,
            model::now(),
            &[("api_access", Val::from(ApiAccess::Enabled.as_str()))],
        )
        .await?;
        if !sql_ok {
            return Err(Error::stale("user", &user.email));
        }
    }
    Ok(())
}

/// The password policy: 8 to 1024 characters (the value is never echoed).
pub fn check_password(p: &SecretString) -> Result<()> {
    let n = p.expose_secret().chars().count();
    if !(8..=1024).contains(&n) {
        return Err(Error::invalid(
            "password",
            "(hidden)",
            "8 to 1024 characters",
        ));
    }
    Ok(())
}

/// Every problem with a new user's own fields (email, name, password, station name),
/// each checked on its own, so that a sign-up form can show them all at once. Empty
/// when [`Keyward::user_add`] would accept them (the domain, role and uniqueness are
/// checked against the database there).
pub fn new_user_problems(new: &NewUser) -> Vec<Error> {
    let mut out = Vec::new();
    if let Err(e) = Email::parse(&new.email) {
        out.push(e);
    }
    if let Some(Err(e)) = new.name.as_deref().map(DisplayName::parse) {
        out.push(e);
    }
    if let Some(Err(e)) = new.password.as_ref().map(check_password) {
        out.push(e);
    }
    if let Some(Err(e)) = new
        .station
        .as_deref()
        .map(|s| DisplayName::parse_required("station name", s))
    {
        out.push(e);
    }
    // Each identifier on its own, so every bad one is named at once.
    let ids = &new.station_ids;
    if let Some(Err(e)) = ids.eu_vat_id.as_deref().map(EuVatId::parse) {
        out.push(e);
    }
    match ids.rn.as_deref().map(RegistrationNumber::parse) {
        Some(Err(e)) => out.push(e),
        Some(Ok(_)) if ids.country.is_none() => {
            out.push(rn_without_country(ids.rn.clone().unwrap_or_default()))
        }
        _ => {}
    }
    match ids.country.as_deref().map(CountryCode::parse) {
        Some(Err(e)) => out.push(e),
        Some(Ok(_)) if ids.rn.is_none() => out.push(rn_without_country(String::new())),
        _ => {}
    }
    out
}

/// Checks a new password's length and hashes it (argon2id) off the async workers.
pub async fn hash_new_password(p: SecretString) -> Result<String> {
    check_password(&p)?;
    super::argon2(move || crate::secret::hash_password(&p)).await
}
