//! The local stack on a free port of 127.0.0.1, over the embedded store in a temporary
//! directory, with a clock the test moves; and an HTTP client for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use rollcall_consent::registry::{register_partner, register_school};
use rollcall_core::ports::{ManualClock, Ports};
use rollcall_core::timestamp::{Duration, Timestamp};
use rollcall_infra::aws::AwsPorts;
use rollcall_infra::local::LocalPorts;
use rollcall_infra::testing::CountingKeys;
use rollcall_purge::{PurgeReport, PurgeState, purge};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// Runs `call` and asserts the data directory of `$world.stack` did not change.
macro_rules! unchanged {
    ($world:expr, $call:expr) => {{
        let before = $world.stack.snapshot();
        let answer = $call;
        assert_eq!(before, $world.stack.snapshot(), "the store changed");
        answer
    }};
}

pub const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

pub struct Stack {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    /// The AWS adapters, when the stack runs on the emulator.
    pub aws: Option<AwsPorts>,
    clock: Arc<ManualClock>,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
pub struct SchoolKeys {
    pub agent: String,
    pub admin: String,
}

/// An answer: status, the `x-rollcall-*` headers, and the JSON body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The XoD error text, or "" when the answer is not an error.
    pub fn message(&self) -> &str {
        self.body["ExceptionMessage"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }

    /// Asserts an XoD error with `status` whose message contains `text`.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.message().contains(text),
            "expected a message with {text:?}, got {:?}",
            self.message()
        );
    }
}

impl Stack {
    /// On the embedded store in a temporary directory, with the abuse controls' limits
    /// rollcall runs with by default.
    pub async fn start() -> Self {
        Self::start_with_limits(rollcall_http::Limits::default()).await
    }

    /// [`Stack::start`] with these abuse controls' limits.
    pub async fn start_with_limits(limits: rollcall_http::Limits) -> Self {
        Self::start_local(limits, |_| ()).await
    }

    /// [`Stack::start`] with its writing stores behind [`rollcall_infra::testing::Faults`]:
    /// the plan says which write fails.
    pub async fn start_faulty() -> (Self, Arc<rollcall_infra::testing::FaultPlan>) {
        let mut plan = None;
        let stack = Self::start_local(rollcall_http::Limits::default(), |ports| {
            plan = Some(rollcall_infra::testing::inject_faults(ports));
        })
        .await;
        (stack, plan.expect("faults injected"))
    }

    async fn start_local(limits: rollcall_http::Limits, wrap: impl FnOnce(&mut Ports)) -> Self {
        rollcall_infra::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let local = LocalPorts::open(dir.path()).unwrap().with_public_url(&base);
        let mut ports = local.ports(clock.clone());
        wrap(&mut ports);
        let app = rollcall::local_stack_with(&ports, Some(local.upload_signer.clone()), limits);
        Self::launch(listener, app, dir, ports, None, clock)
    }

    /// On the AWS adapters, over fresh resources on the emulator `scripts/test` starts; `None`
    /// (with a note) when there is none.
    pub async fn start_aws() -> Option<Self> {
        rollcall_infra::telemetry::init_for_tests();
        let aws = rollcall_infra::testing::emulator("e2e").await?;
        let clock = Arc::new(ManualClock::new(T0));
        let ports = aws.ports(clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = rollcall::local_stack(&ports, None);
        let dir = tempfile::tempdir().unwrap();
        Some(Self::launch(listener, app, dir, ports, Some(aws), clock))
    }

    /// [`Stack::start_aws`] with the key service (KMS) counted.
    pub async fn start_aws_counting_keys() -> Option<(Self, Arc<CountingKeys>)> {
        rollcall_infra::telemetry::init_for_tests();
        let aws = rollcall_infra::testing::emulator("kms-count").await?;
        let clock = Arc::new(ManualClock::new(T0));
        let mut ports = aws.ports(clock.clone());
        let keys = CountingKeys::over(&mut ports);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = rollcall::local_stack(&ports, None);
        let dir = tempfile::tempdir().unwrap();
        let stack = Self::launch(listener, app, dir, ports, Some(aws), clock);
        Some((stack, keys))
    }

    fn launch(
        listener: tokio::net::TcpListener,
        app: axum::Router,
        dir: tempfile::TempDir,
        ports: Ports,
        aws: Option<AwsPorts>,
        clock: Arc<ManualClock>,
    ) -> Self {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            base,
            dir,
            ports,
            aws,
            clock,
            client: reqwest::Client::new(),
            server,
        }
    }

    /// Starts the functions afresh over the same store, as a new Lambda instance would:
    /// nothing a function kept in memory (its read cache) survives. Large uploads' local
    /// bucket route is not served again.
    pub async fn restart(&mut self) {
        self.server.abort();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.base = format!("http://{}", listener.local_addr().unwrap());
        let app = rollcall::local_stack(&self.ports, None);
        self.server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn school(&self, estab: &str) -> SchoolKeys {
        let now = self.clock_now();
        let new = register_school(
            self.ports.control.registry.as_ref(),
            estab,
            "Test School",
            now,
        )
        .await
        .unwrap();
        SchoolKeys {
            agent: new.agent_key.expose_secret().to_owned(),
            admin: new.admin_key.expose_secret().to_owned(),
        }
    }

    /// Registers a partner; answers its management secret.
    pub async fn partner(&self, id: &str, scopes: &[&str]) -> String {
        self.named_partner(id, "Test Partner", scopes).await
    }

    /// [`Stack::partner`] with the name the school sees.
    pub async fn named_partner(&self, id: &str, name: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let new = register_partner(
            self.ports.control.registry.as_ref(),
            id,
            name,
            &scopes,
            self.clock_now(),
        )
        .await
        .unwrap();
        new.management_secret.expose_secret().to_owned()
    }

    pub fn clock_now(&self) -> Timestamp {
        use rollcall_core::ports::Clock;
        self.clock.now()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        self.send_with(method, path, auth, &[], body).await
    }

    /// [`Stack::send`] with more request headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{path} answered {status} without JSON: {bytes:?}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A PUT to an absolute `url` (a pre-signed upload URL) with exactly these headers.
    pub async fn put_to(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let mut request = self.client.put(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn upload(&self, agent_key: &str, body: &Value) -> Answer {
        self.send(
            Method::POST,
            "/agent/v1/extracts",
            Some(&format!("Bearer {agent_key}")),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn grant(&self, school: &SchoolKeys, partner: &str, scopes: &[&str]) -> Answer {
        self.send(
            Method::PUT,
            &format!("/admin/v1/consents/{partner}"),
            Some(&format!("Bearer {}", school.admin)),
            Some(json!({ "scopes": scopes }).to_string().into_bytes()),
        )
        .await
    }

    /// The per-school secret the partner reads from its management API.
    pub async fn password(&self, management_secret: &str, estab: &str) -> Option<String> {
        let body = self
            .send(
                Method::GET,
                "/partner/v1/schools",
                Some(&format!("Bearer {management_secret}")),
                None,
            )
            .await
            .expect(StatusCode::OK);
        body["schools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["estab"] == estab)
            .and_then(|s| s["password"].as_str().map(str::to_owned))
    }

    pub async fn get_token(&self, partner: &str, estab: &str, password: &str) -> Answer {
        let body = json!({
            "relyingParty": partner,
            "thirdPartyId": "XporterOnDemand",
            "estab": estab,
            "password": password,
        });
        self.send(
            Method::POST,
            "/idaas/sts/STS/GetToken",
            None,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// A token for `partner` at `estab`, through the management API and GetToken.
    pub async fn token(&self, partner: &str, management_secret: &str, estab: &str) -> String {
        let password = self
            .password(management_secret, estab)
            .await
            .expect("a granted school");
        let body = self
            .get_token(partner, estab, &password)
            .await
            .expect(StatusCode::OK);
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn read(&self, token: &str, path: &str) -> Answer {
        self.send(Method::GET, path, Some(&format!("Idaas {token}")), None)
            .await
    }

    pub async fn purge(&self) -> PurgeReport {
        purge(&PurgeState::new(&self.ports)).await.unwrap()
    }

    /// Every file under the data directory and its bytes, the control database as the rows
    /// of its tables. The access log is left out: a refused call is recorded there by design
    /// (see [`Stack::access_log`]); everything else must be as it was.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect(self.dir.path(), self.dir.path(), &mut files);
        files.retain(|path, _| !path.to_string_lossy().contains(".sqlite3-"));
        for (path, bytes) in files.iter_mut() {
            if path.extension().is_some_and(|e| e == "sqlite3") {
                *bytes = dump_tables(&self.dir.path().join(path), &["access_log"]);
            }
        }
        files
    }

    /// The school's access log as its admin reads it, newest first.
    pub async fn access_log(&self, school: &SchoolKeys) -> Vec<Value> {
        let answer = self
            .send(
                Method::GET,
                "/admin/v1/access-log?limit=1000",
                Some(&format!("Bearer {}", school.admin)),
                None,
            )
            .await
            .expect(StatusCode::OK);
        answer["accessLog"].as_array().unwrap().clone()
    }

    /// The keys of the staged (large-upload) extracts still stored.
    pub async fn staged_objects(&self) -> Vec<String> {
        self.ports.objects.list("incoming/").await.unwrap()
    }

    /// The keys of every stored object of a school, through the object store.
    pub async fn objects_of(&self, estab: &str) -> Vec<String> {
        self.ports.objects.list(&format!("{estab}/")).await.unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Every row of every table of a SQLite database but those named, as text.
fn dump_tables(path: &Path, left_out: &[&str]) -> Vec<u8> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.retain(|t| !left_out.contains(&t.as_str()) && !t.starts_with("sqlite_"));
    let mut out = String::new();
    for table in tables {
        let mut statement = db
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let columns = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push_str(&format!("{table}: {}\n", row.unwrap().join(" | ")));
        }
    }
    out.into_bytes()
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
        }
    }
}
