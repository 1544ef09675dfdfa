//! HTTP event calls: reading the request and building the response.
//!
//! Values of unknown length use Taubyte's two calls, `xxxSize` then `xxx`. A missing
//! query parameter or header reads as an empty value with errno 0, as in Taubyte.

use super::http_event::HttpEvent;
use super::memory::{hand_over, nul_list};
use super::{call, split, Errno, View, SDK_MODULE};
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    add_request_calls(linker, view)?;
    add_body_calls(linker, view)?;
    add_response_calls(linker, view)?;
    Ok(())
}

/// A request value read whole: method, host, path, user agent.
type Getter = fn(&HttpEvent) -> &[u8];

/// Defines `sized(id, sizePtr)` and `name(id, buf, bufSize)` for `get`.
fn add_value<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
    [sized, name]: [&str; 2],
    get: Getter,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        sized,
        move |mut c: Caller<'_, T>, id: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let len = get(st.http(id)?).len();
                mem.write_u32(size_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name,
        move |mut c: Caller<'_, T>, id: i32, buf: i32, cap: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                mem.write_sized(buf, cap, get(st.http(id)?))
            })
        },
    )?;
    Ok(())
}

/// A request value looked up by name: a query parameter or a header.
type KeyedGetter = for<'a> fn(&'a HttpEvent, &str) -> &'a [u8];

/// Defines `sized(id, sizePtr, keyPtr, keyLen)` and
/// `name(id, keyPtr, keyLen, buf, bufSize)` for `get`.
fn add_keyed_value<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
    [sized, name]: [&str; 2],
    get: KeyedGetter,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        sized,
        move |mut c: Caller<'_, T>, id: i32, size_ptr: i32, key: i32, key_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let key = mem.string(key, key_len)?;
                let len = get(st.http(id)?, &key).len();
                mem.write_u32(size_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name,
        move |mut c: Caller<'_, T>, id: i32, key: i32, key_len: i32, buf: i32, cap: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let key = mem.string(key, key_len)?;
                mem.write_sized(buf, cap, get(st.http(id)?, &key))
            })
        },
    )?;
    Ok(())
}

fn add_request_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    use name::*;
    let method = [getHttpEventMethodSize, getHttpEventMethod];
    add_value(linker, view, method, |h| h.method().as_bytes())?;
    let host = [getHttpEventHostSize, getHttpEventHost];
    add_value(linker, view, host, HttpEvent::host)?;
    let path = [getHttpEventPathSize, getHttpEventPath];
    add_value(linker, view, path, |h| h.path().as_bytes())?;
    let agent = [getHttpEventUserAgentSize, getHttpEventUserAgent];
    add_value(linker, view, agent, HttpEvent::user_agent)?;

    let query = [
        getHttpEventQueryValueByNameSize,
        getHttpEventQueryValueByName,
    ];
    add_keyed_value(linker, view, query, |h, k| h.query_value(k).as_bytes())?;
    let header = [getHttpEventHeadersSize, getHttpEventHeaders];
    add_keyed_value(linker, view, header, HttpEvent::header_value)?;
    // Query names: the second call takes no buffer size, so only memory bounds apply.
    linker.func_wrap(
        SDK_MODULE,
        getHttpEventRequestQueryKeysSize,
        move |mut c: Caller<'_, T>, id: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let list = nul_list(st.http(id)?.query_names());
                mem.write_u32(size_ptr, list.len() as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        getHttpEventRequestQueryKeys,
        move |mut c: Caller<'_, T>, id: i32, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let list = nul_list(st.http(id)?.query_names());
                mem.write(buf, &list)
            })
        },
    )?;

    // Header names under both names: Taubyte's host exports the first pair, its Go
    // SDK imports the second (and so fails to link there).
    for [sized, name] in [
        [
            getHttpEventRequestHeaderKeysSize,
            getHttpEventRequestHeaderKeys,
        ],
        [
            getHttpEventHeaderVarNameByIdSize,
            getHttpEventHeaderVarNameById,
        ],
    ] {
        linker.func_wrap(
            SDK_MODULE,
            sized,
            move |mut c: Caller<'_, T>, id: i32, size_ptr: i32| -> i32 {
                call(&mut c, view, |mem, st| {
                    let names = st.http(id)?.header_names();
                    let list = nul_list(names.iter().map(String::as_str));
                    mem.write_u32(size_ptr, list.len() as u32)
                })
            },
        )?;
        linker.func_wrap(
            SDK_MODULE,
            name,
            move |mut c: Caller<'_, T>, id: i32, buf: i32, cap: i32| -> i32 {
                call(&mut c, view, |mem, st| {
                    let names = st.http(id)?.header_names();
                    mem.write_sized(buf, cap, &nul_list(names.iter().map(String::as_str)))
                })
            },
        )?;
    }
    Ok(())
}

fn add_body_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    // readHttpEventBody(id, buf, bufSize, countPtr): errno 8 (EOF) comes with the last bytes.
    linker.func_wrap_async(
        SDK_MODULE,
        name::readHttpEventBody,
        move |mut c: Caller<'_, T>, (id, buf, cap, count_ptr): (i32, i32, i32, i32)| {
            Box::new(async move {
                // Check the pointers before waiting on the network.
                {
                    let (mem, st) = split(&mut c, view);
                    if let Err(errno) = st
                        .http(id)
                        .map(|_| ())
                        .and_then(|()| mem.slice(buf, cap).map(|_| ()))
                        .and_then(|()| mem.check_u32(count_ptr))
                    {
                        return errno.code() as i32;
                    }
                }
                let read = match view(c.data_mut()).http(id) {
                    Ok(http) => http.body.read(cap as u32 as usize).await,
                    Err(errno) => return errno.code() as i32,
                };
                call(&mut c, view, |mem, _| hand_over(mem, buf, count_ptr, read))
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::closeHttpEventBody,
        move |mut c: Caller<'_, T>, id: i32| -> i32 {
            call(&mut c, view, |_, st| {
                st.http(id)?.body.close();
                Ok(())
            })
        },
    )?;
    Ok(())
}

fn add_response_calls<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        name::eventHttpWrite,
        move |mut c: Caller<'_, T>, id: i32, buf: i32, len: i32, written_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                mem.check_u32(written_ptr)?;
                let data = mem.slice(buf, len)?;
                st.http(id)?.response.write(data)?;
                mem.write_u32(written_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap_async(
        SDK_MODULE,
        name::eventHttpFlush,
        move |mut c: Caller<'_, T>, (id,): (i32,)| {
            Box::new(async move {
                match view(c.data_mut()).http(id) {
                    Ok(http) => Errno::to_i32(http.response.flush().await),
                    Err(errno) => errno.code() as i32,
                }
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::eventHttpRetCode,
        move |mut c: Caller<'_, T>, id: i32, code: i32| -> i32 {
            call(&mut c, view, |_, st| {
                st.http(id)?.response.set_status(code as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::eventHttpHeaderAdd,
        move |mut c: Caller<'_, T>,
              id: i32,
              key: i32,
              key_len: i32,
              val: i32,
              val_len: i32|
              -> i32 {
            call(&mut c, view, |mem, st| {
                let (key, value) = (mem.slice(key, key_len)?, mem.slice(val, val_len)?);
                st.http(id)?.response.add_header(key, value)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::eventHttpRedirect,
        move |mut c: Caller<'_, T>, id: i32, url: i32, url_len: i32, code: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let url = mem.slice(url, url_len)?;
                st.http(id)?.response.redirect(url, code as u32)
            })
        },
    )?;
    Ok(())
}
