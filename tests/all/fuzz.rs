//! Property tests with random input where it enters Wisp: the YAML loader, and the
//! host-call boundary (random pointers and lengths from a guest).

use proptest::prelude::*;
use wisp_e2e::{Project, Server};

/// Host calls under `taubyte/sdk`: name, parameter count, whether it returns an errno.
const CALLS: &[(&str, usize, bool)] = &[
    ("getEventType", 2, false),
    ("getHttpEventMethodSize", 2, true),
    ("getHttpEventMethod", 3, true),
    ("getHttpEventHostSize", 2, true),
    ("getHttpEventHost", 3, true),
    ("getHttpEventPathSize", 2, true),
    ("getHttpEventPath", 3, true),
    ("getHttpEventUserAgentSize", 2, true),
    ("getHttpEventUserAgent", 3, true),
    ("getHttpEventQueryValueByNameSize", 4, true),
    ("getHttpEventQueryValueByName", 5, true),
    ("getHttpEventRequestQueryKeysSize", 2, true),
    ("getHttpEventRequestQueryKeys", 2, true),
    ("getHttpEventHeadersSize", 4, true),
    ("getHttpEventHeaders", 5, true),
    ("getHttpEventRequestHeaderKeysSize", 2, true),
    ("getHttpEventRequestHeaderKeys", 3, true),
    ("getHttpEventHeaderVarNameByIdSize", 2, true),
    ("getHttpEventHeaderVarNameById", 3, true),
    ("readHttpEventBody", 4, true),
    ("closeHttpEventBody", 1, true),
    ("eventHttpWrite", 4, true),
    ("eventHttpFlush", 1, true),
    ("eventHttpRetCode", 2, true),
    ("eventHttpHeaderAdd", 5, true),
    ("eventHttpRedirect", 4, true),
    ("setSubscriptionChannel", 2, true),
    ("publishToChannel", 4, true),
    ("getWebSocketURLSize", 3, true),
    ("getWebSocketURL", 3, true),
    ("getMessageDataSize", 2, true),
    ("getMessageData", 2, true),
    ("getMessageChannelSize", 2, true),
    ("getMessageChannel", 2, true),
];

/// Host calls made per request.
const CALLS_PER_REQUEST: u32 = 200;

/// A guest that reads `?seed=`, then makes [`CALLS_PER_REQUEST`] host calls chosen
/// at random, with random arguments biased toward edges (0, -1, the end of its one
/// 64 KiB page), and the real event id most of the time.
fn fuzz_guest() -> String {
    let mut imports = String::new();
    let mut wrappers = String::new();
    let mut table = String::new();
    for (i, (name, arity, returns)) in CALLS.iter().enumerate() {
        let params = "i32 ".repeat(*arity);
        let result = if *returns { "(result i32)" } else { "" };
        imports.push_str(&format!(
            "(import \"taubyte/sdk\" \"{name}\" (func $i{i} (param {params}) {result}))\n"
        ));
        let args: String = (0..*arity).map(|a| format!("(local.get {a}) ")).collect();
        let body = if *returns {
            format!("(call $i{i} {args})")
        } else {
            format!("(call $i{i} {args}) (i32.const 0)")
        };
        wrappers.push_str(&format!(
            "(func $w{i} (param i32 i32 i32 i32 i32) (result i32) {body})\n"
        ));
        table.push_str(&format!("$w{i} "));
    }
    let n = CALLS.len();
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 1)
  (type $wrapper (func (param i32 i32 i32 i32 i32) (result i32)))
  (table {n} funcref)
  (elem (i32.const 0) {table})
  (data (i32.const 0) "seed")
  (data (i32.const 16) "done")
  (global $state (mut i32) (i32.const 1))
  (global $event (mut i32) (i32.const 0))
  {wrappers}
  (func $rand (result i32)
    (local $x i32)
    (local.set $x (global.get $state))
    (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
    (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
    (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
    (global.set $state (local.get $x))
    (local.get $x))
  ;; An argument: any value, a pointer inside the page, a small number, near the
  ;; page's end, zero, -1, or the real event id.
  (func $arg (result i32)
    (local $r i32)
    (local.set $r (call $rand))
    (block $done (result i32)
      (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
        (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 (i32.rem_u (local.get $r) (i32.const 7))))
        (br $done (call $rand)))
        (br $done (i32.and (call $rand) (i32.const 0xffff))))
        (br $done (i32.and (call $rand) (i32.const 0xff))))
        (br $done (i32.sub (i32.const 65536) (i32.and (call $rand) (i32.const 15)))))
        (br $done (i32.const 0)))
        (br $done (i32.const -1)))
      (global.get $event)))
  ;; Parses the decimal ?seed= into $state.
  (func $seed (param $id i32)
    (local $len i32) (local $i i32) (local $v i32)
    (drop (call $i10 (local.get $id) (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 32)))
    ;; At most the 32-byte buffer: the digits end at the first other byte.
    (local.set $len (i32.const 32))
    (block $end (loop $next
      (br_if $end (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $v (i32.load8_u (i32.add (i32.const 64) (local.get $i))))
      (br_if $end (i32.lt_u (local.get $v) (i32.const 48)))
      (br_if $end (i32.gt_u (local.get $v) (i32.const 57)))
      (global.set $state (i32.add (i32.mul (global.get $state) (i32.const 10)) (i32.sub (local.get $v) (i32.const 48))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (if (i32.eqz (global.get $state)) (then (global.set $state (i32.const 1)))))
  (func (export "handler") (param $id i32)
    (local $k i32)
    (global.set $event (local.get $id))
    (call $seed (local.get $id))
    (block $end (loop $next
      (br_if $end (i32.ge_u (local.get $k) (i32.const {CALLS_PER_REQUEST})))
      (drop (call_indirect (type $wrapper)
        (call $arg) (call $arg) (call $arg) (call $arg) (call $arg)
        (i32.rem_u (call $rand) (i32.const {n}))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    ;; Restore a sane ending whatever the random calls did.
    (drop (call $i21 (local.get $id) (i32.const 16) (i32.const 4) (i32.const 32)))))
"#
    )
}

proptest! {
    // Failures are kept beside this file, in fuzz.proptest-regressions. Named
    // outright: the default would look for them under tests/proptest-regressions/,
    // as main.rs makes this folder a crate root to proptest.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(300)
    })]

    /// 300 seeds × 200 random host calls: every request gets an answer, none
    /// comes from a host panic, and the server keeps serving.
    #[test]
    fn random_host_calls_never_break_the_host(seeds in proptest::collection::vec(any::<u32>(), 1..4)) {
        let runtime = fuzz_runtime();
        runtime.block_on(async {
            let server = fuzz_server().await;
            for seed in seeds {
                // A guest may flush and then trap: the response is then cut short on
                // purpose (even before its head is out), so any ending is accepted
                // but the one that means a host panic.
                let (_, answer) = wisp_e2e::raw_get(server.addr, &format!("/fuzz?seed={seed}")).await;
                prop_assert!(!answer.ends_with("internal error\n"), "the host panicked on seed {}", seed);
                let (status, answer) = wisp_e2e::raw_get(server.addr, "/ok").await;
                prop_assert_eq!(status, Some(200), "the server stopped serving after seed {}: {:?}", seed, answer);
            }
            Ok(())
        })?;
    }

    /// Random YAML in every resource file: the loader reports, it never panics. A
    /// project comes back exactly when no problem is an error, and every problem
    /// names the file it is in.
    #[test]
    fn the_loader_never_panics_on_random_yaml(
        function in yaml_document(), messaging in yaml_document(), domain in yaml_document(),
        config in yaml_document(),
    ) {
        const FILES: [&str; 4] = ["config.yaml", "functions/f.yaml", "messaging/m.yaml", "domains/d.yaml"];
        let p = Project::new();
        for (file, yaml) in FILES.iter().zip([&config, &function, &messaging, &domain]) {
            p.file(file, yaml);
        }
        let loaded = wisp::project::load(p.path());
        prop_assert_eq!(loaded.project.is_some(), !loaded.has_errors(), "{:?}", loaded.diagnostics);
        for problem in &loaded.diagnostics {
            prop_assert!(
                FILES.iter().any(|file| problem.file == std::path::Path::new(file)),
                "a problem names no file of the project: {}", problem
            );
        }
    }
}

fn fuzz_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().expect("a tokio runtime"))
}

/// One server for all fuzz cases (loading it per case would dominate the run).
async fn fuzz_server() -> &'static Server {
    static SERVER: tokio::sync::OnceCell<(Project, Server)> = tokio::sync::OnceCell::const_new();
    let (_, server) = SERVER
        .get_or_init(|| async {
            let p = Project::new();
            p.file("messaging/all.yaml", "channel:\n  regex: true\n  match: \".*\"\nbridges:\n  websocket:\n    enable: true\n");
            let wasm = p.wat("fuzz", &fuzz_guest());
            p.http_function("fuzz", "GET", "/fuzz", "handler", &wasm);
            let ok = p.wat("ok", wisp_e2e::OK_WAT);
            p.http_function("ok", "GET", "/ok", "handler", &ok);
            let server = Server::start(p.path()).await;
            (p, server)
        })
        .await;
    server
}

/// Keys the schemas know, so random documents reach deep into the loader.
const KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "tags",
    "source",
    "trigger",
    "type",
    "method",
    "paths",
    "domains",
    "channel",
    "local",
    "execution",
    "timeout",
    "memory",
    "call",
    "wisp",
    "wasm",
    "build",
    "match",
    "regex",
    "matcher",
    "websocket",
    "bridges",
    "mqtt",
    "enable",
    "fqdn",
    "certificate",
    "self-echo",
];

fn yaml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("https".to_owned()),
        Just("pubsub".to_owned()),
        Just("GET".to_owned()),
        Just("/path".to_owned()),
        Just("20s".to_owned()),
        Just("64MB".to_owned()),
        Just("true".to_owned()),
        Just("~".to_owned()),
        Just("[a, b]".to_owned()),
        Just("\"[unclosed\"".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("-1".to_owned()),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..4).prop_map(
                |pairs| {
                    let body: Vec<String> = pairs
                        .into_iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    format!("{{{}}}", body.join(", "))
                }
            ),
        ]
    })
}

fn yaml_document() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::collection::vec((proptest::sample::select(KEYS), yaml_value()), 0..8)
            .prop_map(|pairs| pairs.into_iter().map(|(k, v)| format!("{k}: {v}\n")).collect()),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => "[ -~\n\t:{}\\[\\]-]{0,80}",
    ]
}
