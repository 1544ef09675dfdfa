//! Taubyte's errno codes, as the guest SDKs number them.
//!
//! Every host call returns one of these as an `i32` (0 = success). The values are
//! the ordinal positions in Taubyte's generated errno list; guests built with
//! Taubyte's own SDKs compare against exactly these numbers.

/// An errno a host call returns to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    Ok = 0,
    EventNotFound = 1,
    BufferTooSmall = 2,
    AddressOutOfMemory = 3,
    NilAddress = 4,
    HttpWrite = 5,
    HttpReadBody = 6,
    CloseBody = 7,
    Eof = 8,
    SubscribeFailed = 20,
    PublishFailed = 21,
    GetWebSocketUrlFailed = 38,
    ChannelNotFound = 40,
    ZeroSize = 50,
}

impl Errno {
    /// The value handed back across the ABI.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Collapses a host call's `Result` into the errno the guest sees.
pub fn to_code(result: Result<(), Errno>) -> i32 {
    match result {
        Ok(()) => Errno::Ok.code(),
        Err(errno) => errno.code(),
    }
}
