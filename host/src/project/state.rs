//! `databases/*.yaml` and `storages/*.yaml`: the key-value databases and object storages a
//! function may open, in Taubyte's schema.
//!
//! ```yaml
//! # databases/chat.yaml
//! id: QmDb...
//! match: chat            # the name a guest passes to `database.New`; or a regex with `regex: true`
//! storage: {size: 10MB}  # required: what the database may hold
//!
//! # storages/uploads.yaml
//! match: /uploads/.*
//! regex: true
//! object: {versioning: true, size: 50MB}   # or `streaming: {ttl: 1h, size: 1GB}`
//! ```
//!
//! A guest does not name the YAML file: it passes a name, and the first resource whose `match`
//! equals it (or, with `regex: true` or Taubyte's `useRegex: true`, whose regex matches all of
//! it) is chosen; the function's application's resources are tried before the project's, each
//! in file-name order. The data lives under (project, application, the name the guest
//! passed), as on Taubyte, and each such store has the resource's whole size.

use std::path::PathBuf;

use super::matcher::ChannelMatcher;
use super::units::{parse_duration, parse_size};
use super::yaml::Map;

/// A database or storage resource: which names it serves and how much each may hold.
#[derive(Debug, Clone)]
pub struct StateResource {
    pub name: String,
    pub application: Option<String>,
    /// Relative to the project root.
    pub file: PathBuf,
    pub id: String,
    pub description: String,
    /// Which names a guest may open it by; a regex must match the whole name.
    pub matcher: ChannelMatcher,
    /// Bytes each store may hold: keys and values for a database, file contents for a storage.
    pub size: u64,
    /// Storages only: `object.versioning`, each add keeps the older versions.
    pub versioning: bool,
    /// Storages only: `streaming:` rather than `object:` (read, stored like an object storage).
    pub streaming: bool,
}

/// Which kind of resource a file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Database,
    Storage,
}

/// Reads a database or storage file; `None` when it has no usable matcher or size.
pub(crate) fn parse(
    top: Map,
    kind: Kind,
    name: &str,
    application: Option<&str>,
    file: PathBuf,
) -> Option<StateResource> {
    let id = top.string("id").unwrap_or_default();
    let description = top.string("description").unwrap_or_default();
    top.strings("tags");
    top.strings("smartops");
    let access = top.section("access");
    if let Some(network) = access.string("network") {
        if !["all", "subnet", "host"].contains(&network.as_str()) {
            access.error(
                "network",
                format!("`{network}` is not one of all, subnet, host"),
            );
        }
    }
    access.finish();
    let matcher = matcher(&top);

    let (size, versioning, streaming) = match kind {
        Kind::Database => {
            let encryption = top.section("encryption");
            encryption.string("type");
            encryption.string("key");
            encryption.finish();
            // Taubyte's legacy replica counts: read so they are not "unknown", then ignored.
            let replicas = top.section("replicas");
            replicas.get("min");
            replicas.get("max");
            replicas.finish();
            let storage = top.section("storage");
            let size = size(&storage);
            storage.finish();
            (size, false, false)
        }
        Kind::Storage => {
            let (object, stream) = (top.has_key("object"), top.has_key("streaming"));
            let object_map = top.section("object");
            let versioning = object_map.bool("versioning").unwrap_or(false);
            let object_size = object.then(|| size(&object_map)).flatten();
            object_map.finish();
            let stream_map = top.section("streaming");
            if let Some(ttl) = stream_map.string("ttl") {
                if let Err(message) = parse_duration(&ttl) {
                    stream_map.error("ttl", message);
                }
            }
            let stream_size = stream.then(|| size(&stream_map)).flatten();
            stream_map.finish();
            match (object, stream) {
                (true, true) => {
                    top.error(
                        "streaming",
                        "give either `object:` or `streaming:`, not both",
                    );
                    (None, versioning, false)
                }
                (false, false) => {
                    top.error("", "missing `object: {size: ...}` (or `streaming:`)");
                    (None, false, false)
                }
                (true, false) => (object_size, versioning, false),
                (false, true) => (stream_size, false, true),
            }
        }
    };
    top.finish();
    Some(StateResource {
        name: name.to_string(),
        application: application.map(str::to_string),
        file,
        id,
        description,
        matcher: matcher?,
        size: size?,
        versioning,
        streaming,
    })
}

/// `match` with `regex` (or Taubyte's `useRegex`). A regex must match the whole name:
/// Taubyte's unanchored match lets `chat` open a database meant for `chat-archive`.
fn matcher(top: &Map) -> Option<ChannelMatcher> {
    let pattern = top.required_string("match", " (the name functions open it by)")?;
    let regex = top.bool("regex").or(top.bool("useRegex")).unwrap_or(false);
    if !regex {
        // Exact, even with a `*` in it: only `regex: true` makes a pattern.
        return Some(ChannelMatcher::Exact(pattern));
    }
    ChannelMatcher::new(&pattern, Some(true))
        .map_err(|message| top.error("match", message))
        .ok()
}

/// The required `size` in `section` (`storage`, `object` or `streaming`).
fn size(section: &Map) -> Option<u64> {
    let text = section.required_string("size", " (how much it may hold, as in `10MB`)")?;
    match parse_size(&text) {
        Ok(0) => {
            section.error("size", "`size` must be greater than zero");
            None
        }
        Ok(bytes) => Some(bytes),
        Err(message) => {
            section.error("size", message);
            None
        }
    }
}

impl StateResource {
    /// Whether a guest's `name` opens this resource.
    pub fn serves(&self, name: &str) -> bool {
        self.matcher.matches(name)
    }
}

/// The resource a function of `application` opens by `name`: its application's first, then
/// the project's, each in file-name order (the order they were read in).
pub fn select<'a>(
    resources: &'a [StateResource],
    application: Option<&str>,
    name: &str,
) -> Option<&'a StateResource> {
    let own = resources
        .iter()
        .filter(|r| application.is_some() && r.application.as_deref() == application);
    let project = resources.iter().filter(|r| r.application.is_none());
    own.chain(project).find(|r| r.serves(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::read_str;

    fn database(source: &str) -> (Option<StateResource>, Vec<String>) {
        read_str(source, |top| {
            parse(top, Kind::Database, "db", None, "f.yaml".into())
        })
    }

    fn storage(source: &str) -> (Option<StateResource>, Vec<String>) {
        read_str(source, |top| {
            parse(top, Kind::Storage, "st", None, "f.yaml".into())
        })
    }

    #[test]
    fn reads_taubytes_database_schema() {
        let source = "id: QmX\ndescription: d\ntags: [a]\nmatch: /basic/.*\nuseRegex: true\n\
                      access: {network: host}\nstorage: {size: 10MB}\nencryption: {type: aes}\n";
        let (db, problems) = database(source);
        assert!(problems.is_empty(), "{problems:?}");
        let db = db.unwrap();
        assert_eq!(db.size, 10_000_000);
        assert!(db.serves("/basic/v1"));
        assert!(!db.serves("x/basic/v1"), "a regex matches the whole name");
    }

    #[test]
    fn a_plain_match_is_exact() {
        let (db, problems) = database("match: chat*\nstorage: {size: 1KB}\n");
        assert!(problems.is_empty(), "{problems:?}");
        let db = db.unwrap();
        assert!(db.serves("chat*"));
        assert!(!db.serves("chatroom"));
    }

    #[test]
    fn size_and_match_are_required_and_checked() {
        let (db, problems) = database("storage: {size: 0}\n");
        assert!(db.is_none());
        assert_eq!(
            problems,
            [
                "f.yaml: error: missing `match` (the name functions open it by)",
                "f.yaml:1: error: storage.size: `size` must be greater than zero",
            ]
        );
        let (_, problems) = database("match: x\nstorage: {size: lots}\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("storage.size"), "{problems:?}");
    }

    #[test]
    fn reads_object_and_streaming_storages() {
        let (st, problems) = storage("match: files\nobject: {versioning: true, size: 5KB}\n");
        assert!(problems.is_empty(), "{problems:?}");
        let st = st.unwrap();
        assert_eq!((st.size, st.versioning, st.streaming), (5000, true, false));
        let (st, problems) = storage("match: s\nstreaming: {ttl: 20s, size: 1MB}\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(st.unwrap().streaming);
        let (st, problems) = storage("match: s\n");
        assert!(st.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn selection_prefers_the_functions_application() {
        let make = |app: Option<&str>, pattern: &str| StateResource {
            name: pattern.into(),
            application: app.map(str::to_string),
            file: "f".into(),
            id: String::new(),
            description: String::new(),
            matcher: ChannelMatcher::new(pattern, Some(true)).unwrap(),
            size: 1,
            versioning: false,
            streaming: false,
        };
        let all = [
            make(None, "a.*"),
            make(Some("app"), "ab"),
            make(Some("other"), "abc"),
        ];
        assert_eq!(select(&all, Some("app"), "ab").unwrap().name, "ab");
        assert_eq!(select(&all, None, "ab").unwrap().name, "a.*");
        assert_eq!(select(&all, Some("app"), "abc").unwrap().name, "a.*");
        assert!(select(&all, None, "b").is_none());
    }
}
