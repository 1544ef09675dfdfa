//! Limits and shutdown: each limit gives a specific status or close code.

use bytes::Bytes;
use futures_util::SinkExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wisp_e2e::{test_config, test_wasm, ws_path, Project, Server};

fn project() -> Project {
    let p = Project::new();
    p.file("messaging/rooms.yaml", "matcher: room\nwebsocket: true\n");
    p.http_function("sleepy", "GET", "/sleepy", "sleepy", &test_wasm("faults"));
    p.http_function("ok", "GET", "/ok", "ok", &test_wasm("faults"));
    p
}

#[tokio::test]
async fn connections_past_the_per_client_limit_get_503() {
    let p = project();
    let mut config = test_config();
    config.connections.max_per_client = 2;
    let server = Server::start_with(p.path(), config).await;
    let _a = server.ws(&ws_path("room")).await;
    let _b = server.ws(&ws_path("room")).await;
    match server.try_ws(&ws_path("room")).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(
                response.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"1"[..])
            );
        }
        Err(other) => panic!("expected 503, got {other}"),
        Ok(_) => panic!("a third connection was accepted"),
    }
}

#[tokio::test]
async fn invocations_past_the_slots_and_queue_get_503_with_retry_after() {
    let p = project();
    let options = wisp::load::LoadOptions {
        invocations: wisp::runtime::deployment::InvocationLimits {
            concurrent: 1,
            queue: 0,
            queue_wait: Duration::from_millis(100),
        },
        cache: wisp::runtime::cache::ModuleCache::disabled(),
    };
    let server = Server::start_loaded(p.path(), &options, test_config()).await;
    let server = std::sync::Arc::new(server);
    let busy = {
        let server = server.clone();
        tokio::spawn(async move { server.get("/sleepy?ms=1000").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = server.get("/ok").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("x-wisp-error"), Some("busy"));
    assert_eq!(busy.await.expect("first request").text(), "slept");
    assert_eq!(server.get("/ok").await.text(), "ok");
}

#[tokio::test]
async fn a_client_publishing_too_fast_is_closed_with_1008() {
    let p = project();
    let mut config = test_config();
    config.websocket.publish_rate = 20;
    let server = Server::start_with(p.path(), config).await;
    let mut ws = server.ws(&ws_path("room")).await;
    for i in 0..100 {
        if ws.send(Message::text(i.to_string())).await.is_err() {
            break;
        }
    }
    let code = wisp_e2e::close_code(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(code, Some(CloseCode::Policy));
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_closes_websockets_with_1001() {
    let p = project();
    let mut server = Server::start(p.path()).await;
    let mut ws = server.ws(&ws_path("room")).await;
    let url = server.url("/sleepy?ms=500");
    let in_flight = tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<Bytes>>();
        let response = client
            .get(url.parse().expect("uri"))
            .await
            .expect("response");
        response.status().as_u16()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let stopped = server.begin_shutdown();

    let close = wisp_e2e::close_code(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(close, Some(CloseCode::Away));
    assert_eq!(
        in_flight.await.expect("request task"),
        200,
        "the in-flight request was cut off"
    );
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the server stopped within the drain time")
        .expect("server task");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
}
