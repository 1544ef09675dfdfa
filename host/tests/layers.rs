//! The host's modules point one way: each may use those below it, never one above.
//!
//! ```text
//! project ← state, egress ← abi ← runtime ← messaging ← load ← server ← main
//! ```
//!
//! `project` is the YAML model; `state` what functions keep (SQLite, JetStream); `egress`
//! where their outbound HTTP may go, and the client it goes through; `abi` the host calls, over a state it owns and a small
//! trait for messaging (`abi::Channels`); `runtime` runs modules with those calls;
//! `messaging` implements the trait and invokes pub/sub functions through the runtime;
//! `load` turns a project into all of that; `server` serves it. Where a lower layer needs
//! a higher one, it defines a trait and the higher one implements it.

use std::path::{Path, PathBuf};

/// Each module, with the modules it may use.
const LAYERS: &[(&str, &[&str])] = &[
    ("allocator", &[]),
    // What the server counts: every layer counts into it.
    ("metrics", &[]),
    ("project", &[]),
    ("builder", &["project"]),
    // `wisp dev`'s watch on the project's files.
    ("watch", &[]),
    // What functions keep (databases, storages, globals): below the host calls, which use
    // it, so that messaging (channel history) can use it too.
    ("state", &["metrics", "project"]),
    // Which addresses a guest's outbound HTTP may reach.
    ("egress", &["project"]),
    ("abi", &["project", "state", "egress"]),
    ("runtime", &["metrics", "project", "state", "egress", "abi"]),
    (
        "messaging",
        &["metrics", "project", "state", "abi", "runtime"],
    ),
    (
        "load",
        &["project", "state", "egress", "abi", "runtime", "messaging"],
    ),
    // The server trims the heap (allocator) once a crowd of connections has closed.
    (
        "server",
        &[
            "allocator",
            "metrics",
            "project",
            "state",
            "egress",
            "abi",
            "runtime",
            "messaging",
            "load",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading host/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `source` names with `crate::`.
fn used(source: &str) -> Vec<&str> {
    let mut used = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let mut names = vec![rest];
        // `use crate::{a::x, b};`
        if let Some(group) = rest.strip_prefix('{') {
            names = group
                .split('}')
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
        }
        for name in names {
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            used.push(&name[..end]);
        }
    }
    used
}

#[test]
fn no_module_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a file name")
            .trim_end_matches(".rs");
        if matches!(top, "lib" | "main" | "settings") {
            continue; // the crate root and the binary may use everything
        }
        let (_, allowed) = LAYERS
            .iter()
            .find(|(module, _)| *module == top)
            .unwrap_or_else(|| panic!("{top} is not in LAYERS: place it in the stack"));
        let source = std::fs::read_to_string(&file).expect("reading a source file");
        for name in used(&source) {
            assert!(
                name == top || name.is_empty() || allowed.contains(&name),
                "{} uses crate::{name}, a module above `{top}`",
                relative.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} files were checked");
}

#[test]
fn the_check_sees_every_form_of_use() {
    assert_eq!(used("use crate::abi::X;"), ["abi"]);
    assert_eq!(
        used("use crate::{messaging::Hub, runtime};"),
        ["messaging", "runtime"]
    );
    assert_eq!(used("let x = crate::server::health::PATH;"), ["server"]);
}
