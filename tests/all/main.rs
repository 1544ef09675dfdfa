//! The end-to-end tests, one module per area, in one test binary: each binary links
//! wasmtime and Cranelift, so one binary instead of one per area saves most of the
//! test build. Tests here share the process with each other (`cargo test` runs them
//! on parallel threads): they hold no process-wide state of their own; the harness
//! (`wisp_e2e`) owns what there is (the tracing subscriber, guests built once, the
//! sample project built once).
//!
//! `tests/soak.rs` stays a binary of its own: its memory checks read the whole
//! process's RSS, which tests running beside them would move, and its fan-out test
//! measures delivery rates with and without stalled clients, which only mean
//! something with nothing else running.
//!
//! One area: `cargo test -p wisp-e2e --test all cluster::`.

mod abi;
mod broker_protocol;
mod browser;
mod cluster;
mod cluster_state;
mod compat;
mod cors;
mod faults;
mod fuzz;
mod guest_bounds;
mod history;
mod hostile_http;
mod http_calls;
mod http_client;
mod limits;
mod messaging;
mod metrics;
mod presence;
mod private;
mod reload;
mod samples;
mod state;
mod static_files;
mod storage;
mod tls;
mod wasm_checks;
mod websocket;
