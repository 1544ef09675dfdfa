//! Responses the server makes itself, not a function: errors, the health answer,
//! public files.

use crate::abi::http_event::ResponseBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// A body that is all there from the start.
pub(crate) fn whole(bytes: Bytes) -> ResponseBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A `status` response with `body` as UTF-8 plain text.
pub(crate) fn text(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(whole(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
