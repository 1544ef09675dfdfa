//! The benchmark's HTTP function: answers `Hello, World!` (13 bytes), nothing else, so the
//! numbers measure the host (routing, instantiation, host calls), not the guest.

use wisp_sdk::{Event, Result};

#[wisp_sdk::function]
fn hello(event: Event) -> Result<()> {
    let http = event.http()?;
    http.write(b"Hello, World!")?;
    http.return_code(200)
}
