//! Wisp: a WebAssembly function host that runs Taubyte-style functions.
//!
//! # Layout
//! - [`project`]: a Taubyte project folder → a typed, validated [`project::Project`].
//! - [`runtime`]: the wasmtime Engine, compiled-module cache, one Store per event.
//! - [`abi`]: the host calls guests import (`taubyte/sdk`, `env`), bounds-checked.
//! - [`messaging`]: channels, access rules, the broker seam (in-process or NATS), pub/sub
//!   functions.
//! - [`server`]: hyper HTTP serving, routing, the WebSocket bridge, static files.
//! - [`load`]: project + runtime → something to serve (shared by `check` and `serve`).
//! - [`builder`]: `wisp build`, compiling guest crates to wasm.
//! - [`allocator`]: how the process hands freed memory back.

pub mod abi;
pub mod allocator;
pub mod builder;
pub mod load;
pub mod messaging;
pub mod project;
pub mod runtime;
pub mod server;
