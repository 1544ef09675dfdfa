//! Echoes the request back as JSON:
//!
//! ```text
//! {"method":"POST","path":"/echo","query":{"a":"1"},"header":"<X-Echo or null>","body":"..."}
//! ```

use std::fmt::Write as _;
use std::io::Read;

use wisp_sdk::{Event, Result};

#[wisp_sdk::function]
fn echo(event: Event) -> Result<()> {
    let http = event.http()?;

    let query = http.query();
    let mut names = query.list()?;
    names.sort();
    names.dedup();
    let mut query_json = String::from("{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            query_json.push(',');
        }
        let value = query.get(name)?;
        let _ = write!(query_json, "{}:{}", json_string(name), json_string(&value));
    }
    query_json.push('}');

    // Hosts differ on how `get` reports a missing header (an errno, or an empty value), so look
    // for the name in the request's header list instead.
    let headers = http.headers();
    let has_echo = headers
        .list()?
        .iter()
        .any(|name| name.eq_ignore_ascii_case("X-Echo"));
    let header = if has_echo {
        json_string(&headers.get("X-Echo")?)
    } else {
        "null".to_owned()
    };

    let mut body = Vec::new();
    http.body()
        .read_to_end(&mut body)
        .map_err(|err| wisp_sdk::Error::new(format!("reading the request body: {err}")))?;

    let json = format!(
        r#"{{"method":{},"path":{},"query":{},"header":{},"body":{}}}"#,
        json_string(&http.method()?),
        json_string(&http.path()?),
        query_json,
        header,
        json_string(&String::from_utf8_lossy(&body)),
    );

    http.headers().set("Content-Type", "application/json")?;
    http.write(json.as_bytes())?;
    http.return_code(200)
}

/// `text` as a JSON string literal, quotes included.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn escapes_json() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\u0001é""#);
    }
}
