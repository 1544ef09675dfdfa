//! Write Wisp (and Taubyte) functions in Rust.
//!
//! A function is an ordinary Rust function over an [`Event`]; the [`function`] attribute writes
//! the wasm export the host calls. The API mirrors Taubyte's go-sdk in Rust casing: `e.HTTP()` is
//! [`event.http()`](Event::http), `pubsub.Channel("x")` is [`pubsub::channel("x")`](pubsub::channel).
//!
//! ```no_run
//! use wisp_sdk::{Event, Result};
//!
//! #[wisp_sdk::function]
//! fn ping(event: Event) -> Result<()> {
//!     let http = event.http()?;
//!     http.write(b"pong")?;
//!     http.return_code(200)
//! }
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-wasip1` and point a function's `execution.call` at
//! the export name (`ping` above).
//!
//! # Only inside a host
//!
//! The SDK does something only when the module runs inside a Wisp or Taubyte host. On other
//! targets it still compiles, so tests and docs build on your machine, but every call fails with
//! [`Errno::EventNotFound`] and every event is [`EventType::Undefined`].
//!
//! # Layout
//!
//! - [`Event`], [`EventType`]: what a function is called with.
//! - [`HttpEvent`] and [`http`]: the request and the response; [`http::client`]: requests
//!   the function sends.
//! - [`PubSubEvent`] and [`pubsub`]: channels and messages.
//! - [`database`] and [`globals`]: key-value data the host keeps.
//! - [`storage`]: a project's object storages (files, versions, CIDs).
//! - [`log`], [`sleep`]: the host's environment.
//! - [`Error`], [`Errno`], [`Result`]: one error type for every call.
#![deny(unsafe_code)]

// Lets the `#[function]` macro's `::wisp_sdk` paths resolve inside this crate's own tests.
extern crate self as wisp_sdk;

pub mod database;
mod env;
mod error;
mod event;
mod fetch;
pub mod globals;
pub mod http;
pub mod pubsub;
pub mod storage;
#[doc(hidden)]
pub mod sys;

pub use env::{log, sleep};
pub use error::{Errno, Error, Result};
pub use event::{Event, EventType};
pub use http::HttpEvent;
pub use pubsub::PubSubEvent;

/// Turns `fn name(event: Event)` into the wasm export `name` the host calls.
///
/// The function takes one [`Event`] and returns `()` or `Result<(), E>` for any `E: Display`
/// (for instance [`wisp_sdk::Error`] or `Box<dyn std::error::Error>`). On `Err(e)` the
/// export answers an HTTP event with status 500 and `e.to_string()` as the body (after anything
/// already written), logs the error, and returns 1 to the host; otherwise it returns 0.
///
/// The export is named after the function; `name = "..."` picks another name, for instance one
/// that is not a Rust identifier or that matches an existing Taubyte project's `execution.call`:
///
/// ```no_run
/// use wisp_sdk::{Event, Result};
///
/// #[wisp_sdk::function(name = "getWebSocketURL")]
/// fn web_socket_url(event: Event) -> Result<()> {
///     let http = event.http()?;
///     let url = wisp_sdk::pubsub::channel("chat")?.web_socket().url()?;
///     http.write(url.as_bytes())?;
///     Ok(())
/// }
/// ```
///
/// The export's symbol is its name, so pick names that no other linked code defines (in a test
/// binary on your machine, an export called `write` would replace libc's).
pub use wisp_sdk_macros::function;

/// Support code for the `#[function]` macro. Not a public API.
#[doc(hidden)]
pub mod __private {
    use std::fmt::Display;

    use crate::Event;

    /// What a `#[function]` may return.
    #[diagnostic::on_unimplemented(
        message = "a `#[wisp_sdk::function]` must return `()` or `Result<(), E>` with `E: Display`",
        label = "this return type is not supported"
    )]
    pub trait Outcome {
        /// `Err` carries the error message for the client.
        fn into_outcome(self) -> Result<(), String>;
    }

    impl Outcome for () {
        fn into_outcome(self) -> Result<(), String> {
            Ok(())
        }
    }

    impl<E: Display> Outcome for Result<(), E> {
        fn into_outcome(self) -> Result<(), String> {
            self.map_err(|err| err.to_string())
        }
    }

    /// Runs a function for the event `id`; returns the export's result (0 ok, 1 failed).
    pub fn invoke<R: Outcome>(id: u32, function: impl FnOnce(Event) -> R) -> u32 {
        let event = Event::from_id(id);
        match function(event).into_outcome() {
            Ok(()) => 0,
            Err(message) => {
                crate::log(&format!("function failed: {message}"));
                if let Ok(http) = event.http() {
                    // Status first, so it also sticks on hosts that send it with the first write.
                    // Nothing more can be reported if these fail: the error is already logged.
                    let _ = http.return_code(500);
                    let _ = http.write(message.as_bytes());
                }
                1
            }
        }
    }
}
