//! Channel history (`wisp.history`) end to end: messages published to a channel nobody
//! is on are kept, and a WebSocket client that joins with `?last=N` gets the newest N, then
//! the live ones, each once and in order.

use std::time::Duration;
use wisp_e2e::{next_text, probe_project, publish, ws_path, Project, Server};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// The probe project with channels `kept/*` keeping their newest 5 messages.
fn project() -> Project {
    let p = probe_project();
    p.file(
        "messaging/kept.yaml",
        "matcher: kept/*\nwebsocket: true\nwisp:\n  history: {size: 5, ttl: 1h}\n",
    );
    p.file(
        "messaging/burst.yaml",
        "matcher: burst/*\nwebsocket: true\nwisp:\n  history: {size: 100000}\n",
    );
    p
}

#[tokio::test]
async fn messages_sent_to_an_empty_channel_are_there_for_a_later_join() {
    let p = project();
    let server = Server::start(p.path()).await;
    for i in 1..=7 {
        let reply = publish(&server, "kept/a", &format!("m{i}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    publish(&server, "kept/b", "other room").await;

    let mut ws = server.ws(&format!("{}?last=3", ws_path("kept/a"))).await;
    for want in ["m5", "m6", "m7"] {
        assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some(want));
    }
    publish(&server, "kept/a", "m8").await;
    assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some("m8"));
    assert_eq!(next_text(&mut ws, QUIET).await, None, "each once");

    // More than is kept: the 5 kept, oldest first.
    let mut all = server.ws(&format!("{}?last=100", ws_path("kept/a"))).await;
    for want in ["m4", "m5", "m6", "m7", "m8"] {
        assert_eq!(next_text(&mut all, WAIT).await.as_deref(), Some(want));
    }
    // Without `last`, live messages only.
    let mut live = server.ws(&ws_path("kept/a")).await;
    assert_eq!(next_text(&mut live, QUIET).await, None);
}

#[tokio::test]
async fn history_survives_a_restart_of_the_host() {
    let p = project();
    let server = Server::start(p.path()).await;
    publish(&server, "kept/restart", "before").await;
    drop(server);
    let server = Server::start(p.path()).await;
    let mut ws = server
        .ws(&format!("{}?last=1", ws_path("kept/restart")))
        .await;
    assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some("before"));
}

#[tokio::test]
async fn a_publish_during_a_join_arrives_once_and_in_order() {
    let p = project();
    let server = std::sync::Arc::new(Server::start(p.path()).await);
    publish(&server, "kept/race", "0").await;
    // Publishes keep coming while clients join with ?last=5: each client sees a run of
    // consecutive numbers, none twice, none skipped.
    let publisher = {
        let server = server.clone();
        tokio::spawn(async move {
            for i in 1..=60 {
                publish(&server, "kept/race", &i.to_string()).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(server.ws(&format!("{}?last=5", ws_path("kept/race"))).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    publisher.await.unwrap();
    for ws in &mut clients {
        let mut seen = Vec::new();
        while let Some(text) = next_text(ws, QUIET).await {
            seen.push(text.parse::<u32>().unwrap());
        }
        assert!(!seen.is_empty());
        let first = seen[0];
        let want: Vec<u32> = (first..first + seen.len() as u32).collect();
        assert_eq!(seen, want, "consecutive, no duplicate, no gap");
        assert_eq!(*seen.last().unwrap(), 60, "up to the last one");
    }
}

#[tokio::test]
async fn bad_catch_up_queries_are_refused_before_the_upgrade() {
    let p = project();
    let server = Server::start(p.path()).await;
    for query in ["last=x", "since=3", "since=1&epoch=e&last=2"] {
        let path = format!("{}?{query}", ws_path("kept/a"));
        assert!(server.try_ws(&path).await.is_err(), "{query}");
    }
    // A channel without history has nothing to replay.
    let path = format!("{}?last=1", ws_path("room/x"));
    assert!(server.try_ws(&path).await.is_err());
}

/// The next frame as JSON (an enveloped message), or `None` after `wait`.
async fn next_json(ws: &mut wisp_e2e::WsClient, wait: Duration) -> Option<serde_json::Value> {
    let text = next_text(ws, wait).await?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}")))
}

/// The close code the server ends `ws` with.
async fn close_code(ws: &mut wisp_e2e::WsClient) -> Option<u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn an_enveloped_client_resumes_from_its_last_offset_across_a_restart() {
    let p = project();
    let server = Server::start(p.path()).await;
    let channel = "kept/resume";
    let mut ws = server
        .ws(&format!("{}?envelope=json", ws_path(channel)))
        .await;
    for i in 1..=3 {
        publish(&server, channel, &format!("m{i}")).await;
    }
    let mut last = serde_json::Value::Null;
    for i in 1..=3u64 {
        let message = next_json(&mut ws, WAIT)
            .await
            .expect("an enveloped message");
        assert_eq!(message["channel"], channel);
        assert_eq!(message["offset"], i);
        assert_eq!(message["data"], format!("m{i}"));
        assert_eq!(message["binary"], false);
        assert!(
            message["time"].as_u64().unwrap() > 1_600_000_000_000,
            "{message}"
        );
        last = message;
    }
    let epoch = last["epoch"].as_str().expect("an epoch").to_owned();
    drop(ws);
    // Sent while the client is away, then the host restarts.
    publish(&server, channel, "m4").await;
    publish(&server, channel, "m5").await;
    drop(server);
    let server = Server::start(p.path()).await;
    let query = format!("since=3&epoch={epoch}&envelope=json");
    let mut ws = server.ws(&format!("{}?{query}", ws_path(channel))).await;
    for (offset, data) in [(4u64, "m4"), (5, "m5")] {
        let message = next_json(&mut ws, WAIT).await.expect("a replayed message");
        assert_eq!(
            (message["offset"].as_u64(), message["data"].as_str()),
            (Some(offset), Some(data))
        );
        assert_eq!(message["epoch"], epoch.as_str());
    }
    publish(&server, channel, "m6").await;
    let live = next_json(&mut ws, WAIT).await.expect("the live message");
    assert_eq!(
        (live["offset"].as_u64(), live["data"].as_str()),
        (Some(6), Some("m6"))
    );
    assert_eq!(next_json(&mut ws, QUIET).await, None);

    // Binary data comes in base64.
    let reply = server
        .post(
            &format!("/publish?channel={channel}"),
            vec![0xff_u8, 0x00, 0xfe],
        )
        .await;
    assert_eq!(reply.status, 200);
    let binary = next_json(&mut ws, WAIT).await.expect("the binary message");
    assert_eq!(binary["binary"], true);
    assert_eq!(binary["data"], "/wD+");
}

#[tokio::test]
async fn a_stale_epoch_or_a_trimmed_offset_closes_with_4412() {
    let p = project();
    let server = Server::start(p.path()).await;
    let channel = "kept/gone";
    let mut ws = server
        .ws(&format!("{}?envelope=json", ws_path(channel)))
        .await;
    publish(&server, channel, "first").await;
    let first = next_json(&mut ws, WAIT).await.expect("a message");
    let epoch = first["epoch"].as_str().unwrap().to_owned();

    let stale = format!("{}?since=1&epoch=not-{epoch}", ws_path(channel));
    let mut ws = server.ws(&stale).await;
    assert_eq!(close_code(&mut ws).await, Some(4412), "another epoch");

    // Only 5 are kept: after 10 more, offset 2 is long gone.
    for i in 0..10 {
        publish(&server, channel, &format!("x{i}")).await;
    }
    let trimmed = format!("{}?since=2&epoch={epoch}", ws_path(channel));
    let mut ws = server.ws(&trimmed).await;
    assert_eq!(close_code(&mut ws).await, Some(4412), "trimmed");
    // Caught up is fine: nothing to replay, then live.
    let caught_up = format!("{}?since=11&epoch={epoch}", ws_path(channel));
    let mut ws = server.ws(&caught_up).await;
    publish(&server, channel, "next").await;
    assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some("next"));
}

#[tokio::test]
async fn a_function_reads_a_channels_history() {
    let p = project();
    p.http_function(
        "history",
        "GET",
        "/history",
        "history",
        &wisp_e2e::test_wasm("abi"),
    );
    let server = Server::start(p.path()).await;
    let read = |query: &str| {
        let path = format!("/history?{query}");
        let server = &server;
        async move { server.get(&path).await.text() }
    };
    assert_eq!(
        read("channel=kept/fn&last=5").await,
        "epoch=none\n",
        "nothing kept yet"
    );
    for i in 1..=7 {
        publish(&server, "kept/fn", &format!("m{i}")).await;
    }
    assert_eq!(
        read("channel=kept/fn&last=2").await,
        "epoch=set\n6:m6\n7:m7\n"
    );
    assert_eq!(
        read("channel=kept/fn&since=5").await,
        "epoch=set\n6:m6\n7:m7\n"
    );
    assert_eq!(
        read("channel=kept/fn&since=1").await,
        "epoch=set\n3:m3\n4:m4\n5:m5\n6:m6\n7:m7\n",
        "what is still kept"
    );
    // A channel that keeps nothing, or that no resource serves, is errno 40.
    assert_eq!(read("channel=room/x&last=1").await, "error=40");
    assert_eq!(read("channel=nowhere&last=1").await, "error=40");
}

#[tokio::test]
async fn a_replay_past_the_send_queue_closes_with_1008() {
    let p = project();
    let mut config = wisp_e2e::test_config();
    config.websocket.send_queue = 2000;
    let server = Server::start_with(p.path(), config).await;
    let big = "x".repeat(1000);
    for _ in 0..5 {
        publish(&server, "kept/big", &big).await;
    }
    // Five 1000-byte messages are more than the client may be behind: a slow consumer.
    let mut ws = server.ws(&format!("{}?last=5", ws_path("kept/big"))).await;
    assert_eq!(close_code(&mut ws).await, Some(1008));
    // One fits.
    let mut ws = server.ws(&format!("{}?last=1", ws_path("kept/big"))).await;
    assert_eq!(next_text(&mut ws, WAIT).await.map(|t| t.len()), Some(1000));
}

/// A client that drops its connection 200 times while 1,000 messages a second are
/// published, and each time comes back with `since` its last offset, sees every message
/// exactly once and in order.
#[tokio::test]
async fn two_hundred_resumes_under_a_thousand_publishes_a_second_miss_nothing() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let p = project();
    let server = std::sync::Arc::new(Server::start(p.path()).await);
    let channel = "burst/resume";
    let path = format!("{}?envelope=json", ws_path(channel));
    let mut reader = server.ws(&path).await;

    // The publisher: one frame a millisecond on the channel's own socket, its echoes
    // drained so that it is never a slow consumer; it runs until told to stop.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = {
        let mut sink = publisher(&server, channel).await;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut sent = 0u64;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        sink.send(Message::text(sent.to_string())).await.expect("publishing");
                        sent += 1;
                    }
                }
            }
            sink.close().await.ok();
            sent
        })
    };

    let mut track = Track::default();
    for round in 0..200usize {
        // A few messages, then away: a resume at any point of the stream.
        track.read(&mut reader, 1 + round % 7).await;
        drop(reader);
        let resume = format!("{path}&since={}&epoch={}", track.offset, track.epoch);
        reader = server.ws(&resume).await;
    }
    stop.send(()).unwrap();
    let sent = publisher.await.unwrap();
    let rest = sent as usize - track.seen.len();
    track.read(&mut reader, rest).await;
    assert_eq!(
        next_json(&mut reader, QUIET).await,
        None,
        "nothing after the last"
    );
    let want: Vec<u64> = (0..sent).collect();
    assert_eq!(track.seen.len(), want.len());
    assert!(track.seen == want, "every message once, in order");
    assert!(sent >= 200, "the publisher kept publishing: {sent}");
}

/// What an enveloped client has seen: the messages' data (numbers) and where it is.
#[derive(Default)]
struct Track {
    seen: Vec<u64>,
    offset: u64,
    epoch: String,
}

impl Track {
    /// Reads `want` messages from `ws`, each the offset after the last.
    async fn read(&mut self, ws: &mut wisp_e2e::WsClient, want: usize) {
        for _ in 0..want {
            let message = next_json(ws, WAIT).await.expect("a message");
            let at = message["offset"].as_u64().expect("an offset");
            let after = self.offset;
            assert!(after == 0 || at == after + 1, "offset {at} after {after}");
            self.offset = at;
            self.epoch = message["epoch"].as_str().expect("an epoch").to_owned();
            let data = message["data"].as_str().expect("text data");
            self.seen.push(data.parse().expect("a number"));
        }
    }
}

/// Frames a client sends together are kept together (one step per batch): each is
/// delivered and kept once, numbered in the order sent.
#[tokio::test]
async fn frames_sent_together_are_kept_and_delivered_in_order() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let p = project();
    let server = Server::start(p.path()).await;
    let channel = "burst/together";
    let mut subscriber = server
        .ws(&format!("{}?envelope=json", ws_path(channel)))
        .await;
    let mut sink = publisher(&server, channel).await;
    for i in 0..1000u64 {
        sink.feed(Message::text(i.to_string())).await.unwrap();
    }
    sink.flush().await.unwrap();
    let mut track = Track::default();
    track.read(&mut subscriber, 1000).await;
    assert!(
        track.seen == (0..1000).collect::<Vec<u64>>(),
        "in the order sent"
    );
    assert_eq!(track.offset, 1000);
    assert_eq!(next_json(&mut subscriber, QUIET).await, None, "each once");

    let mut replay = server
        .ws(&format!("{}?envelope=json&last=1000", ws_path(channel)))
        .await;
    let mut kept = Track::default();
    kept.read(&mut replay, 1000).await;
    assert!(kept.seen == track.seen, "kept as delivered");
}

/// A client of `channel` that only publishes: its sending half, its echoes drained so
/// that it never falls behind.
async fn publisher(
    server: &Server,
    channel: &str,
) -> futures_util::stream::SplitSink<wisp_e2e::WsClient, tokio_tungstenite::tungstenite::Message> {
    use futures_util::StreamExt;
    let (sink, mut echoes) = server.ws(&ws_path(channel)).await.split();
    tokio::spawn(async move { while echoes.next().await.is_some() {} });
    sink
}
