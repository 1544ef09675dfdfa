//! A function written the way a Taubyte user writes one with Taubyte's own Rust SDK
//! (`taubyte-sdk` 0.1.6): a `#[no_mangle]` Rust function over `taubyte_sdk::event::Event`.
//!
//! Export `compat`: reads query `name`, request header `X-Test` and the whole body; sets response
//! header `X-Compat: taubyte`; writes `hello <name>; x-test=<hdr>; body=<body>`; status 201.

use std::io::Read;

use taubyte_sdk::event::Event;

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
