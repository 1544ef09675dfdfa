//! CORS (`wisp.cors`) with a real server and a real HTTP client: preflights answered by
//! Wisp without running the function, `Access-Control-Allow-Origin` on the answers for
//! allowed origins only, a function's own settings over the project's, and nothing at
//! all without settings.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use wisp_e2e::{Project, Reply, Server, OK_WAT};

/// A guest whose export `handler` traps: a preflight that ran it would be a 500.
const TRAP_WAT: &str = r#"(module
    (memory (export "memory") 1)
    (func (export "handler") (param i32) unreachable))"#;

const APP: &str = "https://app.example.com";
const OTHER: &str = "https://other.example";

/// `GET /items`, `PUT /items` (traps) and `DELETE /items` answering `ok` or trapping,
/// with `config` as the project's `config.yaml`; `POST /upload` with `upload` as its
/// `wisp:` block, `DELETE /items` with `cors: false`.
fn project(config: &str, upload: &str) -> Project {
    let p = Project::new();
    p.file("config.yaml", config);
    let ok = p.wat("ok", OK_WAT);
    let trap = p.wat("trap", TRAP_WAT);
    p.http_function("items", "GET", "/items", "handler", &ok);
    p.http_function("put_items", "PUT", "/items", "handler", &trap);
    p.http_function("upload", "POST", "/upload", "handler", &ok);
    p.http_function("delete_items", "DELETE", "/items", "handler", &ok);
    let upload_yaml = std::fs::read_to_string(p.path().join("functions/upload.yaml")).unwrap();
    p.file("functions/upload.yaml", &format!("{upload_yaml}{upload}"));
    let delete_yaml =
        std::fs::read_to_string(p.path().join("functions/delete_items.yaml")).unwrap();
    p.file(
        "functions/delete_items.yaml",
        &format!("{delete_yaml}wisp:\n  cors: false\n"),
    );
    p
}

/// The project-wide settings of most tests.
const CONFIG: &str =
    "id: test-project\nname: cors\nwisp:\n  cors:\n    origins: [https://app.example.com]\n    \
                      headers: [Content-Type, X-Token]\n    max-age: 90\n";

/// `POST /upload`'s own settings in most tests.
const UPLOAD: &str = "wisp:\n  cors:\n    origins: ['*']\n    methods: [POST, PUT]\n    expose-headers: [X-Upload-Id]\n";

async fn preflight(server: &Server, path: &str, origin: &str, method: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", method),
        ("access-control-request-headers", "content-type"),
    ];
    server
        .send(Method::OPTIONS, path, &headers, Bytes::new())
        .await
}

async fn from(server: &Server, method: Method, path: &str, origin: &str) -> Reply {
    server
        .send(method, path, &[("origin", origin)], Bytes::new())
        .await
}

#[tokio::test]
async fn preflights_are_answered_without_running_the_function() {
    let p = project(CONFIG, UPLOAD);
    let server = Server::start(p.path()).await;

    // PUT /items traps: the 204 is Wisp's.
    let reply = preflight(&server, "/items", APP, "PUT").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("access-control-allow-methods"), Some("PUT"));
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("Content-Type, X-Token")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("90"));
    assert!(reply.header("vary").is_some_and(|v| v.contains("Origin")));
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    assert!(reply.body.is_empty());

    // Another origin: 204 with nothing allowed, so the browser stops there.
    let reply = preflight(&server, "/items", OTHER, "GET").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("access-control-allow-methods"), None);

    // A method no function serves there, or a path none serves: routed as ever.
    let reply = preflight(&server, "/items", APP, "PATCH").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = preflight(&server, "/nowhere", APP, "GET").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn answers_name_allowed_origins_only() {
    let p = project(CONFIG, UPLOAD);
    let server = Server::start(p.path()).await;

    let reply = from(&server, Method::GET, "/items", APP).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "ok")
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(reply.header("vary"), Some("Origin"));

    // The function runs for anyone (the browser enforces CORS), but only allowed
    // origins are told they may read the answer.
    let reply = from(&server, Method::GET, "/items", OTHER).await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (StatusCode::OK, "ok")
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("vary"), Some("Origin"));

    // A failure is readable too, so the page can show it.
    let reply = from(&server, Method::PUT, "/items", APP).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));

    // No Origin: not a cross-origin request.
    let reply = server.get("/items").await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_functions_own_settings_replace_the_projects() {
    let p = project(CONFIG, UPLOAD);
    let server = Server::start(p.path()).await;

    // `POST /upload`: any origin, its methods, its exposed header.
    let reply = preflight(&server, "/upload", OTHER, "POST").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("POST, PUT")
    );
    // Headers not listed: those asked for.
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));
    let reply = from(&server, Method::POST, "/upload", OTHER).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("X-Upload-Id")
    );
    assert_eq!(reply.header("vary"), None, "`*` does not vary");

    // `DELETE /items` has `cors: false`: its preflight is an OPTIONS like any other.
    let reply = preflight(&server, "/items", APP, "DELETE").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = from(&server, Method::DELETE, "/items", APP).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("vary"), None);
}

#[tokio::test]
async fn credentials_name_the_origin_and_say_so() {
    let upload = "wisp:\n  cors: {origins: [https://app.example.com], credentials: true}\n";
    let p = project(CONFIG, upload);
    let server = Server::start(p.path()).await;
    let reply = preflight(&server, "/upload", APP, "POST").await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    let reply = from(&server, Method::POST, "/upload", APP).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    let reply = from(&server, Method::POST, "/upload", OTHER).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn without_settings_nothing_changes() {
    let p = project("id: test-project\nname: plain\n", "");
    let server = Server::start(p.path()).await;
    let reply = preflight(&server, "/items", APP, "GET").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("DELETE, GET, PUT"));
    for (method, path) in [(Method::GET, "/items"), (Method::POST, "/upload")] {
        let reply = from(&server, method, path, APP).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("access-control-allow-origin"), None);
        assert_eq!(reply.header("vary"), None);
    }
}
