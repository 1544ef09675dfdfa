//! Outbound HTTP through `wisp-sdk`'s client, and the raw calls' errnos.
//!
//! | export | does |
//! |---|---|
//! | `fetch` | sends `?method=` (default GET) to `?url=` with header `X-From: wisp` and the request's body; writes `status=<n>\ncontent-type=<v>\nnames=<a,b>\nbody=<body>` or `error=<errno>` |
//! | `fetch_open` | sends `?n=` GETs to `?url=` without reading them; writes `sent=<k>` and the errno that stopped it, `error=<errno>` |
//! | `fetch_raw` | the raw calls with bad handles, pointers, methods and buffers: `<step>=<errno>` lines |

use std::io::Read;

use wisp_sdk::http::client;
use wisp_sdk::sys;
use wisp_sdk::Event;

use crate::Result;

fn errno_of(err: &wisp_sdk::Error) -> String {
    err.errno()
        .map_or_else(|| err.to_string(), |e| e.code().to_string())
}

#[wisp_sdk::function]
fn fetch(event: Event) -> Result<()> {
    let http = event.http()?;
    let url = http.query().get("url")?;
    let method = http.query().get("method").unwrap_or_default();
    let mut body = Vec::new();
    http.body().read_to_end(&mut body)?;
    let sent = (|| {
        let mut request = client::new()?.request(&url)?.header("X-From", "wisp")?;
        if !method.is_empty() {
            request = request.method(&method)?;
        }
        if !body.is_empty() {
            request = request.body(&body)?;
        }
        let response = request.send()?;
        let status = response.status()?;
        let content_type = response.header("content-type")?.join(",");
        let names = response.header_names()?.join(",");
        let body = response.bytes()?;
        Ok::<_, wisp_sdk::Error>(format!(
            "status={status}\ncontent-type={content_type}\nnames={names}\nbody={}",
            String::from_utf8_lossy(&body)
        ))
    })();
    let answer = sent.unwrap_or_else(|err| format!("error={}", errno_of(&err)));
    http.write(answer.as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn fetch_open(event: Event) -> Result<()> {
    let http = event.http()?;
    let url = http.query().get("url")?;
    let n: usize = http.query().get("n")?.parse()?;
    let client = client::new()?;
    let mut held = Vec::new();
    let mut stopped = String::from("none");
    for _ in 0..n {
        match client.request(&url).and_then(|r| r.send()) {
            Ok(response) => held.push(response),
            Err(err) => {
                stopped = errno_of(&err);
                break;
            }
        }
    }
    let sent = held.len();
    // Closing one frees a slot: the next send goes through.
    let after_close = match held.pop().map(|r| r.close()) {
        Some(Ok(())) => match client.request(&url).and_then(|r| r.send()) {
            Ok(_) => "ok".to_owned(),
            Err(err) => errno_of(&err),
        },
        _ => "none".to_owned(),
    };
    http.write(format!("sent={sent}\nerror={stopped}\nafter_close={after_close}").as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn fetch_raw(event: Event) -> Result<()> {
    let http = event.http()?;
    let url = http.query().get("url")?;
    let mut out = String::new();
    let mut line = |step: &str, code: u32| out += &format!("{step}={code}\n");
    // A pointer far past the end of any guest memory this test runs with.
    const WILD: usize = 0xFFFF_FF00;
    let wild = WILD as *mut u32;

    // SAFETY: every pointer passed is either a live local or deliberately wild; the host
    // checks each against guest memory and answers with an errno, writing nothing.
    unsafe {
        let mut client = 0u32;
        let mut request = 0u32;
        line("client_wild_ptr", sys::newHttpClient(wild));
        line("client", sys::newHttpClient(&mut client));
        line(
            "request_unknown_client",
            sys::newHttpRequest(99, &mut request),
        );
        line("request", sys::newHttpRequest(client, &mut request));
        let mut other = 0u32;
        sys::newHttpClient(&mut other);
        line(
            "request_of_other_client",
            sys::doHttpRequest(other, request),
        );
        line("do_unknown", sys::doHttpRequest(client, 999));
        line("do_no_url", sys::doHttpRequest(client, request));
        let mut count = 0u32;
        let mut buf = [0u8; 16];
        line(
            "read_before_do",
            sys::readHttpResponseBody(client, request, buf.as_mut_ptr(), buf.len(), &mut count),
        );
        line(
            "close_before_do",
            sys::closeHttpResponseBody(client, request),
        );
        let mut size = 0usize;
        line(
            "response_keys_before_do",
            sys::getHttpResponseHeaderKeysSize(client, request, &mut size),
        );
        let mut status = 0u32;
        line(
            "status_before_do",
            sys::httpResponseStatus(client, request, &mut status),
        );
        line(
            "url_wild_ptr",
            sys::setHttpRequestURL(client, request, WILD as *const u8, 10),
        );
        let bad = "not a url";
        line(
            "url_bad",
            sys::setHttpRequestURL(client, request, bad.as_ptr(), bad.len()),
        );
        line("method_zero", sys::setHttpRequestMethod(client, request, 0));
        line("method_ten", sys::setHttpRequestMethod(client, request, 10));
        let mut method = 0u32;
        sys::getHttpRequestMethod(client, request, &mut method);
        line("method_kept", method);
        line(
            "body_wild_ptr",
            sys::setHttpRequestBody(client, request, WILD as *const u8, 64),
        );

        let key = "X-List";
        let values = "a\0b\0";
        line(
            "set_header",
            sys::setHttpRequestHeader(
                client,
                request,
                key.as_ptr(),
                key.len(),
                values.as_ptr(),
                values.len(),
            ),
        );
        let single = "c";
        line(
            "add_header",
            sys::addHttpRequestHeader(
                client,
                request,
                key.as_ptr(),
                key.len(),
                single.as_ptr(),
                single.len(),
            ),
        );
        sys::getHttpRequestHeaderSize(client, request, key.as_ptr(), key.len(), &mut size);
        line("header_size", size as u32);
        let mut list = vec![0u8; size];
        sys::getHttpRequestHeader(client, request, key.as_ptr(), key.len(), list.as_mut_ptr());
        out += &format!(
            "header_values={}\n",
            String::from_utf8_lossy(&list).replace('\0', "|")
        );
        let mut tiny = [0u8; 2];
        let mut line = |step: &str, code: u32| out += &format!("{step}={code}\n");
        line(
            "keys_small_buffer",
            sys::getHttpRequestHeaderKeys(client, request, tiny.as_mut_ptr(), tiny.len()),
        );
        let bad_name = "bad name";
        line(
            "header_bad_name",
            sys::addHttpRequestHeader(
                client,
                request,
                bad_name.as_ptr(),
                bad_name.len(),
                single.as_ptr(),
                1,
            ),
        );
        line(
            "delete_header",
            sys::deleteHttpRequestHeader(client, request, key.as_ptr(), key.len()),
        );
        sys::getHttpRequestHeaderSize(client, request, key.as_ptr(), key.len(), &mut size);
        line("header_size_after_delete", size as u32);

        line(
            "url",
            sys::setHttpRequestURL(client, request, url.as_ptr(), url.len()),
        );
        line("do", sys::doHttpRequest(client, request));
        line(
            "status_wild_ptr",
            sys::httpResponseStatus(client, request, wild),
        );
        line(
            "read_wild_ptr",
            sys::readHttpResponseBody(client, request, WILD as *mut u8, 8, &mut count),
        );
        sys::httpResponseStatus(client, request, &mut status);
        line("status", status);
        line("close", sys::closeHttpResponseBody(client, request));
        line("close_again", sys::closeHttpResponseBody(client, request));
        line(
            "read_after_close",
            sys::readHttpResponseBody(client, request, buf.as_mut_ptr(), buf.len(), &mut count),
        );
        line("count_after_close", count);
    }
    http.write(out.as_bytes())?;
    Ok(())
}
