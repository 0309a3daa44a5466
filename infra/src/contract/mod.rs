//! Port contracts: each case a plain `async fn` over an adapter set's ports, written once
//! and run on every adapter set (SQLite and disk, DynamoDB, S3 and KMS on an emulator) by
//! [`contract_tests!`](crate::contract_tests) from one list, [`crate::contract_cases!`]. A
//! behaviour one adapter has and another lacks is a bug in that adapter, and so is a limit one
//! has and the other lacks.
//!
//! Behind the `testing` feature: the adapters' tests enable it, builds never do.

use std::sync::Arc;

use rollcall_core::agent_health::{HealthRecord, HealthReport, Outbox, ReportedSet};
use rollcall_core::envelope::KeyContext;
use rollcall_core::idempotency::{
    IDEMPOTENCY_LIFETIME, IdempotencyKey, IdempotencyRecord, IdempotencyState,
    MAX_STORED_ANSWER_BYTES, StoredAnswer,
};
use rollcall_core::model::{
    AccessEntry, Consent, Estab, Partner, PartnerId, Refused, School, Token, VersionRecord,
};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::{
    ControlStore, DataKeyGenerator, DataKeyUnwrapper, KeyError, LogPage, LogQuery, ObjectStore,
    PUBLICATION_CHUNK, Publication, StoreError,
};
use rollcall_core::scope::ScopeSet;
use rollcall_core::secret::KeyHash;
use rollcall_core::staging::{StagedState, StagedUpload};
use rollcall_core::task::{DELIVERED, OPEN, QUEUED, Task, TaskState};
use rollcall_core::timestamp::{Duration, Timestamp};

/// One adapter set's ports, as a contract case takes them.
pub struct Adapters {
    pub control: Arc<dyn ControlStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub key_generator: Arc<dyn DataKeyGenerator>,
    pub key_unwrapper: Arc<dyn DataKeyUnwrapper>,
}

/// Every contract case, listed once: `contract_cases!(m)` calls `m!` with the list, so
/// [`contract_tests!`](crate::contract_tests) makes a test of each for every adapter set.
/// Adding a case is a function below and one name here.
#[macro_export]
macro_rules! contract_cases {
    ($then:ident ! $args:tt) => {
        $then! { $args [
            object_store,
            key_service,
            schools,
            partners,
            consents,
            tokens,
            access_log,
            versions,
            publication_chunks,
            staged_uploads,
            idempotency_keys,
            agent_health,
            tasks,
            opt_outs,
        ] }
    };
}

/// Makes a test module per adapter set, each with a test per contract case. Each backend is
/// named with an async function in scope that opens a fresh set (`Option<Backend>`, `None`
/// when it is not available here, which that function reports), as docs.rs's
/// `backend_tests!` does:
///
/// ```ignore
/// rollcall_infra::contract_tests!(sqlite, dynamodb);
/// ```
#[macro_export]
macro_rules! contract_tests {
    ($($backend:ident),+ $(,)?) => {
        $( $crate::contract_cases!(contract_tests!{ @backend $backend }); )+
    };
    ({ @backend $backend:ident } [$($case:ident),+ $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(backend) = super::$backend().await else { return };
                    $crate::contract::$case(&backend.adapters).await;
                }
            )+
        }
    };
}

const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

pub async fn object_store(adapters: &Adapters) {
    let store = adapters.objects.as_ref();
    // Arrange / Act: two objects under one prefix, one elsewhere.
    store
        .put("1/Students/0000000001/a", b"one".to_vec())
        .await
        .unwrap();
    store
        .put("1/Students/0000000001/b", b"two".to_vec())
        .await
        .unwrap();
    store
        .put("2/Students/0000000001/a", b"other".to_vec())
        .await
        .unwrap();
    // Assert
    assert_eq!(store.get("1/Students/0000000001/a").await.unwrap(), b"one");
    assert_eq!(
        store.list("1/Students/").await.unwrap(),
        vec![
            "1/Students/0000000001/a".to_string(),
            "1/Students/0000000001/b".to_string()
        ]
    );
    assert!(matches!(
        store.get("1/Students/0000000001/zz").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .put("1/Students/0000000001/a", b"replaced".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.get("1/Students/0000000001/a").await.unwrap(),
        b"replaced"
    );
    store.delete("1/Students/0000000001/a").await.unwrap();
    store.delete("1/Students/0000000001/a").await.unwrap();
    assert!(matches!(
        store.get("1/Students/0000000001/a").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.list("1/").await.unwrap(),
        vec!["1/Students/0000000001/b".to_string()]
    );
    assert!(store.list("9/").await.unwrap().is_empty());
}

pub async fn key_service(adapters: &Adapters) {
    let (generator, unwrapper) = (
        adapters.key_generator.as_ref(),
        adapters.key_unwrapper.as_ref(),
    );
    let estab = Estab::parse("1000001").unwrap();
    let context = KeyContext::new(&estab, "Students");
    let key = generator.generate(&context).await.unwrap();
    let unwrapped = unwrapper.unwrap(&context, &key.wrapped).await.unwrap();
    assert_eq!(unwrapped.as_ref(), key.plaintext.as_ref());
    let other_school = KeyContext::new(&Estab::parse("1000002").unwrap(), "Students");
    assert!(matches!(
        unwrapper.unwrap(&other_school, &key.wrapped).await,
        Err(KeyError::Denied)
    ));
    let other_set = KeyContext::new(&estab, "Contacts");
    assert!(matches!(
        unwrapper.unwrap(&other_set, &key.wrapped).await,
        Err(KeyError::Denied)
    ));
    let second = generator.generate(&context).await.unwrap();
    assert_ne!(
        second.plaintext.as_ref(),
        key.plaintext.as_ref(),
        "every data key is fresh"
    );
}

fn school(estab: &str) -> School {
    School {
        estab: Estab::parse(estab).unwrap(),
        name: format!("School {estab}"),
        agent_key_hash: KeyHash::of(format!("agent-{estab}").as_bytes()),
        admin_key_hash: KeyHash::of(format!("admin-{estab}").as_bytes()),
        row_hash_key: vec![1, 2, 3],
        created_at: T0,
    }
}

fn scopes(names: &[&str]) -> ScopeSet {
    names.iter().map(|s| s.to_string()).collect()
}

/// Schools: created once, found by number and by each key hash (never the other key's).
pub async fn schools(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let a = school("2000001");
    store.insert_school(&a).await.unwrap();
    assert!(matches!(
        store.insert_school(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.school(&a.estab).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.school_by_agent_key(&a.agent_key_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.school_by_admin_key(&a.admin_key_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.school_by_agent_key(&a.admin_key_hash).await.unwrap(),
        None,
        "keys are not interchangeable"
    );
    let b = school("2000002");
    store.insert_school(&b).await.unwrap();
    assert_eq!(store.schools().await.unwrap(), vec![a.clone(), b.clone()]);

    // A new admin key: the school is found by it, and no longer by the old one.
    let rotated = School {
        admin_key_hash: KeyHash::of(b"a new admin key"),
        ..a.clone()
    };
    store
        .replace_admin_key(&rotated, &a.admin_key_hash)
        .await
        .unwrap();
    assert_eq!(store.school(&a.estab).await.unwrap(), Some(rotated.clone()));
    assert_eq!(
        store
            .school_by_admin_key(&rotated.admin_key_hash)
            .await
            .unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(
        store.school_by_admin_key(&a.admin_key_hash).await.unwrap(),
        None
    );
    // Replaced over a key that is no longer its own: refused, nothing changes.
    let again = School {
        admin_key_hash: KeyHash::of(b"a third key"),
        ..a.clone()
    };
    assert!(matches!(
        store.replace_admin_key(&again, &a.admin_key_hash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.school(&a.estab).await.unwrap(), Some(rotated));
    assert_eq!(
        store
            .school_by_admin_key(&again.admin_key_hash)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.school(&b.estab).await.unwrap(), Some(b));
}

/// Partners: created once, found by id and by management secret hash.
pub async fn partners(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let partner = Partner {
        id: PartnerId::parse("contract-partner").unwrap(),
        name: "Contract Partner".into(),
        requested_scopes: scopes(&["Student", "Contact"]),
        management_secret_hash: KeyHash::of(b"management"),
        created_at: T0,
    };
    store.insert_partner(&partner).await.unwrap();
    assert!(matches!(
        store.insert_partner(&partner).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.partner(&partner.id).await.unwrap(),
        Some(partner.clone())
    );
    assert_eq!(
        store
            .partner_by_management_secret(&partner.management_secret_hash)
            .await
            .unwrap(),
        Some(partner.clone())
    );
    assert!(store.partners().await.unwrap().contains(&partner));
}

/// Consents: created once, changed only from the version the writer read.
pub async fn consents(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000002").unwrap();
    let partner = PartnerId::parse("consent-partner").unwrap();
    let mut consent = Consent {
        estab: estab.clone(),
        partner: partner.clone(),
        scopes: scopes(&["Student"]),
        version: 1,
        granted_at: T0,
        updated_at: T0,
        end_date: None,
        secret_hash: KeyHash::of(b"secret"),
        secret_sealed: vec![9, 9],
        secret_generation: 1,
    };
    store.put_consent(&consent, None).await.unwrap();
    assert!(
        matches!(
            store.put_consent(&consent, None).await,
            Err(StoreError::Conflict(_))
        ),
        "create only once"
    );
    consent.version = 2;
    consent.scopes = scopes(&["StudentLite"]);
    assert!(
        matches!(
            store.put_consent(&consent, Some(7)).await,
            Err(StoreError::Conflict(_))
        ),
        "stale version refused"
    );
    store.put_consent(&consent, Some(1)).await.unwrap();
    assert_eq!(
        store.consent(&estab, &partner).await.unwrap(),
        Some(consent.clone())
    );
    assert_eq!(
        store.consents_of_school(&estab).await.unwrap(),
        vec![consent.clone()]
    );
    assert_eq!(
        store.consents_of_partner(&partner).await.unwrap(),
        vec![consent.clone()]
    );
}

/// Tokens: found by hash until the disposal of expired ones.
pub async fn tokens(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000002").unwrap();
    let partner = PartnerId::parse("consent-partner").unwrap();
    let token = Token {
        hash: KeyHash::of(b"token"),
        partner: partner.clone(),
        estab: estab.clone(),
        secret_generation: 1,
        issued_at: T0,
        expires_at: T0.plus(Duration::hours(1)),
    };
    store.insert_token(&token).await.unwrap();
    assert_eq!(store.token(&token.hash).await.unwrap(), Some(token.clone()));
    assert_eq!(store.delete_expired_tokens(T0).await.unwrap(), 0);
    assert_eq!(
        store
            .delete_expired_tokens(T0.plus(Duration::hours(2)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.token(&token.hash).await.unwrap(), None);
}

/// The access log: a school's entries newest first, answered and refused; one partner's since a time.
pub async fn access_log(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000002").unwrap();
    let partner = PartnerId::parse("consent-partner").unwrap();
    let entry = AccessEntry {
        estab: estab.clone(),
        partner: partner.clone(),
        at: T0,
        endpoint: "school.students".into(),
        scopes_used: scopes(&["Student"]),
        rows: 3,
        refused: None,
        // Who the answer included is kept as written.
        people: "s:1001~1003;c:A%2CB".into(),
    };
    store.append_access(&entry).await.unwrap();
    // A refused call is kept with its status and reason, and included nobody.
    let second = AccessEntry {
        rows: 0,
        scopes_used: scopes(&[]),
        people: String::new(),
        refused: Some(Refused::new(
            403,
            "Ethnicity of Students needs StudentDemographic",
        )),
        ..entry.clone()
    };
    store.append_access(&second).await.unwrap();
    assert_eq!(
        log(store, &estab, LogQuery::newest(10)).await,
        LogPage {
            entries: vec![second.clone(), entry.clone()],
            next: None
        }
    );
    let first = log(store, &estab, LogQuery::newest(1)).await;
    assert_eq!(first.entries, vec![second.clone()]);
    let rest = store
        .access_log(
            &estab,
            &LogQuery {
                cursor: first.next.clone(),
                ..LogQuery::newest(1)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest,
        LogPage {
            entries: vec![entry.clone()],
            next: None
        }
    );
    assert!(matches!(
        store
            .access_log(
                &estab,
                &LogQuery {
                    cursor: Some("not-a-cursor".into()),
                    ..LogQuery::newest(1)
                },
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    // One partner's entries since a time, newest first; another partner's are not among them.
    let other = AccessEntry {
        partner: PartnerId::parse("other-app").unwrap(),
        at: T0.plus(Duration::minutes(2)),
        ..entry.clone()
    };
    store.append_access(&other).await.unwrap();
    let later = AccessEntry {
        at: T0.plus(Duration::minutes(5)),
        rows: 5,
        ..entry.clone()
    };
    store.append_access(&later).await.unwrap();
    assert_eq!(
        store
            .partner_access(&estab, &partner, T0, 10)
            .await
            .unwrap(),
        vec![later.clone(), second.clone(), entry.clone()]
    );
    assert_eq!(
        store
            .partner_access(&estab, &partner, T0.plus(Duration::minutes(1)), 10)
            .await
            .unwrap(),
        vec![later.clone()]
    );
    assert_eq!(
        store.partner_access(&estab, &partner, T0, 2).await.unwrap(),
        vec![later.clone(), second.clone()]
    );

    // Filters: a partner, an endpoint in any case, a time window [from, to); paged by cursor.
    let query = |partner: Option<&PartnerId>, endpoint: Option<&str>, from, to| LogQuery {
        partner: partner.cloned(),
        endpoint: endpoint.map(str::to_owned),
        from,
        to,
        ..LogQuery::newest(10)
    };
    assert_eq!(
        entries(store, &estab, query(Some(&other.partner), None, None, None)).await,
        vec![other.clone()]
    );
    assert_eq!(
        entries(
            store,
            &estab,
            query(None, Some("SCHOOL.STUDENTS"), None, None)
        )
        .await,
        vec![later.clone(), other.clone(), second.clone(), entry.clone()]
    );
    assert!(
        entries(store, &estab, query(None, Some("school.staff"), None, None))
            .await
            .is_empty()
    );
    assert_eq!(
        entries(
            store,
            &estab,
            query(
                None,
                None,
                Some(T0.plus(Duration::minutes(2))),
                Some(T0.plus(Duration::minutes(5)))
            )
        )
        .await,
        vec![other.clone()]
    );
    assert_eq!(
        entries(
            store,
            &estab,
            query(
                Some(&partner),
                None,
                Some(T0),
                Some(T0.plus(Duration::minutes(1)))
            )
        )
        .await,
        vec![second.clone(), entry.clone()]
    );
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .access_log(
                &estab,
                &LogQuery {
                    cursor: cursor.clone(),
                    ..query(Some(&partner), None, None, None)
                }
                .with_limit(1),
            )
            .await
            .unwrap();
        walked.extend(page.entries);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(walked, vec![later, second, entry]);
    // Another school's log is its own.
    let elsewhere = Estab::parse("2000003").unwrap();
    assert!(
        store
            .access_log(&elsewhere, &LogQuery::newest(10))
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

/// A page of a school's access log (the store must answer).
async fn log(store: &dyn ControlStore, estab: &Estab, query: LogQuery) -> LogPage {
    store.access_log(estab, &query).await.unwrap()
}

/// The entries of [`log`].
async fn entries(store: &dyn ControlStore, estab: &Estab, query: LogQuery) -> Vec<AccessEntry> {
    log(store, estab, query).await.entries
}

fn version(estab: &Estab, result_set: &str, version: u64) -> VersionRecord {
    VersionRecord {
        estab: estab.clone(),
        result_set: result_set.into(),
        version,
        created_at: T0,
        confirmed_at: T0,
        superseded_at: None,
        rows: 10,
        groups: vec!["Student-StudentLite".into()],
        valid_until: T0.plus(Duration::hours(24)),
        upload: format!("u{version}"),
    }
}

pub async fn versions(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000003").unwrap();
    let v1 = version(&estab, "Students", 1);
    let c1 = version(&estab, "Contacts", 1);
    store
        .publish_versions(
            &[
                Publication {
                    record: v1.clone(),
                    replaces: None,
                },
                Publication {
                    record: c1.clone(),
                    replaces: None,
                },
            ],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        store.current_version(&estab, "Students").await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(
        current_of(store, &estab).await,
        vec![c1.clone(), v1.clone()],
        "a school's current versions"
    );

    // A publication whose expected predecessor is stale fails as a whole.
    let v2 = version(&estab, "Students", 2);
    let c2 = version(&estab, "Contacts", 2);
    let stale = store
        .publish_versions(
            &[
                Publication {
                    record: v2.clone(),
                    replaces: Some(1),
                },
                Publication {
                    record: c2,
                    replaces: None,
                },
            ],
            T0,
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))));
    assert_eq!(
        store.current_version(&estab, "Students").await.unwrap(),
        Some(v1.clone()),
        "nothing published"
    );

    let later = T0.plus(Duration::minutes(5));
    store
        .publish_versions(
            &[Publication {
                record: v2.clone(),
                replaces: Some(1),
            }],
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        store.current_version(&estab, "Students").await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        current_of(store, &estab).await,
        vec![c1.clone(), v2.clone()],
        "a superseded version is not current"
    );
    assert!(
        current_of(store, &Estab::parse("2000099").unwrap())
            .await
            .is_empty()
    );
    let all: Vec<VersionRecord> = store
        .all_versions()
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.estab == estab)
        .collect();
    let old = all
        .iter()
        .find(|v| v.result_set == "Students" && v.version == 1)
        .unwrap();
    assert_eq!(old.superseded_at, Some(later));
    assert_eq!(
        store.version_record(&estab, "Students", 1).await.unwrap(),
        Some(old.clone()),
        "a superseded version is still found by number"
    );
    assert_eq!(
        store.version_record(&estab, "Students", 9).await.unwrap(),
        None
    );

    let confirmed = T0.plus(Duration::hours(3));
    store
        .confirm_version(
            &estab,
            "Students",
            2,
            confirmed,
            confirmed.plus(Duration::hours(24)),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .current_version(&estab, "Students")
            .await
            .unwrap()
            .unwrap()
            .confirmed_at,
        confirmed
    );
    assert!(matches!(
        store
            .confirm_version(&estab, "Students", 1, confirmed, confirmed)
            .await,
        Err(StoreError::Conflict(_))
    ));

    store.delete_version(&estab, "Students", 1).await.unwrap();
    let left: Vec<u64> = store
        .all_versions()
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.estab == estab && v.result_set == "Students")
        .map(|v| v.version)
        .collect();
    assert_eq!(left, vec![2]);

    // Disposing of the current version leaves none current; the next upload starts afresh.
    store.delete_version(&estab, "Contacts", 1).await.unwrap();
    assert_eq!(
        store.current_version(&estab, "Contacts").await.unwrap(),
        None
    );
    assert_eq!(
        current_of(store, &estab)
            .await
            .iter()
            .map(|v| (v.result_set.as_str(), v.version))
            .collect::<Vec<_>>(),
        vec![("Students", 2)]
    );
    let fresh = version(&estab, "Contacts", 2);
    store
        .publish_versions(
            &[Publication {
                record: fresh.clone(),
                replaces: None,
            }],
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        store.current_version(&estab, "Contacts").await.unwrap(),
        Some(fresh)
    );
}

/// A school's current versions, by result set.
async fn current_of(store: &dyn ControlStore, estab: &Estab) -> Vec<VersionRecord> {
    let mut current = store.current_versions(estab).await.unwrap();
    current.sort_by(|a, b| a.result_set.cmp(&b.result_set));
    current
}

/// An upload of more result sets than one atomic step holds is published chunk by chunk, in
/// order, on every adapter: all of them when nothing races it; when a set of a later chunk
/// was replaced meanwhile, the chunks before it stay published and none of its own chunk is.
pub async fn publication_chunks(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000007").unwrap();
    let count = PUBLICATION_CHUNK + 7;
    let names: Vec<String> = (0..count).map(|i| format!("Set{i:02}")).collect();
    let first: Vec<Publication> = names
        .iter()
        .map(|name| Publication {
            record: version(&estab, name, 1),
            replaces: None,
        })
        .collect();

    // Act: more than one chunk, unraced.
    store.publish_versions(&first, T0).await.unwrap();

    // Assert: every set is current.
    for name in &names {
        let current = store.current_version(&estab, name).await.unwrap();
        assert_eq!(current.map(|r| r.version), Some(1), "{name}");
    }

    // Arrange: a second upload whose set in the second chunk expects a version that is gone.
    let raced = PUBLICATION_CHUNK + 2;
    let second: Vec<Publication> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Publication {
            record: version(&estab, name, 2),
            replaces: Some(if i == raced { 7 } else { 1 }),
        })
        .collect();

    // Act
    let outcome = store
        .publish_versions(&second, T0.plus(Duration::minutes(1)))
        .await;

    // Assert: the first chunk is published, the second not at all.
    assert!(
        matches!(outcome, Err(StoreError::Conflict(_))),
        "{outcome:?}"
    );
    for (i, name) in names.iter().enumerate() {
        let current = store.current_version(&estab, name).await.unwrap();
        let expected = if i < PUBLICATION_CHUNK { 2 } else { 1 };
        assert_eq!(current.map(|r| r.version), Some(expected), "{name}");
    }
}

pub async fn staged_uploads(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000004").unwrap();
    let upload = StagedUpload::new(estab.clone(), "00aa11".into(), 1234, T0);
    store.insert_staged_upload(&upload).await.unwrap();
    assert!(
        matches!(
            store.insert_staged_upload(&upload).await,
            Err(StoreError::Conflict(_))
        ),
        "an upload id is issued once"
    );
    assert_eq!(
        store.staged_upload(&estab, "00aa11").await.unwrap(),
        Some(upload.clone())
    );
    assert_eq!(store.staged_upload(&estab, "ffff").await.unwrap(), None);
    let other = Estab::parse("2000005").unwrap();
    assert_eq!(store.staged_upload(&other, "00aa11").await.unwrap(), None);

    // Act: claim it; a second claim (a redelivered event) loses; an unknown one is NotFound.
    let t1 = T0.plus(Duration::minutes(1));
    let claimed = store
        .claim_staged_upload(&estab, "00aa11", t1, T0)
        .await
        .unwrap();
    assert_eq!(claimed.state, StagedState::Ingesting { since: t1 });
    assert_eq!(claimed.content_length, 1234);
    assert!(matches!(
        store.claim_staged_upload(&estab, "00aa11", t1, T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.claim_staged_upload(&estab, "ffff", t1, T0).await,
        Err(StoreError::NotFound(_))
    ));
    // A claim older than the stale bound is taken over; the old claimant cannot finish.
    let t2 = T0.plus(Duration::minutes(30));
    store
        .claim_staged_upload(&estab, "00aa11", t2, t2.minus(Duration::minutes(15)))
        .await
        .unwrap();
    let stored = StagedState::Stored {
        result: serde_json::json!({"resultSets": {}}),
    };
    assert!(matches!(
        store
            .finish_staged_upload(&estab, "00aa11", t1, &stored)
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .finish_staged_upload(&estab, "00aa11", t2, &stored)
        .await
        .unwrap();
    let finished = store
        .staged_upload(&estab, "00aa11")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(finished.state, stored);
    assert!(
        matches!(
            store.claim_staged_upload(&estab, "00aa11", t2, t2).await,
            Err(StoreError::Conflict(_))
        ),
        "a finished upload is never ingested again"
    );

    // Disposal: nothing before expiry, the record at it.
    assert_eq!(
        store
            .delete_expired_staged_uploads(upload.expires_at.minus(Duration::millis(1)))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_expired_staged_uploads(upload.expires_at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.staged_upload(&estab, "00aa11").await.unwrap(), None);
}

/// Idempotency keys: one live claim per school and key; completed or released only by their
/// claimant; free again once released, expired or stale; disposed of at expiry.
pub async fn idempotency_keys(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000009").unwrap();
    let key = IdempotencyKey::parse("upload-2026-09-01:1").unwrap();
    let claim = |estab: &Estab, key: &IdempotencyKey, hash: &str, at: Timestamp| {
        IdempotencyRecord::claim(estab.clone(), key.clone(), hash.to_owned(), at)
    };
    let claim_of = |r: &IdempotencyRecord| r.claim_id().unwrap().to_owned();

    // Arrange / Act: a first claim; a second request's claim of the same key loses.
    let first = claim(&estab, &key, "hash-a", T0);
    store.claim_idempotency_key(&first, T0).await.unwrap();
    let second = claim(&estab, &key, "hash-a", T0.plus(Duration::seconds(1)));
    assert!(matches!(
        store.claim_idempotency_key(&second, T0).await,
        Err(StoreError::Conflict(_))
    ));
    // Assert: the first is held, in progress; the same key at another school is another key.
    assert_eq!(
        store.idempotency_record(&estab, &key).await.unwrap(),
        Some(first.clone())
    );
    let other_school = Estab::parse("2000010").unwrap();
    assert_eq!(
        store.idempotency_record(&other_school, &key).await.unwrap(),
        None
    );
    store
        .claim_idempotency_key(&claim(&other_school, &key, "hash-z", T0), T0)
        .await
        .unwrap();

    // Only the claimant completes; a completed key is never claimed or released again.
    let answer = StoredAnswer::new(
        200,
        serde_json::json!({"resultSets": {"Students": {"version": 1, "added": 3}}}),
    )
    .unwrap();
    assert!(matches!(
        store
            .complete_idempotency_key(&estab, &key, &claim_of(&second), &answer)
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .complete_idempotency_key(&estab, &key, &claim_of(&first), &answer)
        .await
        .unwrap();
    let completed = store
        .idempotency_record(&estab, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        completed.state,
        IdempotencyState::Completed {
            answer: answer.clone()
        }
    );
    assert_eq!(completed.request_hash, "hash-a");
    let later = T0.plus(Duration::hours(1));
    assert!(
        matches!(
            store
                .claim_idempotency_key(&claim(&estab, &key, "hash-a", later), later)
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a completed key is not taken over, however old"
    );
    assert!(matches!(
        store
            .release_idempotency_key(&estab, &key, &claim_of(&first))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .complete_idempotency_key(&estab, &key, &claim_of(&first), &answer)
            .await,
        Err(StoreError::Conflict(_))
    ));

    // A released key is free: it reads as none, and the next request claims it.
    let failed_key = IdempotencyKey::parse("failed").unwrap();
    let failed = claim(&estab, &failed_key, "hash-b", T0);
    store.claim_idempotency_key(&failed, T0).await.unwrap();
    let intruder = claim(&estab, &failed_key, "hash-b", T0);
    assert!(matches!(
        store
            .release_idempotency_key(&estab, &failed_key, &claim_of(&intruder))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .release_idempotency_key(&estab, &failed_key, &claim_of(&failed))
        .await
        .unwrap();
    store
        .release_idempotency_key(&estab, &failed_key, &claim_of(&failed))
        .await
        .unwrap();
    assert_eq!(
        store.idempotency_record(&estab, &failed_key).await.unwrap(),
        None
    );
    let retry = claim(&estab, &failed_key, "hash-c", T0.plus(Duration::minutes(1)));
    store.claim_idempotency_key(&retry, T0).await.unwrap();
    assert_eq!(
        store.idempotency_record(&estab, &failed_key).await.unwrap(),
        Some(retry.clone())
    );
    let unknown = IdempotencyKey::parse("never-used").unwrap();
    store
        .release_idempotency_key(&estab, &unknown, "0000")
        .await
        .unwrap();

    // A claim older than the stale bound is taken over; its old claimant cannot complete.
    let t_stale = T0.plus(Duration::minutes(30));
    let takeover = claim(&estab, &failed_key, "hash-c", t_stale);
    store
        .claim_idempotency_key(&takeover, t_stale.minus(Duration::minutes(5)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .complete_idempotency_key(&estab, &failed_key, &claim_of(&retry), &answer)
            .await,
        Err(StoreError::Conflict(_))
    ));

    // The largest answer kept round-trips on every adapter.
    let big_key = IdempotencyKey::parse("big").unwrap();
    let big = claim(&estab, &big_key, "hash-d", T0);
    store.claim_idempotency_key(&big, T0).await.unwrap();
    let filler = "w".repeat(MAX_STORED_ANSWER_BYTES - 64);
    let big_answer = StoredAnswer::new(201, serde_json::json!({ "warnings": [filler] })).unwrap();
    store
        .complete_idempotency_key(&estab, &big_key, &claim_of(&big), &big_answer)
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_record(&estab, &big_key)
            .await
            .unwrap()
            .unwrap()
            .state,
        IdempotencyState::Completed { answer: big_answer }
    );

    // An expired key is free again, whatever its state.
    let expiry = T0.plus(IDEMPOTENCY_LIFETIME);
    let reused = claim(&estab, &key, "hash-e", expiry);
    store.claim_idempotency_key(&reused, T0).await.unwrap();
    assert_eq!(
        store.idempotency_record(&estab, &key).await.unwrap(),
        Some(reused.clone())
    );

    // Disposal: nothing before expiry; at T0's expiry the records made at T0 (the other
    // school's and the big one); the rest at theirs, released ones included.
    assert_eq!(
        store
            .delete_expired_idempotency_keys(expiry.minus(Duration::millis(1)))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.delete_expired_idempotency_keys(expiry).await.unwrap(),
        2
    );
    assert_eq!(
        store.idempotency_record(&estab, &big_key).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .delete_expired_idempotency_keys(reused.expires_at)
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.idempotency_record(&estab, &key).await.unwrap(), None);
    assert_eq!(
        store.idempotency_record(&estab, &failed_key).await.unwrap(),
        None
    );
}

/// The agent's health: none until a report; each report replaces the one before; one
/// school's is never another's.
pub async fn agent_health(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000011").unwrap();
    assert_eq!(store.agent_health(&estab).await.unwrap(), None);
    let first = HealthRecord {
        estab: estab.clone(),
        received_at: T0,
        report: HealthReport {
            agent_version: "1.4.0".into(),
            os: "Windows Server 2022".into(),
            source_folder: "D:\\MIS\\exports".into(),
            last_run_start: Some(T0.minus(Duration::minutes(3))),
            last_run_end: Some(T0.minus(Duration::minutes(1))),
            last_success: None,
            last_error: Some("the MIS export folder is empty".into()),
            result_sets: vec![ReportedSet {
                name: "Students".into(),
                rows: 1200,
                sent_at: Some(T0.minus(Duration::minutes(2))),
            }],
            outbox: Outbox {
                pending: 2,
                results: 1,
                done: 40,
            },
        },
    };
    store.put_agent_health(&first).await.unwrap();
    assert_eq!(
        store.agent_health(&estab).await.unwrap(),
        Some(first.clone())
    );
    let second = HealthRecord {
        received_at: T0.plus(Duration::hours(1)),
        report: HealthReport {
            last_error: None,
            result_sets: Vec::new(),
            ..first.report.clone()
        },
        ..first.clone()
    };
    store.put_agent_health(&second).await.unwrap();
    assert_eq!(store.agent_health(&estab).await.unwrap(), Some(second));
    let other = Estab::parse("2000012").unwrap();
    assert_eq!(store.agent_health(&other).await.unwrap(), None);
}

pub async fn tasks(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000006").unwrap();
    let partner = PartnerId::parse("acme-app").unwrap();
    let first = Task::new(
        estab.clone(),
        Some(partner.clone()),
        "Writeback.Attendance",
        "WritebackAttendance",
        vec![1, 2, 3],
        T0,
    );
    // The school's own task: no partner, no scopes.
    let second = Task::new(
        estab.clone(),
        None,
        rollcall_core::task::REFRESH,
        "",
        vec![4],
        T0.plus(Duration::seconds(1)),
    );
    store.insert_task(&second).await.unwrap();
    store.insert_task(&first).await.unwrap();
    assert!(
        matches!(
            store.insert_task(&first).await,
            Err(StoreError::Conflict(_))
        ),
        "a tracking id is queued once"
    );
    assert_eq!(
        store.task(&estab, &first.id).await.unwrap(),
        Some(first.clone())
    );
    let elsewhere = Estab::parse("2000007").unwrap();
    assert_eq!(store.task(&elsewhere, &first.id).await.unwrap(), None);
    assert_eq!(
        store.open_tasks(&estab).await.unwrap(),
        vec![first.clone(), second.clone()],
        "oldest first"
    );

    // Delivered, then finished; a second report loses; a finished task is no longer open.
    let t1 = T0.plus(Duration::minutes(1));
    let delivered = TaskState::Delivered { at: t1 };
    store
        .update_task(&estab, &first.id, &[QUEUED], &delivered)
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_task(&estab, &first.id, &[QUEUED], &delivered)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let done = TaskState::Succeeded {
        at: t1,
        result: serde_json::json!([{"IncidentId": 1, "ActualId": 1811}]),
    };
    store
        .update_task(&estab, &first.id, &OPEN, &done)
        .await
        .unwrap();
    assert!(matches!(
        store.update_task(&estab, &first.id, &OPEN, &done).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .update_task(&estab, "20990101000000.00", &[DELIVERED], &done)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.task(&estab, &first.id).await.unwrap().unwrap().state,
        done
    );
    assert_eq!(
        store.open_tasks(&estab).await.unwrap(),
        vec![second.clone()]
    );

    // Disposal at expiry.
    assert_eq!(store.delete_expired_tasks(T0).await.unwrap(), 0);
    assert_eq!(
        store.delete_expired_tasks(second.expires_at).await.unwrap(),
        2
    );
    assert_eq!(store.task(&estab, &first.id).await.unwrap(), None);
}

pub async fn opt_outs(adapters: &Adapters) {
    let store = adapters.control.as_ref();
    let estab = Estab::parse("2000008").unwrap();
    let partner = PartnerId::parse("acme-app").unwrap();
    assert_eq!(store.opt_outs(&estab, &partner).await.unwrap(), None);
    let record = OptOutRecord {
        estab: estab.clone(),
        partner: partner.clone(),
        people: OptOuts {
            students: ["7".to_owned(), "9".to_owned()].into(),
            staff: ["12".to_owned()].into(),
            contacts: Default::default(),
        },
        updated_at: T0,
        version: 1,
    };
    store.put_opt_outs(&record, None).await.unwrap();
    // Written once only as the first: a second first write finds it there.
    assert!(matches!(
        store.put_opt_outs(&record, None).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.opt_outs(&estab, &partner).await.unwrap(),
        Some(record.clone())
    );
    let other = PartnerId::parse("other-app").unwrap();
    assert_eq!(store.opt_outs(&estab, &other).await.unwrap(), None);
    let replaced = OptOutRecord {
        people: OptOuts::default(),
        updated_at: T0.plus(Duration::minutes(1)),
        version: 2,
        ..record.clone()
    };
    store.put_opt_outs(&replaced, Some(1)).await.unwrap();
    // A change made from version 1 while version 2 is stored is refused and changes nothing.
    let stale = OptOutRecord {
        version: 2,
        ..record.clone()
    };
    assert!(matches!(
        store.put_opt_outs(&stale, Some(1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.opt_outs(&estab, &partner).await.unwrap(),
        Some(replaced)
    );
}
