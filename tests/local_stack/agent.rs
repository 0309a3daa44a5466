//! The school agent's uploader against the local stack (large extracts: `staged.rs`).

use rollcall_core::synthetic;

use crate::support::Stack;

#[tokio::test]
async fn the_agent_uploads_a_small_extract_directly() {
    let stack = Stack::start().await;
    let school = stack.school("9990001").await;
    let data = synthetic::school("9990001", 40, 2);

    let answers = rollcall_agent::upload(
        &reqwest::Client::new(),
        &stack.base,
        &school.agent,
        &data.upload_body(),
    )
    .await
    .unwrap();

    assert_eq!(answers.len(), 1);
    for (name, rows) in &data.result_sets {
        assert_eq!(
            answers[0]["resultSets"][name]["added"],
            rows.len() as u64,
            "{name}"
        );
    }
    assert!(stack.staged_objects().await.is_empty());
}

#[tokio::test]
async fn the_agent_reports_a_refusal_with_rollcall_message() {
    let stack = Stack::start().await;
    let extract = serde_json::json!({"resultSets": {"Students": []}});
    let error = rollcall_agent::upload(
        &reqwest::Client::new(),
        &stack.base,
        "rca_unknown",
        &extract,
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("agent key is not registered"),
        "{error}"
    );
}

mod runs {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use reqwest::StatusCode;
    use rollcall_agent::config::{Config, state_path};
    use rollcall_agent::run::{Options, Outcome, run};
    use rollcall_agent::state::State;
    use rollcall_agent::status::status;
    use rollcall_agent::{AgentError, Server};
    use rollcall_core::synthetic;
    use serde_json::json;

    use crate::support::Stack;

    const ESTAB: &str = "9990041";
    const STUDENTS: &str = "Id,Forename,Surname,YearGroup\n\
        1,Zoë,O'Neill,Year 7\n\
        2,\"Ann, Marie\",Nowak,Year 8\n";

    struct Agent {
        dir: tempfile::TempDir,
        config_path: PathBuf,
        config: Config,
        server: Server,
    }

    impl Agent {
        fn new(base: &str, key: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let source = dir.path().join("exports");
            std::fs::create_dir(&source).unwrap();
            std::fs::write(source.join("Students.csv"), STUDENTS).unwrap();
            std::fs::write(
                source.join("AttendCodes.json"),
                json!([{"Id": "1", "Mark": "/", "Description": "Present (AM)"}]).to_string(),
            )
            .unwrap();
            std::fs::write(
                source.join("Staff.json"),
                json!({"Staff": [{"Id": "5", "Surname": "Abara", "StaffCode": "ABA"}]}).to_string(),
            )
            .unwrap();
            let config_path = dir.path().join("rollcall-agent.toml");
            let config = Config {
                url: base.to_owned(),
                key: key.to_owned(),
                source,
                estab: Some(ESTAB.to_owned()),
                outbox: None,
            };
            config.write(&config_path).unwrap();
            let mut server = Server::new(base, key, Duration::from_secs(5));
            server.first_pause = Duration::from_millis(20);
            Self {
                dir,
                config_path,
                config,
                server,
            }
        }

        fn source(&self) -> &Path {
            &self.config.source
        }

        async fn run(&self, options: Options) -> Result<(Outcome, String), AgentError> {
            let mut out = Vec::new();
            let outcome = run(
                &self.config_path,
                &self.config,
                &self.server,
                options,
                &mut out,
            )
            .await?;
            Ok((outcome, String::from_utf8(out).unwrap()))
        }

        fn state(&self) -> State {
            State::load(&state_path(&self.config_path)).unwrap()
        }
    }

    fn sent(outcome: &Outcome) -> Vec<&str> {
        outcome.sent.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[tokio::test]
    async fn a_run_uploads_what_changed_and_only_that() {
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let agent = Agent::new(&stack.base, &school.agent);

        let (first, _) = agent.run(Options::default()).await.unwrap();
        assert_eq!(sent(&first), ["AttendCodes", "Staff", "Students"]);
        let (second, _) = agent.run(Options::default()).await.unwrap();
        assert!(second.sent.is_empty(), "{:?}", second.sent);
        assert_eq!(second.unchanged.len(), 3);

        let changed = STUDENTS.replace("Nowak", "Nowak-Smith");
        std::fs::write(agent.source().join("Students.csv"), changed).unwrap();
        let (dry, printed) = agent
            .run(Options {
                dry_run: true,
                ..Options::default()
            })
            .await
            .unwrap();
        assert_eq!(sent(&dry), ["Students"]);
        assert!(
            printed.contains("0 added, 1 changed, 0 deleted"),
            "{printed}"
        );
        let (third, _) = agent.run(Options::default()).await.unwrap();
        assert_eq!(sent(&third), ["Students"]);

        let partner = stack.partner("agent-reader", &["Student"]).await;
        stack
            .grant(&school, "agent-reader", &["Student"])
            .await
            .expect(StatusCode::OK);
        let token = stack.token("agent-reader", &partner, ESTAB).await;
        let pupils = stack
            .read(&token, &format!("/api/v1/School/{ESTAB}/Students/2"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(pupils["Students"][0]["Surname"], "Nowak-Smith");
        assert_eq!(pupils["Students"][0]["Forename"], "Ann, Marie");

        let health = stack
            .send(
                reqwest::Method::GET,
                "/admin/v1/agent",
                Some(&format!("Bearer {}", school.admin)),
                None,
            )
            .await
            .expect(StatusCode::OK);
        assert_eq!(health["silent"], false, "{health}");
        assert_eq!(health["report"]["agentVersion"], "0.1.0");
        let reported: Vec<&str> = health["report"]["resultSets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(reported, ["AttendCodes", "Staff", "Students"], "{health}");

        let (full, _) = agent
            .run(Options {
                dry_run: false,
                full: true,
                progress: true,
            })
            .await
            .unwrap();
        assert_eq!(full.sent.len(), 3);
        assert!(agent.state().runs.len() >= 4);
        drop(agent.dir);
    }

    async fn admin(
        stack: &Stack,
        admin: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> crate::support::Answer {
        stack
            .send(
                method,
                path,
                Some(&format!("Bearer {admin}")),
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
    }

    #[tokio::test]
    async fn a_refresh_the_school_asks_for_is_sent_on_the_agents_next_run() {
        use reqwest::Method;
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let agent = Agent::new(&stack.base, &school.agent);
        agent.run(Options::default()).await.unwrap();

        // One refresh, asked twice: the second answers the first.
        let refresh = |sets: serde_json::Value| {
            admin(
                &stack,
                &school.admin,
                Method::POST,
                "/admin/v1/refresh",
                Some(json!({ "resultSets": sets })),
            )
        };
        let first = refresh(json!(["Students"]))
            .await
            .expect(StatusCode::ACCEPTED);
        let again = refresh(json!(["Students"])).await.expect(StatusCode::OK);
        assert_eq!(again["task"], first["task"]);
        assert_eq!(again["deduplicated"], true);
        // A wider one replaces the waiting one and covers both.
        let wider = refresh(json!(["Staff"])).await.expect(StatusCode::ACCEPTED);
        assert_eq!(wider["resultSets"], json!(["Staff", "Students"]));
        let view = admin(&stack, &school.admin, Method::GET, "/admin/v1/agent", None)
            .await
            .expect(StatusCode::OK);
        let open: Vec<&serde_json::Value> =
            view["openRefreshes"].as_array().unwrap().iter().collect();
        assert_eq!(open.len(), 1, "{view}");
        assert_eq!(open[0]["task"], wider["task"]);
        // A set the agent does not send is refused, and nothing is queued.
        refresh(json!(["Students", "Homework"])).await.expect_error(
            StatusCode::BAD_REQUEST,
            "`Homework` is not a result set the agent sends",
        );

        // Act: the folder has not changed, yet the refreshed sets are sent again.
        let (outcome, _) = agent.run(Options::default()).await.unwrap();

        // Assert
        assert_eq!(sent(&outcome), ["Staff", "Students"]);
        assert_eq!(outcome.unchanged, ["AttendCodes"]);
        let view = admin(&stack, &school.admin, Method::GET, "/admin/v1/agent", None)
            .await
            .expect(StatusCode::OK);
        assert_eq!(view["openRefreshes"], json!([]), "{view}");
        let (next, _) = agent.run(Options::default()).await.unwrap();
        assert!(next.sent.is_empty(), "done once: {:?}", next.sent);

        // A refresh of a set the MIS export lacks fails and says so; everything else is sent.
        refresh(json!(["Contacts"]))
            .await
            .expect(StatusCode::ACCEPTED);
        let (outcome, _) = agent.run(Options::default()).await.unwrap();
        assert!(outcome.sent.is_empty());
        let all = refresh(json!([])).await.expect(StatusCode::ACCEPTED);
        assert_eq!(all["resultSets"], "all");
        let (outcome, _) = agent.run(Options::default()).await.unwrap();
        assert_eq!(sent(&outcome), ["AttendCodes", "Staff", "Students"]);
        drop(agent.dir);
    }

    #[tokio::test]
    async fn status_shows_what_the_agent_recorded_and_what_rollcall_holds() {
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let agent = Agent::new(&stack.base, &school.agent);
        agent.run(Options::default()).await.unwrap();
        // Another upload (a script) replaces the agent's Staff.
        stack
            .upload(
                &school.agent,
                &json!({"resultSets": {"Staff": [{"Id": "6", "Surname": "Bell"}]}}),
            )
            .await
            .expect(StatusCode::OK);

        let mut out = Vec::new();
        status(&agent.config_path, &agent.config, &agent.server, &mut out)
            .await
            .unwrap();
        let printed = String::from_utf8(out).unwrap();

        assert!(printed.contains(&format!("school: {ESTAB}")), "{printed}");
        assert!(printed.contains("ok: 3 sent"), "{printed}");
        assert!(
            printed.contains(&format!("rollcall holds for school {ESTAB}: 3 result sets")),
            "{printed}"
        );
        assert!(printed.contains("Students: version 1, 2 rows"), "{printed}");
        assert!(
            printed.contains("Staff: version 2, 1 rows")
                && printed.contains("the agent last confirmed version 1"),
            "{printed}"
        );

        // Unreachable, the agent's own record still prints.
        let offline = Server::new(
            "http://127.0.0.1:9",
            &school.agent,
            Duration::from_millis(50),
        );
        let mut out = Vec::new();
        status(&agent.config_path, &agent.config, &offline, &mut out)
            .await
            .unwrap();
        let printed = String::from_utf8(out).unwrap();
        assert!(printed.contains("ok: 3 sent"), "{printed}");
        assert!(
            printed.contains("rollcall could not say what it holds"),
            "{printed}"
        );
    }

    /// The stack's files, less the agent's health report (a failed run reports its error).
    fn without_health(
        snapshot: std::collections::BTreeMap<PathBuf, Vec<u8>>,
    ) -> std::collections::BTreeMap<PathBuf, String> {
        snapshot
            .into_iter()
            .map(|(path, bytes)| {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let kept: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with("agent_health:"))
                    .collect();
                (path, kept.join("\n"))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_refused_export_uploads_nothing_and_says_where() {
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let agent = Agent::new(&stack.base, &school.agent);
        let good_ctf = synthetic::ctf::ctf(&synthetic::school(ESTAB, 3, 5), 25, "999", "0041");
        let broken_ctf = good_ctf.replacen("</Surname>", "</Surnam>", 1);
        let foreign_ctf =
            synthetic::ctf::ctf(&synthetic::school("8881234", 3, 5), 25, "888", "1234");
        let nested =
            json!([{"Id": "1", "Forename": "Ann"}, {"Id": "2", "Forename": {"first": "Bob"}}]);
        // The CTF files give the pupils.
        std::fs::remove_file(agent.source().join("Students.csv")).unwrap();
        let cases = [
            (
                "Contacts.csv",
                "Id,Forename\n1,Ann\n2,\"Bob\n3,Cy\n".to_owned(),
                vec!["Contacts.csv: line 3"],
            ),
            (
                "year7.xml",
                broken_ctf,
                vec!["year7.xml", "line ", "Surnam"],
            ),
            (
                "Contacts.json",
                nested.to_string(),
                vec!["Contacts.json: row 2", "Forename"],
            ),
            (
                "from-elm.xml",
                foreign_ctf,
                vec!["from-elm.xml: Header/SourceSchool: written by school 8881234"],
            ),
        ];
        for (file, text, expected) in cases {
            std::fs::write(agent.source().join(file), text).unwrap();
            let before = stack.snapshot();
            let error = agent.run(Options::default()).await.unwrap_err();
            assert_eq!(error.exit_code(), 1, "{file}");
            let message = error.to_string();
            for part in expected {
                assert!(message.contains(part), "{file}: {message}");
            }
            assert_eq!(
                without_health(stack.snapshot()),
                without_health(before),
                "{file}: nothing may be stored"
            );
            assert!(agent.state().sets.is_empty(), "{file}");
            std::fs::remove_file(agent.source().join(file)).unwrap();
        }
        std::fs::write(agent.source().join("year7.xml"), good_ctf).unwrap();
        // With the bad files gone, the same folder uploads.
        agent.run(Options::default()).await.unwrap();
        assert!(!agent.state().sets.is_empty());
    }

    /// The agent stopped after rollcall stored an upload but before the state recorded it:
    /// the next run sends it again under the same key, rollcall answers its first answer
    /// without storing a second version, and the state records it.
    #[tokio::test]
    async fn an_upload_the_agent_did_not_record_is_confirmed_not_stored_twice() {
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let agent = Agent::new(&stack.base, &school.agent);
        let extract = rollcall_agent::sources::read_folder(agent.source()).unwrap();
        let names: Vec<String> = extract.sets.keys().cloned().collect();
        let key = "rc-crashed-run-1";
        let body = serde_json::to_vec(&extract.body_of(&names)).unwrap();
        let first = rollcall_agent::upload_body(&agent.server, body, Some(key))
            .await
            .unwrap();
        assert!(!first.replayed);
        let mut state = State::default();
        state.pending.push(rollcall_agent::state::Pending {
            idempotency_key: key.to_owned(),
            sets: extract
                .sets
                .iter()
                .map(|(name, set)| (name.clone(), rollcall_agent::state::content_hash(&set.rows)))
                .collect(),
            started_at: "2026-12-06T09:00:00Z".into(),
        });
        state.save(&state_path(&agent.config_path)).unwrap();
        let stored = stack.snapshot();

        let (outcome, printed) = agent.run(Options::default()).await.unwrap();
        assert!(printed.contains("left unconfirmed"), "{printed}");
        assert!(
            printed.contains("), confirmed"),
            "the key was replayed: {printed}"
        );
        assert!(outcome.sent.is_empty(), "{:?}", outcome.sent);
        let after = agent.state();
        assert!(after.pending.is_empty());
        assert_eq!(after.sets.len(), 3);
        for (name, set) in &after.sets {
            assert_eq!(
                set.version, first.body["resultSets"][name]["version"],
                "{name}"
            );
        }
        let versions = |snapshot: &std::collections::BTreeMap<PathBuf, Vec<u8>>| {
            snapshot
                .keys()
                .filter(|p| p.to_string_lossy().contains("objects"))
                .count()
        };
        assert_eq!(
            versions(&stack.snapshot()),
            versions(&stored),
            "no second version"
        );
    }

    #[tokio::test]
    async fn init_checks_the_key_and_names_the_school() {
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollcall-agent.toml");
        let wrong = rollcall_agent::setup::init(
            stack.base.clone(),
            "rca_not_a_key".into(),
            dir.path().to_owned(),
            &path,
        )
        .await
        .unwrap_err();
        assert_eq!(wrong.exit_code(), 2);
        assert!(
            wrong.to_string().contains("does not know this agent key"),
            "{wrong}"
        );
        assert!(
            !path.exists(),
            "no configuration is written for a wrong key"
        );
        let named = rollcall_agent::setup::init(
            stack.base.clone(),
            school.agent.clone(),
            dir.path().to_owned(),
            &path,
        )
        .await
        .unwrap();
        assert!(named.ends_with(&format!("({ESTAB})")), "{named}");
        assert_eq!(Config::load(&path).unwrap().key, school.agent);
    }

    #[tokio::test]
    async fn a_dry_run_calls_nothing() {
        // Nothing listens on port 9 of the loopback.
        let agent = Agent::new("http://127.0.0.1:9", "rca_nothing");
        let (outcome, printed) = agent
            .run(Options {
                dry_run: true,
                ..Options::default()
            })
            .await
            .unwrap();
        assert_eq!(outcome.sent.len(), 3);
        assert!(
            printed.contains("would send Students: 2 rows (2 added"),
            "{printed}"
        );
        let error = agent.run(Options::default()).await.unwrap_err();
        assert_eq!(error.exit_code(), 3, "{error}");
    }
}

mod transfers {
    use std::time::Duration;

    use reqwest::StatusCode;
    use rollcall_agent::Server;
    use rollcall_agent::config::Config;
    use rollcall_agent::run::{Options, run};
    use rollcall_agent::sources::ctf::read_ctf;
    use rollcall_core::synthetic;
    use serde_json::{Value, json};

    use crate::support::Stack;

    const ESTAB: &str = "9990042";

    /// Every pupil's and contact's fields as the partner API answers them, keyed by id.
    async fn served(stack: &Stack, token: &str, path: &str, set: &str) -> Vec<Value> {
        let body = stack
            .read(
                token,
                &format!("/api/v1/School/{ESTAB}/{path}?pageSize=2000"),
            )
            .await
            .expect(StatusCode::OK);
        body[set].as_array().unwrap().clone()
    }

    #[tokio::test]
    async fn a_ctf_24_export_reads_back_equal_through_the_partner_api() {
        round_trip(24).await;
    }

    #[tokio::test]
    async fn a_ctf_25_export_reads_back_equal_through_the_partner_api() {
        round_trip(25).await;
    }

    /// A folder holding a CTF of 620 pupils, a CSV and a JSON export: one run uploads all of
    /// it, a second nothing; every pupil's and contact's details read back equal the file's.
    async fn round_trip(version: u32) {
        let stack = Stack::start().await;
        let school = stack.school(ESTAB).await;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("exports");
        std::fs::create_dir(&source).unwrap();
        let generated = synthetic::school(ESTAB, 620, 17);
        let xml = synthetic::ctf::ctf(&generated, version, "999", "0042");
        assert!(xml.contains(if version < 25 { "<Gender>" } else { "<Sex>" }));
        std::fs::write(source.join("year-all.xml"), xml).unwrap();
        std::fs::write(
            source.join("AttendCodes.csv"),
            "Id,Mark,Description\n1,/,Present\n",
        )
        .unwrap();
        std::fs::write(
            source.join("Staff.json"),
            json!([{"Id": "5", "Surname": "Abara"}]).to_string(),
        )
        .unwrap();
        let config_path = dir.path().join("rollcall-agent.toml");
        let config = Config {
            url: stack.base.clone(),
            key: school.agent.clone(),
            source: source.clone(),
            estab: Some(ESTAB.to_owned()),
            outbox: None,
        };
        let server = Server::new(&stack.base, &school.agent, Duration::from_secs(5));
        let mut out = Vec::new();
        let first = run(&config_path, &config, &server, Options::default(), &mut out)
            .await
            .unwrap();
        let names: Vec<&str> = first.sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "AttendCodes",
                "Contacts",
                "Staff",
                "StudentContacts",
                "Students"
            ]
        );
        let second = run(&config_path, &config, &server, Options::default(), &mut out)
            .await
            .unwrap();
        assert!(second.sent.is_empty());

        let file = std::fs::File::open(source.join("year-all.xml")).unwrap();
        let read = read_ctf(&source.join("year-all.xml"), std::io::BufReader::new(file)).unwrap();
        let scopes = ["Student", "StudentExtended", "UPN", "Contact"];
        let partner = stack.partner("ctf-reader", &scopes).await;
        stack
            .grant(&school, "ctf-reader", &scopes)
            .await
            .expect(StatusCode::OK);
        let token = stack.token("ctf-reader", &partner, ESTAB).await;
        for (path, set, rows, fields) in [
            (
                "Students",
                "Students",
                &read.students,
                &[
                    "UPN",
                    "LegalForename",
                    "LegalSurname",
                    "Forename",
                    "Surname",
                    "DateOfBirth",
                    "Gender",
                ][..],
            ),
            (
                "Contacts",
                "Contacts",
                &read.contacts,
                &["Title", "Forename", "Surname"][..],
            ),
            (
                "StudentContacts",
                "StudentContacts",
                &read.student_contacts,
                &["StudentId", "ContactId", "Priority", "ParResp"][..],
            ),
        ] {
            let answered = served(&stack, &token, path, set).await;
            assert_eq!(answered.len(), rows.len(), "{set}");
            let by_id: std::collections::HashMap<&str, &Value> = answered
                .iter()
                .map(|r| (r["Id"].as_str().unwrap(), r))
                .collect();
            for row in rows {
                let id = row["Id"].as_str().unwrap();
                for field in fields {
                    let text = |v: &Value| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    assert_eq!(
                        text(&by_id[id][*field]),
                        text(row.get(*field).unwrap_or(&Value::Null)),
                        "{set} {id}.{field}"
                    );
                }
            }
        }
        assert!(read.students.len() == 620);

        // One CSV cell changed: exactly that result set goes, and partners read the change.
        std::fs::write(
            source.join("AttendCodes.csv"),
            "Id,Mark,Description\n1,/,Present (AM)\n",
        )
        .unwrap();
        let third = run(&config_path, &config, &server, Options::default(), &mut out)
            .await
            .unwrap();
        let names: Vec<&str> = third.sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["AttendCodes"]);
        let partner = stack.partner("codes-reader", &["Attendance"]).await;
        stack
            .grant(&school, "codes-reader", &["Attendance"])
            .await
            .expect(StatusCode::OK);
        let token = stack.token("codes-reader", &partner, ESTAB).await;
        let codes = served(&stack, &token, "AttendanceCodes", "AttendCodes").await;
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0]["Description"], "Present (AM)");
    }
}

mod retries {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use rollcall_agent::{AgentError, Server};

    /// A server whose `/flaky` answers 503 twice then 200, and `/refuses` always 422.
    async fn server(calls: Arc<AtomicUsize>) -> String {
        let flaky = calls.clone();
        let refused = calls;
        let app = Router::new()
            .route(
                "/flaky",
                post(move || {
                    let n = flaky.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n < 2 {
                            (StatusCode::SERVICE_UNAVAILABLE, "{}".to_owned())
                        } else {
                            (StatusCode::OK, r#"{"ok": true}"#.to_owned())
                        }
                    }
                }),
            )
            .route(
                "/refuses",
                post(move || {
                    refused.fetch_add(1, Ordering::SeqCst);
                    async {
                        (
                            StatusCode::UNPROCESSABLE_ENTITY,
                            r#"{"ExceptionMessage": "Students[0] has no `Id`"}"#.to_owned(),
                        )
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_refusals_are_not() {
        let calls = Arc::new(AtomicUsize::new(0));
        let base = server(calls.clone()).await;
        let mut agent = Server::new(&base, "rca_key", Duration::from_secs(10));
        agent.first_pause = Duration::from_millis(10);
        let answer = agent
            .call("the extract", |c| c.post(agent.url("/flaky")))
            .await
            .unwrap();
        assert_eq!(answer.body["ok"], true);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "two 503s, then the 200");

        calls.store(0, Ordering::SeqCst);
        let error = agent
            .call("the extract", |c| c.post(agent.url("/refuses")))
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 422 is not retried");
        assert!(matches!(error, AgentError::Refused { .. }), "{error}");
        assert!(error.to_string().contains("has no `Id`"), "{error}");
        assert_eq!(error.exit_code(), 1);

        calls.store(0, Ordering::SeqCst);
        agent.max_wait = Duration::from_millis(15);
        let error = agent
            .call("the extract", |c| c.post(agent.url("/flaky")))
            .await
            .unwrap_err();
        assert_eq!(error.exit_code(), 3, "{error}");
    }
}
