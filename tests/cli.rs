//! The operator's commands as an operator runs them: the `rollcall` binary.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn rollcall(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("ROLLCALL_DATA_DIR");
    command
}

fn run(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = rollcall(data_dir).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The value printed after `label` on its own line.
fn printed<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {stdout}"))
        .trim()
}

#[test]
fn school_and_partner_add_print_their_secrets_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(
        dir.path(),
        &[
            "school",
            "add",
            "--estab",
            "9992001",
            "--name",
            "St Mary's C of E",
        ],
    );
    assert!(ok, "{err}");
    assert!(printed(&out, "agent key (for the school's agent):").starts_with("rca_"));
    assert!(printed(&out, "admin key (for the school's data controller):").starts_with("rcs_"));

    let (ok, _, err) = run(
        dir.path(),
        &["school", "add", "--estab", "9992001", "--name", "Again"],
    );
    assert!(!ok);
    assert!(
        err.contains("school 9992001 is already registered"),
        "{err}"
    );

    let (ok, out, err) = run(
        dir.path(),
        &[
            "partner",
            "add",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--scopes",
            "Student,Contact",
        ],
    );
    assert!(ok, "{err}");
    assert!(printed(&out, "management secret:").starts_with("rcm_"));

    let (ok, _, err) = run(
        dir.path(),
        &[
            "partner", "add", "--id", "other", "--name", "Other", "--scopes", "Pupils",
        ],
    );
    assert!(!ok);
    assert!(err.contains("`Pupils` is not a scope"), "{err}");

    let (ok, out, err) = run(dir.path(), &["purge"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["objectsDeleted"], 0);
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rollcall dev --demo --port 0` seeds the demo and serves it; `demo.json` is enough to drive
/// it as a partner.
#[tokio::test(flavor = "multi_thread")]
async fn dev_demo_serves_the_seeded_school_to_its_partner() {
    demo_serves(&["dev", "--demo", "--port", "0"]).await;
}

/// The same over the AWS adapters, on fresh resources `--aws --endpoint-url` creates on the
/// emulator.
#[tokio::test(flavor = "multi_thread")]
async fn dev_demo_runs_on_the_aws_adapters() {
    let Some(endpoint) = rollcall_infra::testing::emulator_endpoint() else {
        return;
    };
    demo_serves(&[
        "dev",
        "--demo",
        "--port",
        "0",
        "--aws",
        "--endpoint-url",
        &endpoint,
    ])
    .await;
}

async fn demo_serves(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let child = rollcall(dir.path())
        .args(args)
        .env_remove("ROLLCALL_TABLE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let demo_file = dir.path().join("demo.json");
    let started = Instant::now();
    let demo: Value = loop {
        if let Some(demo) = std::fs::read(&demo_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        {
            break demo;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "demo.json never appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for key in [
        "base_url",
        "estab",
        "partner",
        "password",
        "management_secret",
        "agent_key",
        "admin_key",
        "scopes",
    ] {
        assert!(demo.get(key).is_some(), "demo.json lacks {key}");
    }
    let base = demo["base_url"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    let client = reqwest::Client::new();
    let estab = demo["estab"].as_str().unwrap();
    // Field names of the GetToken body in lower case, as some XoD clients send them.
    let body = json!({
        "relyingparty": demo["partner"],
        "thirdpartyid": "XporterOnDemand",
        "estab": estab,
        "password": demo["password"],
    });
    let page = first_students(&client, base, estab, &body).await;
    assert!(page["__pagination__"][0]["RowCount"].as_u64().unwrap() >= 1000);
    let pupil = &page["Students"][0];
    assert!(pupil["Forename"].is_string());
    let granted: Vec<&str> = demo["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(!granted.contains(&"StudentDemographic"));
    assert!(
        pupil.get("Ethnicity").is_none(),
        "the demo consent does not cover demographics"
    );

    // The second demo partner is granted every scope, and reads what the first may not.
    let partners = demo["partners"]
        .as_array()
        .expect("demo.json lists its partners");
    assert_eq!(partners.len(), 2, "{partners:?}");
    assert_eq!(partners[0]["id"], demo["partner"]);
    let everything = &partners[1];
    assert!(
        everything["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("StudentDemographic"))
    );
    let body = json!({
        "relyingParty": everything["id"],
        "thirdPartyId": "XporterOnDemand",
        "estab": estab,
        "password": everything["password"],
    });
    let page = first_students(&client, base, estab, &body).await;
    assert!(
        page["Students"][0].get("Ethnicity").is_some(),
        "every scope releases demographics: {}",
        page["Students"][0]
    );
}

/// A partner's token from GetToken with `body`, then its first page of five pupils.
async fn first_students(client: &reqwest::Client, base: &str, estab: &str, body: &Value) -> Value {
    let token: Value = client
        .post(format!("{base}/idaas/sts/STS/GetToken"))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("a token");
    client
        .get(format!("{base}/api/v1/School/{estab}/Students/?pageSize=5"))
        .header("authorization", format!("Idaas {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `rollcall demo-school` prints the generated school as an agent's extract: the same bytes
/// for the same seed, another school for another seed, as many pupils as asked.
#[test]
fn demo_school_prints_a_deterministic_extract() {
    let dir = tempfile::tempdir().unwrap();
    let extract = |seed: &str| {
        let (ok, stdout, stderr) = run(
            dir.path(),
            &["demo-school", "--pupils", "40", "--seed", seed],
        );
        assert!(ok, "{stderr}");
        stdout
    };
    let first = extract("7");
    assert_eq!(first, extract("7"), "the same seed gives the same bytes");
    assert_ne!(first, extract("8"));
    let body: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(body["resultSets"]["Students"].as_array().unwrap().len(), 40);
    assert!(
        body["resultSets"]["Group"]
            .as_array()
            .is_some_and(|g| !g.is_empty())
    );

    let (ok, _, stderr) = run(dir.path(), &["demo-school", "--estab", "not-a-number"]);
    assert!(!ok);
    assert!(stderr.contains("estab"), "{stderr}");
}
