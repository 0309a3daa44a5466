//! Points in time and spans, in milliseconds since the Unix epoch (UTC), with the wire formats
//! the XoD API uses: data dates are ISO 8601 without a zone (`2016-07-28T04:04:50.112`), token
//! expiry is ISO 8601 with `Z`.

use std::fmt;

use ::time::format_description::well_known::Rfc3339;
use ::time::macros::format_description;
use ::time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

/// A date given by a caller that is not ISO 8601.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an ISO 8601 date or date-time (e.g. 2026-09-01 or 2026-09-01T08:30:00Z)")]
pub struct TimestampParseError(pub String);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.0))
    }

    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.0))
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration((self.0 - earlier.0).max(0))
    }

    fn to_offset(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `2016-07-28T04:04:50.112`: UTC, no zone, as XoD writes `LastUpdated`.
    pub fn to_xod(self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
        );
        self.to_offset().format(format).unwrap_or_default()
    }

    /// The UTC calendar date of this instant.
    pub fn utc_date(self) -> ::time::Date {
        self.to_offset().date()
    }

    /// `2026-11-23T10:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        self.to_offset().format(format).unwrap_or_default()
    }

    /// Reads an ISO 8601 date-time with or without zone (no zone means UTC) or a bare date
    /// (midnight UTC).
    pub fn parse(text: &str) -> Result<Self, TimestampParseError> {
        let text = text.trim();
        let error = || TimestampParseError(text.chars().take(40).collect());
        if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(Self::from_offset(t));
        }
        let local_formats = [
            format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
            format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        ];
        for format in local_formats {
            if let Ok(t) = PrimitiveDateTime::parse(text, format) {
                return Ok(Self::from_offset(t.assume_offset(UtcOffset::UTC)));
            }
        }
        let date_format = format_description!("[year]-[month]-[day]");
        let date = ::time::Date::parse(text, date_format).map_err(|_| error())?;
        Ok(Self::from_offset(date.midnight().assume_utc()))
    }

    /// A time as a caller writes it in a query: one of [`Timestamp::parse`]'s forms as it
    /// stands, so starting with a `yyyy-mm-dd` date in ASCII digits: no spaces around it and
    /// no sign, as the OpenAPI document's `date` and `date-time` formats say.
    pub fn parse_given(text: &str) -> Result<Self, TimestampParseError> {
        let dated = text.len() >= 10
            && text.bytes().take(10).enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !dated || text.trim() != text {
            return Err(TimestampParseError(text.chars().take(40).collect()));
        }
        Self::parse(text)
    }

    /// A date as a caller writes it: [`Timestamp::parse_given`] of `yyyy-mm-dd` alone (no
    /// time), as the OpenAPI document's `format: date` says.
    pub fn parse_given_date(text: &str) -> Result<Self, TimestampParseError> {
        if text.len() != 10 {
            return Err(TimestampParseError(text.chars().take(40).collect()));
        }
        Self::parse_given(text)
    }

    fn from_offset(t: OffsetDateTime) -> Self {
        Self((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Duration {
    pub const fn millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn seconds(s: i64) -> Self {
        Self(s * 1000)
    }
    pub const fn minutes(m: i64) -> Self {
        Self(m * 60_000)
    }
    pub const fn hours(h: i64) -> Self {
        Self(h * 3_600_000)
    }
    pub const fn days(d: i64) -> Self {
        Self(d * 86_400_000)
    }
    pub const fn as_millis(self) -> i64 {
        self.0
    }
    pub const fn as_seconds(self) -> i64 {
        self.0 / 1000
    }
    pub const fn plus(self, other: Duration) -> Self {
        Self(self.0 + other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xod_format_has_milliseconds_and_no_zone() {
        let t = Timestamp::parse("2016-07-28T04:04:50.112Z").unwrap();
        assert_eq!(t.to_xod(), "2016-07-28T04:04:50.112");
        assert_eq!(t.to_rfc3339(), "2016-07-28T04:04:50Z");
    }

    #[test]
    fn parse_accepts_dates_local_times_and_offsets() {
        let midnight = Timestamp::parse("2026-09-01").unwrap();
        assert_eq!(Timestamp::parse("2026-09-01T00:00:00").unwrap(), midnight);
        assert_eq!(
            Timestamp::parse("2026-09-01T01:00:00+01:00").unwrap(),
            midnight
        );
        assert!(Timestamp::parse("next tuesday").is_err());
    }

    #[test]
    fn a_given_time_is_taken_only_as_it_stands() {
        for text in [
            "2026-09-01",
            "2026-09-01T10:00",
            "2026-09-01T10:00:00.5",
            "2026-09-01T10:00:00+01:00",
        ] {
            assert!(Timestamp::parse_given(text).is_ok(), "{text}");
        }
        for text in [
            " 2026-09-01",
            "2026-09-01 ",
            "+2026-09-01",
            "2026-9-01",
            "20260901",
            "٢٠٢٦-09-01",
            "2026-02-30",
            "",
        ] {
            assert!(Timestamp::parse_given(text).is_err(), "{text:?}");
        }
        assert!(Timestamp::parse_given_date("2026-09-01").is_ok());
        assert!(Timestamp::parse_given_date("2026-09-01T10:00").is_err());
    }
}
