//! Reading requests: credentials, bodies (size-limited, JSON with clear errors) and query
//! parameters matched without regard to case.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, COOKIE};
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The credential after `Authorization: <scheme> `, as [`authorization`] reads it, or 401
/// saying what to send.
pub fn credential(headers: &HeaderMap, scheme: &str, what: &str) -> Result<SecretString, ApiError> {
    match authorization(headers) {
        Some((sent, secret)) if sent.eq_ignore_ascii_case(scheme) && !secret.is_empty() => {
            Ok(SecretString::from(secret))
        }
        _ => Err(ApiError::Unauthorized(format!(
            "send the {what} in the header `Authorization: {scheme} <{what}>`"
        ))),
    }
}

/// The consent page's session cookie.
pub const SESSION_COOKIE: &str = "rollcall_admin";

/// The value of the page's session cookie as the page reads it: the first one sent.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `Authorization: <scheme> <secret>` read once for every use: the scheme in lower case and
/// the secret trimmed. [`credential`] and the abuse controls' buckets both read it here, so
/// a bucket is named after exactly the credential an extractor checks.
pub fn authorization(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.trim().split_once(' ')?;
    Some((scheme.to_ascii_lowercase(), secret.trim().to_owned()))
}

/// Reads a whole body of at most `limit` bytes; a larger one is refused with 413 before it is
/// read in full, saying what the limit is and what to do instead.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    advice: &str,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the body is larger than {} bytes ({} MiB), rollcall's limit for this call; {advice}",
            limit,
            limit / (1024 * 1024)
        ))
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(error) => {
            let source = error.into_inner();
            if source
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large())
            } else {
                Err(ApiError::BadRequest(
                    "the request body could not be read completely; send it again".to_owned(),
                ))
            }
        }
    }
}

/// Parses a JSON body into `T`, or 400 saying where the JSON is wrong and what shape to send.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let problem = match error.classify() {
            serde_json::error::Category::Data => format!("{error}"),
            _ => format!(
                "the body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
        };
        ApiError::BadRequest(format!("{problem}; send {expected}"))
    })
}

/// A request body type: the shape to tell a caller who sent something else, and how large it
/// may be.
pub trait BodyShape: DeserializeOwned {
    /// What to send, as the 400 for a malformed body says it (e.g. `{"scopes": [...]}`).
    const SHAPE: &'static str;
    /// The largest body accepted.
    const LIMIT: usize = 64 * 1024;
    /// What to do about a body over the limit.
    const ADVICE: &'static str = "send a smaller JSON object";

    /// What an empty body means, if it may be empty (e.g. "end access now").
    fn when_empty() -> Option<Self> {
        None
    }
}

/// A JSON body of shape `T`, read within `T::LIMIT` (413 above it) and parsed with our
/// rejection (400 saying where the JSON is wrong and what shape to send).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: BodyShape> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBodyBytes(value, _) = JsonBodyBytes::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A [`JsonBody`] with the bytes it was read from (for a call that hashes its body, such as
/// one with an `Idempotency-Key`).
pub struct JsonBodyBytes<T>(pub T, pub Vec<u8>);

impl<S: Send + Sync, T: BodyShape> FromRequest<S> for JsonBodyBytes<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_body(body, &parts.headers, T::LIMIT, T::ADVICE).await?;
        if bytes.iter().all(u8::is_ascii_whitespace)
            && let Some(empty) = T::when_empty()
        {
            return Ok(Self(empty, bytes));
        }
        let value = json_body(&bytes, T::SHAPE)?;
        Ok(Self(value, bytes))
    }
}

/// Query parameters, looked up without regard to the case of their names (XoD clients send
/// `pageSize`, `PageSize` and `pagesize`).
#[derive(Debug, Default, Clone)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let Some(query) = query else {
            return Ok(Self::default());
        };
        serde_urlencoded::from_str(query).map(Self).map_err(|_| {
            ApiError::BadRequest(
                "the query string is not valid URL encoding; encode parameter values with \
                 percent-escapes"
                    .to_owned(),
            )
        })
    }

    /// The names given, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }

    /// The value of `name`; when it is given twice, the last one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A whole number from 1 to `max` (`default` when absent), or 400 naming the bounds.
    pub fn bounded(&self, name: &str, default: u64, max: u64) -> Result<u64, ApiError> {
        let value = self.number(name)?.unwrap_or(default);
        if !(1..=max).contains(&value) {
            return Err(ApiError::BadRequest(format!(
                "`{name}` must be between 1 and {max}"
            )));
        }
        Ok(value)
    }

    /// A whole number written in ASCII digits alone (no sign or spaces, as the OpenAPI
    /// document's `integer` says), or 400 naming the parameter.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|text| {
                let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
                if !digits {
                    return Err(ApiError::BadRequest(format!(
                        "`{name}` must be a whole number written in digits, e.g. {name}=1"
                    )));
                }
                text.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(format!("`{name}` is too large; e.g. {name}=1"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_match_without_case() {
        let params = QueryParams::parse(Some("PAGESIZE=5&page=2&page=3")).unwrap();
        assert_eq!(params.number("pageSize").unwrap(), Some(5));
        assert_eq!(params.get("Page"), Some("3"));
        assert!(
            QueryParams::parse(Some("pageSize=x"))
                .unwrap()
                .number("pageSize")
                .is_err()
        );
        for text in ["+5", " 5", "5 ", "-1", "", "٥", "99999999999999999999"] {
            let query = format!("pageSize={}", text.replace('+', "%2B"));
            let params = QueryParams::parse(Some(&query)).unwrap();
            let error = params.number("pageSize").expect_err(text);
            let too_large = text.len() > 19;
            assert_eq!(
                error.message().contains("too large"),
                too_large,
                "{text:?}: {error:?}"
            );
        }
    }

    #[test]
    fn credentials_need_the_scheme() {
        let mut headers = HeaderMap::new();
        assert!(credential(&headers, "Idaas", "token").is_err());
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(credential(&headers, "Idaas", "token").is_err());
        headers.insert(AUTHORIZATION, "idaas abc".parse().unwrap());
        assert!(credential(&headers, "Idaas", "token").is_ok());
    }
}
