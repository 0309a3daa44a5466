//! The timetable: a week's cycle of lessons for every teaching group, with staff and rooms,
//! as modelled and as it falls on the dates around today; the day's structure; the calendar;
//! seating plans.

use super::{Days, Roster, Sets};

pub(super) struct Timetable {}

impl Timetable {
    pub(super) fn plan(roster: &Roster, days: &Days) -> Self {
        let _ = (roster, days);
        Self {}
    }

    pub(super) fn sets(&self, roster: &Roster, days: &Days) -> Sets {
        let _ = (roster, days);
        Vec::new()
    }
}
