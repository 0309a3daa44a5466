//! Reading stored result sets for one call: which version, and the scope groups a read plan
//! names, decrypted into rows (in index order, so row `p` is described by index entry `p`).
//! What of those rows may leave, and their `RowHash` and `LastUpdated`, is the plan's to say,
//! never this module's.

use std::collections::BTreeSet;
use std::sync::Arc;

use rollcall_core::catalogue::{Catalogue, ResultSet, ScopeGroup};
use rollcall_core::dataset::Row;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::plan::text;
use rollcall_core::read_cache::Rows;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_http::{ApiError, ApiResult};

use crate::ServeState;

/// A stored version opened, with the rows of the groups decrypted.
pub(crate) struct LoadedSet {
    pub version: OpenVersion,
    pub rows: Arc<Rows>,
}

impl LoadedSet {
    /// Opens `record` and decrypts `groups` (and nothing else).
    pub async fn load(
        state: &ServeState,
        record: VersionRecord,
        groups: &[&ScopeGroup],
    ) -> ApiResult<Self> {
        let version = open(state, record).await?;
        let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        let rows = (version.rows_cached(state.objects.as_ref(), &state.cache, &ids)).await?;
        Ok(Self { version, rows })
    }

    /// The rows deleted within the version's tombstone window, as their tombstones keep
    /// them, with when each was deleted.
    pub fn tombstones(&self) -> Vec<(Row, Timestamp)> {
        self.version
            .index
            .deleted
            .iter()
            .filter_map(|d| Some((d.row()?, d.at)))
            .collect()
    }

    /// The current version of `rs` with `groups` decrypted, or why it is not held.
    pub async fn held(
        state: &ServeState,
        estab: &Estab,
        rs: &ResultSet,
        groups: &[&ScopeGroup],
        now: Timestamp,
    ) -> ApiResult<Result<Self, NotHeld>> {
        Ok(match holding(state, estab, rs, now).await? {
            Holding::Held(record) => Ok(Self::load(state, record, groups).await?),
            Holding::NotHeld(why) => Err(why),
        })
    }

    /// The current version of `rs` with `groups` decrypted.
    pub async fn current(
        state: &ServeState,
        estab: &Estab,
        rs: &ResultSet,
        groups: &[&ScopeGroup],
        now: Timestamp,
    ) -> ApiResult<Self> {
        let record = current_version(state, estab, rs, now).await?;
        Self::load(state, record, groups).await
    }
}

/// The ids of a stored set's current rows, from its index alone (nothing decrypted).
pub(crate) async fn stored_ids(
    state: &ServeState,
    estab: &Estab,
    set: &str,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    let rs = stored(set);
    let record = current_version(state, estab, rs, now).await?;
    let version = open(state, record).await?;
    Ok(version
        .index
        .rows
        .iter()
        .map(|row| row.id.clone())
        .collect())
}

/// Opens a version through the read cache.
async fn open(state: &ServeState, record: VersionRecord) -> ApiResult<OpenVersion> {
    let objects = state.objects.as_ref();
    let unwrapper = state.key_unwrapper.as_ref();
    Ok(OpenVersion::open_cached(objects, unwrapper, &state.cache, record).await?)
}

/// The values of one field over a stored set's current rows; only that field's group is
/// decrypted.
pub(crate) async fn field_values(
    state: &ServeState,
    estab: &Estab,
    set: &str,
    field: &str,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    let rs = stored(set);
    let groups = rs.groups_holding(&[field]);
    let loaded = LoadedSet::current(state, estab, rs, &groups, now).await?;
    Ok(loaded
        .rows
        .iter()
        .filter_map(|row| text(row.get(field)).map(|v| v.into_owned()))
        .collect())
}

fn stored(set: &str) -> &'static ResultSet {
    Catalogue::get()
        .stored_set(set)
        .expect("sets named in code are stored sets of the catalogue")
}

/// Whether rollcall holds a school's result set to serve now. [`holding`] is the one place
/// that decides it (where a later change will decide which areas are cached on demand).
pub(crate) enum Holding {
    Held(VersionRecord),
    NotHeld(NotHeld),
}

/// Why a result set is not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotHeld {
    /// The school's agent has never uploaded it.
    NotUploaded,
    /// Its data is more than 30 days out of date; it is never served, though not yet purged.
    Withdrawn,
}

impl NotHeld {
    /// As `__DbStatus__` and the freshness headers say it.
    pub fn reason(self) -> &'static str {
        match self {
            NotHeld::NotUploaded => "not uploaded",
            NotHeld::Withdrawn => "withdrawn: more than 30 days out of date",
        }
    }
}

/// The version of `rs` to serve now, or why there is none.
pub(crate) async fn holding(
    state: &ServeState,
    estab: &Estab,
    rs: &ResultSet,
    now: Timestamp,
) -> ApiResult<Holding> {
    Ok(
        match state.versions.current_version(estab, &rs.name).await? {
            Some(record) if !record.is_disposable(now) => Holding::Held(record),
            Some(_) => Holding::NotHeld(NotHeld::Withdrawn),
            None => Holding::NotHeld(NotHeld::NotUploaded),
        },
    )
}

/// The version to serve, for reads that cannot do without it (a filter's mapping, a
/// pupil's links): 503 when it is not held.
pub(crate) async fn current_version(
    state: &ServeState,
    estab: &Estab,
    rs: &ResultSet,
    now: Timestamp,
) -> ApiResult<VersionRecord> {
    match holding(state, estab, rs, now).await? {
        Holding::Held(record) => Ok(record),
        Holding::NotHeld(NotHeld::Withdrawn) => Err(ApiError::Unavailable(format!(
            "school {estab}'s {} data is more than 30 days out of date and has been withdrawn; \
             it is served again once the school's agent uploads it",
            rs.name
        ))),
        Holding::NotHeld(NotHeld::NotUploaded) => Err(ApiError::Unavailable(format!(
            "school {estab} has not uploaded {} yet; try again once its agent has",
            rs.name
        ))),
    }
}

/// The version a paginated walk started on. Its pin was checked (and its grace) already;
/// a version that is nevertheless gone, or past disposal, answers 410 too.
pub(crate) async fn pinned_version(
    state: &ServeState,
    estab: &Estab,
    rs: &ResultSet,
    number: u64,
    now: Timestamp,
) -> ApiResult<VersionRecord> {
    state
        .versions
        .version_record(estab, &rs.name, number)
        .await?
        .filter(|record| !record.is_disposable(now))
        .ok_or_else(|| {
            ApiError::Gone(format!(
                "the {} data this paginated walk started on is no longer kept; start again \
                 from page 1 without `version`",
                rs.name
            ))
        })
}
