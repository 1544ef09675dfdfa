//! State in cluster mode: nodes keep databases, storages and globals in NATS JetStream
//! (a real `nats-server -js`), so each sees what the others stored; while JetStream is
//! down, state calls fail with their errno, and work again once it is back.

use std::time::{Duration, Instant};
use wisp::messaging::nats::{NatsConfig, QueueLimits};
use wisp_e2e::nats::NatsServer;
use wisp_e2e::{test_wasm, Project, Server};

/// How long JetStream may take to come back after a restart (generous: shared machine).
const BACK: Duration = Duration::from_secs(45);

/// The `state_probe` guest at `/kv` and `/fill`, database `notes` (1KB); the `abi`
/// guest's storage walk at `/walk` over storages `media` (versioned, 1KB) and `plain`.
fn project() -> Project {
    let p = Project::new();
    let wasm = test_wasm("state_probe");
    p.http_function("kv", "GET", "/kv", "kv", &wasm);
    p.http_function("fill", "GET", "/fill", "fill", &wasm);
    p.http_function("walk", "GET", "/walk", "storage_walk", &test_wasm("abi"));
    p.file(
        "databases/notes.yaml",
        "match: notes\nstorage: {size: 1KB}\n",
    );
    p.file(
        "storages/media.yaml",
        "match: media\nobject:\n  versioning: true\n  size: 1KB\n",
    );
    p.file("storages/plain.yaml", "match: plain\nobject:\n  size: 64\n");
    p
}

async fn node(project: &Project, nats: &NatsServer, id: &str) -> Server {
    let config = NatsConfig {
        servers: vec![nats.url()],
        node_id: id.to_owned(),
        queue: QueueLimits::default(),
    };
    let server = Server::start_node(project.path(), config).await;
    // A node answers before its link is up; state calls need the link.
    let started = Instant::now();
    loop {
        let health = server.get("/_wisp/health").await;
        let health: serde_json::Value = serde_json::from_slice(&health.body).expect("JSON");
        if health["cluster"] == "connected" {
            return server;
        }
        assert!(
            started.elapsed() < BACK,
            "node {id} never connected to NATS"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn kv(server: &Server, query: &str) -> (u16, String) {
    let reply = server.get(&format!("/kv?db=notes&{query}")).await;
    (reply.status.as_u16(), reply.text())
}

#[tokio::test]
async fn two_nodes_see_each_others_puts_through_jetstream() {
    let nats = NatsServer::start().await;
    let p = project();
    let a = node(&p, &nats, "state-a").await;
    let b = node(&p, &nats, "state-b").await;

    for key in ["a", "a/1", "b"] {
        let put = kv(&a, &format!("op=put&key={key}&value=from-a-{key}")).await;
        assert_eq!(put, (200, "ok".into()), "put {key}");
    }
    assert_eq!(kv(&b, "op=get&key=a/1").await.1, "from-a-a/1");
    assert_eq!(kv(&b, "op=list&key=a").await.1, "a,a/1");
    assert_eq!(kv(&b, "op=delete&key=a").await.1, "ok");
    assert_eq!(kv(&a, "op=get&key=a").await.1, "missing");
    assert_eq!(kv(&a, "op=list&key=").await.1, "a/1,b");

    // The size holds across nodes: what a filled, b cannot pass.
    kv(&a, "op=delete&key=a/1").await;
    kv(&a, "op=delete&key=b").await;
    let filled = a.get("/fill?db=notes&size=100").await.text();
    assert!(filled.starts_with("stored 9; "), "{filled}");
    assert!(filled.contains("errno 24"), "{filled}");
    let (status, text) = kv(&b, &format!("op=put&key=more&value={}", "x".repeat(100))).await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("errno 24"), "{text}");
    assert_eq!(kv(&b, "op=get&key=k8").await.1.len(), 100);

    // Storages walk the same way as on SQLite, and each node sees the result.
    let walked = a.get("/walk").await;
    assert_eq!(walked.status, 200, "{}", walked.text());
    let single = Server::start(p.path()).await;
    let local = single.get("/walk").await.text();
    assert_eq!(walked.text(), local, "JetStream and SQLite answer alike");
}

#[tokio::test]
async fn state_calls_fail_cleanly_while_jetstream_is_down_then_work_again() {
    let mut nats = NatsServer::start().await;
    let p = project();
    let a = node(&p, &nats, "state-down").await;
    assert_eq!(kv(&a, "op=put&key=kept&value=before").await.1, "ok");

    nats.kill();
    let started = Instant::now();
    let (status, text) = kv(&a, "op=get&key=kept").await;
    assert_eq!(status, 500, "{text}");
    assert!(
        text.contains("errno 23"),
        "a get fails with its errno: {text}"
    );
    let (status, text) = kv(&a, "op=put&key=during&value=x").await;
    assert_eq!(status, 500, "{text}");
    assert!(
        text.contains("errno 24"),
        "a put fails with its errno: {text}"
    );
    println!(
        "state calls failed in {:?} with JetStream down",
        started.elapsed()
    );

    nats.restart().await;
    let restarted = Instant::now();
    loop {
        let (_, text) = kv(&a, "op=get&key=kept").await;
        if text == "before" {
            break;
        }
        assert!(
            restarted.elapsed() < BACK,
            "still failing after {BACK:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "state calls worked again {:?} after the restart",
        restarted.elapsed()
    );
    assert_eq!(kv(&a, "op=put&key=after&value=y").await.1, "ok");
    assert_eq!(
        kv(&a, "op=get&key=during").await.1,
        "missing",
        "nothing half-written"
    );
}
