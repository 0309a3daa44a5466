//! `rollcall`: the operator's command line. Registers schools and partners, runs the purge,
//! and runs the whole product locally (`rollcall dev`) on the embedded store.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollcall::demo::{self, DemoFile};
use rollcall_consent::registry::{register_partner, register_school, replace_admin_key};
use rollcall_core::ports::{Clock, Ports, SystemClock};
use rollcall_infra::aws::{AwsPorts, AwsSettings, provision_emulator};
use rollcall_infra::local::{LocalPorts, LocalUploadSigner};
use rollcall_infra::telemetry::{LogFormat, init};
use rollcall_purge::{PurgeState, purge};
use secrecy::ExposeSecret;

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

#[derive(Parser)]
#[command(
    name = "rollcall",
    version,
    about = "The consented school-data broker: operator commands and the local stack"
)]
struct Cli {
    /// Where the embedded store keeps its data.
    #[arg(
        long,
        global = true,
        env = "ROLLCALL_DATA_DIR",
        default_value = ".rollcall"
    )]
    data_dir: PathBuf,
    /// Use the AWS adapters (S3, DynamoDB, KMS) named by AWS_REGION, ROLLCALL_BUCKET,
    /// ROLLCALL_TABLE and ROLLCALL_KEY_ID, instead of the embedded store. With --endpoint-url
    /// and none of those set, fresh resources are created on that endpoint (an emulator).
    #[arg(long, global = true)]
    aws: bool,
    /// With --aws: send every AWS call to this endpoint (e.g. a local moto_server).
    #[arg(long, global = true, env = "ROLLCALL_AWS_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Schools: `school add --estab 9992001 --name "..."`.
    #[command(subcommand)]
    School(SchoolCommand),
    /// Partners: `partner add --id acme --name "..." --scopes Student,Contact`.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Disposes of data more than 30 days out of date, superseded versions and expired tokens.
    Purge,
    /// Prints the partner API's OpenAPI 3.1 document (the one served at /api/v1/openapi.json).
    Openapi,
    /// Runs every API on 127.0.0.1 over the embedded store (or, with --aws, the AWS adapters).
    Dev {
        /// Seed a synthetic school, a partner and a partial consent, and print curl lines.
        #[arg(long)]
        demo: bool,
        /// The port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// How many pupils the demo school has.
        #[arg(long, default_value_t = demo::PUPILS)]
        pupils: usize,
    },
    /// Prints a generated school as the `{"resultSets": ...}` extract its agent would upload
    /// (deterministic for a seed), to make a test school of any size.
    DemoSchool {
        #[arg(long, default_value_t = demo::PUPILS)]
        pupils: usize,
        #[arg(long, default_value_t = demo::SEED)]
        seed: u64,
        /// The school's establishment number.
        #[arg(long, default_value = demo::ESTAB)]
        estab: String,
        /// The day the school's dates are relative to (yyyy-mm-dd; default today, UTC).
        #[arg(long, value_parser = parse_day)]
        today: Option<time::Date>,
    },
}

#[derive(Subcommand)]
enum SchoolCommand {
    /// Registers a school and prints its agent key and admin key (shown only once).
    Add {
        #[arg(long)]
        estab: String,
        #[arg(long)]
        name: String,
    },
    /// Gives a school a new admin key and prints it (shown only once). The old key stops
    /// working at once, and every signed-in session of the school's consent page ends.
    RotateAdminKey {
        #[arg(long)]
        estab: String,
    },
}

#[derive(Subcommand)]
enum PartnerCommand {
    /// Registers a partner with the scopes it asks schools for, and prints its management
    /// secret (shown only once).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Comma-separated XoD scope names, e.g. Student,Contact,School.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init(LogFormat::Text);
    match cli.command {
        Command::Dev { demo, port, pupils } => return dev(&cli, demo, port, pupils).await,
        Command::DemoSchool {
            pupils,
            seed,
            ref estab,
            today,
        } => {
            rollcall_core::model::Estab::parse(estab)?;
            let today = today.unwrap_or_else(|| SystemClock.now().utc_date());
            let school = rollcall_core::synthetic::sandbox(estab, pupils, seed, today);
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &school.upload_body())?;
            std::io::Write::write_all(&mut out, b"\n")?;
            return Ok(());
        }
        Command::Openapi => {
            let document = rollcall_serve::openapi::document();
            println!("{}", serde_json::to_string_pretty(&document)?);
            return Ok(());
        }
        _ => {}
    }
    let Adapters { ports, .. } = open_adapters(&cli, None).await?;
    match cli.command {
        Command::School(SchoolCommand::Add { estab, name }) => {
            let now = ports.clock.now();
            let new = register_school(ports.control.registry.as_ref(), &estab, &name, now).await?;
            println!(
                "school {} registered: {}",
                new.school.estab, new.school.name
            );
            println!(
                "agent key (for the school's agent): {}",
                new.agent_key.expose_secret()
            );
            println!(
                "admin key (for the school's data controller): {}",
                new.admin_key.expose_secret()
            );
            println!("These keys are shown only once; rollcall keeps only their hashes.");
        }
        Command::School(SchoolCommand::RotateAdminKey { estab }) => {
            let control = &ports.control;
            let key =
                replace_admin_key(control.schools.as_ref(), control.registry.as_ref(), &estab)
                    .await?;
            println!("new admin key for school {estab}: {}", key.expose_secret());
            println!(
                "The old key no longer works, and every signed-in session of the consent page has ended. \
                 This key is shown only once."
            );
        }
        Command::Partner(PartnerCommand::Add { id, name, scopes }) => {
            let now = ports.clock.now();
            let scopes: Vec<String> = scopes.iter().map(|s| s.trim().to_owned()).collect();
            let new =
                register_partner(ports.control.registry.as_ref(), &id, &name, &scopes, now).await?;
            println!(
                "partner {} registered: {}",
                new.partner.id, new.partner.name
            );
            println!(
                "management secret: {}",
                new.management_secret.expose_secret()
            );
            println!("It is shown only once; rollcall keeps only its hash.");
        }
        Command::Purge => {
            let report = purge(&PurgeState::new(&ports)).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Dev { .. } | Command::Openapi | Command::DemoSchool { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

/// A `yyyy-mm-dd` day.
fn parse_day(text: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format).map_err(|_| format!("`{text}` is not a date like 2026-12-07"))
}

/// The ports, and with the local adapters the signer of their upload URLs.
struct Adapters {
    ports: Ports,
    local_signer: Option<Arc<LocalUploadSigner>>,
}

/// The embedded store in the data directory (upload URLs naming `public_url`), or the AWS
/// adapters.
async fn open_adapters(cli: &Cli, public_url: Option<&str>) -> anyhow::Result<Adapters> {
    let clock = Arc::new(SystemClock);
    if !cli.aws {
        let mut local = LocalPorts::open(&cli.data_dir)?;
        if let Some(url) = public_url {
            local = local.with_public_url(url);
        }
        return Ok(Adapters {
            ports: local.ports(clock),
            local_signer: Some(local.upload_signer.clone()),
        });
    }
    let aws = match (AwsSettings::from_env(), &cli.endpoint_url) {
        (Ok(mut settings), endpoint) => {
            settings.endpoint_url = endpoint.clone().or(settings.endpoint_url);
            AwsPorts::connect(settings).await
        }
        (Err(_), Some(endpoint)) => {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-2".into());
            let aws = provision_emulator(endpoint, &region, "rollcall-dev")
                .await
                .with_context(|| format!("creating a bucket, table and key on {endpoint}"))?;
            println!(
                "created on {endpoint}: bucket {}, table {}, key {}",
                aws.settings.bucket, aws.settings.table, aws.settings.key_id
            );
            aws
        }
        (Err(error), None) => return Err(error),
    };
    std::fs::create_dir_all(&cli.data_dir)?;
    Ok(Adapters {
        ports: aws.ports(clock),
        local_signer: None,
    })
}

async fn dev(cli: &Cli, with_demo: bool, port: u16, pupils: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| {
            format!("listening on 127.0.0.1:{port} (use --port 0 for any free port)")
        })?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let Adapters {
        ports,
        local_signer,
    } = open_adapters(cli, Some(&base_url)).await?;
    let (ports, data_dir) = (&ports, cli.data_dir.as_path());
    let mut file = if with_demo {
        println!("seeding the demo school ({pupils} pupils)...");
        demo::seed(ports, data_dir, pupils).await?
    } else {
        DemoFile::read(data_dir)?.unwrap_or_default()
    };
    file.base_url = base_url.clone();
    file.write(data_dir)?;
    println!("rollcall listening on {base_url}");
    println!(
        "data directory: {} ({} written)",
        data_dir.display(),
        demo::DEMO_FILE
    );
    if with_demo {
        println!("\nTry it:\n{}\n", demo::curl_lines(&file));
    }
    axum::serve(
        listener,
        rollcall::local_stack(ports, local_signer)
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
