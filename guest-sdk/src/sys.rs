//! The raw host calls: the guest side of the Taubyte ABI, and the only place with raw pointers.
//!
//! Every import is declared from the one list in `wisp-abi` (Taubyte's ABI): module `taubyte/sdk`,
//! all parameters i32 at the wasm level (`u32`, `usize` and pointers are all i32 on wasm32),
//! out-values written as little-endian u32 at a guest pointer, and an errno result (0 = ok) on
//! every call but `getEventType`. Module `env` adds `_ready`, `_log` and `_sleep`; module `wisp`
//! holds Wisp's own calls, which Taubyte's host lacks.
//!
//! The rest of the SDK never touches these: it calls the safe wrappers at the bottom of this file,
//! which take slices and `&mut` out-values and return the errno.
//!
//! # Off wasm32
//!
//! The SDK only does something inside a Wisp (or Taubyte) host. So that crates using it still
//! build, test and document on the developer's machine, every import has a fallback with the same
//! signature on other targets: it writes nothing and returns errno 1 (`EventNotFound`).
#![allow(non_snake_case)]
#![allow(unsafe_code)]

/// The errno every fallback returns: no event exists outside a host.
#[cfg(not(target_arch = "wasm32"))]
const EVENT_NOT_FOUND: u32 = wisp_abi::Errno::EventNotFound.code();

/// Declares every import of the contract (`wisp_abi::with_imports!`): the real `extern` blocks on
/// wasm32, and same-signature fallbacks (no memory touched, errno 1) everywhere else. The list
/// lives in `wisp-abi`, which the host's linker is checked against, so the SDK, its fallbacks and
/// the host can never drift apart.
macro_rules! host_calls {
    ($(
        $module:literal {
            $( $(#[doc = $doc:literal])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?; )*
        }
    )*) => {$(
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = $module)]
        extern "C" {
            $( $(#[doc = $doc])* pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
        }

        $(
            $(#[doc = $doc])*
            ///
            /// # Safety
            ///
            /// Off wasm32 this is a fallback that touches no memory and returns errno 1.
            #[cfg(not(target_arch = "wasm32"))]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                $( let _ = $arg; )*
                $( EVENT_NOT_FOUND as $ret )?
            }
        )*
    )*

        /// Takes the address of every raw import, so that a module calling this imports them
        /// all: the host's tests load such a module to check that it links every import the
        /// SDK declares. Calls nothing.
        pub fn every_import() -> usize {
            let all: &[usize] = &[$($( $name as *const () as usize, )*)*];
            all.iter().fold(0, |acc, f| acc ^ core::hint::black_box(*f))
        }
    };
}

wisp_abi::with_imports!(host_calls);

/// Safe wrappers: slices in, errno out. The host only reads or writes inside the slices it is
/// given, which is what makes each `unsafe` block below sound.
pub(crate) mod safe {
    use super::*;

    /// Which of the four plain HTTP request strings to read.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum HttpField {
        Method,
        Host,
        Path,
        UserAgent,
    }

    pub(crate) fn event_type(id: u32) -> u32 {
        let mut kind = 0;
        // SAFETY: `kind` is a live u32 the host writes once.
        unsafe { getEventType(id, &mut kind) };
        kind
    }

    pub(crate) fn http_field_size(id: u32, field: HttpField, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize (a u32 on wasm32).
        unsafe {
            match field {
                HttpField::Method => getHttpEventMethodSize(id, size),
                HttpField::Host => getHttpEventHostSize(id, size),
                HttpField::Path => getHttpEventPathSize(id, size),
                HttpField::UserAgent => getHttpEventUserAgentSize(id, size),
            }
        }
    }

    pub(crate) fn http_field(id: u32, field: HttpField, buf: &mut [u8]) -> u32 {
        let (ptr, len) = (buf.as_mut_ptr(), buf.len());
        // SAFETY: the host writes at most `len` bytes at `ptr`.
        unsafe {
            match field {
                HttpField::Method => getHttpEventMethod(id, ptr, len),
                HttpField::Host => getHttpEventHost(id, ptr, len),
                HttpField::Path => getHttpEventPath(id, ptr, len),
                HttpField::UserAgent => getHttpEventUserAgent(id, ptr, len),
            }
        }
    }

    pub(crate) fn query_value_size(id: u32, key: &str, size: &mut usize) -> u32 {
        // SAFETY: `key` is read-only input; `size` is a live usize.
        unsafe { getHttpEventQueryValueByNameSize(id, size, key.as_ptr(), key.len()) }
    }

    pub(crate) fn query_value(id: u32, key: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        unsafe {
            getHttpEventQueryValueByName(id, key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len())
        }
    }

    pub(crate) fn query_keys_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { getHttpEventRequestQueryKeysSize(id, size) }
    }

    /// `buf` must be exactly the size `query_keys_size` reported: this call has no length.
    pub(crate) fn query_keys(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { getHttpEventRequestQueryKeys(id, buf.as_mut_ptr()) }
    }

    pub(crate) fn header_size(id: u32, key: &str, size: &mut usize) -> u32 {
        // SAFETY: `key` is read-only input; `size` is a live usize.
        unsafe { getHttpEventHeadersSize(id, size, key.as_ptr(), key.len()) }
    }

    pub(crate) fn header(id: u32, key: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        unsafe { getHttpEventHeaders(id, key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len()) }
    }

    pub(crate) fn header_keys_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { getHttpEventRequestHeaderKeysSize(id, size) }
    }

    pub(crate) fn header_keys(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        unsafe { getHttpEventRequestHeaderKeys(id, buf.as_mut_ptr(), buf.len()) }
    }

    pub(crate) fn read_body(id: u32, buf: &mut [u8], count: &mut usize) -> u32 {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`, and `count` once.
        unsafe { readHttpEventBody(id, buf.as_mut_ptr(), buf.len(), count) }
    }

    pub(crate) fn close_body(id: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { closeHttpEventBody(id) }
    }

    pub(crate) fn write(id: u32, data: &[u8], written: &mut usize) -> u32 {
        // SAFETY: `data` is read-only input; `written` is a live usize.
        unsafe { eventHttpWrite(id, data.as_ptr(), data.len(), written) }
    }

    pub(crate) fn flush(id: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { eventHttpFlush(id) }
    }

    pub(crate) fn return_code(id: u32, code: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { eventHttpRetCode(id, code) }
    }

    pub(crate) fn add_header(id: u32, key: &str, value: &str) -> u32 {
        // SAFETY: both strings are read-only input.
        unsafe { eventHttpHeaderAdd(id, key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
    }

    pub(crate) fn redirect(id: u32, url: &str, code: u32) -> u32 {
        // SAFETY: `url` is read-only input.
        unsafe { eventHttpRedirect(id, url.as_ptr(), url.len(), code) }
    }

    pub(crate) fn subscribe(channel: &str) -> u32 {
        // SAFETY: `channel` is read-only input.
        unsafe { setSubscriptionChannel(channel.as_ptr(), channel.len()) }
    }

    pub(crate) fn publish(channel: &str, data: &[u8]) -> u32 {
        // SAFETY: both are read-only input.
        unsafe { publishToChannel(channel.as_ptr(), channel.len(), data.as_ptr(), data.len()) }
    }

    pub(crate) fn web_socket_url_size(channel: &str, size: &mut usize) -> u32 {
        // SAFETY: `channel` is read-only input; `size` is a live usize.
        unsafe { getWebSocketURLSize(channel.as_ptr(), channel.len(), size) }
    }

    /// `buf` must be exactly the size `web_socket_url_size` reported: this call has no length.
    pub(crate) fn web_socket_url(channel: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { getWebSocketURL(channel.as_ptr(), channel.len(), buf.as_mut_ptr()) }
    }

    pub(crate) fn message_data_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { getMessageDataSize(id, size) }
    }

    /// `buf` must be exactly the size `message_data_size` reported: this call has no length.
    pub(crate) fn message_data(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { getMessageData(id, buf.as_mut_ptr()) }
    }

    pub(crate) fn message_channel_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { getMessageChannelSize(id, size) }
    }

    /// `buf` must be exactly the size `message_channel_size` reported: this call has no length.
    pub(crate) fn message_channel(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { getMessageChannel(id, buf.as_mut_ptr()) }
    }

    pub(crate) fn storage_new(name: &str, id: &mut u32) -> u32 {
        // SAFETY: `name` is read-only input; `id` is a live u32.
        unsafe { storageNew(name.as_ptr(), name.len(), id) }
    }

    pub(crate) fn storage_get(name: &str, id: &mut u32) -> u32 {
        // SAFETY: `name` is read-only input; `id` is a live u32.
        unsafe { storageGet(name.as_ptr(), name.len(), id) }
    }

    pub(crate) fn storage_add_file(
        id: u32,
        name: &str,
        data: &[u8],
        overwrite: bool,
        version: &mut u32,
    ) -> u32 {
        let (ptr, len) = (data.as_ptr(), data.len());
        // SAFETY: `name` and `data` are read-only input; `version` is a live u32.
        unsafe {
            storageAddFile(
                id,
                name.as_ptr(),
                name.len(),
                version,
                ptr,
                len,
                overwrite as u32,
            )
        }
    }

    pub(crate) fn storage_get_file(id: u32, name: &str, version: u32, fd: &mut u32) -> u32 {
        // SAFETY: `name` is read-only input; `fd` is a live u32.
        unsafe { storageGetFile(id, name.as_ptr(), name.len(), version, fd) }
    }

    pub(crate) fn storage_read_file(id: u32, fd: u32, buf: &mut [u8], count: &mut u32) -> u32 {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`, and `count` once.
        unsafe { storageReadFile(id, fd, buf.as_mut_ptr(), buf.len(), count) }
    }

    pub(crate) fn storage_close_file(id: u32, fd: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { storageCloseFile(id, fd) }
    }

    pub(crate) fn storage_delete_file(id: u32, name: &str, version: u32, all: bool) -> u32 {
        // SAFETY: `name` is read-only input.
        unsafe { storageDeleteFile(id, name.as_ptr(), name.len(), version, all as u32) }
    }

    pub(crate) fn storage_versions_size(id: u32, name: &str, size: &mut usize) -> u32 {
        // SAFETY: `name` is read-only input; `size` is a live usize.
        unsafe { storageListVersionsSize(id, name.as_ptr(), name.len(), size) }
    }

    /// `buf` must be exactly the size `storage_versions_size` reported: this call has no length.
    pub(crate) fn storage_versions(id: u32, name: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { storageListVersions(id, name.as_ptr(), name.len(), buf.as_mut_ptr()) }
    }

    /// `buf` must hold a CID: 64 bytes, as Taubyte's SDKs pass (this call has no length).
    pub(crate) fn storage_cid(id: u32, name: &str, buf: &mut [u8; 64]) -> u32 {
        // SAFETY: the host writes one CID, at most 64 bytes, into `buf`.
        unsafe { storageCid(id, name.as_ptr(), name.len(), buf.as_mut_ptr()) }
    }

    pub(crate) fn storage_current_version_size(id: u32, name: &str, size: &mut usize) -> u32 {
        // SAFETY: `name` is read-only input; `size` is a live usize.
        unsafe { storageCurrentVersionSize(id, name.as_ptr(), name.len(), size) }
    }

    /// `buf` must be exactly the size `storage_current_version_size` reported.
    pub(crate) fn storage_current_version(name: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { storageCurrentVersion(name.as_ptr(), name.len(), buf.as_mut_ptr()) }
    }

    pub(crate) fn storage_files_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { storageListFilesSize(id, size) }
    }

    /// `buf` must be exactly the size `storage_files_size` reported: this call has no length.
    pub(crate) fn storage_files(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { storageListFiles(id, buf.as_mut_ptr()) }
    }

    pub(crate) fn storage_used_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { storageUsedSize(id, size) }
    }

    /// `buf` must be exactly the size `storage_used_size` reported: this call has no length.
    pub(crate) fn storage_used(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { storageUsed(id, buf.as_mut_ptr()) }
    }

    pub(crate) fn storage_capacity_size(id: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { storageCapacitySize(id, size) }
    }

    /// `buf` must be exactly the size `storage_capacity_size` reported: this call has no length.
    pub(crate) fn storage_capacity(id: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: the host writes the size it reported, which is `buf.len()`.
        unsafe { storageCapacity(id, buf.as_mut_ptr()) }
    }

    pub(crate) fn log(message: &str) {
        // SAFETY: `message` is read-only input.
        unsafe { _log(message.as_ptr(), message.len()) }
    }

    pub(crate) fn sleep(ns: i64) {
        // SAFETY: no memory is passed.
        unsafe { _sleep(ns) }
    }

    pub(crate) fn new_database(name: &str, id: &mut u32) -> u32 {
        // SAFETY: `name` is read-only input; `id` is a live u32.
        unsafe { newDatabase(name.as_ptr(), name.len(), id) }
    }

    pub(crate) fn database_put(id: u32, key: &str, value: &[u8]) -> u32 {
        // SAFETY: both are read-only input.
        unsafe { databasePut(id, key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
    }

    pub(crate) fn database_get_size(id: u32, key: &str, size: &mut usize) -> u32 {
        // SAFETY: `key` is read-only input; `size` is a live usize.
        unsafe { databaseGetSize(id, key.as_ptr(), key.len(), size) }
    }

    /// `buf` must be exactly the size `database_get_size` reported: this call has no length.
    pub(crate) fn database_get(id: u32, key: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: Wisp writes the value it measured, which is `buf.len()` bytes.
        unsafe { databaseGet(id, key.as_ptr(), key.len(), buf.as_mut_ptr()) }
    }

    pub(crate) fn database_delete(id: u32, key: &str) -> u32 {
        // SAFETY: `key` is read-only input.
        unsafe { databaseDelete(id, key.as_ptr(), key.len()) }
    }

    pub(crate) fn database_list_size(id: u32, prefix: &str, size: &mut usize) -> u32 {
        // SAFETY: `prefix` is read-only input; `size` is a live usize.
        unsafe { databaseListSize(id, prefix.as_ptr(), prefix.len(), size) }
    }

    /// `buf` must be exactly the size `database_list_size` reported: this call has no length.
    pub(crate) fn database_list(id: u32, prefix: &str, buf: &mut [u8]) -> u32 {
        // SAFETY: Wisp writes the list it measured, which is `buf.len()` bytes.
        unsafe { databaseList(id, prefix.as_ptr(), prefix.len(), buf.as_mut_ptr()) }
    }

    pub(crate) fn database_close(id: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { databaseClose(id) }
    }

    /// `getGlobalValueSize`, or with `create` `getOrCreateGlobalValueSize`.
    pub(crate) fn global_size(
        name: &str,
        scope: (u32, u32),
        create: bool,
        size: &mut usize,
    ) -> u32 {
        let (app, func) = scope;
        // SAFETY: `name` is read-only input; `size` is a live usize.
        unsafe {
            match create {
                false => getGlobalValueSize(name.as_ptr(), name.len(), app, func, size),
                true => getOrCreateGlobalValueSize(name.as_ptr(), name.len(), app, func, size),
            }
        }
    }

    /// `buf` must be exactly the size `global_size` reported: this call has no length.
    pub(crate) fn global(name: &str, scope: (u32, u32), buf: &mut [u8]) -> u32 {
        let (app, func) = scope;
        // SAFETY: Wisp writes the value it measured, which is `buf.len()` bytes.
        unsafe { getGlobalValue(name.as_ptr(), name.len(), app, func, buf.as_mut_ptr()) }
    }

    pub(crate) fn put_global(name: &str, scope: (u32, u32), value: &[u8]) -> u32 {
        let (app, func) = scope;
        // SAFETY: both are read-only input.
        unsafe {
            putGlobalValue(
                name.as_ptr(),
                name.len(),
                app,
                func,
                value.as_ptr(),
                value.len(),
                value.len(),
            )
        }
    }

    /// Outbound HTTP: a client handle, then requests on it.
    pub(crate) fn new_http_client(id: &mut u32) -> u32 {
        // SAFETY: `id` is a live u32.
        unsafe { newHttpClient(id) }
    }

    pub(crate) fn new_http_request(client: u32, id: &mut u32) -> u32 {
        // SAFETY: `id` is a live u32.
        unsafe { newHttpRequest(client, id) }
    }

    pub(crate) fn set_http_request_url(client: u32, request: u32, url: &str) -> u32 {
        // SAFETY: `url` is read-only input.
        unsafe { setHttpRequestURL(client, request, url.as_ptr(), url.len()) }
    }

    pub(crate) fn set_http_request_method(client: u32, request: u32, code: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { setHttpRequestMethod(client, request, code) }
    }

    pub(crate) fn set_http_request_body(client: u32, request: u32, body: &[u8]) -> u32 {
        // SAFETY: `body` is read-only input; the host copies it.
        unsafe { setHttpRequestBody(client, request, body.as_ptr(), body.len()) }
    }

    pub(crate) fn add_http_request_header(
        client: u32,
        request: u32,
        key: &str,
        value: &str,
    ) -> u32 {
        // SAFETY: both are read-only input.
        unsafe {
            addHttpRequestHeader(
                client,
                request,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
            )
        }
    }

    pub(crate) fn do_http_request(client: u32, request: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { doHttpRequest(client, request) }
    }

    pub(crate) fn read_http_response(
        client: u32,
        request: u32,
        buf: &mut [u8],
        count: &mut u32,
    ) -> u32 {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`; `count` is a live u32.
        unsafe { readHttpResponseBody(client, request, buf.as_mut_ptr(), buf.len(), count) }
    }

    pub(crate) fn close_http_response(client: u32, request: u32) -> u32 {
        // SAFETY: no memory is passed.
        unsafe { closeHttpResponseBody(client, request) }
    }

    pub(crate) fn http_response_header_size(
        client: u32,
        request: u32,
        key: &str,
        size: &mut usize,
    ) -> u32 {
        // SAFETY: `key` is read-only input; `size` is a live usize.
        unsafe { getHttpResponseHeaderSize(client, request, key.as_ptr(), key.len(), size) }
    }

    /// `buf` must be exactly the size `http_response_header_size` reported: this call has no
    /// length.
    pub(crate) fn http_response_header(
        client: u32,
        request: u32,
        key: &str,
        buf: &mut [u8],
    ) -> u32 {
        // SAFETY: a response's headers do not change, so the host writes `buf.len()` bytes.
        unsafe { getHttpResponseHeader(client, request, key.as_ptr(), key.len(), buf.as_mut_ptr()) }
    }

    pub(crate) fn http_response_keys_size(client: u32, request: u32, size: &mut usize) -> u32 {
        // SAFETY: `size` is a live usize.
        unsafe { getHttpResponseHeaderKeysSize(client, request, size) }
    }

    pub(crate) fn http_response_keys(client: u32, request: u32, buf: &mut [u8]) -> u32 {
        // SAFETY: Wisp writes at most `buf.len()` bytes.
        unsafe { getHttpResponseHeaderKeys(client, request, buf.as_mut_ptr(), buf.len()) }
    }

    /// A Wisp call (module `wisp`): the response status.
    pub(crate) fn http_response_status(client: u32, request: u32, status: &mut u32) -> u32 {
        // SAFETY: `status` is a live u32.
        unsafe { httpResponseStatus(client, request, status) }
    }

    /// A Wisp call (module `wisp`): a channel's kept messages.
    pub(crate) fn channel_history_size(
        channel: &str,
        last: u32,
        since: u64,
        size: &mut usize,
    ) -> u32 {
        // SAFETY: `channel` is read-only input; `size` is a live usize.
        unsafe { channelHistorySize(channel.as_ptr(), channel.len(), last, since, size) }
    }

    /// `buf` must be exactly the size `channel_history_size` reported: this call has no length.
    pub(crate) fn channel_history(buf: &mut [u8]) -> u32 {
        // SAFETY: Wisp writes the history it measured, which is `buf.len()` bytes.
        unsafe { channelHistory(buf.as_mut_ptr()) }
    }

    /// A Wisp call (module `wisp`): a WebSocket URL whose token names a user and rights.
    pub(crate) fn web_socket_url_for_size(
        channel: &str,
        user: &str,
        ttl_secs: u64,
        can_publish: bool,
        size: &mut usize,
    ) -> u32 {
        // SAFETY: `channel` and `user` are read-only input; `size` is a live usize.
        unsafe {
            webSocketUrlForSize(
                channel.as_ptr(),
                channel.len(),
                user.as_ptr(),
                user.len(),
                ttl_secs,
                u32::from(can_publish),
                size,
            )
        }
    }

    /// `buf` must be exactly the size `web_socket_url_for_size` reported: this call has no length.
    pub(crate) fn web_socket_url_for(buf: &mut [u8]) -> u32 {
        // SAFETY: Wisp writes the URL it made, which is `buf.len()` bytes.
        unsafe { webSocketUrlFor(buf.as_mut_ptr()) }
    }

    /// A Wisp call (module `wisp`): a publish never kept in the channel's history.
    pub(crate) fn publish_ephemeral(channel: &str, data: &[u8]) -> u32 {
        // SAFETY: both are read-only input.
        unsafe { publishEphemeral(channel.as_ptr(), channel.len(), data.as_ptr(), data.len()) }
    }

    /// A Wisp call (module `wisp`): who is on a channel.
    pub(crate) fn channel_presence_size(channel: &str, size: &mut usize) -> u32 {
        // SAFETY: `channel` is read-only input; `size` is a live usize.
        unsafe { channelPresenceSize(channel.as_ptr(), channel.len(), size) }
    }

    /// `buf` must be exactly the size `channel_presence_size` reported: this call has no length.
    pub(crate) fn channel_presence(buf: &mut [u8]) -> u32 {
        // SAFETY: Wisp writes the members it listed, which is `buf.len()` bytes.
        unsafe { channelPresence(buf.as_mut_ptr()) }
    }
}
