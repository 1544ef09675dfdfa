//! The sample project in `config/`, built with `wisp build` and served as a user would.

use bytes::Bytes;
use hyper::Method;
use wisp_e2e::{repo, Server};

async fn sample_server() -> Server {
    let dir = repo().join("config");
    let loaded = wisp::project::load(&dir);
    let project = loaded.project.expect("the sample project is valid");
    wisp::builder::build_project(&project).expect("building the samples");
    Server::start(&dir).await
}

#[tokio::test]
async fn ping_answers_pong() {
    let server = sample_server().await;
    let reply = server.get("/ping").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "pong");
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
