//! Modules checked before serving, and host calls at the ABI edge, on small WAT guests.

use wisp_e2e::{Project, Server};

/// Writes a WAT module as a real binary wasm file and returns its path.
fn wasm(project: &Project, name: &str, wat: &str) -> std::path::PathBuf {
    project.wat(name, wat)
}

/// Load errors, as `wisp check` would print them.
fn problems(project: &Project) -> String {
    let options = wisp::load::LoadOptions {
        invocations: Default::default(),
        cache: wisp::runtime::cache::ModuleCache::disabled(),
    };
    match wisp::load::load(project.path(), &options) {
        Ok(_) => panic!("the project loaded, but problems were expected"),
        Err(error) => error.to_string(),
    }
}

const WRITE_IMPORT: &str =
    r#"(import "taubyte/sdk" "eventHttpWrite" (func $write (param i32 i32 i32 i32) (result i32)))"#;

#[tokio::test]
async fn go_style_export_returning_i32_is_served() {
    let p = Project::new();
    let w = wasm(
        &p,
        "go",
        &format!(
            r#"(module {WRITE_IMPORT}
                (memory (export "memory") 1)
                (data (i32.const 16) "go-style")
                (func (export "handler") (param $id i32) (result i32)
                    (drop (call $write (local.get $id) (i32.const 16) (i32.const 8) (i32.const 64)))
                    (i32.const 1)))"#
        ),
    );
    p.http_function("go", "GET", "/go", "handler", &w);
    let server = Server::start(p.path()).await;
    let reply = server.get("/go").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "go-style");
}

#[tokio::test]
async fn reactor_initialize_runs_before_each_call() {
    let p = Project::new();
    let w = wasm(
        &p,
        "reactor",
        &format!(
            r#"(module {WRITE_IMPORT}
                (memory (export "memory") 1)
                (global $ready (mut i32) (i32.const 0))
                (data (i32.const 16) "ready!not ready")
                (func (export "_initialize") (global.set $ready (i32.const 1)))
                (func (export "handler") (param $id i32)
                    (if (global.get $ready)
                        (then (drop (call $write (local.get $id) (i32.const 16) (i32.const 6) (i32.const 64))))
                        (else (drop (call $write (local.get $id) (i32.const 22) (i32.const 9) (i32.const 64)))))))"#
        ),
    );
    p.http_function("reactor", "GET", "/r", "handler", &w);
    let server = Server::start(p.path()).await;
    assert_eq!(server.get("/r").await.text(), "ready!");
}

#[tokio::test]
async fn wild_pointers_get_errnos_and_the_host_keeps_serving() {
    let p = Project::new();
    // Writes, as the body, the errno from: a write past memory (3), a null written-
    // pointer (4), a wrong event id (1); each errno as one ASCII digit.
    let w = wasm(
        &p,
        "wild",
        &format!(
            r#"(module {WRITE_IMPORT}
                (memory (export "memory") 1)
                (func $digit (param $id i32) (param $errno i32)
                    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (local.get $errno)))
                    (drop (call $write (local.get $id) (i32.const 100) (i32.const 1) (i32.const 200))))
                (func (export "handler") (param $id i32)
                    (call $digit (local.get $id)
                        (call $write (local.get $id) (i32.const 65530) (i32.const 100) (i32.const 200)))
                    (call $digit (local.get $id)
                        (call $write (local.get $id) (i32.const 16) (i32.const 1) (i32.const 0)))
                    (call $digit (local.get $id)
                        (call $write (i32.add (local.get $id) (i32.const 7)) (i32.const 16) (i32.const 1) (i32.const 200)))))"#
        ),
    );
    p.http_function("wild", "GET", "/wild", "handler", &w);
    let server = Server::start(p.path()).await;
    let reply = server.get("/wild").await;
    assert_eq!(reply.status, 200);
    // Pointers are checked before anything is written: the failed calls added nothing.
    assert_eq!(reply.text(), "341");
}

#[tokio::test]
async fn a_bad_out_pointer_to_get_event_type_traps_only_that_instance() {
    let p = Project::new();
    let w = wasm(
        &p,
        "evtype",
        r#"(module
            (import "taubyte/sdk" "getEventType" (func $type (param i32 i32)))
            (memory (export "memory") 1)
            (func (export "handler") (param $id i32)
                (call $type (local.get $id) (i32.const -4))))"#,
    );
    let ok = p.wat("ok", wisp_e2e::OK_WAT);
    p.http_function("evtype", "GET", "/evtype", "handler", &w);
    p.http_function("ok", "GET", "/ok", "handler", &ok);
    let server = Server::start(p.path()).await;
    let reply = server.get("/evtype").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-wisp-error"), Some("trap"));
    assert_eq!(server.get("/ok").await.text(), "ok");
}

#[test]
fn an_export_with_the_wrong_signature_is_refused() {
    let p = Project::new();
    let w = wasm(
        &p,
        "sig",
        r#"(module (func (export "handler") (param i32 i32)))"#,
    );
    p.http_function("sig", "GET", "/sig", "handler", &w);
    let out = problems(&p);
    assert!(out.contains("functions/sig.yaml"), "{out}");
    assert!(out.contains("execution.call"), "{out}");
    assert!(
        out.contains("expected (i32) -> i32 or (i32) -> ()"),
        "{out}"
    );
}

#[test]
fn a_missing_export_is_refused_with_the_exports_listed() {
    let p = Project::new();
    let w = wasm(
        &p,
        "miss",
        r#"(module (func (export "other") (param i32)))"#,
    );
    p.http_function("miss", "GET", "/miss", "handler", &w);
    let out = problems(&p);
    assert!(
        out.contains("no export `handler`; it exports `other`"),
        "{out}"
    );
}

#[test]
fn invalid_truncated_and_missing_wasm_files_are_refused() {
    let p = Project::new();
    let good = wat::parse_str(r#"(module (func (export "h") (param i32)))"#).expect("valid WAT");
    let garbage = p.path().join("garbage.bin");
    std::fs::write(&garbage, b"this is not wasm").expect("write");
    let truncated = p.path().join("truncated.bin");
    std::fs::write(&truncated, &good[..good.len() - 3]).expect("write");
    p.http_function("garbage", "GET", "/a", "h", &garbage);
    p.http_function("truncated", "GET", "/b", "h", &truncated);
    p.http_function("missing", "GET", "/c", "h", &garbage);
    std::fs::remove_file(p.path().join("artifacts/missing.wasm")).expect("remove");
    let out = problems(&p);
    assert!(
        out.contains("artifacts/garbage.wasm is not a valid wasm module"),
        "{out}"
    );
    assert!(
        out.contains("artifacts/truncated.wasm is not a valid wasm module"),
        "{out}"
    );
    assert!(
        out.contains("cannot read wasm file artifacts/missing.wasm"),
        "{out}"
    );
    assert!(out.contains("3 errors"), "{out}");
}

#[test]
/// Only Taubyte's own module gets stubs (see the test below): anything else a module
/// imports and Wisp lacks is a load error.
fn an_unknown_import_is_refused_at_load() {
    let p = Project::new();
    let w = wasm(
        &p,
        "imp",
        r#"(module (import "env" "noSuchCall" (func (param i32))) (func (export "h") (param i32)))"#,
    );
    p.http_function("imp", "GET", "/imp", "h", &w);
    let out = problems(&p);
    assert!(out.contains("cannot link the module"), "{out}");
    assert!(out.contains("noSuchCall"), "{out}");
}

#[test]
fn a_module_needing_more_memory_than_allowed_is_refused() {
    let p = Project::new();
    // 32 pages = 2 MiB minimum against a 1 MB limit.
    let w = wasm(
        &p,
        "big",
        r#"(module (memory (export "memory") 32) (func (export "h") (param i32)))"#,
    );
    p.http_function_limited("big", "GET", "/big", "h", &w, "5s", "1MB");
    let out = problems(&p);
    assert!(out.contains("execution.memory"), "{out}");
    assert!(out.contains("needs at least 2097152 bytes"), "{out}");
    // With the line of `execution.memory`, and what to write instead.
    let at = out.find("big.yaml:").expect("the file") + "big.yaml:".len();
    assert!(out[at..].starts_with(|c: char| c.is_ascii_digit()), "{out}");
    assert!(out.contains("raise it to at least `3MB`"), "{out}");
}

#[tokio::test]
async fn non_utf8_and_over_long_channel_names_are_refused() {
    let p = Project::new();
    p.file(
        "messaging/all.yaml",
        "channel:\n  regex: true\n  match: \".*\"\nbridges:\n  websocket:\n    enable: true\n",
    );
    // Publishes to: a non-UTF-8 name, a 2,000-byte name, then a good one; writes each errno.
    let w = wasm(
        &p,
        "names",
        &format!(
            r#"(module {WRITE_IMPORT}
                (import "taubyte/sdk" "publishToChannel" (func $publish (param i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (data (i32.const 16) "\ff\fe")
                (data (i32.const 32) "fine")
                (func $digit (param $id i32) (param $errno i32)
                    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (i32.rem_u (local.get $errno) (i32.const 10))))
                    (i32.store8 (i32.const 101) (i32.add (i32.const 48) (i32.div_u (local.get $errno) (i32.const 10))))
                    (drop (call $write (local.get $id) (i32.const 101) (i32.const 1) (i32.const 200)))
                    (drop (call $write (local.get $id) (i32.const 100) (i32.const 1) (i32.const 200))))
                (func (export "handler") (param $id i32)
                    (memory.fill (i32.const 1000) (i32.const 97) (i32.const 2000))
                    (call $digit (local.get $id) (call $publish (i32.const 16) (i32.const 2) (i32.const 32) (i32.const 4)))
                    (call $digit (local.get $id) (call $publish (i32.const 1000) (i32.const 2000) (i32.const 32) (i32.const 4)))
                    (call $digit (local.get $id) (call $publish (i32.const 32) (i32.const 4) (i32.const 32) (i32.const 4)))))"#
        ),
    );
    p.http_function("names", "GET", "/names", "handler", &w);
    let server = Server::start(p.path()).await;
    // PublishFailed (21) twice, then success.
    assert_eq!(server.get("/names").await.text(), "212100");
    // The same limits hold for WebSocket paths: 400, not a lookup.
    let long = wisp_e2e::ws_path(&"a".repeat(2000));
    match server.try_ws(&long).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
    match server.try_ws(&wisp_e2e::ws_path("%ff%fe")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected 400, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn malformed_http_gets_400_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = Project::new();
    let ok = p.wat("ok", wisp_e2e::OK_WAT);
    p.http_function("ok", "GET", "/ok", "handler", &ok);
    let server = Server::start(p.path()).await;
    for garbage in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        stream.write_all(garbage).await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        )
        .await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{garbage:?} got {answer:?}"
        );
    }
    assert_eq!(server.get("/ok").await.text(), "ok");
}

#[tokio::test]
async fn a_taubyte_call_wisp_lacks_loads_warns_and_traps_only_when_called() {
    let p = Project::new();
    let w = wasm(
        &p,
        "p2p",
        &format!(
            r#"(module {WRITE_IMPORT}
                (import "taubyte/sdk" "p2pSendToProtocolCommand"
                    (func $send (param i32 i32 i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (data (i32.const 16) "fine")
                (func (export "fine") (param $id i32)
                    (drop (call $write (local.get $id) (i32.const 16) (i32.const 4) (i32.const 64))))
                (func (export "send") (param $id i32)
                    (drop (call $send (i32.const 0) (i32.const 0) (i32.const 0)
                        (i32.const 0) (i32.const 0) (i32.const 0)))))"#
        ),
    );
    p.http_function("fine", "GET", "/fine", "fine", &w);
    p.http_function("send", "GET", "/send", "send", &w);
    let options = wisp::load::LoadOptions {
        invocations: Default::default(),
        cache: wisp::runtime::cache::ModuleCache::disabled(),
    };
    let loaded = wisp::load::load(p.path(), &options).expect("the project loads");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "one per function: {warnings:?}");
    assert!(
        warnings[0].contains("`p2pSendToProtocolCommand`, which Wisp does not provide"),
        "{warnings:?}"
    );

    let server = Server::start(p.path()).await;
    assert_eq!(server.get("/fine").await.text(), "fine");
    // The trap's message, naming the call, is in the host's log (see the runtime's tests).
    let reply = server.get("/send").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.header("x-wisp-error"), Some("trap"));
    assert_eq!(server.get("/fine").await.text(), "fine", "still serving");
}
