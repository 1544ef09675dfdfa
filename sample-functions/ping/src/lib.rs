//! The smallest function: answers `pong`.

use wisp_sdk::{Event, Result};

#[wisp_sdk::function]
fn ping(event: Event) -> Result<()> {
    let http = event.http()?;
    http.write(b"pong")?;
    http.return_code(200)
}
