//! Databases and globals end to end: guests built with `wisp-sdk` and with Taubyte's own
//! `taubyte-sdk`, on a real server over a real SQLite file; raw calls with bad handles and
//! bad pointers on WAT guests.

use wisp_e2e::{test_wasm, Project, Server};

/// A project with the `state_probe` guest at `/kv`, `/fill` and `/globals`, a database
/// resource `notes` (1KB), one for every `user/<name>` (regex, 1KB each) and Taubyte's
/// `someDatabase`.
fn project() -> Project {
    let p = Project::new();
    let wasm = test_wasm("state_probe");
    p.http_function("kv", "GET", "/kv", "kv", &wasm);
    p.http_function("fill", "GET", "/fill", "fill", &wasm);
    p.http_function("globals", "GET", "/globals", "globals", &wasm);
    p.http_function(
        "compat",
        "GET",
        "/db",
        "compat_database",
        &test_wasm("compat"),
    );
    p.file(
        "databases/notes.yaml",
        "match: notes\nstorage: {size: 1KB}\n",
    );
    p.file(
        "databases/users.yaml",
        "match: user/[a-z]+\nregex: true\nstorage: {size: 1KB}\n",
    );
    p.file(
        "databases/taubyte.yaml",
        "match: someDatabase\nstorage: {size: 10MB}\n",
    );
    p
}

#[tokio::test]
async fn a_database_stores_reads_lists_and_deletes() {
    let p = project();
    let server = Server::start(p.path()).await;
    let kv = |q: &str| format!("/kv?db=notes&{q}");
    assert_eq!(server.get(&kv("op=get&key=a")).await.text(), "missing");
    for key in ["a", "a/1", "a/2", "b"] {
        let reply = server
            .get(&kv(&format!("op=put&key={key}&value=v-{key}")))
            .await;
        assert_eq!(reply.text(), "ok", "put {key}");
    }
    assert_eq!(server.get(&kv("op=get&key=a/2")).await.text(), "v-a/2");
    assert_eq!(server.get(&kv("op=list&key=a/")).await.text(), "a/1,a/2");
    assert_eq!(server.get(&kv("op=list&key=")).await.text(), "a,a/1,a/2,b");
    assert_eq!(server.get(&kv("op=delete&key=a")).await.text(), "ok");
    assert_eq!(
        server.get(&kv("op=delete&key=a")).await.text(),
        "ok",
        "idempotent"
    );
    assert_eq!(server.get(&kv("op=get&key=a")).await.text(), "missing");
}

#[tokio::test]
async fn each_name_a_regex_serves_is_its_own_store_and_unserved_names_are_refused() {
    let p = project();
    let server = Server::start(p.path()).await;
    let put = server.get("/kv?db=user/ann&op=put&key=k&value=ann").await;
    assert_eq!(put.text(), "ok");
    assert_eq!(
        server.get("/kv?db=user/bob&op=get&key=k").await.text(),
        "missing"
    );
    assert_eq!(
        server.get("/kv?db=user/ann&op=get&key=k").await.text(),
        "ann"
    );
    // The regex must match the whole name.
    let refused = server.get("/kv?db=user/ann2&op=get&key=k").await;
    assert_eq!(refused.status, 500);
    assert!(refused.text().contains("errno 22"), "{}", refused.text());
}

#[tokio::test]
async fn a_full_database_refuses_the_put_whole_and_keeps_the_rest() {
    let p = project();
    let server = Server::start(p.path()).await;
    // 1KB holds nine 102-byte records (`k0` + 100 bytes, ...), not ten.
    let reply = server.get("/fill?db=notes&size=100").await;
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("stored 9; "), "{}", reply.text());
    assert!(reply.text().contains("errno 24"), "{}", reply.text());
    assert_eq!(
        server.get("/kv?db=notes&op=get&key=k9").await.text(),
        "missing"
    );
    assert_eq!(
        server.get("/kv?db=notes&op=get&key=k8").await.text().len(),
        100
    );
    // Deleting makes room again.
    assert_eq!(
        server.get("/kv?db=notes&op=delete&key=k8").await.text(),
        "ok"
    );
    let again = server.get("/kv?db=notes&op=put&key=k9&value=fits").await;
    assert_eq!(again.text(), "ok");
}

#[tokio::test]
async fn data_outlives_the_server() {
    let p = project();
    {
        let server = Server::start(p.path()).await;
        let put = server.get("/kv?db=notes&op=put&key=kept&value=yes").await;
        assert_eq!(put.text(), "ok");
    }
    let server = Server::start(p.path()).await;
    assert_eq!(
        server.get("/kv?db=notes&op=get&key=kept").await.text(),
        "yes"
    );
}

#[tokio::test]
async fn globals_keep_types_and_scopes_as_taubytes_go_sdk_does() {
    let p = project();
    let server = Server::start(p.path()).await;
    let reply = server.get("/globals").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        "created=0\nu32=Some(4)\nu32-project=None\nstring=Some(\"Hello, world!\")\n\
         empty=Some(\"\")\nf32=Some(3.14)\nf64=Some(6.28)\nnever=None"
    );
}

#[tokio::test]
async fn taubytes_own_database_test_steps_pass_with_taubyte_sdk() {
    let p = project();
    let server = Server::start(p.path()).await;
    let reply = server.get("/db?name=someDatabase").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        "DatabaseTest get-after-delete=gone (Getting database size for key: `test` failed \
         with: ErrorDatabaseKeyNotFound) list=[\"test/1\", \"test/1s\"] list-test=[\"test/1\", \"test/1s\"]"
    );
    // A name no resource serves: the SDK reports Taubyte's errno 22.
    let refused = server.get("/db?name=nothing").await;
    assert!(
        refused
            .text()
            .starts_with("DatabaseTest databasetest failed with:"),
        "{}",
        refused.text()
    );
}

/// Raw calls on a WAT guest: each errno as decimal digits, `,`-separated.
#[tokio::test]
async fn bad_handles_and_pointers_are_errnos_never_a_host_panic() {
    let p = project();
    let wat = r#"(module
        (import "taubyte/sdk" "eventHttpWrite" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "taubyte/sdk" "newDatabase" (func $new (param i32 i32 i32) (result i32)))
        (import "taubyte/sdk" "databasePut" (func $put (param i32 i32 i32 i32 i32) (result i32)))
        (import "taubyte/sdk" "databaseGetSize" (func $size (param i32 i32 i32 i32) (result i32)))
        (import "taubyte/sdk" "databaseGet" (func $get (param i32 i32 i32 i32) (result i32)))
        (import "taubyte/sdk" "databaseClose" (func $close (param i32) (result i32)))
        (import "taubyte/sdk" "putGlobalValue" (func $gput (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "notes")
        (data (i32.const 32) "key")
        (global $out (mut i32) (i32.const 1024))
        ;; Appends errno `e` (two digits) and a comma to the answer.
        (func $say (param $e i32)
            (i32.store8 (global.get $out) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
            (i32.store8 (i32.add (global.get $out) (i32.const 1)) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
            (i32.store8 (i32.add (global.get $out) (i32.const 2)) (i32.const 44))
            (global.set $out (i32.add (global.get $out) (i32.const 3))))
        (func (export "h") (param $id i32)
            ;; Unknown handle, handle 0, a name past memory, a null id pointer.
            (call $say (call $put (i32.const 99) (i32.const 32) (i32.const 3) (i32.const 0) (i32.const 0)))
            (call $say (call $size (i32.const 0) (i32.const 32) (i32.const 3) (i32.const 200)))
            (call $say (call $new (i32.const 65530) (i32.const 100) (i32.const 200)))
            (call $say (call $new (i32.const 16) (i32.const 5) (i32.const 0)))
            ;; A real handle (1), then a key past memory, a value past memory, a size
            ;; pointer past memory, a missing key, a get into a buffer past memory.
            (call $say (call $new (i32.const 16) (i32.const 5) (i32.const 200)))
            (call $say (call $put (i32.load (i32.const 200)) (i32.const 65535) (i32.const 9) (i32.const 0) (i32.const 0)))
            (call $say (call $put (i32.load (i32.const 200)) (i32.const 32) (i32.const 3) (i32.const 65535) (i32.const 9)))
            (call $say (call $size (i32.load (i32.const 200)) (i32.const 32) (i32.const 3) (i32.const 65534)))
            (call $say (call $size (i32.load (i32.const 200)) (i32.const 32) (i32.const 3) (i32.const 300)))
            (drop (call $put (i32.load (i32.const 200)) (i32.const 32) (i32.const 3) (i32.const 16) (i32.const 5)))
            (call $say (call $get (i32.load (i32.const 200)) (i32.const 32) (i32.const 3) (i32.const 65534)))
            ;; An empty key; closing twice; the closed handle.
            (call $say (call $put (i32.load (i32.const 200)) (i32.const 32) (i32.const 0) (i32.const 0) (i32.const 0)))
            (call $say (call $close (i32.load (i32.const 200))))
            (call $say (call $close (i32.load (i32.const 200))))
            (call $say (call $put (i32.load (i32.const 200)) (i32.const 32) (i32.const 3) (i32.const 0) (i32.const 0)))
            ;; A global whose value is past memory.
            (call $say (call $gput (i32.const 32) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 65535) (i32.const 9) (i32.const 9)))
            (drop (call $write (local.get $id) (i32.const 1024) (i32.sub (global.get $out) (i32.const 1024)) (i32.const 400)))))"#;
    let wasm = p.wat("raw", wat);
    p.http_function("raw", "GET", "/raw", "h", &wasm);
    let server = Server::start(p.path()).await;
    let reply = server.get("/raw").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        "25,25,03,04,00,03,03,03,29,03,24,00,25,25,03,"
    );
    assert_eq!(
        server.get("/kv?db=notes&op=get&key=key").await.text(),
        "notes",
        "served on"
    );
}
