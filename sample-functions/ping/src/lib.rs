//! The smallest function, `ping`: answers `pong`. And `upstream`: an outbound HTTP call,
//! to a service the function's `wisp.egress` allows (the server itself, on loopback).

use wisp_sdk::http::client;
use wisp_sdk::{Event, Result};

#[wisp_sdk::function]
fn ping(event: Event) -> Result<()> {
    let http = event.http()?;
    http.write(b"pong")?;
    http.return_code(200)
}

/// `GET /api/upstream?path=/ping`: calls `http://<this request's Host><path>` and tells what
/// came back. Loopback is refused to guests unless allowed; `upstream.yaml` allows it.
#[wisp_sdk::function]
fn upstream(event: Event) -> Result<()> {
    let http = event.http()?;
    let path = http.query().get("path").unwrap_or_default();
    let path = if path.starts_with('/') {
        path
    } else {
        "/ping".into()
    };
    let url = format!("http://{}{path}", http.host()?);
    match client::get(&url) {
        Ok(response) => {
            let status = response.status()?;
            let body = response.bytes()?;
            let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            http.write(format!("{url} answered {status}: {shown}\n").as_bytes())?;
            http.return_code(200)
        }
        Err(err) => {
            http.write(format!("calling {url} failed: {err}\n").as_bytes())?;
            http.return_code(502)
        }
    }
}
