//! `rollcall-agent init`: checks the URL and key against rollcall and writes the
//! configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::server::{AgentError, Server};

/// Checks the key against rollcall (`GET /agent/v1/whoami`), then writes the configuration
/// at `path`; answers the school, as `name (estab)`.
pub async fn init(
    url: String,
    key: String,
    source: PathBuf,
    path: &Path,
) -> Result<String, AgentError> {
    if !source.is_dir() {
        return Err(AgentError::Config(format!(
            "{} is not a folder; give the folder the MIS writes its exports to",
            source.display()
        )));
    }
    let server = Server::new(&url, &key, Duration::from_secs(30));
    let school = server
        .call("the agent key", |client| {
            client.get(server.url("/agent/v1/whoami"))
        })
        .await
        .map_err(|error| match error {
            AgentError::Refused {
                status, message, ..
            } if status.as_u16() == 401 => AgentError::Config(format!(
                "rollcall at {url} does not know this agent key: {message}"
            )),
            other => other,
        })?;
    let source = std::fs::canonicalize(&source).unwrap_or(source);
    let estab = school.body["estab"].as_str().map(str::to_owned);
    let config = Config {
        url,
        key,
        source,
        estab,
        outbox: None,
    };
    config
        .write(path)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    Ok(format!(
        "{} ({})",
        school.body["name"].as_str().unwrap_or("?"),
        school.body["estab"].as_str().unwrap_or("?")
    ))
}
