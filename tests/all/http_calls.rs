//! One end-to-end test per HTTP host call, through the `abi` test guest.

use bytes::Bytes;
use hyper::Method;
use wisp_e2e::{test_wasm, Project, Server};

/// A server with every export of the `abi` guest on `/<export>`.
async fn abi_server() -> (Project, Server) {
    let wasm = test_wasm("abi");
    let p = Project::new();
    for (export, method) in [
        ("info", "GET"),
        ("query", "GET"),
        ("headers", "GET"),
        ("body", "POST"),
        ("redirect", "GET"),
        ("flush", "GET"),
        ("code", "GET"),
        ("events", "GET"),
    ] {
        p.http_function(export, method, &format!("/{export}"), export, &wasm);
    }
    let server = Server::start(p.path()).await;
    (p, server)
}

#[tokio::test]
async fn method_host_path_and_user_agent() {
    let (_p, server) = abi_server().await;
    let reply = server
        .send(
            Method::GET,
            "/info",
            &[("User-Agent", "wisp-test/1.0")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        format!(
            "method=GET\nhost={}\npath=/info\nua=wisp-test/1.0\n",
            server.addr
        )
    );
}

#[tokio::test]
async fn query_values_and_names() {
    let (_p, server) = abi_server().await;
    let reply = server.get("/query?b=2&a=hello+world&c=%2Fx").await;
    assert_eq!(reply.text(), "a=hello world\nb=2\nc=/x\nmissing=ok:\n");
}

#[tokio::test]
async fn request_headers_and_response_headers() {
    let (_p, server) = abi_server().await;
    let reply = server
        .send(
            Method::GET,
            "/headers",
            &[("X-Test", "value 1")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert!(text.contains("\nx-test\n"), "{text}");
    assert!(text.contains("host\n"), "{text}");
    assert!(text.ends_with("x-test=value 1\n"), "{text}");
    assert_eq!(reply.header("x-reply"), Some("yes"));
    let multi: Vec<&str> = reply
        .headers
        .get_all("x-multi")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(multi, ["a", "b"]);
}

#[tokio::test]
async fn body_is_read_in_small_chunks_to_the_end() {
    let (_p, server) = abi_server().await;
    let body = "the quick brown fox jumps over the lazy dog".repeat(100);
    let reply = server.post("/body", body.clone()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), format!("len={}\n{body}", body.len()));
    // An empty body reads as EOF at once.
    assert_eq!(server.post("/body", "").await.text(), "len=0\n");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let wasm = test_wasm("abi");
    let p = Project::new();
    p.http_function("body", "POST", "/body", "body", &wasm);
    let mut config = wisp_e2e::test_config();
    config.http.max_request_body = 1000;
    let server = Server::start_with(p.path(), config).await;
    assert_eq!(server.post("/body", vec![b'x'; 1000]).await.status, 200);
    let reply = server.post("/body", vec![b'x'; 1001]).await;
    assert_eq!(reply.status, 413);
    assert!(
        reply.text().contains("limit of 1000 bytes"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn redirects_temporary_permanent_and_custom() {
    let (_p, server) = abi_server().await;
    for (kind, status) in [("temporary", 307), ("permanent", 308), ("301", 301)] {
        let reply = server.get(&format!("/redirect?kind={kind}")).await;
        assert_eq!(reply.status, status, "{kind}");
        assert_eq!(reply.header("location"), Some("/target"));
    }
}

#[tokio::test]
async fn flush_streams_the_head_and_all_parts() {
    let (_p, server) = abi_server().await;
    let reply = server.get("/flush").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "part1part2");
    // A flushed response is streamed, not sent with a precomputed length.
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
}

#[tokio::test]
async fn return_code_sets_the_status() {
    let (_p, server) = abi_server().await;
    let reply = server.get("/code?code=418").await;
    assert_eq!(reply.status, 418);
    assert_eq!(reply.text(), "code");
}

#[tokio::test]
async fn event_type_is_http() {
    let (_p, server) = abi_server().await;
    assert_eq!(
        server.get("/events").await.text(),
        "type=1\nhttp=ok\npubsub=err\n"
    );
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let (_p, server) = abi_server().await;
    // The client pools one connection per host; sequential requests reuse it.
    for i in 0..20 {
        let reply = server.get(&format!("/code?code={}", 200 + i)).await;
        assert_eq!(reply.status.as_u16(), 200 + i);
    }
}

#[tokio::test]
async fn a_client_that_shuts_down_its_sending_side_still_gets_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A function that takes a while, so the client's FIN arrives while it runs.
    let p = Project::new();
    p.http_function("sleepy", "GET", "/sleepy", "sleepy", &test_wasm("faults"));
    let server = Server::start(p.path()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /sleepy?ms=200 HTTP/1.1\r\nHost: wisp\r\n\r\n")
        .await
        .expect("write a request");
    // The request is complete; the client says it will send nothing more.
    stream.shutdown().await.expect("shut down the sending side");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes within 30 s")
    .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.ends_with("slept"), "{answer}");
}

/// A request body sent in chunks with no Content-Length.
struct Chunks(std::vec::IntoIter<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.0
                .next()
                .map(|chunk| Ok(hyper::body::Frame::data(chunk))),
        )
    }
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_gets_413() {
    let wasm = test_wasm("abi");
    let p = Project::new();
    p.http_function("body", "POST", "/body", "body", &wasm);
    let mut config = wisp_e2e::test_config();
    config.http.max_request_body = 1000;
    let server = Server::start_with(p.path(), config).await;

    // No Content-Length: the limit is found while the guest reads.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Chunks>();
    let send = |n: usize| {
        let chunks = vec![Bytes::from(vec![b'y'; 400]); n];
        let req = hyper::Request::post(server.url("/body"))
            .body(Chunks(chunks.into_iter()))
            .expect("request");
        client.request(req)
    };
    assert_eq!(send(2).await.expect("response").status(), 200);
    assert_eq!(send(4).await.expect("response").status(), 413);
}

#[tokio::test]
async fn functions_with_domains_answer_only_their_hosts() {
    let wasm = test_wasm("abi");
    let p = Project::new();
    p.file("domains/main.yaml", "fqdn: api.example.com\n");
    p.file(
        "functions/scoped.yaml",
        "source: .\ntrigger:\n  type: https\n  method: GET\n  paths: [/where]\n  domains: [main]\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: code\n",
    );
    p.artifact("scoped", &wasm);
    let server = Server::start(p.path()).await;
    let reply = server
        .send(
            Method::GET,
            "/where?code=201",
            &[("Host", "API.example.com:8080")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 201);
    let reply = server
        .send(
            Method::GET,
            "/where?code=201",
            &[("Host", "other.example.com")],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, 404);
}
