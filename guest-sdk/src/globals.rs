//! Globals: small typed values shared by a project's functions, as Taubyte's go-sdk
//! `globals` packages keep them (so Go and Rust functions read each other's values).
//!
//! Each value lives in a [`Scope`]: the whole project, the calling function's application,
//! or the calling function alone. The host keeps scopes apart: a name cannot reach another
//! function's or application's values.
//!
//! ```no_run
//! use wisp_sdk::globals::{self, Scope};
//! use wisp_sdk::{Event, Result};
//!
//! #[wisp_sdk::function]
//! fn hits(event: Event) -> Result<()> {
//!     let http = event.http()?;
//!     let hits: u32 = globals::get_or_create("hits", Scope::Function)?;
//!     globals::set("hits", Scope::Function, hits + 1)?;
//!     http.write(format!("{}", hits + 1).as_bytes())?;
//!     Ok(())
//! }
//! ```

use crate::error::{check, Errno, Error, Result};
use crate::fetch;
use crate::sys::safe;

/// Which functions share a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every function of the project.
    Project,
    /// The functions of the caller's application.
    Application,
    /// The calling function alone.
    Function,
}

impl Scope {
    /// The `(app, func)` flags Taubyte's host takes.
    fn flags(self) -> (u32, u32) {
        match self {
            Scope::Project => (0, 0),
            Scope::Application => (1, 0),
            Scope::Function => (0, 1),
        }
    }
}

/// A type a global can hold, encoded as Taubyte's go-sdk encodes it.
pub trait Value: Sized {
    /// The type's part of the name sent to the host (`/uint32/<name>`, ...).
    const TYPE: &'static str;
    fn encode(&self) -> Vec<u8>;
    /// `None` when the bytes are not a value of this type. Empty bytes are the zero value.
    fn decode(bytes: &[u8]) -> Option<Self>;
}

macro_rules! numbers {
    ($($ty:ty => $name:literal, $width:literal;)*) => {$(
        impl Value for $ty {
            const TYPE: &'static str = $name;
            fn encode(&self) -> Vec<u8> {
                let mut bytes = self.to_be_bytes().to_vec();
                bytes.resize($width, 0);
                bytes
            }
            fn decode(bytes: &[u8]) -> Option<Self> {
                if bytes.is_empty() {
                    return Some(Self::default());
                }
                let raw = bytes.get(..std::mem::size_of::<$ty>())?;
                Some(<$ty>::from_be_bytes(raw.try_into().ok()?))
            }
        }
    )*};
}

// go-sdk: u32 in 4 bytes, u64 and f64 in 8; f32's 4 bytes then 4 zero bytes.
numbers! {
    u32 => "uint32", 4;
    u64 => "uint64", 8;
    f32 => "float32", 8;
    f64 => "float64", 8;
}

impl Value for String {
    const TYPE: &'static str = "string";
    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

fn key<T: Value>(name: &str) -> String {
    format!("/{}/{name}", T::TYPE)
}

fn read<T: Value>(name: &str, scope: Scope, create: bool) -> Result<Option<T>> {
    let key = key::<T>(name);
    let flags = scope.flags();
    let bytes = match fetch::two_call(
        |size| safe::global_size(&key, flags, create, size),
        |buf| safe::global(&key, flags, buf),
    ) {
        Ok(bytes) => bytes,
        Err(Errno::DatabaseKeyNotFound) if !create => return Ok(None),
        Err(errno) => return Err(Error::call(errno, format!("reading global `{key}`"))),
    };
    T::decode(&bytes)
        .map(Some)
        .ok_or_else(|| Error::new(format!("global `{key}` does not hold a {}", T::TYPE)))
}

/// The value of global `name`, or `None` if it was never set.
pub fn get<T: Value>(name: &str, scope: Scope) -> Result<Option<T>> {
    read(name, scope, false)
}

/// The value of global `name`; if it was never set, it is made with the zero value.
pub fn get_or_create<T: Value>(name: &str, scope: Scope) -> Result<T> {
    read(name, scope, true).map(|value| value.expect("created if missing"))
}

/// Sets global `name` to `value`.
pub fn set<T: Value>(name: &str, scope: Scope, value: T) -> Result<()> {
    let key = key::<T>(name);
    check(
        safe::put_global(&key, scope.flags(), &value.encode()),
        || format!("storing global `{key}`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_encode_as_the_go_sdk_does() {
        assert_eq!(4u32.encode(), [0, 0, 0, 4]);
        assert_eq!(2.5f32.encode()[..4], 2.5f32.to_be_bytes());
        assert_eq!(2.5f32.encode().len(), 8);
        assert_eq!(f32::decode(&2.5f32.encode()), Some(2.5));
        assert_eq!(f64::decode(&1.75f64.encode()), Some(1.75));
        assert_eq!(u64::decode(&[]), Some(0), "empty is zero");
        assert_eq!(u32::decode(&[1]), None);
        assert_eq!(key::<u32>("hello"), "/uint32/hello");
    }
}
