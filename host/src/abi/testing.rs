//! Test helpers shared by the host's unit tests (the lowest module that needs them).

use std::sync::{Arc, Mutex};

/// Runs `body` with the log captured on this thread (no ANSI colours); returns the log.
pub fn logged(body: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    let bytes = log.0.lock().unwrap().clone();
    String::from_utf8(bytes).expect("UTF-8 log")
}
