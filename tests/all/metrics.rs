//! The admin listener (`--admin-listen`): `/metrics` in the Prometheus text format with
//! each family moving as a real client uses the server, the console's API, and the
//! token. Counts are process-wide and tests run side by side, so each check reads a
//! series of this test's own functions and resources, before and after.

use futures_util::SinkExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wisp::metrics::value;
use wisp::server::admin::AdminSettings;
use wisp_e2e::{close_code, next_text, raw_get, test_config, test_wasm, ws_path, Project, Server};

const WAIT: Duration = Duration::from_secs(10);

/// Functions `NAME_ok`, `NAME_trap`, `NAME_spin` (100 ms to run), `NAME_publish`
/// (`POST /m/publish?channel=`); resource `NAME`, channels `NAME/*` keeping their
/// newest 3 messages. Each test has a name of its own, so its series are its own.
fn project(name: &str) -> Project {
    let p = Project::new();
    let faults = test_wasm("faults");
    for export in ["ok", "trap"] {
        p.http_function(
            &format!("{name}_{export}"),
            "GET",
            &format!("/m/{export}"),
            export,
            &faults,
        );
    }
    p.http_function_limited(
        &format!("{name}_spin"),
        "GET",
        "/m/spin",
        "spin",
        &faults,
        "100ms",
        "64MB",
    );
    let probe = test_wasm("pubsub_probe");
    p.http_function(
        &format!("{name}_publish"),
        "POST",
        "/m/publish",
        "publish",
        &probe,
    );
    p.file(
        &format!("messaging/{name}.yaml"),
        &format!("matcher: {name}/*\nwebsocket: true\nwisp:\n  history: {{size: 3}}\n"),
    );
    p
}

async fn start(name: &str, settings: AdminSettings) -> (Project, Server, SocketAddr) {
    wisp::metrics::enable();
    let p = project(name);
    let mut config = test_config();
    // Three 900-byte messages kept are more than a new subscriber may be behind.
    config.websocket.send_queue = 2000;
    let server = Server::start_with(p.path(), config).await;
    let admin = server.admin(settings).await;
    (p, server, admin)
}

/// `GET path` on the admin listener: the status and the body.
async fn admin_get(admin: SocketAddr, path: &str) -> (u16, String) {
    let (status, answer) = raw_get(admin, path).await;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status.expect("a status line"), body.to_owned())
}

async fn scrape(admin: SocketAddr) -> String {
    let (status, body) = admin_get(admin, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(text, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn every_family_moves_as_clients_use_the_server() {
    let (_p, server, admin) = start("metered", AdminSettings::default()).await;
    let before = scrape(admin).await;

    assert_eq!(server.get("/m/ok").await.status, 200);
    assert_eq!(server.get("/m/ok").await.status, 200);
    assert_eq!(server.get("/m/trap").await.status, 500);
    assert_eq!(server.get("/m/spin").await.status, 504);
    let mut socket = server.ws(&ws_path("metered/room")).await;
    let sent = server
        .post("/m/publish?channel=metered/room", "hello")
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert_eq!(next_text(&mut socket, WAIT).await.as_deref(), Some("hello"));

    let after = scrape(admin).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        count(&after, name, labels) - count(&before, name, labels)
    };
    assert_eq!(
        moved(
            "wisp_http_requests_total",
            &[("function", "metered_ok"), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "wisp_http_requests_total",
            &[("function", "metered_trap"), ("status", "500")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "wisp_http_request_duration_seconds_count",
            &[("function", "metered_ok"), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "wisp_invocations_total",
            &[("function", "metered_ok"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "wisp_invocations_total",
            &[("function", "metered_trap"), ("outcome", "trap")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "wisp_invocations_total",
            &[("function", "metered_spin"), ("outcome", "timeout")]
        ),
        1.0
    );
    assert_eq!(
        moved("wisp_messages_published_total", &[("resource", "metered")]),
        1.0
    );
    assert_eq!(
        moved("wisp_messages_delivered_total", &[("resource", "metered")]),
        1.0
    );
    assert!(
        moved(
            "wisp_websocket_connections_opened_total",
            &[("kind", "channel")]
        ) >= 1.0
    );
    assert!(
        count(&after, "wisp_websocket_connections", &[("kind", "channel")]) >= 1.0,
        "the socket is open"
    );
    assert!(
        moved("wisp_state_operations_total", &[("operation", "append")]) >= 1.0,
        "history was kept"
    );
    assert_eq!(
        count(&after, "wisp_cluster_link", &[("state", "off")]),
        1.0,
        "one node"
    );
    assert!(
        after.contains("# TYPE wisp_http_request_duration_seconds histogram"),
        "{after}"
    );
}

#[tokio::test]
async fn a_slow_consumer_closed_is_counted() {
    let (_p, server, admin) = start("slow", AdminSettings::default()).await;
    let big = "x".repeat(900);
    for _ in 0..3 {
        let sent = server
            .post("/m/publish?channel=slow/big", big.clone())
            .await;
        assert_eq!(sent.status, 200);
    }
    let before = scrape(admin).await;
    let path = format!(
        "ws-{}",
        wisp::messaging::hash::project_hash("test-project", None)
    );
    let mut ws = server.ws(&path).await;
    ws.send(Message::text("SUBSCRIBE:slow/big")).await.unwrap();
    assert_eq!(close_code(&mut ws, WAIT).await.map(u16::from), Some(1008));
    let after = scrape(admin).await;
    let closes = |text: &str| {
        count(
            text,
            "wisp_slow_consumer_closes_total",
            &[("kind", "broker")],
        )
    };
    assert!(closes(&after) > closes(&before), "{after}");
}

#[tokio::test]
async fn the_console_api_lists_routes_resources_channels_and_recent_invocations() {
    let (_p, server, admin) = start("listed", AdminSettings::default()).await;
    let _socket = server.ws(&ws_path("listed/room")).await;
    assert_eq!(server.get("/m/trap").await.status, 500);

    let (status, body) = admin_get(admin, "/api/overview").await;
    assert_eq!(status, 200, "{body}");
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    let routes = overview["routes"].as_array().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r["path"] == "/m/ok" && r["function"] == "listed_ok"),
        "{body}"
    );
    assert!(
        overview["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "listed" && r["history"] == 3),
        "{body}"
    );
    let listed = overview["channels"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c["channel"] == "listed/room" && c["subscribers"] == 1),
        "{body}"
    );

    let (status, body) = admin_get(admin, "/api/recent").await;
    assert_eq!(status, 200, "{body}");
    let recent: serde_json::Value = serde_json::from_str(&body).unwrap();
    let failed = recent["errors"].as_array().unwrap();
    assert!(
        failed
            .iter()
            .any(|i| i["function"] == "listed_trap" && i["outcome"] == "trap"),
        "{body}"
    );

    let (status, page) = admin_get(admin, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>"), "the console page");
    assert_eq!(admin_get(admin, "/nowhere").await.0, 404);
}

#[tokio::test]
async fn the_tail_streams_a_channels_messages() {
    let (_p, server, admin) = start("tailed", AdminSettings::default()).await;
    let url = format!("ws://{admin}/api/tail?channel=tailed/room");
    let (mut tail, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the tail opens");
    // The tail subscribes once it is open; publish until it has seen one.
    let mut seen = None;
    for _ in 0..50 {
        server
            .post("/m/publish?channel=tailed/room", "tailed")
            .await;
        if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(
            Duration::from_millis(200),
            futures_util::StreamExt::next(&mut tail),
        )
        .await
        {
            seen = Some(text.to_string());
            break;
        }
    }
    assert_eq!(seen.as_deref(), Some("tailed"));
    let (status, body) = admin_get(admin, "/api/tail?channel=nowhere/at-all").await;
    assert_eq!(status, 404, "a channel no resource matches: {body}");
}

#[tokio::test]
async fn with_a_token_nothing_is_answered_without_it() {
    let settings = AdminSettings {
        token: Some("s3cret".into()),
        metrics_open: false,
    };
    let (_p, _server, admin) = start("guarded", settings).await;
    for path in ["/metrics", "/", "/api/overview", "/api/recent"] {
        assert_eq!(admin_get(admin, path).await.0, 401, "{path}");
        assert_eq!(
            admin_get(admin, &format!("{path}?token=wrong")).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            admin_get(admin, &format!("{path}?token=s3cret")).await.0,
            200,
            "{path}"
        );
    }
    let request = b"GET /api/overview HTTP/1.1\r\nHost: wisp\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n";
    let (status, _) = wisp_e2e::raw_exchange(admin, request, WAIT).await;
    assert_eq!(status, Some(200), "the token as a bearer header");

    let open = AdminSettings {
        token: Some("s3cret".into()),
        metrics_open: true,
    };
    let (_p, _server, admin) = start("guarded_open", open).await;
    assert_eq!(
        admin_get(admin, "/metrics").await.0,
        200,
        "--admin-metrics-open"
    );
    assert_eq!(admin_get(admin, "/api/overview").await.0, 401);
}

#[tokio::test]
async fn messages_a_function_cannot_keep_up_with_are_dropped_and_counted() {
    wisp::metrics::enable();
    let p = project("flooded");
    // Each message runs for its whole 100 ms timeout: the function falls behind at once.
    p.file(
        "functions/flooded_slow.yaml",
        "source: .\ntrigger:\n  type: pubsub\n  channel: flooded/slow\n\
         execution:\n  timeout: 100ms\n  memory: 64MB\n  call: spin\n",
    );
    p.artifact("flooded_slow", &test_wasm("faults"));
    let mut config = test_config();
    config.websocket.publish_rate = 0;
    let server = Server::start_with(p.path(), config).await;
    let admin = server.admin(AdminSettings::default()).await;
    let before = scrape(admin).await;
    let published = |text: &str| {
        count(
            text,
            "wisp_messages_published_total",
            &[("resource", "flooded")],
        )
    };
    let drops = |text: &str| count(text, "wisp_queue_drops_total", &[("queue", "function")]);

    // A function's queue holds 1,024 messages; 1,500 sent at once overflow it.
    let mut ws = server.ws(&ws_path("flooded/slow")).await;
    for i in 0..1500 {
        ws.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    ws.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let after = loop {
        let now = scrape(admin).await;
        if published(&now) - published(&before) >= 1500.0 {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all 1,500 were published: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // At most 1,024 queued and one running; fewer than 100 can have run by now.
    let dropped = drops(&after) - drops(&before);
    assert!(dropped >= 300.0, "{dropped} dropped: {after}");
}
