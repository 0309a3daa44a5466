//! The page's HTML, server-rendered with `maud` (every value escaped). No scripts and no
//! inline styles: the stylesheet is `/admin/static/app.css`. Every control has a label, every
//! page a heading, a skip link and the signed-in navigation.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::session::{CSRF_FIELD, Signed};

/// What a page is, for the navigation's current item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    SignIn,
    Partners,
    Log,
    Subjects,
    Agent,
    Other,
}

pub(crate) fn layout(title: &str, screen: Screen, signed: Option<&Signed>, body: Markup) -> Markup {
    let nav = [
        (Screen::Partners, "/admin/partners", "Partners"),
        (Screen::Log, "/admin/log", "Access log"),
        (Screen::Subjects, "/admin/subjects", "Subject access"),
        (Screen::Agent, "/admin/agent", "School agent"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rollcall" }
                link rel="stylesheet" href="/admin/static/app.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    p.brand { "rollcall" }
                    @if let Some(signed) = signed {
                        p.school { (signed.school.name) " (" (signed.school.estab) ")" }
                        nav aria-label="Main" {
                            ul {
                                @for (item, href, label) in nav {
                                    li {
                                        @if item == screen {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/admin/sign-out" {
                            (csrf(signed))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf()); }
}

pub(crate) fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

pub(crate) fn problem(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.problem role="alert" { (text) }
        }
    }
}

pub(crate) fn sign_in(error: Option<&str>, notice_text: Option<&str>) -> Markup {
    let body = html! {
        (notice(notice_text))
        (problem(error))
        p { "Sign in with your school's admin key to decide what each app may see, and to see who has read what." }
        form method="post" action="/admin/sign-in" {
            div.field {
                label for="key" { "Admin key" }
                input #key type="password" name="key" autocomplete="current-password" required;
                p.hint { "The key printed when your school was registered with rollcall (it starts " code { "rcs_" } "). It is never shown again." }
            }
            button type="submit" { "Sign in" }
        }
    };
    layout("Sign in", Screen::SignIn, None, body)
}

pub(crate) fn refused(why: &str) -> Markup {
    let body = html! {
        p.problem role="alert" { (why) }
        p { a href="/admin/sign-in" { "Back to the consent page" } }
    };
    layout("Not allowed", Screen::Other, None, body)
}

pub(crate) fn error(signed: Option<&Signed>, status: u16, message: &str) -> Markup {
    let body = html! {
        p.problem role="alert" { (message) }
        p.hint { "(" (status) ")" }
        p { a href="/admin/partners" { "Back to the partners" } }
    };
    layout("Something was not right", Screen::Other, signed, body)
}

/// `text` as one segment of a URL path: anything but letters, digits and `-._~` escaped, so an
/// id cannot lead a link anywhere else.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// "Homework App asks to see pupils' core record: names, ..." from a scope's description.
pub(crate) fn asks_to_see(partner: &str, description: &str) -> String {
    let description = description.trim_end_matches('.');
    let mut chars = description.chars();
    let lowered = match chars.next() {
        Some(first) => first.to_lowercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    };
    format!("{partner} asks to see {lowered}")
}

fn status_words(status: &str) -> &'static str {
    match status {
        "requested" => "Asking; nothing granted",
        "granted" => "Granted",
        "ending" => "Granted until an end date",
        "revoked" => "Access ended",
        _ => "Unknown",
    }
}

pub(crate) fn partners(signed: &Signed, partners: &Value, notice_text: Option<&str>) -> Markup {
    let list = partners["partners"].as_array().cloned().unwrap_or_default();
    let body = html! {
        (notice(notice_text))
        p { "Each app below has asked to read some of your school's data through rollcall. It sees only what you grant, and never anyone you opt out." }
        @if list.is_empty() {
            p { "No app has asked for access yet." }
        } @else {
            table {
                caption { "Apps asking for your school's data" }
                thead { tr { th scope="col" { "App" } th scope="col" { "Status" } th scope="col" { "Asks for" } th scope="col" { "Granted" } } }
                tbody {
                    @for p in &list {
                        tr {
                            td { a href={ "/admin/partners/" (segment(text(p, "partner"))) } { (text(p, "name")) } }
                            td { (status_words(text(p, "status"))) }
                            td { (p["requestedScopes"].as_array().map_or(0, Vec::len)) " kinds of data" }
                            td { (p["grantedScopes"].as_array().map_or(0, Vec::len)) }
                        }
                    }
                }
            }
        }
    };
    layout("Partners", Screen::Partners, Some(signed), body)
}

pub(crate) fn partner(
    signed: &Signed,
    partner: &Value,
    problem_text: Option<&str>,
    notice_text: Option<&str>,
) -> Markup {
    let name = text(partner, "name");
    let id = text(partner, "partner");
    let scopes = partner["scopes"].as_array().cloned().unwrap_or_default();
    let any_special = scopes.iter().any(|s| s["special"] == true);
    let in_force = matches!(text(partner, "status"), "granted" | "ending");
    let body = html! {
        (notice(notice_text))
        (problem(problem_text))
        p { "Status: " strong { (status_words(text(partner, "status"))) }
            @if let Some(end) = partner["endDate"].as_str() {
                @if text(partner, "status") == "revoked" { " (ended " (end) ")" } @else { " (access ends " (end) ")" }
            } }
        form method="post" action={ "/admin/partners/" (segment(id)) "/grant" } {
            (csrf(signed))
            fieldset {
                legend { "What " (name) " may see" }
                p.hint { "Tick what the school agrees to share. Open “What this releases” to see every field. Anything not ticked stays hidden." }
                @for scope in &scopes {
                    @let scope_id = text(scope, "scope");
                    @let input_id = format!("scope-{scope_id}");
                    div.scope {
                        input id=(input_id) type="checkbox" name="scope" value=(scope_id) checked[scope["granted"] == true];
                        label for=(input_id) {
                            (asks_to_see(name, text(scope, "description")))
                            @if scope["special"] == true { " " span.special { "Special category" } }
                        }
                        details {
                            summary { "What this releases (" (scope_id) ")" }
                            ul {
                                @for (set, fields) in scope["releases"].as_object().into_iter().flatten() {
                                    li { strong { (set) } ": " (fields.as_array().map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
            @if any_special {
                div.field.confirm {
                    input #confirm-special type="checkbox" name="confirm_special" value="yes";
                    label for="confirm-special" { "I confirm the school has a lawful basis to share the special-category data ticked above with " (name) "." }
                }
            }
            button type="submit" { "Save what " (name) " may see" }
        }
        h2 { "People this app must not see" }
        p { a href={ "/admin/partners/" (segment(id)) "/opt-outs" } { "Opt pupils, staff or contacts out for " (name) } }
        @if in_force {
            h2 { "End access" }
            form method="post" action={ "/admin/partners/" (segment(id)) "/revoke" } {
                (csrf(signed))
                fieldset {
                    legend { "When should " (name) "'s access end?" }
                    div.choice {
                        input #end-now type="radio" name="when" value="now" checked;
                        label for="end-now" { "Now" }
                    }
                    div.choice {
                        input #end-later type="radio" name="when" value="date";
                        label for="end-later" { "On a date" }
                    }
                    div.field {
                        label for="end-date" { "End date (if on a date)" }
                        input #end-date type="date" name="date";
                    }
                }
                button.danger type="submit" { "End " (name) "'s access" }
            }
        }
    };
    layout(name, Screen::Partners, Some(signed), body)
}

pub(crate) struct OptOutView<'a> {
    pub partner_id: &'a str,
    pub partner_name: &'a str,
    pub current: &'a Value,
    pub kind: &'a str,
    pub query: &'a str,
    pub found: &'a [crate::subjects::Found],
}

pub(crate) fn opt_outs(
    signed: &Signed,
    view: &OptOutView<'_>,
    notice_text: Option<&str>,
    problem_text: Option<&str>,
) -> Markup {
    let lists = [
        ("student", "studentIds", "Pupils"),
        ("staff", "staffIds", "Staff"),
        ("contact", "contactIds", "Contacts"),
    ];
    let action = format!("/admin/partners/{}/opt-outs", segment(view.partner_id));
    let body = html! {
        (notice(notice_text))
        (problem(problem_text))
        p { (view.partner_name) " receives nothing about the people listed here, in any of its reads, and is told their ids so it can delete what it already holds." }
        @for (kind, field, label) in lists {
            h2 { (label) " opted out" }
            @let ids = view.current[field].as_array().cloned().unwrap_or_default();
            @if ids.is_empty() { p { "None." } } @else {
                ul.people {
                    @for id in &ids {
                        @let id = id.as_str().unwrap_or_default();
                        li {
                            (id) " "
                            form.inline method="post" action=(action) {
                                (csrf(signed))
                                input type="hidden" name="action" value="remove";
                                input type="hidden" name="kind" value=(kind);
                                input type="hidden" name="id" value=(id);
                                button type="submit" aria-label={ "Remove " (id) " from the opt-outs" } { "Remove" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Find someone to opt out" }
        (person_search(&action, view.kind, view.query))
        (found_people(view.found, view.query, |found| html! {
            form.inline method="post" action=(action) {
                (csrf(signed))
                input type="hidden" name="action" value="add";
                input type="hidden" name="kind" value=(view.kind);
                input type="hidden" name="id" value=(found.id);
                button type="submit" aria-label={ "Opt out " (found.name) } { "Opt out" }
            }
        }))
    };
    layout(
        &format!("Opt-outs for {}", view.partner_name),
        Screen::Partners,
        Some(signed),
        body,
    )
}

/// The search for a pupil, member of staff or contact by name or MIS id, sent to `action`.
fn person_search(action: &str, kind: &str, query: &str) -> Markup {
    html! {
        form method="get" action=(action) {
            div.field {
                label for="kind" { "Who" }
                select #kind name="kind" {
                    option value="student" selected[kind == "student"] { "Pupil" }
                    option value="staff" selected[kind == "staff"] { "Member of staff" }
                    option value="contact" selected[kind == "contact"] { "Contact" }
                }
            }
            div.field {
                label for="q" { "Name or MIS id" }
                input #q type="search" name="q" value=(query);
            }
            button type="submit" { "Search" }
        }
    }
}

fn found_people(
    found: &[crate::subjects::Found],
    query: &str,
    act: impl Fn(&crate::subjects::Found) -> Markup,
) -> Markup {
    html! {
        @if !query.is_empty() {
            @if found.is_empty() {
                p role="status" { "Nobody matches “" (query) "”." }
            } @else {
                table {
                    caption { "People matching “" (query) "”" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "MIS id" } th scope="col" { "Details" } th scope="col" { "Action" } } }
                    tbody {
                        @for person in found {
                            tr { td { (person.name) } td { (person.id) } td { (person.detail) } td { (act(person)) } }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) struct LogView<'a> {
    pub filters: &'a [(String, String)],
    pub page: Option<&'a Value>,
    pub partners: &'a [(String, String)],
    pub csv_link: String,
    pub next_link: Option<String>,
}

pub(crate) fn log(signed: &Signed, view: &LogView<'_>, problem_text: Option<&str>) -> Markup {
    let filter = |name: &str| {
        (view.filters.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let entries = view
        .page
        .and_then(|p| p["accessLog"].as_array().cloned())
        .unwrap_or_default();
    let body = html! {
        (problem(problem_text))
        p { "Every call an app made on your school's data, newest first: what it read, when, and what it was refused." }
        form method="get" action="/admin/log" {
            div.fields {
                div.field {
                    label for="partner" { "App" }
                    select #partner name="partner" {
                        option value="" { "Any app" }
                        @for (id, name) in view.partners {
                            option value=(id) selected[filter("partner") == id] { (name) }
                        }
                    }
                }
                div.field {
                    label for="endpoint" { "What it read (endpoint)" }
                    input #endpoint type="text" name="endpoint" value=(filter("endpoint"));
                }
                div.field {
                    label for="from" { "From (date)" }
                    input #from type="date" name="from" value=(filter("from"));
                }
                div.field {
                    label for="to" { "Before (date)" }
                    input #to type="date" name="to" value=(filter("to"));
                }
            }
            button type="submit" { "Show" }
        }
        p { a href=(view.csv_link) download { "Download these entries as CSV" } }
        @if entries.is_empty() { p { "No calls match." } } @else {
            table {
                caption { "Calls on your school's data" }
                thead { tr { th scope="col" { "When" } th scope="col" { "App" } th scope="col" { "Read" } th scope="col" { "Answer" } th scope="col" { "Rows" } th scope="col" { "Scopes used" } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td { (text(e, "at")) }
                            td { (text(e, "partner")) }
                            td { (text(e, "endpoint")) }
                            td { @if let Some(reason) = e["refused"].as_str() { "Refused (" (e["status"]) "): " (reason) } @else { "Answered" } }
                            td { (e["rows"]) }
                            td { (e["scopesUsed"].as_array().map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &view.next_link { p { a href=(next) { "Older entries" } } }
    };
    layout("Access log", Screen::Log, Some(signed), body)
}

pub(crate) struct SubjectView<'a> {
    pub kind: &'a str,
    pub query: &'a str,
    pub found: &'a [crate::subjects::Found],
    pub export: Option<&'a Value>,
}

pub(crate) fn subjects(signed: &Signed, view: &SubjectView<'_>) -> Markup {
    let body = html! {
        p { "Answer a subject access request: find the person, then download everything rollcall holds about them and every app read that included them." }
        (person_search("/admin/subjects", view.kind, view.query))
        (found_people(view.found, view.query, |found| html! {
            a href={ "/admin/subjects/" (segment(view.kind)) "/" (segment(&found.id)) } { "Show what is held about " (found.name) }
        }))
        @if let Some(export) = view.export { (subject_summary(export)) }
    };
    layout("Subject access", Screen::Subjects, Some(signed), body)
}

fn subject_summary(export: &Value) -> Markup {
    let kind = text(&export["person"], "kind");
    let id = text(&export["person"], "id");
    let base = format!("/admin/subjects/{}/{}/export", segment(kind), segment(id));
    let sets = export["resultSets"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let reads = export["accessLog"].as_array().cloned().unwrap_or_default();
    html! {
        h2 { "Held about " (kind) " " (id) }
        p {
            a href={ (base) "?format=csv" } download { "Download the subject access file (CSV)" }
            " · "
            a href={ (base) "?format=json" } download { "Download as JSON" }
        }
        @if sets.is_empty() { p { "rollcall holds no rows about them." } } @else {
            table {
                caption { "Rows held, by result set" }
                thead { tr { th scope="col" { "Result set" } th scope="col" { "Rows" } } }
                tbody { @for (set, rows) in &sets { tr { td { (set) } td { (rows.as_array().map_or(0, Vec::len)) } } } }
            }
        }
        @if let Some(partners) = export["optedOutFor"].as_array().filter(|p| !p.is_empty()) {
            p { "Opted out for: " (partners.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) }
        }
        h3 { "App reads that included them" }
        @if reads.is_empty() { p { "None in the access log (it keeps 30 days)." } } @else {
            table {
                caption { "Reads whose answers included them" }
                thead { tr { th scope="col" { "When" } th scope="col" { "App" } th scope="col" { "Read" } th scope="col" { "Fields it could show" } } }
                tbody {
                    @for e in &reads {
                        tr {
                            td { (text(e, "at")) }
                            td { (text(e, "partner")) }
                            td { (text(e, "endpoint")) }
                            td { @for (set, fields) in e["fields"].as_object().into_iter().flatten() {
                                strong { (set) } ": " (fields.as_array().map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) br;
                            } }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn agent(
    signed: &Signed,
    view: &Value,
    sets: &[String],
    notice_text: Option<&str>,
    problem_text: Option<&str>,
) -> Markup {
    let report = &view["report"];
    let uploads = view["resultSets"].as_array().cloned().unwrap_or_default();
    let open = view["openRefreshes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let body = html! {
        (notice(notice_text))
        (problem(problem_text))
        h2 { "Health" }
        @if report.is_null() {
            p { "The school's agent has not reported yet." }
        } @else {
            p {
                @if view["silent"] == true { strong { "The agent has gone silent." } " " }
                "Last heard from: " (text(view, "lastSeen"))
            }
        }
        @if !uploads.is_empty() {
            table {
                caption { "What rollcall holds" }
                thead { tr { th scope="col" { "Result set" } th scope="col" { "Last uploaded" } th scope="col" { "Rows" } } }
                tbody {
                    @for u in &uploads {
                        tr { td { (text(u, "name")) } td { (text(u, "uploadedAt")) } td { (u["rows"]) } }
                    }
                }
            }
        }
        h2 { "Refresh now" }
        @if !open.is_empty() {
            p role="status" { (open.len()) " refresh waiting for the agent's next run (requested " (text(&open[0], "requestedAt")) ")." }
        }
        form method="post" action="/admin/agent/refresh" {
            (csrf(signed))
            fieldset {
                legend { "Ask the agent to send again" }
                div.choice {
                    input #refresh-all type="checkbox" name="all" value="yes";
                    label for="refresh-all" { "Everything it sends" }
                }
                @for set in sets {
                    @let input_id = format!("refresh-{set}");
                    div.choice {
                        input id=(input_id) type="checkbox" name="set" value=(set);
                        label for=(input_id) { (set) }
                    }
                }
            }
            button type="submit" { "Refresh now" }
        }
    };
    layout("School agent", Screen::Agent, Some(signed), body)
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn an_id_in_a_link_stays_one_path_segment() {
        assert_eq!(segment("10041"), "10041");
        assert_eq!(
            segment("../../partners/x?y=1#z"),
            "..%2F..%2Fpartners%2Fx%3Fy%3D1%23z"
        );
        assert_eq!(segment("Zoë O'Neill"), "Zo%C3%AB%20O%27Neill");
    }
}
