//! Who is signed in to the page, and the checks every answer and every form goes through:
//! the session cookie (sealed by [`rollcall_core::session`]), the CSRF token of each form, and
//! the security headers of every page answer.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rollcall_core::model::{Estab, School};
use rollcall_core::session::{SESSION_LIFETIME, Session};

use super::views;
use crate::ConsentState;

/// The session cookie's name. Scoped to `/admin` and never readable by scripts.
use rollcall_http::request::{SESSION_COOKIE as COOKIE, session_cookie};
/// The largest form body read.
const FORM_LIMIT: usize = 64 * 1024;
/// The form field carrying the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// A signed-in data protection lead: their school and session.
#[derive(Clone)]
pub(crate) struct Signed {
    pub school: School,
    pub session: Session,
}

impl Signed {
    pub fn csrf(&self) -> String {
        self.session.csrf_token(&self.school)
    }
}

/// The signed-in session, if the request carries one that opens.
pub(crate) struct MaybeSigned(pub Option<Signed>);

impl FromRequestParts<ConsentState> for MaybeSigned {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsentState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(signed(&parts.headers, state).await))
    }
}

async fn signed(headers: &HeaderMap, state: &ConsentState) -> Option<Signed> {
    let cookie = session_cookie(headers)?;
    let estab = Estab::parse(Session::school_of(&cookie)?).ok()?;
    let school = state.schools.school(&estab).await.ok()??;
    let session = Session::open(&school, &cookie, state.clock.now())?;
    Some(Signed { school, session })
}

/// A signed-in session, or the sign-in page (a page reached without one).
pub(crate) struct SignedIn(pub Signed);

impl FromRequestParts<ConsentState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsentState) -> Result<Self, Response> {
        match signed(&parts.headers, state).await {
            Some(signed) => Ok(Self(signed)),
            None => Err(see_other("/admin/sign-in?notice=signed-out")),
        }
    }
}

/// A form posted from a signed-in page: the session, and the form's fields once its CSRF
/// token matched. Without a session, or with a token that is missing or another session's,
/// the form is refused (403) and nothing is read further.
pub(crate) struct CheckedForm {
    pub signed: Signed,
    pub fields: Vec<(String, String)>,
}

impl CheckedForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        let value = self.fields.iter().find(|(n, _)| n == name)?;
        Some(value.1.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        (self.fields.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl FromRequest<ConsentState> for CheckedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &ConsentState) -> Result<Self, Response> {
        let refused = |why: &str| {
            let page = views::refused(why);
            (StatusCode::FORBIDDEN, page).into_response()
        };
        let (parts, body) = request.into_parts();
        let Some(signed) = signed(&parts.headers, state).await else {
            return Err(refused(
                "You are not signed in (or your session has ended), so nothing was changed. \
                 Sign in and try again.",
            ));
        };
        let fields = read_form(body).await.map_err(|why| refused(&why))?;
        let token = (fields.iter())
            .find(|(n, _)| n == CSRF_FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if !signed.session.csrf_matches(&signed.school, token) {
            return Err(refused(
                "This form did not come from your signed-in page (its security token is \
                 missing or belongs to another session), so nothing was changed. Go back, \
                 reload the page and try again.",
            ));
        }
        Ok(Self { signed, fields })
    }
}

/// The fields of a URL-encoded form body.
pub(crate) async fn read_form(body: Body) -> Result<Vec<(String, String)>, String> {
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| "The form was too large; nothing was changed.".to_owned())?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| "The form could not be read; nothing was changed.".to_owned())
}

/// The cookie that starts `session` (Secure unless the page is served to this machine
/// itself over plain HTTP).
pub(crate) fn start_cookie(cookie: &str, secure: bool) -> HeaderValue {
    let seconds = SESSION_LIFETIME.as_seconds();
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={cookie}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={seconds}{secure}"
    ))
    .expect("a sealed cookie is plain text")
}

pub(crate) fn end_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .expect("plain text")
}

/// Whether the page is served over HTTPS: anything but plain HTTP to this machine itself
/// (the local stack) gets Secure cookies, so a deployment never sends them in the clear.
pub(crate) fn is_secure(headers: &HeaderMap) -> bool {
    let forwarded_https = (headers.get("x-forwarded-proto"))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let host = (headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let local = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|h| host == *h || host.starts_with(&format!("{h}:")));
    forwarded_https || !local
}

/// Whether a request was sent by another site's page. A browser says where a request came
/// from in `Sec-Fetch-Site` (only `same-origin`, or `none` for one the user typed, is this
/// page); one that does not, by an `Origin` other than this host. (The page's no-referrer
/// policy makes a browser send `Origin: null` for its own forms, which says nothing.)
pub(crate) fn from_another_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    match (text("origin"), text(header::HOST.as_str())) {
        (Some(origin), Some(host)) if origin != "null" => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/admin/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// The headers every page answer carries: no scripts or styles but the page's own
/// stylesheet, never framed, no referrer, never cached.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cache-control", "no-store");
    set(headers, "x-content-type-options", "nosniff");
    response
}
