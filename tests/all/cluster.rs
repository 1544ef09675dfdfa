//! Several Wisp nodes sharing channels through NATS: real `nats-server` processes
//! (`tests/run` installs Debian's package), real Wisp nodes, real WebSocket clients.
//! Each test starts its own NATS servers on free ports. Recovery times are printed
//! (`cargo test -p wisp-e2e --test all cluster:: -- --nocapture`), never asserted:
//! the machine may be busy.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wisp::messaging::nats::{NatsConfig, QueueLimits};
use wisp_e2e::nats::{free_port, NatsServer};
use wisp_e2e::{next_text, publish, test_wasm, ws_path, Project, Server, WsClient};

/// How long to wait for a message that must come (generous: the machine is shared).
const WAIT: Duration = Duration::from_secs(15);
/// How long to listen for a message that must not come.
const QUIET: Duration = Duration::from_millis(500);

/// The probe project ([`wisp_e2e::probe_project`]) with a `local: true` channel
/// `here`, `relay_lt` on `room/lt` with a `local: true` trigger, and `relay_here`
/// on `here`.
fn cluster_project() -> Project {
    let p = wisp_e2e::probe_project();
    p.file(
        "messaging/here.yaml",
        "local: true\nmatcher: here\nwebsocket: true\n",
    );
    let wasm = test_wasm("pubsub_probe");
    p.pubsub_function("relay_lt", "relay", "room/lt", true, &wasm);
    p.pubsub_function("relay_here", "relay", "here", false, &wasm);
    p
}

/// A Wisp node `id` of `project` on NATS `servers`, with the default queue.
async fn node(project: &Project, servers: &[String], id: &str) -> Server {
    node_with_queue(project, servers, id, QueueLimits::default()).await
}

async fn node_with_queue(
    project: &Project,
    servers: &[String],
    id: &str,
    queue: QueueLimits,
) -> Server {
    let config = NatsConfig {
        servers: servers.to_vec(),
        node_id: id.to_owned(),
        queue,
    };
    Server::start_node(project.path(), config).await
}

/// The NATS subject of `channel` in the test project.
fn subject(channel: &str) -> String {
    let hash = wisp::messaging::hash::project_hash("test-project", None);
    wisp::messaging::nats::subject(&format!("{hash}/{channel}"))
}

async fn publish_ok(server: &Server, channel: &str, body: &str) {
    let reply = publish(server, channel, body).await;
    assert_eq!(reply.status, 200, "publish {body:?}: {}", reply.text());
}

/// Reads messages until `count` have come (waiting up to [`WAIT`] for each), then
/// listens [`QUIET`] more for any extra.
async fn collect(ws: &mut WsClient, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < count {
        match next_text(ws, WAIT).await {
            Some(text) => got.push(text),
            None => break,
        }
    }
    while let Some(extra) = next_text(ws, QUIET).await {
        got.push(extra);
    }
    got
}

/// The cluster link state a node reports at `/_wisp/health`.
async fn link(server: &Server) -> String {
    let reply = server.get("/_wisp/health").await;
    assert_eq!(reply.status, 200);
    let health: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(health["status"], "ok");
    health["cluster"]
        .as_str()
        .expect("a cluster field")
        .to_owned()
}

/// Waits until `server` reports cluster link `state`; returns how long that took.
async fn wait_link(server: &Server, state: &str) -> Duration {
    let started = Instant::now();
    while link(server).await != state {
        assert!(started.elapsed() < WAIT, "the link never became {state}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn health_says_off_without_a_cluster_and_comes_before_function_routes() {
    let p = cluster_project();
    // A function on the same path does not shadow the built-in endpoint.
    p.http_function(
        "shadow",
        "GET",
        "/_wisp/health",
        "publish",
        &test_wasm("pubsub_probe"),
    );
    let server = Server::start(p.path()).await;
    let reply = server.get("/_wisp/health").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.text(), "{\"status\":\"ok\",\"cluster\":\"off\"}\n");
    let refused = server.post("/_wisp/health", "x").await;
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn three_nodes_share_channels_between_clients_and_functions() {
    let nats = NatsServer::start().await;
    let p = cluster_project();
    let urls = [nats.url()];
    let a = node(&p, &urls, "node-a").await;
    let b = node(&p, &urls, "node-b").await;
    let c = node(&p, &urls, "node-c").await;
    for server in [&a, &b, &c] {
        wait_link(server, "connected").await;
    }
    let mut on_a = a.ws(&ws_path("room/x")).await;
    let mut on_b = b.ws(&ws_path("room/x")).await;
    let mut on_c = c.ws(&ws_path("room/x")).await;
    let mut probe_a = a.ws(&ws_path("probe-out")).await;
    let mut relay_sender = c.ws(&ws_path("room/relay")).await;
    // One NATS subscription per node with clients on a channel; one queue
    // subscription per node for each pub/sub function.
    nats.wait_subscriptions(&subject("room/x"), 3, 0).await;
    nats.wait_subscriptions(&subject("probe-out"), 1, 0).await;
    nats.wait_subscriptions(&subject("room/relay"), 1, 3).await;

    // A WebSocket client on B reaches the clients on A and C, not itself.
    on_b.send(Message::text("from a client on b"))
        .await
        .expect("send");
    for ws in [&mut on_a, &mut on_c] {
        assert_eq!(
            next_text(ws, WAIT).await.as_deref(),
            Some("from a client on b")
        );
    }
    // Binary stays binary across nodes.
    on_b.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .expect("send");
    for ws in [&mut on_a, &mut on_c] {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) => assert_eq!(&data[..], &[0u8, 159, 146, 150]),
            other => panic!("binary must stay binary across nodes, got {other:?}"),
        }
    }
    assert_eq!(
        next_text(&mut on_b, QUIET).await,
        None,
        "the sender got its own messages"
    );

    // A function on C (run by an HTTP call) reaches the clients on every node.
    publish_ok(&c, "room/x", "from a function on c").await;
    for ws in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(
            next_text(ws, WAIT).await.as_deref(),
            Some("from a function on c")
        );
    }

    // A client frame on C runs the pub/sub function once, on some node; what it
    // publishes reaches the listener on A.
    relay_sender
        .send(Message::text("hello relay"))
        .await
        .expect("send");
    assert_eq!(
        collect(&mut probe_a, 1).await,
        ["seen:room/relay:hello relay"]
    );
}

#[tokio::test]
async fn a_pubsub_function_runs_once_per_message_with_two_nodes() {
    let nats = NatsServer::start().await;
    let p = cluster_project();
    let urls = [nats.url()];
    let a = node(&p, &urls, "node-a").await;
    let b = node(&p, &urls, "node-b").await;
    let mut probe_a = a.ws(&ws_path("probe-out")).await;
    let mut probe_b = b.ws(&ws_path("probe-out")).await;
    nats.wait_subscriptions(&subject("probe-out"), 2, 0).await;
    nats.wait_subscriptions(&subject("room/relay"), 0, 2).await;
    nats.wait_subscriptions(&subject("loop"), 0, 2).await;

    const N: usize = 40;
    for i in 0..N {
        let from = if i % 2 == 0 { &a } else { &b };
        publish_ok(from, "room/relay", &format!("m{i}")).await;
    }
    let mut expected: Vec<String> = (0..N).map(|i| format!("seen:room/relay:m{i}")).collect();
    expected.sort();
    for probe in [&mut probe_a, &mut probe_b] {
        let mut lines = collect(probe, N).await;
        lines.sort();
        assert_eq!(lines, expected, "each message must be handled exactly once");
    }
    // NATS's own count agrees: the queue group got each message once, and both
    // nodes took part.
    let subs = nats.subscriptions(&subject("room/relay")).await;
    let per_node: HashMap<String, u64> = subs
        .iter()
        .map(|s| (s.client.clone(), s.messages))
        .collect();
    println!("relay runs per node for {N} messages: {per_node:?}");
    assert_eq!(per_node.values().sum::<u64>(), N as u64);
    assert!(
        subs.iter()
            .all(|s| s.queue.as_deref() == Some(&*format!("wisp.{}.relay", hash()))),
        "{subs:?}"
    );

    // echo_back republishes to its own channel: were its own message delivered to
    // it on the other node, it would loop.
    publish_ok(&a, "loop", "ping").await;
    assert_eq!(collect(&mut probe_a, 1).await, ["self:ping"]);
}

fn hash() -> String {
    wisp::messaging::hash::project_hash("test-project", None)
}

#[tokio::test]
async fn local_channels_and_local_triggers_stay_on_their_node() {
    let nats = NatsServer::start().await;
    let p = cluster_project();
    let urls = [nats.url()];
    let a = node(&p, &urls, "node-a").await;
    let b = node(&p, &urls, "node-b").await;
    let mut here_a = a.ws(&ws_path("here")).await;
    let mut here_b = b.ws(&ws_path("here")).await;
    let mut probe_a = a.ws(&ws_path("probe-out")).await;
    let mut relay_b = b.ws(&ws_path("room/relay")).await;
    nats.wait_subscriptions(&subject("probe-out"), 1, 0).await;
    nats.wait_subscriptions(&subject("room/relay"), 1, 2).await;
    // Nothing of the local channel or the local trigger goes to NATS.
    assert!(nats.subscriptions(&subject("here")).await.is_empty());
    assert!(nats.subscriptions(&subject("room/lt")).await.is_empty());

    // A local channel: the function publishing on A reaches A's client and A's
    // pub/sub function, never B.
    publish_ok(&a, "here", "only on a").await;
    assert_eq!(
        next_text(&mut here_a, WAIT).await.as_deref(),
        Some("only on a")
    );
    assert_eq!(collect(&mut probe_a, 1).await, ["seen:here:only on a"]);
    here_b.send(Message::text("only on b")).await.expect("send");
    // B's function ran for it (reporting on `probe-out`, a cluster channel), A's did not.
    assert_eq!(collect(&mut probe_a, 1).await, ["seen:here:only on b"]);
    assert_eq!(
        next_text(&mut here_a, QUIET).await,
        None,
        "a local channel left its node"
    );
    assert_eq!(next_text(&mut here_b, QUIET).await, None);

    // A publisher outside Wisp, on the cluster's NATS: cluster subscribers get the
    // message (as text, it is UTF-8); the local trigger does not.
    let outside = async_nats::connect(nats.url())
        .await
        .expect("a NATS client");
    for channel in ["room/lt", "room/relay"] {
        outside
            .publish(subject(channel), "from outside".into())
            .await
            .expect("publish");
    }
    outside.flush().await.expect("flush");
    assert_eq!(
        next_text(&mut relay_b, WAIT).await.as_deref(),
        Some("from outside")
    );
    assert_eq!(
        collect(&mut probe_a, 1).await,
        ["seen:room/relay:from outside"],
        "the local trigger ran for a message from elsewhere"
    );

    // The local trigger takes its own node's messages.
    publish_ok(&b, "room/lt", "lt on b").await;
    assert_eq!(collect(&mut probe_a, 1).await, ["seen:room/lt:lt on b"]);
}

#[tokio::test]
async fn delivery_resumes_by_itself_after_nats_restarts() {
    let mut nats = NatsServer::start().await;
    let p = cluster_project();
    let urls = [nats.url()];
    let a = node(&p, &urls, "node-a").await;
    let b = node(&p, &urls, "node-b").await;
    let mut on_a = a.ws(&ws_path("room/r")).await;
    let mut probe_b = b.ws(&ws_path("probe-out")).await;
    nats.wait_subscriptions(&subject("room/r"), 1, 0).await;
    nats.wait_subscriptions(&subject("room/relay"), 0, 2).await;
    nats.wait_subscriptions(&subject("probe-out"), 1, 0).await;
    publish_ok(&b, "room/r", "before").await;
    assert_eq!(next_text(&mut on_a, WAIT).await.as_deref(), Some("before"));

    nats.kill();
    let killed = Instant::now();
    wait_link(&a, "disconnected").await;
    wait_link(&b, "disconnected").await;
    let noticed = killed.elapsed();

    // Without NATS, nodes keep serving HTTP and local delivery (a local trigger
    // runs; its report reaches the listener on its node).
    publish_ok(&b, "room/lt", "during the outage").await;
    assert_eq!(
        collect(&mut probe_b, 1).await,
        ["seen:room/lt:during the outage"]
    );
    // Publishes for the cluster wait in the queue.
    const QUEUED: usize = 20;
    for i in 0..QUEUED {
        publish_ok(&b, "room/relay", &format!("queued {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    nats.restart().await;
    let restarted = Instant::now();
    let down = restarted.duration_since(killed);
    wait_link(&b, "connected").await;
    let b_up = restarted.elapsed();
    wait_link(&a, "connected").await;
    let a_up = restarted.elapsed();

    // The queued messages went out once the link was back: each ran the function
    // exactly once (on whichever node).
    let mut lines = Vec::new();
    while lines.len() < QUEUED {
        match next_text(&mut probe_b, WAIT).await {
            Some(line) => lines.push(line),
            None => break,
        }
    }
    let queue_drained = restarted.elapsed();

    // Cross-node delivery to WebSocket clients resumes without help (each node
    // re-subscribed by itself).
    let mut k = 0;
    let resumed = loop {
        publish_ok(&b, "room/r", &format!("after {k}")).await;
        if let Some(text) = next_text(&mut on_a, Duration::from_millis(100)).await {
            assert!(text.starts_with("after "), "{text}");
            break restarted.elapsed();
        }
        k += 1;
        assert!(restarted.elapsed() < WAIT, "delivery to A never resumed");
    };

    // No queued message ran twice.
    lines.extend(collect(&mut probe_b, 0).await);
    lines.sort();
    let mut expected: Vec<String> = (0..QUEUED)
        .map(|i| format!("seen:room/relay:queued {i}"))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
    println!(
        "nats-server killed: both nodes saw the link down after {noticed:?}; it was down {down:?}. \
         After the restart: node B linked in {b_up:?}, node A in {a_up:?}; {QUEUED} queued \
         messages handled by {queue_drained:?}; cross-node WebSocket delivery back by {resumed:?}"
    );
}

#[tokio::test]
async fn a_full_cluster_queue_refuses_publishes_with_errno_21() {
    // No NATS on this port yet: the node starts anyway and queues.
    let port = free_port();
    let p = cluster_project();
    let queue = QueueLimits {
        messages: 5,
        bytes: 1 << 20,
    };
    let a = node_with_queue(&p, &[format!("nats://127.0.0.1:{port}")], "node-a", queue).await;
    assert_eq!(link(&a).await, "disconnected");
    let mut probe_a = a.ws(&ws_path("probe-out")).await;
    let mut on_a = a.ws(&ws_path("room/q")).await;
    for i in 0..5 {
        publish_ok(&a, "room/relay", &format!("q{i}")).await;
    }
    let refused = publish(&a, "room/relay", "q5").await;
    assert_eq!(refused.status, 500);
    assert!(refused.text().ends_with("(errno 21)"), "{}", refused.text());
    // Refused for the cluster, but this node's clients still get it.
    let refused = publish(&a, "room/q", "local still works").await;
    assert!(refused.text().ends_with("(errno 21)"), "{}", refused.text());
    assert_eq!(
        next_text(&mut on_a, WAIT).await.as_deref(),
        Some("local still works")
    );

    // NATS comes up: the node links by itself and sends what it queued, in order.
    let _nats = NatsServer::start_on(port).await;
    let linked = wait_link(&a, "connected").await;
    let lines = collect(&mut probe_a, 5).await;
    let expected: Vec<String> = (0..5).map(|i| format!("seen:room/relay:q{i}")).collect();
    assert_eq!(lines, expected);
    println!("NATS started late: the node linked {linked:?} after it was up");
    // The queue takes messages again.
    publish_ok(&a, "room/relay", "q6").await;
    assert_eq!(collect(&mut probe_a, 1).await, ["seen:room/relay:q6"]);
}

#[tokio::test]
async fn a_node_that_dies_does_not_disturb_the_others() {
    let nats = NatsServer::start().await;
    let p = cluster_project();
    let urls = [nats.url()];
    let a = node(&p, &urls, "node-a").await;
    let mut b = node(&p, &urls, "node-b").await;
    let c = node(&p, &urls, "node-c").await;
    let mut probe_c = c.ws(&ws_path("probe-out")).await;
    let mut on_c = c.ws(&ws_path("room/d")).await;
    let mut on_b = b.ws(&ws_path("room/d")).await;
    nats.wait_subscriptions(&subject("room/relay"), 0, 3).await;
    nats.wait_subscriptions(&subject("room/d"), 2, 0).await;
    nats.wait_subscriptions(&subject("probe-out"), 1, 0).await;

    const N: usize = 10;
    for i in 0..N {
        publish_ok(&a, "room/relay", &format!("d{i}")).await;
        publish_ok(&a, "room/d", &format!("d{i}")).await;
    }
    assert_eq!(collect(&mut probe_c, N).await.len(), N);
    assert_eq!(collect(&mut on_c, N).await.len(), N);
    assert_eq!(next_text(&mut on_b, WAIT).await.as_deref(), Some("d0"));

    // B dies (its runtime dropped mid-flight: no goodbye to NATS or its clients).
    b.kill();
    nats.wait_subscriptions(&subject("room/relay"), 0, 2).await;
    for i in N..2 * N {
        publish_ok(&a, "room/relay", &format!("d{i}")).await;
        publish_ok(&a, "room/d", &format!("d{i}")).await;
    }
    let mut lines = collect(&mut probe_c, N).await;
    lines.sort();
    let mut expected: Vec<String> = (N..2 * N)
        .map(|i| format!("seen:room/relay:d{i}"))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
    let expected: Vec<String> = (N..2 * N).map(|i| format!("d{i}")).collect();
    assert_eq!(collect(&mut on_c, N).await, expected);
    assert_eq!(link(&c).await, "connected");
}

#[tokio::test]
async fn a_nats_cluster_losing_one_server_is_only_a_blip() {
    let mut servers = NatsServer::cluster(3).await;
    let urls: Vec<String> = servers.iter().map(NatsServer::url).collect();
    let p = cluster_project();
    let a = node(&p, &urls, "node-a").await;
    let b = node(&p, &urls, "node-b").await;
    wait_link(&a, "connected").await;
    wait_link(&b, "connected").await;
    let mut on_a = a.ws(&ws_path("room/s")).await;
    // Interest crosses the NATS routes a moment later: publish until it arrives.
    let synced = Instant::now();
    while next_text(&mut on_a, Duration::from_millis(100))
        .await
        .is_none()
    {
        publish_ok(&b, "room/s", "sync").await;
        assert!(
            synced.elapsed() < WAIT,
            "no delivery across the NATS cluster"
        );
    }
    while next_text(&mut on_a, QUIET).await.is_some() {}

    // Kill the NATS server node A is connected to, mid-stream.
    let mut victim = None;
    for (i, server) in servers.iter().enumerate() {
        if server
            .client_names()
            .await
            .iter()
            .any(|n| n == "wisp node-a")
        {
            victim = Some(i);
        }
    }
    let victim = victim.expect("node A is connected to one of the servers");
    const N: usize = 150;
    const KILL_AT: usize = 50;
    let receiver = tokio::spawn(async move {
        let mut arrivals = Vec::new();
        while let Some(text) = next_text(&mut on_a, WAIT).await {
            let seq: usize = text.trim_start_matches('s').parse().expect("a number");
            arrivals.push((seq, Instant::now()));
            if seq == N - 1 {
                break;
            }
        }
        arrivals
    });
    let mut killed_at = None;
    for k in 0..N {
        if k == KILL_AT {
            servers[victim].kill();
            killed_at = Some(Instant::now());
        }
        publish_ok(&b, "room/s", &format!("s{k}")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = receiver.await.expect("the receiver");
    let killed_at = killed_at.expect("killed");
    let seqs: Vec<usize> = arrivals.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.last(), Some(&(N - 1)), "delivery did not continue");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seqs:?}"
    );
    let gap = arrivals
        .windows(2)
        .map(|w| w[1].1.duration_since(w[0].1))
        .max()
        .unwrap_or_default();
    let first_after = arrivals
        .iter()
        .find(|(_, at)| *at > killed_at)
        .map(|(_, at)| at.duration_since(killed_at));
    println!(
        "NATS cluster lost the server node A used: {} of {N} messages arrived, {} lost; \
         longest gap between arrivals {gap:?}; first arrival after the kill {first_after:?}; \
         node A {}, node B {}",
        seqs.len(),
        N - seqs.len(),
        link(&a).await,
        link(&b).await
    );
}

#[tokio::test]
async fn a_node_shutting_down_first_hands_its_cluster_queue_to_nats() {
    use wisp::messaging::broker::{Broker, Reach};
    use wisp::messaging::nats::NatsBroker;
    use wisp::messaging::Message;

    let nats = NatsServer::start().await;
    let p = cluster_project();
    let b = node(&p, &[nats.url()], "node-b").await;
    let mut on_b = b.ws(&ws_path("room/s")).await;
    nats.wait_subscriptions(&subject("room/s"), 1, 0).await;

    // Node A queues a burst for the cluster, settles as `wisp serve` does at the end
    // of its shutdown, then its runtime ends, as when the process exits.
    const N: usize = 5_000;
    let url = nats.url();
    let settled = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async move {
            let a = NatsBroker::connect(NatsConfig {
                servers: vec![url],
                node_id: "node-a".to_owned(),
                queue: QueueLimits::default(),
            })
            .await
            .expect("a valid cluster configuration");
            let topic = format!(
                "{}/room/s",
                wisp::messaging::hash::project_hash("test-project", None)
            );
            while a.cluster_link() != wisp::messaging::broker::ClusterLink::Connected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for i in 0..N {
                let message = Message::new("room/s", format!("s{i}").into(), None, None);
                a.publish(&topic, message.into(), Reach::Cluster)
                    .expect("the queue has room");
            }
            let started = Instant::now();
            a.settle(WAIT).await;
            started.elapsed()
        })
    })
    .join()
    .expect("node A's thread");

    let got = collect(&mut on_b, N).await;
    let expected: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    assert_eq!(
        got.len(),
        N,
        "node B got {} of {N} after A settled",
        got.len()
    );
    assert_eq!(got, expected, "in order, once each");
    eprintln!("node A settled {N} queued messages in {settled:?}");
}

#[tokio::test]
async fn a_node_cut_off_from_nats_with_nothing_queued_shuts_down_without_waiting() {
    use wisp::messaging::broker::{Broker, ClusterLink};
    use wisp::messaging::nats::NatsBroker;

    // Nothing listens there: the link never comes up.
    let a = NatsBroker::connect(NatsConfig {
        servers: vec![format!("nats://127.0.0.1:{}", free_port())],
        node_id: "node-a".to_owned(),
        queue: QueueLimits::default(),
    })
    .await
    .expect("a valid cluster configuration");
    assert_eq!(a.cluster_link(), ClusterLink::Disconnected);
    // With an hour allowed, settling must still end at once: there is nothing to hand
    // over and nobody to hand it to.
    tokio::time::timeout(Duration::from_secs(60), a.settle(Duration::from_secs(3600)))
        .await
        .expect("settling returns without waiting for a link that is down");
}
