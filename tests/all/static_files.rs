//! Files from a project's `public/` folder: streamed in chunks, with validators,
//! conditional and range requests, and no way out of the folder through a symlink.

use bytes::Bytes;
use hyper::Method;
use wisp_e2e::{Project, Server};

/// Several of the server's 64 KiB chunks and a bit: the last chunk is a short one.
const SIZE: usize = 5 * 64 * 1024 + 123;

/// Bytes that differ from one offset to the next, so a chunk sent twice or out of
/// order shows.
fn contents(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// A project whose `public/` holds `data.bin` (`SIZE` bytes) and `index.html`.
fn project() -> (Project, Vec<u8>) {
    let p = Project::new();
    let data = contents(SIZE);
    std::fs::create_dir_all(p.path().join("public")).expect("public/");
    std::fs::write(p.path().join("public/data.bin"), &data).expect("writing data.bin");
    p.file("public/index.html", "<p>hello</p>\n");
    (p, data)
}

async fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> wisp_e2e::Reply {
    server.send(Method::GET, path, headers, Bytes::new()).await
}

#[tokio::test]
async fn a_file_of_many_chunks_arrives_byte_exact_with_validators() {
    let (p, data) = project();
    let server = Server::start(p.path()).await;
    let reply = get(&server, "/data.bin", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), data.len());
    assert!(reply.body == data, "the body differs from the file");
    assert_eq!(reply.header("content-length"), Some(&*SIZE.to_string()));
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert!(reply.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(reply
        .header("last-modified")
        .is_some_and(|d| d.ends_with(" GMT")));

    let index = get(&server, "/", &[]).await;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<p>hello</p>\n");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn head_sends_the_headers_only() {
    let (p, _) = project();
    let server = Server::start(p.path()).await;
    let reply = server
        .send(Method::HEAD, "/data.bin", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some(&*SIZE.to_string()));
    assert!(reply.header("etag").is_some());
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn a_single_range_gets_206_and_those_bytes() {
    let (p, data) = project();
    let server = Server::start(p.path()).await;
    let cases: &[(&str, usize, usize)] = &[
        ("bytes=100-199", 100, 199),
        // Across a chunk boundary, to the end.
        ("bytes=65000-", 65000, SIZE - 1),
        ("bytes=-10", SIZE - 10, SIZE - 1),
        // An end past the file is the file's end.
        ("bytes=300000-99999999", 300000, SIZE - 1),
    ];
    for &(range, first, last) in cases {
        let reply = get(&server, "/data.bin", &[("range", range)]).await;
        assert_eq!(reply.status, 206, "{range}");
        assert_eq!(
            reply.header("content-range"),
            Some(&*format!("bytes {first}-{last}/{SIZE}")),
            "{range}"
        );
        assert!(reply.body == data[first..=last], "{range}: wrong bytes");
    }

    let past = get(
        &server,
        "/data.bin",
        &[("range", &format!("bytes={SIZE}-"))],
    )
    .await;
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(&*format!("bytes */{SIZE}"))
    );

    // Several ranges, or one the server does not understand: the whole file.
    for range in ["bytes=0-1,5-6", "bytes=5-1", "items=0-1"] {
        let reply = get(&server, "/data.bin", &[("range", range)]).await;
        assert_eq!(reply.status, 200, "{range}");
        assert!(reply.body == data, "{range}: not the whole file");
    }
}

#[tokio::test]
async fn a_request_with_the_current_validator_gets_304() {
    let (p, data) = project();
    let server = Server::start(p.path()).await;
    let first = get(&server, "/data.bin", &[]).await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();

    let reply = get(&server, "/data.bin", &[("if-none-match", &etag)]).await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), Some(&*etag));

    let listed = format!("\"other\", W/{etag}");
    let reply = get(&server, "/data.bin", &[("if-none-match", &listed)]).await;
    assert_eq!(reply.status, 304, "a weak match counts for If-None-Match");

    let reply = get(&server, "/data.bin", &[("if-modified-since", &modified)]).await;
    assert_eq!(reply.status, 304);

    let reply = get(&server, "/data.bin", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body == data);

    // If-None-Match decides when both are sent.
    let reply = get(
        &server,
        "/data.bin",
        &[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &modified),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_out_of_public_gets_404() {
    use std::os::unix::fs::symlink;
    let (p, _) = project();
    let root = p.path();
    std::fs::write(root.join("secret.txt"), "not public\n").expect("writing secret.txt");
    std::fs::create_dir_all(root.join("private")).expect("private/");
    std::fs::write(root.join("private/key.txt"), "not public\n").expect("writing key.txt");
    symlink(root.join("secret.txt"), root.join("public/leak.txt")).expect("file symlink");
    symlink("../private", root.join("public/dir")).expect("folder symlink");
    symlink("data.bin", root.join("public/alias.bin")).expect("inner symlink");
    let server = Server::start(root).await;

    for path in ["/leak.txt", "/dir/key.txt"] {
        let reply = get(&server, path, &[]).await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(!reply.text().contains("not public"), "{path}");
    }
    // A symlink that stays inside public/ is served.
    let reply = get(&server, "/alias.bin", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), SIZE);
}

/// `/_wisp/client.js`, Wisp's channel client: served by every project (even one with a
/// `public/` of its own), revalidated by its entity tag, and read-only.
#[tokio::test]
async fn every_project_serves_the_channel_client_with_its_validator() {
    let (p, _) = project();
    let server = Server::start(p.path()).await;
    let script = get(&server, "/_wisp/client.js", &[]).await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.text().contains("global.Wisp = Object.freeze"));
    let etag = script.header("etag").expect("an entity tag").to_owned();

    let again = get(&server, "/_wisp/client.js", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let head = server
        .send(Method::HEAD, "/_wisp/client.js", &[], Bytes::new())
        .await;
    assert_eq!((head.status.as_u16(), head.body.len()), (200, 0));

    let post = server
        .send(Method::POST, "/_wisp/client.js", &[], Bytes::from("x"))
        .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}
