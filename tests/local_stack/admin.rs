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
