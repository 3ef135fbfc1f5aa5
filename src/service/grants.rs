//! The token service's use cases: client authentication, the OAuth 2.0 grants
//! (`client_credentials`, `refresh_token`, `password`), sign-in, sign-up, token
//! revocation and introspection for clients, and self-service personal tokens.
//!
//! Hot path (`client_credentials`): API keys are cached by `client_id` for
//! [`KEY_CACHE_TTL`] (with the owner's status and role scopes), the secret's keyed hash
//! is checked in memory, the token is signed on the worker, and its record goes to a
//! group-commit [`Recorder`]: a task that writes every record queued meanwhile in one
//! transaction (multi-row inserts) and answers each request only after the commit. So a
//! token is never handed out before its record exists (it can always be listed,
//! introspected and revoked), while the database sees one transaction per batch rather
//! than per grant. On SQLite the recorder holds a batch open for a moment while other
//! grants are still being signed (see `gather`), so that under load a commit carries
//! several grants. The same transaction re-checks that the keys the batch relied on
//! still exist, are unexpired, unchanged (`version`) and that their users are still
//! active and unchanged, so a stale cache entry can never mint a token: such requests
//! are retried once with a fresh entry.

use super::credentials::{narrow_scopes, token_scopes, user_role_scopes};
use super::scopes::ScopeGraph;
use super::settings::Settings;
use super::tokens::{
    Grant, Introspection, LOGIN_CLIENT, MintSpec, Minted, RevokeWhat, new_refresh_value,
    refresh_hashes, sign_grant,
};
use super::{Actor, Keyward, audit_event};
use crate::error::{Error, Result};
use crate::model::{self, ScopeName};
use crate::store::Writer;
use crate::store::credentials::{self as cred, AppRow, KeyRow, TokenQuery, TokenRecord};
use crate::store::directory as dir;
use crate::store::grants as gs;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a key looked up by `client_id` is trusted before it is read again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
/// How long an unknown `client_id` is remembered as unknown.
const MISS_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most records written in one group commit.
const MAX_BATCH: usize = 512;
/// Batches in flight at once on PostgreSQL (each on its own connection).
const PG_LANES: usize = 4;
/// Journaled grants (SQLite) after which the recorder settles the journal (the
/// service's 2-second tick settles what is left when fewer come).
const SETTLE_ROWS: usize = 2048;
/// Longest the SQLite lane holds a batch open for grants still being signed.
const GATHER_FOR: Duration = Duration::from_micros(150);

/// An OAuth error (RFC 6749 §5.2), or a failure of the service itself.
#[derive(Debug)]
pub enum GrantError {
    InvalidRequest(String),
    InvalidClient(String),
    InvalidGrant(String),
    UnauthorizedClient(String),
    UnsupportedGrantType(String),
    InvalidScope(String),
    /// `invalid_grant` for a refresh token or authorization code presented a second
    /// time: the tokens it issued have just been revoked (a front-end that verifies
    /// tokens in memory should take the revocation in before it answers).
    Reused(String),
    Core(Error),
}

impl From<Error> for GrantError {
    fn from(e: Error) -> Self {
        GrantError::Core(e)
    }
}

impl GrantError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::InvalidRequest(_) => "invalid_request",
            GrantError::InvalidClient(_) => "invalid_client",
            GrantError::InvalidGrant(_) | GrantError::Reused(_) => "invalid_grant",
            GrantError::UnauthorizedClient(_) => "unauthorized_client",
            GrantError::UnsupportedGrantType(_) => "unsupported_grant_type",
            GrantError::InvalidScope(_) => "invalid_scope",
            GrantError::Core(_) => "server_error",
        }
    }
    /// The `error_description` (never a secret; core failures are not detailed).
    pub fn description(&self) -> String {
        match self {
            GrantError::InvalidRequest(m)
            | GrantError::InvalidClient(m)
            | GrantError::InvalidGrant(m)
            | GrantError::UnauthorizedClient(m)
            | GrantError::UnsupportedGrantType(m)
            | GrantError::InvalidScope(m)
            | GrantError::Reused(m) => m.clone(),
            GrantError::Core(_) => "the token service failed; try again later".into(),
        }
    }
}

type GResult<T> = std::result::Result<T, GrantError>;

/// Maps a scope-narrowing failure to `invalid_scope`.
fn scope_err(e: Error) -> GrantError {
    match e {
        Error::Refused(m) => GrantError::InvalidScope(m),
        e @ (Error::NotFound { .. } | Error::Invalid { .. } | Error::Blocked { .. }) => {
            GrantError::InvalidScope(e.without_step())
        }
        e => GrantError::Core(e),
    }
}

/// Parses a space-separated `scope` parameter.
pub fn parse_scope_param(s: Option<&str>) -> GResult<Option<Vec<ScopeName>>> {
    match s {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => s
            .split_ascii_whitespace()
            .map(ScopeName::parse)
            .collect::<Result<Vec<_>>>()
            .map(Some)
            .map_err(|e| GrantError::InvalidScope(e.to_string())),
    }
}

/// An API key as cached, with what its grants need.
#[derive(Debug)]
pub struct KeyEntry {
    pub key: KeyRow,
    pub user_status: String,
    pub user_version: i64,
    /// Key scopes (closed) ∩ the owner's role scopes.
    pub allowed: BTreeSet<String>,
    pub graph: Arc<ScopeGraph>,
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub enum Client {
    Key(Arc<KeyEntry>),
    App(Box<AppRow>),
}

/// A client authenticated with its secret: only [`TokenService::prove`] makes one, so a
/// grant handed one ([`TokenService::client_credentials`]'s `proven`) need not check
/// the secret again, and no caller can claim a client it did not prove.
#[derive(Debug, Clone)]
pub struct Proven(Client);

impl Proven {
    pub fn client(&self) -> &Client {
        &self.0
    }
    pub fn into_client(self) -> Client {
        self.0
    }
}

impl Client {
    pub fn client_id(&self) -> &str {
        match self {
            Client::Key(k) => &k.key.client_id,
            Client::App(a) => &a.client_id,
        }
    }
    pub fn domain(&self) -> &str {
        match self {
            Client::Key(k) => &k.key.domain,
            Client::App(a) => &a.domain,
        }
    }
    pub fn domain_id(&self) -> &str {
        match self {
            Client::Key(k) => &k.key.domain_id,
            Client::App(a) => &a.domain_id,
        }
    }
}

/// Who asks [`TokenService::revoke`] to revoke a token: an authenticated client, or
/// the sign-in's public client (`keyward-login`, which has no secret: RFC 7009 §2.1
/// asks credentials of confidential clients only) on the request's domain.
#[derive(Clone, Copy)]
pub enum Revoker<'a> {
    Client(&'a Client),
    Login { domain_id: &'a str },
}

impl Revoker<'_> {
    fn client_id(&self) -> &str {
        match self {
            Revoker::Client(c) => c.client_id(),
            Revoker::Login { .. } => LOGIN_CLIENT,
        }
    }
    fn domain_id(&self) -> &str {
        match self {
            Revoker::Client(c) => c.domain_id(),
            Revoker::Login { domain_id } => domain_id,
        }
    }
}

/// What [`TokenService::revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked, already revoked, or unknown here (a token of another domain included:
    /// nothing crosses domains, not even whether a token exists): 200.
    Done,
    /// The token was issued to this other client of the same domain (§2.1: refused).
    OtherClient(String),
}

struct Pending {
    issued: gs::Issued,
    reply: oneshot::Sender<Result<bool>>,
}

/// The group-commit writer of token records (see the module documentation).
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
    /// Grants being authenticated and signed whose records are not queued yet.
    preparing: Arc<Gathering>,
}

/// What the SQLite lane's [`gather`] waits on: the grants being prepared, and the
/// lane's thread, woken when the last of them is queued.
#[derive(Default)]
struct Gathering {
    count: AtomicUsize,
    lane: OnceLock<std::thread::Thread>,
}

/// Counts a grant as being prepared for the [`Recorder`] until it is queued or dropped.
struct Preparing(Option<Arc<Gathering>>);

impl Preparing {
    /// Counts the grant out; returns the lane's thread to wake when it was the last one
    /// being prepared (a lane may be holding its batch open for it).
    fn count_out(&mut self) -> Option<std::thread::Thread> {
        let g = self.0.take()?;
        if g.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            g.lane.get().cloned()
        } else {
            None
        }
    }
}

impl Drop for Preparing {
    fn drop(&mut self) {
        if let Some(t) = self.count_out() {
            t.unpark();
        }
    }
}

impl Recorder {
    /// Starts the lanes; the receiver returned reports (as closed) when every lane has
    /// stopped, which they do once every `Recorder` is dropped.
    fn start(kw: Keyward) -> (Recorder, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel::<Pending>(8192);
        let (alive, stopped) = mpsc::channel::<()>(1);
        let preparing = Arc::new(Gathering::default());
        // SQLite has one writer at a time, so one lane; PostgreSQL commits batches side
        // by side, so several lanes keep its commit latency off the throughput (each
        // request still waits for its own batch's commit).
        let lanes = match kw.db().engine() {
            crate::store::Engine::Sqlite => 1,
            crate::store::Engine::Postgres => PG_LANES,
        };
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let main = tokio::runtime::Handle::current();
        if lanes == 1 {
            // SQLite: the lane gets a thread and a runtime of its own. On the shared
            // runtime each of its statements, answered by sqlx's worker thread, queued
            // its wake-up behind the HTTP connections' tasks, which held batches open
            // and the writer idle; on its own thread it runs as soon as it is woken.
            let spawned = std::thread::Builder::new()
                .name("keyward-recorder".into())
                .spawn({
                    let (kw, rx, preparing, main, alive) = (
                        kw.clone(),
                        rx.clone(),
                        preparing.clone(),
                        main.clone(),
                        alive.clone(),
                    );
                    move || match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = preparing.lane.set(std::thread::current());
                            rt.block_on(lane(kw, rx, Some(preparing), main, alive))
                        }
                        Err(e) => tracing::error!(error = %e, "cannot start the token recorder"),
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no thread for the token recorder; sharing the runtime");
                tokio::spawn(lane(kw, rx, None, main, alive));
            }
        } else {
            for _ in 0..lanes {
                tokio::spawn(lane(
                    kw.clone(),
                    rx.clone(),
                    None,
                    main.clone(),
                    alive.clone(),
                ));
            }
        }
        (Recorder { tx, preparing }, stopped)
    }

    /// Announces a grant that will be recorded shortly (see [`gather`]).
    fn preparing(&self) -> Preparing {
        self.preparing.count.fetch_add(1, Ordering::AcqRel);
        Preparing(Some(self.preparing.clone()))
    }

    /// Records a token (and its refresh token); false when a credential it relied on
    /// changed meanwhile (nothing was recorded). `prepared` is counted out before the
    /// grant is queued (a lane that takes a lone grant must not wait for it), and the
    /// lane woken after it is, when it was the last one (so the batch takes it).
    async fn record(
        &self,
        mut prepared: Preparing,
        rec: TokenRecord,
        refresh: Option<gs::IssuedRefresh>,
        check: Option<(i64, i64)>,
    ) -> Result<bool> {
        let (reply, rx) = oneshot::channel();
        let wake = prepared.count_out();
        self.tx
            .send(Pending {
                issued: gs::Issued {
                    rec,
                    refresh,
                    check,
                },
                reply,
            })
            .await
            .map_err(|_| Error::Database("the token recorder has stopped".into()))?;
        if let Some(t) = wake {
            t.unpark();
        }
        rx.await
            .map_err(|_| Error::Database("the token recorder has stopped".into()))?
    }
}

/// Holds a batch open, on the SQLite lane's own thread, while grants are still being
/// signed (up to [`GATHER_FOR`]), taking what they queue. Under load this turns a
/// commit per grant into one per several (a SQLite commit costs about as much as
/// writing a dozen rows); a lone client is never kept waiting, since nothing else is
/// being prepared then. The thread parks meanwhile and the last grant queued wakes it
/// (see [`Preparing`]): a timed sleep would hold the batch for the kernel's timer
/// slack too (a 40 µs sleep lasts ~95 µs), time in which every request may be waiting
/// on this batch and the cores idle.
async fn gather(
    rx: &tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    batch: &mut Vec<Pending>,
    preparing: &Gathering,
) {
    let deadline = Instant::now() + GATHER_FOR;
    loop {
        {
            let mut rx = rx.lock().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        let now = Instant::now();
        if batch.len() >= MAX_BATCH
            || preparing.count.load(Ordering::Acquire) == 0
            || now >= deadline
        {
            break;
        }
        // Blocking: this thread runs nothing else. Woken early by the last grant
        // queued; spurious wake-ups just look again.
        std::thread::park_timeout(deadline - now);
    }
}

/// One writer of the recorder: takes what is queued (up to a batch) and records it,
/// until every sender is gone. `preparing` is given to the SQLite lane, which runs on
/// a thread of its own and gathers batches (see [`gather`]); `main` is the service's
/// runtime, where the SQLite lane has the journal copied into the token tables.
/// `alive` is dropped when the lane has settled the journal and closed its connection.
async fn lane(
    kw: Keyward,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    preparing: Option<Arc<Gathering>>,
    main: tokio::runtime::Handle,
    alive: mpsc::Sender<()>,
) {
    // Its own connection, kept across batches (opened again after a failure).
    let mut writer: Option<Writer> = None;
    // Keys whose `last_used_at` already says this second (no need to write it).
    let mut touched: HashMap<String, i64> = HashMap::new();
    let mut batch = Vec::new();
    // Grants journaled since the journal was last copied (SQLite only: PostgreSQL's
    // trigger writes the token tables directly).
    let journals = kw.db().engine() == crate::store::Engine::Sqlite;
    let mut journaled = 0usize;
    // The copy of the journal into the token tables running beside this lane.
    let mut copying: Option<tokio::task::JoinHandle<Result<Option<i64>>>> = None;
    loop {
        // A lane takes what is queued, up to a batch, then lets the next lane in.
        if rx.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        if let Some(p) = &preparing {
            gather(&rx, &mut batch, p).await;
        }
        let recorded = flush(
            &kw,
            &main,
            &mut writer,
            &mut touched,
            std::mem::take(&mut batch),
        )
        .await;
        if journals {
            journaled += recorded;
        }
        // Now and then the journal is copied into the token tables in bulk, on another
        // connection while batches go on (the journal has a file, and a write lock, of
        // its own); the lane then deletes what was copied. A write transaction moves
        // whatever is left when it begins.
        if copying.as_ref().is_some_and(|c| c.is_finished())
            && let Some(c) = copying.take()
        {
            forget_copied(&mut writer, c.await).await;
        }
        if journaled >= SETTLE_ROWS && copying.is_none() {
            let kw = kw.clone();
            copying = Some(main.spawn(async move { kw.copy_journal().await }));
            journaled = 0;
        }
    }
    if let Some(c) = copying.take() {
        forget_copied(&mut writer, c.await).await;
    }
    // Leave nothing journaled, on the lane's own connection (the pool may be closing).
    if journals {
        settle(&kw, &mut writer).await;
    }
    // Closed, not just dropped (which closes it later, on its own thread): the last
    // connection to close a SQLite file checkpoints it and removes its WAL.
    if let Some(w) = writer.take() {
        w.close().await;
    }
    drop(alive);
}

/// Deletes from the journal what a finished copy moved into the token tables.
async fn forget_copied(
    writer: &mut Option<Writer>,
    copied: std::result::Result<Result<Option<i64>>, tokio::task::JoinError>,
) {
    let outcome = match copied {
        Ok(Ok(Some(upto))) => match writer.as_mut() {
            Some(w) => gs::forget_journal(&mut w.cx(), upto).await.map(|_| ()),
            None => Ok(()),
        },
        Ok(Ok(None)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(Error::Database(e.to_string())),
    };
    if let Err(e) = outcome {
        // What stays journaled is moved by the next copy or write transaction.
        tracing::warn!(error = %e, "moving the token journal failed");
    }
}

/// Settles the token journal on the lane's connection (a write transaction settles it
/// when it begins; this one does nothing else).
async fn settle(kw: &Keyward, writer: &mut Option<Writer>) {
    if let Some(w) = writer.as_mut()
        && let Err(e) = kw.write_on(w, async |_| Ok(())).await
    {
        tracing::warn!(error = %e, "settling the token journal failed");
    }
}

/// Records a batch and answers its requests; returns how many grants it recorded.
async fn flush(
    kw: &Keyward,
    main: &tokio::runtime::Handle,
    writer: &mut Option<Writer>,
    touched: &mut HashMap<String, i64>,
    items: Vec<Pending>,
) -> usize {
    let now = model::now();
    if touched.len() > 10_000 {
        touched.clear();
    }
    // Keys to mark used: those not yet marked this second.
    let mut touch: Vec<String> = items
        .iter()
        .filter_map(|p| p.issued.rec.key_id.as_ref())
        .filter(|id| touched.get(*id) != Some(&now))
        .cloned()
        .collect();
    touch.sort_unstable();
    touch.dedup();
    let (issued, replies): (Vec<gs::Issued>, Vec<_>) =
        items.into_iter().map(|p| (p.issued, p.reply)).unzip();
    let n = issued.len();
    let started = Instant::now();
    let out = match writer {
        Some(w) => Ok(w),
        // Boxed: opening a connection is a ~15 KB future, which would otherwise make
        // every batch's future that large (built and moved per batch).
        None => Box::pin(kw.writer()).await.map(|w| writer.insert(w)),
    };
    let out = match out {
        // One statement for the whole batch; if a key changed meanwhile, grant by grant.
        Ok(w) => match gs::record_grants(w, &issued).await {
            Ok(true) => Ok(vec![true; n]),
            Ok(false) => {
                kw.write_on(w, async |cx| gs::record_batch(cx, issued, now).await)
                    .await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match out {
        Ok(ok) => {
            let recorded = ok.iter().filter(|ok| **ok).count();
            tracing::trace!(
                records = ok.len(),
                micros = started.elapsed().as_micros() as u64,
                "token batch recorded"
            );
            for (reply, ok) in replies.into_iter().zip(ok) {
                let _ = reply.send(Ok(ok));
            }
            // `last_used_at`, at most once a second per key, after the answers, in a
            // statement of its own on another connection: on SQLite it needs the main
            // database's write lock, which the journal's copy may be holding.
            if !touch.is_empty() {
                touched.extend(touch.iter().map(|id| (id.clone(), now)));
                let kw = kw.clone();
                main.spawn(async move {
                    if let Err(e) = kw
                        .autocommit(async |cx| gs::touch_keys(cx, &touch, now).await)
                        .await
                    {
                        tracing::warn!(error = %e, "marking API keys used failed");
                    }
                });
            }
            recorded
        }
        Err(e) => {
            tracing::error!(error = %e, "recording token batch failed");
            // The connection may be what failed: the next batch opens a new one.
            *writer = None;
            let msg = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(Error::Database(msg.clone())));
            }
            0
        }
    }
}

type KeyCache = HashMap<String, (Instant, Option<Arc<KeyEntry>>)>;

/// The token service's core: caches and the recorder over a [`Keyward`].
pub struct TokenService {
    kw: Keyward,
    keys: RwLock<KeyCache>,
    settings: RwLock<Arc<Settings>>,
    /// Domain name → id.
    domains: RwLock<Arc<HashMap<String, String>>>,
    recorder: Recorder,
    /// Closed when the recorder's lanes have stopped (see [`TokenService::stopped`]).
    stopped: std::sync::Mutex<Option<mpsc::Receiver<()>>>,
}

impl TokenService {
    /// Loads settings and domains and starts the recorder (needs a tokio runtime).
    pub async fn start(kw: Keyward) -> Result<Arc<TokenService>> {
        // Fail early on a missing master key or signing key.
        kw.secrets().await?;
        kw.signing_ring().await?;
        let settings = kw.settings().await?;
        let (recorder, stopped) = Recorder::start(kw.clone());
        let s = TokenService {
            settings: RwLock::new(Arc::new(settings)),
            keys: RwLock::new(HashMap::new()),
            domains: RwLock::new(Arc::new(HashMap::new())),
            recorder,
            stopped: std::sync::Mutex::new(Some(stopped)),
            kw,
        };
        s.tick().await?;
        Ok(Arc::new(s))
    }

    /// Completes once the service has been dropped and its recorder has recorded every
    /// grant it was given, moved the journal into the token tables and closed its
    /// connection. A process that exits before then leaves that work to the next one
    /// (and the SQLite WAL files behind). Only the first call waits; later ones
    /// complete at once.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let rx = self.stopped.lock().expect("lock").take();
        async move {
            if let Some(mut rx) = rx {
                // Nothing is ever sent: `None` once every lane has dropped its sender.
                while rx.recv().await.is_some() {}
            }
        }
    }

    pub fn keyward(&self) -> &Keyward {
        &self.kw
    }

    /// Checkpoints the recorder's writes (SQLite), re-reads settings and domains, drops
    /// expired cache entries, and reloads the signing keys when another process rotated
    /// them. Returns true when keys changed.
    pub async fn tick(&self) -> Result<bool> {
        // Grants journaled while no more came (the recorder moves the journal every
        // few thousand), beside the recorder.
        self.kw.move_journal().await?;
        // The recorder's connection leaves checkpoints to this (see `Writer`).
        self.kw.checkpoint().await?;
        *self.settings.write().expect("lock") = Arc::new(self.kw.settings().await?);
        let domains: HashMap<String, String> = self
            .kw
            .read(async |cx| {
                Ok(dir::domains(cx)
                    .await?
                    .into_iter()
                    .map(|d| (d.name, d.id))
                    .collect())
            })
            .await?;
        *self.domains.write().expect("lock") = Arc::new(domains);
        {
            let mut keys = self.keys.write().expect("lock");
            keys.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
        }
        let active = self.kw.read(async |cx| cred::active_kid(cx).await).await?;
        let ring = self.kw.signing_ring().await?;
        if active.as_deref() != ring.active.as_ref().map(|a| a.kid.as_str()) {
            self.kw.reload_signing_keys().await?;
            return Ok(true);
        }
        Ok(false)
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().expect("lock").clone()
    }

    /// The id of a known domain.
    pub fn domain_id(&self, name: &str) -> Option<String> {
        self.domains.read().expect("lock").get(name).cloned()
    }

    fn actor(origin: &str) -> Actor {
        Actor::system("keyward-serve", origin)
    }

    // ------------------------------------------------------------ clients

    /// An API key by client_id, from the cache or the database.
    pub async fn key_entry(&self, client_id: &str) -> Result<Option<Arc<KeyEntry>>> {
        if let Some((at, e)) = self.keys.read().expect("lock").get(client_id)
            && at.elapsed()
                < if e.is_some() {
                    KEY_CACHE_TTL
                } else {
                    MISS_CACHE_TTL
                }
        {
            return Ok(e.clone());
        }
        // Boxed: a cache miss reads the database, and that future is ~15 KB; inline, it
        // would make every grant's future that large (moved and copied per request).
        Box::pin(self.load_key(client_id)).await
    }

    async fn load_key(&self, client_id: &str) -> Result<Option<Arc<KeyEntry>>> {
        let id = client_id.to_string();
        let entry = if !client_id.starts_with("kw_") || client_id.len() > 100 {
            None
        } else {
            self.kw
                .read(async move |cx| {
                    let Some(key) = cred::key_by_client_id(cx, &id).await? else {
                        return Ok(None);
                    };
                    let Some(u) = dir::user_by_id(cx, &key.user_id).await? else {
                        return Ok(None);
                    };
                    let graph = ScopeGraph::load(cx).await?;
                    let role = user_role_scopes(cx, &u.role_id).await?;
                    let allowed = graph
                        .closure(key.scopes.split_whitespace())
                        .intersection(&role)
                        .cloned()
                        .collect();
                    Ok(Some(Arc::new(KeyEntry {
                        key,
                        user_status: u.status,
                        user_version: u.version,
                        allowed,
                        graph: Arc::new(graph),
                    })))
                })
                .await?
        };
        let mut keys = self.keys.write().expect("lock");
        if keys.len() > 100_000 {
            keys.clear();
        }
        keys.insert(client_id.to_string(), (Instant::now(), entry.clone()));
        Ok(entry)
    }

    fn forget_key(&self, client_id: &str) {
        self.keys.write().expect("lock").remove(client_id);
    }

    /// Authenticates a client (API key or developer app) by id and secret. Unknown
    /// clients and wrong secrets are indistinguishable to the caller.
    pub async fn authenticate(&self, client_id: &str, secret: &str) -> GResult<Client> {
        let bad = || GrantError::InvalidClient("client authentication failed".into());
        let secrets = self.kw.secrets().await?;
        if client_id.starts_with("kwapp_") && client_id.len() <= 100 {
            let id = client_id.to_string();
            let app = Box::pin(
                self.kw
                    .read(async move |cx| cred::app_by_client_id(cx, &id).await),
            )
            .await?
            .ok_or_else(bad)?;
            return if secrets.verify(secret, &app.secret_hash) {
                Ok(Client::App(Box::new(app)))
            } else {
                Err(bad())
            };
        }
        let entry = self.key_entry(client_id).await?.ok_or_else(bad)?;
        if !secrets.verify(secret, &entry.key.secret_hash) {
            return Err(bad());
        }
        if entry.key.expires_at.is_some_and(|e| e <= model::now()) {
            return Err(GrantError::InvalidClient("the API key has expired".into()));
        }
        Ok(Client::Key(entry))
    }

    /// [`Self::authenticate`], as a proof the request can hand on (the token service's
    /// rate limiter authenticates a client before it charges its budget).
    pub async fn prove(&self, client_id: &str, secret: &str) -> GResult<Proven> {
        self.authenticate(client_id, secret).await.map(Proven)
    }

    /// [`Self::authenticate`], unless `proven` already is this client.
    pub async fn authenticate_unless(
        &self,
        proven: Option<Proven>,
        client_id: &str,
        secret: &str,
    ) -> GResult<Client> {
        match proven {
            Some(Proven(c)) if c.client_id() == client_id => Ok(c),
            _ => self.authenticate(client_id, secret).await,
        }
    }

    // ------------------------------------------------------------ grants

    /// `client_credentials`: a token for the key's owner within the key's scopes,
    /// with a refresh token unless the key is set not to issue one. `proven`: this
    /// client as already proven in this request ([`Self::prove`]), so that the secret
    /// is not checked twice; used for the first try only.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        mut proven: Option<Proven>,
        scopes: Option<&[ScopeName]>,
    ) -> GResult<Minted> {
        for _ in 0..2 {
            let prepared = self.recorder.preparing();
            let Client::Key(entry) = self
                .authenticate_unless(proven.take(), client_id, secret)
                .await?
            else {
                return Err(GrantError::UnauthorizedClient(
                    "developer apps obtain tokens with the authorization_code grant".into(),
                ));
            };
            if entry.user_status != "active" {
                return Err(GrantError::UnauthorizedClient(
                    "the key's owner is disabled".into(),
                ));
            }
            let granted = token_scopes(
                &entry.graph,
                scopes,
                &entry.allowed,
                &format!("key {}", entry.key.client_id),
            )
            .map_err(scope_err)?;
            let settings = self.settings();
            let ring = self.kw.signing_ring().await?;
            let k = &entry.key;
            let family = k.issue_refresh.then(model::new_id);
            let now = model::now();
            let grant = Grant {
                domain_id: k.domain_id.clone(),
                domain: k.domain.clone(),
                user_id: k.user_id.clone(),
                key_id: Some(k.id.clone()),
                app_id: None,
                client_id: k.client_id.clone(),
                scopes: granted,
                ttl: k.ttl_within(settings.grant_ttl.secs(), now),
                source: "client_credentials",
                family_id: family.clone(),
            };
            let (jwt, rec) = sign_grant(&ring, &settings.issuer, &grant, now)?;
            let (refresh_value, refresh_row) = match &family {
                Some(_) => {
                    let secrets = self.kw.secrets().await?;
                    let (v, token_hash) = new_refresh_value(&secrets);
                    let r = gs::IssuedRefresh {
                        token_hash,
                        expires_at: now + settings.refresh_ttl.secs(),
                    };
                    (Some(v.expose_secret().to_string()), Some(r))
                }
                None => (None, None),
            };
            let scope = rec.scopes.clone();
            let jti = rec.jti.clone();
            let check = Some((k.version, entry.user_version));
            if self
                .recorder
                .record(prepared, rec, refresh_row, check)
                .await?
            {
                return Ok(Minted {
                    access_token: jwt,
                    token_type: "Bearer",
                    expires_in: grant.ttl,
                    scope,
                    jti,
                    refresh_token: refresh_value,
                });
            }
            // The key or its owner changed since it was cached: read it again (once).
            self.forget_key(client_id);
        }
        Err(GrantError::InvalidClient(
            "the API key changed while the token was issued; try again".into(),
        ))
    }

    /// `refresh_token`: rotation with reuse detection. `client` is the authenticated
    /// client, or None for sign-in tokens (which have no client secret).
    pub async fn refresh(
        &self,
        refresh: &str,
        client: Option<&Client>,
        scopes: Option<&[ScopeName]>,
    ) -> GResult<Minted> {
        if refresh.is_empty() || refresh.len() > 200 {
            return Err(GrantError::InvalidGrant("unknown refresh token".into()));
        }
        let client_id = client.map(Client::client_id).unwrap_or(LOGIN_CLIENT);
        match self
            .kw
            .redeem_refresh(refresh, Some(client_id), scopes)
            .await
        {
            Ok(m) => Ok(m),
            Err(Error::Refused(m)) => Err(GrantError::InvalidGrant(m)),
            Err(Error::Reused(m)) => Err(GrantError::Reused(m)),
            Err(Error::PermissionDenied(m)) => Err(GrantError::InvalidClient(m)),
            Err(e @ Error::Invalid { .. }) => Err(GrantError::InvalidScope(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Signs a user in with email and password: a `keyward-login` token and a refresh
    /// token. Argon2 runs off the async workers; unknown users cost the same time.
    pub async fn password_login(
        &self,
        domain_id: &str,
        username: &str,
        password: SecretString,
        scopes: Option<&[ScopeName]>,
    ) -> GResult<Minted> {
        let bad = || GrantError::InvalidGrant("invalid username or password".into());
        let Some(user_id) = self.check_password(domain_id, username, password).await? else {
            return Err(bad());
        };
        let settings = self.settings();
        let secrets = self.kw.secrets().await?;
        let ring = self.kw.signing_ring().await?;
        let scopes = scopes.map(<[ScopeName]>::to_vec);
        let out: GResult<Minted> = self
            .kw
            .write(async move |cx| {
                let Some(u) = dir::user_by_id(cx, &user_id).await? else {
                    return Ok(Err(bad()));
                };
                if u.status != "active" {
                    return Ok(Err(bad()));
                }
                let g = ScopeGraph::load(cx).await?;
                let role = user_role_scopes(cx, &u.role_id).await?;
                let granted = match narrow_scopes(
                    &g,
                    scopes.as_deref(),
                    &role,
                    &format!("role {}", u.role),
                ) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(scope_err(e))),
                };
                let family = model::new_id();
                let grant = Grant {
                    domain_id: u.domain_id.clone(),
                    domain: u.domain.clone(),
                    user_id: u.id.clone(),
                    key_id: None,
                    app_id: None,
                    client_id: LOGIN_CLIENT.to_string(),
                    scopes: granted,
                    ttl: settings.grant_ttl.secs(),
                    source: "login",
                    family_id: Some(family.clone()),
                };
                let (jwt, rec) = sign_grant(&ring, &settings.issuer, &grant, model::now())?;
                cred::insert_token_records(cx, std::slice::from_ref(&rec)).await?;
                let refresh =
                    Keyward::issue_refresh(cx, &secrets, &settings, &grant, &family).await?;
                Ok(Ok(Minted {
                    access_token: jwt,
                    token_type: "Bearer",
                    expires_in: grant.ttl,
                    scope: rec.scopes,
                    jti: rec.jti,
                    refresh_token: Some(refresh.expose_secret().to_string()),
                }))
            })
            .await?;
        out
    }

    // ------------------------------------------------------------ clients' tokens

    /// RFC 7662 for a client: DB-checked; tokens of other domains are inactive. A
    /// refresh token is active only to the client it was issued to (nobody else has
    /// any business holding it), while unspent, unrevoked, unexpired and its user active.
    pub async fn introspect(&self, client: &Client, token: &str) -> Result<Introspection> {
        let token = token.trim();
        if token.starts_with("kwr_") && token.len() <= 200 {
            return self.introspect_refresh(client, token).await;
        }
        let mut i = self.kw.introspect(None, token).await?;
        if i.active && i.aud.as_deref() != Some(client.domain()) {
            i.active = false;
            i.reason = Some(crate::token::Reason::InvalidAudience);
        }
        Ok(i)
    }

    async fn introspect_refresh(&self, client: &Client, token: &str) -> Result<Introspection> {
        let secrets = self.kw.secrets().await?;
        let hashes = refresh_hashes(&secrets, token);
        let client_id = client.client_id().to_string();
        let found = self
            .kw
            .read_tokens(async move |cx| {
                let Some(r) = cred::refresh_by_any_hash(cx, &hashes).await? else {
                    return Ok(None);
                };
                let user = dir::user_by_id(cx, &r.user_id).await?;
                let domain = dir::domain_by_id(cx, &r.domain_id).await?;
                Ok(Some((r, user, domain)))
            })
            .await?;
        let now = model::now();
        let mut i = Introspection::inactive(crate::token::Reason::Malformed);
        i.refresh = true;
        let Some((r, user, domain)) = found else {
            return Ok(i);
        };
        let active = r.client_id == client_id
            && r.used_at.is_none()
            && r.revoked_at.is_none()
            && r.expires_at > now
            && user.is_some_and(|u| u.status == "active");
        if active {
            i.active = true;
            i.reason = None;
            i.sub = Some(r.user_id);
            i.scope = Some(r.scopes);
            i.client_id = Some(r.client_id);
            i.exp = Some(r.expires_at);
            i.iat = Some(r.issued_at);
            i.iss = Some(self.settings().issuer.clone());
            i.aud = domain.map(|d| d.name);
        }
        Ok(i)
    }

    /// RFC 7009: revokes an access token or a refresh token (with its family) that was
    /// issued to this client; [`Revoked::OtherClient`] when it was issued to another
    /// client of the domain (§2.1: the request is refused). Unknown tokens, and tokens
    /// of other domains, are ignored (the caller answers 200). Audited.
    pub async fn revoke(&self, by: Revoker<'_>, token: &str, origin: &str) -> Result<Revoked> {
        let token = token.trim();
        if token.is_empty() || token.len() > 8192 {
            return Ok(Revoked::Done);
        }
        let actor = Self::actor(origin);
        let (client_id, domain_id) = (by.client_id().to_string(), by.domain_id().to_string());
        if token.matches('.').count() == 2 {
            let i = self.kw.introspect(None, token).await?;
            let Some(rec) = i.record.filter(|r| r.domain_id == domain_id) else {
                return Ok(Revoked::Done);
            };
            if rec.client_id != client_id {
                return Ok(Revoked::OtherClient(rec.client_id));
            }
            if rec.revoked_at.is_none() {
                self.kw
                    .token_revoke(
                        &actor,
                        RevokeWhat::Jtis(vec![rec.jti]),
                        Some(&format!("revoked by client {client_id}")),
                    )
                    .await?;
            }
            return Ok(Revoked::Done);
        }
        let secrets = self.kw.secrets().await?;
        let hashes = refresh_hashes(&secrets, token);
        self.kw
            .write(async move |cx| {
                let Some(r) = cred::refresh_by_any_hash(cx, &hashes)
                    .await?
                    .filter(|r| r.domain_id == domain_id)
                else {
                    return Ok(Revoked::Done);
                };
                if r.client_id != client_id {
                    return Ok(Revoked::OtherClient(r.client_id));
                }
                if r.revoked_at.is_some() {
                    return Ok(Revoked::Done);
                }
                // Recorded as the access-token branch above records it.
                let why = format!("revoked by client {client_id}");
                let (by, now) = (actor.label(), model::now());
                let n = cred::revoke_family(cx, &r.family_id, now, &by, &why).await?;
                audit_event(
                    cx,
                    &actor,
                    "token.revoke",
                    &format!("refresh family {}", r.family_id),
                    Some(&r.domain_id),
                    json!({"revoked": n, "reason": format!("refresh token revoked by client {client_id}")}),
                )
                .await?;
                Ok(Revoked::Done)
            })
            .await
    }

    // ------------------------------------------------------------ self-service

    /// Personal tokens of a signed-in user, newest first.
    pub async fn my_tokens(&self, user_id: &str) -> Result<Vec<TokenRecord>> {
        let q = TokenQuery {
            user_id: Some(user_id.to_string()),
            limit: 200,
            now: model::now(),
            ..Default::default()
        };
        self.kw.token_list(&Self::actor("self-service"), q).await
    }

    /// Creates a personal API token within the user's role (audited).
    pub async fn create_my_token(
        &self,
        user_id: &str,
        scopes: Option<Vec<String>>,
        ttl: Option<String>,
        origin: &str,
    ) -> Result<Minted> {
        self.kw
            .mint(
                &Self::actor(origin),
                MintSpec {
                    user: user_id.to_string(),
                    domain: None,
                    scopes,
                    ttl,
                    key: None,
                },
            )
            .await
    }

    /// Revokes one of the user's own tokens (audited). NotFound for others' tokens.
    pub async fn revoke_my_token(&self, user_id: &str, jti: &str, origin: &str) -> Result<u64> {
        let j = jti.trim().to_string();
        let rec = self
            .kw
            .read(async move |cx| cred::token_by_jti(cx, &j).await)
            .await?;
        if rec.as_ref().is_none_or(|r| r.user_id != user_id) {
            return Err(Error::not_found("token", jti));
        }
        self.kw
            .token_revoke(
                &Self::actor(origin),
                RevokeWhat::Jtis(vec![jti.trim().to_string()]),
                Some("revoked by its owner"),
            )
            .await
    }

    /// Public sign-up: a user with its initial station and the default role, no token.
    pub async fn signup(&self, new: super::directory::NewUser, origin: &str) -> Result<()> {
        let new = super::directory::NewUser { role: None, ..new };
        self.kw
            .user_add(&Self::actor(origin), new)
            .await
            .map(|_| ())
    }

    /// Read-only public lookup by affiliate id: the user's display name, domain and
    /// stations (never the email).
    pub async fn affiliate_lookup(&self, affiliate_id: &str) -> Result<Option<serde_json::Value>> {
        let Ok(id) = uuid::Uuid::parse_str(affiliate_id.trim()) else {
            return Ok(None);
        };
        let id = id.to_string();
        self.kw
            .read(async move |cx| {
                let Some(u) = dir::user_by_affiliate(cx, &id).await? else {
                    return Ok(None);
                };
                if u.status != "active" {
                    return Ok(None);
                }
                let stations = dir::list_stations(
                    cx,
                    &dir::StationQuery {
                        user_id: Some(u.id.clone()),
                        limit: 100,
                        ..Default::default()
                    },
                )
                .await?;
                // A station created without a name carries the owner's email, which
                // this public answer never gives away.
                let public_name = |name: &str| {
                    (!name.trim().eq_ignore_ascii_case(u.email.trim())).then(|| name.to_string())
                };
                Ok(Some(json!({
                    "name": u.name,
                    "domain": u.domain,
                    "stations": stations.iter().map(|s| json!({
                        "id": s.id,
                        "name": public_name(&s.name),
                        "eu_vat_id": s.eu_vat_id,
                        "registration_number": s.registration_number,
                        "country_code": s.country_code,
                    })).collect::<Vec<_>>(),
                })))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    fn future_size<A, B, C, D, E, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D, E) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// The recorder builds a `flush` future per batch; opening its connection (a ~15 KB
    /// future) is boxed so that building and moving it stays cheap: 1.8 KB, where it
    /// was 15 KB in a release build (4.5 KB in a debug one).
    #[test]
    fn a_batch_future_stays_small() {
        let n = future_size(super::flush);
        assert!(n < 3 * 1024, "flush future: {n} bytes");
    }
}
