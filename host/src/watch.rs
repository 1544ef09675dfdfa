//! `wisp dev`'s watch on a project and its guest crates: the files under some folders,
//! looked at every [`POLL`], and a change reported once nothing has changed for
//! [`QUIET`] (an editor's save, or `git checkout`, writes several files in a row).
//!
//! It polls rather than asking the kernel: the trees are small (a project's YAML and
//! its crates' sources; `target/` and hidden folders are skipped), a look costs well
//! under a millisecond, and it behaves the same in containers, on network mounts and
//! on every platform.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the folders are looked at.
pub const POLL: Duration = Duration::from_millis(200);

/// How long the files must stay as they are before a change is reported.
pub const QUIET: Duration = Duration::from_millis(150);

/// Files a watch looks at, at most: past it the rest are not watched (a warning says
/// so once), rather than the look growing without bound.
pub const MAX_FILES: usize = 20_000;

/// What a file looked like: its modification time and length.
type Stamp = (Option<SystemTime>, u64);

/// The files under some folders, as last seen.
pub struct Watch {
    roots: Vec<PathBuf>,
    seen: BTreeMap<PathBuf, Stamp>,
    warned: bool,
}

/// A change the watch saw.
#[derive(Debug)]
pub struct Change {
    /// Files added, removed or written, first few by name.
    pub files: Vec<PathBuf>,
    /// How many files changed in all.
    pub count: usize,
    /// When the newest changed file was written: "saved at", for save-to-serving times.
    pub saved: SystemTime,
}

impl Watch {
    /// Watches the files under `roots` (folders; a missing one is watched for appearing).
    pub fn new(roots: Vec<PathBuf>) -> Self {
        let roots = roots
            .into_iter()
            .map(|root| root.canonicalize().unwrap_or(root))
            .collect();
        let mut watch = Self {
            roots,
            seen: BTreeMap::new(),
            warned: false,
        };
        watch.seen = watch.look();
        watch
    }

    /// The folders watched.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Also watches those of `roots` not watched yet (a guest crate a function named
    /// since), their files as they are now taken as seen; returns the folders added.
    pub fn widen(&mut self, roots: &[PathBuf]) -> Vec<PathBuf> {
        let mut added = Vec::new();
        for root in roots {
            let root = root.canonicalize().unwrap_or_else(|_| root.clone());
            if self.roots.iter().any(|r| root.starts_with(r)) {
                continue;
            }
            let mut files = BTreeMap::new();
            walk(&root, &mut files);
            self.seen.extend(files);
            self.roots.push(root.clone());
            added.push(root);
        }
        added
    }

    /// Takes `files` as they are now as seen: what a reload's own build wrote (its
    /// wasm files) is not a change, while anything else saved meanwhile still is.
    pub fn absorb(&mut self, files: &[PathBuf]) {
        let now = self.look();
        for file in files {
            let file = file.canonicalize().unwrap_or_else(|_| file.clone());
            match now.get(&file) {
                Some(stamp) => self.seen.insert(file, *stamp),
                None => self.seen.remove(&file),
            };
        }
    }

    /// Waits for a change, then for the files to stay quiet for [`QUIET`].
    pub async fn changed(&mut self) -> Change {
        loop {
            tokio::time::sleep(POLL).await;
            let now = self.look();
            if now == self.seen {
                continue;
            }
            // Wait out a burst of writes.
            let mut last = now;
            loop {
                tokio::time::sleep(QUIET).await;
                let again = self.look();
                if again == last {
                    break;
                }
                last = again;
            }
            let change = diff(&self.seen, &last);
            self.seen = last;
            if change.count > 0 {
                return change;
            }
        }
    }

    fn look(&mut self) -> BTreeMap<PathBuf, Stamp> {
        let mut files = BTreeMap::new();
        for root in &self.roots {
            walk(root, &mut files);
        }
        if files.len() > MAX_FILES {
            if !self.warned {
                tracing::warn!(
                    files = files.len(),
                    max = MAX_FILES,
                    "more files to watch than wisp dev looks at; changes past the first {MAX_FILES} are not seen"
                );
                self.warned = true;
            }
            while files.len() > MAX_FILES {
                files.pop_last();
            }
        }
        files
    }
}

/// Adds the files under `dir` to `files`, skipping `target/` and hidden entries.
fn walk(dir: &Path, files: &mut BTreeMap<PathBuf, Stamp>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if files.len() > MAX_FILES {
            return;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" || name.ends_with('~') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, files);
        } else if let Ok(meta) = entry.metadata() {
            files.insert(path, (meta.modified().ok(), meta.len()));
        }
    }
}

/// What differs between two looks.
fn diff(before: &BTreeMap<PathBuf, Stamp>, after: &BTreeMap<PathBuf, Stamp>) -> Change {
    let mut files = Vec::new();
    let mut count = 0;
    let mut saved = SystemTime::UNIX_EPOCH;
    let mut note = |path: &Path, stamp: Option<&Stamp>| {
        count += 1;
        if files.len() < 5 {
            files.push(path.to_owned());
        }
        let written = stamp.and_then(|(time, _)| *time);
        saved = saved.max(written.unwrap_or_else(SystemTime::now));
    };
    for (path, stamp) in after {
        if before.get(path) != Some(stamp) {
            note(path, Some(stamp));
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) {
            note(path, None);
        }
    }
    Change {
        files,
        count,
        saved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_is_one_change_and_target_is_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() {}").unwrap();
        let mut watch = Watch::new(vec![dir.path().to_owned()]);
        // Only target/ changes: not reported within a few polls.
        std::fs::write(dir.path().join("target/out.wasm"), "x").unwrap();
        let quiet = tokio::time::timeout(POLL * 3, watch.changed()).await;
        assert!(quiet.is_err(), "a change under target/ was reported");
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() { 1; }").unwrap();
        std::fs::write(dir.path().join("src/new.rs"), "").unwrap();
        let change = tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("a change was reported");
        assert_eq!(change.count, 2, "{change:?}");
        assert!(change.files.iter().any(|f| f.ends_with("src/lib.rs")));
    }

    #[tokio::test]
    async fn a_folder_added_later_is_watched_from_then_on() {
        let (project, guest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(guest.path().join("lib.rs"), "fn a() {}").unwrap();
        let mut watch = Watch::new(vec![project.path().to_owned()]);
        let added = watch.widen(&[guest.path().to_owned(), project.path().to_owned()]);
        assert_eq!(added, vec![guest.path().canonicalize().unwrap()]);
        // What was there when it was added is not a change; a write after is.
        let quiet = tokio::time::timeout(POLL * 3, watch.changed()).await;
        assert!(quiet.is_err(), "the added folder's files were reported");
        std::fs::write(guest.path().join("lib.rs"), "fn a() { 1; }").unwrap();
        let change = tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("a change was reported");
        assert!(
            change.files.iter().any(|f| f.ends_with("lib.rs")),
            "{change:?}"
        );
    }

    #[test]
    fn a_removed_file_is_a_change() {
        let mut before = BTreeMap::new();
        before.insert(PathBuf::from("a"), (None, 1));
        let change = diff(&before, &BTreeMap::new());
        assert_eq!(change.count, 1);
        assert_eq!(change.files, vec![PathBuf::from("a")]);
    }
}
