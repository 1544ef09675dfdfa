//! The host calls on inline WAT, with no runtime and no server: the state is an
//! [`AbiState`] on its own (the view is the identity), and messaging is a recorder.

use super::channels::{Channels, GuestEnv, Refusal};
use super::{add_to_linker, AbiState, EventData, PubSubEvent, ENV_MODULE, SDK_MODULE};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine, Linker, Module, Store};
use wisp_abi::imports::{ValType, IMPORTS};

/// Messaging that records what guests asked of it; channel `refused` is refused.
#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<(usize, usize, String, Bytes)>>,
    subscribed: Mutex<Vec<(usize, String)>>,
}

impl Channels for Recorder {
    fn publish(
        &self,
        function: usize,
        scope: usize,
        channel: &str,
        data: Bytes,
    ) -> Result<(), Refusal> {
        if channel == "refused" {
            return Err("no messaging resource matches".into());
        }
        let entry = (function, scope, channel.to_owned(), data);
        self.published.lock().unwrap().push(entry);
        Ok(())
    }

    fn subscribe(&self, function: usize, channel: &str) -> Result<(), Refusal> {
        self.subscribed
            .lock()
            .unwrap()
            .push((function, channel.to_owned()));
        Ok(())
    }

    fn websocket_path(&self, _scope: usize, channel: &str) -> Result<String, Refusal> {
        Ok(format!("ws-test/{channel}"))
    }

    fn max_message(&self) -> usize {
        8
    }
}

fn engine() -> Engine {
    Engine::new(&Config::new()).unwrap()
}

fn linker(engine: &Engine) -> Linker<AbiState> {
    let mut linker = Linker::new(engine);
    add_to_linker(&mut linker, |state: &mut AbiState| state).unwrap();
    linker
}

fn state(channels: Arc<Recorder>, event: EventData) -> AbiState {
    AbiState {
        memory: None,
        event_id: 7,
        event,
        function: "probe".into(),
        deadline: Instant::now() + Duration::from_secs(5),
        env: GuestEnv {
            channels,
            function: 3,
            scope: 1,
            state: None,
            egress: None,
        },
        stores: Default::default(),
        http_clients: Default::default(),
    }
}

fn wasm_type(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
    }
}

/// Every import of the contract, which is also every raw import `wisp-sdk` declares (it
/// declares them from the same list), links against the host's calls with its signature.
#[test]
fn every_import_of_the_contract_links_with_its_signature() {
    let engine = engine();
    let mut wat = String::from("(module\n");
    for import in IMPORTS {
        let params: Vec<_> = import.params.iter().map(wasm_type).collect();
        let results: Vec<_> = import.results.iter().map(wasm_type).collect();
        wat += &format!(
            "  (import \"{}\" \"{}\" (func (param {}) (result {})))\n",
            import.module,
            import.name,
            params.join(" "),
            results.join(" ")
        );
    }
    wat += ")";
    let module = Module::new(&engine, &wat).unwrap();
    linker(&engine)
        .instantiate_pre(&module)
        .expect("the host defines every import of the contract");
}

/// And the host defines nothing under Taubyte's modules that the contract does not list.
#[test]
fn the_host_defines_only_what_the_contract_lists() {
    let engine = engine();
    let linker = linker(&engine);
    let mut store = Store::new(&engine, state(Default::default(), no_event()));
    let mut defined = 0;
    for (module, name, _) in linker.iter(&mut store) {
        assert!(
            IMPORTS.iter().any(|i| i.module == module && i.name == name),
            "{module}::{name} is defined by the host but missing from wisp-abi"
        );
        assert!([SDK_MODULE, ENV_MODULE, wisp_abi::WISP_MODULE].contains(&module));
        defined += 1;
    }
    assert_eq!(defined, IMPORTS.len());
}

fn no_event() -> EventData {
    EventData::PubSub(PubSubEvent {
        channel: "in".into(),
        data: Bytes::from_static(b"payload"),
    })
}

/// Runs export `run` of `wat` on a fresh state; returns its i32 result and the state.
async fn run(wat: &str, channels: Arc<Recorder>) -> (i32, AbiState) {
    let engine = engine();
    let module = Module::new(&engine, wat).unwrap();
    let pre = linker(&engine).instantiate_pre(&module).unwrap();
    let mut store = Store::new(&engine, state(channels, no_event()));
    let instance = pre.instantiate_async(&mut store).await.unwrap();
    store.data_mut().memory = instance.get_memory(&mut store, "memory");
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let result = run.call_async(&mut store, ()).await.unwrap();
    (result, store.into_data())
}

const PUBLISH: &str = r#"(module
  (import "taubyte/sdk" "publishToChannel" (func $publish (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "room")
  (data (i32.const 32) "refused")
  (data (i32.const 48) "hi there, all")
  (data (i32.const 64) "\ff\fe")
  (func (export "run") (result i32)
    ;; errno of each call, one decimal digit each: ok, too long, refused, not UTF-8, out of bounds
    (i32.add (i32.mul (call $publish (i32.const 16) (i32.const 4) (i32.const 48) (i32.const 2)) (i32.const 10000))
    (i32.add (i32.mul (call $publish (i32.const 16) (i32.const 4) (i32.const 48) (i32.const 13)) (i32.const 1000))
    (i32.add (i32.mul (call $publish (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 2)) (i32.const 100))
    (i32.add (i32.mul (call $publish (i32.const 64) (i32.const 2) (i32.const 48) (i32.const 2)) (i32.const 10))
             (call $publish (i32.const 65530) (i32.const 100) (i32.const 48) (i32.const 2))))))))"#;

#[tokio::test]
async fn publish_checks_size_name_and_bounds_before_messaging_sees_it() {
    let channels = Arc::new(Recorder::default());
    let (codes, _) = run(PUBLISH, channels.clone()).await;
    // 0 ok; 21 (publish failed) for over the 8-byte limit, a refused channel and a name
    // that is not UTF-8; 3 (address out of memory) for a name past the memory's end.
    assert_eq!(codes, 21 * 1000 + 21 * 100 + 21 * 10 + 3);
    let published = channels.published.lock().unwrap();
    assert_eq!(
        *published,
        [(3, 1, "room".to_owned(), Bytes::from_static(b"hi"))],
        "only the good publish reaches messaging, from the calling function and scope"
    );
}

const MESSAGE: &str = r#"(module
  (import "taubyte/sdk" "getMessageDataSize" (func $size (param i32 i32) (result i32)))
  (import "taubyte/sdk" "getMessageData" (func $data (param i32 i32) (result i32)))
  (import "taubyte/sdk" "setSubscriptionChannel" (func $subscribe (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "news")
  (func (export "run") (result i32)
    ;; a wrong event id is errno 1; the right one writes the size, then the bytes at 128
    (if (i32.ne (call $size (i32.const 8) (i32.const 64)) (i32.const 1)) (then (return (i32.const -1))))
    (if (i32.ne (call $size (i32.const 7) (i32.const 64)) (i32.const 0)) (then (return (i32.const -2))))
    (if (i32.ne (call $data (i32.const 7) (i32.const 128)) (i32.const 0)) (then (return (i32.const -3))))
    (drop (call $subscribe (i32.const 16) (i32.const 4)))
    ;; size * 1000 + the first byte written
    (i32.add (i32.mul (i32.load (i32.const 64)) (i32.const 1000)) (i32.load8_u (i32.const 128)))))"#;

#[tokio::test]
async fn a_message_event_reads_back_and_subscribe_names_the_caller() {
    let channels = Arc::new(Recorder::default());
    let (read, mut state) = run(MESSAGE, channels.clone()).await;
    assert_eq!(read, b"payload".len() as i32 * 1000 + i32::from(b'p'));
    assert_eq!(
        *channels.subscribed.lock().unwrap(),
        [(3, "news".to_owned())]
    );
    assert!(state.http(7).is_err(), "a pub/sub event is no HTTP event");
}
