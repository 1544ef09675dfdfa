//! Figure 9's function: `?url=<url>&n=<count>` sends that many GETs to the URL, one after
//! another on one client, reading each body whole, and answers `done`.

use wisp_sdk::http::client;
use wisp_sdk::{Event, Result};

#[wisp_sdk::function]
fn fetch(event: Event) -> Result<()> {
    let http = event.http()?;
    let query = http.query();
    let url = query.get("url")?;
    let n: usize = query.get("n")?.parse().unwrap_or(0);
    let client = client::new()?;
    for _ in 0..n {
        let response = client.request(&url)?.send()?;
        if response.status()? != 200 {
            return http.return_code(502);
        }
        response.bytes()?;
    }
    http.write(b"done")?;
    http.return_code(200)
}
