//! Partner reads, in process and over one keep-alive HTTP connection:
//! `cargo bench --bench reads` (`-- --quick` for the short run CI makes). BENCHMARKS.md
//! lists the targets and the numbers.
//!
//! The school is the demo's (the synthetic generator's sandbox school) with 2,000 pupils on the
//! embedded store; the partner has a five-scope consent. The serve function's app is the one
//! its Lambda runs (`rollcall_http::app` over `rollcall_serve::router`), called with
//! `tower::ServiceExt::oneshot`. Beside each figure, a floor measured in the same run: for a
//! page, decrypting the groups the page's plan reads once and `serde_json::to_vec` of the
//! answer; over HTTP, the server's own floor, TokenDetails (an authenticated call that reads
//! no school data).

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use criterion::Criterion;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::envelope::{self, KeyContext, object_aad};
use rollcall_core::model::Estab;
use rollcall_core::optout::OptOuts;
use rollcall_core::plan;
use rollcall_core::ports::Ports;
use rollcall_core::scope::ScopeSet;
use rollcall_serve::ServeState;
use serde_json::Value;
use support::{CountingKeys, FIVE_SCOPES, Ratio, call, ms, percentile, quick, report};
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

const ESTAB: &str = rollcall::demo::ESTAB;

struct World {
    _dir: tempfile::TempDir,
    ports: Ports,
    keys: Arc<CountingKeys>,
    rt: tokio::runtime::Runtime,
    authorization: String,
    page_500: String,
    page_2: String,
    by_id: String,
    token_details: String,
}

impl World {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (ports, keys) = support::local_ports(dir.path());
        let token = rt.block_on(support::seeded_school(&ports, dir.path()));
        let authorization = format!("Idaas {token}");
        let students = format!("/api/v1/School/{ESTAB}/Students");
        let mut world = Self {
            _dir: dir,
            ports,
            keys,
            rt,
            authorization,
            page_500: format!("{students}?page=1&pageSize=500"),
            page_2: format!("{students}?page=1&pageSize=2"),
            by_id: String::new(),
            token_details: "/api/v1/TokenDetails".to_owned(),
        };
        let app = world.serve_app();
        let first = world.rt.block_on(call(
            &app,
            Method::GET,
            &world.page_2,
            Some(&world.authorization),
            None,
        ));
        let id = first["Students"][0]["Id"].as_str().expect("a pupil's id");
        world.by_id = format!("{students}/{id}");
        world
    }

    /// The serve function's app as its Lambda builds it, with a fresh read cache.
    fn serve_app(&self) -> Router {
        self.serve_app_with(ServeState::new(&self.ports))
    }

    /// [`World::serve_app`] serving from `state`.
    fn serve_app_with(&self, state: ServeState) -> Router {
        rollcall_http::app_with(
            rollcall_serve::router(state),
            &rollcall_serve::routes().paths(),
            rollcall_http::Limits::unlimited(),
        )
    }

    /// One in-process read; the answer's bytes.
    fn read(&self, app: &Router, path: &str) -> axum::body::Bytes {
        self.rt.block_on(async {
            let request = Request::builder()
                .method(Method::GET)
                .uri(path)
                .header("authorization", &self.authorization)
                .body(Body::empty())
                .expect("a request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body")
        })
    }

    /// What the floor of a page costs: the sealed objects of the groups the page's plan
    /// reads, their key, their associated data; and the page's answer.
    fn floor_inputs(&self, page: &Value) -> Floor {
        self.rt.block_on(async {
            let catalogue = Catalogue::get();
            let endpoint = catalogue.endpoint_by_path("Students").expect("Students");
            let granted: ScopeSet = FIVE_SCOPES.iter().map(|s| (*s).to_owned()).collect();
            let query = plan::Query {
                options: Default::default(),
                select: None,
                filters: vec![],
                delta: false,
                only_db_status: false,
                subject: None,
            };
            let plan = plan::plan(
                catalogue,
                endpoint,
                &granted,
                &OptOuts::default(),
                &query,
                ESTAB,
            )
            .expect("the plan");
            let estab = Estab::parse(ESTAB).expect("estab");
            let record = (self.ports.control.versions)
                .current_version(&estab, "Students")
                .await
                .expect("the store answers")
                .expect("Students is held");
            let mut objects = Vec::new();
            for group in plan.primary().groups() {
                let sealed = (self.ports.objects)
                    .get(&record.object_key(&group.id))
                    .await
                    .expect("the group's object");
                let aad = object_aad(&estab, "Students", record.version, &group.id);
                objects.push((sealed, aad));
            }
            let wrapped = envelope::wrapped_key(&objects[0].0).expect("an envelope");
            let key = (self.ports.key_unwrapper)
                .unwrap(&KeyContext::new(&estab, "Students"), wrapped)
                .await
                .expect("the key unwraps");
            Floor {
                objects,
                key,
                page: page.clone(),
            }
        })
    }
}

struct Floor {
    objects: Vec<(Vec<u8>, Vec<u8>)>,
    key: rollcall_core::envelope::PlainKey,
    page: Value,
}

impl Floor {
    fn run(&self) -> usize {
        let mut bytes = 0;
        for (sealed, aad) in &self.objects {
            bytes += envelope::open(&self.key, aad, sealed).expect("opens").len();
        }
        bytes + serde_json::to_vec(&self.page).expect("serialises").len()
    }
}

/// Each run of `f`, timed.
fn samples(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn main() {
    let quick = quick();
    let world = World::new();
    let app = world.serve_app();
    let page: Value =
        serde_json::from_slice(&world.read(&app, &world.page_500)).expect("a JSON answer");
    assert_eq!(page["Students"].as_array().map(Vec::len), Some(500));
    let floor = world.floor_inputs(&page);

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("read");
    group.bench_function("students_page_500", |b| {
        b.iter(|| black_box(world.read(&app, &world.page_500)))
    });
    // The same page answered afresh by every call (no answered rows kept), as the first
    // call after an upload, a consent or opt-out change, or a minute's pause is.
    let afresh = world.serve_app_with(ServeState::new(&world.ports).with_answer_memo(0));
    group.bench_function("students_page_500_afresh", |b| {
        b.iter(|| black_box(world.read(&afresh, &world.page_500)))
    });
    group.bench_function("floor_page_500", |b| b.iter(|| black_box(floor.run())));
    group.bench_function("students_by_id", |b| {
        b.iter(|| black_box(world.read(&app, &world.by_id)))
    });
    group.bench_function("students_page_2", |b| {
        b.iter(|| black_box(world.read(&app, &world.page_2)))
    });
    group.bench_function("token_details", |b| {
        b.iter(|| black_box(world.read(&app, &world.token_details)))
    });
    group.finish();
    criterion.final_summary();

    // Percentiles of single calls, which criterion's per-sample means do not give.
    let runs = if quick { 300 } else { 3_000 };
    let page_times = samples(runs, || {
        black_box(world.read(&app, &world.page_500));
    });
    let afresh_times = samples(runs, || {
        black_box(world.read(&afresh, &world.page_500));
    });
    let floor_times = samples(runs, || {
        black_box(floor.run());
    });
    let floor_p50 = percentile(&floor_times, 50.0);

    // Key-service calls: a fresh serve function (an empty cache), 1,000 reads.
    let fresh = world.serve_app();
    let before = world.keys.unwrapped();
    for _ in 0..1_000 {
        black_box(world.read(&fresh, &world.page_2));
    }
    let decrypts = world.keys.unwrapped() - before;

    let http = http_floor(&world, if quick { 300 } else { 2_000 });
    let page_p50 = percentile(&page_times, 50.0);
    let page_p99 = percentile(&page_times, 99.0);
    let afresh_p50 = percentile(&afresh_times, 50.0);
    println!(
        "\nStudents page of 500 in process: p50 {:.3} ms (target <= 0.5: {}), p99 {:.3} ms \
         (target <= 2: {}); {runs} calls",
        ms(page_p50),
        support::verdict(ms(page_p50) <= 0.5),
        ms(page_p99),
        support::verdict(ms(page_p99) <= 2.0),
    );
    println!(
        "Students page of 500 answered afresh: p50 {:.3} ms, p99 {:.3} ms",
        ms(afresh_p50),
        ms(percentile(&afresh_times, 99.0)),
    );
    println!(
        "Key-service Decrypt calls for 1,000 reads of Students: {decrypts} (target <= 5: {})",
        support::verdict(decrypts <= 5)
    );
    report(
        "reads",
        &[
            Ratio {
                name: "page_500_p50_vs_floor",
                figure: ms(page_p50),
                floor: ms(floor_p50),
                unit: "ms",
                target: None,
            },
            Ratio {
                name: "page_500_p99_vs_floor",
                figure: ms(page_p99),
                floor: ms(floor_p50),
                unit: "ms",
                target: None,
            },
            Ratio {
                name: "page_500_afresh_p50_vs_floor",
                figure: ms(afresh_p50),
                floor: ms(floor_p50),
                unit: "ms",
                target: None,
            },
            Ratio {
                name: "http_page_500_vs_token_details",
                figure: ms(http.page_500),
                floor: ms(http.token_details),
                unit: "ms",
                target: Some(10.0),
            },
            Ratio {
                name: "http_by_id_vs_token_details",
                figure: ms(http.by_id),
                floor: ms(http.token_details),
                unit: "ms",
                target: Some(3.0),
            },
            Ratio {
                name: "http_page_2_vs_token_details",
                figure: ms(http.page_2),
                floor: ms(http.token_details),
                unit: "ms",
                target: Some(3.0),
            },
        ],
        &[
            ("page_500_p50_ms", ms(page_p50)),
            ("page_500_p99_ms", ms(page_p99)),
            ("page_500_afresh_p50_ms", ms(afresh_p50)),
            ("decrypt_calls_per_1000_reads", decrypts as f64),
        ],
    );
}

/// p50 of each read over one keep-alive HTTP connection to the serve app on loopback.
struct HttpP50 {
    page_500: Duration,
    by_id: Duration,
    page_2: Duration,
    token_details: Duration,
}

fn http_floor(world: &World, runs: usize) -> HttpP50 {
    let app = world.serve_app();
    let listener = world
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    world.rt.spawn(async move {
        axum::serve(listener, app).await.expect("serves");
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("a client");
    let p50 = |path: &str| {
        let url = format!("{base}{path}");
        let times = samples(runs, || {
            world.rt.block_on(async {
                let answer = client
                    .get(&url)
                    .header("authorization", &world.authorization)
                    .send()
                    .await
                    .expect("an answer");
                assert_eq!(answer.status(), 200, "{path}");
                black_box(answer.bytes().await.expect("a body"));
            })
        });
        percentile(&times, 50.0)
    };
    HttpP50 {
        token_details: p50(&world.token_details),
        page_500: p50(&world.page_500),
        by_id: p50(&world.by_id),
        page_2: p50(&world.page_2),
    }
}
