//! Large uploads on the local stack: a pre-signed URL from `POST /agent/v1/uploads`, the local
//! stand-in checking the PUT as S3 checks a pre-signed one and ingesting it as the S3 event
//! does, and the agent reading the outcome from `GET /agent/v1/uploads/{id}`.

use reqwest::{Method, StatusCode};
use rollcall_core::model::Estab;
use rollcall_core::staging::MAX_STAGED_BYTES;
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::{Value, json};

use crate::support::{Answer, Stack};
use crate::world::World;

const A: &str = "9990001";
const B: &str = "9990002";

/// An issued upload: its URL, the headers the PUT must carry, and where to ask how it went.
struct Grant {
    url: String,
    headers: Vec<(String, String)>,
    status_url: String,
}

async fn request_upload(stack: &Stack, agent: &str, body: Value) -> Answer {
    stack
        .send(
            Method::POST,
            "/agent/v1/uploads",
            Some(&format!("Bearer {agent}")),
            Some(body.to_string().into_bytes()),
        )
        .await
}

async fn grant_for(stack: &Stack, agent: &str, length: usize) -> Grant {
    let body = request_upload(stack, agent, json!({ "contentLength": length }))
        .await
        .expect(StatusCode::CREATED);
    Grant {
        url: body["url"].as_str().unwrap().to_owned(),
        headers: body["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect(),
        status_url: body["statusUrl"].as_str().unwrap().to_owned(),
    }
}

async fn status(stack: &Stack, agent: &str, status_url: &str) -> Answer {
    stack
        .send(
            Method::GET,
            status_url,
            Some(&format!("Bearer {agent}")),
            None,
        )
        .await
}

async fn current_version(stack: &Stack, estab: &str, result_set: &str) -> Option<u64> {
    let estab = Estab::parse(estab).unwrap();
    stack
        .ports
        .control
        .versions
        .current_version(&estab, result_set)
        .await
        .unwrap()
        .map(|v| v.version)
}

#[tokio::test]
async fn a_staged_extract_is_ingested_once_and_its_object_deleted() {
    let stack = Stack::start().await;
    let school = stack.school(A).await;
    let body = synthetic::school(A, 30, 5)
        .upload_body()
        .to_string()
        .into_bytes();

    let grant = grant_for(&stack, &school.agent, body.len()).await;
    assert!(
        grant
            .url
            .starts_with(&format!("{}/local/v1/objects/incoming/{A}/", stack.base)),
        "{}",
        grant.url
    );
    assert!(
        grant
            .headers
            .contains(&("content-type".into(), "application/json".into()))
    );
    let waiting = status(&stack, &school.agent, &grant.status_url)
        .await
        .expect(StatusCode::OK);
    assert_eq!(waiting["status"], "waiting");

    let put = stack.put_to(&grant.url, &grant.headers, body.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let stored = status(&stack, &school.agent, &grant.status_url)
        .await
        .expect(StatusCode::OK);
    assert_eq!(stored["status"], "stored", "{stored}");
    assert_eq!(stored["result"]["resultSets"]["Students"]["added"], 30);
    assert_eq!(current_version(&stack, A, "Students").await, Some(1));
    assert!(
        stack.staged_objects().await.is_empty(),
        "the extract was deleted"
    );

    // The same URL again (a retry, or a replay): stored, then deleted, never ingested twice.
    let again = stack.put_to(&grant.url, &grant.headers, body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["ingest"], "skipped: already taken");
    assert!(stack.staged_objects().await.is_empty());
    assert_eq!(current_version(&stack, A, "Students").await, Some(1));
}

#[tokio::test]
async fn the_agent_puts_an_extract_over_the_request_limit_to_a_signed_url() {
    let stack = Stack::start().await;
    let school = stack.school(A).await;
    let data = synthetic::school(A, 2500, 2);
    let extract = data.upload_body();
    let size = extract.to_string().len();
    assert!(
        size > rollcall_ingest::MAX_UPLOAD_BYTES,
        "the extract ({size} bytes) must be over the direct limit"
    );

    let answers = rollcall_agent::upload(
        &reqwest::Client::new(),
        &stack.base,
        &school.agent,
        &extract,
    )
    .await
    .unwrap();

    assert_eq!(answers.len(), 1, "one staged upload, published at once");
    for (name, rows) in &data.result_sets {
        assert_eq!(
            answers[0]["resultSets"][name]["added"],
            rows.len() as u64,
            "{name}"
        );
    }
    assert!(stack.staged_objects().await.is_empty());
}

#[tokio::test]
async fn a_refused_staged_extract_is_reported_and_stores_nothing() {
    let stack = Stack::start().await;
    let school = stack.school(A).await;
    let body = b"{\"resultSets\": {\"Students\": [".to_vec();
    let grant = grant_for(&stack, &school.agent, body.len()).await;

    let put = stack.put_to(&grant.url, &grant.headers, body).await;

    assert_eq!(
        put.status,
        StatusCode::OK,
        "S3 takes the object; ingest refuses it"
    );
    let refused = status(&stack, &school.agent, &grant.status_url)
        .await
        .expect(StatusCode::OK);
    assert_eq!(refused["status"], "refused");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{refused}"
    );
    assert_eq!(current_version(&stack, A, "Students").await, None);
    assert!(stack.staged_objects().await.is_empty());
}

#[tokio::test]
async fn bad_upload_requests_are_refused_and_store_nothing() {
    let world = World::build(A).school(B, None).start().await;
    let agent = world.school.agent.clone();
    let cases = [
        (
            json!({"contentLength": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contentLength is 0",
        ),
        (
            json!({"contentLength": MAX_STAGED_BYTES + 1}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of one upload; split the extract",
        ),
        (
            json!({"contentLength": 10, "contentType": "text/csv"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contentType `text/csv` is not accepted",
        ),
        (
            json!({"size": 10}),
            StatusCode::BAD_REQUEST,
            "unknown field `size`",
        ),
    ];
    for (body, code, text) in cases {
        let answer = unchanged!(world, request_upload(&world.stack, &agent, body).await);
        answer.expect_error(code, text);
    }
    let anonymous = unchanged!(
        world,
        world
            .stack
            .send(
                Method::POST,
                "/agent/v1/uploads",
                None,
                Some(b"{\"contentLength\": 5}".to_vec())
            )
            .await
    );
    anonymous.expect_error(StatusCode::UNAUTHORIZED, "Bearer <agent key>");

    // An upload of A is not B's to look at; an unknown id is not found either.
    let grant = grant_for(&world.stack, &agent, 5).await;
    let foreign = status(&world.stack, &world.school_of(B).agent, &grant.status_url).await;
    foreign.expect_error(StatusCode::NOT_FOUND, "school 9990002 has no upload");
    let unknown = status(&world.stack, &agent, "/agent/v1/uploads/00ff").await;
    unknown.expect_error(StatusCode::NOT_FOUND, "no upload `00ff`");
}

#[tokio::test]
async fn puts_that_do_not_match_their_signed_url_are_refused_and_store_nothing() {
    let world = World::build(A).school(B, None).start().await;
    let body = synthetic::school(A, 3, 1)
        .upload_body()
        .to_string()
        .into_bytes();
    let grant = grant_for(&world.stack, &world.school.agent, body.len()).await;
    let forged = grant.url.replace("signature=", "signature=00");
    let other_key = grant
        .url
        .replace(&format!("incoming/{A}/"), &format!("incoming/{B}/"));
    let longer = grant.url.replace(
        &format!("length={}", body.len()),
        &format!("length={}", body.len() + 1),
    );
    let exact = format!("exactly {} bytes", body.len());
    let as_text: Vec<(String, String)> = vec![("content-type".into(), "text/plain".into())];
    type Headers = [(String, String)];
    let cases: Vec<(&str, &Headers, Vec<u8>, StatusCode, &str)> = vec![
        (
            &forged,
            &grant.headers,
            body.clone(),
            StatusCode::FORBIDDEN,
            "signature does not match",
        ),
        (
            &other_key,
            &grant.headers,
            body.clone(),
            StatusCode::FORBIDDEN,
            "signature does not match",
        ),
        (
            &longer,
            &grant.headers,
            body.clone(),
            StatusCode::FORBIDDEN,
            "signature does not match",
        ),
        (
            &grant.url,
            &as_text,
            body.clone(),
            StatusCode::FORBIDDEN,
            "signature does not match",
        ),
        (
            &grant.url,
            &grant.headers,
            body[1..].to_vec(),
            StatusCode::BAD_REQUEST,
            &exact,
        ),
    ];
    for (url, headers, bytes, code, text) in cases {
        let headers: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| name != "content-length")
            .cloned()
            .collect();
        let answer = unchanged!(world, world.stack.put_to(url, &headers, bytes).await);
        answer.expect_error(code, text);
    }

    // Past its 15 minutes the URL is dead, and the agent is told to ask again.
    world.stack.advance(Duration::minutes(15));
    let late = unchanged!(
        world,
        world.stack.put_to(&grant.url, &grant.headers, body).await
    );
    late.expect_error(StatusCode::FORBIDDEN, "expired");
    let expired = status(&world.stack, &world.school.agent, &grant.status_url)
        .await
        .expect(StatusCode::OK);
    assert_eq!(expired["status"], "expired");
    assert!(
        expired["message"]
            .as_str()
            .unwrap()
            .contains("ask for a new one")
    );
}

#[tokio::test]
async fn the_purge_removes_staged_extracts_nobody_will_ingest() {
    let stack = Stack::start().await;
    let school = stack.school(A).await;
    // An extract with no upload record, and one whose upload waits (its ingest never ran).
    let stray = format!("incoming/{A}/00aa.json");
    stack
        .ports
        .objects
        .put(&stray, b"{}".to_vec())
        .await
        .unwrap();
    let grant = grant_for(&stack, &school.agent, 2).await;
    let id = grant.status_url.rsplit('/').next().unwrap();
    let waiting = format!("incoming/{A}/{id}.json");
    stack
        .ports
        .objects
        .put(&waiting, b"{}".to_vec())
        .await
        .unwrap();

    let report = stack.purge().await;
    assert_eq!(report.staged_objects_deleted, 1);
    assert_eq!(stack.staged_objects().await, vec![waiting]);

    stack.advance(Duration::days(1));
    let report = stack.purge().await;
    assert_eq!(
        report.staged_objects_deleted, 1,
        "a day is long enough to wait"
    );
    assert_eq!(report.staged_uploads_deleted, 0);
    assert!(stack.staged_objects().await.is_empty());

    stack.advance(Duration::days(6));
    assert_eq!(stack.purge().await.staged_uploads_deleted, 1);
    status(&stack, &school.agent, &grant.status_url)
        .await
        .expect_error(StatusCode::NOT_FOUND, "kept for 7 days");
}
