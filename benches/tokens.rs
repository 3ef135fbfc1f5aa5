//! Token benchmarks: signing, minting (sign + record) one at a time and in bulk, and
//! verification with the in-memory revocation view, per algorithm, on SQLite.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keyward::service::InitOptions;
use keyward::service::directory::NewUser;
use keyward::service::tokens::{Grant, MintSpec, Verifier, sign_grant};
use keyward::store::Target;
use keyward::token::Alg;
use keyward::{Keyward, OsIdentity};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

struct Fixture {
    _dir: tempfile::TempDir,
    kw: Keyward,
    actor: keyward::Actor,
    grant: Grant,
}

fn fixture(rt: &tokio::runtime::Runtime) -> Fixture {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            url: format!("sqlite://{}/k.db", dir.path().display()),
            implicit: false,
            single_connection: false,
        };
        let (kw, _) = Keyward::open_for_init(target).await.unwrap();
        let kw = kw.with_master_key_path(dir.path().join("master.key"));
        let os = OsIdentity::current().unwrap();
        kw.init(
            &os,
            &InitOptions {
                domain: Some("free.example.com".into()),
                issuer: None,
            },
        )
        .await
        .unwrap();
        let actor = kw.actor(&os).await.unwrap();
        let u = kw
            .user_add(
                &actor,
                NewUser {
                    email: "bench@x.example".into(),
                    domain: "free.example.com".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let grant = Grant {
            domain_id: u.user.domain_id.clone(),
            domain: u.user.domain.clone(),
            user_id: u.user.id.clone(),
            key_id: None,
            app_id: None,
            client_id: "keyward-console".into(),
            scopes: BTreeSet::from(["read".to_string()]),
            ttl: 3600,
            source: "bench",
            family_id: None,
        };
        Fixture {
            _dir: dir,
            kw,
            actor,
            grant,
        }
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let f = fixture(&rt);
    let issuer = "http://127.0.0.1:8080";
    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        rt.block_on(f.kw.signing_key_rotate(&f.actor, alg, false))
            .unwrap();
        let ring = rt.block_on(f.kw.reload_signing_keys()).unwrap();
        let mut g = c.benchmark_group(format!("tokens/{}", alg.as_str()));
        g.measurement_time(Duration::from_secs(3)).sample_size(20);
        g.throughput(Throughput::Elements(1));
        g.bench_function("sign", |b| {
            b.iter(|| sign_grant(&ring, issuer, &f.grant, 1_800_000_000).unwrap())
        });
        g.bench_function("mint (service: sign + record + audit)", |b| {
            b.to_async(&rt).iter(|| {
                f.kw.mint(
                    &f.actor,
                    MintSpec {
                        user: "bench@x.example".into(),
                        ..Default::default()
                    },
                )
            })
        });
        let n = 1000u64;
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(
            BenchmarkId::new("mint bulk (sign + batched record)", n),
            &n,
            |b, &n| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let now = keyward::model::now();
                        let recs: Vec<_> = (0..n)
                            .map(|_| sign_grant(&ring, issuer, &f.grant, now).unwrap().1)
                            .collect();
                        rt.block_on(f.kw.write(async move |cx| {
                            keyward::store::credentials::insert_token_records(cx, &recs).await
                        }))
                        .unwrap();
                        total += start.elapsed();
                    }
                    total
                })
            },
        );
        // Verification with the revocation view (another team's resource-server path).
        let token = rt
            .block_on(f.kw.mint(
                &f.actor,
                MintSpec {
                    user: "bench@x.example".into(),
                    ..Default::default()
                },
            ))
            .unwrap()
            .access_token;
        let v = rt.block_on(Verifier::new(f.kw.clone())).unwrap();
        g.throughput(Throughput::Elements(1));
        g.bench_function("verify (revocation view)", |b| {
            b.iter(|| v.verify(&token).unwrap())
        });
        g.finish();
    }
}

criterion_group!(tokens, benches);
criterion_main!(tokens);
