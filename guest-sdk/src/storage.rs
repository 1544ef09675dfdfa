//! Object storages: files, their versions and CIDs, in a storage a `storages/*.yaml`
//! resource declares.
//!
//! ```no_run
//! use std::io::Read;
//! use wisp_sdk::{storage, Event};
//!
//! #[wisp_sdk::function]
//! fn upload(event: Event) -> Result<(), Box<dyn std::error::Error>> {
//!     let http = event.http()?;
//!     let uploads = storage::new("uploads")?;
//!     let version = uploads.add_file("notes.txt", b"first draft", false)?;
//!
//!     let mut text = String::new();
//!     uploads.file("notes.txt").version(version).get()?.read_to_string(&mut text)?;
//!     http.write(format!("v{version}: {text}").as_bytes())?;
//!     Ok(())
//! }
//! ```
//!
//! A storage is opened by a name that a resource's `match` serves (not the YAML file's
//! name). With `object.versioning: true` each add keeps the older versions; without it a
//! file has only version 1, and adding it again needs `overwrite`.

use std::fmt;
use std::io;

use crate::error::{check, Error, Result};
use crate::fetch;
use crate::sys::safe;

/// Opens the storage a `storages/*.yaml` resource serves under `name`.
///
/// ```no_run
/// # fn f() -> wisp_sdk::Result<()> {
/// let media = wisp_sdk::storage::new("media")?;
/// println!("{} of {} bytes used", media.used()?, media.capacity()?);
/// # Ok(()) }
/// ```
pub fn new(name: &str) -> Result<Storage> {
    let mut id = 0;
    check(safe::storage_new(name, &mut id), || {
        format!("opening storage `{name}`")
    })?;
    Ok(Storage { id })
}

/// A storage handle, valid for the rest of the invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Storage {
    id: u32,
}

impl Storage {
    /// Opens the storage `name`, as Taubyte's `storage.Get` does (on Wisp the same as
    /// [`new`]).
    pub fn open(name: &str) -> Result<Storage> {
        let mut id = 0;
        check(safe::storage_get(name, &mut id), || {
            format!("opening storage `{name}`")
        })?;
        Ok(Storage { id })
    }

    /// The handle's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Stores `data` as file `name`; returns the version it got. `overwrite` replaces the
    /// latest version instead of adding one. Fails (errno 31) past the storage's size, or
    /// when the file exists, the storage keeps no versions and `overwrite` is false.
    pub fn add_file(&self, name: &str, data: &[u8], overwrite: bool) -> Result<u32> {
        let mut version = 0;
        let code = safe::storage_add_file(self.id, name, data, overwrite, &mut version);
        check(code, || format!("adding file `{name}`"))?;
        Ok(version)
    }

    /// File `name`, at its latest version; pick another with [`File::version`].
    pub fn file(&self, name: &str) -> File {
        File {
            storage: self.id,
            name: name.to_owned(),
            version: 0,
        }
    }

    /// The CID of the latest version of file `name`.
    pub fn cid(&self, name: &str) -> Result<Cid> {
        self.file(name).cid()
    }

    /// Every stored version of every file, by name then version.
    ///
    /// ```no_run
    /// # fn f(media: wisp_sdk::storage::Storage) -> wisp_sdk::Result<()> {
    /// for file in media.list_files()? {
    ///     println!("{} v{}", file.name(), file.pinned_version().unwrap_or(0));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_files(&self) -> Result<Vec<File>> {
        let list = fetch::bytes(
            || "the storage's file list".into(),
            |size| safe::storage_files_size(self.id, size),
            |buf| safe::storage_files(self.id, buf),
        )?;
        fetch::split_names(&list)
            .iter()
            .map(|entry| {
                let (name, version) = parse_entry(entry)
                    .ok_or_else(|| Error::new(format!("unexpected file entry `{entry}`")))?;
                Ok(self.file(name).version(version))
            })
            .collect()
    }

    /// Bytes the storage holds (each file costs its name and its content).
    pub fn used(&self) -> Result<u64> {
        let used = fetch::string(
            || "the storage's used space".into(),
            |size| safe::storage_used_size(self.id, size),
            |buf| safe::storage_used(self.id, buf),
        )?;
        decimal(&used, "used space")
    }

    /// Bytes the storage may hold: its `object.size`.
    pub fn capacity(&self) -> Result<u64> {
        let capacity = fetch::string(
            || "the storage's capacity".into(),
            |size| safe::storage_capacity_size(self.id, size),
            |buf| safe::storage_capacity(self.id, buf),
        )?;
        decimal(&capacity, "capacity")
    }

    /// What is left: [`capacity`](Self::capacity) minus [`used`](Self::used).
    pub fn remaining_capacity(&self) -> Result<u64> {
        Ok(self.capacity()?.saturating_sub(self.used()?))
    }
}

/// `/file/<name>/<version>`: the name may hold `/`, the version is after the last one.
fn parse_entry(entry: &str) -> Option<(&str, u32)> {
    let (name, version) = entry.strip_prefix("/file/")?.rsplit_once('/')?;
    Some((name, version.parse().ok()?))
}

fn decimal(text: &str, what: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| Error::new(format!("the storage's {what} `{text}` is not a number")))
}

/// A file in a storage: its latest version, or one picked with [`File::version`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct File {
    storage: u32,
    name: String,
    /// 0: the latest.
    version: u32,
}

impl File {
    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This file at version `version` (0: the latest).
    pub fn version(&self, version: u32) -> File {
        File {
            version,
            ..self.clone()
        }
    }

    /// The version picked with [`File::version`], or `None` for the latest.
    pub fn pinned_version(&self) -> Option<u32> {
        (self.version != 0).then_some(self.version)
    }

    /// Stores `data` as this file; returns the version it got (see [`Storage::add_file`]).
    pub fn add(&self, data: &[u8], overwrite: bool) -> Result<u32> {
        Storage { id: self.storage }.add_file(&self.name, data, overwrite)
    }

    /// Opens the picked version for reading.
    ///
    /// ```no_run
    /// use std::io::Read;
    /// # fn f(media: wisp_sdk::storage::Storage) -> std::io::Result<()> {
    /// let mut first = Vec::new();
    /// media.file("clip").version(1).get()?.read_to_end(&mut first)?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> Result<FileReader> {
        let mut fd = 0;
        let code = safe::storage_get_file(self.storage, &self.name, self.version, &mut fd);
        check(code, || format!("opening file `{}`", self.name))?;
        Ok(FileReader {
            storage: self.storage,
            fd,
            done: false,
        })
    }

    /// The file's latest version.
    pub fn current_version(&self) -> Result<u32> {
        let name = &self.name;
        let version = fetch::string(
            || format!("the current version of file `{name}`"),
            |size| safe::storage_current_version_size(self.storage, name, size),
            |buf| safe::storage_current_version(name, buf),
        )?;
        version
            .parse()
            .map_err(|_| Error::new(format!("version `{version}` is not a number")))
    }

    /// The versions kept, oldest first.
    pub fn versions(&self) -> Result<Vec<u32>> {
        let name = &self.name;
        let list = fetch::bytes(
            || format!("the versions of file `{name}`"),
            |size| safe::storage_versions_size(self.storage, name, size),
            |buf| safe::storage_versions(self.storage, name, buf),
        )?;
        fetch::split_names(&list)
            .iter()
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::new(format!("version `{v}` is not a number")))
            })
            .collect()
    }

    /// Deletes the picked version (the latest if none was picked).
    pub fn delete(&self) -> Result<()> {
        let code = safe::storage_delete_file(self.storage, &self.name, self.version, false);
        check(code, || format!("deleting file `{}`", self.name))
    }

    /// Deletes every version of the file.
    pub fn delete_all_versions(&self) -> Result<()> {
        let code = safe::storage_delete_file(self.storage, &self.name, 0, true);
        check(code, || format!("deleting file `{}`", self.name))
    }

    /// The CID of the file's latest version.
    pub fn cid(&self) -> Result<Cid> {
        let mut buf = [0; 64];
        check(
            safe::storage_cid(self.storage, &self.name, &mut buf),
            || format!("reading the cid of file `{}`", self.name),
        )?;
        Cid::parse(&buf).ok_or_else(|| Error::new("the host wrote an invalid cid"))
    }
}

/// An open file. Read it with [`std::io::Read`]; its end reads as 0 bytes.
#[derive(Debug)]
pub struct FileReader {
    storage: u32,
    fd: u32,
    /// The host said EOF.
    done: bool,
}

impl FileReader {
    /// Closes the file (files still open are closed when the invocation ends).
    pub fn close(self) -> Result<()> {
        check(safe::storage_close_file(self.storage, self.fd), || {
            "closing a storage file".into()
        })
    }
}

impl io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (storage, fd) = (self.storage, self.fd);
        fetch::stream_read(
            buf,
            &mut self.done,
            || "reading a storage file".into(),
            |buf, count| safe::storage_read_file(storage, fd, buf, count),
        )
    }
}

/// A content identifier, as the host writes it: binary CIDv1 (or a v0 sha2-256 multihash).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cid {
    bytes: Vec<u8>,
}

impl Cid {
    /// The CID at the start of `buf` (CIDs are self-delimiting), if there is a valid one.
    pub fn parse(buf: &[u8]) -> Option<Cid> {
        if buf.starts_with(&[0x12, 0x20]) {
            // v0: a bare sha2-256 multihash.
            return buf.get(..34).map(|bytes| Cid {
                bytes: bytes.to_vec(),
            });
        }
        let mut at = 0;
        let version = varint(buf, &mut at)?;
        if version != 1 {
            return None;
        }
        varint(buf, &mut at)?; // codec
        varint(buf, &mut at)?; // hash function
        let len = usize::try_from(varint(buf, &mut at)?).ok()?;
        let end = at.checked_add(len)?;
        buf.get(..end).map(|bytes| Cid {
            bytes: bytes.to_vec(),
        })
    }

    /// The binary CID.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The content's sha2-256 digest: the last 32 bytes.
    pub fn digest(&self) -> &[u8] {
        &self.bytes[self.bytes.len().saturating_sub(32)..]
    }
}

/// `bafk...`: multibase base32, lowercase, no padding (for a v1 CID).
impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        f.write_str("b")?;
        let (mut acc, mut bits) = (0u32, 0);
        for &byte in &self.bytes {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                let c = ALPHABET[((acc >> bits) & 31) as usize];
                fmt::Write::write_char(f, char::from(c))?;
            }
        }
        if bits > 0 {
            let c = ALPHABET[((acc << (5 - bits)) & 31) as usize];
            fmt::Write::write_char(f, char::from(c))?;
        }
        Ok(())
    }
}

/// An unsigned LEB128 varint of at most 9 bytes at `buf[*at..]`.
fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..9 {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_raw_cidv1_from_a_64_byte_buffer() {
        let mut buf = [0u8; 64];
        buf[..4].copy_from_slice(&[0x01, 0x55, 0x12, 0x20]);
        buf[4..36].copy_from_slice(&[0xab; 32]);
        let cid = Cid::parse(&buf).unwrap();
        assert_eq!(cid.as_bytes().len(), 36);
        assert_eq!(cid.digest(), &[0xab; 32]);
        assert!(cid.to_string().starts_with("bafkrei"), "{cid}");
        assert_eq!(Cid::parse(&[0u8; 64]), None);
        assert_eq!(Cid::parse(&buf[..20]), None, "cut short");
    }

    #[test]
    fn list_entries_keep_slashes_in_names() {
        assert_eq!(parse_entry("/file/video/2"), Some(("video", 2)));
        assert_eq!(parse_entry("/file/a/b/c/10"), Some(("a/b/c", 10)));
        assert_eq!(parse_entry("/file/video/x"), None);
        assert_eq!(parse_entry("video/1"), None);
    }

    #[test]
    fn calls_fail_outside_a_host() {
        let err = new("media").unwrap_err();
        assert_eq!(
            err.to_string(),
            "opening storage `media`: event not found (errno 1)"
        );
        let file = Storage { id: 1 }.file("clip").version(3);
        assert_eq!(file.pinned_version(), Some(3));
        assert_eq!(file.version(0).pinned_version(), None);
        assert!(file.get().is_err());
        assert!(file.cid().is_err());
    }
}
