//! A guest written against Taubyte's own Rust SDK (`taubyte-sdk` 0.1.6, from the
//! registry, built from source) runs unchanged.

use bytes::Bytes;
use hyper::Method;
use wisp_e2e::{test_wasm, Project, Server};

#[tokio::test]
async fn taubyte_sdk_guest_reads_query_headers_body_and_sets_code() {
    let p = Project::new();
    p.http_function("compat", "POST", "/compat", "compat", &test_wasm("compat"));
    let server = Server::start(p.path()).await;
    let reply = server
        .send(
            Method::POST,
            "/compat?name=taubyte",
            &[("X-Test", "from-test")],
            Bytes::from_static(b"payload bytes"),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("x-compat"), Some("taubyte"));
    assert_eq!(
        reply.text(),
        "hello taubyte; x-test=from-test; body=payload bytes"
    );
}

#[tokio::test]
async fn taubyte_sdk_guest_subscribes_publishes_and_reads_pubsub_events() {
    use wisp_e2e::{next_text, ws_path};
    let wait = std::time::Duration::from_secs(5);
    let p = Project::new();
    let wasm = test_wasm("compat");
    p.file(
        "messaging/all.yaml",
        "channel:\n  regex: true\n  match: \".*\"\nbridges:\n  websocket:\n    enable: true\n",
    );
    p.http_function("compat_http", "GET", "/pubsub", "compat_pubsub_http", &wasm);
    p.pubsub_function(
        "compat_event",
        "compat_pubsub_event",
        "taubyte/news",
        false,
        &wasm,
    );
    let server = Server::start(p.path()).await;

    let mut probe = server.ws(&ws_path("probe-out")).await;
    let mut watcher = server.ws(&ws_path("room/t")).await;
    // Subscribe, publish and WebSocket URL through Taubyte's SDK.
    let reply = server.get("/pubsub?channel=room/t").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), ws_path("room/t"));
    assert_eq!(
        next_text(&mut watcher, wait).await.as_deref(),
        Some("from-taubyte")
    );

    // A pub/sub event read with Taubyte's SDK, on a channel with a `/` in it.
    let mut news = server.ws(&ws_path("taubyte/news")).await;
    use futures_util::SinkExt;
    news.send(tokio_tungstenite::tungstenite::Message::text("headline"))
        .await
        .expect("send");
    assert_eq!(
        next_text(&mut probe, wait).await.as_deref(),
        Some("taubyte-seen:taubyte/news:headline")
    );
}

/// On a private channel Taubyte's `WebSocket().Url()` hands out a URL with a token, which
/// admits its holder: Taubyte guests gate their channels unchanged.
#[tokio::test]
async fn taubyte_sdk_guest_hands_out_a_private_channels_token() {
    use wisp_e2e::{next_text, ws_path};
    let p = Project::new();
    p.file(
        "messaging/secret.yaml",
        "matcher: secret/*\nwebsocket: true\nwisp:\n  private: true\n",
    );
    let wasm = test_wasm("compat");
    p.http_function("compat_http", "GET", "/pubsub", "compat_pubsub_http", &wasm);
    let server = Server::start(p.path()).await;
    let reply = server.get("/pubsub?channel=secret/t").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let url = reply.text();
    assert!(
        url.starts_with(&format!("{}?token=v1.", ws_path("secret/t"))),
        "{url}"
    );
    let mut ws = server.ws(&url).await;
    assert!(
        server.try_ws(&ws_path("secret/t")).await.is_err(),
        "no token, no entry"
    );
    // The guest publishes again on its next call; the token's holder receives it.
    server.get("/pubsub?channel=secret/t").await;
    let wait = std::time::Duration::from_secs(5);
    assert_eq!(
        next_text(&mut ws, wait).await.as_deref(),
        Some("from-taubyte")
    );
}
