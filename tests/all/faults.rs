//! Guests that trap, loop, exhaust memory or pass wild pointers: each fails alone,
//! with the right status, and the next normal request succeeds.

use std::time::{Duration, Instant};
use wisp_e2e::{test_wasm, Project, Server};

async fn faults_server(timeout: &str, memory: &str) -> (Project, Server) {
    let wasm = test_wasm("faults");
    let p = Project::new();
    for export in [
        "ok",
        "trap",
        "panics",
        "spin",
        "grow",
        "deep",
        "badptr",
        "sleepy",
        "status_after_write",
        "fail",
    ] {
        p.http_function_limited(
            export,
            "GET",
            &format!("/{export}"),
            export,
            &wasm,
            timeout,
            memory,
        );
    }
    let server = Server::start(p.path()).await;
    (p, server)
}

async fn assert_still_serving(server: &Server) {
    let reply = server.get("/ok").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "ok");
}

#[tokio::test]
async fn a_trap_is_a_500_and_the_host_keeps_serving() {
    let (_p, server) = faults_server("5s", "64MB").await;
    let reply = server.get("/trap").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-wisp-error"), Some("trap"));
    assert_eq!(reply.text(), "function `trap` failed\n");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_panic_is_a_500_logged_once_at_warn_without_backtrace_advice() {
    let log = wisp_e2e::guest_log();
    let (_p, server) = faults_server("5s", "64MB").await;
    let reply = server.get("/panics").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-wisp-error"), Some("trap"));
    assert_still_serving(&server).await;
    let text = log.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("function=panics"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(
        lines[0].contains("panicked at faults/src/lib.rs:")
            && lines[0].contains("the answer was 42"),
        "{}",
        lines[0]
    );
    assert!(!text.contains("RUST_BACKTRACE"), "{text}");
}

#[tokio::test]
async fn an_endless_loop_is_a_504_within_the_timeout() {
    let (_p, server) = faults_server("500ms", "64MB").await;
    let started = Instant::now();
    let reply = server.get("/spin").await;
    let took = started.elapsed();
    assert_eq!(reply.status, 504);
    assert_eq!(reply.header("x-wisp-error"), Some("timeout"));
    assert!(
        took >= Duration::from_millis(500),
        "answered before the deadline: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "deadline overshot: {took:?}");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_sleep_past_the_deadline_is_a_504() {
    let (_p, server) = faults_server("300ms", "64MB").await;
    assert_eq!(server.get("/sleepy?ms=10").await.text(), "slept");
    let reply = server.get("/sleepy?ms=5000").await;
    assert_eq!(reply.status, 504);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn memory_exhaustion_is_a_500_naming_the_limit() {
    let (_p, server) = faults_server("10s", "16MB").await;
    let reply = server.get("/grow").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-wisp-error"), Some("memory"));
    assert!(reply.text().contains("memory limit"), "{}", reply.text());
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn unbounded_recursion_is_a_500() {
    let (_p, server) = faults_server("5s", "64MB").await;
    let reply = server.get("/deep").await;
    assert_eq!(reply.status, 500);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn wild_pointers_get_errnos_not_a_crash() {
    let (_p, server) = faults_server("5s", "64MB").await;
    let reply = server.get("/badptr").await;
    assert_eq!(reply.status, 200);
    // Out-of-bounds buffers are AddressOutOfMemory (3).
    assert_eq!(reply.text(), "write:3\nmethod:3\nheader:3\nmethodsize:3\n");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn the_status_set_after_writing_wins() {
    let (_p, server) = faults_server("5s", "64MB").await;
    let reply = server.get("/status_after_write").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.text(), "bad request");
}

#[tokio::test]
async fn a_returned_error_is_a_500_with_its_message() {
    let (_p, server) = faults_server("5s", "64MB").await;
    let reply = server.get("/fail").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.text(), "something broke");
}

#[tokio::test]
async fn faults_in_parallel_do_not_disturb_normal_requests() {
    let (_p, server) = faults_server("500ms", "16MB").await;
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let path = ["/ok", "/trap", "/spin", "/grow", "/ok"][i % 5];
            (path, server.get(path).await.status.as_u16())
        }));
    }
    for task in tasks {
        let (path, status) = task.await.expect("request task");
        let expected = match path {
            "/ok" => 200,
            "/spin" => 504,
            _ => 500,
        };
        assert_eq!(status, expected, "{path}");
    }
}

#[tokio::test]
async fn guests_get_no_files_environment_or_fine_clocks() {
    let wasm = test_wasm("faults");
    let p = Project::new();
    p.http_function("sandbox", "GET", "/sandbox", "sandbox", &wasm);
    let server = Server::start(p.path()).await;
    let text = server.get("/sandbox").await.text();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    assert!(field("file").starts_with("denied"), "{text}");
    assert!(field("dir").starts_with("denied"), "{text}");
    assert!(field("write").starts_with("denied"), "{text}");
    assert_eq!(field("env"), "0", "{text}");
    assert_eq!(field("args"), "0", "{text}");
    let step: u128 = field("clock_step_ns").parse().expect("a number");
    // Either the clock never moved during the loop, or it moved in 100 µs steps.
    assert!(
        step >= 100_000,
        "the guest saw a clock step of {step} ns: {text}"
    );
}
