//! Hostile HTTP clients: slow and malformed bodies, missing or doubled Host headers,
//! huge queries, and clients that stall mid-head at shutdown. Each gets a specific
//! status (or a prompt close) from raw TCP, without help from a well-behaved client.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wisp_e2e::{test_config, test_wasm, Project, Server};

/// `POST /body` (reads the whole body), `GET /query` (lists the query), `GET /code`
/// (answers `?code=`), `GET /where` on `a.example` only, and `GET /ok`.
fn project() -> Project {
    let abi = test_wasm("abi");
    let p = Project::new();
    p.http_function("body", "POST", "/body", "body", &abi);
    p.http_function("query", "GET", "/query", "query", &abi);
    p.http_function("code", "GET", "/code", "code", &abi);
    p.http_function("ok", "GET", "/ok", "ok", &test_wasm("faults"));
    p.file("domains/main.yaml", "fqdn: a.example\n");
    p.file(
        "functions/scoped.yaml",
        "source: .\ntrigger:\n  type: https\n  method: GET\n  paths: [/where]\n  domains: [main]\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: code\n",
    );
    p.artifact("scoped", &abi);
    p
}

/// Sends `request` as is on a fresh connection and reads until the server closes it
/// (at most 10 s): the status, if a status line came, and everything received.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (Option<u16>, String) {
    wisp_e2e::raw_exchange(addr, request, Duration::from_secs(10)).await
}

/// A client that sent the head of a 100,000-byte `POST /body` and one byte of it.
async fn slow_body(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /body HTTP/1.1\r\nHost: wisp\r\nContent-Length: 100000\r\n\r\nx")
        .await
        .expect("write a head");
    stream
}

#[tokio::test]
async fn slow_bodies_do_not_hold_invocation_slots() {
    let p = project();
    let options = wisp::load::LoadOptions {
        invocations: wisp::runtime::deployment::InvocationLimits {
            concurrent: 2,
            queue: 0,
            queue_wait: Duration::from_millis(100),
        },
        cache: wisp::runtime::cache::ModuleCache::disabled(),
    };
    let server = Server::start_loaded(p.path(), &options, test_config()).await;
    let mut slow = Vec::new();
    for _ in 0..6 {
        slow.push(slow_body(server.addr).await);
    }
    // Let the server take in every head before the probe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, answer) = tokio::time::timeout(
        Duration::from_secs(3),
        wisp_e2e::raw_get(server.addr, "/ok"),
    )
    .await
    .expect("GET /ok is answered while the slow bodies trickle in");
    assert_eq!(status, Some(200), "{answer}");
    drop(slow);
}

#[tokio::test]
async fn a_stalled_body_gets_408() {
    let p = project();
    let mut config = test_config();
    config.http.request_body_idle = Duration::from_millis(300);
    let server = Server::start_with(p.path(), config).await;
    let (status, answer) = exchange(
        server.addr,
        b"POST /body HTTP/1.1\r\nHost: wisp\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await;
    assert_eq!(status, Some(408), "{answer}");
    // A body that keeps coming, slower than the idle timeout, is also cut off by the
    // whole-body deadline.
    let mut config = test_config();
    config.http.request_body_time = Duration::from_millis(300);
    let server = Server::start_with(p.path(), config).await;
    let mut stream = slow_body(server.addr).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut buf = [0u8; 1024];
            tokio::select! {
                n = stream.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    let _ = stream.write_all(b"y").await;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the trickling body was not cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
}

#[tokio::test]
async fn a_malformed_chunked_body_gets_400_before_the_function_runs() {
    let p = project();
    let server = Server::start(p.path()).await;
    let (status, answer) = exchange(
        server.addr,
        b"POST /body HTTP/1.1\r\nHost: wisp\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(400), "{answer}");
    // A well-formed chunked body still reaches the function whole.
    let (status, answer) = exchange(
        server.addr,
        b"POST /body HTTP/1.1\r\nHost: wisp\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(200), "{answer}");
    assert!(answer.ends_with("len=5\nhello"), "{answer}");
}

#[tokio::test]
async fn http_1_1_requests_need_exactly_one_host() {
    let p = project();
    let server = Server::start(p.path()).await;
    let (status, answer) = exchange(
        server.addr,
        b"GET /code?code=201 HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(400), "no Host: {answer}");
    let (status, answer) = exchange(
        server.addr,
        b"GET /code?code=201 HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(400), "two Hosts: {answer}");
    // HTTP/1.0 has no Host requirement.
    let (status, answer) = exchange(server.addr, b"GET /code?code=201 HTTP/1.0\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.0 201 ") || status == Some(201),
        "{answer}"
    );
}

#[tokio::test]
async fn an_absolute_form_target_routes_by_its_authority() {
    let p = project();
    let server = Server::start(p.path()).await;
    let (status, answer) = exchange(
        server.addr,
        b"GET http://a.example/where?code=201 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(201), "{answer}");
    let (status, answer) = exchange(
        server.addr,
        b"GET http://other.example/where?code=201 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(404), "{answer}");
}

/// `/query?p0=0&p1=1…` with `n` parameters.
fn query_of(n: usize) -> String {
    let pairs: Vec<String> = (0..n).map(|i| format!("p{i}={i}")).collect();
    format!("/query?{}", pairs.join("&"))
}

#[tokio::test]
async fn too_many_query_parameters_get_414() {
    let p = project();
    let server = Server::start(p.path()).await;
    let max = wisp::abi::http_event::MAX_QUERY_PARAMS;
    let reply = server.get(&query_of(max)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text().lines().count(),
        max + 1,
        "each name, and `missing`"
    );
    let reply = server.get(&query_of(max + 1)).await;
    assert_eq!(reply.status, 414, "{}", reply.text());
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let p = project();
    let server = Server::start(p.path()).await;
    let head = |n: usize| {
        let mut head = String::from("GET /ok HTTP/1.1\r\nHost: wisp\r\nConnection: close\r\n");
        for i in 0..n {
            head += &format!("x-h{i}: {i}\r\n");
        }
        head + "\r\n"
    };
    let max = wisp::server::MAX_HEADERS;
    // Host and Connection count too.
    let (status, answer) = exchange(server.addr, head(max - 2).as_bytes()).await;
    assert_eq!(status, Some(200), "{answer}");
    let (status, answer) = exchange(server.addr, head(max - 1).as_bytes()).await;
    assert_eq!(status, Some(431), "{answer}");
}

#[tokio::test]
async fn shutdown_closes_idle_and_half_sent_connections_at_once() {
    let p = project();
    let mut server = Server::start(p.path()).await;
    assert_eq!(test_config().drain, Duration::from_secs(10));
    // Half a request head, a connection that sent nothing, and one idle on keep-alive.
    let mut half = TcpStream::connect(server.addr).await.expect("connect");
    half.write_all(b"GET /ok HTTP/1.1\r\nHost: wi")
        .await
        .expect("write half a head");
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /ok HTTP/1.1\r\nHost: wisp\r\n\r\n")
        .await
        .expect("write a request");
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.expect("read the answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
    // Let the server take in the half head.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stopped = server.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(3), stopped)
        .await
        .expect("the server stopped well before its 10 s drain")
        .expect("server task");
    for stream in [&mut half, &mut silent, &mut idle] {
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the connection was closed"
        );
    }
}

/// Bodies are read whole before their function runs, so the bytes all connections hold
/// at once are bounded: past `max_buffered_bodies`, 503 with `Retry-After`; a body's
/// bytes come back once its invocation is over.
#[tokio::test]
async fn request_bodies_in_memory_are_bounded_in_all() {
    let p = project();
    let mut config = test_config();
    config.http.max_buffered_bodies = 64;
    let server = Server::start_with(p.path(), config).await;
    let post = |len: usize| {
        format!(
            "POST /body HTTP/1.1\r\nHost: wisp\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n{}",
            "x".repeat(len)
        )
    };
    let (status, answer) = exchange(server.addr, post(100).as_bytes()).await;
    assert_eq!(status, Some(503), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    for _ in 0..3 {
        let (status, answer) = exchange(server.addr, post(40).as_bytes()).await;
        assert_eq!(
            status,
            Some(200),
            "each body's bytes were given back: {answer}"
        );
    }
}
