//! Read models for the console: the dashboard, token records and two-way keyset pages.

use super::{Actor, Keyward};
use crate::error::Result;
use crate::store::audit::AuditRow;
use crate::store::console::{self as con, AuditPage, StationPage, TokenQuery, TokenRow};
use crate::store::credentials::{self as cred, KeyQuery};
use crate::store::directory::{
    self as dir, StationQuery, StationRow, UserQuery, UserRow, UserSort,
};
use serde::Serialize;

/// What the dashboard shows, for one domain or all the actor may see.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dashboard {
    pub domains: i64,
    pub users: i64,
    pub pending: i64,
    pub stations: i64,
    /// API keys and developer apps.
    pub keys: i64,
    pub apps: i64,
    pub active_tokens: i64,
    pub expiring_tokens: i64,
    /// Users waiting for API access, oldest first.
    pub pending_users: Vec<UserRow>,
    /// Unrevoked tokens expiring within the window, soonest first.
    pub expiring: Vec<TokenRow>,
    /// Newest audit events first.
    pub recent: Vec<AuditRow>,
}

/// How far ahead the dashboard looks for expiring tokens.
pub const EXPIRY_WINDOW_SECS: i64 = 7 * 24 * 3600;

fn restrict(domains: Option<Vec<String>>, actor: &Actor) -> Option<Vec<String>> {
    match (actor.domain_ids(), domains) {
        (Some(allowed), Some(ds)) => Some(ds.into_iter().filter(|d| allowed.contains(d)).collect()),
        (Some(allowed), None) => Some(allowed),
        (None, ds) => ds,
    }
}

impl Keyward {
    /// Counts and short lists for the console's start screen.
    pub async fn dashboard(
        &self,
        actor: &Actor,
        domain_id: Option<&str>,
        now: i64,
        list_len: i64,
    ) -> Result<Dashboard> {
        let domains = restrict(domain_id.map(|d| vec![d.to_string()]), actor);
        let a = actor.clone();
        // Three reads on their own connections at once: on 1M token records the
        // Dashboard's counts take ~30 ms one after the other.
        let (d1, d2, d3) = (domains.clone(), domains.clone(), domains);
        let people = self.read(async move |cx| {
            let visible = dir::domains(cx)
                .await?
                .into_iter()
                .filter(|d| a.can_see(&d.id))
                .filter(|d| d1.as_ref().is_none_or(|ds| ds.contains(&d.id)))
                .count() as i64;
            let uq = UserQuery {
                domains: d1.clone(),
                ..Default::default()
            };
            let users = dir::count_users(cx, &uq).await?;
            let pq = UserQuery {
                pending: true,
                sort: UserSort::Created,
                limit: list_len,
                ..uq.clone()
            };
            let pending = dir::count_users(cx, &pq).await?;
            let pending_users = dir::list_users(cx, &pq).await?;
            Ok((visible, users, pending, pending_users))
        });
        let places = self.read(async move |cx| {
            let stations = dir::count_stations(
                cx,
                &StationQuery {
                    domains: d2.clone(),
                    ..Default::default()
                },
            )
            .await?;
            let keys = cred::count_keys(
                cx,
                &KeyQuery {
                    domains: d2.clone(),
                    ..Default::default()
                },
            )
            .await?;
            let apps = cred::count_apps(cx, d2.as_deref()).await?;
            let recent = con::audit_page(
                cx,
                &AuditPage {
                    domains: d2,
                    limit: list_len,
                    ..Default::default()
                },
            )
            .await?;
            Ok((stations, keys, apps, recent))
        });
        let tokens = self.read_tokens(async move |cx| {
            let active_tokens = con::count_active_tokens(cx, &d3, now).await?;
            let tq = TokenQuery {
                domains: d3,
                expiring: Some((now, now + EXPIRY_WINDOW_SECS)),
                sort: con::TokenSort::Expires,
                limit: list_len,
                ..Default::default()
            };
            let expiring_tokens = con::count_tokens(cx, &tq).await?;
            let expiring = con::list_tokens(cx, &tq).await?;
            Ok((active_tokens, expiring_tokens, expiring))
        });
        let (people, places, tokens) = tokio::join!(people, places, tokens);
        let (domains, users, pending, pending_users) = people?;
        let (stations, keys, apps, recent) = places?;
        let (active_tokens, expiring_tokens, expiring) = tokens?;
        Ok(Dashboard {
            domains,
            users,
            pending,
            stations,
            keys,
            apps,
            active_tokens,
            expiring_tokens,
            pending_users,
            expiring,
            recent,
        })
    }

    /// A page of token records (restricted to the actor's domains).
    pub async fn token_page(&self, actor: &Actor, mut q: TokenQuery) -> Result<Vec<TokenRow>> {
        q.domains = restrict(q.domains.take(), actor);
        self.read_tokens(async move |cx| con::list_tokens(cx, &q).await)
            .await
    }

    pub async fn token_page_count(&self, actor: &Actor, mut q: TokenQuery) -> Result<i64> {
        q.domains = restrict(q.domains.take(), actor);
        self.read_tokens(async move |cx| con::count_tokens(cx, &q).await)
            .await
    }

    /// A page of stations in either direction (restricted to the actor's domains).
    pub async fn station_page(&self, actor: &Actor, mut q: StationPage) -> Result<Vec<StationRow>> {
        q.domains = restrict(q.domains.take(), actor);
        self.read(async move |cx| con::station_page(cx, &q).await)
            .await
    }

    pub async fn station_page_count(&self, actor: &Actor, mut q: StationPage) -> Result<i64> {
        q.domains = restrict(q.domains.take(), actor);
        self.read(async move |cx| con::station_page_count(cx, &q).await)
            .await
    }

    /// A page of audit events in either direction; domain-limited operators see only
    /// their domains' events.
    pub async fn audit_page(&self, actor: &Actor, mut q: AuditPage) -> Result<Vec<AuditRow>> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = restrict(q.domains.take(), actor).or(Some(ids));
        }
        self.read(async move |cx| con::audit_page(cx, &q).await)
            .await
    }

    pub async fn audit_page_count(&self, actor: &Actor, mut q: AuditPage) -> Result<i64> {
        if let Some(ids) = actor.domain_ids() {
            q.domains = restrict(q.domains.take(), actor).or(Some(ids));
        }
        self.read(async move |cx| con::audit_page_count(cx, &q).await)
            .await
    }
}
