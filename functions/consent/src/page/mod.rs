//! The school's consent page at `/admin/`: a data protection lead signs in with the admin
//! key, then sees and decides everything the admin API offers, from a browser. Every screen
//! calls the admin API's own handlers (the same checks, the same decisions, the same
//! refusals) and renders what they answer; nothing here decides what a partner may see.
//!
//! Routes (all under `/admin`): `/` and `/sign-in` (sign in), `/sign-out`, `/partners`,
//! `/partners/{partner}` (scope picker, grant, revoke), `/partners/{partner}/opt-outs`, `/log`
//! and `/log.csv`, `/subjects` (search), `/subjects/{kind}/{id}` and its `/export`, `/agent`
//! and `/agent/refresh`, `/static/app.css`. Every answer carries the headers of
//! [`session::security_headers`]; every form its session's CSRF token.

mod session;
mod views;

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use rollcall_core::catalogue::{Catalogue, PersonKind};
use rollcall_core::secret::KeyHash;
use rollcall_core::session::Session;
use rollcall_http::credentials::AdminSchool;
use rollcall_http::error::CredentialRefused;
use rollcall_http::request::JsonBody;
use rollcall_http::{ApiError, ApiResult, Routes};
use serde_json::Value;

use self::session::{CheckedForm, MaybeSigned, Signed, SignedIn, see_other};
use crate::admin::{GrantBody, KnownPartner, RevokeBody, known_partner};
use crate::refresh::RefreshBody;
use crate::subjects::{find_people, person_kind};
use crate::{ConsentState, access_log, admin, agent, optouts, partners, refresh, subjects};

/// Access-log entries on one page of the log screen.
const LOG_PAGE: &str = "50";
/// The most entries one CSV download holds.
const CSV_LIMIT: &str = "1000";

/// Adds the page's routes.
pub(crate) fn routes(routes: Routes<ConsentState>) -> Routes<ConsentState> {
    routes
        .route("/admin", page(get(home)))
        .route("/admin/", page(get(home)))
        .route("/admin/sign-in", page(get(home).post(sign_in)))
        .route("/admin/sign-out", page(post(sign_out)))
        .route("/admin/partners", page(get(partners_screen)))
        .route("/admin/partners/{partner}", page(get(partner_screen)))
        .route("/admin/partners/{partner}/grant", page(post(grant)))
        .route("/admin/partners/{partner}/revoke", page(post(revoke)))
        .route(
            "/admin/partners/{partner}/opt-outs",
            page(get(opt_outs_screen).post(change_opt_outs)),
        )
        .route("/admin/log", page(get(log_screen)))
        .route("/admin/log.csv", page(get(log_csv)))
        .route("/admin/subjects", page(get(subjects_screen)))
        .route("/admin/subjects/{kind}/{id}", page(get(subject_screen)))
        .route(
            "/admin/subjects/{kind}/{id}/export",
            page(get(subject_export)),
        )
        .route("/admin/agent", page(get(agent_screen)))
        .route("/admin/agent/refresh", page(post(refresh_agent)))
        .route("/admin/static/app.css", page(get(stylesheet)))
}

fn page(route: MethodRouter<ConsentState>) -> MethodRouter<ConsentState> {
    route.layer(map_response(session::security_headers))
}

/// The fixed notices a redirect may ask a screen to show.
fn notice(params: &HashMap<String, String>) -> Option<&'static str> {
    Some(match params.get("notice")?.as_str() {
        "signed-out" => "Please sign in (your session has ended or you were not signed in).",
        "bye" => "You are signed out.",
        "granted" => "Saved. The app sees exactly what is ticked from its next call.",
        "revoked" => "Access ended. The app's calls are refused from now on.",
        "ending" => "Access will end on the date you chose.",
        "opted-out" => "Opted out. The app receives nothing more about them.",
        "opt-out-removed" => "Removed: the app may see them again, as its consent allows.",
        "refresh" => "Refresh asked for: the agent sends it on its next run.",
        _ => return None,
    })
}

/// The page of an admin API refusal: its status and its message.
fn failed(signed: Option<&Signed>, error: &ApiError) -> Response {
    let page = views::error(signed, error.status().as_u16(), &error.message());
    (error.status(), page).into_response()
}

fn value(answer: ApiResult<Json<Value>>) -> ApiResult<Value> {
    answer.map(|Json(value)| value)
}

/// The JSON an admin handler answered as a response.
async fn response_json(response: Response) -> ApiResult<Value> {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(ApiError::internal)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(ApiError::internal(anyhow::anyhow!(
            "the admin API answered {status}"
        )))
    }
}

async fn home(
    MaybeSigned(signed): MaybeSigned,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match signed {
        Some(_) => see_other("/admin/partners"),
        None => views::sign_in(None, notice(&params)).into_response(),
    }
}

async fn sign_in(State(state): State<ConsentState>, headers: HeaderMap, body: Body) -> Response {
    if session::from_another_site(&headers) {
        let page = views::refused(
            "Sign in from rollcall's own sign-in page: a sign-in sent from another site is \
             refused, so no one can sign you in to a school that is not yours.",
        );
        return (StatusCode::FORBIDDEN, page).into_response();
    }
    let fields = session::read_form(body).await.unwrap_or_default();
    let key = (fields.iter())
        .find(|(name, _)| name == "key")
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    let school = match key.is_empty() {
        true => None,
        false => (state
            .schools
            .school_by_admin_key(&KeyHash::of(key.as_bytes())))
        .await
        .ok()
        .flatten(),
    };
    let Some(school) = school else {
        let page = views::sign_in(
            Some(
                "That admin key is not registered with rollcall, so you are not signed in. \
                 Check you copied the whole key (it starts rcs_).",
            ),
            None,
        );
        let mut response = (StatusCode::UNAUTHORIZED, page).into_response();
        (response.extensions_mut()).insert(CredentialRefused::sent(&[key.as_bytes()]));
        return response;
    };
    let (_, cookie) = Session::start(&school, state.clock.now());
    tracing::info!(estab = %school.estab, "admin signed in to the page");
    let mut response = see_other("/admin/partners");
    let cookie = session::start_cookie(&cookie, session::is_secure(&headers));
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

async fn sign_out(headers: HeaderMap, _form: CheckedForm) -> Response {
    let mut response = see_other("/admin/sign-in?notice=bye");
    let cookie = session::end_cookie(session::is_secure(&headers));
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

async fn partners_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let school = AdminSchool(signed.school.clone());
    match value(partners::partners(State(state), school).await) {
        Ok(list) => views::partners(&signed, &list, notice(&params)).into_response(),
        Err(error) => failed(Some(&signed), &error),
    }
}

/// One partner as `GET /admin/v1/partners` shows it.
async fn partner_view(state: &ConsentState, signed: &Signed, id: &str) -> ApiResult<Value> {
    known_partner(state, id).await?;
    let school = AdminSchool(signed.school.clone());
    let list = value(partners::partners(State(state.clone()), school).await)?;
    (list["partners"].as_array().into_iter().flatten())
        .find(|p| p["partner"] == id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no partner `{id}` asks this school")))
}

async fn partner_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match partner_view(&state, &signed, &id).await {
        Ok(partner) => views::partner(&signed, &partner, None, notice(&params)).into_response(),
        Err(error) => failed(Some(&signed), &error),
    }
}

async fn grant(
    State(state): State<ConsentState>,
    Path(id): Path<String>,
    form: CheckedForm,
) -> Response {
    let signed = &form.signed;
    let scopes = form.all("scope");
    let catalogue = Catalogue::get();
    let special: Vec<&String> = (scopes.iter())
        .filter(|s| catalogue.scope(s).is_some_and(|info| info.special))
        .collect();
    let confirmed = form.get("confirm_special") == Some("yes");
    let outcome = if !special.is_empty() && !confirmed {
        Err(ApiError::Unprocessable(format!(
            "Nothing was saved: you ticked special-category data ({}). Tick the confirmation \
             that the school has a lawful basis to share it, or untick it.",
            special
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    } else {
        match known_partner(&state, &id).await {
            Ok(partner) => value(
                admin::grant(
                    State(state.clone()),
                    AdminSchool(signed.school.clone()),
                    KnownPartner(partner),
                    JsonBody(GrantBody { scopes }),
                )
                .await,
            ),
            Err(error) => Err(error),
        }
    };
    match outcome {
        Ok(_) => see_other(&format!("/admin/partners/{id}?notice=granted")),
        Err(error) => partner_with_problem(&state, signed, &id, &error).await,
    }
}

/// The partner's screen again, with what was refused (and its status).
async fn partner_with_problem(
    state: &ConsentState,
    signed: &Signed,
    id: &str,
    error: &ApiError,
) -> Response {
    match partner_view(state, signed, id).await {
        Ok(partner) => {
            let page = views::partner(signed, &partner, Some(&error.message()), None);
            (error.status(), page).into_response()
        }
        Err(other) => failed(Some(signed), &other),
    }
}

async fn revoke(
    State(state): State<ConsentState>,
    Path(id): Path<String>,
    form: CheckedForm,
) -> Response {
    let signed = &form.signed;
    let end_date = match form.get("when") {
        Some("date") => form.get("date").map(str::to_owned),
        _ => None,
    };
    let later = end_date.is_some();
    let outcome = match known_partner(&state, &id).await {
        Ok(partner) => value(
            admin::revoke(
                State(state.clone()),
                AdminSchool(signed.school.clone()),
                KnownPartner(partner),
                JsonBody(RevokeBody { end_date }),
            )
            .await,
        ),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(_) if later => see_other(&format!("/admin/partners/{id}?notice=ending")),
        Ok(_) => see_other(&format!("/admin/partners/{id}?notice=revoked")),
        Err(error) => partner_with_problem(&state, signed, &id, &error).await,
    }
}

async fn current_opt_outs(state: &ConsentState, signed: &Signed, id: &str) -> ApiResult<Value> {
    let partner = known_partner(state, id).await?;
    let school = AdminSchool(signed.school.clone());
    value(optouts::get(State(state.clone()), school, KnownPartner(partner)).await)
}

async fn opt_outs_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let kind = params.get("kind").map_or("student", String::as_str);
    let query = params.get("q").map_or("", String::as_str);
    opt_outs_page(&state, &signed, &id, (kind, query), notice(&params), None).await
}

async fn opt_outs_page(
    state: &ConsentState,
    signed: &Signed,
    id: &str,
    (kind, query): (&str, &str),
    notice_text: Option<&str>,
    problem: Option<&ApiError>,
) -> Response {
    let shown = async {
        let partner = partner_view(state, signed, id).await?;
        let current = current_opt_outs(state, signed, id).await?;
        let found = match query.trim().is_empty() {
            true => Vec::new(),
            false => find_people(state, &signed.school.estab, person_kind(kind)?, query).await?,
        };
        Ok::<_, ApiError>((partner, current, found))
    };
    match shown.await {
        Ok((partner, current, found)) => {
            let view = views::OptOutView {
                partner_id: id,
                partner_name: partner["name"].as_str().unwrap_or(id),
                current: &current,
                kind,
                query,
                found: &found,
            };
            let message = problem.map(ApiError::message);
            let page = views::opt_outs(signed, &view, notice_text, message.as_deref());
            let status = problem.map_or(StatusCode::OK, ApiError::status);
            (status, page).into_response()
        }
        Err(error) => failed(Some(signed), &error),
    }
}

async fn change_opt_outs(
    State(state): State<ConsentState>,
    Path(id): Path<String>,
    form: CheckedForm,
) -> Response {
    let signed = &form.signed;
    let adding = match form.get("action") {
        Some("add") => true,
        Some("remove") => false,
        _ => {
            let error =
                ApiError::BadRequest("The form asked for nothing; nothing was changed.".into());
            return failed(Some(signed), &error);
        }
    };
    let kind = form.get("kind").unwrap_or("student");
    let person = form.get("id").unwrap_or_default().trim().to_owned();
    let outcome = async {
        let kind = person_kind(kind)?;
        let person = optouts::ids("id", vec![Value::String(person.clone())])?;
        let partner = known_partner(&state, &id).await?;
        optouts::update(&state, &signed.school.estab, &partner.id, |people| {
            let list = match kind {
                PersonKind::Student => &mut people.students,
                PersonKind::Staff => &mut people.staff,
                PersonKind::Contact => &mut people.contacts,
            };
            for one in &person {
                match adding {
                    true => list.insert(one.clone()),
                    false => list.remove(one),
                };
            }
        })
        .await
    };
    match outcome.await {
        Ok(_) if adding => see_other(&format!("/admin/partners/{id}/opt-outs?notice=opted-out")),
        Ok(_) => see_other(&format!(
            "/admin/partners/{id}/opt-outs?notice=opt-out-removed"
        )),
        Err(error) => opt_outs_page(&state, signed, &id, (kind, ""), None, Some(&error)).await,
    }
}

/// The access log's filters a screen passes on (only those the API takes; empty ones left out).
fn log_filters(query: Option<&str>) -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
    (pairs.into_iter())
        .filter(|(name, value)| {
            matches!(
                name.as_str(),
                "partner" | "endpoint" | "from" | "to" | "cursor"
            ) && !value.trim().is_empty()
        })
        .collect()
}

fn with(filters: &[(String, String)], more: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = (filters.iter())
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.extend_from_slice(more);
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn log_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let filters = log_filters(query.as_deref());
    let school = AdminSchool(signed.school.clone());
    let api_query = with(&filters, &[("limit", LOG_PAGE)]);
    let answer = access_log::access_log(
        State(state.clone()),
        school,
        HeaderMap::new(),
        RawQuery(Some(api_query)),
    )
    .await;
    let (page, problem) = match answer {
        Ok(response) => match response_json(response).await {
            Ok(page) => (Some(page), None),
            Err(error) => return failed(Some(&signed), &error),
        },
        Err(error) => (None, Some(error)),
    };
    let partners: Vec<(String, String)> =
        match value(admin::requests(State(state), AdminSchool(signed.school.clone())).await) {
            Ok(list) => (list["requests"].as_array().into_iter().flatten())
                .map(|p| {
                    let id = p["partner"].as_str().unwrap_or_default().to_owned();
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    (id, name)
                })
                .collect(),
            Err(error) => return failed(Some(&signed), &error),
        };
    let without_cursor: Vec<(String, String)> = filters
        .iter()
        .filter(|(n, _)| n != "cursor")
        .cloned()
        .collect();
    let next_link = (page.as_ref())
        .and_then(|p| p["nextCursor"].as_str())
        .map(|cursor| {
            format!(
                "/admin/log?{}",
                with(&without_cursor, &[("cursor", cursor)])
            )
        });
    let view = views::LogView {
        filters: &filters,
        page: page.as_ref(),
        partners: &partners,
        csv_link: format!("/admin/log.csv?{}", with(&without_cursor, &[])),
        next_link,
    };
    let message = problem.as_ref().map(ApiError::message);
    let status = problem.as_ref().map_or(StatusCode::OK, ApiError::status);
    (status, views::log(&signed, &view, message.as_deref())).into_response()
}

async fn log_csv(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let filters = log_filters(query.as_deref());
    let api_query = with(&filters, &[("limit", CSV_LIMIT), ("format", "csv")]);
    let school = AdminSchool(signed.school.clone());
    match access_log::access_log(
        State(state),
        school,
        HeaderMap::new(),
        RawQuery(Some(api_query)),
    )
    .await
    {
        Ok(response) => response,
        Err(error) => failed(Some(&signed), &error),
    }
}

async fn subjects_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let kind = params.get("kind").map_or("student", String::as_str);
    let query = params.get("q").map_or("", String::as_str);
    let found = match person_kind(kind) {
        Ok(person) => find_people(&state, &signed.school.estab, person, query).await,
        Err(error) => Err(error),
    };
    match found {
        Ok(found) => {
            let view = views::SubjectView {
                kind,
                query,
                found: &found,
                export: None,
            };
            views::subjects(&signed, &view).into_response()
        }
        Err(error) => failed(Some(&signed), &error),
    }
}

async fn export(
    state: &ConsentState,
    signed: &Signed,
    kind: String,
    id: String,
    format: &str,
) -> ApiResult<Response> {
    let school = AdminSchool(signed.school.clone());
    let query = RawQuery(Some(format!("format={format}")));
    subjects::subject(
        State(state.clone()),
        school,
        Path((kind, id)),
        HeaderMap::new(),
        query,
    )
    .await
}

async fn subject_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Path((kind, id)): Path<(String, String)>,
) -> Response {
    let shown = async {
        let answer = export(&state, &signed, kind.clone(), id, "json").await?;
        response_json(answer).await
    };
    match shown.await {
        Ok(found) => {
            let view = views::SubjectView {
                kind: &kind,
                query: "",
                found: &[],
                export: Some(&found),
            };
            views::subjects(&signed, &view).into_response()
        }
        Err(error) => failed(Some(&signed), &error),
    }
}

async fn subject_export(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Path((kind, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let format = match params.get("format").map(String::as_str) {
        Some("json") => "json",
        _ => "csv",
    };
    match export(&state, &signed, kind, id, format).await {
        Ok(response) => response,
        Err(error) => failed(Some(&signed), &error),
    }
}

async fn agent_screen(
    State(state): State<ConsentState>,
    SignedIn(signed): SignedIn,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    agent_page(&state, &signed, notice(&params), None).await
}

async fn agent_page(
    state: &ConsentState,
    signed: &Signed,
    notice_text: Option<&str>,
    problem: Option<&ApiError>,
) -> Response {
    let school = AdminSchool(signed.school.clone());
    match value(agent::agent(State(state.clone()), school).await) {
        Ok(view) => {
            let sets: Vec<String> = (Catalogue::get().stored_sets())
                .map(|rs| rs.name.clone())
                .filter(|name| {
                    (view["resultSets"].as_array().into_iter().flatten())
                        .any(|held| held["name"] == name.as_str())
                })
                .collect();
            let message = problem.map(ApiError::message);
            let page = views::agent(signed, &view, &sets, notice_text, message.as_deref());
            let status = problem.map_or(StatusCode::OK, ApiError::status);
            (status, page).into_response()
        }
        Err(error) => failed(Some(signed), &error),
    }
}

async fn refresh_agent(State(state): State<ConsentState>, form: CheckedForm) -> Response {
    let signed = &form.signed;
    let all = form.get("all") == Some("yes");
    let sets = form.all("set");
    if !all && sets.is_empty() {
        let error = ApiError::BadRequest(
            "Tick “Everything it sends” or at least one result set; nothing was asked for.".into(),
        );
        return agent_page(&state, signed, None, Some(&error)).await;
    }
    let body = RefreshBody {
        result_sets: if all { Vec::new() } else { sets },
    };
    let school = AdminSchool(signed.school.clone());
    match refresh::refresh(State(state.clone()), school, JsonBody(body)).await {
        Ok(_) => see_other("/admin/agent?notice=refresh"),
        Err(error) => agent_page(&state, signed, None, Some(&error)).await,
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("app.css"),
    )
        .into_response()
}
