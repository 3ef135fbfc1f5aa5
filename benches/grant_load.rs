//! A small keep-alive load generator for `client_credentials` (when `wrk` is not at hand):
//! `cargo bench --bench grant_load -- URL CLIENT_ID CLIENT_SECRET [THREADS] [SECONDS]`
//! prints grants per second. Each thread holds one keep-alive connection. Without
//! arguments (as in a plain `cargo bench`) it prints its usage and does nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    // cargo passes `--bench`; only positional arguments count.
    let a: Vec<String> = std::env::args().filter(|x| !x.starts_with("--")).collect();
    if a.len() < 4 {
        eprintln!(
            "usage: cargo bench --bench grant_load -- URL CLIENT_ID CLIENT_SECRET [THREADS] [SECONDS]"
        );
        return;
    }
    let (url, id, secret) = (a[1].clone(), a[2].clone(), a[3].clone());
    let threads: usize = a.get(4).and_then(|v| v.parse().ok()).unwrap_or(32);
    let secs: u64 = a.get(5).and_then(|v| v.parse().ok()).unwrap_or(10);
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (url, body, ok, bad, stop) = (
                url.clone(),
                body.clone(),
                ok.clone(),
                bad.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match c
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                    {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes();
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        let _ = h.join();
    }
    let el = start.elapsed().as_secs_f64();
    let n = ok.load(Ordering::Relaxed);
    println!(
        "{n} grants in {el:.1} s = {:.0} grants/s ({} failed), {threads} connections",
        n as f64 / el,
        bad.load(Ordering::Relaxed)
    );
}
