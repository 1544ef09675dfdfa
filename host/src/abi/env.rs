//! Taubyte's `env` module: `_ready`, `_sleep` and `_log`.

use super::{split, View, ENV_MODULE};
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    // TinyGo guests signal readiness; there is nothing for the host to do.
    linker.func_wrap(ENV_MODULE, name::_ready, || {})?;
    linker.func_wrap_async(
        ENV_MODULE,
        name::_sleep,
        move |mut caller: Caller<'_, T>, (nanos,): (i64,)| {
            // Never sleep past the deadline: the invocation would only time out.
            let left = view(caller.data_mut())
                .deadline
                .saturating_duration_since(Instant::now());
            let wanted = Duration::from_nanos(nanos.max(0) as u64);
            Box::new(tokio::time::sleep(wanted.min(left)))
        },
    )?;
    linker.func_wrap(
        ENV_MODULE,
        name::_log,
        move |mut caller: Caller<'_, T>, ptr: i32, len: i32| {
            let (memory, state) = split(&mut caller, view);
            match memory.string(ptr, len) {
                Ok(line) => tracing::info!(target: "guest", function = %state.function, "{line}"),
                Err(errno) => {
                    tracing::debug!(function = %state.function, ?errno, "_log with a bad pointer")
                }
            }
        },
    )?;
    Ok(())
}
