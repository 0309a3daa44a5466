//! Control store on an embedded SQLite database, migrated on open. Every conditional write of
//! the port runs inside one transaction, so it is as atomic here as on DynamoDB.
//!
//! The database runs in SQLite's default rollback-journal mode, in which reads never write to
//! the file: a refused request leaves the data directory byte-for-byte as it was.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rollcall_core::model::{
    AccessEntry, Consent, Estab, Partner, PartnerId, Refused, School, Token, VersionRecord,
};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::{ControlStore, Publication, StoreError};
use rollcall_core::scope::ScopeSet;
use rollcall_core::secret::KeyHash;
use rollcall_core::staging::{StagedState, StagedUpload};
use rollcall_core::task::{OPEN, Task, TaskState};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE schools (
    estab TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    agent_key_hash TEXT NOT NULL UNIQUE,
    admin_key_hash TEXT NOT NULL UNIQUE,
    row_hash_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    requested_scopes TEXT NOT NULL,
    management_secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE consents (
    estab TEXT NOT NULL,
    partner TEXT NOT NULL,
    scopes TEXT NOT NULL,
    version INTEGER NOT NULL,
    granted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    end_date INTEGER,
    secret_hash TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    secret_generation INTEGER NOT NULL,
    PRIMARY KEY (estab, partner)
);
CREATE INDEX consents_by_partner ON consents (partner);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    partner TEXT NOT NULL,
    estab TEXT NOT NULL,
    secret_generation INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE versions (
    estab TEXT NOT NULL,
    result_set TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER NOT NULL,
    superseded_at INTEGER,
    rows INTEGER NOT NULL,
    groups TEXT NOT NULL,
    upload TEXT NOT NULL,
    valid_until INTEGER NOT NULL,
    PRIMARY KEY (estab, result_set, version)
);
CREATE UNIQUE INDEX one_current_version ON versions (estab, result_set) WHERE superseded_at IS NULL;
CREATE TABLE access_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    estab TEXT NOT NULL,
    partner TEXT NOT NULL,
    at INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    scopes TEXT NOT NULL,
    rows INTEGER NOT NULL
);
CREATE INDEX access_log_by_school ON access_log (estab, seq);
"#,
    r#"
CREATE TABLE staged_uploads (
    estab TEXT NOT NULL,
    id TEXT NOT NULL,
    content_length INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    url_expires_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    claimed_at INTEGER,
    state TEXT NOT NULL,
    PRIMARY KEY (estab, id)
);
"#,
    r#"
CREATE TABLE tasks (
    estab TEXT NOT NULL,
    id TEXT NOT NULL,
    partner TEXT NOT NULL,
    kind TEXT NOT NULL,
    scopes TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (estab, id)
);
CREATE INDEX access_log_by_partner ON access_log (estab, partner, seq);
"#,
    r#"
CREATE TABLE opt_outs (
    estab TEXT NOT NULL,
    partner TEXT NOT NULL,
    students TEXT NOT NULL,
    staff TEXT NOT NULL,
    contacts TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (estab, partner)
);
"#,
    r#"
ALTER TABLE access_log ADD COLUMN refused_status INTEGER;
ALTER TABLE access_log ADD COLUMN refused_reason TEXT;
"#,
];

pub struct SqliteControlStore {
    // A std Mutex: it is only ever held inside `spawn_blocking`, never across an await.
    conn: Arc<Mutex<Connection>>,
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
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(StoreError::unavailable)?;
        outcome.map_err(|e| match e {
            DbError::Sql(e) if is_constraint(&e) => StoreError::Conflict("already exists".into()),
            DbError::Sql(e) => StoreError::unavailable(e),
            DbError::Store(e) => e,
        })
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn scopes_to_text(scopes: &ScopeSet) -> String {
    serde_json::to_string(scopes).expect("a set of strings serialises")
}

fn scopes_from_text(text: String) -> rusqlite::Result<ScopeSet> {
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_col<T, E: std::error::Error + Send + Sync + 'static>(
    value: Result<T, E>,
) -> rusqlite::Result<T> {
    value.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

const SCHOOL_COLUMNS: &str =
    "estab, name, agent_key_hash, admin_key_hash, row_hash_key, created_at";

fn school_from_row(row: &Row<'_>) -> rusqlite::Result<School> {
    Ok(School {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        name: row.get(1)?,
        agent_key_hash: KeyHash::from_hex(row.get(2)?),
        admin_key_hash: KeyHash::from_hex(row.get(3)?),
        row_hash_key: row.get(4)?,
        created_at: Timestamp::from_millis(row.get(5)?),
    })
}

const PARTNER_COLUMNS: &str = "id, name, requested_scopes, management_secret_hash, created_at";

fn partner_from_row(row: &Row<'_>) -> rusqlite::Result<Partner> {
    Ok(Partner {
        id: parse_col(PartnerId::parse(&row.get::<_, String>(0)?))?,
        name: row.get(1)?,
        requested_scopes: scopes_from_text(row.get(2)?)?,
        management_secret_hash: KeyHash::from_hex(row.get(3)?),
        created_at: Timestamp::from_millis(row.get(4)?),
    })
}

const CONSENT_COLUMNS: &str = "estab, partner, scopes, version, granted_at, updated_at, end_date, secret_hash, secret_sealed, secret_generation";

fn consent_from_row(row: &Row<'_>) -> rusqlite::Result<Consent> {
    Ok(Consent {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        partner: parse_col(PartnerId::parse(&row.get::<_, String>(1)?))?,
        scopes: scopes_from_text(row.get(2)?)?,
        version: row.get::<_, i64>(3)? as u64,
        granted_at: Timestamp::from_millis(row.get(4)?),
        updated_at: Timestamp::from_millis(row.get(5)?),
        end_date: row.get::<_, Option<i64>>(6)?.map(Timestamp::from_millis),
        secret_hash: KeyHash::from_hex(row.get(7)?),
        secret_sealed: row.get(8)?,
        secret_generation: row.get::<_, i64>(9)? as u64,
    })
}

const VERSION_COLUMNS: &str = "estab, result_set, version, created_at, confirmed_at, superseded_at, rows, groups, valid_until, upload";

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        result_set: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        created_at: Timestamp::from_millis(row.get(3)?),
        confirmed_at: Timestamp::from_millis(row.get(4)?),
        superseded_at: row.get::<_, Option<i64>>(5)?.map(Timestamp::from_millis),
        rows: row.get::<_, i64>(6)? as u64,
        groups: parse_col(serde_json::from_str(&row.get::<_, String>(7)?))?,
        valid_until: Timestamp::from_millis(row.get(8)?),
        upload: row.get(9)?,
    })
}

const STAGED_COLUMNS: &str =
    "estab, id, content_length, created_at, url_expires_at, expires_at, state";

fn staged_from_row(row: &Row<'_>) -> rusqlite::Result<StagedUpload> {
    Ok(StagedUpload {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        id: row.get(1)?,
        content_length: row.get::<_, i64>(2)? as u64,
        created_at: Timestamp::from_millis(row.get(3)?),
        url_expires_at: Timestamp::from_millis(row.get(4)?),
        expires_at: Timestamp::from_millis(row.get(5)?),
        state: parse_col(serde_json::from_str(&row.get::<_, String>(6)?))?,
    })
}

fn select_staged(
    c: &Connection,
    estab: &Estab,
    id: &str,
) -> rusqlite::Result<Option<StagedUpload>> {
    c.query_row(
        &format!("SELECT {STAGED_COLUMNS} FROM staged_uploads WHERE estab = ?1 AND id = ?2"),
        params![estab.as_str(), id],
        staged_from_row,
    )
    .optional()
}

const TASK_COLUMNS: &str =
    "estab, id, partner, kind, scopes, payload, created_at, expires_at, state";

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        id: row.get(1)?,
        partner: parse_col(PartnerId::parse(&row.get::<_, String>(2)?))?,
        kind: row.get(3)?,
        scopes: row.get(4)?,
        payload: row.get(5)?,
        created_at: Timestamp::from_millis(row.get(6)?),
        expires_at: Timestamp::from_millis(row.get(7)?),
        state: parse_col(serde_json::from_str(&row.get::<_, String>(8)?))?,
    })
}

fn access_from_row(row: &Row<'_>) -> rusqlite::Result<AccessEntry> {
    Ok(AccessEntry {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        partner: parse_col(PartnerId::parse(&row.get::<_, String>(1)?))?,
        at: Timestamp::from_millis(row.get(2)?),
        endpoint: row.get(3)?,
        scopes_used: scopes_from_text(row.get(4)?)?,
        rows: row.get::<_, i64>(5)? as u64,
        refused: match (
            row.get::<_, Option<i64>>(6)?,
            row.get::<_, Option<String>>(7)?,
        ) {
            (Some(status), Some(reason)) => Some(Refused {
                status: status as u16,
                reason,
            }),
            _ => None,
        },
    })
}

#[async_trait]
impl ControlStore for SqliteControlStore {
    async fn insert_school(&self, school: &School) -> Result<(), StoreError> {
        let s = school.clone();
        self.call(move |c| {
            c.execute(
                &format!("INSERT INTO schools ({SCHOOL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    s.estab.as_str(),
                    s.name,
                    s.agent_key_hash.as_str(),
                    s.admin_key_hash.as_str(),
                    s.row_hash_key,
                    s.created_at.millis()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn school(&self, estab: &Estab) -> Result<Option<School>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {SCHOOL_COLUMNS} FROM schools WHERE estab = ?1"),
                [estab.as_str()],
                school_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn school_by_agent_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {SCHOOL_COLUMNS} FROM schools WHERE agent_key_hash = ?1"),
                [hash.as_str()],
                school_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn school_by_admin_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {SCHOOL_COLUMNS} FROM schools WHERE admin_key_hash = ?1"),
                [hash.as_str()],
                school_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let p = partner.clone();
        self.call(move |c| {
            c.execute(
                &format!("INSERT INTO partners ({PARTNER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    p.id.as_str(),
                    p.name,
                    scopes_to_text(&p.requested_scopes),
                    p.management_secret_hash.as_str(),
                    p.created_at.millis()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
        let id = id.clone();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = ?1"),
                [id.as_str()],
                partner_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn partner_by_management_secret(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<Partner>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {PARTNER_COLUMNS} FROM partners WHERE management_secret_hash = ?1"
                ),
                [hash.as_str()],
                partner_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn schools(&self) -> Result<Vec<School>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SCHOOL_COLUMNS} FROM schools ORDER BY estab"
            ))?;
            let rows = stmt
                .query_map([], school_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {PARTNER_COLUMNS} FROM partners ORDER BY id"
            ))?;
            let rows = stmt
                .query_map([], partner_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn consent(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<Consent>, StoreError> {
        let (estab, partner) = (estab.clone(), partner.clone());
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {CONSENT_COLUMNS} FROM consents WHERE estab = ?1 AND partner = ?2"
                ),
                [estab.as_str(), partner.as_str()],
                consent_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn consents_of_school(&self, estab: &Estab) -> Result<Vec<Consent>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consents WHERE estab = ?1 ORDER BY partner"
            ))?;
            let rows = stmt
                .query_map([estab.as_str()], consent_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn consents_of_partner(&self, partner: &PartnerId) -> Result<Vec<Consent>, StoreError> {
        let partner = partner.clone();
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consents WHERE partner = ?1 ORDER BY estab"
            ))?;
            let rows = stmt
                .query_map([partner.as_str()], consent_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn put_consent(
        &self,
        consent: &Consent,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let k = consent.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT version FROM consents WHERE estab = ?1 AND partner = ?2",
                    [k.estab.as_str(), k.partner.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if stored.map(|v| v as u64) != expected {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "consent changed meanwhile (expected version {expected:?}, found {stored:?})"
                ))));
            }
            tx.execute(
                &format!("INSERT OR REPLACE INTO consents ({CONSENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    k.estab.as_str(),
                    k.partner.as_str(),
                    scopes_to_text(&k.scopes),
                    k.version as i64,
                    k.granted_at.millis(),
                    k.updated_at.millis(),
                    k.end_date.map(Timestamp::millis),
                    k.secret_hash.as_str(),
                    k.secret_sealed,
                    k.secret_generation as i64,
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn insert_token(&self, token: &Token) -> Result<(), StoreError> {
        let t = token.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO tokens (hash, partner, estab, secret_generation, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.hash.as_str(), t.partner.as_str(), t.estab.as_str(), t.secret_generation as i64, t.issued_at.millis(), t.expires_at.millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn token(&self, hash: &KeyHash) -> Result<Option<Token>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT hash, partner, estab, secret_generation, issued_at, expires_at FROM tokens WHERE hash = ?1",
                [hash.as_str()],
                |row| {
                    Ok(Token {
                        hash: KeyHash::from_hex(row.get(0)?),
                        partner: parse_col(PartnerId::parse(&row.get::<_, String>(1)?))?,
                        estab: parse_col(Estab::parse(&row.get::<_, String>(2)?))?,
                        secret_generation: row.get::<_, i64>(3)? as u64,
                        issued_at: Timestamp::from_millis(row.get(4)?),
                        expires_at: Timestamp::from_millis(row.get(5)?),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(c.execute("DELETE FROM tokens WHERE expires_at <= ?1", [now.millis()])? as u64)
        })
        .await
    }

    async fn current_version(
        &self,
        estab: &Estab,
        result_set: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {VERSION_COLUMNS} FROM versions WHERE estab = ?1 AND result_set = ?2 AND superseded_at IS NULL"),
                [estab.as_str(), rs.as_str()],
                version_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn version_record(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM versions
                     WHERE estab = ?1 AND result_set = ?2 AND version = ?3"
                ),
                params![estab.as_str(), rs, version as i64],
                version_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn publish_versions(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let publications = publications.to_vec();
        self.call(move |c| {
            let tx = c.transaction()?;
            for p in &publications {
                let r = &p.record;
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM versions WHERE estab = ?1 AND result_set = ?2 AND superseded_at IS NULL",
                        [r.estab.as_str(), r.result_set.as_str()],
                        |row| row.get(0),
                    )
                    .optional()?;
                if current.map(|v| v as u64) != p.replaces {
                    return Err(DbError::Store(StoreError::Conflict(format!(
                        "{} was replaced by another upload meanwhile",
                        r.result_set
                    ))));
                }
                if let Some(old) = current {
                    tx.execute(
                        "UPDATE versions SET superseded_at = ?4 WHERE estab = ?1 AND result_set = ?2 AND version = ?3",
                        params![r.estab.as_str(), r.result_set, old, now.millis()],
                    )?;
                }
                tx.execute(
                    &format!("INSERT INTO versions ({VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                    params![
                        r.estab.as_str(),
                        r.result_set,
                        r.version as i64,
                        r.created_at.millis(),
                        r.confirmed_at.millis(),
                        r.superseded_at.map(Timestamp::millis),
                        r.rows as i64,
                        serde_json::to_string(&r.groups)?,
                        r.valid_until.millis(),
                        r.upload,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            let changed = c.execute(
                "UPDATE versions SET confirmed_at = ?4, valid_until = ?5
                 WHERE estab = ?1 AND result_set = ?2 AND version = ?3 AND superseded_at IS NULL",
                params![
                    estab.as_str(),
                    rs,
                    version as i64,
                    confirmed_at.millis(),
                    valid_until.millis()
                ],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "{rs} version {version} is no longer current"
                ))));
            }
            Ok(())
        })
        .await
    }

    async fn all_versions(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions ORDER BY estab, result_set, version"
            ))?;
            let rows = stmt
                .query_map([], version_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            c.execute(
                "DELETE FROM versions WHERE estab = ?1 AND result_set = ?2 AND version = ?3",
                params![estab.as_str(), rs, version as i64],
            )?;
            Ok(())
        })
        .await
    }

    async fn insert_staged_upload(&self, upload: &StagedUpload) -> Result<(), StoreError> {
        let u = upload.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO staged_uploads (estab, id, content_length, created_at, url_expires_at, expires_at, status, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    u.estab.as_str(),
                    u.id,
                    u.content_length as i64,
                    u.created_at.millis(),
                    u.url_expires_at.millis(),
                    u.expires_at.millis(),
                    u.state.name(),
                    serde_json::to_string(&u.state)?,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn staged_upload(
        &self,
        estab: &Estab,
        id: &str,
    ) -> Result<Option<StagedUpload>, StoreError> {
        let (estab, id) = (estab.clone(), id.to_owned());
        self.call(move |c| Ok(select_staged(c, &estab, &id)?)).await
    }

    async fn claim_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<StagedUpload, StoreError> {
        let (estab, id) = (estab.clone(), id.to_owned());
        self.call(move |c| {
            let tx = c.transaction()?;
            let state = serde_json::to_string(&StagedState::Ingesting { since: now })?;
            let changed = tx.execute(
                "UPDATE staged_uploads SET status = 'ingesting', claimed_at = ?3, state = ?4
                 WHERE estab = ?1 AND id = ?2
                   AND (status = 'waiting' OR (status = 'ingesting' AND claimed_at < ?5))",
                params![
                    estab.as_str(),
                    id,
                    now.millis(),
                    state,
                    stale_before.millis()
                ],
            )?;
            let Some(upload) = select_staged(&tx, &estab, &id)? else {
                return Err(DbError::Store(StoreError::NotFound(format!(
                    "staged upload {id}"
                ))));
            };
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "staged upload {id} is {}",
                    upload.state.name()
                ))));
            }
            tx.commit()?;
            Ok(upload)
        })
        .await
    }

    async fn finish_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        since: Timestamp,
        outcome: &StagedState,
    ) -> Result<(), StoreError> {
        let (estab, id, outcome) = (estab.clone(), id.to_owned(), outcome.clone());
        self.call(move |c| {
            let changed = c.execute(
                "UPDATE staged_uploads SET status = ?3, state = ?4
                 WHERE estab = ?1 AND id = ?2 AND status = 'ingesting' AND claimed_at = ?5",
                params![
                    estab.as_str(),
                    id,
                    outcome.name(),
                    serde_json::to_string(&outcome)?,
                    since.millis()
                ],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "staged upload {id} is no longer claimed by this ingest"
                ))));
            }
            Ok(())
        })
        .await
    }

    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(c.execute(
                "DELETE FROM staged_uploads WHERE expires_at <= ?1",
                [now.millis()],
            )? as u64)
        })
        .await
    }

    async fn append_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO access_log (estab, partner, at, endpoint, scopes, rows, refused_status, refused_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    e.estab.as_str(),
                    e.partner.as_str(),
                    e.at.millis(),
                    e.endpoint,
                    scopes_to_text(&e.scopes_used),
                    e.rows as i64,
                    e.refused.as_ref().map(|r| i64::from(r.status)),
                    e.refused.as_ref().map(|r| r.reason.clone()),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn access_log(
        &self,
        estab: &Estab,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT estab, partner, at, endpoint, scopes, rows, refused_status, refused_reason FROM access_log WHERE estab = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![estab.as_str(), limit as i64], access_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn partner_access(
        &self,
        estab: &Estab,
        partner: &PartnerId,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        let (estab, partner) = (estab.clone(), partner.clone());
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT estab, partner, at, endpoint, scopes, rows, refused_status, refused_reason FROM access_log
                 WHERE estab = ?1 AND partner = ?2 AND at >= ?3 ORDER BY seq DESC LIMIT ?4",
            )?;
            let rows = stmt
                .query_map(
                    params![
                        estab.as_str(),
                        partner.as_str(),
                        since.millis(),
                        limit as i64
                    ],
                    access_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError> {
        let (estab, partner) = (estab.clone(), partner.clone());
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT students, staff, contacts, updated_at FROM opt_outs
                 WHERE estab = ?1 AND partner = ?2",
                params![estab.as_str(), partner.as_str()],
                |row| {
                    let ids = |i: usize| -> rusqlite::Result<BTreeSet<String>> {
                        parse_col(serde_json::from_str(&row.get::<_, String>(i)?))
                    };
                    Ok(OptOutRecord {
                        estab: estab.clone(),
                        partner: partner.clone(),
                        people: OptOuts {
                            students: ids(0)?,
                            staff: ids(1)?,
                            contacts: ids(2)?,
                        },
                        updated_at: Timestamp::from_millis(row.get(3)?),
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn put_opt_outs(&self, record: &OptOutRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.call(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO opt_outs (estab, partner, students, staff, contacts, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    r.estab.as_str(),
                    r.partner.as_str(),
                    serde_json::to_string(&r.people.students)?,
                    serde_json::to_string(&r.people.staff)?,
                    serde_json::to_string(&r.people.contacts)?,
                    r.updated_at.millis(),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn insert_task(&self, task: &Task) -> Result<(), StoreError> {
        let t = task.clone();
        self.call(move |c| {
            c.execute(
                &format!("INSERT INTO tasks ({TASK_COLUMNS}, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    t.estab.as_str(),
                    t.id,
                    t.partner.as_str(),
                    t.kind,
                    t.scopes,
                    t.payload,
                    t.created_at.millis(),
                    t.expires_at.millis(),
                    serde_json::to_string(&t.state)?,
                    t.state.name(),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn task(&self, estab: &Estab, id: &str) -> Result<Option<Task>, StoreError> {
        let (estab, id) = (estab.clone(), id.to_owned());
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE estab = ?1 AND id = ?2"),
                params![estab.as_str(), id],
                task_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn open_tasks(&self, estab: &Estab) -> Result<Vec<Task>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks
                 WHERE estab = ?1 AND status IN ('{}', '{}') ORDER BY id",
                OPEN[0], OPEN[1]
            ))?;
            let tasks = stmt
                .query_map([estab.as_str()], task_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(tasks)
        })
        .await
    }

    async fn update_task(
        &self,
        estab: &Estab,
        id: &str,
        from: &[&str],
        state: &TaskState,
    ) -> Result<(), StoreError> {
        let (estab, id, state) = (estab.clone(), id.to_owned(), state.clone());
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        self.call(move |c| {
            let tx = c.transaction()?;
            let status: Option<String> = tx
                .query_row(
                    "SELECT status FROM tasks WHERE estab = ?1 AND id = ?2",
                    params![estab.as_str(), id],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(status) = status else {
                return Err(DbError::Store(StoreError::NotFound(format!("task {id}"))));
            };
            if !from.contains(&status) {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "task {id} is {status}"
                ))));
            }
            tx.execute(
                "UPDATE tasks SET status = ?3, state = ?4 WHERE estab = ?1 AND id = ?2",
                params![
                    estab.as_str(),
                    id,
                    state.name(),
                    serde_json::to_string(&state)?
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(c.execute("DELETE FROM tasks WHERE expires_at <= ?1", [now.millis()])? as u64)
        })
        .await
    }
}
