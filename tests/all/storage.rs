//! Storages (`storages/*.yaml`) end to end: a `wisp-sdk` guest walks the storage calls and
//! their errnos, and a guest written against Taubyte's own SDK runs Taubyte's storage test.

use wisp_e2e::{test_wasm, Project, Server};

/// A project with storages `media` (versioned, 1000 bytes), `plain` (no versions, 64 bytes)
/// and `/basic/123` (versioned, 5000 bytes, matched by a regex as Taubyte's tests name it).
fn project() -> Project {
    let p = Project::new();
    p.file(
        "storages/media.yaml",
        "id: QmMedia\nmatch: media\nobject:\n  versioning: true\n  size: 1KB\n",
    );
    p.file("storages/plain.yaml", "match: plain\nobject:\n  size: 64\n");
    p.file(
        "storages/basic.yaml",
        "match: ^/basic/[0-9]+$\nuseRegex: true\nobject:\n  versioning: true\n  size: 5000\n",
    );
    p
}

/// The binary CIDv1 (raw, sha2-256) of `data`, in hex.
fn cid_hex(data: &[u8]) -> String {
    let cid = wisp::abi::storage::raw_cid(data);
    cid.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_wisp_sdk_guest_adds_versions_reads_lists_and_deletes() {
    let p = project();
    p.http_function("walk", "GET", "/walk", "storage_walk", &test_wasm("abi"));
    let server = Server::start(p.path()).await;
    let reply = server.get("/walk").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    let cid = lines
        .iter()
        .find_map(|l| l.strip_prefix("cid=ok:"))
        .expect("a cid line");
    assert!(cid.starts_with("bafkrei"), "{cid}");
    let want = [
        "add1=ok:1".to_owned(),
        "add2=ok:2".into(),
        "read1=ok:first version".into(),
        "read_latest=ok:second version".into(),
        "current=ok:2".into(),
        "versions=ok:1,2".into(),
        format!("cid=ok:{cid}"),
        format!("cid_hex=ok:{}", cid_hex(b"second version")),
        "files=ok:video@1,video@2".into(),
        // A file costs its name and its content: 5 + 13 and 5 + 14.
        "used=ok:37".into(),
        "capacity=ok:1000".into(),
        "remaining=ok:963".into(),
        "delete1=ok:done".into(),
        "after_delete=ok:2".into(),
        "overwrite=ok:2".into(),
        "read_overwritten=ok:SECOND".into(),
        "delete_all=ok:done".into(),
        "after_delete_all=err:36".into(),
        "used_at_end=ok:0".into(),
    ];
    assert_eq!(lines, want);
}

#[tokio::test]
async fn bad_handles_pointers_and_a_file_past_capacity_are_errnos() {
    let p = project();
    p.http_function(
        "errors",
        "GET",
        "/errors",
        "storage_errors",
        &test_wasm("abi"),
    );
    let server = Server::start(p.path()).await;
    let reply = server.get("/errors").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            // No resource: 22 from storageNew (as Taubyte), 92 from storageGet.
            "unknown_name_new=err:22",
            "unknown_name_open=err:92",
            // Past the storage's 64 bytes: refused whole, nothing stored.
            "past_capacity=err:31",
            "used_after_refusal=ok:0",
            "capacity=ok:64",
            // No versioning: version 1 only, a second add must overwrite.
            "first_add=ok:1",
            "second_add=err:31",
            "overwrite=ok:1",
            "read_back=ok:z",
            "versions=ok:1",
            "empty_name=err:31",
            "missing_file=err:90",
            "missing_cid=err:90",
            "missing_delete=err:33",
            "missing_versions=err:36",
            // A read that fills the buffer is 0; EOF (8) only on the read with nothing left.
            "get_file=0",
            "exact_read=0:1:z",
            "read_at_end=8:0",
            "fd_of_other_storage=35",
            "close=0",
            "close_again=35",
            "unknown_fd=35",
            "unknown_storage=92",
            "handle_zero=92",
            "nil_out_pointer=4",
            "data_out_of_memory=3",
            "name_out_of_memory=3",
            "files_without_size=93",
            "current_without_size=36",
            "cid_out_of_memory=3",
            "used_at_end=ok:2",
        ]
    );
}

/// Taubyte's `storagetest` (its `storage.go` fixture's steps) through `taubyte-sdk` 0.1.6.
#[tokio::test]
async fn taubyte_sdk_guest_passes_taubytes_storage_test() {
    let p = project();
    p.http_function(
        "storage",
        "GET",
        "/storage",
        "storagetest",
        &test_wasm("compat"),
    );
    let server = Server::start(p.path()).await;
    let reply = server.get("/storage").await;
    assert_eq!(reply.text(), r#"{"ping": "pong"}"#);
    assert_eq!(reply.status, 200);
}

/// Files outlive the invocation and the server: a second server on the same project reads
/// what the first stored.
#[tokio::test]
async fn stored_files_survive_a_restart() {
    let p = project();
    p.http_function("walk", "GET", "/walk", "storage_walk", &test_wasm("abi"));
    p.http_function(
        "storage",
        "GET",
        "/storage",
        "storagetest",
        &test_wasm("compat"),
    );
    {
        let server = Server::start(p.path()).await;
        assert_eq!(server.get("/storage").await.status, 200);
    }
    let server = Server::start(p.path()).await;
    // Taubyte's test adds `video` as version 1 again: with version 2 still stored, it is 3.
    let reply = server.get("/storage").await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.text().contains("first add gave version 3"),
        "{}",
        reply.text()
    );
}
