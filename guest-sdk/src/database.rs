//! Key-value databases the host keeps (`databases/*.yaml` in the project), as Taubyte's
//! go-sdk `database` package.
//!
//! A database is opened by a name that a database resource's `match` serves; what the
//! function stores there is kept across invocations and restarts, up to the resource's
//! `storage.size` (keys and values together). A put past it fails and stores nothing.
//!
//! ```no_run
//! use wisp_sdk::{database, Event, Result};
//!
//! #[wisp_sdk::function]
//! fn visit(event: Event) -> Result<()> {
//!     let http = event.http()?;
//!     let db = database::new("visits")?;
//!     let seen = db.get("count")?.map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0));
//!     let count: u64 = seen.unwrap_or(0) + 1;
//!     db.put("count", count.to_string().as_bytes())?;
//!     http.write(format!("visit {count}").as_bytes())?;
//!     Ok(())
//! }
//! ```

use crate::error::{check, Errno, Error, Result};
use crate::fetch::{self, split_names};
use crate::sys::safe;

/// Opens the database the project serves under `name`.
pub fn new(name: &str) -> Result<Database> {
    let mut id = 0;
    check(safe::new_database(name, &mut id), || {
        format!("opening database `{name}` (does a databases/*.yaml resource match it?)")
    })?;
    Ok(Database {
        id,
        name: name.to_owned(),
    })
}

/// An open database. Closing it (or dropping it at the end of the invocation) closes only
/// this handle.
#[derive(Debug)]
pub struct Database {
    id: u32,
    name: String,
}

impl Database {
    /// The value of `key`, or `None` when the key is not there.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match fetch::two_call(
            |size| safe::database_get_size(self.id, key, size),
            |buf| safe::database_get(self.id, key, buf),
        ) {
            Ok(value) => Ok(Some(value)),
            Err(Errno::DatabaseKeyNotFound) => Ok(None),
            Err(errno) => Err(Error::call(
                errno,
                format!("reading `{key}` of database `{}`", self.name),
            )),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        check(safe::database_put(self.id, key, value), || {
            format!("storing `{key}` in database `{}`", self.name)
        })
    }

    /// Removes `key`; removing a key that is not there is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        check(safe::database_delete(self.id, key), || {
            format!("deleting `{key}` of database `{}`", self.name)
        })
    }

    /// The keys that start with `prefix` (every key for `""`), in byte order.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let list = fetch::bytes(
            || format!("the keys of database `{}`", self.name),
            |size| safe::database_list_size(self.id, prefix, size),
            |buf| safe::database_list(self.id, prefix, buf),
        )?;
        Ok(split_names(&list))
    }

    /// Closes this handle.
    pub fn close(self) -> Result<()> {
        check(safe::database_close(self.id), || {
            format!("closing database `{}`", self.name)
        })
    }
}
