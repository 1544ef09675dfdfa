//! Reads a project folder laid out like a Taubyte project into a validated [`Project`].
//!
//! # Layout
//!
//! ```text
//! <root>/config.yaml                 required: id, name, description, tags, notification.email;
//!                                    Wisp only: wisp.origins (see [`Project::origins`]),
//!                                    wisp.cors (see [`cors`])
//! <root>/functions/<name>.yaml       a function; the file stem is its name
//! <root>/messaging/<name>.yaml       channels that may be used, and their WebSocket bridge
//! <root>/domains/<name>.yaml         a host name (fqdn) that functions refer to by name
//! <root>/applications/<app>/         an application: config.yaml (optional), and functions/,
//!                                    messaging/, domains/ like the project's
//! <root>/databases/<name>.yaml       a key-value database functions open by name (see [`state`])
//! <root>/storages/<name>.yaml        an object storage, likewise
//! <root>/artifacts/<name>.wasm       compiled functions (see below)
//! ```
//!
//! `.yml` is read like `.yaml`; other files and folders (`libraries/`, `websites/`,
//! ...) are ignored.
//!
//! # Where a function's wasm is
//!
//! 1. `wisp: {wasm: <path>}` in the function's YAML, relative to the project root and inside it;
//! 2. else, for `source: .` (the default), `<root>/artifacts/<function name>.wasm`, or for a
//!    function of an application, `<root>/applications/<app>/artifacts/<function name>.wasm`;
//! 3. else, for `source: libraries/<lib>`, `<root>/artifacts/<lib>.wasm`.
//!
//! `wisp: {build: <path>}` names the guest crate that builds it, for developer tooling.
//!
//! # Problems
//!
//! [`load`] reports every problem it finds, each with file, line and field, rather than stopping
//! at the first: syntax errors, unknown fields (with a did-you-mean), wrong types, missing or
//! invalid values, unknown domain names, two functions serving one route, two files defining one
//! resource.

mod checks;
pub mod cors;
mod diagnostics;
mod domain;
pub mod egress;
mod function;
mod locate;
mod matcher;
mod messaging;
mod scan;
mod state;
mod units;
mod yaml;

#[cfg(test)]
mod golden;

use std::path::{Path, PathBuf};

pub use diagnostics::{Diagnostic, Severity};
pub use domain::Domain;
pub use function::{Function, Trigger, DEFAULT_MEMORY, DEFAULT_TIMEOUT};
pub use matcher::ChannelMatcher;
pub use messaging::{History, Messaging};
pub use state::{select, StateResource};
pub use units::{parse_duration, parse_size, GoDuration, Size};

/// A project folder, read and validated.
#[derive(Debug, Clone)]
pub struct Project {
    /// Absolute.
    pub root: PathBuf,
    pub id: String,
    /// `name` from `config.yaml`, else the folder's name.
    pub name: String,
    pub functions: Vec<Function>,
    pub messaging: Vec<Messaging>,
    pub domains: Vec<Domain>,
    /// The folders of `applications/`, sorted.
    pub applications: Vec<String>,
    /// `databases/*.yaml`, the project's then each application's, in file-name order.
    pub databases: Vec<StateResource>,
    /// `storages/*.yaml`, in the same order.
    pub storages: Vec<StateResource>,
    /// `wisp: {origins: [...]}` in `config.yaml`: the only origins (`https://example.com`)
    /// whose pages may open the project's WebSockets, against other sites' pages
    /// using a visitor's browser. `None`, the default: any page may.
    pub origins: Option<Vec<String>>,
    /// `wisp: {cors: {...}}` in `config.yaml`: which other origins' pages may call the
    /// HTTP functions (each function may replace it). `None`, the default: none may.
    pub cors: Option<cors::Cors>,
}

/// What [`load`] found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `None` when any diagnostic is an error.
    pub project: Option<Project>,
    /// Sorted by file, then line.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads the project folder at `root`. Never fails: problems are in [`Loaded::diagnostics`].
pub fn load(root: &Path) -> Loaded {
    let mut diagnostics = Vec::new();
    let project = read_project(root, &mut diagnostics);
    diagnostics::sort(&mut diagnostics);
    let project = project.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Loaded {
        project,
        diagnostics,
    }
}

fn read_project(given: &Path, diagnostics: &mut Vec<Diagnostic>) -> Option<Project> {
    if !given.is_dir() {
        let message = match given.exists() {
            true => format!(
                "{} is not a folder: give the project folder",
                given.display()
            ),
            false => format!("project folder {} does not exist", given.display()),
        };
        diagnostics.push(Diagnostic::error("", None, "", message));
        return None;
    }
    let Some(config_file) = scan::config_file(given, Path::new("")) else {
        let message = format!(
            "config.yaml not found in {}: is this a Taubyte project folder?",
            given.display()
        );
        diagnostics.push(Diagnostic::error("", None, "", message));
        return None;
    };
    let root = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
    let config = scan::read(&root, &config_file, diagnostics, |top| {
        scan::config(top, true)
    })
    .unwrap_or_default();

    let applications = scan::applications(&root, diagnostics);
    let scopes = std::iter::once((None, PathBuf::new())).chain(
        applications
            .iter()
            .map(|app| (Some(app.as_str()), Path::new("applications").join(app))),
    );
    let (mut functions, mut messaging, mut domains) = (Vec::new(), Vec::new(), Vec::new());
    let (mut databases, mut storages) = (Vec::new(), Vec::new());
    for (app, dir) in scopes {
        if app.is_some() {
            if let Some(file) = scan::config_file(&root, &dir) {
                scan::read(&root, &file, diagnostics, |top| scan::config(top, false));
            }
        }
        for (name, file) in scan::resources(&root, &dir.join("domains"), "domain", diagnostics) {
            let parsed = scan::read(&root, &file, diagnostics, |top| {
                domain::parse(top, &name, app, file.clone())
            });
            domains.extend(parsed.flatten());
        }
        let kind = "messaging";
        for (name, file) in scan::resources(&root, &dir.join(kind), kind, diagnostics) {
            let parsed = scan::read(&root, &file, diagnostics, |top| {
                messaging::parse(top, &name, app, file.clone())
            });
            messaging.extend(parsed.flatten());
        }
        for (kind, folder, into) in [
            (state::Kind::Database, "databases", &mut databases),
            (state::Kind::Storage, "storages", &mut storages),
        ] {
            let what = &folder[..folder.len() - 1];
            for (name, file) in scan::resources(&root, &dir.join(folder), what, diagnostics) {
                let parsed = scan::read(&root, &file, diagnostics, |top| {
                    state::parse(top, kind, &name, app, file.clone())
                });
                into.extend(parsed.flatten());
            }
        }
        for (name, file) in scan::resources(&root, &dir.join("functions"), "function", diagnostics)
        {
            let parsed = scan::read(&root, &file, diagnostics, |top| {
                function::parse(top, &root, &name, app, file.clone())
            });
            functions.extend(parsed);
        }
    }
    checks::resolve_domains(&mut functions, &domains, diagnostics);
    checks::duplicate_routes(&functions, diagnostics);

    let folder_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(Project {
        id: config.id,
        name: config.name.unwrap_or(folder_name),
        root,
        functions: functions.into_iter().filter_map(|p| p.function).collect(),
        messaging,
        domains,
        applications,
        databases,
        storages,
        origins: config.origins,
        cors: config.cors,
    })
}
