//! Globals: small named values a project's functions share, as Taubyte's go-sdk keeps them
//! (`globals/u32`, `f64`, `str`, ...: the SDK encodes, the host stores bytes).
//!
//! A name is scoped by two flags: `app` (1 = the calling function's application) and
//! `func` (1 = the calling function itself). Taubyte joins them into a path prefix that a
//! name with `..` escapes, so any function can read any other's; Wisp keeps the scope
//! apart from the name, so a scope holds only what its own functions wrote. All of a
//! project's globals share one bound (`--globals-size`, keys and values together); a put
//! past it is errno 24. Taubyte's errno slips are not copied: a failed put is 24 (not 29),
//! and get-or-create writes the size 0 of what it made.

use super::memory::GuestMemory;
use super::state::AbiState;
use super::{split, Errno, HostFuture, View, SDK_MODULE};
use crate::state::{Engine, Space, StateError};
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

/// The longest global name.
pub const MAX_NAME: usize = 1024;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap_async(
        SDK_MODULE,
        name::getGlobalValueSize,
        move |mut c: Caller<'_, T>,
              (name, name_len, app, func, size_ptr): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                measure(&mut c, view, (name, name_len, app, func), size_ptr, false).await
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::getOrCreateGlobalValueSize,
        move |mut c: Caller<'_, T>,
              (name, name_len, app, func, size_ptr): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                measure(&mut c, view, (name, name_len, app, func), size_ptr, true).await
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::getGlobalValue,
        move |mut c: Caller<'_, T>,
              (name, name_len, app, func, buf): (i32, i32, i32, i32, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mut mem, st) = split(&mut c, view);
                let (engine, space, key) = match global(&mem, st, (name, name_len, app, func)) {
                    Ok(found) => found,
                    Err(errno) => return errno.code() as i32,
                };
                // The value the size call measured, so the write fits the guest's buffer.
                match st.stores.global_measured.take() {
                    Some((k, value)) if k == key => return Errno::to_i32(mem.write(buf, &value)),
                    _ => {}
                }
                let function = st.function.clone();
                let value = engine.get(&space, &key).await;
                let (mut mem, _) = split(&mut c, view);
                Errno::to_i32(match value {
                    Ok(Some(value)) => mem.write(buf, &value),
                    Ok(None) => Err(Errno::DatabaseGetFailed),
                    Err(error) => {
                        failed(&function, "get", &error);
                        Err(Errno::DatabaseGetFailed)
                    }
                })
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::putGlobalValue,
        move |mut c: Caller<'_, T>,
              (name, name_len, app, func, value, value_len, _cap): (
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
                let (mem, st) = split(&mut c, view);
                let prepared = global(&mem, st, (name, name_len, app, func))
                    .and_then(|found| Ok((found, mem.slice(value, value_len)?.to_vec())));
                let ((engine, space, key), value) = match prepared {
                    Ok(prepared) => prepared,
                    Err(errno) => return errno.code() as i32,
                };
                st.stores.global_measured = None;
                let function = st.function.clone();
                let done = engine.put(&space, &key, &value).await;
                Errno::to_i32(done.map_err(|error| {
                    failed(&function, "put", &error);
                    Errno::DatabasePutFailed
                }))
            })
        },
    )?;
    Ok(())
}

/// `getGlobalValueSize` (a missing name is 29) and `getOrCreateGlobalValueSize` (a missing
/// name is made, empty).
async fn measure<T>(
    c: &mut Caller<'_, T>,
    view: impl View<T>,
    name: (i32, i32, i32, i32),
    size_ptr: i32,
    create: bool,
) -> i32 {
    let (mem, st) = split(c, view);
    let found = mem
        .check_u32(size_ptr)
        .and_then(|()| global(&mem, st, name));
    let (engine, space, key) = match found {
        Ok(found) => found,
        Err(errno) => return errno.code() as i32,
    };
    let function = st.function.clone();
    let value = match engine.get(&space, &key).await {
        Ok(Some(value)) => value,
        Ok(None) if create => match engine.put(&space, &key, &[]).await {
            Ok(()) => Vec::new(),
            Err(error) => {
                failed(&function, "create", &error);
                return Errno::DatabasePutFailed.code() as i32;
            }
        },
        Ok(None) => return Errno::DatabaseKeyNotFound.code() as i32,
        Err(error) => {
            failed(&function, "get", &error);
            return Errno::DatabaseGetFailed.code() as i32;
        }
    };
    let (mut mem, st) = split(c, view);
    let written = mem.write_u32(size_ptr, value.len() as u32);
    st.stores.global_measured = Some((key, value));
    Errno::to_i32(written)
}

/// The engine, the project's globals and the scoped key of the name at `name`.
fn global(
    mem: &GuestMemory<'_>,
    st: &AbiState,
    (ptr, len, app, func): (i32, i32, i32, i32),
) -> Result<(Engine, Space, Vec<u8>), Errno> {
    let name = mem.slice(ptr, len)?;
    if name.len() > MAX_NAME {
        tracing::warn!(function = %st.function, size = name.len(), limit = MAX_NAME,
            "global name refused: too long");
        return Err(Errno::DatabaseCreateFailed);
    }
    let Some(state) = st.env.state.as_ref() else {
        tracing::warn!(function = %st.function, "no state engine: globals are off");
        return Err(Errno::DatabaseCreateFailed);
    };
    // Flags are 1 for yes; anything else is no, as on Taubyte.
    let key = scoped_key(
        (app == 1).then_some(&*state.application),
        (func == 1).then_some(&*state.function),
        name,
    );
    Ok((state.engine.clone(), state.globals(), key))
}

/// `<scope><application>\0<function>\0<name>`: the scope byte says which of the two are
/// set (so a project-level function's application scope is not the unscoped one), and
/// neither part can contain a NUL, so no name reaches into another scope.
fn scoped_key(application: Option<&str>, function: Option<&str>, name: &[u8]) -> Vec<u8> {
    let scope = b'0' + u8::from(application.is_some()) * 2 + u8::from(function.is_some());
    let mut key = vec![scope];
    key.extend_from_slice(application.unwrap_or_default().as_bytes());
    key.push(0);
    key.extend_from_slice(function.unwrap_or_default().as_bytes());
    key.push(0);
    key.extend_from_slice(name);
    key
}

fn failed(function: &str, what: &str, error: &StateError) {
    tracing::warn!(%function, %error, "global {what} failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_never_share_keys() {
        let keys = [
            scoped_key(None, None, b"x"),
            scoped_key(Some(""), None, b"x"),
            scoped_key(None, Some("/f"), b"x"),
            scoped_key(Some(""), Some("/f"), b"x"),
            scoped_key(Some("app"), None, b"x"),
            scoped_key(None, Some("app/f"), b"x"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // A name cannot climb out of its scope.
        assert_ne!(
            scoped_key(None, None, b"../app/x"),
            scoped_key(Some("app"), None, b"x")
        );
    }
}
