//! The sandbox's calendar: every date is relative to the day it is generated, so `...ForToday`
//! and date-range endpoints answer rows whenever the demo runs.
//!
//! The weeks from [`Days::FIRST`] to [`Days::LAST`] days around today are term time: every
//! weekday in them is a school day with the full timetable. Holidays and training days lie
//! outside that window (see the calendar area).

use time::{Date, Duration, Month, Weekday};

#[derive(Debug, Clone, Copy)]
pub struct Days {
    pub today: Date,
}

impl Days {
    /// The first and last day of the timetabled window, in days from today.
    pub const FIRST: i64 = -21;
    pub const LAST: i64 = 21;

    pub fn new(today: Date) -> Self {
        Self { today }
    }

    /// Today moved by `days`.
    pub fn day(&self, days: i64) -> Date {
        self.today
            .checked_add(Duration::days(days))
            .unwrap_or(self.today)
    }

    /// The weekdays from `from` to `to` days after today, inclusive.
    pub fn school_days(&self, from: i64, to: i64) -> Vec<Date> {
        (from..=to)
            .map(|d| self.day(d))
            .filter(|d| !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday))
            .collect()
    }

    /// Every school day of the timetabled window.
    pub fn term(&self) -> Vec<Date> {
        self.school_days(Self::FIRST, Self::LAST)
    }

    /// The last school day on or before today.
    pub fn last_school_day(&self) -> Date {
        (0..7)
            .map(|back| self.day(-back))
            .find(|d| !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday))
            .unwrap_or(self.today)
    }

    /// 1 September of the academic year today is in.
    pub fn academic_year_start(&self) -> Date {
        let year = if self.today.month() as u8 >= Month::September as u8 {
            self.today.year()
        } else {
            self.today.year() - 1
        };
        Date::from_calendar_date(year, Month::September, 1).unwrap_or(self.today)
    }

    /// 31 August that ends the academic year today is in.
    pub fn academic_year_end(&self) -> Date {
        let start = self.academic_year_start();
        Date::from_calendar_date(start.year() + 1, Month::August, 31).unwrap_or(self.today)
    }

    /// `2026-11-23` style academic year label: `2026/2027`.
    pub fn academic_year_label(&self) -> String {
        let start = self.academic_year_start().year();
        format!("{start}/{}", start + 1)
    }
}

/// `2026-11-23T00:00:00`: a date as XoD writes it.
pub fn date(d: Date) -> String {
    format!("{}T00:00:00", ymd(d))
}

/// `2026-11-23`.
pub fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// `2026-11-23T08:50:00`: a date and a time of day given as minutes after midnight.
pub fn at(d: Date, minutes: u32) -> String {
    format!("{}T{:02}:{:02}:00", ymd(d), minutes / 60, minutes % 60)
}

/// `08:50`.
pub fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_window_holds_today_and_only_weekdays() {
        let days = Days::new(date!(2026 - 12 - 06)); // a Sunday
        let term = days.term();
        assert!(term.iter().all(|d| d.weekday() != Weekday::Sunday));
        assert_eq!(days.last_school_day(), date!(2026 - 12 - 04));
        assert_eq!(days.academic_year_start(), date!(2026 - 09 - 01));
        assert_eq!(
            Days::new(date!(2027 - 03 - 01)).academic_year_label(),
            "2026/2027"
        );
        assert_eq!(at(date!(2026 - 12 - 04), 530), "2026-12-04T08:50:00");
    }
}
