//! Tampered and substituted objects, on both adapters: each object of a school's current
//! Students version (its row index and its scope groups) is replaced in the store by another
//! school's, another result set's, an earlier version's or another group's object, by itself
//! truncated or with one bit flipped, or with another school's wrapped data key spliced in.
//! A fresh serve function (nothing cached) then refuses every read that opens it with an
//! error that reveals nothing, and never answers anything but the school's own rows; once the
//! object is put back, the read answers as before.

use reqwest::StatusCode;
use rollcall_core::synthetic;
use serde_json::Value;

use crate::support::Stack;

const A: &str = "9990201";
const B: &str = "9990202";
const PARTNER: &str = "tamper-partner";

/// Every scope of the catalogue, so that a read opens every group of the set.
fn every_scope() -> Vec<&'static str> {
    rollcall_core::catalogue::Catalogue::get()
        .scopes()
        .iter()
        .map(String::as_str)
        .collect()
}

/// The objects of `estab`'s `set` at its `n`th stored version (1 is the earliest), by group.
async fn version_objects(stack: &Stack, estab: &str, set: &str, n: usize) -> Vec<String> {
    let mut keys: Vec<String> = stack
        .objects_of(estab)
        .await
        .into_iter()
        .filter(|k| k.starts_with(&format!("{estab}/{set}/")))
        .collect();
    keys.sort();
    let mut prefixes: Vec<String> = keys
        .iter()
        .map(|k| k[..k.rfind('/').unwrap() + 1].to_owned())
        .collect();
    prefixes.dedup();
    let prefix = &prefixes[n - 1];
    keys.into_iter().filter(|k| k.starts_with(prefix)).collect()
}

fn group_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap()
}

/// The envelope's header (magic, wrapped key length, wrapped key) and the sealed rest.
fn split_envelope(bytes: &[u8]) -> (&[u8], &[u8]) {
    let len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
    bytes.split_at(8 + len)
}

struct Substitute {
    what: String,
    bytes: Vec<u8>,
}

async fn substitutes(stack: &Stack, target: &str) -> Vec<Substitute> {
    let get = |key: String| async move { stack.ports.objects.get(&key).await.unwrap() };
    let group = group_of(target);
    let ours = get(target.to_owned()).await;
    let theirs = version_objects(stack, B, "Students", 1).await;
    let same_group = |keys: &[String]| keys.iter().find(|k| group_of(k) == group).cloned();
    let earlier = version_objects(stack, A, "Students", 1).await;
    let current = version_objects(stack, A, "Students", 2).await;
    let other_set = version_objects(stack, A, "Staff", 1).await;
    let mut out = Vec::new();
    if let Some(key) = same_group(&theirs) {
        out.push(Substitute {
            what: format!("school {B}'s {group}"),
            bytes: get(key).await,
        });
    }
    if let Some(key) = same_group(&earlier) {
        out.push(Substitute {
            what: format!("version 1's {group}"),
            bytes: get(key).await,
        });
    }
    let another_group = current.iter().find(|k| group_of(k) != group).unwrap();
    out.push(Substitute {
        what: format!("group {} of the same version", group_of(another_group)),
        bytes: get(another_group.clone()).await,
    });
    let staff = same_group(&other_set).unwrap_or_else(|| other_set[0].clone());
    out.push(Substitute {
        what: format!("Staff's {}", group_of(&staff)),
        bytes: get(staff).await,
    });
    out.push(Substitute {
        what: "itself, truncated".into(),
        bytes: ours[..ours.len() / 2].to_vec(),
    });
    let mut flipped = ours.clone();
    let middle = split_envelope(&ours).0.len() + (ours.len() - split_envelope(&ours).0.len()) / 2;
    flipped[middle] ^= 0x10;
    out.push(Substitute {
        what: "itself, one bit flipped".into(),
        bytes: flipped,
    });
    let their_header = split_envelope(&get(theirs[0].clone()).await).0.to_vec();
    out.push(Substitute {
        what: format!("itself, with school {B}'s wrapped data key"),
        bytes: [their_header.as_slice(), split_envelope(&ours).1].concat(),
    });
    out
}

async fn tampered_objects_are_refused(mut stack: Stack) {
    let a = stack.school(A).await;
    let b = stack.school(B).await;
    let scopes = every_scope();
    let management = stack.partner(PARTNER, &scopes).await;
    let school_a = synthetic::school(A, 10, 1);
    let mut body = school_a.upload_body();
    stack.upload(&a.agent, &body).await.expect(StatusCode::OK);
    stack
        .upload(&b.agent, &synthetic::school(B, 10, 2).upload_body())
        .await
        .expect(StatusCode::OK);
    // A second version of A's Students, one pupil renamed.
    body["resultSets"]["Students"][0]["Forename"] = Value::from("Renamed");
    stack.upload(&a.agent, &body).await.expect(StatusCode::OK);
    stack
        .grant(&a, PARTNER, &scopes)
        .await
        .expect(StatusCode::OK);
    let token = stack.token(PARTNER, &management, A).await;
    let path = format!("/api/v1/School/{A}/Students");
    let original = stack.read(&token, &path).await.expect(StatusCode::OK);
    let b_names: Vec<String> = synthetic::school(B, 10, 2).upload_body()["resultSets"]["Students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["Surname"].as_str().unwrap().to_owned())
        .filter(|name| !original.to_string().contains(name.as_str()))
        .collect();

    let targets = version_objects(&stack, A, "Students", 2).await;
    assert!(targets.len() >= 3, "an index and groups: {targets:?}");
    let mut opened = Vec::new();
    for target in &targets {
        let kept = stack.ports.objects.get(target).await.unwrap();
        let mut outcomes = Vec::new();
        for substitute in substitutes(&stack, target).await {
            let what = format!("{} in place of {}", substitute.what, group_of(target));
            stack
                .ports
                .objects
                .put(target, substitute.bytes)
                .await
                .unwrap();
            stack.restart().await;
            let answer = stack.read(&token, &path).await;
            if answer.status == StatusCode::OK {
                // Only an object this read does not open can leave it unchanged.
                assert_eq!(answer.body, original, "{what}: answered otherwise");
            } else {
                answer.expect_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong inside rollcall",
                );
                assert!(answer.body.get("Students").is_none(), "{what}");
                let text = answer.body.to_string();
                assert!(!text.contains(B), "{what}: the answer names school {B}");
                assert!(
                    !b_names.iter().any(|name| text.contains(name.as_str())),
                    "{what}: the answer holds school {B}'s data"
                );
            }
            outcomes.push((what, answer.status));
            stack.ports.objects.put(target, kept.clone()).await.unwrap();
        }
        // An object the read opens refuses every substitute; one it does not open, none.
        let refused = outcomes
            .iter()
            .filter(|(_, s)| *s != StatusCode::OK)
            .count();
        assert!(
            refused == 0 || refused == outcomes.len(),
            "{}: some substitutes were taken: {outcomes:?}",
            group_of(target)
        );
        if refused > 0 {
            opened.push(group_of(target).to_owned());
        }
    }
    // The index and most groups are opened by a read of every released field (a group of
    // fields only an option or another endpoint answers is not).
    assert!(opened.iter().any(|g| g == "_index"), "{opened:?}");
    assert!(
        opened.len() * 4 >= targets.len() * 3,
        "only {opened:?} of {targets:?}"
    );
    stack.restart().await;
    let restored = stack.read(&token, &path).await.expect(StatusCode::OK);
    assert_eq!(restored, original, "put back, the objects answer as before");
}

#[tokio::test]
async fn tampered_or_substituted_objects_are_refused_locally() {
    tampered_objects_are_refused(Stack::start().await).await;
}

#[tokio::test]
async fn tampered_or_substituted_objects_are_refused_on_aws() {
    let Some(stack) = Stack::start_aws().await else {
        return;
    };
    tampered_objects_are_refused(stack).await;
}
