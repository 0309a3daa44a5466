//! The XoD query parameters of data calls: `changedRows` changesets, `updatedSince`, `select`,
//! `onlyGetDbStatus`, and pages pinned to the version a walk started on.

use reqwest::StatusCode;
use rollcall_core::dataset::Row;
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::{Value, json};

use crate::support::{SchoolKeys, Stack, T0};
use crate::world::World;

const A: &str = "9990001";
const PARTNER: &str = "acme-homework";
const OTHER_PARTNER: &str = "other-homework";

/// The pupils the world's school uploads at T0.
fn students() -> Vec<Row> {
    synthetic::school(A, 10, 3).rows("Students").to_vec()
}

/// A school with 10 pupils uploaded at T0, both partners granted Student only.
async fn world() -> World {
    World::build(A)
        .data(json!({ "resultSets": { "Students": students() } }))
        .partner(PARTNER, &["Student", "StudentDemographic"])
        .partner(OTHER_PARTNER, &["Student"])
        .grant(A, PARTNER, &["Student"])
        .grant(A, OTHER_PARTNER, &["Student"])
        .start()
        .await
}

async fn upload_students(stack: &Stack, school: &SchoolKeys, rows: &[Row]) {
    let body = json!({ "resultSets": { "Students": rows } });
    stack
        .upload(&school.agent, &body)
        .await
        .expect(StatusCode::OK);
}

fn ids(rows: &Value) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn id_of(row: &Row) -> String {
    row["Id"].as_str().unwrap().to_owned()
}

/// A changeset is bound to the call's shape (filters, options, `select`), so its `NextUrl`
/// carries that shape: followed as given, it continues the changeset.
#[tokio::test]
async fn a_shaped_changesets_next_url_continues_it_as_given() {
    let world = world().await;
    let stack = &world.stack;
    let path = "/api/v1/School/9990001/Students";
    let shaped = "select=Forename,Surname&options=includeLeavers";
    let start = stack
        .read(&world.token, &format!("{path}?changedRows=*&{shaped}"))
        .await
        .expect(StatusCode::OK);
    let block = &start["__changedRows__"][0];
    let next_url = block["NextUrl"].as_str().unwrap().to_owned();
    assert!(next_url.contains("select=Forename%2CSurname"), "{next_url}");
    assert!(next_url.contains("options=includeLeavers"), "{next_url}");

    stack.advance(Duration::minutes(1));
    let mut next = students();
    next[0].insert("Forename".into(), json!("Renamed"));
    upload_students(stack, &world.school, &next).await;
    let delta = stack
        .read(&world.token, &format!("{path}{next_url}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&delta["Students"]), vec![id_of(&next[0])]);
    assert_eq!(delta["Students"][0]["Forename"], "Renamed");
}

#[tokio::test]
async fn a_changeset_answers_what_changed_and_what_went() {
    let world = world().await;
    let stack = &world.stack;
    let path = "/api/v1/School/9990001/Students";
    let start = stack
        .read(&world.token, &format!("{path}?changedRows=*"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(start["Students"].as_array().unwrap().len(), 10);
    let block = &start["__changedRows__"][0];
    assert_eq!(block["PreviousChangedRows"], "*");
    assert_eq!(block["SnapshotRP"], PARTNER);
    let first_hash = block["NextChangedRows"].as_str().unwrap().to_owned();
    assert_eq!(
        block["NextUrl"],
        format!("?changedRows={first_hash}&page=1&pageSize=2000")
    );

    // A minute on, the agent uploads with two pupils changed and one gone.
    stack.advance(Duration::minutes(1));
    let mut next = students();
    for row in next.iter_mut().take(2) {
        row.insert("Forename".into(), json!("Renamed"));
    }
    let gone = next.remove(9);
    upload_students(stack, &world.school, &next).await;
    let changed: Vec<String> = next.iter().take(2).map(id_of).collect();

    let since = stack
        .read(
            &world.token,
            &format!("{path}?updatedSince={}", T0.to_rfc3339()),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&since["Students"]), changed);

    let delta = stack
        .read(&world.token, &format!("{path}?changedRows={first_hash}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&delta["Students"]), changed);
    assert_eq!(delta["Students_deleted"], json!([{ "Id": id_of(&gone) }]));
    let block = &delta["__changedRows__"][0];
    assert_eq!(block["PreviousChangedRows"], first_hash);
    let second_hash = block["NextChangedRows"].as_str().unwrap().to_owned();
    assert_ne!(second_hash, first_hash);

    let nothing = stack
        .read(&world.token, &format!("{path}?changedRows={second_hash}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(nothing["Students"], json!([]));
    assert_eq!(nothing["Students_deleted"], json!([]));

    // Unchanged rows kept their LastUpdated and RowHash through the upload.
    let before: Vec<&Value> = start["Students"].as_array().unwrap().iter().collect();
    let after = stack.read(&world.token, path).await.expect(StatusCode::OK);
    for row in after["Students"].as_array().unwrap() {
        let id = row["Id"].as_str().unwrap();
        if changed.iter().any(|c| c == id) {
            continue;
        }
        let old = before.iter().find(|r| r["Id"] == id).unwrap();
        assert_eq!(row["LastUpdated"], old["LastUpdated"], "{id}");
        assert_eq!(row["RowHash"], old["RowHash"], "{id}");
    }

    // The hash is this partner's, for this endpoint and these parameters only.
    let refusals = [
        (
            world.token_of(OTHER_PARTNER, A),
            format!("{path}?changedRows={first_hash}"),
        ),
        (
            &world.token,
            format!("{path}?changedRows={first_hash}&updatedSince=2020-01-01"),
        ),
        (
            &world.token,
            format!("{path}/{}?changedRows={first_hash}", changed[0]),
        ),
    ];
    for (token, call) in refusals {
        let before = stack.snapshot();
        stack.read(token, &call).await.expect_error(
            StatusCode::BAD_REQUEST,
            "issued for another partner, school, endpoint, options or filters",
        );
        assert_eq!(before, stack.snapshot(), "{call} changed the store");
    }
    stack
        .read(&world.token, &format!("{path}?changedRows=not-a-hash"))
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            "start a changeset with changedRows=*",
        );
}

#[tokio::test]
async fn a_paginated_walk_stays_on_its_version_while_a_new_one_is_uploaded() {
    let world = world().await;
    let stack = &world.stack;
    let path = "/api/v1/School/9990001/Students";
    let first = stack
        .read(&world.token, &format!("{path}?pageSize=4"))
        .await
        .expect(StatusCode::OK);
    let mut seen = ids(&first["Students"]);
    let mut next = first["__pagination__"][0]["NextPage"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(next.starts_with("?page=2&pageSize=4&version="), "{next}");
    let second_page = next.clone();

    // Mid-walk, the school's agent uploads a quite different list.
    stack.advance(Duration::minutes(1));
    let replacement = synthetic::school(A, 14, 99).rows("Students").to_vec();
    upload_students(stack, &world.school, &replacement[4..]).await;

    loop {
        let page = stack
            .read(&world.token, &format!("{path}{next}"))
            .await
            .expect(StatusCode::OK);
        seen.extend(ids(&page["Students"]));
        match page["__pagination__"][0]["NextPage"].as_str() {
            Some(link) => next = link.to_owned(),
            None => break,
        }
    }
    let mut expected: Vec<String> = students().iter().map(id_of).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "every row of version 1, each once");

    // A new walk reads the new version; an hour after its first page, a walk is over, whether
    // or not its version was replaced or disposed of.
    let fresh = stack.read(&world.token, path).await.expect(StatusCode::OK);
    assert_eq!(fresh["Students"].as_array().unwrap().len(), 10);
    stack.advance(Duration::hours(2));
    stack.purge().await;
    stack
        .read(&world.new_token().await, &format!("{path}{second_page}"))
        .await
        .expect_error(StatusCode::GONE, "start again from page 1");
}

#[tokio::test]
async fn a_page_pin_continues_only_the_walk_that_started_it() {
    let world = world().await;
    let stack = &world.stack;
    let path = "/api/v1/School/9990001/Students";
    let first = stack
        .read(&world.token, &format!("{path}?pageSize=4&select=Forename"))
        .await
        .expect(StatusCode::OK);
    let next = first["__pagination__"][0]["NextPage"]
        .as_str()
        .unwrap()
        .to_owned();
    let pin = next
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("version="))
        .unwrap()
        .to_owned();
    // It says nothing of which upload the walk reads: a pin is opaque and new on every walk.
    assert!(
        pin.len() > 40 && pin.chars().all(|c| c.is_ascii_hexdigit()),
        "{pin}"
    );
    let again = stack
        .read(&world.token, &format!("{path}?pageSize=4&select=Forename"))
        .await
        .expect(StatusCode::OK);
    assert_ne!(
        again["__pagination__"][0]["NextPage"].as_str().unwrap(),
        next
    );

    // The walk itself continues, for the hour.
    stack.advance(Duration::minutes(59));
    stack
        .read(&world.token, &format!("{path}{next}"))
        .await
        .expect(StatusCode::OK);

    let mut flipped = pin.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let refusals = [
        (
            world.token_of(OTHER_PARTNER, A),
            format!("{path}?page=2&pageSize=4&version={pin}&select=Forename"),
        ),
        (
            &world.token,
            format!("{path}?page=2&pageSize=4&version={pin}"),
        ),
        (
            &world.token,
            format!(
                "{path}?page=2&pageSize=4&version={pin}&select=Forename&updatedSince=2020-01-01"
            ),
        ),
        (
            &world.token,
            format!(
                "{path}/{}?version={pin}&select=Forename",
                id_of(&students()[0])
            ),
        ),
        (
            &world.token,
            format!("{path}?page=2&pageSize=4&version={flipped}&select=Forename"),
        ),
        (
            &world.token,
            format!("{path}?page=2&pageSize=4&version=1&select=Forename"),
        ),
    ];
    for (token, call) in refusals {
        let before = stack.snapshot();
        stack.read(token, &call).await.expect_error(
            StatusCode::BAD_REQUEST,
            "is not a page pin rollcall issued for this call",
        );
        assert_eq!(before, stack.snapshot(), "{call} changed the store");
    }
}

#[tokio::test]
async fn select_answers_only_the_fields_named_and_only_granted_ones() {
    let world = world().await;
    let stack = &world.stack;
    let path = "/api/v1/School/9990001/Students";
    let body = stack
        .read(&world.token, &format!("{path}?select=forename,Surname"))
        .await
        .expect(StatusCode::OK);
    for row in body["Students"].as_array().unwrap() {
        let mut names: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort();
        assert_eq!(names, ["Forename", "Id", "Surname"]);
    }
    let cases = [
        (
            "select=Forename,Ethnicity",
            StatusCode::FORBIDDEN,
            "Ethnicity of Students needs StudentDemographic",
        ),
        (
            "select=ShoeSize",
            StatusCode::BAD_REQUEST,
            "`ShoeSize` is not a field of Students",
        ),
        (
            "onlyGetDbStatus=maybe",
            StatusCode::BAD_REQUEST,
            "onlyGetDbStatus must be true or false",
        ),
        (
            "updatedSince=yesterday",
            StatusCode::BAD_REQUEST,
            "updatedSince: `yesterday` is not an ISO 8601 date",
        ),
    ];
    for (query, status, text) in cases {
        let before = stack.snapshot();
        stack
            .read(&world.token, &format!("{path}?{query}"))
            .await
            .expect_error(status, text);
        assert_eq!(before, stack.snapshot(), "{query} changed the store");
    }
}

#[tokio::test]
async fn only_get_db_status_tells_when_the_data_was_extracted() {
    let world = world().await;
    world.stack.advance(Duration::hours(30));
    let body = world
        .stack
        .read(
            &world.new_token().await,
            "/api/v1/School/9990001/Students?onlyGetDbStatus=true",
        )
        .await
        .expect(StatusCode::OK);
    let status = &body["__DbStatus__"][0];
    assert_eq!(status["Estab"], A);
    assert_eq!(status["LastExtracted"], T0.to_xod());
    assert_eq!(status["Stale"], true);
    assert!(body.get("Students").is_none());
}

/// A path's id is read as the same id given as a filter is: spaces around it do not matter.
#[tokio::test]
async fn an_id_in_the_path_is_taken_trimmed_as_a_filters_is() {
    let w = world().await;
    let pupil = w.pupils()[0].clone();
    let ids = |answer: Value| -> Vec<Value> {
        let rows = answer["Students"].as_array().unwrap();
        rows.iter().map(|r| r["Id"].clone()).collect()
    };
    let plain = ids(w
        .get(&format!("Students/{pupil}"))
        .await
        .expect(StatusCode::OK));
    assert_eq!(plain, [json!(pupil)]);
    for padded in [
        format!("Students/%20{pupil}%20"),
        format!("Students?id=%20{pupil}"),
    ] {
        let answer = w.get(&padded).await.expect(StatusCode::OK);
        assert_eq!(ids(answer), plain, "{padded}");
    }
    let blank = w.get("Students/%20").await.expect(StatusCode::OK);
    assert_eq!(ids(blank), Vec::<Value>::new(), "a blank id is no pupil");
}
