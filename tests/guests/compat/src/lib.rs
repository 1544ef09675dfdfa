//! A function written the way a Taubyte user writes one with Taubyte's own Rust SDK
//! (`taubyte-sdk` 0.1.6): a `#[no_mangle]` Rust function over `taubyte_sdk::event::Event`.
//!
//! | export | trigger | does |
//! |---|---|---|
//! | `compat` | HTTP | reads query `name`, request header `X-Test` and the whole body; sets response header `X-Compat: taubyte`; writes `hello <name>; x-test=<hdr>; body=<body>`; status 201 |
//! | `compat_pubsub_http` | HTTP, `?channel=` | subscribes to the channel, publishes `from-taubyte` to it, writes its WebSocket URL; status 200 (500 and the SDK's error text if a call fails) |
//! | `compat_pubsub_event` | pub/sub | publishes `taubyte-seen:<channel>:<data>` to `probe-out` |
//! | `compat_database` | HTTP, `?name=` | Taubyte's database test steps (see [`database`]) |
//! | `storagetest` | HTTP | Taubyte's storage test, step for step (see [`storage`]); `{"ping": "pong"}` |
//! | `compat_http_client` | HTTP, `?url=` | the SDK's HTTP client: a GET and a POST (see [`http_client`]) |

mod database;
mod http_client;
mod storage;

use std::error::Error;
use std::io::Read;

use taubyte_sdk::event::Event;
use taubyte_sdk::pubsub::Channel;

/// Where `compat_pubsub_event` reports what it saw (the channel the tests listen on).
const PROBE_OUT: &str = "probe-out";

#[no_mangle]
pub fn compat(event: Event) {
    let http = event.http().unwrap();

    let name = http.queries().get("name").unwrap();
    let x_test = http.headers().get("X-Test").unwrap();
    let mut body = String::new();
    http.body().read_to_string(&mut body).unwrap();

    http.headers().set("X-Compat", "taubyte").unwrap();
    let answer = format!("hello {name}; x-test={x_test}; body={body}");
    http.write(answer.as_bytes()).unwrap();
    http.return_code(201).unwrap();
}

#[no_mangle]
pub fn compat_pubsub_http(event: Event) {
    let http = event.http().unwrap();

    match subscribe_publish_url(&http) {
        Ok(url) => {
            http.write(url.as_bytes()).unwrap();
            http.return_code(200).unwrap();
        }
        Err(err) => {
            http.return_code(500).unwrap();
            http.write(err.to_string().as_bytes()).unwrap();
        }
    }
}

/// Subscribes to the channel named by query `channel`, publishes `from-taubyte` to it and returns
/// its WebSocket URL.
fn subscribe_publish_url(http: &taubyte_sdk::http::Event) -> Result<String, Box<dyn Error>> {
    let channel = Channel::new(http.queries().get("channel")?)?;
    channel.subscribe()?;
    channel.publish(b"from-taubyte")?;
    channel.web_socket().url()
}

#[no_mangle]
pub fn compat_pubsub_event(event: Event) {
    let message = event.pubsub().unwrap();

    let data = message.data().unwrap();
    let channel = message.channel().unwrap().name();

    let line = format!("taubyte-seen:{channel}:{}", String::from_utf8_lossy(&data));
    Channel::new(PROBE_OUT.to_string())
        .unwrap()
        .publish(line.as_bytes())
        .unwrap();
}
