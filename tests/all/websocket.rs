//! Hostile WebSocket clients: handshakes and frames no well-behaved client library
//! would send, written by hand on raw TCP connections, and what Wisp answers.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wisp_e2e::{next_text, publish, ws_path, Server};

/// How long the server may take to answer or close.
const WAIT: Duration = Duration::from_secs(10);

/// A key as RFC 6455's own example has it: the base64 of 16 bytes.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Sends an upgrade request for `path` on `stream` with `headers` (each `Name: value`)
/// and reads the response head, byte by byte so that nothing after it is taken:
/// the status and the head.
async fn upgrade(stream: &mut TcpStream, path: &str, headers: &[&str]) -> (u16, String) {
    let mut request = format!(
        "GET /{path} HTTP/1.1\r\nHost: wisp\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the upgrade request");
    let mut head = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await.expect("the response head");
            head.push(byte);
        }
    });
    read.await.expect("a response head in time");
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
    (status, head)
}

/// A fresh connection to `path` with `headers`: the status of the answer, and the
/// connection.
async fn connect(server: &Server, path: &str, headers: &[&str]) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let (status, head) = upgrade(&mut stream, path, headers).await;
    (status, head, stream)
}

/// A connection upgraded to a WebSocket on `channel`.
async fn joined(server: &Server, channel: &str) -> TcpStream {
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let (status, head, stream) = connect(server, &ws_path(channel), &[key.as_str()]).await;
    assert_eq!(status, 101, "{head}");
    stream
}

/// A client frame: `first` is the first byte (FIN, RSV bits, opcode); masked as a
/// client must, unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    if masked {
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    } else {
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
    }
    out
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// A close frame with this code (0: none given), then whatever followed.
    Close(u16),
    /// End of stream or an error, without a close frame.
    Cut,
}

/// Reads the server's frames (never masked) until a close frame or the end of the
/// connection; `None` if neither came within [`WAIT`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<Ended> {
    let read = async {
        loop {
            let mut header = [0u8; 2];
            if stream.read_exact(&mut header).await.is_err() {
                return Ended::Cut;
            }
            let len = match header[1] & 0x7f {
                126 => match stream.read_u16().await {
                    Ok(len) => u64::from(len),
                    Err(_) => return Ended::Cut,
                },
                127 => match stream.read_u64().await {
                    Ok(len) => len,
                    Err(_) => return Ended::Cut,
                },
                len => u64::from(len),
            };
            let mut payload = vec![0u8; len as usize];
            if stream.read_exact(&mut payload).await.is_err() {
                return Ended::Cut;
            }
            if header[0] & 0x0f == 0x8 {
                let code = payload
                    .get(..2)
                    .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
                return Ended::Close(code);
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.ok()
}

#[tokio::test]
async fn a_client_that_pings_and_never_reads_is_closed_while_the_others_keep_receiving() {
    let p = wisp_e2e::probe_project();
    let mut config = wisp_e2e::test_config();
    config.websocket.send_queue = 64 << 10;
    let server = Server::start_with(p.path(), config).await;
    let mut live = server.ws(&ws_path("room/p")).await;

    // The flooder does the handshake, then only writes pings; its small receive
    // buffer keeps the kernel from absorbing many pongs on its behalf.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut flooder = socket.connect(server.addr).await.expect("connect");
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let (status, head) = upgrade(&mut flooder, &ws_path("room/p"), &[key.as_str()]).await;
    assert_eq!(status, 101, "{head}");
    // Up to 24 MiB of pings (125-byte payloads), far past the 64 KiB bound and the
    // socket buffers; the server cutting the connection off ends it sooner.
    let batch = frame(0x89, &[b'p'; 125], true).repeat(64);
    let flood = tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..3_000 {
            if flooder.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    flood
        .await
        .expect("the server kept reading pings or cut the client off");
    // Reading now: what the socket buffers held, then the end of the connection.
    let ended = read_until_closed(&mut flooder).await;
    match ended {
        Some(Ended::Cut) | Some(Ended::Close(1008)) => {}
        other => panic!("the flooding client was not closed (1008 or cut off): {other:?}"),
    }

    // Everyone else is served as before.
    assert_eq!(publish(&server, "room/p", "still here").await.status, 200);
    assert_eq!(
        next_text(&mut live, WAIT).await.as_deref(),
        Some("still here")
    );
}

#[tokio::test]
async fn a_handshake_with_an_invalid_key_gets_400() {
    let p = wisp_e2e::probe_project();
    let server = Server::start(p.path()).await;
    let path = ws_path("room/k");
    for key in [
        "not a key",
        // The base64 of 3 bytes, and of 18.
        "AAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAA",
        // 16 bytes and one character of junk.
        "dGhlIHNhbXBsZSBub25jZQ==x",
        "dGhlIHNhbXBsZSBub25jZQ=*",
    ] {
        let header = format!("Sec-WebSocket-Key: {key}");
        let (status, head, _) = connect(&server, &path, &[header.as_str()]).await;
        assert_eq!(status, 400, "key {key:?}: {head}");
    }
    let header = format!("Sec-WebSocket-Key: {KEY}");
    let (status, head, _) = connect(&server, &path, &[header.as_str()]).await;
    assert_eq!(status, 101, "{head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455's own example answer: {head}"
    );
}

#[tokio::test]
async fn origins_outside_a_projects_allow_list_get_403() {
    let p = wisp_e2e::probe_project();
    p.file(
        "config.yaml",
        "id: test-project\nname: test\nwisp:\n  origins:\n    - https://example.com\n    - http://localhost:3000\n",
    );
    let server = Server::start(p.path()).await;
    let path = ws_path("room/o");
    let key = format!("Sec-WebSocket-Key: {KEY}");
    for allowed in ["https://example.com", "http://localhost:3000"] {
        let origin = format!("Origin: {allowed}");
        let (status, head, _) = connect(&server, &path, &[key.as_str(), origin.as_str()]).await;
        assert_eq!(status, 101, "{allowed}: {head}");
    }
    for refused in [
        "https://evil.example",
        "http://example.com",
        "https://example.com.evil.example",
        "null",
    ] {
        let origin = format!("Origin: {refused}");
        let (status, head, _) = connect(&server, &path, &[key.as_str(), origin.as_str()]).await;
        assert_eq!(status, 403, "{refused}: {head}");
    }
    // A request with no Origin comes from no page: the list does not apply.
    let (status, head, _) = connect(&server, &path, &[key.as_str()]).await;
    assert_eq!(status, 101, "{head}");
    // Without the list (the default), any origin may connect.
    let open = wisp_e2e::probe_project();
    let server = Server::start(open.path()).await;
    let origin = "Origin: https://evil.example";
    let (status, head, _) = connect(&server, &path, &[key.as_str(), origin]).await;
    assert_eq!(status, 101, "{head}");
}

#[tokio::test]
async fn frames_that_break_the_protocol_get_a_close_frame_before_the_connection_ends() {
    let p = wisp_e2e::probe_project();
    let server = Server::start(p.path()).await;
    let cases: [(&str, Vec<u8>, u16); 5] = [
        (
            "invalid UTF-8 in a text frame",
            frame(0x81, &[b'a', 0xff, 0xfe], true),
            1007,
        ),
        ("an unmasked frame", frame(0x81, b"hi", false), 1002),
        ("RSV1 set", frame(0xc1, b"hi", true), 1002),
        ("an unknown data opcode", frame(0x83, b"hi", true), 1002),
        ("an unknown control opcode", frame(0x8b, b"hi", true), 1002),
    ];
    for (what, bytes, code) in cases {
        let mut stream = joined(&server, "room/f").await;
        stream.write_all(&bytes).await.expect("write the frame");
        let ended = read_until_closed(&mut stream).await;
        assert_eq!(ended, Some(Ended::Close(code)), "{what}");
    }
}
