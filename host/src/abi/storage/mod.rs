//! Storage calls: Taubyte's object storages (`storages/*.yaml`), over the state engine.
//!
//! A guest opens a storage by a name that a resource's `match` serves; its files live under
//! (project, application, that name), as on Taubyte, and hold at most the resource's
//! `object.size` together (a file costs its name and its content). With `object.versioning`
//! each add keeps the older versions (the new one is the latest + 1, or replaces the latest
//! with `overwrite`); without it every file is version 1 and a second add must overwrite.
//! Reading a file ([`file`]) copies that version into the invocation when it is opened, then
//! streams it to the guest.
//!
//! Errno numbers are Taubyte's where they mean something, and differ on purpose here:
//! - an unknown storage handle is 92 (`StorageNotFound`; Taubyte gives 1, `EventNotFound`,
//!   or 3 in the current-version calls);
//! - an unknown file descriptor, or one opened through another storage handle, is 35
//!   (`FileNameNotFound`; Taubyte gives 3), for reads and closes alike;
//! - a current version, version list or listing fetched without its `...Size` call just
//!   before is 36, 36 and 93 (Taubyte reads again and writes with no length, which overruns
//!   the buffer if the value changed; its current-version call gives 3);
//! - a file name that is empty, longer than [`MAX_FILE_NAME`], not UTF-8 or holding a NUL
//!   byte is refused as a missing file is (31 when adding);
//! - deleting the last version of a file is 0 (Taubyte gives 33 after deleting it);
//! - read errors cannot happen (the content is in memory), so there is no 6.
//!
//! Like Taubyte's, [`storageListFiles`](wisp_abi::imports::name::storageListFiles) lists raw
//! `/file/<name>/<version>` entries, which Taubyte's Go and Rust SDKs (and `wisp-sdk`) split
//! on `/`: a file name with a `/` in it is stored and read fine, but lists wrong there.
//!
//! CIDs are real CIDv1 of the content (raw codec, sha2-256), not the dag-pb CID an IPFS add
//! gives: the same bytes have another CID on Taubyte's production nodes.

mod file;

pub use file::{OpenFile, MAX_FILES_OPENED, MAX_OPEN_FILE_BYTES};

use super::memory::{nul_list, GuestMemory};
use super::state::AbiState;
use super::{split, Errno, View, SDK_MODULE};
use crate::state::{Engine, ObjectWrite, Space, StateEngine, StateError};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

/// Storage handles one invocation may make (`storageNew` and `storageGet` make a new one
/// each call, as on Taubyte); past it, errno 22 (92 for `storageGet`).
pub const MAX_OPEN_STORAGES: usize = 256;

/// The longest file name, in bytes: far past any real one, and short enough that names
/// stay cheap to index and to list.
pub const MAX_FILE_NAME: usize = 1024;

/// A CIDv1 as bytes: version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes.
const CID_PREFIX: [u8; 4] = [0x01, 0x55, 0x12, 0x20];

/// The length of the binary CIDs `storageCid` writes.
pub const CID_LEN: usize = CID_PREFIX.len() + 32;

type HostFuture<'a> = Box<dyn Future<Output = i32> + Send + 'a>;

/// A storage handle.
pub struct OpenStorage {
    pub engine: Engine,
    pub space: Arc<Space>,
    /// The resource's `object.versioning`.
    pub versioning: bool,
    /// What the last `...Size` call measured, for the fetch that follows it, so that the
    /// write fits the buffer the guest sized by it.
    pub measured: Option<(Measured, Vec<u8>)>,
}

/// Which `...Size` call a measured value came from.
#[derive(Debug, PartialEq, Eq)]
pub enum Measured {
    Versions(String),
    Files,
    Used,
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        name::storageNew,
        move |mut c: Caller<'_, T>, name: i32, name_len: i32, id_ptr: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let refused = Errno::DatabaseCreateFailed;
            Errno::to_i32(open(&mut mem, st, (name, name_len), id_ptr, refused))
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageGet,
        move |mut c: Caller<'_, T>, name: i32, name_len: i32, id_ptr: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let refused = Errno::StorageNotFound;
            Errno::to_i32(open(&mut mem, st, (name, name_len), id_ptr, refused))
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageAddFile,
        move |mut c: Caller<'_, T>,
              (id, name, name_len, version_ptr, data, data_len, overwrite): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
        )|
              -> HostFuture<'_> {
            Box::new(async move {
                let args = (
                    id,
                    (name, name_len),
                    version_ptr,
                    (data, data_len),
                    overwrite,
                );
                Errno::to_i32(add_file(&mut c, view, args).await)
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageDeleteFile,
        move |mut c: Caller<'_, T>,
              (id, name, name_len, version, all): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                Errno::to_i32(delete_file(&mut c, view, id, (name, name_len), version, all).await)
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageCid,
        move |mut c: Caller<'_, T>,
              (id, name, name_len, cid_ptr): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                Errno::to_i32(cid(&mut c, view, id, (name, name_len), cid_ptr).await)
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageListVersionsSize,
        move |mut c: Caller<'_, T>,
              (id, name, name_len, size_ptr): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                Errno::to_i32(versions_size(&mut c, view, id, (name, name_len), size_ptr).await)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageListVersions,
        move |mut c: Caller<'_, T>, id: i32, name: i32, name_len: i32, buf: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let fetched = (|| {
                let name = file_name(&mem, name, name_len)?.ok_or(Errno::ListFileVersionsFailed)?;
                let what = Measured::Versions(name);
                let list = take_measured(st, id, &what, Errno::ListFileVersionsFailed)?;
                mem.write(buf, &list)
            })();
            Errno::to_i32(fetched)
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageCurrentVersionSize,
        move |mut c: Caller<'_, T>,
              (id, name, name_len, size_ptr): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let name = (name, name_len);
                Errno::to_i32(current_version_size(&mut c, view, id, name, size_ptr).await)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageCurrentVersion,
        move |mut c: Caller<'_, T>, name: i32, name_len: i32, buf: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let fetched = (|| {
                let name = file_name(&mem, name, name_len)?.ok_or(Errno::ListFileVersionsFailed)?;
                match st.stores.current_version.take() {
                    Some((measured, version)) if measured == name => mem.write(buf, &version),
                    _ => {
                        tracing::warn!(function = %st.function, file = %name.escape_debug(),
                            "storageCurrentVersion refused: call storageCurrentVersionSize first");
                        Err(Errno::ListFileVersionsFailed)
                    }
                }
            })();
            Errno::to_i32(fetched)
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageListFilesSize,
        move |mut c: Caller<'_, T>, (id, size_ptr): (i32, i32)| -> HostFuture<'_> {
            Box::new(async move { Errno::to_i32(files_size(&mut c, view, id, size_ptr).await) })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageListFiles,
        move |mut c: Caller<'_, T>, id: i32, buf: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let list = take_measured(st, id, &Measured::Files, Errno::StorageListFailed);
            Errno::to_i32(list.and_then(|list| mem.write(buf, &list)))
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageUsedSize,
        move |mut c: Caller<'_, T>, (id, size_ptr): (i32, i32)| -> HostFuture<'_> {
            Box::new(async move { Errno::to_i32(used_size(&mut c, view, id, size_ptr).await) })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageUsed,
        move |mut c: Caller<'_, T>, id: i32, buf: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let used = take_measured(st, id, &Measured::Used, Errno::ListingUsedSpaceFailed);
            Errno::to_i32(used.and_then(|used| mem.write(buf, &used)))
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageCapacitySize,
        move |mut c: Caller<'_, T>, id: i32, size_ptr: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            let capacity = capacity(st, id);
            Errno::to_i32(capacity.and_then(|c| mem.write_u32(size_ptr, c.len() as u32)))
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageCapacity,
        move |mut c: Caller<'_, T>, id: i32, buf: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            // The capacity never changes under a handle, so it needs no measurement.
            Errno::to_i32(capacity(st, id).and_then(|c| mem.write(buf, c.as_bytes())))
        },
    )?;
    file::add_to_linker(linker, view)
}

/// `storageNew` and `storageGet`: the resource serving the name, a new handle for it.
fn open(
    mem: &mut GuestMemory<'_>,
    st: &mut AbiState,
    (name, name_len): (i32, i32),
    id_ptr: i32,
    refused: Errno,
) -> Result<(), Errno> {
    mem.check_u32(id_ptr)?;
    let Some(name) = mem.utf8(name, name_len)? else {
        tracing::warn!(function = %st.function, "storage name is not valid UTF-8");
        return Err(refused);
    };
    let Some(state) = st.env.state.as_ref() else {
        tracing::warn!(function = %st.function, "no state engine: storages are off");
        return Err(refused);
    };
    let Some((space, versioning)) = state.storage(&name) else {
        tracing::warn!(function = %st.function, storage = %name.escape_debug(),
            "no storages/*.yaml resource matches this name: add one whose `match` does");
        return Err(refused);
    };
    let open = OpenStorage {
        engine: state.engine.clone(),
        space: Arc::new(space),
        versioning,
        measured: None,
    };
    let Some(id) = st.stores.storages.insert(open) else {
        tracing::warn!(function = %st.function, limit = MAX_OPEN_STORAGES,
            "storage open refused: too many handles in one invocation (open each storage once)");
        return Err(refused);
    };
    mem.write_u32(id_ptr, id)
}

/// What a storage call works on, or errno 92 for an unknown handle.
fn storage(st: &AbiState, id: i32) -> Result<(Engine, Arc<Space>, bool), Errno> {
    let open = st.stores.storages.get(id).ok_or(Errno::StorageNotFound)?;
    Ok((open.engine.clone(), open.space.clone(), open.versioning))
}

/// A file name from the guest, or `None` if it is not one Wisp stores: empty, longer than
/// [`MAX_FILE_NAME`], not UTF-8, or holding a NUL (which would split its listing).
fn file_name(mem: &GuestMemory<'_>, ptr: i32, len: i32) -> Result<Option<String>, Errno> {
    let bytes = mem.slice(ptr, len)?;
    if bytes.is_empty() || bytes.len() > MAX_FILE_NAME || bytes.contains(&0) {
        return Ok(None);
    }
    Ok(std::str::from_utf8(bytes).ok().map(str::to_owned))
}

/// The value a `...Size` call measured for `what`, taken from handle `id`; `missing` if the
/// call just before on this handle was not that one.
fn take_measured(
    st: &mut AbiState,
    id: i32,
    what: &Measured,
    missing: Errno,
) -> Result<Vec<u8>, Errno> {
    let function = st.function.clone();
    let open = st
        .stores
        .storages
        .get_mut(id)
        .ok_or(Errno::StorageNotFound)?;
    match open.measured.take() {
        Some((measured, value)) if measured == *what => Ok(value),
        _ => {
            tracing::warn!(%function, storage = %open.space.name.escape_debug(), ?what,
                "storage fetch refused: call its ...Size call first, just before");
            Err(missing)
        }
    }
}

/// Keeps `value`, measured by `what`, on handle `id` for the fetch, and writes its size.
fn measured(
    mem: &mut GuestMemory<'_>,
    st: &mut AbiState,
    id: i32,
    size_ptr: i32,
    what: Measured,
    value: Vec<u8>,
) -> Result<(), Errno> {
    mem.write_u32(size_ptr, value.len() as u32)?;
    let open = st
        .stores
        .storages
        .get_mut(id)
        .ok_or(Errno::StorageNotFound)?;
    open.measured = Some((what, value));
    Ok(())
}

async fn add_file<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    (id, name, version_ptr, (data, data_len), overwrite): (i32, (i32, i32), i32, (i32, i32), i32),
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.check_u32(version_ptr)?;
    mem.slice(data, data_len)?;
    let name = file_name(&mem, name.0, name.1)?;
    let (engine, space, versioning) = storage(st, id)?;
    let function = st.function.clone();
    let Some(name) = name else {
        tracing::warn!(%function, storage = %space.name.escape_debug(), limit = MAX_FILE_NAME,
            "storage file refused: its name is empty, too long, not UTF-8 or holds a NUL");
        return Err(Errno::AddFileFailed);
    };
    if data_len as u32 as u64 > space.capacity {
        tracing::warn!(%function, storage = %space.name.escape_debug(), file = %name.escape_debug(),
            size = data_len as u32, capacity = space.capacity,
            "storage file refused: larger than the storage's size (object.size)");
        return Err(Errno::AddFileFailed);
    }
    let data = mem.slice(data, data_len)?.to_vec();
    let write = ObjectWrite {
        versioning,
        overwrite: overwrite == 1,
    };
    let added = engine.add_object(&space, &name, &data, write).await;
    let version = added.map_err(|error| {
        let hint = match error {
            StateError::Exists(_) => " (pass overwrite, or set `object.versioning: true`)",
            StateError::Full { .. } => " (delete files, or raise `object.size`)",
            _ => "",
        };
        tracing::warn!(%function, storage = %space.name.escape_debug(),
            file = %name.escape_debug(), %error, "storage add failed{hint}");
        Errno::AddFileFailed
    })?;
    let (mut mem, _) = split(c, view);
    mem.write_u32(version_ptr, version)
}

async fn delete_file<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    name: (i32, i32),
    version: i32,
    all: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    let name = file_name(&mem, name.0, name.1)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let name = name.ok_or(Errno::DeleteFileFailed)?;
    let failed = |error: StateError| {
        tracing::warn!(%function, storage = %space.name.escape_debug(),
            file = %name.escape_debug(), %error, "storage delete failed");
        Errno::DeleteFileFailed
    };
    let version = match (all == 1, version as u32) {
        (true, _) => None,
        (false, 0) => {
            let versions = engine.versions(&space, &name).await.map_err(&failed)?;
            Some(*versions.last().ok_or(Errno::DeleteFileFailed)?)
        }
        (false, version) => Some(version),
    };
    match engine.delete_object(&space, &name, version).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Errno::DeleteFileFailed),
        Err(error) => Err(failed(error)),
    }
}

/// The binary CIDv1 (raw codec, sha2-256) of `data`.
pub fn raw_cid(data: &[u8]) -> [u8; CID_LEN] {
    let mut cid = [0; CID_LEN];
    cid[..CID_PREFIX.len()].copy_from_slice(&CID_PREFIX);
    cid[CID_PREFIX.len()..].copy_from_slice(&Sha256::digest(data));
    cid
}

async fn cid<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    name: (i32, i32),
    cid_ptr: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.slice(cid_ptr, CID_LEN as i32)?;
    let name = file_name(&mem, name.0, name.1)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let name = name.ok_or(Errno::StorageGetMetaFailed)?;
    let object = match engine.object(&space, &name, None).await {
        Ok(Some(object)) => object,
        Ok(None) => return Err(Errno::StorageGetMetaFailed),
        Err(error) => {
            tracing::warn!(%function, storage = %space.name.escape_debug(),
                file = %name.escape_debug(), %error, "storage cid failed");
            return Err(Errno::StorageGetMetaFailed);
        }
    };
    let (mut mem, _) = split(c, view);
    mem.write(cid_ptr, &raw_cid(&object.data))
}

/// The versions of file `name`: empty when there is none, or on an engine failure (logged).
async fn versions(function: &str, engine: &dyn StateEngine, space: &Space, name: &str) -> Vec<u32> {
    engine.versions(space, name).await.unwrap_or_else(|error| {
        tracing::warn!(%function, storage = %space.name.escape_debug(),
            file = %name.escape_debug(), %error, "storage version list failed");
        Vec::new()
    })
}

async fn versions_size<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    name: (i32, i32),
    size_ptr: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.check_u32(size_ptr)?;
    let name = file_name(&mem, name.0, name.1)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let name = name.ok_or(Errno::ListFileVersionsFailed)?;
    let versions = versions(&function, &*engine, &space, &name).await;
    if versions.is_empty() {
        return Err(Errno::ListFileVersionsFailed);
    }
    let decimal: Vec<String> = versions.iter().map(u32::to_string).collect();
    let list = nul_list(decimal.iter().map(String::as_str));
    let (mut mem, st) = split(c, view);
    measured(&mut mem, st, id, size_ptr, Measured::Versions(name), list)
}

async fn current_version_size<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    name: (i32, i32),
    size_ptr: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.check_u32(size_ptr)?;
    let name = file_name(&mem, name.0, name.1)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let name = name.ok_or(Errno::ListFileVersionsFailed)?;
    let versions = versions(&function, &*engine, &space, &name).await;
    let latest = versions.last().ok_or(Errno::ListFileVersionsFailed)?;
    let latest = latest.to_string().into_bytes();
    let (mut mem, st) = split(c, view);
    mem.write_u32(size_ptr, latest.len() as u32)?;
    st.stores.current_version = Some((name, latest));
    Ok(())
}

async fn files_size<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    size_ptr: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.check_u32(size_ptr)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let files = engine.objects(&space).await.map_err(|error| {
        tracing::warn!(%function, storage = %space.name.escape_debug(), %error,
            "storage file list failed");
        Errno::StorageListFailed
    })?;
    let list = files_list(&files);
    let (mut mem, st) = split(c, view);
    measured(&mut mem, st, id, size_ptr, Measured::Files, list)
}

/// Taubyte's file listing: `/file/<name>/<version>` per stored version, each followed by a
/// NUL byte.
pub fn files_list(files: &[(String, u32)]) -> Vec<u8> {
    let entries: Vec<String> = files
        .iter()
        .map(|(name, version)| format!("/file/{name}/{version}"))
        .collect();
    nul_list(entries.iter().map(String::as_str))
}

async fn used_size<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    size_ptr: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.check_u32(size_ptr)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let used = engine.used(&space).await.map_err(|error| {
        tracing::warn!(%function, storage = %space.name.escape_debug(), %error,
            "storage used space failed");
        Errno::ListingUsedSpaceFailed
    })?;
    let (mut mem, st) = split(c, view);
    let used = used.to_string().into_bytes();
    measured(&mut mem, st, id, size_ptr, Measured::Used, used)
}

/// The capacity of storage `id`, in decimal.
fn capacity(st: &AbiState, id: i32) -> Result<String, Errno> {
    let (_, space, _) = storage(st, id)?;
    Ok(space.capacity.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_cid_is_cidv1_raw_sha256() {
        let cid = raw_cid(b"");
        assert_eq!(cid[..4], [0x01, 0x55, 0x12, 0x20]);
        // sha2-256 of nothing.
        assert_eq!(
            hex::encode(&cid[4..]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn files_list_is_taubytes_raw_keys() {
        let files = [("video".to_owned(), 1), ("video".to_owned(), 2)];
        assert_eq!(files_list(&files), b"/file/video/1\0/file/video/2\0");
        assert!(files_list(&[]).is_empty());
    }
}
