//! The agent API's own calls on the local stack: uploads with an `Idempotency-Key`,
//! `whoami`, and the agent's health report as the school's admin reads it.

use reqwest::{Method, StatusCode};
use rollcall_core::idempotency::{IdempotencyKey, IdempotencyRecord, request_hash};
use rollcall_core::model::Estab;
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::{Value, json};

use crate::support::{Answer, Stack};
use crate::world::World;

const A: &str = "9990001";
const B: &str = "9990002";

async fn upload_with_key(stack: &Stack, agent: &str, key: &str, body: &Value) -> Answer {
    stack
        .send_with(
            Method::POST,
            "/agent/v1/extracts",
            Some(&format!("Bearer {agent}")),
            &[("idempotency-key", key)],
            Some(body.to_string().into_bytes()),
        )
        .await
}

async fn current_version(stack: &Stack, estab: &str, result_set: &str) -> Option<u64> {
    stack
        .ports
        .control
        .versions
        .current_version(&Estab::parse(estab).unwrap(), result_set)
        .await
        .unwrap()
        .map(|v| v.version)
}

fn replayed(answer: &Answer) -> Option<&str> {
    answer
        .headers
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_repeated_upload_with_one_key_stores_once_and_answers_the_first_answer() {
    // Arrange
    let world = World::build(A).start().await;
    let body = synthetic::school(A, 20, 3).upload_body();
    let first = upload_with_key(&world.stack, &world.school.agent, "extract-0001", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(replayed(&first), None);
    assert_eq!(first.body["resultSets"]["Students"]["added"], 20);
    // A minute later, a run would confirm the versions (and so change the store).
    world.stack.advance(Duration::minutes(1));

    // Act
    let again = unchanged!(
        world,
        upload_with_key(&world.stack, &world.school.agent, "extract-0001", &body).await
    );

    // Assert: the first answer, marked as given again; one version.
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(replayed(&again), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(current_version(&world.stack, A, "Students").await, Some(1));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_stores_nothing() {
    // Arrange
    let world = World::build(A).start().await;
    let body = synthetic::school(A, 20, 3).upload_body();
    upload_with_key(&world.stack, &world.school.agent, "extract-0002", &body)
        .await
        .expect(StatusCode::OK);
    let other = synthetic::school(A, 25, 4).upload_body();

    // Act
    let refused = unchanged!(
        world,
        upload_with_key(&world.stack, &world.school.agent, "extract-0002", &other).await
    );

    // Assert
    refused.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "this Idempotency-Key was used for a different extract; use a new key for a new extract",
    );
    assert_eq!(replayed(&refused), None);
    assert_eq!(current_version(&world.stack, A, "Students").await, Some(1));
}

#[tokio::test]
async fn a_malformed_key_is_refused_before_anything_is_read() {
    let world = World::build(A).start().await;
    let body = synthetic::school(A, 5, 3).upload_body();
    let long = "k".repeat(129);
    for bad in ["has space", "slash/key", long.as_str()] {
        let answer = unchanged!(
            world,
            upload_with_key(&world.stack, &world.school.agent, bad, &body).await
        );
        answer.expect_error(
            StatusCode::BAD_REQUEST,
            "the Idempotency-Key header must be 1 to 128 characters",
        );
    }
    let staged = unchanged!(
        world,
        world
            .stack
            .send_with(
                Method::POST,
                "/agent/v1/uploads",
                Some(&format!("Bearer {}", world.school.agent)),
                &[("idempotency-key", "")],
                Some(json!({"contentLength": 10}).to_string().into_bytes()),
            )
            .await
    );
    staged.expect_error(StatusCode::BAD_REQUEST, "Idempotency-Key");
    assert_eq!(current_version(&world.stack, A, "Students").await, None);
}

#[tokio::test]
async fn a_failed_upload_releases_its_key_for_a_retry() {
    let world = World::build(A).start().await;
    let bad = json!({"resultSets": {"Students": [{"Forename": "no id"}]}});
    let good = synthetic::school(A, 5, 3).upload_body();

    // Act: refused twice (never answered from the store), then the fixed extract runs.
    for _ in 0..2 {
        let refused = upload_with_key(&world.stack, &world.school.agent, "retry-1", &bad).await;
        refused.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "has no `Id`");
        assert_eq!(replayed(&refused), None);
    }
    let stored = upload_with_key(&world.stack, &world.school.agent, "retry-1", &good).await;

    // Assert
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert_eq!(replayed(&stored), None);
    assert_eq!(current_version(&world.stack, A, "Students").await, Some(1));
}

#[tokio::test]
async fn a_key_whose_upload_is_still_running_is_refused_with_409() {
    // Arrange: another request holds the key for this very body.
    let world = World::build(A).start().await;
    let body = synthetic::school(A, 5, 3).upload_body();
    let estab = Estab::parse(A).unwrap();
    let school = world
        .stack
        .ports
        .control
        .schools
        .school(&estab)
        .await
        .unwrap()
        .unwrap();
    let held = IdempotencyRecord::claim(
        estab,
        IdempotencyKey::parse("busy-1").unwrap(),
        request_hash(&school.row_hash_key, body.to_string().as_bytes()),
        world.stack.clock_now(),
    );
    world
        .stack
        .ports
        .control
        .idempotency
        .claim_idempotency_key(&held, world.stack.clock_now())
        .await
        .unwrap();

    // Act
    let busy = unchanged!(
        world,
        upload_with_key(&world.stack, &world.school.agent, "busy-1", &body).await
    );

    // Assert: refused; once the claim is stale, the upload runs.
    busy.expect_error(
        StatusCode::CONFLICT,
        "an upload with this Idempotency-Key is in progress; retry later",
    );
    assert_eq!(current_version(&world.stack, A, "Students").await, None);
    world.stack.advance(Duration::minutes(6));
    upload_with_key(&world.stack, &world.school.agent, "busy-1", &body)
        .await
        .expect(StatusCode::OK);
    assert_eq!(current_version(&world.stack, A, "Students").await, Some(1));
}

#[tokio::test]
async fn a_repeated_staged_upload_request_answers_the_same_upload() {
    let world = World::build(A).start().await;
    let ask = || async {
        world
            .stack
            .send_with(
                Method::POST,
                "/agent/v1/uploads",
                Some(&format!("Bearer {}", world.school.agent)),
                &[("idempotency-key", "staged-1")],
                Some(json!({"contentLength": 1234}).to_string().into_bytes()),
            )
            .await
    };
    let first = ask().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    world.stack.advance(Duration::seconds(5));

    let again = unchanged!(world, ask().await);

    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(replayed(&again), Some("true"));
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn a_key_is_forgotten_after_a_day_and_purged() {
    let world = World::build(A).start().await;
    let body = synthetic::school(A, 5, 3).upload_body();
    upload_with_key(&world.stack, &world.school.agent, "daily", &body)
        .await
        .expect(StatusCode::OK);

    world.stack.advance(Duration::hours(24));
    let report = world.stack.purge().await;
    assert_eq!(report.idempotency_keys_deleted, 1);

    // The key is free again: the same body runs (and finds the content unchanged).
    let rerun = upload_with_key(&world.stack, &world.school.agent, "daily", &body).await;
    assert_eq!(rerun.status, StatusCode::OK, "{}", rerun.body);
    assert_eq!(replayed(&rerun), None);
    assert_eq!(rerun.body["resultSets"]["Students"]["unchanged"], 5);
}

#[tokio::test]
async fn two_concurrent_uploads_with_one_key_store_once() {
    let world = World::build(A).start().await;
    let body = synthetic::school(A, 40, 3).upload_body();

    // Act: the same request twice at once.
    let (one, two) = tokio::join!(
        upload_with_key(&world.stack, &world.school.agent, "twin", &body),
        upload_with_key(&world.stack, &world.school.agent, "twin", &body),
    );

    // Assert: one ran; the other was refused as in progress or answered the first answer.
    let ran: Vec<&Answer> = [&one, &two]
        .into_iter()
        .filter(|a| a.status == StatusCode::OK && replayed(a).is_none())
        .collect();
    assert_eq!(ran.len(), 1, "{} / {}", one.body, two.body);
    let other = if std::ptr::eq(ran[0], &one) {
        &two
    } else {
        &one
    };
    match other.status {
        StatusCode::CONFLICT => other.expect_error(StatusCode::CONFLICT, "in progress"),
        StatusCode::OK => assert_eq!(other.body, ran[0].body),
        status => panic!("unexpected {status}: {}", other.body),
    }
    assert_eq!(ran[0].body["resultSets"]["Students"]["added"], 40);
    assert_eq!(current_version(&world.stack, A, "Students").await, Some(1));
}

#[tokio::test]
async fn on_aws_a_repeated_upload_is_answered_from_dynamodb() {
    let Some(stack) = Stack::start_aws().await else {
        return;
    };
    let school = stack.school(A).await;
    let body = synthetic::school(A, 10, 3).upload_body();
    let first = upload_with_key(&stack, &school.agent, "aws-1", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    stack.advance(Duration::minutes(1));

    let again = upload_with_key(&stack, &school.agent, "aws-1", &body).await;
    let other = upload_with_key(&stack, &school.agent, "aws-1", &json!({"resultSets": {}})).await;

    assert_eq!(replayed(&again), Some("true"));
    assert_eq!(again.body, first.body);
    other.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "different extract");
    let version = stack
        .ports
        .control
        .versions
        .current_version(&Estab::parse(A).unwrap(), "Students")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        version.confirmed_at,
        crate::support::T0,
        "the repeat confirmed nothing"
    );
}

async fn whoami(stack: &Stack, auth: Option<String>) -> Answer {
    stack
        .send(Method::GET, "/agent/v1/whoami", auth.as_deref(), None)
        .await
}

#[tokio::test]
async fn whoami_names_the_school_of_the_agent_key_and_no_other() {
    let world = World::build(A).school(B, None).start().await;
    let stack = &world.stack;

    let me = whoami(stack, Some(format!("Bearer {}", world.school.agent)))
        .await
        .expect(StatusCode::OK);
    let other = whoami(stack, Some(format!("Bearer {}", world.school_of(B).agent)))
        .await
        .expect(StatusCode::OK);

    assert_eq!(me, json!({"estab": A, "name": "Test School"}));
    assert_eq!(other["estab"], B);
    whoami(stack, Some("Bearer rca_unknown".into()))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "this agent key is not registered");
    whoami(stack, Some(format!("Bearer {}", world.school.admin)))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "this agent key is not registered");
    whoami(stack, None).await.expect_error(
        StatusCode::UNAUTHORIZED,
        "send the agent key in the header `Authorization: Bearer <agent key>`",
    );
}

#[tokio::test]
async fn the_agent_reads_what_rollcall_holds_of_its_own_school_only() {
    // Arrange: school A uploaded 5 pupils; school B 7, a day earlier.
    let world = World::build(A)
        .data(synthetic::school(A, 5, 3).upload_body())
        .school(B, Some(synthetic::school(B, 7, 4).upload_body()))
        .start()
        .await;
    let stack = &world.stack;
    let held = |key: String| async move {
        stack
            .send(
                Method::GET,
                "/agent/v1/resultsets",
                Some(&format!("Bearer {key}")),
                None,
            )
            .await
    };

    // Act
    let mine = held(world.school.agent.clone())
        .await
        .expect(StatusCode::OK);
    let theirs = held(world.school_of(B).agent.clone())
        .await
        .expect(StatusCode::OK);

    // Assert
    let students = |answer: &Value| {
        answer["resultSets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "Students")
            .cloned()
            .expect("Students is held")
    };
    assert_eq!(mine["estab"], A);
    assert_eq!(students(&mine)["rows"], 5);
    assert_eq!(students(&mine)["version"], 1);
    assert_eq!(students(&mine)["stale"], false);
    assert!(students(&mine)["validUntil"].is_string());
    assert!(students(&mine)["disposalAt"].is_string());
    assert_eq!(theirs["estab"], B);
    assert_eq!(students(&theirs)["rows"], 7);
    let text = mine.to_string();
    assert!(!text.contains("Forename"), "no row is read: {text}");
    held(world.school.admin.clone())
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "this agent key is not registered");
}

fn health_report() -> Value {
    json!({
        "agentVersion": "1.4.0",
        "os": "Windows Server 2022",
        "sourceFolder": "D:\\MIS\\exports",
        "lastRunStart": "2026-09-01T06:00:00Z",
        "lastRunEnd": "2026-09-01T06:02:10Z",
        "lastSuccess": "2026-09-01T06:02:10Z",
        "lastError": null,
        "resultSets": [{"name": "Students", "rows": 5, "sentAt": "2026-09-01T06:01:00Z"}],
        "outbox": {"pending": 0, "results": 1, "done": 14},
    })
}

async fn post_health(stack: &Stack, agent: &str, body: Vec<u8>) -> Answer {
    stack
        .send(
            Method::POST,
            "/agent/v1/health",
            Some(&format!("Bearer {agent}")),
            Some(body),
        )
        .await
}

async fn admin_agent(stack: &Stack, admin: &str) -> Answer {
    stack
        .send(
            Method::GET,
            "/admin/v1/agent",
            Some(&format!("Bearer {admin}")),
            None,
        )
        .await
}

#[tokio::test]
async fn the_agents_health_report_reaches_its_schools_admin_until_it_falls_silent() {
    // Arrange: a school that uploaded, with no report yet.
    let world = World::build(A)
        .data(synthetic::school(A, 5, 3).upload_body())
        .start()
        .await;
    let stack = &world.stack;
    let before = admin_agent(stack, &world.school.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(before["report"], Value::Null);
    assert_eq!(before["lastSeen"], Value::Null);
    assert_eq!(before["secondsSinceSeen"], Value::Null);
    assert_eq!(before["silent"], true);
    let students = before["resultSets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Students")
        .expect("the upload is listed")
        .clone();
    assert_eq!(students["version"], 1);
    assert_eq!(students["rows"], 5);
    assert_eq!(students["uploadedAt"], stack.clock_now().to_rfc3339());
    assert_eq!(students["stale"], false);

    // Act: the agent reports; an hour later the admin reads it.
    stack.advance(Duration::minutes(10));
    let received = stack.clock_now();
    let posted = post_health(
        stack,
        &world.school.agent,
        health_report().to_string().into_bytes(),
    )
    .await
    .expect(StatusCode::OK);
    stack.advance(Duration::hours(1));
    let seen = admin_agent(stack, &world.school.admin)
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(posted["receivedAt"], received.to_rfc3339());
    assert_eq!(seen["report"], health_report());
    assert_eq!(seen["lastSeen"], received.to_rfc3339());
    assert_eq!(seen["secondsSinceSeen"], 3600);
    assert_eq!(seen["silent"], false);
    assert_eq!(seen["resultSets"], before["resultSets"]);

    // 49 hours without a report: silent.
    stack.advance(Duration::hours(48));
    let later = admin_agent(stack, &world.school.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(later["silent"], true);
    assert_eq!(later["secondsSinceSeen"], 49 * 3600);
    assert_eq!(later["report"], health_report());
}

#[tokio::test]
async fn another_schools_admin_never_reads_the_agents_health() {
    // Arrange: A's agent reports; B's has not.
    let world = World::build(A).school(B, None).start().await;
    let stack = &world.stack;
    post_health(
        stack,
        &world.school.agent,
        health_report().to_string().into_bytes(),
    )
    .await
    .expect(StatusCode::OK);

    // Act
    let b = admin_agent(stack, &world.school_of(B).admin)
        .await
        .expect(StatusCode::OK);

    // Assert: B sees its own (none); no key but A's admin key reads A's.
    assert_eq!(b["report"], Value::Null);
    assert_eq!(b["silent"], true);
    assert_eq!(b["resultSets"], json!([]));
    admin_agent(stack, &world.school.agent)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "this admin key is not registered");
    admin_agent(stack, "rcs_unknown")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "this admin key is not registered");
    post_health(
        stack,
        &world.school.admin,
        health_report().to_string().into_bytes(),
    )
    .await
    .expect_error(StatusCode::UNAUTHORIZED, "this agent key is not registered");
    let a = admin_agent(stack, &world.school.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(a["report"], health_report());
}

#[tokio::test]
async fn a_health_report_is_checked_and_bounded() {
    let world = World::build(A).start().await;
    let stack = &world.stack;
    let agent = world.school.agent.clone();

    // Unknown keys are refused by name, at any level, and nothing is kept.
    let mut unknown = health_report();
    unknown["pupils"] = json!(["x"]);
    unknown["outbox"]["failed"] = json!(1);
    let refused = unchanged!(
        world,
        post_health(stack, &agent, unknown.to_string().into_bytes()).await
    );
    refused.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "the health report has unknown keys `pupils`",
    );
    let mut nested = health_report();
    nested["resultSets"][0]["forename"] = json!("x");
    unchanged!(
        world,
        post_health(stack, &agent, nested.to_string().into_bytes()).await
    )
    .expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "`resultSets[0]` has unknown keys `forename`",
    );
    let mut wrong_type = health_report();
    wrong_type["outbox"]["pending"] = json!("many");
    unchanged!(
        world,
        post_health(stack, &agent, wrong_type.to_string().into_bytes()).await
    )
    .expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "`outbox.pending` must be a whole number",
    );
    unchanged!(
        world,
        post_health(stack, &agent, b"{not json".to_vec()).await
    )
    .expect_error(StatusCode::BAD_REQUEST, "not valid JSON");
    let mut huge = health_report();
    huge["sourceFolder"] = json!("x".repeat(70 * 1024));
    unchanged!(
        world,
        post_health(stack, &agent, huge.to_string().into_bytes()).await
    )
    .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "larger than 65536 bytes");

    // lastError is kept, cut to 500 characters.
    let mut long_error = health_report();
    long_error["lastError"] = json!("e".repeat(2000));
    post_health(stack, &agent, long_error.to_string().into_bytes())
        .await
        .expect(StatusCode::OK);
    let seen = admin_agent(stack, &world.school.admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(seen["report"]["lastError"], json!("e".repeat(500)));
}

#[tokio::test]
async fn on_aws_the_agents_health_and_uploads_reach_the_admin() {
    let Some(stack) = Stack::start_aws().await else {
        return;
    };
    let school = stack.school(A).await;
    stack
        .upload(&school.agent, &synthetic::school(A, 5, 3).upload_body())
        .await
        .expect(StatusCode::OK);
    post_health(
        &stack,
        &school.agent,
        health_report().to_string().into_bytes(),
    )
    .await
    .expect(StatusCode::OK);

    let seen = admin_agent(&stack, &school.admin)
        .await
        .expect(StatusCode::OK);

    assert_eq!(seen["report"], health_report());
    assert_eq!(seen["silent"], false);
    let names: Vec<&str> = seen["resultSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Students"), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "listed by name");
}
