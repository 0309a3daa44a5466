//! What a reading function keeps between calls, so that a partner's read pays neither a
//! key-service call, nor the decryption and parse of a whole result set, nor the answering of
//! rows answered before, each time:
//! - [`KeyCache`]: data keys the key service unwrapped, by (context, wrapped key);
//! - [`VersionCache`]: opened versions (their index and data key) and the decrypted rows of
//!   the scope groups a read plan asked for, by (school, version's objects, groups);
//! - [`AnswerMemo`]: which of such rows a read plan admitted and how it answered them, by a
//!   digest of everything the plan made them from ([`Answering::key`]).
//!
//! None decides anything about what a partner may see: a cached entry is exactly what
//! [`crate::vault`] would have opened again (a stored version never changes), handed to the
//! same read plan, or what that plan made of it and would make again. The rules every entry
//! follows:
//! - **One school.** Each entry holds one school's data, and its key names that school (for
//!   [`AnswerMemo`], inside the digest: the plan's school and the version's); a read finds
//!   only entries of the school its credential names. Rows are cached per set of groups, so a
//!   read is handed exactly the groups its plan asked for, never more; answers per plan and
//!   partner, so a read is handed only answers its own plan made.
//! - **Bounded.** [`KeyCache`] by count, [`VersionCache`] and [`AnswerMemo`] by an estimate
//!   of the memory their entries take; when full, expired entries go first, then the oldest.
//! - **Time-limited.** An entry is dropped [`ENTRY_LIFETIME`] after it was loaded, however
//!   often it is used (swept out at the next call after that), so pupils' data does not stay
//!   in memory longer than reads need it.
//! - **Zeroized.** Data keys are [`PlainKey`]s; cached rows are [`Rows`], whose strings (keys
//!   and values) are overwritten when the last reader drops them, as answered rows' bytes
//!   are; decrypted JSON is overwritten once parsed. Numbers and booleans inside
//!   `serde_json` values, a version's index (row ids, change times, tombstones' kept
//!   fields), the ids of the people answered rows include and `serde_json`'s own scratch
//!   buffers are freed without being overwritten.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hash;
use std::mem::size_of;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use zeroize::Zeroize;

use crate::dataset::Row;
use crate::envelope::{KeyContext, PlainKey};
use crate::included::Included;
use crate::model::Estab;
use crate::plan::{AnsweredRow, Answering, Fingerprint};
use crate::ports::{DataKeyUnwrapper, KeyError};

/// How long an entry is kept after it was loaded.
pub const ENTRY_LIFETIME: Duration = Duration::from_secs(60);

/// How many data keys [`KeyCache`] keeps at most.
pub const MAX_KEYS: usize = 1024;

/// The default bound on [`VersionCache`]'s estimated memory, for its rows and again for its
/// indexes: 64 MiB each, a quarter of the serve function's 512 MB together.
pub const DEFAULT_ROWS_BUDGET: usize = 64 << 20;

/// A map whose entries cost something, bounded in total cost and in age. Expired entries are
/// swept out at most once a second, at the next use: an idle process keeps them until its next
/// call (a Lambda instance between calls is frozen, so no timer could do sooner).
struct Bounded<K, V> {
    entries: HashMap<K, Slot<V>>,
    cost: usize,
    budget: usize,
    lifetime: Duration,
    swept: Option<Instant>,
}

struct Slot<V> {
    value: V,
    cost: usize,
    loaded: Instant,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(budget: usize, lifetime: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            cost: 0,
            budget,
            lifetime,
            swept: None,
        }
    }

    fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        self.sweep(now);
        let slot = self.entries.get(key)?;
        if now.duration_since(slot.loaded) < self.lifetime {
            return Some(slot.value.clone());
        }
        self.remove(key);
        None
    }

    /// Keeps `value` unless it alone costs more than the budget; every entry costs at least 1.
    fn insert(&mut self, key: K, value: V, cost: usize, now: Instant) {
        let cost = cost.max(1);
        if cost > self.budget {
            return;
        }
        self.remove(&key);
        if self.cost + cost > self.budget {
            self.swept = None;
            self.sweep(now);
        }
        while self.cost + cost > self.budget {
            let oldest = (self.entries.iter())
                .min_by_key(|(_, slot)| slot.loaded)
                .map(|(key, _)| key.clone())
                .expect("over budget means an entry is kept");
            self.remove(&oldest);
        }
        self.cost += cost;
        let loaded = now;
        self.entries.insert(
            key,
            Slot {
                value,
                cost,
                loaded,
            },
        );
    }

    /// Drops every expired entry, unless that was done less than a second ago.
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let lifetime = self.lifetime;
        let expired: Vec<K> = (self.entries.iter())
            .filter(|(_, slot)| now.duration_since(slot.loaded) >= lifetime)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &K) {
        if let Some(slot) = self.entries.remove(key) {
            self.cost -= slot.cost;
        }
    }

    /// Adds `extra` to what the entry at `key` costs (it grew after it was kept), then drops
    /// the oldest entries while over the budget (that entry too, if it is the oldest).
    fn grow(&mut self, key: &K, extra: usize) {
        let Some(slot) = self.entries.get_mut(key) else {
            return;
        };
        slot.cost += extra;
        self.cost += extra;
        while self.cost > self.budget {
            let oldest = (self.entries.iter())
                .min_by_key(|(_, slot)| slot.loaded)
                .map(|(key, _)| key.clone())
                .expect("over budget means an entry is kept");
            self.remove(&oldest);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A [`DataKeyUnwrapper`] that remembers what the key service unwrapped, so that many reads
/// of one version cost one key-service call. A wrapped key presented under another context
/// (another school's) is another entry: the key service itself decides it, and refuses.
pub struct KeyCache {
    inner: Arc<dyn DataKeyUnwrapper>,
    keys: Mutex<Bounded<(KeyContext, Vec<u8>), PlainKey>>,
}

impl KeyCache {
    pub fn new(inner: Arc<dyn DataKeyUnwrapper>) -> Self {
        Self {
            inner,
            keys: Mutex::new(Bounded::new(MAX_KEYS, ENTRY_LIFETIME)),
        }
    }

    /// How many keys are kept now.
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl DataKeyUnwrapper for KeyCache {
    async fn unwrap(&self, context: &KeyContext, wrapped: &[u8]) -> Result<PlainKey, KeyError> {
        let id = (context.clone(), wrapped.to_vec());
        if let Some(key) = lock(&self.keys).get(&id, Instant::now()) {
            return Ok(key);
        }
        let key = self.inner.unwrap(context, wrapped).await?;
        lock(&self.keys).insert(id, key.clone(), 1, Instant::now());
        Ok(key)
    }
}

/// Rows decrypted from a version's scope groups, shared by the reads that use them; their
/// strings are overwritten when the last one is done.
#[derive(Debug, Default)]
pub struct Rows(Vec<Row>);

impl Rows {
    pub fn new(rows: Vec<Row>) -> Self {
        Self(rows)
    }
}

impl Deref for Rows {
    type Target = [Row];

    fn deref(&self) -> &[Row] {
        &self.0
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        for row in std::mem::take(&mut self.0) {
            wipe_row(row);
        }
    }
}

fn wipe_row(row: Row) {
    for (mut name, value) in row {
        name.zeroize();
        wipe_value(value);
    }
}

fn wipe_value(value: Value) {
    match value {
        Value::String(mut text) => text.zeroize(),
        Value::Array(items) => items.into_iter().for_each(wipe_value),
        Value::Object(row) => wipe_row(row),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Which cached rows: a school's version (named by its index object's key, which holds the
/// result set, version and upload) and the groups decrypted, in the plan's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowsKey {
    pub estab: Estab,
    pub object: String,
    pub groups: Vec<String>,
}

/// An opened version: its index and data key, by (school, index object's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionKey {
    pub estab: Estab,
    pub object: String,
}

/// Opened versions and decrypted rows, kept for [`ENTRY_LIFETIME`] within a memory budget
/// each (a budget of 0 keeps nothing).
pub struct VersionCache<V> {
    versions: Mutex<Bounded<VersionKey, V>>,
    rows: Mutex<Bounded<RowsKey, Arc<Rows>>>,
}

/// What parsed JSON takes in memory per byte of its text: measured 7.6 to 8.6 with
/// `serde_json`'s `preserve_order` maps on the sandbox school, 10 for rows of nulls.
const PARSED_PER_JSON_BYTE: usize = 10;

impl<V: Clone> VersionCache<V> {
    /// A cache whose opened indexes, and whose rows, take about `budget` bytes each at most.
    pub fn new(budget: usize) -> Self {
        Self {
            versions: Mutex::new(Bounded::new(budget, ENTRY_LIFETIME)),
            rows: Mutex::new(Bounded::new(budget, ENTRY_LIFETIME)),
        }
    }

    pub fn version(&self, key: &VersionKey) -> Option<V> {
        lock(&self.versions).get(key, Instant::now())
    }

    /// Keeps an opened version whose index was `index_bytes` of JSON.
    pub fn keep_version(&self, key: VersionKey, version: V, index_bytes: usize) {
        let cost = index_bytes.saturating_mul(PARSED_PER_JSON_BYTE);
        lock(&self.versions).insert(key, version, cost, Instant::now());
    }

    pub fn rows(&self, key: &RowsKey) -> Option<Arc<Rows>> {
        lock(&self.rows).get(key, Instant::now())
    }

    /// Keeps `rows`, decrypted from `plaintext_bytes` of JSON.
    pub fn keep_rows(&self, key: RowsKey, rows: Arc<Rows>, plaintext_bytes: usize) {
        let cost = plaintext_bytes.saturating_mul(PARSED_PER_JSON_BYTE);
        lock(&self.rows).insert(key, rows, cost, Instant::now());
    }
}

/// Answered rows of one set of a plan over one stored version ([`Answering`]), kept under
/// [`Answering::key`] so that later calls that would make the same answers (another page, the
/// same page again) take them instead: which rows the set admits, found when the entry is
/// made, and each row's answer and the people it includes, made the first time a call shows
/// it. It decides nothing: every answer in it is one the plan made, under a key that digests
/// everything the plan made it from. Bounded by [`DEFAULT_ROWS_BUDGET`] or the budget given
/// (rows' bytes counted as they are made), [`ENTRY_LIFETIME`], and zeroized as
/// [`crate::plan::AnsweredRow`]s are.
pub struct AnswerMemo {
    sets: Mutex<Bounded<Fingerprint, Arc<SetAnswers>>>,
}

struct SetAnswers {
    admitted: Vec<usize>,
    /// By row position.
    rows: Vec<OnceLock<(AnsweredRow, Included)>>,
}

impl AnswerMemo {
    /// A memo of about `budget` bytes at most (0 keeps nothing: every call makes its own).
    pub fn new(budget: usize) -> Self {
        Self {
            sets: Mutex::new(Bounded::new(budget, ENTRY_LIFETIME)),
        }
    }

    /// The answers of `answering`'s rows: those kept under its key, or new ones (kept, when
    /// they fit the budget).
    pub fn answers<'m, 'a, 'c>(&'m self, answering: Answering<'a, 'c>) -> Answers<'m, 'a, 'c> {
        let key = answering.key();
        let kept = lock(&self.sets).get(&key, Instant::now());
        let set = kept.unwrap_or_else(|| {
            let made = Arc::new(SetAnswers {
                admitted: answering.admitted(),
                rows: (0..answering.rows.len()).map(|_| OnceLock::new()).collect(),
            });
            let cost = size_of::<OnceLock<(AnsweredRow, Included)>>() * made.rows.len()
                + size_of::<usize>() * made.admitted.len();
            // Calls that missed together share the first one kept, so that each row is
            // answered once.
            let mut sets = lock(&self.sets);
            match sets.get(&key, Instant::now()) {
                Some(kept) => kept,
                None => {
                    sets.insert(key, made.clone(), cost, Instant::now());
                    made
                }
            }
        });
        Answers {
            memo: self,
            key,
            answering,
            set,
            made: Cell::new(0),
        }
    }
}

/// One call's view of [`AnswerMemo`]'s answers for its [`Answering`].
pub struct Answers<'m, 'a, 'c> {
    memo: &'m AnswerMemo,
    key: Fingerprint,
    answering: Answering<'a, 'c>,
    set: Arc<SetAnswers>,
    /// The bytes of the answers this call made, counted against the budget when it is done.
    made: Cell<usize>,
}

impl Answers<'_, '_, '_> {
    /// The positions of the rows the set admits, in order.
    pub fn admitted(&self) -> &[usize] {
        &self.set.admitted
    }

    /// Row `p` as the plan answers it, with the people it includes.
    pub fn row(&self, p: usize) -> &(AnsweredRow, Included) {
        self.set.rows[p].get_or_init(|| {
            let (row, people) = self.answering.answer(p);
            let size = row.json().len() + people.size() + size_of::<usize>() * 4;
            self.made.set(self.made.get() + size);
            (row, people)
        })
    }
}

impl Drop for Answers<'_, '_, '_> {
    fn drop(&mut self) {
        if self.made.get() > 0 {
            lock(&self.memo.sets).grow(&self.key, self.made.get());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Never held across an await; a panic while held leaves a map that is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use zeroize::Zeroizing;

    use super::*;

    struct Counting(AtomicUsize);

    #[async_trait]
    impl DataKeyUnwrapper for Counting {
        async fn unwrap(&self, context: &KeyContext, wrapped: &[u8]) -> Result<PlainKey, KeyError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if context.school != "1" {
                return Err(KeyError::Denied);
            }
            Ok(Zeroizing::new([wrapped[0]; 32]))
        }
    }

    fn context(school: &str) -> KeyContext {
        KeyContext {
            school: school.into(),
            result_set: "Students".into(),
        }
    }

    #[tokio::test]
    async fn a_key_is_unwrapped_once_and_never_under_another_context() {
        let counting = Arc::new(Counting(AtomicUsize::new(0)));
        let cache = KeyCache::new(counting.clone());
        for _ in 0..100 {
            assert_eq!(cache.unwrap(&context("1"), b"a").await.unwrap()[0], b'a');
        }
        assert_eq!(counting.0.load(Ordering::SeqCst), 1);
        assert!(matches!(
            cache.unwrap(&context("2"), b"a").await,
            Err(KeyError::Denied)
        ));
        assert!(matches!(
            cache.unwrap(&context("2"), b"a").await,
            Err(KeyError::Denied)
        ));
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            3,
            "refusals are not kept"
        );
        assert_eq!(cache.unwrap(&context("1"), b"b").await.unwrap()[0], b'b');
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn an_entry_that_grows_past_the_budget_makes_room_as_a_new_one_would() {
        let start = Instant::now();
        let mut map: Bounded<&str, u32> = Bounded::new(10, Duration::from_secs(60));
        map.insert("a", 1, 3, start);
        map.insert("b", 2, 3, start + Duration::from_secs(1));
        map.grow(&"b", 4);
        assert_eq!(map.cost, 10);
        assert_eq!(map.get(&"a", start + Duration::from_secs(1)), Some(1));
        map.grow(&"b", 1);
        assert_eq!(map.get(&"a", start + Duration::from_secs(1)), None);
        assert_eq!(map.get(&"b", start + Duration::from_secs(1)), Some(2));
        assert_eq!(map.cost, 8);
        map.grow(&"gone", 100);
        assert_eq!(map.cost, 8);
        map.grow(&"b", 3);
        assert_eq!(
            (map.len(), map.cost),
            (0, 0),
            "alone over the budget, it goes too"
        );
    }

    #[test]
    fn the_budget_evicts_expired_entries_then_the_oldest() {
        let start = Instant::now();
        let mut map: Bounded<&str, u32> = Bounded::new(10, Duration::from_secs(60));
        map.insert("a", 1, 4, start);
        map.insert("b", 2, 4, start + Duration::from_secs(1));
        map.insert("c", 3, 4, start + Duration::from_secs(2));
        assert_eq!(map.get(&"a", start + Duration::from_secs(2)), None);
        assert_eq!(map.get(&"b", start + Duration::from_secs(2)), Some(2));
        assert_eq!(map.cost, 8);
        map.insert("too big", 9, 11, start);
        assert_eq!(map.get(&"too big", start), None);
        assert_eq!(map.get(&"b", start + Duration::from_secs(61)), None);
        assert_eq!(map.len(), 1);
        map.insert("d", 4, 4, start + Duration::from_secs(70));
        assert_eq!(map.get(&"c", start + Duration::from_secs(70)), None);
        assert_eq!(map.get(&"d", start + Duration::from_secs(70)), Some(4));
        assert_eq!(map.cost, 4);
    }
}
