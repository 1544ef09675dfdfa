//! The host side of the guest ABI: every import a Taubyte guest may use.
//!
//! One file per area: [`event`] (`getEventType`), [`http`] (HTTP events),
//! [`pubsub`] (channels and message events), [`env`]
//! (Taubyte's `env` module). Names, arities and errno codes follow Taubyte exactly
//! (see `shared/reference/taubyte-model.md`); this module and [`memory`] are the only
//! places that touch guest pointers.

pub mod env;
pub mod errno;
pub mod event;
pub mod http;
pub mod memory;
pub mod pubsub;

use crate::runtime::state::HostState;
use errno::Errno;
use memory::GuestMemory;
use wasmtime::{Caller, Linker};

/// The import module of Taubyte's SDK calls.
pub const SDK_MODULE: &str = "taubyte/sdk";

/// Defines WASI preview 1 (with nothing granted) and every Wisp host call.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, HostState::wasi)?;
    env::add_to_linker(linker)?;
    event::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    pubsub::add_to_linker(linker)?;
    Ok(())
}

/// The guest's memory and the Store data, borrowed together for one host call.
fn split<'a>(caller: &'a mut Caller<'_, HostState>) -> (GuestMemory<'a>, &'a mut HostState) {
    match caller.data().memory {
        Some(memory) => {
            let (bytes, state) = memory.data_and_store_mut(caller);
            (GuestMemory::new(bytes), state)
        }
        // A module without an exported memory: every pointer is out of bounds.
        None => (GuestMemory::new(&mut []), caller.data_mut()),
    }
}

/// Runs a synchronous host call and turns its result into the guest's errno.
fn call(
    caller: &mut Caller<'_, HostState>,
    f: impl FnOnce(&mut GuestMemory<'_>, &mut HostState) -> Result<(), Errno>,
) -> i32 {
    let (mut memory, state) = split(caller);
    errno::to_code(f(&mut memory, state))
}
