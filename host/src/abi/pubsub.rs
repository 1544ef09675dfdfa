//! Pub/sub calls: subscribe, publish, WebSocket URLs, and reading a message event.
//!
//! Every channel is checked by messaging (through [`Channels`](super::Channels)) against the
//! project's messaging resources; a refused channel gets Taubyte's errno (20, 21 or 38) and
//! a log line. Channel names may contain `/` (Taubyte's own host fails on them). A guest
//! (or the client it took a name from) chooses them, so log lines show them escaped: a
//! name with a newline or a terminal escape cannot forge a line or recolour a terminal.

use super::memory::GuestMemory;
use super::{call, split, AbiState, Errno, HostFuture, View, SDK_MODULE};
use crate::state::{LogRead, Range};
use bytes::Bytes;
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;
use wisp_abi::WISP_MODULE;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    linker.func_wrap(
        SDK_MODULE,
        name::setSubscriptionChannel,
        move |mut c: Caller<'_, T>, chan: i32, chan_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let channel =
                    channel_name(mem, chan, chan_len, &st.function, Errno::SubscribeFailed)?;
                let env = &st.env;
                env.channels
                    .subscribe(env.function, &channel)
                    .map_err(|error| {
                        tracing::warn!(function = %st.function, channel = %channel.escape_debug(),
                            error = %error.to_string().escape_debug(), "subscribe refused");
                        Errno::SubscribeFailed
                    })
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::publishToChannel,
        move |mut c: Caller<'_, T>, chan: i32, chan_len: i32, data: i32, data_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                publish(mem, st, (chan, chan_len), (data, data_len), false)
            })
        },
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::publishEphemeral,
        move |mut c: Caller<'_, T>, chan: i32, chan_len: i32, data: i32, data_len: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                publish(mem, st, (chan, chan_len), (data, data_len), true)
            })
        },
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::channelPresenceSize,
        move |mut c: Caller<'_, T>, chan: i32, chan_len: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                mem.check_u32(size_ptr)?;
                let channel =
                    channel_name(mem, chan, chan_len, &st.function, Errno::ChannelNotFound)?;
                let env = &st.env;
                let members = env
                    .channels
                    .presence(env.scope, &channel)
                    .map_err(|error| {
                        tracing::warn!(function = %st.function, channel = %channel.escape_debug(),
                        error = %error.to_string().escape_debug(), "channel presence refused");
                        Errno::ChannelNotFound
                    })?;
                let encoded = encode_presence(&members);
                mem.write_u32(size_ptr, encoded.len() as u32)?;
                st.stores.presence_measured = Some(encoded);
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::channelPresence,
        move |mut c: Caller<'_, T>, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let measured = st.stores.presence_measured.take();
                write_measured(mem, measured, buf, Errno::ChannelNotFound)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::getWebSocketURLSize,
        move |mut c: Caller<'_, T>, chan: i32, chan_len: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let path = websocket_path(mem, st, chan, chan_len)?;
                mem.write_u32(size_ptr, path.len() as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::getWebSocketURL,
        move |mut c: Caller<'_, T>, chan: i32, chan_len: i32, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let path = websocket_path(mem, st, chan, chan_len)?;
                mem.write(buf, path.as_bytes())
            })
        },
    )?;

    linker.func_wrap(
        SDK_MODULE,
        name::getMessageDataSize,
        move |mut c: Caller<'_, T>, id: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let len = st.pubsub(id)?.data.len();
                mem.write_u32(size_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::getMessageData,
        move |mut c: Caller<'_, T>, id: i32, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| mem.write(buf, &st.pubsub(id)?.data))
        },
    )?;
    linker.func_wrap_async(
        WISP_MODULE,
        name::channelHistorySize,
        move |mut c: Caller<'_, T>,
              (chan, chan_len, last, since, size_ptr): (i32, i32, i32, i64, i32)|
              -> HostFuture<'_> {
            Box::new(async move {
                let (mem, st) = split(&mut c, view);
                let asked = (|| -> Result<_, Errno> {
                    mem.check_u32(size_ptr)?;
                    let channel =
                        channel_name(&mem, chan, chan_len, &st.function, Errno::ChannelNotFound)?;
                    Ok(channel)
                })();
                let channel = match asked {
                    Ok(channel) => channel,
                    Err(errno) => return errno.code() as i32,
                };
                let range = match since as u64 {
                    0 => Range::Last(last as u32 as usize),
                    offset => Range::After(offset),
                };
                let (channels, scope) = (st.env.channels.clone(), st.env.scope);
                let function = st.function.clone();
                let read = channels.history(scope, &channel, range).await;
                let (mut mem, st) = split(&mut c, view);
                let measured = read
                    .map_err(|error| {
                        tracing::warn!(%function, channel = %channel.escape_debug(),
                            error = %error.to_string().escape_debug(), "channel history refused");
                        match error.downcast_ref::<crate::state::StateError>() {
                            Some(_) => Errno::DatabaseGetFailed,
                            None => Errno::ChannelNotFound,
                        }
                    })
                    .and_then(|read| {
                        let encoded = encode_history(&read);
                        mem.write_u32(size_ptr, encoded.len() as u32)?;
                        st.stores.history_measured = Some(encoded);
                        Ok(())
                    });
                Errno::to_i32(measured)
            })
        },
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::webSocketUrlForSize,
        move |mut c: Caller<'_, T>,
              chan: i32,
              chan_len: i32,
              user: i32,
              user_len: i32,
              ttl_secs: i64,
              can_publish: i32,
              size_ptr: i32|
              -> i32 {
            call(&mut c, view, |mem, st| {
                mem.check_u32(size_ptr)?;
                let refused = Errno::GetWebSocketUrlFailed;
                let channel = channel_name(mem, chan, chan_len, &st.function, refused)?;
                let user = std::str::from_utf8(mem.slice(user, user_len)?)
                    .map_err(|_| refused)?
                    .to_owned();
                let ttl = std::time::Duration::from_secs(ttl_secs as u64);
                let env = &st.env;
                let url = env
                    .channels
                    .websocket_url_for(env.scope, &channel, &user, ttl, can_publish == 1)
                    .map_err(|error| {
                        tracing::warn!(function = %st.function, channel = %channel.escape_debug(),
                            error = %error.to_string().escape_debug(), "WebSocket URL refused");
                        refused
                    })?;
                mem.write_u32(size_ptr, url.len() as u32)?;
                st.stores.url_measured = Some(url.into_bytes());
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::webSocketUrlFor,
        move |mut c: Caller<'_, T>, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let measured = st.stores.url_measured.take();
                write_measured(mem, measured, buf, Errno::GetWebSocketUrlFailed)
            })
        },
    )?;
    linker.func_wrap(
        WISP_MODULE,
        name::channelHistory,
        move |mut c: Caller<'_, T>, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let measured = st.stores.history_measured.take();
                write_measured(mem, measured, buf, Errno::ChannelNotFound)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::getMessageChannelSize,
        move |mut c: Caller<'_, T>, id: i32, size_ptr: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                let len = st.pubsub(id)?.channel.len();
                mem.write_u32(size_ptr, len as u32)
            })
        },
    )?;
    linker.func_wrap(
        SDK_MODULE,
        name::getMessageChannel,
        move |mut c: Caller<'_, T>, id: i32, buf: i32| -> i32 {
            call(&mut c, view, |mem, st| {
                mem.write(buf, st.pubsub(id)?.channel.as_bytes())
            })
        },
    )?;
    Ok(())
}

/// A guest's publish of `data` on the channel named at `chan` (`ephemeral`: never kept).
fn publish(
    mem: &mut GuestMemory<'_>,
    st: &mut AbiState,
    (chan, chan_len): (i32, i32),
    (data, data_len): (i32, i32),
    ephemeral: bool,
) -> Result<(), Errno> {
    let channel = channel_name(mem, chan, chan_len, &st.function, Errno::PublishFailed)?;
    let env = &st.env;
    // Refuse an oversized message before copying it out of the guest.
    let limit = env.channels.max_message();
    if data_len as u32 as usize > limit {
        tracing::warn!(function = %st.function, channel = %channel.escape_debug(),
            size = data_len as u32, limit, "publish refused: message over the limit");
        return Err(Errno::PublishFailed);
    }
    let payload = Bytes::copy_from_slice(mem.slice(data, data_len)?);
    let published = match ephemeral {
        true => env
            .channels
            .publish_ephemeral(env.function, env.scope, &channel, payload),
        false => env
            .channels
            .publish(env.function, env.scope, &channel, payload),
    };
    published.map_err(|error| {
        tracing::warn!(function = %st.function, channel = %channel.escape_debug(),
            error = %error.to_string().escape_debug(), "publish refused");
        Errno::PublishFailed
    })
}

/// Members as `channelPresence` writes them, little-endian: `u32 count`, then per member
/// `u32 connections, u32 length, user`.
fn encode_presence(members: &[(String, u32)]) -> Vec<u8> {
    let size: usize = members.iter().map(|(user, _)| 8 + user.len()).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for (user, connections) in members {
        out.extend_from_slice(&connections.to_le_bytes());
        out.extend_from_slice(&(user.len() as u32).to_le_bytes());
        out.extend_from_slice(user.as_bytes());
    }
    out
}

/// Writes what a size call measured to `buf`, once; `missing` if nothing was measured.
fn write_measured(
    mem: &mut GuestMemory<'_>,
    measured: Option<Vec<u8>>,
    buf: i32,
    missing: Errno,
) -> Result<(), Errno> {
    mem.write(buf, &measured.ok_or(missing)?)
}

/// A read of a channel's history as `channelHistory` writes it, little-endian:
/// `u32 epoch length, epoch, u32 count`, then per message `u64 offset, u64 time in ms,
/// u8 text flag, u32 length, data`.
fn encode_history(read: &LogRead) -> Vec<u8> {
    let size: usize = read.entries.iter().map(|e| 21 + e.data.len()).sum();
    let mut out = Vec::with_capacity(8 + read.epoch.len() + size);
    out.extend_from_slice(&(read.epoch.len() as u32).to_le_bytes());
    out.extend_from_slice(read.epoch.as_bytes());
    out.extend_from_slice(&(read.entries.len() as u32).to_le_bytes());
    for entry in &read.entries {
        out.extend_from_slice(&entry.offset.to_le_bytes());
        out.extend_from_slice(&entry.time_ms.to_le_bytes());
        out.push(u8::from(entry.text));
        out.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&entry.data);
    }
    out
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
    st: &AbiState,
    ptr: i32,
    len: i32,
) -> Result<String, Errno> {
    let channel = channel_name(mem, ptr, len, &st.function, Errno::GetWebSocketUrlFailed)?;
    st.env
        .channels
        .websocket_path(st.env.scope, &channel)
        .map_err(|error| {
            tracing::warn!(function = %st.function, channel = %channel.escape_debug(),
                error = %error.to_string().escape_debug(), "WebSocket URL refused");
            Errno::GetWebSocketUrlFailed
        })
}
