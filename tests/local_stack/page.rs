//! The consent page's security: sign-in, the session cookie's flags, the headers of every
//! answer, CSRF on every form, and one school's session confined to its school. The whole
//! story in a real browser is `browser.rs`.

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};
use serde_json::Value;

use crate::world::World;

const A: &str = "9990071";
const B: &str = "9990072";
const PARTNER: &str = "page-homework";

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// A form post: what it is, the cookie it carries, its fields.
type Attempt<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a str)>);

fn encoded(form: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(form).unwrap()
}

/// Signs in with `key`: the answer's status, headers and the session cookie (`name=value`).
async fn sign_in(
    base: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Option<String>) {
    let mut request = client()
        .post(format!("{base}/admin/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(&[("key", key)]));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let cookie = (headers.get(SET_COOKIE))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (response.status(), headers, cookie)
}

async fn get(base: &str, path: &str, cookie: &str) -> (StatusCode, HeaderMap, String) {
    let response = client()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.headers().clone(),
        response.text().await.unwrap(),
    )
}

async fn post(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut request = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(form));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The CSRF token of the first form of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A screen answered a signed-out browser by sending it to sign in.
fn assert_sent_to_sign_in(status: StatusCode, headers: &HeaderMap) {
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with("/admin/sign-in"), "{location}");
}

fn assert_page_headers(headers: &HeaderMap, what: &str) {
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["cache-control"], "no-store", "{what}");
}

async fn world() -> World {
    World::build(A)
        .data(rollcall_core::synthetic::school(A, 6, 3).upload_body())
        .school(
            B,
            Some(rollcall_core::synthetic::school(B, 6, 4).upload_body()),
        )
        .partner(PARTNER, &["Student", "StudentDemographic"])
        .grant(A, PARTNER, &["Student"])
        .grant(B, PARTNER, &["Student"])
        .start()
        .await
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie_and_a_wrong_key_says_so() {
    let world = world().await;
    let base = &world.stack.base;

    let (status, headers, cookie) = sign_in(base, "rcs_not-a-key", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none(), "no session for a wrong key");
    assert_page_headers(&headers, "wrong key");
    let (_, _, page) = get(base, "/admin/sign-in", "").await;
    assert!(page.contains("Admin key"));
    let refused = client()
        .post(format!("{base}/admin/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encoded(&[("key", "rcs_not-a-key")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("not registered with rollcall"),
        "{refused}"
    );

    let (status, headers, cookie) = sign_in(base, &world.school.admin, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[SET_COOKIE].to_str().unwrap();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=28800",
        "Path=/admin",
    ] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP to this machine: {set}");
    let (status, headers, page) = get(base, "/admin/partners", cookie.as_deref().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_page_headers(&headers, "partners");
    assert!(page.contains(PARTNER));

    // A sign-in sent from another site's page is refused (no one is signed in for you).
    for header in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let (status, _, cookie) = sign_in(base, &world.school.admin, &[header]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header:?}");
        assert!(cookie.is_none());
    }
    let host = base.trim_start_matches("http://");
    let own = format!("http://{host}");
    let (status, _, _) = sign_in(
        base,
        &world.school.admin,
        &[("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "from its own page");

    // Served over HTTPS (behind API Gateway), the cookie is Secure.
    let (_, headers, _) =
        sign_in(base, &world.school.admin, &[("x-forwarded-proto", "https")]).await;
    assert!(headers[SET_COOKIE].to_str().unwrap().contains("; Secure"));

    // Every screen and the stylesheet carry the headers; signed out, screens send to sign-in.
    for path in [
        "/admin/",
        "/admin/sign-in",
        "/admin/static/app.css",
        "/admin/partners",
    ] {
        let (status, headers, _) = get(base, path, "").await;
        assert_page_headers(&headers, path);
        if path == "/admin/partners" {
            assert_sent_to_sign_in(status, &headers);
        }
    }
}

#[tokio::test]
async fn a_form_without_this_sessions_token_changes_nothing() {
    let world = world().await;
    let base = &world.stack.base;
    let (_, _, mine) = sign_in(base, &world.school.admin, &[]).await;
    let (_, _, other) = sign_in(base, &world.school.admin, &[]).await;
    let (mine, other) = (mine.unwrap(), other.unwrap());
    let (_, _, page) = get(base, &format!("/admin/partners/{PARTNER}"), &other).await;
    let others_token = csrf_of(&page);
    let grant = format!("/admin/partners/{PARTNER}/grant");
    let forms: [Attempt<'_>; 4] = [
        (
            "no token",
            Some(&mine),
            vec![
                ("scope", "Student"),
                ("scope", "StudentDemographic"),
                ("confirm_special", "yes"),
            ],
        ),
        (
            "another session's token",
            Some(&mine),
            vec![
                ("csrf", &others_token),
                ("scope", "StudentDemographic"),
                ("confirm_special", "yes"),
            ],
        ),
        (
            "a made-up token",
            Some(&mine),
            vec![("csrf", "00"), ("scope", "StudentDemographic")],
        ),
        (
            "signed out",
            None,
            vec![("csrf", &others_token), ("scope", "StudentDemographic")],
        ),
    ];
    for (what, cookie, form) in &forms {
        let (status, body) = unchanged!(world, post(base, &grant, *cookie, form).await);
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        assert!(body.contains("nothing was changed"), "{what}: {body}");
    }
    for path in [
        format!("/admin/partners/{PARTNER}/revoke"),
        format!("/admin/partners/{PARTNER}/opt-outs"),
        "/admin/agent/refresh".to_owned(),
        "/admin/sign-out".to_owned(),
    ] {
        let form = [
            ("when", "now"),
            ("action", "add"),
            ("kind", "student"),
            ("id", "1"),
            ("all", "yes"),
        ];
        let (status, _) = unchanged!(world, post(base, &path, Some(&mine), &form).await);
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }

    // With its own token the same grant goes through.
    let (_, _, page) = get(base, &format!("/admin/partners/{PARTNER}"), &mine).await;
    let token = csrf_of(&page);
    let form = [
        ("csrf", token.as_str()),
        ("scope", "Student"),
        ("scope", "StudentDemographic"),
        ("confirm_special", "yes"),
    ];
    let (status, _) = post(base, &grant, Some(&mine), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let granted: Value = partner_entry(&world, A).await;
    assert_eq!(
        granted["grantedScopes"],
        serde_json::json!(["Student", "StudentDemographic"])
    );
}

async fn partner_entry(world: &World, estab: &str) -> Value {
    let admin = &world.school_of(estab).admin;
    let list = world
        .stack
        .send(
            reqwest::Method::GET,
            "/admin/v1/partners",
            Some(&format!("Bearer {admin}")),
            None,
        )
        .await
        .expect(StatusCode::OK);
    list["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == PARTNER)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn special_category_data_needs_the_confirmation_and_one_school_acts_on_itself_only() {
    let world = world().await;
    let base = &world.stack.base;
    let (_, _, cookie) = sign_in(base, &world.school.admin, &[]).await;
    let cookie = cookie.unwrap();
    let (_, _, page) = get(base, &format!("/admin/partners/{PARTNER}"), &cookie).await;
    assert!(page.contains("Special category"), "{page}");
    let token = csrf_of(&page);
    let grant = format!("/admin/partners/{PARTNER}/grant");

    let unconfirmed = [
        ("csrf", token.as_str()),
        ("scope", "Student"),
        ("scope", "StudentDemographic"),
    ];
    let (status, body) = unchanged!(world, post(base, &grant, Some(&cookie), &unconfirmed).await);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("lawful basis"), "{body}");

    // A's session names B's school in its cookie: it opens for neither.
    let moved = cookie.replacen(A, B, 1);
    let (status, headers, _) = get(base, "/admin/partners", &moved).await;
    assert_sent_to_sign_in(status, &headers);
    let confirmed = [
        ("csrf", token.as_str()),
        ("scope", "StudentDemographic"),
        ("confirm_special", "yes"),
    ];
    let (status, _) = unchanged!(world, post(base, &grant, Some(&moved), &confirmed).await);
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Signed in at A, a grant changes A's consent and never B's.
    let (status, _) = post(base, &grant, Some(&cookie), &confirmed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        partner_entry(&world, A).await["grantedScopes"],
        serde_json::json!(["StudentDemographic"])
    );
    assert_eq!(
        partner_entry(&world, B).await["grantedScopes"],
        serde_json::json!(["Student"])
    );
    // A's subject access screens read A's data only: B's pupils of the same id are not A's.
    let (status, _, page) = get(base, "/admin/subjects?kind=student&q=Larkfield", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains(B), "{page}");
}

#[tokio::test]
async fn opt_outs_made_at_once_are_all_kept() {
    let world = world().await;
    let base = &world.stack.base;
    let (_, _, cookie) = sign_in(base, &world.school.admin, &[]).await;
    let cookie = cookie.unwrap();
    let path = format!("/admin/partners/{PARTNER}/opt-outs");
    let (_, _, page) = get(base, &path, &cookie).await;
    let token = csrf_of(&page);
    let ids: Vec<String> = (1..=12).map(|n| format!("p{n}")).collect();

    // Act: twelve opt-outs posted at the same moment, as two people (or tabs) might.
    let mut posts = tokio::task::JoinSet::new();
    for id in &ids {
        let (base, path, cookie, token, id) = (
            base.clone(),
            path.clone(),
            cookie.clone(),
            token.clone(),
            id.clone(),
        );
        posts.spawn(async move {
            let form = [
                ("csrf", token.as_str()),
                ("action", "add"),
                ("kind", "student"),
                ("id", id.as_str()),
            ];
            post(&base, &path, Some(&cookie), &form).await.0
        });
    }
    let statuses = posts.join_all().await;

    // Assert: every one answered done, and every one is kept.
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    let admin = format!("Bearer {}", world.school.admin);
    let kept = world
        .stack
        .send(
            reqwest::Method::GET,
            &format!("/admin/v1/opt-outs/{PARTNER}"),
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let kept: Vec<&str> = kept["studentIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(kept, expected);
}

#[tokio::test]
async fn a_new_admin_key_ends_every_session_and_the_old_key() {
    let world = world().await;
    let base = &world.stack.base;
    let (_, _, cookie) = sign_in(base, &world.school.admin, &[]).await;
    let cookie = cookie.unwrap();
    let (status, _, _) = get(base, "/admin/partners", &cookie).await;
    assert_eq!(status, StatusCode::OK);

    // Act: the operator replaces school A's admin key (`rollcall school rotate-admin-key`).
    let control = &world.stack.ports.control;
    let new_key = rollcall_consent::registry::replace_admin_key(
        control.schools.as_ref(),
        control.registry.as_ref(),
        A,
    )
    .await
    .unwrap();

    // Assert: the session and the old key are done; the new key signs in; B is untouched.
    let (status, headers, _) = get(base, "/admin/partners", &cookie).await;
    assert_sent_to_sign_in(status, &headers);
    let (status, _, _) = sign_in(base, &world.school.admin, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    use secrecy::ExposeSecret;
    let (status, _, fresh) = sign_in(base, new_key.expose_secret(), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = get(base, "/admin/partners", &fresh.unwrap()).await;
    assert!(page.contains(A));
    let (status, _, _) = sign_in(base, &world.school_of(B).admin, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
