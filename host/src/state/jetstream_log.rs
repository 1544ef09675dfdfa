//! Channel logs in cluster mode: one JetStream stream per channel log, so that every node
//! appends to and reads the same ordered log and offsets agree across nodes.
//!
//! The stream of a log is `WISP_LOG_<token>`, capturing subject `wisp.log.<token>`, where
//! the token is a hash of the project and the topic (a channel name may hold anything; a
//! stream name may not). It keeps `size` messages (`max_messages`, oldest dropped first)
//! for at most `ttl` (`max_age`), in file storage. A message's offset is its stream
//! sequence: the stream holds one subject, so sequences go up by one per message, from 1.
//! The epoch is the stream's creation time: a stream deleted and made again (its history
//! lost or reset) has another. Each message carries its frame kind, time and origin in
//! headers.
//!
//! How many logs a cluster keeps is bounded: a new log's stream is made only while the
//! JetStream account holds fewer than [`MAX_LOG_STREAMS`] streams.

use super::jetstream::{unavailable, JetStream, OP_TIMEOUT};
use super::{Appended, Followed, LogEntry, LogFollow, LogMessage, LogRead, LogSpace, Range};
use super::{StateError, StateResult, MAX_READ};
use async_nats::jetstream::consumer::{push::OrderedConfig, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::context::{GetStreamErrorKind, PublishAckFuture};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::jetstream::ErrorCode;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The most streams the JetStream account may hold for a new channel log to be made.
pub const MAX_LOG_STREAMS: usize = 10_000;

const TEXT: &str = "Wisp-Text";
const TIME: &str = "Wisp-Time";
const ORIGIN: &str = "Wisp-Log-Origin";

/// A log's stream name and subject.
fn names(log: &LogSpace) -> (String, String) {
    let mut hash = Sha256::new();
    for part in [log.project.as_bytes(), log.topic.as_bytes()] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let token = hex::encode(&hash.finalize()[..16]);
    (format!("WISP_LOG_{token}"), format!("wisp.log.{token}"))
}

/// The stream configuration of `log`.
fn config(log: &LogSpace, name: &str, subject: &str) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        description: Some(format!(
            "Wisp channel history: {}",
            log.topic.escape_debug()
        )),
        subjects: vec![subject.to_owned()],
        max_messages: log.size as i64,
        max_age: log.ttl_ms.map_or(Duration::ZERO, Duration::from_millis),
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        ..Default::default()
    }
}

/// A stream's epoch: its creation time, in nanoseconds, in hex.
fn epoch_of(info: &stream::Info) -> String {
    format!("{:x}", info.created.unix_timestamp_nanos())
}

/// What was read of a stream: its epoch, first kept and last offsets.
struct Position {
    epoch: String,
    first: u64,
    last: u64,
}

impl JetStream {
    /// `log`'s stream and where it is; `None` if it has none (and `create` is false).
    async fn log_stream(
        &self,
        log: &LogSpace,
        create: bool,
    ) -> StateResult<Option<(stream::Stream, Position)>> {
        let js = async_nats::jetstream::new(self.client.clone());
        let (name, subject) = names(log);
        let stream = match js.get_stream(&name).await {
            Ok(mut stream) => {
                // A changed `wisp.history` (size, ttl) applies to the kept log too.
                let info = stream.cached_info();
                let wanted = config(log, &name, &subject);
                if info.config.max_messages != wanted.max_messages
                    || info.config.max_age != wanted.max_age
                {
                    let mut changed = info.config.clone();
                    changed.max_messages = wanted.max_messages;
                    changed.max_age = wanted.max_age;
                    js.update_stream(changed).await.map_err(unavailable)?;
                    stream.info().await.map_err(unavailable)?;
                }
                stream
            }
            Err(error) => {
                let missing = matches!(error.kind(), GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND);
                if !missing {
                    return Err(unavailable(error));
                }
                if !create {
                    return Ok(None);
                }
                let account = js.query_account().await.map_err(unavailable)?;
                if account.streams >= MAX_LOG_STREAMS {
                    return Err(StateError::TooLarge(format!(
                        "the cluster keeps {MAX_LOG_STREAMS} JetStream streams already; no \
                         history for another channel"
                    )));
                }
                match js.create_stream(config(log, &name, &subject)).await {
                    Ok(stream) => stream,
                    // Another node made it meanwhile.
                    Err(error) => js.get_stream(&name).await.map_err(|_| unavailable(error))?,
                }
            }
        };
        let info = stream.cached_info();
        let position = Position {
            epoch: epoch_of(info),
            first: info.state.first_sequence,
            last: info.state.last_sequence,
        };
        Ok(Some((stream, position)))
    }

    /// Appends `messages` to `log`'s stream (made on first use), acks awaited together.
    pub(super) async fn append_log(
        &self,
        log: &LogSpace,
        messages: &[LogMessage<'_>],
    ) -> StateResult<Vec<Appended>> {
        let work = async {
            self.connected()?;
            let (stream, _) = self
                .log_stream(log, true)
                .await?
                .expect("made when missing");
            let js = async_nats::jetstream::new(self.client.clone());
            let (_, subject) = names(log);
            let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(messages.len());
            for message in messages {
                let mut headers = HeaderMap::new();
                headers.insert(TEXT, if message.text { "1" } else { "0" });
                headers.insert(TIME, message.time_ms.to_string().as_str());
                if let Some(origin) = message.origin {
                    headers.insert(ORIGIN, origin);
                }
                let data = Bytes::copy_from_slice(message.data);
                let ack = js.publish_with_headers(subject.clone(), headers, data);
                acks.push(ack.await.map_err(unavailable)?);
            }
            // The epoch of the stream the messages went to: made or found just now.
            let epoch = epoch_of(stream.cached_info());
            let mut appended = Vec::with_capacity(acks.len());
            for ack in acks {
                let ack = ack.await.map_err(unavailable)?;
                appended.push(Appended {
                    offset: ack.sequence,
                    epoch: epoch.clone(),
                });
            }
            Ok(appended)
        };
        timed(work).await
    }

    /// The kept messages of `log` in `range`.
    pub(super) async fn read_log_stream(
        &self,
        log: &LogSpace,
        range: Range,
        now_ms: u64,
    ) -> StateResult<LogRead> {
        let work = async {
            self.connected()?;
            let Some((stream, at)) = self.log_stream(log, false).await? else {
                return Ok(LogRead {
                    epoch: String::new(),
                    first: 1,
                    next: 1,
                    entries: Vec::new(),
                });
            };
            let next = at.last + 1;
            let first = if at.first == 0 { next } else { at.first };
            let from = match range {
                Range::Last(n) => next.saturating_sub(n.min(MAX_READ) as u64).max(first),
                Range::After(offset) => (offset + 1).max(first),
            };
            let cutoff = log.ttl_ms.map_or(0, |ttl| now_ms.saturating_sub(ttl));
            let mut entries = Vec::new();
            if from < next {
                let mut follow = self.follow_stream(&stream, at.epoch.clone(), from).await?;
                while let Some(followed) = follow.next().await {
                    let entry = followed?.entry;
                    let offset = entry.offset;
                    if entry.time_ms >= cutoff {
                        entries.push(entry);
                    }
                    if offset >= at.last || entries.len() >= MAX_READ {
                        break;
                    }
                }
            }
            Ok(LogRead {
                epoch: at.epoch,
                first,
                next,
                entries,
            })
        };
        timed(work).await
    }

    /// Every message appended to `log` after `after`.
    pub(super) async fn follow_log(&self, log: &LogSpace, after: u64) -> StateResult<LogFollow> {
        let (stream, at) = timed(async {
            self.connected()?;
            Ok(self
                .log_stream(log, true)
                .await?
                .expect("made when missing"))
        })
        .await?;
        self.follow_stream(&stream, at.epoch, after + 1).await
    }

    /// The messages of `stream` from offset `from` on, as they come: an ordered consumer
    /// (it makes itself again after a gap, from where it was).
    async fn follow_stream(
        &self,
        stream: &stream::Stream,
        epoch: String,
        from: u64,
    ) -> StateResult<LogFollow> {
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                replay_policy: ReplayPolicy::Instant,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let epoch: Arc<str> = epoch.into();
        Ok(messages
            .map(move |message| {
                let message = message.map_err(unavailable)?;
                let offset = message.info().map_err(unavailable)?.stream_sequence;
                let header = |name: &str| {
                    message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .map(|v| v.as_str().to_owned())
                };
                let entry = LogEntry {
                    offset,
                    time_ms: header(TIME).and_then(|t| t.parse().ok()).unwrap_or(0),
                    text: header(TEXT).as_deref() != Some("0"),
                    origin: header(ORIGIN),
                    data: message.payload.to_vec(),
                };
                Ok(Followed {
                    epoch: epoch.clone(),
                    entry,
                })
            })
            .boxed())
    }
}

/// `work`, failing with `Unavailable` after [`OP_TIMEOUT`].
async fn timed<T>(work: impl std::future::Future<Output = StateResult<T>>) -> StateResult<T> {
    tokio::time::timeout(OP_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(unavailable(format!("no answer within {OP_TIMEOUT:?}"))))
}
