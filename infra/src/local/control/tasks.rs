//! Write-back tasks queued for the agent, moved between states conditionally.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::ports::{StoreError, TaskStore};
use rollcall_core::task::{OPEN, Task, TaskState};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::codec::parse_col;
use super::{DbError, SqliteControlStore};

pub(super) const TASK_COLUMNS: &str =
    "estab, id, partner, kind, scopes, payload, created_at, expires_at, state";

pub(super) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        id: row.get(1)?,
        partner: match row.get::<_, String>(2)? {
            // The school's own task.
            none if none.is_empty() => None,
            id => Some(parse_col(PartnerId::parse(&id))?),
        },
        kind: row.get(3)?,
        scopes: row.get(4)?,
        payload: row.get(5)?,
        created_at: Timestamp::from_millis(row.get(6)?),
        expires_at: Timestamp::from_millis(row.get(7)?),
        state: parse_col(serde_json::from_str(&row.get::<_, String>(8)?))?,
    })
}

#[async_trait]
impl TaskStore for SqliteControlStore {
    async fn insert_task(&self, task: &Task) -> Result<(), StoreError> {
        let t = task.clone();
        self.call(move |c| {
            c.execute_cached(
                &format!("INSERT INTO tasks ({TASK_COLUMNS}, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    t.estab.as_str(),
                    t.id,
                    t.partner.as_ref().map_or("", PartnerId::as_str),
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
            Ok(c.query_row_cached(
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
            let mut stmt = c.prepare_cached(&format!(
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
            tx.execute_cached(
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
}
