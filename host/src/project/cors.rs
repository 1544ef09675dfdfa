//! `wisp.cors`: which other sites' pages may call the project's HTTP functions from a
//! browser (cross-origin resource sharing), in `config.yaml` for every function and in a
//! function's YAML for that one. Wisp only: Taubyte ignores `wisp:` blocks. Off unless
//! written.
//!
//! ```yaml
//! wisp:
//!   cors:
//!     origins: [https://app.example.com]   # or ['*']: any page (quoted: a bare * is YAML syntax)
//!     methods: [GET, POST]                 # optional: else the method the browser asks for
//!     headers: [Content-Type]              # optional: else the headers it asks for
//!     expose-headers: [X-Total]            # optional
//!     max-age: 10m                         # optional: how long a preflight is kept
//!     credentials: true                    # optional: cookies; needs listed origins
//! ```
//!
//! A function's `wisp.cors` replaces the project's whole; `cors: false` turns it off
//! for that function.

use std::time::Duration;

use serde_yaml::Value;

use super::scan::is_origin;
use super::units::parse_duration;
use super::yaml::{kind, Map};

/// How long a browser may keep a preflight's answer when `max-age` is not given.
/// Browsers keep it 5 s without one; ten minutes saves most repeats while a change of
/// settings still reaches pages soon. (Chrome caps any value at two hours.)
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// What a project or function allows other origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `None`: any origin (`*`). Else the origins, as browsers send them.
    pub origins: Option<Vec<String>>,
    /// Upper-case. Empty: whatever method a preflight asks for (the route serves it).
    pub methods: Vec<String>,
    /// Request headers a page may send. Empty: whatever a preflight asks for.
    pub headers: Vec<String>,
    /// Response headers a page may read beyond the always-readable ones.
    pub expose_headers: Vec<String>,
    /// How long a preflight's answer may be kept.
    pub max_age: Duration,
    /// Pages may send cookies and read the answer (`Access-Control-Allow-Credentials`).
    pub credentials: bool,
}

impl Cors {
    /// Whether a page from `origin` may read the answers.
    pub fn allows(&self, origin: &[u8]) -> bool {
        // Browsers send origins in lower case; a list written otherwise still matches.
        self.origins.as_ref().is_none_or(|origins| {
            origins
                .iter()
                .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin))
        })
    }
}

/// A function's `wisp.cors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FunctionCors {
    /// Not written: the project's, if it has one.
    #[default]
    Project,
    /// `cors: false`.
    Off,
    /// Its own settings, in place of the project's.
    Own(Cors),
}

impl FunctionCors {
    /// What applies to the function, given the project's.
    pub fn resolve<'a>(&'a self, project: Option<&'a Cors>) -> Option<&'a Cors> {
        match self {
            FunctionCors::Project => project,
            FunctionCors::Off => None,
            FunctionCors::Own(cors) => Some(cors),
        }
    }
}

/// The project's `wisp.cors`, from `config.yaml`'s `wisp` section.
pub(crate) fn project(wisp: &Map) -> Option<Cors> {
    match wisp.get("cors")? {
        Value::Mapping(_) => settings(wisp.section("cors")),
        other => {
            let found = kind(other);
            wisp.error(
                "cors",
                format!("expected a mapping (`cors: {{origins: [...]}}`), found {found}"),
            );
            None
        }
    }
}

/// A function's `wisp.cors`, from its `wisp` section.
pub(crate) fn function(wisp: &Map) -> FunctionCors {
    match wisp.get("cors") {
        None => FunctionCors::Project,
        Some(Value::Bool(false)) => FunctionCors::Off,
        Some(Value::Mapping(_)) => {
            settings(wisp.section("cors")).map_or(FunctionCors::Off, FunctionCors::Own)
        }
        Some(other) => {
            let found = kind(other);
            wisp.error(
                "cors",
                format!("expected a mapping (`cors: {{origins: [...]}}`) or `false` to turn the project's off, found {found}"),
            );
            FunctionCors::Off
        }
    }
}

/// Reads one `cors` mapping; `None` (with every problem reported) when unusable.
fn settings(cors: Map) -> Option<Cors> {
    let origins = origins(&cors);
    let methods = methods(&cors);
    let headers = header_names(&cors, "headers");
    let expose_headers = header_names(&cors, "expose-headers");
    let max_age = max_age(&cors);
    let credentials = cors.bool("credentials").unwrap_or(false);
    let mut ok = origins.is_some() && methods.is_some() && headers.is_some();
    ok &= expose_headers.is_some() && max_age.is_some();
    if credentials && matches!(origins, Some(None)) {
        cors.error(
            "credentials",
            "browsers refuse credentials from `origins: ['*']`: list the origins",
        );
        ok = false;
    }
    cors.finish();
    ok.then(|| Cors {
        origins: origins.flatten(),
        methods: methods.unwrap_or_default(),
        headers: headers.unwrap_or_default(),
        expose_headers: expose_headers.unwrap_or_default(),
        max_age: max_age.flatten().unwrap_or(DEFAULT_MAX_AGE),
        credentials,
    })
}

/// `origins`: `Some(None)` for `['*']`, `Some(Some(list))`, or `None` when unusable.
fn origins(cors: &Map) -> Option<Option<Vec<String>>> {
    if !cors.has_key("origins") {
        cors.get("origins");
        cors.error(
            "",
            "missing `origins` (the origins whose pages may call: https://example.com, or `'*'` for any)",
        );
        return None;
    }
    let origins = cors.strings("origins");
    if origins.is_empty() {
        // A value of the wrong type, or items of the wrong type, were reported when read.
        let value = cors.get("origins");
        if value.is_none_or(|v| v.as_sequence().is_some_and(|s| s.is_empty())) {
            cors.error("origins", "no origin listed: list some, or remove `cors`");
        }
        return None;
    }
    let mut ok = true;
    for (index, origin) in origins.iter().enumerate() {
        let at = cors.item_path("origins", index);
        if origin == "*" {
            if origins.len() > 1 {
                cors.error_at(&at, "`*` stands for every origin: give it alone");
                ok = false;
            }
        } else if !is_origin(origin) {
            let message = format!(
                "`{origin}` is not an origin: write scheme://host or scheme://host:port, \
                 as browsers send it (no path, no trailing `/`), or `'*'` for any"
            );
            cors.error_at(&at, message);
            ok = false;
        }
    }
    let any = origins.iter().any(|origin| origin == "*");
    ok.then_some((!any).then_some(origins))
}

fn methods(cors: &Map) -> Option<Vec<String>> {
    let mut ok = true;
    let methods = cors
        .strings("methods")
        .iter()
        .enumerate()
        .filter_map(
            |(index, method)| match super::function::http_method(method) {
                Ok(method) => Some(method),
                Err(problem) => {
                    cors.error_at(&cors.item_path("methods", index), problem);
                    ok = false;
                    None
                }
            },
        )
        .collect();
    ok.then_some(methods)
}

fn header_names(cors: &Map, key: &'static str) -> Option<Vec<String>> {
    let names = cors.strings(key);
    let mut ok = true;
    for (index, name) in names.iter().enumerate() {
        if !is_token(name) {
            let message = format!(
                "`{name}` is not a header name (letters, digits and `-`, no spaces or `:`)"
            );
            cors.error_at(&cors.item_path(key, index), message);
            ok = false;
        }
    }
    ok.then_some(names)
}

/// `max-age`: a Go duration (`10m`), or a number of seconds as the header has it.
fn max_age(cors: &Map) -> Option<Option<Duration>> {
    let Some(value) = cors.get("max-age") else {
        return Some(None);
    };
    let parsed = match value {
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{n}` is not a whole number of seconds")),
        Value::String(text) => parse_duration(text),
        other => Err(format!(
            "expected a duration (`10m`) or seconds, found {}",
            kind(other)
        )),
    };
    match parsed {
        Ok(age) => Some(Some(age)),
        Err(problem) => {
            cors.error("max-age", problem);
            None
        }
    }
}

/// An HTTP token (RFC 9110, section 5.6.2): what a header name is made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::read_str;

    fn read_project(source: &str) -> (Option<Cors>, Vec<String>) {
        read_str(source, |top| {
            let wisp = top.section("wisp");
            let cors = project(&wisp);
            wisp.finish();
            top.finish();
            cors
        })
    }

    fn read_function(source: &str) -> (FunctionCors, Vec<String>) {
        read_str(source, |top| {
            let wisp = top.section("wisp");
            let cors = function(&wisp);
            wisp.finish();
            top.finish();
            cors
        })
    }

    #[test]
    fn settings_read_with_their_defaults() {
        let (cors, problems) = read_project("wisp:\n  cors: {origins: ['*']}\n");
        assert!(problems.is_empty(), "{problems:?}");
        let cors = cors.unwrap();
        assert_eq!(cors.origins, None);
        assert!(cors.allows(b"https://anyone.example"));
        assert_eq!((cors.max_age, cors.credentials), (DEFAULT_MAX_AGE, false));

        let source = "wisp:\n  cors:\n    origins: [https://App.example.com]\n    methods: [get, POST]\n    \
                      headers: [Content-Type, X-Token]\n    expose-headers: [X-Total]\n    max-age: 90\n    credentials: true\n";
        let (cors, problems) = read_project(source);
        assert!(problems.is_empty(), "{problems:?}");
        let cors = cors.unwrap();
        assert!(cors.allows(b"https://app.example.com"));
        assert!(!cors.allows(b"https://app.example.com.evil"));
        assert_eq!(cors.methods, ["GET", "POST"]);
        assert_eq!(cors.headers, ["Content-Type", "X-Token"]);
        assert_eq!(cors.expose_headers, ["X-Total"]);
        assert_eq!(cors.max_age, Duration::from_secs(90));
        assert!(cors.credentials);

        let (cors, _) =
            read_project("wisp:\n  cors: {origins: [http://localhost:3000], max-age: 1h}\n");
        assert_eq!(cors.unwrap().max_age, Duration::from_secs(3600));
    }

    #[test]
    fn a_function_inherits_replaces_or_turns_off() {
        let project = read_project("wisp:\n  cors: {origins: ['*']}\n").0;
        let (cors, problems) = read_function("wisp: {}\n");
        assert!(problems.is_empty());
        assert_eq!(cors.resolve(project.as_ref()), project.as_ref());
        let (cors, _) = read_function("wisp:\n  cors: false\n");
        assert_eq!(cors.resolve(project.as_ref()), None);
        let (cors, _) = read_function("wisp:\n  cors: {origins: [https://a.example]}\n");
        let own = cors.resolve(project.as_ref()).unwrap();
        assert!(own.allows(b"https://a.example") && !own.allows(b"https://b.example"));
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let source = "wisp:\n  cors:\n    origins:\n      - https://a.example/\n      - '*'\n    methods: [GTE]\n    \
                      headers: ['X Token']\n    max-age: soon\n    credentials: true\n    orgins: []\n";
        let (cors, problems) = read_project(source);
        assert_eq!(cors, None);
        assert_eq!(
            problems,
            [
                "f.yaml:4: error: wisp.cors.origins[0]: `https://a.example/` is not an origin: write \
                 scheme://host or scheme://host:port, as browsers send it (no path, no trailing `/`), or `'*'` for any",
                "f.yaml:5: error: wisp.cors.origins[1]: `*` stands for every origin: give it alone",
                "f.yaml:6: error: wisp.cors.methods[0]: `GTE` is not an HTTP method (use one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE)",
                "f.yaml:7: error: wisp.cors.headers[0]: `X Token` is not a header name (letters, digits and `-`, no spaces or `:`)",
                "f.yaml:8: error: wisp.cors.max-age: invalid duration `soon`",
                "f.yaml:10: error: wisp.cors.orgins: unknown field `orgins`, did you mean `origins`?",
            ]
        );
        let (_, problems) = read_project("wisp:\n  cors: {credentials: true, origins: ['*']}\n");
        assert_eq!(
            problems,
            ["f.yaml:2: error: wisp.cors.credentials: browsers refuse credentials from `origins: ['*']`: list the origins"]
        );
        let (_, problems) = read_project("wisp:\n  cors: {max-age: 10m}\n");
        assert_eq!(
            problems,
            ["f.yaml:2: error: wisp.cors: missing `origins` (the origins whose pages may call: https://example.com, or `'*'` for any)"]
        );
        let (_, problems) = read_project("wisp:\n  cors: true\n");
        assert_eq!(
            problems,
            ["f.yaml:2: error: wisp.cors: expected a mapping (`cors: {origins: [...]}`), found a boolean"]
        );
        let (cors, problems) = read_function("wisp:\n  cors: [x]\n");
        assert_eq!(cors, FunctionCors::Off);
        assert_eq!(
            problems,
            ["f.yaml:2: error: wisp.cors: expected a mapping (`cors: {origins: [...]}`) or `false` to turn the project's off, found a list"]
        );
    }
}
