//! Reloads (`wisp dev`, SIGHUP): a new deployment swapped in under a running server,
//! with real HTTP and WebSocket clients on it the whole time. What is in flight finishes
//! on the old code, what comes after runs the new, sockets stay open, and a pub/sub
//! trigger passes from the old function to the new without losing or doubling a message.

use std::time::Duration;
use wisp_e2e::{next_text, probe_project, publish, test_wasm, ws_path, Server};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn routes_change_and_websockets_stay_connected() {
    let p = probe_project();
    let server = Server::start(p.path()).await;
    let mut socket = server.ws(&ws_path("room/a")).await;
    assert_eq!(publish(&server, "room/a", "before").await.status, 200);
    assert_eq!(
        next_text(&mut socket, WAIT).await.as_deref(),
        Some("before")
    );

    // The publish function moves from /publish to /send.
    let wasm = test_wasm("pubsub_probe");
    p.http_function("publish", "POST", "/send", "publish", &wasm);
    assert_eq!(server.reload(p.path()).await, Ok(2));

    assert_eq!(publish(&server, "room/a", "gone").await.status, 404);
    let sent = server.post("/send?channel=room/a", "after").await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert_eq!(
        next_text(&mut socket, WAIT).await.as_deref(),
        Some("after"),
        "the socket opened before the reload gets what the new deployment publishes"
    );
    // And what the socket itself publishes reaches the new deployment's functions.
    let mut out = server.ws(&ws_path("probe-out")).await;
    let mut relay = server.ws(&ws_path("room/relay")).await;
    futures_util::SinkExt::send(&mut relay, "from a socket".into())
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut out, WAIT).await.as_deref(),
        Some("seen:room/relay:from a socket")
    );
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_old_code() {
    let p = wisp_e2e::Project::new();
    let faults = test_wasm("faults");
    p.http_function("work", "GET", "/work", "sleepy", &faults);
    let server = std::sync::Arc::new(Server::start(p.path()).await);
    let slow = tokio::spawn({
        let server = server.clone();
        async move { server.get("/work?ms=1500").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The same route, another export: `ok` answers "ok".
    p.http_function("work", "GET", "/work", "ok", &faults);
    assert_eq!(server.reload(p.path()).await, Ok(2));
    let now = server.get("/work?ms=1500").await;
    assert_eq!((now.status.as_u16(), now.text().trim()), (200, "ok"));
    let old = slow.await.unwrap();
    assert_eq!(
        (old.status.as_u16(), old.text().as_str()),
        (200, "slept"),
        "the request that began before the reload ran to its end on the old code"
    );
}

#[tokio::test]
async fn a_trigger_passes_to_the_new_function_losing_and_doubling_nothing() {
    const MESSAGES: usize = 300;
    let p = probe_project();
    let server = std::sync::Arc::new(Server::start(p.path()).await);
    let mut out = server.ws(&ws_path("probe-out")).await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let publisher = tokio::spawn({
        let (server, done) = (server.clone(), done.clone());
        async move {
            for i in 0..MESSAGES {
                let reply = publish(&server, "room/relay", &format!("m{i:03}")).await;
                assert_eq!(reply.status, 200, "{}", reply.text());
                done.store(i + 1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    // With a third of the messages out, the trigger's function changes from `relay`
    // (which reports `seen:<channel>:<data>`) to `echo_back` (`self:<data>`).
    while done.load(std::sync::atomic::Ordering::SeqCst) < MESSAGES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wasm = test_wasm("pubsub_probe");
    p.pubsub_function("relay", "echo_back", "room/relay", false, &wasm);
    assert_eq!(server.reload(p.path()).await, Ok(2));
    // Messages published from here on began after the swap.
    let after = done.load(std::sync::atomic::Ordering::SeqCst) + 1;
    publisher.await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < MESSAGES {
        match next_text(&mut out, WAIT).await {
            Some(line) => seen.push(line),
            None => break,
        }
    }
    let mut ran = std::collections::BTreeMap::new();
    for line in &seen {
        let (code, data) = match (
            line.strip_prefix("seen:room/relay:"),
            line.strip_prefix("self:"),
        ) {
            (Some(data), _) => ("old", data),
            (None, Some(data)) => ("new", data),
            _ => panic!("an unexpected report: {line}"),
        };
        let i: usize = data[1..].parse().unwrap();
        assert!(ran.insert(i, code).is_none(), "message {i} ran twice");
    }
    assert_eq!(
        ran.len(),
        MESSAGES,
        "every message ran once; missing: {:?}",
        (0..MESSAGES)
            .filter(|i| !ran.contains_key(i))
            .collect::<Vec<_>>()
    );
    assert!(ran.values().filter(|c| **c == "old").count() >= MESSAGES / 3);
    for (i, code) in ran.range(after..) {
        assert_eq!(
            *code, "new",
            "message {i}, published after the reload, ran the old code"
        );
    }
    // Nothing more comes: the old function is gone from the channel.
    assert_eq!(next_text(&mut out, Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn another_project_is_refused_and_the_old_goes_on_serving() {
    let p = probe_project();
    let server = Server::start(p.path()).await;
    p.file("config.yaml", "id: another-project\nname: test\n");
    let refused = server.reload(p.path()).await.unwrap_err();
    assert!(refused.contains("restart Wisp"), "{refused}");
    let mut socket = server.ws(&ws_path("room/a")).await;
    assert_eq!(publish(&server, "room/a", "still").await.status, 200);
    assert_eq!(next_text(&mut socket, WAIT).await.as_deref(), Some("still"));
}
