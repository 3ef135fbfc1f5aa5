//! The console's end-to-end tests: the real binary in a pseudo-terminal, read
//! through vt100. (Rendering snapshots and `update` tests are unit tests in
//! src/tui.)

// ---------------------------------------------------------------- pseudo-terminal

mod pty {
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

    pub struct Env {
        pub dir: tempfile::TempDir,
    }

    impl Env {
        /// An initialised database with one domain and no users.
        pub fn bare() -> Env {
            let e = Env {
                dir: tempfile::tempdir().unwrap(),
            };
            e.cli(&["init", "--domain", "free.example.com"]);
            e
        }
        pub fn new() -> Env {
            let e = Env::bare();
            for (email, name) in [
                ("alice@example.com", "Alice Meyer"),
                ("alina@example.com", "Alina Park"),
                ("bob@example.com", "Bob Builder"),
                ("carol@example.com", "Carol King"),
            ] {
                e.cli(&[
                    "user",
                    "add",
                    email,
                    "--domain",
                    "free.example.com",
                    "--name",
                    name,
                ]);
            }
            e
        }
        pub fn url(&self) -> String {
            format!("sqlite://{}", self.dir.path().join("k.db").display())
        }
        fn envs(&self) -> Vec<(&'static str, PathBuf)> {
            vec![
                ("XDG_DATA_HOME", self.dir.path().join("data")),
                ("XDG_CONFIG_HOME", self.dir.path().join("config")),
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
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .connect(&self.url())
                    .await
                    .unwrap();
                let row: (String, i64) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                row
            })
        }
        /// Writes a hostile display name straight into the database: the core refuses
        /// control characters, but whoever can write the database can put anything there.
        pub fn poison_name(&self, email: &str, name: &str) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
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
            let pair = native_pty_system()
                .openpty(PtySize {
                    rows,
                    cols,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .unwrap();
            let mut cmd = CommandBuilder::new(BIN);
            cmd.arg("--database-url");
            cmd.arg(self.url());
            cmd.env("TERM", "xterm-256color");
            cmd.env_remove("NO_COLOR");
            cmd.env_remove("KEYWARD_DATABASE_URL");
            for (k, v) in self.envs() {
                cmd.env(k, v);
            }
            cmd.cwd(self.dir.path());
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
        /// Waits until the screen satisfies `f`; fails with the screen if it never does.
        pub fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let c = self.contents();
                if f(&c) {
                    return c;
                }
                if Instant::now() > deadline {
                    panic!("timed out waiting for {what}; screen:\n{c}");
                }
                std::thread::sleep(Duration::from_millis(40));
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
                let _ = self.child.kill();
            }
        }
    }

    #[allow(dead_code)]
    pub fn exists(p: &Path) -> bool {
        p.exists()
    }
}

#[test]
fn pty_open_navigate_every_screen_filter_and_quit_with_ctrl_c() {
    let env = pty::Env::new();
    let mut c = env.spawn(24, 80);
    let s = c.wait_for("Waiting for API access (4)");
    assert!(s.contains("alice@example.com"), "{s}");
    assert!(
        c.parser.lock().unwrap().screen().alternate_screen(),
        "drawn in the alternate screen"
    );
    for (key, marker) in [
        ("2", "EMAIL"),
        ("3", "EFFECTIVE"),
        ("4", "EU VAT"),
        ("7", "JTI"),
        ("9", "ACCOUNT"),
        ("0", "ACTION"),
        ("1", "Recent changes"),
    ] {
        c.send(key);
        c.wait_for(marker);
    }
    // Users, filtered as we type.
    c.send("2");
    c.wait_for("1 of 4");
    c.send("/ali");
    let s = c.wait_for("1 of 2");
    assert!(s.contains("alice@example.com") && s.contains("alina@example.com"));
    assert!(!s.contains("bob@example.com"), "{s}");
    c.send("\x1b");
    c.wait_for("1 of 4");
    // Tab goes on, `:` runs a command.
    c.send(":users carol\r");
    c.wait(":users carol", |s| {
        s.contains("1 of 1") && s.contains("carol@example.com")
    });
    // Ctrl-C quits from anywhere, leaving the alternate screen.
    c.send(":");
    c.wait_for("Command");
    c.send("\x03");
    assert!(c.exit(), "exit status 0");
    let p = c.parser.lock().unwrap();
    assert!(!p.screen().alternate_screen(), "terminal restored");
    let raw = c.raw.lock().unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("\x1b[?1049l"), "left the alternate screen");
}

#[test]
fn pty_hostile_name_is_rendered_escaped() {
    let env = pty::Env::new();
    env.poison_name("bob@example.com", "Bob \x1b]0;pwned\x07\x1b[2J");
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access");
    c.send(":users bob\r");
    let s = c.wait_for(r"\e]0;pwned\x07");
    assert!(s.contains(r"Bob \e]0;pwned\x07\e[2J"), "{s}");
    assert!(
        !s.contains("Waiting for API"),
        "the screen was not cleared by the name"
    );
    let raw = String::from_utf8_lossy(&c.raw.lock().unwrap()).into_owned();
    assert!(
        !raw.contains("\x1b]0;pwned"),
        "no OSC title sequence reached the terminal"
    );
    assert!(!raw.contains("pwned\x07"), "no BEL from user data");
    c.send("\x03");
    assert!(c.exit());
}

#[test]
fn pty_too_small_terminal_and_resize() {
    let env = pty::Env::new();
    let mut c = env.spawn(20, 60);
    c.wait_for("enlarge it to at least 80×24");
    c.resize(24, 80);
    c.wait_for("Waiting for API access");
    c.send("q");
    assert!(c.exit());
    assert!(!c.parser.lock().unwrap().screen().alternate_screen());
}

#[test]
fn pty_support_flow_reveals_a_key_once_and_leaves_no_trace() {
    let env = pty::Env::new();
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access (4)");
    // Enter on the first sign-up, Enter creates the key.
    c.send("\r");
    c.wait_for("Enable API access");
    c.send("\r");
    let s = c.wait_for("Shown only now");
    assert!(s.contains("client_id") && s.contains("kws_"), "{s}");
    assert!(s.contains("will not be shown again"), "{s}");
    let at = s.find("kws_").unwrap();
    let secret: String = s[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(secret.len() > 16, "{secret}");
    c.send("\x1b");
    let s = c.wait("the reveal to close", |s| !s.contains("Shown only now"));
    assert!(!s.contains("kws_"), "gone from the screen: {s}");
    c.wait_for("Waiting for API access (3)");
    c.send("q");
    assert!(c.exit(), "exit status 0");
    let p = c.parser.lock().unwrap();
    assert!(!p.screen().alternate_screen(), "terminal restored");
    let main = p.screen().contents();
    assert!(
        !main.contains("kws_") && !main.contains(&secret[..12]),
        "{main}"
    );
}

/// Formats like the console: 1000000 -> "1,000,000".
fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The large fixture: `KEYWARD_TUI_BIG_USERS` users (100,000 by default) and ten
/// token records each, loaded once per test run with `keyward demo`.
fn big() -> &'static (pty::Env, i64, i64) {
    static BIG: std::sync::OnceLock<(pty::Env, i64, i64)> = std::sync::OnceLock::new();
    BIG.get_or_init(|| {
        let users: i64 = std::env::var("KEYWARD_TUI_BIG_USERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let tokens = users * 10;
        let env = pty::Env::bare();
        env.cli(&[
            "demo",
            "--users",
            &users.to_string(),
            "--tokens",
            &tokens.to_string(),
        ]);
        (env, users, tokens)
    })
}

#[test]
fn pty_large_fixture_scrolls_to_the_end_and_filters_without_loading_tables() {
    let (env, users, tokens) = big();
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access");
    // Tokens: the first page, then the count over every record.
    c.send("7");
    let total = format!("1 of {}", thousands(*tokens));
    c.wait_for(&total);
    // G jumps to the last record without walking the list; k and PgUp move back.
    c.send("G");
    c.wait_for(&format!("{t} of {t}", t = thousands(*tokens)));
    c.send("kkk");
    c.wait_for(&format!(
        "{} of {}",
        thousands(tokens - 3),
        thousands(*tokens)
    ));
    c.send("\x1b[5~\x1b[5~\x1b[5~");
    c.wait(&format!("paging up from {}", thousands(tokens - 3)), |s| {
        !s.contains(&format!("{} of", thousands(tokens - 3))) && s.contains("▶")
    });
    c.send("g");
    c.wait_for(&total);
    // Filter by one user's email: only their tokens, counted exactly.
    let (email, n) = env.query_one(
        "SELECT u.email, COUNT(*) FROM users u JOIN tokens t ON t.user_id = u.id \
         GROUP BY u.id ORDER BY COUNT(*) DESC, u.email LIMIT 1",
    );
    c.send(&format!("/{email}"));
    let s = c.wait_for(&format!("1 of {}", thousands(n)));
    let shown = s
        .lines()
        .filter(|l| l.contains("✓") || l.contains("✗"))
        .count() as i64;
    assert!(
        shown >= 1 && shown <= n,
        "{n} tokens, {shown} rows shown:\n{s}"
    );
    if n <= 12 {
        assert_eq!(shown, n, "every one of the user's tokens fits:\n{s}");
    }
    let user_col = &email[..10];
    for l in s.lines().filter(|l| l.contains("✓") || l.contains("✗")) {
        assert!(l.contains(user_col), "a row of another user: {l}\n{s}");
    }
    // The same on Users: the end of 100k users, then a substring filter.
    c.send("\x1b\x1b2");
    c.wait_for(&format!("1 of {}", thousands(*users)));
    c.send("G");
    c.wait_for(&format!("{u} of {u}", u = thousands(*users)));
    // Nothing loaded a whole table: the console stays far below the size of 1M rows.
    let peak = c.peak_kib();
    assert!(
        peak < 160 * 1024,
        "peak resident memory {peak} KiB: a list was loaded whole?"
    );
    // q goes back to the Dashboard, and q there quits.
    c.send("q");
    c.wait_for("Waiting for API access");
    c.send("q");
    assert!(c.exit());
}
