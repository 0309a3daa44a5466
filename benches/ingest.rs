//! A school's upload, stored: `cargo bench --bench ingest` (`-- --quick` for CI's short run).
//! BENCHMARKS.md lists the targets and the numbers.
//!
//! The school is the synthetic generator's core school (pupils, contacts, staff, groups and
//! memberships) of 2,000 pupils, uploaded whole to the embedded store as the ingest function
//! takes it (`parse_upload`, then `rollcall_ingest::ingest`). Beside it, the floor measured in
//! the same run: parsing the same bytes with `serde_json`, sealing them once with AES-256-GCM,
//! and a keyed hash of every row. Also: a re-upload with 1% of rows changed, diffing one
//! result set, sealing and opening a megabyte, the key-service calls an upload makes, and the
//! peak memory of a process that stores the upload (measured in a child process).

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::{Row, diff, parse_upload};
use rollcall_core::envelope::{self, PlainKey};
use rollcall_core::model::{Estab, School};
use rollcall_core::ports::Ports;
use rollcall_core::secret::{keyed_hash_bytes, random_bytes};
use rollcall_core::synthetic;
use rollcall_core::timestamp::Timestamp;
use rollcall_ingest::IngestState;
use serde_json::Value;
use support::{CountingKeys, Ratio, ms, percentile, quick, report};
use zeroize::Zeroizing;

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

const ESTAB: &str = "9992001";

/// A fresh embedded store with the school registered.
struct Store {
    _dir: tempfile::TempDir,
    ports: Ports,
    keys: Arc<CountingKeys>,
    school: School,
}

impl Store {
    fn new(rt: &tokio::runtime::Runtime) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (ports, keys) = support::local_ports(dir.path());
        let school = rt.block_on(async {
            let now = ports.clock.now();
            rollcall_consent::registry::register_school(
                ports.control.registry.as_ref(),
                ESTAB,
                "Larkfield Test Academy",
                now,
            )
            .await
            .expect("the school registers");
            (ports.control.schools)
                .school(&Estab::parse(ESTAB).expect("estab"))
                .await
                .expect("the store answers")
                .expect("registered")
        });
        Self {
            _dir: dir,
            ports,
            keys,
            school,
        }
    }

    fn ingest(&self, rt: &tokio::runtime::Runtime, body: &[u8]) -> Value {
        let upload = parse_upload(Catalogue::get(), body).expect("a valid upload");
        rt.block_on(rollcall_ingest::ingest(
            &IngestState::new(&self.ports),
            &self.school,
            upload,
        ))
        .expect("the upload is stored")
    }
}

/// The floor: parse the bytes, seal them once, a keyed hash of every row.
fn floor(body: &[u8], key: &PlainKey) -> usize {
    let value: Value = serde_json::from_slice(body).expect("JSON");
    let sealed = envelope::seal_raw(key, b"floor", body);
    let mut hashed = 0;
    for rows in value["resultSets"].as_object().expect("sets").values() {
        for row in rows.as_array().expect("rows") {
            let bytes = serde_json::to_vec(row).expect("a row");
            hashed += keyed_hash_bytes(key.as_ref(), &bytes)[0] as usize;
        }
    }
    sealed.len() + hashed
}

/// The school with every hundredth row of each set changed in one field (`round` makes each
/// round's change differ from the last).
fn changed(school: &synthetic::SyntheticSchool, round: usize) -> Vec<u8> {
    let mut school = synthetic::SyntheticSchool {
        estab: school.estab.clone(),
        name: school.name.clone(),
        result_sets: school.result_sets.clone(),
    };
    let mut changed = 0;
    for (_, rows) in &mut school.result_sets {
        for row in rows.iter_mut().step_by(100) {
            if let Some((_, value)) = row
                .iter_mut()
                .find(|(name, value)| *name != "Id" && value.is_string())
            {
                *value = Value::String(format!("{} {round}", value.as_str().unwrap_or("")));
                changed += 1;
            }
        }
    }
    assert!(changed > 0);
    serde_json::to_vec(&school.upload_body()).expect("serialises")
}

fn rows_of(school: &synthetic::SyntheticSchool) -> usize {
    school.result_sets.iter().map(|(_, r)| r.len()).sum()
}

/// The environment variable that makes the bench a child process that only uploads the
/// school in the file it names, and prints its peak resident set.
const PEAK_CHILD: &str = "ROLLCALL_BENCH_PEAK_CHILD";

/// The child's part: a fresh store, the upload read from `path`, stored; then the process's
/// peak resident set (VmHWM), in bytes, on stdout.
fn peak_child(path: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let body = std::fs::read(path).expect("the upload");
    let store = Store::new(&rt);
    black_box(store.ingest(&rt, &body));
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    println!("{}", kb * 1024);
}

/// The peak resident set of a process that uploads `body` and nothing else.
fn peak_of_an_upload(body: &[u8]) -> u64 {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), body).expect("the upload is written");
    let out = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .env(PEAK_CHILD, file.path())
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the child's peak")
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() {
    if let Ok(path) = std::env::var(PEAK_CHILD) {
        return peak_child(&path);
    }
    let quick = quick();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let school = synthetic::school(ESTAB, support::PUPILS, 20_260_901);
    let body = serde_json::to_vec(&school.upload_body()).expect("serialises");
    let sets = school.result_sets.len();
    let rows = rows_of(&school);
    let key: PlainKey = Zeroizing::new(random_bytes());
    println!(
        "core school of {} pupils: {sets} result sets, {rows} rows, {:.1} MB of JSON",
        support::PUPILS,
        body.len() as f64 / 1e6
    );

    let peak = peak_of_an_upload(&body);
    let store = Store::new(&rt);
    store.ingest(&rt, &body);
    let generated = store.keys.generated();
    let students = Catalogue::get().result_set("Students").expect("Students");
    let students_rows: Vec<Row> = school.rows("Students").to_vec();
    let changed_bodies: Vec<Vec<u8>> = (0..2).map(|round| changed(&school, round)).collect();

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = criterion.benchmark_group("ingest");
    group.bench_function("whole_school", |b| {
        b.iter_batched(
            || Store::new(&rt),
            |fresh| black_box(fresh.ingest(&rt, &body)),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("floor_whole_school", |b| {
        b.iter(|| black_box(floor(&body, &key)))
    });
    let mut round = 0;
    group.bench_function("one_percent_changed", |b| {
        b.iter(|| {
            round += 1;
            black_box(store.ingest(&rt, &changed_bodies[round % 2]))
        })
    });
    let previous = diff(
        None,
        students,
        &students_rows,
        &key[..],
        Timestamp::from_millis(1),
    );
    group.bench_function("diff_students", |b| {
        b.iter(|| {
            black_box(diff(
                Some(&previous.index),
                students,
                &students_rows,
                &key[..],
                Timestamp::from_millis(2),
            ))
        })
    });
    let megabyte = vec![7u8; 1 << 20];
    let sealed = envelope::seal_raw(&key, b"aad", &megabyte);
    group.bench_function("seal_1mb", |b| {
        b.iter(|| black_box(envelope::seal_raw(&key, b"aad", &megabyte)))
    });
    group.bench_function("open_1mb", |b| {
        b.iter(|| black_box(envelope::open_raw(&key, b"aad", &sealed).expect("opens")))
    });
    group.finish();
    criterion.final_summary();

    // Medians of whole runs, for the ratios.
    let runs = if quick { 3 } else { 9 };
    let mut whole = Vec::new();
    for _ in 0..runs {
        let fresh = Store::new(&rt);
        whole.push(timed(|| fresh.ingest(&rt, &body)).1);
    }
    whole.sort();
    let mut floors: Vec<Duration> = (0..runs)
        .map(|_| timed(|| black_box(floor(&body, &key))).1)
        .collect();
    floors.sort();
    let mut again = Vec::new();
    for run in 0..runs {
        again.push(timed(|| store.ingest(&rt, &changed_bodies[run % 2])).1);
    }
    again.sort();
    let (whole, floor_time, again) = (
        percentile(&whole, 50.0),
        percentile(&floors, 50.0),
        percentile(&again, 50.0),
    );
    let peak_mb = peak as f64 / 1e6;
    println!(
        "\nWhole school: {:.1} ms; floor {:.1} ms; ratio {:.2} (target <= 3: {})",
        ms(whole),
        ms(floor_time),
        ms(whole) / ms(floor_time),
        support::verdict(ms(whole) / ms(floor_time) <= 3.0),
    );
    println!(
        "Peak resident set of a process that stores the school's upload (the JSON read from \
         a file, parsed, stored): {peak_mb:.0} MB (target <= 128: {})",
        support::verdict(peak_mb <= 128.0),
    );
    println!(
        "Re-upload with 1% of rows changed: {:.1} ms (target <= 50: {})",
        ms(again),
        support::verdict(ms(again) <= 50.0)
    );
    println!(
        "Key-service GenerateDataKey calls for the first upload of {sets} result sets: \
         {generated} (target <= {sets}: {})",
        support::verdict(generated <= sets)
    );
    report(
        "ingest",
        &[
            Ratio {
                name: "whole_school_vs_floor",
                figure: ms(whole),
                floor: ms(floor_time),
                unit: "ms",
                target: Some(3.0),
            },
            Ratio {
                name: "one_percent_changed_vs_floor",
                figure: ms(again),
                floor: ms(floor_time),
                unit: "ms",
                target: None,
            },
        ],
        &[
            ("whole_school_ms", ms(whole)),
            ("one_percent_changed_ms", ms(again)),
            ("peak_rss_mb", peak_mb),
            (
                "generate_data_key_calls_per_set",
                generated as f64 / sets as f64,
            ),
        ],
    );
}
