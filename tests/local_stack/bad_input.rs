//! Bad input: each refused with a 4xx whose message says what was wrong and how to fix it,
//! and the data directory byte-for-byte as it was before. Refusals are tables of
//! [`Refusal`]s, each sent and checked the same way by [`assert_refused`].

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::json;

use crate::world::World;

const A: &str = "9990001";
const B: &str = "9990002";
const PARTNER: &str = "acme-homework";

/// Two schools holding data, a partner granted Contact only at A and Student at B, and its
/// token for A.
async fn world() -> World {
    World::build(A)
        .data(synthetic::school(A, 8, 11).upload_body())
        .school(B, Some(synthetic::school(B, 8, 11).upload_body()))
        .partner(PARTNER, &["Student", "Contact"])
        .grant(A, PARTNER, &["Contact"])
        .grant(B, PARTNER, &["Student"])
        .start()
        .await
}

/// Who a refused call is sent as.
#[derive(Clone, Copy)]
enum As {
    Nobody,
    /// School A's agent key.
    Agent,
    /// School A's admin key.
    Admin,
    /// The partner's token for school A.
    Partner,
    /// A header value as given (a forged or wrong credential).
    Raw(&'static str),
}

/// One call that must be refused with `status` and a message containing `text`.
struct Refusal {
    method: Method,
    path: String,
    who: As,
    body: Option<Vec<u8>>,
    status: StatusCode,
    text: String,
}

impl Refusal {
    fn new(method: Method, path: impl Into<String>, who: As) -> Self {
        Self {
            method,
            path: path.into(),
            who,
            body: None,
            status: StatusCode::OK,
            text: String::new(),
        }
    }

    fn get(path: impl Into<String>, who: As) -> Self {
        Self::new(Method::GET, path, who)
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn json(self, body: serde_json::Value) -> Self {
        self.body(body.to_string())
    }

    fn refused(mut self, status: StatusCode, text: impl Into<String>) -> Self {
        self.status = status;
        self.text = text.into();
        self
    }
}

/// Sends every case, asserting each is refused as it says and leaves the store unchanged.
async fn assert_refused(world: &World, cases: Vec<Refusal>) {
    for case in cases {
        let auth = match case.who {
            As::Nobody => None,
            As::Agent => Some(format!("Bearer {}", world.school.agent)),
            As::Admin => Some(format!("Bearer {}", world.school.admin)),
            As::Partner => Some(format!("Idaas {}", world.token)),
            As::Raw(value) => Some(value.to_owned()),
        };
        let answer = unchanged!(
            world,
            world
                .stack
                .send(case.method.clone(), &case.path, auth.as_deref(), case.body)
                .await
        );
        assert!(
            answer.status == case.status && answer.message().contains(&case.text),
            "{} {}: expected {} with {:?}, got {} {}",
            case.method,
            case.path,
            case.status,
            case.text,
            answer.status,
            answer.body
        );
    }
}

const EXTRACTS: &str = "/agent/v1/extracts";

#[tokio::test]
async fn bad_uploads_are_refused_and_store_nothing() {
    let world = world().await;
    let upload =
        |body: serde_json::Value| Refusal::new(Method::POST, EXTRACTS, As::Agent).json(body);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    assert_refused(
        &world,
        vec![
            Refusal::new(Method::POST, EXTRACTS, As::Agent)
                .body("{\"resultSets\": {\"Students\": [")
                .refused(StatusCode::BAD_REQUEST, "not valid JSON"),
            upload(json!({"resultSets": {"Pupils": []}}))
                .refused(unprocessable, "unknown result set `Pupils`; rollcall accepts:"),
            upload(json!({"resultSets": {"Students": [{"Id": "1"}, {"Forename": "Ann"}]}}))
                .refused(unprocessable, "Students[1] has no `Id`"),
            upload(json!({"resultSets": {"Students": [{"Id": "1", "Forename": {"first": "Ann"}}]}}))
                .refused(
                    unprocessable,
                    "Students[0].Forename is an object; values must be a string, number, boolean or null",
                ),
            upload(json!({"resultSets": {"Students": [{"Id": "1", "Surname": [1]}]}}))
                .refused(unprocessable, "Students[0].Surname is an array"),
            upload(json!({"Students": []})).refused(unprocessable, "unknown key `Students`"),
        ],
    )
    .await;
}

#[tokio::test]
async fn an_oversized_upload_is_refused_with_the_limit() {
    let world = world().await;
    let filler = "x".repeat(rollcall_ingest::MAX_UPLOAD_BYTES);
    let body = json!({"resultSets": {"Students": [{"Id": "1", "Forename": filler}]}});
    assert_refused(
        &world,
        vec![
            Refusal::new(Method::POST, EXTRACTS, As::Agent)
                .json(body)
                .refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "larger than 5242880 bytes (5 MiB), rollcall's limit for this call; send the result sets in several uploads",
                ),
        ],
    )
    .await;
}

#[tokio::test]
async fn uploads_need_a_registered_agent_key() {
    let world = world().await;
    let body = json!({"resultSets": {"Students": []}});
    let upload = |who| Refusal::new(Method::POST, EXTRACTS, who).json(body.clone());
    assert_refused(
        &world,
        vec![
            upload(As::Nobody).refused(
                StatusCode::UNAUTHORIZED,
                "Authorization: Bearer <agent key>",
            ),
            upload(As::Raw("Bearer rca_0000"))
                .refused(StatusCode::UNAUTHORIZED, "agent key is not registered"),
            // The admin key is not an agent key.
            upload(As::Admin).refused(StatusCode::UNAUTHORIZED, "agent key is not registered"),
        ],
    )
    .await;
}

#[tokio::test]
async fn partner_reads_outside_the_token_or_consent_are_refused() {
    let world = world().await;
    let read = |path: &str| Refusal::get(format!("/api/v1/School/{path}"), As::Partner);
    assert_refused(
        &world,
        vec![
            read(&format!("{B}/Students")).refused(
                StatusCode::FORBIDDEN,
                format!("this token is for school {A}, not {B}"),
            ),
            read(&format!("{A}/Students")).refused(
                StatusCode::FORBIDDEN,
                "Students needs a scope school 9990001 has not granted you: Student, or StudentLite",
            ),
            read(&format!("{A}/Contacts?page=99")).refused(
                StatusCode::BAD_REQUEST,
                "page 99 is past the last page of this answer (1)",
            ),
            read(&format!("{A}/Contacts?pageSize=0"))
                .refused(StatusCode::BAD_REQUEST, "pageSize must be between 1 and 2000"),
            read(&format!("{A}/Contacts?options=includePhotos")).refused(
                StatusCode::BAD_REQUEST,
                "`includePhotos` is not an option of Contacts; it takes none",
            ),
            read(&format!("{A}/Pupils"))
                .refused(StatusCode::NOT_FOUND, "there is no endpoint `Pupils`"),
            Refusal::get(format!("/api/v1/School/{A}/Contacts"), As::Nobody)
                .refused(StatusCode::UNAUTHORIZED, "Authorization: Idaas <token>"),
            Refusal::get(format!("/api/v1/School/{A}/Contacts"), As::Raw("Idaas rct_forged"))
                .refused(StatusCode::UNAUTHORIZED, "not recognised"),
        ],
    )
    .await;

    // The same token works where the consent covers the call.
    world.get("Contacts").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let world = world().await;
    world.stack.advance(Duration::minutes(61));
    assert_refused(
        &world,
        vec![
            Refusal::get(format!("/api/v1/School/{A}/Contacts"), As::Partner)
                .refused(StatusCode::UNAUTHORIZED, "this token expired at"),
        ],
    )
    .await;
}

#[tokio::test]
async fn bad_token_requests_are_refused() {
    let world = world().await;
    let get_token = |body: &str| {
        Refusal::new(Method::POST, "/idaas/sts/STS/GetToken", As::Nobody).body(body.to_owned())
    };
    let wrong_password = json!({
        "relyingParty": PARTNER, "thirdPartyId": "XporterOnDemand", "estab": A,
        "password": "rcp_wrong",
    });
    assert_refused(
        &world,
        vec![
            get_token(&wrong_password.to_string()).refused(
                StatusCode::UNAUTHORIZED,
                "relyingParty, estab and password do not match",
            ),
            get_token(r#"{"relyingParty": "acme-homework"}"#)
                .refused(StatusCode::BAD_REQUEST, "GetToken needs `estab`"),
            get_token("estab=1").refused(StatusCode::BAD_REQUEST, "not valid JSON"),
        ],
    )
    .await;
}

#[tokio::test]
async fn bad_admin_requests_are_refused() {
    let world = world().await;
    let consents = format!("/admin/v1/consents/{PARTNER}");
    let grant = |body: &str| Refusal::new(Method::PUT, &consents, As::Admin).body(body.to_owned());
    let revoke = |body: &str| {
        Refusal::new(Method::POST, format!("{consents}/revoke"), As::Admin).body(body.to_owned())
    };
    assert_refused(
        &world,
        vec![
            grant(r#"{"scopes": ["StudentMedical"]}"#).refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the partner did not request `StudentMedical`; it requested: Contact, Student",
            ),
            grant(r#"{"scopes": ["Pupils"]}"#).refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "`Pupils` is not a scope; valid scopes are:",
            ),
            grant(r#"{"scopes": "#).refused(StatusCode::BAD_REQUEST, "not valid JSON"),
            grant(r#"{"scope": ["Student"]}"#)
                .refused(StatusCode::BAD_REQUEST, "unknown field `scope`"),
            Refusal::new(Method::PUT, "/admin/v1/consents/nobody", As::Admin)
                .body(r#"{"scopes": ["Student"]}"#)
                .refused(StatusCode::NOT_FOUND, "no partner `nobody` is registered"),
            revoke(r#"{"endDate": "2020-01-01"}"#).refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "is in the past; omit endDate to end access now",
            ),
            revoke(r#"{"endDate": "soon"}"#)
                .refused(StatusCode::BAD_REQUEST, "is not an ISO 8601 date"),
            Refusal::get("/admin/v1/requests", As::Raw("Bearer rcs_nope"))
                .refused(StatusCode::UNAUTHORIZED, "admin key is not registered"),
            Refusal::get("/admin/v2/requests", As::Admin).refused(
                StatusCode::NOT_FOUND,
                "there is no rollcall endpoint at /admin/v2/requests",
            ),
        ],
    )
    .await;
}
