//! The host side of the guest ABI: every import a Taubyte guest may use.
//!
//! The contract itself (names, signatures, errno numbers) is the `wisp-abi` crate, shared
//! with the guest SDK; this module implements it. One file per area: [`event`]
//! (`getEventType`), [`http`] (HTTP events, over the request and response in
//! [`http_event`]), [`http_client`] (outbound requests, through `crate::egress`), [`pubsub`] (channels and message events, through the [`Channels`] seam
//! that messaging implements), [`database`] and [`globals`] (over the state engine, with
//! the handles of [`handles`]), [`env`] (Taubyte's `env` module). This module and
//! [`memory`] are the only places that touch guest pointers.
//!
//! The calls work on an [`AbiState`] that the embedder keeps in its Store data and hands
//! over through a view function, as wasmtime's WASI does:
//! `abi::add_to_linker(&mut linker, |state| &mut state.abi)`. Nothing here knows the
//! runtime or the server, so the calls are tested on inline WAT with no server.

pub mod channels;
pub mod database;
pub mod env;
pub mod event;
pub mod globals;
pub mod handles;
pub mod http;
pub mod http_client;
pub mod http_event;
pub mod memory;
pub mod pubsub;
pub mod state;
pub mod storage;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use channels::{Channels, GuestEnv};
pub use state::{AbiState, EventData, EventType, PubSubEvent};
pub use wisp_abi::{Errno, ENV_MODULE, SDK_MODULE};

use memory::GuestMemory;
use wasmtime::{Caller, Linker};

/// How the host calls find their [`AbiState`] in the embedder's Store data.
pub trait View<T>: Fn(&mut T) -> &mut AbiState + Copy + Send + Sync + 'static {}

impl<T, F> View<T> for F where F: Fn(&mut T) -> &mut AbiState + Copy + Send + Sync + 'static {}

/// Defines every Wisp host call (module `taubyte/sdk` and `env`; not WASI, which the
/// runtime adds itself) on `linker`, reaching each call's state through `view`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    env::add_to_linker(linker, view)?;
    event::add_to_linker(linker, view)?;
    http::add_to_linker(linker, view)?;
    http_client::add_to_linker(linker, view)?;
    pubsub::add_to_linker(linker, view)?;
    database::add_to_linker(linker, view)?;
    globals::add_to_linker(linker, view)?;
    storage::add_to_linker(linker, view)?;
    Ok(())
}

/// What an async host call returns: its errno, once done.
type HostFuture<'a> = Box<dyn std::future::Future<Output = i32> + Send + 'a>;

/// The guest's memory and the call's state, borrowed together for one host call.
fn split<'a, T>(
    caller: &'a mut Caller<'_, T>,
    view: impl View<T>,
) -> (GuestMemory<'a>, &'a mut AbiState) {
    match view(caller.data_mut()).memory {
        Some(memory) => {
            let (bytes, data) = memory.data_and_store_mut(caller);
            (GuestMemory::new(bytes), view(data))
        }
        // A module without an exported memory: every pointer is out of bounds.
        None => (GuestMemory::new(&mut []), view(caller.data_mut())),
    }
}

/// Runs a synchronous host call and turns its result into the guest's errno.
fn call<T>(
    caller: &mut Caller<'_, T>,
    view: impl View<T>,
    f: impl FnOnce(&mut GuestMemory<'_>, &mut AbiState) -> Result<(), Errno>,
) -> i32 {
    let (mut memory, state) = split(caller, view);
    Errno::to_i32(f(&mut memory, state))
}
