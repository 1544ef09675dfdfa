//! `getEventType`: which kind of event a guest was called with.

use super::{split, View, SDK_MODULE};
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    // The one call without an errno: a bad out-pointer can only trap.
    linker.func_wrap(
        SDK_MODULE,
        name::getEventType,
        move |mut caller: Caller<'_, T>, id: i32, type_ptr: i32| -> wasmtime::Result<()> {
            let (mut memory, state) = split(&mut caller, view);
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
