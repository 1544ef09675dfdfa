//! Every host call a guest may import: module, name and signature, listed once.
//!
//! [`with_imports!`] hands the list to a macro of the caller's: the guest SDK turns it into
//! its `extern` blocks, and this module turns it into [`IMPORTS`] (what the host's linker is
//! checked against) and the [`name`] constants the host registers its calls under.
//!
//! Types are the guest's view on wasm32: pointers, `u32` and `usize` are all an i32 at the
//! wasm level, `i64` an i64 (see [`WasmType`]). Results of unknown length take two calls,
//! `xxxSize(..., size_ptr)` then `xxx(..., buf[, buf_size])`; string lists are each followed
//! by a NUL byte, and their size counts the NULs. Every call returns an errno (0 = ok) but
//! `getEventType` and the `env` calls.

/// Calls `$callback! { "module" { fn name(arg: Type, ...) -> Ret; ... } ... }` with every
/// import, each with its doc comments.
#[macro_export]
macro_rules! with_imports {
    ($callback:ident) => {
        $callback! {
            "taubyte/sdk" {
                /// Writes the event type (0 undefined, 1 http, 2 pubsub, 3 p2p) at `type_ptr`.
                fn getEventType(id: u32, type_ptr: *mut u32);

                fn getHttpEventMethodSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpEventMethod(id: u32, buf: *mut u8, buf_size: usize) -> u32;
                fn getHttpEventHostSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpEventHost(id: u32, buf: *mut u8, buf_size: usize) -> u32;
                fn getHttpEventPathSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpEventPath(id: u32, buf: *mut u8, buf_size: usize) -> u32;
                fn getHttpEventUserAgentSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpEventUserAgent(id: u32, buf: *mut u8, buf_size: usize) -> u32;

                fn getHttpEventQueryValueByNameSize(
                    id: u32, size_ptr: *mut usize, key: *const u8, key_len: usize,
                ) -> u32;
                fn getHttpEventQueryValueByName(
                    id: u32, key: *const u8, key_len: usize, buf: *mut u8, buf_size: usize,
                ) -> u32;
                /// Query names, each followed by a NUL byte; the size counts the NULs.
                fn getHttpEventRequestQueryKeysSize(id: u32, size_ptr: *mut usize) -> u32;
                /// Writes the size `getHttpEventRequestQueryKeysSize` gave: there is no length.
                fn getHttpEventRequestQueryKeys(id: u32, buf: *mut u8) -> u32;

                fn getHttpEventHeadersSize(
                    id: u32, size_ptr: *mut usize, key: *const u8, key_len: usize,
                ) -> u32;
                fn getHttpEventHeaders(
                    id: u32, key: *const u8, key_len: usize, buf: *mut u8, buf_size: usize,
                ) -> u32;
                /// Request header names, each followed by a NUL byte; the size counts the NULs.
                fn getHttpEventRequestHeaderKeysSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpEventRequestHeaderKeys(id: u32, buf: *mut u8, buf_size: usize) -> u32;
                /// The same list under the name Taubyte's Go SDK imports (Taubyte's own host
                /// exports only the pair above, so Go guests fail to link there).
                fn getHttpEventHeaderVarNameByIdSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpEventHeaderVarNameById(id: u32, buf: *mut u8, buf_size: usize) -> u32;

                /// Reads up to `buf_size` body bytes; returns 8 (EOF) together with the last bytes.
                fn readHttpEventBody(
                    id: u32, buf: *mut u8, buf_size: usize, count_ptr: *mut usize,
                ) -> u32;
                fn closeHttpEventBody(id: u32) -> u32;

                /// Appends to the response body.
                fn eventHttpWrite(id: u32, buf: *const u8, len: usize, written_ptr: *mut usize) -> u32;
                /// Sends the status, headers and body so far; later writes stream.
                fn eventHttpFlush(id: u32) -> u32;
                /// Sets the response status (200..=999: a 1xx is no final answer; anything else is errno 5).
                fn eventHttpRetCode(id: u32, code: u32) -> u32;
                /// Adds a response header value.
                fn eventHttpHeaderAdd(
                    id: u32, key: *const u8, key_len: usize, value: *const u8, value_len: usize,
                ) -> u32;
                fn eventHttpRedirect(id: u32, url: *const u8, url_len: usize, code: u32) -> u32;

                fn setSubscriptionChannel(channel: *const u8, channel_len: usize) -> u32;
                fn publishToChannel(
                    channel: *const u8, channel_len: usize, data: *const u8, data_len: usize,
                ) -> u32;
                fn getWebSocketURLSize(
                    channel: *const u8, channel_len: usize, size_ptr: *mut usize,
                ) -> u32;
                /// Writes the size `getWebSocketURLSize` gave: there is no length.
                fn getWebSocketURL(channel: *const u8, channel_len: usize, buf: *mut u8) -> u32;

                fn getMessageDataSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getMessageData(id: u32, buf: *mut u8) -> u32;
                fn getMessageChannelSize(id: u32, size_ptr: *mut usize) -> u32;
                fn getMessageChannel(id: u32, buf: *mut u8) -> u32;

                /// Opens the database a `databases/*.yaml` resource serves under `name`
                /// (its `match`); a new handle each call, from 1.
                fn newDatabase(name: *const u8, name_len: usize, id_ptr: *mut u32) -> u32;
                /// Fails whole (errno 24) if the database would hold more than its size.
                fn databasePut(
                    id: u32, key: *const u8, key_len: usize, value: *const u8, value_len: usize,
                ) -> u32;
                /// A missing key is errno 29 (Taubyte's host gives 23).
                fn databaseGetSize(
                    id: u32, key: *const u8, key_len: usize, size_ptr: *mut usize,
                ) -> u32;
                /// Writes the value `databaseGetSize` measured: there is no length.
                fn databaseGet(id: u32, key: *const u8, key_len: usize, buf: *mut u8) -> u32;
                fn databaseDelete(id: u32, key: *const u8, key_len: usize) -> u32;
                /// The keys starting with the prefix, each followed by a NUL byte.
                fn databaseListSize(
                    id: u32, prefix: *const u8, prefix_len: usize, size_ptr: *mut usize,
                ) -> u32;
                /// Writes the list `databaseListSize` measured: there is no length.
                fn databaseList(id: u32, prefix: *const u8, prefix_len: usize, buf: *mut u8) -> u32;
                /// Closes the handle (the database itself stays open for others).
                fn databaseClose(id: u32) -> u32;

                /// Globals: `app` and `func` are flags (1 = scope the name by the calling
                /// function's application, function). A missing name is errno 29.
                fn getGlobalValueSize(
                    name: *const u8, name_len: usize, app: u32, func: u32, size_ptr: *mut usize,
                ) -> u32;
                /// Writes the value `getGlobalValueSize` measured: there is no length.
                fn getGlobalValue(
                    name: *const u8, name_len: usize, app: u32, func: u32, buf: *mut u8,
                ) -> u32;
                /// Like `getGlobalValueSize`, but a missing name is made, empty (size 0).
                fn getOrCreateGlobalValueSize(
                    name: *const u8, name_len: usize, app: u32, func: u32, size_ptr: *mut usize,
                ) -> u32;
                /// `value_cap` is TinyGo's slice capacity, ignored.
                fn putGlobalValue(
                    name: *const u8, name_len: usize, app: u32, func: u32,
                    value: *const u8, value_len: usize, value_cap: usize,
                ) -> u32;

                /// Opens the storage a `storages/*.yaml` resource serves under `name` (its
                /// `match`); a new handle each call, from 1. No resource: errno 22.
                fn storageNew(name: *const u8, name_len: usize, id_ptr: *mut u32) -> u32;
                /// Opens a storage as `storageNew` does (Wisp has no node cache to look in);
                /// no resource: errno 92.
                fn storageGet(name: *const u8, name_len: usize, id_ptr: *mut u32) -> u32;
                /// Stores `data` as file `name`; writes the version it got. `overwrite` is a
                /// flag (1 = replace the latest version). Without versioning a second add
                /// that does not overwrite, or any add past the storage's size, is errno 31.
                fn storageAddFile(
                    id: u32, name: *const u8, name_len: usize, version_ptr: *mut u32,
                    data: *const u8, data_len: usize, overwrite: u32,
                ) -> u32;
                /// Opens version `version` of file `name` for reading (0 = the latest);
                /// writes a file descriptor, from 1. A missing file is errno 90.
                fn storageGetFile(
                    id: u32, name: *const u8, name_len: usize, version: u32, fd_ptr: *mut u32,
                ) -> u32;
                /// Reads up to `buf_size` bytes of an open file; errno 8 (EOF) only on a read
                /// that yields no bytes.
                fn storageReadFile(
                    id: u32, fd: u32, buf: *mut u8, buf_size: usize, count_ptr: *mut u32,
                ) -> u32;
                fn storageCloseFile(id: u32, fd: u32) -> u32;
                /// Deletes version `version` of file `name` (0 = the latest), or every
                /// version if `all` is 1.
                fn storageDeleteFile(
                    id: u32, name: *const u8, name_len: usize, version: u32, all: u32,
                ) -> u32;
                /// The versions of file `name`, in decimal, each followed by a NUL byte.
                fn storageListVersionsSize(
                    id: u32, name: *const u8, name_len: usize, size_ptr: *mut usize,
                ) -> u32;
                /// Writes the list `storageListVersionsSize` measured: there is no length.
                fn storageListVersions(id: u32, name: *const u8, name_len: usize, buf: *mut u8) -> u32;
                /// Writes the 36-byte binary CIDv1 (raw, sha2-256) of the latest version of
                /// file `name`; SDKs pass a 64-byte buffer.
                fn storageCid(id: u32, name: *const u8, name_len: usize, cid_ptr: *mut u8) -> u32;
                /// The latest version of file `name`, in decimal.
                fn storageCurrentVersionSize(
                    id: u32, name: *const u8, name_len: usize, size_ptr: *mut usize,
                ) -> u32;
                /// Writes the version the previous `storageCurrentVersionSize` for this name
                /// measured (Taubyte's call has no storage id and no length).
                fn storageCurrentVersion(name: *const u8, name_len: usize, buf: *mut u8) -> u32;
                /// Every stored version as `/file/<name>/<version>`, each followed by a NUL.
                fn storageListFilesSize(id: u32, size_ptr: *mut usize) -> u32;
                /// Writes the list `storageListFilesSize` measured: there is no length.
                fn storageListFiles(id: u32, buf: *mut u8) -> u32;
                /// Bytes the storage holds (each file costs its name and its content), in decimal.
                fn storageUsedSize(id: u32, size_ptr: *mut usize) -> u32;
                /// Writes the value `storageUsedSize` measured: there is no length.
                fn storageUsed(id: u32, buf: *mut u8) -> u32;
                /// The storage's size (`object.size`), in decimal.
                fn storageCapacitySize(id: u32, size_ptr: *mut usize) -> u32;
                /// Writes the value `storageCapacitySize` gave: there is no length.
                fn storageCapacity(id: u32, buf: *mut u8) -> u32;

                /// Outbound HTTP. A client is a handle on the host's shared connection
                /// pool; requests are numbered from 1 across clients. An unknown client or
                /// request of that client is errno 10.
                fn newHttpClient(client_id_ptr: *mut u32) -> u32;
                /// An empty GET request with no URL; past the per-invocation cap, errno 15.
                fn newHttpRequest(client_id: u32, request_id_ptr: *mut u32) -> u32;
                /// An absolute `http` or `https` URL; else errno 11.
                fn setHttpRequestURL(client_id: u32, request_id: u32, url: *const u8, url_len: usize) -> u32;
                /// Method codes: 1 GET, 2 POST, 3 PUT, 4 DELETE, 5 HEAD, 6 OPTIONS, 7 PATCH,
                /// 8 TRACE, 9 CONNECT; any other is errno 14 and leaves the method as it was.
                fn setHttpRequestMethod(client_id: u32, request_id: u32, method: u32) -> u32;
                fn getHttpRequestMethod(client_id: u32, request_id: u32, method_ptr: *mut u32) -> u32;
                /// Copies the body now (Taubyte reads guest memory at send time).
                fn setHttpRequestBody(client_id: u32, request_id: u32, body: *const u8, body_len: usize) -> u32;
                /// `values` is a NUL list: the first replaces the header, the rest are added.
                fn setHttpRequestHeader(
                    client_id: u32, request_id: u32, key: *const u8, key_len: usize,
                    values: *const u8, values_len: usize,
                ) -> u32;
                /// Adds one value, as both Taubyte SDKs pass it (a trailing NUL is dropped).
                fn addHttpRequestHeader(
                    client_id: u32, request_id: u32, key: *const u8, key_len: usize,
                    value: *const u8, value_len: usize,
                ) -> u32;
                fn deleteHttpRequestHeader(client_id: u32, request_id: u32, key: *const u8, key_len: usize) -> u32;
                /// The header's values, each followed by a NUL byte (0 if absent).
                fn getHttpRequestHeaderSize(
                    client_id: u32, request_id: u32, key: *const u8, key_len: usize, size_ptr: *mut usize,
                ) -> u32;
                /// Writes what `getHttpRequestHeaderSize` gave: there is no length.
                fn getHttpRequestHeader(
                    client_id: u32, request_id: u32, key: *const u8, key_len: usize, buf: *mut u8,
                ) -> u32;
                /// Header names (canonical case), each followed by a NUL byte.
                fn getHttpRequestHeaderKeysSize(client_id: u32, request_id: u32, size_ptr: *mut usize) -> u32;
                /// A list longer than `buf_size` is errno 3 (Taubyte ignores the length).
                fn getHttpRequestHeaderKeys(client_id: u32, request_id: u32, buf: *mut u8, buf_size: usize) -> u32;
                /// Sends the request, following up to 10 redirects, within the function's
                /// deadline. Any failure (a denied address, a timeout, too many redirects)
                /// is errno 13; a 4xx or 5xx answer is no error.
                fn doHttpRequest(client_id: u32, request_id: u32) -> u32;
                /// Reads up to `buf_size` bytes of the response body; errno 8 (EOF) comes
                /// with the last bytes, errno 6 past the response size limit or before a send.
                fn readHttpResponseBody(
                    client_id: u32, request_id: u32, buf: *mut u8, buf_size: usize, count_ptr: *mut u32,
                ) -> u32;
                /// Drops the rest of the body; a second close is no error.
                fn closeHttpResponseBody(client_id: u32, request_id: u32) -> u32;
                /// Before a send, the response calls are errno 9.
                fn getHttpResponseHeaderSize(
                    client_id: u32, request_id: u32, key: *const u8, key_len: usize, size_ptr: *mut usize,
                ) -> u32;
                fn getHttpResponseHeader(
                    client_id: u32, request_id: u32, key: *const u8, key_len: usize, buf: *mut u8,
                ) -> u32;
                fn getHttpResponseHeaderKeysSize(client_id: u32, request_id: u32, size_ptr: *mut usize) -> u32;
                fn getHttpResponseHeaderKeys(client_id: u32, request_id: u32, buf: *mut u8, buf_size: usize) -> u32;
            }
            "wisp" {
                /// Wisp's own calls, which Taubyte's host lacks. Writes the status code of
                /// the response a `doHttpRequest` received; before a send, errno 9.
                fn httpResponseStatus(client_id: u32, request_id: u32, status_ptr: *mut u32) -> u32;
                /// The messages channel `channel` keeps (`wisp.history`): with `since` 0, the
                /// newest `last`; else every one after offset `since` (at most 10,000). The
                /// encoding is `wisp-sdk`'s `pubsub::History`. A channel no resource serves,
                /// or one that keeps no history, is errno 40; a state engine failure, 23.
                fn channelHistorySize(
                    channel: *const u8, channel_len: usize, last: u32, since: u64, size_ptr: *mut usize,
                ) -> u32;
                /// Writes what `channelHistorySize` measured: there is no length.
                fn channelHistory(buf: *mut u8) -> u32;
                /// A WebSocket path for `channel` whose token (on a private channel,
                /// `wisp.private`) names `user` (UTF-8, at most 256 bytes), lasts `ttl_secs`
                /// (1 s to 30 days) and lets its holder publish if `can_publish` is 1; on a
                /// channel that is not private, the plain path. Refused: errno 38.
                fn webSocketUrlForSize(
                    channel: *const u8, channel_len: usize, user: *const u8, user_len: usize,
                    ttl_secs: u64, can_publish: u32, size_ptr: *mut usize,
                ) -> u32;
                /// Writes what `webSocketUrlForSize` made: there is no length.
                fn webSocketUrlFor(buf: *mut u8) -> u32;
                /// Publishes as `publishToChannel` does, but the message is never kept in the
                /// channel's history (`wisp.history`): an ephemeral message. Refused: errno 21.
                fn publishEphemeral(
                    channel: *const u8, channel_len: usize, data: *const u8, data_len: usize,
                ) -> u32;
                /// Who is on `channel` (`wisp.presence`), on every node, the first 1,000 by name: `u32 count`,
                /// then per member `u32 connections, u32 length, user`, little-endian. A channel
                /// no resource serves, or one without presence, is errno 40.
                fn channelPresenceSize(channel: *const u8, channel_len: usize, size_ptr: *mut usize) -> u32;
                /// Writes what `channelPresenceSize` measured: there is no length.
                fn channelPresence(buf: *mut u8) -> u32;
            }
            "env" {
                /// TinyGo guests signal readiness; there is nothing for the host to do.
                fn _ready();
                /// Logs `len` bytes of text at `ptr` through the host's logger.
                fn _log(ptr: *const u8, len: usize);
                /// Blocks the function for `ns` nanoseconds (never past its deadline).
                fn _sleep(ns: i64);
            }
        }
    };
}

/// A wasm value type, as the host's linker sees a parameter or result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValType {
    I32,
    I64,
}

/// The wasm type a guest-side Rust type lowers to on wasm32.
pub trait WasmType {
    const TYPE: ValType;
}

macro_rules! wasm_types {
    ($($ty:ty => $val:ident),* $(,)?) => {
        $(impl WasmType for $ty {
            const TYPE: ValType = ValType::$val;
        })*
    };
}

wasm_types!(u32 => I32, i32 => I32, usize => I32, i64 => I64, u64 => I64);

impl<T> WasmType for *const T {
    const TYPE: ValType = ValType::I32;
}

impl<T> WasmType for *mut T {
    const TYPE: ValType = ValType::I32;
}

/// One import: where it lives and its wasm signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Import {
    pub module: &'static str,
    pub name: &'static str,
    pub params: &'static [ValType],
    pub results: &'static [ValType],
}

macro_rules! table {
    ($(
        $module:literal {
            $( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*
        }
    )*) => {
        /// Every import of [`with_imports!`], in its order.
        pub const IMPORTS: &[Import] = &[$($(
            Import {
                module: $module,
                name: stringify!($name),
                params: &[$(<$ty as WasmType>::TYPE),*],
                results: &[$(<$ret as WasmType>::TYPE)?],
            },
        )*)*];

        /// Each import's name, to register a host call under without spelling it again.
        #[allow(non_upper_case_globals)]
        pub mod name {
            $($(
                $(#[doc = $doc])*
                pub const $name: &str = stringify!($name);
            )*)*
        }
    };
}

with_imports!(table);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_the_three_the_host_defines() {
        for import in IMPORTS {
            assert!(
                [crate::SDK_MODULE, crate::ENV_MODULE, crate::WISP_MODULE].contains(&import.module),
                "{import:?}"
            );
        }
    }

    #[test]
    fn names_are_unique_and_sized_pairs_match() {
        for (i, a) in IMPORTS.iter().enumerate() {
            for b in &IMPORTS[i + 1..] {
                assert!(a.name != b.name || a.module != b.module, "{} twice", a.name);
            }
        }
        assert_eq!(name::getEventType, "getEventType");
        let sleep = IMPORTS.iter().find(|i| i.name == name::_sleep).unwrap();
        assert_eq!(sleep.params, &[ValType::I64]);
        assert!(sleep.results.is_empty());
    }
}
