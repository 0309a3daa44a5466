//! The abuse controls at the edge, end to end over HTTP: a credential over its rate is
//! answered 429 with `Retry-After` and the XoD error body, and nothing is done for it;
//! refused credentials slow their client down, then lock it out for a while, saying so;
//! oversized requests are refused before any handler runs.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rollcall_http::Limits;
use serde_json::json;

use crate::support::Stack;
use crate::world::World;

const ESTAB: &str = "9990001";
const P: &str = "abuse-partner";
const Q: &str = "abuse-other";

async fn world(limits: Limits) -> World {
    World::build(ESTAB)
        .data(rollcall_core::synthetic::school(ESTAB, 4, 2).upload_body())
        .partner(P, &["Student"])
        .partner(Q, &["Student"])
        .grant(ESTAB, P, &["Student"])
        .grant(ESTAB, Q, &["Student"])
        .on(Stack::start_with_limits(limits).await)
        .await
}

fn students() -> String {
    format!("/api/v1/School/{ESTAB}/Students")
}

fn retry_after(answer: &crate::support::Answer) -> u64 {
    answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Awaits `call`, which the edge must have slowed down by at least `at_least`.
async fn waits<T>(at_least: Duration, call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let answer = call.await;
    let took = started.elapsed();
    assert!(
        took >= at_least,
        "answered in {took:?}, not slowed to {at_least:?}"
    );
    answer
}

#[tokio::test]
async fn a_credential_over_its_rate_is_answered_429_and_nothing_is_done_for_it() {
    let world = world(Limits {
        per_credential: NonZeroU32::new(1),
        burst: NonZeroU32::new(5).unwrap(),
        ..Limits::default()
    })
    .await;
    let (token_p, token_q) = (world.token_of(P, ESTAB), world.token_of(Q, ESTAB));
    for _ in 0..5 {
        world
            .stack
            .read(token_p, &students())
            .await
            .expect(StatusCode::OK);
    }
    let logged = world.stack.access_log(&world.school).await.len();
    let refused = world.stack.read(token_p, &students()).await;
    refused.expect_error(StatusCode::TOO_MANY_REQUESTS, "slow down");
    let wait = retry_after(&refused);
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert_eq!(
        world.stack.access_log(&world.school).await.len(),
        logged,
        "a call refused for its rate reads nothing, so nothing is logged"
    );
    // Another credential has its own bucket; the first may call again once it waited.
    world
        .stack
        .read(token_q, &students())
        .await
        .expect(StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    world
        .stack
        .read(token_p, &students())
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn refused_credentials_slow_a_client_down_then_lock_it_out_for_a_while() {
    let lock_for = Duration::from_secs(3);
    let world = world(Limits {
        slow_after: 2,
        lock_after: 4,
        lock_for,
        ..Limits::default()
    })
    .await;
    let token = world.token_of(P, ESTAB).to_owned();
    // Calls without a credential, or with an expired one, are not guesses: never counted.
    for _ in 0..6 {
        let anonymous = world.stack.send(Method::GET, &students(), None, None).await;
        anonymous.expect_error(StatusCode::UNAUTHORIZED, "Authorization: Idaas");
    }

    // Four wrong credentials of different kinds: the third waits a second, the fourth two.
    let timed = |answer: crate::support::Answer, started: Instant| (answer, started.elapsed());
    let started = Instant::now();
    let (first, fast) = timed(world.stack.read("not-a-token", &students()).await, started);
    first.expect_error(StatusCode::UNAUTHORIZED, "not recognised");
    let started = Instant::now();
    let wrong_secret = world.stack.get_token(P, ESTAB, "not-the-secret").await;
    wrong_secret.expect_error(StatusCode::UNAUTHORIZED, "do not match");
    assert!(fast < Duration::from_millis(900) && started.elapsed() < Duration::from_millis(900));
    let bearer = |key: &str| format!("Bearer {key}");
    let whoami = Some(bearer("rca_wrong"));
    let third = world
        .stack
        .send(Method::GET, "/agent/v1/whoami", whoami.as_deref(), None);
    (waits(Duration::from_secs(1), third).await).expect_error(StatusCode::UNAUTHORIZED, "");
    let partners = Some(bearer("rcs_wrong"));
    let fourth = world
        .stack
        .send(Method::GET, "/admin/v1/partners", partners.as_deref(), None);
    (waits(Duration::from_secs(2), fourth).await).expect_error(StatusCode::UNAUTHORIZED, "");

    // Locked out: even a good token is refused, and the answer says why and for how long.
    let locked = world.stack.read(&token, &students()).await;
    locked.expect_error(StatusCode::TOO_MANY_REQUESTS, "rollcall does not know");
    let wait = retry_after(&locked);
    assert!(
        (1..=lock_for.as_secs()).contains(&wait),
        "Retry-After: {wait}"
    );
    let admin = world
        .stack
        .send(
            Method::GET,
            "/admin/v1/partners",
            Some(&bearer(&world.school.admin)),
            None,
        )
        .await;
    admin.expect_error(StatusCode::TOO_MANY_REQUESTS, "refused for");

    // Once the lockout has passed, the good token is served again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    world
        .stack
        .read(&token, &students())
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_stale_secret_sent_again_is_counted_once_but_different_guesses_lock_out() {
    let world = world(Limits {
        slow_after: 2,
        lock_after: 4,
        lock_for: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    // The school revokes and grants again, which issues a new secret; the partner's
    // application goes on sending the old one, from the address it calls every school from.
    let stale = (world.stack.password(&world.management, ESTAB).await).expect("the secret");
    let admin = format!("Bearer {}", world.school.admin);
    let revoke = format!("/admin/v1/consents/{P}/revoke");
    (world
        .stack
        .send(Method::POST, &revoke, Some(&admin), Some(b"{}".to_vec()))
        .await)
        .expect(StatusCode::OK);
    (world.stack.grant(&world.school, P, &["Student"]).await).expect(StatusCode::OK);
    let started = Instant::now();
    for _ in 0..12 {
        let refused = world.stack.get_token(P, ESTAB, &stale).await;
        refused.expect_error(StatusCode::UNAUTHORIZED, "do not match");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let token = world.stack.token(P, &world.management, ESTAB).await;
    (world.stack.read(&token, &students()).await).expect(StatusCode::OK);

    // Guessing is different secrets: the third different one waits, the fourth locks out.
    for guess in ["guess-1", "guess-2"] {
        let refused = world.stack.get_token(P, ESTAB, guess).await;
        refused.expect_error(StatusCode::UNAUTHORIZED, "do not match");
    }
    let third = waits(
        Duration::from_secs(2),
        world.stack.get_token(Q, ESTAB, "guess-3"),
    )
    .await;
    third.expect_error(StatusCode::UNAUTHORIZED, "do not match");
    let locked = world.stack.read(&token, &students()).await;
    locked.expect_error(StatusCode::TOO_MANY_REQUESTS, "rollcall does not know");
}

#[tokio::test]
async fn oversized_targets_and_headers_are_refused_before_any_handler() {
    let world = world(Limits::default()).await;
    let token = world.token_of(P, ESTAB);
    let long = format!("{}?studentId={}", students(), "1,".repeat(5000));
    let answer = world.stack.read(token, &long).await;
    answer.expect_error(StatusCode::URI_TOO_LONG, "rollcall reads at most 8192");
    let padding = "x".repeat(17 * 1024);
    let answer = world
        .stack
        .send_with(
            Method::GET,
            &students(),
            Some(&format!("Idaas {token}")),
            &[("x-padding", &padding)],
            None,
        )
        .await;
    answer.expect_error(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "rollcall reads at most 16384",
    );
    // Neither was read as a call: the access log holds only what was answered.
    let log = world.stack.access_log(&world.school).await;
    assert!(log.is_empty(), "{}", json!(log));
}

#[tokio::test]
async fn no_token_outlives_the_consent_or_the_secret_that_issued_it() {
    let world = world(Limits::default()).await;
    let old = world.token_of(P, ESTAB).to_owned();
    let admin = format!("Bearer {}", world.school.admin);
    let revoke = format!("/admin/v1/consents/{P}/revoke");
    world
        .stack
        .send(Method::POST, &revoke, Some(&admin), Some(b"{}".to_vec()))
        .await
        .expect(StatusCode::OK);
    let ended = world.stack.read(&old, &students()).await;
    assert!(ended.status.is_client_error(), "{}", ended.body);

    // The school grants again: a new secret is issued, and the old token stays refused.
    world
        .stack
        .grant(&world.school, P, &["Student"])
        .await
        .expect(StatusCode::OK);
    let replaced = world.stack.read(&old, &students()).await;
    replaced.expect_error(StatusCode::FORBIDDEN, "new secret");
    let fresh = world.stack.token(P, &world.management, ESTAB).await;
    world
        .stack
        .read(&fresh, &students())
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_partner_over_its_rate_is_refused_across_all_its_tokens_and_schools() {
    const OTHER: &str = "9990002";
    let world = World::build(ESTAB)
        .data(rollcall_core::synthetic::school(ESTAB, 4, 2).upload_body())
        .school(
            OTHER,
            Some(rollcall_core::synthetic::school(OTHER, 4, 3).upload_body()),
        )
        .partner(P, &["Student"])
        .partner(Q, &["Student"])
        .grant(ESTAB, P, &["Student"])
        .grant(OTHER, P, &["Student"])
        .grant(ESTAB, Q, &["Student"])
        .on(Stack::start_with_limits(Limits {
            per_credential: None,
            per_partner: NonZeroU32::new(1),
            ..Limits::default()
        })
        .await)
        .await;
    // A rate of 1 a second allows bursts of 10, shared by P's tokens at both schools (and its
    // management secret, which the set-up used twice).
    let at = |estab: &str| format!("/api/v1/School/{estab}/Students");
    let (here, there) = (world.token_of(P, ESTAB), world.token_of(P, OTHER));
    let mut served = 0;
    let refused = loop {
        let (token, estab) = if served % 2 == 0 {
            (here, ESTAB)
        } else {
            (there, OTHER)
        };
        let answer = world.stack.read(token, &at(estab)).await;
        if answer.status != StatusCode::OK {
            break answer;
        }
        served += 1;
        assert!(served <= 10, "P was never held back");
    };
    assert!(
        served >= 6,
        "only {served} calls served before P was held back"
    );
    refused.expect_error(StatusCode::TOO_MANY_REQUESTS, "over all its tokens");
    assert!(retry_after(&refused) >= 1);
    // Another partner at the same school is not held back.
    world
        .stack
        .read(world.token_of(Q, ESTAB), &at(ESTAB))
        .await
        .expect(StatusCode::OK);
}
