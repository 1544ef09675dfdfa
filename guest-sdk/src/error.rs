//! Errors: the host's errno codes and the SDK's one error type.

use std::fmt;

/// The result of every fallible SDK call.
pub type Result<T> = std::result::Result<T, Error>;

/// An errno returned by a host call, with Taubyte's numeric values.
///
/// Codes this SDK has no name for are kept as [`Errno::Unknown`], so nothing the host says is
/// lost.
///
/// ```
/// use wisp_sdk::Errno;
///
/// assert_eq!(Errno::from(8), Errno::Eof);
/// assert_eq!(Errno::HeaderNotFound.code(), 16);
/// assert_eq!(Errno::from(99), Errno::Unknown(99));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    /// 0: the call succeeded.
    Ok,
    /// 1: no such event (also what every call returns outside a host).
    EventNotFound,
    /// 2: the buffer passed was too small.
    BufferTooSmall,
    /// 3: a pointer or length fell outside the guest's memory.
    AddressOutOfMemory,
    /// 4: a pointer was null.
    NilAddress,
    /// 5: writing the HTTP response failed.
    HttpWrite,
    /// 6: reading the HTTP request body failed.
    HttpReadBody,
    /// 7: closing the HTTP request body failed.
    CloseBody,
    /// 8: the end of the body; returned together with the last bytes.
    Eof,
    /// 16: no such header (or query parameter).
    HeaderNotFound,
    /// 20: subscribing to the channel was refused.
    SubscribeFailed,
    /// 21: publishing to the channel was refused.
    PublishFailed,
    /// 38: the channel has no WebSocket URL.
    GetWebSocketUrlFailed,
    /// 40: the event's channel is unknown.
    ChannelNotFound,
    /// 50: a size of zero where data was expected.
    ZeroSize,
    /// Any other code.
    Unknown(u32),
}

impl Errno {
    /// The numeric code, as the host sends it.
    pub fn code(self) -> u32 {
        match self {
            Errno::Ok => 0,
            Errno::EventNotFound => 1,
            Errno::BufferTooSmall => 2,
            Errno::AddressOutOfMemory => 3,
            Errno::NilAddress => 4,
            Errno::HttpWrite => 5,
            Errno::HttpReadBody => 6,
            Errno::CloseBody => 7,
            Errno::Eof => 8,
            Errno::HeaderNotFound => 16,
            Errno::SubscribeFailed => 20,
            Errno::PublishFailed => 21,
            Errno::GetWebSocketUrlFailed => 38,
            Errno::ChannelNotFound => 40,
            Errno::ZeroSize => 50,
            Errno::Unknown(code) => code,
        }
    }
}

impl From<u32> for Errno {
    fn from(code: u32) -> Self {
        match code {
            0 => Errno::Ok,
            1 => Errno::EventNotFound,
            2 => Errno::BufferTooSmall,
            3 => Errno::AddressOutOfMemory,
            4 => Errno::NilAddress,
            5 => Errno::HttpWrite,
            6 => Errno::HttpReadBody,
            7 => Errno::CloseBody,
            8 => Errno::Eof,
            16 => Errno::HeaderNotFound,
            20 => Errno::SubscribeFailed,
            21 => Errno::PublishFailed,
            38 => Errno::GetWebSocketUrlFailed,
            40 => Errno::ChannelNotFound,
            50 => Errno::ZeroSize,
            other => Errno::Unknown(other),
        }
    }
}

impl From<Errno> for u32 {
    fn from(errno: Errno) -> Self {
        errno.code()
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Errno::Ok => "ok",
            Errno::EventNotFound => "event not found",
            Errno::BufferTooSmall => "buffer too small",
            Errno::AddressOutOfMemory => "address out of memory",
            Errno::NilAddress => "nil address",
            Errno::HttpWrite => "http write failed",
            Errno::HttpReadBody => "reading http body failed",
            Errno::CloseBody => "closing http body failed",
            Errno::Eof => "end of file",
            Errno::HeaderNotFound => "header not found",
            Errno::SubscribeFailed => "subscribe failed",
            Errno::PublishFailed => "publish failed",
            Errno::GetWebSocketUrlFailed => "getting websocket url failed",
            Errno::ChannelNotFound => "channel not found",
            Errno::ZeroSize => "zero size",
            Errno::Unknown(_) => "unknown error",
        };
        f.write_str(text)
    }
}

/// An SDK error: a host call that returned an errno, or a check the SDK made itself.
///
/// `Display` names what failed, then the errno if there is one:
///
/// ```
/// let err = wisp_sdk::Error::new("channel name cannot be empty");
/// assert_eq!(err.to_string(), "channel name cannot be empty");
/// assert_eq!(err.errno(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    errno: Option<Errno>,
    message: String,
}

impl Error {
    /// An error with a message and no errno, for your own checks.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            errno: None,
            message: message.into(),
        }
    }

    /// A host call failed with `errno` while the SDK was doing `context`.
    pub(crate) fn call(errno: Errno, context: impl Into<String>) -> Self {
        Error {
            errno: Some(errno),
            message: context.into(),
        }
    }

    /// The errno the host returned, if a host call failed.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(errno) => write!(f, "{}: {errno} (errno {})", self.message, errno.code()),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        std::io::Error::other(err)
    }
}

/// Turns a host call's errno into a `Result`, naming what was being done.
pub(crate) fn check(code: u32, context: impl FnOnce() -> String) -> Result<()> {
    match Errno::from(code) {
        Errno::Ok => Ok(()),
        errno => Err(Error::call(errno, context())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_codes_round_trip() {
        for code in 0..=64 {
            assert_eq!(Errno::from(code).code(), code);
        }
        assert_eq!(Errno::from(u32::MAX), Errno::Unknown(u32::MAX));
        assert_eq!(u32::from(Errno::ChannelNotFound), 40);
    }

    #[test]
    fn named_codes_are_not_unknown() {
        for code in [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 20, 21, 38, 40, 50] {
            assert!(!matches!(Errno::from(code), Errno::Unknown(_)), "{code}");
        }
    }

    #[test]
    fn display_is_lowercase_and_names_the_errno() {
        let err = Error::call(Errno::HeaderNotFound, "reading query value `nope`");
        assert_eq!(
            err.to_string(),
            "reading query value `nope`: header not found (errno 16)"
        );
        assert_eq!(err.errno(), Some(Errno::HeaderNotFound));

        let unknown = Error::call(Errno::from(77), "publishing to channel `x`");
        assert_eq!(
            unknown.to_string(),
            "publishing to channel `x`: unknown error (errno 77)"
        );

        for code in 0..=64 {
            let text = Errno::from(code).to_string();
            assert_eq!(text, text.to_lowercase());
        }
    }

    #[test]
    fn check_maps_ok_and_errors() {
        assert_eq!(check(0, || unreachable!("no context on success")), Ok(()));
        let err = check(21, || "publishing".into()).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::PublishFailed));
    }

    #[test]
    fn converts_to_io_error() {
        let io: std::io::Error = Error::call(Errno::HttpReadBody, "reading request body").into();
        assert_eq!(
            io.to_string(),
            "reading request body: reading http body failed (errno 6)"
        );
    }
}
