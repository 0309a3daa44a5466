//! Assessment: aspects, templates, marksheets, columns, result sets, grade sets and pupils' results.

use super::{Days, Rng, Roster, Sets};

pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    let _ = (roster, days, rng);
    Vec::new()
}
