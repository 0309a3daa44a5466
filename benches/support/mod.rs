//! What the benches share: a school made by the synthetic generator (as `rollcall dev --demo`
//! seeds it) on the embedded store, a partner with a five-scope consent and its token, key
//! services that count their calls, and the summary each bench prints and records.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use rollcall_core::ports::{Ports, SystemClock};
use rollcall_infra::local::LocalPorts;
pub use rollcall_infra::testing::CountingKeys;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The school the benches read: 2,000 pupils.
pub const PUPILS: usize = 2_000;

/// The five scopes the benches' partner is granted.
pub const FIVE_SCOPES: &[&str] = &["School", "Student", "Staff", "Contact", "StudentExtended"];

/// The embedded store in `dir`, its key service counted.
pub fn local_ports(dir: &Path) -> (Ports, Arc<CountingKeys>) {
    let local = LocalPorts::open(dir).expect("the data directory opens");
    let mut ports = local.ports(Arc::new(SystemClock));
    let keys = CountingKeys::over(&mut ports);
    (ports, keys)
}

/// The demo school of [`PUPILS`] pupils, seeded as `rollcall dev --demo` seeds it; its
/// homework partner's consent set to [`FIVE_SCOPES`]; that partner's token.
pub async fn seeded_school(ports: &Ports, dir: &Path) -> String {
    let demo = rollcall::demo::seed(ports, dir, PUPILS)
        .await
        .expect("the demo seeds");
    let stack = rollcall::local_stack_with(ports, None, rollcall_http::Limits::unlimited());
    let admin = demo.admin_key.clone().expect("the demo has an admin key");
    let partner = demo.partner.clone().expect("the demo has a partner");
    call(
        &stack,
        Method::PUT,
        &format!("/admin/v1/consents/{partner}"),
        Some(&format!("Bearer {admin}")),
        Some(json!({ "scopes": FIVE_SCOPES })),
    )
    .await;
    let token = call(
        &stack,
        Method::POST,
        "/idaas/sts/STS/GetToken",
        None,
        Some(json!({
            "relyingParty": partner,
            "thirdPartyId": "XporterOnDemand",
            "estab": rollcall::demo::ESTAB,
            "password": demo.password.clone().expect("the demo has a password"),
        })),
    )
    .await;
    token["token"]
        .as_str()
        .unwrap_or_else(|| panic!("GetToken answered no token: {token}"))
        .to_owned()
}

/// One in-process call; panics unless 200.
pub async fn call(
    app: &Router,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{path}: {value}");
    value
}

/// Sorted samples' percentile `p` (0 to 100).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let position = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[position]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Whether the bench runs briefly (CI): `--quick` among its arguments, or
/// `ROLLCALL_BENCH_QUICK=1`.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
        || std::env::var("ROLLCALL_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// One measured figure beside its floor, and the target for the ratio between them.
pub struct Ratio {
    pub name: &'static str,
    pub figure: f64,
    pub floor: f64,
    pub unit: &'static str,
    /// The largest ratio the target allows, if the target is a ratio.
    pub target: Option<f64>,
}

impl Ratio {
    pub fn ratio(&self) -> f64 {
        self.figure / self.floor
    }
}

/// Prints the ratios and records them in `target/bench-results/{bench}.json` (or under
/// `ROLLCALL_BENCH_RESULTS`), which
/// `scripts/bench-check` compares with the ratios recorded in `benches/baseline.json`.
pub fn report(bench: &str, ratios: &[Ratio], counts: &[(&'static str, f64)]) {
    println!("\n{bench}: figure, floor measured in the same run, ratio, target");
    for r in ratios {
        let target = r.target.map_or("-".to_owned(), |t| {
            format!("<= {t:.1} ({})", verdict(r.ratio() <= t))
        });
        println!(
            "  {:<34} {:>10.3} {unit} / floor {:>10.3} {unit} = {:>7.2}x  target {target}",
            r.name,
            r.figure,
            r.floor,
            r.ratio(),
            unit = r.unit,
        );
    }
    for (name, value) in counts {
        println!("  {name:<34} {value:>10.3}");
    }
    let record = json!({
        "ratios": ratios.iter().map(|r| (r.name.to_owned(), json!(r.ratio()))).collect::<serde_json::Map<_, _>>(),
        "figures": ratios.iter().map(|r| (r.name.to_owned(), json!({"figure": r.figure, "floor": r.floor, "unit": r.unit}))).collect::<serde_json::Map<_, _>>(),
        "counts": counts.iter().map(|(n, v)| ((*n).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    let dir = std::env::var_os("ROLLCALL_BENCH_RESULTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("target/bench-results");
    std::fs::write(
        dir.join(format!("{bench}.json")),
        serde_json::to_vec_pretty(&record).expect("json"),
    )
    .expect("the results are written");
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
