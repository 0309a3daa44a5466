//! What every function's router is wrapped in, in Lambda and on a laptop alike: XoD path
//! matching (case-insensitive literals, optional trailing slash), a request id on every answer,
//! one tracing span per request, and XoD error bodies for unknown routes.

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Uri};
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;

/// The literal path prefixes of the XoD API, in the case rollcall routes them. XoD clients send
/// them in any case, so a request path whose leading segments equal one of these without regard
/// to case is rewritten to it before routing. The remaining segments (estab, endpoint, id) are
/// left as sent; endpoint names are matched without regard to case by the partner API itself.
/// The first match wins, so a longer prefix comes before a shorter one it starts with.
pub const XOD_PREFIXES: &[&str] = &[
    "/idaas/sts/STS/GetToken",
    "/api/v1/School",
    "/api/v1/Attendance",
    "/api/v1/AttendanceAsync",
    "/api/v1/Writeback/ConductAsync",
    "/api/v1/Writeback/Conduct",
    "/api/v1/Writeback/SeatingPlan",
    "/api/v1/Writeback/Status",
    "/api/v1/Writeback",
    "/api/v1/TokenDetails",
    "/api/v1/Scopes",
    "/api/v1/Queries",
    "/api/v1/Usage",
    "/api/v1/GDPRIDs",
    "/api/v1/Logs",
    "/api/v1/RunQuery",
];

/// Wraps a function's router (or the local stack's merged routers) with the shared edge.
pub fn app(router: Router) -> Router {
    let inner = router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(NewRequestId))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(
                            |response: &axum::response::Response,
                             latency: std::time::Duration,
                             _: &Span| {
                                tracing::info!(
                                    status = response.status().as_u16(),
                                    ms = latency.as_millis() as u64,
                                    "answered"
                                );
                            },
                        ),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        );
    Router::new().fallback_service(
        ServiceBuilder::new()
            .map_request(normalize_request)
            .service(inner),
    )
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

fn normalize_request(mut request: Request) -> Request {
    let uri = request.uri();
    if let Some(path) = canonical_path(uri.path()) {
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
pub fn canonical_path(path: &str) -> Option<String> {
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let mut out = trimmed.to_owned();
    for prefix in XOD_PREFIXES {
        let len = prefix.len();
        let matches = out.len() >= len
            && out.is_char_boundary(len)
            && out[..len].eq_ignore_ascii_case(prefix)
            && (out.len() == len || out.as_bytes()[len] == b'/');
        if matches {
            out.replace_range(..len, prefix);
            break;
        }
    }
    (out != path).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xod_prefixes_match_without_case_or_trailing_slash() {
        assert_eq!(
            canonical_path("/API/V1/school/123/students/").as_deref(),
            Some("/api/v1/School/123/students")
        );
        assert_eq!(
            canonical_path("/idaas/STS/sts/gettoken").as_deref(),
            Some("/idaas/sts/STS/GetToken")
        );
        assert_eq!(canonical_path("/api/v1/School/123/Students"), None);
        assert_eq!(
            canonical_path("/api/v1/writeback/conductasync").as_deref(),
            Some("/api/v1/Writeback/ConductAsync")
        );
        assert_eq!(
            canonical_path("/api/v1/attendanceasync/123/").as_deref(),
            Some("/api/v1/AttendanceAsync/123")
        );
        assert_eq!(
            canonical_path("/api/v1/writeback/").as_deref(),
            Some("/api/v1/Writeback")
        );
        assert_eq!(canonical_path("/"), None);
    }

    #[tokio::test]
    async fn the_lambda_request_id_becomes_the_request_id() {
        use tower::ServiceExt;
        let app = app(Router::new());
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

    #[test]
    fn other_paths_keep_their_case() {
        assert_eq!(canonical_path("/admin/v1/consents/Acme"), None);
        assert_eq!(
            canonical_path("/admin/v1/consents/Acme/").as_deref(),
            Some("/admin/v1/consents/Acme")
        );
        assert_eq!(canonical_path("/api/v1/Schools/1"), None);
    }
}
