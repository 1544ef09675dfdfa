//! What a guest (or a client driving one) can make the host hold or write: the
//! subscriptions a function keeps, and the lines it puts into the host's log.

use std::time::{Duration, Instant};
use wisp::messaging::functions::SubscriptionLimits;
use wisp_e2e::{
    guest_log, next_text, probe_project, publish, test_config, test_wasm, ws_path, Project, Server,
};

/// How long to wait for something that must happen.
const WAIT: Duration = Duration::from_secs(20);

/// The probe project with its `dual` export on `GET /dual?channel=`: subscribes the
/// function to the channel, and reports each message as `dual:<channel>:<data>` on
/// `probe-out`.
fn dual_project() -> Project {
    let p = probe_project();
    p.http_function("dual", "GET", "/dual", "dual", &test_wasm("pubsub_probe"));
    p
}

#[tokio::test]
async fn subscribing_past_the_bound_gets_errno_20() {
    let p = dual_project();
    let server = Server::start_with(p.path(), test_config()).await;
    // The default bound, as `serve` runs it.
    let bound = SubscriptionLimits::default().per_function;
    for room in 0..bound {
        let reply = server.get(&format!("/dual?channel=room/{room}")).await;
        assert_eq!(reply.text(), "subscribed", "room/{room}");
    }
    let reply = server.get("/dual?channel=room/one-more").await;
    assert_eq!(reply.status, 500);
    assert!(reply.text().ends_with("(errno 20)"), "{}", reply.text());
    // A channel already held is not a new subscription.
    let reply = server.get("/dual?channel=room/0").await;
    assert_eq!(reply.text(), "subscribed");
}

/// A WAT guest whose `flood` export logs `lines` lines through `env._log`.
fn flood_wat(lines: u32) -> String {
    format!(
        r#"(module
            (import "env" "_log" (func $log (param i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "flood")
            (func (export "flood") (param $id i32) (result i32)
                (local $i i32)
                (loop $again
                    (call $log (i32.const 0) (i32.const 5))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $again (i32.lt_u (local.get $i) (i32.const {lines}))))
                (i32.const 0)))"#
    )
}

/// The kept log lines that name `function`.
fn lines_of(text: &str, function: &str) -> Vec<String> {
    let tag = format!("function={function}");
    text.lines()
        .filter(|line| line.contains(&tag))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_guest_logging_in_a_loop_is_rate_limited() {
    let logs = guest_log();
    let p = Project::new();
    let lines = 20_000;
    let wasm = p.wat("log_flood", &flood_wat(lines));
    p.http_function("log_flood", "GET", "/flood", "flood", &wasm);
    let server = Server::start_with(p.path(), test_config()).await;
    let reply = server.get("/flood").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let kept = lines_of(&logs.text(), "log_flood");
    assert!(
        kept.len() < lines as usize / 4,
        "{} of {lines} lines were written",
        kept.len()
    );
    assert!(
        kept.iter().any(|line| line.contains("suppressing")),
        "no line says lines were suppressed"
    );
}

#[tokio::test]
async fn guest_log_lines_are_written_escaped() {
    let logs = guest_log();
    let p = Project::new();
    let wasm = p.wat(
        "log_forger",
        r#"(module
            (import "env" "_log" (func $log (param i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "hello\nwisp: forged\1b[31mred\tend")
            (func (export "forge") (param $id i32) (result i32)
                (call $log (i32.const 0) (i32.const 30))
                (i32.const 0)))"#,
    );
    p.http_function("log_forger", "GET", "/forge", "forge", &wasm);
    let server = Server::start_with(p.path(), test_config()).await;
    let reply = server.get("/forge").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = logs.text();
    let kept = lines_of(&text, "log_forger");
    assert_eq!(kept.len(), 1, "one line, not a forged second one: {kept:?}");
    assert!(
        kept[0].contains(r"hello\nwisp: forged\u{1b}[31mred"),
        "{:?}",
        kept[0]
    );
    assert!(
        kept[0].contains("red\tend"),
        "a tab stays a tab: {:?}",
        kept[0]
    );
    assert!(
        !text.contains("wisp: forged\u{1b}"),
        "the escape was written raw"
    );
}

/// Subscribes the `dual` function to `channel`, again and again, until that works
/// (a subscription it held was dropped) or [`WAIT`] has passed.
async fn subscribe_once_there_is_room(server: &Server, channel: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = server.get(&format!("/dual?channel={channel}")).await;
        if reply.text() == "subscribed" {
            return;
        }
        assert!(reply.text().ends_with("(errno 20)"), "{}", reply.text());
        assert!(
            Instant::now() < deadline,
            "{channel}: no subscription was dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_subscription_nothing_uses_is_dropped_and_can_be_made_again() {
    let p = dual_project();
    let mut config = test_config();
    config.subscriptions = SubscriptionLimits {
        per_function: 1,
        idle: Duration::from_secs(2),
    };
    let server = Server::start_with(p.path(), config).await;
    let mut probe = server.ws(&ws_path("probe-out")).await;
    assert_eq!(
        server.get("/dual?channel=room/a").await.text(),
        "subscribed"
    );
    // room/a holds the function's one subscription...
    let refused = server.get("/dual?channel=room/b").await;
    assert!(refused.text().ends_with("(errno 20)"), "{}", refused.text());
    // ...until, unused, it is dropped.
    subscribe_once_there_is_room(&server, "room/b").await;
    // Then room/b's is, and room/a can be subscribed again, and delivers.
    subscribe_once_there_is_room(&server, "room/a").await;
    assert_eq!(publish(&server, "room/a", "again").await.status, 200);
    assert_eq!(
        next_text(&mut probe, WAIT).await.as_deref(),
        Some("dual:room/a:again")
    );
}
