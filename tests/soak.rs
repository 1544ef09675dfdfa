//! Guest faults under load: normal requests mixed with 10% faulty guests for a
//! minute (`WISP_SOAK_SECS` to change it). Every normal request must succeed,
//! every faulty one must get its error within its deadline plus a margin, and the
//! process's memory must come back to where it started.

use bytes::Bytes;
use hyper::Method;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wisp_e2e::{test_wasm, Project, Server};

/// Timeout of the faulty functions; their answers may come this much later still.
const FAULT_TIMEOUT: Duration = Duration::from_millis(500);
const MARGIN: Duration = Duration::from_secs(2);
const WORKERS: usize = 8;

/// (path, expected status) of each faulty request, in rotation.
const FAULTS: &[(&str, u16)] = &[
    ("/trap", 500),
    ("/spin", 504),
    ("/grow", 500),
    ("/deep", 500),
    ("/badptr", 200),
    ("/huge_write", 507),
    ("/huge_publish?channel=soak", 413),
    ("/sleepy?ms=5000", 504),
];

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[derive(Default)]
struct Tally {
    normal: u64,
    faulty: u64,
    failures: Vec<String>,
    /// Longest time past its deadline a faulty answer took, per path.
    late: BTreeMap<&'static str, Duration>,
}

async fn run_mix(server: Arc<Server>, seconds: u64, tally: Arc<Mutex<Tally>>) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let server = server.clone();
            let tally = tally.clone();
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < until {
                    i += WORKERS;
                    if i % 10 == 0 {
                        let (path, expected) = FAULTS[(i / 10) % FAULTS.len()];
                        let started = Instant::now();
                        let status = server.get(path).await.status.as_u16();
                        let took = started.elapsed();
                        let mut t = tally.lock().expect("tally");
                        t.faulty += 1;
                        if status != expected {
                            t.failures
                                .push(format!("{path}: {status}, expected {expected}"));
                        }
                        let late = took.saturating_sub(FAULT_TIMEOUT);
                        let worst = t.late.entry(path).or_default();
                        *worst = (*worst).max(late);
                    } else {
                        let body = format!("payload {i}");
                        let reply = server
                            .send(Method::POST, "/body", &[], Bytes::from(body.clone()))
                            .await;
                        let expected = format!("len={}\n{body}", body.len());
                        let mut t = tally.lock().expect("tally");
                        t.normal += 1;
                        if reply.status != 200 || reply.text() != expected {
                            t.failures.push(format!(
                                "normal request: {} {:?}",
                                reply.status,
                                reply.text()
                            ));
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_guests_under_load_never_disturb_normal_requests_or_leak() {
    let seconds: u64 = std::env::var("WISP_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let p = Project::new();
    p.file("messaging/soak.yaml", "matcher: soak\n");
    let faults = test_wasm("faults");
    for (path, _) in FAULTS {
        let name = path
            .trim_start_matches('/')
            .split('?')
            .next()
            .expect("a name");
        p.http_function_limited(
            name,
            "GET",
            &format!("/{name}"),
            name,
            &faults,
            "500ms",
            "16MB",
        );
    }
    p.http_function("body", "POST", "/body", "body", &test_wasm("abi"));
    let server = Arc::new(Server::start(p.path()).await);

    // Warm up with the same mix, so the baseline includes every pool slot and
    // buffer that steady use keeps.
    run_mix(
        server.clone(),
        10.min(seconds),
        Arc::new(Mutex::new(Tally::default())),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = rss_kib();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    run_mix(server.clone(), seconds, tally.clone()).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();

    let tally = tally.lock().expect("tally");
    let worst_late = tally.late.values().max().copied().unwrap_or_default();
    println!(
        "soak: {:.0} s, {} normal + {} faulty requests ({:.0}/s), {} failures; faulty answers at most {:?} past their 500 ms deadline; RSS {} MiB before, {} MiB after",
        elapsed.as_secs_f64(),
        tally.normal,
        tally.faulty,
        (tally.normal + tally.faulty) as f64 / elapsed.as_secs_f64(),
        tally.failures.len(),
        worst_late,
        baseline / 1024,
        after / 1024,
    );
    for (path, late) in &tally.late {
        println!("  {path}: at most {late:?} past the deadline");
    }
    assert!(
        tally.failures.is_empty(),
        "{:#?}",
        &tally.failures[..tally.failures.len().min(20)]
    );
    assert!(tally.faulty > 0 && tally.normal > 9 * tally.faulty / 2);
    assert!(
        worst_late <= MARGIN,
        "a faulty request took {worst_late:?} past its deadline"
    );
    // Back to the baseline: within 10% or 16 MiB, whichever is larger.
    let slack = (baseline / 10).max(16 * 1024);
    assert!(
        after <= baseline + slack,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
}
