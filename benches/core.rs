//! Benchmarks of the core library on SQLite (release build):
//!
//! - `user_add`: one user through the service, on a database already holding 100k users;
//! - `user_list` / `user_count`: keyset pages, prefix and trigram search, counts on 100k users;
//! - `demo`: bulk load of 10k users into a fresh database (users/s).
//!
//! Run with `cargo bench --bench core`. Figures are reported, never asserted.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use keyward::service::InitOptions;
use keyward::service::demo::DemoOptions;
use keyward::service::directory::NewUser;
use keyward::store::directory::{UserQuery, UserRow, UserSort};
use keyward::store::{Target, Val};
use keyward::{Actor, Keyward, OsIdentity};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Users in the fixture database for the read and `user_add` benchmarks.
const FIXTURE_USERS: u64 = 100_000;
/// Users per iteration of the bulk-load benchmark.
const DEMO_USERS: u64 = 10_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A fresh, initialised SQLite database in its own temp dir, and its first admin.
async fn fresh_db() -> (tempfile::TempDir, Keyward, Actor) {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Target {
        url: format!("sqlite://{}/k.db", dir.path().display()),
        implicit: false,
        single_connection: false,
    };
    let os = OsIdentity::current().expect("OS identity");
    let (kw, _) = Keyward::open_for_init(target).await.expect("open");
    kw.init(
        &os,
        &InitOptions {
            domain: Some("free.example.com".into()),
            issuer: None,
        },
    )
    .await
    .expect("init");
    let actor = kw.actor(&os).await.expect("actor");
    (dir, kw, actor)
}

/// The shared fixture: a database holding 100k demo users.
struct Fixture {
    _dir: tempfile::TempDir,
    kw: Keyward,
    actor: Actor,
}

impl Fixture {
    async fn new() -> Fixture {
        let (dir, kw, actor) = fresh_db().await;
        let t = Instant::now();
        let report = kw
            .demo(
                &actor,
                DemoOptions {
                    users: FIXTURE_USERS,
                    tokens: 0,
                },
                |_, _| {},
            )
            .await
            .expect("demo");
        eprintln!(
            "fixture: {} users loaded in {:.2?}",
            report.users,
            t.elapsed()
        );
        Fixture {
            _dir: dir,
            kw,
            actor,
        }
    }

    /// The keyset cursor of the row `skip` rows into the list in `sort` order.
    async fn cursor_at(&self, sort: UserSort, skip: usize) -> (Val, String) {
        let mut q = UserQuery {
            sort,
            limit: 10_000,
            ..Default::default()
        };
        let mut seen = 0usize;
        loop {
            let page = self
                .kw
                .user_list(&self.actor, q.clone())
                .await
                .expect("list");
            let last = page.last().expect("enough rows").clone();
            if seen + page.len() >= skip {
                let row = &page[skip - seen - 1];
                return cursor(sort, row);
            }
            seen += page.len();
            q.after = Some(cursor(sort, &last));
        }
    }
}

/// The cursor after `row`, built like the front-ends do.
fn cursor(sort: UserSort, row: &UserRow) -> (Val, String) {
    let key = match sort {
        UserSort::Email => Val::from(row.email.to_lowercase()),
        UserSort::Created => Val::from(row.created_at),
    };
    (key, row.id.clone())
}

fn page(sort: UserSort, after: Option<(Val, String)>, search: Option<&str>) -> UserQuery {
    UserQuery {
        sort,
        after,
        search: search.map(str::to_string),
        limit: 50,
        ..Default::default()
    }
}

fn reads(c: &mut Criterion, rt: &Runtime, fx: &Fixture) {
    let mid = FIXTURE_USERS as usize / 2;
    let email_mid = rt.block_on(fx.cursor_at(UserSort::Email, mid));
    let created_mid = rt.block_on(fx.cursor_at(UserSort::Created, mid));

    let mut g = c.benchmark_group("user_list_100k");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    let cases: Vec<(&str, UserQuery)> = vec![
        ("email_first", page(UserSort::Email, None, None)),
        (
            "email_middle",
            page(UserSort::Email, Some(email_mid.clone()), None),
        ),
        ("created_first", page(UserSort::Created, None, None)),
        (
            "created_middle",
            page(UserSort::Created, Some(created_mid), None),
        ),
        // Under three characters: email prefix (LIKE).
        ("search_prefix_al", page(UserSort::Email, None, Some("al"))),
        // A prefix whose rows sort last in email order.
        ("search_prefix_zo", page(UserSort::Email, None, Some("zo"))),
        // Three characters and more: FTS5 trigram substring.
        ("search_fts_ali", page(UserSort::Email, None, Some("ali"))),
        ("search_fts_ossi", page(UserSort::Email, None, Some("ossi"))),
        (
            "search_fts_ossi_middle",
            page(UserSort::Email, Some(email_mid), Some("ossi")),
        ),
        // A substring every user matches (the domain part of the demo emails).
        (
            "search_fts_example",
            page(UserSort::Email, None, Some("example")),
        ),
        // A rare substring: few matches.
        (
            "search_fts_rare",
            page(UserSort::Email, None, Some("alice.meyer123")),
        ),
    ];
    for (name, q) in cases {
        let n = rt
            .block_on(fx.kw.user_list(&fx.actor, q.clone()))
            .expect("list")
            .len();
        eprintln!("user_list_100k/{name}: {n} rows");
        g.bench_with_input(BenchmarkId::from_parameter(name), &q, |b, q| {
            b.to_async(rt).iter(|| async {
                black_box(fx.kw.user_list(&fx.actor, q.clone()).await.expect("list"))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("user_count_100k");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    for (name, search) in [
        ("all", None),
        ("search_prefix_al", Some("al")),
        ("search_fts_ali", Some("ali")),
        ("search_fts_ossi", Some("ossi")),
        ("search_fts_example", Some("example")),
    ] {
        let q = page(UserSort::Email, None, search);
        let n = rt
            .block_on(fx.kw.user_count(&fx.actor, q.clone()))
            .expect("count");
        eprintln!("user_count_100k/{name}: {n}");
        g.bench_with_input(BenchmarkId::from_parameter(name), &q, |b, q| {
            b.to_async(rt).iter(|| async {
                black_box(fx.kw.user_count(&fx.actor, q.clone()).await.expect("count"))
            })
        });
    }
    g.finish();
}

fn user_add(c: &mut Criterion, rt: &Runtime, fx: &Fixture) {
    let seq = AtomicU64::new(0);
    let mut g = c.benchmark_group("user_add_100k");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    g.bench_function("no_password", |b| {
        b.to_async(rt).iter(|| async {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let new = NewUser {
                email: format!("bench.user{n}@bench.example"),
                domain: "free.example.com".into(),
                name: Some(format!("Bench User {n}")),
                ..Default::default()
            };
            black_box(fx.kw.user_add(&fx.actor, new).await.expect("user_add"))
        })
    });
    g.finish();
}

fn demo_load(c: &mut Criterion, rt: &Runtime) {
    let mut g = c.benchmark_group("demo");
    // Flat sampling: every sample is one or a few whole loads, not 1..=10 of them.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(DEMO_USERS));
    g.bench_function(BenchmarkId::new("load_users", DEMO_USERS), |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Only the load is timed, not creating and initialising the database.
                let (dir, kw, actor) = fresh_db().await;
                let t = Instant::now();
                let report = kw
                    .demo(
                        &actor,
                        DemoOptions {
                            users: DEMO_USERS,
                            tokens: 0,
                        },
                        |_, _| {},
                    )
                    .await
                    .expect("demo");
                total += t.elapsed();
                assert_eq!(report.users, DEMO_USERS);
                drop(kw);
                drop(dir);
            }
            total
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let fx = rt.block_on(Fixture::new());
    // Reads first, so they see exactly the 100k fixture users.
    reads(c, &rt, &fx);
    user_add(c, &rt, &fx);
    drop(fx);
    demo_load(c, &rt);
}

criterion_group!(core, benches);
criterion_main!(core);
