//! Golden tests over `tests/fixtures/projects/{valid,invalid}/<case>/`.
//!
//! Each case folder is a project with an `expected.txt`: for a valid case a summary of what was
//! read (one line per resource, then any warnings), for an invalid case the diagnostics, one
//! per line. The project folder's path is written `<root>`. `WISP_BLESS=1` rewrites the
//! expected files; `WISP_FIXTURES` points at another fixtures folder.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::cors::{Cors, FunctionCors};
use super::{load, Loaded, Project, Trigger};

fn fixtures() -> PathBuf {
    std::env::var_os("WISP_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/projects").into()
        })
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixtures folder {}: {e}", dir.display()))
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn summary(project: &Project) -> String {
    let mut out = String::new();
    let apps = project.applications.join(", ");
    let (id, name) = (&project.id, &project.name);
    writeln!(out, "project {name} id={id} applications=[{apps}]").unwrap();
    if let Some(cors) = &project.cors {
        writeln!(out, "cors {}", cors_summary(cors)).unwrap();
    }
    let scoped = |app: &Option<String>, name: &str| match app {
        Some(app) => format!("{app}/{name}"),
        None => name.to_string(),
    };
    for d in &project.domains {
        let name = scoped(&d.application, &d.name);
        writeln!(out, "domain {name} ({}) fqdn={}", d.file.display(), d.fqdn).unwrap();
    }
    for m in &project.messaging {
        let name = scoped(&m.application, &m.name);
        let (style, pattern) = (m.matcher.style(), m.matcher.pattern());
        let (ws, mqtt, local) = (m.websocket, m.mqtt, m.local);
        writeln!(
            out,
            "messaging {name} ({}) {style} `{pattern}` websocket={ws} mqtt={mqtt} local={local}",
            m.file.display()
        )
        .unwrap();
    }
    for f in &project.functions {
        let trigger = match &f.trigger {
            Trigger::Http {
                method,
                paths,
                hosts,
                secure,
            } => {
                let scheme = if *secure { "https" } else { "http" };
                let hosts = if hosts.is_empty() {
                    "*".to_string()
                } else {
                    hosts.join(",")
                };
                format!("{scheme} {method} {} hosts={hosts}", paths.join(","))
            }
            Trigger::PubSub {
                channel,
                local,
                presence_events,
            } => match presence_events {
                true => format!("pubsub `{channel}` local={local} presence-events"),
                false => format!("pubsub `{channel}` local={local}"),
            },
            Trigger::P2p { service, command } => format!("p2p service={service} command={command}"),
        };
        let trigger = match &f.cors {
            FunctionCors::Project => trigger,
            FunctionCors::Off => format!("{trigger} cors=off"),
            FunctionCors::Own(cors) => format!("{trigger} cors=({})", cors_summary(cors)),
        };
        let line = f.call_line.map_or("?".to_string(), |l| l.to_string());
        let build = f
            .build
            .as_ref()
            .map_or("-".to_string(), |b| relative(&project.root, b));
        writeln!(
            out,
            "function {} ({}) {trigger} call={}@{line} timeout={:?} memory={} source={} wasm={} build={build}",
            scoped(&f.application, &f.name),
            f.file.display(),
            f.call,
            f.timeout,
            f.memory,
            f.source,
            relative(&project.root, &f.wasm),
        )
        .unwrap();
    }
    out
}

fn cors_summary(cors: &Cors) -> String {
    let origins = cors
        .origins
        .as_ref()
        .map_or("*".to_string(), |origins| origins.join(","));
    format!(
        "origins={origins} methods=[{}] headers=[{}] expose-headers=[{}] max-age={:?} credentials={}",
        cors.methods.join(","),
        cors.headers.join(","),
        cors.expose_headers.join(","),
        cors.max_age,
        cors.credentials
    )
}

fn render(loaded: &Loaded, root: &Path) -> String {
    let mut out = loaded.project.as_ref().map(summary).unwrap_or_default();
    for diagnostic in &loaded.diagnostics {
        writeln!(out, "{diagnostic}").unwrap();
    }
    out.replace(&root.display().to_string(), "<root>")
}

#[test]
fn golden_projects() {
    let bless = std::env::var("WISP_BLESS").is_ok_and(|v| v == "1");
    let base = fixtures();
    let mut failures = Vec::new();
    for (kind, valid) in [("valid", true), ("invalid", false)] {
        let cases = cases(&base.join(kind));
        assert!(
            cases.len() >= 6,
            "too few {kind} fixtures in {}",
            base.display()
        );
        for case in cases {
            let loaded = load(&case);
            let actual = render(&loaded, &case);
            let name = format!("{kind}/{}", case.file_name().unwrap().to_string_lossy());
            if loaded.has_errors() == valid {
                failures.push(format!(
                    "{name}: expected the project to be {kind}:\n{actual}"
                ));
            }
            let expected_file = case.join("expected.txt");
            if bless {
                fs::write(&expected_file, &actual).unwrap();
                continue;
            }
            let expected = fs::read_to_string(&expected_file).unwrap_or_default();
            if expected != actual {
                failures.push(format!(
                    "{name}: output differs from expected.txt\n--- expected\n{expected}--- actual\n{actual}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn missing_root_folder() {
    let loaded = load(Path::new("/no/such/wisp/project"));
    assert!(loaded.project.is_none());
    let lines: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        lines,
        ["error: project folder /no/such/wisp/project does not exist"]
    );
}

#[test]
fn paths_are_absolute_and_files_relative() {
    let case = fixtures().join("valid/applications");
    let loaded = load(&case);
    let project = loaded.project.expect("valid fixture");
    assert!(project.root.is_absolute());
    for function in &project.functions {
        assert!(function.wasm.is_absolute(), "{}", function.wasm.display());
        assert!(function.file.is_relative());
        assert!(project.root.join(&function.file).is_file());
    }
    let cart = project.functions.iter().find(|f| f.name == "cart").unwrap();
    assert_eq!(cart.application.as_deref(), Some("shop"));
    assert_eq!(cart.call_line, Some(8));
}
