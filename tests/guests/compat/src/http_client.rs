//! Taubyte's HTTP client, as a Taubyte user calls it with `taubyte-sdk` 0.1.6.
//!
//! `compat_http_client` (`?url=`): a `Client::get` of the URL, then a POST through
//! `Client::send` with header `X-Compat: taubyte` (the SDK adds headers with
//! `addHttpRequestHeader`, which Taubyte's own host drops) and body `posted by taubyte`.
//! Writes `get=<body>\ncontent-type=<values>\nkeys=<names>\npost=<body>`, or the SDK's error
//! text with status 500.

use std::error::Error;
use std::io::Read;

use taubyte_sdk::event::Event;
use taubyte_sdk::http::Client;

#[no_mangle]
pub fn compat_http_client(event: Event) {
    let http = event.http().unwrap();
    match calls(&http) {
        Ok(answer) => {
            http.write(answer.as_bytes()).unwrap();
            http.return_code(200).unwrap();
        }
        Err(err) => {
            http.return_code(500).unwrap();
            http.write(err.to_string().as_bytes()).unwrap();
        }
    }
}

fn calls(http: &taubyte_sdk::http::Event) -> Result<String, Box<dyn Error>> {
    let url = http.queries().get("url")?;

    let mut got = Client::get(url.as_str())?;
    let mut get_body = String::new();
    got.read_to_string(&mut get_body)?;
    let content_type = got.headers().get("content-type")?.join(",");
    let keys = got.headers().list()?.join(",");

    let client = Client::new()?;
    let request = ::http::Request::builder()
        .method("POST")
        .uri(url.as_str())
        .header("X-Compat", "taubyte")
        .body(&b"posted by taubyte"[..])?;
    let mut posted = client.send(request)?;
    let mut post_body = String::new();
    posted.read_to_string(&mut post_body)?;

    Ok(format!(
        "get={get_body}\ncontent-type={content_type}\nkeys={keys}\npost={post_body}"
    ))
}
