//! Files from the project's `public/` folder, served at `/` when no function
//! route matches (`public/index.html` answers `/`).

use super::response::{text, whole};
use crate::abi::http_event::ResponseBody;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::path::{Component, Path, PathBuf};

/// The file for URL `path` under `root`, if one exists. `..`, absolute parts and
/// hidden files never resolve, so nothing outside `root` is reachable.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    let mut file = root.to_path_buf();
    for part in Path::new(relative).components() {
        match part {
            Component::Normal(name) if !name.to_string_lossy().starts_with('.') => file.push(name),
            _ => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    file.is_file().then_some(file)
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

/// Serves `path` from `root`, or `None` if there is no such file.
pub async fn serve(root: &Path, path: &str) -> Option<Response<ResponseBody>> {
    let file = resolve(root, path)?;
    let response = match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut response = Response::new(whole(Bytes::from(bytes)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
            response
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_resolves_outside_the_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("index.html"), "hi").expect("write");
        std::fs::write(dir.path().join(".secret"), "no").expect("write");
        assert_eq!(
            resolve(dir.path(), "/"),
            Some(dir.path().join("index.html"))
        );
        assert_eq!(
            resolve(dir.path(), "/index.html"),
            Some(dir.path().join("index.html"))
        );
        assert_eq!(resolve(dir.path(), "/../etc/passwd"), None);
        assert_eq!(resolve(dir.path(), "/.secret"), None);
        assert_eq!(resolve(dir.path(), "/missing.html"), None);
    }
}
