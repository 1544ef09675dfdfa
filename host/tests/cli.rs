//! The `wisp` binary as a user runs it: help, check and serve on broken projects.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn wisp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(args)
        .env(
            "WISP_CACHE_DIR",
            repo().join("target").join("wisp-test-cache"),
        )
        .output()
        .expect("running wisp")
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
    let config = repo().join("config");
    let config = config.to_str().expect("utf-8 path");
    let build = wisp(&["build", config]);
    assert!(build.status.success(), "{}", text(&build.stderr));
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
    use std::io::{BufRead, BufReader};
    let config = repo().join("config");
    let config = config.to_str().expect("utf-8 path");
    assert!(wisp(&["build", config]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["serve", config, "--listen", "127.0.0.1:0"])
        .env(
            "WISP_CACHE_DIR",
            repo().join("target").join("wisp-test-cache"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting wisp serve");
    let mut banner = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("reading the banner");
    let addr = banner
        .trim()
        .rsplit("http://")
        .next()
        .expect("an address")
        .to_owned();
    // It serves: one raw HTTP request.
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("response");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("pong"),
        "{answer}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("waiting for wisp");
    assert!(status.success(), "wisp exited with {status}");
}
