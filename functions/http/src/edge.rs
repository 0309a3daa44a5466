//! What every function's router is wrapped in, in Lambda and on a laptop alike: XoD path
//! matching (case-insensitive literals, optional trailing slash), a request id on every answer,
//! one tracing span per request, and XoD error bodies for unknown routes and for axum's own
//! refusals.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use rollcall_core::xod::error_body;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::abuse::{self, Guard, Limits};
use crate::error::{ApiError, Failure};

/// A function's routes, listed once: each path template with its handlers. The router is
/// built from it, and so are the path prefixes the edge matches without regard to case.
pub struct Routes<S> {
    list: Vec<(&'static str, MethodRouter<S>)>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self { list: Vec::new() }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn route(mut self, path: &'static str, handlers: MethodRouter<S>) -> Self {
        self.list.push((path, handlers));
        self
    }

    /// Every path template, in the case rollcall routes it.
    pub fn paths(&self) -> Vec<&'static str> {
        self.list.iter().map(|(path, _)| *path).collect()
    }

    pub fn into_router(self, state: S) -> Router {
        self.list
            .into_iter()
            .fold(Router::new(), |router, (path, handlers)| {
                router.route(path, handlers)
            })
            .with_state(state)
    }
}

/// The literal prefixes of the XoD API among `paths` (the segments before the first
/// parameter), longest first. XoD clients send them in any case, so a request path whose
/// leading segments equal one of these without regard to case is rewritten to it before
/// routing; the remaining segments (estab, endpoint, id) are left as sent, and endpoint names
/// are matched without regard to case by the partner API itself. rollcall's own APIs
/// (`/admin/`, `/agent/`, `/partner/`) keep their case.
pub fn xod_prefixes<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut prefixes: Vec<String> = paths
        .into_iter()
        .filter(|path| path.starts_with("/api/") || path.starts_with("/idaas/"))
        .map(|path| {
            path.split('/')
                .take_while(|segment| !segment.starts_with('{'))
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    prefixes.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    prefixes.dedup();
    prefixes
}

/// Wraps a function's router (or the local stack's merged routers) with the shared edge;
/// `paths` are the router's path templates (see [`Routes::paths`]). The abuse controls'
/// limits come from the environment ([`Limits::from_env`]); a setting that cannot be read
/// stops the function at its start, naming it.
pub fn app(router: Router, paths: &[&str]) -> Router {
    let limits = Limits::from_env().unwrap_or_else(|bad| panic!("{bad}"));
    app_with(router, paths, limits)
}

/// [`app`] with these abuse controls' limits.
pub fn app_with(router: Router, paths: &[&str], limits: Limits) -> Router {
    let prefixes = Arc::new(xod_prefixes(paths.iter().copied()));
    let guard = Guard::new(limits);
    let inner = router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(NewRequestId))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(log_answer),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn_with_state(guard, abuse::guard))
                .layer(axum::middleware::map_response(xod_rejection)),
        );
    Router::new().fallback_service(
        ServiceBuilder::new()
            .map_request(move |request| normalize_request(request, &prefixes))
            .service(inner),
    )
}

/// The longest refusal text of axum's that is passed on.
const MAX_REJECTION: usize = 1024;

/// axum's own refusals, made before a handler runs (a path segment that is not UTF-8, say),
/// are plain text; rollcall answers every refusal with the XoD error body, so a partner's
/// client reads them all one way.
async fn xod_rejection(response: Response) -> Response {
    let plain = (response.headers().get(CONTENT_TYPE))
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/plain"));
    if !(plain && response.status().is_client_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text: String = String::from_utf8_lossy(&text)
        .chars()
        .take(MAX_REJECTION)
        .collect();
    let message = format!("the request could not be read: {}", text.trim());
    let mut answer = (parts.status, Json(error_body(&message))).into_response();
    *answer.extensions_mut() = parts.extensions;
    answer
}

/// The one log line per request, in the request's span (method, route, request id): what it
/// was answered, how fast, and for a failure on rollcall's side, its cause.
fn log_answer(response: &axum::response::Response, latency: std::time::Duration, _: &Span) {
    let status = response.status().as_u16();
    let ms = latency.as_millis() as u64;
    match response.extensions().get::<Failure>() {
        Some(Failure { cause: Some(cause) }) => {
            tracing::error!(status, ms, error = cause.as_str(), "request failed")
        }
        Some(Failure { cause: None }) => tracing::info!(status, ms, "request refused"),
        None => tracing::info!(status, ms, "answered"),
    }
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "there is no rollcall endpoint at {}; partner calls start /api/v1/School/{{estab}}/ or \
         /idaas/sts/STS/GetToken, agent calls /agent/v1/, school admin calls /admin/v1/",
        truncate(uri.path(), 120)
    ))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on this path; check the method in the API documentation",
        request.method()
    ))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// One span per request: method, route template (never the raw URI, which holds ids) and the
/// request id, so every log line of a request can be found together.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

/// Keeps a caller's `x-request-id` if it sent one; else, in Lambda, uses the invocation's
/// request id (so a request's log lines and Lambda's own lines share it); else makes a random
/// one.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, request: &axum::http::Request<B>) -> Option<RequestId> {
        let lambda = request
            .extensions()
            .get::<lambda_http::Context>()
            .map(|context| context.request_id.clone())
            .filter(|id| !id.is_empty());
        let id = lambda.unwrap_or_else(rollcall_core::secret::random_hex::<12>);
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn normalize_request(mut request: Request, prefixes: &[String]) -> Request {
    let uri = request.uri();
    if let Some(path) = canonical_path(uri.path(), prefixes) {
        let rebuilt = match uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        if let Ok(parsed) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = parsed;
        }
    }
    request
}

/// The path to route, if it differs from the one sent: without a trailing slash, and with an
/// XoD prefix in its canonical case.
pub fn canonical_path(path: &str, prefixes: &[String]) -> Option<String> {
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let mut out = trimmed.to_owned();
    for prefix in prefixes {
        let len = prefix.len();
        let matches = out.len() >= len
            && out.is_char_boundary(len)
            && out[..len].eq_ignore_ascii_case(prefix)
            && (out.len() == len || out.as_bytes()[len] == b'/');
        if matches {
            out.replace_range(..len, prefix.as_str());
            break;
        }
    }
    (out != path).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths as the functions route them.
    fn prefixes() -> Vec<String> {
        xod_prefixes([
            "/idaas/sts/STS/GetToken",
            "/api/v1/School/{estab}/{endpoint}",
            "/api/v1/AttendanceAsync/{estab}",
            "/api/v1/Attendance/{estab}",
            "/api/v1/Writeback",
            "/api/v1/Writeback/Conduct",
            "/api/v1/Writeback/ConductAsync",
            "/admin/v1/consents/{partner}",
        ])
    }

    fn canonical(path: &str) -> Option<String> {
        canonical_path(path, &prefixes())
    }

    #[test]
    fn prefixes_are_the_literal_xod_segments_longest_first() {
        let prefixes = prefixes();
        assert_eq!(prefixes[0], "/api/v1/Writeback/ConductAsync");
        assert!(prefixes.contains(&"/api/v1/School".to_owned()));
        assert!(!prefixes.iter().any(|p| p.starts_with("/admin")));
    }

    #[test]
    fn xod_prefixes_match_without_case_or_trailing_slash() {
        assert_eq!(
            canonical("/API/V1/school/123/students/").as_deref(),
            Some("/api/v1/School/123/students")
        );
        assert_eq!(
            canonical("/idaas/STS/sts/gettoken").as_deref(),
            Some("/idaas/sts/STS/GetToken")
        );
        assert_eq!(canonical("/api/v1/School/123/Students"), None);
        assert_eq!(
            canonical("/api/v1/writeback/conductasync").as_deref(),
            Some("/api/v1/Writeback/ConductAsync")
        );
        assert_eq!(
            canonical("/api/v1/attendanceasync/123/").as_deref(),
            Some("/api/v1/AttendanceAsync/123")
        );
        assert_eq!(
            canonical("/api/v1/writeback/").as_deref(),
            Some("/api/v1/Writeback")
        );
        assert_eq!(canonical("/"), None);
    }

    #[tokio::test]
    async fn the_lambda_request_id_becomes_the_request_id() {
        use tower::ServiceExt;
        let app = app(Router::new(), &[]);
        let mut context = lambda_http::Context::default();
        context.request_id = "8f1e7a52-lambda".to_owned();
        let mut request = Request::new(axum::body::Body::empty());
        request.extensions_mut().insert(context);
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "8f1e7a52-lambda");
        let local = app
            .oneshot(Request::new(axum::body::Body::empty()))
            .await
            .unwrap();
        assert_eq!(local.headers()["x-request-id"].len(), 24);
    }

    #[tokio::test]
    async fn axums_own_refusals_are_answered_with_the_xod_body() {
        use tower::ServiceExt;
        let router = Router::new().route(
            "/api/v1/School/{estab}",
            axum::routing::get(
                |axum::extract::Path(estab): axum::extract::Path<String>| async { estab },
            ),
        );
        let app = app(router, &["/api/v1/School/{estab}"]);
        let request = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let refused = app
            .clone()
            .oneshot(request("/api/v1/School/%FF"))
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        assert_eq!(refused.headers()[CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let message = body["ExceptionMessage"].as_str().unwrap();
        assert!(
            message.starts_with("the request could not be read: "),
            "{message}"
        );
        let served = app
            .oneshot(request("/api/v1/School/9990001"))
            .await
            .unwrap();
        assert_eq!(served.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    }

    #[test]
    fn other_paths_keep_their_case() {
        assert_eq!(canonical("/admin/v1/consents/Acme"), None);
        assert_eq!(
            canonical("/admin/v1/consents/Acme/").as_deref(),
            Some("/admin/v1/consents/Acme")
        );
        assert_eq!(canonical("/api/v1/Schools/1"), None);
    }
}
