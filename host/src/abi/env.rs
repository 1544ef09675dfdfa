//! Taubyte's `env` module: `_ready`, `_sleep` and `_log`.

use super::split;
use crate::runtime::state::HostState;
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker};

const ENV_MODULE: &str = "env";

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    // TinyGo guests signal readiness; there is nothing for the host to do.
    linker.func_wrap(ENV_MODULE, "_ready", || {})?;
    linker.func_wrap_async(
        ENV_MODULE,
        "_sleep",
        |caller: Caller<'_, HostState>, (nanos,): (i64,)| {
            // Never sleep past the deadline: the invocation would only time out.
            let left = caller
                .data()
                .deadline
                .saturating_duration_since(Instant::now());
            let wanted = Duration::from_nanos(nanos.max(0) as u64);
            Box::new(tokio::time::sleep(wanted.min(left)))
        },
    )?;
    linker.func_wrap(
        ENV_MODULE,
        "_log",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
            let (memory, state) = split(&mut caller);
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
