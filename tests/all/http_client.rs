//! Guests' outbound HTTP end to end: a `wisp-sdk` guest and a guest written against
//! Taubyte's own SDK call a real local server; the egress policy refuses loopback,
//! private and metadata addresses, names that resolve there and redirects that lead
//! there; limits and bad handles give errnos, never a host crash.

use wisp::server::ServerConfig;
use wisp_e2e::upstream::Upstream;
use wisp_e2e::{test_config, test_wasm, Project, Server};

/// Server settings that let guests reach `hosts` (the test upstreams).
fn allowing(hosts: &[&str]) -> ServerConfig {
    let mut config = test_config();
    config.egress.allow = hosts.iter().map(|h| h.parse().unwrap()).collect();
    config
}

/// A project with the `abi` guest's outbound exports at `/fetch`, `/open` and `/raw`.
fn project() -> Project {
    let p = Project::new();
    let wasm = test_wasm("abi");
    p.http_function("fetch", "POST", "/fetch", "fetch", &wasm);
    p.http_function("open", "GET", "/open", "fetch_open", &wasm);
    p.http_function("raw", "GET", "/raw", "fetch_raw", &wasm);
    p
}

fn query(url: &str) -> String {
    url.replace('%', "%25")
        .replace('&', "%26")
        .replace('?', "%3F")
        .replace('=', "%3D")
}

async fn fetch(server: &Server, url: &str, method: &str, body: &str) -> String {
    let path = format!("/fetch?url={}&method={method}", query(url));
    let reply = server.post(&path, body.to_owned()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

#[tokio::test]
async fn a_wisp_sdk_guest_gets_and_posts_to_an_allowed_server() {
    let upstream = Upstream::start("127.0.0.1").await;
    let p = project();
    let server = Server::start_with(p.path(), allowing(&["127.0.0.1"])).await;

    let got = fetch(&server, &upstream.url("/hello"), "", "").await;
    assert!(
        got.starts_with("status=200\ncontent-type=text/plain\n"),
        "{got}"
    );
    assert!(got.contains("X-Upstream"), "names are canonical: {got}");
    assert!(got.ends_with("\nbody=hello"), "{got}");

    let posted = fetch(&server, &upstream.url("/echo"), "POST", "a body").await;
    assert!(posted.starts_with("status=200\n"), "{posted}");
    assert!(
        posted.ends_with(
            "\nbody=method=POST\nx-from=wisp\nx-compat=\ncontent-length=6\nchunked=false\nbody=a body"
        ),
        "the body goes out whole, with its length: {posted}"
    );

    // A 4xx or 5xx answer is a response, with its status.
    let missing = fetch(&server, &upstream.url("/status/503"), "", "").await;
    assert!(missing.starts_with("status=503\n"), "{missing}");
    assert!(missing.ends_with("body=status 503"), "{missing}");

    // Redirects are followed (on an allowed address).
    let to = upstream.url("/hello");
    let redirected = fetch(
        &server,
        &upstream.url(&format!("/redirect?to={}", query(&to))),
        "",
        "",
    )
    .await;
    assert!(redirected.ends_with("body=hello"), "{redirected}");
    let looped = fetch(&server, &upstream.url("/loop"), "", "").await;
    assert_eq!(looped, "error=13", "more than 10 redirects");
}

#[tokio::test]
async fn egress_refuses_loopback_private_metadata_and_names_that_resolve_to_loopback() {
    let upstream = Upstream::start("127.0.0.1").await;
    let port = upstream.addr.port();
    let p = project();
    // No allow list: the default policy.
    let server = Server::start(p.path()).await;
    for url in [
        format!("http://127.0.0.1:{port}/hello"),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/hello"),
        format!("http://localhost:{port}/hello"),
        format!("http://[::ffff:127.0.0.1]:{port}/hello"),
        "http://0.0.0.0/".to_owned(),
    ] {
        assert_eq!(fetch(&server, &url, "", "").await, "error=13", "{url}");
    }
    // The host is unharmed, and serves on.
    assert_eq!(server.get("/_wisp/health").await.status, 200);
}

#[tokio::test]
async fn a_redirect_to_a_denied_address_is_refused() {
    // The upstream on 127.0.0.2 is allowed; its redirect to 127.0.0.1 is not.
    let upstream = Upstream::start("127.0.0.2").await;
    let target = Upstream::start("127.0.0.1").await;
    let p = project();
    let server = Server::start_with(p.path(), allowing(&["127.0.0.2"])).await;
    let direct = fetch(&server, &upstream.url("/hello"), "", "").await;
    assert!(direct.ends_with("body=hello"), "{direct}");
    let to = target.url("/hello");
    let via = upstream.url(&format!("/redirect?to={}", query(&to)));
    assert_eq!(fetch(&server, &via, "", "").await, "error=13");
    let to_metadata = upstream.url("/redirect?to=http://169.254.169.254/");
    assert_eq!(fetch(&server, &to_metadata, "", "").await, "error=13");
}

#[tokio::test]
async fn a_function_opens_its_own_egress_and_others_stay_closed() {
    let upstream = Upstream::start("127.0.0.1").await;
    let p = project();
    p.file(
        "functions/opened.yaml",
        "source: .\ntrigger:\n  type: https\n  method: POST\n  paths:\n    - /opened\n\
         execution:\n  timeout: 5s\n  memory: 64MB\n  call: fetch\nwisp:\n  egress:\n    - 127.0.0.0/8\n",
    );
    p.artifact("opened", &test_wasm("abi"));
    let server = Server::start(p.path()).await;
    let url = query(&upstream.url("/hello"));
    let opened = server.post(&format!("/opened?url={url}"), "").await.text();
    assert!(opened.ends_with("body=hello"), "{opened}");
    // `fetch` has no list of its own, and the server opens nothing.
    let closed = server.post(&format!("/fetch?url={url}"), "").await.text();
    assert_eq!(closed, "error=13");
}

#[tokio::test]
async fn a_response_past_the_size_limit_is_refused_and_the_host_serves_on() {
    let upstream = Upstream::start("127.0.0.1").await;
    let p = project();
    let mut config = allowing(&["127.0.0.1"]);
    config.egress.max_response = 4000;
    let server = Server::start_with(p.path(), config).await;
    let fits = fetch(&server, &upstream.url("/big/4000"), "", "").await;
    assert!(fits.ends_with(&"x".repeat(4000)), "{}", &fits[..80]);
    // Declared too large: the send fails.
    assert_eq!(
        fetch(&server, &upstream.url("/big/4001"), "", "").await,
        "error=13"
    );
    // Streamed with no length: the read past the limit fails.
    assert_eq!(
        fetch(&server, &upstream.url("/stream/50000"), "", "").await,
        "error=6"
    );
    let small = fetch(&server, &upstream.url("/stream/3000"), "", "").await;
    assert!(small.ends_with(&"x".repeat(3000)), "{}", &small[..80]);
}

#[tokio::test]
async fn bad_handles_pointers_and_methods_are_errnos() {
    let upstream = Upstream::start("127.0.0.1").await;
    let p = project();
    let server = Server::start_with(p.path(), allowing(&["127.0.0.1"])).await;
    let url = query(&upstream.url("/hello"));
    let reply = server.get(&format!("/raw?url={url}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let want = "\
client_wild_ptr=12
client=0
request_unknown_client=10
request=0
request_of_other_client=10
do_unknown=10
do_no_url=13
read_before_do=6
close_before_do=7
response_keys_before_do=9
status_before_do=9
url_wild_ptr=3
url_bad=11
method_zero=14
method_ten=14
method_kept=1
body_wild_ptr=3
set_header=0
add_header=0
header_size=6
header_values=a|b|c|
keys_small_buffer=2
header_bad_name=15
delete_header=0
header_size_after_delete=0
url=0
do=0
status_wild_ptr=3
read_wild_ptr=3
status=200
close=0
close_again=0
read_after_close=8
count_after_close=0
";
    assert_eq!(reply.text(), want);
}

#[tokio::test]
async fn responses_left_open_are_bounded_and_closing_one_frees_a_slot() {
    let upstream = Upstream::start("127.0.0.1").await;
    let p = project();
    let server = Server::start_with(p.path(), allowing(&["127.0.0.1"])).await;
    let url = query(&upstream.url("/big/100000"));
    let reply = server.get(&format!("/open?url={url}&n=40")).await;
    assert_eq!(reply.text(), "sent=16\nerror=13\nafter_close=ok");
}

#[tokio::test]
async fn a_guest_built_with_taubytes_sdk_gets_and_posts() {
    let upstream = Upstream::start("127.0.0.1").await;
    let p = Project::new();
    p.http_function(
        "client",
        "GET",
        "/client",
        "compat_http_client",
        &test_wasm("compat"),
    );
    let server = Server::start_with(p.path(), allowing(&["127.0.0.1"])).await;
    let url = query(&upstream.url("/echo"));
    let reply = server.get(&format!("/client?url={url}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    assert!(text.starts_with("get=method=GET\n"), "{text}");
    // The SDK adds headers with addHttpRequestHeader: on Wisp they arrive.
    assert!(text.contains("post=method=POST\nx-from=\nx-compat=taubyte\ncontent-length=17\nchunked=false\nbody=posted by taubyte"), "{text}");
    let keys = text
        .lines()
        .find_map(|l| l.strip_prefix("keys="))
        .unwrap_or_default();
    let mut keys: Vec<&str> = keys.split(',').collect();
    keys.sort();
    assert_eq!(keys, ["Content-Length", "Date"], "{text}");

    let url = query(&upstream.url("/hello"));
    let hello = server.get(&format!("/client?url={url}")).await.text();
    assert!(
        hello.contains("get=hello\ncontent-type=text/plain\n"),
        "{hello}"
    );
    assert!(hello.contains("X-Upstream"), "{hello}");
}

#[tokio::test]
async fn https_goes_out_over_http2_to_a_server_the_settings_trust() {
    let upstream = Upstream::start_tls("127.0.0.1").await;
    let p = project();
    let mut config = allowing(&["127.0.0.1"]);
    // Without the server's certificate among the roots, the TLS handshake fails.
    let untrusted = Server::start_with(p.path(), config.clone()).await;
    assert_eq!(
        fetch(&untrusted, &upstream.url("/version"), "", "").await,
        "error=13"
    );
    config.egress.extra_roots = vec![upstream.certificate.clone().expect("a certificate")];
    let server = Server::start_with(p.path(), config).await;
    let version = fetch(&server, &upstream.url("/version"), "", "").await;
    assert!(
        version.ends_with("body=HTTP/2.0"),
        "ALPN picks HTTP/2: {version}"
    );
    let posted = fetch(&server, &upstream.url("/echo"), "POST", "over tls").await;
    assert!(
        posted.ends_with("content-length=8\nchunked=false\nbody=over tls"),
        "{posted}"
    );
}
