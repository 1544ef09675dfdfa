//! Finding and reading the YAML files of a project folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::diagnostics::Diagnostic;
use super::yaml::{Doc, Map};

/// The YAML files directly in `<root>/<dir>` as (resource name, path relative to the root),
/// sorted by name. Two files for one name (`ping.yaml`, `ping.yml`) are both reported.
pub(crate) fn resources(
    root: &Path,
    dir: &Path,
    kind: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, PathBuf)> {
    let mut by_name: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for (file_name, is_dir) in entries(root, dir, diagnostics) {
        let path = Path::new(&file_name);
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if is_dir || !yaml || stem.is_empty() {
            continue;
        }
        by_name
            .entry(stem.to_string())
            .or_default()
            .push(dir.join(&file_name));
    }
    let mut out = Vec::new();
    for (name, files) in by_name {
        if files.len() > 1 {
            for file in &files {
                let others: Vec<String> = files
                    .iter()
                    .filter(|f| *f != file)
                    .map(|f| f.display().to_string())
                    .collect();
                let message = format!("{kind} `{name}` is also defined by {}", others.join(", "));
                diagnostics.push(Diagnostic::error(file, None, "", message));
            }
        }
        out.extend(files.into_iter().map(|file| (name.clone(), file)));
    }
    out
}

/// The folders in `<root>/applications`, sorted.
pub(crate) fn applications(root: &Path, diagnostics: &mut Vec<Diagnostic>) -> Vec<String> {
    entries(root, Path::new("applications"), diagnostics)
        .into_iter()
        .filter(|(_, is_dir)| *is_dir)
        .map(|(name, _)| name)
        .collect()
}

/// Names of the visible entries of `<root>/<dir>` with whether each is a folder; nothing if
/// there is no such folder.
fn entries(root: &Path, dir: &Path, diagnostics: &mut Vec<Diagnostic>) -> Vec<(String, bool)> {
    let full = root.join(dir);
    if !full.is_dir() {
        return Vec::new();
    }
    let read = match fs::read_dir(&full) {
        Ok(read) => read,
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                dir,
                None,
                "",
                format!("cannot read folder: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut out: Vec<(String, bool)> = read
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            // `metadata` follows symbolic links, so a linked folder counts as a folder.
            let is_dir = fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            (!name.starts_with('.')).then_some((name, is_dir))
        })
        .collect();
    out.sort();
    out
}

/// `<root>/<dir>/config.yaml` (or `config.yml`), relative to the root, if it exists.
pub(crate) fn config_file(root: &Path, dir: &Path) -> Option<PathBuf> {
    ["config.yaml", "config.yml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| root.join(path).is_file())
}

/// Reads and parses `<root>/<file>`, then hands its top-level mapping to `read`. Syntax
/// errors and everything `read` reports go to `diagnostics`.
pub(crate) fn read<T>(
    root: &Path,
    file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
    read: impl for<'d> FnOnce(Map<'d>) -> T,
) -> Option<T> {
    let source = match fs::read_to_string(root.join(file)) {
        Ok(source) => source,
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                file,
                None,
                "",
                format!("cannot read file: {e}"),
            ));
            return None;
        }
    };
    let value: Value = match serde_yaml::from_str(&source) {
        Ok(value) => value,
        Err(e) => {
            let line = e.location().map(|l| l.line());
            let message = syntax_message(&e);
            let message = indentation_hint(&source, line, &message)
                .map_or(message.clone(), |hint| format!("{message} ({hint})"));
            diagnostics.push(Diagnostic::error(file, line, "", message));
            return None;
        }
    };
    let doc = Doc::new(file.to_path_buf(), &source);
    let result = read(doc.root(&value));
    diagnostics.extend(doc.into_diagnostics());
    Some(result)
}

/// The YAML error without its position, which the diagnostic already carries.
fn syntax_message(error: &serde_yaml::Error) -> String {
    let text = error.to_string();
    let text = match (error.location(), text.find(" at line ")) {
        (Some(l), Some(at)) => {
            let position = format!(" at line {} column {}", l.line(), l.column());
            text[..at].to_string() + text[at..].trim_start_matches(&position)
        }
        _ => text,
    };
    format!("invalid YAML: {text}")
}

/// What most YAML syntax errors in a hand-written file come from, said plainly: a tab in the
/// indentation (near the error's `line`), or keys that do not line up.
fn indentation_hint(source: &str, line: Option<usize>, message: &str) -> Option<String> {
    let tabbed = source.lines().enumerate().find(|(i, text)| {
        let indent: String = text.chars().take_while(|c| c.is_whitespace()).collect();
        indent.contains('\t') && line.is_none_or(|line| *i <= line)
    });
    if let Some((i, _)) = tabbed {
        let line = i + 1;
        return Some(format!(
            "line {line} is indented with a tab: YAML indents with spaces only"
        ));
    }
    let structural = [
        "mapping values are not allowed",
        "did not find expected key",
        "while parsing a block mapping",
        "expected <block end>",
    ];
    structural.iter().any(|s| message.contains(s)).then(|| {
        "check the indentation: the keys of one section line up, and what belongs to a key \
         is indented further than it, with spaces"
            .to_owned()
    })
}

/// Project or application `config.yaml` fields.
#[derive(Debug, Default)]
pub(crate) struct Config {
    pub id: String,
    pub name: Option<String>,
    /// `wisp.origins` (the project's only): see [`Project::origins`](super::Project::origins).
    pub origins: Option<Vec<String>>,
    /// `wisp.cors` (the project's only): see [`Project::cors`](super::Project::cors).
    pub cors: Option<super::cors::Cors>,
}

/// Reads a `config.yaml`: `id`, `name`, `description`, `tags`, and for the project also
/// `notification: {email}` and Wisp's own `wisp: {origins: [...], cors: {...}}`.
pub(crate) fn config(top: Map, project: bool) -> Config {
    let mut config = Config {
        id: top.string("id").unwrap_or_default(),
        name: top.string("name").filter(|n| !n.is_empty()),
        origins: None,
        cors: None,
    };
    top.string("description");
    top.strings("tags");
    if project {
        let notification = top.section("notification");
        notification.string("email");
        notification.finish();
        let wisp = top.section("wisp");
        config.origins = wisp.get("origins").map(|_| origins(&wisp));
        config.cors = super::cors::project(&wisp);
        wisp.finish();
    }
    top.finish();
    config
}

/// `wisp.origins`: each must be an origin as browsers send it in `Origin`, or it
/// could never match.
fn origins(wisp: &Map) -> Vec<String> {
    let origins = wisp.strings("origins");
    for (index, origin) in origins.iter().enumerate() {
        if !is_origin(origin) {
            let message = format!(
                "`{origin}` is not an origin: write scheme://host or scheme://host:port, \
                 as browsers send it (no path, no trailing `/`)"
            );
            wisp.error_at(&wisp.item_path("origins", index), message);
        }
    }
    origins
}

/// `scheme://host[:port]`, loosely: a scheme, `://`, and a host part with no path,
/// query or fragment.
pub(crate) fn is_origin(origin: &str) -> bool {
    origin.split_once("://").is_some_and(|(scheme, host)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
            && !host.is_empty()
            && !host.contains(['/', '?', '#', ' '])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::read_str;

    #[test]
    fn the_project_config_may_list_origins() {
        let (read, problems) = read_str("id: x\n", |top| config(top, true));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(read.origins, None, "off by default");
        let source = "id: x\nwisp:\n  origins: [https://example.com, 'http://localhost:3000']\n";
        let (read, problems) = read_str(source, |top| config(top, true));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            read.origins.unwrap(),
            ["https://example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn bad_origins_and_unknown_wisp_fields_are_reported() {
        let source = "id: x\nwisp:\n  origins:\n    - https://example.com/\n    - example.com\n  orgins: []\n";
        let (_, problems) = read_str(source, |top| config(top, true));
        assert_eq!(
            problems,
            [
                "f.yaml:4: error: wisp.origins[0]: `https://example.com/` is not an origin: write \
                 scheme://host or scheme://host:port, as browsers send it (no path, no trailing `/`)",
                "f.yaml:5: error: wisp.origins[1]: `example.com` is not an origin: write \
                 scheme://host or scheme://host:port, as browsers send it (no path, no trailing `/`)",
                "f.yaml:6: error: wisp.orgins: unknown field `orgins`, did you mean `origins`?",
            ]
        );
        // An application's config.yaml has no `wisp` block: the list is the project's.
        let (_, problems) = read_str("wisp: {origins: []}\n", |top| config(top, false));
        assert_eq!(problems, ["f.yaml:1: error: wisp: unknown field `wisp`"]);
    }
}
