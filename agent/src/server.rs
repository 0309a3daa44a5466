//! rollcall as the agent sees it: every call authenticated with the agent key, transient
//! failures (no connection, timeouts, 429, 5xx) retried with exponential backoff and jitter for
//! at most `max_wait`, and a refusal (any other 4xx) never retried but returned with
//! rollcall's message.

use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::stop::Stop;

/// What went wrong, and how the agent exits for it.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// An export the agent cannot use (exit 1).
    #[error("{0}")]
    Input(String),
    /// rollcall refused a request (exit 1).
    #[error("rollcall refused {what} ({status}): {message}")]
    Refused {
        what: String,
        status: StatusCode,
        message: String,
    },
    /// The configuration or the command line (exit 2).
    #[error("{0}")]
    Config(String),
    /// rollcall did not answer in time (exit 3).
    #[error(
        "rollcall at {url} could not be reached for {what} ({last}); retried for {waited}s. \
         Check the URL, the network and that rollcall is up, then run again: nothing is lost, \
         the next run finishes the job"
    )]
    Unreachable {
        url: String,
        what: String,
        last: String,
        waited: u64,
    },
    /// Asked to stop (Ctrl-C) before `0` (exit 130).
    #[error("stopped before {0}, as asked; nothing is lost: the next run goes on from here")]
    Stopped(String),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl AgentError {
    /// The process exit code: 1 refused input or server refusal, 2 usage or configuration,
    /// 3 server unreachable after retries, 130 stopped by Ctrl-C.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) | Self::Refused { .. } | Self::Other(_) => 1,
            Self::Config(_) => 2,
            Self::Unreachable { .. } => 3,
            Self::Stopped(_) => 130,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    /// The server answered a repeated idempotency key with its first answer.
    pub replayed: bool,
}

#[derive(Clone)]
pub struct Server {
    pub client: Client,
    pub base_url: String,
    key: String,
    /// The longest the agent keeps retrying one call.
    pub max_wait: Duration,
    /// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
    pub first_pause: Duration,
    /// Asked, a call waiting to retry gives up, and a pass starts no other step.
    pub stop: Stop,
}

const MAX_PAUSE: Duration = Duration::from_secs(60);

impl Server {
    pub fn new(base_url: &str, key: &str, max_wait: Duration) -> Self {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap_or_default();
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            max_wait,
            first_pause: Duration::from_millis(500),
            stop: Stop::default(),
        }
    }

    /// Refuses to start `what` once a stop is asked.
    pub fn check_stop(&self, what: &str) -> Result<(), AgentError> {
        if self.stop.requested() {
            Err(AgentError::Stopped(what.to_owned()))
        } else {
            Ok(())
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends the request `build` makes (again on each attempt), with the agent key.
    pub async fn call(
        &self,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Answer, AgentError> {
        let started = tokio::time::Instant::now();
        let mut pause = self.first_pause;
        loop {
            let outcome = build(&self.client).bearer_auth(&self.key).send().await;
            let (last, wait) = match outcome {
                Ok(response) if is_transient(response.status()) => {
                    let status = response.status();
                    let after = retry_after(&response);
                    (format!("it answered {status}"), after.unwrap_or(pause))
                }
                Ok(response) => return answer(what, response).await,
                Err(error) => (describe(&error), pause),
            };
            let waited = started.elapsed();
            if waited + wait > self.max_wait {
                return Err(AgentError::Unreachable {
                    url: self.base_url.clone(),
                    what: what.to_owned(),
                    last,
                    waited: waited.as_secs(),
                });
            }
            eprintln!(
                "rollcall-agent: {what}: {last}; retrying in {:.1}s",
                wait.as_secs_f64()
            );
            tokio::select! {
                () = tokio::time::sleep(jitter(wait)) => {}
                () = self.stop.requested_now() => {}
            }
            self.check_stop(&format!("retrying {what}"))?;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(MAX_PAUSE.as_secs())))
}

/// Between half and all of `wait`, so that many agents retrying do not retry together.
fn jitter(wait: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut byte);
    wait.mul_f64(0.5 + f64::from(byte[0]) / 510.0)
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "it did not answer in time".to_owned()
    } else if error.is_connect() {
        "the connection was refused or failed".to_owned()
    } else {
        format!("the request failed: {error}")
    }
}

async fn answer(what: &str, response: reqwest::Response) -> Result<Answer, AgentError> {
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let text = response.text().await.unwrap_or_default();
    let parsed = serde_json::from_str::<Value>(&text);
    if status.is_success() {
        // An answer the agent cannot read is an error to report, never "nothing to do".
        let body = match parsed {
            Ok(body) => body,
            Err(_) if text.trim().is_empty() => Value::Null,
            Err(error) => {
                return Err(AgentError::Other(anyhow::anyhow!(
                    "rollcall answered {what} with a body the agent cannot read ({error}); \
                     nothing was lost: report this to rollcall's operator"
                )));
            }
        };
        return Ok(Answer {
            status,
            body,
            replayed,
        });
    }
    let body = parsed.unwrap_or(Value::Null);
    let message = body["ExceptionMessage"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .map_or_else(|| text.chars().take(300).collect(), str::to_owned);
    Err(AgentError::Refused {
        what: what.to_owned(),
        status,
        message,
    })
}
