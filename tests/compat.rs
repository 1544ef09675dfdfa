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
