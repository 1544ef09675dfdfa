//! A state engine that counts its calls and their failures (`wisp_state_operations`,
//! `wisp_state_errors`), around either engine. Used only while metrics are kept; an
//! engine that answers at once still does (the count is taken when the call ends).

use super::*;

/// `inner`, counted.
pub struct Metered {
    inner: Arc<dyn StateEngine>,
}

impl Metered {
    /// `inner` counted, if metrics are kept; else `inner` itself.
    pub fn wrap(inner: Arc<dyn StateEngine>) -> Arc<dyn StateEngine> {
        match crate::metrics::get() {
            Some(_) => Arc::new(Self { inner }),
            None => inner,
        }
    }
}

/// `call`, counted as `operation`.
fn counted<'a, T: Send + 'a>(
    operation: &'static str,
    call: StateFuture<'a, T>,
) -> StateFuture<'a, T> {
    Box::pin(async move {
        let result = call.await;
        if let Some(metrics) = crate::metrics::get() {
            metrics.state_operation(operation, result.is_err());
        }
        result
    })
}

impl StateEngine for Metered {
    fn get<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, Option<Vec<u8>>> {
        counted("get", self.inner.get(space, key))
    }
    fn put<'a>(&'a self, space: &'a Space, key: &'a [u8], value: &'a [u8]) -> StateFuture<'a, ()> {
        counted("put", self.inner.put(space, key, value))
    }
    fn delete<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, bool> {
        counted("delete", self.inner.delete(space, key))
    }
    fn keys<'a>(&'a self, space: &'a Space, prefix: &'a [u8]) -> StateFuture<'a, Vec<Vec<u8>>> {
        counted("keys", self.inner.keys(space, prefix))
    }
    fn add_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        data: &'a [u8],
        write: ObjectWrite,
    ) -> StateFuture<'a, u32> {
        counted(
            "add_object",
            self.inner.add_object(space, name, data, write),
        )
    }
    fn object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, Option<Object>> {
        counted("object", self.inner.object(space, name, version))
    }
    fn versions<'a>(&'a self, space: &'a Space, name: &'a str) -> StateFuture<'a, Vec<u32>> {
        counted("versions", self.inner.versions(space, name))
    }
    fn objects<'a>(&'a self, space: &'a Space) -> StateFuture<'a, Vec<(String, u32)>> {
        counted("objects", self.inner.objects(space))
    }
    fn delete_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, bool> {
        counted(
            "delete_object",
            self.inner.delete_object(space, name, version),
        )
    }
    fn used<'a>(&'a self, space: &'a Space) -> StateFuture<'a, u64> {
        counted("used", self.inner.used(space))
    }
    fn append<'a>(
        &'a self,
        log: &'a LogSpace,
        message: LogMessage<'a>,
    ) -> StateFuture<'a, Appended> {
        counted("append", self.inner.append(log, message))
    }
    fn append_all<'a>(
        &'a self,
        log: &'a LogSpace,
        messages: &'a [LogMessage<'a>],
    ) -> StateFuture<'a, Vec<Appended>> {
        counted("append", self.inner.append_all(log, messages))
    }
    fn answers_at_once(&self) -> bool {
        self.inner.answers_at_once()
    }
    fn follow<'a>(&'a self, log: &'a LogSpace, after: u64) -> StateFuture<'a, Option<LogFollow>> {
        counted("follow", self.inner.follow(log, after))
    }
    fn read_log<'a>(
        &'a self,
        log: &'a LogSpace,
        range: Range,
        now_ms: u64,
    ) -> StateFuture<'a, LogRead> {
        counted("read_log", self.inner.read_log(log, range, now_ms))
    }
}
