//! `rollcall-agent`: takes a school's MIS exports to rollcall, and rollcall's write-backs to
//! the MIS. Exit codes: 0 done; 1 an export or a request was refused (the message says which
//! and why); 2 usage or configuration; 3 rollcall could not be reached after retries; 130
//! stopped by Ctrl-C (after finishing the step it was in).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rollcall_agent::config::{Config, DEFAULT_CONFIG};
use rollcall_agent::run::{self, Options};
use rollcall_agent::stop::Stop;
use rollcall_agent::{AgentError, Server};

#[derive(Parser)]
#[command(
    name = "rollcall-agent",
    version,
    about = "Takes a school's MIS exports to rollcall, and rollcall's write-backs to the MIS",
    long_about = "Takes a school's MIS exports to rollcall, and rollcall's write-backs to the MIS.\n\n\
        Start with `rollcall-agent init`, then `rollcall-agent run` (or `watch`).\n\
        Exit codes: 0 done; 1 an export or a request was refused; 2 usage or configuration;\n\
        3 rollcall could not be reached after retries; 130 stopped by Ctrl-C (run; watch exits 0)."
)]
struct Cli {
    /// rollcall's base URL, e.g. https://rollcall.example.org (for `init` and `upload`).
    #[arg(long, global = true, env = "ROLLCALL_URL")]
    url: Option<String>,
    /// The school's agent key, printed once by `rollcall school add` (for `init` and `upload`).
    #[arg(
        long,
        global = true,
        env = "ROLLCALL_AGENT_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the configuration (readable by its owner only), checks the URL and key against
    /// rollcall, and says which school they belong to.
    Init {
        /// The folder the MIS writes its exports to (<ResultSet>.csv, <ResultSet>.json, CTF .xml).
        #[arg(long)]
        source: PathBuf,
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// One pass: reads the exports, uploads what changed since the last confirmed upload,
    /// takes the school's tasks into the outbox and reports the results the MIS left there.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Read and check everything and print what would be sent, without any network call.
        #[arg(long)]
        dry_run: bool,
        /// Send every result set, changed or not.
        #[arg(long)]
        full: bool,
        /// How long to keep retrying when rollcall cannot be reached (e.g. 10m, 90s, 1h).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        max_wait: Duration,
    },
    /// Runs `run` on a schedule until stopped; Ctrl-C lets the current pass finish and exits.
    Watch {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// How often (e.g. 1h, 30m).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        every: Duration,
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        max_wait: Duration,
    },
    /// The last runs, what was sent and when, what is pending, the outbox, and what rollcall
    /// holds of the school now.
    Status {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Uploads one JSON extract `{"resultSets": {"Students": [...], ...}}` (for scripts).
    Upload { file: PathBuf },
}

/// `90s`, `10m`, `1h`, `2d`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 10m or 1h"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(number * seconds))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match command(cli.command, cli.url, cli.key).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rollcall-agent: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn load(path: &Path) -> Result<Config, AgentError> {
    Config::load(path).map_err(|e| AgentError::Config(e.to_string()))
}

async fn command(
    command: Command,
    url: Option<String>,
    key: Option<String>,
) -> Result<(), AgentError> {
    let key = || {
        key.clone().ok_or_else(|| {
            AgentError::Config(
                "give the school's agent key with --key (or ROLLCALL_AGENT_KEY)".to_owned(),
            )
        })
    };
    match command {
        Command::Init { source, config } => {
            let url = url.clone().ok_or_else(|| {
                AgentError::Config("give rollcall's base URL with --url".to_owned())
            })?;
            let school = rollcall_agent::setup::init(url, key()?, source, &config).await?;
            println!(
                "connected to rollcall as {school}; configuration written to {} (keep it private)",
                config.display()
            );
            println!(
                "next: `rollcall-agent run --dry-run` to check the exports, then `rollcall-agent run`"
            );
            Ok(())
        }
        Command::Run {
            config: path,
            dry_run,
            full,
            max_wait,
        } => {
            let config = load(&path)?;
            let mut server = Server::new(&config.url, &config.key, max_wait);
            server.stop = Stop::on_signals();
            let options = Options {
                dry_run,
                full,
                progress: std::io::stdout().is_terminal(),
            };
            let outcome =
                run::run(&path, &config, &server, options, &mut std::io::stdout()).await?;
            if !dry_run {
                println!(
                    "done: {} result sets sent, {} unchanged, {} tasks written to the outbox, {} results reported",
                    outcome.sent.len(),
                    outcome.unchanged.len(),
                    outcome.tasks_written,
                    outcome.results_reported
                );
            }
            Ok(())
        }
        Command::Watch {
            config: path,
            every,
            max_wait,
        } => watch(&path, every, max_wait).await,
        Command::Status { config: path } => status(&path).await,
        Command::Upload { file } => {
            let url = url.unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
            let key = key()?;
            let bytes = std::fs::read(&file)
                .map_err(|e| AgentError::Input(format!("{}: {e}", file.display())))?;
            let extract = serde_json::from_slice(&bytes).map_err(|e| {
                AgentError::Input(format!("{} is not valid JSON: {e}", file.display()))
            })?;
            let client = reqwest::Client::new();
            for answer in rollcall_agent::upload(&client, &url, &key, &extract).await? {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

async fn watch(path: &Path, every: Duration, max_wait: Duration) -> Result<(), AgentError> {
    let config = load(path)?;
    let mut server = Server::new(&config.url, &config.key, max_wait);
    server.stop = Stop::on_signals();
    loop {
        let options = Options {
            progress: std::io::stdout().is_terminal(),
            ..Options::default()
        };
        match run::run(path, &config, &server, options, &mut std::io::stdout()).await {
            Ok(outcome) => println!(
                "run done: {} sent, {} unchanged; next in {}s",
                outcome.sent.len(),
                outcome.unchanged.len(),
                every.as_secs()
            ),
            Err(AgentError::Stopped(what)) => {
                println!("stopped before {what}; the next run goes on from there");
                return Ok(());
            }
            // A refused export or an unreachable server is reported; the next run tries again.
            Err(error @ AgentError::Config(_)) => return Err(error),
            Err(error) => eprintln!("rollcall-agent: {error}; next try in {}s", every.as_secs()),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = server.stop.requested_now() => {
                println!("stopped");
                return Ok(());
            }
        }
    }
}

async fn status(path: &Path) -> Result<(), AgentError> {
    let config = load(path)?;
    let server = Server::new(&config.url, &config.key, Duration::from_secs(10));
    rollcall_agent::status::status(path, &config, &server, &mut std::io::stdout()).await
}
