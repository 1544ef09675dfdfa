//! The `wisp` binary as a user runs it: help, check and serve on broken projects,
//! and `serve`'s settings file.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// `wisp` with `args`, free of settings the environment running the tests may hold.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wisp"));
    command
        .args(args)
        .env(
            "WISP_CACHE_DIR",
            repo().join("target").join("wisp-test-cache"),
        )
        .env_remove("WISP_CONFIG")
        .env_remove("WISP_SETTINGS")
        .env_remove("WISP_LOG")
        .env_remove("NO_COLOR")
        .env_remove("WISP_CLUSTER")
        .env_remove("WISP_NODE_ID")
        .env_remove("WISP_TLS_CERT")
        .env_remove("WISP_TLS_KEY");
    command
}

fn wisp(args: &[&str]) -> Output {
    command(args).output().expect("running wisp")
}

/// `wisp serve` running in the background; killed when dropped.
struct Server {
    child: Child,
    banner: String,
}

impl Server {
    /// Starts `wisp` with `args` and `env` and reads its start-up banner up to the line
    /// containing `last`.
    fn start(args: &[&str], env: &[(&str, &str)], last: &str) -> Self {
        Self::logging(args, env, last, Stdio::null())
    }

    /// [`Server::start`], its log (stderr) going to `log`.
    fn logging(args: &[&str], env: &[(&str, &str)], last: &str, log: Stdio) -> Self {
        let mut child = command(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting wisp serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut server = Self {
            child,
            banner: String::new(),
        };
        while !server.banner.lines().any(|line| line.contains(last)) {
            let read = stdout
                .read_line(&mut server.banner)
                .expect("reading the banner");
            assert!(read > 0, "wisp stopped before `{last}`:\n{}", server.banner);
        }
        server
    }

    /// The address the banner's first line gives.
    fn addr(&self) -> &str {
        let first = self.banner.lines().next().expect("a banner");
        first.rsplit("http://").next().expect("an address")
    }

    /// The whole answer to one raw HTTP GET.
    fn get(&self, path: &str) -> String {
        self.request("GET", path, "")
    }

    /// The whole answer to one raw HTTP request with `body`.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        let mut stream = std::net::TcpStream::connect(self.addr()).expect("connect");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("response");
        answer
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample project, built once for the tests that serve or check it: builds running
/// at once would copy the same artifacts over each other while another test reads them.
fn built_sample() -> &'static str {
    static BUILT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let config = repo()
            .join("config")
            .to_str()
            .expect("utf-8 path")
            .to_owned();
        let build = wisp(&["build", &config]);
        assert!(build.status.success(), "{}", text(&build.stderr));
        config
    })
}

/// What a function was told is stored is there after `kill -9` of the host and a restart.
#[test]
fn stored_data_survives_kill_9() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let data_dir = utf8(data.path()).to_owned();
    let args = [
        "serve",
        built_sample(),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
    ];
    let mut server = Server::start(&args, &[], "data in");
    assert!(server.banner.contains(&data_dir), "{}", server.banner);
    for i in 0..20 {
        let body = format!(r#"{{"user":"u","text":"kept {i}"}}"#);
        let answer = server.request("POST", "/api/chat/send?room=durable", &body);
        assert!(answer.ends_with("Message sent"), "{answer}");
    }
    // `Child::kill` is SIGKILL: no shutdown, no flush, no chance to finish anything.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");

    let server = Server::start(&args, &[], "data in");
    let history = server.get("/api/chat/history?room=durable");
    for i in 0..20 {
        assert!(
            history.contains(&format!(r#""text":"kept {i}""#)),
            "{history}"
        );
    }
}

/// Without `--cluster`, log lines say nothing of a cluster: a subscription's reach
/// (node or cluster) means something only in one.
#[test]
fn a_single_node_logs_no_cluster_reach() {
    let mut child = command(&["serve", built_sample(), "--listen", "127.0.0.1:0"])
        .env("WISP_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wisp serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("http://") {
        line.clear();
        assert!(stdout.read_line(&mut line).expect("reading the banner") > 0);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("wisp serve exits");
    let log = text(&output.stderr);
    assert!(log.contains("function subscribed"), "{log}");
    assert!(!log.contains("reach"), "{log}");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

fn fixture(kind: &str, case: &str) -> PathBuf {
    repo().join("tests/fixtures/projects").join(kind).join(case)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["build", "--help"],
        &["dev", "--help"],
    ] {
        let out = wisp(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let help = text(&out.stdout);
        assert!(help.contains("Usage: wisp"), "{args:?}: {help}");
    }
    let serve = text(&wisp(&["serve", "--help"]).stdout);
    assert!(
        serve.contains("--listen <ADDR>") && serve.contains("127.0.0.1:8080"),
        "{serve}"
    );
    assert!(
        serve.contains("--settings <FILE>")
            && serve.contains("WISP_SETTINGS")
            && serve.contains("which beats the file"),
        "{serve}"
    );
    // `--config` is a hidden alias now, mentioned only as the older name.
    assert!(!serve.contains("--config <FILE>"), "{serve}");
    assert!(
        serve.contains("--port <N>") && serve.contains("a bare PORT or :PORT"),
        "{serve}"
    );
    assert!(
        serve.contains("WISP_LOG") && serve.contains("NO_COLOR"),
        "{serve}"
    );
    let check = text(&wisp(&["check", "--help"]).stdout);
    assert!(check.contains("-v, --verbose"), "{check}");
}

#[test]
fn check_prints_every_problem_and_fails() {
    let dir = fixture("invalid", "many_problems");
    let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
    let out = wisp(&["check", dir.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for line in expected.lines().filter(|l| !l.is_empty()) {
        assert!(stderr.contains(line), "missing `{line}` in:\n{stderr}");
    }
    assert!(
        stderr.lines().last().is_some_and(|l| l.ends_with("errors")),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_to_start_with_the_same_messages() {
    let dir = fixture("invalid", "unknown_field_hint");
    let dir = dir.to_str().expect("utf-8 path");
    let check = wisp(&["check", dir]);
    let serve = wisp(&["serve", dir, "--listen", "127.0.0.1:0"]);
    assert!(!serve.status.success());
    assert_eq!(text(&serve.stderr), text(&check.stderr));
    assert!(
        text(&serve.stderr).contains("did you mean"),
        "{}",
        text(&serve.stderr)
    );
}

#[test]
fn check_reports_a_missing_project_folder() {
    let out = wisp(&["check", "/definitely/not/a/project"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("project folder /definitely/not/a/project does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn build_then_check_the_sample_project() {
    let config = built_sample();
    let check = wisp(&["check", config]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let functions = std::fs::read_dir(repo().join("config/functions"))
        .expect("config/functions")
        .count();
    let summary = format!(": ok ({functions} functions");
    assert!(
        text(&check.stdout).contains(&summary),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn sigterm_stops_the_server_cleanly_with_exit_code_0() {
    let config = built_sample();
    let mut server = Server::start(&["serve", config, "--listen", "127.0.0.1:0"], &[], "");
    // It serves: one raw HTTP request.
    let answer = server.get("/ping");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("pong"),
        "{answer}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.child.wait().expect("waiting for wisp");
    assert!(status.success(), "wisp exited with {status}");
}

/// A project with nothing in it but its `config.yaml`, in a temporary folder.
fn empty_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(
        dir.path().join("config.yaml"),
        "id: QmSettingsFileTest\nname: settings\n",
    )
    .expect("writing config.yaml");
    dir
}

/// Writes `yaml` to `wisp.yaml` in `dir`; its path.
fn settings_file(dir: &Path, yaml: &str) -> String {
    let file = dir.join("wisp.yaml");
    std::fs::write(&file, yaml).expect("writing wisp.yaml");
    file.to_str().expect("utf-8 path").to_owned()
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn serve_takes_listen_node_id_and_the_project_from_a_settings_file() {
    let project = empty_project();
    let dir = utf8(project.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    // Nothing listens on port 1: the node runs with its cluster link down.
    let file = settings_file(
        project.path(),
        &format!(
            "project: {dir}\nlisten: 127.0.0.1:{port}\nnode-id: from-file\n\
             cluster: [nats://127.0.0.1:1]\nmax-request-body: 8MiB\nws-publish-rate: 0\n"
        ),
    );
    let server = Server::start(&["serve", "--settings", &file], &[], "settings from");
    assert_eq!(
        server.addr(),
        format!("127.0.0.1:{port}"),
        "{}",
        server.banner
    );
    for line in [
        format!("wisp: serving {dir} on"),
        "cluster node from-file via NATS at nats://127.0.0.1:1".to_owned(),
        format!("settings from {file}"),
    ] {
        assert!(
            server.banner.contains(&line),
            "no `{line}` in:\n{}",
            server.banner
        );
    }
    let health = server.get("/_wisp/health");
    assert!(
        health.ends_with("{\"status\":\"ok\",\"cluster\":\"disconnected\"}\n"),
        "{health}"
    );
}

#[test]
fn a_flag_or_an_environment_variable_beats_the_settings_file() {
    let project = empty_project();
    let dir = utf8(project.path());
    let file = settings_file(
        project.path(),
        "listen: 127.0.0.1:1\ncluster: nats://127.0.0.1:1\nnode-id: from-file\n",
    );
    let env = [("WISP_NODE_ID", "from-env")];
    let flags = ["serve", dir, "--config", &file, "--listen", "127.0.0.1:0"];
    let server = Server::start(
        &[&flags[..], &["--node-id", "from-flag"]].concat(),
        &env,
        "cluster",
    );
    assert!(
        server.banner.contains("cluster node from-flag via"),
        "{}",
        server.banner
    );
    assert_ne!(server.addr(), "127.0.0.1:1");
    drop(server);

    // The file named by WISP_CONFIG; the node id from WISP_NODE_ID.
    let env = [("WISP_CONFIG", file.as_str()), ("WISP_NODE_ID", "from-env")];
    let server = Server::start(&["serve", dir, "--listen", "127.0.0.1:0"], &env, "cluster");
    assert!(
        server.banner.contains("cluster node from-env via"),
        "{}",
        server.banner
    );
}

#[test]
fn a_settings_file_with_an_unknown_key_is_refused() {
    let project = empty_project();
    let file = settings_file(project.path(), "listen: 127.0.0.1:0\nnode_id: n1\n");
    let out = wisp(&["serve", utf8(project.path()), "--config", &file]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let expected = format!("{file}: unknown setting `node_id`; the settings are: project, listen,");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains(" node-id, "), "{stderr}");
}

#[test]
fn a_malformed_settings_file_is_refused_with_its_line() {
    let project = empty_project();
    let file = settings_file(
        project.path(),
        "listen: 127.0.0.1:0\ncluster: [nats://a:4222\nnode-id: n1\n",
    );
    let out = wisp(&["serve", utf8(project.path()), "--config", &file]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{file}: not valid YAML: ")),
        "{stderr}"
    );
    assert!(stderr.contains("at line 3"), "{stderr}");
}

#[test]
fn a_bad_value_in_a_settings_file_reads_like_a_bad_flag() {
    let project = empty_project();
    let dir = utf8(project.path());
    let flag = text(&wisp(&["serve", dir, "--max-request-body", "8XB"]).stderr);
    let reason = flag
        .lines()
        .next()
        .and_then(|line| line.split_once("': "))
        .map(|(_, reason)| reason)
        .expect("a reason");
    let file = settings_file(project.path(), "max-request-body: 8XB\n");
    let out = wisp(&["serve", dir, "--config", &file]);
    assert_eq!(out.status.code(), Some(2));
    let expected = format!("{file}: invalid value '8XB' for `max-request-body`: {reason}");
    assert!(
        text(&out.stderr).contains(&expected),
        "{}\nnot like\n{flag}",
        text(&out.stderr)
    );

    let missing = project.path().join("missing.yaml");
    let out = wisp(&["serve", dir, "--config", utf8(&missing)]);
    assert!(!out.status.success());
    let expected = format!("cannot read the settings file {}", missing.display());
    assert!(
        text(&out.stderr).contains(&expected),
        "{}",
        text(&out.stderr)
    );
}

/// The broker tutorial's client, as its page does it, against `--broker-listen`: a message
/// published to a channel nobody is on is stored (in SQLite, so a `kill -9` loses
/// nothing) and delivered on the next `SUBSCRIBE`, then live messages follow.
#[test]
fn the_broker_tutorials_commands_work_on_broker_listen() {
    use tokio_tungstenite::tungstenite::{connect, Message};
    let data = tempfile::tempdir().expect("a temporary folder");
    let args = [
        "serve",
        built_sample(),
        "--listen",
        "127.0.0.1:0",
        "--broker-listen",
        "127.0.0.1:0",
        "--data-dir",
        utf8(data.path()),
    ];
    let broker_url = |server: &Server| {
        let line = server
            .banner
            .lines()
            .find(|line| line.contains("broker protocol at ws://") && line.ends_with('/'))
            .unwrap_or_else(|| panic!("no broker listener in\n{}", server.banner));
        line.rsplit(' ').next().expect("a URL").to_owned()
    };
    let mut server = Server::start(&args, &[], "data in");
    let (mut publisher, _) = connect(broker_url(&server)).expect("connecting");
    publisher
        .send(Message::text("PUBLISH:news:Hello world!"))
        .expect("publishing");
    // Answered in order: once the error for this comes, the publish before it is stored.
    publisher
        .send(Message::text("UNSUBSCRIBE:news"))
        .expect("sending");
    let answer = publisher.read().expect("an answer");
    assert!(answer.to_text().unwrap().starts_with("ERROR:"), "{answer}");
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");

    let server = Server::start(&args, &[], "data in");
    let (mut subscriber, _) = connect(broker_url(&server)).expect("connecting");
    subscriber
        .send(Message::text("SUBSCRIBE:news"))
        .expect("subscribing");
    let stored = subscriber.read().expect("the stored message");
    assert_eq!(stored.to_text().unwrap(), "MSG:news:Hello world!");
    let (mut publisher, _) = connect(broker_url(&server)).expect("connecting");
    publisher
        .send(Message::text("PUBLISH:news:live"))
        .expect("publishing");
    let live = subscriber.read().expect("the live message");
    assert_eq!(live.to_text().unwrap(), "MSG:news:live");
    // That listener serves the protocol and nothing else.
    let other = broker_url(&server).replace("ws://", "").replace('/', "");
    let mut stream = std::net::TcpStream::connect(other).expect("connect");
    write!(
        stream,
        "GET /api/chat/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("response");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

/// Private channels on `wisp serve`: the token key is made once, kept with mode 0600 in the
/// data dir and used again after a restart; a refused token is logged without the token;
/// a cluster refuses to start without a shared key.
#[test]
fn private_channels_keep_their_key_and_never_log_a_token() {
    use std::os::unix::fs::PermissionsExt;
    use tokio_tungstenite::tungstenite::{connect, Error};
    use wisp::messaging::token::{now_secs, Tokens};
    let data = tempfile::tempdir().expect("a temporary folder");
    let log_path = data.path().join("stderr.log");
    let args = [
        "serve",
        built_sample(),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        utf8(data.path()),
    ];
    let log = std::fs::File::create(&log_path).expect("a log file");
    let server = Server::logging(&args, &[], "data in", log.into());
    let key_file = data.path().join("websocket-token.key");
    let mode = std::fs::metadata(&key_file)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only the owner reads the key");
    let key = hex::decode(std::fs::read_to_string(&key_file).unwrap().trim()).unwrap();
    let hash = server
        .banner
        .split("/ws-")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the project hash in the banner")
        .to_owned();
    let channel = "private/room";
    let token = Tokens::new(key).issue(
        &hash,
        channel,
        "erin",
        std::time::Duration::from_secs(600),
        true,
        now_secs(),
    );
    let url = |server: &Server, token: &str| {
        format!("ws://{}/ws-{hash}/{channel}?token={token}", server.addr())
    };
    connect(url(&server, &token)).expect("the kept key's token admits");
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    match connect(url(&server, &forged)) {
        Err(Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a forged token was not refused: {other:?}"),
    }
    drop(server);
    let logged = std::fs::read_to_string(&log_path).expect("the log");
    assert!(logged.contains("private channel refused"), "{logged}");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!logged.contains(signature), "a token was logged:\n{logged}");

    // Restarted, the same key: the token handed out before still works.
    let server = Server::start(&args, &[], "data in");
    connect(url(&server, &token)).expect("tokens outlive a restart");
    drop(server);

    // A cluster's nodes must share the key: without one, serve says how to give it.
    let output = wisp(&["serve", built_sample(), "--cluster", "nats://127.0.0.1:9"]);
    assert!(!output.status.success());
    let said = text(&output.stderr);
    assert!(said.contains("--ws-token-secret"), "{said}");
}

/// A free TCP port on 127.0.0.1 (free when asked; nothing holds it after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `--listen` takes a bare port or `:port` on the default's host (127.0.0.1), a bare host
/// on the default's port; `--port` replaces the port of `--listen`, also one from the
/// settings file.
#[test]
fn listen_takes_a_bare_port_and_port_combines_with_the_listen_host() {
    let project = empty_project();
    let dir = utf8(project.path());
    let port = free_port();
    let given = port.to_string();
    let colon = format!(":{port}");
    let expected = format!("127.0.0.1:{port}");
    for flags in [
        &["--listen", given.as_str()][..],
        &["--listen", colon.as_str()],
        &["--port", given.as_str()],
        &["--listen", "127.0.0.1", "--port", given.as_str()],
        &["--listen", "127.0.0.1:1", "--port", given.as_str()],
    ] {
        let args = [&["serve", dir][..], flags].concat();
        let server = Server::start(&args, &[], "data in");
        assert_eq!(server.addr(), expected, "{flags:?}: {}", server.banner);
    }
    // In the settings file: the file's host, the command line's port.
    let file = settings_file(project.path(), "listen: 127.0.0.1:1\n");
    let server = Server::start(
        &["serve", dir, "--settings", &file, "--port", &given],
        &[],
        "data in",
    );
    assert_eq!(server.addr(), expected, "{}", server.banner);
    drop(server);
    let file = settings_file(project.path(), &format!("listen: ':{port}'\n"));
    let server = Server::start(&["serve", dir, "--settings", &file], &[], "data in");
    assert_eq!(server.addr(), expected, "{}", server.banner);
    drop(server);

    let out = wisp(&["serve", dir, "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected HOST:PORT, PORT, :PORT or HOST"),
        "{}",
        text(&out.stderr)
    );
}

/// `--settings FILE` and `WISP_SETTINGS` name the settings file; `--config` and
/// `WISP_CONFIG`, the older names, still do.
#[test]
fn settings_is_the_flag_and_config_its_old_alias() {
    let project = empty_project();
    let dir = utf8(project.path());
    let file = settings_file(project.path(), "listen: 127.0.0.1:0\nnode-id: named\n");
    let by_flag = |flag: &str| {
        let server = Server::start(&["serve", dir, flag, &file], &[], "settings from");
        assert!(
            server.banner.contains(&format!("settings from {file}")),
            "{flag}: {}",
            server.banner
        );
    };
    by_flag("--settings");
    by_flag("--config");
    for var in ["WISP_SETTINGS", "WISP_CONFIG"] {
        let server = Server::start(&["serve", dir], &[(var, file.as_str())], "settings from");
        assert!(
            server.banner.contains(&format!("settings from {file}")),
            "{var}: {}",
            server.banner
        );
    }
    // The new name wins when both are set.
    let other = project.path().join("missing.yaml");
    let out = command(&["serve", dir])
        .env("WISP_SETTINGS", utf8(&other))
        .env("WISP_CONFIG", &file)
        .output()
        .expect("running wisp");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot read the settings file {}",
            other.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

/// `wisp check` prints only its verdict, even when it fills a fresh module cache; with
/// `-v` it lists the routes and messaging resources too.
#[test]
fn check_prints_only_its_verdict_and_with_v_the_routes_and_channels() {
    let config = built_sample();
    let cache = tempfile::tempdir().expect("a temporary folder");
    let check = |flags: &[&str]| {
        command(&[&["check", config][..], flags].concat())
            .env("WISP_CACHE_DIR", cache.path())
            .output()
            .expect("running wisp")
    };
    let out = check(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "nothing but the verdict");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(": ok ("), "{stdout}");

    let out = check(&["-v"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    for line in [
        "routes:",
        "  GET    /ping -> ping",
        "messaging:",
        "  private_rooms: ",
        " websocket=yes private=yes history=100 presence=yes",
    ] {
        assert!(stdout.contains(line), "no `{line}` in:\n{stdout}");
    }
}

/// A function whose `wisp.build` folder is wrong, with its wasm file in place.
fn project_with_a_wrong_build_folder(build: &str) -> tempfile::TempDir {
    let project = empty_project();
    let root = project.path();
    std::fs::create_dir_all(root.join("functions")).expect("functions/");
    std::fs::create_dir_all(root.join("artifacts")).expect("artifacts/");
    std::fs::create_dir_all(root.join("not-a-crate")).expect("not-a-crate/");
    std::fs::copy(
        repo().join("config/artifacts/ping.wasm"),
        root.join("artifacts/ping.wasm"),
    )
    .expect("copying ping.wasm");
    std::fs::write(
        root.join("functions/ping.yaml"),
        format!(
            "id: ''\ndescription: ping\nsource: .\ntrigger:\n  type: https\n  method: GET\n  \
             paths: [/ping]\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: ping\n\
             wisp:\n  build: {build}\n"
        ),
    )
    .expect("writing ping.yaml");
    project
}

/// A wrong `wisp.build` folder is a warning in `check`, in `build` and in `serve --build`
/// alike: the function's wasm file is served as it is.
#[test]
fn a_wrong_build_folder_is_a_warning_in_check_build_and_serve_build() {
    built_sample(); // for config/artifacts/ping.wasm
    for (build, warning) in [
        ("../nowhere", "does not exist"),
        ("not-a-crate", "has no Cargo.toml"),
    ] {
        let project = project_with_a_wrong_build_folder(build);
        let dir = utf8(project.path());
        let check = wisp(&["check", dir]);
        assert!(check.status.success(), "{}", text(&check.stderr));
        assert!(
            text(&check.stderr).contains(warning),
            "{}",
            text(&check.stderr)
        );

        let build_out = wisp(&["build", dir]);
        assert!(build_out.status.success(), "{}", text(&build_out.stderr));
        let said = text(&build_out.stderr);
        assert!(
            said.contains(warning) && said.contains("wisp: skipped 1"),
            "{said}"
        );

        let log = project.path().join("serve.log");
        let file = std::fs::File::create(&log).expect("a log file");
        let args = ["serve", dir, "--build", "--port", "0"];
        let server = Server::logging(&args, &[], "data in", file.into());
        let answer = server.get("/ping");
        assert!(answer.ends_with("pong"), "{answer}");
        drop(server);
        let logged = std::fs::read_to_string(&log).expect("the log");
        assert!(logged.contains(warning), "{logged}");
    }
}

/// `wisp build` says what it did: built, copied again, or up to date.
#[test]
fn build_says_what_it_built_and_what_was_up_to_date() {
    let project = empty_project();
    let root = project.path();
    let guest = root.join("guest");
    std::fs::create_dir_all(guest.join("src")).expect("guest/src");
    std::fs::write(
        guest.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .expect("Cargo.toml");
    std::fs::write(
        guest.join("src/lib.rs"),
        "#[no_mangle]\npub extern \"C\" fn tiny() -> u32 { 0 }\n",
    )
    .expect("lib.rs");
    std::fs::create_dir_all(root.join("functions")).expect("functions/");
    std::fs::write(
        root.join("functions/tiny.yaml"),
        "id: ''\ndescription: tiny\nsource: .\ntrigger:\n  type: https\n  method: GET\n  \
         paths: [/tiny]\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: tiny\n\
         wisp:\n  build: guest\n",
    )
    .expect("tiny.yaml");
    let dir = utf8(root);
    let summary = || {
        let out = wisp(&["build", dir]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let said = text(&out.stderr);
        said.lines()
            .last()
            .expect("a summary")
            .trim_start_matches("wisp: ")
            .to_owned()
    };
    assert_eq!(summary(), "built 1");
    assert!(root.join("artifacts/tiny.wasm").is_file());
    assert_eq!(summary(), "1 up to date");
    std::fs::remove_file(root.join("artifacts/tiny.wasm")).expect("removing tiny.wasm");
    assert_eq!(summary(), "copied 1");
    assert_eq!(summary(), "1 up to date");

    let empty = empty_project();
    let out = wisp(&["build", utf8(empty.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("wisp: nothing to build"),
        "{}",
        text(&out.stderr)
    );
}

/// Log lines carry no ANSI colours when stderr is not a terminal; on one they do,
/// unless `NO_COLOR` is set.
#[test]
fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    let config = built_sample();
    let fresh_cache = || tempfile::tempdir().expect("a temporary folder");
    // Piped: `check` with `WISP_LOG=info` logs the cache filling up.
    let cache = fresh_cache();
    let out = command(&["check", config])
        .env("WISP_CACHE_DIR", cache.path())
        .env("WISP_LOG", "info")
        .output()
        .expect("running wisp");
    let log = text(&out.stderr);
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\x1b'), "colours in a pipe:\n{log:?}");

    // On a terminal (util-linux `script` gives one), if the system has it.
    if Command::new("script").arg("--version").output().is_err() {
        return;
    }
    let on_terminal = |no_color: Option<&str>| {
        let cache = fresh_cache();
        let line = format!("'{}' check '{config}'", env!("CARGO_BIN_EXE_wisp"));
        let mut script = Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .env("WISP_CACHE_DIR", cache.path())
            .env("WISP_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        text(&script.output().expect("running script").stdout)
    };
    let coloured = on_terminal(None);
    assert!(
        coloured.contains("INFO") && coloured.contains('\x1b'),
        "{coloured:?}"
    );
    let plain = on_terminal(Some("1"));
    assert!(
        plain.contains("INFO") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let empty = on_terminal(Some(""));
    assert!(
        empty.contains('\x1b'),
        "an empty NO_COLOR counts as unset: {empty:?}"
    );
}

/// `wisp` running in the background with every line it writes (stdout and stderr) sent
/// here as it comes; killed when dropped.
struct Watched {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    addr: String,
    /// The start-up lines up to the one waited for.
    banner: Vec<String>,
}

impl Watched {
    /// Starts `wisp` with `args`, and waits for the banner's line containing `ready`.
    fn start(args: &[&str], ready: &str) -> Self {
        let mut child = command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wisp");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut watched = Self {
            child,
            lines,
            addr: String::new(),
            banner: Vec::new(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !watched
            .banner
            .last()
            .is_some_and(|line| line.contains(ready))
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = watched.lines.recv_timeout(left).expect("the banner");
            watched.banner.push(line);
        }
        let first = watched.banner_line("serving");
        watched.addr = first
            .rsplit("http://")
            .next()
            .expect("an address")
            .to_owned();
        watched
    }

    /// The banner's line containing `text`.
    fn banner_line(&self, text: &str) -> String {
        let line = self.banner.iter().find(|line| line.contains(text));
        line.unwrap_or_else(|| panic!("no `{text}` in {:#?}", self.banner))
            .clone()
    }

    /// The next line containing `text`, the lines before it passed over.
    fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("wisp wrote no line containing `{text}`"),
            }
        }
    }

    fn get(&self, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("response");
        answer
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project of one function, `ping` (the sample's wasm) at `path`.
fn ping_project(dir: &Path, path: &str) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::create_dir_all(dir.join("artifacts")).unwrap();
    std::fs::write(dir.join("config.yaml"), "id: QmReloadTest\nname: reload\n").unwrap();
    write_ping_yaml(dir, path);
    let wasm = Path::new(built_sample()).join("artifacts/ping.wasm");
    std::fs::copy(wasm, dir.join("artifacts/ping.wasm")).unwrap();
}

fn write_ping_yaml(dir: &Path, path: &str) {
    let yaml = format!(
        "source: .\ntrigger:\n  type: https\n  method: GET\n  paths: [{path}]\nexecution:\n  timeout: 5s\n  memory: 32MB\n  call: ping\n"
    );
    std::fs::write(dir.join("functions/ping.yaml"), yaml).unwrap();
}

#[test]
fn sighup_reloads_serve_and_a_broken_change_keeps_the_old_deployment() {
    let project = tempfile::tempdir().unwrap();
    ping_project(project.path(), "/ping");
    let args = ["serve", utf8(project.path()), "--listen", "127.0.0.1:0"];
    let server = Watched::start(&args, "SIGHUP reloads");
    assert!(server.get("/ping").ends_with("pong"));
    let hang_up = || {
        let sent = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    };

    write_ping_yaml(project.path(), "/moved");
    hang_up();
    server.wait_for("reloaded: deployment 2 serving");
    assert!(server.get("/moved").ends_with("pong"));
    assert!(server.get("/ping").starts_with("HTTP/1.1 404"));

    std::fs::write(project.path().join("functions/ping.yaml"), "trigger: [\n").unwrap();
    hang_up();
    server.wait_for("functions/ping.yaml:");
    server.wait_for("not reloaded; the previous deployment is still serving");
    assert!(
        server.get("/moved").ends_with("pong"),
        "the old deployment still serves"
    );
}

#[test]
fn dev_reloads_on_a_change_and_says_how_long_from_save_to_serving() {
    let project = tempfile::tempdir().unwrap();
    ping_project(project.path(), "/ping");
    let args = ["dev", utf8(project.path()), "--listen", "127.0.0.1:0"];
    let server = Watched::start(&args, "watching");
    assert!(server.get("/ping").ends_with("pong"));
    write_ping_yaml(project.path(), "/moved");
    server.wait_for("changed:");
    let reloaded = server.wait_for("reloaded: deployment 2 serving");
    assert!(reloaded.contains("from save to serving"), "{reloaded}");
    assert!(server.get("/moved").ends_with("pong"));
    // A wasm file that is not wasm: refused, the old goes on.
    std::fs::write(project.path().join("artifacts/ping.wasm"), b"not wasm").unwrap();
    server.wait_for("not reloaded; the previous deployment is still serving");
    assert!(server.get("/moved").ends_with("pong"));
}

#[test]
fn json_logs_carry_a_line_per_request_and_per_websocket_closed() {
    let project = tempfile::tempdir().unwrap();
    ping_project(project.path(), "/ping");
    std::fs::create_dir_all(project.path().join("messaging")).unwrap();
    std::fs::write(
        project.path().join("messaging/chan.yaml"),
        "matcher: chan\nwebsocket: true\n",
    )
    .unwrap();
    let args = [
        "serve",
        utf8(project.path()),
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ];
    let server = Watched::start(&args, "SIGHUP reloads");
    assert!(server.get("/ping?secret=1").ends_with("pong"));
    let line = server.wait_for("\"request\"");
    let json: serde_json::Value = serde_json::from_str(&line).expect(&line);
    assert_eq!(json["target"], "wisp::access", "{line}");
    assert_eq!(json["level"], "INFO", "{line}");
    assert_eq!(json["method"], "GET", "{line}");
    assert_eq!(json["path"], "/ping", "the query is never logged: {line}");
    assert_eq!(json["status"], 200, "{line}");
    assert_eq!(json["function"], "ping", "{line}");
    assert!(json["ms"].as_f64().is_some(), "{line}");

    // A WebSocket: its upgrade is a request line (101), its end a line of its own.
    let hash = server
        .banner_line("WebSocket channels at")
        .split("/ws-")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the banner names the project hash")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET /ws-{hash}/chan HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let upgrade = server.wait_for("\"request\"");
    assert!(upgrade.contains("\"status\":101"), "{upgrade}");
    drop(stream);
    let closed = server.wait_for("WebSocket closed");
    let json: serde_json::Value = serde_json::from_str(&closed).expect(&closed);
    assert_eq!(json["on"], "chan", "{closed}");
    assert!(json["seconds"].as_f64().is_some(), "{closed}");
}

#[test]
fn no_request_log_leaves_the_access_lines_out() {
    let project = tempfile::tempdir().unwrap();
    ping_project(project.path(), "/ping");
    let args = [
        "serve",
        utf8(project.path()),
        "--listen",
        "127.0.0.1:0",
        "--no-request-log",
    ];
    let server = Watched::start(&args, "SIGHUP reloads");
    assert!(server.get("/ping").ends_with("pong"));
    // Something is logged after the request (a reload), and no access line came first.
    std::fs::write(project.path().join("functions/ping.yaml"), "trigger: [\n").unwrap();
    let sent = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut before = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = server.lines.recv_timeout(left).expect("a reload line");
        if line.contains("not reloaded") {
            break;
        }
        before.push(line);
    }
    assert!(
        !before.iter().any(|line| line.contains("wisp::access")),
        "{before:#?}"
    );
}

#[test]
fn admin_listen_serves_metrics_and_the_console_apart_from_the_main_port() {
    let project = tempfile::tempdir().unwrap();
    ping_project(project.path(), "/ping");
    let args = [
        "serve",
        utf8(project.path()),
        "--listen",
        "127.0.0.1:0",
        // A port alone, as --listen takes it: on 127.0.0.1.
        "--admin-listen",
        ":0",
        "--admin-token",
        "t0ken",
    ];
    let server = Watched::start(&args, "SIGHUP reloads");
    let line = server.banner_line("console at http://");
    assert!(line.contains("(token required)"), "{line}");
    let admin = line
        .split("console at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the banner names the admin address")
        .to_owned();
    assert!(server.get("/ping").ends_with("pong"));
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&admin).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(get("/metrics").starts_with("HTTP/1.1 401"));
    let metrics = get("/metrics?token=t0ken");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let body = metrics.split_once("\r\n\r\n").unwrap().1;
    let served = wisp::metrics::value(
        body,
        "wisp_http_requests_total",
        &[("function", "ping"), ("status", "200")],
    );
    assert_eq!(served, Some(1.0), "{body}");
    // Nothing administrative on the main port.
    assert!(server.get("/metrics").starts_with("HTTP/1.1 404"));
}

/// A self-signed certificate for localhost and its key, written to `cert.pem` and
/// `key.pem` in `dir`; their paths.
fn certificate_files(dir: &Path) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .expect("a self-signed certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("writing cert.pem");
    std::fs::write(&key, made.key_pair.serialize_pem()).expect("writing key.pem");
    (utf8(&cert).to_owned(), utf8(&key).to_owned())
}

#[test]
fn serve_with_tls_says_https_and_wss_and_redirects_plain_http() {
    let project = empty_project();
    let dir = utf8(project.path());
    let (cert, key) = certificate_files(project.path());
    // From the settings file, whose keys are the flags' names.
    let file = settings_file(
        project.path(),
        &format!(
            "project: {dir}\nlisten: 127.0.0.1:0\ntls-cert: {cert}\ntls-key: {key}\n\
             redirect-http: 127.0.0.1:0\n"
        ),
    );
    let server = Server::start(&["serve", "--settings", &file], &[], "settings from");
    let banner = &server.banner;
    let first = banner.lines().next().expect("a banner");
    assert!(first.contains(" on https://127.0.0.1:"), "{banner}");
    let port = first.rsplit(':').next().expect("a port");
    for line in [
        format!("WebSocket channels at wss://127.0.0.1:{port}/ws-"),
        format!("broker protocol (SUBSCRIBE:, PUBLISH:) at wss://127.0.0.1:{port}/ws-"),
        format!("TLS certificate {cert}, key {key} (read again when they change)"),
        format!("redirects to https:// on port {port}"),
    ] {
        assert!(banner.contains(&line), "no `{line}` in:\n{banner}");
    }
    assert!(!banner.contains("ws://127"), "{banner}");
    let redirect = banner
        .lines()
        .find_map(|line| line.trim().strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
        .expect("the redirect listener's address");
    let mut stream = std::net::TcpStream::connect(redirect).expect("connect");
    write!(
        stream,
        "GET /x?y=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("a request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the answer");
    assert!(answer.starts_with("HTTP/1.1 308 "), "{answer}");
    assert!(
        answer.contains(&format!("location: https://localhost:{port}/x?y=1\r\n")),
        "{answer}"
    );
}

#[test]
fn tls_flags_come_in_pairs_and_unusable_files_stop_the_start() {
    let project = empty_project();
    let dir = utf8(project.path());
    let (cert, key) = certificate_files(project.path());
    let refused = |flags: &[&str]| {
        let args = [&["serve", dir, "--listen", "127.0.0.1:0"][..], flags].concat();
        let out = wisp(&args);
        assert!(!out.status.success(), "{flags:?} started");
        text(&out.stderr)
    };
    assert_eq!(
        refused(&["--tls-cert", &cert]),
        "error: --tls-cert needs --tls-key: give the certificate's private key too (PEM)\n"
    );
    assert_eq!(
        refused(&["--tls-key", &key]),
        "error: --tls-key needs --tls-cert: give the certificate (and its chain) too (PEM)\n"
    );
    assert_eq!(
        refused(&["--redirect-http", "127.0.0.1:0"]),
        "error: --redirect-http sends clients to HTTPS, which needs --tls-cert and --tls-key\n"
    );
    // The key given as the certificate, and the certificate as the key.
    assert_eq!(
        refused(&["--tls-cert", &key, "--tls-key", &cert]),
        format!(
            "error: TLS: {key}: no `BEGIN CERTIFICATE` block; --tls-cert takes the \
             certificate (and its chain) in PEM\n"
        )
    );
    let missing = format!("{dir}/missing.pem");
    let message = refused(&["--tls-cert", &missing, "--tls-key", &key]);
    assert!(
        message.starts_with(&format!("error: TLS: cannot read {missing}: ")),
        "{message}"
    );
}
