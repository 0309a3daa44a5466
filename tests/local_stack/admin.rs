//! The school admin API a data protection lead's page stands on: the partners asking, each
//! scope in plain words with what it releases, and the access log's filters and download.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Answer, Stack};
use crate::world::World;

const A: &str = "9990051";
const B: &str = "9990052";
const PARTNER: &str = "admin-homework";

async fn admin_get(stack: &Stack, admin: &str, path: &str) -> Answer {
    stack
        .send(Method::GET, path, Some(&format!("Bearer {admin}")), None)
        .await
}

/// The partner's entry in `/admin/v1/partners`.
fn entry<'a>(answer: &'a Value, partner: &str) -> &'a Value {
    answer["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == partner)
        .unwrap_or_else(|| panic!("{partner} is not listed: {answer}"))
}

fn scope<'a>(partner: &'a Value, name: &str) -> &'a Value {
    partner["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {partner}"))
}

#[tokio::test]
async fn the_partners_page_says_what_each_scope_releases_and_which_are_special() {
    // Arrange: a partner asks school A for three scopes and is granted two; B grants nothing.
    let asked = ["Student", "StudentDemographic", "Attendance"];
    let world = World::build(A)
        .school(B, None)
        .partner(PARTNER, &asked)
        .grant(A, PARTNER, &["Student", "StudentDemographic"])
        .start()
        .await;
    let stack = &world.stack;

    // Act
    let at_a = admin_get(stack, &world.school.admin, "/admin/v1/partners")
        .await
        .expect(StatusCode::OK);
    let at_b = admin_get(stack, &world.school_of(B).admin, "/admin/v1/partners")
        .await
        .expect(StatusCode::OK);

    // Assert
    let partner = entry(&at_a, PARTNER);
    assert_eq!(partner["status"], "granted");
    assert_eq!(
        partner["grantedScopes"],
        serde_json::json!(["Student", "StudentDemographic"])
    );
    assert_eq!(partner["grantedAt"], stack.clock_now().to_rfc3339());
    assert_eq!(partner["endDate"], Value::Null);
    let demographic = scope(partner, "StudentDemographic");
    assert_eq!(demographic["special"], true);
    assert_eq!(demographic["granted"], true);
    assert_eq!(demographic["category"], "Students");
    let released = demographic["releases"]["Students"].to_string();
    assert!(released.contains("\"Ethnicity\""), "{demographic}");
    assert!(!released.contains("\"Forename\""), "{demographic}");
    let attendance = scope(partner, "Attendance");
    assert_eq!(attendance["special"], false);
    assert_eq!(attendance["granted"], false);
    assert!(
        attendance["releases"]["AttendMarks"].is_array(),
        "{attendance}"
    );
    assert!(
        scope(partner, "Student")["description"]
            .as_str()
            .unwrap()
            .contains("names")
    );

    // B has granted nothing: the same partner is only asking there.
    let at_b = entry(&at_b, PARTNER);
    assert_eq!(at_b["status"], "requested");
    assert_eq!(at_b["grantedScopes"], serde_json::json!([]));
    assert_eq!(at_b["grantedAt"], Value::Null);
    assert_eq!(scope(at_b, "StudentDemographic")["granted"], false);

    admin_get(stack, "rcs_not_a_key", "/admin/v1/partners")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "admin key");
}

/// `GET /admin/v1/access-log` with `query`, as the admin of `admin`'s school.
async fn log(stack: &Stack, admin: &str, query: &str) -> Answer {
    admin_get(stack, admin, &format!("/admin/v1/access-log{query}")).await
}

fn endpoints_of(answer: &Value) -> Vec<String> {
    answer["accessLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_access_log_filters_pages_and_downloads_as_csv() {
    // Arrange: two partners read school A over two minutes; one call is refused.
    let world = World::build(A)
        .data(rollcall_core::synthetic::school(A, 5, 3).upload_body())
        .school(B, None)
        .partner(PARTNER, &["Student", "Staff"])
        .partner("admin-other", &["Student"])
        .grant(A, PARTNER, &["Student", "Staff"])
        .grant(A, "admin-other", &["Student"])
        .start()
        .await;
    let stack = &world.stack;
    let start = stack.clock_now();
    world.get("Students").await.expect(StatusCode::OK);
    stack.advance(rollcall_core::timestamp::Duration::minutes(1));
    let minute = stack.clock_now();
    world.get("Staff").await.expect(StatusCode::OK);
    world
        .get("StudentMedical")
        .await
        .expect_error(StatusCode::FORBIDDEN, "has not granted");
    stack.advance(rollcall_core::timestamp::Duration::minutes(1));
    stack
        .read(
            world.token_of("admin-other", A),
            &format!("/api/v1/School/{A}/Students"),
        )
        .await
        .expect(StatusCode::OK);
    let admin = &world.school.admin;

    // Act and assert: filters.
    let all = log(stack, admin, "").await.expect(StatusCode::OK);
    assert_eq!(
        endpoints_of(&all),
        ["Students", "StudentMedical", "Staff", "Students"]
    );
    assert_eq!(all["nextCursor"], Value::Null);
    let theirs = log(stack, admin, "?partner=admin-other")
        .await
        .expect(StatusCode::OK);
    assert_eq!(endpoints_of(&theirs), ["Students"]);
    let students = log(
        stack,
        admin,
        &format!("?endpoint=students&partner={PARTNER}"),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(endpoints_of(&students), ["Students"]);
    let window = log(
        stack,
        admin,
        &format!(
            "?from={}&to={}",
            minute.to_rfc3339(),
            minute
                .plus(rollcall_core::timestamp::Duration::seconds(30))
                .to_rfc3339()
        ),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(endpoints_of(&window), ["StudentMedical", "Staff"]);
    assert_eq!(window["accessLog"][0]["status"], 403);
    let before = log(stack, admin, &format!("?to={}", minute.to_rfc3339()))
        .await
        .expect(StatusCode::OK);
    assert_eq!(endpoints_of(&before), ["Students"]);
    assert_eq!(before["accessLog"][0]["at"], start.to_rfc3339());

    // Pages: a cursor walks every entry once.
    let mut walked = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let page = log(stack, admin, &query).await.expect(StatusCode::OK);
        walked.extend(endpoints_of(&page));
        let Some(next) = page["nextCursor"].as_str() else {
            break;
        };
        query = format!("?limit=1&cursor={}", urlencode(next));
    }
    assert_eq!(walked, endpoints_of(&all));

    // CSV, by parameter or by Accept.
    let client = reqwest::Client::new();
    for (query, accept) in [("?format=csv&limit=3", "*/*"), ("?limit=3", "text/csv")] {
        let response = client
            .get(format!("{}/admin/v1/access-log{query}", stack.base))
            .bearer_auth(admin)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        assert!(headers.contains_key("x-rollcall-next-cursor"));
        let text = response.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "at,partner,endpoint,status,rows,scopesUsed,refused"
        );
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[2].contains(",StudentMedical,403,0,,"), "{text}");
    }

    // Bad parameters say what is wrong; another school's admin sees none of it.
    for (query, text) in [
        ("?partnr=x", "takes no parameter `partnr`"),
        (
            "?from=2026-09-02&to=2026-09-01",
            "`from` must be before `to`",
        ),
        ("?from=yesterday", "`from` must be an ISO 8601 date"),
        ("?cursor=zzz", "`cursor` is not one this access log gave"),
        ("?partner=No%20Such", "is not a partner id"),
        ("?format=xml", "`format` is csv or json"),
        ("?limit=0", "`limit` must be between 1 and 1000"),
    ] {
        log(stack, admin, query)
            .await
            .expect_error(StatusCode::BAD_REQUEST, text);
    }
    let at_b = log(stack, &world.school_of(B).admin, "")
        .await
        .expect(StatusCode::OK);
    assert_eq!(at_b["accessLog"], serde_json::json!([]));
    // A's cursor is sealed to A: it says nothing of where A's log stands, and B cannot use it.
    let a_page = log(stack, admin, "?limit=1").await.expect(StatusCode::OK);
    let a_cursor = a_page["nextCursor"].as_str().unwrap();
    log(
        stack,
        &world.school_of(B).admin,
        &format!("?cursor={}", urlencode(a_cursor)),
    )
    .await
    .expect_error(
        StatusCode::BAD_REQUEST,
        "`cursor` is not one this access log gave",
    );
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_owned()
}
