//! The flusher tasks that write WebSocket clients out, one per worker thread.
//!
//! A flusher owns a list of [`Job`]s; a publish or a client lists one and wakes
//! it, and its next round does every job listed since the last. Each socket
//! belongs to one flusher, so sockets are written in parallel on several cores
//! while each socket's frames stay in order.
//!
//! The flushers know their work only through [`FlushPart`] and [`FlushClient`]:
//! what a part of a channel and a client are is the
//! [`feed`](super::feed)'s and the [`cursor`](super::cursor)'s business.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A channel's clients as the flushers see them: split in parts, one per flusher.
pub trait FlushPart: Send + Sync {
    /// A round over part `index`: messages were published.
    fn flush_part(&self, index: usize);
}

/// One client as the flushers see it.
pub trait FlushClient: Send + Sync {
    /// The flusher that writes this client.
    fn shard(&self) -> usize;
    /// Writes what the client has pending, without waiting.
    fn flush_client(&self);
}

/// Work for a flusher.
pub enum Job {
    /// A round over one part of a channel's clients: messages were published.
    Part(Arc<dyn FlushPart>, usize),
    /// One client: a frame of its own was queued, or its task handed writing back.
    Client(Arc<dyn FlushClient>),
}

impl Job {
    fn run(self) {
        match self {
            Job::Part(feed, part) => feed.flush_part(part),
            Job::Client(client) => client.flush_client(),
        }
    }
}

/// The flusher tasks, and the jobs listed for each.
pub struct Flushers {
    shards: Vec<Shard>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Shard {
    listed: Mutex<Vec<Job>>,
    wake: Notify,
}

impl Flushers {
    /// Starts `count` (at least one) flusher tasks on the current runtime. They
    /// run as long as the runtime does: a job that panics costs that job only.
    pub fn start(count: usize) -> Arc<Self> {
        let flushers = Arc::new(Self {
            shards: (0..count.max(1)).map(|_| Shard::default()).collect(),
            next: AtomicUsize::new(0),
        });
        for shard in 0..flushers.shards.len() {
            tokio::spawn(run(flushers.clone(), shard));
        }
        flushers
    }

    /// How many flushers there are.
    pub fn count(&self) -> usize {
        self.shards.len()
    }

    /// The flusher for the next new client, in turn.
    pub fn next_shard(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    /// Lists `job` with its flusher, waking the flusher if its list was empty.
    pub fn list(&self, job: Job) {
        let shard = match &job {
            Job::Part(_, part) => *part,
            Job::Client(client) => client.shard(),
        };
        let shard = &self.shards[shard];
        let mut listed = shard.listed.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = listed.is_empty();
        listed.push(job);
        drop(listed);
        if was_empty {
            shard.wake.notify_one();
        }
    }
}

/// One flusher: waits for jobs, does each, repeats.
async fn run(flushers: Arc<Flushers>, shard: usize) {
    let shard = &flushers.shards[shard];
    let mut batch = Vec::new();
    loop {
        std::mem::swap(
            &mut *shard.listed.lock().unwrap_or_else(|p| p.into_inner()),
            &mut batch,
        );
        if batch.is_empty() {
            shard.wake.notified().await;
            continue;
        }
        for job in batch.drain(..) {
            // A panic must not end the flusher: its other sockets would go
            // unwritten, and its list would grow for good. Writing a client
            // contains its own panics (and closes that client); this is for the
            // rest of a job.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| job.run())) {
                tracing::error!(
                    panic = ?panic_message(panic.as_ref()),
                    "a WebSocket flusher's job panicked; the flusher goes on"
                );
            }
        }
        // Let publishers and readers run between rounds.
        tokio::task::yield_now().await;
    }
}

/// What a caught panic says, if it says it as text.
pub(super) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "(not text)"
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fixture, message, pair, payloads};
    use super::*;
    use crate::messaging::broker::Reach;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// A part that counts its rounds, and panics in each if told to.
    struct Rounds {
        done: AtomicUsize,
        panics: bool,
    }

    impl FlushPart for Rounds {
        fn flush_part(&self, _index: usize) {
            self.done.fetch_add(1, Ordering::Relaxed);
            assert!(
                !self.panics,
                "this part's rounds panic (the test asked for it)"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_panics_is_the_only_one_lost() {
        let flushers = Flushers::start(1);
        let rounds = |panics| {
            Arc::new(Rounds {
                done: AtomicUsize::new(0),
                panics,
            })
        };
        let (bad, good) = (rounds(true), rounds(false));
        for expected in 1..=3 {
            flushers.list(Job::Part(bad.clone(), 0));
            flushers.list(Job::Part(good.clone(), 0));
            tokio::time::timeout(Duration::from_secs(5), async {
                while good.done.load(Ordering::Relaxed) < expected {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the flusher went on after the panic");
        }
        assert_eq!(bad.done.load(Ordering::Relaxed), 3);
    }

    /// A panic while writing one client must cost that client alone, not its
    /// flusher and with it every other socket the flusher writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_writing_one_client_leaves_its_flusher_writing_the_others() {
        // One flusher: every client is on its shard.
        let (broker, feeds, listener) = fixture(1).await;
        let (server, mut broken_client) = pair(&listener).await;
        let broken = feeds.join("t", false, Reach::Cluster, server, 1 << 20);
        let (server, mut same_channel) = pair(&listener).await;
        let neighbour = feeds.join("t", false, Reach::Cluster, server, 1 << 20);
        let (server, mut other_channel) = pair(&listener).await;
        let stranger = feeds.join("u", false, Reach::Cluster, server, 1 << 20);
        broken.panic_on_flush();
        for round in 0..3 {
            let text = format!("m{round}");
            for topic in ["t", "u"] {
                broker
                    .publish(topic, message(&text, None), Reach::Cluster)
                    .unwrap();
            }
            let expected = vec![text.into_bytes()];
            assert_eq!(payloads(&mut same_channel, 1).await, expected);
            assert_eq!(payloads(&mut other_channel, 1).await, expected);
        }
        // Its connection's task closes it with 1011, as the WebSocket bridge does.
        assert_eq!(broken.status(), super::super::cursor::Status::Broken);
        broken.discard();
        broken.push_own(bytes::Bytes::from_static(&[0x88, 0x02, 0x03, 0xF3]));
        broken.drain().await.unwrap();
        let mut close = [0; 4];
        tokio::time::timeout(Duration::from_secs(5), broken_client.read_exact(&mut close))
            .await
            .expect("the close within 5 s")
            .unwrap();
        assert_eq!(close, [0x88, 0x02, 0x03, 0xF3], "nothing but the close");
        for client in [&broken, &neighbour, &stranger] {
            feeds.leave(client);
        }
    }
}
