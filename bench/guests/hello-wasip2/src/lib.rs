//! The HTTP hello function as a `wasi:http/proxy` component, for the `wasmtime serve` peer of
//! figures 1 and 2. It answers what `hello` answers on Wisp: 200 with the 13-byte body
//! `Hello, World!`. The `content-length` header keeps the response out of chunked encoding, so
//! the bytes on the wire match Wisp's and the native server's.

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

const BODY: &[u8] = b"Hello, World!";

struct Hello;

wasi::http::proxy::export!(Hello);

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::new();
        // A fresh Fields is mutable and the header is valid, so this cannot fail.
        let _ = headers.set("content-length", &[BODY.len().to_string().into_bytes()]);
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a new response's body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let out = body.write().expect("a new body's stream is taken once");
        // A failed write means the client went away; there is no one left to tell.
        let _ = out.blocking_write_and_flush(BODY);
        drop(out);
        let _ = OutgoingBody::finish(body, None);
    }
}
