//! Reads a Common Transfer File and prints how many pupils, contacts and links it holds, its
//! warnings, how long reading took and the process's peak memory:
//!
//! ```text
//! cargo run --release -p rollcall-agent --example read_ctf -- PATH
//! cargo run --release -p rollcall-agent --example read_ctf -- --synthetic PUPILS PATH [ESTAB]
//! ```
//!
//! With `--synthetic`, a synthetic school of PUPILS pupils is first written to PATH as CTF 25,
//! from school ESTAB (default 9992001; give the school an agent uploads for, to upload it).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use rollcall_agent::sources::ctf::read_ctf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [path] => path.clone(),
        [flag, pupils, path, rest @ ..] if flag == "--synthetic" && rest.len() <= 1 => {
            let pupils: usize = pupils.parse().context("PUPILS must be a number")?;
            let estab = rest.first().map_or("9992001", String::as_str);
            if estab.len() != 7 || !estab.bytes().all(|b| b.is_ascii_digit()) {
                bail!("ESTAB must be a school's seven-digit number, e.g. 9992001");
            }
            let start = Instant::now();
            let school = rollcall_core::synthetic::school(estab, pupils, 1);
            let generated = start.elapsed();
            let start = Instant::now();
            let xml = rollcall_core::synthetic::ctf::ctf(&school, 25, &estab[..3], &estab[3..]);
            let written = start.elapsed();
            std::fs::write(path, &xml).with_context(|| format!("writing {path}"))?;
            println!(
                "wrote {path}: {pupils} pupils, {:.1} MB; generated in {:.1} ms, CTF written in {:.1} ms",
                xml.len() as f64 / 1e6,
                generated.as_secs_f64() * 1e3,
                written.as_secs_f64() * 1e3
            );
            path.clone()
        }
        _ => bail!("usage: read_ctf PATH | read_ctf --synthetic PUPILS PATH [ESTAB]"),
    };
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    let before = peak_memory_kb();
    let start = Instant::now();
    let extract = match read_ctf(Path::new(&path), BufReader::new(file)) {
        Ok(extract) => extract,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let elapsed = start.elapsed();
    println!(
        "{path}: CTF {}, from {} {} {}: {} pupils, {} contacts, {} pupil-contact links, {} warnings; \
         read in {:.1} ms",
        extract.version,
        extract.source_school.0,
        extract.source_school.1,
        extract.source_school.2,
        extract.students.len(),
        extract.contacts.len(),
        extract.student_contacts.len(),
        extract.warnings.len(),
        elapsed.as_secs_f64() * 1e3
    );
    for warning in &extract.warnings {
        println!("warning: {warning}");
    }
    if let (Some(before), Some(after)) = (before, peak_memory_kb()) {
        println!("peak memory: {after} kB (before reading: {before} kB)");
    }
    Ok(())
}

/// The process's peak resident memory (Linux's `VmHWM`), where the system tells it.
fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
