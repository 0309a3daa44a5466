//! Abuse controls, decided at the edge every function is served through, before any handler
//! runs:
//!
//! - **Sizes.** A request target (path and query) longer than [`Limits::max_target_bytes`]
//!   is refused with 414, headers larger than [`Limits::max_header_bytes`] with 431. Bodies
//!   are bounded by each route, which knows its own limit ([`crate::request::read_body`]).
//! - **Rates.** Each credential (an `Authorization` header, or the page's session cookie) may
//!   make [`Limits::per_credential`] requests a second, in bursts of up to
//!   [`Limits::burst`] (a token bucket, `governor`); past it, 429 with `Retry-After`. A
//!   credential is named as the extractors read it, so spelling it another way (the
//!   scheme's case, spaces, other cookies) draws from the same bucket; calls without one
//!   share their address's, in a namespace of its own. Each partner, across all its tokens
//!   and schools, may make [`Limits::per_partner`] calls a second (in bursts of ten times
//!   that), checked by the partner credentials' extractors through [`Guard::check_partner`]
//!   once they know the partner.
//! - **Refused credentials.** A client (its address) that sends more than
//!   [`Limits::slow_after`] different credentials rollcall does not know
//!   ([`ApiError::UnknownCredential`]) within [`Limits::lock_for`] is answered a second later
//!   for each one past that (at most [`MAX_DELAY`]); at [`Limits::lock_after`] different
//!   ones, every call from it is refused with 429 until [`Limits::lock_for`] has passed, and
//!   the answer says so. Guessing needs different credentials; sending the same stale one
//!   again (a partner's old secret after a school re-granted it, from an address it shares
//!   with its calls to every other school) guesses nothing, so it is not counted again and
//!   only its rate bounds it.
//!
//! In Lambda each instance keeps its own counts; API Gateway's throttling (template.yaml)
//! bounds the whole. Nothing here logs or keeps a credential: buckets are keyed by a hash.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rollcall_core::secret::keyed_hash_bytes;

use crate::error::{ApiError, CredentialRefused};
use crate::request::{authorization, session_cookie};

/// The longest wait a refused credential adds to its answer.
pub const MAX_DELAY: Duration = Duration::from_secs(MAX_DELAY_SECONDS as u64);
const MAX_DELAY_SECONDS: u32 = 5;

/// How often forgotten clients and idle buckets are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The abuse controls' settings; [`Limits::from_env`] reads them from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Requests a second per credential; `None` for no limit.
    pub per_credential: Option<NonZeroU32>,
    /// How many requests a credential may make at once before the rate applies.
    pub burst: NonZeroU32,
    /// Requests a second per partner, over all its tokens; `None` for no limit.
    pub per_partner: Option<NonZeroU32>,
    /// Refused credentials from one client before its answers slow down.
    pub slow_after: u32,
    /// Refused credentials from one client before it is locked out; 0 never locks out.
    pub lock_after: u32,
    /// How long a lockout lasts, and the window refusals are counted over.
    pub lock_for: Duration,
    pub max_target_bytes: usize,
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_credential: NonZeroU32::new(100),
            burst: NonZeroU32::new(1000).expect("not zero"),
            per_partner: NonZeroU32::new(300),
            slow_after: 5,
            lock_after: 20,
            lock_for: Duration::from_secs(15 * 60),
            max_target_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// A setting in the environment that is not a whole number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} must be a whole number ({what}), not {value:?}")]
pub struct BadSetting {
    pub name: &'static str,
    pub what: &'static str,
    pub value: String,
}

impl Limits {
    /// No rate limit and no lockout (sizes still bounded): for benchmarks and tests that
    /// are about something else.
    pub fn unlimited() -> Self {
        Self {
            per_credential: None,
            per_partner: None,
            lock_after: 0,
            slow_after: u32::MAX,
            ..Self::default()
        }
    }

    /// The defaults, with each of these set in the environment taking their place:
    /// `ROLLCALL_RATE_PER_CREDENTIAL` (requests a second, 0 for no limit),
    /// `ROLLCALL_RATE_BURST`, `ROLLCALL_RATE_PER_PARTNER` (0 for no limit),
    /// `ROLLCALL_REFUSALS_BEFORE_SLOWDOWN`,
    /// `ROLLCALL_REFUSALS_BEFORE_LOCKOUT` (0 never locks out), `ROLLCALL_LOCKOUT_SECONDS`.
    pub fn from_env() -> Result<Self, BadSetting> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, BadSetting> {
        let number = |name: &'static str, what: &'static str| -> Result<Option<u32>, BadSetting> {
            lookup(name)
                .map(|value| {
                    value
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| BadSetting { name, what, value })
                })
                .transpose()
        };
        let mut limits = Self::default();
        if let Some(rate) = number(
            "ROLLCALL_RATE_PER_CREDENTIAL",
            "requests a second; 0 for no limit",
        )? {
            limits.per_credential = NonZeroU32::new(rate);
        }
        if let Some(burst) = number("ROLLCALL_RATE_BURST", "requests; at least 1")? {
            limits.burst = NonZeroU32::new(burst).ok_or(BadSetting {
                name: "ROLLCALL_RATE_BURST",
                what: "requests; at least 1",
                value: burst.to_string(),
            })?;
        }
        if let Some(rate) = number(
            "ROLLCALL_RATE_PER_PARTNER",
            "requests a second; 0 for no limit",
        )? {
            limits.per_partner = NonZeroU32::new(rate);
        }
        if let Some(n) = number("ROLLCALL_REFUSALS_BEFORE_SLOWDOWN", "refusals")? {
            limits.slow_after = n;
        }
        if let Some(n) = number(
            "ROLLCALL_REFUSALS_BEFORE_LOCKOUT",
            "refusals; 0 never locks out",
        )? {
            limits.lock_after = n;
        }
        if let Some(seconds) = number("ROLLCALL_LOCKOUT_SECONDS", "seconds")? {
            limits.lock_for = Duration::from_secs(seconds.into());
        }
        Ok(limits)
    }
}

/// A client, as the edge tells clients apart: its address.
pub type Client = String;

/// The different credentials of one client refused within the window.
#[derive(Debug, Clone)]
struct Refusals {
    /// Their hashes (as bucket names), at most [`Limits::lock_after`] of them.
    refused: Vec<[u8; 32]>,
    since: Instant,
    locked_until: Option<Instant>,
}

impl Refusals {
    fn new(now: Instant) -> Self {
        Self {
            refused: Vec::new(),
            since: now,
            locked_until: None,
        }
    }

    fn count(&self) -> u32 {
        u32::try_from(self.refused.len()).unwrap_or(u32::MAX)
    }
}

/// The edge's counts: each credential's bucket and each client's refusals.
pub struct Guard {
    limits: Limits,
    rates: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    partner_rates: Option<DefaultKeyedRateLimiter<String>>,
    refusals: Mutex<HashMap<Client, Refusals>>,
    swept: Mutex<Instant>,
    /// A key for hashing credentials into bucket names, made afresh at each start.
    salt: [u8; 32],
}

impl Guard {
    pub fn new(limits: Limits) -> Arc<Self> {
        let rates = limits
            .per_credential
            .map(|rate| RateLimiter::keyed(Quota::per_second(rate).allow_burst(limits.burst)));
        let partner_rates = limits.per_partner.map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(10).expect("not zero"));
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let salt = rollcall_core::secret::random_bytes::<32>();
        Arc::new(Self {
            limits,
            rates,
            partner_rates,
            refusals: Mutex::new(HashMap::new()),
            swept: Mutex::new(Instant::now()),
            salt,
        })
    }

    /// 414 or 431 for a request larger than rollcall reads.
    fn oversized(&self, request: &Request) -> Option<ApiError> {
        let target = request
            .uri()
            .path_and_query()
            .map_or(0, |pq| pq.as_str().len());
        if target > self.limits.max_target_bytes {
            return Some(ApiError::UriTooLong(format!(
                "the request's path and query are {target} bytes; rollcall reads at most {}; \
                 ask for fewer ids or filters at once",
                self.limits.max_target_bytes
            )));
        }
        let headers: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        (headers > self.limits.max_header_bytes).then(|| {
            ApiError::HeadersTooLarge(format!(
                "the request's headers are {headers} bytes; rollcall reads at most {}",
                self.limits.max_header_bytes
            ))
        })
    }

    /// The wait left of `client`'s lockout, if it is locked out.
    fn locked(&self, client: &str, now: Instant) -> Option<Duration> {
        let refusals = self.refusals.lock().expect("refusals lock");
        let until = refusals.get(client)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// The name of the request's credential's bucket (or, without one, its client's): a
    /// keyed hash, so no credential is kept.
    fn bucket(&self, request: &Request, client: &str) -> [u8; 32] {
        keyed_hash_bytes(&self.salt, bucket_of(request, client).as_bytes())
    }

    /// The wait before `bucket` may call again, if it is over its rate.
    fn over_rate(&self, bucket: &[u8; 32]) -> Option<Duration> {
        let rates = self.rates.as_ref()?;
        rates
            .check_key(bucket)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// 429 when `partner` is over its rate (over all its tokens and schools).
    pub fn check_partner(&self, partner: &str) -> Result<(), ApiError> {
        let Some(rates) = &self.partner_rates else {
            return Ok(());
        };
        let Err(not_until) = rates.check_key(&partner.to_owned()) else {
            return Ok(());
        };
        let wait = seconds(not_until.wait_time_from(DefaultClock::default().now()));
        Err(ApiError::TooManyRequests {
            message: format!(
                "partner {partner} made more than {} calls a second over all its tokens; slow \
                 down and send this call again after {wait} seconds",
                self.limits.per_partner.map_or(0, NonZeroU32::get)
            ),
            retry_after: wait,
        })
    }

    /// Counts `credential` (its bucket), refused, against `client`, unless it was refused
    /// before in the window: the delay to add to its answer.
    fn refused(&self, client: &str, credential: [u8; 32], now: Instant) -> Duration {
        let limits = &self.limits;
        let mut refusals = self.refusals.lock().expect("refusals lock");
        let entry = refusals
            .entry(client.to_owned())
            .or_insert_with(|| Refusals::new(now));
        if now.duration_since(entry.since) > limits.lock_for {
            *entry = Refusals::new(now);
        }
        // Past either count, more would change nothing: the list stays bounded.
        let enough = (limits.lock_after).max(limits.slow_after.saturating_add(MAX_DELAY_SECONDS));
        if entry.count() < enough && !entry.refused.contains(&credential) {
            entry.refused.push(credential);
            if limits.lock_after > 0 && entry.count() >= limits.lock_after {
                entry.locked_until = Some(now + limits.lock_for);
                tracing::warn!(
                    refusals = entry.count(),
                    "client locked out after refused credentials"
                );
            }
        }
        let past = entry.count().saturating_sub(limits.slow_after);
        Duration::from_secs(past.into()).min(MAX_DELAY)
    }

    /// Forgets clients whose window and lockout have passed, and idle buckets, at most once
    /// every [`SWEEP_EVERY`].
    fn sweep(&self, now: Instant) {
        {
            let mut swept = self.swept.lock().expect("sweep lock");
            if now.duration_since(*swept) < SWEEP_EVERY {
                return;
            }
            *swept = now;
        }
        let lock_for = self.limits.lock_for;
        self.refusals.lock().expect("refusals lock").retain(|_, r| {
            now.duration_since(r.since) <= lock_for || r.locked_until.is_some_and(|u| u > now)
        });
        if let Some(rates) = &self.rates {
            rates.retain_recent();
        }
        if let Some(rates) = &self.partner_rates {
            rates.retain_recent();
        }
    }
}

/// The bucket a request draws from: its credential as the extractors read it (the scheme in
/// any case, the secret trimmed), else the page's session cookie as the page reads it, else
/// its address. Each kind is named in its own namespace, so one cannot be sent as another,
/// and a credential spelt another way is still the same credential.
fn bucket_of(request: &Request, client: &str) -> String {
    let headers = request.headers();
    if let Some((scheme, secret)) = authorization(headers) {
        return format!("credential\n{scheme}\n{secret}");
    }
    if let Some(session) = session_cookie(headers) {
        return format!("session\n{session}");
    }
    format!("address\n{client}")
}

/// Seconds to wait, rounded up, as `Retry-After` says it.
fn seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Who sent `request`: the address API Gateway saw it come from (in Lambda), or the
/// connection's (on the local server).
fn client_of(request: &Request) -> Client {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref()
        && let Some(address) = &context.http.source_ip
    {
        return address.clone();
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |ConnectInfo(addr)| addr.ip().to_string(),
        )
}

/// The edge's abuse controls around one request (see the module's documentation).
pub async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    if let Some(refusal) = guard.oversized(&request) {
        return refusal.into_response();
    }
    let now = Instant::now();
    guard.sweep(now);
    let client = client_of(&request);
    if let Some(wait) = guard.locked(&client, now) {
        return ApiError::TooManyRequests {
            message: format!(
                "too many calls from your address were made with a token, key or secret \
                 rollcall does not know; calls from it are refused for {} more seconds. Check \
                 the credential your application sends before trying again",
                seconds(wait)
            ),
            retry_after: seconds(wait),
        }
        .into_response();
    }
    let bucket = guard.bucket(&request, &client);
    if let Some(wait) = guard.over_rate(&bucket) {
        return ApiError::TooManyRequests {
            message: format!(
                "more than {} calls a second were made with this credential; slow down and \
                 send this call again after {} seconds",
                guard.limits.per_credential.map_or(0, NonZeroU32::get),
                seconds(wait)
            ),
            retry_after: seconds(wait),
        }
        .into_response();
    }
    // The partner credentials' extractors find the guard here ([`Guard::check_partner`]).
    request.extensions_mut().insert(guard.clone());
    let response = next.run(request).await;
    if let Some(refused) = response.extensions().get::<CredentialRefused>() {
        let credential =
            (refused.tried).map_or(bucket, |tried| keyed_hash_bytes(&guard.salt, &tried));
        let delay = guard.refused(&client, credential, now);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment_and_bad_ones_are_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Limits::from_lookup(env(&[])).unwrap(), Limits::default());
        let set = Limits::from_lookup(env(&[
            ("ROLLCALL_RATE_PER_CREDENTIAL", "0"),
            ("ROLLCALL_RATE_PER_PARTNER", "7"),
            ("ROLLCALL_REFUSALS_BEFORE_LOCKOUT", "3"),
            ("ROLLCALL_LOCKOUT_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!(set.per_credential, None);
        assert_eq!(set.per_partner, NonZeroU32::new(7));
        assert_eq!((set.lock_after, set.lock_for), (3, Duration::from_secs(60)));
        let bad = Limits::from_lookup(env(&[("ROLLCALL_RATE_BURST", "lots")])).unwrap_err();
        assert!(bad.to_string().contains("ROLLCALL_RATE_BURST"), "{bad}");
        assert!(Limits::from_lookup(env(&[("ROLLCALL_RATE_BURST", "0")])).is_err());
    }

    fn bucket(headers: &[(&str, &str)], client: &str) -> String {
        let mut request = axum::http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        bucket_of(&request.body(axum::body::Body::empty()).unwrap(), client)
    }

    #[test]
    fn a_credential_spelt_another_way_is_the_same_bucket_and_an_address_is_not_one() {
        let key = bucket(&[("authorization", "Bearer K")], "192.0.2.1");
        for spelling in ["bearer K", "BEARER  K ", " Bearer K"] {
            assert_eq!(bucket(&[("authorization", spelling)], "192.0.2.9"), key);
        }
        let session = bucket(&[("cookie", "rollcall_admin=C")], "192.0.2.1");
        assert_eq!(
            bucket(&[("cookie", "rollcall_admin=C; a=1")], "192.0.2.2"),
            session
        );
        assert_eq!(
            bucket(&[("cookie", "a=1; rollcall_admin=C")], "192.0.2.2"),
            session
        );
        // An address sent as a credential is not that address's bucket.
        let address = bucket(&[], "192.0.2.1");
        assert_ne!(
            bucket(&[("authorization", "192.0.2.1")], "192.0.2.7"),
            address
        );
        assert_ne!(
            bucket(&[("authorization", "address 192.0.2.1")], "192.0.2.7"),
            address
        );
        assert_eq!(bucket(&[("cookie", "other=1")], "192.0.2.1"), address);
    }

    /// A guard that slows a client after 2 different refused credentials and locks it out
    /// for a minute after `lock_after` (never when 0).
    fn lockout_guard(lock_after: u32) -> Arc<Guard> {
        Guard::new(Limits {
            slow_after: 2,
            lock_after,
            lock_for: Duration::from_secs(60),
            ..Limits::default()
        })
    }

    #[test]
    fn refusals_slow_a_client_down_then_lock_it_out_for_a_while() {
        let guard = lockout_guard(4);
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..4u8)
            .map(|n| guard.refused("192.0.2.1", [n; 32], t0).as_secs())
            .collect();
        assert_eq!(delays, [0, 0, 1, 2]);
        assert_eq!(
            guard.locked("192.0.2.1", t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(59))
        );
        assert_eq!(guard.locked("192.0.2.2", t0), None, "another client is not");
        assert_eq!(
            guard.locked("192.0.2.1", t0 + Duration::from_secs(61)),
            None
        );
        // After the window, counting starts again.
        assert_eq!(
            guard
                .refused("192.0.2.1", [9; 32], t0 + Duration::from_secs(62))
                .as_secs(),
            0
        );
    }

    #[test]
    fn the_same_refused_credential_sent_again_is_counted_once() {
        let guard = lockout_guard(4);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(guard.refused("192.0.2.1", [1; 32], t0), Duration::ZERO);
        }
        assert_eq!(guard.locked("192.0.2.1", t0), None);
        for n in 2..=4u8 {
            guard.refused("192.0.2.1", [n; 32], t0);
        }
        assert!(
            guard.locked("192.0.2.1", t0).is_some(),
            "four different ones lock"
        );
    }

    #[test]
    fn without_a_lockout_the_refused_credentials_kept_stay_bounded() {
        let guard = lockout_guard(0);
        let t0 = Instant::now();
        for n in 0..=255u8 {
            guard.refused("192.0.2.1", [n; 32], t0);
        }
        assert_eq!(guard.refused("192.0.2.1", [0; 32], t0), MAX_DELAY);
        assert_eq!(guard.locked("192.0.2.1", t0), None);
        let refusals = guard.refusals.lock().unwrap();
        assert_eq!(refusals["192.0.2.1"].refused.len(), 7);
    }
}
