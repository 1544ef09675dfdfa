//! Outbound HTTP from guests: which addresses a function may reach.
//!
//! [`policy`] decides, for one resolved address or one host name, whether a guest's
//! request may go there. The HTTP client host calls are not written yet; this is the
//! policy they are to check at connect time and on every redirect.

pub mod policy;

pub use policy::{Allow, EgressPolicy};
