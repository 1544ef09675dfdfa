//! The `wisp` command: serve, check and build Taubyte-style projects.

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use wisp::abi::http_event::HttpLimits;
use wisp::egress::{Allow, EgressSettings};
use wisp::load::{LoadOptions, Problems};
use wisp::messaging::broker::{Broker, LocalBroker};
use wisp::messaging::functions::SubscriptionLimits;
use wisp::messaging::nats::{
    check_node_id, default_node_id, redact, NatsBroker, NatsConfig, QueueLimits,
};
use wisp::messaging::token::{Jwt, JwtAlgorithm, Tokens};
use wisp::project::{GoDuration, Size};
use wisp::runtime::cache::ModuleCache;
use wisp::runtime::deployment::InvocationLimits;
use wisp::server::limits::ConnectionLimits;
use wisp::server::tls::certificates::TlsFiles;
use wisp::server::tls::Tls;
use wisp::server::websocket::WebSocketLimits;
use wisp::server::{App, ServerConfig, DEFAULT_LISTEN};
use wisp::state::jetstream::JetStream;
use wisp::state::sqlite::Sqlite;
use wisp::state::StateEngine;

mod settings;

#[derive(Parser)]
#[command(name = "wisp", version, about = "Run Taubyte-style WebAssembly functions over HTTP", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a project's functions over HTTP
    #[command(after_help = format!(
        "Logs go to stderr. {LOG_ENV} chooses what is logged, as a tracing filter \
         (`debug`, `warn`, `wisp=debug,info`) [default: {SERVE_LOG_FILTER}]. They are \
         coloured only on a terminal, and never when NO_COLOR is set."
    ))]
    #[command(after_help = format!(
        "Logs go to stderr. {LOG_ENV} chooses what is logged, as a tracing filter \
         (`debug`, `warn`, `wisp=debug,info`) [default: {SERVE_LOG_FILTER}]. They are \
         coloured only on a terminal, and never when NO_COLOR is set. SIGHUP reloads the \
         project (building it first with --build) without a restart, as `wisp dev` does \
         on each change."
    ))]
    Serve(Box<ServeArgs>),
    /// Serve a project, rebuilding and reloading it on every change, without a restart
    #[command(
        after_help = "Watches the project folder and the guest crates its functions name \
         under `wisp.build` (not their target/ folders), and after each change (quiet for \
         150 ms) runs `wisp build` and swaps the new deployment in: requests and events in \
         flight finish on the old code, new ones run the new, and WebSocket clients stay \
         connected. A change that does not build or load is printed and the old deployment \
         goes on serving. Takes every `serve` option; --build is implied."
    )]
    Dev(Box<ServeArgs>),
    /// Check a project folder and its wasm files; print every problem found
    Check(CheckArgs),
    /// Build the guest crates that function YAML names under `wisp.build`
    Build(ProjectArg),
}

#[derive(Args)]
struct ProjectArg {
    /// The project folder (Taubyte layout: config.yaml, functions/, messaging/, ...)
    #[arg(default_value = "config")]
    project: PathBuf,
}

#[derive(Args)]
struct CacheArgs {
    /// Where compiled modules are cached [default: $XDG_CACHE_HOME/wisp, else ~/.cache/wisp]
    #[arg(long, value_name = "DIR", env = "WISP_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every module afresh and keep nothing on disk
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    fn cache(&self) -> ModuleCache {
        match (&self.cache_dir, self.no_cache) {
            (_, true) => ModuleCache::disabled(),
            (Some(dir), false) => ModuleCache::in_dir(dir),
            (None, false) => {
                ModuleCache::default_dir().map_or_else(ModuleCache::disabled, ModuleCache::in_dir)
            }
        }
    }
}

/// `serve`'s options. Each default is the library's own (`ServerConfig::default()`,
/// `InvocationLimits::default()`, ...), shown from there in `--help`; none is written
/// here.
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Read settings from a YAML file whose keys are these options' long names
    /// (`listen: 127.0.0.1:9000`, `cluster: [nats://a:4222]`, `project: site`); a flag on
    /// the command line beats its environment variable, which beats the file, which
    /// beats the default. `--config` and WISP_CONFIG, the older names, still work
    #[arg(
        id = settings::OPTION,
        long = "settings",
        alias = "config",
        value_name = "FILE",
        env = SETTINGS_ENV
    )]
    settings: Option<PathBuf>,
    /// Address to listen on: HOST:PORT, a bare PORT or :PORT (on 127.0.0.1, the
    /// default's host; give 0.0.0.0:PORT for every interface), or a bare HOST (port 8080)
    #[arg(long, default_value_t = Listen::from(DEFAULT_LISTEN), value_name = "ADDR")]
    listen: Listen,
    /// The port to listen on, on --listen's host (it replaces --listen's port):
    /// `--listen 0.0.0.0 --port 9000` is 0.0.0.0:9000
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Also listen here for the broker tutorial's protocol alone, at `/`
    /// (`ws://ADDR/`: SUBSCRIBE:<channel>, UNSUBSCRIBE:<channel>,
    /// PUBLISH:<channel>:<content>), for the project's channels. The main port serves the
    /// same protocol at /ws-<project hash>
    /// (HOST:PORT, PORT or :PORT, as --listen)
    #[arg(long, value_name = "ADDR")]
    broker_listen: Option<Listen>,
    /// Run `wisp build` first
    #[arg(long)]
    build: bool,
    /// Serve /metrics (Prometheus text format) and the console (at /) on this address;
    /// without it nothing administrative is exposed and nothing is counted (HOST:PORT, PORT
    /// or :PORT, as --listen)
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<Listen>,
    /// Require this token on the admin listener (`?token=` or `Authorization: Bearer`)
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WISP_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Serve /metrics without the admin token (the console still needs it)
    #[arg(long)]
    admin_metrics_open: bool,
    /// Log no line per HTTP request and per WebSocket closed (the access log, target
    /// wisp::access)
    #[arg(long)]
    no_request_log: bool,
    /// How log lines are written: `text`, or `json` (one object a line, its fields at the
    /// top level)
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Largest request body a function may read (e.g. 8MiB or 10MB); larger gets 413
    #[arg(long, value_name = "SIZE", default_value_t = Size(ServerConfig::default().http.max_request_body))]
    max_request_body: Size,
    /// Request bodies held in memory at once, across all connections (each is read whole
    /// before its function runs); past it requests get 503
    #[arg(long, value_name = "SIZE", default_value_t = Size(ServerConfig::default().http.max_buffered_bodies))]
    max_buffered_bodies: Size,
    /// Largest response body a function may write; past it writes fail
    #[arg(long, value_name = "SIZE", default_value_t = Size(ServerConfig::default().http.max_response_body))]
    max_response_body: Size,
    /// Invocations running at once (each holds one wasm instance)
    #[arg(long, value_name = "N", default_value_t = InvocationLimits::default().concurrent)]
    max_concurrent: usize,
    // The help states the queue wait, which has no flag, from the same default.
    #[arg(
        long,
        value_name = "N",
        default_value_t = InvocationLimits::default().queue,
        help = format!(
            "HTTP requests waiting for a free slot; past this, or after {}, they get 503",
            GoDuration(InvocationLimits::default().queue_wait)
        )
    )]
    max_queued: usize,
    /// Open connections in all; more are answered 503 and closed
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().connections.max_total)]
    max_connections: usize,
    /// Open connections from one client address; more are answered 503 and closed
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().connections.max_per_client)]
    max_connections_per_client: usize,
    /// Largest WebSocket message a client may send; larger closes with 1009
    #[arg(long, value_name = "SIZE", default_value_t = Size::from(ServerConfig::default().websocket.max_message))]
    ws_max_message: Size,
    /// Bytes a WebSocket client may fall behind its channel before it is closed as too slow (1008)
    #[arg(long, value_name = "SIZE", default_value_t = Size::from(ServerConfig::default().websocket.send_queue))]
    ws_send_queue: Size,
    /// Messages per second one WebSocket client may publish (0: no limit); more closes with 1008
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().websocket.publish_rate)]
    ws_publish_rate: u32,
    /// Channels one function may subscribe itself to (`Subscribe()`); past it, subscribing gets errno 20
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().subscriptions.per_function)]
    max_subscriptions_per_function: usize,
    /// On Ctrl-C or SIGTERM, how long in-flight work may take before Wisp exits anyway
    #[arg(long, value_name = "DURATION", default_value_t = GoDuration(ServerConfig::default().drain))]
    shutdown_timeout: GoDuration,
    /// Where databases, storages and globals are kept (an SQLite file, made on first
    /// use) [default: .wisp in the project folder]. With --cluster they live in NATS
    /// JetStream instead
    #[arg(long, value_name = "DIR", env = "WISP_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// What one project's globals may hold, keys and values together; past it a put gets errno 24
    #[arg(long, value_name = "SIZE", default_value_t = Size(ServerConfig::default().globals_size))]
    globals_size: Size,
    /// Hosts or CIDR blocks functions' outbound HTTP may reach beyond public addresses
    /// (loopback, private, link-local and metadata addresses are refused by default),
    /// comma-separated or repeated; a function adds its own under `wisp.egress`
    #[arg(
        long,
        value_name = "HOST|CIDR",
        env = "WISP_EGRESS_ALLOW",
        value_delimiter = ','
    )]
    egress_allow: Vec<Allow>,
    /// The largest response body a function's outbound HTTP call may read; past it, reads get errno 6
    #[arg(long, value_name = "SIZE", default_value_t = Size(EgressSettings::default().max_response))]
    egress_max_response: Size,
    /// The key private channels' WebSocket tokens are signed with (at least 32 characters;
    /// every node of a cluster needs the same) [default: one made on first use and kept in
    /// the data dir, mode 0600]
    #[arg(
        long,
        value_name = "SECRET",
        env = "WISP_WS_TOKEN_SECRET",
        hide_env_values = true
    )]
    ws_token_secret: Option<String>,
    /// Also admit JWTs from an identity service to private channels, checked with the key
    /// in FILE: the shared secret (HS256) or the public key in PEM (RS256, EdDSA); claims
    /// `sub`, `exp` and `channels` (names, or prefixes ending in `*`), `publish: false` for
    /// read-only
    #[arg(long, value_name = "FILE", env = "WISP_WS_JWT_KEY")]
    ws_jwt_key: Option<PathBuf>,
    /// The algorithm of --ws-jwt-key: HS256, RS256 or EdDSA
    #[arg(long, value_name = "ALG", default_value = "HS256")]
    ws_jwt_algorithm: JwtAlgorithm,
    /// A PEM file of CA certificates functions' outbound HTTPS trusts besides Mozilla's
    /// roots (a private CA); repeatable
    #[arg(
        long,
        value_name = "FILE",
        env = "WISP_EGRESS_CA",
        value_delimiter = ','
    )]
    egress_ca: Vec<PathBuf>,
    /// Serve HTTPS and WSS (on --listen and --broker-listen) with the certificate in
    /// FILE: PEM, the server's certificate first, then any intermediates. Needs
    /// --tls-key. Both files are read again when they change
    #[arg(long, value_name = "FILE", env = "WISP_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, in PEM (PKCS#8, RSA or EC)
    #[arg(long, value_name = "FILE", env = "WISP_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Also listen here for plain HTTP, answering every request with a 308 redirect to
    /// the same host and path over https:// on the main port (needs --tls-cert). Same
    /// forms as --listen: `:80`, `0.0.0.0:80`
    #[arg(long, value_name = "ADDR")]
    redirect_http: Option<Listen>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Args)]
struct ClusterArgs {
    /// Join a cluster: NATS server URLs, comma-separated (nats://HOST:PORT,...). Nodes
    /// sharing NATS share channels. Without it, messages stay in this process
    #[arg(long, value_name = "URLS", env = "WISP_CLUSTER", value_delimiter = ',')]
    cluster: Vec<String>,
    /// This node's id in the cluster [default: host name, process id and a random part]
    #[arg(long, value_name = "ID", env = "WISP_NODE_ID")]
    node_id: Option<String>,
    /// Messages held for NATS while it is unreachable; past this, publishes reach this node only and get an error
    #[arg(long, value_name = "N", default_value_t = QueueLimits::default().messages)]
    cluster_queue: usize,
    /// Bytes held for NATS while it is unreachable (the other bound of the same queue)
    #[arg(long, value_name = "SIZE", default_value_t = Size::from(QueueLimits::default().bytes))]
    cluster_queue_bytes: Size,
}

/// `--listen`'s value: an address, a port alone (`8086`, `:8086`) on the default's host,
/// or a host alone on the default's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listen(SocketAddr);

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Self(addr)
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self(addr));
        }
        if let Ok(host) = text.parse::<std::net::IpAddr>() {
            return Ok(Self(SocketAddr::new(host, DEFAULT_LISTEN.port())));
        }
        if let Ok(port) = text.strip_prefix(':').unwrap_or(text).parse::<u16>() {
            return Ok(Self(SocketAddr::new(DEFAULT_LISTEN.ip(), port)));
        }
        Err(format!(
            "expected HOST:PORT, PORT, :PORT or HOST (e.g. 127.0.0.1:{0}, {0}, :{0} or 0.0.0.0)",
            DEFAULT_LISTEN.port()
        ))
    }
}

impl ServeArgs {
    /// The address to listen on: `--listen`, its port replaced by `--port` if given.
    fn listen_addr(&self) -> SocketAddr {
        let mut addr = self.listen.0;
        if let Some(port) = self.port {
            addr.set_port(port);
        }
        addr
    }

    /// The invocation limits the flags ask for.
    fn invocation_limits(&self) -> InvocationLimits {
        InvocationLimits {
            concurrent: self.max_concurrent.max(1),
            queue: self.max_queued,
            ..InvocationLimits::default()
        }
    }

    /// The server settings the flags ask for.
    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            access_log: !self.no_request_log,
            http: HttpLimits {
                max_request_body: self.max_request_body.0,
                max_response_body: self.max_response_body.0,
                max_buffered_bodies: self.max_buffered_bodies.0,
                ..HttpLimits::default()
            },
            websocket: WebSocketLimits {
                max_message: self.ws_max_message.to_usize(),
                send_queue: self.ws_send_queue.to_usize(),
                publish_rate: self.ws_publish_rate,
                ..WebSocketLimits::default()
            },
            connections: ConnectionLimits {
                max_total: self.max_connections,
                max_per_client: self.max_connections_per_client,
            },
            subscriptions: SubscriptionLimits {
                per_function: self.max_subscriptions_per_function,
                ..SubscriptionLimits::default()
            },
            drain: self.shutdown_timeout.0,
            globals_size: self.globals_size.0,
            egress: EgressSettings {
                allow: self.egress_allow.clone(),
                max_response: self.egress_max_response.0,
                extra_roots: Vec::new(),
            },
            tokens: None,
        }
    }

    /// The key of private channels' tokens: `--ws-token-secret`, else (one node) the one
    /// kept in the data dir, made on first use; `None` when the project has no private
    /// channel and none was given.
    fn tokens(&self, private: bool, cluster: bool) -> anyhow::Result<Option<Tokens>> {
        let tokens = self.own_tokens(private, cluster)?;
        let Some(file) = &self.ws_jwt_key else {
            return Ok(tokens);
        };
        let key = std::fs::read(file)
            .with_context(|| format!("reading the JWT key {}", file.display()))?;
        let jwt = Jwt::new(self.ws_jwt_algorithm, &key)
            .map_err(|error| anyhow::anyhow!("--ws-jwt-key {}: {error}", file.display()))?;
        // Wisp's own tokens are still signed: with a key of this process if none is kept.
        let tokens = tokens.unwrap_or_else(Tokens::random);
        Ok(Some(tokens.with_jwt(jwt)))
    }

    /// Wisp's own token key (see [`Self::tokens`]).
    fn own_tokens(&self, private: bool, cluster: bool) -> anyhow::Result<Option<Tokens>> {
        if let Some(secret) = &self.ws_token_secret {
            anyhow::ensure!(
                secret.len() >= MIN_SECRET,
                "--ws-token-secret is {} characters; give at least {MIN_SECRET} (e.g. `openssl rand -hex 32`)",
                secret.len()
            );
            return Ok(Some(Tokens::new(secret.as_bytes().to_vec())));
        }
        if !private {
            return Ok(None);
        }
        anyhow::ensure!(
            !cluster,
            "the project has private channels (`wisp.private`): in a cluster every node must sign \
             their tokens with the same key; give --ws-token-secret (or WISP_WS_TOKEN_SECRET), \
             the same on every node"
        );
        let file = self.data_dir().join(TOKEN_KEY_FILE);
        Ok(Some(Tokens::new(kept_key(&file)?)))
    }

    /// TLS from `--tls-cert` and `--tls-key` (both or neither), checked now so that a
    /// bad file stops the start.
    fn tls(&self) -> anyhow::Result<Option<Tls>> {
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            (Some(_), None) => anyhow::bail!(
                "--tls-cert needs --tls-key: give the certificate's private key too (PEM)"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--tls-key needs --tls-cert: give the certificate (and its chain) too (PEM)"
            ),
            (None, None) => {
                anyhow::ensure!(
                    self.redirect_http.is_none(),
                    "--redirect-http sends clients to HTTPS, which needs --tls-cert and --tls-key"
                );
                return Ok(None);
            }
        };
        let tls = Tls::load(files).map_err(|error| anyhow::anyhow!("TLS: {error}"))?;
        Ok(Some(tls))
    }

    /// The certificates of every `--egress-ca` file.
    fn egress_roots(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut roots = Vec::new();
        for file in &self.egress_ca {
            let pem = std::fs::read(file)
                .with_context(|| format!("--egress-ca: cannot read {}", file.display()))?;
            let certs = wisp::egress::client::read_pem_certificates(&pem)
                .map_err(|problem| anyhow::anyhow!("--egress-ca {}: {problem}", file.display()))?;
            roots.extend(certs);
        }
        Ok(roots)
    }

    /// The folder of the embedded state engine.
    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.project.project.join(wisp::state::sqlite::DEFAULT_DIR))
    }
}

impl ClusterArgs {
    /// The cluster settings, or `None` for a single node.
    fn config(&self) -> anyhow::Result<Option<NatsConfig>> {
        let servers: Vec<String> = self
            .cluster
            .iter()
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        if servers.is_empty() {
            return Ok(None);
        }
        let node_id = self.node_id.clone().unwrap_or_else(default_node_id);
        check_node_id(&node_id).map_err(anyhow::Error::msg)?;
        Ok(Some(NatsConfig {
            servers,
            node_id,
            queue: self.queue(),
        }))
    }

    /// The outbound queue's bounds the flags ask for.
    fn queue(&self) -> QueueLimits {
        QueueLimits {
            messages: self.cluster_queue.max(1),
            bytes: self.cluster_queue_bytes.to_usize(),
        }
    }
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    project: ProjectArg,
    /// Also list the routes (method, path, function) and messaging resources found
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

/// Prints a start-up banner line. Unlike `println!` it never panics: a server must not
/// die because whoever started it stopped reading its stdout.
macro_rules! banner {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The environment variable naming `serve`'s settings file.
const SETTINGS_ENV: &str = "WISP_SETTINGS";

/// Its older name, still read when the new one is not set.
const OLD_SETTINGS_ENV: &str = "WISP_CONFIG";

/// Parses the command line, with the settings file of `serve --settings` under it.
fn parse_cli() -> Cli {
    if std::env::var_os(SETTINGS_ENV).is_none() {
        if let Some(file) = std::env::var_os(OLD_SETTINGS_ENV) {
            // Still one thread: nothing else reads the environment meanwhile.
            std::env::set_var(SETTINGS_ENV, file);
        }
    }
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    let mut matches = command
        .try_get_matches_from_mut(args.clone())
        .unwrap_or_else(|error| error.exit());
    if let Some((name @ ("serve" | "dev"), given)) = matches.subcommand() {
        let name = name.to_owned();
        let serve = command
            .find_subcommand(&name)
            .expect("serve and dev are subcommands");
        let from_file = settings::arguments(serve, given).unwrap_or_else(|message| {
            clap::Error::raw(ErrorKind::InvalidValue, format!("{message}\n"))
                .with_cmd(serve)
                .exit()
        });
        if !from_file.is_empty() {
            // Ahead of the command line's own arguments, right after `serve`.
            let at = args
                .iter()
                .position(|arg| *arg == *name)
                .map_or(1, |i| i + 1);
            args.splice(at..at, from_file.into_iter().map(OsString::from));
            matches = Cli::command().get_matches_from(args);
        }
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

fn main() -> std::process::ExitCode {
    let cli = parse_cli();
    // `check` prints its verdict, not the cache's progress; warnings still show.
    let default_filter = match cli.command {
        Command::Check(_) => "warn",
        Command::Serve(_) | Command::Dev(_) | Command::Build(_) => SERVE_LOG_FILTER,
    };
    let json = match &cli.command {
        Command::Serve(args) | Command::Dev(args) => args.log_format == "json",
        Command::Check(_) | Command::Build(_) => false,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr);
    match json {
        // One object a line: time, level, target, and the event's fields at the top.
        true => logs.json().flatten_event(true).with_ansi(false).init(),
        false => logs
            .with_ansi(colour(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
    }
    let result = match cli.command {
        Command::Serve(args) => serve(*args, Reloads::OnHangUp),
        Command::Dev(args) => serve(*args, Reloads::OnChange),
        Command::Check(args) => check(args),
        Command::Build(args) => build(&args.project),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            match error.downcast_ref::<Problems>() {
                Some(problems) => eprintln!("{problems}"),
                None => eprintln!("error: {error:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// The environment variable holding the log filter (`tracing_subscriber`'s `EnvFilter`).
const LOG_ENV: &str = "WISP_LOG";

/// What `serve` and `build` log without [`LOG_ENV`].
const SERVE_LOG_FILTER: &str = "info,wasmtime_wasi=warn,wiggle=warn,async_nats=warn";

/// Whether log lines are coloured: only on a terminal, and not when `NO_COLOR` is set
/// to something (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

fn options(invocations: InvocationLimits, cache: &CacheArgs) -> LoadOptions {
    LoadOptions {
        invocations,
        cache: cache.cache(),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let limits = InvocationLimits {
        concurrent: 16,
        ..InvocationLimits::default()
    };
    let loaded = wisp::load::load(&args.project.project, &options(limits, &args.cache))?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    // What `build` and `serve --build` would skip, as they would say it. A missing
    // folder the loader has already reported.
    for function in &loaded.project.functions {
        if function
            .build
            .as_deref()
            .is_some_and(std::path::Path::is_dir)
        {
            if let Some(warning) = wisp::builder::skip_warning(function) {
                eprintln!("{warning}");
            }
        }
    }
    println!(
        "{}: ok ({} functions, {} messaging resources, {} domains)",
        args.project.project.display(),
        loaded.project.functions.len(),
        loaded.project.messaging.len(),
        loaded.project.domains.len()
    );
    if args.verbose {
        print_contents(&loaded);
    }
    Ok(())
}

/// `check -v`: the routes and messaging resources a loaded project has.
fn print_contents(loaded: &wisp::load::Loaded) {
    let functions = &loaded.deployment.functions;
    println!("routes:");
    if loaded.routes.is_empty() {
        println!("  (none)");
    }
    for route in &loaded.routes {
        let hosts = match route.hosts.as_slice() {
            [] => String::new(),
            hosts => format!(" (host {})", hosts.join(", ")),
        };
        println!(
            "  {:<6} {}{hosts} -> {}",
            route.method, route.path, functions[route.function].name
        );
    }
    println!("messaging:");
    if loaded.project.messaging.is_empty() {
        println!("  (none)");
    }
    for messaging in &loaded.project.messaging {
        let name = match &messaging.application {
            Some(application) => format!("{application}/{}", messaging.name),
            None => messaging.name.clone(),
        };
        let flag = |on: bool, name: &str| format!("{name}={}", if on { "yes" } else { "no" });
        let history = match &messaging.history {
            Some(history) => format!("history={}", history.size),
            None => "history=no".to_owned(),
        };
        println!(
            "  {name}: {} ({}) {} {} {history} {}",
            messaging.matcher.pattern(),
            messaging.matcher.style(),
            flag(messaging.websocket, "websocket"),
            flag(messaging.private, "private"),
            flag(messaging.presence, "presence"),
        );
    }
}

fn build(project_dir: &std::path::Path) -> anyhow::Result<()> {
    let loaded = wisp::project::load(project_dir);
    let Some(project) = loaded.project else {
        return Err(Problems(loaded.diagnostics).into());
    };
    let report = wisp::builder::build_project(&project)?;
    // A `wisp.build` folder that is not a crate is a warning, as in `check`: the
    // function's wasm file is used as it is, and `serve` goes on to load it.
    for warning in &report.skipped {
        eprintln!("{warning}");
    }
    eprintln!("wisp: {report}");
    Ok(())
}

/// The shortest `--ws-token-secret`: 32 characters, as many bytes of key as the hash.
const MIN_SECRET: usize = 32;

/// The file in the data dir that keeps the token key when none is given.
const TOKEN_KEY_FILE: &str = "websocket-token.key";

/// The key kept in `file` (hex), made (32 random bytes, mode 0600) if there is none.
fn kept_key(file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(file) {
        Ok(text) => {
            return hex::decode(text.trim()).with_context(|| {
                format!("{} is not a hex key; delete it to make a new one (tokens handed out so far stop working)", file.display())
            })
        }
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("reading {}", file.display()))
        }
        Err(_) => {}
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).context("the system's random source")?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("making {}", file.display()))?;
    out.write_all(hex::encode(key).as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(key.to_vec())
}

/// What makes a running server reload its project.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reloads {
    /// SIGHUP (`serve`).
    OnHangUp,
    /// Any change to the project's files, and SIGHUP (`dev`; builds each time).
    OnChange,
}

fn serve(mut args: ServeArgs, reloads: Reloads) -> anyhow::Result<()> {
    wisp::allocator::return_freed_memory();
    if reloads == Reloads::OnChange {
        args.build = true;
    }
    if args.build {
        build(&args.project.project)?;
    }
    let limits = args.invocation_limits();
    let load_options = options(limits, &args.cache);
    let loaded = wisp::load::load(&args.project.project, &load_options)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let watched = match reloads {
        Reloads::OnChange => Some(watched_folders(&loaded.project)),
        Reloads::OnHangUp => None,
    };
    let mut config = args.server_config();
    config.egress.extra_roots = args.egress_roots()?;
    let cluster = args.cluster.config()?;
    let private = loaded.project.messaging.iter().any(|m| m.private);
    config.tokens = args.tokens(private, cluster.is_some())?;
    let tls = args.tls()?;
    let data_dir = args.data_dir();
    raise_file_limit(args.max_connections);
    if args.admin_listen.is_some() {
        // Before anything runs, so that every count starts at the start.
        wisp::metrics::enable();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // One node keeps state in SQLite; a cluster's nodes share it through JetStream.
        let (broker, state): (Arc<dyn Broker>, Arc<dyn StateEngine>) = match &cluster {
            None => (
                Arc::new(LocalBroker::new()),
                Arc::new(Sqlite::in_dir(&data_dir)),
            ),
            Some(cluster) => {
                let broker = NatsBroker::connect(cluster.clone())
                    .await
                    .context("joining the cluster")?;
                let state = Arc::new(JetStream::new(broker.client()));
                (Arc::new(broker), state)
            }
        };
        let app = App::start(loaded, broker, state, config);
        // Ready before the banner says so: a SIGHUP's default action would end the process.
        let reloader = Reloader {
            app: app.clone(),
            project: args.project.project.clone(),
            build: args.build,
            options: load_options,
            hang_ups: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
            watch: watched.clone().map(wisp::watch::Watch::new),
        };
        let listen = args.listen_addr();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen} (is the port in use? try --port 0)")
            })?;
        let addr = listener.local_addr()?;
        let broker_listener = match args.broker_listen {
            None => None,
            Some(Listen(at)) => {
                Some(tokio::net::TcpListener::bind(at).await.with_context(|| {
                    format!("cannot listen on {at} for --broker-listen (is the port in use?)")
                })?)
            }
        };
        let redirect_listener = match args.redirect_http {
            None => None,
            Some(Listen(at)) => {
                Some(tokio::net::TcpListener::bind(at).await.with_context(|| {
                    format!("cannot listen on {at} for --redirect-http (is the port in use?)")
                })?)
            }
        };
        let (http, ws) = match tls {
            Some(_) => ("https", "wss"),
            None => ("http", "ws"),
        };
        banner!(
            "wisp: serving {} on {http}://{addr}",
            args.project.project.display()
        );
        let generation = app.generation();
        print_routes(&generation);
        let hash = &generation.hub.scopes.get(0).hash;
        banner!("  WebSocket channels at {ws}://{addr}/ws-{hash}/<channel>");
        banner!("  broker protocol (SUBSCRIBE:, PUBLISH:) at {ws}://{addr}/ws-{hash}");
        if let Some(listener) = &broker_listener {
            banner!("  broker protocol at {ws}://{}/", listener.local_addr()?);
        }
        if let Some(Listen(at)) = args.admin_listen {
            let listener = tokio::net::TcpListener::bind(at).await.with_context(|| {
                format!("cannot listen on {at} for --admin-listen (is the port in use?)")
            })?;
            let at = listener.local_addr()?;
            let guarded = if args.admin_token.is_some() {
                " (token required)"
            } else {
                ""
            };
            banner!("  console at http://{at}/, metrics at http://{at}/metrics{guarded}");
            let settings = wisp::server::admin::AdminSettings {
                token: args.admin_token.clone(),
                metrics_open: args.admin_metrics_open,
            };
            tokio::spawn(wisp::server::admin::serve(listener, app.clone(), settings));
        }
        if let Some(public) = &generation.public {
            banner!("  files from {} at {http}://{addr}/", public.display());
        }
        if let Some(tls) = &tls {
            let files = tls.certificates().files();
            banner!(
                "  TLS certificate {}, key {} (read again when they change)",
                files.cert.display(),
                files.key.display()
            );
        }
        if let Some(listener) = &redirect_listener {
            banner!(
                "  http://{}/ redirects to https:// on port {}",
                listener.local_addr()?,
                addr.port()
            );
        }
        if let Some(cluster) = &cluster {
            let servers: Vec<String> = cluster.servers.iter().map(|url| redact(url)).collect();
            banner!(
                "  cluster node {} via NATS at {} (link state at {http}://{addr}/_wisp/health)",
                cluster.node_id,
                servers.join(", ")
            );
        }
        match &cluster {
            None => banner!(
                "  data in {}",
                data_dir.join(wisp::state::sqlite::FILE_NAME).display()
            ),
            Some(_) => banner!(
                "  data in NATS JetStream (buckets wisp_databases, wisp_storages, wisp_globals)"
            ),
        }
        if let Some(file) = &args.settings {
            banner!("  settings from {}", file.display());
        }
        match &watched {
            Some(folders) => {
                let shown: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
                banner!("  watching {} for changes", shown.join(", "));
            }
            None => banner!(
                "  SIGHUP reloads the project (kill -HUP {})",
                std::process::id()
            ),
        }
        drop(generation);
        let reloading = tokio::spawn(reloader.run());
        let listeners = wisp::server::Listeners {
            main: listener,
            broker: broker_listener,
            redirect: redirect_listener,
            tls,
        };
        let served = wisp::server::run(listeners, app, shutdown_signal()).await;
        reloading.abort();
        served
    })
}

/// The routes a deployment serves, one banner line each.
fn print_routes(generation: &wisp::server::Generation) {
    let functions = &generation.hub.deployment().functions;
    for (method, path, host, target) in generation.router.routes() {
        let host = host.map(|h| format!(" (host {h})")).unwrap_or_default();
        banner!("  {method:<6} {path}{host} -> {}", functions[target].name);
    }
}

/// What `wisp dev` watches: the project folder and each guest crate its functions
/// build from.
fn watched_folders(project: &wisp::project::Project) -> Vec<PathBuf> {
    let mut folders = vec![project.root.clone()];
    for function in &project.functions {
        if let Some(dir) = &function.build {
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if !folders.iter().any(|f| dir.starts_with(f)) {
                folders.push(dir);
            }
        }
    }
    folders
}

/// Reloads a running server's project on SIGHUP and, for `wisp dev`, on changes.
struct Reloader {
    app: Arc<App>,
    project: PathBuf,
    build: bool,
    options: LoadOptions,
    hang_ups: Option<tokio::signal::unix::Signal>,
    /// `wisp dev`'s.
    watch: Option<wisp::watch::Watch>,
}

impl Reloader {
    async fn run(mut self) {
        let (mut hang_ups, mut watch) = (self.hang_ups.take(), self.watch.take());
        loop {
            let hang_up = async {
                match &mut hang_ups {
                    Some(signal) => signal.recv().await.map(drop),
                    None => std::future::pending().await,
                }
            };
            let change = async {
                match &mut watch {
                    Some(watch) => watch.changed().await,
                    None => std::future::pending().await,
                }
            };
            let saved = tokio::select! {
                Some(()) = hang_up => {
                    eprintln!("wisp: SIGHUP: reloading {}", self.project.display());
                    std::time::SystemTime::now()
                }
                change = change => {
                    let mut files: Vec<String> =
                        change.files.iter().map(|f| f.display().to_string()).collect();
                    if change.count > files.len() {
                        files.push(format!("and {} more", change.count - files.len()));
                    }
                    eprintln!("wisp: changed: {}; rebuilding", files.join(", "));
                    change.saved
                }
            };
            let (built, folders) = self.reload(saved).await;
            if let Some(watch) = &mut watch {
                watch.absorb(&built);
                for added in watch.widen(&folders) {
                    banner!("wisp: also watching {}", added.display());
                }
            }
        }
    }

    /// Builds (if asked), loads and swaps in the project; on any failure says why and
    /// leaves the deployment serving as it was. Returns the wasm files a build may have
    /// written, and the folders the project now asks to watch.
    async fn reload(&self, saved: std::time::SystemTime) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let (project, build, options) = (self.project.clone(), self.build, self.options.clone());
        let mut built = Vec::new();
        let loaded = tokio::task::spawn_blocking(move || {
            if build {
                if let Some(found) = wisp::project::load(&project).project {
                    built = found
                        .functions
                        .iter()
                        .filter(|f| f.build.is_some())
                        .map(|f| f.wasm.clone())
                        .collect();
                }
                crate::build(&project).map_err(|error| (error, built.clone()))?;
            }
            wisp::load::load(&project, &options)
                .map_err(|error| (error, built.clone()))
                .map(|loaded| (loaded, built))
        })
        .await;
        let (loaded, built) = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err((error, built))) => {
                match error.downcast_ref::<Problems>() {
                    Some(problems) => eprintln!("{problems}"),
                    None => eprintln!("error: {error:#}"),
                }
                eprintln!("wisp: not reloaded; the previous deployment is still serving");
                return (built, Vec::new());
            }
            Err(panicked) => {
                eprintln!("wisp: not reloaded (loading panicked: {panicked}); the previous deployment is still serving");
                return (Vec::new(), Vec::new());
            }
        };
        for warning in &loaded.warnings {
            eprintln!("{warning}");
        }
        let folders = watched_folders(&loaded.project);
        match self.app.reload(loaded).await {
            Ok(generation) => {
                let took = saved.elapsed().unwrap_or_default();
                let took = std::time::Duration::from_millis(took.as_millis() as u64);
                banner!(
                    "wisp: reloaded: deployment {} serving, {} from save to serving",
                    generation.number,
                    wisp::project::GoDuration(took)
                );
                print_routes(&generation);
            }
            Err(error) => {
                eprintln!("error: {error}");
                eprintln!("wisp: not reloaded; the previous deployment is still serving");
            }
        }
        (built, folders)
    }
}

/// Each connection needs a descriptor: lift the soft limit toward the hard one so
/// `--max-connections` is reachable, and say so if it is not.
fn raise_file_limit(connections: usize) {
    let wanted = connections as u64 + 256;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => eprintln!(
            "wisp: warning: the open-file limit is {got}, below the {wanted} that --max-connections {connections} needs"
        ),
        Ok(_) => {}
        Err(error) => eprintln!("wisp: warning: could not raise the open-file limit: {error}"),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// `wisp serve` with `flags`, parsed as the command line would be.
    fn serve_args(flags: &[String]) -> ServeArgs {
        let argv = ["wisp", "serve"]
            .into_iter()
            .map(String::from)
            .chain(flags.iter().cloned());
        match Cli::try_parse_from(argv).expect("valid flags").command {
            Command::Serve(args) => *args,
            _ => unreachable!("parsed `serve`"),
        }
    }

    /// Everything `serve` runs on that its flags decide.
    fn settings(args: &ServeArgs) -> (SocketAddr, ServerConfig, InvocationLimits, QueueLimits) {
        (
            args.listen_addr(),
            args.server_config(),
            args.invocation_limits(),
            args.cluster.queue(),
        )
    }

    #[test]
    fn serve_without_flags_runs_on_the_library_defaults() {
        let args = serve_args(&[]);
        assert_eq!(args.listen_addr(), DEFAULT_LISTEN);
        assert_eq!(args.server_config(), ServerConfig::default());
        assert_eq!(args.invocation_limits(), InvocationLimits::default());
        assert_eq!(args.cluster.queue(), QueueLimits::default());
    }

    #[test]
    fn each_default_reads_back_through_its_own_parser() {
        let config = ServerConfig::default();
        let sizes = [
            config.http.max_request_body,
            config.http.max_response_body,
            config.http.max_buffered_bodies,
            Size::from(config.websocket.max_message).0,
            Size::from(config.websocket.send_queue).0,
            Size::from(QueueLimits::default().bytes).0,
        ];
        for bytes in sizes {
            let shown = Size(bytes).to_string();
            assert_eq!(Size::from_str(&shown), Ok(Size(bytes)), "{shown}");
        }
        for duration in [config.drain, InvocationLimits::default().queue_wait] {
            let shown = GoDuration(duration).to_string();
            assert_eq!(
                GoDuration::from_str(&shown),
                Ok(GoDuration(duration)),
                "{shown}"
            );
        }

        // Every default as `--help` shows it, given back as that flag's value,
        // changes nothing.
        let command = Cli::command();
        let serve = command
            .find_subcommand("serve")
            .expect("serve is a subcommand");
        let defaults = serve_args(&[]);
        let mut shown = Vec::new();
        for arg in serve.get_arguments() {
            let (Some(long), [default]) = (arg.get_long(), arg.get_default_values()) else {
                continue;
            };
            let default = default.to_str().expect("utf-8 default");
            shown.push(format!("--{long} {default}"));
            let given = serve_args(&[format!("--{long}={default}")]);
            assert_eq!(settings(&given), settings(&defaults), "--{long}={default}");
        }
        // How `--help` and the README (section "Limits") spell them.
        assert_eq!(
            shown,
            [
                "--listen 127.0.0.1:8080",
                "--log-format text",
                "--max-request-body 4MiB",
                "--max-buffered-bodies 256MiB",
                "--max-response-body 16MiB",
                "--max-concurrent 1000",
                "--max-queued 1000",
                "--max-connections 10000",
                "--max-connections-per-client 1000",
                "--ws-max-message 1MiB",
                "--ws-send-queue 1MiB",
                "--ws-publish-rate 1000",
                "--max-subscriptions-per-function 1000",
                "--shutdown-timeout 10s",
                "--globals-size 1MiB",
                "--egress-max-response 16MiB",
                "--ws-jwt-algorithm HS256",
                "--cluster-queue 10000",
                "--cluster-queue-bytes 64MiB",
            ]
        );
        let help = serve.clone().render_help().to_string();
        assert!(help.contains("or after 5s, they get 503"), "{help}");
    }
}
