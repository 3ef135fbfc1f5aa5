//! Use cases: one function per administrative action. Each checks the actor's
//! permission, validates, writes, and appends the audit event in the same transaction.

use crate::error::{Error, Result};
use crate::model::{self, DomainName};
use crate::store::{self, Cx, Db, Target, Tx, Writer, directory as dir};
use serde_json::json;

pub mod audit;
pub mod authorize;
pub mod console;
pub mod credentials;
pub mod demo;
pub mod directory;
pub mod grants;
pub mod identity;
pub mod import;
pub mod keyring;
pub mod provision;
pub mod scopes;
pub mod settings;
pub mod tokens;

pub use identity::{Actor, Need, OsIdentity};

/// The core: a database and the operations on it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Keyward {
    db: Db,
    target: Target,
    cache: std::sync::Arc<keyring::Cache>,
}

/// What `init` did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct InitReport {
    pub created_database: bool,
    pub done: Vec<String>,
}

impl InitReport {
    pub fn changed(&self) -> bool {
        !self.done.is_empty()
    }
}

/// Options of `init`.
#[derive(Debug, Default, Clone)]
pub struct InitOptions {
    pub domain: Option<String>,
    pub issuer: Option<String>,
}

impl Keyward {
    /// Opens an initialised database. The embedded default (`target.implicit`) is created
    /// and initialised on first use, bootstrapping `os` as the first admin; an explicit
    /// URL to a missing or empty database is an environment error telling to run `init`.
    pub async fn open(target: Target, os: &OsIdentity) -> Result<Keyward> {
        let db = Db::open(&target, target.implicit).await?;
        let kw = Keyward::assemble(db, target);
        let _schema = store::schema_lock(&kw.target)?;
        if !kw.db.has_schema().await? {
            if kw.target.implicit {
                kw.init_locked(os, &InitOptions::default()).await?;
            } else {
                return Err(Error::Environment(format!(
                    "the database at {} is not initialised; run `keyward init --database-url {}` first",
                    store::redact_url(&kw.target.url),
                    store::redact_url(&kw.target.url)
                )));
            }
        } else {
            kw.db.migrate().await?;
            // A first init cut short after the schema (killed, or before this release
            // checked its values first) left no operator: the default database finishes
            // it; `actor` tells anyone else to run `init`.
            if kw.target.implicit && kw.read(async |cx| dir::operator_count(cx).await).await? == 0 {
                kw.init_locked(os, &InitOptions::default()).await?;
            }
        }
        Ok(kw)
    }

    /// Opens (creating if needed) for `init`.
    pub async fn open_for_init(target: Target) -> Result<(Keyward, bool)> {
        let existed = match target.sqlite_file() {
            Some(p) => p.exists(),
            None => true,
        };
        let db = Db::open(&target, true).await?;
        let fresh = !existed || !db.has_schema().await?;
        Ok((Keyward::assemble(db, target), fresh))
    }

    fn assemble(db: Db, target: Target) -> Keyward {
        Keyward {
            db,
            target,
            cache: std::sync::Arc::new(keyring::Cache::new(keyring::default_master_key_path())),
        }
    }

    /// Uses this master key file instead of the default (KEYWARD_MASTER_KEY_FILE or
    /// `$XDG_CONFIG_HOME/keyward/master.key`).
    pub fn with_master_key_path(mut self, path: std::path::PathBuf) -> Keyward {
        self.cache = std::sync::Arc::new(keyring::Cache::new(path));
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A short description of the database for status lines (password redacted).
    pub fn describe(&self) -> String {
        match self.db.engine() {
            store::Engine::Sqlite => format!(
                "sqlite {}",
                self.target
                    .sqlite_file()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            store::Engine::Postgres => format!("postgres {}", store::redact_url(&self.target.url)),
        }
    }

    /// Sets up whatever is missing; reports what it did. Idempotent, and safe to run
    /// beside other processes opening the same database.
    pub async fn init(&self, os: &OsIdentity, opts: &InitOptions) -> Result<InitReport> {
        // Bad values are refused before anything is created (a first init that failed
        // half-way would leave a schema with no operator to continue from).
        if let Some(issuer) = &opts.issuer {
            settings::validate("issuer", issuer)?;
        }
        if let Some(d) = &opts.domain {
            DomainName::parse(d)?;
        }
        let _schema = store::schema_lock(&self.target)?;
        self.init_locked(os, opts).await
    }

    /// [`Keyward::init`] with the schema lock already held.
    async fn init_locked(&self, os: &OsIdentity, opts: &InitOptions) -> Result<InitReport> {
        let mut report = InitReport::default();
        let had_schema = self.db.has_schema().await?;
        self.db.migrate().await?;
        if !had_schema {
            report.created_database = true;
            report
                .done
                .push(format!("created the schema in {}", self.describe()));
        }
        let mut tx = self.db.begin().await?;
        Db::lock_bootstrap(&mut tx).await?;
        let now = model::now();
        let mut cx = tx.cx();
        let actor = Actor {
            account: os.account.clone(),
            host: os.host.clone(),
            origin: os.origin.clone(),
            role: model::OperatorRole::Admin,
            domains: None,
        };
        // Built-in scopes and roles.
        for (name, desc, implies) in [
            ("read", "Read documents and data", None),
            (
                "write",
                "Create and change documents (includes read)",
                Some("read"),
            ),
            (
                "admin",
                "Administer the tenant's API resources (includes write)",
                Some("write"),
            ),
        ] {
            if dir::scope_by_name(&mut cx, name).await?.is_none() {
                let row = dir::ScopeRow {
                    id: model::new_id(),
                    name: name.into(),
                    description: desc.into(),
                    builtin: true,
                    created_at: now,
                    version: 1,
                };
                dir::insert_scope(&mut cx, &row).await?;
                if let Some(i) = implies {
                    let implied = dir::scope_by_name(&mut cx, i)
                        .await?
                        .expect("inserted just before");
                    dir::insert_implication(&mut cx, &row.id, &implied.id).await?;
                }
                report.done.push(format!("created scope {name}"));
            }
        }
        let has_default = dir::default_role(&mut cx).await?.is_some();
        for (name, desc, all, scopes) in [
            (
                "Consumer",
                "Default role of new sign-ups: read access",
                false,
                vec!["read"],
            ),
            (
                "Administrator",
                "Every scope, including ones added later",
                true,
                vec![],
            ),
        ] {
            if dir::role_by_name(&mut cx, name).await?.is_none() {
                let row = dir::RoleRow {
                    id: model::new_id(),
                    name: name.into(),
                    description: desc.into(),
                    is_default: name == "Consumer" && !has_default,
                    all_scopes: all,
                    builtin: true,
                    created_at: now,
                    version: 1,
                };
                dir::insert_role(&mut cx, &row).await?;
                for s in scopes {
                    let sc = dir::scope_by_name(&mut cx, s)
                        .await?
                        .expect("built-in scope");
                    dir::grant_role_scope(&mut cx, &row.id, &sc.id).await?;
                }
                report.done.push(format!(
                    "created role {name}{}",
                    if row.is_default { " (default)" } else { "" }
                ));
            }
        }
        for (key, value) in settings::DEFAULTS {
            if dir::insert_setting_if_missing(&mut cx, key, value, now).await? {
                report.done.push(format!("set {key} = {value}"));
            }
        }
        // The acting operator: the caller bootstraps as the first admin on an empty
        // database; afterwards changes asked of init need an admin of all domains.
        let actor = if dir::operator_count(&mut cx).await? == 0 {
            let account = model::OsAccount::parse(&os.account)?;
            let row = dir::OperatorRow {
                id: model::new_id(),
                account: account.to_string(),
                role: "admin".into(),
                created_at: now,
                version: 1,
            };
            dir::insert_operator(&mut cx, &row, &[]).await?;
            audit_event(
                &mut cx,
                &actor,
                "operator.add",
                &row.account,
                None,
                json!({"role": "admin", "bootstrap": true}),
            )
            .await?;
            report.done.push(format!(
                "registered OS account {} as the first admin operator",
                row.account
            ));
            actor
        } else {
            match dir::operator_by_account(&mut cx, &os.account).await? {
                Some(op) => {
                    let domains = dir::operator_domains(&mut cx, &op.id).await?;
                    Actor {
                        role: model::OperatorRole::parse(&op.role)?,
                        domains: if domains.is_empty() {
                            None
                        } else {
                            Some(domains)
                        },
                        ..actor
                    }
                }
                None if opts.domain.is_some() || opts.issuer.is_some() => {
                    return Err(Error::NotOperator {
                        account: os.account.clone(),
                    });
                }
                None => Actor {
                    role: model::OperatorRole::Viewer,
                    ..actor
                },
            }
        };
        if opts.domain.is_some() || opts.issuer.is_some() {
            actor.require(Need::Global)?;
        }
        if let Some(issuer) = &opts.issuer {
            let v = settings::validate("issuer", issuer)?;
            let cur = dir::setting(&mut cx, "issuer")
                .await?
                .expect("inserted above");
            if cur.value != v {
                dir::update_setting(&mut cx, "issuer", &v, cur.version, now).await?;
                audit_event(
                    &mut cx,
                    &actor,
                    "config.set",
                    "issuer",
                    None,
                    json!({"before": cur.value, "after": v}),
                )
                .await?;
                report.done.push(format!("set issuer = {v}"));
            }
        }
        if let Some(d) = &opts.domain {
            let name = DomainName::parse(d)?;
            if dir::domain_by_name(&mut cx, name.as_str()).await?.is_none() {
                directory::insert_domain(&mut cx, &actor, &name, serde_json::json!({})).await?;
                report.done.push(format!("added domain {name}"));
            }
        }
        keyring::bootstrap(&mut cx, &self.cache.master_path, &mut report.done).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Resolves the acting operator for an OS identity.
    pub async fn actor(&self, os: &OsIdentity) -> Result<Actor> {
        let mut conn = self.db.conn().await?;
        let mut cx = conn.cx();
        let Some(op) = dir::operator_by_account(&mut cx, &os.account).await? else {
            if dir::operator_count(&mut cx).await? == 0 {
                return Err(Error::Environment(format!(
                    "the database at {} has no operators yet (its set-up did not finish); run `keyward init` as the account that administers it",
                    self.describe()
                )));
            }
            return Err(Error::NotOperator {
                account: os.account.clone(),
            });
        };
        let domains = dir::operator_domains(&mut cx, &op.id).await?;
        Ok(Actor {
            account: os.account.clone(),
            host: os.host.clone(),
            origin: os.origin.clone(),
            role: model::OperatorRole::parse(&op.role)?,
            domains: if domains.is_empty() {
                None
            } else {
                Some(domains)
            },
        })
    }

    /// Runs `f` in one write transaction; commits on success, rolls back on error.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
    {
        not_holding()?;
        commit_after(self.db.begin().await?, f).await
    }

    /// [`Keyward::write`], or with [`Run::Rehearse`] the same work rolled back: what a
    /// change would do (its counts), exactly, without doing it.
    pub(crate) async fn write_as<T, F>(&self, run: Run, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
    {
        match run {
            Run::Commit => self.write(f).await,
            Run::Rehearse => {
                not_holding()?;
                let mut tx = self.db.begin().await?;
                let out = {
                    let mut cx = tx.cx();
                    HOLDING.scope((), f(&mut cx)).await
                };
                tx.rollback().await?;
                out
            }
        }
    }

    /// A connection of its own for a long-lived writer (see [`Writer`]).
    pub async fn writer(&self) -> Result<Writer> {
        self.db.writer().await
    }

    /// A passive WAL checkpoint on SQLite (see [`Db::checkpoint`]); for owners of a
    /// [`Writer`].
    pub async fn checkpoint(&self) -> Result<()> {
        self.db.checkpoint().await
    }

    /// Copies the token journal into the token tables beside the token recorder (see
    /// [`Db::copy_journal`]); returns the last entry copied, for the recorder to delete.
    pub async fn copy_journal(&self) -> Result<Option<i64>> {
        self.db.copy_journal().await
    }

    /// Moves the token journal into the token tables without a transaction over both
    /// files: copied first, then deleted from the journal (SQLite). For the token
    /// service's tick, beside its recorder; a write transaction would hold the journal's
    /// file, and the recorder, for the whole copy.
    pub async fn move_journal(&self) -> Result<()> {
        if let Some(upto) = self.db.copy_journal().await? {
            self.autocommit(async |cx| store::grants::forget_journal(cx, upto).await)
                .await?;
        }
        Ok(())
    }

    /// [`Keyward::write`] on the caller's own connection.
    pub async fn write_on<T, F>(&self, w: &mut Writer, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
    {
        not_holding()?;
        commit_after(w.begin().await?, f).await
    }

    /// Moves grants that the token service journaled (SQLite, migration 0003) into the
    /// token tables, so that a read listing or counting tokens sees every token issued
    /// so far. Only a check when there are none; write transactions do it themselves.
    pub async fn settle_tokens(&self) -> Result<()> {
        // PostgreSQL has no journal: its trigger writes the token tables directly.
        if self.db.engine() == store::Engine::Postgres {
            return Ok(());
        }
        if self
            .read(async |cx| store::grants::journal_pending(cx).await)
            .await?
        {
            self.write(async |_| Ok(())).await?;
        }
        Ok(())
    }

    /// [`Keyward::read`] after [`Keyward::settle_tokens`]: for reads of token records.
    pub async fn read_tokens<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
    {
        self.settle_tokens().await?;
        self.read(f).await
    }

    /// Runs `f` on a pooled connection (reads).
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
    {
        not_holding()?;
        let mut conn = self.db.conn().await?;
        let mut cx = conn.cx();
        HOLDING.scope((), f(&mut cx)).await
    }

    /// Runs `f` on a pooled connection outside any transaction, each statement
    /// committing on its own: unlike [`Keyward::write`] it neither takes SQLite's write
    /// locks up front nor moves the token journal first. For single-statement upkeep
    /// beside the token recorder.
    pub async fn autocommit<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
    {
        // The same pooled connection as a read, used for single statements that write.
        self.read(f).await
    }

    /// Begins a transaction for callers that compose several services (apply, import).
    pub async fn begin(&self) -> Result<Tx<'static>> {
        self.db.begin().await
    }
}

/// Runs `f` in `tx`; commits on success, rolls back (drops `tx`) on error.
/// Whether a change is made or only rehearsed (the `*_preview` methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    Commit,
    Rehearse,
}

async fn commit_after<T, F>(mut tx: Tx<'_>, f: F) -> Result<T>
where
    F: AsyncFnOnce(&mut Cx<'_>) -> Result<T>,
{
    let out = {
        let mut cx = tx.cx();
        HOLDING.scope((), f(&mut cx)).await?
    };
    tx.commit().await?;
    Ok(out)
}

/// Runs password hashing (argon2id, ~20 ms and 19 MiB each) off the async workers,
/// as many at once as the machine has cores; the rest wait their turn, for at most
/// 10 s. Unbounded, a burst of sign-ins spawned one blocking thread each (up to 512,
/// ~10 GB) and starved every other request of the cores.
pub(crate) async fn argon2<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    static GATE: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let gate = GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores)
    });
    let _turn = tokio::time::timeout(std::time::Duration::from_secs(10), gate.acquire())
        .await
        .map_err(|_| {
            Error::Environment("too many password checks at once; try again shortly".into())
        })?
        .map_err(|e| Error::Database(format!("password check failed: {e}")))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Database(format!("password check failed: {e}")))
}

tokio::task_local! {
    /// Set while the closure of a [`Keyward::read`] or [`Keyward::write`] runs, which
    /// holds a connection (and, writing on SQLite, the write lock).
    static HOLDING: ();
}

/// Refuses a second connection to a task that already holds one (test and debug
/// builds). Taking one there deadlocks under load: with every pooled connection held
/// by such tasks none is left for the second, and on SQLite the second's write waits
/// for the first's lock; both end only at the busy or acquire timeout. Whatever a
/// closure needs from the database goes through its `Cx`, or is read before.
fn not_holding() -> Result<()> {
    if cfg!(debug_assertions) && HOLDING.try_with(|()| ()).is_ok() {
        return Err(Error::Database(
            "a second database connection was asked for inside a read or transaction \
             (it would deadlock under load): use the closure's connection"
                .into(),
        ));
    }
    Ok(())
}

/// Appends an audit event for `actor` in the caller's transaction.
pub async fn audit_event(
    cx: &mut Cx<'_>,
    actor: &Actor,
    action: &str,
    target: &str,
    domain_id: Option<&str>,
    details: serde_json::Value,
) -> Result<i64> {
    store::audit::append(
        cx,
        store::audit::NewEvent {
            at: model::now(),
            actor: &actor.label(),
            origin: &actor.origin,
            action,
            target,
            domain_id,
            details: details.to_string(),
        },
    )
    .await
}

#[cfg(test)]
mod gate_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_hashing_runs_at_most_one_per_core_at_once() {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..cores * 4)
            .map(|_| {
                let (now, most) = (now.clone(), most.clone());
                tokio::spawn(super::argon2(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            most >= 1 && most <= cores,
            "{most} at once on {cores} cores"
        );
    }

    #[tokio::test]
    async fn a_second_connection_inside_a_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = super::Target::sqlite_path(&dir.path().join("k.db"));
        let target = super::Target {
            url,
            implicit: true,
            single_connection: false,
        };
        let (kw, _) = super::Keyward::open_for_init(target).await.unwrap();
        let inner = kw
            .read(async |_| Ok(kw.read(async |_| Ok(())).await))
            .await
            .unwrap();
        let e = inner.unwrap_err().to_string();
        assert!(e.contains("second database connection"), "{e}");
        // Outside, the same call works.
        kw.read(async |_| Ok(())).await.unwrap();
    }
}
