//! Whole-process console timings in a real pseudo-terminal (80×24, release build):
//! - time from process start to the first frame, and to the first complete frame
//!   (the Dashboard with its counts loaded);
//! - keystroke-to-frame latency of the `/` filter on Tokens and Users: the frame
//!   that echoes the key, and the frame with the filtered rows and their count
//!   (which includes the console's 50–100 ms typing debounce);
//! - the console's peak resident memory, on a small and a large database.
//!
//! `cargo bench --bench console -- [USERS] [RUNS]` (default 100000 users with ten
//! token records each, 7 runs). Fixtures are built once with `keyward demo` and
//! kept under `target/keyward-bench/`.

#[path = "../tests/pty/mod.rs"]
mod pty;

use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn fixture(users: i64) -> pty::Env {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let root = std::path::Path::new(&target)
        .join("keyward-bench")
        .join(format!("console-{users}"));
    let fresh = !root.join("k.db").exists();
    let env = pty::Env::kept(root);
    if fresh {
        eprintln!(
            "building the fixture: {users} users, {} tokens…",
            users * 10
        );
        let t = Instant::now();
        env.cli(&[
            "demo",
            "--users",
            &users.to_string(),
            "--tokens",
            &(users * 10).to_string(),
        ]);
        eprintln!("  done in {:.0} s", t.elapsed().as_secs_f64());
    }
    env
}

/// Types `text` into the open filter one key at a time; returns the echo and the
/// answer latencies of each key.
fn type_filter(c: &mut pty::Console, text: &str) -> (Vec<f64>, Vec<f64>) {
    let (mut echo, mut answer) = (Vec::new(), Vec::new());
    for (i, ch) in text.char_indices() {
        let typed = format!("/{}▏", &text[..i + ch.len_utf8()]);
        let t = Instant::now();
        c.send(&ch.to_string());
        let (_, e) = c.until(t, "the key's echo", |s| s.contains(&typed));
        let (_, a) = c.until(t, "the filtered answer", |s| {
            let head = s.lines().nth(1).unwrap_or("");
            head.contains(&typed) && head.contains(" of ") && !head.contains('⟳')
        });
        echo.push(ms(e));
        answer.push(ms(a));
    }
    (echo, answer)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let big: i64 = args.first().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(7);
    println!(
        "{:>9} {:>10} | {:>8} {:>9} | {:>20} {:>20} | {:>8}",
        "users",
        "tokens",
        "frame1",
        "complete",
        "tokens / echo,answer",
        "users / echo,answer",
        "peak"
    );
    for users in [1_000, big] {
        let env = fixture(users);
        let (mut first, mut complete, mut peak) = (Vec::new(), Vec::new(), 0u64);
        let (mut t_echo, mut t_ans, mut u_echo, mut u_ans) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let t0 = Instant::now();
            let mut c = env.spawn(24, 80);
            let (_, f) = c.until(t0, "the first frame", |s| s.contains("1 Dash"));
            let (_, d) = c.until(t0, "the Dashboard's data", |s| {
                s.contains("Waiting for API access (") && s.contains("Expiring within 7 days (")
            });
            first.push(ms(f));
            complete.push(ms(d));
            // Tokens, then Users: open the filter and type a name fragment.
            for (key, echo, ans) in [
                ("7", &mut t_echo, &mut t_ans),
                ("2", &mut u_echo, &mut u_ans),
            ] {
                c.send(key);
                c.until(Instant::now(), "the list's count", |s| {
                    let head = s.lines().nth(1).unwrap_or("");
                    head.contains(" of ") && !head.contains('⟳')
                });
                c.send("/");
                c.until(Instant::now(), "the filter", |s| s.contains("/▏"));
                let (e, a) = type_filter(&mut c, "lars");
                echo.extend(e);
                ans.extend(a);
                c.send("\x1b");
                std::thread::sleep(Duration::from_millis(30));
                c.send("\x1b");
                c.until(Instant::now(), "the filter to close", |s| {
                    !s.contains("/lars")
                });
            }
            peak = peak.max(c.peak_kib());
            c.send("\x03");
            c.exit();
        }
        println!(
            "{:>9} {:>10} | {:>6.0}ms {:>7.0}ms | {:>7.1}ms {:>5.0}ms (max {:>4.0}) | {:>7.1}ms {:>5.0}ms (max {:>4.0}) | {:>5} MiB",
            users,
            users * 10,
            median(&mut first),
            median(&mut complete),
            median(&mut t_echo),
            median(&mut t_ans.clone()),
            max(&t_ans),
            median(&mut u_echo),
            median(&mut u_ans.clone()),
            max(&u_ans),
            peak / 1024
        );
    }
    println!(
        "(medians over {runs} runs; echo = frame showing the key, answer = frame with the filtered rows and count)"
    );
}
