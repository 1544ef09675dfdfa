//! Outbound HTTP from guests: which addresses a function may reach, and the client that
//! reaches them.
//!
//! [`policy`] decides, for one resolved address, whether a guest's request may go there;
//! [`connector`] applies it to every address a request dials; [`client`] is the pooled
//! hyper client over rustls that the HTTP client host calls send through, one per policy.

pub mod client;
pub mod connector;
pub mod policy;

pub use client::{Client, Clients, EgressSettings, Failure, Outbound};
pub use policy::{Allow, EgressPolicy};
