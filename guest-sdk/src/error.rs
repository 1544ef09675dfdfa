//! Errors: the host's errno codes and the SDK's one error type.

use std::fmt;

/// The result of every fallible SDK call.
pub type Result<T> = std::result::Result<T, Error>;

/// An errno returned by a host call, with Taubyte's numbers and names (defined once, in
/// `wisp-abi`, for the host and the SDK alike).
///
/// Codes Taubyte's list has no name for are kept as [`Errno::Unknown`], so nothing the host
/// says is lost.
///
/// ```
/// use wisp_sdk::Errno;
///
/// assert_eq!(Errno::from(8), Errno::Eof);
/// assert_eq!(Errno::HeaderNotFound.code(), 16);
/// assert_eq!(Errno::from(999), Errno::Unknown(999));
/// ```
pub use wisp_abi::Errno;

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
        for code in 0..=125 {
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

        let unknown = Error::call(Errno::from(777), "publishing to channel `x`");
        assert_eq!(
            unknown.to_string(),
            "publishing to channel `x`: unknown error (errno 777)"
        );

        for code in 0..=130 {
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
