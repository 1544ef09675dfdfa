//! The sample project in `config/`, built with `wisp build` and served as a user would.

use bytes::Bytes;
use hyper::Method;
use wisp_e2e::sample_server;

#[tokio::test]
async fn ping_answers_pong() {
    let server = sample_server().await;
    let reply = server.get("/ping").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "pong");
}

#[tokio::test]
async fn the_upstream_sample_calls_the_server_it_runs_on() {
    let server = sample_server().await;
    let reply = server.get("/api/upstream?path=/ping").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let want = format!("http://{}/ping answered 200: pong\n", server.addr);
    assert_eq!(reply.text(), want);
    // A Host the function's `wisp.egress` does not open is refused by the policy.
    let refused = server
        .send(
            Method::GET,
            "/api/upstream",
            &[("host", "10.1.2.3")],
            Bytes::new(),
        )
        .await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(refused.text().contains("errno 13"), "{}", refused.text());
}

#[tokio::test]
async fn echo_returns_method_path_query_header_and_body() {
    let server = sample_server().await;
    let reply = server
        .send(
            Method::POST,
            "/echo?room=a%20b&n=1",
            &[("X-Echo", "hi")],
            Bytes::from_static(b"{\"x\":1}"),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("echo answers JSON");
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/echo");
    assert_eq!(json["query"]["room"], "a b");
    assert_eq!(json["query"]["n"], "1");
    assert_eq!(json["header"], "hi");
    assert_eq!(json["body"], "{\"x\":1}");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = sample_server().await;
    assert_eq!(server.get("/nope").await.status, 404);
    let reply = server.get("/echo").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
}

/// The sample project's WebSocket path for `channel`.
fn sample_ws_path(channel: &str) -> String {
    format!(
        "ws-{}/{channel}",
        wisp::messaging::hash::project_hash("QmWispSampleProject", None)
    )
}

fn json(reply: &wisp_e2e::Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()))
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The seed's "Testing Messaging" flow, as written there: curl for a URL, a
/// WebSocket client on it, curl to publish.
#[tokio::test]
async fn the_seed_testing_flow_works_as_written() {
    let server = sample_server().await;
    let reply = server.get("/api/websocket?room=test").await;
    assert_eq!(reply.status, 200);
    let body = json(&reply);
    // md5("test") = 098f6bcd4621d373cade4e832627b4f6
    assert_eq!(body["channel"], "chat-098f6bcd4621d373cade4e832627b4f6");
    assert_eq!(body["room"], "test");
    let url = body["websocket_url"].as_str().expect("a URL");
    assert_eq!(url, sample_ws_path("chat-098f6bcd4621d373cade4e832627b4f6"));
    let mut ws = server.ws(url).await;

    let message = r#"{"type": "test", "message": "Hello, World!"}"#;
    let reply = server
        .send(
            Method::POST,
            "/api/publish?channel=chat-098f6bcd4621d373cade4e832627b4f6",
            &[("Content-Type", "application/json")],
            Bytes::from_static(message.as_bytes()),
        )
        .await;
    assert_eq!(json(&reply)["status"], "published");
    assert_eq!(
        wisp_e2e::next_text(&mut ws, WAIT).await.as_deref(),
        Some(message)
    );

    // A missing room is the client's mistake.
    assert_eq!(server.get("/api/websocket").await.status, 400);
}

#[tokio::test]
async fn chat_join_and_send_reach_everyone_in_the_room() {
    let server = sample_server().await;
    let join = json(&server.get("/api/chat/join?room=lobby").await);
    assert_eq!(join["channel"], "chat-room-lobby");
    let url = join["websocket_url"].as_str().expect("a URL");
    let mut alice = server.ws(url).await;
    let mut bob = server.ws(url).await;
    let reply = server
        .post(
            "/api/chat/send?room=lobby",
            r#"{"user":"alice","text":"hi bob"}"#,
        )
        .await;
    assert_eq!(reply.text(), "Message sent");
    for ws in [&mut alice, &mut bob] {
        let text = wisp_e2e::next_text(ws, WAIT).await.expect("a chat message");
        let message: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(message["user"], "alice");
        assert_eq!(message["text"], "hi bob");
        assert!(
            message["timestamp"]
                .as_i64()
                .is_some_and(|t| t > 1_600_000_000),
            "{text}"
        );
    }
    assert_eq!(
        server
            .post("/api/chat/send?room=lobby", "not json")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn chat_history_answers_the_rooms_newest_fifty_oldest_first() {
    let server = sample_server().await;
    assert_eq!(
        server.get("/api/chat/history?room=quiet").await.text(),
        "[]"
    );
    for i in 0..55 {
        let body = format!(r#"{{"user":"u{i}","text":"message {i}"}}"#);
        let reply = server.post("/api/chat/send?room=busy1", body).await;
        assert_eq!(reply.text(), "Message sent");
    }
    // Another room, and one whose name starts like it, keep their own.
    server
        .post(
            "/api/chat/send?room=busy",
            r#"{"user":"x","text":"elsewhere"}"#,
        )
        .await;
    let history = json(&server.get("/api/chat/history?room=busy1").await);
    let texts: Vec<&str> = history
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    let expected: Vec<String> = (5..55).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);
    let other = json(&server.get("/api/chat/history?room=busy").await);
    assert_eq!(other.as_array().map(Vec::len), Some(1));
    assert_eq!(server.get("/api/chat/history").await.status, 400);
}

#[tokio::test]
async fn notifications_and_broadcasts_reach_their_channels() {
    let server = sample_server().await;
    let mut bob = server.ws(&sample_ws_path("notifications-bob")).await;
    let mut live = server.ws(&sample_ws_path("live-updates")).await;
    let reply = server
        .post(
            "/api/notify?user=bob",
            r#"{"title":"Hi","message":"you have mail","type":"info"}"#,
        )
        .await;
    assert_eq!(reply.text(), "Notification sent");
    let text = wisp_e2e::next_text(&mut bob, WAIT)
        .await
        .expect("a notification");
    let notification: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(notification["title"], "Hi");
    assert_eq!(notification["message"], "you have mail");

    assert_eq!(
        server.post("/api/broadcast", "score 3-1").await.text(),
        "Update broadcasted"
    );
    assert_eq!(
        wisp_e2e::next_text(&mut live, WAIT).await.as_deref(),
        Some("score 3-1")
    );
}

#[tokio::test]
async fn the_seed_ws_chan_resource_takes_websocket_clients() {
    let server = sample_server().await;
    // `/ws/chan` contains slashes: the URL keeps them (ws-<hash>//ws/chan).
    let mut a = server.ws(&sample_ws_path("/ws/chan")).await;
    let mut b = server.ws(&sample_ws_path("/ws/chan")).await;
    use futures_util::SinkExt;
    a.send(tokio_tungstenite::tungstenite::Message::text(
        "over the bridge",
    ))
    .await
    .expect("send");
    assert_eq!(
        wisp_e2e::next_text(&mut b, WAIT).await.as_deref(),
        Some("over the bridge")
    );
}

/// The chat page's sign-in (`POST /api/chat/signin`): names and rooms are 1 to 32 of
/// `[A-Za-z0-9_-]`, else 400 saying so; the URL it answers opens the private room (and lets
/// its holder publish), while no token, a made-up one and another room's are refused.
#[tokio::test]
async fn chat_sign_in_checks_the_name_and_its_url_opens_the_private_room() {
    let server = sample_server().await;
    let sign_in = |body: String| {
        let server = &server;
        async move { server.post("/api/chat/signin", body).await }
    };
    let long = "x".repeat(33);
    for (name, room, wrong) in [
        ("", "general", "name"),
        ("a b", "general", "name"),
        ("al:ce", "general", "name"),
        ("ålice", "general", "name"),
        (long.as_str(), "general", "name"),
        ("anon-1", "general", "anon-"),
        ("alice", "", "room"),
        ("alice", "no/slash", "room"),
        ("alice", "a?b", "room"),
        ("alice", long.as_str(), "room"),
    ] {
        let reply = sign_in(serde_json::json!({ "name": name, "room": room }).to_string()).await;
        assert_eq!(reply.status, 400, "{name:?} in {room:?}: {}", reply.text());
        assert!(
            reply.text().contains(wrong),
            "{name:?} in {room:?}: {}",
            reply.text()
        );
    }
    for body in ["not json", "[1,2]", r#"{"name":7}"#] {
        assert_eq!(sign_in(body.into()).await.status, 400, "{body}");
    }
    assert_eq!(server.get("/api/chat/signin").await.status, 405);

    let reply = sign_in(r#"{"name":"alice","room":"signin-test"}"#.into()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let session = json(&reply);
    assert_eq!(session["user"], "alice");
    assert_eq!(session["room"], "signin-test");
    assert_eq!(session["channel"], "private/signin-test");
    let url = session["url"].as_str().expect("a URL");
    let room = sample_ws_path("private/signin-test");
    assert!(
        url.starts_with(&format!("{room}?token=v1.")),
        "Taubyte's form of the room's path, with a token: {url}"
    );
    // The token opens the room, and its holder may publish (the room echoes to the sender).
    let mut alice = server.ws(url).await;
    use futures_util::SinkExt;
    alice
        .send(tokio_tungstenite::tungstenite::Message::text("hello"))
        .await
        .expect("send");
    assert_eq!(
        wisp_e2e::next_text(&mut alice, WAIT).await.as_deref(),
        Some("hello")
    );

    let status = |path: String| {
        let server = &server;
        async move {
            match server.try_ws(&path).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    response.status().as_u16()
                }
                Err(other) => panic!("{path}: expected a refusal, got {other}"),
                Ok(_) => panic!("{path} was let in"),
            }
        }
    };
    assert_eq!(status(room.clone()).await, 401, "no token");
    assert_eq!(
        status(format!("{room}?token=v1.9999999999.rw.YWxpY2U.AAAA")).await,
        403,
        "a made-up token"
    );
    let other = json(&sign_in(r#"{"name":"alice","room":"signin-other"}"#.into()).await);
    let token = other["url"]
        .as_str()
        .and_then(|u| u.split("?token=").nth(1));
    assert_eq!(
        status(format!("{room}?token={}", token.expect("a token"))).await,
        403,
        "another room's token"
    );
}

#[tokio::test]
async fn the_chat_page_is_served_at_the_root() {
    let server = sample_server().await;
    let reply = server.get("/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // Its rooms are private: it signs in through the sample's function for their URLs.
    assert!(
        reply.text().contains("/api/chat/signin"),
        "the page signs in through the API"
    );
}

#[tokio::test]
async fn handle_pubsub_event_prints_what_it_got_into_the_host_log() {
    let logs = wisp_e2e::guest_log();

    let server = sample_server().await;
    for body in [
        r#"{"type":"chat","user":"alice","text":"hello"}"#,
        r#"{"type":"notification","title":"t","message":"m"}"#,
        "not json at all",
    ] {
        let reply = server.post("/api/publish?channel=test-channel", body).await;
        assert_eq!(reply.status, 200);
    }
    let expected = [
        "Chat from alice: hello",
        "Received raw message: not json at all",
    ];
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = logs.text();
        if expected.iter().all(|e| text.contains(e)) {
            assert!(text.contains("function=handle_pubsub_event"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "guest output missing from the log:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
