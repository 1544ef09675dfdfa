//! The sample chat page (`config/public/index.html`) in a real browser: headless Chromium,
//! driven over the DevTools protocol, against a real Wisp server serving the sample project.

use anyhow::{Context, Result};
use serde_json::json;
use std::time::Duration;
use wisp_e2e::cdp::{Browser, Page};
use wisp_e2e::{sample_server, Server};

/// Joining, connecting and a message's round trip each take milliseconds; this is the bound.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn two_pages_in_one_room_see_each_others_messages() -> Result<()> {
    let server = sample_server().await;
    let browser = Browser::launch().await?;
    let alice = join(&browser, &server, "browser-test", "alice").await?;
    let bob = join(&browser, &server, "browser-test", "bob").await?;

    // One at a time, so that both pages must list them in this order.
    send(&alice, "hi bob").await?;
    for page in [&alice, &bob] {
        wait_until(page, "alice's message", "lines().includes('alice: hi bob')").await?;
    }
    send(&bob, "hi alice").await?;
    for page in [&alice, &bob] {
        wait_until(page, "bob's message", "lines().includes('bob: hi alice')").await?;
        let lines = page.eval("lines()").await?;
        assert_eq!(lines, json!(["alice: hi bob", "bob: hi alice"]));
        assert_eq!(page.exceptions(), Vec::<String>::new());
    }
    Ok(())
}

/// Opens the chat page in a new tab, joins `room` as `user` and waits for the WebSocket.
async fn join(browser: &Browser, server: &Server, room: &str, user: &str) -> Result<Page> {
    let page = browser.new_page().await?;
    page.goto(&server.url("/")).await?;
    // `lines()`: the texts of the `#messages` items, for the conditions below.
    page.eval("window.lines = () => [...document.querySelectorAll('#messages li')].map(li => li.textContent)")
        .await?;
    page.eval(&format!(
        "document.getElementById('room').value = {room};
         document.getElementById('user').value = {user};
         document.getElementById('join').click()",
        room = json!(room),
        user = json!(user),
    ))
    .await?;
    let connected = "document.getElementById('status').textContent === 'connected'";
    wait_until(&page, &format!("{user} to connect"), connected).await?;
    Ok(page)
}

/// Types `text` into the page's message box and clicks Send.
async fn send(page: &Page, text: &str) -> Result<()> {
    page.eval(&format!(
        "document.getElementById('text').value = {text};
         document.getElementById('send').click()",
        text = json!(text),
    ))
    .await?;
    Ok(())
}

/// [`Page::wait_for`], failing with what the page shows: its status line, messages and errors.
async fn wait_until(page: &Page, what: &str, condition: &str) -> Result<()> {
    let Err(error) = page.wait_for(condition, WAIT).await else {
        return Ok(());
    };
    let shown = page
        .eval(
            "({ status: document.getElementById('status').textContent,
                messages: [...document.querySelectorAll('#messages li')].map(li => li.textContent) })",
        )
        .await
        .unwrap_or_else(|e| json!(format!("unreadable: {e:#}")));
    Err(error).with_context(|| {
        format!(
            "waiting for {what}; the page shows {shown} and threw {:?}",
            page.exceptions()
        )
    })
}
