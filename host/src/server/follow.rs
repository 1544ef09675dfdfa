//! Channels that keep history in cluster mode, whose log every node appends to (see
//! `messaging::history`): this node's WebSocket clients of such a channel are fed from the
//! log itself, in offset order, by one task per channel ([`follow`]), and a client's
//! catch-up (`?last`, `?since`) meets its live messages at an offset ([`join`]): the
//! messages up to where the feed is are read from the log and replayed, the rest come
//! live, and what the feed delivers that the replay already held is skipped for it.

use super::cursor::Outbound;
use super::feed::Feed;
use super::replay::{continuous, entry_frame, Ask, HISTORY_GONE};
use super::stream::ClientStream;
use super::App;
use crate::messaging::{Kept, Message};
use crate::project::History;
use crate::state::{LogRead, LogSpace, Range};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a join may wait for its channel's task to find the log.
const JOIN_WAIT: Duration = Duration::from_secs(5);

/// The pause before a channel's task tries its log again after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// The close code when the log cannot be reached for a catch-up (1013: try again later).
const UNAVAILABLE: u16 = 1013;
const UNAVAILABLE_REASON: &str = "channel history unavailable; try again";

/// Feeds `feed` from `log`, in order, for as long as the feed has clients (the task is
/// aborted when its last client leaves). A failed follow starts again after the last
/// message delivered, so the feed's clients miss nothing; if the log was reset meanwhile
/// (another epoch), from its first message, which clients see under the new epoch.
async fn follow(app: Arc<App>, log: LogSpace, channel: Arc<str>, feed: Arc<Feed>) {
    let history = &app.hub().history;
    // The last message delivered: its offset and epoch.
    let mut after: Option<(u64, Arc<str>)> = None;
    let mut warned = false;
    loop {
        let start = match history.read_later(&log, Range::Last(0)).await {
            Ok(read) => Ok(match &after {
                Some((offset, epoch)) if **epoch == *read.epoch => *offset,
                // Reset while this node was away from it: all of the new log.
                Some(_) => {
                    feed.restart_offsets();
                    after = Some((0, read.epoch.as_str().into()));
                    0
                }
                None => {
                    let start = read.next.saturating_sub(1);
                    after = Some((start, read.epoch.as_str().into()));
                    start
                }
            }),
            Err(error) => Err(error),
        };
        let follow = match start {
            Ok(start) => history.follow(&log, start).await.map(|f| (start, f)),
            Err(error) => Err(error),
        };
        match follow {
            Ok((start, mut messages)) => {
                feed.start_at_offset(start);
                warned = false;
                while let Some(next) = messages.next().await {
                    let followed = match next {
                        Ok(followed) => followed,
                        Err(error) => {
                            tracing::debug!(channel = %channel.escape_debug(), %error, "following the channel's log stopped; starting again");
                            break;
                        }
                    };
                    let entry = followed.entry;
                    after = Some((entry.offset, followed.epoch.clone()));
                    let origin = history.own_socket(entry.origin.as_deref());
                    let data = Bytes::from(entry.data);
                    let mut message = Message::new(channel.clone(), data, Some(entry.text), origin);
                    message.kept = Some(Kept {
                        offset: entry.offset,
                        epoch: followed.epoch,
                        time_ms: entry.time_ms,
                    });
                    feed.publish_followed(&message);
                }
            }
            Err(error) if !warned => {
                warned = true;
                tracing::warn!(channel = %channel.escape_debug(), %error, "cannot follow the channel's log; its WebSocket clients get nothing until it can (retrying)");
            }
            Err(error) => {
                tracing::debug!(channel = %channel.escape_debug(), %error, "cannot follow the channel's log")
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Joins a client to `topic`'s followed feed, after what `ask` catches up on. `Err` (with
/// the close code and reason) when the client is to be closed instead: the catch-up
/// cannot be honoured (4412) or the log cannot be reached (1013).
#[allow(clippy::too_many_arguments)]
pub async fn join(
    app: &Arc<App>,
    channel: &str,
    topic: &str,
    stream: ClientStream,
    kept: History,
    ask: Option<&Ask>,
    enveloped: bool,
) -> (Arc<Outbound>, Result<(), (u16, &'static str)>) {
    let history = &app.hub().history;
    let log = history.space(topic, kept);
    let limit = app.config.websocket.send_queue;
    let feed_of = || {
        app.feeds.followed(topic, enveloped, |feed| {
            let task = follow(app.clone(), log.clone(), channel.into(), feed);
            tokio::spawn(task).abort_handle()
        })
    };
    let mut feed = feed_of();
    // What the client is caught up to, and the frames that do it.
    let mut caught: Option<(u64, Vec<Bytes>)> = None;
    if let Some(ask) = ask {
        let range = match ask {
            Ask::Last(n) => Range::Last(*n),
            Ask::Since { offset, .. } => Range::After(*offset),
        };
        let read = match history.read_later(&log, range).await {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read");
                return refuse(app, &feed, stream, UNAVAILABLE, UNAVAILABLE_REASON);
            }
        };
        if let Ask::Since { offset, epoch } = ask {
            if let Err(reason) = continuous(&read, *offset, epoch) {
                return refuse(app, &feed, stream, HISTORY_GONE, reason);
            }
        }
        caught = Some(replayed(channel, &read, enveloped, Vec::new()));
    }
    let deadline = Instant::now() + JOIN_WAIT;
    let mut stream = stream;
    loop {
        let (back, delivered) = match app.feeds.join_at(&feed, stream, limit, caught.clone()) {
            Ok(outbound) => return (outbound, Ok(())),
            Err(refused) => refused,
        };
        stream = back;
        if Instant::now() >= deadline {
            tracing::warn!(topic = %topic.escape_debug(), "the channel's log was not followed in time for a catch-up");
            return refuse(app, &feed, stream, UNAVAILABLE, UNAVAILABLE_REASON);
        }
        match (delivered, caught.take()) {
            // The feed delivered past the catch-up: read what lies between.
            (Some(_), Some((upto, frames))) => {
                match history.read_later(&log, Range::After(upto)).await {
                    Ok(read) if read.first <= upto + 1 || read.entries.is_empty() => {
                        caught = Some(replayed(channel, &read, enveloped, frames));
                    }
                    Ok(_) => {
                        let reason =
                            "messages after that offset were trimmed; reconnect with ?last=N";
                        return refuse(app, &feed, stream, HISTORY_GONE, reason);
                    }
                    Err(error) => {
                        tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read");
                        return refuse(app, &feed, stream, UNAVAILABLE, UNAVAILABLE_REASON);
                    }
                }
            }
            // Not following yet, or the feed was dropped meanwhile: again, soon.
            (_, kept) => {
                caught = kept;
                tokio::time::sleep(Duration::from_millis(5)).await;
                feed = feed_of();
            }
        }
    }
}

/// A client that is to be closed with `code` and `reason`: on `feed` for the close.
fn refuse(
    app: &App,
    feed: &Arc<Feed>,
    stream: ClientStream,
    code: u16,
    reason: &'static str,
) -> (Arc<Outbound>, Result<(), (u16, &'static str)>) {
    let limit = app.config.websocket.send_queue;
    (
        app.feeds.join_live(feed, stream, limit),
        Err((code, reason)),
    )
}

/// `frames` followed by those of what `read` holds, and the offset they reach (the last
/// entry's, or where the log was when nothing was there to replay).
fn replayed(
    channel: &str,
    read: &LogRead,
    enveloped: bool,
    mut frames: Vec<Bytes>,
) -> (u64, Vec<Bytes>) {
    for entry in &read.entries {
        frames.push(entry_frame(channel, &read.epoch, entry, enveloped));
    }
    let upto = read
        .entries
        .last()
        .map_or(read.next.saturating_sub(1), |e| e.offset);
    (upto, frames)
}
