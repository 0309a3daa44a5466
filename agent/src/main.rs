//! `rollcall-agent`: uploads a school's MIS extract to rollcall.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rollcall-agent",
    version,
    about = "Uploads a school's MIS extracts to rollcall"
)]
struct Cli {
    /// rollcall's base URL.
    #[arg(long, env = "ROLLCALL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The school's agent key (printed by `rollcall school add`).
    #[arg(long, env = "ROLLCALL_AGENT_KEY", hide_env_values = true)]
    key: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Uploads a JSON extract `{"resultSets": {"Students": [...], ...}}`, each a full snapshot.
    Upload { file: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Upload { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let extract = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid JSON", file.display()))?;
            let client = reqwest::Client::new();
            for answer in rollcall_agent::upload(&client, &cli.url, &cli.key, &extract).await? {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            }
        }
    }
    Ok(())
}
