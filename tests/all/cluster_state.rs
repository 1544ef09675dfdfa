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

/// The probe project (`POST /publish?channel=`), with channels `kept/*` keeping 100
/// messages: channel history, which cluster nodes keep in one JetStream stream a channel.
fn history_project() -> Project {
    let p = wisp_e2e::probe_project();
    p.file(
        "messaging/kept.yaml",
        "matcher: kept/*\nwebsocket: true\nwisp:\n  history: {size: 100}\n",
    );
    p
}

/// The next enveloped message on `ws`: (offset, epoch, data).
async fn next_kept(ws: &mut wisp_e2e::WsClient) -> Option<(u64, String, String)> {
    let text = wisp_e2e::next_text(ws, Duration::from_secs(10)).await?;
    let message: serde_json::Value = serde_json::from_str(&text).expect("an envelope");
    Some((
        message["offset"].as_u64().expect("an offset"),
        message["epoch"].as_str().expect("an epoch").to_owned(),
        message["data"].as_str().expect("text").to_owned(),
    ))
}

#[tokio::test]
async fn offsets_agree_across_nodes_and_a_client_resumes_on_another_node() {
    use wisp_e2e::{publish, ws_path};
    let nats = NatsServer::start().await;
    let p = history_project();
    let a = node(&p, &nats, "history-a").await;
    let b = node(&p, &nats, "history-b").await;
    let channel = "kept/shared";
    // Sent before anyone is on the channel, on node A.
    assert_eq!(publish(&a, channel, "m1").await.status, 200);

    // A client on node B gets it from the log, then what either node publishes, in the
    // log's order.
    let path = format!("{}?envelope=json&last=10", ws_path(channel));
    let mut ws = b.ws(&path).await;
    let (offset, epoch, data) = next_kept(&mut ws).await.expect("the kept message");
    assert_eq!((offset, data.as_str()), (1, "m1"));
    publish(&a, channel, "m2").await;
    assert_eq!(
        next_kept(&mut ws).await.map(|m| (m.0, m.2)),
        Some((2, "m2".into()))
    );
    publish(&b, channel, "m3").await;
    let (offset, same_epoch, data) = next_kept(&mut ws).await.expect("m3");
    assert_eq!((offset, data.as_str()), (3, "m3"));
    assert_eq!(same_epoch, epoch, "one log, one epoch");
    drop(ws);

    // Away; then back on node A, from offset 3.
    publish(&b, channel, "m4").await;
    let resume = format!("{}?envelope=json&since=3&epoch={epoch}", ws_path(channel));
    let mut ws = a.ws(&resume).await;
    assert_eq!(
        next_kept(&mut ws).await.map(|m| (m.0, m.2)),
        Some((4, "m4".into()))
    );
    publish(&b, channel, "m5").await;
    assert_eq!(
        next_kept(&mut ws).await.map(|m| (m.0, m.2)),
        Some((5, "m5".into()))
    );
    let quiet = wisp_e2e::next_text(&mut ws, Duration::from_millis(300)).await;
    assert_eq!(quiet, None, "each once");

    // Another epoch is refused as on one node.
    let stale = format!("{}?since=3&epoch=not-{epoch}", ws_path(channel));
    let mut ws = b.ws(&stale).await;
    let code = wisp_e2e::close_code(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(code.map(u16::from), Some(4412));
}

#[tokio::test]
async fn clients_joining_on_one_node_while_another_publishes_miss_nothing() {
    use wisp_e2e::{publish, ws_path};
    let nats = NatsServer::start().await;
    let p = history_project();
    let a = std::sync::Arc::new(node(&p, &nats, "race-a").await);
    let b = node(&p, &nats, "race-b").await;
    let channel = "kept/race";
    publish(&a, channel, "0").await;
    let publisher = {
        let a = a.clone();
        tokio::spawn(async move {
            for i in 1..=60 {
                publish(&a, channel, &i.to_string()).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..10 {
        let path = format!("{}?envelope=json&last=5", ws_path(channel));
        clients.push(b.ws(&path).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    publisher.await.unwrap();
    for ws in &mut clients {
        let mut seen = Vec::new();
        while let Some((offset, _, data)) = next_kept(ws).await {
            assert_eq!(
                offset,
                data.parse::<u64>().unwrap() + 1,
                "offset and data agree"
            );
            seen.push(offset);
            if offset == 61 {
                break;
            }
        }
        let first = seen[0];
        let want: Vec<u64> = (first..=61).collect();
        assert_eq!(
            seen, want,
            "consecutive, no duplicate, no gap, up to the last"
        );
    }
}

#[tokio::test]
async fn functions_and_the_broker_protocol_read_the_clusters_history() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use wisp_e2e::{next_text, publish};
    let nats = NatsServer::start().await;
    let p = history_project();
    p.http_function("history", "GET", "/history", "history", &test_wasm("abi"));
    let a = node(&p, &nats, "reader-a").await;
    let b = node(&p, &nats, "reader-b").await;
    for i in 1..=3 {
        assert_eq!(publish(&a, "kept/fn", &format!("m{i}")).await.status, 200);
    }
    // Kept by node A's writer a moment after the publish answered: node B reads them.
    let started = Instant::now();
    let read = loop {
        let read = b.get("/history?channel=kept/fn&last=2").await.text();
        if read.ends_with("3:m3\n") || started.elapsed() > Duration::from_secs(10) {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(read, "epoch=set\n2:m2\n3:m3\n");

    // The broker protocol on node B: the kept messages on SUBSCRIBE, then what node A sends.
    let hash = wisp::messaging::hash::project_hash("test-project", None);
    let mut ws = b.ws(&format!("ws-{hash}")).await;
    ws.send(Message::text("SUBSCRIBE:kept/fn")).await.unwrap();
    let wait = Duration::from_secs(10);
    for want in ["m1", "m2", "m3"] {
        let line = next_text(&mut ws, wait).await;
        assert_eq!(
            line.as_deref(),
            Some(format!("MSG:kept/fn:{want}").as_str())
        );
    }
    publish(&a, "kept/fn", "m4").await;
    let line = next_text(&mut ws, wait).await;
    assert_eq!(line.as_deref(), Some("MSG:kept/fn:m4"));
    let quiet = next_text(&mut ws, Duration::from_millis(300)).await;
    assert_eq!(quiet, None, "each once");
}

#[tokio::test]
async fn a_nodes_clients_keep_getting_the_log_after_jetstream_restarts() {
    use wisp_e2e::{publish, ws_path};
    let mut nats = NatsServer::start().await;
    let p = history_project();
    let a = node(&p, &nats, "follow-restart").await;
    let channel = "kept/restart";
    let mut ws = a
        .ws(&format!("{}?envelope=json&last=5", ws_path(channel)))
        .await;
    publish(&a, channel, "before").await;
    let (offset, epoch, _) = next_kept(&mut ws).await.expect("the first message");
    assert_eq!(offset, 1);

    nats.kill();
    nats.restart().await;
    // Published until kept again: the node's writer fails while JetStream is away.
    let restarted = Instant::now();
    let mut sent = 0;
    let after = loop {
        sent += 1;
        publish(&a, channel, &format!("after {sent}")).await;
        if let Some(next) = tokio::time::timeout(Duration::from_millis(500), next_kept(&mut ws))
            .await
            .ok()
            .flatten()
        {
            break next;
        }
        assert!(
            restarted.elapsed() < BACK,
            "nothing delivered after the restart"
        );
    };
    // The same log (JetStream keeps its files): the next offset, the same epoch, in order.
    assert_eq!(after.1, epoch, "the log survived the restart");
    assert_eq!(
        after.0, 2,
        "the first message kept after the restart: {after:?}"
    );
    assert!(after.2.starts_with("after "), "{after:?}");
}
