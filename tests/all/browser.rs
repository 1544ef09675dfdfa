//! The sample chat page (`config/public/index.html`) in a real browser: headless Chromium,
//! driven over the DevTools protocol, against a real Wisp server serving the sample project.
//!
//! The page signs in with a name and a room (`POST /api/chat/signin`, which hands out the
//! private room's URL with a token naming the user), shows the room's messages through
//! `Wisp.channel`, and the online list, "… is typing" and private messages through
//! `Wisp.broker`.

use anyhow::{Context, Result};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use wisp_e2e::cdp::{Browser, Page};
use wisp_e2e::{
    sample_server, sample_server_listening, sample_server_with_broker_listener, Listening, Server,
};

/// Joining, connecting and a message's round trip each take milliseconds; this is the bound.
const WAIT: Duration = Duration::from_secs(10);

/// How long the server waits before a user whose last socket closed leaves the online list.
const LEAVE_GRACE: Duration = Duration::from_secs(3);

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
async fn the_chat_page_works_over_https_and_wss() -> Result<()> {
    use wisp::server::tls::{certificates::TlsFiles, Tls};
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
    let dir = tempfile::tempdir()?;
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, made.cert.pem())?;
    std::fs::write(&files.key, made.key_pair.serialize_pem())?;
    let listening = Listening {
        tls: Some(Tls::load(files)?),
        ..Listening::default()
    };
    let server = sample_server_listening(listening).await;
    // The certificate is self-signed: trusted by this browser alone.
    let browser = Browser::launch_with(&["--ignore-certificate-errors"]).await?;
    let url = format!("https://{}/", server.addr);
    let alice = join_at(&browser, &url, "browser-tls", "alice").await?;
    let bob = join_at(&browser, &url, "browser-tls", "bob").await?;
    send(&alice, "over wss").await?;
    for page in [&alice, &bob] {
        wait_until(
            page,
            "alice's message",
            "lines().includes('alice: over wss')",
        )
        .await?;
        // An https:// page may open wss:// sockets only: connected means wss.
        assert_eq!(page.eval("location.protocol").await?, json!("https:"));
        assert_eq!(page.exceptions(), Vec::<String>::new());
    }
    Ok(())
}

#[tokio::test]
async fn a_page_that_joins_late_sees_the_rooms_recent_messages_with_times_and_its_own_marked() {
    let server = sample_server().await;
    let room = "browser-late";
    for (user, text) in [("carol", "anyone here?"), ("dave", "back soon")] {
        say(&server, room, user, text).await;
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
    // The page's token must outlive the restart, as it does with the key kept in the data
    // dir; test servers draw a key each, so both get this one. The page reaches them through
    // a forwarder, so that the second is where the first was for the page.
    let config = || {
        let mut config = wisp_e2e::test_config();
        config.tokens = Some(wisp::messaging::token::Tokens::new(
            b"the browser tests' token key, 32+ bytes".to_vec(),
        ));
        config
    };
    drop(sample_server().await); // Builds the sample project, once per test process.
    let project = wisp_e2e::repo().join("config");
    let mut server = Server::start_with(&project, config()).await;
    let front = Forwarder::start(server.addr).await;
    let room = "browser-restart";
    let browser = Browser::launch().await.unwrap();
    let erin = join_at(&browser, &front.url("/"), room, "erin")
        .await
        .unwrap();
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
    let server = Server::start_with(&project, config()).await;
    front.point_at(server.addr);
    for text in ["while you were away", "and this"] {
        say(&server, room, "frank", text).await;
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
    // The room's channel socket, and the broker protocol's socket (`/ws-<hash>`, no query).
    let (room_urls, broker_urls): (Vec<&str>, Vec<&str>) = urls
        .iter()
        .partition(|url| url.contains(&format!("/private/{room}?")));
    assert_eq!(room_urls.len(), 1, "one reconnect once let go: {urls:?}");
    assert!(
        room_urls[0].contains(&format!("since={seen}"))
            && room_urls[0].contains("epoch=")
            && room_urls[0].contains("envelope=json"),
        "the reconnect resumes after the one message seen: {}",
        room_urls[0]
    );
    assert!(
        !broker_urls.is_empty() && broker_urls.iter().all(|url| url.ends_with(&sample_hash())),
        "the broker's socket comes back too: {urls:?}"
    );
    // The broker signs in again (its AUTH and SUBSCRIBE resent): erin is online again.
    wait_until(
        &erin,
        "erin back in the online list",
        "online().join() === 'erin'",
    )
    .await
    .unwrap();
    assert_eq!(
        erin.eval("document.querySelectorAll('li.notice').length")
            .await
            .unwrap(),
        json!(0)
    );
    assert_eq!(erin.exceptions(), Vec::<String>::new());
}

/// Three signed-in users in one room: each sees the others in the online list; typing on
/// one page shows "… is typing" on the others (and goes after a few seconds); a private
/// message reaches its user, marked private, and nobody else; a page that closes leaves the
/// list once the server's grace is over.
#[tokio::test]
async fn signed_in_users_see_who_is_online_who_is_typing_and_their_private_messages() {
    let server = sample_server().await;
    let room = "browser-presence";
    let browser = Browser::launch().await.unwrap();
    let alice = join(&browser, &server, room, "alice").await.unwrap();
    let bob = join(&browser, &server, room, "bob").await.unwrap();
    let carol = join(&browser, &server, room, "carol").await.unwrap();
    for page in [&alice, &bob, &carol] {
        wait_until(
            page,
            "everyone in the online list",
            "online().join() === 'alice,bob,carol'",
        )
        .await
        .unwrap();
    }
    // Each sees itself marked as such, and the others as buttons for a private message.
    assert_eq!(
        bob.eval(
            "[...document.querySelectorAll('#online li')].map(li =>
                li.querySelector('button') ? li.querySelector('button').getAttribute('aria-label') : li.textContent)"
        )
        .await
        .unwrap(),
        json!([
            "Send a private message to alice",
            "bob (you)",
            "Send a private message to carol"
        ])
    );

    // alice types: bob and carol are told, alice is not, and it goes away by itself.
    type_into(&alice, "hel").await.unwrap();
    for page in [&bob, &carol] {
        wait_until(
            page,
            "alice is typing",
            "document.getElementById('typing').textContent === 'alice is typing…'",
        )
        .await
        .unwrap();
    }
    let shown_at = Instant::now();
    assert_eq!(
        alice
            .eval("document.getElementById('typing').textContent")
            .await
            .unwrap(),
        json!("")
    );
    wait_until(
        &bob,
        "alice's typing to be forgotten",
        "document.getElementById('typing').textContent === ''",
    )
    .await
    .unwrap();
    assert!(
        shown_at.elapsed() >= Duration::from_millis(1500),
        "shown for about 3 s, went after {:?}",
        shown_at.elapsed()
    );

    // alice writes to bob privately (clicking his name), then to carol.
    private_message(&alice, "bob", "psst, bob").await.unwrap();
    private_message(&alice, "carol", "just for carol")
        .await
        .unwrap();
    wait_until(
        &bob,
        "alice's private message",
        "privates().join('|') === 'alice → bob: psst, bob'",
    )
    .await
    .unwrap();
    // Marked: its own class and a "private" badge.
    assert_eq!(
        bob.eval(
            "[...document.querySelectorAll('#messages li.private .badge')].map(b => b.textContent)"
        )
        .await
        .unwrap(),
        json!(["private"])
    );
    // carol gets hers, after bob's was sent on the same socket: bob's never reached her.
    wait_until(
        &carol,
        "alice's private message to carol",
        "privates().length === 1",
    )
    .await
    .unwrap();
    assert_eq!(
        carol.eval("privates()").await.unwrap(),
        json!(["alice → carol: just for carol"])
    );
    // alice sees what she sent, marked as hers; nobody's room shows any of it.
    assert_eq!(
        alice
            .eval("[...document.querySelectorAll('#messages li.private.mine .line')].map(l => l.textContent)")
            .await
            .unwrap(),
        json!(["alice → bob: psst, bob", "alice → carol: just for carol"])
    );
    for page in [&alice, &bob, &carol] {
        let lines = page
            .eval("lines().length - privates().length")
            .await
            .unwrap();
        assert_eq!(lines, json!(0), "no room message was sent");
    }

    // bob's page goes into the back/forward cache and comes back (the events a browser
    // sends): its sockets close, then reconnect, and the broker signs in again.
    // Counting its PRESENCE answers tells when the server has its SUBSCRIBE again (answered
    // in order on the socket), so that a private message cannot overtake its sign-in.
    bob.eval(
        "window.presences = 0;
         const shown = broker.options.onPresence;
         broker.options.onPresence = (...args) => { window.presences++; shown(...args); };
         window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
         window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }))",
    )
    .await
    .unwrap();
    wait_until(
        &bob,
        "bob's page to reconnect",
        "document.getElementById('status').textContent === 'connected' && window.presences > 0",
    )
    .await
    .unwrap();
    private_message(&alice, "bob", "still there?")
        .await
        .unwrap();
    wait_until(
        &bob,
        "alice's second private message",
        "privates().includes('alice → bob: still there?')",
    )
    .await
    .unwrap();

    // carol closes the page: she leaves alice's and bob's lists once the grace is over.
    let closed_at = Instant::now();
    carol.goto("about:blank").await.unwrap();
    for page in [&alice, &bob] {
        wait_until(page, "carol to leave", "online().join() === 'alice,bob'")
            .await
            .unwrap();
    }
    assert!(
        closed_at.elapsed() >= LEAVE_GRACE - Duration::from_millis(500),
        "a leave waits for the grace: carol left after {:?}",
        closed_at.elapsed()
    );
    for page in [&alice, &bob] {
        assert_eq!(page.exceptions(), Vec::<String>::new());
    }
}

/// A name the sign-in function refuses: the page says why, and opens nothing.
#[tokio::test]
async fn a_bad_name_is_refused_with_the_reason() {
    let server = sample_server().await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.goto(&server.url("/")).await.unwrap();
    page.eval(
        "document.getElementById('user').value = 'not a name!';
         document.getElementById('join').click()",
    )
    .await
    .unwrap();
    wait_until(
        &page,
        "the refusal",
        "document.getElementById('status').textContent.startsWith('error: 400')",
    )
    .await
    .unwrap();
    let status = page
        .eval("document.getElementById('status').textContent")
        .await
        .unwrap();
    assert!(
        status
            .as_str()
            .is_some_and(|s| s.contains("letters, digits")),
        "{status}"
    );
    assert_eq!(
        page.eval("channel === null && broker === null")
            .await
            .unwrap(),
        json!(true)
    );
}

/// `Wisp.broker` on its own, given just the socket (`ws-<hash>`), on the tutorial's
/// channels: subscribe, publish (a `:` in the channel's name and in the content), the
/// ERROR: lines of a channel no resource admits and of a private message without signing in.
#[tokio::test]
async fn the_broker_client_subscribes_publishes_and_reports_errors() {
    let server = sample_server().await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.goto(&server.url("/_wisp/health")).await.unwrap();
    page.eval(&format!(
        "const s = document.createElement('script');
         s.src = '/_wisp/client.js';
         document.head.appendChild(s);
         new Promise((ok) => s.onload = ok).then(() => {{
           window.got = []; window.errors = [];
           window.broker = Wisp.broker({socket}, {{
             onMessage: (channel, data) => got.push(channel + ' ' + data),
             onError: (reason) => errors.push(reason),
             onStatus: (status) => {{ if (status === 'open') window.opened = true; }},
           }});
           broker.subscribe('random');
         }})",
        socket = json!(sample_hash().trim_start_matches('/')),
    ))
    .await
    .unwrap();
    page.wait_for("window.opened === true", WAIT).await.unwrap();
    page.eval(
        "broker.publish('random', 'a: b'); broker.subscribe('no:such channel');
         broker.sendTo('bob', 'hi')",
    )
    .await
    .unwrap();
    page.wait_for("got.length >= 1 && errors.length >= 2", WAIT)
        .await
        .unwrap();
    let got = page.eval("got").await.unwrap();
    let last = got.as_array().and_then(|g| g.last()).cloned();
    assert_eq!(last, Some(json!("random a: b")), "{got}");
    let errors = page.eval("errors").await.unwrap();
    let errors: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("no:such channel"), "{errors:?}");
    assert!(errors[1].contains("signed-in sender"), "{errors:?}");
    assert_eq!(page.exceptions(), Vec::<String>::new());
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

/// Opens the chat page in a new tab, signs in as `user` to `room` and waits for the room's
/// WebSocket.
async fn join(browser: &Browser, server: &Server, room: &str, user: &str) -> Result<Page> {
    join_at(browser, &server.url("/"), room, user).await
}

/// [`join`], on the page at `url`.
async fn join_at(browser: &Browser, url: &str, room: &str, user: &str) -> Result<Page> {
    let page = browser.new_page().await?;
    page.goto(url).await?;
    // `lines()`: the texts of the `#messages` items (without their times);
    // `privates()`: those of the private ones; `online()`: the online list's users.
    page.eval(
        "window.lines = () => [...document.querySelectorAll('#messages li .line')].map(l => l.textContent);
         window.privates = () => [...document.querySelectorAll('#messages li.private .line')].map(l => l.textContent);
         window.online = () => [...document.querySelectorAll('#online li')].map(li => li.dataset.user)",
    )
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

/// `/ws-<hash>`: the sample project's broker protocol socket.
fn sample_hash() -> String {
    format!(
        "/ws-{}",
        wisp::messaging::hash::project_hash("QmWispSampleProject", None)
    )
}

/// Signs `user` in to `room` with the sample's sign-in function, as the page does: the
/// room's WebSocket URL, its token naming `user`.
async fn sign_in(server: &Server, room: &str, user: &str) -> String {
    let body = json!({ "name": user, "room": room }).to_string();
    let reply = server.post("/api/chat/signin", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let session: Value = serde_json::from_slice(&reply.body).expect("JSON");
    session["url"].as_str().expect("a URL").to_owned()
}

/// Says `text` in `room` as `user` would from the page (a chat message on the room's
/// socket), and waits for it to come back: by then it is delivered and kept.
async fn say(server: &Server, room: &str, user: &str, text: &str) {
    let mut ws = server.ws(&sign_in(server, room, user).await).await;
    let message = json!({ "user": user, "text": text }).to_string();
    ws.send(Message::text(message.clone())).await.unwrap();
    // The room's history comes first on a fresh socket only with `?last=`: the next frame
    // is this one.
    assert_eq!(
        wisp_e2e::next_text(&mut ws, WAIT).await.as_deref(),
        Some(message.as_str())
    );
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

/// Types `text` into the page's message box as a person would: one `input` event.
async fn type_into(page: &Page, text: &str) -> Result<()> {
    page.eval(&format!(
        "const box = document.getElementById('text');
         box.value = {text};
         box.dispatchEvent(new Event('input', {{ bubbles: true }}))",
        text = json!(text),
    ))
    .await?;
    Ok(())
}

/// Clicks `user` in the page's online list, sends `text` to them, and goes back to the room.
async fn private_message(page: &Page, user: &str, text: &str) -> Result<()> {
    page.eval(&format!(
        "document.querySelector(`#online li[data-user=${{JSON.stringify({user})}}] button`).click()",
        user = json!(user),
    ))
    .await?;
    let to = page
        .eval("document.getElementById('to').hidden ? null : document.getElementById('to-user').textContent")
        .await?;
    anyhow::ensure!(to == json!(user), "the page writes to {to}, not {user}");
    send(page, text).await?;
    page.eval("document.getElementById('to-room').click()")
        .await?;
    Ok(())
}

/// A TCP forwarder on a fixed address, in front of whichever server runs now: the page's
/// origin, across a restart on another port.
struct Forwarder {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let addr = listener.local_addr().expect("a bound listener's address");
        let target = Arc::new(Mutex::new(target));
        let to = target.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = *to.lock().expect("never poisoned");
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { addr, target, task }
    }

    /// New connections go to `target` from now on.
    fn point_at(&self, target: SocketAddr) {
        *self.target.lock().expect("never poisoned") = target;
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// [`Page::wait_for`], failing with what the page shows: its status line, messages and errors.
async fn wait_until(page: &Page, what: &str, condition: &str) -> Result<()> {
    let Err(error) = page.wait_for(condition, WAIT).await else {
        return Ok(());
    };
    let shown = page
        .eval(
            "({ status: document.getElementById('status').textContent,
                notice: document.getElementById('notice').textContent,
                online: [...document.querySelectorAll('#online li')].map(li => li.textContent),
                typing: document.getElementById('typing').textContent,
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

#[tokio::test]
async fn the_client_mends_a_url_glued_to_the_host_as_taubytes_frontends_build_it() {
    let server = sample_server().await;
    let browser = Browser::launch().await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.goto(&server.url("/_wisp/health")).await.unwrap();
    // `ws://host:port${url}`, with the URL in Taubyte's form (no leading slash).
    let glued = format!(
        "ws://{}{}/random",
        server.addr,
        sample_hash().trim_start_matches('/')
    );
    page.eval(&format!(
        "const s = document.createElement('script');
         s.src = '/_wisp/client.js';
         document.head.appendChild(s);
         new Promise((ok) => s.onload = ok).then(() => {{
           window.got = []; window.opened = 0;
           const open = (status) => {{ if (status === 'open') window.opened += 1; }};
           window.listener = Wisp.channel({glued}, {{
             onMessage: (m) => got.push(Wisp.decode(m.data)),
             onStatus: open,
           }});
           window.room = Wisp.channel({glued}, {{ onStatus: open }});
         }})",
        glued = json!(glued),
    ))
    .await
    .unwrap();
    page.wait_for("window.opened === 2", WAIT).await.unwrap();
    page.eval("room.send('mended')").await.unwrap();
    page.wait_for("got.includes('mended')", WAIT).await.unwrap();
    assert_eq!(page.exceptions(), Vec::<String>::new());
}

/// The console at `/` of the admin listener, as an operator opens it: with the token in the
/// address, it lists the sample's routes and resources, shows an invocation once one has
/// run, and tails a channel live.
#[tokio::test]
async fn the_console_lists_what_is_served_and_tails_a_channel() -> Result<()> {
    wisp::metrics::enable();
    let server = sample_server().await;
    let admin = server
        .admin(wisp::server::admin::AdminSettings {
            token: Some("console-secret".into()),
            metrics_open: false,
        })
        .await;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    let text = "document.body.innerText";

    page.goto(&format!("http://{admin}/?token=console-secret"))
        .await?;
    console_wait(&page, "the routes", "/api/publish", "routes").await?;
    console_wait(&page, "the resources", "test-channel", "resources").await?;

    page.eval(
        "document.getElementById('tail-channel').value = 'test-channel';
         document.getElementById('tail-form').requestSubmit(); true",
    )
    .await?;
    console_wait(&page, "the tail", "following test-channel", "tail-state").await?;
    let reply = server
        .post("/api/publish?channel=test-channel", "hello console")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    console_wait(&page, "the tailed message", "hello console", "tail-log").await?;
    console_wait(&page, "the invocation", "publish_message", "invocations").await?;
    let row = page
        .eval(
            "[...document.querySelectorAll('#invocations tr')]
                .map(tr => [...tr.cells].map(td => td.textContent))
                .find(cells => cells[1] === 'publish_message')",
        )
        .await?;
    assert_eq!(row[2], json!("ok"), "the invocation's row: {row}");
    assert_eq!(page.exceptions(), Vec::<String>::new());

    // Without the token the page is not served at all.
    let bare = browser.new_page().await?;
    bare.goto(&format!("http://{admin}/")).await?;
    let shown = bare.eval(text).await?;
    assert!(
        !shown.as_str().unwrap_or("").contains("Routes"),
        "the console was shown without its token: {shown}"
    );
    Ok(())
}

/// Waits until the console's element `id` shows `expected`; on failure, says what it shows.
async fn console_wait(page: &Page, what: &str, expected: &str, id: &str) -> Result<()> {
    let condition = format!("document.getElementById({id:?}).textContent.includes({expected:?})");
    let Err(error) = page.wait_for(&condition, WAIT).await else {
        return Ok(());
    };
    let shown = page
        .eval("document.body.innerText")
        .await
        .unwrap_or_else(|e| json!(format!("unreadable: {e:#}")));
    Err(error).with_context(|| format!("waiting for {what}; the console shows {shown}"))
}
