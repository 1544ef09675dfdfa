//! `getEventType`: which kind of event a guest was called with.

use super::{split, SDK_MODULE};
use crate::runtime::state::HostState;
use wasmtime::{Caller, Linker};

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    // The one call without an errno: a bad out-pointer can only trap.
    linker.func_wrap(
        SDK_MODULE,
        "getEventType",
        |mut caller: Caller<'_, HostState>, id: i32, type_ptr: i32| -> wasmtime::Result<()> {
            let (mut memory, state) = split(&mut caller);
            let kind = state.event_type(id) as u32;
            memory.write_u32(type_ptr, kind).map_err(|errno| {
                wasmtime::Error::msg(format!(
                    "getEventType: bad out-pointer {type_ptr:#x} ({errno:?})"
                ))
            })
        },
    )?;
    Ok(())
}
