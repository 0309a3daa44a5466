//! The access log keeps every answered read even when the process dies: the real `rollcall dev`
//! binary serves partners reading as fast as they can, is killed (SIGKILL, no chance to flush
//! anything), and its store is counted.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rollcall::demo::DemoFile;
use serde_json::{Value, json};

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rollcall dev --demo` on a free port in a fresh data directory, once it listens.
async fn start() -> (Server, DemoFile) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["dev", "--demo", "--pupils", "40", "--port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        dir: dir.path().to_path_buf(),
        _dir: dir,
    };
    for _ in 0..600 {
        if let Ok(Some(demo)) = DemoFile::read(&server.dir)
            && !demo.base_url.is_empty()
            && reqwest::get(format!("{}/api/v1/openapi.json", demo.base_url))
                .await
                .is_ok()
        {
            return (server, demo);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("rollcall dev did not start within a minute");
}

fn logged_reads(dir: &std::path::Path) -> usize {
    let db = rusqlite::Connection::open(dir.join("control.sqlite3")).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM access_log WHERE endpoint = 'Students' AND refused_status IS NULL",
        [],
        |row| row.get::<_, i64>(0),
    )
    .unwrap() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answered_read_is_missing_from_the_access_log_after_a_kill() {
    let (mut server, demo) = start().await;
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{}/idaas/sts/STS/GetToken", demo.base_url))
        .json(&json!({
            "relyingParty": demo.partner,
            "thirdPartyId": "XporterOnDemand",
            "estab": demo.estab,
            "password": demo.password,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/School/{}/Students?pageSize=5",
        demo.base_url,
        demo.estab.as_deref().unwrap()
    );
    let answered = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token, answered) =
                (client.clone(), url.clone(), token.clone(), answered.clone());
            tokio::spawn(async move {
                loop {
                    let sent = client
                        .get(&url)
                        .header("authorization", format!("Idaas {token}"))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    // Answered means the whole answer arrived.
                    if response.status() == 200 && response.bytes().await.is_ok() {
                        answered.fetch_add(1, Ordering::SeqCst);
                    } else {
                        break;
                    }
                }
            })
        })
        .collect();
    while answered.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);
    let logged = logged_reads(&server.dir);
    assert!(
        logged >= answered,
        "{answered} reads were answered but only {logged} are in the access log"
    );
    // At most the reads in flight when the process died were logged and not answered.
    assert!(
        logged <= answered + 4,
        "{logged} logged, {answered} answered"
    );
}
