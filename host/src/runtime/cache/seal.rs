//! What makes a cache entry trusted: a cache directory no other user can write, a
//! secret key beside the entries that only this user can read, and an HMAC-SHA256
//! tag on every entry, over its name and its bytes.
//!
//! A compiled module is native code that wasmtime maps and runs as it is, so an
//! entry is only loaded when its tag proves this cache wrote it: a file planted in
//! the directory, altered, truncated, copied under another entry's name or written
//! with another key fails the check.

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The key's file name, in the cache directory.
pub(super) const KEY_FILE: &str = "key";

/// How long the key is, in bytes.
const KEY_LEN: usize = 32;

/// What every entry starts with, before its tag: names the layout, so that an
/// entry in another layout (from an older Wisp) fails at once.
const MAGIC: &[u8; 8] = b"wisp-m1\n";

/// An HMAC-SHA256 tag's length.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The secret key that signs this cache's entries.
pub(super) struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// Creates `dir` (mode 0700) if needed, checks that no other user can write
    /// it, and reads its key file, or creates one if there is none.
    pub(super) fn for_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        check_dir(dir)?;
        let path = dir.join(KEY_FILE);
        match read_key(&path) {
            Err(error) if is_not_found(&error) => create_key(dir, &path),
            read => read,
        }
    }

    /// The entry to store for `artifact` under file name `name`.
    pub(super) fn seal(&self, name: &str, artifact: &[u8]) -> Vec<u8> {
        let mut entry = Vec::with_capacity(MAGIC.len() + TAG_LEN + artifact.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&self.mac(name, artifact).finalize().into_bytes());
        entry.extend_from_slice(artifact);
        entry
    }

    /// The artifact in `entry` if its tag is this key's for `name` and its bytes,
    /// else `None`. The comparison takes the same time wherever the tags differ.
    pub(super) fn unseal<'a>(&self, name: &str, entry: &'a [u8]) -> Option<&'a [u8]> {
        let rest = entry.strip_prefix(MAGIC)?;
        if rest.len() < TAG_LEN {
            return None;
        }
        let (tag, artifact) = rest.split_at(TAG_LEN);
        self.mac(name, artifact).verify_slice(tag).ok()?;
        Some(artifact)
    }

    fn mac(&self, name: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(MAGIC);
        // The name ends at the first NUL: no name has one, so (name, bytes) pairs
        // never run together.
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(artifact);
        mac
    }
}

/// The cache directory must be ours and not writable by group or others: anyone
/// who can write it can replace the key and the entries together.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if meta.uid() != current_user() {
        bail!(
            "{} belongs to user {}, not to this one ({})",
            dir.display(),
            meta.uid(),
            current_user()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{} is writable by other users (mode {:o}); `chmod go-w` it to cache modules there",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// Reads the key at `path`, which must be a regular file (not a link), this
/// user's, mode 0600 and exactly [`KEY_LEN`] bytes long.
fn read_key(path: &Path) -> anyhow::Result<Key> {
    // O_NOFOLLOW: a symbolic link fails to open; the checks below are on the file
    // actually opened, so nothing can be swapped in between.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.uid() != current_user() {
        bail!(
            "{} belongs to user {}, not to this one ({})",
            path.display(),
            meta.uid(),
            current_user()
        );
    }
    if meta.mode() & 0o7777 != 0o600 {
        bail!(
            "{} has mode {:o}; a cache key must have mode 600",
            path.display(),
            meta.mode() & 0o7777
        );
    }
    let mut key = [0; KEY_LEN];
    let mut extra = [0; 1];
    let whole = file.read_exact(&mut key).is_ok() && file.read(&mut extra).ok() == Some(0);
    if !whole {
        bail!("{} is not a {KEY_LEN}-byte key", path.display());
    }
    Ok(Key(key))
}

/// Makes a new random key at `path`: written in full under a temporary name, then
/// linked to `path`, which fails if another process made one first (then that one
/// is read). So no process ever reads a partly written key.
fn create_key(dir: &Path, path: &Path) -> anyhow::Result<Key> {
    let mut key = [0; KEY_LEN];
    getrandom::getrandom(&mut key).context("getting random bytes for the cache key")?;
    let mut suffix = [0; 8];
    getrandom::getrandom(&mut suffix).context("getting random bytes for the cache key")?;
    let tmp = dir.join(format!(
        "{KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        hex::encode(suffix)
    ));
    let linked = write_new(&tmp, &key).and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(anyhow::Error::new(error).context(format!("linking {}", path.display()))),
    });
    let _ = std::fs::remove_file(&tmp);
    if linked? {
        Ok(Key(key))
    } else {
        read_key(path)
    }
}

/// Creates `path`, which must not exist, with mode 0600, and writes `bytes` to it.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // The umask may have taken bits from 0600; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn current_user() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_covers_the_name_and_every_byte() {
        let key = Key([7; KEY_LEN]);
        let entry = key.seal("a.cwasm", b"native code");
        assert_eq!(key.unseal("a.cwasm", &entry), Some(&b"native code"[..]));
        assert_eq!(key.unseal("b.cwasm", &entry), None, "another entry's name");
        assert_eq!(
            Key([8; KEY_LEN]).unseal("a.cwasm", &entry),
            None,
            "another key"
        );
        for at in 0..entry.len() {
            let mut altered = entry.clone();
            altered[at] ^= 1;
            assert_eq!(key.unseal("a.cwasm", &altered), None, "byte {at} altered");
        }
        for len in 0..entry.len() {
            assert_eq!(key.unseal("a.cwasm", &entry[..len]), None, "cut to {len}");
        }
    }

    #[test]
    fn a_key_is_made_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = dir.path().join("cache");
        let first = Key::for_dir(&cache).expect("a new key");
        let meta = std::fs::symlink_metadata(cache.join(KEY_FILE)).expect("the key file");
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        let second = Key::for_dir(&cache).expect("the same key");
        assert_eq!(first.0, second.0);
        // Only the key is left: no temporary file.
        let names: Vec<_> = std::fs::read_dir(&cache)
            .expect("cache dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [KEY_FILE]);
    }

    #[test]
    fn keys_that_are_not_a_private_regular_file_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("real-key");
        write_new(&real, &[1; KEY_LEN]).expect("a key elsewhere");

        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).expect("dir");
        std::os::unix::fs::symlink(&real, linked.join(KEY_FILE)).expect("symlink");
        assert!(Key::for_dir(&linked).is_err(), "a symbolic link");

        let short = dir.path().join("short");
        std::fs::create_dir(&short).expect("dir");
        write_new(&short.join(KEY_FILE), &[1; KEY_LEN - 1]).expect("short key");
        assert!(Key::for_dir(&short).is_err(), "a short key");

        let directory = dir.path().join("directory");
        std::fs::create_dir_all(directory.join(KEY_FILE)).expect("dir");
        assert!(Key::for_dir(&directory).is_err(), "a directory");
    }
}
