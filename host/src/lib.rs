//! Wisp: a WebAssembly function host that runs Taubyte-style functions.
//!
//! # Layout
//! - [`project`]: a Taubyte project folder → a typed, validated [`project::Project`].
//! - [`runtime`]: the wasmtime Engine, compiled-module cache, one Store per event.
//! - [`abi`]: the host calls guests import (`taubyte/sdk`, `env`), bounds-checked.
//! - [`server`]: hyper HTTP serving and routing.
//! - [`load`]: project + runtime → something to serve (shared by `check` and `serve`).
//! - [`builder`]: `wisp build`, compiling guest crates to wasm.

pub mod abi;
pub mod builder;
pub mod load;
pub mod project;
pub mod runtime;
pub mod server;
