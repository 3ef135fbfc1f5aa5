//! The console's end-to-end tests: the real binary in a pseudo-terminal, read
//! through vt100. (Rendering snapshots and `update` tests are unit tests in
//! src/tui.)

// ---------------------------------------------------------------- pseudo-terminal

mod pty;

#[test]
fn pty_open_navigate_every_screen_filter_and_quit_with_ctrl_c() {
    let env = pty::Env::new();
    // The newest station, first by name.
    env.cli(&[
        "station",
        "add",
        "Aardvark Ltd",
        "--user",
        "bob@example.com",
    ]);
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
    // Stations: oldest first, then `s` sorts them by name in the database, `S` reverses.
    let selected = |s: &str| {
        s.lines()
            .find(|l| l.starts_with('▶'))
            .unwrap_or("")
            .to_string()
    };
    let names = ["Aardvark", "Alice", "Alina", "Bob", "Carol"];
    let at = |s: &str| -> Vec<usize> {
        names
            .iter()
            .map(|n| s.find(n).unwrap_or(usize::MAX))
            .collect()
    };
    c.send("4");
    let s = c.wait_for("sort created ▲");
    assert!(selected(&s).contains("Alice Meyer"), "{s}");
    c.send("G");
    let s = c.wait_for("5 of 5");
    assert!(selected(&s).contains("Aardvark Ltd"), "the newest: {s}");
    c.send("s");
    let s = c.wait_for("sort name ▲");
    let order = at(&s);
    assert!(order.is_sorted() && order[4] != usize::MAX, "{s}");
    c.send("S");
    let s = c.wait("descending by name", |s| {
        s.contains("sort name ▼")
            && s.find("Carol").unwrap_or(usize::MAX) < s.find("Bob").unwrap_or(0)
    });
    let mut order = at(&s);
    order.reverse();
    assert!(order.is_sorted() && order[0] != usize::MAX, "{s}");
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
fn pty_ctrl_z_suspends_to_the_shell_and_fg_resumes() {
    let env = pty::Env::new();
    let mut c = env.spawn_shell(24, 80);
    c.wait_for("$ ");
    c.send(&format!("{}\r", env.console_command()));
    c.wait_for("Waiting for API access (4)");
    c.send("2");
    c.wait_for("alice@example.com");
    // Ctrl-Z: the shell's job control takes over, the console's screen gone.
    c.send("\x1a");
    let s = c.wait_for("Stopped");
    assert!(!c.parser.lock().unwrap().screen().alternate_screen(), "{s}");
    assert!(!s.contains("alice@example.com"), "{s}");
    // The terminal is the shell's again: what is typed is echoed, line by line.
    c.send("echo still-$((6*7))\r");
    c.wait_for("still-42");
    // `fg`: the same screen again, drawn anew, and it answers keys.
    c.send("fg\r");
    let s = c.wait_for("alice@example.com");
    assert!(s.contains("EMAIL"), "{s}");
    assert!(c.parser.lock().unwrap().screen().alternate_screen());
    c.send("3");
    c.wait_for("EFFECTIVE");
    c.send("\x03");
    c.wait("the shell's prompt", |s| {
        s.contains("$ ") && !s.contains("EFFECTIVE")
    });
    c.send("exit\r");
    assert!(c.exit(), "the shell exits with 0");
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
    // A sign-up that arrives meanwhile shows up by itself, no key pressed.
    env.cli(&[
        "user",
        "add",
        "dave@example.com",
        "--domain",
        "free.example.com",
    ]);
    let s = c.wait_for("Waiting for API access (4)");
    assert!(s.contains("dave@example.com"), "{s}");
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

#[test]
fn pty_input_never_waits_on_a_slow_store() {
    let Some(env) = pty::Env::bare_pg() else {
        return;
    };
    let env = env.with_users();
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access (4)");
    // From here every read blocks until the lock is released.
    let lock = env.lock_store();
    c.send("2");
    let s = c.wait("the Users screen while the store is locked", |s| {
        s.contains("[2 Users]") && s.contains('⟳')
    });
    assert!(
        !s.contains("alice@example.com"),
        "no rows can have arrived: {s}"
    );
    // Typing, help and navigation all answer while the page is still pending.
    c.send("/ali");
    c.wait_for("/ali");
    // (A pause after Esc, or the terminal reads Esc + key as Alt+key.)
    c.send("\x1b");
    c.wait("the filter to close", |s| !s.contains("/ali"));
    c.send("?");
    c.wait_for("Keys of Users");
    c.send("\x1b");
    c.wait("the help to close", |s| !s.contains("Keys of"));
    c.send("7");
    c.wait_for("[7 Tokens]");
    c.send("2");
    let s = c.wait("Users again, still waiting", |s| {
        s.contains("[2 Users]") && !s.contains("Keys of")
    });
    assert!(s.contains('⟳'), "the spinner shows pending work: {s}");
    assert!(!s.contains("alice@example.com"), "still locked: {s}");
    // Released: the answers land and the spinner stops.
    lock.release();
    let s = c.wait("the users after the lock", |s| {
        s.contains("alice@example.com") && s.contains("1 of 4")
    });
    assert!(s.lines().nth(1).is_some_and(|l| !l.contains('⟳')), "{s}");
    c.send("\x03");
    assert!(c.exit());
}

#[test]
fn pty_create_an_app_and_grant_and_revoke_a_consent() {
    let env = pty::Env::new();
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access (4)");
    c.send("6");
    c.wait_for("Developer apps (0)");
    c.send("n");
    c.wait_for("New developer app");
    c.send("ERP Bridge\tcarol@example.com\thttps://erp.example.net/cb\r");
    let s = c.wait_for("Shown only now");
    assert!(s.contains("App ERP Bridge of carol@example.com"), "{s}");
    let secret = s
        .lines()
        .skip_while(|l| !l.contains("client_secret"))
        .nth(1)
        .and_then(|l| l.split('│').nth(2))
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    assert!(secret.starts_with("kwa_") && secret.len() > 20, "{s}");
    c.send("\x1b");
    let s = c.wait("the reveal to close", |s| !s.contains("Shown only now"));
    assert!(!s.contains(&secret), "the secret left the screen: {s}");
    c.send("+");
    c.wait_for("Grant consent");
    c.send("bob@example.com\r");
    c.wait_for("bob@example.com consented to ERP Bridge");
    c.wait_for("consented bob@example.com");
    c.send("-");
    c.wait_for("Revoke consent");
    c.send("\r");
    c.wait_for("revoked bob@example.com's consent");
    c.wait_for("no user has consented yet");
    // Every change above is in the audit log, and its hash chain verifies.
    c.send("0");
    c.wait_for("consent.revoke");
    c.send("V");
    c.wait_for("audit log intact");
    c.send("\x03");
    assert!(c.exit());
    // What the session leaves behind holds no trace of the secret: the terminal's
    // main screen, and the database with its WAL (the secret is stored hashed).
    let p = c.parser.lock().unwrap();
    assert!(!p.screen().alternate_screen());
    assert!(!p.screen().contents().contains(&secret[..16]));
    for f in ["k.db", "k.db-wal"] {
        let bytes = std::fs::read(env.root().join(f)).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(&secret[4..20]), "the secret is in {f}");
    }
}

/// The screen's text with box borders dropped and runs of blanks made one space, so a
/// message wrapped inside a popup reads as one line.
fn flat(screen: &str) -> String {
    screen
        .replace(['│', '┌', '┐', '└', '┘', '─'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn pty_a_refusal_says_which_keys_take_the_next_step() {
    let env = pty::Env::new();
    env.cli(&["scope", "add", "bulk_send", "--description", "Bulk sending"]);
    env.cli(&["role", "add", "Reseller", "--scopes", "bulk_send"]);
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access");
    c.send("3");
    c.wait_for("Reseller");
    // Scopes pane, second row (admin, bulk_send, ...), remove it.
    c.send("lj");
    c.wait_for("scope bulk_send");
    c.send("x");
    c.wait_for("Remove scope bulk_send");
    c.send("y");
    let s = flat(&c.wait_for("That did not work"));
    assert!(
        s.contains(
            "scope bulk_send is granted by role(s) Reseller; revoke it from each first: \
             on Roles & scopes (3), select the role and press -"
        ),
        "{s}"
    );
    assert!(
        !s.contains("keyward role"),
        "a CLI command in the console: {s}"
    );
    // Taking that step does let it through.
    c.send(" ");
    c.wait("the popup to close", |s| !s.contains("That did not work"));
    c.send("hG");
    c.wait_for("Reseller");
    c.send("-");
    c.wait_for("Revoke scopes from Reseller");
    c.send("\r"); // bulk_send, highlighted in the scopes pane, comes ticked
    c.wait_for("Revoke bulk_send from Reseller");
    c.send("\r");
    c.wait_for("granted (none) · effective (none)");
    c.send("l"); // back to the scopes pane, still on bulk_send
    c.wait_for("scope bulk_send");
    c.send("xy");
    c.wait("the scope to go", |s| !s.contains("bulk_send"));
    c.send("\x03");
    assert!(c.exit());
}

#[test]
fn pty_a_refused_form_comes_back_to_be_corrected() {
    let env = pty::Env::new();
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access");
    c.send("4");
    c.wait_for("EU VAT");
    c.send("n");
    c.wait_for("New station");
    c.send("nobody@example.com\tDepot North\r");
    let s = flat(&c.wait_for("Not saved"));
    assert!(
        s.contains("✗ Not saved: user \"nobody@example.com\" not found")
            && s.contains("[Depot North"),
        "the form, as typed, with the reason: {s}"
    );
    // Back to the owner, corrected; the rest is still there.
    c.send("\x1b[Z");
    c.send(&"\x7f".repeat("nobody@example.com".len()));
    c.send("carol@example.com\r");
    c.wait("the form to close", |s| !s.contains("New station"));
    let s = c.wait_for("Depot North");
    assert!(s.contains("carol@example.com"), "{s}");
    c.send("\x03");
    assert!(c.exit());
}

#[test]
fn pty_import_users_from_a_csv_file() {
    let env = pty::Env::new();
    let csv = env.root().join("signups.csv");
    std::fs::write(
        &csv,
        "email,name\ndora@example.com,Dora Lee\nnot-an-email,Nobody\nerik@example.com,Erik Berg\n",
    )
    .unwrap();
    let mut c = env.spawn(24, 80);
    c.wait_for("Waiting for API access (4)");
    c.send("2");
    c.wait_for("1 of 4");
    c.send("I");
    c.wait_for("Import users");
    // Check only first: nothing changes.
    c.send(&format!("{}\r", csv.display()));
    // The refused rows are listed in a pop-up, each whole.
    c.wait_for("would create 2, refused 1");
    let s = c.wait_for("line 3 not-an-email: invalid email");
    assert!(s.contains("Result"), "{s}");
    c.send(" ");
    c.wait("the result to close", |s| {
        !s.contains("line 3 not-an-email")
    });
    c.wait_for("1 of 4");
    c.send("I");
    c.wait_for("Import users");
    c.send(&format!("{}\t\t\x1b[C\r", csv.display()));
    c.wait_for("created 2, refused 1");
    c.send(" ");
    c.wait_for("1 of 6");
    c.send("\x03");
    assert!(c.exit());
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
    let counted = format!("1 of {}", thousands(n));
    let s = c.wait("the filtered page and its count", |s| {
        let head = s.lines().nth(1).unwrap_or("");
        head.contains(&counted) && !head.contains('⟳')
    });
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
