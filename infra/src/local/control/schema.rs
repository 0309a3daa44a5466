//! The database schema, as the migrations that build it.

use rusqlite::Connection;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
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
    r#"
CREATE TABLE idempotency_keys (
    estab TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    claim TEXT,
    claimed_at INTEGER,
    state TEXT NOT NULL,
    PRIMARY KEY (estab, idempotency_key)
);
"#,
    r#"
CREATE TABLE agent_health (
    estab TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    report TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE access_log ADD COLUMN people TEXT NOT NULL DEFAULT '';
"#,
    r#"
ALTER TABLE opt_outs ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
"#,
];

pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
