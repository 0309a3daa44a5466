//! Bad input: each refused with a 4xx whose message says what was wrong and how to fix it,
//! and the data directory byte-for-byte as it was before.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::json;

use crate::support::{SchoolKeys, Stack};

const A: &str = "9990001";
const B: &str = "9990002";
const PARTNER: &str = "acme-homework";

/// A stack with two schools holding data, a partner granted Contact only at A and Student at
/// B, and a token for A.
struct World {
    stack: Stack,
    a: SchoolKeys,
    token_a: String,
}

async fn world() -> World {
    let stack = Stack::start().await;
    let a = stack.school(A).await;
    let b = stack.school(B).await;
    let management = stack.partner(PARTNER, &["Student", "Contact"]).await;
    for (keys, estab) in [(&a, A), (&b, B)] {
        let data = synthetic::school(estab, 8, 11);
        stack
            .upload(&keys.agent, &data.upload_body())
            .await
            .expect(StatusCode::OK);
    }
    stack
        .grant(&a, PARTNER, &["Contact"])
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&b, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);
    let token_a = stack.token(PARTNER, &management, A).await;
    World { stack, a, token_a }
}

async fn upload_raw(world: &World, auth: Option<&str>, body: Vec<u8>) -> crate::support::Answer {
    world
        .stack
        .send(Method::POST, "/agent/v1/extracts", auth, Some(body))
        .await
}

#[tokio::test]
async fn bad_uploads_are_refused_and_store_nothing() {
    let world = world().await;
    let auth = format!("Bearer {}", world.a.agent);
    let auth = Some(auth.as_str());
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{\"resultSets\": {\"Students\": [".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            json!({"resultSets": {"Pupils": []}})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown result set `Pupils`; rollcall accepts:",
        ),
        (
            json!({"resultSets": {"Students": [{"Id": "1"}, {"Forename": "Ann"}]}})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Students[1] has no `Id`",
        ),
        (
            json!({"resultSets": {"Students": [{"Id": "1", "Forename": {"first": "Ann"}}]}})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Students[0].Forename is an object; values must be a string, number, boolean or null",
        ),
        (
            json!({"resultSets": {"Students": [{"Id": "1", "Surname": [1]}]}})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Students[0].Surname is an array",
        ),
        (
            json!({"Students": []}).to_string().into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown key `Students`",
        ),
    ];
    for (body, status, text) in cases {
        let answer = unchanged!(world, upload_raw(&world, auth, body).await);
        answer.expect_error(status, text);
    }
}

#[tokio::test]
async fn an_oversized_upload_is_refused_with_the_limit() {
    let world = world().await;
    let auth = format!("Bearer {}", world.a.agent);
    let filler = "x".repeat(rollcall_ingest::MAX_UPLOAD_BYTES);
    let body = json!({"resultSets": {"Students": [{"Id": "1", "Forename": filler}]}})
        .to_string()
        .into_bytes();
    let answer = unchanged!(world, upload_raw(&world, Some(&auth), body).await);
    answer.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "larger than 5242880 bytes");
    assert!(answer.message().contains("several uploads"));
}

#[tokio::test]
async fn uploads_need_a_registered_agent_key() {
    let world = world().await;
    let body = json!({"resultSets": {"Students": []}})
        .to_string()
        .into_bytes();
    let missing = unchanged!(world, upload_raw(&world, None, body.clone()).await);
    missing.expect_error(
        StatusCode::UNAUTHORIZED,
        "Authorization: Bearer <agent key>",
    );
    let wrong = unchanged!(
        world,
        upload_raw(&world, Some("Bearer rca_0000"), body.clone()).await
    );
    wrong.expect_error(StatusCode::UNAUTHORIZED, "agent key is not registered");
    // The admin key is not an agent key.
    let admin = format!("Bearer {}", world.a.admin);
    let admin = unchanged!(world, upload_raw(&world, Some(&admin), body).await);
    admin.expect_error(StatusCode::UNAUTHORIZED, "agent key is not registered");
}

#[tokio::test]
async fn partner_reads_outside_the_token_or_consent_are_refused() {
    let world = world().await;
    let stack = &world.stack;
    let token = &world.token_a;

    let other_school = unchanged!(
        world,
        stack
            .read(token, &format!("/api/v1/School/{B}/Students"))
            .await
    );
    other_school.expect_error(
        StatusCode::FORBIDDEN,
        &format!("this token is for school {A}, not {B}"),
    );

    let not_granted = unchanged!(
        world,
        stack
            .read(token, &format!("/api/v1/School/{A}/Students"))
            .await
    );
    not_granted.expect_error(
        StatusCode::FORBIDDEN,
        "Students needs a scope school 9990001 has not granted you: Student, or StudentLite",
    );

    let past_end = unchanged!(
        world,
        stack
            .read(token, &format!("/api/v1/School/{A}/Contacts?page=99"))
            .await
    );
    past_end.expect_error(
        StatusCode::BAD_REQUEST,
        "page 99 is past the last page of this answer (1)",
    );

    let bad_size = unchanged!(
        world,
        stack
            .read(token, &format!("/api/v1/School/{A}/Contacts?pageSize=0"))
            .await
    );
    bad_size.expect_error(
        StatusCode::BAD_REQUEST,
        "pageSize must be between 1 and 2000",
    );

    let bad_option = unchanged!(
        world,
        stack
            .read(
                token,
                &format!("/api/v1/School/{A}/Contacts?options=includePhotos")
            )
            .await
    );
    bad_option.expect_error(
        StatusCode::BAD_REQUEST,
        "`includePhotos` is not an option of Contacts; it takes none",
    );

    let unknown = unchanged!(
        world,
        stack
            .read(token, &format!("/api/v1/School/{A}/Pupils"))
            .await
    );
    unknown.expect_error(StatusCode::NOT_FOUND, "there is no endpoint `Pupils`");

    let no_token = unchanged!(
        world,
        stack
            .send(
                Method::GET,
                &format!("/api/v1/School/{A}/Contacts"),
                None,
                None
            )
            .await
    );
    no_token.expect_error(StatusCode::UNAUTHORIZED, "Authorization: Idaas <token>");

    let forged = unchanged!(
        world,
        stack
            .read("rct_forged", &format!("/api/v1/School/{A}/Contacts"))
            .await
    );
    forged.expect_error(StatusCode::UNAUTHORIZED, "not recognised");

    // The same token works where the consent covers the call.
    stack
        .read(token, &format!("/api/v1/School/{A}/Contacts"))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let world = world().await;
    world.stack.advance(Duration::minutes(61));
    let expired = unchanged!(
        world,
        world
            .stack
            .read(&world.token_a, &format!("/api/v1/School/{A}/Contacts"))
            .await
    );
    expired.expect_error(StatusCode::UNAUTHORIZED, "this token expired at");
}

#[tokio::test]
async fn bad_token_requests_are_refused() {
    let world = world().await;
    let stack = &world.stack;
    let wrong_password = unchanged!(world, stack.get_token(PARTNER, A, "rcp_wrong").await);
    wrong_password.expect_error(
        StatusCode::UNAUTHORIZED,
        "relyingParty, estab and password do not match",
    );
    let missing = unchanged!(
        world,
        stack
            .send(
                Method::POST,
                "/idaas/sts/STS/GetToken",
                None,
                Some(br#"{"relyingParty": "acme-homework"}"#.to_vec())
            )
            .await
    );
    missing.expect_error(StatusCode::BAD_REQUEST, "GetToken needs `estab`");
    let not_json = unchanged!(
        world,
        stack
            .send(
                Method::POST,
                "/idaas/sts/STS/GetToken",
                None,
                Some(b"estab=1".to_vec())
            )
            .await
    );
    not_json.expect_error(StatusCode::BAD_REQUEST, "not valid JSON");
}

#[tokio::test]
async fn bad_admin_requests_are_refused() {
    let world = world().await;
    let stack = &world.stack;
    let admin = format!("Bearer {}", world.a.admin);
    let admin = Some(admin.as_str());
    let consents = format!("/admin/v1/consents/{PARTNER}");

    let not_requested = unchanged!(
        world,
        stack
            .send(
                Method::PUT,
                &consents,
                admin,
                Some(br#"{"scopes": ["StudentMedical"]}"#.to_vec())
            )
            .await
    );
    not_requested.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "the partner did not request `StudentMedical`; it requested: Contact, Student",
    );

    let unknown_scope = unchanged!(
        world,
        stack
            .send(
                Method::PUT,
                &consents,
                admin,
                Some(br#"{"scopes": ["Pupils"]}"#.to_vec())
            )
            .await
    );
    unknown_scope.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "`Pupils` is not a scope; valid scopes are:",
    );

    let malformed = unchanged!(
        world,
        stack
            .send(
                Method::PUT,
                &consents,
                admin,
                Some(br#"{"scopes": "#.to_vec())
            )
            .await
    );
    malformed.expect_error(StatusCode::BAD_REQUEST, "not valid JSON");

    let wrong_shape = unchanged!(
        world,
        stack
            .send(
                Method::PUT,
                &consents,
                admin,
                Some(br#"{"scope": ["Student"]}"#.to_vec())
            )
            .await
    );
    wrong_shape.expect_error(StatusCode::BAD_REQUEST, "unknown field `scope`");

    let unknown_partner = unchanged!(
        world,
        stack
            .send(
                Method::PUT,
                "/admin/v1/consents/nobody",
                admin,
                Some(br#"{"scopes": ["Student"]}"#.to_vec())
            )
            .await
    );
    unknown_partner.expect_error(StatusCode::NOT_FOUND, "no partner `nobody` is registered");

    let past = unchanged!(
        world,
        stack
            .send(
                Method::POST,
                &format!("{consents}/revoke"),
                admin,
                Some(br#"{"endDate": "2020-01-01"}"#.to_vec())
            )
            .await
    );
    past.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "is in the past; omit endDate to end access now",
    );

    let bad_date = unchanged!(
        world,
        stack
            .send(
                Method::POST,
                &format!("{consents}/revoke"),
                admin,
                Some(br#"{"endDate": "soon"}"#.to_vec())
            )
            .await
    );
    bad_date.expect_error(StatusCode::BAD_REQUEST, "is not an ISO 8601 date");

    let no_key = unchanged!(
        world,
        stack
            .send(
                Method::GET,
                "/admin/v1/requests",
                Some("Bearer rcs_nope"),
                None
            )
            .await
    );
    no_key.expect_error(StatusCode::UNAUTHORIZED, "admin key is not registered");

    let unknown_route = unchanged!(
        world,
        stack
            .send(Method::GET, "/admin/v2/requests", admin, None)
            .await
    );
    unknown_route.expect_error(
        StatusCode::NOT_FOUND,
        "there is no rollcall endpoint at /admin/v2/requests",
    );
}
