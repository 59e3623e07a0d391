use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An instant in UTC, as microseconds since the Unix epoch. In JSON it is an RFC 3339 string
/// (`2026-01-02T03:04:05Z`), as in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s).map_err(serde::de::Error::custom)
    }
}

/// Earliest event time modelwatch accepts: older timestamps are almost always a unit mistake
/// (seconds read as milliseconds, or a zero date).
const EARLIEST: i64 = 946_684_800_000_000; // 2000-01-01T00:00:00Z
/// How far into the future an event time may be (clock skew between hosts).
const MAX_FUTURE_MICROS: i64 = 24 * 3600 * 1_000_000;

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs * 1_000_000)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// RFC 3339 with a `Z` suffix, second precision unless there are fractional seconds.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => self.0.to_string(),
        }
    }

    /// Checks that the instant is plausible as an event time, given the current time.
    pub fn check_plausible(self, now: Timestamp) -> Result<(), String> {
        if self.0 < EARLIEST {
            return Err(format!(
                "{} is before 2000-01-01: check the unit (seconds vs milliseconds)",
                self.to_rfc3339()
            ));
        }
        if self.0 > now.0 + MAX_FUTURE_MICROS {
            return Err(format!(
                "{} is more than a day in the future",
                self.to_rfc3339()
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parses an event timestamp: RFC 3339 (`2026-01-02T03:04:05Z`, with or without fractions and
/// offset), or a zoneless `YYYY-MM-DD HH:MM:SS[.f]` / `YYYY-MM-DDTHH:MM:SS[.f]` read as UTC.
pub fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Timestamp(t.timestamp_micros()));
    }
    // chrono's `%Y` also reads signed and 5-digit years (`+10000-01-02`, `-0001-01-01`), which
    // RFC 3339 cannot write: such an instant would be shown (replies, the dashboard's links) as
    // text that no longer parses. Found by the time_params fuzz target (docs/fuzzing.md).
    let in_rfc3339_years = |t: &NaiveDateTime| (0..=9999).contains(&t.year());
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            if !in_rfc3339_years(&t) {
                return Err(beyond_rfc3339_years(s));
            }
            return Ok(Timestamp(t.and_utc().timestamp_micros()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            if !in_rfc3339_years(&t) {
                return Err(beyond_rfc3339_years(s));
            }
            return Ok(Timestamp(t.and_utc().timestamp_micros()));
        }
    }
    Err(format!(
        "{s:?} is not a timestamp: expected RFC 3339, e.g. 2026-01-02T03:04:05Z"
    ))
}

fn beyond_rfc3339_years(s: &str) -> String {
    format!("{s:?} is not a timestamp: the year must be 0000 to 9999 (RFC 3339)")
}

/// Splits a span written as a whole number and a one-letter unit (`15m`, `2h`, `7d`) into the
/// two, or `None`. The one reader of spans for windows, ranges and durations: it looks at the
/// last *character*, so any input, non-ASCII included (`1ü`, `%ff` decoded), is an error and
/// never a panic; the caller names the parameter and the units it accepts.
pub fn split_span(s: &str) -> Option<(i64, char)> {
    let s = s.trim();
    let unit = s.chars().next_back()?;
    let num = &s[..s.len() - unit.len_utf8()];
    if num.is_empty()
        || !num
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
    {
        return None;
    }
    Some((num.parse().ok()?, unit))
}

/// The width of an event-time window. Windows are aligned to UTC: hours on the hour, days at
/// midnight, 7-day windows on Mondays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("window {0:?} is not valid: use a number and a unit, e.g. 15m, 1h, 1d, 7d")]
pub struct WindowError(pub String);

impl crate::ServiceError for WindowError {
    fn code(&self) -> crate::ErrorCode {
        crate::ErrorCode::InvalidInput
    }
}

/// 1970-01-01 was a Thursday; shifting by four days puts week boundaries on Mondays.
const WEEK_ALIGN_OFFSET_SECS: i64 = 4 * 86_400;

impl Window {
    pub const HOUR: Window = Window { seconds: 3600 };
    pub const DAY: Window = Window { seconds: 86_400 };
    pub const WEEK: Window = Window {
        seconds: 7 * 86_400,
    };

    pub fn parse(s: &str) -> Result<Window, WindowError> {
        let err = || WindowError(s.to_string());
        let (n, unit) = split_span(s).ok_or_else(err)?;
        let unit_secs = match unit {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(err()),
        };
        if n <= 0 || n > 366 * 86_400 / unit_secs {
            return Err(err());
        }
        Ok(Window {
            seconds: n * unit_secs,
        })
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }

    pub fn micros(self) -> i64 {
        self.seconds * 1_000_000
    }

    fn align_offset_micros(self) -> i64 {
        if self.seconds % (7 * 86_400) == 0 {
            WEEK_ALIGN_OFFSET_SECS * 1_000_000
        } else {
            0
        }
    }

    /// Start of the window that contains `t`.
    pub fn start_of(self, t: Timestamp) -> Timestamp {
        let w = self.micros();
        let off = self.align_offset_micros();
        Timestamp((t.0 - off).div_euclid(w) * w + off)
    }

    /// Canonical spelling: `1h`, `1d`, `7d`, `15m`.
    pub fn label(self) -> String {
        let s = self.seconds;
        if s % 86_400 == 0 {
            format!("{}d", s / 86_400)
        } else if s % 3600 == 0 {
            format!("{}h", s / 3600)
        } else {
            format!("{}m", s / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_never_panic_on_any_text() {
        for bad in [
            "1ü",
            "ü",
            "1€",
            "€1",
            "\u{ff}",
            "1\u{10ffff}",
            "",
            " ",
            "h",
            "1",
            "1.5h",
            "1 h",
            "0x1h",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(split_span("15m"), Some((15, 'm')));
        assert_eq!(split_span(" 2h "), Some((2, 'h')));
        assert_eq!(split_span("1ü"), Some((1, 'ü')));
        assert_eq!(Window::parse("7d").unwrap(), Window::WEEK);
    }

    proptest::proptest! {
        #[test]
        fn window_parse_is_total(s in "\\PC{0,8}") {
            let _ = Window::parse(&s);
            let _ = split_span(&s);
        }
    }

    #[test]
    fn parses_rfc3339_and_zoneless() {
        let a = parse_timestamp("2026-01-02T03:04:05Z").unwrap();
        let b = parse_timestamp("2026-01-02 03:04:05").unwrap();
        let c = parse_timestamp("2026-01-02T05:04:05+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_rfc3339(), "2026-01-02T03:04:05Z");
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2026-13-02T03:04:05Z").is_err());
    }

    #[test]
    fn timestamps_read_back_from_their_rendering_and_years_beyond_9999_are_refused() {
        // `%Y` accepted these, and their RFC 3339 rendering (`+10000-01-02T03:04:05Z`) did not
        // parse again.
        for bad in [
            "+10000-01-02 03:04:05",
            "+10000-01-02T03:04:05",
            "-0001-01-01 00:00:00",
            "+12345-06-07",
        ] {
            let e = parse_timestamp(bad).unwrap_err();
            assert!(e.contains("0000 to 9999"), "{bad}: {e}");
        }
        for good in [
            "0000-01-01 00:00:00",
            "9999-12-31T23:59:59.999999",
            "0999-03-04",
            "2026-01-02 03:04:05.1234567",
        ] {
            let t = parse_timestamp(good).unwrap();
            assert_eq!(parse_timestamp(&t.to_rfc3339()), Ok(t), "{good}");
        }
    }

    #[test]
    fn plausibility_catches_unit_mistakes_and_far_future() {
        let now = parse_timestamp("2026-06-01T00:00:00Z").unwrap();
        assert!(parse_timestamp("1970-01-21T00:00:00Z")
            .unwrap()
            .check_plausible(now)
            .is_err());
        assert!(parse_timestamp("2027-01-01T00:00:00Z")
            .unwrap()
            .check_plausible(now)
            .is_err());
        assert!(parse_timestamp("2024-02-01T00:00:00Z")
            .unwrap()
            .check_plausible(now)
            .is_ok());
    }

    #[test]
    fn windows_align_to_utc_boundaries() {
        let t = parse_timestamp("2026-01-07T15:42:00Z").unwrap(); // a Wednesday
        assert_eq!(
            Window::HOUR.start_of(t).to_rfc3339(),
            "2026-01-07T15:00:00Z"
        );
        assert_eq!(Window::DAY.start_of(t).to_rfc3339(), "2026-01-07T00:00:00Z");
        assert_eq!(
            Window::WEEK.start_of(t).to_rfc3339(),
            "2026-01-05T00:00:00Z"
        );
        assert_eq!(Window::parse("7d").unwrap(), Window::WEEK);
        assert_eq!(Window::parse("1h").unwrap().label(), "1h");
        for bad in ["", "h", "0h", "-1d", "1y", "abc"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }
}
