//! The wasm runtime: one Engine, modules compiled once, a fresh Store per event.
//!
//! # Layout
//! - [`engine`]: the Engine (pooling allocator, epoch interruption) and its ticker.
//! - [`cache`]: compiled modules on disk, keyed by content and engine settings.
//! - [`function`]: a function's module checked and linked into an `InstancePre`.
//! - [`invoke`]: one event → one Store → one call, with memory and time limits.
//! - [`deployment`]: the loaded functions, and when an invocation may run (admission).
//! - [`state`]: what a Store carries: the host calls' state (`abi`), WASI, limits.
//! - [`guest_log`], [`limits`], [`clocks`]: guest output as log lines; memory
//!   caps; coarse clocks.

pub mod cache;
pub mod clocks;
pub mod deployment;
pub mod engine;
pub mod function;
pub mod guest_log;
pub mod invoke;
pub mod limits;
pub mod state;

use crate::abi::{EventData, GuestEnv};
use cache::ModuleCache;
use engine::EngineSettings;
use function::{FunctionSpec, GuestFunction, WasmProblem};
use invoke::InvokeError;
use state::HostState;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Linker, Module};

/// Engine, linker and module cache, shared by every function and event.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ModuleCache,
    /// Modules already compiled in this process, by wasm path: functions that share
    /// a library module share one compilation.
    modules: std::sync::Mutex<HashMap<PathBuf, Module>>,
}

impl Runtime {
    pub fn new(settings: &EngineSettings, cache: ModuleCache) -> anyhow::Result<Self> {
        let engine = engine::build_engine(settings)?;
        engine::start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, HostState::wasi)?;
        crate::abi::add_to_linker(&mut linker, |state: &mut HostState| &mut state.abi)?;
        Ok(Self {
            engine,
            linker,
            cache,
            modules: Default::default(),
        })
    }

    /// Compiles (or fetches) the module at `wasm` and prepares `spec` from it.
    /// `shown_as` is how the path appears in messages (relative to the project).
    pub fn load_function(
        &self,
        wasm: &Path,
        shown_as: &str,
        spec: &FunctionSpec<'_>,
    ) -> Result<GuestFunction, WasmProblem> {
        let module = self.module(wasm, shown_as)?;
        function::prepare(&self.linker, &module, spec)
    }

    fn module(&self, wasm: &Path, shown_as: &str) -> Result<Module, WasmProblem> {
        // A poisoned lock only means another load panicked; the map is still valid.
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(module) = modules.get(wasm) {
            return Ok(module.clone());
        }
        let module = function::compile(&self.engine, &self.cache, wasm, shown_as)?;
        modules.insert(wasm.to_owned(), module.clone());
        Ok(module)
    }

    /// Runs `function` for one event.
    pub async fn invoke(
        &self,
        function: &GuestFunction,
        event: EventData,
        env: GuestEnv,
    ) -> Result<EventData, InvokeError> {
        invoke::invoke(&self.engine, function, event, env).await
    }
}
