//! The read plan: the one place that decides what a partner may see.
//!
//! [`plan`] takes a catalogue endpoint, the scopes of the consent in force, the school's
//! opt-outs for this partner and the parsed query, and answers a [`Refusal`] or a
//! [`ReadPlan`]: per answered result set, the scope groups to decrypt and why, the fields that
//! may be emitted and the rules a row must meet (filters, option conditions, opt-outs,
//! row-dependent scopes); the sets read only to map filters, with what of them may influence
//! the answer; the aliases of opted-out people to resolve; and, for computed endpoints, what
//! they may be computed from. Write-backs get theirs from [`writeback_plan`].
//!
//! A plan only decides. The serve function loads what it names, then asks the plan's own
//! functions which rows pass ([`SetPlan::admits`]) and what of each row leaves
//! ([`SetPlan::project`], with its change metadata by [`SetPlan::answer`]), so nothing a plan
//! did not release can reach an answer. Every
//! decision a reader may want to check is in this file: `plan`, `set_plan`, `via_plan`,
//! `writeback_plan`, and the row functions of [`SetPlan`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use aws_lc_rs::digest;
use serde_json::Value;
use zeroize::Zeroize;

use crate::catalogue::{
    Catalogue, Condition, Endpoint, Field, Filter, FilterOp, ID, LAST_UPDATED, Mention,
    OptionEffect, PersonKind, ROW_HASH, Reference, ResultSet, ScopeGroup, Shape, Test, View,
    Writeback, WritebackBody, is_computed_field,
};
use crate::dataset::{Deletion, IndexEntry, Row, row_hash_of};
use crate::included::Included;
use crate::model::VersionRecord;
use crate::optout::OptOuts;
use crate::scope::ScopeSet;
use crate::secret::HashKey;
use crate::timestamp::{Duration, Timestamp};

/// The parsed query of a partner call, as the plan needs it.
#[derive(Debug, Clone, Default)]
pub struct Query<'c> {
    /// The endpoint's options named by `options=` (catalogue spelling).
    pub options: BTreeSet<String>,
    /// The fields `select` names, as given.
    pub select: Option<Vec<String>>,
    /// Every filter in effect (given, defaulted or fixed), its value checked and normalised.
    pub filters: Vec<GivenFilter<'c>>,
    /// `updatedSince` or `changedRows` was given.
    pub delta: bool,
    pub only_db_status: bool,
    /// The id a personal view is about (`/{id}` or `?id=`).
    pub subject: Option<String>,
}

/// One filter in effect and its value.
#[derive(Debug, Clone)]
pub struct GivenFilter<'c> {
    pub filter: &'c Filter,
    pub value: String,
}

/// Why a call is refused. The text says what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The consent in force does not release what the call asks for.
    #[error("{0}")]
    NotGranted(String),
    /// The call asks for something the endpoint cannot answer.
    #[error("{0}")]
    BadQuery(String),
}

/// Why a scope group is decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// It holds fields the answer emits.
    Released,
    /// It holds a field a filter or option tests (never emitted unless also released).
    Filter,
    /// It holds a field that says whom a row is about, to apply opt-outs and row scopes.
    People,
    /// It holds the field linking a related row to its primary row.
    Link,
}

/// One group to decrypt and why.
#[derive(Debug, Clone, Copy)]
pub struct Decrypt<'c> {
    pub group: &'c ScopeGroup,
    pub reason: Reason,
}

/// A test a row must pass.
#[derive(Debug, Clone)]
enum RowTest<'c> {
    /// A filter of the call on fields of this set.
    Filter(GivenFilter<'c>),
    /// One of `fields` holds a value the via mapping `via` produced.
    Mapped { fields: &'c [String], via: usize },
    /// An option's condition, which the row must (`true`) or must not (`false`) meet.
    Condition(&'c Condition, bool),
    /// The row is not one that [`ReadPlan::throughs`]`[index]` found about opted-out people
    /// only.
    NotAboutOptedOut { index: usize },
    /// An option's condition on the person in field `of`: whether that person is among those
    /// [`ReadPlan::people_conditions`]`[index]` found meeting it must be `keep`.
    Person {
        of: &'c str,
        index: usize,
        keep: bool,
    },
    /// `field` holds one of a via hop's input values.
    Within { field: &'c str },
}

/// What a plan needs resolved from stored data before rows can be judged: the values each
/// via mapping produced, and the aliases (staff codes, IDaaS ids) of opted-out people.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Today's date, `yyyy-mm-dd`.
    pub today: String,
    /// Per via mapping of the plan, the values it produced (filled in hop by hop).
    pub mapped: Vec<BTreeSet<String>>,
    /// Per [`ReadPlan::people_conditions`] entry, the records of the people it reads.
    pub people: Vec<PersonRecords>,
    /// Per [`ReadPlan::throughs`] entry, whom each primary row is about; `None` when the
    /// through set is not held, so that whom a row is about cannot be told and no row passes.
    pub links: Vec<Option<Links>>,
    /// Per (kind, field of the person's own record), the codes people go by in it; absent
    /// where the opted-out people could not all be found (then every mention through that
    /// field is blanked).
    pub aliases: BTreeMap<(PersonKind, String), Aliases>,
}

/// The codes (staff codes, IDaaS ids) one field of people's own records holds now, as
/// [`alias_key`] compares them. A mention keeps a code only when it is the code of someone
/// held and not opted out, and of no one opted out: a code no one holds now (an opted-out
/// teacher's code before it changed, a code of someone deleted) cannot be told apart from one
/// of an opted-out person, so it is withheld.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    /// The codes of people not opted out.
    pub kept: BTreeSet<String>,
    /// The codes of opted-out people.
    pub withheld: BTreeSet<String>,
}

impl Aliases {
    /// Whether a mention may keep `code`.
    fn keeps(&self, code: &str) -> bool {
        let code = alias_key(code);
        self.kept.contains(&code) && !self.withheld.contains(&code)
    }
}

/// How one answered (or counted) result set is read.
#[derive(Debug, Clone)]
pub struct SetPlan<'c> {
    /// The name on the wire.
    pub name: &'c str,
    pub rs: &'c ResultSet,
    /// Whether the consent releases the set's rows at all (its `Id`). A set it does not is
    /// answered as `[]` and nothing of it is decrypted.
    pub released: bool,
    pub decrypt: Vec<Decrypt<'c>>,
    /// The fields that may leave, in catalogue order.
    pub emit: Vec<&'c Field>,
    /// For a related set, the field holding its primary row's id.
    pub link: Option<&'c str>,
    tests: Vec<RowTest<'c>>,
    opt_outs: OptOuts,
    /// The kinds of person whose rows the consent releases, for a set with a row scope.
    row_kinds: Option<BTreeSet<PersonKind>>,
    /// The groups (by index) of the fields emitted: a row's `LastUpdated` is the latest change
    /// of these, so a change of anything else does not move it.
    stamp_groups: Vec<usize>,
    /// The positions in `emit` of the fields a `RowHash` is made of (all but the computed
    /// ones), in name order.
    hash_order: Vec<usize>,
    /// The names of `emit` as JSON strings, as an answered row writes them.
    names_json: Vec<String>,
}

/// What a stored row's change metadata is made with: the `RowHash` key of this partner (see
/// [`crate::dataset::partner_row_hash_key`]) and the creation time of the version read, which
/// stands in for rows of an index written without per-group marks.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    pub key: &'a HashKey,
    pub created: Timestamp,
}

/// One set of a plan answering the rows of one stored version: `rows` decrypted from
/// `version` as the set's plan asks, `index` the version's index. [`Answering::key`] digests
/// everything [`SetPlan::admits`], [`SetPlan::answer`] and [`SetPlan::note_people`] are given
/// for these rows, so an answer kept under that key
/// ([`crate::read_cache::AnswerMemo`]) is exactly the one they would make again; a change of
/// consent, opt-outs, query, version, partner or anything resolved is another key.
#[derive(Clone, Copy)]
pub struct Answering<'a, 'c> {
    pub plan: &'a ReadPlan<'c>,
    /// The set's position in `plan.sets`.
    pub position: usize,
    pub version: &'a VersionRecord,
    pub rows: &'a [Row],
    pub index: &'a [IndexEntry],
    pub stamp: Stamp<'a>,
    pub resolved: &'a Resolved,
}

impl Answering<'_, '_> {
    fn set(&self) -> &SetPlan<'_> {
        &self.plan.sets[self.position]
    }

    /// The digest of everything these rows' answers are made from.
    pub fn key(&self) -> Fingerprint {
        fingerprint(&[
            &self.plan.inputs,
            &self.position,
            self.version,
            &self.rows.len(),
            &self.stamp.key.fingerprint(),
            &self.stamp.created,
            self.resolved,
        ])
    }

    /// The positions of the rows the set admits ([`SetPlan::admits`]), in order.
    pub fn admitted(&self) -> Vec<usize> {
        let set = self.set();
        (0..self.rows.len())
            .filter(|&p| set.admits(&self.rows[p], self.resolved))
            .collect()
    }

    /// Row `p` as answered ([`SetPlan::answer`]), with the people it includes
    /// ([`SetPlan::note_people`]).
    pub fn answer(&self, p: usize) -> (AnsweredRow, Included) {
        let (set, row) = (self.set(), &self.rows[p]);
        let mut people = Included::default();
        set.note_people(row, self.resolved, &mut people);
        let answered = set.answer(row, &self.index[p], self.stamp, self.resolved);
        (answered, people)
    }
}

/// A row as a [`SetPlan`] answers it ([`SetPlan::project`], [`SetPlan::answer`]), written:
/// the JSON object of the fields the plan emits, in its order, and nothing else. It is made
/// only by the plan, so what it shows is the plan's. Clones share the bytes, which are
/// overwritten when the last one is dropped (answers are kept by
/// [`crate::read_cache::AnswerMemo`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredRow(Arc<RowJson>);

#[derive(Debug, PartialEq, Eq)]
struct RowJson(Vec<u8>);

impl Drop for RowJson {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl AnsweredRow {
    fn new(json: Vec<u8>) -> Self {
        Self(Arc::new(RowJson(json)))
    }

    /// The row's JSON object.
    pub fn json(&self) -> &[u8] {
        &self.0.0
    }

    /// The row as a JSON object, for where an answer is inspected rather than written.
    pub fn to_row(&self) -> Row {
        serde_json::from_slice(self.json()).expect("an answered row is a JSON object")
    }
}

/// A filter's values mapped through other stored sets, hop by hop.
#[derive(Debug, Clone)]
pub struct ViaPlan<'c> {
    pub hops: Vec<HopPlan<'c>>,
}

/// One hop: the rows of `set.rs` whose `matches` holds an input value give their `take`.
#[derive(Debug, Clone)]
pub struct HopPlan<'c> {
    pub set: SetPlan<'c>,
    pub matches: &'c str,
    pub take: &'c str,
}

/// The values of `field` in people's own records (`kind.own_set()`): what a mention
/// `of <field>` holds instead of their id ([`Aliases`]).
#[derive(Debug, Clone)]
pub struct Lookup<'c> {
    pub kind: PersonKind,
    pub field: &'c str,
    pub rs: &'c ResultSet,
    pub decrypt: Vec<&'c ScopeGroup>,
}

/// An option's condition on the people rows refer to (pupils who have left): which people
/// meet it is read from their own records, decrypting only the groups named, and never
/// answered.
#[derive(Debug, Clone)]
pub struct PersonCondition<'c> {
    pub condition: &'c Condition,
    pub rs: &'c ResultSet,
    pub decrypt: Vec<&'c ScopeGroup>,
}

/// A set whose rows name the people a primary row is about (an incident's pupils), read to
/// leave out the rows about opted-out people only; never answered.
#[derive(Debug, Clone)]
pub struct Through<'c> {
    pub rs: &'c ResultSet,
    pub link: &'c str,
    pub subject: &'c str,
    pub kind: PersonKind,
    pub decrypt: Vec<&'c ScopeGroup>,
}

impl Through<'_> {
    /// Whom each primary row is about, from the through set's `current` rows and its
    /// `deleted` rows (tombstones, with when each was deleted).
    pub fn resolve(
        &self,
        current: &[Row],
        deleted: &[(Row, Timestamp)],
        opt_outs: &OptOuts,
    ) -> Links {
        let people = opt_outs.of(self.kind);
        let mut links = Links::default();
        for (row, deleted_at) in dated(current, deleted) {
            let Some(link) = text(row.get(self.link)) else {
                continue;
            };
            let out = text(row.get(self.subject)).is_some_and(|id| people.contains(id.trim()));
            let link = link.trim().to_owned();
            links.0.entry(link).or_default().push((out, deleted_at));
        }
        links
    }
}

impl PersonCondition<'_> {
    /// The people's own records, `current` and `deleted` (tombstones, with when each was
    /// deleted), as much of them as the condition reads.
    pub fn resolve(&self, current: &[Row], deleted: &[(Row, Timestamp)]) -> PersonRecords {
        let mut by_person: BTreeMap<String, Dated<Row>> = BTreeMap::new();
        for (row, deleted_at) in dated(current, deleted) {
            if let Some(id) = text(row.get(ID)) {
                let kept: Row = [ID, self.condition.field.as_str()]
                    .into_iter()
                    .filter_map(|f| Some((f.to_owned(), row.get(f)?.clone())))
                    .collect();
                let id = id.trim().to_owned();
                by_person.entry(id).or_default().push((kept, deleted_at));
            }
        }
        PersonRecords {
            condition: self.condition.clone(),
            by_person,
        }
    }
}

/// Current rows (`None`) then deleted ones (when each was deleted).
fn dated<'r>(
    current: &'r [Row],
    deleted: &'r [(Row, Timestamp)],
) -> impl Iterator<Item = (&'r Row, Option<Timestamp>)> {
    current
        .iter()
        .map(|row| (row, None))
        .chain(deleted.iter().map(|(row, at)| (row, Some(*at))))
}

/// States of one thing, current (`None`) or as a tombstone kept them (deleted at `Some`).
type Dated<T> = Vec<(T, Option<Timestamp>)>;

/// The states one thing (a row's links, a person's records) had as of `when`. Now: the
/// current ones, or with none, those deleted last (together). For a row deleted at `at`:
/// those it still had then (current, or deleted with it or after), or with none, those
/// deleted last before it. So a row whose links went before it is judged as it was shown
/// in between.
fn as_of<T>(states: &Dated<T>, when: When) -> Vec<&T> {
    // The moment judged (`None`: now); a state deleted at or after it was still held then.
    let moment = match when {
        When::Now => None,
        When::Deleted(at) => Some(at),
    };
    let held = |deleted: Option<Timestamp>| match (deleted, moment) {
        (None, _) => true,
        (Some(deleted), Some(at)) => deleted >= at,
        (Some(_), None) => false,
    };
    let then: Vec<&T> = states
        .iter()
        .filter(|(_, d)| held(*d))
        .map(|(s, _)| s)
        .collect();
    if !then.is_empty() {
        return then;
    }
    let last = states
        .iter()
        .filter_map(|(_, d)| *d)
        .filter(|d| moment.is_none_or(|at| *d < at))
        .max();
    states
        .iter()
        .filter(|(_, d)| last.is_some() && *d == last)
        .map(|(s, _)| s)
        .collect()
}

/// Whom the rows of a primary set are about through another set (an incident's pupils):
/// per primary id, each link's person opted out or not, current or deleted.
#[derive(Debug, Clone, Default)]
pub struct Links(BTreeMap<String, Dated<bool>>);

impl Links {
    /// Whether row `id` was, as of `when`, about opted-out people only (and someone).
    fn about_opted_out_only(&self, id: &str, when: When) -> bool {
        self.0.get(id.trim()).is_some_and(|states| {
            let then = as_of(states, when);
            !then.is_empty() && then.into_iter().all(|out| *out)
        })
    }
}

/// The own records of the people an option's condition reads, current or deleted.
#[derive(Debug, Clone)]
pub struct PersonRecords {
    condition: Condition,
    by_person: BTreeMap<String, Dated<Row>>,
}

impl PersonRecords {
    /// Whether person `id`'s record met the condition as of `when`, on `today`: the current
    /// record, or the one deleted last; for a row deleted at `at`, the record deleted with
    /// it or first after it, else as now. `None` when rollcall holds no record of them (never
    /// sent, or deleted longer ago than tombstones are kept): nothing can be said of them.
    fn meets(&self, id: &str, when: When, today: &str) -> Option<bool> {
        // Ids are compared as opt-outs compare them, without surrounding spaces.
        self.by_person.get(id.trim()).map(|records| {
            let then = match when {
                When::Now => None,
                When::Deleted(at) => records
                    .iter()
                    .filter(|(_, d)| d.is_some_and(|d| d >= at))
                    .min_by_key(|(_, d)| *d)
                    .map(|(record, _)| record),
            };
            then.or_else(|| as_of(records, When::Now).into_iter().next())
                .is_some_and(|record| condition_holds(&self.condition, record, today))
        })
    }
}

/// What a computed endpoint may be computed from.
#[derive(Debug, Clone)]
pub enum ViewPlan<'c> {
    /// Stored sets, answered as [`ReadPlan::sets`] say.
    Stored,
    /// A row count per area, only of areas the consent releases, opt-outs applied.
    Counts(Vec<SetPlan<'c>>),
    /// The freshness of each stored set the consent releases rows of.
    Health(Vec<&'c ResultSet>),
    /// One person's lessons: the lessons the via mapping selects from `lessons`. `hidden`
    /// when the person is opted out (nothing is read).
    Personal {
        hidden: bool,
        /// The person's kind and id, the via mapping's input.
        kind: PersonKind,
        subject: String,
        via: ViaPlan<'c>,
        lessons: Box<SetPlan<'c>>,
        /// The field of a lesson the mapping's values match (`Id` or `ClassId`).
        lesson_field: &'c str,
    },
}

impl ViewPlan<'_> {
    /// The one person a personal view is about (their timetable), whom its answer includes.
    pub fn person(&self) -> Option<(PersonKind, &str)> {
        match self {
            ViewPlan::Personal {
                hidden: false,
                kind,
                subject,
                ..
            } => Some((*kind, subject.as_str())),
            _ => None,
        }
    }
}

/// The decision for one partner call.
#[derive(Debug, Clone)]
pub struct ReadPlan<'c> {
    pub endpoint: &'c Endpoint,
    /// The answered sets, primary first. For a computed endpoint, its computed set.
    pub sets: Vec<SetPlan<'c>>,
    /// Via mappings, by the index [`Resolved::mapped`] uses.
    pub vias: Vec<ViaPlan<'c>>,
    pub lookups: Vec<Lookup<'c>>,
    /// Conditions of options on the people rows refer to, by the index
    /// [`Resolved::meeting`] uses.
    pub people_conditions: Vec<PersonCondition<'c>>,
    /// The sets that say whom the primary rows are about, by the index
    /// [`Resolved::about_opted_out`] uses.
    pub throughs: Vec<Through<'c>>,
    pub view: ViewPlan<'c>,
    /// The granted scopes the endpoint's own expression relied on.
    pub endpoint_scopes: ScopeSet,
    /// The [`Fingerprint`] of everything [`plan`] decided it from (its arguments; the
    /// catalogue is the process's one): two plans with the same inputs decide the same.
    inputs: Fingerprint,
}

impl<'c> ReadPlan<'c> {
    pub fn primary(&self) -> &SetPlan<'c> {
        &self.sets[0]
    }

    /// The granted scopes this answer relied on: the endpoint's and those of the fields of
    /// the sets that answered rows (`answered` counts them by set, in plan order).
    pub fn scopes_used(&self, granted: &ScopeSet, answered: &[usize]) -> ScopeSet {
        let mut used = self.endpoint_scopes.clone();
        for (set, &rows) in self.sets.iter().zip(answered) {
            if rows == 0 {
                continue;
            }
            for field in &set.emit {
                used.extend(
                    field
                        .scope
                        .scopes()
                        .filter(|s| granted.contains(*s))
                        .map(str::to_owned),
                );
            }
        }
        used
    }
}

/// Decides a read of `endpoint` under a consent granting `granted`, with the school's
/// `opt_outs` for this partner (contacts linked only to opted-out pupils included; see
/// [`OptOuts::with_orphaned_contacts`]).
pub fn plan<'c>(
    catalogue: &'c Catalogue,
    endpoint: &'c Endpoint,
    granted: &ScopeSet,
    opt_outs: &OptOuts,
    query: &Query<'c>,
    estab: &str,
) -> Result<ReadPlan<'c>, Refusal> {
    if !endpoint.scope.is_satisfied_by(granted) {
        return Err(Refusal::NotGranted(format!(
            "{} needs a scope school {estab} has not granted you: {}; ask the school to grant it",
            endpoint.path,
            endpoint.scope.describe_missing(granted)
        )));
    }
    if endpoint.view != View::Stored && (query.delta || query.only_db_status) {
        return Err(Refusal::BadQuery(format!(
            "{} is computed from other result sets, so it takes no changedRows, updatedSince \
             or onlyGetDbStatus; ask the result sets it is computed from, or Health",
            endpoint.path
        )));
    }
    check_filter_consent(catalogue, endpoint, granted, query, estab)?;
    let mut vias = Vec::new();
    let mut tests_by_set: BTreeMap<&str, Vec<RowTest<'c>>> = BTreeMap::new();
    for given in &query.filters {
        let test = match &given.filter.via {
            Some(via) => {
                let name = given.filter.name.as_deref().unwrap_or_default();
                vias.push(via_plan(catalogue, via, name, granted, opt_outs, estab)?);
                RowTest::Mapped {
                    fields: &given.filter.fields,
                    via: vias.len() - 1,
                }
            }
            None => RowTest::Filter(given.clone()),
        };
        tests_by_set
            .entry(given.filter.set.as_str())
            .or_default()
            .push(test);
    }
    let mut people_conditions = Vec::new();
    for (condition, keep) in option_conditions(endpoint, &query.options) {
        let test = match &condition.of {
            None => RowTest::Condition(condition, keep),
            Some(of) => {
                people_conditions.push(person_condition(
                    catalogue,
                    stored(catalogue, &endpoint.primary().stored),
                    condition,
                ));
                RowTest::Person {
                    of,
                    index: people_conditions.len() - 1,
                    keep,
                }
            }
        };
        tests_by_set
            .entry(endpoint.primary().name.as_str())
            .or_default()
            .push(test);
    }
    let primary_rs = stored(catalogue, &endpoint.primary().stored);
    let mut throughs = Vec::new();
    if let Some(through) = through_plan(catalogue, primary_rs, opt_outs) {
        throughs.push(through);
        tests_by_set
            .entry(endpoint.primary().name.as_str())
            .or_default()
            .push(RowTest::NotAboutOptedOut { index: 0 });
    }
    let selected = selected_fields(primary_rs, query.select.as_deref(), granted, estab)?;
    let hidden = hidden_columns(endpoint, &query.options);
    let mut sets = Vec::new();
    for (position, set) in endpoint.answered(&query.options).enumerate() {
        let rs = stored(catalogue, &set.stored);
        let primary = position == 0;
        let emit_filter = |field: &Field| {
            !set.omit.contains(&field.name)
                && (!primary
                    || (!hidden.contains(field.name.as_str())
                        && selected
                            .as_ref()
                            .is_none_or(|s| field.name == ID || s.contains(&field.name))))
        };
        let tests = tests_by_set.remove(set.name.as_str()).unwrap_or_default();
        let link = (!primary).then_some(rs.link.as_deref()).flatten();
        sets.push(set_plan(
            set.name.as_str(),
            rs,
            granted,
            opt_outs,
            tests,
            link,
            emit_filter,
        ));
    }
    let view = view_plan(catalogue, endpoint, granted, opt_outs, query)?;
    let lookups = lookups(catalogue, &sets, &vias, &view, opt_outs);
    let endpoint_scopes = endpoint
        .scope
        .scopes()
        .filter(|s| granted.contains(*s))
        .map(str::to_owned)
        .collect();
    Ok(ReadPlan {
        endpoint,
        sets,
        vias,
        lookups,
        people_conditions,
        throughs,
        view,
        endpoint_scopes,
        inputs: fingerprint(&[&endpoint.path, granted, opt_outs, query, &estab]),
    })
}

/// A digest (SHA-256) of values as their `Debug` forms write them, each ended by a NUL:
/// `Debug` writes a NUL inside a string escaped, so one value cannot run into the next. Every
/// type it is given derives `Debug`, which writes every field, so a field added later is
/// digested too.
pub type Fingerprint = [u8; 32];

/// The [`Fingerprint`] of `values`.
fn fingerprint(values: &[&dyn std::fmt::Debug]) -> Fingerprint {
    struct Digesting(digest::Context);
    impl std::fmt::Write for Digesting {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0.update(text.as_bytes());
            Ok(())
        }
    }
    let mut out = Digesting(digest::Context::new(&digest::SHA256));
    for value in values {
        std::fmt::Write::write_fmt(&mut out, format_args!("{value:?}\0"))
            .expect("digesting never fails");
    }
    (out.0.finish().as_ref())
        .try_into()
        .expect("a SHA-256 digest has 32 bytes")
}

/// The set that says whom `rs`'s rows are about, where opt-outs of that kind of person apply.
fn through_plan<'c>(
    catalogue: &'c Catalogue,
    rs: &'c ResultSet,
    opt_outs: &OptOuts,
) -> Option<Through<'c>> {
    let through = stored(catalogue, rs.people.about_through.as_deref()?);
    let (subject, kind) = through
        .people
        .subjects
        .iter()
        .find_map(|s| Some((s.field.as_str(), s.kind()?)))
        .expect("the catalogue checks about_through");
    if opt_outs.of(kind).is_empty() {
        return None;
    }
    let link = through
        .link
        .as_deref()
        .expect("the catalogue checks about_through");
    let decrypt = through.groups_holding(&[link, subject]);
    Some(Through {
        rs: through,
        link,
        subject,
        kind,
        decrypt,
    })
}

/// Where an option's condition on the person in `condition.of` is read from: that person's
/// own record, the groups of its id and of the field tested.
fn person_condition<'c>(
    catalogue: &'c Catalogue,
    primary: &'c ResultSet,
    condition: &'c Condition,
) -> PersonCondition<'c> {
    let kind = primary
        .people
        .subjects
        .iter()
        .find_map(|s| match s.reference {
            Reference::Kind(kind) if Some(&s.field) == condition.of.as_ref() => Some(kind),
            _ => None,
        })
        .expect("the catalogue checks that `of` is a person the set is about");
    let rs = stored(catalogue, kind.own_set());
    let decrypt = rs.groups_holding(&[ID, condition.field.as_str()]);
    PersonCondition {
        condition,
        rs,
        decrypt,
    }
}

fn stored<'c>(catalogue: &'c Catalogue, name: &str) -> &'c ResultSet {
    catalogue
        .result_set(name)
        .expect("the catalogue names only result sets it defines (checked at load)")
}

/// A filter the partner gives on a field the consent does not release would reveal that
/// field's values: refused, naming the field.
fn check_filter_consent(
    catalogue: &Catalogue,
    endpoint: &Endpoint,
    granted: &ScopeSet,
    query: &Query<'_>,
    estab: &str,
) -> Result<(), Refusal> {
    for given in query.filters.iter().filter(|g| g.filter.name.is_some()) {
        let set = endpoint
            .sets
            .iter()
            .find(|s| s.name == given.filter.set)
            .expect("filters name answered sets (catalogue checked)");
        let rs = stored(catalogue, &set.stored);
        for field in &given.filter.fields {
            let field = rs.field(field).expect("catalogue checked");
            if !field.scope.is_satisfied_by(granted) {
                return Err(Refusal::NotGranted(format!(
                    "{} filters on {}.{}, which needs {}; school {estab} has not granted it to \
                     you, so leave the parameter out or ask the school to grant it",
                    given.filter.name.as_deref().unwrap_or_default(),
                    rs.name,
                    field.name,
                    field.scope
                )));
            }
        }
    }
    Ok(())
}

/// A via mapping reads other sets: each hop's fields must be ones the consent releases (the
/// mapping reveals them), and rows about opted-out people take no part.
fn via_plan<'c>(
    catalogue: &'c Catalogue,
    via: &'c crate::catalogue::Via,
    parameter: &str,
    granted: &ScopeSet,
    opt_outs: &OptOuts,
    estab: &str,
) -> Result<ViaPlan<'c>, Refusal> {
    let mut chain = vec![via];
    let mut next = via.through.as_deref();
    while let Some(hop) = next {
        chain.push(hop);
        next = hop.through.as_deref();
    }
    let mut hops = Vec::new();
    // The innermost `through` maps the given values first.
    for hop in chain.into_iter().rev() {
        let rs = stored(catalogue, &hop.set);
        for name in [&hop.matches, &hop.take] {
            let field = rs.field(name).expect("catalogue checked");
            if !field.scope.is_satisfied_by(granted) {
                return Err(Refusal::NotGranted(format!(
                    "{parameter} is answered through {}.{}, which needs {}; school {estab} \
                     has not granted it to you, so leave the parameter out or ask the school \
                     to grant it",
                    rs.name, field.name, field.scope
                )));
            }
        }
        let tests = vec![RowTest::Within {
            field: hop.matches.as_str(),
        }];
        let take = hop.take.as_str();
        let set = set_plan(&hop.set, rs, granted, opt_outs, tests, None, |f| {
            f.name == take
        });
        hops.push(HopPlan {
            set,
            matches: hop.matches.as_str(),
            take,
        });
    }
    Ok(ViaPlan { hops })
}

/// How one result set is read: `emit_filter` narrows the released fields (omissions, option
/// columns, `select`).
fn set_plan<'c>(
    name: &'c str,
    rs: &'c ResultSet,
    granted: &ScopeSet,
    opt_outs: &OptOuts,
    tests: Vec<RowTest<'c>>,
    link: Option<&'c str>,
    emit_filter: impl Fn(&Field) -> bool,
) -> SetPlan<'c> {
    let released = rs
        .field(ID)
        .or_else(|| rs.fields.first())
        .is_some_and(|f| f.scope.is_satisfied_by(granted));
    let row_kinds = rs.people.row_scope.as_ref().map(|row_scope| {
        row_scope
            .cases
            .iter()
            .filter(|(_, scope)| scope.is_satisfied_by(granted))
            .map(|(kind, _)| *kind)
            .collect::<BTreeSet<_>>()
    });
    if !released {
        return SetPlan {
            name,
            rs,
            released,
            decrypt: vec![],
            emit: vec![],
            link,
            tests: vec![],
            opt_outs: opt_outs.clone(),
            row_kinds,
            stamp_groups: vec![],
            hash_order: vec![],
            names_json: vec![],
        };
    }
    let emit: Vec<&Field> = rs
        .fields
        .iter()
        .filter(|f| f.scope.is_satisfied_by(granted) && emit_filter(f))
        .collect();
    let mut wanted: BTreeMap<usize, Reason> = BTreeMap::new();
    let mut want = |field: &str, reason: Reason| {
        if let Some(group) = rs.field(field).and_then(|f| f.group) {
            let entry = wanted.entry(group).or_insert(reason);
            *entry = (*entry).min(reason);
        }
    };
    for field in &emit {
        want(&field.name, Reason::Released);
    }
    for test in &tests {
        for field in test_fields(test) {
            want(field, Reason::Filter);
        }
    }
    if !opt_outs.is_empty() {
        for subject in &rs.people.subjects {
            want(&subject.field, Reason::People);
            if let Reference::Typed { type_field } = &subject.reference {
                want(type_field, Reason::People);
            }
        }
    }
    if let Some(row_scope) = &rs.people.row_scope {
        want(&row_scope.field, Reason::People);
    }
    if let Some(link) = link {
        want(link, Reason::Link);
    }
    let mut stamp_groups: Vec<usize> = emit.iter().filter_map(|f| f.group).collect();
    if stamp_groups.is_empty() {
        // Only RowHash or LastUpdated selected: they describe the row's Id.
        stamp_groups.extend(rs.field(ID).and_then(|f| f.group));
    }
    stamp_groups.sort_unstable();
    stamp_groups.dedup();
    let mut hash_order: Vec<usize> = (0..emit.len())
        .filter(|&i| !is_computed_field(&emit[i].name))
        .collect();
    hash_order.sort_by_key(|&i| &emit[i].name);
    let names_json = emit
        .iter()
        .map(|f| serde_json::to_string(&f.name).expect("a string serialises"))
        .collect();
    let decrypt = wanted
        .into_iter()
        .map(|(group, reason)| Decrypt {
            group: &rs.groups[group],
            reason,
        })
        .collect();
    SetPlan {
        name,
        rs,
        released,
        decrypt,
        emit,
        link,
        tests,
        opt_outs: opt_outs.clone(),
        row_kinds,
        stamp_groups,
        hash_order,
        names_json,
    }
}

/// Every field of `rs` a plan may judge a row on ([`SetPlan::admits`]) where `rs` is the
/// primary set of an endpoint, whose rows can therefore be listed as deleted: the fields of
/// its filters and option conditions, the people it is about and the field its row scope
/// reads; and what a deleted row of another set is judged on through `rs`: its link to its
/// primary row (an incident's pupils) and the fields of conditions on the people `rs` is
/// the record of (a leaver's leaving date). A deleted row keeps these (and only these) in
/// the sealed row index, so `_deleted` is judged exactly as the row was.
pub fn tombstone_fields<'c>(catalogue: &'c Catalogue, rs: &'c ResultSet) -> BTreeSet<&'c str> {
    let mut fields = BTreeSet::new();
    for endpoint in catalogue.endpoints() {
        let primary = endpoint.primary();
        if endpoint.view != View::Stored {
            continue;
        }
        let primary_rs = stored(catalogue, &primary.stored);
        for effect in endpoint.options.values() {
            if let OptionEffect::Reveal(c) | OptionEffect::Keep(c) | OptionEffect::Drop(c) = effect
                && c.of.is_some()
                && person_condition(catalogue, primary_rs, c).rs.name == rs.name
            {
                fields.insert(c.field.as_str());
            }
        }
        if primary.stored != rs.name {
            continue;
        }
        for filter in endpoint.filters.iter().filter(|f| f.set == primary.name) {
            fields.extend(filter.fields.iter().map(String::as_str));
        }
        for effect in endpoint.options.values() {
            if let OptionEffect::Reveal(c) | OptionEffect::Keep(c) | OptionEffect::Drop(c) = effect
            {
                fields.insert(c.of.as_deref().unwrap_or(&c.field));
            }
        }
    }
    for subject in &rs.people.subjects {
        fields.insert(subject.field.as_str());
        if let Reference::Typed { type_field } = &subject.reference {
            fields.insert(type_field.as_str());
        }
    }
    if let Some(row_scope) = &rs.people.row_scope {
        fields.insert(row_scope.field.as_str());
    }
    fields.extend(rs.link.as_deref());
    fields.remove(ID);
    fields
}

fn test_fields<'a>(test: &'a RowTest<'_>) -> Vec<&'a str> {
    match test {
        RowTest::Filter(given) => given.filter.fields.iter().map(String::as_str).collect(),
        RowTest::Mapped { fields, .. } => fields.iter().map(String::as_str).collect(),
        RowTest::Condition(condition, _) => vec![condition.field.as_str()],
        RowTest::Person { of, .. } => vec![of],
        RowTest::NotAboutOptedOut { .. } => vec![ID],
        RowTest::Within { field } => vec![field],
    }
}

/// The row conditions options impose, each with whether a row must meet it.
fn option_conditions<'c>(
    endpoint: &'c Endpoint,
    options: &BTreeSet<String>,
) -> Vec<(&'c Condition, bool)> {
    endpoint
        .options
        .iter()
        .filter_map(|(name, effect)| match effect {
            OptionEffect::Reveal(c) if !options.contains(name) => Some((c, false)),
            OptionEffect::Keep(c) if options.contains(name) => Some((c, true)),
            OptionEffect::Drop(c) if options.contains(name) => Some((c, false)),
            _ => None,
        })
        .collect()
}

/// Columns of the primary set that options add, less those the call asked for.
fn hidden_columns<'c>(endpoint: &'c Endpoint, options: &BTreeSet<String>) -> BTreeSet<&'c str> {
    endpoint
        .option_columns()
        .filter(|(_, option)| !options.contains(*option))
        .map(|(column, _)| column)
        .collect()
}

/// The fields `select` names, in the catalogue's spelling, each one the consent releases.
fn selected_fields(
    rs: &ResultSet,
    select: Option<&[String]>,
    granted: &ScopeSet,
    estab: &str,
) -> Result<Option<BTreeSet<String>>, Refusal> {
    let Some(names) = select else {
        return Ok(None);
    };
    let mut chosen = BTreeSet::new();
    for name in names {
        let field = rs
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Refusal::BadQuery(format!(
                    "select: `{}` is not a field of {}; its fields are {}",
                    name.chars().take(64).collect::<String>(),
                    rs.name,
                    rs.fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        if !field.scope.is_satisfied_by(granted) {
            return Err(Refusal::NotGranted(format!(
                "select: {} of {} needs {}, which school {estab} has not granted you; leave it \
                 out of select, or ask the school to grant it",
                field.name, rs.name, field.scope
            )));
        }
        chosen.insert(field.name.clone());
    }
    Ok(Some(chosen))
}

/// The row conditions of a default call of the endpoint that answers `rs` first (leavers,
/// pre-admissions and guests left out), so a count says no more than that endpoint does.
fn default_conditions<'c>(catalogue: &'c Catalogue, rs: &ResultSet) -> Vec<RowTest<'c>> {
    let endpoint = catalogue
        .endpoints()
        .iter()
        .find(|e| e.view == View::Stored && e.primary().stored == rs.name);
    endpoint
        .map(|e| option_conditions(e, &BTreeSet::new()))
        .unwrap_or_default()
        .into_iter()
        .filter(|(condition, _)| condition.of.is_none())
        .map(|(condition, keep)| RowTest::Condition(condition, keep))
        .collect()
}

/// The areas Counts reports (its `Area` names), each the rows of a stored set.
const COUNTED: [(&str, &str); 5] = [
    ("Students", "Students"),
    ("Staff", "Staff"),
    ("Contacts", "Contacts"),
    ("Groups", "Group"),
    ("Photos", "Photos"),
];

fn view_plan<'c>(
    catalogue: &'c Catalogue,
    endpoint: &'c Endpoint,
    granted: &ScopeSet,
    opt_outs: &OptOuts,
    query: &Query<'c>,
) -> Result<ViewPlan<'c>, Refusal> {
    let nothing = |_: &Field| false;
    Ok(match endpoint.view {
        View::Stored => ViewPlan::Stored,
        View::Counts => ViewPlan::Counts(
            COUNTED
                .iter()
                .map(|(area, set)| {
                    let rs = stored(catalogue, set);
                    let tests = default_conditions(catalogue, rs);
                    set_plan(area, rs, granted, opt_outs, tests, None, nothing)
                })
                .filter(|set| set.released)
                .collect(),
        ),
        View::Health => ViewPlan::Health(
            catalogue
                .stored_sets()
                .filter(|rs| {
                    set_plan(
                        &rs.name,
                        rs,
                        granted,
                        &OptOuts::default(),
                        vec![],
                        None,
                        nothing,
                    )
                    .released
                })
                .collect(),
        ),
        View::TimetableForStaff | View::TimetableForStudent => {
            let (kind, path, who, via_set, matches, take, lesson_field) =
                if endpoint.view == View::TimetableForStaff {
                    let staff = PersonKind::Staff;
                    (
                        staff,
                        "TimetableForStaff",
                        "member of staff",
                        "LessonStaff",
                        "StaffId",
                        "LessonId",
                        "Id",
                    )
                } else {
                    let student = PersonKind::Student;
                    (
                        student,
                        "TimetableForStudent",
                        "pupil",
                        "StudentMembers",
                        "StudentId",
                        "GroupId",
                        "ClassId",
                    )
                };
            let Some(subject) = &query.subject else {
                return Err(Refusal::BadQuery(format!(
                    "{path} needs the id of the {who}: call /{path}/{{id}} or pass ?id="
                )));
            };
            let hop_rs = stored(catalogue, via_set);
            let hop_field = |name: &str| {
                hop_rs
                    .fields
                    .iter()
                    .find(|f| f.name == name)
                    .map(|f| f.name.as_str())
                    .expect("personal views map through catalogue fields")
            };
            let (matches, take) = (hop_field(matches), hop_field(take));
            let tests = vec![RowTest::Within { field: matches }];
            let hop = HopPlan {
                set: set_plan(&hop_rs.name, hop_rs, granted, opt_outs, tests, None, |f| {
                    f.name == take
                }),
                matches,
                take,
            };
            let lessons_rs = stored(catalogue, "Lessons");
            let lessons = set_plan(
                &lessons_rs.name,
                lessons_rs,
                granted,
                opt_outs,
                vec![],
                None,
                |_| true,
            );
            ViewPlan::Personal {
                hidden: opt_outs.of(kind).contains(subject),
                kind,
                subject: subject.clone(),
                via: ViaPlan { hops: vec![hop] },
                lessons: Box::new(lessons),
                lesson_field: if lesson_field == "Id" { ID } else { "ClassId" },
            }
        }
    })
}

/// The alias lookups the answer's mentions need: only for kinds with opt-outs.
fn lookups<'c>(
    catalogue: &'c Catalogue,
    sets: &[SetPlan<'c>],
    vias: &[ViaPlan<'c>],
    view: &ViewPlan<'c>,
    opt_outs: &OptOuts,
) -> Vec<Lookup<'c>> {
    let mut wanted: BTreeSet<(PersonKind, &'c str)> = BTreeSet::new();
    let personal = match view {
        ViewPlan::Personal { lessons, .. } => Some(lessons.as_ref()),
        _ => None,
    };
    let all_sets = sets
        .iter()
        .chain(vias.iter().flat_map(|v| v.hops.iter().map(|h| &h.set)))
        .chain(personal);
    for set in all_sets {
        for mention in &set.rs.people.mentions {
            let emitted = set.emit.iter().any(|f| f.name == mention.field);
            if let (true, Some(alias)) = (emitted, mention.alias.as_deref())
                && !opt_outs.of(mention.kind).is_empty()
            {
                wanted.insert((mention.kind, alias));
            }
        }
    }
    wanted
        .into_iter()
        .map(|(kind, field)| {
            let rs = stored(catalogue, kind.own_set());
            let decrypt = rs.groups_holding(&[ID, field]);
            Lookup {
                kind,
                field,
                rs,
                decrypt,
            }
        })
        .collect()
}

impl Lookup<'_> {
    /// The codes the lookup's field holds in `rows` (the people's own records), split by
    /// whether their person is opted out; `None` when an opted-out person has no row
    /// (someone who has left, say), whose codes are then unknown.
    pub fn resolve(&self, rows: &[Row], opt_outs: &OptOuts) -> Option<Aliases> {
        let people = opt_outs.of(self.kind);
        let mut aliases = Aliases::default();
        let mut found = BTreeSet::new();
        for row in rows {
            let Some(id) = text(row.get(ID)) else {
                continue;
            };
            let opted_out = people.contains(id.trim());
            if opted_out {
                found.insert(id.trim().to_owned());
            }
            // Trimmed and case-folded, as every mention is before it is compared.
            let Some(code) = text(row.get(self.field)).map(|code| alias_key(&code)) else {
                continue;
            };
            match opted_out {
                true => aliases.withheld.insert(code),
                false => aliases.kept.insert(code),
            };
        }
        (found.len() == people.len()).then_some(aliases)
    }
}

impl HopPlan<'_> {
    /// The `take` values of the hop's rows that hold one of `input` in `matches` and pass
    /// the hop's rules (opt-outs).
    pub fn take_from(
        &self,
        rows: &[Row],
        input: &BTreeSet<String>,
        today: &str,
    ) -> BTreeSet<String> {
        let local = Resolved {
            today: today.to_owned(),
            mapped: vec![input.clone()],
            ..Resolved::default()
        };
        rows.iter()
            .filter(|row| self.set.admits(row, &local))
            .filter_map(|row| text(row.get(self.take)).map(Cow::into_owned))
            .collect()
    }
}

impl ViaPlan<'_> {
    /// The values a hop starts from: the filter's own values for the first hop.
    pub fn input(value: &str) -> BTreeSet<String> {
        list(value).map(str::to_owned).collect()
    }
}

impl SetPlan<'_> {
    /// The opt-outs the plan applies (contacts linked only to opted-out pupils included).
    pub fn opt_outs(&self) -> &OptOuts {
        &self.opt_outs
    }

    /// The groups to decrypt.
    pub fn groups(&self) -> Vec<&ScopeGroup> {
        self.decrypt.iter().map(|d| d.group).collect()
    }

    /// Whether `row` (every decrypted field, plus `RowHash` and `LastUpdated`) may be
    /// answered: the set is released, the row passes every test, is about nobody opted out,
    /// and is about a kind of person the consent releases.
    pub fn admits(&self, row: &Row, resolved: &Resolved) -> bool {
        self.admits_when(row, resolved, When::Now)
    }

    fn admits_when(&self, row: &Row, resolved: &Resolved, when: When) -> bool {
        self.released
            && self.tests.iter().all(|t| passes(t, row, resolved, when))
            && !self.about_opted_out(row)
            && self.row_kind_released(row)
    }

    fn about_opted_out(&self, row: &Row) -> bool {
        if self.opt_outs.is_empty() {
            return false;
        }
        self.rs.people.subjects.iter().any(|subject| {
            // Ids are compared as the opt-out API keeps them, without surrounding spaces.
            let Some(id) = text(row.get(&subject.field)) else {
                return false;
            };
            let id = id.trim();
            match &subject.reference {
                Reference::Kind(kind) => self.opt_outs.of(*kind).contains(id),
                Reference::Typed { type_field } => {
                    match text(row.get(type_field)).and_then(|t| PersonKind::of_person_type(&t)) {
                        Some(kind) => self.opt_outs.of(kind).contains(id),
                        // A person of no known kind is hidden if anyone of that id is.
                        None => PersonKind::ALL
                            .iter()
                            .any(|kind| self.opt_outs.of(*kind).contains(id)),
                    }
                }
            }
        })
    }

    /// Notes in `included` who the answered `row` (as stored, before [`SetPlan::project`])
    /// is about, and whom the answer names by id: its subjects (even where the answer leaves
    /// their id out), and the people its emitted id mentions name, as scrubbed. A mention
    /// by another field (a staff code) or by name is not matched to a person.
    pub fn note_people(&self, row: &Row, resolved: &Resolved, included: &mut Included) {
        for subject in &self.rs.people.subjects {
            let Some(id) = text(row.get(&subject.field)) else {
                continue;
            };
            let kind = match &subject.reference {
                Reference::Kind(kind) => Some(*kind),
                Reference::Typed { type_field } => {
                    text(row.get(type_field)).and_then(|t| PersonKind::of_person_type(&t))
                }
            };
            match kind {
                Some(kind) => included.add(kind, &id),
                None => PersonKind::ALL.iter().for_each(|k| included.add(*k, &id)),
            }
        }
        for mention in &self.rs.people.mentions {
            let emitted = self.emit.iter().any(|f| f.name == mention.field);
            if !emitted || mention.alias.is_some() {
                continue;
            }
            let value = row
                .get(&mention.field)
                .map(|v| self.scrub(mention, v.clone(), resolved));
            let Some(value) = text(value.as_ref()) else {
                continue;
            };
            match mention.shape {
                Shape::One => included.add(mention.kind, &value),
                Shape::List => list(&value).for_each(|id| included.add(mention.kind, id)),
                Shape::Name | Shape::Count => {}
            }
        }
    }

    fn row_kind_released(&self, row: &Row) -> bool {
        let (Some(kinds), Some(row_scope)) = (&self.row_kinds, &self.rs.people.row_scope) else {
            return true;
        };
        text(row.get(&row_scope.field))
            .and_then(|t| PersonKind::of_person_type(&t))
            .is_some_and(|kind| kinds.contains(&kind))
    }

    /// Whether a deleted row may be listed in `<ResultSet>_deleted`: the tests of
    /// [`SetPlan::admits`] as they stood when it was deleted: on what the row held of
    /// [`tombstone_fields`], with the people it was about and their records as of then
    /// ([`Links`], [`PersonRecords`]), and dates judged on the day it was deleted. A
    /// deletion recorded without those fields (by an older release) is never listed: it
    /// cannot be told whether the partner ever saw the row.
    pub fn admits_deletion(&self, deletion: &Deletion, resolved: &Resolved) -> bool {
        deletion
            .row()
            .is_some_and(|row| self.admits_when(&row, resolved, When::Deleted(deletion.at)))
    }

    /// The row as answered: every emitted field (`null` where the MIS gave none), with every
    /// mention of an opted-out person blanked or removed.
    pub fn project(&self, row: &Row, resolved: &Resolved) -> AnsweredRow {
        let written = Written::of(&self.shown(row, resolved));
        self.write_row(&written)
    }

    /// The value of each emitted field of `row`, in `emit` order, borrowed where the plan
    /// leaves it as stored.
    fn shown<'a>(&self, row: &'a Row, resolved: &Resolved) -> Vec<Cow<'a, Value>> {
        let mut cursor = row.iter();
        self.emit
            .iter()
            .map(|field| {
                let stored = next_named(&mut cursor, &field.name).or_else(|| row.get(&field.name));
                match self.mention(&field.name) {
                    Some(mention) => {
                        let value = stored.cloned().unwrap_or(Value::Null);
                        Cow::Owned(self.scrub(mention, value, resolved))
                    }
                    None => stored.map_or(Cow::Owned(Value::Null), Cow::Borrowed),
                }
            })
            .collect()
    }

    /// The JSON object of the emitted fields, each value as `written` holds it.
    fn write_row(&self, written: &Written) -> AnsweredRow {
        AnsweredRow::new(self.object_of(written, 0..self.emit.len()))
    }

    /// The canonical JSON a row's `RowHash` is made of (as [`row_hash_of`] describes it): the
    /// fields of `hash_order`, in name order, as `written` holds their values.
    fn hashed_text(&self, written: &Written) -> Vec<u8> {
        self.object_of(written, self.hash_order.iter().copied())
    }

    /// The compact JSON object of the emitted fields at `positions`, in that order, each
    /// value as `written` holds it.
    fn object_of(&self, written: &Written, positions: impl Iterator<Item = usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(written.text.len() + 32 * self.emit.len());
        out.push(b'{');
        for (n, position) in positions.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.names_json[position].as_bytes());
            out.push(b':');
            out.extend_from_slice(written.value(position));
        }
        out.push(b'}');
        out
    }

    /// A stored row's `LastUpdated` as this plan answers it: the latest change of a group whose
    /// fields it emits. `updatedSince` and `changedRows` compare this, never the whole row's.
    pub fn last_updated(&self, entry: &IndexEntry, created: Timestamp) -> Timestamp {
        self.stamp_groups
            .iter()
            .map(|&group| entry.updated(group).unwrap_or(created))
            .max()
            .unwrap_or(created)
    }

    /// A stored row as answered: [`SetPlan::project`], with `RowHash` a keyed hash (under
    /// this partner's key) of the fields emitted as they are emitted, and `LastUpdated` by
    /// [`SetPlan::last_updated`]. Neither moves when something the answer does not show
    /// changes.
    pub fn answer(
        &self,
        row: &Row,
        entry: &IndexEntry,
        stamp: Stamp<'_>,
        resolved: &Resolved,
    ) -> AnsweredRow {
        let mut written = Written::of(&self.shown(row, resolved));
        for position in 0..self.emit.len() {
            let name = self.emit[position].name.as_str();
            let computed = if name == ROW_HASH {
                row_hash_of(stamp.key, &self.hashed_text(&written))
            } else if name == LAST_UPDATED {
                self.last_updated(entry, stamp.created).to_xod()
            } else {
                continue;
            };
            written.replace(position, &Value::String(computed));
        }
        self.write_row(&written)
    }

    fn mention(&self, field: &str) -> Option<&Mention> {
        if self.opt_outs.is_empty() {
            return None;
        }
        self.rs.people.mentions.iter().find(|m| m.field == field)
    }

    fn scrub(&self, mention: &Mention, value: Value, resolved: &Resolved) -> Value {
        let people = self.opt_outs.of(mention.kind);
        if people.is_empty() {
            return value;
        }
        match &mention.alias {
            None => scrub_with(mention, value, |item| people.contains(item)),
            Some(alias) => match resolved.aliases.get(&(mention.kind, alias.clone())) {
                Some(aliases) => scrub_with(mention, value, |item| !aliases.keeps(item)),
                // An alias of someone whose own record is not held cannot be told apart, so
                // no alias in this field is kept.
                None => Value::Null,
            },
        }
    }
}

/// A mention with the references `opted_out` says are of opted-out people taken out.
fn scrub_with(mention: &Mention, value: Value, opted_out: impl Fn(&str) -> bool) -> Value {
    match (mention.shape, &value) {
        (_, Value::Null) => Value::Null,
        (Shape::Name | Shape::Count, _) => Value::Null,
        (Shape::List, Value::String(items)) => {
            let kept: Vec<&str> = items
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty() && !opted_out(item))
                .collect();
            Value::String(kept.join(","))
        }
        (_, other) => match text(Some(other)) {
            Some(id) if opted_out(id.trim()) => Value::Null,
            _ => value,
        },
    }
}

/// An alias (a staff code, an IDaaS id) as aliases are compared: trimmed and without regard
/// to case, as MIS codes are written both ways.
fn alias_key(alias: &str) -> String {
    alias.trim().to_uppercase()
}

/// The value of field `name` when it is among the next few entries of `cursor`, moving
/// `cursor` past it; `None` otherwise (the caller then looks it up by name). A stored row
/// mostly holds its fields in the order a plan emits them, so this finds most of them by one
/// comparison of names instead of a hashed lookup.
fn next_named<'r>(cursor: &mut serde_json::map::Iter<'r>, name: &str) -> Option<&'r Value> {
    const LOOK_AHEAD: usize = 4;
    let mut probe = cursor.clone();
    for _ in 0..LOOK_AHEAD {
        let (key, value) = probe.next()?;
        if key == name {
            *cursor = probe;
            return Some(value);
        }
    }
    None
}

/// The values of a row's emitted fields as JSON, each written once and then copied into
/// both the answered row and its `RowHash`'s text.
struct Written {
    text: Vec<u8>,
    /// Where each value (by position in `emit`) is in `text`.
    spans: Vec<Range<usize>>,
}

impl Written {
    fn of(values: &[Cow<'_, Value>]) -> Self {
        let mut written = Written {
            text: Vec::with_capacity(16 * values.len()),
            spans: Vec::with_capacity(values.len()),
        };
        for value in values {
            let span = written.write(value);
            written.spans.push(span);
        }
        written
    }

    fn write(&mut self, value: &Value) -> Range<usize> {
        let start = self.text.len();
        serde_json::to_writer(&mut self.text, value).expect("a JSON value serialises");
        start..self.text.len()
    }

    /// Writes `value` as the value at `position` instead of the one written there.
    fn replace(&mut self, position: usize, value: &Value) {
        self.spans[position] = self.write(value);
    }

    fn value(&self, position: usize) -> &[u8] {
        &self.text[self.spans[position].clone()]
    }
}

/// Whether a row is judged as it is now, or as it was when deleted at a time
/// ([`SetPlan::admits_deletion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Now,
    Deleted(Timestamp),
}

fn passes(test: &RowTest<'_>, row: &Row, resolved: &Resolved, when: When) -> bool {
    let deletion_day;
    let today = match when {
        When::Now => resolved.today.as_str(),
        When::Deleted(at) => {
            deletion_day = date_of(&at.to_xod()).to_owned();
            deletion_day.as_str()
        }
    };
    match test {
        // A fixed relative date (`...ForToday`) means the day the row is judged on.
        RowTest::Filter(given) => match (&given.filter.fixed, when) {
            (Some(fixed), When::Deleted(at)) => match relative_date(fixed, at) {
                Some(value) => filter_matches(
                    &GivenFilter {
                        filter: given.filter,
                        value,
                    },
                    row,
                ),
                None => filter_matches(given, row),
            },
            _ => filter_matches(given, row),
        },
        RowTest::Mapped { fields, via } => {
            let mapped = resolved.mapped.get(*via);
            fields
                .iter()
                .any(|f| text(row.get(f)).is_some_and(|v| mapped.is_some_and(|m| m.contains(&*v))))
        }
        RowTest::Condition(condition, keep) => condition_holds(condition, row, today) == *keep,
        // Unresolved, no row can be judged, so none passes.
        RowTest::NotAboutOptedOut { index } => resolved
            .links
            .get(*index)
            .and_then(Option::as_ref)
            .is_some_and(|links| {
                text(row.get(ID)).is_none_or(|id| !links.about_opted_out_only(&id, when))
            }),
        // A row about someone rollcall holds no record of passes no such test: whether they
        // left (or have not started) cannot be told, so they are treated as hidden.
        RowTest::Person { of, index, keep } => resolved.people.get(*index).is_some_and(|people| {
            text(row.get(*of)).and_then(|id| people.meets(&id, when, today)) == Some(*keep)
        }),
        // A hop judges its rows against its own input, put first by `take_from`.
        RowTest::Within { field } => text(row.get(*field))
            .is_some_and(|v| resolved.mapped.first().is_some_and(|m| m.contains(&*v))),
    }
}

fn filter_matches(given: &GivenFilter<'_>, row: &Row) -> bool {
    let field_text = |name: &str| text(row.get(name));
    let fields = &given.filter.fields;
    if given.filter.op == FilterOp::Pairs {
        let [first, second] = &fields[..] else {
            return false;
        };
        let (a, b) = (field_text(first), field_text(second));
        return list(&given.value).any(|pair| {
            let (want_a, want_b) = pair.split_once('|').unwrap_or((pair, ""));
            a.as_deref() == Some(want_a.trim())
                && (want_b.trim().is_empty() || b.as_deref() == Some(want_b.trim()))
        });
    }
    let value = given.value.as_str();
    fields.iter().any(|field| {
        let Some(text) = field_text(field) else {
            return false;
        };
        match given.filter.op {
            FilterOp::Eq => text.eq_ignore_ascii_case(value),
            FilterOp::In => list(value).any(|v| text.eq_ignore_ascii_case(v)),
            FilterOp::Prefix => text
                .to_ascii_lowercase()
                .starts_with(&value.to_ascii_lowercase()),
            FilterOp::On => date_of(&text) == value,
            FilterOp::From => date_of(&text) >= value,
            FilterOp::To => date_of(&text) <= value,
            FilterOp::Pairs => unreachable!("handled above"),
        }
    })
}

/// Whether a row meets an option's condition.
fn condition_holds(condition: &Condition, row: &Row, today: &str) -> bool {
    let Some(text) = text(row.get(&condition.field)) else {
        return false;
    };
    match &condition.test {
        Test::Equals(value) => text.eq_ignore_ascii_case(value),
        Test::BeforeToday => !text.is_empty() && date_of(&text) < today,
        Test::AfterToday => !text.is_empty() && date_of(&text) > today,
    }
}

/// A relative date (`today`, `today-7`, `today+14`) on the day of `now`, `yyyy-mm-dd`;
/// `None` for anything else.
pub fn relative_date(spec: &str, now: Timestamp) -> Option<String> {
    let offset = spec.strip_prefix("today")?;
    let days: i64 = if offset.is_empty() {
        0
    } else {
        offset.trim_start_matches('+').parse().ok()?
    };
    // A century either way; anything further is not a date rollcall holds (nor one whose
    // arithmetic fits).
    if days.abs() > 36_500 {
        return None;
    }
    Some(date_of(&now.plus(Duration::days(days)).to_xod()).to_owned())
}

/// The `yyyy-mm-dd` part of an ISO 8601 value.
pub fn date_of(text: &str) -> &str {
    text.get(..10).unwrap_or(text)
}

/// A scalar as rows are compared: a string as it is (borrowed), a number as written, a
/// boolean as `1` or `0`.
pub fn text(value: Option<&Value>) -> Option<Cow<'_, str>> {
    match value? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "1" } else { "0" })),
        _ => None,
    }
}

/// The items of a comma-separated list.
pub fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// The opt-outs a partner is told of (`GDPRIDs`, so it deletes what it holds of them): of
/// each kind of person only where the consent releases who they are, since a list of staff
/// or contact ids would otherwise name people the partner may not read about.
pub fn opt_outs_told(catalogue: &Catalogue, granted: &ScopeSet, opt_outs: &OptOuts) -> OptOuts {
    let told = |kind: PersonKind, ids: &BTreeSet<String>| {
        let own = stored(catalogue, kind.own_set());
        let released = own
            .field(ID)
            .is_some_and(|f| f.scope.is_satisfied_by(granted));
        if released {
            ids.clone()
        } else {
            BTreeSet::new()
        }
    };
    OptOuts {
        students: told(PersonKind::Student, &opt_outs.students),
        staff: told(PersonKind::Staff, &opt_outs.staff),
        contacts: told(PersonKind::Contact, &opt_outs.contacts),
    }
}

/// Which ids a write-back may name, and whether a refusal may say which id was wrong: only
/// where the consent releases the set that would answer the same question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritebackPlan {
    pub opt_outs: OptOuts,
    /// A refusal may name a pupil id that is not known (the consent releases Students).
    pub name_students: bool,
    pub name_staff: bool,
    /// A refusal may name an attendance mark the school does not use (AttendCodes).
    pub name_marks: bool,
    /// A refusal may name a conduct type the school does not use (ConductTypes).
    pub name_conduct_types: bool,
}

/// Whether a write-back may be sent, and how it is checked. It needs its own scope, and the
/// consent to read the people it names by id: rollcall checks each id against the school's
/// people, and any answer to that check (refused or not) would tell a partner that cannot
/// read them which ids are the school's pupils or staff.
pub fn writeback_plan(
    catalogue: &Catalogue,
    writeback: &Writeback,
    granted: &ScopeSet,
    opt_outs: &OptOuts,
    estab: &str,
) -> Result<WritebackPlan, Refusal> {
    if !writeback.scope.is_satisfied_by(granted) {
        return Err(Refusal::NotGranted(format!(
            "{} needs a scope school {estab} has not granted you: {}; ask the school to grant \
             it. Nothing was queued",
            writeback.path,
            writeback.scope.describe_missing(granted)
        )));
    }
    let releases = |set: &str, field: &str| {
        catalogue
            .result_set(set)
            .and_then(|rs| rs.field(field))
            .is_some_and(|f| f.scope.is_satisfied_by(granted))
    };
    let about: &[PersonKind] = match writeback.body {
        WritebackBody::Attendance => &[PersonKind::Student],
        WritebackBody::Conduct | WritebackBody::Detention => {
            &[PersonKind::Student, PersonKind::Staff]
        }
        WritebackBody::SeatingPlan => &[PersonKind::Student],
    };
    for kind in about {
        let own = stored(catalogue, kind.own_set());
        let id = own.field(ID).expect("a person's own set has an Id");
        if !id.scope.is_satisfied_by(granted) {
            return Err(Refusal::NotGranted(format!(
                "{} names {} by id, which needs the consent to read who they are ({}); school \
                 {estab} has not granted it to you, so ask the school to grant it. Nothing was \
                 queued",
                writeback.path,
                kind.own_set().to_ascii_lowercase(),
                id.scope
            )));
        }
    }
    Ok(WritebackPlan {
        opt_outs: opt_outs.clone(),
        name_students: releases("Students", ID),
        name_staff: releases("Staff", ID),
        name_marks: releases("AttendCodes", "Mark"),
        name_conduct_types: releases("ConductTypes", "LocalId"),
    })
}

impl WritebackPlan {
    /// Whether a checked payload of `body` names someone now opted out: a task queued before
    /// the school opted them out is not handed to its agent.
    pub fn names_opted_out(&self, body: WritebackBody, payload: &Value) -> bool {
        body.person_fields().iter().any(|place| {
            let opted_out = self.opt_outs.of(place.kind);
            let records = payload.get(place.list).and_then(Value::as_array);
            (records.into_iter().flatten())
                .filter_map(|record| text(record.get(place.field)))
                .any(|id| opted_out.contains(&*id))
        })
    }

    /// The ids of `kind` a write-back may name: those stored, less the opted-out ones (who
    /// are refused exactly as unknown ids are).
    pub fn known(&self, kind: PersonKind, stored: BTreeSet<String>) -> BTreeSet<String> {
        let opted_out = self.opt_outs.of(kind);
        stored
            .into_iter()
            .filter(|id| !opted_out.contains(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_millis(1_790_000_000_000 + minute * 60_000)
    }

    #[test]
    fn an_answered_row_is_the_json_of_what_the_plan_shows_and_its_row_hash_is_of_that() {
        let catalogue = Catalogue::get();
        let endpoint = catalogue.endpoint_by_path("Students").unwrap();
        let granted = catalogue.scopes().clone();
        let no_one = OptOuts::default();
        let plan = plan(
            catalogue,
            endpoint,
            &granted,
            &no_one,
            &Query::default(),
            "x",
        )
        .unwrap();
        let set = plan.primary();
        let row: Row = serde_json::from_value(serde_json::json!({
            "Unheard": "not in the catalogue",
            "Surname": "O\u{2019}Brien \"Jr\"\n",
            "Id": 7,
            "Forename": "Zo\u{eb}",
            "YearGroupId": null,
        }))
        .unwrap();
        let key = HashKey::new(b"a partner's key");
        let entry = IndexEntry {
            id: "7".into(),
            groups: vec![],
        };
        let stamp = Stamp {
            key: &key,
            created: Timestamp::from_millis(1_790_000_000_000),
        };
        let answered = set
            .answer(&row, &entry, stamp, &Resolved::default())
            .to_row();
        let names: Vec<&str> = answered.keys().map(String::as_str).collect();
        let emitted: Vec<&str> = set.emit.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names, emitted,
            "every emitted field, in order, and nothing else"
        );
        for field in ["Surname", "Id", "Forename"] {
            assert_eq!(answered[field], row[field], "{field}");
        }
        assert_eq!(answered["YearGroupId"], Value::Null);
        let mut shown: Vec<(&String, &Value)> = answered
            .iter()
            .filter(|(name, _)| !is_computed_field(name))
            .collect();
        shown.sort_by_key(|(name, _)| *name);
        let expected = crate::dataset::row_hash_sorted(&key, shown.into_iter());
        assert_eq!(answered[ROW_HASH], Value::String(expected));
        assert_eq!(
            answered[LAST_UPDATED],
            Value::String(stamp.created.to_xod())
        );
        assert_eq!(
            set.project(&row, &Resolved::default()).to_row()["Surname"],
            row["Surname"]
        );
    }

    #[test]
    fn a_field_is_found_by_the_cursor_or_by_name_whatever_the_rows_order() {
        let row: Row = serde_json::from_str(
            r#"{"A": 1, "B": "b", "C": null, "D": true, "E": "e", "F": 6, "G": "g"}"#,
        )
        .unwrap();
        let orders: [&[&str]; 4] = [
            &["A", "B", "C", "D", "E", "F", "G"],
            &["G", "F", "E", "D", "C", "B", "A"],
            &["A", "G", "B", "Missing", "C", "F", "D"],
            &["B", "B", "Missing", "E", "A", "G"],
        ];
        for order in orders {
            let mut cursor = row.iter();
            for name in order {
                let found = next_named(&mut cursor, name).or_else(|| row.get(*name));
                assert_eq!(found, row.get(*name), "{name} in the order {order:?}");
            }
        }
        // In the rows' own order every field is found by the cursor, none by a lookup.
        let mut cursor = row.iter();
        for name in ["A", "C", "D", "G"] {
            assert_eq!(next_named(&mut cursor, name), row.get(name));
        }
    }
    #[test]
    fn a_rows_links_are_judged_as_of_when_it_is_shown_or_was_deleted() {
        // Incident 1: its only pupil (opted out) was unlinked at minute 5.
        // Incident 2: a shown pupil, unlinked at 5; then an opted-out one, unlinked at 9.
        // Incident 3: an opted-out pupil now, a shown one unlinked at 5.
        let links = Links(BTreeMap::from([
            ("1".to_owned(), vec![(true, Some(at(5)))]),
            (
                "2".to_owned(),
                vec![(false, Some(at(5))), (true, Some(at(9)))],
            ),
            ("3".to_owned(), vec![(true, None), (false, Some(at(5)))]),
        ]));
        // Now: on current links, or with none, those that went last.
        assert!(links.about_opted_out_only("1", When::Now));
        assert!(links.about_opted_out_only("2", When::Now));
        assert!(links.about_opted_out_only("3", When::Now));
        assert!(
            !links.about_opted_out_only("4", When::Now),
            "no links: about nobody"
        );
        // Deleted: on the links it still had then, or with none, those that went last before.
        assert!(links.about_opted_out_only("2", When::Deleted(at(9))));
        assert!(!links.about_opted_out_only("2", When::Deleted(at(5))));
        assert!(links.about_opted_out_only("2", When::Deleted(at(7))));
        assert!(
            !links.about_opted_out_only("2", When::Deleted(at(3))),
            "both held at 3"
        );
        assert!(links.about_opted_out_only("1", When::Deleted(at(8))));
    }

    #[test]
    fn a_persons_record_is_read_as_of_when_the_row_is_judged() {
        let condition = Condition {
            field: "LeavingDate".into(),
            test: Test::BeforeToday,
            of: Some("StudentId".into()),
        };
        let record = |leaving: &str| -> Row {
            [("LeavingDate".to_owned(), Value::String(leaving.to_owned()))]
                .into_iter()
                .collect()
        };
        // Pupil a: on roll now. Pupil b: left, record deleted at minute 5. Pupil c: on roll
        // now, but a leaver's record was deleted at 5 (re-admitted under the same id).
        let people = PersonRecords {
            condition,
            by_person: BTreeMap::from([
                ("a".to_owned(), vec![(record(""), None)]),
                ("b".to_owned(), vec![(record("2020-07-20"), Some(at(5)))]),
                (
                    "c".to_owned(),
                    vec![(record(""), None), (record("2020-07-20"), Some(at(5)))],
                ),
            ]),
        };
        let today = "2026-12-06";
        assert_eq!(people.meets("a", When::Now, today), Some(false));
        assert_eq!(
            people.meets(" b ", When::Now, today),
            Some(true),
            "ids are trimmed"
        );
        assert_eq!(people.meets("c", When::Now, today), Some(false));
        assert_eq!(people.meets("c", When::Deleted(at(4)), today), Some(true));
        assert_eq!(people.meets("c", When::Deleted(at(6)), today), Some(false));
        assert_eq!(people.meets("nobody", When::Now, today), None);
    }

    fn kept(set: &str) -> BTreeSet<&'static str> {
        let catalogue = Catalogue::get();
        tombstone_fields(catalogue, catalogue.stored_set(set).unwrap())
    }

    #[test]
    fn a_tombstone_keeps_what_rows_are_judged_on_and_nothing_of_what_they_say() {
        let students = kept("Students");
        for field in ["YearGroupId", "LeavingDate"] {
            assert!(students.contains(field), "{field} in {students:?}");
        }
        for field in ["Forename", "Surname", "Ethnicity", "DateOfBirth", ID] {
            assert!(!students.contains(field), "{field} in {students:?}");
        }
        let comms = kept("PersonComms");
        for field in ["PersonId", "PersonType"] {
            assert!(comms.contains(field), "{field} in {comms:?}");
        }
        assert!(!comms.contains("Value"), "{comms:?}");
        let links = kept("StudentConducts");
        for field in ["StudentId", "ConductId"] {
            assert!(links.contains(field), "{field} in {links:?}");
        }
        assert!(!links.contains("Outcome"), "{links:?}");
    }
}
