//! Presence: who is on each channel whose messaging resource has `wisp.presence`, on every
//! node, and the join and leave events a channel's clients are told.
//!
//! A member is a user (the name in the token that admitted a connection) or, without one,
//! a connection's anonymous id (`anon-<node>-<n>`). A user with several connections is one
//! member, counted; it joins with its first connection and leaves with its last.
//!
//! A leave waits [`GRACE`]: a member that comes back within it (a page reload, a client
//! reconnecting, to this node or another) neither leaves nor joins.
//!
//! In a cluster each node announces its own members through the broker, on one topic per
//! project: what changed, every [`TICK`] at most, and everything, every [`HEARTBEAT`]. A
//! node keeps the others' members as they announced them and forgets a node's members of
//! a channel it has not heard about for [`EXPIRY`]. So when a node dies its members leave
//! every other node's lists within `EXPIRY + GRACE` (7 s), and a message the broker lost is
//! made good by the next heartbeat. Nothing here is stored: presence lives as long as the
//! connections do.
//!
//! Functions whose pub/sub trigger asks for them (`wisp.presence-events`) get each join and
//! leave as a message `{"event":"join"|"leave","user","channel"}`, once in the cluster: a
//! join from the node where the member's connection came in, a leave from the node where its
//! last one went (for a dead node's members, from the live node with the lowest number). Two
//! nodes that see one user arrive at the same moment may both send a join.

use super::broker::{Broker, ClusterLink, Reach, Sink, SinkId};
use super::Message;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long a member that lost its last connection stays, in case it comes back.
pub const GRACE: Duration = Duration::from_secs(3);
/// How often a node announces what changed among its members (at most).
pub const TICK: Duration = Duration::from_millis(250);
/// How often a node announces all its members.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node's announced members of a channel are kept without a word from it.
pub const EXPIRY: Duration = Duration::from_secs(4);
/// Members of one channel kept from one other node, at most; an announcement past it is
/// cut (a warn line). Each node's own members are its connections, already bounded.
pub const MAX_REMOTE_MEMBERS: usize = 100_000;
/// Members a list ([`Presence::list`]) holds at most, the first by name;
/// [`Presence::list_counted`] also tells how many there are.
pub const MAX_LISTED: usize = 1_000;
/// Bytes of one announcement, about; more members go in more announcements.
const ANNOUNCEMENT: usize = 256 << 10;

/// A join or a leave, as watchers of a channel are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Join,
    Leave,
}

/// Who a watcher is, and what it is told.
pub type Watcher = Arc<dyn Fn(Event, &str) + Send + Sync>;

/// One member of a channel, as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub user: String,
    /// Its connections to the channel, on every node.
    pub connections: u32,
}

/// The presence of one node's project (see the module docs).
pub struct Presence {
    node: u64,
    broker: Arc<dyn Broker>,
    /// The topic nodes announce their members on.
    topic: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By channel topic.
    channels: HashMap<Arc<str>, Channel>,
    /// Channels whose own members changed since the last announcement.
    changed: HashSet<Arc<str>>,
    /// Channels whose joins and leaves functions want (`wisp.presence-events`).
    wanted: HashSet<Arc<str>>,
    /// The other nodes, and when each was last heard.
    nodes: HashMap<u64, Instant>,
}

/// A member as this node's watchers were told of it.
#[derive(Clone, Copy, Debug)]
struct Shown {
    /// Since when it has had no connection (it leaves at [`GRACE`]'s end).
    leaving: Option<Instant>,
    /// Where its last connection went.
    cause: Cause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// This node's connection closed.
    Here,
    /// Another node said so.
    There,
    /// Its node fell silent.
    Silence,
}

#[derive(Default)]
struct Channel {
    /// This node's connections: connection id to member.
    local: HashMap<u64, Arc<str>>,
    /// This node's connections per member.
    counts: HashMap<Arc<str>, u32>,
    /// Other nodes' members, as last announced, and when.
    remote: HashMap<u64, (HashMap<Arc<str>, u32>, Instant)>,
    /// What this node's watchers were told: the members shown.
    shown: HashMap<Arc<str>, Shown>,
    watchers: HashMap<u64, Watcher>,
}

impl Channel {
    fn connections(&self, who: &str) -> u32 {
        let local = self.counts.get(who).copied().unwrap_or(0);
        let remote: u32 = self.remote.values().filter_map(|(m, _)| m.get(who)).sum();
        local + remote
    }

    fn own_members(&self) -> HashMap<&str, u32> {
        self.counts.iter().map(|(who, n)| (&**who, *n)).collect()
    }

    fn add(&mut self, id: u64, who: Arc<str>) {
        if let Some(before) = self.local.insert(id, who.clone()) {
            self.remove_count(&before);
        }
        *self.counts.entry(who).or_insert(0) += 1;
    }

    fn remove(&mut self, id: u64) -> Option<Arc<str>> {
        let who = self.local.remove(&id)?;
        self.remove_count(&who);
        Some(who)
    }

    fn remove_count(&mut self, who: &Arc<str>) {
        if let Some(count) = self.counts.get_mut(who) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(who);
            }
        }
    }

    /// Brings what watchers were told in line for `who`, after a change `cause` made: a
    /// join if it is new; a leave started if it lost its last connection (told at
    /// [`GRACE`]'s end, see `tick`). Whether functions are to be told of a join from here.
    fn settle(&mut self, who: &Arc<str>, now: Instant, cause: Cause) -> bool {
        let present = self.connections(who) > 0;
        match (present, self.shown.get_mut(who)) {
            (true, Some(shown)) => shown.leaving = None,
            (true, None) => {
                let shown = Shown {
                    leaving: None,
                    cause,
                };
                self.shown.insert(who.clone(), shown);
                self.tell(Event::Join, who);
                return cause == Cause::Here;
            }
            (false, Some(shown)) if shown.leaving.is_none() => {
                *shown = Shown {
                    leaving: Some(now),
                    cause,
                };
            }
            (false, _) => {}
        }
        false
    }

    fn tell(&self, event: Event, who: &str) {
        for watcher in self.watchers.values() {
            watcher(event, who);
        }
    }

    fn idle(&self) -> bool {
        self.local.is_empty()
            && self.remote.is_empty()
            && self.shown.is_empty()
            && self.watchers.is_empty()
    }
}

impl Presence {
    /// The presence of the project whose hash is `project`; announces in a cluster.
    /// Must run inside the tokio runtime: a task keeps time for it while it lives.
    pub fn start(broker: Arc<dyn Broker>, project: &str) -> Arc<Self> {
        let mut node = [0u8; 8];
        getrandom::getrandom(&mut node).expect("the system's random source");
        let presence = Arc::new(Self {
            node: u64::from_le_bytes(node),
            broker: broker.clone(),
            topic: format!("{project}\0presence/nodes"),
            inner: Mutex::default(),
        });
        if broker.cluster_link() != ClusterLink::Off {
            let listener = Arc::new(Listener {
                id: super::broker::next_sink_id(),
                presence: Arc::downgrade(&presence),
            });
            broker.subscribe(&presence.topic, listener, Reach::Cluster);
        }
        tokio::spawn(keep_time(Arc::downgrade(&presence)));
        presence
    }

    /// The anonymous member name of connection `id` of this node.
    pub fn anonymous(&self, id: u64) -> String {
        format!("anon-{:06x}-{id}", self.node & 0xff_ffff)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts connection `id` as `who` on `topic` until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>, topic: &str, id: u64, who: &str) -> Present {
        let topic: Arc<str> = Arc::from(topic);
        let who: Arc<str> = Arc::from(who);
        let mut inner = self.lock();
        let channel = inner.channels.entry(topic.clone()).or_default();
        channel.add(id, who.clone());
        let joined = channel.settle(&who, Instant::now(), Cause::Here);
        inner.changed.insert(topic.clone());
        let wanted = joined && inner.wanted.contains(&topic);
        drop(inner);
        if wanted {
            self.tell_functions(&topic, Event::Join, &who);
        }
        Present {
            presence: self.clone(),
            topic,
            id,
        }
    }

    fn leave(&self, topic: &Arc<str>, id: u64) {
        let mut inner = self.lock();
        let Some(channel) = inner.channels.get_mut(topic) else {
            return;
        };
        if let Some(who) = channel.remove(id) {
            channel.settle(&who, Instant::now(), Cause::Here);
            inner.changed.insert(topic.clone());
        }
    }

    /// Sends functions subscribed to `topic`'s presence events (see `Scope::presence_events_topic`)
    /// its joins and leaves from now on.
    pub fn want_events(&self, topic: &str) {
        self.lock().wanted.insert(Arc::from(topic));
    }

    /// Tells functions (their topic's subscribers) that `who` joined or left `topic`.
    fn tell_functions(&self, topic: &str, event: Event, who: &str) {
        let (hash, channel) = topic.split_once('/').unwrap_or(("", topic));
        let event = match event {
            Event::Join => "join",
            Event::Leave => "leave",
        };
        let json = serde_json::json!({"event": event, "user": who, "channel": channel});
        let message = Message::new(channel, json.to_string().into(), Some(true), None);
        let topic = super::scope::presence_events_topic(hash, channel);
        if let Err(error) = self
            .broker
            .publish(&topic, Arc::new(message), Reach::Cluster)
        {
            tracing::warn!(%error, channel = %channel.escape_debug(), "a presence event did not reach its functions");
        }
    }

    /// Whether this node has the lowest number of the nodes heard from lately.
    fn lowest(&self, inner: &Inner, now: Instant) -> bool {
        inner
            .nodes
            .iter()
            .filter(|(_, heard)| now.duration_since(**heard) <= EXPIRY)
            .all(|(node, _)| self.node < *node)
    }

    /// Tells `watcher` of every join and leave on `topic`, from now until [`Self::unwatch`].
    pub fn watch(&self, topic: &str, id: u64, watcher: Watcher) {
        let mut inner = self.lock();
        let channel = inner.channels.entry(Arc::from(topic)).or_default();
        channel.watchers.insert(id, watcher);
    }

    pub fn unwatch(&self, topic: &str, id: u64) {
        if let Some(channel) = self.lock().channels.get_mut(topic) {
            channel.watchers.remove(&id);
        }
    }

    /// Who is on `topic`, on every node, by name: the first [`MAX_LISTED`]. A member that is
    /// leaving (within its grace) is not listed.
    pub fn list(&self, topic: &str) -> Vec<Member> {
        self.list_counted(topic).0
    }

    /// [`Self::list`], and how many members `topic` has in all.
    pub fn list_counted(&self, topic: &str) -> (Vec<Member>, usize) {
        let inner = self.lock();
        let Some(channel) = inner.channels.get(topic) else {
            return (Vec::new(), 0);
        };
        let members = Self::members(channel);
        let count = members.len();
        let listed = members
            .into_iter()
            .take(MAX_LISTED)
            .map(|(user, connections)| Member {
                user: user.to_owned(),
                connections,
            })
            .collect();
        (listed, count)
    }

    fn members(channel: &Channel) -> BTreeMap<&str, u32> {
        let mut members: BTreeMap<&str, u32> = BTreeMap::new();
        for (member, count) in &channel.counts {
            *members.entry(member).or_insert(0) += count;
        }
        for (remote, _) in channel.remote.values() {
            for (member, count) in remote {
                *members.entry(member).or_insert(0) += count;
            }
        }
        members
    }

    /// Ends leaves whose grace is over, forgets silent nodes, and announces.
    fn tick(&self, heartbeat: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        // What changed (an emptied channel too), and on a heartbeat every channel this node
        // has members of.
        let mut announce: HashSet<Arc<str>> = inner.changed.iter().cloned().collect();
        if heartbeat {
            let own = inner.channels.iter().filter(|(_, c)| !c.local.is_empty());
            announce.extend(own.map(|(topic, _)| topic.clone()));
        }
        inner.changed.clear();
        let lowest = self.lowest(&inner, now);
        let Inner {
            channels, wanted, ..
        } = &mut *inner;
        let mut told = Vec::new();
        let mut announcements = Announcements::new(self.node);
        for topic in &announce {
            if let Some(channel) = channels.get(topic) {
                announcements.add(topic, channel.own_members());
            }
        }
        channels.retain(|topic, channel| {
            let silent: Vec<u64> = channel
                .remote
                .iter()
                .filter(|(_, (_, heard))| now.duration_since(*heard) > EXPIRY)
                .map(|(node, _)| *node)
                .collect();
            for node in silent {
                if let Some((members, _)) = channel.remote.remove(&node) {
                    for who in members.keys() {
                        channel.settle(who, now, Cause::Silence);
                    }
                }
            }
            let gone: Vec<(Arc<str>, Cause)> = channel
                .shown
                .iter()
                .filter(|(_, shown)| shown.leaving.is_some_and(|since| now - since >= GRACE))
                .map(|(who, shown)| (who.clone(), shown.cause))
                .collect();
            for (who, cause) in gone {
                channel.shown.remove(&who);
                channel.tell(Event::Leave, &who);
                let ours = cause == Cause::Here || (cause == Cause::Silence && lowest);
                if ours && wanted.contains(topic) {
                    told.push((topic.clone(), who));
                }
            }
            !channel.idle()
        });
        drop(inner);
        for (topic, who) in told {
            self.tell_functions(&topic, Event::Leave, &who);
        }
        if self.broker.cluster_link() == ClusterLink::Off {
            return;
        }
        let mut payloads = announcements.finish();
        if payloads.is_empty() && heartbeat {
            // Said even with no one here, so that every node knows every other (see `lowest`).
            payloads.push(Announcements::new(self.node).empty());
        }
        for payload in payloads {
            let message = Message::new("presence", payload, Some(true), None);
            if let Err(error) = self
                .broker
                .publish(&self.topic, Arc::new(message), Reach::Cluster)
            {
                tracing::debug!(%error, "presence announcement not sent; the next heartbeat repeats it");
            }
        }
    }

    /// Takes another node's announcement.
    fn heard(&self, payload: &[u8]) {
        let Ok(announcement) = serde_json::from_slice::<Announcement>(payload) else {
            return tracing::warn!(
                bytes = payload.len(),
                "a presence announcement that is not one; ignored"
            );
        };
        let Ok(node) = announcement.node.parse::<u64>() else {
            return;
        };
        if node == self.node {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        inner.nodes.insert(node, now);
        inner
            .nodes
            .retain(|_, heard| now.duration_since(*heard) <= EXPIRY);
        for (topic, members) in announcement.channels {
            let mut members: HashMap<Arc<str>, u32> = members
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .map(|(who, count)| (Arc::from(who), count))
                .collect();
            if members.len() > MAX_REMOTE_MEMBERS {
                tracing::warn!(
                    topic = %topic.escape_debug(),
                    members = members.len(),
                    limit = MAX_REMOTE_MEMBERS,
                    "another node announced more members of a channel than are kept; the rest are left out"
                );
                let keep: HashSet<Arc<str>> =
                    members.keys().take(MAX_REMOTE_MEMBERS).cloned().collect();
                members.retain(|who, _| keep.contains(who));
            }
            let topic: Arc<str> = Arc::from(topic);
            let channel = inner.channels.entry(topic).or_default();
            let before = match members.is_empty() {
                true => channel.remote.remove(&node),
                false => channel.remote.insert(node, (members, now)),
            };
            let mut touched: HashSet<Arc<str>> = before
                .map(|(members, _)| members.into_keys().collect())
                .unwrap_or_default();
            if let Some((members, _)) = channel.remote.get(&node) {
                touched.extend(members.keys().cloned());
            }
            for who in &touched {
                channel.settle(who, now, Cause::There);
            }
        }
    }
}

/// Keeps a connection on a channel; it leaves when this is dropped.
pub struct Present {
    presence: Arc<Presence>,
    topic: Arc<str>,
    id: u64,
}

impl Drop for Present {
    fn drop(&mut self) {
        self.presence.leave(&self.topic, self.id);
    }
}

/// Runs [`Presence::tick`] while the presence lives.
async fn keep_time(presence: Weak<Presence>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_heartbeat = (HEARTBEAT.as_millis() / TICK.as_millis()).max(1) as u64;
    let mut count = 0u64;
    loop {
        ticks.tick().await;
        let Some(presence) = presence.upgrade() else {
            return;
        };
        count += 1;
        presence.tick(count % per_heartbeat == 0);
    }
}

/// One node's members of some channels, as it announces them: by channel topic, each
/// member's connections (none: the node has no one there any more).
#[derive(serde::Serialize, serde::Deserialize)]
struct Announcement {
    /// The node, a decimal `u64` (JSON numbers lose its low bits).
    node: String,
    channels: HashMap<String, HashMap<String, u32>>,
}

/// Announcements cut to about [`ANNOUNCEMENT`] bytes each.
struct Announcements {
    node: String,
    done: Vec<Bytes>,
    current: HashMap<String, HashMap<String, u32>>,
    bytes: usize,
}

impl Announcements {
    fn new(node: u64) -> Self {
        Self {
            node: node.to_string(),
            done: Vec::new(),
            current: HashMap::new(),
            bytes: 0,
        }
    }

    fn add(&mut self, topic: &str, members: HashMap<&str, u32>) {
        // A channel's members are never split: the receiver replaces them as a whole.
        self.bytes += topic.len() + members.keys().map(|m| m.len() + 16).sum::<usize>();
        let members = members
            .into_iter()
            .map(|(who, count)| (who.to_owned(), count))
            .collect();
        self.current.insert(topic.to_owned(), members);
        if self.bytes >= ANNOUNCEMENT {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let announcement = Announcement {
            node: self.node.clone(),
            channels: std::mem::take(&mut self.current),
        };
        let json = serde_json::to_vec(&announcement).expect("plain data serializes");
        self.done.push(json.into());
        self.bytes = 0;
    }

    /// An announcement of no channels: only that the node lives.
    fn empty(self) -> Bytes {
        let announcement = Announcement {
            node: self.node,
            channels: HashMap::new(),
        };
        serde_json::to_vec(&announcement)
            .expect("plain data serializes")
            .into()
    }

    fn finish(mut self) -> Vec<Bytes> {
        self.cut();
        self.done
    }
}

/// Takes other nodes' announcements from the broker.
struct Listener {
    id: u64,
    presence: Weak<Presence>,
}

impl Sink for Listener {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        if let Some(presence) = self.presence.upgrade() {
            presence.heard(&message.payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::broker::LocalBroker;

    type Seen = Arc<Mutex<Vec<(Event, String)>>>;

    fn recorder() -> (Watcher, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let watcher: Watcher = Arc::new(move |event, who: &str| {
            into.lock().unwrap().push((event, who.to_owned()));
        });
        (watcher, seen)
    }

    #[tokio::test]
    async fn a_user_joins_once_and_leaves_with_its_last_connection_after_the_grace() {
        let presence = Presence::start(Arc::new(LocalBroker::new()), "Qm");
        let (watcher, seen) = recorder();
        presence.watch("Qm/room", 1, watcher);
        let first = presence.enter("Qm/room", 10, "alice");
        let second = presence.enter("Qm/room", 11, "alice");
        assert_eq!(
            presence.list("Qm/room"),
            vec![Member {
                user: "alice".into(),
                connections: 2
            }]
        );
        drop(first);
        drop(second);
        // Back within the grace: neither a leave nor a join.
        let again = presence.enter("Qm/room", 12, "alice");
        presence.tick(false);
        assert_eq!(*seen.lock().unwrap(), vec![(Event::Join, "alice".into())]);
        drop(again);
        let shown = presence.lock().channels["Qm/room"].shown["alice"];
        assert!(shown.leaving.is_some(), "leaving");
        // The grace over: the leave is told.
        presence
            .lock()
            .channels
            .get_mut("Qm/room")
            .unwrap()
            .shown
            .get_mut("alice")
            .unwrap()
            .leaving = Some(Instant::now() - GRACE);
        presence.tick(false);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (Event::Join, "alice".into()),
                (Event::Leave, "alice".into())
            ]
        );
        assert!(presence.list("Qm/room").is_empty());
    }

    #[tokio::test]
    async fn another_nodes_members_count_until_it_falls_silent() {
        let presence = Presence::start(Arc::new(LocalBroker::new()), "Qm");
        let (watcher, seen) = recorder();
        presence.watch("Qm/room", 1, watcher);
        let announcement = |members: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "node": "7", "channels": {"Qm/room": members}
            }))
            .unwrap()
        };
        presence.heard(&announcement(serde_json::json!({"bob": 2})));
        assert_eq!(presence.list("Qm/room")[0].connections, 2);
        assert_eq!(*seen.lock().unwrap(), vec![(Event::Join, "bob".into())]);
        // Silent past the expiry: its members go, and leave after the grace.
        presence
            .lock()
            .channels
            .get_mut("Qm/room")
            .unwrap()
            .remote
            .get_mut(&7)
            .unwrap()
            .1 = Instant::now() - EXPIRY - Duration::from_millis(1);
        presence.tick(false);
        assert!(presence.list("Qm/room").is_empty());
        // Its own announcements and garbage change nothing.
        presence.heard(b"not json");
        let own = serde_json::json!({"node": presence.node.to_string(), "channels": {"Qm/room": {"x": 1}}});
        presence.heard(&serde_json::to_vec(&own).unwrap());
        assert!(presence.list("Qm/room").is_empty());
    }

    #[tokio::test]
    async fn a_list_holds_the_first_members_by_name_and_the_count_tells_the_rest() {
        let presence = Presence::start(Arc::new(LocalBroker::new()), "Qm");
        let here: Vec<Present> = (0..=MAX_LISTED as u64)
            .map(|i| presence.enter("Qm/big", i, &format!("user-{i:05}")))
            .collect();
        let (list, count) = presence.list_counted("Qm/big");
        assert_eq!(list.len(), MAX_LISTED);
        assert_eq!(list[0].user, "user-00000");
        assert_eq!(count, MAX_LISTED + 1);
        drop(here);
    }

    #[test]
    fn announcements_are_cut_by_size_without_splitting_a_channel() {
        let mut announcements = Announcements::new(1);
        let names: Vec<String> = (0..20_000).map(|i| format!("user-{i}")).collect();
        for room in 0..3 {
            let members = names.iter().map(|n| (n.as_str(), 1)).collect();
            announcements.add(&format!("Qm/room-{room}"), members);
        }
        let done = announcements.finish();
        assert_eq!(done.len(), 3);
        for payload in done {
            let announcement: Announcement = serde_json::from_slice(&payload).unwrap();
            assert_eq!(announcement.channels.len(), 1);
            assert_eq!(announcement.channels.values().next().unwrap().len(), 20_000);
        }
    }
}
