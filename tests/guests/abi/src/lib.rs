//! One export per area of the HTTP host calls, each answering in plain text so the end-to-end
//! tests can compare bodies exactly.
//!
//! | export | body |
//! |---|---|
//! | `info` | `method=<m>\nhost=<h>\npath=<p>\nua=<user agent>\n` |
//! | `query` | `<name>=<value>\n` per query name (sorted), then `missing=ok:<v>` or `missing=err:<errno>` |
//! | `headers` | `<name>\n` per request header (lower-cased, sorted), then `x-test=<value>\n`; adds response headers `X-Reply: yes`, `X-Multi: a`, `X-Multi: b` |
//! | `body` | `len=<n>\n` then the request body, read 7 bytes at a time |
//! | `redirect` | redirects to `/target`: `?kind=temporary` (307), `permanent` (308) or a number |
//! | `flush` | `part1`, flush, `part2`; status 200 |
//! | `code` | `code`, with the status from `?code=` |
//! | `events` | `type=<n>\nhttp=<ok|err>\npubsub=<ok|err>\n` |
//! | `imports` | `linked`; the module imports every raw call `wisp-sdk` declares |
//! | `storage_walk`, `storage_errors` | see [`storage`] |
//! | `fetch`, `fetch_open`, `fetch_raw` | outbound HTTP, see [`outbound`] |
//! | `history` | a channel's kept messages: `?channel=` and `?last=` or `?since=` |

mod outbound;
mod storage;

use std::io::Read;

use wisp_sdk::Event;

/// Any error, shown to the client as a 500 by `#[function]`.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `ok:<value>`, or `err:<errno>` (`err:<message>` for an error without an errno).
fn outcome(result: wisp_sdk::Result<String>) -> String {
    match result {
        Ok(value) => format!("ok:{value}"),
        Err(err) => match err.errno() {
            Some(errno) => format!("err:{}", errno.code()),
            None => format!("err:{err}"),
        },
    }
}

#[wisp_sdk::function]
fn info(event: Event) -> Result<()> {
    let http = event.http()?;
    let body = format!(
        "method={}\nhost={}\npath={}\nua={}\n",
        http.method()?,
        http.host()?,
        http.path()?,
        http.user_agent()?
    );
    http.write(body.as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn query(event: Event) -> Result<()> {
    let http = event.http()?;
    let query = http.query();
    let mut names = query.list()?;
    names.sort();
    let mut body = String::new();
    for name in names {
        body += &format!("{name}={}\n", query.get(&name)?);
    }
    body += &format!("missing={}\n", outcome(query.get("nope")));
    http.write(body.as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn headers(event: Event) -> Result<()> {
    let http = event.http()?;
    let headers = http.headers();
    let mut names: Vec<String> = headers
        .list()?
        .into_iter()
        .map(|name| name.to_lowercase())
        .collect();
    names.sort();
    let mut body = String::new();
    for name in names {
        body += &format!("{name}\n");
    }
    // A missing X-Test shows as `err:<errno>` rather than failing the request.
    let x_test = headers
        .get("X-Test")
        .unwrap_or_else(|err| outcome(Err(err)));
    body += &format!("x-test={x_test}\n");

    headers.set("X-Reply", "yes")?;
    headers.set("X-Multi", "a")?;
    headers.set("X-Multi", "b")?;
    http.write(body.as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn body(event: Event) -> Result<()> {
    let http = event.http()?;
    let mut reader = http.body();
    let mut chunk = [0u8; 7];
    let mut all = Vec::new();
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        all.extend_from_slice(&chunk[..n]);
    }
    reader.close()?;
    http.write(format!("len={}\n", all.len()).as_bytes())?;
    http.write(&all)?;
    Ok(())
}

#[wisp_sdk::function]
fn redirect(event: Event) -> Result<()> {
    let http = event.http()?;
    let kind = http.query().get("kind")?;
    let redirect = http.redirect("/target");
    match kind.as_str() {
        "temporary" => redirect.temporary()?,
        "permanent" => redirect.permanent()?,
        number => {
            let code = number.parse().map_err(|_| {
                format!("`kind` must be temporary, permanent or a status code, not `{number}`")
            })?;
            redirect.code(code)?
        }
    }
    Ok(())
}

#[wisp_sdk::function]
fn flush(event: Event) -> Result<()> {
    let http = event.http()?;
    // The status goes out with the first flush, so set it first.
    http.return_code(200)?;
    http.write(b"part1")?;
    http.flush()?;
    http.write(b"part2")?;
    Ok(())
}

#[wisp_sdk::function]
fn code(event: Event) -> Result<()> {
    let http = event.http()?;
    let raw = http.query().get("code")?;
    let code: u16 = raw
        .parse()
        .map_err(|_| format!("`code` must be a number, not `{raw}`"))?;
    http.return_code(code)?;
    http.write(b"code")?;
    Ok(())
}

#[wisp_sdk::function]
fn events(event: Event) -> Result<()> {
    let status = |ok: bool| if ok { "ok" } else { "err" };
    let body = format!(
        "type={}\nhttp={}\npubsub={}\n",
        event.event_type() as u32,
        status(event.http().is_ok()),
        status(event.pubsub().is_ok()),
    );
    event.http()?.write(body.as_bytes())?;
    Ok(())
}

/// Makes this module import every raw call the SDK declares (see `wisp_sdk::sys::every_import`).
#[wisp_sdk::function]
fn imports(event: Event) -> Result<()> {
    let http = event.http()?;
    std::hint::black_box(wisp_sdk::sys::every_import());
    http.write(b"linked")?;
    Ok(())
}

/// `?channel=` and `?last=N` or `?since=OFFSET`: the channel's kept messages as
/// `epoch=<set|none>` then `<offset>:<data>` lines, or `error=<errno>`.
#[wisp_sdk::function]
fn history(event: Event) -> Result<()> {
    use wisp_sdk::pubsub::{self, Since};
    let http = event.http()?;
    let query = http.query();
    let channel = pubsub::channel(&query.get("channel")?)?;
    let since = match query.get("since").unwrap_or_default().as_str() {
        "" => Since::Last(query.get("last").unwrap_or_default().parse().unwrap_or(0)),
        offset => Since::Offset(offset.parse()?),
    };
    let body = match channel.history(since) {
        Ok(history) => {
            let epoch = if history.epoch.is_empty() {
                "none"
            } else {
                "set"
            };
            let mut body = format!("epoch={epoch}\n");
            for message in &history.messages {
                body += &format!(
                    "{}:{}\n",
                    message.offset,
                    String::from_utf8_lossy(&message.data)
                );
            }
            body
        }
        Err(err) => format!("error={}", err.errno().map_or(0, |e| e.code())),
    };
    http.write(body.as_bytes())?;
    Ok(())
}
