//! Attendance: the codes and the session and lesson marks.

use super::timetable::Timetable;
use super::{Days, Roster, Rng, Sets};

pub(super) fn sets(roster: &Roster, timetable: &Timetable, days: &Days, rng: &mut Rng) -> Sets {
    let _ = (roster, days, rng, timetable);
    Vec::new()
}
