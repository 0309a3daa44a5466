//! Every XoD route answers whatever the case its path is sent in, as XoD clients send them:
//! the routes come from the functions' own route tables, so a new one cannot be forgotten.

use reqwest::Method;

use crate::support::Stack;

/// A route's path with its parameters filled in.
fn filled(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{estab}" => "9990001",
            "{endpoint}" => "Students",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Swaps the case of every letter: `/api/v1/School` → `/API/V1/sCHOOL`.
fn swapped(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

#[tokio::test]
async fn every_xod_route_answers_in_any_case_and_with_a_trailing_slash() {
    let stack = Stack::start().await;
    let paths = rollcall::xod_paths();
    let xod: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| p.starts_with("/api/") || p.starts_with("/idaas/"))
        .collect();
    assert!(xod.len() > 15, "{xod:?}");
    for template in xod {
        let path = filled(template);
        for sent in [
            swapped(&path),
            path.to_ascii_lowercase(),
            format!("{}/", path.to_ascii_uppercase()),
        ] {
            let answer = stack.send(Method::GET, &sent, None, None).await;
            // Any answer but the unknown-route one means the route was reached (a 401 for
            // the missing token, a 405 for the method, or the answer itself).
            assert!(
                !answer.message().contains("there is no rollcall endpoint"),
                "{template} sent as {sent}: {}",
                answer.message()
            );
        }
    }
}
