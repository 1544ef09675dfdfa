//! The data each Store carries: the host calls' state, a WASI context and the limits.

use super::clocks::{CoarseMonotonicClock, CoarseWallClock};
use super::guest_log::{GuestLog, Stream};
use super::limits::MemoryLimiter;
use crate::abi::AbiState;
use std::sync::Arc;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::WasiCtxBuilder;

/// Store data for one invocation. A fresh one is made per event and dropped after.
pub struct HostState {
    /// Built on the guest's first WASI call (see [`HostState::wasi`]): most events
    /// make none, and a context costs allocations and a seeded random generator.
    pub wasi: Option<WasiP1Ctx>,
    pub limiter: MemoryLimiter,
    /// What the `taubyte/sdk` and `env` calls work on (see [`crate::abi`]).
    pub abi: AbiState,
    /// A Rust guest's panic message, as its stderr said it (see [`GuestLog`]).
    pub panic: super::guest_log::PanicSlot,
}

impl HostState {
    /// The guest's WASI context, built on first use.
    pub fn wasi(&mut self) -> &mut WasiP1Ctx {
        let (function, panic) = (&self.abi.function, &self.panic);
        self.wasi
            .get_or_insert_with(|| wasi_context(function, panic))
    }
}

/// What a guest gets of WASI: nothing granted (no preopened folders, no environment,
/// no arguments, no sockets), coarse clocks, and stdout/stderr as log lines.
fn wasi_context(function: &Arc<str>, panic: &super::guest_log::PanicSlot) -> WasiP1Ctx {
    WasiCtxBuilder::new()
        .stdout(GuestLog::new(
            function.clone(),
            Stream::Stdout,
            panic.clone(),
        ))
        .stderr(GuestLog::new(
            function.clone(),
            Stream::Stderr,
            panic.clone(),
        ))
        .wall_clock(CoarseWallClock)
        .monotonic_clock(CoarseMonotonicClock)
        .build_p1()
}
