//! Ctrl-C on the real binary: `watch` and `run` waiting to retry an upload stop at once,
//! leave the upload recorded as pending (the next run finishes it under the same key), and
//! exit 0 (`watch`) or 130 (`run`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A configuration for a rollcall that is not there (a port nobody listens on), with one
/// export to send.
fn agent_folder(dir: &Path) -> std::path::PathBuf {
    let source = dir.join("exports");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("Students.csv"), "Id,Forename\n1,Ann\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("rollcall-agent.toml");
    std::fs::write(
        &config,
        format!("url = \"http://127.0.0.1:{port}\"\nkey = \"rca_test\"\nsource = \"exports\"\n"),
    )
    .unwrap();
    config
}

/// Starts the agent and waits until it says it is waiting to retry.
fn start_until_retrying(args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollcall-agent"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the agent ended before retrying"
        );
        if line.contains("retrying in") {
            break;
        }
    }
    // Keep draining stderr so the agent never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, at most `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the agent did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pending_uploads(config: &Path) -> usize {
    let state = config.with_file_name("rollcall-agent.state.json");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    state["pending"].as_array().map_or(0, Vec::len)
}

#[test]
fn watch_stops_at_ctrl_c_while_waiting_to_retry_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = agent_folder(dir.path());
    let config_arg = config.to_str().unwrap();
    let mut child = start_until_retrying(&[
        "watch",
        "--config",
        config_arg,
        "--every",
        "1h",
        "--max-wait",
        "10m",
    ]);
    interrupt(&child);
    let status = exit_within(&mut child, Duration::from_secs(10));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("stopped before retrying"), "{stdout}");
    assert_eq!(pending_uploads(&config), 1, "the upload is left to finish");
}

#[test]
fn run_stops_at_ctrl_c_while_waiting_to_retry_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let config = agent_folder(dir.path());
    let config_arg = config.to_str().unwrap();
    let mut child = start_until_retrying(&["run", "--config", config_arg, "--max-wait", "10m"]);
    interrupt(&child);
    let status = exit_within(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert_eq!(pending_uploads(&config), 1);
}
