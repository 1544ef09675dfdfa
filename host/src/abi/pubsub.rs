//! Pub/sub calls: subscribe, publish, WebSocket URLs, and reading a message event.
//!
//! Every channel is checked against the project's messaging resources; a refused
//! channel gets Taubyte's errno (20, 21 or 38) and a log line. Channel names may
//! contain `/` (Taubyte's own host fails on them).

use super::errno::Errno;
use super::memory::GuestMemory;
use super::{call, SDK_MODULE};
use crate::messaging::broker::{Reach, SinkId};
use crate::runtime::state::HostState;
use bytes::Bytes;
use wasmtime::{Caller, Linker};

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        "setSubscriptionChannel",
        |mut c: Caller<'_, HostState>, chan: i32, chan_len: i32| -> i32 {
            call(&mut c, |mem, st| {
                let channel =
                    channel_name(mem, chan, chan_len, &st.function, Errno::SubscribeFailed)?;
                let env = &st.env;
                env.hub
                    .subscribe_function(env.function, &channel, Reach::Cluster)
                    .map_err(|error| {
                        tracing::warn!(function = %st.function, %error, "subscribe refused");
                        Errno::SubscribeFailed
                    })
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        "publishToChannel",
        |mut c: Caller<'_, HostState>, chan: i32, chan_len: i32, data: i32, data_len: i32| -> i32 {
            call(&mut c, |mem, st| {
                let channel = channel_name(mem, chan, chan_len, &st.function, Errno::PublishFailed)?;
                let env = &st.env;
                // Refuse an oversized message before copying it out of the guest.
                if data_len as u32 as usize > env.hub.max_message {
                    tracing::warn!(function = %st.function, size = data_len as u32, limit = env.hub.max_message,
                        "publish refused: message over the limit");
                    return Err(Errno::PublishFailed);
                }
                let payload = Bytes::copy_from_slice(mem.slice(data, data_len)?);
                let origin = Some(SinkId::Function(env.function));
                env.hub
                    .publish(env.scope, &channel, payload, None, origin)
                    .map_err(|error| {
                        tracing::warn!(function = %st.function, %error, "publish refused");
                        Errno::PublishFailed
                    })
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        "getWebSocketURLSize",
        |mut c: Caller<'_, HostState>, chan: i32, chan_len: i32, size_ptr: i32| -> i32 {
            call(&mut c, |mem, st| {
                let path = websocket_path(mem, st, chan, chan_len)?;
                mem.write_u32(size_ptr, path.len() as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        "getWebSocketURL",
        |mut c: Caller<'_, HostState>, chan: i32, chan_len: i32, buf: i32| -> i32 {
            call(&mut c, |mem, st| {
                let path = websocket_path(mem, st, chan, chan_len)?;
                mem.write(buf, path.as_bytes())
            })
        },
    )?;

    linker.func_wrap(
        SDK_MODULE,
        "getMessageDataSize",
        |mut c: Caller<'_, HostState>, id: i32, size_ptr: i32| -> i32 {
            call(&mut c, |mem, st| {
                let len = st.pubsub(id)?.data.len();
                mem.write_u32(size_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        "getMessageData",
        |mut c: Caller<'_, HostState>, id: i32, buf: i32| -> i32 {
            call(&mut c, |mem, st| mem.write(buf, &st.pubsub(id)?.data))
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        "getMessageChannelSize",
        |mut c: Caller<'_, HostState>, id: i32, size_ptr: i32| -> i32 {
            call(&mut c, |mem, st| {
                let len = st.pubsub(id)?.channel.len();
                mem.write_u32(size_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        "getMessageChannel",
        |mut c: Caller<'_, HostState>, id: i32, buf: i32| -> i32 {
            call(&mut c, |mem, st| {
                mem.write(buf, st.pubsub(id)?.channel.as_bytes())
            })
        },
    )?;
    Ok(())
}

/// A channel name from guest memory. Not UTF-8 is refused with `refused` (the
/// call's own errno): a lossy conversion would silently name another channel.
fn channel_name(
    mem: &GuestMemory<'_>,
    ptr: i32,
    len: i32,
    function: &str,
    refused: Errno,
) -> Result<String, Errno> {
    mem.utf8(ptr, len)?.ok_or_else(|| {
        tracing::warn!(%function, "channel name is not valid UTF-8");
        refused
    })
}

/// The WebSocket path of the channel named at `ptr`, or errno 38.
fn websocket_path(
    mem: &GuestMemory<'_>,
    st: &HostState,
    ptr: i32,
    len: i32,
) -> Result<String, Errno> {
    let channel = channel_name(mem, ptr, len, &st.function, Errno::GetWebSocketUrlFailed)?;
    st.env
        .hub
        .websocket_path(st.env.scope, &channel)
        .map_err(|error| {
            tracing::warn!(function = %st.function, %error, "WebSocket URL refused");
            Errno::GetWebSocketUrlFailed
        })
}
