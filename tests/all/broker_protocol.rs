//! The broker tutorial's protocol (`SUBSCRIBE:`, `UNSUBSCRIBE:`, `PUBLISH:`, `MSG:`,
//! `ERROR:`) on `/ws-<project hash>` of the main port, with real WebSocket clients.
//! `--broker-listen`'s own listener is tried with the binary in `host/tests/cli.rs`.

use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wisp_e2e::{next_text, probe_project, publish, test_config, Project, Server, WsClient};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// The probe project, with channels `kept/*` keeping their newest 3 messages.
fn project() -> Project {
    let p = probe_project();
    p.file(
        "messaging/kept.yaml",
        "matcher: kept/*\nwebsocket: true\nwisp:\n  history: {size: 3}\n",
    );
    p
}

/// The broker protocol's socket of the test project.
fn socket_path() -> String {
    format!(
        "ws-{}",
        wisp::messaging::hash::project_hash("test-project", None)
    )
}

async fn connect(server: &Server) -> WsClient {
    server.ws(&socket_path()).await
}

async fn send(ws: &mut WsClient, command: &str) {
    ws.send(Message::text(command)).await.expect("sending");
}

/// Subscribes `ws` to `channel` and waits until the subscription is live: a message
/// published on the socket itself comes back on it (the publisher's own subscription
/// gets its messages).
async fn subscribe(ws: &mut WsClient, channel: &str) {
    send(ws, &format!("SUBSCRIBE:{channel}")).await;
    send(ws, &format!("PUBLISH:{channel}:ready")).await;
    let want = format!("MSG:{channel}:ready");
    while let Some(line) = next_text(ws, WAIT).await {
        if line == want {
            return;
        }
    }
    panic!("the subscription to {channel} never got its own message");
}

#[tokio::test]
async fn subscribe_publish_and_unsubscribe_over_one_socket() {
    let p = project();
    let server = Server::start(p.path()).await;
    let mut alice = connect(&server).await;
    let mut bob = connect(&server).await;
    subscribe(&mut alice, "room/news").await;
    subscribe(&mut alice, "room/sport").await;
    subscribe(&mut bob, "room/news").await;
    // The `ready` bob sent reached alice too.
    assert_eq!(
        next_text(&mut alice, WAIT).await.as_deref(),
        Some("MSG:room/news:ready")
    );

    send(&mut bob, "PUBLISH:room/news:Hello world!").await;
    send(&mut bob, "PUBLISH:room/sport:a: colon, kept").await;
    for want in [
        "MSG:room/news:Hello world!",
        "MSG:room/sport:a: colon, kept",
    ] {
        assert_eq!(next_text(&mut alice, WAIT).await.as_deref(), Some(want));
    }
    assert_eq!(
        next_text(&mut bob, WAIT).await.as_deref(),
        Some("MSG:room/news:Hello world!"),
        "the publisher is subscribed too; room/sport it is not"
    );
    assert_eq!(next_text(&mut bob, QUIET).await, None);

    // HTTP publishes and the channel WebSockets' messages reach the protocol's clients.
    publish(&server, "room/news", "from a function").await;
    assert_eq!(
        next_text(&mut alice, WAIT).await.as_deref(),
        Some("MSG:room/news:from a function")
    );

    send(&mut alice, "UNSUBSCRIBE:room/news").await;
    // Commands on one socket run in order: once this comes back, the unsubscribe is done.
    send(&mut alice, "PUBLISH:room/sport:marker").await;
    assert_eq!(
        next_text(&mut alice, WAIT).await.as_deref(),
        Some("MSG:room/sport:marker")
    );
    send(&mut bob, "PUBLISH:room/news:gone").await;
    send(&mut bob, "PUBLISH:room/sport:still here").await;
    assert_eq!(
        next_text(&mut alice, WAIT).await.as_deref(),
        Some("MSG:room/sport:still here"),
        "nothing from room/news after UNSUBSCRIBE"
    );
}

#[tokio::test]
async fn a_subscribe_gets_what_was_published_to_the_empty_channel_first() {
    let p = project();
    let server = Server::start(p.path()).await;
    // Published with nobody subscribed: through HTTP and through the protocol.
    for i in 1..=3 {
        publish(&server, "kept/empty", &format!("m{i}")).await;
    }
    let mut publisher = connect(&server).await;
    send(&mut publisher, "PUBLISH:kept/empty:m4").await;
    send(&mut publisher, "SUBSCRIBE:kept/other").await;
    // The socket's commands are in order, so m4 is published once this one is answered.
    send(&mut publisher, "UNSUBSCRIBE:kept/none").await;
    let answer = next_text(&mut publisher, WAIT).await.unwrap_or_default();
    assert!(answer.starts_with("ERROR:not subscribed"), "{answer}");

    let mut late = connect(&server).await;
    send(&mut late, "SUBSCRIBE:kept/empty").await;
    // The 3 kept, oldest first, then live ones.
    for want in [
        "MSG:kept/empty:m2",
        "MSG:kept/empty:m3",
        "MSG:kept/empty:m4",
    ] {
        assert_eq!(next_text(&mut late, WAIT).await.as_deref(), Some(want));
    }
    send(&mut publisher, "PUBLISH:kept/empty:live").await;
    assert_eq!(
        next_text(&mut late, WAIT).await.as_deref(),
        Some("MSG:kept/empty:live")
    );
    // Subscribing again changes nothing: no second replay.
    send(&mut late, "SUBSCRIBE:kept/empty").await;
    assert_eq!(next_text(&mut late, QUIET).await, None);
}

#[tokio::test]
async fn every_malformed_or_refused_command_gets_an_error_line() {
    let p = project();
    let server = Server::start(p.path()).await;
    let mut ws = connect(&server).await;
    let cases = [
        ("hello", "ERROR:`hello` is not a command"),
        ("HELLO:x", "ERROR:unknown command `HELLO`"),
        ("subscribe:room/x", "ERROR:unknown command `subscribe`"),
        ("SUBSCRIBE:", "ERROR:the channel name is empty"),
        (
            "PUBLISH:room/x",
            "ERROR:PUBLISH needs a channel and content",
        ),
        (
            "SUBSCRIBE:room/%zz",
            "ERROR:channel `room/%zz` is not valid",
        ),
        ("SUBSCRIBE:nowhere", "ERROR:no messaging resource"),
        ("PUBLISH:nowhere:x", "ERROR:no messaging resource"),
        ("SUBSCRIBE:loop", "ERROR:"),
        ("PUBLISH:loop:x", "ERROR:"),
        ("UNSUBSCRIBE:room/x", "ERROR:not subscribed to `room/x`"),
    ];
    for (command, want) in cases {
        send(&mut ws, command).await;
        let answer = next_text(&mut ws, WAIT).await.unwrap_or_default();
        assert!(answer.starts_with(want), "{command}: {answer}");
    }
    // `loop` exists but has no WebSocket bridge: the error says so.
    send(&mut ws, "SUBSCRIBE:loop").await;
    let answer = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(answer.contains("websocket bridge"), "{answer}");
    // What is repeated back is short and escaped.
    send(&mut ws, &format!("X{}\n", "y".repeat(10_000))).await;
    let answer = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(answer.len() < 400 && !answer.contains('\n'), "{answer}");
    // After all that the socket still works.
    subscribe(&mut ws, "room/fine").await;
}

#[tokio::test]
async fn a_colon_in_a_channel_name_is_percent_encoded_where_it_would_be_ambiguous() {
    let p = project();
    let server = Server::start(p.path()).await;
    let mut ws = connect(&server).await;
    // Plain in SUBSCRIBE, %3A in PUBLISH, always encoded in MSG (with `%` itself).
    send(&mut ws, "SUBSCRIBE:room/a:b%25").await;
    send(&mut ws, "PUBLISH:room/a%3Ab%25:x:y").await;
    assert_eq!(
        next_text(&mut ws, WAIT).await.as_deref(),
        Some("MSG:room/a%3Ab%25:x:y")
    );
    // The same channel as a channel WebSocket sees it.
    let mut plain = server.ws(&wisp_e2e::ws_path("room/a:b%25")).await;
    send(&mut ws, "PUBLISH:room/a%3Ab%25:z").await;
    assert_eq!(next_text(&mut plain, WAIT).await.as_deref(), Some("z"));
}

#[tokio::test]
async fn binary_content_is_published_and_delivered_as_binary() {
    let p = project();
    let server = Server::start(p.path()).await;
    let mut ws = connect(&server).await;
    subscribe(&mut ws, "room/bin").await;
    let mut frame = b"PUBLISH:room/bin:".to_vec();
    frame.extend_from_slice(&[0xff, 0x00]);
    ws.send(Message::binary(frame)).await.unwrap();
    let got = loop {
        match tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut ws)).await {
            Ok(Some(Ok(Message::Binary(data)))) => break data,
            Ok(Some(Ok(Message::Text(text)))) => panic!("text: {text}"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no binary frame: {other:?}"),
        }
    };
    assert_eq!(&got[..], b"MSG:room/bin:\xff\x00");
}

#[tokio::test]
async fn a_publish_on_the_protocol_runs_the_channels_functions() {
    let p = project();
    let server = Server::start(p.path()).await;
    // `relay` (on room/relay) reports what it got on probe-out.
    let mut ws = connect(&server).await;
    subscribe(&mut ws, "probe-out").await;
    send(&mut ws, "PUBLISH:room/relay:ping").await;
    let report = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(
        report.starts_with("MSG:probe-out:") && report.contains("ping"),
        "{report}"
    );
}

#[tokio::test]
async fn the_channel_websockets_limits_apply_per_socket() {
    let p = project();
    let mut config = test_config();
    config.websocket.max_message = 1000;
    config.websocket.publish_rate = 20;
    config.websocket.send_queue = 2000;
    let server = Server::start_with(p.path(), config).await;

    let mut ws = connect(&server).await;
    send(&mut ws, &format!("PUBLISH:room/x:{}", "x".repeat(2000))).await;
    assert_eq!(close_code(&mut ws).await, Some(1009), "too big");

    let mut ws = connect(&server).await;
    for _ in 0..100 {
        if ws.send(Message::text("UNSUBSCRIBE:room/x")).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut ws).await, Some(1008), "over the rate");

    // Three 900-byte messages kept: more than the 2000 bytes the client may be behind.
    let big = "x".repeat(900);
    for _ in 0..3 {
        publish(&server, "kept/big", &big).await;
    }
    let mut ws = connect(&server).await;
    send(&mut ws, "SUBSCRIBE:kept/big").await;
    assert_eq!(close_code(&mut ws).await, Some(1008), "slow consumer");
}

#[tokio::test]
async fn one_socket_holds_a_bounded_number_of_subscriptions() {
    let p = project();
    let server = Server::start(p.path()).await;
    let mut ws = connect(&server).await;
    let max = wisp::server::broker_protocol::MAX_CHANNELS;
    for i in 0..max {
        send(&mut ws, &format!("SUBSCRIBE:room/{i}")).await;
    }
    send(&mut ws, "SUBSCRIBE:room/one-too-many").await;
    let answer = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(
        answer.starts_with("ERROR:a socket may subscribe to at most"),
        "{answer}"
    );
    // Leaving one makes room.
    send(&mut ws, "UNSUBSCRIBE:room/0").await;
    subscribe(&mut ws, "room/one-too-many").await;
}

#[tokio::test]
async fn the_socket_is_refused_for_an_unknown_project_or_a_query() {
    let p = project();
    let server = Server::start(p.path()).await;
    assert!(server.try_ws("ws-0000").await.is_err());
    assert!(server
        .try_ws(&format!("{}?last=1", socket_path()))
        .await
        .is_err());
    let reply = server.get(&format!("/{}", socket_path())).await;
    assert_eq!(reply.status, 426, "a plain GET is told to upgrade");
}

#[tokio::test]
async fn shutdown_closes_the_socket_with_1001() {
    let p = project();
    let mut server = Server::start(p.path()).await;
    let mut ws = connect(&server).await;
    subscribe(&mut ws, "room/bye").await;
    let stopping = server.begin_shutdown();
    assert_eq!(close_code(&mut ws).await, Some(1001));
    stopping.await.unwrap();
}

/// The close code the server ends `ws` with.
async fn close_code(ws: &mut WsClient) -> Option<u16> {
    wisp_e2e::close_code(ws, WAIT).await.map(u16::from)
}
