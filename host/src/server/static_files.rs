//! Files from the project's `public/` folder, served at `/` when no function
//! route matches (`public/index.html` answers `/`).
//!
//! A file is streamed from disk in chunks ([`chunks`]), so a large file costs a
//! response one chunk of memory however slowly its client reads; validators and
//! ranges ([`conditional`]) come from the file's metadata alone.

mod chunks;
mod conditional;

use super::response::text;
use crate::abi::http_event::ResponseBody;
use chunks::FileChunks;
use conditional::{Validators, Wanted};
use http_body_util::BodyExt;
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use hyper::{HeaderMap, Method, Response, StatusCode};
use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use tokio::io::AsyncSeekExt;

/// The file for URL `path` under `root`, if one exists. `..`, absolute parts and
/// hidden files never resolve, and a path whose symlinks lead out of `root` is
/// refused (and logged), so nothing outside `root` is reachable. Returns the
/// file's real path, the one to open.
async fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    let mut file = root.to_path_buf();
    for part in Path::new(relative).components() {
        match part {
            Component::Normal(name) if !name.to_string_lossy().starts_with('.') => file.push(name),
            _ => return None,
        }
    }
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let mut real = inside(&root, &file, path).await?;
    if tokio::fs::metadata(&real).await.ok()?.is_dir() {
        real = inside(&root, &real.join("index.html"), path).await?;
    }
    tokio::fs::metadata(&real)
        .await
        .ok()?
        .is_file()
        .then_some(real)
}

/// `file` with every symlink followed, if that is still under `root` (itself
/// canonical). `path` is the URL asked for, for the log.
async fn inside(root: &Path, file: &Path, path: &str) -> Option<PathBuf> {
    let real = tokio::fs::canonicalize(file).await.ok()?;
    if real.starts_with(root) {
        Some(real)
    } else {
        tracing::warn!(
            path = %path.escape_debug(),
            "a public path leads out of public/ through a symlink; answered 404"
        );
        None
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Serves `path` from `root` for a GET or HEAD with `headers`, or `None` if there
/// is no such file.
pub async fn serve(
    root: &Path,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response<ResponseBody>> {
    let file = resolve(root, path).await?;
    let response = match respond(&file, method, headers).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(file = %file.display(), %error, "reading a public file failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not read the file\n".into(),
            )
        }
    };
    Some(response)
}

/// The answer for `file`: 304, 416, 206 or 200, the body streamed from disk.
async fn respond(
    file: &Path,
    method: &Method,
    headers: &HeaderMap,
) -> std::io::Result<Response<ResponseBody>> {
    let mut opened = tokio::fs::File::open(file).await?;
    let metadata = opened.metadata().await?;
    let size = metadata.len();
    let validators = Validators::new(size, metadata.modified()?);
    let header = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok());

    let mut response = Response::new(ResponseBody::default());
    let out = response.headers_mut();
    out.insert(ETAG, value(&validators.etag));
    out.insert(LAST_MODIFIED, value(&validators.last_modified));
    if validators.not_modified(header(IF_NONE_MATCH), header(IF_MODIFIED_SINCE)) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(response);
    }
    out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(file)));

    // Range is defined for GET only (RFC 9110, 14.2).
    let range = (method == Method::GET && validators.range_applies(header(IF_RANGE)))
        .then(|| header(RANGE))
        .flatten();
    let (first, len) = match conditional::wanted(range, size) {
        Wanted::Whole => (0, size),
        Wanted::Part { first, last } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let out = response.headers_mut();
            out.insert(
                CONTENT_RANGE,
                value(&format!("bytes {first}-{last}/{size}")),
            );
            (first, last - first + 1)
        }
        Wanted::Unsatisfiable => {
            tracing::debug!(
                range = %range.unwrap_or_default().escape_debug(),
                size,
                "a range past the end of a public file; answered 416"
            );
            let mut refused = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the range is past the end of the file\n".into(),
            );
            refused
                .headers_mut()
                .insert(CONTENT_RANGE, value(&format!("bytes */{size}")));
            return Ok(refused);
        }
    };
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, value(&len.to_string()));
    // HEAD: the headers only (hyper sends no body for it, and takes the length
    // header as it is).
    if method == Method::GET {
        if first > 0 {
            opened.seek(SeekFrom::Start(first)).await?;
        }
        *response.body_mut() = FileChunks::new(opened, len).boxed_unsync();
    }
    Ok(response)
}

/// A header value made by Wisp itself (digits, hex, a date): always valid.
fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a header value of visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_resolves_outside_the_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("index.html"), "hi").expect("write");
        std::fs::write(dir.path().join(".secret"), "no").expect("write");
        let real = std::fs::canonicalize(dir.path()).expect("canonical");
        assert_eq!(
            resolve(dir.path(), "/").await,
            Some(real.join("index.html"))
        );
        assert_eq!(
            resolve(dir.path(), "/index.html").await,
            Some(real.join("index.html"))
        );
        assert_eq!(resolve(dir.path(), "/../etc/passwd").await, None);
        assert_eq!(resolve(dir.path(), "/.secret").await, None);
        assert_eq!(resolve(dir.path(), "/missing.html").await, None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn refuses_symlinks_that_leave_the_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        let public = dir.path().join("public");
        std::fs::create_dir(&public).expect("public/");
        std::fs::write(dir.path().join("outside.txt"), "no").expect("write");
        std::fs::write(public.join("inside.txt"), "yes").expect("write");
        std::os::unix::fs::symlink("../outside.txt", public.join("out")).expect("symlink");
        std::os::unix::fs::symlink("inside.txt", public.join("in")).expect("symlink");
        std::os::unix::fs::symlink("..", public.join("up")).expect("symlink");
        assert_eq!(resolve(&public, "/out").await, None);
        assert_eq!(resolve(&public, "/up/outside.txt").await, None);
        let real = std::fs::canonicalize(&public).expect("canonical");
        assert_eq!(resolve(&public, "/in").await, Some(real.join("inside.txt")));
    }
}
