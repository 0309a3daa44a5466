//! Per-person opt-outs (XoD's GDPR data controls): a school names pupils, staff and contacts
//! whose data one partner must not receive. What that means for each row and column is decided
//! by the read plan ([`crate::plan`]) from the people the catalogue declares in every result set.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::PersonKind;
use crate::model::{Estab, PartnerId};
use crate::timestamp::Timestamp;

/// The people one partner must not see at one school.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptOuts {
    pub students: BTreeSet<String>,
    pub staff: BTreeSet<String>,
    pub contacts: BTreeSet<String>,
}

/// A school's opt-outs for one partner, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutRecord {
    pub estab: Estab,
    pub partner: PartnerId,
    pub people: OptOuts,
    pub updated_at: Timestamp,
    /// Counts the writes: a change is written only over the version it was made from, so
    /// two changes at once cannot lose one another.
    pub version: u64,
}

impl OptOuts {
    pub fn is_empty(&self) -> bool {
        self.students.is_empty() && self.staff.is_empty() && self.contacts.is_empty()
    }

    /// The opted-out people of one kind.
    pub fn of(&self, kind: PersonKind) -> &BTreeSet<String> {
        match kind {
            PersonKind::Student => &self.students,
            PersonKind::Staff => &self.staff,
            PersonKind::Contact => &self.contacts,
        }
    }

    /// These opt-outs with every contact whose only links (`(pupil, contact)` pairs of
    /// StudentContacts) are to opted-out pupils: a partner that may not see a pupil may not
    /// learn of the pupil's parents either. A contact with no current link is judged on the
    /// links it had last (`deleted`, with when each went), so dropping an opted-out pupil's
    /// links does not free their parents.
    pub fn with_orphaned_contacts<'a>(
        mut self,
        links: impl IntoIterator<Item = (&'a str, &'a str)>,
        deleted: impl IntoIterator<Item = (&'a str, &'a str, Timestamp)>,
    ) -> Self {
        if self.students.is_empty() {
            return self;
        }
        let mut visible_link: BTreeMap<&str, bool> = BTreeMap::new();
        for (student, contact) in links {
            let visible = !self.students.contains(student);
            *visible_link.entry(contact).or_default() |= visible;
        }
        let mut last: BTreeMap<&str, (Timestamp, bool)> = BTreeMap::new();
        for (student, contact, at) in deleted {
            if visible_link.contains_key(contact) {
                continue;
            }
            let visible = !self.students.contains(student);
            let entry = last.entry(contact).or_insert((at, false));
            if at > entry.0 {
                *entry = (at, false);
            }
            if at == entry.0 {
                entry.1 |= visible;
            }
        }
        let orphans: Vec<String> = visible_link
            .into_iter()
            .chain(
                last.into_iter()
                    .map(|(contact, (_, visible))| (contact, visible)),
            )
            .filter(|(_, visible)| !visible)
            .map(|(contact, _)| contact.to_owned())
            .collect();
        self.contacts.extend(orphans);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt_outs() -> OptOuts {
        OptOuts {
            students: ["7".to_owned()].into(),
            staff: ["12".to_owned()].into(),
            contacts: BTreeSet::new(),
        }
    }

    #[test]
    fn a_contact_whose_links_are_gone_is_judged_on_those_it_had_last() {
        use crate::timestamp::Timestamp;
        let (t1, t2) = (Timestamp::from_millis(1_000), Timestamp::from_millis(2_000));
        // c1 lost its only link (to 7); c2 lost a link to 8 long ago, then its link to 7;
        // c3 lost its link to 7 but is linked to 8 now; c4 lost links to 7 and 8 together.
        let current = [("8", "c3")];
        let deleted = [
            ("7", "c1", t2),
            ("8", "c2", t1),
            ("7", "c2", t2),
            ("7", "c3", t2),
            ("7", "c4", t2),
            ("8", "c4", t2),
        ];
        let effective = opt_outs().with_orphaned_contacts(current, deleted);
        assert_eq!(
            effective.contacts,
            BTreeSet::from(["c1".to_owned(), "c2".to_owned()])
        );
    }

    #[test]
    fn a_contact_linked_only_to_opted_out_pupils_is_opted_out_too() {
        let links = [("7", "c1"), ("7", "c2"), ("8", "c2"), ("8", "c3")];
        let effective = opt_outs().with_orphaned_contacts(links, []);
        assert_eq!(effective.contacts, BTreeSet::from(["c1".to_owned()]));
        assert_eq!(
            effective.of(PersonKind::Staff),
            &BTreeSet::from(["12".to_owned()])
        );
        let nobody = OptOuts::default().with_orphaned_contacts(links, []);
        assert!(nobody.is_empty());
    }
}
