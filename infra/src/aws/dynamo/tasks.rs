//! Write-back tasks queued for the agent, moved between states conditionally.

use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::ports::{StoreError, TaskStore};
use rollcall_core::task::{Task, TaskState};

use super::DynamoControlStore;
use super::codec::{
    Item, b, bytes, conditional, id, json, key_item, n, parsed, s, school_pk, text, time,
};

pub(super) fn task_sk(id: &str) -> String {
    format!("TASK#{id}")
}

pub(super) fn task_item(t: &Task) -> Item {
    let mut item = key_item(school_pk(&t.estab), &task_sk(&t.id));
    item.insert("gsi1pk".into(), s("TASKS"));
    item.insert("gsi1sk".into(), s(format!("{:015}", t.expires_at.millis())));
    item.insert("estab".into(), s(t.estab.as_str()));
    item.insert("id".into(), s(&t.id));
    // The school's own task has no partner.
    if let Some(partner) = &t.partner {
        item.insert("partner".into(), s(partner.as_str()));
    }
    item.insert("kind".into(), s(&t.kind));
    item.insert("scopes".into(), s(&t.scopes));
    item.insert("payload".into(), b(&t.payload));
    item.insert("created_at".into(), n(t.created_at.millis()));
    item.insert("expires_at_ms".into(), n(t.expires_at.millis()));
    item.insert("expires_at".into(), n(t.expires_at.seconds()));
    item.insert("status".into(), s(t.state.name()));
    item.insert("state".into(), json(&t.state));
    item
}

pub(super) fn task_from(item: &Item) -> Result<Task, StoreError> {
    Ok(Task {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        id: text(item, "id")?,
        partner: match item.get("partner") {
            Some(_) => Some(id(PartnerId::parse(&text(item, "partner")?), "partner")?),
            None => None,
        },
        kind: text(item, "kind")?,
        scopes: text(item, "scopes")?,
        payload: bytes(item, "payload")?,
        created_at: time(item, "created_at")?,
        expires_at: time(item, "expires_at_ms")?,
        state: parsed(item, "state")?,
    })
}

#[async_trait]
impl TaskStore for DynamoControlStore {
    async fn insert_task(&self, task: &Task) -> Result<(), StoreError> {
        self.put_new(task_item(task), "the task exists").await
    }

    async fn task(&self, estab: &Estab, id: &str) -> Result<Option<Task>, StoreError> {
        self.get(school_pk(estab), &task_sk(id))
            .await?
            .map(|item| task_from(&item))
            .transpose()
    }

    async fn open_tasks(&self, estab: &Estab) -> Result<Vec<Task>, StoreError> {
        // A school's tasks are kept 30 days: few enough to read and filter here.
        let mut open = Vec::new();
        for item in self
            .query_prefix(school_pk(estab), "TASK#", true, None)
            .await?
        {
            let task = task_from(&item)?;
            if task.state.is_open() {
                open.push(task);
            }
        }
        Ok(open)
    }

    async fn update_task(
        &self,
        estab: &Estab,
        id: &str,
        from: &[&str],
        state: &TaskState,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(task_sk(id)))
            .update_expression("SET #status = :status, #state = :state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":status", s(state.name()))
            .expression_attribute_values(":state", json(state));
        let mut allowed = Vec::with_capacity(from.len());
        for (i, name) in from.iter().enumerate() {
            allowed.push(format!(":from{i}"));
            request = request.expression_attribute_values(format!(":from{i}"), s(*name));
        }
        let updated = request
            .condition_expression(format!(
                "attribute_exists(pk) AND #status IN ({})",
                allowed.join(", ")
            ))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(error) => match conditional(error, "") {
                StoreError::Conflict(_) => match self.task(estab, id).await? {
                    None => Err(StoreError::NotFound(format!("task {id}"))),
                    Some(task) => Err(StoreError::Conflict(format!(
                        "task {id} is {}",
                        task.state.name()
                    ))),
                },
                other => Err(other),
            },
        }
    }
}
