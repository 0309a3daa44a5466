//! Reading an endpoint, as a straight pipeline: parse the call → plan it (core's read plan
//! decides everything a partner may see) → load what the plan names → select the rows it
//! admits → project them as it says → page → log. Every answered call is written to the
//! school's access log; a refused one changes nothing stored and is only traced.

use std::borrow::Cow;
use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use rollcall_core::catalogue::{Catalogue, Endpoint, ID, PersonKind, Reference};
use rollcall_core::changeset::ChangesetScope;
use rollcall_core::dataset::{Deletion, Row, partner_row_hash_key};
use rollcall_core::included::Included;
use rollcall_core::model::{Estab, Token, VersionRecord};
use rollcall_core::optout::OptOuts;
use rollcall_core::plan::{
    self, AnsweredRow, Answering, ReadPlan, Resolved, SetPlan, Stamp, ViaPlan, ViewPlan, text,
};
use rollcall_core::scope::ScopeSet;
use rollcall_core::secret::{HashKey, keyed_hash_hex};
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_core::walk::{PinError, WalkPin};
use rollcall_core::xod::{self, SetRows, paginate};
use rollcall_http::credentials::PartnerToken;
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::filter::Filters;
use crate::query::{ChangedRows, ReadQuery};
use crate::rows::{Holding, LoadedSet, NotHeld, holding, pinned_version};
use crate::{ServeState, access_log, computed};

pub(crate) async fn endpoint(
    State(state): State<ServeState>,
    Path((estab, endpoint)): Path<(String, String)>,
    partner: PartnerToken,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    read(&state, partner, &estab, &endpoint, None, query.as_deref()).await
}

pub(crate) async fn endpoint_by_id(
    State(state): State<ServeState>,
    Path((estab, endpoint, id)): Path<(String, String, String)>,
    partner: PartnerToken,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    read(
        &state,
        partner,
        &estab,
        &endpoint,
        Some(id),
        query.as_deref(),
    )
    .await
}

/// What a read produced, for the answer and the access log.
struct Answer {
    endpoint: String,
    /// The answer object, as JSON.
    body: Vec<u8>,
    rows: u64,
    scopes_used: ScopeSet,
    /// Who the answer included (ids only), for the access log.
    included: Included,
    freshness: Option<Freshness>,
}

async fn read(
    state: &ServeState,
    partner: PartnerToken,
    estab: &str,
    endpoint: &str,
    id: Option<String>,
    query: Option<&str>,
) -> ApiResult<Response> {
    let (token, now) = (&partner.token, partner.now);
    let estab = Estab::parse(estab).map_err(|e| ApiError::NotFound(e.to_string()))?;
    partner.check_school(&estab)?;
    let outcome = answer(state, &partner, endpoint, id, query).await;
    let logged_as = Catalogue::get()
        .endpoint_by_path(endpoint)
        .map_or(endpoint, |e| e.path.as_str());
    let answer = access_log::unless_refused(state, token, logged_as, outcome, now).await?;
    access_log::answered(
        state,
        token,
        &answer.endpoint,
        answer.scopes_used.clone(),
        answer.rows,
        &answer.included,
        now,
    )
    .await?;
    let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    let mut response = (json, answer.body).into_response();
    if let Some(freshness) = &answer.freshness {
        freshness.write(response.headers_mut(), now);
    }
    Ok(response)
}

async fn answer(
    state: &ServeState,
    partner: &PartnerToken,
    endpoint: &str,
    id: Option<String>,
    query: Option<&str>,
) -> ApiResult<Answer> {
    let (token, now) = (&partner.token, partner.now);
    let catalogue = Catalogue::get();
    let endpoint = find_endpoint(catalogue, endpoint, id.is_some())?;
    // A path's id is taken trimmed, as the same id given as a filter is.
    let id = id.map(|id| id.trim().to_owned());
    let consent = partner.consent().await?;
    let (opt_outs, contacts_not_held) = judged_opt_outs(state, token, now).await?;
    let (query, filters) = parse_query(endpoint, query, id.as_deref(), now)?;
    let subject = id.or_else(|| filters.given.get("id").cloned());
    let plan = plan::plan(
        catalogue,
        endpoint,
        &consent.scopes,
        &opt_outs,
        &plan::Query {
            options: query.options.clone(),
            select: query.select.clone(),
            filters: filters.active.clone(),
            delta: query.updated_since.is_some() || query.changed_rows.is_some(),
            only_db_status: query.only_db_status,
            subject,
        },
        token.estab.as_str(),
    )?;
    let (resolved, mut not_held) = resolve(state, &token.estab, &plan, &filters, now).await?;
    not_held.extend(contacts_not_held.filter(|_| reads_contacts(&plan)));
    let mut answer = match &plan.view {
        ViewPlan::Stored => {
            stored(
                state,
                token,
                &plan,
                &query,
                &filters,
                &resolved,
                &consent.scopes,
                now,
            )
            .await
        }
        view => {
            computed(
                state,
                token,
                &plan,
                view,
                &query,
                &filters,
                &resolved,
                &consent.scopes,
                now,
            )
            .await
        }
    }?;
    answer
        .freshness
        .get_or_insert_with(Freshness::default)
        .add_not_held(not_held);
    Ok(answer)
}

/// Whether any set the plan answers has rows about contacts or mentions them.
fn reads_contacts(plan: &ReadPlan<'_>) -> bool {
    plan.sets.iter().any(|set| {
        let people = &set.rs.people;
        let contact = |kind: PersonKind| kind == PersonKind::Contact;
        (people.subjects.iter()).any(|s| s.kind().is_none_or(contact))
            || people.mentions.iter().any(|m| contact(m.kind))
    })
}

/// Reads the stored sets a plan names: the primary set's page, then the rows of each related
/// set linked to it. A walk's later pages read the version its pin names; change metadata
/// (`RowHash`, `LastUpdated`, `updatedSince`, `changedRows`) is the plan's, made of what the
/// answer shows.
#[allow(clippy::too_many_arguments)]
async fn stored(
    state: &ServeState,
    token: &Token,
    plan: &ReadPlan<'_>,
    query: &ReadQuery,
    filters: &Filters,
    resolved: &Resolved,
    granted: &ScopeSet,
    now: Timestamp,
) -> ApiResult<Answer> {
    let primary = plan.primary();
    let school_key = school_key(state, &token.estab).await?;
    let binding = ChangesetScope {
        partner: token.partner.to_string(),
        estab: token.estab.to_string(),
        endpoint: plan.endpoint.path.clone(),
        parameters: sharing_binding(
            query.binding(filters),
            granted,
            primary.opt_outs(),
            resolved,
            &school_key,
        ),
    };
    let (record, started) = match &query.version {
        Some(text) => {
            let pin = WalkPin::verify(&school_key, &binding, text, now).map_err(|e| match e {
                PinError::Unknown => ApiError::BadRequest(e.to_string()),
                PinError::Expired => ApiError::Gone(e.to_string()),
            })?;
            let record = pinned_version(state, &token.estab, primary.rs, pin.version, now).await?;
            (record, pin.started)
        }
        None => match holding(state, &token.estab, primary.rs, now).await? {
            Holding::Held(record) => (record, now),
            Holding::NotHeld(why) if query.only_db_status => {
                return Ok(Answer {
                    endpoint: plan.endpoint.path.clone(),
                    body: json_bytes(
                        &json!({ "__DbStatus__": [not_held_status(&token.estab, primary.name, why)] }),
                    ),
                    rows: 0,
                    scopes_used: plan.endpoint_scopes.clone(),
                    included: Included::default(),
                    freshness: Some(Freshness::not_held(primary.name, why)),
                });
            }
            Holding::NotHeld(why) => {
                let held = PrimaryNotHeld {
                    why,
                    binding: &binding,
                    school_key: &school_key,
                };
                return primary_not_held(
                    state, token, plan, query, filters, resolved, granted, held, now,
                )
                .await;
            }
        },
    };
    let mut freshness = Freshness::of(&record);
    if query.only_db_status {
        return Ok(Answer {
            endpoint: plan.endpoint.path.clone(),
            body: json_bytes(&json!({ "__DbStatus__": [db_status(&record, now)] })),
            rows: 0,
            scopes_used: plan.endpoint_scopes.clone(),
            included: Included::default(),
            freshness: Some(freshness),
        });
    }
    let since = changeset_since(query, &binding, &school_key)?;
    let partner_key = HashKey::new(&partner_row_hash_key(&school_key, token.partner.as_str()));
    let loaded = LoadedSet::load(state, record, &primary.groups()).await?;
    let stamp = Stamp {
        key: &partner_key,
        created: loaded.version.record.created_at,
    };
    let index = &loaded.version.index.rows;
    let answers = state.answers.answers(Answering {
        plan,
        position: 0,
        version: &loaded.version.record,
        rows: &loaded.rows,
        index,
        stamp,
        resolved,
    });
    let changed_after = [query.updated_since, since].into_iter().flatten().max();
    let positions: Vec<usize> = (answers.admitted().iter().copied())
        .filter(|&p| {
            changed_after.is_none_or(|after| primary.last_updated(&index[p], stamp.created) > after)
        })
        .collect();
    let pin = WalkPin {
        version: loaded.version.record.version,
        started,
    };
    let page = paginate(
        positions.len(),
        query.page,
        query.page_size,
        &query.carry(Some(&pin.issue(&school_key, &binding)), filters),
    )?;
    let page_positions = &positions[page.rows.clone()];
    let page_ids: BTreeSet<&str> = page_positions
        .iter()
        .map(|&p| index[p].id.as_str())
        .collect();
    let page_answers: Vec<&(AnsweredRow, Included)> =
        page_positions.iter().map(|&p| answers.row(p)).collect();
    let mut included = Included::default();
    included.add_all(page_answers.iter().map(|(_, people)| people));
    let mut answered: Vec<(String, SetRows)> = vec![(
        primary.name.to_owned(),
        SetRows::Answered(page_answers.iter().map(|(row, _)| row.clone()).collect()),
    )];
    drop(answers);
    let related = load_related_sets(state, &token.estab, plan, now).await?;
    let (rows, scopes_used) = with_related_sets(
        plan,
        &related,
        &page_ids,
        resolved,
        granted,
        &partner_key,
        &mut freshness,
        (&mut answered, &mut included),
    );
    let mut changes = None;
    if query.changed_rows.is_some() {
        let deleted = deleted_since(primary, &loaded.version, since, resolved);
        // The snapshot the next call continues from: the latest change this partner can see
        // (never the version's creation, which moves with changes it cannot see).
        let snapshot = positions
            .iter()
            .map(|&p| primary.last_updated(&index[p], stamp.created))
            .chain(deleted.iter().map(|d| d.at))
            .chain(since)
            .max()
            .unwrap_or(Timestamp::from_millis(0));
        if since.is_some() && query.page == 1 {
            answered.push(deleted_rows(primary, &deleted, resolved, &mut included));
        }
        changes = Some(changes_block(
            query,
            filters,
            &binding,
            &school_key,
            snapshot,
        ));
    }
    let mut body = xod::answer(answered, meta(&loaded.version.record), page.block);
    if let Some(block) = changes {
        body = body.with_changed_rows(block);
    }
    Ok(Answer {
        endpoint: plan.endpoint.path.clone(),
        body: body.to_bytes(),
        rows,
        scopes_used,
        included,
        freshness: Some(freshness),
    })
}

/// A call's binding for changesets and page pins, with what the school shares with the
/// partner now: the scopes granted and (as keyed digests) the people opted out and what the
/// plan could resolve of them (which sets judging rows about them are held, and whether the
/// codes they go by are known). A changeset or walk begun before any of these changed would
/// miss rows that became visible (an opt-out lifted, a link set uploaded), list as deleted
/// rows it never showed, or mix two consents, so it is refused and started again.
fn sharing_binding(
    mut parameters: Vec<String>,
    granted: &ScopeSet,
    opt_outs: &OptOuts,
    resolved: &Resolved,
    school_key: &[u8],
) -> Vec<String> {
    let scopes: Vec<&str> = granted.iter().map(String::as_str).collect();
    parameters.push(format!("granted={}", scopes.join(",")));
    let list = |ids: &BTreeSet<String>| ids.iter().cloned().collect::<Vec<_>>().join(",");
    let people = format!(
        "students={};staff={};contacts={}",
        list(&opt_outs.students),
        list(&opt_outs.staff),
        list(&opt_outs.contacts)
    );
    let digest = keyed_hash_hex(school_key, people.as_bytes(), 16);
    parameters.push(format!("optouts={digest}"));
    let links: Vec<&str> = (resolved.links.iter())
        .map(|links| if links.is_some() { "held" } else { "not held" })
        .collect();
    // Which codes are known, never what they are: a changed code of someone opted out is a
    // change of data the partner may not see, and must not show as a refusal.
    let codes: Vec<String> = (resolved.aliases.keys())
        .map(|(kind, field)| format!("{kind:?}.{field}"))
        .collect();
    let resolution = format!("links={};codes={}", links.join(","), codes.join(","));
    let digest = keyed_hash_hex(school_key, resolution.as_bytes(), 16);
    parameters.push(format!("resolved={digest}"));
    parameters
}

/// The school's row-hash key, from which changeset hashes, page pins and partners' RowHash
/// keys are made.
async fn school_key(state: &ServeState, estab: &Estab) -> ApiResult<Vec<u8>> {
    let school = state
        .schools
        .school(estab)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a token of an unknown school")))?;
    Ok(school.row_hash_key)
}

/// A related set of a plan as loaded for a call: `None` when the consent does not release
/// its rows (nothing of it is decrypted), or why it is not held.
type RelatedSet = Result<Option<LoadedSet>, NotHeld>;

/// Loads the plan's related sets (all but the primary), in plan order.
async fn load_related_sets(
    state: &ServeState,
    estab: &Estab,
    plan: &ReadPlan<'_>,
    now: Timestamp,
) -> ApiResult<Vec<RelatedSet>> {
    let mut related = Vec::with_capacity(plan.sets.len().saturating_sub(1));
    for set in &plan.sets[1..] {
        related.push(load_related(state, estab, set, now).await?);
    }
    Ok(related)
}

/// Adds the plan's related sets to `answered` (the primary's page first), each with the rows
/// of `related` (loaded by [`load_related_sets`]) linked to `page_ids` that pass the plan, or
/// `[]` and a not-held note; judges what the answer used (rows, scopes) on the plan's sets in
/// the plan's order, which `scopes_used` pairs by position; then completes and orders the
/// answer as XoD does.
#[allow(clippy::too_many_arguments)]
fn with_related_sets(
    plan: &ReadPlan<'_>,
    related: &[RelatedSet],
    page_ids: &BTreeSet<&str>,
    resolved: &Resolved,
    granted: &ScopeSet,
    partner_key: &HashKey,
    freshness: &mut Freshness,
    (answered, included): (&mut Vec<(String, SetRows)>, &mut Included),
) -> (u64, ScopeSet) {
    for (set, loaded) in plan.sets[1..].iter().zip(related) {
        let rows = match loaded {
            Ok(Some(loaded)) => {
                related_rows(set, loaded, page_ids, resolved, partner_key, included)
            }
            Ok(None) => vec![],
            Err(why) => {
                freshness.not_held.push(not_held_header(set.name, *why));
                vec![]
            }
        };
        answered.push((set.name.to_owned(), SetRows::Answered(rows)));
    }
    let counts: Vec<usize> = answered.iter().map(|(_, rows)| rows.len()).collect();
    let scopes_used = plan.scopes_used(granted, &counts);
    every_set_answered(plan, answered);
    (counts.iter().sum::<usize>() as u64, scopes_used)
}

/// Every set of the endpoint in the answer, as XoD answers them: those the call did not read
/// (an option that is off) as `[]`, all in XoD's order (`_deleted` sets last).
fn every_set_answered(plan: &ReadPlan<'_>, answered: &mut Vec<(String, SetRows)>) {
    for set in &plan.endpoint.sets {
        if !answered.iter().any(|(name, _)| *name == set.name) {
            answered.push((set.name.clone(), SetRows::Made(vec![])));
        }
    }
    answered.sort_by_key(|(name, _)| plan.endpoint.answer_position(name));
}

/// What the answer of an endpoint whose primary set is not held needs besides the call.
struct PrimaryNotHeld<'a> {
    why: NotHeld,
    binding: &'a ChangesetScope,
    school_key: &'a [u8],
}

/// The answer when the endpoint's primary set is not held: no primary rows and an empty
/// page; the related sets as always (those linked to primary rows empty, the others
/// answered); the changeset continuing from where it was; the headers saying what is not held.
#[allow(clippy::too_many_arguments)]
async fn primary_not_held(
    state: &ServeState,
    token: &Token,
    plan: &ReadPlan<'_>,
    query: &ReadQuery,
    filters: &Filters,
    resolved: &Resolved,
    granted: &ScopeSet,
    held: PrimaryNotHeld<'_>,
    now: Timestamp,
) -> ApiResult<Answer> {
    let primary = plan.primary();
    let since = changeset_since(query, held.binding, held.school_key)?;
    let page = paginate(0, query.page, query.page_size, &query.carry(None, filters))?;
    let partner_key = HashKey::new(&partner_row_hash_key(
        held.school_key,
        token.partner.as_str(),
    ));
    let mut freshness = Freshness::not_held(primary.name, held.why);
    let mut answered = vec![(primary.name.to_owned(), SetRows::Answered(vec![]))];
    let mut included = Included::default();
    let related = load_related_sets(state, &token.estab, plan, now).await?;
    let (rows, scopes_used) = with_related_sets(
        plan,
        &related,
        &BTreeSet::new(),
        resolved,
        granted,
        &partner_key,
        &mut freshness,
        (&mut answered, &mut included),
    );
    let mut body = xod::answer(answered, meta_at(now), page.block);
    if query.changed_rows.is_some() {
        let snapshot = since.unwrap_or(Timestamp::from_millis(0));
        let block = changes_block(query, filters, held.binding, held.school_key, snapshot);
        body = body.with_changed_rows(block);
    }
    Ok(Answer {
        endpoint: plan.endpoint.path.clone(),
        body: body.to_bytes(),
        rows,
        scopes_used,
        included,
        freshness: Some(freshness),
    })
}

/// A related set as a call reads it: its current version with the plan's groups decrypted,
/// `None` when the consent does not release its rows, or why it is not held.
async fn load_related(
    state: &ServeState,
    estab: &Estab,
    set: &SetPlan<'_>,
    now: Timestamp,
) -> ApiResult<RelatedSet> {
    if !set.released {
        return Ok(Ok(None));
    }
    let loaded = LoadedSet::held(state, estab, set.rs, &set.groups(), now).await?;
    Ok(loaded.map(Some))
}

/// The rows of a related set that belong to the page's primary rows and pass the plan, as
/// the plan answers them.
fn related_rows(
    set: &SetPlan<'_>,
    loaded: &LoadedSet,
    page_ids: &BTreeSet<&str>,
    resolved: &Resolved,
    partner_key: &HashKey,
    included: &mut Included,
) -> Vec<AnsweredRow> {
    let stamp = Stamp {
        key: partner_key,
        created: loaded.version.record.created_at,
    };
    loaded
        .rows
        .iter()
        .zip(&loaded.version.index.rows)
        .filter(|(row, _)| {
            set.link
                .is_none_or(|link| text(row.get(link)).is_some_and(|v| page_ids.contains(&*v)))
                && set.admits(row, resolved)
        })
        .map(|(row, entry)| {
            set.note_people(row, resolved, included);
            set.answer(row, entry, stamp, resolved)
        })
        .collect()
}

/// A computed endpoint: its rows built from the stored sets its plan allows, then filtered,
/// paged and projected by the plan like stored ones.
#[allow(clippy::too_many_arguments)]
async fn computed(
    state: &ServeState,
    token: &Token,
    plan: &ReadPlan<'_>,
    view: &ViewPlan<'_>,
    query: &ReadQuery,
    filters: &Filters,
    resolved: &Resolved,
    granted: &ScopeSet,
    now: Timestamp,
) -> ApiResult<Answer> {
    let set = plan.primary();
    let computed = computed::compute(state, view, &token.estab, resolved, now).await?;
    let rows: Vec<&Row> = computed
        .rows
        .iter()
        .filter(|row| set.admits(row, resolved))
        .collect();
    let page = paginate(
        rows.len(),
        query.page,
        query.page_size,
        &query.carry(None, filters),
    )?;
    let mut included = Included::default();
    let page_rows: Vec<AnsweredRow> = rows[page.rows.clone()]
        .iter()
        .map(|row| {
            set.note_people(row, resolved, &mut included);
            set.project(row, resolved)
        })
        .collect();
    let count = page_rows.len() as u64;
    // A personal view's rows do not name their person; the answer is about them.
    if let Some((kind, person)) = view.person().filter(|_| count > 0) {
        included.add(kind, person);
    }
    let scopes_used = plan.scopes_used(granted, &[page_rows.len()]);
    let meta = computed.source.as_ref().map_or_else(|| meta_at(now), meta);
    let sets = vec![(set.name.to_owned(), SetRows::Answered(page_rows))];
    Ok(Answer {
        endpoint: plan.endpoint.path.clone(),
        body: xod::answer(sets, meta, page.block).to_bytes(),
        rows: count,
        scopes_used,
        included,
        freshness: computed.source.as_ref().map(Freshness::of),
    })
}

/// What the plan needs from stored data before rows can be judged: the values of its via
/// mappings, whom rows are about through other sets and the records of the people its
/// options' conditions read (each from the current rows and the tombstones, so a row is
/// judged as of when it is shown or was deleted), and the aliases of opted-out people its
/// mentions use; with the sets of those links and aliases that are not held (as
/// `x-rollcall-not-held` lists them), whose rows and mentions are then withheld.
async fn resolve(
    state: &ServeState,
    estab: &Estab,
    plan: &ReadPlan<'_>,
    filters: &Filters,
    now: Timestamp,
) -> ApiResult<(Resolved, Vec<String>)> {
    let today = plan::date_of(&now.to_xod()).to_owned();
    let mut resolved = Resolved {
        today,
        ..Resolved::default()
    };
    let via_inputs: Vec<BTreeSet<String>> = filters
        .active
        .iter()
        .filter(|given| given.filter.via.is_some())
        .map(|given| ViaPlan::input(&given.value))
        .collect();
    for (via, input) in plan.vias.iter().zip(via_inputs) {
        let values = map_through(state, estab, via, input, &resolved.today, now).await?;
        resolved.mapped.push(values);
    }
    let opt_outs = plan.primary().opt_outs();
    let mut not_held = Vec::new();
    // A set not held leaves what it would resolve unknown, which the plan's tests fail
    // closed on: no row judged through it passes, no mention through it is kept.
    for through in &plan.throughs {
        let links = match LoadedSet::held(state, estab, through.rs, &through.decrypt, now).await? {
            Ok(loaded) => Some(through.resolve(&loaded.rows, &loaded.tombstones(), opt_outs)),
            Err(why) => {
                not_held.push(not_held_header(&through.rs.name, why));
                None
            }
        };
        resolved.links.push(links);
    }
    for condition in &plan.people_conditions {
        let loaded =
            LoadedSet::current(state, estab, condition.rs, &condition.decrypt, now).await?;
        let people = condition.resolve(&loaded.rows, &loaded.tombstones());
        resolved.people.push(people);
    }
    for lookup in &plan.lookups {
        let aliases = match LoadedSet::held(state, estab, lookup.rs, &lookup.decrypt, now).await? {
            Ok(loaded) => lookup.resolve(&loaded.rows, opt_outs),
            Err(why) => {
                not_held.push(not_held_header(&lookup.rs.name, why));
                None
            }
        };
        if let Some(aliases) = aliases {
            resolved
                .aliases
                .insert((lookup.kind, lookup.field.to_owned()), aliases);
        }
    }
    Ok((resolved, not_held))
}

/// Maps `values` through each hop of a via plan in turn.
pub(crate) async fn map_through(
    state: &ServeState,
    estab: &Estab,
    via: &ViaPlan<'_>,
    mut values: BTreeSet<String>,
    today: &str,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    for hop in &via.hops {
        let loaded = LoadedSet::current(state, estab, hop.set.rs, &hop.set.groups(), now).await?;
        values = hop.take_from(&loaded.rows, &values, today);
    }
    Ok(values)
}

/// The ids of every contact the school's held sets have rows about, current or deleted.
async fn contacts_held(
    state: &ServeState,
    estab: &Estab,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for rs in Catalogue::get().stored_sets() {
        for subject in &rs.people.subjects {
            let type_field = match &subject.reference {
                Reference::Kind(PersonKind::Contact) => None,
                Reference::Typed { type_field } => Some(type_field.as_str()),
                Reference::Kind(_) => continue,
            };
            let fields: Vec<&str> = [subject.field.as_str()]
                .into_iter()
                .chain(type_field)
                .collect();
            let groups = rs.groups_holding(&fields);
            let Ok(loaded) = LoadedSet::held(state, estab, rs, &groups, now).await? else {
                continue;
            };
            let tombstones = loaded.tombstones();
            for row in (loaded.rows.iter()).chain(tombstones.iter().map(|(row, _)| row)) {
                let of_contact = type_field.is_none_or(|field| {
                    text(row.get(field)).and_then(|t| PersonKind::of_person_type(&t))
                        == Some(PersonKind::Contact)
                });
                if of_contact && let Some(id) = text(row.get(&subject.field)) {
                    ids.insert(id.trim().to_owned());
                }
            }
        }
    }
    Ok(ids)
}

/// The school's opt-outs for this partner, with the contacts linked only to opted-out pupils
/// (while the links are not held, every contact).
pub(crate) async fn opt_outs(
    state: &ServeState,
    token: &Token,
    now: Timestamp,
) -> ApiResult<OptOuts> {
    Ok(judged_opt_outs(state, token, now).await?.0)
}

/// [`opt_outs`], and the links' set when every contact is withheld for want of it (as
/// `x-rollcall-not-held` lists it).
async fn judged_opt_outs(
    state: &ServeState,
    token: &Token,
    now: Timestamp,
) -> ApiResult<(OptOuts, Option<String>)> {
    let people = state
        .opt_outs
        .opt_outs(&token.estab, &token.partner)
        .await?
        .map(|record| record.people)
        .unwrap_or_default();
    if people.students.is_empty() {
        return Ok((people, None));
    }
    let links = Catalogue::get()
        .stored_set("StudentContacts")
        .expect("StudentContacts is stored");
    let groups = links.groups_holding(&["StudentId", "ContactId"]);
    let loaded = match LoadedSet::held(state, &token.estab, links, &groups, now).await? {
        Ok(loaded) => loaded,
        Err(why) => {
            // Which contacts are linked only to opted-out pupils cannot be told without the
            // links, so every contact rollcall holds rows about is withheld until they come.
            let mut people = people;
            people
                .contacts
                .extend(contacts_held(state, &token.estab, now).await?);
            return Ok((people, Some(not_held_header(&links.name, why))));
        }
    };
    let field = |row: &Row, name: &str| text(row.get(name)).map(Cow::into_owned);
    let pair = |row: &Row| Some((field(row, "StudentId")?, field(row, "ContactId")?));
    let pairs: Vec<(String, String)> = loaded.rows.iter().filter_map(pair).collect();
    let deleted: Vec<(String, String, Timestamp)> = loaded
        .tombstones()
        .iter()
        .filter_map(|(row, at)| pair(row).map(|(s, c)| (s, c, *at)))
        .collect();
    let people = people.with_orphaned_contacts(
        pairs.iter().map(|(s, c)| (s.as_str(), c.as_str())),
        deleted
            .iter()
            .map(|(s, c, at)| (s.as_str(), c.as_str(), *at)),
    );
    Ok((people, None))
}

/// The deletions of the result set since `since` the plan admits (as it would the rows).
fn deleted_since<'v>(
    set: &SetPlan<'_>,
    version: &'v OpenVersion,
    since: Option<Timestamp>,
    resolved: &Resolved,
) -> Vec<&'v Deletion> {
    let Some(since) = since else {
        return vec![];
    };
    version
        .index
        .deleted
        .iter()
        .filter(|d| d.at > since && set.admits_deletion(d, resolved))
        .collect()
}

/// `<ResultSet>_deleted`, as `{"Id": ...}` rows; who they were about is noted in `included`.
fn deleted_rows(
    set: &SetPlan<'_>,
    deleted: &[&Deletion],
    resolved: &Resolved,
    included: &mut Included,
) -> (String, SetRows) {
    let rows = deleted
        .iter()
        .map(|d| {
            if let Some(kept) = d.row() {
                set.note_people(&kept, resolved, included);
            }
            let mut row = Row::new();
            row.insert(ID.to_owned(), Value::String(d.id.clone()));
            row
        })
        .collect();
    (format!("{}_deleted", set.name), SetRows::Made(rows))
}

/// The snapshot a `changedRows=<hash>` call continues from; `None` when the call is not part
/// of a changeset or starts one.
fn changeset_since(
    query: &ReadQuery,
    binding: &ChangesetScope,
    school_key: &[u8],
) -> ApiResult<Option<Timestamp>> {
    match &query.changed_rows {
        Some(ChangedRows::Since(hash)) => binding
            .verify(school_key, hash)
            .map(Some)
            .map_err(ApiError::from),
        Some(ChangedRows::Start) | None => Ok(None),
    }
}

/// The `__changedRows__` entry: the hash that continues from `snapshot`.
fn changes_block(
    query: &ReadQuery,
    filters: &Filters,
    binding: &ChangesetScope,
    school_key: &[u8],
    snapshot: Timestamp,
) -> Value {
    let requested = match &query.changed_rows {
        Some(ChangedRows::Since(hash)) => hash.clone(),
        _ => "*".to_owned(),
    };
    let next = binding.issue(school_key, snapshot);
    json!({
        "SnapshotDate": snapshot.to_rfc3339(),
        "SnapshotRP": binding.partner,
        "PreviousChangedRows": requested,
        "RequestedChangedRows": requested,
        "NextChangedRows": next,
        "NextUrl": query.next_changes_url(&next, filters),
    })
}

/// `__DbStatus__`: when the school's data behind the endpoint was last extracted.
fn db_status(record: &VersionRecord, now: Timestamp) -> Value {
    json!({
        "Estab": record.estab.as_str(),
        "ResultSet": record.result_set,
        "Held": true,
        "LastExtracted": record.confirmed_at.to_xod(),
        "ValidUntil": record.valid_until.to_xod(),
        "Stale": record.is_stale(now),
    })
}

/// `__DbStatus__` of a set rollcall does not hold, and why.
fn not_held_status(estab: &Estab, set: &str, why: NotHeld) -> Value {
    json!({
        "Estab": estab.as_str(),
        "ResultSet": set,
        "Held": false,
        "NotHeldReason": why.reason(),
        "LastExtracted": null,
        "ValidUntil": null,
        "Stale": false,
    })
}

/// A not-held set as `x-rollcall-not-held` lists it: `TTPeriods (not uploaded)`.
fn not_held_header(set: &str, why: NotHeld) -> String {
    format!("{set} ({})", why.reason())
}

/// A read's query string: its options, paging, select, changeset and pin (`ReadQuery`), and
/// the endpoint's filters, one of which may be the path's `id`.
pub(crate) fn parse_query(
    endpoint: &'static Endpoint,
    query: Option<&str>,
    id: Option<&str>,
    now: Timestamp,
) -> ApiResult<(ReadQuery, Filters)> {
    let query = ReadQuery::parse(endpoint, query)?;
    let filters = Filters::parse(endpoint, &query.params, id, now)?;
    Ok((query, filters))
}

pub(crate) fn find_endpoint(
    catalogue: &'static Catalogue,
    name: &str,
    by_id: bool,
) -> ApiResult<&'static Endpoint> {
    let endpoint = catalogue.endpoint_by_path(name).ok_or_else(|| {
        let known: Vec<&str> = catalogue
            .endpoints()
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        ApiError::NotFound(format!(
            "there is no endpoint `{}`; rollcall serves: {}",
            name.chars().take(64).collect::<String>(),
            known.join(", ")
        ))
    })?;
    if by_id && !endpoint.by_id {
        return Err(ApiError::NotFound(format!(
            "{} does not take an id; call /api/v1/School/{{estab}}/{} without one",
            endpoint.path, endpoint.path
        )));
    }
    Ok(endpoint)
}

/// XoD's `meta`. `Version` is the answer format's, never a count of the school's uploads
/// (which would move with changes the partner cannot see); `DateTime` is when the data was
/// last confirmed by the agent, which every upload moves alike.
fn meta(record: &VersionRecord) -> Value {
    meta_at(record.confirmed_at)
}

fn meta_at(at: Timestamp) -> Value {
    json!({"Id": 1, "MIS": "unknown", "Version": "1", "DateTime": at.to_xod()})
}

/// When the data was last confirmed by the school's agent, and whether that is past the
/// result set's validity. Sent as headers, which no XoD client reads or trips on.
#[derive(Default)]
struct Freshness {
    /// When the answer's primary set was extracted and until when it counts as fresh.
    source: Option<(Timestamp, Timestamp)>,
    /// The endpoint's sets rollcall does not hold, each with why (`x-rollcall-not-held`).
    not_held: Vec<String>,
}

impl Freshness {
    fn of(record: &VersionRecord) -> Self {
        Self {
            source: Some((record.confirmed_at, record.valid_until)),
            not_held: Vec::new(),
        }
    }

    fn not_held(set: &str, why: NotHeld) -> Self {
        Self {
            source: None,
            not_held: vec![not_held_header(set, why)],
        }
    }

    /// Adds sets not held (as `x-rollcall-not-held` lists them) not listed yet.
    fn add_not_held(&mut self, sets: Vec<String>) {
        for set in sets {
            if !self.not_held.contains(&set) {
                self.not_held.push(set);
            }
        }
    }

    fn write(&self, headers: &mut HeaderMap, now: Timestamp) {
        let mut pairs = Vec::new();
        if let Some((extracted_at, valid_until)) = self.source {
            let age = now.since(extracted_at).as_seconds().max(0);
            pairs.push(("x-rollcall-extracted-at", extracted_at.to_rfc3339()));
            pairs.push(("x-rollcall-data-age", age.to_string()));
            pairs.push(("x-rollcall-stale", (now >= valid_until).to_string()));
        }
        if !self.not_held.is_empty() {
            pairs.push(("x-rollcall-not-held", self.not_held.join(", ")));
        }
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

/// An answer built as a JSON value, as bytes.
fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}
