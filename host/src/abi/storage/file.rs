//! Reading stored files: `storageGetFile`, `storageReadFile`, `storageCloseFile`.
//!
//! Opening a file copies that version into the invocation (it is at most the storage's
//! size, and the engine hands back whole objects); reads then stream it to the guest. A
//! file read to its end gives its bytes back at once, so a guest that never closes its
//! files (Taubyte's own test guests do not) holds nothing past its last read. Descriptors
//! are one table per invocation, from 1, and each works only with the storage handle that
//! opened it.

use super::super::memory::GuestMemory;
use super::super::state::{AbiState, StoreHandles};
use super::super::{split, Errno, View, SDK_MODULE};
use super::{file_name, storage};
use std::future::Future;
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

/// File descriptors one invocation may make; past it, errno 32. Far more than a function
/// reads, and each open file is also bounded by [`MAX_OPEN_FILE_BYTES`].
pub const MAX_FILES_OPENED: usize = 4096;

/// Bytes the files one invocation has open (and not yet read to their end) may hold
/// together; opening one past it is errno 32. A file is at most its guest's memory when
/// added, so this reads any file a function could have written.
pub const MAX_OPEN_FILE_BYTES: usize = 256 << 20;

type HostFuture<'a> = Box<dyn Future<Output = i32> + Send + 'a>;

/// An open file: one version's content and how far the guest has read it.
pub struct OpenFile {
    /// The storage handle that opened it.
    storage: i32,
    /// What is left to read; emptied once read to its end.
    data: Vec<u8>,
    read: usize,
}

pub(super) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap_async(
        SDK_MODULE,
        name::storageGetFile,
        move |mut c: Caller<'_, T>,
              (id, name, name_len, version, fd_ptr): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                Errno::to_i32(get_file(&mut c, view, id, (name, name_len), version, fd_ptr).await)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageReadFile,
        move |mut c: Caller<'_, T>, id: i32, fd: i32, buf: i32, len: i32, count: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            Errno::to_i32(read(&mut mem, st, (id, fd), (buf, len), count))
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::storageCloseFile,
        move |mut c: Caller<'_, T>, id: i32, fd: i32| -> i32 {
            let (_, st) = split(&mut c, view);
            Errno::to_i32(close(st, id, fd))
        },
    )?;
    Ok(())
}

async fn get_file<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    id: i32,
    name: (i32, i32),
    version: i32,
    fd_ptr: i32,
) -> Result<(), Errno> {
    let (mem, st) = split(c, view);
    mem.check_u32(fd_ptr)?;
    let name = file_name(&mem, name.0, name.1)?;
    let (engine, space, _) = storage(st, id)?;
    let function = st.function.clone();
    let name = name.ok_or(Errno::StorageGetMetaFailed)?;
    let version = (version != 0).then_some(version as u32);
    let object = match engine.object(&space, &name, version).await {
        Ok(Some(object)) => object,
        Ok(None) => return Err(Errno::StorageGetMetaFailed),
        Err(error) => {
            tracing::warn!(%function, storage = %space.name.escape_debug(),
                file = %name.escape_debug(), %error, "storage file read failed");
            return Err(Errno::GetFileFailed);
        }
    };
    let (mut mem, st) = split(c, view);
    let stores = &mut st.stores;
    let size = object.data.len();
    if stores.file_bytes + size > MAX_OPEN_FILE_BYTES {
        tracing::warn!(%function, file = %name.escape_debug(), size,
            limit = MAX_OPEN_FILE_BYTES,
            "storage file open refused: the invocation's open files would hold too much \
             (read them to the end or close them first)");
        return Err(Errno::GetFileFailed);
    }
    let open = OpenFile {
        storage: id,
        data: object.data,
        read: 0,
    };
    let Some(fd) = stores.files.insert(open) else {
        tracing::warn!(%function, limit = MAX_FILES_OPENED,
            "storage file open refused: too many files opened in one invocation");
        return Err(Errno::GetFileFailed);
    };
    stores.file_bytes += size;
    mem.write_u32(fd_ptr, fd)
}

/// The open file `fd` of storage `id`: errno 92 for an unknown storage, 35 for an fd that
/// is not open or was opened through another storage handle.
fn open_file(stores: &mut StoreHandles, id: i32, fd: i32) -> Result<&mut OpenFile, Errno> {
    stores.storages.get(id).ok_or(Errno::StorageNotFound)?;
    let file = stores.files.get_mut(fd).ok_or(Errno::FileNameNotFound)?;
    if file.storage != id {
        return Err(Errno::FileNameNotFound);
    }
    Ok(file)
}

/// `storageReadFile`: up to `len` bytes at `buf`, their count at `count_ptr`; errno 8 (EOF)
/// only on a read that yields nothing because the file is read to its end.
fn read(
    mem: &mut GuestMemory<'_>,
    st: &mut AbiState,
    (id, fd): (i32, i32),
    (buf, len): (i32, i32),
    count_ptr: i32,
) -> Result<(), Errno> {
    mem.check_u32(count_ptr)?;
    mem.slice(buf, len)?;
    let file = open_file(&mut st.stores, id, fd)?;
    let rest = &file.data[file.read..];
    if rest.is_empty() {
        mem.write_u32(count_ptr, 0)?;
        return Err(Errno::Eof);
    }
    let n = rest.len().min(len as u32 as usize);
    mem.write(buf, &rest[..n])?;
    file.read += n;
    if file.read == file.data.len() {
        // Read to its end: give the bytes back now, the guest may never close it.
        let freed = std::mem::take(&mut file.data).len();
        file.read = 0;
        st.stores.file_bytes -= freed;
    }
    mem.write_u32(count_ptr, n as u32)
}

/// `storageCloseFile`.
fn close(st: &mut AbiState, id: i32, fd: i32) -> Result<(), Errno> {
    let stores = &mut st.stores;
    open_file(stores, id, fd)?;
    let file = stores.files.remove(fd).ok_or(Errno::FileNameNotFound)?;
    stores.file_bytes -= file.data.len();
    Ok(())
}
