//! A reader over `serde_yaml::Value` that reports, with file and line, every field it was not
//! asked for and every value of the wrong type.
//!
//! ```text
//! let trigger = top.section("trigger");
//! let method = trigger.string("method");
//! trigger.finish(); // "unknown field `methd`, did you mean `method`?"
//! ```

use std::cell::RefCell;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::diagnostics::{hint, Diagnostic, Severity};
use super::locate::{dotted, Locator, Seg};

/// One YAML file being read: where problems go and how to find their lines.
pub(crate) struct Doc {
    /// Relative to the project root.
    pub(crate) file: PathBuf,
    locator: Locator,
    diagnostics: RefCell<Vec<Diagnostic>>,
}

impl Doc {
    pub(crate) fn new(file: PathBuf, source: &str) -> Self {
        Doc {
            file,
            locator: Locator::new(source),
            diagnostics: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn line(&self, path: &[Seg]) -> Option<usize> {
        self.locator.line(path)
    }

    pub(crate) fn report(&self, severity: Severity, path: &[Seg], message: impl Into<String>) {
        let line = self.line(path);
        let diagnostic = Diagnostic::new(severity, &self.file, line, dotted(path), message);
        self.diagnostics.borrow_mut().push(diagnostic);
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics.into_inner()
    }

    /// The reader for the top-level mapping of `value` (an empty file reads as an empty mapping).
    pub(crate) fn root<'d>(&'d self, value: &'d Value) -> Map<'d> {
        let map = match value {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            other => {
                let found = kind(other);
                self.report(
                    Severity::Error,
                    &[],
                    format!("expected a mapping, found {found}"),
                );
                None
            }
        };
        let wrong_type = !matches!(value, Value::Mapping(_) | Value::Null);
        Map::new(self, Vec::new(), map, wrong_type)
    }
}

/// One mapping of a [`Doc`]; records the keys read so that [`Map::finish`] can report the rest.
pub(crate) struct Map<'d> {
    doc: &'d Doc,
    path: Vec<Seg>,
    map: Option<&'d Mapping>,
    /// The value was not a mapping (and that was reported): missing fields are not reported.
    wrong_type: bool,
    asked: RefCell<Vec<&'static str>>,
    finished: bool,
}

impl<'d> Map<'d> {
    fn new(doc: &'d Doc, path: Vec<Seg>, map: Option<&'d Mapping>, wrong_type: bool) -> Self {
        Map {
            doc,
            path,
            map,
            wrong_type,
            asked: RefCell::new(Vec::new()),
            finished: false,
        }
    }

    /// Whether `key` is set to something other than null; does not count as reading it.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map
            .and_then(|m| m.get(key))
            .is_some_and(|v| !v.is_null())
    }

    /// Whether this was meant to be a mapping but is something else (already reported).
    pub(crate) fn wrong_type(&self) -> bool {
        self.wrong_type
    }

    /// Whether `key` is written in the mapping, even with no value.
    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.map.is_some_and(|m| m.contains_key(key))
    }

    /// Path of a field of this mapping, for diagnostics.
    pub(crate) fn path_of(&self, key: &str) -> Vec<Seg> {
        let mut path = self.path.clone();
        if !key.is_empty() {
            path.push(Seg::Key(key.to_string()));
        }
        path
    }

    pub(crate) fn item_path(&self, key: &str, index: usize) -> Vec<Seg> {
        let mut path = self.path_of(key);
        path.push(Seg::Index(index));
        path
    }

    pub(crate) fn line_of(&self, path: &[Seg]) -> Option<usize> {
        self.doc.line(path)
    }

    /// Reports an error at `key` of this mapping (`""` for the mapping itself).
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) {
        self.doc
            .report(Severity::Error, &self.path_of(key), message);
    }

    pub(crate) fn warning(&self, key: &str, message: impl Into<String>) {
        self.doc
            .report(Severity::Warning, &self.path_of(key), message);
    }

    pub(crate) fn error_at(&self, path: &[Seg], message: impl Into<String>) {
        self.doc.report(Severity::Error, path, message);
    }

    pub(crate) fn warning_at(&self, path: &[Seg], message: impl Into<String>) {
        self.doc.report(Severity::Warning, path, message);
    }

    /// Marks `key` as known and returns its value, unless absent or null.
    pub(crate) fn get(&self, key: &'static str) -> Option<&'d Value> {
        self.asked.borrow_mut().push(key);
        self.map?.get(key).filter(|v| !v.is_null())
    }

    /// A text field; numbers and booleans are taken as written, as Go's YAML decoder does.
    pub(crate) fn string(&self, key: &'static str) -> Option<String> {
        let value = self.get(key)?;
        let text = scalar_text(value);
        if text.is_none() {
            self.error(key, format!("expected a string, found {}", kind(value)));
        }
        text
    }

    /// A required text field: reports `missing `key`` at this mapping when absent, and an error
    /// at the field when empty.
    pub(crate) fn required_string(&self, key: &'static str, what: &str) -> Option<String> {
        if !self.has_key(key) {
            self.get(key);
            if !self.wrong_type {
                self.error("", format!("missing `{key}`{what}"));
            }
            return None;
        }
        match self.string(key) {
            Some(text) if !text.is_empty() => Some(text),
            // A wrong type was reported by `string`.
            None if self.has(key) => None,
            _ => {
                self.error(key, format!("`{key}` must not be empty{what}"));
                None
            }
        }
    }

    pub(crate) fn bool(&self, key: &'static str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    key,
                    format!("expected true or false, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// A list of strings; each item's problem is reported at the item.
    pub(crate) fn strings(&self, key: &'static str) -> Vec<String> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let Value::Sequence(items) = value else {
            let found = kind(value);
            self.error(key, format!("expected a list of strings, found {found}"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match scalar_text(item) {
                Some(text) => out.push(text),
                None => self.error_at(
                    &self.item_path(key, index),
                    format!("expected a string, found {}", kind(item)),
                ),
            }
        }
        out
    }

    /// A nested mapping; absent or null reads as an empty mapping.
    pub(crate) fn section(&self, key: &'static str) -> Map<'d> {
        let value = self.get(key);
        let map = match value {
            Some(Value::Mapping(m)) => Some(m),
            None => None,
            Some(other) => {
                self.error(key, format!("expected a mapping, found {}", kind(other)));
                None
            }
        };
        let wrong_type = self.wrong_type || value.is_some() && map.is_none();
        Map::new(self.doc, self.path_of(key), map, wrong_type)
    }

    /// Reports every key of this mapping that was not read.
    pub(crate) fn finish(mut self) {
        self.finished = true;
        let Some(map) = self.map else { return };
        let asked = self.asked.borrow();
        for key in map.keys() {
            let name = match key {
                Value::String(s) => s.clone(),
                other => scalar_text(other).unwrap_or_else(|| "?".into()),
            };
            if !asked.contains(&name.as_str()) {
                let hint = match (hint(&name, asked.iter().copied()), self.elsewhere(&name)) {
                    (hint, _) if !hint.is_empty() => hint,
                    (_, Some(section)) => format!(
                        "; `{name}` belongs under `{section}:` (indent it one level below `{section}:`)"
                    ),
                    (hint, None) => hint,
                };
                let message = format!("unknown field `{name}`{hint}");
                self.doc
                    .report(Severity::Error, &self.path_of(&name), message);
            }
        }
    }
}

/// Fields that belong in one section, as a function's or messaging file has them: a field
/// found one level off (at the top, or in a sibling section) is told where it goes.
const SECTION_OF: [(&str, &str); 9] = [
    ("type", "trigger"),
    ("method", "trigger"),
    ("paths", "trigger"),
    ("timeout", "execution"),
    ("memory", "execution"),
    ("call", "execution"),
    ("match", "channel"),
    ("websocket", "bridges"),
    ("mqtt", "bridges"),
];

impl Map<'_> {
    /// The section `field` belongs in, if it is one of [`SECTION_OF`]'s and this map is not it.
    fn elsewhere(&self, field: &str) -> Option<&'static str> {
        let here = match self.path.last() {
            Some(Seg::Key(key)) => key.as_str(),
            _ => "",
        };
        SECTION_OF
            .iter()
            .find(|(name, section)| *name == field && *section != here)
            .map(|(_, section)| *section)
    }
}

impl Drop for Map<'_> {
    fn drop(&mut self) {
        debug_assert!(
            self.finished || std::thread::panicking(),
            "Map for `{}` dropped without finish()",
            dotted(&self.path)
        );
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// How a value is described in "expected ..., found ..." messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Test helper: runs `read` over `source` as file `f.yaml`; returns its result and the
/// diagnostics as printed.
#[cfg(test)]
pub(crate) fn read_str<T>(
    source: &str,
    read: impl for<'d> FnOnce(Map<'d>) -> T,
) -> (T, Vec<String>) {
    let value: Value = serde_yaml::from_str(source).expect("test YAML parses");
    let doc = Doc::new("f.yaml".into(), source);
    let result = read(doc.root(&value));
    let printed = doc
        .into_diagnostics()
        .iter()
        .map(|d| d.to_string())
        .collect();
    (result, printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str, f: impl FnOnce(&Map)) -> Vec<String> {
        read_str(source, |top| {
            f(&top);
            top.finish();
        })
        .1
    }

    #[test]
    fn unknown_fields_with_hints() {
        let out = read("trigger:\n  methd: GET\n  zzz: 1\n", |top| {
            let t = top.section("trigger");
            assert_eq!(t.string("method"), None);
            t.finish();
        });
        assert_eq!(
            out,
            [
                "f.yaml:2: error: trigger.methd: unknown field `methd`, did you mean `method`?",
                "f.yaml:3: error: trigger.zzz: unknown field `zzz`",
            ]
        );
    }

    #[test]
    fn wrong_types() {
        let src = "a: [1]\nb: yes\nc: /x\nd:\n  - ok\n  - {k: v}\ne: 3\n";
        let out = read(src, |top| {
            assert_eq!(top.string("a"), None);
            assert_eq!(top.bool("b"), None);
            assert!(top.strings("c").is_empty());
            assert_eq!(top.strings("d"), ["ok"]);
            assert_eq!(top.string("e").as_deref(), Some("3"));
        });
        assert_eq!(
            out,
            [
                "f.yaml:1: error: a: expected a string, found a list",
                "f.yaml:2: error: b: expected true or false, found a string",
                "f.yaml:3: error: c: expected a list of strings, found a string",
                "f.yaml:6: error: d[1]: expected a string, found a mapping",
            ]
        );
    }

    #[test]
    fn required_and_sections() {
        let out = read("x:\n  call: ''\ny: 1\n", |top| {
            let x = top.section("x");
            assert!(top.has_key("x"));
            assert_eq!(x.required_string("call", ""), None);
            assert_eq!(x.required_string("name", " (the name)"), None);
            x.finish();
            let y = top.section("y");
            y.finish();
            let z = top.section("z");
            assert!(!top.has_key("z"));
            z.finish();
        });
        assert_eq!(
            out,
            [
                "f.yaml:2: error: x.call: `call` must not be empty",
                "f.yaml:1: error: x: missing `name` (the name)",
                "f.yaml:3: error: y: expected a mapping, found a number",
            ]
        );
    }
}
