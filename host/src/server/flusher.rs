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
    /// run as long as the runtime does.
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
            job.run();
        }
        // Let publishers and readers run between rounds.
        tokio::task::yield_now().await;
    }
}
