//! `functions/*.yaml`: what triggers a function, its limits, and where its wasm is.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::diagnostics::hint;
use super::egress::Allow;
use super::locate::dotted;
use super::units::{parse_duration, parse_size};
use super::yaml::Map;

/// `execution.timeout` when not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// `execution.memory` when not given: 64MB.
pub const DEFAULT_MEMORY: u64 = 64_000_000;

/// A function resource.
///
/// Its wasm file is `wisp.wasm` when given (relative to the project root, and inside it). Else,
/// with `source: .` (the default) it is `<root>/artifacts/<function name>.wasm`, or for a function
/// of application `<app>`, `<root>/applications/<app>/artifacts/<function name>.wasm`; with
/// `source: libraries/<lib>` it is `<root>/artifacts/<lib>.wasm`. Whether the file exists is
/// not checked here.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub application: Option<String>,
    /// Relative to the project root.
    pub file: PathBuf,
    pub id: String,
    pub description: String,
    pub tags: Vec<String>,
    pub trigger: Trigger,
    pub timeout: Duration,
    /// Bytes.
    pub memory: u64,
    /// The wasm export to call (`execution.call`).
    pub call: String,
    /// Line of `execution.call`, for errors about the export.
    pub call_line: Option<usize>,
    /// The line of `execution.memory`, for problems found when the module is loaded.
    pub memory_line: Option<usize>,
    /// `.` or `libraries/<name>`.
    pub source: String,
    /// Absolute path of the wasm module.
    pub wasm: PathBuf,
    /// Absolute path of the guest crate that builds the wasm (`wisp.build`), a developer hint.
    pub build: Option<PathBuf>,
    /// What its outbound HTTP may reach beyond public addresses (`wisp.egress`), on top of
    /// the serve settings' allow list.
    pub egress: Vec<Allow>,
    /// Which other origins' pages may call it (`wisp.cors`), if not the project's.
    pub cors: super::cors::FunctionCors,
}

/// What runs a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Http {
        /// Upper-case.
        method: String,
        /// Exact paths, each starting with `/`.
        paths: Vec<String>,
        /// Lower-case host names of the listed domains; empty for any host.
        hosts: Vec<String>,
        /// The trigger type was `https`.
        secure: bool,
    },
    PubSub {
        channel: String,
        local: bool,
        /// Wisp only (`wisp.presence-events`): the function gets the channel's joins and
        /// leaves (`wisp.presence`), as JSON, instead of its messages.
        presence_events: bool,
    },
    /// Read, but not served by Wisp.
    P2p { service: String, command: String },
}

/// A domain name a function refers to, resolved once every domain is read.
#[derive(Debug, Clone)]
pub(crate) struct DomainRef {
    pub name: String,
    pub field: String,
    pub line: Option<usize>,
}

/// A function file with what the cross-file checks need, read even when the function itself
/// is unusable so that those checks still report on it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub function: Option<Function>,
    pub file: PathBuf,
    pub application: Option<String>,
    pub domains: Vec<DomainRef>,
    /// Line of each of `trigger.paths`.
    pub path_lines: Vec<Option<usize>>,
}

const TRIGGER_TYPES: [&str; 4] = ["http", "https", "pubsub", "p2p"];

/// Reads a function file; `function` is `None` when it has no usable trigger or call. `root`
/// is absolute.
pub(crate) fn parse(
    top: Map,
    root: &Path,
    name: &str,
    application: Option<&str>,
    file: PathBuf,
) -> Parsed {
    let id = top.string("id").unwrap_or_default();
    let description = top.string("description").unwrap_or_default();
    let tags = top.strings("tags");
    top.strings("smartops");
    let source = top.string("source").unwrap_or_default();
    let mut domains = domain_refs(&top, "domains");

    let trigger_map = top.section("trigger");
    let mut trigger = trigger(&trigger_map);
    let mut path_lines = Vec::new();
    if let Some(Trigger::Http { paths, .. }) = &trigger {
        path_lines = (0..paths.len())
            .map(|i| trigger_map.line_of(&trigger_map.item_path("paths", i)))
            .collect();
    }
    for domain in domain_refs(&trigger_map, "domains") {
        if !domains.iter().any(|d| d.name == domain.name) {
            domains.push(domain);
        }
    }
    trigger_map.finish();

    let execution = top.section("execution");
    let timeout = limit(&execution, "timeout", parse_duration).unwrap_or(DEFAULT_TIMEOUT);
    let memory = limit(&execution, "memory", parse_memory).unwrap_or(DEFAULT_MEMORY);
    let memory_line = execution.line_of(&execution.path_of("memory"));
    let call = execution.required_string("call", " (the name of the wasm export to run)");
    let call_line = execution.line_of(&execution.path_of("call"));
    execution.finish();

    let wisp = top.section("wisp");
    let wasm = wisp.string("wasm").and_then(|path| match inside(&path) {
        Ok(path) => Some(root.join(path)),
        Err(problem) => {
            wisp.error("wasm", format!("`{path}` {problem}"));
            None
        }
    });
    let build = wisp.string("build").map(|path| {
        let build = root.join(&path);
        if !build.is_dir() {
            wisp.warning("build", format!("build folder `{path}` does not exist"));
        }
        build
    });
    let egress = wisp
        .strings("egress")
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| match entry.parse::<Allow>() {
            Ok(allow) => Some(allow),
            Err(problem) => {
                wisp.error_at(&wisp.item_path("egress", i), problem);
                None
            }
        })
        .collect();
    if let Some(asked) = wisp.bool("presence-events") {
        match &mut trigger {
            Some(Trigger::PubSub {
                presence_events, ..
            }) => *presence_events = asked,
            Some(_) => wisp.error(
                "presence-events",
                "presence events go to a function with a `pubsub` trigger",
            ),
            None => {}
        }
    }
    let cors = super::cors::function(&wisp);
    if cors != super::cors::FunctionCors::Project
        && !matches!(trigger, Some(Trigger::Http { .. }) | None)
    {
        wisp.warning(
            "cors",
            "CORS is for functions with an http or https trigger; ignored",
        );
    }
    wisp.finish();

    let source = match source.as_str() {
        "" | "./" => ".".to_string(),
        other => other.trim_end_matches('/').to_string(),
    };
    let artifact = default_wasm(root, &source, name, application).unwrap_or_else(|| {
        let message = format!("`source` must be `.` or `libraries/<name>`, not `{source}`");
        top.error("source", message);
        root.join("artifacts").join(format!("{name}.wasm"))
    });
    top.finish();

    let function = trigger.zip(call).map(|(trigger, call)| Function {
        name: name.to_string(),
        application: application.map(str::to_string),
        file: file.clone(),
        id,
        description,
        tags,
        trigger,
        timeout,
        memory,
        call,
        call_line,
        memory_line,
        source,
        wasm: wasm.unwrap_or(artifact),
        build,
        egress,
        cors,
    });
    Parsed {
        function,
        file,
        application: application.map(str::to_string),
        domains,
        path_lines,
    }
}

fn trigger(t: &Map) -> Option<Trigger> {
    let kind = t.required_string("type", " (http, https, pubsub or p2p)");
    let method = t.string("method");
    let paths = t.strings("paths");
    let channel = t.string("channel");
    let local = t.bool("local").unwrap_or(false);
    let service = t.string("service").unwrap_or_default();
    let command = t.string("command").unwrap_or_default();
    match kind?.to_ascii_lowercase().as_str() {
        kind @ ("http" | "https") => {
            let method = match method {
                Some(m) if METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
                    Some(m.to_ascii_uppercase())
                }
                Some(m) => {
                    t.error("method", unknown_method(&m));
                    None
                }
                None if t.has("method") => None,
                None => {
                    t.error(
                        "",
                        format!("missing `method` (an {kind} trigger needs one)"),
                    );
                    None
                }
            };
            let paths_ok = check_paths(t, &paths, kind);
            Some(Trigger::Http {
                method: method?,
                paths: paths_ok.then_some(paths)?,
                hosts: Vec::new(),
                secure: kind == "https",
            })
        }
        "pubsub" => match channel {
            Some(channel) if !channel.is_empty() => Some(Trigger::PubSub {
                channel,
                local,
                presence_events: false,
            }),
            _ if t.has("channel") => {
                t.error("channel", "the channel must not be empty");
                None
            }
            _ => {
                t.error("", "missing `channel` (a pubsub trigger needs one)");
                None
            }
        },
        "p2p" => {
            t.warning(
                "type",
                "p2p triggers are not served by Wisp; function skipped",
            );
            Some(Trigger::P2p { service, command })
        }
        other => {
            let hint = hint(other, TRIGGER_TYPES);
            t.error(
                "type",
                format!("unknown trigger type `{other}`{hint} (use http, https, pubsub or p2p)"),
            );
            None
        }
    }
}

/// Checks `trigger.paths` of an http trigger; false when unusable.
fn check_paths(t: &Map, paths: &[String], kind: &str) -> bool {
    if !t.has_key("paths") {
        t.error(
            "",
            format!("missing `paths` (an {kind} trigger needs at least one)"),
        );
        return false;
    }
    if paths.is_empty() {
        // A value of the wrong type, or with items of the wrong type, was reported when read.
        let reported = t
            .get("paths")
            .is_some_and(|v| v.as_sequence().is_none_or(|s| !s.is_empty()));
        if !reported {
            t.error(
                "paths",
                format!("an {kind} trigger needs at least one path"),
            );
        }
        return false;
    }
    let mut ok = true;
    for (i, path) in paths.iter().enumerate() {
        let at = t.item_path("paths", i);
        if !path.starts_with('/') {
            t.error_at(&at, format!("path `{path}` must start with `/`"));
            ok = false;
        } else if paths[..i].contains(path) {
            t.warning_at(&at, format!("path `{path}` is listed twice"));
        }
    }
    ok
}

/// Reads `execution.timeout` or `execution.memory`; `None` (and a report) when invalid.
/// The HTTP methods a trigger may name.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// `method` in upper case if it is one of [`METHODS`], else why not.
pub(super) fn http_method(method: &str) -> Result<String, String> {
    let upper = method.to_ascii_uppercase();
    match METHODS.contains(&upper.as_str()) {
        true => Ok(upper),
        false => Err(unknown_method(method)),
    }
}

/// Why `method` is refused, with the method it most likely meant.
fn unknown_method(method: &str) -> String {
    match super::diagnostics::did_you_mean(method, METHODS) {
        Some(known) => format!("`{method}` is not an HTTP method; did you mean `{known}`?"),
        None => format!(
            "`{method}` is not an HTTP method (use one of {})",
            METHODS.join(", ")
        ),
    }
}

/// One wasm page: no module runs in less memory.
const WASM_PAGE: u64 = 64 << 10;

/// `execution.memory`: a size (a bare number is bytes, as in Taubyte's files), at least one
/// wasm page; a smaller one is almost always a unit left out or mistaken, and said so.
fn parse_memory(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes == 0 || bytes >= WASM_PAGE {
        return Ok(bytes);
    }
    let number: String = text
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let meant = format!("{number}MB");
    let read = match text.trim().chars().all(|c| c.is_ascii_digit()) {
        true => format!(
            "a bare number is bytes, so `{}` is {bytes} bytes",
            text.trim()
        ),
        false => format!("`{}` is {bytes} bytes", text.trim()),
    };
    Err(format!(
        "{read}, less than one 64 KiB wasm page, and no module runs in that; did you mean `{meant}`?"
    ))
}

fn limit<T: Default + PartialEq>(
    execution: &Map,
    key: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    match parse(&execution.string(key)?) {
        Ok(value) if value == T::default() => {
            execution.error(key, format!("`{key}` must be greater than zero"));
            None
        }
        Ok(value) => Some(value),
        Err(message) => {
            execution.error(key, message);
            None
        }
    }
}

fn domain_refs(map: &Map, key: &'static str) -> Vec<DomainRef> {
    let names = map.strings(key);
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let path = map.item_path(key, i);
            DomainRef {
                name,
                field: dotted(&path),
                line: map.line_of(&path),
            }
        })
        .collect()
}

/// Where the wasm is when `wisp.wasm` is not given (see [`Function`]); `None` when `source` is
/// neither `.` nor `libraries/<name>`.
fn default_wasm(root: &Path, source: &str, name: &str, app: Option<&str>) -> Option<PathBuf> {
    if source == "." {
        let base = match app {
            Some(app) => root.join("applications").join(app),
            None => root.to_path_buf(),
        };
        return Some(base.join("artifacts").join(format!("{name}.wasm")));
    }
    let library = source.strip_prefix("libraries/")?;
    let plain = !matches!(library, "" | "." | "..") && !library.contains(['/', '\\']);
    plain.then(|| root.join("artifacts").join(format!("{library}.wasm")))
}

/// `path` made lexically clean, if it is relative and stays inside the project root.
fn inside(path: &str) -> Result<PathBuf, &'static str> {
    let mut clean = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return Err("leaves the project folder: give a path inside it");
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("must be relative to the project folder");
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err("does not name a file");
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_under_one_page_says_what_was_meant() {
        let bare = parse_memory("32").unwrap_err();
        assert!(
            bare.contains("a bare number is bytes") && bare.contains("`32MB`"),
            "{bare}"
        );
        let small = parse_memory("32KB").unwrap_err();
        assert!(
            small.contains("32000 bytes") && small.contains("`32MB`"),
            "{small}"
        );
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory("64KiB"), Ok(64 << 10));
        assert_eq!(parse_memory("32MB"), Ok(32_000_000));
    }

    #[test]
    fn an_unknown_method_is_refused_with_the_nearest_one() {
        assert_eq!(
            unknown_method("GETT"),
            "`GETT` is not an HTTP method; did you mean `GET`?"
        );
        assert_eq!(
            unknown_method("post2"),
            "`post2` is not an HTTP method; did you mean `POST`?"
        );
        assert!(unknown_method("FETCHALL").contains("use one of GET, HEAD"));
    }

    #[test]
    fn default_wasm_locations() {
        let root = Path::new("/p");
        let at = |source, app| default_wasm(root, source, "ping", app);
        assert_eq!(at(".", None), Some("/p/artifacts/ping.wasm".into()));
        assert_eq!(
            at(".", Some("shop")),
            Some("/p/applications/shop/artifacts/ping.wasm".into())
        );
        assert_eq!(
            at("libraries/tools", None),
            Some("/p/artifacts/tools.wasm".into())
        );
        assert_eq!(
            at("libraries/tools", Some("shop")),
            Some("/p/artifacts/tools.wasm".into())
        );
        assert_eq!(at("libraries/..", None), None);
        assert_eq!(at("libraries/a/b", None), None);
        assert_eq!(at("lib/a", None), None);
    }

    #[test]
    fn wasm_paths_stay_inside() {
        assert_eq!(inside("a/b.wasm"), Ok(PathBuf::from("a/b.wasm")));
        assert_eq!(inside("./a/../b.wasm"), Ok(PathBuf::from("b.wasm")));
        assert!(inside("../b.wasm").unwrap_err().contains("leaves"));
        assert!(inside("a/../../b.wasm").unwrap_err().contains("leaves"));
        assert!(inside("/etc/b.wasm").unwrap_err().contains("relative"));
        assert!(inside(".").unwrap_err().contains("file"));
    }
}
