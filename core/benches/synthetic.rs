//! How long the sandbox school takes to generate: `cargo bench -p rollcall-core --bench
//! synthetic`. The target is under 2 s for 2,000 pupils (BENCHMARKS.md). Beside it, the floor
//! measured in the same run: serialising the generated school to its upload body, the least
//! any use of it costs.

use std::time::{Duration, Instant};

use rollcall_core::synthetic;

const RUNS: usize = 7;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let today = time::macros::date!(2026 - 12 - 07);
    for pupils in [1_200, 2_000, 4_000] {
        let mut generate = Vec::new();
        let mut serialise = Vec::new();
        let mut bytes = 0;
        let mut rows = 0;
        for run in 0..RUNS {
            let start = Instant::now();
            let school = synthetic::sandbox("9992001", pupils, 20_260_901 + run as u64, today);
            generate.push(start.elapsed());
            let start = Instant::now();
            let body = serde_json::to_vec(&school.upload_body()).expect("serialisable");
            serialise.push(start.elapsed());
            bytes = body.len();
            rows = school
                .result_sets
                .iter()
                .map(|(_, r)| r.len())
                .sum::<usize>();
        }
        let (generate, serialise) = (median(generate), median(serialise));
        println!(
            "sandbox {pupils:>5} pupils: {rows:>7} rows, {:>5.1} MB of JSON; generate {:>7.1} ms \
             (median of {RUNS}), serialise {:>6.1} ms; ratio {:.1}",
            bytes as f64 / 1e6,
            generate.as_secs_f64() * 1e3,
            serialise.as_secs_f64() * 1e3,
            generate.as_secs_f64() / serialise.as_secs_f64(),
        );
    }
}
