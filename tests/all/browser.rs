//! The sample chat page (`config/public/index.html`) in a real browser: headless Chromium,
//! driven over the DevTools protocol, against a real Wisp server serving the sample project.

use anyhow::{Context, Result};
use serde_json::json;
use std::time::Duration;
use wisp_e2e::cdp::{Browser, Page};
use wisp_e2e::{sample_server, sample_server_at, sample_server_with_broker_listener, Server};

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

#[tokio::test]
async fn a_page_that_joins_late_sees_the_rooms_recent_messages_with_times_and_its_own_marked() {
    let server = sample_server().await;
    let room = "browser-late";
    for (user, text) in [("carol", "anyone here?"), ("dave", "back soon")] {
        let body = json!({ "user": user, "text": text }).to_string();
        let reply = server
            .post(&format!("/api/chat/send?room={room}"), body)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let browser = Browser::launch().await.unwrap();
    let dave = join(&browser, &server, room, "dave").await.unwrap();
    wait_until(&dave, "the room's recent messages", "lines().length === 2")
        .await
        .unwrap();
    assert_eq!(
        dave.eval("lines()").await.unwrap(),
        json!(["carol: anyone here?", "dave: back soon"])
    );
    // Each line has its time, and dave's own message is told apart from carol's.
    let shown = dave
        .eval(
            "[...document.querySelectorAll('#messages li')].map(li => ({
                mine: li.classList.contains('mine'),
                timed: !isNaN(Date.parse(li.querySelector('time').dateTime)),
            }))",
        )
        .await
        .unwrap();
    assert_eq!(
        shown,
        json!([{ "mine": false, "timed": true }, { "mine": true, "timed": true }])
    );
    // Sent from the page now: delivered once, after the replayed ones.
    send(&dave, "I'm here").await.unwrap();
    wait_until(&dave, "dave's new message", "lines().length === 3")
        .await
        .unwrap();
    assert_eq!(
        dave.eval("lines()[2]").await.unwrap(),
        json!("dave: I'm here")
    );
    assert_eq!(dave.exceptions(), Vec::<String>::new());
}

#[tokio::test]
async fn after_a_server_restart_the_page_reconnects_and_shows_what_was_sent_meanwhile() {
    let mut server = sample_server().await;
    let addr = server.addr;
    let room = "browser-restart";
    let browser = Browser::launch().await.unwrap();
    let erin = join(&browser, &server, room, "erin").await.unwrap();
    send(&erin, "before").await.unwrap();
    wait_until(&erin, "the first message", "lines().length === 1")
        .await
        .unwrap();
    // The page's sockets are held back until the test lets them go, so that what is sent
    // after the restart can only reach the page by its resume; each socket's URL is kept.
    erin.eval(
        "window.held = true; window.urls = [];
         window.WebSocket = class extends WebSocket {
           constructor(url, protocols) {
             if (window.held) throw new Error('held back by the test');
             window.urls.push(String(url));
             super(url, protocols);
           }
         }",
    )
    .await
    .unwrap();

    let seen = erin.eval("channel.offset").await.unwrap();
    assert!(seen.is_u64(), "the page knows the offset it saw: {seen}");
    server.begin_shutdown().await.unwrap();
    wait_until(
        &erin,
        "the page to see the server go",
        "document.getElementById('status').textContent !== 'connected'",
    )
    .await
    .unwrap();
    let server = sample_server_at(addr).await;
    for text in ["while you were away", "and this"] {
        let body = json!({ "user": "frank", "text": text }).to_string();
        let reply = server
            .post(&format!("/api/chat/send?room={room}"), body)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // Let go, as a browser that comes back online: the client reconnects at once.
    erin.eval("window.held = false; window.dispatchEvent(new Event('online'))")
        .await
        .unwrap();
    let connected = "document.getElementById('status').textContent === 'connected'";
    wait_until(&erin, "the page to reconnect", connected)
        .await
        .unwrap();
    wait_until(&erin, "what was sent meanwhile", "lines().length === 3")
        .await
        .unwrap();
    send(&erin, "after").await.unwrap();
    wait_until(&erin, "the message after", "lines().length === 4")
        .await
        .unwrap();
    assert_eq!(
        erin.eval("lines()").await.unwrap(),
        json!([
            "erin: before",
            "frank: while you were away",
            "frank: and this",
            "erin: after"
        ])
    );
    let urls = erin.eval("window.urls").await.unwrap();
    let urls: Vec<&str> = urls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    assert_eq!(urls.len(), 1, "one reconnect once let go: {urls:?}");
    assert!(
        urls[0].contains(&format!("since={seen}"))
            && urls[0].contains("epoch=")
            && urls[0].contains("envelope=json"),
        "the reconnect resumes after the one message seen: {}",
        urls[0]
    );
    assert_eq!(
        erin.eval("document.querySelectorAll('li.notice').length")
            .await
            .unwrap(),
        json!(0)
    );
    assert_eq!(erin.exceptions(), Vec::<String>::new());
}

/// The broker tutorial's web client, as its page has it (`new WebSocket("ws://localhost:8765")`,
/// `SUBSCRIBE:news`, `PUBLISH:news:Hello world!`), against the broker protocol's own
/// listener: a message published while nobody is subscribed is there for the next page.
#[tokio::test]
async fn the_broker_tutorials_web_client_works_against_the_broker_listener() {
    let server = sample_server_with_broker_listener().await;
    let broker = server.broker_addr.expect("a broker listener");
    let browser = Browser::launch().await.unwrap();
    let tutorial = |commands: &str| {
        format!(
            "window.got = [];
             let ws = new WebSocket('ws://{broker}');
             ws.onmessage = (event) => window.got.push(event.data);
             ws.onclose = () => window.left = true;
             ws.onopen = () => {{ {commands} }};"
        )
    };
    // The first page only publishes, to a channel nobody is on, and leaves: the server
    // answers its close after the publish, so the message has been handled by then.
    let first = browser.new_page().await.unwrap();
    first.goto(&server.url("/_wisp/health")).await.unwrap();
    first
        .eval(&tutorial(
            "ws.send('PUBLISH:news:Hello world!'); ws.close();",
        ))
        .await
        .unwrap();
    first.wait_for("window.left === true", WAIT).await.unwrap();
    // The second subscribes: the stored message first, then its own publish.
    let second = browser.new_page().await.unwrap();
    second.goto(&server.url("/_wisp/health")).await.unwrap();
    second
        .eval(&tutorial(
            "ws.send('SUBSCRIBE:news'); ws.send('PUBLISH:news:Breaking!'); ws.send('PUBLISH:oops');",
        ))
        .await
        .unwrap();
    second
        .wait_for("window.got.length >= 3", WAIT)
        .await
        .unwrap();
    let got = second.eval("window.got").await.unwrap();
    let got: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[..2], ["MSG:news:Hello world!", "MSG:news:Breaking!"]);
    assert!(
        got[2].starts_with("ERROR:"),
        "a malformed command is told: {got:?}"
    );
    assert_eq!(second.exceptions(), Vec::<String>::new());
}

/// Opens the chat page in a new tab, joins `room` as `user` and waits for the WebSocket.
async fn join(browser: &Browser, server: &Server, room: &str, user: &str) -> Result<Page> {
    let page = browser.new_page().await?;
    page.goto(&server.url("/")).await?;
    // `lines()`: the texts of the `#messages` items (without their times), for the
    // conditions below.
    page.eval("window.lines = () => [...document.querySelectorAll('#messages li .line')].map(l => l.textContent)")
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
