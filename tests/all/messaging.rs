//! Channels end to end: pub/sub host calls, access rules, pub/sub functions and the
//! WebSocket bridge, with real WebSocket clients.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wisp_e2e::{next_text, publish, test_wasm, ws_path, Project, Server, WsClient};

const WAIT: Duration = Duration::from_secs(5);
/// How long to listen for a message that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// The probe project ([`wisp_e2e::probe_project`]) with messaging resources of
/// every style, and the probe guest's other HTTP exports.
fn probe_project() -> Project {
    let p = wisp_e2e::probe_project();
    p.file(
        "messaging/notify.yaml",
        "matcher: /notifications/*\nwebsocket: true\n",
    );
    p.file("messaging/quiet.yaml", "matcher: no-ws\nwebsocket: false\n");
    let wasm = test_wasm("pubsub_probe");
    for (name, method) in [("subscribe", "GET"), ("wsurl", "GET"), ("dual", "GET")] {
        p.http_function(name, method, &format!("/{name}"), name, &wasm);
    }
    p
}

async fn probe_server() -> (Project, Server) {
    let p = probe_project();
    let server = Server::start(p.path()).await;
    (p, server)
}

#[tokio::test]
async fn websocket_url_is_given_only_for_websocket_enabled_channels() {
    let (_p, server) = probe_server().await;
    let reply = server.get("/wsurl?channel=room/a").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), ws_path("room/a"));
    // The seed's short form, wildcard style: `*` spans one path segment.
    assert_eq!(
        server
            .get("/wsurl?channel=/notifications/alice")
            .await
            .status,
        200
    );
    for refused in ["no-ws", "unknown", "/notifications/a/b"] {
        let reply = server.get(&format!("/wsurl?channel={refused}")).await;
        assert_eq!(reply.status, 500, "{refused}");
        assert!(
            reply.text().ends_with("(errno 38)"),
            "{refused}: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn publish_and_subscribe_are_refused_for_unmatched_channels() {
    let (_p, server) = probe_server().await;
    let reply = publish(&server, "unknown", "x").await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().ends_with("(errno 21)"), "{}", reply.text());
    // The SDK's text names the channel and why a publish is refused.
    let text = reply.text();
    assert!(
        text.contains("channel `unknown`") && text.contains("no messaging resource matches"),
        "{text}"
    );
    let reply = server.get("/subscribe?channel=unknown").await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().ends_with("(errno 20)"), "{}", reply.text());
    // A channel without the bridge still takes pub/sub.
    assert_eq!(publish(&server, "no-ws", "x").await.status, 200);
    assert_eq!(server.get("/subscribe?channel=no-ws").await.status, 200);
}

#[tokio::test]
async fn websocket_connections_are_refused_where_messaging_does_not_allow_them() {
    let (_p, server) = probe_server().await;
    let refused = |path: String| {
        let server = &server;
        async move {
            match server.try_ws(&path).await {
                Err(WsError::Http(response)) => response.status().as_u16(),
                Err(other) => panic!("expected an HTTP refusal for {path}, got {other}"),
                Ok(_) => panic!("{path} was accepted"),
            }
        }
    };
    assert_eq!(refused(ws_path("no-ws")).await, 403);
    assert_eq!(refused(ws_path("unknown")).await, 404);
    assert_eq!(refused("ws-QmNoSuchProject/room/a".into()).await, 404);
    // A plain GET on a WebSocket URL says what it wants.
    assert_eq!(
        server.get(&format!("/{}", ws_path("room/a"))).await.status,
        426
    );
}

#[tokio::test]
async fn clients_receive_what_a_function_publishes_using_the_url_it_gave() {
    let (_p, server) = probe_server().await;
    let url = server.get("/wsurl?channel=room/a").await.text();
    let mut a = server.ws(&url).await;
    let mut b = server.ws(&url).await;
    assert_eq!(publish(&server, "room/a", "hello").await.status, 200);
    assert_eq!(next_text(&mut a, WAIT).await.as_deref(), Some("hello"));
    assert_eq!(next_text(&mut b, WAIT).await.as_deref(), Some("hello"));
}

#[tokio::test]
async fn a_client_frame_reaches_other_clients_and_functions_but_not_its_sender() {
    let (_p, server) = probe_server().await;
    let mut probe = server.ws(&ws_path("probe-out")).await;
    let mut a = server.ws(&ws_path("room/relay")).await;
    let mut b = server.ws(&ws_path("room/relay")).await;

    a.send(Message::text("hi there")).await.expect("send");
    match b.next().await.expect("a frame").expect("ok") {
        Message::Text(text) => assert_eq!(text.as_str(), "hi there"),
        other => panic!("text must stay text, got {other:?}"),
    }
    // The pub/sub function saw it too, channel name with its `/` intact.
    assert_eq!(
        next_text(&mut probe, WAIT).await.as_deref(),
        Some("seen:room/relay:hi there")
    );

    a.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .expect("send");
    match b.next().await.expect("a frame").expect("ok") {
        Message::Binary(data) => assert_eq!(&data[..], &[0u8, 159, 146, 150]),
        other => panic!("binary must stay binary, got {other:?}"),
    }
    // The sender got neither of its own messages.
    assert_eq!(next_text(&mut a, QUIET).await, None);
}

#[tokio::test]
async fn subscribe_from_a_guest_is_honoured_once_however_often_it_is_called() {
    let (_p, server) = probe_server().await;
    let mut probe = server.ws(&ws_path("probe-out")).await;
    for _ in 0..3 {
        assert_eq!(
            server.get("/dual?channel=room/d").await.text(),
            "subscribed"
        );
    }
    assert_eq!(publish(&server, "room/d", "x").await.status, 200);
    assert_eq!(
        next_text(&mut probe, WAIT).await.as_deref(),
        Some("dual:room/d:x")
    );
    assert_eq!(
        next_text(&mut probe, QUIET).await,
        None,
        "delivered more than once"
    );
}

#[tokio::test]
async fn a_function_never_receives_its_own_publishes() {
    let (_p, server) = probe_server().await;
    let mut probe = server.ws(&ws_path("probe-out")).await;
    // echo_back republishes to `loop`; delivered to itself, it would never stop.
    assert_eq!(publish(&server, "loop", "ping").await.status, 200);
    assert_eq!(
        next_text(&mut probe, WAIT).await.as_deref(),
        Some("self:ping")
    );
    assert_eq!(
        next_text(&mut probe, QUIET).await,
        None,
        "the function received its own message"
    );
}

#[tokio::test]
async fn each_subscriber_sees_a_channels_messages_in_publish_order() {
    let (_p, server) = probe_server().await;
    let mut probe = server.ws(&ws_path("probe-out")).await;
    let mut watcher = server.ws(&ws_path("room/relay")).await;
    let mut sender = server.ws(&ws_path("room/relay")).await;
    const N: usize = 300;
    for i in 0..N {
        sender
            .feed(Message::text(i.to_string()))
            .await
            .expect("send");
    }
    sender.flush().await.expect("flush");
    for i in 0..N {
        assert_eq!(
            next_text(&mut watcher, WAIT).await,
            Some(i.to_string()),
            "socket order"
        );
    }
    for i in 0..N {
        assert_eq!(
            next_text(&mut probe, WAIT).await,
            Some(format!("seen:room/relay:{i}")),
            "function order"
        );
    }
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let (_p, server) = probe_server().await;
    let mut ws = server.ws(&ws_path("room/a")).await;
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .expect("ping");
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("answer in time")
        .expect("frame")
        .expect("ok");
    assert_eq!(frame, Message::Pong(Bytes::from_static(b"are you there")));
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let p = probe_project();
    let mut config = wisp_e2e::test_config();
    config.websocket.max_message = 1024;
    let server = Server::start_with(p.path(), config).await;
    let mut ws = server.ws(&ws_path("room/a")).await;
    ws.send(Message::binary(vec![7u8; 2048]))
        .await
        .expect("send");
    let close = wisp_e2e::close_code(&mut ws, WAIT).await;
    assert_eq!(close, Some(CloseCode::Size));
}

#[tokio::test]
async fn a_thousand_clients_on_one_channel_each_receive_every_message() {
    let (_p, server) = probe_server().await;
    const CLIENTS: usize = 1000;
    const MESSAGES: usize = 20;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(server.ws(&ws_path("room/big")).await);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                while got.len() < MESSAGES {
                    match next_text(&mut ws, Duration::from_secs(30)).await {
                        Some(text) => got.push(text),
                        None => break,
                    }
                }
                got
            })
        })
        .collect();
    for i in 0..MESSAGES {
        assert_eq!(
            publish(&server, "room/big", &format!("m{i}")).await.status,
            200
        );
    }
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    for reader in readers {
        assert_eq!(reader.await.expect("reader"), expected);
    }
}

#[tokio::test]
async fn a_stalled_client_is_closed_while_the_others_keep_receiving() {
    let p = probe_project();
    let mut config = wisp_e2e::test_config();
    config.websocket.send_queue = 256 << 10;
    let server = Server::start_with(p.path(), config).await;

    // The stalled client completes the handshake, then never reads again; its
    // small receive buffer keeps the kernel from absorbing much on its behalf.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(server.addr).await.expect("connect");
    let url = format!("ws://{}/{}", server.addr, ws_path("room/s"));
    let (stalled, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("handshake");
    let mut live: Vec<WsClient> = Vec::new();
    for _ in 0..5 {
        live.push(server.ws(&ws_path("room/s")).await);
    }
    let mut sender = server.ws(&ws_path("room/s")).await;

    // 10 MB in all: far past the stalled client's 256 KiB queue and its socket buffers.
    const N: usize = 10_000;
    let payload = "x".repeat(1000);
    let readers: Vec<_> = live
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut count = 0;
                while count < N {
                    match next_text(&mut ws, Duration::from_secs(20)).await {
                        Some(_) => count += 1,
                        None => break,
                    }
                }
                count
            })
        })
        .collect();
    // Paced at about 5 MB/s, a rate the live clients keep up with: the queue bound
    // is for clients that stop reading, not for bursts.
    for i in 0..N {
        sender
            .feed(Message::text(format!("{i}:{payload}")))
            .await
            .expect("send");
        if i % 20 == 19 {
            sender.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    }
    sender.flush().await.expect("flush");
    for reader in readers {
        assert_eq!(
            reader.await.expect("reader"),
            N,
            "a live client missed messages"
        );
    }
    // The stalled client was dropped once its queue passed the bound. Reading
    // now drains what its socket buffers held, then ends (close frame or EOF).
    let mut stalled = stalled;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        let mut received = 0usize;
        loop {
            match stalled.next().await {
                Some(Ok(Message::Close(frame))) => return (received, frame.map(|f| f.code)),
                Some(Ok(_)) => received += 1,
                Some(Err(_)) | None => return (received, None),
            }
        }
    })
    .await
    .expect("the stalled client's connection ended");
    assert!(
        ended.0 < N,
        "the stalled client got everything ({}); it was never cut off",
        ended.0
    );
    if let Some(code) = ended.1 {
        assert_eq!(code, CloseCode::Policy);
    }
}
