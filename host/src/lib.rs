//! Wisp: a WebAssembly function host that runs Taubyte-style functions.
//!
//! # Layout
//!
//! In dependency order: each module uses only those above it in this list (checked by
//! `tests/layers.rs`); where a lower one needs a higher one, it defines a small trait.
//! - [`project`]: a Taubyte project folder → a typed, validated [`project::Project`].
//! - [`state`]: what functions keep (databases, storages, globals) behind the
//!   [`state::StateEngine`] seam: SQLite by default, NATS JetStream in a cluster.
//! - [`egress`]: which addresses a guest's outbound HTTP may reach (the egress policy).
//! - [`abi`]: the host calls guests import (`taubyte/sdk`, `env`), bounds-checked, over an
//!   [`abi::AbiState`] and the [`abi::Channels`] seam to messaging.
//! - [`runtime`]: the wasmtime Engine, compiled-module cache, one Store per event, and the
//!   [`runtime::deployment::Deployment`] that admits invocations.
//! - [`messaging`]: channels, access rules, the broker seam (in-process or NATS), pub/sub
//!   functions; its `Hub` implements [`abi::Channels`].
//! - [`load`]: project + runtime → something to serve (shared by `check` and `serve`).
//! - [`server`]: hyper HTTP serving, routing, the WebSocket bridge, static files.
//! - [`builder`]: `wisp build`, compiling guest crates to wasm (uses only [`project`]).
//! - [`watch`]: `wisp dev`'s watch on a project's files (uses nothing above).
//! - [`metrics`]: what the server counts, for `/metrics` (uses nothing above).
//! - [`allocator`]: how the process hands freed memory back.

pub mod abi;
pub mod allocator;
pub mod builder;
pub mod egress;
pub mod load;
pub mod messaging;
pub mod metrics;
pub mod project;
pub mod runtime;
pub mod server;
pub mod state;
pub mod watch;
