//! The console in a real pseudo-terminal, read through vt100: shared by the console's
//! end-to-end tests (tests/tui.rs) and its whole-process benchmark (benches/console.rs).
#![allow(dead_code)]

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn nz(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("non-zero size")
}

pub const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// A database (SQLite `k.db`, or a PostgreSQL database of its own) and XDG
/// directories in a folder of their own.
pub struct Env {
    root: PathBuf,
    url: String,
    /// (server URL, database) of a PostgreSQL database dropped with the Env.
    pg: Option<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

/// Runs a future to completion on a runtime of its own.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Connects to PostgreSQL and runs `sql` (one or more statements).
async fn pg_exec(url: &str, sql: String) -> sqlx::postgres::PgConnection {
    use sqlx::Connection;
    let mut c = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .unwrap();
    c
}

fn pg_admin(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        block_on(async {
            use sqlx::Connection;
            pg_exec(&url, sql).await.close().await.unwrap();
        })
    })
    .join()
    .unwrap();
}

impl Env {
    /// An initialised database with one domain and no users, in a temporary folder.
    pub fn bare() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let e = Env {
            url: format!("sqlite://{}", root.join("k.db").display()),
            root,
            pg: None,
            _tmp: Some(tmp),
        };
        e.cli(&["init", "--domain", "free.example.com"]);
        e
    }
    /// The same on a fresh PostgreSQL database (`KEYWARD_TEST_PG_URL`'s server);
    /// None, with a notice, when that is unset outside CI.
    pub fn bare_pg() -> Option<Env> {
        let Ok(base) = std::env::var("KEYWARD_TEST_PG_URL") else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "KEYWARD_TEST_PG_URL must be set in CI (.ci/run provides it)"
            );
            eprintln!("notice: KEYWARD_TEST_PG_URL unset; skipping the PostgreSQL console test");
            return None;
        };
        let name = format!(
            "kwt_pty_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        pg_admin(&base, &format!("CREATE DATABASE {name}"));
        let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
        let tmp = tempfile::tempdir().unwrap();
        let e = Env {
            root: tmp.path().to_path_buf(),
            url: format!("{prefix}/{name}"),
            pg: Some((base, name)),
            _tmp: Some(tmp),
        };
        e.cli(&["init", "--domain", "free.example.com"]);
        Some(e)
    }
    /// A folder that outlives the process (benchmark fixtures); `init`s it if new.
    pub fn kept(root: PathBuf) -> Env {
        std::fs::create_dir_all(&root).unwrap();
        let root = root.canonicalize().unwrap();
        let e = Env {
            url: format!("sqlite://{}", root.join("k.db").display()),
            root,
            pg: None,
            _tmp: None,
        };
        if !e.root.join("k.db").exists() {
            e.cli(&["init", "--domain", "free.example.com"]);
        }
        e
    }
    /// Four users waiting for API access.
    pub fn with_users(self) -> Env {
        for (email, name) in [
            ("alice@example.com", "Alice Meyer"),
            ("alina@example.com", "Alina Park"),
            ("bob@example.com", "Bob Builder"),
            ("carol@example.com", "Carol King"),
        ] {
            self.cli(&[
                "user",
                "add",
                email,
                "--domain",
                "free.example.com",
                "--name",
                name,
            ]);
        }
        self
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn new() -> Env {
        Env::bare().with_users()
    }
    pub fn url(&self) -> String {
        self.url.clone()
    }
    fn envs(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XDG_DATA_HOME", self.root.join("data")),
            ("XDG_CONFIG_HOME", self.root.join("config")),
        ]
    }
    pub fn cli(&self, args: &[&str]) {
        let out = Command::new(BIN)
            .arg("--database-url")
            .arg(self.url())
            .args(args)
            .envs(self.envs())
            .env_remove("KEYWARD_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    /// One value from the database (for choosing what to type).
    pub fn query_one(&self, sql: &'static str) -> (String, i64) {
        block_on(async {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .connect(&self.url())
                .await
                .unwrap();
            let row: (String, i64) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            row
        })
    }
    /// Makes the store slow for real (PostgreSQL): another session holds ACCESS
    /// EXCLUSIVE locks on the tables the console reads, so every read waits until the
    /// returned guard is released.
    pub fn lock_store(&self) -> StoreLock {
        assert!(self.pg.is_some(), "lock_store needs the PostgreSQL variant");
        let url = self.url();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            block_on(async {
                use sqlx::Connection;
                let mut c = pg_exec(
                    &url,
                    "BEGIN; LOCK TABLE users, stations, tokens, audit_events, api_keys, \
                     apps, roles, scopes IN ACCESS EXCLUSIVE MODE"
                        .into(),
                )
                .await;
                locked_tx.send(()).unwrap();
                let _ = release_rx.recv();
                sqlx::raw_sql("COMMIT").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            });
        });
        locked_rx.recv().expect("the lock was taken");
        StoreLock {
            release: Some(release_tx),
            thread: Some(thread),
        }
    }
    /// Writes a hostile display name straight into the database: the core refuses
    /// control characters, but whoever can write the database can put anything there.
    pub fn poison_name(&self, email: &str, name: &str) {
        block_on(async {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .connect(&self.url())
                .await
                .unwrap();
            let n = sqlx::query("UPDATE users SET name = ? WHERE email = ?")
                .bind(name)
                .bind(email)
                .execute(&pool)
                .await
                .unwrap()
                .rows_affected();
            assert_eq!(n, 1);
            pool.close().await;
        });
    }
    pub fn spawn(&self, rows: u16, cols: u16) -> Console {
        let mut cmd = CommandBuilder::new(BIN);
        cmd.arg("--database-url");
        cmd.arg(self.url());
        self.start(cmd, rows, cols)
    }
    /// An interactive bash (job control on, no rc files) in the terminal, with the
    /// console's environment; `console_command` is the line that starts the console.
    pub fn spawn_shell(&self, rows: u16, cols: u16) -> Console {
        let mut cmd = CommandBuilder::new("bash");
        cmd.args(["--norc", "--noprofile", "-i"]);
        cmd.env("PS1", "$ ");
        self.start(cmd, rows, cols)
    }
    pub fn console_command(&self) -> String {
        format!("{BIN} --database-url '{}'", self.url())
    }
    fn start(&self, mut cmd: CommandBuilder, rows: u16, cols: u16) -> Console {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("KEYWARD_DATABASE_URL");
        for (k, v) in self.envs() {
            cmd.env(k, v);
        }
        cmd.cwd(&self.root);
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(nz(rows), nz(cols), 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let (p, r) = (parser.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let writer = pair.master.take_writer().unwrap();
        Console {
            parser,
            raw,
            writer,
            child,
            master: pair.master,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.pg {
            pg_admin(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Holds the store's exclusive lock until released or dropped.
pub struct StoreLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreLock {
    pub fn release(mut self) {
        self.finish();
    }
    fn finish(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        self.finish();
    }
}

pub struct Console {
    pub parser: Arc<Mutex<vt100::Parser>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
}

impl Console {
    /// Peak resident memory of the console process, in KiB (Linux).
    pub fn peak_kib(&self) -> u64 {
        let pid = self.child.process_id().expect("pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
    pub fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }
    /// Waits until the screen satisfies `f` and has settled (two reads 40 ms apart
    /// agree: a frame read half-way through being written could satisfy `f` with the
    /// rest of the screen still the last frame's); fails with the screen if it never
    /// does.
    pub fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last: Option<String> = None;
        loop {
            let c = self.contents();
            if f(&c) {
                if last.as_deref() == Some(c.as_str()) {
                    return c;
                }
                last = Some(c);
                std::thread::sleep(Duration::from_millis(40));
                continue;
            }
            last = None;
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{c}");
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }
    /// Polls every millisecond until the screen satisfies `f`; returns the screen and
    /// the time since `since` (for benchmarks; fails after 60 s).
    pub fn until(
        &self,
        since: Instant,
        what: &str,
        f: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        loop {
            let c = self.contents();
            if f(&c) {
                return (c, since.elapsed());
            }
            if since.elapsed() > Duration::from_secs(60) {
                panic!("timed out waiting for {what}; screen:\n{c}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    pub fn wait_for(&self, text: &str) -> String {
        self.wait(text, |c| c.contains(text))
    }
    pub fn send(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }
    pub fn resize(&self, rows: u16, cols: u16) {
        self.parser
            .lock()
            .unwrap()
            .screen_mut()
            .set_size(nz(rows), nz(cols));
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }
    /// Waits for the process to end and returns its success.
    pub fn exit(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader drain what was written last.
                std::thread::sleep(Duration::from_millis(200));
                return s.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the console did not exit; screen:\n{}", self.contents());
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // The child leads the terminal's session; a console started from a shell
            // in it is a job of its own, which killing the shell would leave behind.
            if let Some(sid) = self.child.process_id() {
                for pid in session_members(sid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            let _ = self.child.kill();
        }
    }
}

/// The processes of session `sid` but its leader (Linux `/proc`).
fn session_members(sid: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid as u32 != sid)
        .filter(|pid| {
            // Fields after the command's closing parenthesis: state, ppid, pgrp, session.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                st.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(3)?.parse::<u32>().ok())
                    == Some(sid)
            })
        })
        .collect()
}
