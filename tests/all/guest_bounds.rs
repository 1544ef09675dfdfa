//! What a guest (or a client driving one) can make the host hold: the
//! subscriptions a function keeps.

use std::time::{Duration, Instant};
use wisp::messaging::functions::SubscriptionLimits;
use wisp_e2e::{
    next_text, probe_project, publish, test_config, test_wasm, ws_path, Project, Server,
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
