//! Shared test harness: a scratch environment per test (temp dir, XDG dirs, master key
//! file) on SQLite or on a fresh PostgreSQL database, and helpers to run the real binary.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_keyward");

pub struct Env {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub engine: &'static str,
    pg_admin: Option<(String, String)>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Env {
    pub fn sqlite() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        Env {
            dir,
            url,
            engine: "sqlite",
            pg_admin: None,
        }
    }

    /// A fresh PostgreSQL database, or None (with a notice) when KEYWARD_TEST_PG_URL is
    /// unset on a developer machine. In CI the variable is required.
    pub fn pg() -> Option<Env> {
        let Ok(base) = std::env::var("KEYWARD_TEST_PG_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("KEYWARD_TEST_PG_URL must be set in CI (.ci/run provides it)");
            }
            eprintln!("notice: KEYWARD_TEST_PG_URL unset; skipping the PostgreSQL variant");
            return None;
        };
        let name = format!(
            "kwt_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        psql(&base, &format!("CREATE DATABASE {name}"));
        let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
        let url = format!("{prefix}/{name}");
        let dir = tempfile::tempdir().expect("tempdir");
        Some(Env {
            dir,
            url,
            engine: "postgres",
            pg_admin: Some((base, name)),
        })
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A command for the binary with this environment's database and isolated XDG dirs.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args);
        c.env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("KEYWARD_MASTER_KEY_FILE", self.path("master.key"))
            .env("KEYWARD_DATABASE_URL", &self.url)
            .env_remove("SSH_CONNECTION")
            .env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run keyward")
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        output_with_stdin(self.cmd(args), input)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "keyward {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8")
    }

    /// Runs with --json and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"))
    }

    /// Runs, asserts the exit code, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "keyward {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).expect("utf-8")
    }

    /// PostgreSQL: how many sessions have been opened to this database so far, once the
    /// count has stopped changing (a backend's statistics reach the counters as it
    /// exits). None on SQLite.
    #[allow(dead_code)]
    pub fn pg_sessions(&self) -> Option<i64> {
        let (base, name) = self.pg_admin.as_ref()?;
        let sql = format!("SELECT sessions FROM pg_stat_database WHERE datname = '{name}'");
        let read = || psql(base, &sql).parse::<i64>().expect("a count");
        let mut last = read();
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = read();
            if now == last {
                return Some(now);
            }
            last = now;
        }
        panic!("the session count of {name} kept changing");
    }

    /// `init --domain free.example.com` and a second domain.
    pub fn init(&self) {
        self.ok(&["init", "--domain", "free.example.com"]);
        self.ok(&["domain", "add", "other.example.org"]);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.pg_admin {
            psql(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Runs `c` with `input` on its stdin; returns what it printed.
pub fn output_with_stdin(mut c: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait")
}

/// A multi-threaded tokio runtime for tests that drive the library directly.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The library opened on this environment's database, initialised like [`Env::init`]
/// (`free.example.com` and `other.example.org`), with the calling OS account as admin.
pub async fn open(e: &Env) -> (keyward::Keyward, keyward::Actor) {
    let target = keyward::store::Target {
        url: e.url.clone(),
        implicit: false,
        single_connection: false,
    };
    let (kw, _) = keyward::Keyward::open_for_init(target).await.unwrap();
    let kw = kw.with_master_key_path(e.path("master.key"));
    let os = keyward::OsIdentity::current().unwrap();
    kw.init(
        &os,
        &keyward::service::InitOptions {
            domain: Some("free.example.com".into()),
            issuer: None,
        },
    )
    .await
    .unwrap();
    kw.domain_add(&kw.actor(&os).await.unwrap(), "other.example.org")
        .await
        .unwrap();
    let actor = kw.actor(&os).await.unwrap();
    (kw, actor)
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .arg("-qAtc")
        .arg(sql)
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Defines a test that runs on SQLite and (when configured) on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body($env: &Env) $body
            #[test]
            fn sqlite() {
                body(&Env::sqlite());
            }
            #[test]
            fn postgres() {
                if let Some(e) = Env::pg() {
                    body(&e);
                }
            }
        }
    };
}
