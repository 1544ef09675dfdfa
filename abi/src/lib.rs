//! The contract between Wisp and its guests, written once for both sides.
//!
//! - [`imports`]: every host call a guest may import, by module, name and signature. The
//!   guest SDK declares its raw `extern` functions from this list ([`with_imports!`]), and the
//!   host's linker is checked against the same list ([`imports::IMPORTS`]), so the two cannot
//!   drift apart.
//! - [`errno`]: Taubyte's errno numbers, the i32 every host call returns.
//!
//! The names, signatures and numbers are Taubyte's own: guests built with Taubyte's SDKs
//! (module `taubyte/sdk`) run on Wisp unchanged.
#![no_std]

pub mod errno;
pub mod imports;

pub use errno::Errno;

/// The import module of Taubyte's SDK calls.
pub const SDK_MODULE: &str = "taubyte/sdk";

/// Taubyte's second import module: `_ready`, `_sleep` and `_log`.
pub const ENV_MODULE: &str = "env";

/// Wisp's own calls, which Taubyte's host does not have (the status of an outbound HTTP
/// response). A guest that imports them runs on Wisp only.
pub const WISP_MODULE: &str = "wisp";
