//! A WebSocket client's catch-up on a channel that keeps history (`wisp.history`):
//! `?last=N` replays the newest N kept messages before the live ones; `?since=OFFSET&epoch=E`
//! replays every kept message after OFFSET. Replayed and live messages meet without a gap or
//! a duplicate: the log is read and the feed joined under the channel's history lock, which
//! every publish on the channel also takes (see `messaging::history`).
//!
//! When `since` cannot be honoured (the epoch is not the log's: its history was lost or
//! reset; or messages after OFFSET have been trimmed), the client is closed with
//! [`HISTORY_GONE`] instead of silently getting a hole; it may reconnect with `last` or
//! without either. Replayed frames count against the client's send queue
//! (`--ws-send-queue`) like live ones.
//!
//! `?envelope=json` wraps every frame, replayed or live, in
//! [`envelope_frame`](crate::messaging::envelope_frame)'s JSON, which carries the offset and
//! epoch a client needs for its next `since`.

use super::cursor::Outbound;
use super::stream::ClientStream;
use super::App;
use crate::messaging::broker::Reach;
use crate::messaging::{envelope_frame, Message};
use crate::project::History;
use crate::state::{LogEntry, LogRead, Range, MAX_READ};
use bytes::Bytes;
use std::sync::Arc;

/// The close code for a `since` that cannot be honoured.
pub const HISTORY_GONE: u16 = 4412;

/// What a client asked to catch up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Last(usize),
    Since { offset: u64, epoch: String },
}

/// What a request's query asks of its channel: a catch-up, and enveloped frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub catch_up: Option<Ask>,
    pub enveloped: bool,
}

/// What a request's query asks for, or why the query is wrong.
pub fn asked(query: Option<&str>) -> Result<Asked, String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let enveloped = match get("envelope") {
        None => false,
        Some("json") => true,
        Some(other) => return Err(format!("`envelope={other}`: the one envelope is `json`")),
    };
    Ok(Asked {
        catch_up: catch_up(get)?,
        enveloped,
    })
}

/// The catch-up of `last`, or `since` with `epoch`.
fn catch_up<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Option<Ask>, String> {
    match (get("last"), get("since"), get("epoch")) {
        (None, None, None) => Ok(None),
        (Some(last), None, None) => match last.parse::<usize>() {
            Ok(n) => Ok(Some(Ask::Last(n.min(MAX_READ)))),
            Err(_) => Err(format!("`last={last}` is not a message count")),
        },
        (None, Some(since), Some(epoch)) => match since.parse::<u64>() {
            Ok(offset) => Ok(Some(Ask::Since {
                offset,
                epoch: epoch.to_owned(),
            })),
            Err(_) => Err(format!("`since={since}` is not an offset")),
        },
        (None, Some(_), None) => Err("`since` needs the `epoch` its offset is from".into()),
        (None, None, Some(_)) => Err("`epoch` goes with `since`".into()),
        _ => Err("give either `last` or `since` with `epoch`, not both".into()),
    }
}

/// Joins `topic`'s feed after queueing what `ask` replays from its log. `Err` when the
/// client must be closed with [`HISTORY_GONE`], with the reason.
#[allow(clippy::too_many_arguments)]
pub fn join(
    app: &App,
    channel: &str,
    topic: &str,
    reach: Reach,
    stream: ClientStream,
    kept: History,
    ask: &Ask,
    enveloped: bool,
) -> (Arc<Outbound>, Result<(), &'static str>) {
    let history = &app.hub().history;
    let log = history.space(topic, kept);
    let range = match ask {
        Ask::Last(n) => Range::Last(*n),
        Ask::Since { offset, .. } => Range::After(*offset),
    };
    let limit = app.config.websocket.send_queue;
    let _order = history.lock(topic);
    let read = history.read(&log, range);
    let outbound = app.feeds.join(topic, enveloped, reach, stream, limit);
    let read = match read {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read; the client gets live messages only");
            return (outbound, Ok(()));
        }
    };
    if let Ask::Since { offset, epoch } = ask {
        if let Err(reason) = continuous(&read, *offset, epoch) {
            return (outbound, Err(reason));
        }
    }
    for entry in &read.entries {
        outbound.push_own(entry_frame(channel, &read.epoch, entry, enveloped));
    }
    (outbound, Ok(()))
}

/// The frame a client gets for kept `entry` of `channel`'s log (of `epoch`).
pub(super) fn entry_frame(channel: &str, epoch: &str, entry: &LogEntry, enveloped: bool) -> Bytes {
    if enveloped {
        let (offset, time, text) = (Some(entry.offset), entry.time_ms, entry.text);
        envelope_frame(channel, offset, Some(epoch), time, text, &entry.data)
    } else {
        let data = Bytes::copy_from_slice(&entry.data);
        Message::new("", data, Some(entry.text), None).wire
    }
}

/// Whether what `read` holds follows `offset` of `epoch` with nothing missing.
pub(super) fn continuous(read: &LogRead, offset: u64, epoch: &str) -> Result<(), &'static str> {
    if read.epoch != epoch {
        return Err("history reset: the epoch changed; reconnect with ?last=N");
    }
    if offset >= read.next {
        return Err("offset is ahead of the channel's history; reconnect with ?last=N");
    }
    if offset + 1 < read.first {
        return Err("messages after that offset were trimmed; reconnect with ?last=N");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_for_last_or_since_with_epoch() {
        let catch_up = |q| asked(Some(q)).map(|a| a.catch_up);
        assert_eq!(asked(None), Ok(Asked::default()));
        assert_eq!(catch_up("x=1"), Ok(None));
        assert_eq!(catch_up("last=5"), Ok(Some(Ask::Last(5))));
        assert_eq!(catch_up("last=999999999"), Ok(Some(Ask::Last(MAX_READ))));
        assert_eq!(
            catch_up("since=7&epoch=ab"),
            Ok(Some(Ask::Since {
                offset: 7,
                epoch: "ab".into()
            }))
        );
        assert!(asked(Some("envelope=json")).unwrap().enveloped);
        assert!(asked(Some("envelope=xml")).is_err());
        for bad in [
            "last=x",
            "since=1",
            "epoch=a",
            "since=-1&epoch=a",
            "last=1&since=1&epoch=a",
        ] {
            assert!(asked(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_must_meet_what_is_kept() {
        let read = LogRead {
            epoch: "e".into(),
            first: 5,
            next: 9,
            entries: Vec::new(),
        };
        assert_eq!(continuous(&read, 4, "e"), Ok(()), "5 is the next it needs");
        assert_eq!(continuous(&read, 8, "e"), Ok(()), "caught up");
        assert!(continuous(&read, 3, "e").is_err(), "4 was trimmed");
        assert!(continuous(&read, 4, "other").is_err(), "another epoch");
        assert!(continuous(&read, 9, "e").is_err(), "ahead of the log");
    }
}
