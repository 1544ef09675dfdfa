//! The contract in `wisp-abi` against both of its other sides: what `wisp-sdk` really
//! imports (a guest built from source) and Taubyte's own errno list (`taubyte-sdk`).

use hyper::Method;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use wasmtime::{Engine, ExternType, Module, ValType};
use wisp_abi::imports::{ValType as AbiType, IMPORTS};
use wisp_abi::Errno;
use wisp_e2e::{repo, test_wasm, Project, Server};

fn wasm_type(ty: &ValType) -> AbiType {
    match ty {
        ValType::I32 => AbiType::I32,
        ValType::I64 => AbiType::I64,
        other => panic!("no import of the contract takes {other}"),
    }
}

/// A guest that calls `wisp_sdk::sys::every_import` imports every raw call the SDK
/// declares, each with the contract's signature; and the host links it and runs it.
#[tokio::test]
async fn every_import_wisp_sdk_declares_is_in_the_contract_and_links_against_the_host() {
    let wasm = test_wasm("abi");
    let module = Module::from_file(&Engine::default(), &wasm).expect("the abi guest compiles");
    let mut imported = HashMap::new();
    for import in module.imports() {
        if import.module() == "wasi_snapshot_preview1" {
            continue;
        }
        let ExternType::Func(func) = import.ty() else {
            panic!("{}::{} is not a function", import.module(), import.name());
        };
        let params: Vec<_> = func.params().map(|t| wasm_type(&t)).collect();
        let results: Vec<_> = func.results().map(|t| wasm_type(&t)).collect();
        imported.insert(
            (import.module().to_owned(), import.name().to_owned()),
            (params, results),
        );
    }
    for import in IMPORTS {
        let key = (import.module.to_owned(), import.name.to_owned());
        let Some((params, results)) = imported.remove(&key) else {
            panic!(
                "wisp-sdk does not import {}::{}",
                import.module, import.name
            );
        };
        assert_eq!(params, import.params, "{}'s parameters", import.name);
        assert_eq!(results, import.results, "{}'s results", import.name);
    }
    assert!(
        imported.is_empty(),
        "imports outside the contract: {imported:?}"
    );

    let project = Project::new();
    project.http_function("imports", "GET", "/imports", "imports", &wasm);
    let server = Server::start(project.path()).await;
    let reply = server
        .send(Method::GET, "/imports", &[], Default::default())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "linked");
}

/// Where cargo unpacked `taubyte-sdk`, the dependency of the `compat` guest.
fn taubyte_sdk() -> PathBuf {
    let manifest = repo().join("tests/guests/Cargo.toml");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let package = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "taubyte-sdk")
        .expect("the compat guest depends on taubyte-sdk");
    PathBuf::from(package["manifest_path"].as_str().expect("a manifest path"))
        .parent()
        .expect("a crate folder")
        .to_owned()
}

/// Every errno name and number in Taubyte's Rust SDK is the contract's. (Its list stops
/// at 116 and ends with `ErrorCap`; Taubyte's Go SDK, which the contract follows past
/// 116, has eight more before its `ErrorCap`.)
#[test]
fn errno_names_and_numbers_are_taubytes() {
    let source = std::fs::read_to_string(taubyte_sdk().join("src/errno/mod.rs"))
        .expect("reading taubyte-sdk's errno list");
    let body = source
        .split_once("pub enum Errno {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .expect("taubyte-sdk declares `pub enum Errno { ... }`")
        .0;
    let names: Vec<&str> = body
        .lines()
        .map(|line| line.trim().trim_end_matches(','))
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect();
    assert_eq!(names.last(), Some(&"ErrorCap"));
    assert_eq!(names.len(), 118, "{names:?}");
    for (code, name) in names[..117].iter().enumerate() {
        let errno = Errno::from_code(code as u32);
        assert_eq!(errno.taubyte_name(), Some(*name), "errno {code}");
        assert_eq!(errno.code(), code as u32);
    }
    assert_eq!(Errno::Cap.taubyte_name(), Some("ErrorCap"));
}
