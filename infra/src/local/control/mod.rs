//! Control store on an embedded SQLite database, migrated on open. Every conditional write of
//! the port runs inside one transaction, so it is as atomic here as on DynamoDB.
//!
//! The database runs in write-ahead-log mode with `synchronous=NORMAL`: a commit is an append
//! to the log, not an fsync, so the access-log entry every partner read writes costs tens of
//! microseconds rather than milliseconds. A committed write survives the process being killed
//! (it is in the log file); only the machine losing power before the next checkpoint's fsync
//! could undo the last commits, and never half of one. Reads do not change the database's
//! rows, so a refused request leaves the store's contents as they were.

mod access_log;
mod agent_health;
mod codec;
mod consents;
mod disposal;
mod idempotency;
mod opt_outs;
mod partners;
mod registry;
mod schema;
mod schools;
mod staged_uploads;
mod tasks;
mod tokens;
mod versions;

use std::path::Path;
use std::sync::Mutex;

use codec::is_constraint;
use rollcall_core::ports::StoreError;
use rusqlite::Connection;
use schema::migrate;

pub struct SqliteControlStore {
    // A std Mutex: never held across an await.
    conn: Mutex<Connection>,
}

/// What a database closure can fail with: SQLite itself, or a domain outcome such as Conflict.
enum DbError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError::Store(StoreError::unavailable(e))
    }
}

type DbResult<T> = Result<T, DbError>;

impl SqliteControlStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> anyhow::Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // An in-memory database answers "memory", and keeps it.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Every statement the stores run, parsed once ([`codec::Cached`]).
        conn.set_prepared_statement_cache_capacity(256);
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        // The call runs on the caller's thread. There is one connection, so every call waits
        // for it however it runs; most take tens of microseconds, less than handing them to
        // the blocking pool and back costs (two thread switches a call, a fifth of a partner
        // read's time). A call never awaits while it holds the connection.
        let outcome = {
            let mut conn = self
                .conn
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        };
        outcome.map_err(|e| match e {
            DbError::Sql(e) if is_constraint(&e) => StoreError::Conflict("already exists".into()),
            DbError::Sql(e) => StoreError::unavailable(e),
            DbError::Store(e) => e,
        })
    }
}
