//! Real `nats-server` processes for the cluster tests: one server, or a NATS cluster
//! of several, on free loopback ports, killed and restarted on demand.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections (or a NATS cluster to link up).
const READY: Duration = Duration::from_secs(15);

/// The `nats-server` binary: `$WISP_NATS_SERVER`, else on `PATH` or in `/usr/sbin`
/// (where Debian's package puts it). Panics, never skips, when there is none.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WISP_NATS_SERVER") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server is not installed: the cluster tests need it. `tests/run` installs \
                 it (Debian package `nats-server`), or set WISP_NATS_SERVER to a nats-server binary"
            )
        })
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
///
/// Ports come from below the kernel's ephemeral range (32768 and up here): a node
/// that keeps reconnecting to a server that is down could otherwise, by chance, get
/// that very port as its own source port (a TCP self-connect), and the server
/// could not bind it again.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Spread test processes apart; within one process, walk forward.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 500) as u16 * 20,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(port < 32_000, "no free port below the ephemeral range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One subscription as the server's monitoring reports it.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The client's name (`wisp <node id>` for a Wisp node).
    pub client: String,
    pub queue: Option<String>,
    /// Messages delivered to it so far.
    pub messages: u64,
}

/// One `nats-server` process (client port, monitoring port, and for a cluster
/// member, a route port), restartable on the same ports.
pub struct NatsServer {
    pub port: u16,
    pub monitor: u16,
    route: Option<u16>,
    peers: Vec<u16>,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
    /// JetStream's store, kept across restarts (lone servers run JetStream; cluster
    /// members only route).
    store: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A lone server on free ports, accepting connections when this returns.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// A lone server on client port `port`.
    pub async fn start_on(port: u16) -> Self {
        let mut server = Self::new(port, None, Vec::new());
        server.store = Some(tempfile::tempdir().expect("a JetStream store folder"));
        server.spawn();
        server.wait_ready().await;
        server
    }

    /// A NATS cluster of `size` servers routed to each other, every route up when
    /// this returns.
    pub async fn cluster(size: usize) -> Vec<Self> {
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let mut servers: Vec<Self> = routes
            .iter()
            .map(|&route| {
                let peers = routes.iter().copied().filter(|&p| p != route).collect();
                Self::new(free_port(), Some(route), peers)
            })
            .collect();
        for server in &mut servers {
            server.spawn();
        }
        for server in &servers {
            server.wait_ready().await;
        }
        for server in &servers {
            server.wait_routes(size - 1).await;
        }
        servers
    }

    fn new(port: u16, route: Option<u16>, peers: Vec<u16>) -> Self {
        Self {
            port,
            monitor: free_port(),
            route,
            peers,
            child: None,
            log: tempfile::NamedTempFile::new().expect("a log file"),
            store: None,
        }
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()]);
        if let Some(store) = &self.store {
            command.arg("-js").arg("-sd").arg(store.path());
        }
        if let Some(route) = self.route {
            let peers: Vec<String> = self
                .peers
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            command
                .args(["--cluster_name", "wisp-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
                .args(["--routes", &peers.join(",")]);
        }
        let log = self.log.reopen().expect("the log file");
        let err = log.try_clone().expect("the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {}: {e} (`tests/run` installs nats-server)",
                    binary().display()
                )
            });
        self.child = Some(child);
    }

    /// Kills the server at once (SIGKILL: no goodbye to its clients or routes).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports; returns once it accepts
    /// connections (and, for a cluster member, has its routes back).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < READY,
                "nats-server on port {} did not start; its log:\n{}",
                self.port,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_routes(&self, routes: usize) {
        let started = Instant::now();
        loop {
            let routez = self.monitor_json("/routez").await;
            if routez["num_routes"].as_u64() >= Some(routes as u64) {
                return;
            }
            assert!(
                started.elapsed() < READY,
                "nats-server on port {} has {} routes, not {routes}; its log:\n{}",
                self.port,
                routez["num_routes"],
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// GETs `path` from the monitoring port, as JSON (`Null` if it is not up).
    pub async fn monitor_json(&self, path: &str) -> serde_json::Value {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.monitor)).await
        else {
            return serde_json::Value::Null;
        };
        // HTTP/1.0, so that the answer is never chunked.
        let request = format!("GET {path} HTTP/1.0\r\nHost: nats\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            return serde_json::Value::Null;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }

    /// The subscriptions on `subject` that this server's own clients hold (not
    /// those of other servers, reached through routes).
    pub async fn subscriptions(&self, subject: &str) -> Vec<Subscription> {
        let connz = self.monitor_json("/connz?subs=detail&limit=1024").await;
        let mut found = Vec::new();
        for connection in connz["connections"].as_array().into_iter().flatten() {
            let details = connection["subscriptions_list_detail"].as_array();
            for sub in details.into_iter().flatten() {
                if sub["subject"].as_str() == Some(subject) {
                    found.push(Subscription {
                        client: connection["name"].as_str().unwrap_or_default().to_owned(),
                        queue: sub["qgroup"].as_str().map(str::to_owned),
                        messages: sub["msgs"].as_u64().unwrap_or(0),
                    });
                }
            }
        }
        found
    }

    /// Waits until this server holds `plain` plain and `queued` queue subscriptions
    /// on `subject` from its clients.
    pub async fn wait_subscriptions(&self, subject: &str, plain: usize, queued: usize) {
        let started = Instant::now();
        loop {
            let subs = self.subscriptions(subject).await;
            let have_queued = subs.iter().filter(|s| s.queue.is_some()).count();
            let have_plain = subs.len() - have_queued;
            if have_plain == plain && have_queued == queued {
                return;
            }
            assert!(
                started.elapsed() < READY,
                "subject {subject}: {have_plain} plain and {have_queued} queue subscriptions, \
                 expected {plain} and {queued}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The names of the clients connected to this server.
    pub async fn client_names(&self) -> Vec<String> {
        let connz = self.monitor_json("/connz?limit=1024").await;
        connz["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
