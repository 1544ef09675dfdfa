//! The embedded state engine: one SQLite file, opened on first use.
//!
//! Tables: `spaces` (one row per store, with the bytes it holds), `records` (database and
//! globals keys) and `objects` (storage file versions). Every write is one transaction that
//! checks the space's capacity and updates its `used` total, so a write past the capacity
//! leaves nothing behind. The file runs in WAL mode with `synchronous=NORMAL`: a committed
//! write is in the file (or its WAL) before the call returns, so it survives the host being
//! killed at any point; only an operating-system crash or power loss can take the last
//! commits back.
//!
//! Calls run on the calling thread under one connection's lock: a read or a write takes
//! microseconds, far less than handing it to another thread would cost.

use super::MAX_LISTED;
use super::{Appended, LogEntry, LogMessage, LogRead, LogSpace, Range, MAX_READ};
use super::{Object, ObjectWrite, Space, StateEngine, StateError, StateFuture, StateResult};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The file's name in the data dir.
pub const FILE_NAME: &str = "state.sqlite3";

/// The data dir in the project folder when `--data-dir` is not given.
pub const DEFAULT_DIR: &str = ".wisp";

/// Channels one project keeps the history of; a new channel past it is not kept.
pub const MAX_LOGS: usize = 10_000;

/// Space ids kept in memory; past it the map is cleared (ids are looked up again).
const CACHED_SPACES: usize = 10_000;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS spaces (
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        project TEXT NOT NULL,
        application TEXT NOT NULL,
        name TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        UNIQUE (kind, project, application, name)
    );
    CREATE TABLE IF NOT EXISTS records (
        space INTEGER NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (space, key)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS objects (
        space INTEGER NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (space, name, version)
    );
    CREATE TABLE IF NOT EXISTS logs (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        topic TEXT NOT NULL,
        epoch TEXT NOT NULL,
        next INTEGER NOT NULL DEFAULT 1,
        UNIQUE (project, topic)
    );
    CREATE TABLE IF NOT EXISTS log_entries (
        log INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        time INTEGER NOT NULL,
        text INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (log, offset)
    ) WITHOUT ROWID;
";

/// The SQLite engine over the file at `path`.
pub struct Sqlite {
    path: PathBuf,
    db: Mutex<Option<Db>>,
}

struct Db {
    conn: Connection,
    spaces: HashMap<SpaceKey, i64>,
}

type SpaceKey = (u8, String, String, String);

impl Sqlite {
    /// Appends `messages` (at least one) to `log` in one transaction: one lookup of the log,
    /// one trim, one commit, however many there are.
    fn append_in_one(
        &self,
        log: &LogSpace,
        messages: &[LogMessage<'_>],
    ) -> StateResult<Vec<Appended>> {
        let last = messages.last().expect("at least one message to append");
        self.with(|db| {
            let tx = db
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (id, epoch, first) = match Db::log(&tx, log)? {
                Ok(found) => found,
                Err(refused) => return Ok(Err(refused)),
            };
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO log_entries (log, offset, time, text, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut appended = Vec::with_capacity(messages.len());
            for (offset, message) in (first..).zip(messages) {
                insert.execute(params![id, offset as i64, message.time_ms as i64, message.text, message.data])?;
                appended.push(Appended {
                    offset,
                    epoch: epoch.clone(),
                });
            }
            drop(insert);
            let next = first + messages.len() as u64;
            tx.prepare_cached("UPDATE logs SET next = ?1 WHERE id = ?2")?
                .execute(params![next as i64, id])?;
            trim(&tx, id, log, next - 1, last.time_ms)?;
            tx.commit()?;
            Ok(Ok(appended))
        })
    }
    /// An engine over `<dir>/state.sqlite3`; the folder and the file are made on first use.
    pub fn in_dir(dir: &Path) -> Self {
        Self::new(dir.join(FILE_NAME))
    }

    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            db: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the open database, opening it first if need be. A failed open is
    /// reported to the caller and tried again on the next call.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Db) -> rusqlite::Result<StateResult<T>>,
    ) -> StateResult<T> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(self.open().map_err(|error| {
                tracing::error!(file = %self.path.display(), %error, "cannot open the state database");
                StateError::Unavailable(format!("cannot open {}: {error}", self.path.display()))
            })?);
        }
        let db = guard.as_mut().expect("opened just above");
        f(db).unwrap_or_else(|error| {
            tracing::error!(file = %self.path.display(), %error, "state database call failed");
            Err(StateError::Unavailable(error.to_string()))
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Db>> {
        // A panic under the lock cannot leave a transaction half-done: SQLite rolls back
        // a transaction its connection drops, so the data is consistent either way.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self) -> Result<Db, String> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn = Connection::open(&self.path).map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| e.to_string())?;
        tracing::info!(file = %self.path.display(), "state database open");
        Ok(Db {
            conn,
            spaces: HashMap::new(),
        })
    }
}

fn space_key(space: &Space) -> SpaceKey {
    (
        space.kind as u8,
        space.project.to_string(),
        space.application.to_string(),
        space.name.to_string(),
    )
}

impl Db {
    /// The space's id, or `None` if nothing was ever written to it.
    fn find(&mut self, space: &Space) -> rusqlite::Result<Option<i64>> {
        let key = space_key(space);
        if let Some(id) = self.spaces.get(&key) {
            return Ok(Some(*id));
        }
        let id = self
            .conn
            .prepare_cached(
                "SELECT id FROM spaces WHERE kind = ?1 AND project = ?2 AND application = ?3 AND name = ?4",
            )?
            .query_row(params![key.0, key.1, key.2, key.3], |row| row.get(0))
            .optional()?;
        if let Some(id) = id {
            self.remember(key, id);
        }
        Ok(id)
    }

    /// Log `log`'s id, epoch and next offset, if it exists.
    fn find_log(
        tx: &rusqlite::Transaction<'_>,
        log: &LogSpace,
    ) -> rusqlite::Result<Option<(i64, String, u64)>> {
        tx.prepare_cached("SELECT id, epoch, next FROM logs WHERE project = ?1 AND topic = ?2")?
            .query_row(params![&*log.project, &*log.topic], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))
            })
            .optional()
    }

    /// Log `log`'s id, epoch and next offset, made (with a new epoch) if it does not exist
    /// and the project has fewer than [`MAX_LOGS`].
    fn log(
        tx: &rusqlite::Transaction<'_>,
        log: &LogSpace,
    ) -> rusqlite::Result<StateResult<(i64, String, u64)>> {
        if let Some(found) = Db::find_log(tx, log)? {
            return Ok(Ok(found));
        }
        let logs: i64 = tx
            .prepare_cached("SELECT count(*) FROM logs WHERE project = ?1")?
            .query_row(params![&*log.project], |row| row.get(0))?;
        if logs as usize >= MAX_LOGS {
            return Ok(Err(StateError::TooLarge(format!(
                "the project keeps the history of {MAX_LOGS} channels already"
            ))));
        }
        let epoch = new_epoch();
        tx.prepare_cached("INSERT INTO logs (project, topic, epoch) VALUES (?1, ?2, ?3)")?
            .execute(params![&*log.project, &*log.topic, &epoch])?;
        Ok(Ok((tx.last_insert_rowid(), epoch, 1)))
    }

    fn remember(&mut self, key: SpaceKey, id: i64) {
        if self.spaces.len() >= CACHED_SPACES {
            self.spaces.clear();
        }
        self.spaces.insert(key, id);
    }

    /// Runs a write transaction on the space (made if need be) with its `used` total; `f`
    /// returns the new total and its result, or an error that rolls everything back.
    fn write<T>(
        &mut self,
        space: &Space,
        f: impl FnOnce(&rusqlite::Transaction<'_>, i64, u64) -> rusqlite::Result<StateResult<(u64, T)>>,
    ) -> rusqlite::Result<StateResult<T>> {
        let key = space_key(space);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO spaces (kind, project, application, name) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![key.0, key.1, key.2, key.3])?;
        let (id, used): (i64, i64) = tx
            .prepare_cached(
                "SELECT id, used FROM spaces WHERE kind = ?1 AND project = ?2 AND application = ?3 AND name = ?4",
            )?
            .query_row(params![key.0, key.1, key.2, key.3], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let (used, result) = match f(&tx, id, used as u64)? {
            Ok(done) => done,
            // Dropping the transaction rolls it back.
            Err(refused) => return Ok(Err(refused)),
        };
        tx.prepare_cached("UPDATE spaces SET used = ?1 WHERE id = ?2")?
            .execute(params![used as i64, id])?;
        tx.commit()?;
        self.remember(key, id);
        Ok(Ok(result))
    }
}

/// A log's epoch: 8 random bytes in hex, new each time a log is made.
fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    // With no randomness to be had, a clock value still differs from the last epoch.
    if getrandom::getrandom(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = (now.as_nanos() as u64).to_le_bytes();
    }
    hex::encode(bytes)
}

/// Drops what `log` keeps past its size (`last` is its newest offset) and its age.
fn trim(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    log: &LogSpace,
    last: u64,
    now_ms: u64,
) -> rusqlite::Result<()> {
    let keep_from = last.saturating_sub((log.size as u64).saturating_sub(1));
    tx.prepare_cached("DELETE FROM log_entries WHERE log = ?1 AND offset < ?2")?
        .execute(params![id, keep_from as i64])?;
    if let Some(ttl) = log.ttl_ms {
        let cutoff = now_ms.saturating_sub(ttl) as i64;
        // Times grow with offsets, so the expired are the oldest: find the first kept.
        let first_kept: Option<i64> = tx
            .prepare_cached(
                "SELECT offset FROM log_entries WHERE log = ?1 AND time >= ?2 ORDER BY offset LIMIT 1",
            )?
            .query_row(params![id, cutoff], |row| row.get(0))
            .optional()?;
        let until = first_kept.unwrap_or(last as i64 + 1);
        tx.prepare_cached("DELETE FROM log_entries WHERE log = ?1 AND offset < ?2")?
            .execute(params![id, until])?;
    }
    Ok(())
}

/// `used` after replacing `old` bytes by `new` ones, unless that passes the capacity.
fn replace(space: &Space, used: u64, old: u64, new: u64) -> StateResult<u64> {
    let needed = used.saturating_sub(old).saturating_add(new);
    if needed > space.capacity && new > old {
        return Err(StateError::Full {
            needed,
            capacity: space.capacity,
        });
    }
    Ok(needed)
}

/// The smallest key greater than every key starting with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn listed<T>(items: Vec<T>, what: &str) -> StateResult<Vec<T>> {
    if items.len() > MAX_LISTED {
        return Err(StateError::TooLarge(format!(
            "more than {MAX_LISTED} {what} to list"
        )));
    }
    Ok(items)
}

fn ready<'a, T: Send + 'a>(result: StateResult<T>) -> StateFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

impl StateEngine for Sqlite {
    fn get<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, Option<Vec<u8>>> {
        ready(self.with(|db| {
            let Some(id) = db.find(space)? else {
                return Ok(Ok(None));
            };
            let value = db
                .conn
                .prepare_cached("SELECT value FROM records WHERE space = ?1 AND key = ?2")?
                .query_row(params![id, key], |row| row.get(0))
                .optional()?;
            Ok(Ok(value))
        }))
    }

    fn put<'a>(&'a self, space: &'a Space, key: &'a [u8], value: &'a [u8]) -> StateFuture<'a, ()> {
        ready(self.with(|db| {
            db.write(space, |tx, id, used| {
                let old: Option<i64> = tx
                    .prepare_cached(
                        "SELECT length(key) + length(value) FROM records WHERE space = ?1 AND key = ?2",
                    )?
                    .query_row(params![id, key], |row| row.get(0))
                    .optional()?;
                let cost = (key.len() + value.len()) as u64;
                let used = match replace(space, used, old.unwrap_or(0) as u64, cost) {
                    Ok(used) => used,
                    Err(full) => return Ok(Err(full)),
                };
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO records (space, key, value) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id, key, value])?;
                Ok(Ok((used, ())))
            })
        }))
    }

    fn delete<'a>(&'a self, space: &'a Space, key: &'a [u8]) -> StateFuture<'a, bool> {
        ready(self.with(|db| {
            if db.find(space)?.is_none() {
                return Ok(Ok(false));
            }
            db.write(space, |tx, id, used| {
                let old: Option<i64> = tx
                    .prepare_cached(
                        "DELETE FROM records WHERE space = ?1 AND key = ?2 \
                         RETURNING length(key) + length(value)",
                    )?
                    .query_row(params![id, key], |row| row.get(0))
                    .optional()?;
                let freed = old.unwrap_or(0) as u64;
                Ok(Ok((used.saturating_sub(freed), old.is_some())))
            })
        }))
    }

    fn keys<'a>(&'a self, space: &'a Space, prefix: &'a [u8]) -> StateFuture<'a, Vec<Vec<u8>>> {
        ready(self.with(|db| {
            let Some(id) = db.find(space)? else {
                return Ok(Ok(Vec::new()));
            };
            let limit = (MAX_LISTED + 1) as i64;
            let keys: Vec<Vec<u8>> = match prefix_end(prefix) {
                Some(end) => db
                    .conn
                    .prepare_cached(
                        "SELECT key FROM records WHERE space = ?1 AND key >= ?2 AND key < ?3 \
                         ORDER BY key LIMIT ?4",
                    )?
                    .query_map(params![id, prefix, end, limit], |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
                None => db
                    .conn
                    .prepare_cached(
                        "SELECT key FROM records WHERE space = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
                    )?
                    .query_map(params![id, prefix, limit], |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?,
            };
            Ok(listed(keys, "keys"))
        }))
    }

    fn add_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        data: &'a [u8],
        write: ObjectWrite,
    ) -> StateFuture<'a, u32> {
        ready(self.with(|db| {
            db.write(space, |tx, id, used| {
                let latest: Option<u32> = tx
                    .prepare_cached("SELECT max(version) FROM objects WHERE space = ?1 AND name = ?2")?
                    .query_row(params![id, name], |row| row.get(0))?;
                let version = match write.version(name, latest) {
                    Ok(version) => version,
                    Err(refused) => return Ok(Err(refused)),
                };
                let old: Option<i64> = tx
                    .prepare_cached(
                        "SELECT length(name) + length(data) FROM objects \
                         WHERE space = ?1 AND name = ?2 AND version = ?3",
                    )?
                    .query_row(params![id, name, version], |row| row.get(0))
                    .optional()?;
                let cost = (name.len() + data.len()) as u64;
                let used = match replace(space, used, old.unwrap_or(0) as u64, cost) {
                    Ok(used) => used,
                    Err(full) => return Ok(Err(full)),
                };
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO objects (space, name, version, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, name, version, data])?;
                Ok(Ok((used, version)))
            })
        }))
    }

    fn object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, Option<Object>> {
        ready(self.with(|db| {
            let Some(id) = db.find(space)? else {
                return Ok(Ok(None));
            };
            let row = |row: &rusqlite::Row<'_>| {
                Ok(Object {
                    version: row.get(0)?,
                    data: row.get(1)?,
                })
            };
            let object = match version {
                Some(version) => db
                    .conn
                    .prepare_cached(
                        "SELECT version, data FROM objects WHERE space = ?1 AND name = ?2 AND version = ?3",
                    )?
                    .query_row(params![id, name, version], row)
                    .optional()?,
                None => db
                    .conn
                    .prepare_cached(
                        "SELECT version, data FROM objects WHERE space = ?1 AND name = ?2 \
                         ORDER BY version DESC LIMIT 1",
                    )?
                    .query_row(params![id, name], row)
                    .optional()?,
            };
            Ok(Ok(object))
        }))
    }

    fn versions<'a>(&'a self, space: &'a Space, name: &'a str) -> StateFuture<'a, Vec<u32>> {
        ready(self.with(|db| {
            let Some(id) = db.find(space)? else {
                return Ok(Ok(Vec::new()));
            };
            let versions = db
                .conn
                .prepare_cached(
                    "SELECT version FROM objects WHERE space = ?1 AND name = ?2 ORDER BY version LIMIT ?3",
                )?
                .query_map(params![id, name, (MAX_LISTED + 1) as i64], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(listed(versions, "versions"))
        }))
    }

    fn objects<'a>(&'a self, space: &'a Space) -> StateFuture<'a, Vec<(String, u32)>> {
        ready(self.with(|db| {
            let Some(id) = db.find(space)? else {
                return Ok(Ok(Vec::new()));
            };
            let objects = db
                .conn
                .prepare_cached(
                    "SELECT name, version FROM objects WHERE space = ?1 ORDER BY name, version LIMIT ?2",
                )?
                .query_map(params![id, (MAX_LISTED + 1) as i64], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(listed(objects, "files"))
        }))
    }

    fn delete_object<'a>(
        &'a self,
        space: &'a Space,
        name: &'a str,
        version: Option<u32>,
    ) -> StateFuture<'a, bool> {
        ready(self.with(|db| {
            if db.find(space)?.is_none() {
                return Ok(Ok(false));
            }
            db.write(space, |tx, id, used| {
                let freed: Vec<i64> = match version {
                    Some(version) => tx
                        .prepare_cached(
                            "DELETE FROM objects WHERE space = ?1 AND name = ?2 AND version = ?3 \
                             RETURNING length(name) + length(data)",
                        )?
                        .query_map(params![id, name, version], |row| row.get(0))?
                        .collect::<rusqlite::Result<_>>()?,
                    None => tx
                        .prepare_cached(
                            "DELETE FROM objects WHERE space = ?1 AND name = ?2 \
                             RETURNING length(name) + length(data)",
                        )?
                        .query_map(params![id, name], |row| row.get(0))?
                        .collect::<rusqlite::Result<_>>()?,
                };
                let total: u64 = freed.iter().map(|n| *n as u64).sum();
                Ok(Ok((used.saturating_sub(total), !freed.is_empty())))
            })
        }))
    }

    fn used<'a>(&'a self, space: &'a Space) -> StateFuture<'a, u64> {
        ready(self.with(|db| {
            let Some(id) = db.find(space)? else {
                return Ok(Ok(0));
            };
            let used: i64 = db
                .conn
                .prepare_cached("SELECT used FROM spaces WHERE id = ?1")?
                .query_row(params![id], |row| row.get(0))?;
            Ok(Ok(used as u64))
        }))
    }

    fn append<'a>(
        &'a self,
        log: &'a LogSpace,
        message: LogMessage<'a>,
    ) -> StateFuture<'a, Appended> {
        ready(
            self.append_in_one(log, std::slice::from_ref(&message))
                .map(|mut appended| appended.remove(0)),
        )
    }

    fn append_all<'a>(
        &'a self,
        log: &'a LogSpace,
        messages: &'a [LogMessage<'a>],
    ) -> StateFuture<'a, Vec<Appended>> {
        ready(self.append_in_one(log, messages))
    }

    fn read_log<'a>(
        &'a self,
        log: &'a LogSpace,
        range: Range,
        now_ms: u64,
    ) -> StateFuture<'a, LogRead> {
        ready(self.with(|db| {
            let tx = db.conn.transaction()?;
            // Reading makes no log: a channel nobody published on has no epoch yet.
            let Some((id, epoch, next)) = Db::find_log(&tx, log)? else {
                return Ok(Ok(LogRead {
                    epoch: String::new(),
                    first: 1,
                    next: 1,
                    entries: Vec::new(),
                }));
            };
            let cutoff = log.ttl_ms.map_or(0, |ttl| now_ms.saturating_sub(ttl)) as i64;
            let first: i64 = tx
                .prepare_cached(
                    "SELECT min(offset) FROM log_entries WHERE log = ?1 AND time >= ?2",
                )?
                .query_row(params![id, cutoff], |row| row.get::<_, Option<i64>>(0))?
                .unwrap_or(next as i64);
            let from = match range {
                Range::Last(n) => (next as i64 - n.min(MAX_READ) as i64).max(first),
                Range::After(offset) => (offset as i64 + 1).max(first),
            };
            let entries = tx
                .prepare_cached(
                    "SELECT offset, time, text, data FROM log_entries \
                     WHERE log = ?1 AND offset >= ?2 AND time >= ?3 ORDER BY offset LIMIT ?4",
                )?
                .query_map(params![id, from, cutoff, MAX_READ as i64], |row| {
                    Ok(LogEntry {
                        offset: row.get::<_, i64>(0)? as u64,
                        time_ms: row.get::<_, i64>(1)? as u64,
                        text: row.get(2)?,
                        data: row.get(3)?,
                        origin: None,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(Ok(LogRead {
                epoch,
                first: first as u64,
                next,
                entries,
            }))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn space(kind: Kind, name: &str, capacity: u64) -> Space {
        Space {
            kind,
            project: "p".into(),
            application: "".into(),
            name: name.into(),
            capacity,
        }
    }

    fn block<T>(future: StateFuture<'_, T>) -> StateResult<T> {
        futures_util::FutureExt::now_or_never(future).expect("SQLite calls are immediate")
    }

    #[test]
    fn records_round_trip_and_list_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Sqlite::in_dir(&dir.path().join("made"));
        let db = space(Kind::Database, "a", 1000);
        assert_eq!(
            block(engine.get(&db, b"k")).unwrap(),
            None,
            "nothing made yet"
        );
        for key in ["test", "test/1", "test/2s", "tesu", "other"] {
            block(engine.put(&db, key.as_bytes(), b"v")).unwrap();
        }
        assert_eq!(block(engine.get(&db, b"test")).unwrap().unwrap(), b"v");
        let keys = block(engine.keys(&db, b"test/")).unwrap();
        assert_eq!(keys, [b"test/1".to_vec(), b"test/2s".to_vec()]);
        assert_eq!(block(engine.keys(&db, b"")).unwrap().len(), 5);
        assert!(block(engine.delete(&db, b"test")).unwrap());
        assert!(!block(engine.delete(&db, b"test")).unwrap());
        assert_eq!(block(engine.get(&db, b"test")).unwrap(), None);
        // Another space with the same name but another kind shares nothing.
        let storage = space(Kind::Storage, "a", 1000);
        assert!(block(engine.keys(&storage, b"")).unwrap().is_empty());
        assert!(dir.path().join("made").join(FILE_NAME).is_file());
    }

    #[test]
    fn a_put_past_the_capacity_fails_whole_and_an_overwrite_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Sqlite::in_dir(dir.path());
        let db = space(Kind::Database, "small", 10);
        block(engine.put(&db, b"k", b"12345678")).unwrap(); // 9 bytes
        block(engine.put(&db, b"k", b"87654321")).unwrap(); // replaces: still 9
        assert_eq!(block(engine.used(&db)).unwrap(), 9);
        let full = block(engine.put(&db, b"j", b"12")).unwrap_err();
        assert!(
            matches!(
                full,
                StateError::Full {
                    needed: 12,
                    capacity: 10
                }
            ),
            "{full}"
        );
        assert_eq!(
            block(engine.get(&db, b"j")).unwrap(),
            None,
            "nothing half-written"
        );
        assert_eq!(block(engine.used(&db)).unwrap(), 9);
        // Shrinking a value is always allowed, even past a lowered capacity.
        let smaller = space(Kind::Database, "small", 2);
        block(engine.put(&smaller, b"k", b"1")).unwrap();
        assert_eq!(block(engine.used(&db)).unwrap(), 2);
        assert!(block(engine.delete(&db, b"k")).unwrap());
        assert_eq!(block(engine.used(&db)).unwrap(), 0);
    }

    #[test]
    fn objects_version_overwrite_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Sqlite::in_dir(dir.path());
        let st = space(Kind::Storage, "files", 100);
        let versioned = ObjectWrite {
            versioning: true,
            overwrite: false,
        };
        assert_eq!(
            block(engine.add_object(&st, "video", b"one", versioned)).unwrap(),
            1
        );
        assert_eq!(
            block(engine.add_object(&st, "video", b"two", versioned)).unwrap(),
            2
        );
        let over = ObjectWrite {
            versioning: true,
            overwrite: true,
        };
        assert_eq!(
            block(engine.add_object(&st, "video", b"TWO", over)).unwrap(),
            2
        );
        let latest = block(engine.object(&st, "video", None)).unwrap().unwrap();
        assert_eq!((latest.version, latest.data.as_slice()), (2, &b"TWO"[..]));
        assert_eq!(
            block(engine.object(&st, "video", Some(1)))
                .unwrap()
                .unwrap()
                .data,
            b"one"
        );
        assert_eq!(block(engine.versions(&st, "video")).unwrap(), [1, 2]);
        assert_eq!(block(engine.used(&st)).unwrap(), 2 * (5 + 3));

        let plain = ObjectWrite {
            versioning: false,
            overwrite: false,
        };
        assert_eq!(block(engine.add_object(&st, "a", b"x", plain)).unwrap(), 1);
        let exists = block(engine.add_object(&st, "a", b"y", plain)).unwrap_err();
        assert!(matches!(exists, StateError::Exists(_)), "{exists}");
        let full = block(engine.add_object(&st, "big", &[0; 100], versioned)).unwrap_err();
        assert!(matches!(full, StateError::Full { .. }), "{full}");
        assert_eq!(
            block(engine.objects(&st)).unwrap(),
            [
                ("a".to_string(), 1),
                ("video".to_string(), 1),
                ("video".to_string(), 2)
            ]
        );
        assert!(block(engine.delete_object(&st, "video", Some(1))).unwrap());
        assert_eq!(block(engine.versions(&st, "video")).unwrap(), [2]);
        assert!(block(engine.delete_object(&st, "video", None)).unwrap());
        assert!(!block(engine.delete_object(&st, "video", None)).unwrap());
        assert_eq!(block(engine.used(&st)).unwrap(), 2);
    }

    #[test]
    fn data_is_there_after_reopening_and_a_bad_path_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let db = space(Kind::Globals, "", 100);
        block(Sqlite::in_dir(dir.path()).put(&db, b"k", b"v")).unwrap();
        let again = Sqlite::in_dir(dir.path());
        assert_eq!(block(again.get(&db, b"k")).unwrap().unwrap(), b"v");

        let file = dir.path().join("file");
        std::fs::write(&file, "not a folder").unwrap();
        let broken = Sqlite::in_dir(&file);
        let error = block(broken.get(&db, b"k")).unwrap_err();
        assert!(matches!(error, StateError::Unavailable(_)), "{error}");
    }

    fn log(size: usize, ttl_ms: Option<u64>) -> LogSpace {
        LogSpace {
            project: "p".into(),
            topic: "hash/room".into(),
            size,
            ttl_ms,
        }
    }

    fn message(data: &str, time_ms: u64) -> LogMessage<'_> {
        LogMessage {
            text: true,
            data: data.as_bytes(),
            time_ms,
            origin: None,
        }
    }

    fn offsets(read: &LogRead) -> Vec<u64> {
        read.entries.iter().map(|e| e.offset).collect()
    }

    #[test]
    fn a_log_numbers_from_one_trims_by_count_and_keeps_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Sqlite::in_dir(dir.path());
        let room = log(3, None);
        let empty = block(engine.read_log(&room, Range::Last(10), 0)).unwrap();
        assert_eq!((empty.first, empty.next), (1, 1));
        assert!(empty.entries.is_empty());
        assert_eq!(empty.epoch, "", "reading makes no log, so no epoch");
        let mut epoch = None;
        for i in 1..=5u64 {
            let appended = block(engine.append(&room, message(&format!("m{i}"), i))).unwrap();
            assert_eq!(appended.offset, i);
            let epoch = epoch.get_or_insert(appended.epoch.clone());
            assert_eq!(&appended.epoch, epoch, "one epoch while the log lives");
        }
        let epoch = epoch.unwrap();
        let read = block(engine.read_log(&room, Range::Last(10), 5)).unwrap();
        assert_eq!(offsets(&read), [3, 4, 5], "the newest three");
        assert_eq!((read.first, read.next), (3, 6));
        assert_eq!(read.entries[2].data, b"m5");
        assert_eq!(
            offsets(&block(engine.read_log(&room, Range::Last(2), 5)).unwrap()),
            [4, 5]
        );
        assert_eq!(
            offsets(&block(engine.read_log(&room, Range::After(3), 5)).unwrap()),
            [4, 5]
        );
        assert_eq!(
            offsets(&block(engine.read_log(&room, Range::After(0), 5)).unwrap()),
            [3, 4, 5]
        );
        assert!(block(engine.read_log(&room, Range::After(5), 5))
            .unwrap()
            .entries
            .is_empty());
        // Another channel has its own offsets.
        let other = LogSpace {
            topic: "hash/other".into(),
            ..room.clone()
        };
        assert_eq!(
            block(engine.append(&other, message("x", 9)))
                .unwrap()
                .offset,
            1
        );
        // Reopened, the log is the same; a new file is a new epoch.
        drop(engine);
        let again = Sqlite::in_dir(dir.path());
        let read = block(again.read_log(&room, Range::Last(10), 5)).unwrap();
        assert_eq!((read.epoch.as_str(), read.next), (epoch.as_str(), 6));
        let elsewhere = tempfile::tempdir().unwrap();
        let fresh = Sqlite::in_dir(elsewhere.path());
        let restarted = block(fresh.append(&room, message("m1", 1))).unwrap();
        assert_eq!(restarted.offset, 1);
        assert_ne!(restarted.epoch, epoch, "a lost history is a new epoch");
    }

    #[test]
    fn messages_appended_together_are_numbered_and_trimmed_as_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Sqlite::in_dir(dir.path());
        let room = log(4, None);
        let first = block(engine.append(&room, message("m1", 1))).unwrap();
        let batch: Vec<LogMessage<'_>> = ["m2", "m3", "m4", "m5", "m6"]
            .iter()
            .map(|data| message(data, 2))
            .collect();
        let appended = block(engine.append_all(&room, &batch)).unwrap();
        let numbers: Vec<u64> = appended.iter().map(|a| a.offset).collect();
        assert_eq!(numbers, [2, 3, 4, 5, 6]);
        assert!(appended.iter().all(|a| a.epoch == first.epoch));
        let read = block(engine.read_log(&room, Range::After(0), 2)).unwrap();
        assert_eq!(offsets(&read), [3, 4, 5, 6], "trimmed to the newest four");
        assert_eq!((read.first, read.next), (3, 7));
        assert_eq!(read.entries[3].data, b"m6");
        let next = block(engine.append(&room, message("m7", 3))).unwrap();
        assert_eq!(next.offset, 7);
    }

    #[test]
    fn a_log_drops_messages_past_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Sqlite::in_dir(dir.path());
        let room = log(100, Some(1000));
        for (i, time) in [0, 500, 1000, 1600].into_iter().enumerate() {
            block(engine.append(&room, message(&format!("m{i}"), time))).unwrap();
        }
        // At 1600 anything older than 600 is gone: offsets 1 and 2.
        let read = block(engine.read_log(&room, Range::After(0), 1600)).unwrap();
        assert_eq!(offsets(&read), [3, 4]);
        assert_eq!(read.first, 3);
        // Reading later hides what has aged since, before any append trims it.
        let later = block(engine.read_log(&room, Range::After(0), 2100)).unwrap();
        assert_eq!(offsets(&later), [4]);
    }

    #[test]
    fn prefix_end_skips_full_bytes() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
