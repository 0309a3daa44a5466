//! The XoD info endpoints on the local stack: TokenDetails, Scopes, Queries, Usage, Logs and
//! the edubase.search query.

use reqwest::StatusCode;
use rollcall_consent::registry::register_school;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::Value;

use crate::world::World;

const ESTAB: &str = "9990009";
const PARTNER: &str = "acme-info";

async fn world() -> World {
    World::build(ESTAB)
        .data(synthetic::school(ESTAB, 5, 2).upload_body())
        .partner(PARTNER, &["Student", "School", "WritebackAttendance"])
        .grant(ESTAB, PARTNER, &["Student", "School"])
        .start()
        .await
}

#[track_caller]
fn assert_message_keys_null(body: &Value) {
    for key in [
        "Message",
        "ExceptionType",
        "ExceptionMessage",
        "InnerException",
    ] {
        assert_eq!(body.get(key), Some(&Value::Null), "{key} in {body}");
    }
}

#[tokio::test]
async fn token_details_name_the_school_and_the_scopes_granted_now() {
    let w = world().await;
    let body = w
        .stack
        .read(&w.token, "/api/v1/tokendetails")
        .await
        .expect(StatusCode::OK);
    assert_eq!(body["Estab"], ESTAB);
    assert_eq!(body["RelyingParty"], PARTNER);
    assert_eq!(body["Scopes"], serde_json::json!(["School", "Student"]));
    assert_message_keys_null(&body);
    w.stack
        .read("not-a-token", "/api/v1/TokenDetails")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "GetToken");
}

#[tokio::test]
async fn scopes_and_queries_describe_the_whole_catalogue() {
    let w = world().await;
    let scopes = w
        .stack
        .read(&w.token, "/api/v1/Scopes")
        .await
        .expect(StatusCode::OK);
    let scopes = scopes["Scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 47);
    assert!(scopes.iter().all(|s| {
        ["Name", "Category", "Description"]
            .iter()
            .all(|k| s[k].as_str().is_some_and(|t| !t.is_empty()))
    }));

    let queries = w
        .stack
        .read(&w.token, "/api/v1/Queries")
        .await
        .expect(StatusCode::OK);
    assert_message_keys_null(&queries);
    let entries = queries["Endpoints"].as_array().unwrap();
    let catalogue = Catalogue::get();
    assert_eq!(
        entries.len(),
        catalogue.endpoints().len() + catalogue.writebacks().len() + catalogue.queries().len()
    );
    let students = entries
        .iter()
        .find(|e| e["Id"] == "school.students")
        .unwrap();
    assert_eq!(students["Method"], "GET");
    assert_eq!(students["Path"], "/api/v1/School/{estab}/Students");
    assert!(
        students["Options"]
            .as_str()
            .unwrap()
            .contains("includeAttStats:adds the columns")
    );
    let attendance = entries
        .iter()
        .find(|e| e["Id"] == "Writeback.Attendance")
        .unwrap();
    assert_eq!(attendance["Method"], "POST");
    assert_eq!(attendance["Scope"], "WritebackAttendance");
}

#[tokio::test]
async fn usage_and_logs_count_this_partners_calls() {
    let w = world().await;
    for _ in 0..2 {
        w.stack
            .read(&w.token, &format!("/api/v1/School/{ESTAB}/Students"))
            .await
            .expect(StatusCode::OK);
    }
    w.stack
        .read(&w.token, &format!("/api/v1/School/{ESTAB}/Counts"))
        .await
        .expect(StatusCode::OK);
    let usage = w
        .stack
        .read(&w.token, "/api/v1/Usage")
        .await
        .expect(StatusCode::OK);
    let entry = &usage["Usage"][0];
    assert_eq!(entry["Estab"], ESTAB);
    assert_eq!(entry["RP"], PARTNER);
    let core = entry["Areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Area"] == "Core")
        .unwrap();
    assert_eq!(
        (&core["Total"], &core["Today"], &core["ThisMonth"]),
        (&3.into(), &3.into(), &3.into())
    );
    assert_eq!(core["History"].as_array().unwrap().len(), 1);

    // Twelve days on (T0 is 21 September), in the next month, one more call: today and this
    // month count it alone.
    w.stack.advance(Duration::days(12));
    let token = w.stack.token(PARTNER, &w.management, ESTAB).await;
    w.stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await
        .expect(StatusCode::OK);
    let usage = w
        .stack
        .read(&token, "/api/v1/Usage")
        .await
        .expect(StatusCode::OK);
    let core = usage["Usage"][0]["Areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Area"] == "Core")
        .unwrap()
        .clone();
    assert_eq!(
        (&core["Total"], &core["Today"], &core["ThisMonth"]),
        (&4.into(), &1.into(), &1.into())
    );
    assert_eq!(core["History"].as_array().unwrap().len(), 2);

    let logs = w
        .stack
        .read(&token, "/api/v1/Logs?limit=2")
        .await
        .expect(StatusCode::OK);
    let logs = logs["Logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["Endpoint"], "Students", "newest first");
    assert_eq!(logs[1]["Endpoint"], "Counts");
    w.stack
        .read(&token, "/api/v1/Logs?limit=0")
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            "`limit` must be between 1 and 1000",
        );
}

#[tokio::test]
async fn edubase_search_finds_registered_schools() {
    let w = world().await;
    register_school(
        w.stack.ports.control.registry.as_ref(),
        "8881234",
        "Larkfield Academy",
        w.stack.clock_now(),
    )
    .await
    .unwrap();
    let search = |query: &str| {
        let path = format!("/api/v1/RunQuery/?id=edubase.search&{query}");
        let stack = &w.stack;
        let token = w.token.clone();
        async move { stack.read(&token, &path).await }
    };
    let found = search("q=larkfield").await.expect(StatusCode::OK);
    assert_eq!(
        found["Establishments"],
        serde_json::json!([{"Estab": "8881234", "LACode": "888", "EstabCode": "1234",
                            "Name": "Larkfield Academy", "Open": 1}])
    );
    let by_la = search("la_code=999").await.expect(StatusCode::OK);
    assert_eq!(by_la["Establishments"][0]["Estab"], ESTAB);
    assert_eq!(by_la["Establishments"].as_array().unwrap().len(), 1);
    search("postcode=ZZ1")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "not their postcodes");
    w.stack
        .read(&w.token, "/api/v1/RunQuery/?id=nope")
        .await
        .expect_error(StatusCode::NOT_FOUND, "edubase.search");
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let w = world().await;
    let document = w
        .stack
        .send(reqwest::Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document, rollcall_serve::openapi::document());
    let paths = document["paths"].as_object().unwrap();
    for endpoint in Catalogue::get().endpoints() {
        let path = format!("/api/v1/School/{{estab}}/{}", endpoint.path);
        assert_eq!(paths[&path]["get"]["operationId"], endpoint.id.as_str());
    }
    for path in [
        "/api/v1/Attendance/{estab}",
        "/api/v1/Writeback/Conduct",
        "/api/v1/Writeback",
    ] {
        assert!(paths[path]["post"].is_object(), "{path}");
    }
}
