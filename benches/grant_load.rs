//! Throughput of the token endpoint (issue #5), measured in one run beside two
//! reference routes on the same stack.
//!
//! `cargo bench --bench grant_load -- run` sets up a temporary SQLite database (a
//! domain, a user, and two API keys: one that issues refresh tokens and one that does
//! not; rate limits off), starts the real `keyward serve` process, starts two reference
//! servers (this harness re-run as child processes, on axum and tokio's default
//! runtime like `keyward serve`): a static-JSON route and a route that only signs one
//! ES256 token per request with jsonwebtoken on aws-lc-rs (the practical ceiling).
//! It drives each in turn with the same keep-alive load generator (hyper, one HTTP/1.1
//! connection per task, identical request bodies) and prints a Markdown table: requests
//! per second (median of the rounds), server CPU time per request, and the ratio to the
//! sign-only route (each round's rate over the sign-only rate of the same round; the
//! median, lowest and highest of those), with the load average before and after. Every
//! other round runs the targets in reverse order.
//!
//! Options after `run`: `--seconds N` (measured seconds per target and round, 10),
//! `--warmup N` (1), `--rounds N` (3), `--connections N` (32), `--threads N`
//! (load-generator threads, 1), `--log LEVEL` (`KEYWARD_LOG` of the server, `warn`),
//! `--database-url URL` (an empty database to initialise instead of a temporary
//! SQLite file, e.g. a fresh PostgreSQL database).
//!
//! `cargo bench --bench grant_load -- URL CLIENT_ID CLIENT_SECRET [CONNECTIONS] [SECONDS]`
//! drives a server that is already running. Without arguments (as in a plain
//! `cargo bench`) it prints its usage and does nothing.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo bench --bench grant_load -- run [--seconds N] [--warmup N] [--rounds N] [--connections N] [--threads N] [--log LEVEL] [--database-url URL]
   or: cargo bench --bench grant_load -- URL CLIENT_ID CLIENT_SECRET [CONNECTIONS] [SECONDS]";

const DOMAIN: &str = "bench.example.com";

fn main() {
    // cargo passes `--bench`; it is not ours.
    let a: Vec<String> = std::env::args()
        .skip(1)
        .filter(|x| x != "--bench")
        .collect();
    match a.first().map(String::as_str) {
        Some("run") => harness(&Opts::parse(&a[1..])),
        Some("reference") if a.len() == 2 => reference(&a[1]),
        Some(url) if url.starts_with("http") && a.len() >= 3 => external(&a),
        _ => eprintln!("{USAGE}"),
    }
}

// ------------------------------------------------------------------ options

struct Opts {
    seconds: u64,
    warmup: u64,
    rounds: usize,
    connections: usize,
    threads: usize,
    log: String,
    database_url: Option<String>,
}

impl Opts {
    fn parse(a: &[String]) -> Opts {
        let mut o = Opts {
            seconds: 10,
            warmup: 1,
            rounds: 3,
            connections: 32,
            threads: 1,
            log: "warn".into(),
            database_url: None,
        };
        let mut it = a.iter();
        while let Some(k) = it.next() {
            let v = it
                .next()
                .unwrap_or_else(|| fail(&format!("{k} needs a value")));
            let num = || {
                v.parse::<u64>()
                    .unwrap_or_else(|_| fail(&format!("{k}: {v}")))
            };
            match k.as_str() {
                "--seconds" => o.seconds = num().max(1),
                "--warmup" => o.warmup = num(),
                "--rounds" => o.rounds = num().max(1) as usize,
                "--connections" => o.connections = num().max(1) as usize,
                "--threads" => o.threads = num().max(1) as usize,
                "--log" => o.log = v.clone(),
                "--database-url" => o.database_url = Some(v.clone()),
                _ => fail(&format!("unknown option {k}")),
            }
        }
        o
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("grant_load: {msg}\n{USAGE}");
    std::process::exit(2)
}

// ------------------------------------------------------------------ load generator

/// What one measurement saw.
struct Sample {
    ok: u64,
    failed: u64,
    secs: f64,
    /// CPU seconds the server process used during the window.
    server_cpu: f64,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

/// User + system CPU seconds of a process so far (`/proc/PID/stat`).
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / hz
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Drives `url` (POST, form body) over `connections` keep-alive connections for
/// `warmup` + `secs` seconds; counts 200 answers in the measured window.
fn drive(
    url: &str,
    body: &str,
    connections: usize,
    threads: usize,
    warmup: u64,
    secs: u64,
    server_pid: Option<u32>,
) -> Sample {
    let uri: hyper::Uri = url
        .parse()
        .unwrap_or_else(|_| fail(&format!("bad URL {url}")));
    let authority = uri.authority().expect("URL with host and port").to_string();
    let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&authority)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| fail(&format!("cannot resolve {authority}")));
    let path = uri.path().to_string();
    let body = Bytes::from(body.to_string());
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (path, authority, body) = (path.clone(), authority.clone(), body.clone());
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            rt.spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    let req = hyper::Request::post(path.as_str())
                        .header(hyper::header::HOST, authority.as_str())
                        .header(
                            hyper::header::CONTENT_TYPE,
                            "application/x-www-form-urlencoded",
                        )
                        .body(Full::new(body.clone()))
                        .expect("request");
                    let Ok(res) = send.send_request(req).await else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let status = res.status();
                    let whole = res.into_body().collect().await;
                    if status == hyper::StatusCode::OK && whole.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(warmup));
    let cpu0 = server_pid.map(cpu_secs).unwrap_or(0.0);
    let (ok0, bad0, t0) = (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(secs));
    let (ok1, bad1, el) = (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let cpu1 = server_pid.map(cpu_secs).unwrap_or(0.0);
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    Sample {
        ok: ok1 - ok0,
        failed: bad1 - bad0,
        secs: el,
        server_cpu: cpu1 - cpu0,
    }
}

/// Drives a server that is already running.
fn external(a: &[String]) {
    let (url, id, secret) = (&a[0], &a[1], &a[2]);
    let conns: usize = a.get(3).and_then(|v| v.parse().ok()).unwrap_or(32);
    let secs: u64 = a.get(4).and_then(|v| v.parse().ok()).unwrap_or(10);
    let s = drive(url, &grant_body(id, secret), conns, 1, 1, secs, None);
    println!(
        "{} grants in {:.1} s = {:.0} grants/s ({} failed), {conns} connections",
        s.ok,
        s.secs,
        s.rate(),
        s.failed
    );
}

fn grant_body(id: &str, secret: &str) -> String {
    format!("grant_type=client_credentials&client_id={id}&client_secret={secret}")
}

// ------------------------------------------------------------------ reference servers

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
}

/// The sign-only route: one ES256 access token per request, nothing else.
async fn sign_one(
    axum::extract::State(k): axum::extract::State<
        Arc<(jsonwebtoken::Header, jsonwebtoken::EncodingKey)>,
    >,
    _: Bytes,
) -> axum::Json<serde_json::Value> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = Claims {
        iss: "https://auth.bench.example.com",
        sub: "0196a5d0-0000-7000-8000-000000000001",
        aud: DOMAIN,
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::now_v7().to_string(),
        client_id: "kw_reference",
        scope: "read",
    };
    let jwt = jsonwebtoken::encode(&k.0, &claims, &k.1).expect("sign");
    axum::Json(serde_json::json!({
        "access_token": jwt,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "read",
    }))
}

/// A child process serving one reference route on 127.0.0.1 (port printed on stdout).
fn reference(kind: &str) {
    let app = match kind {
        "static" => Router::new().route(
            "/",
            post(|_: Bytes| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        ),
        "sign" => {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("P-256 key");
            let key = jsonwebtoken::EncodingKey::from_ec_der(doc.as_ref());
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.typ = Some("at+jwt".into());
            header.kid = Some("reference-key".into());
            Router::new()
                .route("/", post(sign_one))
                .with_state(Arc::new((header, key)))
        }
        _ => fail(&format!("unknown reference route {kind}")),
    };
    // The same runtime as `keyward serve`: multi-threaded, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", l.local_addr().expect("address").port());
        std::io::stdout().flush().expect("stdout");
        axum::serve(l, app).await.expect("serve");
    });
}

/// Kills a child process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_reference(kind: &str) -> (Proc, String) {
    let exe = std::env::current_exe().expect("own path");
    let mut c = Command::new(exe)
        .args(["reference", kind])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start reference server");
    let mut line = String::new();
    std::io::BufReader::new(c.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reference port");
    (Proc(c), format!("http://127.0.0.1:{}/", line.trim()))
}

// ------------------------------------------------------------------ keyward set-up

/// Runs the real `keyward` binary with the harness's environment; returns stdout.
fn keyward(env: &[(&str, String)], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run keyward");
    if !out.status.success() {
        fail(&format!(
            "keyward {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates an API key; (client_id, client_secret).
fn key(env: &[(&str, String)], user: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "--json", "key", "create", "--user", user, "--domain", DOMAIN,
    ];
    args.extend_from_slice(extra);
    let v: serde_json::Value =
        serde_json::from_str(&keyward(env, &args)).expect("key create --json");
    let s = |k: &str| v[k].as_str().expect("key field").to_string();
    (s("client_id"), s("client_secret"))
}

fn start_keyward(env: &[(&str, String)], log: &str, dir: &Path) -> (Proc, String) {
    let log_path = dir.join("serve.log");
    let c = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["serve", "--listen", "127.0.0.1:0", "--domain", DOMAIN])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("KEYWARD_LOG", log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("start keyward serve");
    let c = Proc(c);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(rest) = text.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap_or_default();
            return (c, format!("{url}/auth/token"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fail(&format!(
        "keyward serve did not start: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    ))
}

/// One blocking request, to check that a target answers 200 before it is measured.
fn probe(url: &str, body: &str) {
    let r = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .unwrap_or_else(|e| fail(&format!("{url}: {e}")));
    let status = r.status();
    if status != 200 {
        fail(&format!(
            "{url}: {status}: {}",
            r.text().unwrap_or_default()
        ));
    }
}

// ------------------------------------------------------------------ the harness

fn harness(o: &Opts) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let p = |name: &str| dir.path().join(name).display().to_string();
    let url = o
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", p("keyward.db")));
    let env = [
        ("KEYWARD_DATABASE_URL", url.clone()),
        ("KEYWARD_MASTER_KEY_FILE", p("master.key")),
        ("XDG_DATA_HOME", p("data")),
        ("XDG_CONFIG_HOME", p("config")),
    ];
    let engine = url.split(':').next().unwrap_or("?").to_string();
    eprintln!("setting up {engine} in {}", dir.path().display());
    keyward(&env, &["init", "--domain", DOMAIN]);
    keyward(&env, &["config", "set", "rate_limit_per_client", "0"]);
    keyward(&env, &["config", "set", "rate_limit_per_address", "0"]);
    let user = format!("bench@{DOMAIN}");
    keyward(&env, &["user", "add", &user, "--domain", DOMAIN]);
    let (id_r, secret_r) = key(&env, &user, &["--name", "with refresh"]);
    let (id_n, secret_n) = key(&env, &user, &["--name", "no refresh", "--no-refresh"]);

    let (serve, token_url) = start_keyward(&env, &o.log, dir.path());
    let (stat, stat_url) = start_reference("static");
    let (sign, sign_url) = start_reference("sign");
    // The same request bytes everywhere; the reference routes ignore the body.
    let body_r = grant_body(&id_r, &secret_r);
    let body_n = grant_body(&id_n, &secret_n);
    let targets: [(&str, &str, &str, u32); 4] = [
        ("static JSON (axum)", &stat_url, &body_r, stat.0.id()),
        (
            "sign-only ES256 (jsonwebtoken, aws-lc-rs)",
            &sign_url,
            &body_r,
            sign.0.id(),
        ),
        (
            "`client_credentials` with refresh token",
            &token_url,
            &body_r,
            serve.0.id(),
        ),
        (
            "`client_credentials`, key set not to issue refresh tokens",
            &token_url,
            &body_n,
            serve.0.id(),
        ),
    ];
    for (_, url, body, _) in &targets {
        probe(url, body);
    }
    let load_before = loadavg();
    eprintln!(
        "load average {load_before}; {} round(s) of {} s per target, {} connections, {} load-generator thread(s)",
        o.rounds, o.seconds, o.connections, o.threads
    );
    let mut samples: Vec<Vec<Sample>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=o.rounds {
        // Every other round runs the targets in reverse order, so that a machine that
        // speeds up or slows down over the run does not favour a target by its place.
        let order: Vec<usize> = if round % 2 == 1 {
            (0..targets.len()).collect()
        } else {
            (0..targets.len()).rev().collect()
        };
        for i in order {
            let (name, url, body, pid) = &targets[i];
            let s = drive(
                url,
                body,
                o.connections,
                o.threads,
                o.warmup,
                o.seconds,
                Some(*pid),
            );
            eprintln!(
                "round {round}: {name}: {:.0} req/s ({} failed), load {}",
                s.rate(),
                s.failed,
                loadavg()
            );
            samples[i].push(s);
        }
    }
    let load_after = loadavg();
    let sorted = |mut r: Vec<f64>| -> Vec<f64> {
        r.sort_by(f64::total_cmp);
        r
    };
    let median = |v: &[Sample]| -> f64 {
        let r = sorted(v.iter().map(Sample::rate).collect());
        r[r.len() / 2]
    };
    let cpu_per_req = |v: &[Sample]| -> f64 {
        let (cpu, n) = v
            .iter()
            .fold((0.0, 0u64), |(c, n), s| (c + s.server_cpu, n + s.ok));
        cpu * 1e6 / n.max(1) as f64
    };
    // Each round's rate over the sign-only rate of the same round (measured next to it),
    // then the median of those: steadier on a machine whose speed drifts than the ratio
    // of the two medians, which may come from rounds minutes apart.
    let ratios = |v: &[Sample]| -> Vec<f64> {
        sorted(
            v.iter()
                .zip(&samples[1])
                .map(|(s, sign)| s.rate() / sign.rate().max(1.0))
                .collect(),
        )
    };
    println!();
    println!(
        "| target ({engine}, {} connections, {} × {} s) | req/s (median) | rounds | ÷ sign-only (median of rounds; lowest, highest) | server CPU µs/req | sign-only CPU ÷ this CPU | failed |",
        o.connections, o.rounds, o.seconds
    );
    println!("|---|---|---|---|---|---|---|");
    let sign_cpu = cpu_per_req(&samples[1]);
    for ((name, ..), v) in targets.iter().zip(&samples) {
        let rounds: Vec<String> = v.iter().map(|s| format!("{:.0}", s.rate())).collect();
        let r = ratios(v);
        println!(
            "| {name} | {:.0} | {} | {:.2} ({:.2}, {:.2}) | {:.0} | {:.2} | {} |",
            median(v),
            rounds.join(" / "),
            r[r.len() / 2],
            r[0],
            r[r.len() - 1],
            cpu_per_req(v),
            sign_cpu / cpu_per_req(v),
            v.iter().map(|s| s.failed).sum::<u64>()
        );
    }
    println!();
    println!(
        "load average (1/5/15 min) before: {load_before}; after: {load_after}; {} CPUs; the load generator ({} thread(s)) shares them",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        o.threads
    );
    drop((serve, stat, sign));
}
