//! Documents and contact details: user-defined fields, linked documents, person comms and photographs.

use super::{Days, Rng, Roster, Sets};

pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    let _ = (roster, days, rng);
    Vec::new()
}
