//! Storage: the only module that contains SQL. One enum over the two native sqlx pools
//! (SQLite, PostgreSQL); each query is written once and monomorphised per engine by
//! the [`on!`](crate::on) macro, so both engines run the same statements with their real types.

use crate::error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, SqliteConnection, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub mod audit;
pub mod console;
pub mod credentials;
pub mod directory;
pub mod grants;
pub mod keys;
pub mod sql;

pub use sql::{Sql, Val};

/// Which engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection pool on one of the two engines.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A borrowed connection (inside a transaction or from the pool) on either engine.
pub enum Cx<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

/// An open transaction on either engine. Dropping it without [`Tx::commit`] rolls back.
/// `'static` when it owns a pooled connection ([`Db::begin`]), else it borrows a
/// [`Writer`].
pub enum Tx<'c> {
    Sqlite(sqlx::Transaction<'c, sqlx::Sqlite>),
    Pg(sqlx::Transaction<'c, sqlx::Postgres>),
}

/// WAL pages (4 KiB) after which a [`Writer`]'s commit checkpoints by itself (instead
/// of SQLite's default 1000): only a safety net for when [`Db::checkpoint`] is not
/// called. A checkpoint on the writer's connection stalls every grant waiting on it for
/// the copy and two `fsync`s (tens of milliseconds under load, with the cores idle).
const WRITER_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 65536";

/// How long [`Db::open`] waits for PostgreSQL's first pooled connection before it asks
/// a direct connection what is wrong.
const FIRST_CONNECTION: Duration = Duration::from_secs(1);

/// WAL frames after which [`Db::checkpoint`] also restarts the WAL (about 16 MiB).
const WAL_RESTART_FRAMES: i64 = 4096;

/// Bytes a WAL file is cut back to when it starts over (SQLite keeps the file at the
/// largest size it reached otherwise: hundreds of MiB after a burst of grants).
const WAL_SIZE_LIMIT: u64 = 64 << 20;

/// Tries of [`Db::checkpoint`]'s restart checkpoint, a couple of milliseconds apart.
const RESTART_ATTEMPTS: u32 = 4;

/// How long a SQLite statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The file of the token journal beside the SQLite database at `path` (`PATH.grants`).
pub fn journal_file(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".grants");
    PathBuf::from(name)
}

/// Attaches the token journal's file to a new SQLite connection as `grants` and makes
/// sure its table exists. The journal lives in a file of its own so that the token
/// recorder's appends and the journal's move into the token tables take different
/// write locks (SQLite has one writer per file) and run side by side. Unqualified
/// `token_journal` names it (migration 0005 dropped the one in `main`).
async fn attach_journal(
    c: &mut sqlx::SqliteConnection,
    journal: &str,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("ATTACH DATABASE ? AS grants")
        .bind(journal)
        .execute(&mut *c)
        .await?;
    sqlx::query("PRAGMA grants.journal_mode = WAL")
        .execute(&mut *c)
        .await?;
    sqlx::query("PRAGMA grants.synchronous = NORMAL")
        .execute(&mut *c)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA grants.journal_size_limit = {WAL_SIZE_LIMIT}"
    )))
    .execute(&mut *c)
    .await?;
    sqlx::query(grants::JOURNAL_TABLE).execute(&mut *c).await?;
    Ok(())
}

/// [`Db::checkpoint`] of one attached file (`main` or `grants`): passive, then a
/// restart without waiting for locks when its WAL has grown past
/// [`WAL_RESTART_FRAMES`]. Sets `busy_timeout_off` once it has set the connection's
/// busy timeout to 0 (the caller restores it).
async fn checkpoint_file(
    c: &mut SqliteConnection,
    file: &str,
    busy_timeout_off: &mut bool,
) -> Result<()> {
    // `file` is `main` or `grants`, never input.
    let passive = format!("PRAGMA {file}.wal_checkpoint(PASSIVE)");
    let restart = format!("PRAGMA {file}.wal_checkpoint(RESTART)");
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(passive))
        .fetch_one(&mut *c)
        .await?;
    if frames <= WAL_RESTART_FRAMES {
        return Ok(());
    }
    if !*busy_timeout_off {
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *c)
            .await?;
        *busy_timeout_off = true;
    }
    for attempt in 1..=RESTART_ATTEMPTS {
        let started = std::time::Instant::now();
        match sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(restart.as_str()))
            .fetch_one(&mut *c)
            .await?
        {
            (0, _, _) => {
                let micros = started.elapsed().as_micros() as u64;
                tracing::debug!(
                    file,
                    frames,
                    attempt,
                    micros,
                    "WAL checkpointed and restarted"
                );
                break;
            }
            _ if attempt == RESTART_ATTEMPTS => {
                tracing::debug!(file, frames, "WAL checkpointed, not restarted (busy)");
            }
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
    Ok(())
}

/// A connection of its own, outside the pool, for one long-lived writer that commits
/// often (the token recorder). On SQLite a commit by one connection empties the page
/// cache of every other connection, so writes spread over the pool re-read their pages
/// each time; one writer that keeps its connection keeps its cache (and its prepared
/// statements) warm.
pub enum Writer {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// A pooled connection for reads.
pub enum Conn {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Pg(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// Runs `$body` with `$c` bound to `&mut SqliteConnection` or `&mut PgConnection`.
/// The body is compiled once per engine, so generic sqlx calls get each engine's real types.
#[macro_export]
macro_rules! on {
    ($cx:expr, $c:ident => $body:expr) => {
        match $cx {
            $crate::store::Cx::Sqlite(inner) => {
                #[allow(unused_mut)]
                let mut $c: &mut sqlx::SqliteConnection = &mut **inner;
                $body
            }
            $crate::store::Cx::Pg(inner) => {
                #[allow(unused_mut)]
                let mut $c: &mut sqlx::PgConnection = &mut **inner;
                $body
            }
        }
    };
}

impl Tx<'_> {
    pub fn cx(&mut self) -> Cx<'_> {
        match self {
            Tx::Sqlite(t) => Cx::Sqlite(t),
            Tx::Pg(t) => Cx::Pg(t),
        }
    }
    pub fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Pg(_) => Engine::Postgres,
        }
    }
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
    /// Rolls back now (a dropped transaction rolls back too, but only when its
    /// connection is next used: until then SQLite's write lock stays taken).
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Pg(t) => t.rollback().await?,
        }
        Ok(())
    }
}

impl Writer {
    /// The connection, for a statement outside a transaction (one atomic statement).
    pub fn cx(&mut self) -> Cx<'_> {
        match self {
            Writer::Sqlite(c) => Cx::Sqlite(c),
            Writer::Pg(c) => Cx::Pg(c),
        }
    }

    /// Closes the connection and waits until it is closed (dropping it closes it later).
    pub async fn close(self) {
        use sqlx::Connection as _;
        let closed = match self {
            Writer::Sqlite(c) => c.close().await,
            Writer::Pg(c) => c.close().await,
        };
        if let Err(e) = closed {
            tracing::debug!(error = %e, "closing a writer connection failed");
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Writer::Sqlite(_) => Engine::Sqlite,
            Writer::Pg(_) => Engine::Postgres,
        }
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite, as [`Db::begin`]).
    pub async fn begin(&mut self) -> Result<Tx<'_>> {
        use sqlx::Connection as _;
        let mut tx = match self {
            Writer::Sqlite(c) => Tx::Sqlite(c.begin_with("BEGIN IMMEDIATE").await?),
            Writer::Pg(c) => Tx::Pg(c.begin().await?),
        };
        grants::settle(&mut tx.cx()).await?;
        Ok(tx)
    }
}

impl Conn {
    pub fn cx(&mut self) -> Cx<'_> {
        match self {
            Conn::Sqlite(c) => Cx::Sqlite(c),
            Conn::Pg(c) => Cx::Pg(c),
        }
    }
}

impl Cx<'_> {
    pub fn engine(&self) -> Engine {
        match self {
            Cx::Sqlite(_) => Engine::Sqlite,
            Cx::Pg(_) => Engine::Postgres,
        }
    }
}

/// How to open a database.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// True for the embedded default: create the file and initialise implicitly.
    pub implicit: bool,
    /// A process that runs one command (the CLI's): on PostgreSQL it keeps a single
    /// connection and reuses it statement after statement. sqlx pings a connection
    /// before it is idle again, and a larger pool opens a new connection for a statement
    /// that comes meanwhile: a whole handshake, ~95 ms with TLS on loopback here.
    pub single_connection: bool,
}

impl Target {
    /// `sqlite://PATH` for a path.
    pub fn sqlite_path(path: &std::path::Path) -> String {
        format!("sqlite://{}", path.display())
    }

    /// The file behind a `sqlite:` URL, if any.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let rest = self
            .url
            .strip_prefix("sqlite://")
            .or_else(|| self.url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            None
        } else {
            Some(PathBuf::from(path))
        }
    }

    pub fn engine(&self) -> Result<Engine> {
        if self.url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(Error::invalid(
                "database URL",
                redact_url(&self.url),
                "sqlite://PATH or postgres://USER@HOST/DB",
            ))
        }
    }
}

/// The URL with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _pw)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// Refuses a file that is not a SQLite database, or is one with tables of its own and
/// not Keyward's (an empty file or an empty database is fine: `init` fills it). Opens it
/// read-only, so the file is left exactly as it was.
async fn check_foreign_sqlite(path: &std::path::Path, url: &str) -> Result<()> {
    use sqlx::Connection;
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path)
            .map_err(|e| Error::Environment(format!("cannot open {}: {e}", path.display())))?;
        f.read(&mut head)
            .map_err(|e| Error::Environment(format!("cannot read {}: {e}", path.display())))?
    };
    if n == 0 {
        return Ok(());
    }
    if n < head.len() || &head != b"SQLite format 3\0" {
        return Err(Error::Environment(format!(
            "{} is not a SQLite database; give Keyward a file of its own (a new path is created by `keyward init`)",
            path.display()
        )));
    }
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database URL", url, format!("sqlite://PATH ({e})")))?
        .read_only(true)
        .create_if_missing(false);
    let mut c = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| Error::Environment(format!("cannot open {url}: {e}")))?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .map_err(|e| Error::Environment(format!("cannot read {}: {e}", path.display())))?;
    let _ = c.close().await;
    let ours = ["_sqlx_migrations", "settings"]
        .iter()
        .all(|t| tables.iter().any(|x| x == t));
    if tables.is_empty() || ours {
        return Ok(());
    }
    let mut shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
    if tables.len() > shown.len() {
        shown.push("…");
    }
    Err(Error::Environment(format!(
        "{} is another program's database (tables: {}), not Keyward's; it was left unchanged. Give Keyward a file of its own",
        path.display(),
        shown.join(", ")
    )))
}

/// Held while a process checks and migrates the schema (see [`schema_lock`]).
pub struct SchemaLock(#[allow(dead_code)] Option<nix::fcntl::Flock<std::fs::File>>);

/// Serialises schema work between processes. PostgreSQL's migrations take an advisory
/// lock of their own, but sqlx's SQLite migrator takes none: two processes opening a
/// new database at once (two shells' first `keyward`, or `init` beside a running
/// console) both ran migration 1 and one failed with "table already exists". An
/// exclusive `flock` on the database file (independent of SQLite's own `fcntl` locks)
/// makes the second wait for the first and then find the schema in place.
pub fn schema_lock(target: &Target) -> Result<SchemaLock> {
    let Some(path) = target.sqlite_file() else {
        return Ok(SchemaLock(None));
    };
    let file = std::fs::File::open(&path)
        .map_err(|e| Error::Environment(format!("cannot open {}: {e}", path.display())))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::Environment(format!("cannot lock {}: {e}", path.display())))?;
    Ok(SchemaLock(Some(lock)))
}

impl Db {
    /// Opens the database. With `create` a missing SQLite file is created (mode 0600).
    pub async fn open(target: &Target, create: bool) -> Result<Db> {
        match target.engine()? {
            Engine::Sqlite => {
                if let Some(path) = target.sqlite_file()
                    && !path.exists()
                {
                    if !create {
                        return Err(Error::Environment(format!(
                            "no Keyward database at {}; run `keyward init --database-url {}` to create one",
                            path.display(),
                            target.url
                        )));
                    }
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            Error::Environment(format!("cannot create {}: {e}", dir.display()))
                        })?;
                    }
                    create_private_file(&path)?;
                }
                if let Some(path) = target.sqlite_file()
                    && !journal_file(&path).exists()
                {
                    // Never opened by Keyward (no token journal beside it): make sure
                    // it is not another program's database before switching it to WAL
                    // and adding tables to it.
                    check_foreign_sqlite(&path, &target.url).await?;
                }
                let opts = SqliteConnectOptions::from_str(&target.url)
                    .map_err(|e| {
                        Error::invalid("database URL", &target.url, format!("sqlite://PATH ({e})"))
                    })?
                    .create_if_missing(create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(BUSY_TIMEOUT)
                    // Statement journals of multi-row inserts stay in memory instead of
                    // spilling to temporary files: a tenfold cut in writes for `demo` and
                    // bulk imports (1.08M pwrite calls to 76k for 10k users).
                    .pragma("temp_store", "memory")
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
                    .foreign_keys(true);
                // The token journal's own file (see migration 0005), private like the
                // database; `:memory:` beside an in-memory database.
                let journal = match target.sqlite_file() {
                    Some(path) => {
                        let j = journal_file(&path);
                        if !j.exists() {
                            create_private_file(&j)?;
                        }
                        j.to_string_lossy().into_owned()
                    }
                    None => ":memory:".to_string(),
                };
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(move |c, _| {
                        let journal = journal.clone();
                        Box::pin(async move { attach_journal(c, &journal).await })
                    })
                    .connect_with(opts)
                    .await
                    .map_err(|e| Error::Environment(format!("cannot open {}: {e}", target.url)))?;
                Ok(Db::Sqlite(pool))
            }
            Engine::Postgres => {
                let opts = PgConnectOptions::from_str(&target.url).map_err(|e| {
                    Error::invalid(
                        "database URL",
                        redact_url(&target.url),
                        format!("postgres://USER@HOST/DB ({e})"),
                    )
                })?;
                let cannot = |e: &dyn std::fmt::Display| {
                    Error::Environment(format!(
                        "cannot connect to {}: {e}",
                        redact_url(&target.url)
                    ))
                };
                let pool = PgPoolOptions::new()
                    .max_connections(if target.single_connection { 1 } else { 8 })
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with(opts.clone());
                // The pool's first connection is made now, so that what is wrong
                // (authentication, no such database, unknown host) is said at once. But
                // the pool retries a refused connection until its acquire timeout and
                // then reports only "pool timed out": when the first connection takes
                // long, one direct connection says why (the pool cannot be handed a
                // connection, so doing that every time would cost a handshake more).
                match tokio::time::timeout(FIRST_CONNECTION, pool.acquire()).await {
                    Ok(Ok(first)) => drop(first),
                    Ok(Err(e)) => return Err(cannot(&e)),
                    Err(_) => {
                        let direct = tokio::time::timeout(
                            Duration::from_secs(10),
                            <PgConnection as sqlx::Connection>::connect_with(&opts),
                        )
                        .await
                        .map_err(|_| cannot(&"no answer within 10 s"))?
                        .map_err(|e: sqlx::Error| cannot(&e))?;
                        let _ = sqlx::Connection::close(direct).await;
                    }
                }
                Ok(Db::Postgres(pool))
            }
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies pending migrations from `migrations/<engine>/`.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// True when the schema exists (migrations have run at least once).
    pub async fn has_schema(&self) -> Result<bool> {
        let n: i64 = match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'settings'",
                )
                .fetch_one(p)
                .await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'settings'",
                )
                .fetch_one(p)
                .await?
            }
        };
        Ok(n > 0)
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite, so concurrent writers
    /// queue on the busy timeout instead of failing on upgrade). It first moves the
    /// token journal into the token tables ([`grants::settle`]), so whatever the
    /// transaction does to tokens covers every token issued so far.
    pub async fn begin(&self) -> Result<Tx<'static>> {
        let mut tx = match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => Tx::Pg(p.begin().await?),
        };
        grants::settle(&mut tx.cx()).await?;
        Ok(tx)
    }

    /// A pooled connection for reads.
    pub async fn conn(&self) -> Result<Conn> {
        Ok(match self {
            Db::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Db::Postgres(p) => Conn::Pg(p.acquire().await?),
        })
    }

    /// A new connection outside the pool (see [`Writer`]); closed when dropped. On
    /// SQLite its commits leave WAL checkpoints to [`Db::checkpoint`] (called
    /// periodically by its owner) up to a safety limit, so that a commit does not stop
    /// to copy pages back into the database file and sync it.
    pub async fn writer(&self) -> Result<Writer> {
        Ok(match self {
            Db::Sqlite(p) => {
                let mut c = p.acquire().await?.detach();
                sqlx::query(WRITER_AUTOCHECKPOINT).execute(&mut c).await?;
                Writer::Sqlite(c)
            }
            Db::Postgres(p) => Writer::Pg(p.acquire().await?.detach()),
        })
    }

    /// Copies committed WAL pages back into the SQLite database files (the database's
    /// and the token journal's, each with a WAL of its own), on a pooled connection,
    /// beside the [`Writer`] (nothing to do on PostgreSQL). A passive checkpoint blocks
    /// no one, but under a steady stream of commits it never catches up with the last
    /// of them, and the WAL only grows. So when a WAL holds more than
    /// `WAL_RESTART_FRAMES`, a restart checkpoint follows, tried without waiting for
    /// locks (a few times, between commits): it holds writers back only while it copies
    /// what the passive one left, and the next commit starts that WAL over. Waiting for
    /// the locks instead would hold the writers back behind any long reader.
    pub async fn checkpoint(&self) -> Result<()> {
        let Db::Sqlite(p) = self else {
            return Ok(());
        };
        let mut c = p.acquire().await?;
        // Each file on its own: without a schema, SQLite checkpoints every attached
        // file but reports only the first one's frames.
        let mut busy_timeout_off = false;
        let out = async {
            for file in ["main", "grants"] {
                checkpoint_file(&mut c, file, &mut busy_timeout_off).await?;
            }
            Ok(())
        }
        .await;
        if busy_timeout_off {
            let restore = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
            if sqlx::query(sqlx::AssertSqlSafe(restore))
                .execute(&mut *c)
                .await
                .is_err()
            {
                // Never back into the pool without its busy timeout.
                c.close_on_drop();
            }
        }
        out
    }

    /// Copies the token journal into the token tables in a transaction that writes
    /// only the main database (SQLite; `None` elsewhere or when it is empty), so the
    /// token recorder goes on appending meanwhile. Returns the last journal entry
    /// copied: the recorder deletes up to it ([`grants::forget_journal`]).
    pub async fn copy_journal(&self) -> Result<Option<i64>> {
        use sqlx::Connection as _;
        let Db::Sqlite(p) = self else {
            return Ok(None);
        };
        let mut c = p.acquire().await?;
        // Deferred: `BEGIN IMMEDIATE` would take the write lock of every attached file,
        // the journal's too.
        let mut tx = c.begin().await?;
        let upto = grants::copy_journal(&mut Cx::Sqlite(&mut tx)).await?;
        tx.commit().await?;
        Ok(upto)
    }

    /// Serialises bootstrap across machines (PostgreSQL advisory lock; SQLite's write
    /// lock is taken by `BEGIN IMMEDIATE`).
    pub async fn lock_bootstrap(tx: &mut Tx<'_>) -> Result<()> {
        if let Tx::Pg(t) = tx {
            sqlx::query("SELECT pg_advisory_xact_lock(7451032001)")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

fn create_private_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .or_else(|e| match e.kind() {
            // Another process created it a moment ago: theirs is as good.
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| Error::Environment(format!("cannot create {}: {e}", path.display())))
}
