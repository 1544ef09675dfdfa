//! Database calls: Taubyte's key-value databases (`databases/*.yaml`), over the state engine.
//!
//! A guest opens a database by a name that a resource's `match` serves; the data lives
//! under (project, application, that name), as on Taubyte. Where Taubyte's host is wrong
//! Wisp is not: a missing key is errno 29 (`DatabaseKeyNotFound`, Taubyte gives 23); the
//! value or key list a `...Size` call measured is what the matching fetch writes (Taubyte
//! reads again, and a value that grew meanwhile overruns the guest's buffer); a put past
//! the database's size fails whole; keys cost their length against the size as values do
//! (so empty values cannot fill a disk); closing a handle closes only the handle.

use super::memory::{nul_list, GuestMemory};
use super::state::{AbiState, OpenDatabase};
use super::{split, Errno, HostFuture, View, SDK_MODULE};
use crate::state::{Space, StateEngine, StateError};
use std::sync::Arc;
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

/// Databases one invocation may open (`newDatabase` makes a new handle each call, as on
/// Taubyte); past it, errno 22.
pub const MAX_OPEN_DATABASES: usize = 256;

/// The longest key: far past any real one, and short enough that keys stay cheap to
/// index and to list.
pub const MAX_KEY: usize = 4096;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        name::newDatabase,
        move |mut c: Caller<'_, T>, name_ptr: i32, name_len: i32, id_ptr: i32| -> i32 {
            let (mut mem, st) = split(&mut c, view);
            Errno::to_i32(open(&mut mem, st, name_ptr, name_len, id_ptr))
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::databasePut,
        move |mut c: Caller<'_, T>,
              (id, key, key_len, value, value_len): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mem, st) = split(&mut c, view);
                let prepared = (|| -> Result<_, Errno> {
                    let (engine, db) = database(st, id)?;
                    let key = key_arg(&mem, st, key, key_len, Errno::DatabasePutFailed)?;
                    let value = mem.slice(value, value_len)?.to_vec();
                    Ok((engine, db, key, value))
                })();
                let (engine, db, key, value) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                let function = st.function.clone();
                let done = engine.put(&db, &key, &value).await;
                Errno::to_i32(done.map_err(|error| {
                    refused(&function, &db, "put", &error);
                    Errno::DatabasePutFailed
                }))
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::databaseGetSize,
        move |mut c: Caller<'_, T>,
              (id, key, key_len, size_ptr): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mem, st) = split(&mut c, view);
                let prepared = (|| -> Result<_, Errno> {
                    mem.check_u32(size_ptr)?;
                    let (engine, db) = database(st, id)?;
                    let key = key_arg(&mem, st, key, key_len, Errno::DatabaseGetFailed)?;
                    Ok((engine, db, key))
                })();
                let (engine, db, key) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                let function = st.function.clone();
                let value = engine.get(&db, &key).await;
                let (mut mem, st) = split(&mut c, view);
                Errno::to_i32(fetched(&function, &db, value).and_then(|value| {
                    mem.write_u32(size_ptr, value.len() as u32)?;
                    if let Some(open) = st.stores.databases.get_mut(id) {
                        open.measured = Some((key, value));
                    }
                    Ok(())
                }))
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::databaseGet,
        move |mut c: Caller<'_, T>,
              (id, key, key_len, buf): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mut mem, st) = split(&mut c, view);
                let prepared = (|| -> Result<_, Errno> {
                    let (engine, db) = database(st, id)?;
                    let key = key_arg(&mem, st, key, key_len, Errno::DatabaseGetFailed)?;
                    Ok((engine, db, key))
                })();
                let (engine, db, key) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                // The value the size call measured, so the write fits the guest's buffer.
                let measured =
                    st.stores
                        .databases
                        .get_mut(id)
                        .and_then(|open| match open.measured.take() {
                            Some((k, value)) if k == key => Some(value),
                            _ => None,
                        });
                if let Some(value) = measured {
                    return Errno::to_i32(mem.write(buf, &value));
                }
                let function = st.function.clone();
                let value = engine.get(&db, &key).await;
                let (mut mem, _) = split(&mut c, view);
                Errno::to_i32(fetched(&function, &db, value).and_then(|v| mem.write(buf, &v)))
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::databaseDelete,
        move |mut c: Caller<'_, T>, (id, key, key_len): (i32, i32, i32)| -> HostFuture<'_> {
            Box::new(async move {
                let (mem, st) = split(&mut c, view);
                let prepared = (|| -> Result<_, Errno> {
                    let (engine, db) = database(st, id)?;
                    let key = key_arg(&mem, st, key, key_len, Errno::DatabaseDeleteFailed)?;
                    Ok((engine, db, key))
                })();
                let (engine, db, key) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                let function = st.function.clone();
                // Deleting a key that is not there is done, not an error.
                let done = engine.delete(&db, &key).await.map(drop);
                Errno::to_i32(done.map_err(|error| {
                    refused(&function, &db, "delete", &error);
                    Errno::DatabaseDeleteFailed
                }))
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::databaseListSize,
        move |mut c: Caller<'_, T>,
              (id, prefix, prefix_len, size_ptr): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mem, st) = split(&mut c, view);
                let prepared = (|| -> Result<_, Errno> {
                    mem.check_u32(size_ptr)?;
                    let (engine, db) = database(st, id)?;
                    let prefix = mem.slice(prefix, prefix_len)?.to_vec();
                    Ok((engine, db, prefix))
                })();
                let (engine, db, prefix) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                let function = st.function.clone();
                let keys = engine.keys(&db, &prefix).await;
                let (mut mem, st) = split(&mut c, view);
                Errno::to_i32(listed(&function, &db, keys).and_then(|list| {
                    mem.write_u32(size_ptr, list.len() as u32)?;
                    if let Some(open) = st.stores.databases.get_mut(id) {
                        open.listed = Some((prefix, list));
                    }
                    Ok(())
                }))
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::databaseList,
        move |mut c: Caller<'_, T>,
              (id, prefix, prefix_len, buf): (i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mut mem, st) = split(&mut c, view);
                let prepared = (|| -> Result<_, Errno> {
                    let (engine, db) = database(st, id)?;
                    let prefix = mem.slice(prefix, prefix_len)?.to_vec();
                    Ok((engine, db, prefix))
                })();
                let (engine, db, prefix) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                let measured =
                    st.stores
                        .databases
                        .get_mut(id)
                        .and_then(|open| match open.listed.take() {
                            Some((p, list)) if p == prefix => Some(list),
                            _ => None,
                        });
                if let Some(list) = measured {
                    return Errno::to_i32(mem.write(buf, &list));
                }
                let function = st.function.clone();
                let keys = engine.keys(&db, &prefix).await;
                let (mut mem, _) = split(&mut c, view);
                Errno::to_i32(listed(&function, &db, keys).and_then(|l| mem.write(buf, &l)))
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::databaseClose,
        move |mut c: Caller<'_, T>, id: i32| -> i32 {
            let (_, st) = split(&mut c, view);
            match st.stores.databases.remove(id) {
                Some(_) => 0,
                None => Errno::DatabaseNotFound.code() as i32,
            }
        },
    )?;
    Ok(())
}

/// `newDatabase`: the resource serving the name, a new handle for it.
fn open(
    mem: &mut GuestMemory<'_>,
    st: &mut AbiState,
    name_ptr: i32,
    name_len: i32,
    id_ptr: i32,
) -> Result<(), Errno> {
    mem.check_u32(id_ptr)?;
    let Some(name) = mem.utf8(name_ptr, name_len)? else {
        tracing::warn!(function = %st.function, "database name is not valid UTF-8");
        return Err(Errno::DatabaseCreateFailed);
    };
    let Some(state) = st.env.state.as_ref() else {
        tracing::warn!(function = %st.function, "no state engine: databases are off");
        return Err(Errno::DatabaseCreateFailed);
    };
    let Some(space) = state.database(&name) else {
        tracing::warn!(function = %st.function, database = %name.escape_debug(),
            "no databases/*.yaml resource matches this name: add one whose `match` does");
        return Err(Errno::DatabaseCreateFailed);
    };
    let engine = state.engine.clone();
    let open = OpenDatabase {
        engine,
        space: Arc::new(space),
        measured: None,
        listed: None,
    };
    let Some(id) = st.stores.databases.insert(open) else {
        tracing::warn!(function = %st.function, limit = MAX_OPEN_DATABASES,
            "newDatabase refused: too many handles in one invocation (close them, or open once)");
        return Err(Errno::DatabaseCreateFailed);
    };
    mem.write_u32(id_ptr, id)
}

/// What a database call works on, or errno 25 for an unknown handle.
fn database(st: &AbiState, id: i32) -> Result<(Arc<dyn StateEngine>, Arc<Space>), Errno> {
    let open = st.stores.databases.get(id).ok_or(Errno::DatabaseNotFound)?;
    Ok((open.engine.clone(), open.space.clone()))
}

/// A key from the guest: at most [`MAX_KEY`] bytes and not empty (`refused` otherwise).
fn key_arg(
    mem: &GuestMemory<'_>,
    st: &AbiState,
    ptr: i32,
    len: i32,
    refused: Errno,
) -> Result<Vec<u8>, Errno> {
    let key = mem.slice(ptr, len)?;
    if key.is_empty() || key.len() > MAX_KEY {
        tracing::warn!(function = %st.function, size = key.len(), limit = MAX_KEY,
            "database key refused: empty or too long");
        return Err(refused);
    }
    Ok(key.to_vec())
}

fn fetched(
    function: &str,
    db: &Space,
    value: Result<Option<Vec<u8>>, StateError>,
) -> Result<Vec<u8>, Errno> {
    match value {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Errno::DatabaseKeyNotFound),
        Err(error) => {
            refused(function, db, "get", &error);
            Err(Errno::DatabaseGetFailed)
        }
    }
}

fn listed(
    function: &str,
    db: &Space,
    keys: Result<Vec<Vec<u8>>, StateError>,
) -> Result<Vec<u8>, Errno> {
    let keys = keys.map_err(|error| {
        refused(function, db, "list", &error);
        Errno::DatabaseListFailed
    })?;
    // Keys are bytes; the list is of strings, as Taubyte's SDKs read it.
    let keys: Vec<String> = keys
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    Ok(nul_list(keys.iter().map(String::as_str)))
}

fn refused(function: &str, db: &Space, what: &str, error: &StateError) {
    tracing::warn!(%function, database = %db.name.escape_debug(), %error,
        "database {what} failed");
}
