//! A small Chrome DevTools Protocol client for browser tests: launches headless Chromium,
//! opens pages, and runs JavaScript in them.
//!
//! Only what the tests need: `Target.createTarget` and `Target.attachToTarget` with flattened
//! sessions (every page talks over the browser's one WebSocket, tagged with its `sessionId`),
//! `Page.navigate` and `Runtime.evaluate`. Uncaught page exceptions are collected so a failing
//! test can show them.

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Chromium starts in well under a second; a cold start on a loaded CI machine can take several.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Every command used here answers in milliseconds; longer means the browser is stuck.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Page::goto`] waits for the page to finish loading.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two checks of a [`Page::wait_for`] condition.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Headless, quiet and self-contained: no GPU, sandbox (containers run tests as root), network
/// chatter or shared memory (containers give /dev/shm 64 MB). Not `--disable-crashpad-for-testing`:
/// outside Chromium's own harness it crash-loops the network service (FD ownership violation).
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
];

const HOW_TO_GET_CHROMIUM: &str = "the browser tests need Chromium: run `tests/run` (it installs \
     it), or `apt-get install chromium`, or set WISP_CHROMIUM to a Chromium or Chrome binary";

/// A headless Chromium, killed (with all its helper processes) on drop.
pub struct Browser {
    conn: Arc<Connection>,
    _process: Process,
}

/// A tab, attached through its own CDP session.
pub struct Page {
    conn: Arc<Connection>,
    session: String,
}

impl Browser {
    /// Starts `$WISP_CHROMIUM` (default `chromium` on PATH) with a fresh profile and connects.
    pub async fn launch() -> Result<Self> {
        Self::launch_with(&[]).await
    }

    /// [`Browser::launch`] with `flags` besides the usual ones
    /// (`--ignore-certificate-errors` for a server with a self-signed certificate).
    pub async fn launch_with(flags: &[&str]) -> Result<Self> {
        let binary = std::env::var_os("WISP_CHROMIUM").unwrap_or_else(|| "chromium".into());
        let profile = tempfile::tempdir().context("creating a Chromium profile dir")?;
        let mut command = Command::new(&binary);
        command
            .args(FLAGS)
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A group of its own, so that drop can kill the renderers and zygotes too.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours. It makes the kernel
        // kill Chromium if this test process dies without running drop (a Ctrl-C, a crash),
        // since a group of its own no longer gets the terminal's signals.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            })
        };
        let mut child = command.spawn().map_err(|e| {
            anyhow!(
                "cannot run `{}` ({e}): {HOW_TO_GET_CHROMIUM}",
                binary.to_string_lossy()
            )
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let process = Process {
            child,
            _profile: profile,
        };

        // Chromium prints `DevTools listening on ws://...` on stderr once it is ready.
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
            let mut seen = Vec::new();
            let url = lines.by_ref().find_map(|line| {
                let url = line
                    .strip_prefix("DevTools listening on ")
                    .map(str::to_owned);
                seen.push(line);
                url
            });
            let _ = tx.send(url.ok_or_else(|| seen[seen.len().saturating_sub(20)..].join("\n")));
            lines.for_each(drop); // Keep draining, so Chromium never blocks on a full pipe.
        });
        let url = match tokio::time::timeout(LAUNCH_TIMEOUT, rx).await {
            Err(_) => bail!("Chromium printed no DevTools address in {LAUNCH_TIMEOUT:?}"),
            Ok(Err(_)) => bail!("the thread reading Chromium's stderr died"),
            Ok(Ok(Err(stderr))) => bail!("Chromium exited without starting; its stderr:\n{stderr}"),
            Ok(Ok(Ok(url))) => url,
        };
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting to Chromium at {url}"))?;
        Ok(Self {
            conn: Connection::start(ws),
            _process: process,
        })
    }

    /// Opens a blank tab.
    pub async fn new_page(&self) -> Result<Page> {
        let params = json!({ "url": "about:blank" });
        let target = self.conn.call("Target.createTarget", params, None).await?;
        let target_id = target["targetId"].as_str().context("no targetId")?;
        let params = json!({ "targetId": target_id, "flatten": true });
        let attached = self
            .conn
            .call("Target.attachToTarget", params, None)
            .await?;
        let session = attached["sessionId"].as_str().context("no sessionId")?;
        let page = Page {
            conn: self.conn.clone(),
            session: session.to_owned(),
        };
        page.call("Runtime.enable", json!({})).await?; // For `Runtime.exceptionThrown`.
        Ok(page)
    }
}

impl Page {
    /// Loads `url` and waits until its document is complete.
    pub async fn goto(&self, url: &str) -> Result<()> {
        let navigated = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = navigated["errorText"].as_str() {
            bail!("loading {url}: {error}");
        }
        // Until the new document commits, `document` may still be the old about:blank one.
        let loaded = format!(
            "location.href === new URL({}).href && document.readyState === 'complete'",
            json!(url)
        );
        self.wait_for(&loaded, LOAD_TIMEOUT)
            .await
            .with_context(|| format!("loading {url}"))
    }

    /// Evaluates the JavaScript expression `js` (awaiting it if it is a promise) and returns
    /// its value as JSON (`null` for `undefined`); an exception is an error.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let params = json!({ "expression": js, "awaitPromise": true, "returnByValue": true });
        let mut reply = self.call("Runtime.evaluate", params).await?;
        if let Some(details) = reply.get("exceptionDetails") {
            bail!("`{js}` threw: {}", describe(details));
        }
        Ok(reply["result"]["value"].take())
    }

    /// Polls the expression `condition` until it evaluates to `true`, or fails after `timeout`
    /// saying what it evaluated to last.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.eval(condition).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(value) => format!("it was {value}"),
                Err(error) => format!("{error:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                bail!("`{condition}` was not true after {timeout:?}: {last}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Uncaught exceptions the page has thrown so far, as the DevTools console shows them.
    pub fn exceptions(&self) -> Vec<String> {
        let all = lock(&self.conn.exceptions);
        all.get(&self.session).cloned().unwrap_or_default()
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.conn.call(method, params, Some(&self.session)).await
    }
}

/// The text of a CDP `ExceptionDetails`.
fn describe(details: &Value) -> String {
    let description = details["exception"]["description"].as_str();
    description
        .or(details["text"].as_str())
        .unwrap_or("an exception")
        .to_owned()
}

/// The browser's DevTools WebSocket: commands out, answers matched back to them by id.
struct Connection {
    next_id: AtomicU64,
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
    /// Uncaught exceptions by session id.
    exceptions: Mutex<HashMap<String, Vec<String>>>,
}

impl Connection {
    /// Spawns the task that owns the socket, writing commands and dispatching what arrives.
    fn start(mut ws: crate::WsClient) -> Arc<Self> {
        let (outgoing, mut rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Self {
            next_id: AtomicU64::new(1),
            outgoing,
            pending: Mutex::default(),
            exceptions: Mutex::default(),
        });
        let weak = Arc::downgrade(&conn);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    command = rx.recv() => {
                        let Some(command) = command else { break };
                        if ws.send(command).await.is_err() {
                            break;
                        }
                    }
                    incoming = ws.next() => match (incoming, weak.upgrade()) {
                        (Some(Ok(Message::Text(text))), Some(conn)) => conn.dispatch(&text),
                        (Some(Ok(_)), Some(_)) => {}
                        _ => break,
                    },
                }
            }
            // Fail the commands still waiting, rather than letting them time out.
            if let Some(conn) = weak.upgrade() {
                lock(&conn.pending).clear();
            }
        });
        conn
    }

    /// Sends one command (to a page's session if given) and waits for its answer.
    async fn call(&self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = session.into();
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let closed = || anyhow!("{method}: the connection to Chromium is closed");
        self.outgoing
            .send(Message::text(command.to_string()))
            .map_err(|_| closed())?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Err(_) => bail!("{method}: Chromium did not answer in {CALL_TIMEOUT:?}"),
            Ok(Err(_)) => Err(closed()),
            Ok(Ok(reply)) => reply.map_err(|error| anyhow!("{method} failed: {error}")),
        }
    }

    /// Hands an answer to the command waiting for it, or records an event the tests want.
    fn dispatch(&self, text: &str) {
        let Ok(mut message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let Some(id) = message["id"].as_u64() {
            if let Some(tx) = lock(&self.pending).remove(&id) {
                let _ = tx.send(match message.get("error") {
                    Some(error) => Err(error.to_string()),
                    None => Ok(message["result"].take()),
                });
            }
        } else if message["method"] == "Runtime.exceptionThrown" {
            let session = message["sessionId"].as_str().unwrap_or_default().to_owned();
            let text = describe(&message["params"]["exceptionDetails"]);
            lock(&self.exceptions)
                .entry(session)
                .or_default()
                .push(text);
        }
    }
}

/// Nothing panics while holding these locks, so none is ever poisoned.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("no panics while locked")
}

/// The Chromium process and its profile folder.
struct Process {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        // The child leads its own process group (see `launch`), and is not reaped until the
        // `wait` below, so the group id cannot have been reused.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
        // The profile folder is removed after this, once nothing writes to it.
    }
}
