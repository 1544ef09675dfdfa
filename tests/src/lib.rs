//! Test harness: guests built from source, throwaway projects, a real server on
//! 127.0.0.1:0 and a real HTTP client.

pub mod cdp;
pub mod nats;
pub mod upstream;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use wisp::load::LoadOptions;
use wisp::messaging::broker::LocalBroker;
use wisp::runtime::cache::ModuleCache;
use wisp::server::{App, ServerConfig};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Compiled modules shared by every test run, kept under target/.
fn cache() -> ModuleCache {
    ModuleCache::in_dir(repo().join("target").join("wisp-test-cache"))
}

/// The wasm artifacts of a guest workspace, built once per test process.
fn built(workspace: &'static str) -> &'static HashMap<String, PathBuf> {
    static SAMPLES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    static TEST_GUESTS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let cell = match workspace {
        "sample-functions" => &SAMPLES,
        _ => &TEST_GUESTS,
    };
    cell.get_or_init(|| {
        wisp::builder::ensure_target(wisp::builder::GUEST_TARGET).expect("adding the wasm target");
        wisp::builder::build_crate(&repo().join(workspace)).expect("building guests")
    })
}

/// A sample guest (`sample-functions/<name>`).
pub fn sample_wasm(name: &str) -> PathBuf {
    lookup(built("sample-functions"), name)
}

/// A test-only guest (`tests/guests/<name>`).
pub fn test_wasm(name: &str) -> PathBuf {
    lookup(built("tests/guests"), name)
}

fn lookup(artifacts: &HashMap<String, PathBuf>, name: &str) -> PathBuf {
    artifacts
        .get(name)
        .unwrap_or_else(|| panic!("no guest `{name}` was built; have {:?}", artifacts.keys()))
        .clone()
}

/// A throwaway project folder.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        std::fs::write(
            dir.path().join("config.yaml"),
            "id: test-project\nname: test\n",
        )
        .expect("writing config.yaml");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` (creating folders) with `contents`.
    pub fn file(&self, rel: &str, contents: &str) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent"))
            .expect("creating folders");
        std::fs::write(path, contents).expect("writing a project file");
        self
    }

    /// Adds a pub/sub function `name` calling export `call` of `wasm` for each message
    /// on `channel` (`local`: this node's messages only).
    pub fn pubsub_function(
        &self,
        name: &str,
        call: &str,
        channel: &str,
        local: bool,
        wasm: &Path,
    ) -> &Self {
        let yaml = format!(
            "source: .\ntrigger:\n  type: pubsub\n  channel: {channel}\n  local: {local}\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: {call}\n"
        );
        self.file(&format!("functions/{name}.yaml"), &yaml);
        self.artifact(name, wasm)
    }

    /// Compiles WAT text to a real wasm binary in the project folder; returns its path
    /// (to hand to [`Self::http_function`]).
    pub fn wat(&self, name: &str, wat: &str) -> PathBuf {
        let bytes = wat::parse_str(wat).expect("valid WAT");
        let path = self.path().join(format!("{name}.bin"));
        std::fs::write(&path, bytes).expect("writing wasm");
        path
    }

    /// Copies a wasm (or any) file to `artifacts/<name>.wasm`.
    pub fn artifact(&self, name: &str, wasm: &Path) -> &Self {
        let dest = self.path().join("artifacts").join(format!("{name}.wasm"));
        std::fs::create_dir_all(dest.parent().expect("artifacts/")).expect("creating artifacts/");
        std::fs::copy(wasm, dest).expect("copying a wasm file");
        self
    }

    /// Adds an HTTP function `name` calling export `call` of `artifacts/<name>.wasm`,
    /// with a 5 s timeout and 64 MB of memory.
    pub fn http_function(
        &self,
        name: &str,
        method: &str,
        path: &str,
        call: &str,
        wasm: &Path,
    ) -> &Self {
        self.http_function_limited(name, method, path, call, wasm, "5s", "64MB")
    }

    /// Like [`Self::http_function`], with the given `execution.timeout` and `memory`.
    #[allow(clippy::too_many_arguments)]
    pub fn http_function_limited(
        &self,
        name: &str,
        method: &str,
        path: &str,
        call: &str,
        wasm: &Path,
        timeout: &str,
        memory: &str,
    ) -> &Self {
        let yaml = format!(
            "description: test function\nsource: .\ntrigger:\n  type: https\n  method: {method}\n  paths:\n    - {path}\nexecution:\n  timeout: {timeout}\n  memory: {memory}\n  call: {call}\n"
        );
        self.file(&format!("functions/{name}.yaml"), &yaml);
        self.artifact(name, wasm)
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// A project with the `pubsub_probe` test guest: channels `probe-out` (where its
/// pub/sub functions report) and `room/*`, both with the WebSocket bridge, and
/// `loop`; `POST /publish?channel=` (see [`publish`]); pub/sub functions `relay` on
/// `room/relay` and `echo_back` on `loop`.
pub fn probe_project() -> Project {
    let p = Project::new();
    p.file(
        "messaging/probe.yaml",
        "matcher: probe-out\nwebsocket: true\n",
    );
    p.file(
        "messaging/rooms.yaml",
        "channel:\n  regex: true\n  match: room/.*\nbridges:\n  websocket:\n    enable: true\n",
    );
    p.file("messaging/loop.yaml", "matcher: loop\n");
    let wasm = test_wasm("pubsub_probe");
    p.http_function("publish", "POST", "/publish", "publish", &wasm);
    p.pubsub_function("relay", "relay", "room/relay", false, &wasm);
    p.pubsub_function("echo_back", "echo_back", "loop", false, &wasm);
    p
}

/// Publishes `body` on `channel` through the `POST /publish` of [`probe_project`].
pub async fn publish(server: &Server, channel: &str, body: &str) -> Reply {
    server
        .post(&format!("/publish?channel={channel}"), body.to_owned())
        .await
}

/// How the test servers load projects: 64 invocations at once, the shared cache.
fn test_options() -> LoadOptions {
    LoadOptions {
        invocations: wisp::runtime::deployment::InvocationLimits {
            concurrent: 64,
            ..Default::default()
        },
        cache: cache(),
    }
}

/// Sets the process up as `wisp serve` does (the allocator's thresholds), and
/// with `WISP_TEST_LOG=debug cargo test ...` shows the servers' log.
fn init_test_process() {
    wisp::allocator::return_freed_memory();
    if std::env::var_os("WISP_TEST_LOG").is_some() {
        install_subscriber();
    }
}

/// Whether [`guest_log`] has been asked for: until then nothing is kept.
static CAPTURING: AtomicBool = AtomicBool::new(false);
/// What guests printed since [`CAPTURING`] was set, as the log writes it.
static GUEST_LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Installs the process's one tracing subscriber, the first time a test needs it:
/// many tests share a process, and a global subscriber can be set only once. It
/// writes the servers' log to the test output when `WISP_TEST_LOG` is set (its
/// value is the filter), and keeps what guests print (the `guest` target, at info)
/// for [`guest_log`] once a test has asked for it.
fn install_subscriber() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let shown = std::env::var("WISP_TEST_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::new(filter))
        });
        let guest = tracing_subscriber::filter::filter_fn(|meta| {
            CAPTURING.load(Ordering::Relaxed)
                && meta.target() == "guest"
                && *meta.level() <= tracing::Level::INFO
        })
        .with_max_level_hint(tracing::Level::INFO);
        let kept = tracing_subscriber::fmt::layer()
            .with_writer(GuestLog)
            .with_ansi(false)
            .with_filter(guest);
        tracing_subscriber::registry()
            .with(shown)
            .with(kept)
            .try_init()
            .expect("no other tracing subscriber in a test process");
    });
}

/// Starts keeping what guests print into the host's log (the `guest` target) and
/// returns the handle to read it. One log for the whole process: it holds what
/// every test's guests printed from the first call on.
pub fn guest_log() -> GuestLog {
    CAPTURING.store(true, Ordering::Relaxed);
    install_subscriber();
    GuestLog
}

/// The guests' log kept since [`guest_log`] was first called.
#[derive(Clone, Copy)]
pub struct GuestLog;

impl GuestLog {
    /// Everything kept so far, in the log's text format (each line names its
    /// function as `function=<name>`).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&GUEST_LOG.lock().expect("guest log")).into_owned()
    }
}

impl std::io::Write for GuestLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        GUEST_LOG.lock().expect("guest log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for GuestLog {
    type Writer = GuestLog;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// The default server settings, except that every test client comes from
/// 127.0.0.1 and some tests publish faster than a person would: the connection
/// and publish-rate limits are lifted (their own tests set them).
pub fn test_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.connections.max_per_client = config.connections.max_total;
    config.websocket.publish_rate = 0;
    config
}

/// Where test servers listen: 127.0.0.1, on a port the system picks.
const ANY_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// A Wisp server running in this process on 127.0.0.1:0.
pub struct Server {
    pub addr: SocketAddr,
    /// The broker protocol's own listener (`--broker-listen`), if it was started with one.
    pub broker_addr: Option<SocketAddr>,
    /// `--redirect-http`'s listener, if it was started with one.
    pub redirect_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<()>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    /// A cluster node's own runtime, so that the node can die at once ([`Server::kill`]).
    runtime: Option<tokio::runtime::Runtime>,
    /// What it serves, for [`Server::reload`].
    app: Arc<App>,
}

/// The state engine of test servers of `project`: an SQLite file of this test process's
/// own, one per project folder, so a restarted server finds its data and runs of the
/// suite never see each other's.
pub fn data_of(project: &Path) -> Arc<dyn wisp::state::StateEngine> {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().expect("a temporary folder"));
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(project, &mut hasher);
    let name = format!("{:016x}", std::hash::Hasher::finish(&hasher));
    Arc::new(wisp::state::sqlite::Sqlite::in_dir(&root.path().join(name)))
}

/// What a test server listens with besides its main listener.
#[derive(Clone, Default)]
pub struct Listening {
    /// The broker protocol at `/` of a second listener, as `--broker-listen` does.
    pub broker: bool,
    /// HTTPS and WSS, as `--tls-cert` and `--tls-key` do.
    pub tls: Option<wisp::server::tls::Tls>,
    /// A plain listener redirecting to HTTPS, as `--redirect-http` does.
    pub redirect: bool,
}

/// A listener on 127.0.0.1, on a port the system picks, if `wanted`.
async fn extra_listener(wanted: bool) -> (Option<tokio::net::TcpListener>, Option<SocketAddr>) {
    if !wanted {
        return (None, None);
    }
    let listener = tokio::net::TcpListener::bind(ANY_PORT)
        .await
        .expect("binding 127.0.0.1:0");
    let addr = listener.local_addr().expect("a bound listener's address");
    (Some(listener), Some(addr))
}

/// Loads `project` (panicking with the problems if it is invalid), starts its app
/// on `broker` and serves it on `addr` (127.0.0.1:0 but for a restart on the same
/// port), on the runtime this runs on: how every test server starts.
async fn serve(
    project: &Path,
    options: &LoadOptions,
    broker: Arc<dyn wisp::messaging::broker::Broker>,
    state: Arc<dyn wisp::state::StateEngine>,
    config: ServerConfig,
    addr: SocketAddr,
    listening: Listening,
) -> Server {
    let loaded = match wisp::load::load(project, options) {
        Ok(loaded) => loaded,
        Err(error) => panic!("project {} did not load:\n{error}", project.display()),
    };
    let app = App::start(loaded, broker, state, config);
    let served = app.clone();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    // `--broker-listen`'s and `--redirect-http`'s listeners, when asked for, on other
    // ports the system picks.
    let (broker_listener, broker_addr) = extra_listener(listening.broker).await;
    let (redirect_listener, redirect_addr) = extra_listener(listening.redirect).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let running = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        let listeners = wisp::server::Listeners {
            main: listener,
            broker: broker_listener,
            redirect: redirect_listener,
            tls: listening.tls,
        };
        wisp::server::run(listeners, app, shutdown)
            .await
            .expect("server failed");
    });
    Server {
        addr,
        broker_addr,
        redirect_addr,
        shutdown: Some(tx),
        running: Some(running),
        client: Client::builder(TokioExecutor::new()).build_http(),
        runtime: None,
        app: served,
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Server {
    /// The state engine of test servers of `project` (see [`data_of`]).
    pub fn data_of(project: &Path) -> Arc<dyn wisp::state::StateEngine> {
        data_of(project)
    }

    /// Loads `project` (panicking with the problems if it is invalid) and serves it
    /// with [`test_config`].
    pub async fn start(project: &Path) -> Self {
        Self::start_with(project, test_config()).await
    }

    pub async fn start_with(project: &Path, config: ServerConfig) -> Self {
        Self::start_loaded(project, &test_options(), config).await
    }

    /// A cluster node: `project` served with [`test_config`] and a
    /// [`NatsBroker`](wisp::messaging::nats::NatsBroker), on a runtime of its own
    /// (two threads) so that [`Server::kill`] can end it the way a crash would.
    pub async fn start_node(project: &Path, cluster: wisp::messaging::nats::NatsConfig) -> Self {
        Self::start_node_with(project, cluster, test_config()).await
    }

    /// Like [`Self::start_node`], with `config` (a token key all nodes share, say).
    pub async fn start_node_with(
        project: &Path,
        cluster: wisp::messaging::nats::NatsConfig,
        config: ServerConfig,
    ) -> Self {
        init_test_process();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wisp-node")
            .enable_all()
            .build()
            .expect("a node runtime");
        let project = project.to_owned();
        // The broker's tasks and the server's must run on the node's runtime.
        let started = runtime.spawn(async move {
            let broker = wisp::messaging::nats::NatsBroker::connect(cluster)
                .await
                .expect("a valid cluster configuration");
            // State in JetStream, shared by every node, as `wisp serve --cluster` keeps it.
            let state = Arc::new(wisp::state::jetstream::JetStream::new(broker.client()));
            serve(
                &project,
                &test_options(),
                Arc::new(broker),
                state,
                config,
                ANY_PORT,
                Listening::default(),
            )
            .await
        });
        let mut server = started.await.expect("the node started");
        server.runtime = Some(runtime);
        server
    }

    /// Ends a node started with [`Server::start_node`] at once: every task and
    /// connection dropped, nothing drained, as if the process died.
    pub fn kill(&mut self) {
        self.shutdown.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Like [`Self::start_with`], with the given load options.
    pub async fn start_loaded(project: &Path, options: &LoadOptions, config: ServerConfig) -> Self {
        Self::start_loaded_at(project, options, config, ANY_PORT, Listening::default()).await
    }

    /// `project` served with [`test_config`] and the extra listeners (or TLS) of
    /// `listening`.
    pub async fn start_listening(project: &Path, listening: Listening) -> Self {
        Self::start_loaded_at(project, &test_options(), test_config(), ANY_PORT, listening).await
    }

    /// `project` served with [`test_config`] on `addr`: a server restarted where the
    /// last one was, for clients that reconnect to the address they knew.
    pub async fn start_at(project: &Path, addr: SocketAddr) -> Self {
        let listening = Listening::default();
        Self::start_loaded_at(project, &test_options(), test_config(), addr, listening).await
    }

    /// `project` served with [`test_config`], and the broker protocol also at `/` of a
    /// second listener ([`Server::broker_addr`]), as `wisp serve --broker-listen` does.
    pub async fn start_with_broker_listener(project: &Path) -> Self {
        let listening = Listening {
            broker: true,
            ..Listening::default()
        };
        Self::start_loaded_at(project, &test_options(), test_config(), ANY_PORT, listening).await
    }

    async fn start_loaded_at(
        project: &Path,
        options: &LoadOptions,
        config: ServerConfig,
        addr: SocketAddr,
        listening: Listening,
    ) -> Self {
        init_test_process();
        let state = data_of(project);
        let broker = Arc::new(LocalBroker::new());
        serve(project, options, broker, state, config, addr, listening).await
    }

    /// Starts a graceful shutdown; the handle completes when the server has.
    pub fn begin_shutdown(&mut self) -> tokio::task::JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.running.take().expect("the server is running")
    }

    /// An admin listener (`--admin-listen`) for this server, on a port the system picks,
    /// with `settings`. Counting must have started before the server did
    /// ([`wisp::metrics::enable`]) for every count to be there.
    pub async fn admin(&self, settings: wisp::server::admin::AdminSettings) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind(ANY_PORT)
            .await
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound listener's address");
        tokio::spawn(wisp::server::admin::serve(
            listener,
            self.app.clone(),
            settings,
        ));
        addr
    }

    /// Loads `project` afresh and swaps it in, as `wisp dev` and SIGHUP do; the new
    /// deployment's number, or why it was refused.
    pub async fn reload(&self, project: &Path) -> Result<u64, String> {
        let (project, options) = (project.to_owned(), test_options());
        let loaded = tokio::task::spawn_blocking(move || wisp::load::load(&project, &options))
            .await
            .expect("loading did not panic")
            .map_err(|error| error.to_string())?;
        let generation = self.app.reload(loaded).await.map_err(|e| e.to_string())?;
        Ok(generation.number)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.send(Method::POST, path, &[], body.into()).await
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).expect("a valid request");
        let response = self.client.request(req).await.expect("the server answered");
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .expect("reading the response body")
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // A node's runtime cannot be dropped inside the test's runtime; this may.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A guest whose export `handler` answers `ok`.
pub const OK_WAT: &str = r#"(module
    (import "taubyte/sdk" "eventHttpWrite" (func $write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 8) "ok")
    (func (export "handler") (param $id i32)
        (drop (call $write (local.get $id) (i32.const 8) (i32.const 2) (i32.const 64)))))"#;

/// A WebSocket client connection.
pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Server {
    /// Connects a WebSocket client to `path` (with or without a leading slash).
    pub async fn ws(&self, path: &str) -> WsClient {
        self.try_ws(path)
            .await
            .unwrap_or_else(|e| panic!("WebSocket connection to {path} failed: {e}"))
    }

    /// Connects, or returns the error (a refused upgrade carries its HTTP status).
    pub async fn try_ws(
        &self,
        path: &str,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://{}/{}", self.addr, path.trim_start_matches('/'));
        tokio_tungstenite::connect_async(url)
            .await
            .map(|(ws, _)| ws)
    }
}

/// The WebSocket path of `channel` in the test projects (`config.yaml` id `test-project`).
pub fn ws_path(channel: &str) -> String {
    format!(
        "ws-{}/{channel}",
        wisp::messaging::hash::project_hash("test-project", None)
    )
}

/// The next data frame's text (binary frames as lossy UTF-8), or `None` after `wait`.
pub async fn next_text<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    wait: std::time::Duration,
) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        match frame {
            Message::Text(text) => return Some(text.to_string()),
            Message::Binary(data) => return Some(String::from_utf8_lossy(&data).into_owned()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end however
/// it ends: the status (if a status line came) and everything received. For tests
/// whose responses may be cut off on purpose.
pub async fn raw_get(addr: SocketAddr, path: &str) -> (Option<u16>, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: wisp\r\nConnection: close\r\n\r\n");
    raw_exchange(addr, request.as_bytes(), std::time::Duration::from_secs(30)).await
}

/// Sends `request` as it is on a fresh connection and reads until the server closes it
/// (at most `wait`): the status, if a status line came, and everything received.
pub async fn raw_exchange(
    addr: SocketAddr,
    request: &[u8],
    wait: std::time::Duration,
) -> (Option<u16>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write a request");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    (status, answer)
}

/// The sample project in `config/`, built once per test process (`wisp build`), and
/// served.
pub async fn sample_server() -> Server {
    Server::start(&built_samples()).await
}

/// The sample project, served with the extra listeners (or TLS) of `listening`.
pub async fn sample_server_listening(listening: Listening) -> Server {
    Server::start_listening(&built_samples(), listening).await
}

/// The sample project, served with the broker protocol's own listener too.
pub async fn sample_server_with_broker_listener() -> Server {
    Server::start_with_broker_listener(&built_samples()).await
}

/// The sample project's folder, its functions built once per test process.
fn built_samples() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = repo().join("config");
    BUILT.call_once(|| {
        let loaded = wisp::project::load(&dir);
        let project = loaded.project.expect("the sample project is valid");
        wisp::builder::build_project(&project).expect("building the samples");
    });
    dir
}

/// The sample project served again on `addr`, where a stopped [`sample_server`] was.
pub async fn sample_server_at(addr: SocketAddr) -> Server {
    Server::start_at(&repo().join("config"), addr).await
}

/// Reads until the server closes `ws`: the close code it sent, or `None` if the
/// connection ended without one (or nothing came within `wait`).
pub async fn close_code(
    ws: &mut WsClient,
    wait: std::time::Duration,
) -> Option<tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(wait, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
