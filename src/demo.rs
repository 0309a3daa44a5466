//! The demo: a deterministic synthetic school uploaded through the agent API; a partner that
//! asks for more than the school grants, with the partial grant (it shows refusals); and a
//! partner granted every scope (so a partner developer can call every endpoint at once); all
//! through the same HTTP routes a real agent, school and partner use. What a script needs to
//! drive the demo is written to `demo.json` in the data directory.

use std::path::Path;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use rollcall_consent::registry::{register_partner, register_school};
use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::parse_upload;
use rollcall_core::model::Estab;
use rollcall_core::ports::Ports;
use rollcall_core::synthetic;
use rollcall_ingest::{IngestState, MAX_UPLOAD_BYTES, ingest};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ESTAB: &str = "9999001";
pub const PUPILS: usize = 1200;
pub const SEED: u64 = 20_260_901;
pub const PARTNER: &str = "demo-homework";
/// What the demo partner asks for.
pub const REQUESTED: &[&str] = &[
    "School",
    "Student",
    "Staff",
    "Contact",
    "StudentDemographic",
    "StudentExtended",
];
/// What the demo school grants: not demographics (special-category data) nor dates of birth.
pub const GRANTED: &[&str] = &["School", "Student", "Staff", "Contact"];
/// The second demo partner, which asks for and is granted every scope.
pub const EVERYTHING: &str = "demo-everything";

/// A demo partner as `demo.json` lists it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoPartner {
    pub id: String,
    pub password: String,
    pub management_secret: String,
    pub scopes: Vec<String>,
}

/// `demo.json`: where the local stack listens, and the demo's ids and secrets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoFile {
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estab: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Every demo partner, the first being the one above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partners: Vec<DemoPartner>,
}

pub const DEMO_FILE: &str = "demo.json";

impl DemoFile {
    pub fn read(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = data_dir.join(DEMO_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn write(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(DEMO_FILE);
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// Seeds the demo (a school of `pupils` pupils) into an empty data directory, or finds the one
/// seeded before.
pub async fn seed(ports: &Ports, data_dir: &Path, pupils: usize) -> anyhow::Result<DemoFile> {
    let estab = Estab::parse(ESTAB)?;
    if ports.control.schools.school(&estab).await?.is_some() {
        return match DemoFile::read(data_dir)? {
            Some(demo) if demo.password.is_some() => Ok(demo),
            _ => bail!(
                "{} holds the demo school but not its secrets ({DEMO_FILE}); remove the data \
                 directory to seed the demo afresh",
                data_dir.display()
            ),
        };
    }
    let now = ports.clock.now();
    let school = synthetic::sandbox(ESTAB, pupils, SEED, now.utc_date());
    let registered =
        register_school(ports.control.registry.as_ref(), ESTAB, &school.name, now).await?;
    // Seeding is rollcall's own doing, not a client's: no rate applies to it.
    let app = crate::local_stack_with(ports, None, rollcall_http::Limits::unlimited());
    let agent_key = registered.agent_key.expose_secret().to_owned();
    let admin_key = registered.admin_key.expose_secret().to_owned();
    upload_school(ports, &app, &agent_key, &estab, &school).await?;
    let requested: Vec<String> = REQUESTED.iter().map(|s| s.to_string()).collect();
    let granted: Vec<String> = GRANTED.iter().map(|s| s.to_string()).collect();
    let every: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    let mut partners = Vec::new();
    for (id, name, asks, grants) in [
        (PARTNER, "Homework Hub (demo partner)", &requested, &granted),
        (EVERYTHING, "Every Scope (demo partner)", &every, &every),
    ] {
        let registered =
            register_partner(ports.control.registry.as_ref(), id, name, asks, now).await?;
        let management_secret = registered.management_secret.expose_secret().to_owned();
        let grant = json!({ "scopes": grants });
        let path = format!("/admin/v1/consents/{id}");
        call(&app, Method::PUT, &path, &admin_key, Some(grant)).await?;
        let schools = call(
            &app,
            Method::GET,
            "/partner/v1/schools",
            &management_secret,
            None,
        )
        .await?;
        let password = schools["schools"][0]["password"]
            .as_str()
            .context("the partner management API did not show the new secret")?
            .to_owned();
        partners.push(DemoPartner {
            id: id.to_owned(),
            password,
            management_secret,
            scopes: grants.clone(),
        });
    }
    let first = partners[0].clone();
    Ok(DemoFile {
        base_url: String::new(),
        estab: Some(ESTAB.to_owned()),
        partner: Some(first.id),
        password: Some(first.password),
        management_secret: Some(first.management_secret),
        agent_key: Some(agent_key),
        admin_key: Some(admin_key),
        scopes: Some(first.scopes),
        partners,
    })
}

/// Uploads every result set of `school` as its agent would: as many sets per extract as fit
/// under the upload limit, through the agent API. A set too large for one extract goes the
/// way of a staged upload's object: parsed and ingested by the same ingest function.
async fn upload_school(
    ports: &Ports,
    app: &Router,
    agent_key: &str,
    estab: &Estab,
    school: &synthetic::SyntheticSchool,
) -> anyhow::Result<()> {
    let limit = MAX_UPLOAD_BYTES - 64 * 1024;
    let mut batch = serde_json::Map::new();
    let mut batch_bytes = 0;
    for (name, rows) in &school.result_sets {
        let set = serde_json::to_value(rows)?;
        let bytes = set.to_string().len() + name.len() + 8;
        if bytes > limit {
            let body = serde_json::to_vec(&json!({ "resultSets": { name: set } }))?;
            let extract = parse_upload(Catalogue::get(), &body)?;
            let registered = ports
                .control
                .schools
                .school(estab)
                .await?
                .context("the demo school was not registered")?;
            ingest(&IngestState::new(ports), &registered, extract)
                .await
                .map_err(|e| anyhow::anyhow!("ingesting {name}: {e}"))?;
            continue;
        }
        if batch_bytes + bytes > limit {
            post_extract(app, agent_key, std::mem::take(&mut batch)).await?;
            batch_bytes = 0;
        }
        batch.insert(name.clone(), set);
        batch_bytes += bytes;
    }
    if !batch.is_empty() {
        post_extract(app, agent_key, batch).await?;
    }
    Ok(())
}

async fn post_extract(
    app: &Router,
    agent_key: &str,
    sets: serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let body = json!({ "resultSets": sets });
    call(
        app,
        Method::POST,
        "/agent/v1/extracts",
        agent_key,
        Some(body),
    )
    .await?;
    Ok(())
}

/// One call to the local stack, in process, with a bearer credential; fails unless 200.
async fn call(
    app: &Router,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != StatusCode::OK {
        bail!("{path} answered {status}: {value}");
    }
    Ok(value)
}

/// The curl lines to try the demo with.
pub fn curl_lines(demo: &DemoFile) -> String {
    let base = &demo.base_url;
    let estab = demo.estab.as_deref().unwrap_or(ESTAB);
    let partner = demo.partner.as_deref().unwrap_or(PARTNER);
    let password = demo.password.as_deref().unwrap_or("<password>");
    let admin = demo.admin_key.as_deref().unwrap_or("<admin key>");
    format!(
        r#"# 1. the partner gets a token with the school's secret
curl -s -X POST {base}/idaas/sts/STS/GetToken -H 'Content-Type: application/json' \
  -d '{{"relyingParty": "{partner}", "thirdPartyId": "XporterOnDemand", "estab": "{estab}", "password": "{password}"}}'
TOKEN=<the token from above>
# 2. it reads pupils: only the fields of the scopes granted ({granted})
curl -s '{base}/api/v1/School/{estab}/Students/?pageSize=2' -H "Authorization: Idaas $TOKEN"
# 3. the school narrows the consent; Students is refused on the next call
curl -s -X PUT {base}/admin/v1/consents/{partner} -H 'Authorization: Bearer {admin}' -d '{{"scopes": ["School"]}}'
# 4. the school reads who read what
curl -s {base}/admin/v1/access-log -H 'Authorization: Bearer {admin}'
# 5. {everything}, granted every scope, can call every endpoint
curl -s -X POST {base}/idaas/sts/STS/GetToken -H 'Content-Type: application/json' \
  -d '{{"relyingParty": "{everything}", "thirdPartyId": "XporterOnDemand", "estab": "{estab}", "password": "{everything_password}"}}'
# 6. the school's data protection lead decides and proves it all in a browser:
#    open {base}/admin/ and sign in with the admin key {admin}"#,
        everything = EVERYTHING,
        everything_password = demo
            .partners
            .iter()
            .find(|p| p.id == EVERYTHING)
            .map_or("<password>", |p| p.password.as_str()),
        granted = demo
            .scopes
            .as_ref()
            .map(|s| s.join(", "))
            .unwrap_or_default(),
    )
}
