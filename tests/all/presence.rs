//! Who is there, and what is said only to some: presence (`wisp: {presence: true}`), private
//! messages (`PUBLISH:@<user>:`), typing indicators (`USER_TYPING:`) and ephemeral messages
//! (`SIGNAL:`) on the broker protocol, with real sockets, on one node and across two nodes
//! of a real nats-server, one of them killed.

use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wisp::messaging::nats::NatsConfig;
use wisp::messaging::token::{now_secs, Tokens};
use wisp::server::ServerConfig;
use wisp_e2e::nats::NatsServer;
use wisp_e2e::{next_text, probe_project, test_config, test_wasm, Project, Server, WsClient};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);
const KEY: &[u8] = b"the presence tests' key, 32+ bytes long";
const HOUR: Duration = Duration::from_secs(3600);

/// The probe project with `room/*` (presence, history of 10) and private `team/*` (presence).
fn project() -> Project {
    let p = probe_project();
    let wasm = test_wasm("pubsub_probe");
    p.http_function("presence", "GET", "/presence", "presence", &wasm);
    p.http_function("ephemeral", "POST", "/ephemeral", "ephemeral", &wasm);
    // Told of team/c's joins and leaves: reports them as `seen:team/c:<json>` on probe-out.
    p.file(
        "functions/greeter.yaml",
        "source: .\ntrigger:\n  type: pubsub\n  channel: team/c\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: relay\nwisp:\n  presence-events: true\n",
    );
    p.artifact("greeter", &wasm);
    p.file(
        "messaging/rooms.yaml",
        "matcher: room/*\nwebsocket: true\nwisp:\n  presence: true\n  history: {size: 10}\n",
    );
    p.file(
        "messaging/team.yaml",
        "matcher: team/*\nwebsocket: true\nwisp:\n  private: true\n  presence: true\n",
    );
    p
}

fn config() -> ServerConfig {
    let mut config = test_config();
    config.tokens = Some(Tokens::new(KEY.to_vec()));
    config
}

fn scope() -> String {
    wisp::messaging::hash::project_hash("test-project", None)
}

fn token(channel: &str, user: &str) -> String {
    Tokens::new(KEY.to_vec()).issue(&scope(), channel, user, HOUR, true, now_secs())
}

async fn send(ws: &mut WsClient, command: &str) {
    ws.send(Message::text(command)).await.expect("sending");
}

/// A broker-protocol socket signed in as `user` and subscribed to private `channel` (one
/// with presence), once the subscription is in place (its own join was read).
async fn signed_in(server: &Server, channel: &str, user: &str) -> WsClient {
    let mut ws = server.ws(&format!("ws-{}", scope())).await;
    send(&mut ws, &format!("AUTH:{}", token(channel, user))).await;
    send(&mut ws, &format!("SUBSCRIBE:{channel}")).await;
    // Answered after the subscribe, and saying so.
    let list = members(&mut ws, channel).await;
    assert!(list.iter().any(|(who, _)| who == user), "{list:?}");
    ws
}

/// Reads lines until one is `want`, failing on none within [`WAIT`]; returns those before.
async fn until(ws: &mut WsClient, want: &str) -> Vec<String> {
    let mut before = Vec::new();
    while let Some(line) = next_text(ws, WAIT).await {
        if line == want {
            return before;
        }
        before.push(line);
    }
    panic!("never got {want:?}; got {before:?}");
}

/// The lines `ws` gets within [`QUIET`].
async fn drain(ws: &mut WsClient) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(line) = next_text(ws, QUIET).await {
        lines.push(line);
    }
    lines
}

/// The members `PRESENCE:` lists, as (user, connections).
async fn members(ws: &mut WsClient, channel: &str) -> Vec<(String, u64)> {
    send(ws, &format!("PRESENCE:{channel}")).await;
    let prefix = format!("PRESENCE:{channel}:");
    while let Some(line) = next_text(ws, WAIT).await {
        if let Some(json) = line.strip_prefix(&prefix) {
            let list: Vec<serde_json::Value> = serde_json::from_str(json).expect("a JSON list");
            return list
                .iter()
                .map(|m| {
                    let user = m["user"].as_str().expect("a user").to_owned();
                    (user, m["connections"].as_u64().expect("a count"))
                })
                .collect();
        }
    }
    panic!("no PRESENCE answer");
}

#[tokio::test]
async fn private_messages_reach_only_the_named_users_sockets() {
    let p = project();
    let server = Server::start_with(p.path(), config()).await;
    let mut alice = signed_in(&server, "team/a", "alice").await;
    let mut alice_too = signed_in(&server, "team/a", "alice").await;
    let mut bob = signed_in(&server, "team/a", "bob").await;
    let mut carol = signed_in(&server, "team/a", "carol").await;
    for ws in [&mut alice, &mut alice_too, &mut bob] {
        until(ws, "JOIN:team/a:carol").await;
    }
    send(&mut alice, "PUBLISH:@bob:Hi there!").await;
    until(&mut bob, "MSG:@alice:Hi there!").await;
    // To oneself: every one of one's sockets, once.
    send(&mut alice, "PUBLISH:@alice:note to self").await;
    for ws in [&mut alice, &mut alice_too] {
        until(ws, "MSG:@alice:note to self").await;
    }
    // To nobody signed in: dropped, and the sender is not told.
    send(&mut alice, "PUBLISH:@nobody:hello?").await;
    send(&mut bob, "PUBLISH:@carol:done").await;
    let before = until(&mut carol, "MSG:@bob:done").await;
    assert!(before.iter().all(|l| !l.starts_with("MSG:@")), "{before:?}");
    assert!(drain(&mut alice)
        .await
        .iter()
        .all(|l| !l.starts_with("ERROR:")));
    assert!(drain(&mut bob).await.is_empty());

    // A socket that is not signed in may not send one; one signed in by an anonymous token
    // (Taubyte's `WebSocket().Url()`) neither.
    let mut anonymous = server.ws(&format!("ws-{}", scope())).await;
    send(&mut anonymous, "PUBLISH:@bob:who am I").await;
    let line = next_text(&mut anonymous, WAIT).await.unwrap_or_default();
    assert!(
        line.starts_with("ERROR:") && line.contains("signed-in"),
        "{line}"
    );
    send(&mut anonymous, &format!("AUTH:{}", token("team/a", ""))).await;
    send(&mut anonymous, "SUBSCRIBE:team/a").await;
    send(&mut anonymous, "PUBLISH:@bob:still nobody").await;
    let lines = drain(&mut anonymous).await;
    assert!(lines.iter().any(|l| l.contains("signed-in")), "{lines:?}");
    assert!(drain(&mut bob)
        .await
        .iter()
        .all(|l| !l.starts_with("MSG:@")));
}

#[tokio::test]
async fn presence_lists_each_user_once_and_a_quick_reconnect_is_not_a_leave() {
    let p = project();
    let server = Server::start_with(p.path(), config()).await;
    let mut watcher = signed_in(&server, "team/b", "watcher").await;
    // Alice on a plain channel socket and on the broker protocol: one member, two sockets.
    let url = format!(
        "{}?token={}",
        wisp_e2e::ws_path("team/b"),
        token("team/b", "alice")
    );
    let plain = server.ws(&url).await;
    until(&mut watcher, "JOIN:team/b:alice").await;
    let _alice = signed_in(&server, "team/b", "alice").await;
    assert_eq!(
        members(&mut watcher, "team/b").await,
        vec![("alice".into(), 2), ("watcher".into(), 1)]
    );
    // Both gone, and back within the grace: neither a leave nor a join.
    drop(plain);
    drop(_alice);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = server.ws(&url).await;
    tokio::time::sleep(wisp::messaging::presence::GRACE + Duration::from_secs(1)).await;
    let lines = drain(&mut watcher).await;
    assert!(lines.iter().all(|l| !l.contains("alice")), "{lines:?}");
    assert_eq!(
        members(&mut watcher, "team/b").await,
        vec![("alice".into(), 1), ("watcher".into(), 1)]
    );
    // Gone for good: one leave, after the grace.
    drop(back);
    until(&mut watcher, "LEAVE:team/b:alice").await;
    assert_eq!(
        members(&mut watcher, "team/b").await,
        vec![("watcher".into(), 1)]
    );
    // A function lists the same, with the Wisp call; a channel without presence is errno 40.
    let reply = server.get("/presence?channel=team/b").await;
    assert_eq!(reply.text(), "watcher:1");
    let reply = server.get("/presence?channel=probe-out").await;
    assert!(reply.text().contains("errno 40"), "{}", reply.text());

    // Presence is per channel with `wisp.presence`, and private channels' lists need a token.
    let mut stranger = server.ws(&format!("ws-{}", scope())).await;
    send(&mut stranger, "PRESENCE:team/b").await;
    let line = next_text(&mut stranger, WAIT).await.unwrap_or_default();
    assert!(
        line.starts_with("ERROR:") && line.contains("AUTH:"),
        "{line}"
    );
    send(&mut stranger, "PRESENCE:room%2Fx").await;
    let line = next_text(&mut stranger, WAIT).await.unwrap_or_default();
    assert!(line.starts_with("PRESENCE:room/x:["), "{line}");
    send(&mut stranger, "PRESENCE:probe-out").await;
    let line = next_text(&mut stranger, WAIT).await.unwrap_or_default();
    assert!(line.contains("keeps no presence"), "{line}");
}

#[tokio::test]
async fn typing_and_signals_are_delivered_live_rate_limited_and_never_kept() {
    let p = project();
    let server = Server::start_with(p.path(), config()).await;
    let path = format!("ws-{}", scope());
    let mut alice = server.ws(&path).await;
    let mut bob = server.ws(&path).await;
    for ws in [&mut alice, &mut bob] {
        send(ws, "SUBSCRIBE:room/t").await;
    }
    send(&mut alice, "PUBLISH:room/t:kept").await;
    for ws in [&mut alice, &mut bob] {
        until(ws, "MSG:room/t:kept").await;
    }
    // A burst of typing: one indicator gets through, to the others only.
    for _ in 0..20 {
        send(&mut bob, "USER_TYPING:room/t").await;
    }
    send(&mut bob, "SIGNAL:room/t:cursor at 3").await;
    let before = until(&mut alice, "MSG:room/t:cursor at 3").await;
    let typing: Vec<&String> = before
        .iter()
        .filter(|l| l.starts_with("USER_TYPING:"))
        .collect();
    assert_eq!(typing.len(), 1, "{before:?}");
    assert!(
        typing[0].starts_with("USER_TYPING:room/t:anon-"),
        "{typing:?}"
    );
    let own = until(&mut bob, "MSG:room/t:cursor at 3").await;
    assert!(
        own.iter().all(|l| !l.starts_with("USER_TYPING:")),
        "{own:?}"
    );
    // Typing where one is not subscribed is refused.
    send(&mut bob, "USER_TYPING:room/elsewhere").await;
    let line = next_text(&mut bob, WAIT).await.unwrap_or_default();
    assert!(line.starts_with("ERROR:not subscribed"), "{line}");

    // A newcomer replays the history: the kept message, no typing, no signal.
    let mut carol = server.ws(&path).await;
    send(&mut carol, "SUBSCRIBE:room/t").await;
    send(&mut carol, "PUBLISH:room/t:carol here").await;
    let replayed = until(&mut carol, "MSG:room/t:carol here").await;
    let messages: Vec<&String> = replayed.iter().filter(|l| l.starts_with("MSG:")).collect();
    assert_eq!(messages, vec!["MSG:room/t:kept"], "{replayed:?}");
    // A function's ephemeral publish: live to the subscribers, not kept either.
    let reply = server
        .post("/ephemeral?channel=room/t", "from a function")
        .await;
    assert_eq!(reply.text(), "published");
    until(&mut carol, "MSG:room/t:from a function").await;
    // A plain socket's catch-up has the kept messages only.
    let mut plain = server
        .ws(&format!("{}?last=10", wisp_e2e::ws_path("room/t")))
        .await;
    assert_eq!(next_text(&mut plain, WAIT).await.as_deref(), Some("kept"));
    assert_eq!(
        next_text(&mut plain, WAIT).await.as_deref(),
        Some("carol here")
    );
    assert_eq!(next_text(&mut plain, QUIET).await, None);
    // On a channel no resource serves: refused, errno 21.
    let reply = server.post("/ephemeral?channel=nowhere", "x").await;
    assert!(reply.text().contains("errno 21"), "{}", reply.text());
}

#[tokio::test]
async fn presence_survives_a_storm_of_connects_and_disconnects() {
    let p = project();
    let server = Server::start_with(p.path(), config()).await;
    let mut watcher = server.ws(&format!("ws-{}", scope())).await;
    send(&mut watcher, "SUBSCRIBE:room/storm").await;
    let path = wisp_e2e::ws_path("room/storm");
    let stayer = server.ws(&path).await;
    // 2,000 sockets come and go as fast as this client can make them.
    let started = std::time::Instant::now();
    let mut joined = 0;
    for _ in 0..40 {
        let mut batch = Vec::new();
        for _ in 0..50 {
            batch.push(server.ws(&path).await);
        }
        joined += batch.len();
        drop(batch);
    }
    let rate = joined as f64 / started.elapsed().as_secs_f64();
    eprintln!("{joined} connects and disconnects at {rate:.0}/s");
    // Every one left again (after the grace): the list is back to the stayer and the watcher.
    tokio::time::sleep(wisp::messaging::presence::GRACE + Duration::from_secs(1)).await;
    // The watcher was told of each join with its leave.
    let lines = drain(&mut watcher).await;
    let joins = lines.iter().filter(|l| l.starts_with("JOIN:")).count();
    let leaves = lines.iter().filter(|l| l.starts_with("LEAVE:")).count();
    assert_eq!(
        joins,
        joined + 2,
        "every socket, the stayer and the watcher joined"
    );
    assert_eq!(
        leaves, joined,
        "every socket but the stayer and the watcher left"
    );
    let list = members(&mut watcher, "room/storm").await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|(_, n)| *n == 1), "{list:?}");
    drop(stayer);
}

#[tokio::test]
async fn presence_and_private_messages_span_two_nodes_and_a_killed_nodes_members_leave() {
    let nats = NatsServer::start().await;
    let p = project();
    let node = |id: &str| NatsConfig {
        servers: vec![nats.url()],
        node_id: id.to_owned(),
        queue: Default::default(),
    };
    let one = Server::start_node_with(p.path(), node("one"), config()).await;
    let mut two = Server::start_node_with(p.path(), node("two"), config()).await;
    let mut events = one.ws(&wisp_e2e::ws_path("probe-out")).await;
    let mut alice = signed_in(&one, "team/c", "alice").await;
    let mut bob = signed_in(&two, "team/c", "bob").await;
    until(&mut alice, "JOIN:team/c:bob").await;
    // Bob's node may have heard of alice before bob subscribed: then his list says so.
    let list = members(&mut bob, "team/c").await;
    assert_eq!(list, vec![("alice".into(), 1), ("bob".into(), 1)]);
    assert_eq!(
        members(&mut alice, "team/c").await,
        vec![("alice".into(), 1), ("bob".into(), 1)]
    );
    // Each node's subscriptions reach NATS in their own time: said again until heard.
    retried(
        &mut alice,
        &mut bob,
        "PUBLISH:@bob:across",
        "MSG:@alice:across",
    )
    .await;
    retried(
        &mut bob,
        &mut alice,
        "USER_TYPING:team/c",
        "USER_TYPING:team/c:bob",
    )
    .await;

    // Node two dies with bob on it: bob leaves node one's list.
    let killed = std::time::Instant::now();
    two.kill();
    let deadline = wisp::messaging::presence::EXPIRY + wisp::messaging::presence::GRACE;
    let mut line = String::new();
    while line != "LEAVE:team/c:bob" {
        line = next_text(&mut alice, deadline + Duration::from_secs(5))
            .await
            .expect("bob's leave");
    }
    eprintln!("bob left {:?} after his node died", killed.elapsed());
    assert_eq!(
        members(&mut alice, "team/c").await,
        vec![("alice".into(), 1)]
    );

    // The function was told of each join and of bob's leave, once each, whichever node ran it.
    let mut told = Vec::new();
    while told.len() < 3 {
        let line = next_text(&mut events, WAIT)
            .await
            .expect("a presence event");
        let json = line.strip_prefix("seen:team/c:").expect("from the greeter");
        let event: serde_json::Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(event["channel"], "team/c");
        told.push(format!(
            "{} {}",
            event["event"].as_str().unwrap(),
            event["user"].as_str().unwrap()
        ));
    }
    told[..2].sort();
    assert_eq!(told, ["join alice", "join bob", "leave bob"]);
    assert_eq!(next_text(&mut events, QUIET).await, None, "told once");
}

/// Sends `command` on `from` until `to` gets `want` (once a second, as typing allows).
async fn retried(from: &mut WsClient, to: &mut WsClient, command: &str, want: &str) {
    for _ in 0..10 {
        send(from, command).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1100);
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, next_text(to, WAIT)).await {
            if line == want {
                return;
            }
        }
    }
    panic!("{want:?} never arrived");
}
