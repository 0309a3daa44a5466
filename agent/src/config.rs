//! The agent's configuration file (`rollcall-agent.toml` by default): where rollcall is, the
//! school's agent key, and the folder of MIS exports. It holds a secret, so it is written
//! readable by its owner only. The state file and the outbox live beside it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_CONFIG: &str = "rollcall-agent.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// rollcall's base URL, e.g. `https://rollcall.example.org`.
    pub url: String,
    /// The school's agent key, from `rollcall school add`.
    pub key: String,
    /// The folder the MIS writes its exports to.
    pub source: PathBuf,
    /// The school the key uploads for (its DfE number), as rollcall said at `init`: a CTF
    /// written by another school is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estab: Option<String>,
    /// Where write-backs are written for the MIS side (default: `outbox/` beside the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<PathBuf>,
}

/// A configuration file that cannot be used, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} does not exist; run `rollcall-agent init --url URL --key KEY --source DIR` first")]
    Missing(PathBuf),
    #[error("{path} cannot be read: {error}")]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a valid configuration: {message}; run `rollcall-agent init` again")]
    Invalid { path: PathBuf, message: String },
    #[error("{path} cannot be written: {error}")]
    Unwritable {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing(path.to_owned()),
            _ => ConfigError::Unreadable {
                path: path.to_owned(),
                error,
            },
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        // Relative folders are relative to the configuration file, not to where it is run.
        let base = path.parent().unwrap_or(Path::new("."));
        config.source = base.join(&config.source);
        config.outbox = config.outbox.map(|o| base.join(o));
        Ok(config)
    }

    /// Writes the configuration readable and writable by its owner only.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let unwritable = |error| ConfigError::Unwritable {
            path: path.to_owned(),
            error,
        };
        let text = toml::to_string(self).map_err(|e| unwritable(std::io::Error::other(e)))?;
        let header =
            "# rollcall agent configuration: holds the school's agent key; keep it private.\n";
        crate::files::write_private(path, format!("{header}{text}").as_bytes()).map_err(unwritable)
    }

    /// The outbox folder: configured, or `outbox/` beside the configuration file.
    pub fn outbox(&self, config_path: &Path) -> PathBuf {
        self.outbox
            .clone()
            .unwrap_or_else(|| beside(config_path, "outbox"))
    }
}

/// The state file of a configuration: `<name>.state.json` beside it.
pub fn state_path(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("rollcall-agent");
    beside(config_path, &format!("{stem}.state.json"))
}

fn beside(config_path: &Path, name: &str) -> PathBuf {
    config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_config_reads_back_private_and_relative_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let config = Config {
            url: "http://127.0.0.1:8080".into(),
            key: "rca_secret".into(),
            source: PathBuf::from("exports"),
            estab: Some("9990001".into()),
            outbox: None,
        };
        config.write(&path).unwrap();
        let read = Config::load(&path).unwrap();
        assert_eq!(read.source, dir.path().join("exports"));
        assert_eq!(read.outbox(&path), dir.path().join("outbox"));
        assert_eq!(state_path(&path), dir.path().join("agent.state.json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let missing = Config::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(
            missing.to_string().contains("rollcall-agent init"),
            "{missing}"
        );
        std::fs::write(&path, "url = 1\n").unwrap();
        let invalid = Config::load(&path).unwrap_err();
        assert!(
            invalid.to_string().contains("not a valid configuration"),
            "{invalid}"
        );
    }
}
