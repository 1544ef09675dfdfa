//! One socket's frames on their way out: a bounded queue the subscriptions fill without
//! blocking, and the socket's writer task that empties it.

use super::Socket;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as Frame;

/// Frames on their way to one client, bounded in bytes: subscriptions fill it without
/// blocking, the socket's writer task empties it.
pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Wakes the writer: a frame was queued, or the socket is closing.
    pub(super) ready: Notify,
    /// Wakes the connection's task: the queue overflowed or a write failed.
    pub(super) trouble: Notify,
    pub(super) limit: usize,
}

struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    Open,
    /// The client fell `limit` bytes behind; what was queued is dropped.
    Overflowed,
    /// Writing failed: the connection is gone.
    Failed,
    /// The writer sends this close frame (if any), flushes and ends.
    Closing(Option<Frame>),
}

/// What the writer does next.
pub(super) enum Next {
    Write(Frame),
    Flush,
    Close(Option<Frame>),
}

impl Outbox {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                state: State::Open,
            }),
            ready: Notify::new(),
            trouble: Notify::new(),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `frame`, unless the client is already `limit` bytes behind: then nothing
    /// more is queued and the connection's task is told.
    pub(super) fn push(&self, frame: Frame) {
        let mut queue = self.lock();
        if !matches!(queue.state, State::Open) {
            return;
        }
        let len = frame.len();
        if queue.bytes + len > self.limit {
            queue.state = State::Overflowed;
            queue.frames.clear();
            queue.bytes = 0;
            drop(queue);
            self.trouble.notify_one();
            return;
        }
        queue.frames.push_back(frame);
        queue.bytes += len;
        drop(queue);
        self.ready.notify_one();
    }

    /// Drops what is queued; the writer sends `close` (if any) and ends.
    pub(super) fn close(&self, close: Option<Frame>) {
        let mut queue = self.lock();
        queue.frames.clear();
        queue.bytes = 0;
        if !matches!(queue.state, State::Failed) {
            queue.state = State::Closing(close);
        }
        drop(queue);
        self.ready.notify_one();
    }

    pub(super) fn next(&self) -> Next {
        let mut queue = self.lock();
        if let State::Closing(close) = &mut queue.state {
            return Next::Close(close.take());
        }
        match queue.frames.pop_front() {
            Some(frame) => {
                queue.bytes -= frame.len();
                Next::Write(frame)
            }
            None => Next::Flush,
        }
    }

    pub(super) fn failed(&self) {
        self.lock().state = State::Failed;
        self.trouble.notify_one();
    }

    pub(super) fn overflowed(&self) -> bool {
        matches!(self.lock().state, State::Overflowed)
    }
}

/// Writes a socket's frames from its outbox until it closes or a write fails. Only this
/// task writes, so a client that does not read never stalls the commands it sends.
pub(super) async fn write(outbox: Arc<Outbox>, mut sink: SplitSink<Socket, Frame>) {
    loop {
        let written = match outbox.next() {
            Next::Write(frame) => sink.feed(frame).await,
            // Also sends what tungstenite queued itself: pongs and close replies.
            Next::Flush => match sink.flush().await {
                Ok(()) => {
                    outbox.ready.notified().await;
                    continue;
                }
                Err(error) => Err(error),
            },
            Next::Close(frame) => {
                if let Some(frame) = frame {
                    let _ = sink.feed(frame).await;
                }
                let _ = sink.flush().await;
                return;
            }
        };
        if let Err(error) = written {
            tracing::debug!(%error, "WebSocket write failed");
            return outbox.failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_past_its_limit_drops_everything_and_says_so() {
        let outbox = Outbox::new(10);
        outbox.push(Frame::Text("12345".into()));
        outbox.push(Frame::Text("12345".into()));
        assert!(!outbox.overflowed());
        outbox.push(Frame::Text("1".into()));
        assert!(outbox.overflowed());
        assert!(matches!(outbox.next(), Next::Flush));
    }
}
