//! Timestamps: RFC 3339 parsing (docs/events.md, "Timestamps"), UTC milliseconds, calendar months.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An instant in UTC, in whole milliseconds since 1970-01-01T00:00:00Z.
///
/// Always within [`Millis::MIN`]..=[`Millis::MAX`] when it comes from [`Millis::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Millis(pub i64);

/// Days from 1970-01-01 to 0000-03-01 in the proleptic Gregorian calendar, used by the
/// civil-date conversions below (Howard Hinnant's algorithms).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

const MS_PER_DAY: i64 = 86_400_000;

impl Millis {
    /// The current time, truncated to the millisecond.
    pub fn now() -> Millis {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Millis(ms)
    }

    /// 1970-01-01T00:00:00Z.
    pub const MIN: Millis = Millis(0);
    /// 9999-12-31T23:59:59.999Z.
    pub const MAX: Millis = Millis(253_402_300_799_999);

    /// Builds an instant from UTC calendar fields; `None` when they are not a real date and
    /// time or fall outside [`Millis::MIN`]..=[`Millis::MAX`].
    pub fn from_utc(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<Millis> {
        if !(1..=12).contains(&mo)
            || d == 0
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
            || ms > 999
        {
            return None;
        }
        let v = days_from_civil(y, mo, d) * MS_PER_DAY
            + (h as i64 * 3600 + mi as i64 * 60 + s as i64) * 1000
            + ms as i64;
        let m = Millis(v);
        (Millis::MIN..=Millis::MAX).contains(&m).then_some(m)
    }

    /// Parses an RFC 3339 date-time as docs/events.md ("Timestamps") defines it: `YYYY-MM-DD`, `T`/`t`/space,
    /// `hh:mm:ss`, an optional fraction (truncated to milliseconds), then `Z`/`z` or
    /// `±hh:mm`. The error says what is wrong, for a rejection reason.
    pub fn parse(s: &str) -> Result<Millis, String> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = b.get(r)?;
            if part.iter().all(u8::is_ascii_digit) {
                Some(part.iter().fold(0u32, |a, c| a * 10 + (c - b'0') as u32))
            } else {
                None
            }
        };
        let shape = || format!("{s:?} is not an RFC 3339 date-time (like 2026-03-01T09:00:05Z)");
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err(shape());
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(shape());
        }
        let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
            digits(0..4),
            digits(5..7),
            digits(8..10),
            digits(11..13),
            digits(14..16),
            digits(17..19),
        ) else {
            return Err(shape());
        };
        let mut i = 19;
        let mut ms = 0u32;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(shape());
            }
            for k in 0..3 {
                ms = ms * 10
                    + b.get(start + k)
                        .filter(|_| start + k < i)
                        .map_or(0, |c| (c - b'0') as u32);
            }
        }
        let offset_min: i64 = match &b[i..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
                let (Some(oh), Some(om)) = (digits(i + 1..i + 3), digits(i + 4..i + 6)) else {
                    return Err(shape());
                };
                if oh > 23 || om > 59 {
                    return Err(format!("{s:?} has an offset out of range"));
                }
                let v = oh as i64 * 60 + om as i64;
                if *sign == b'-' {
                    -v
                } else {
                    v
                }
            }
            [] => return Err(format!("{s:?} has no time zone offset (add Z or ±hh:mm)")),
            _ => return Err(shape()),
        };
        if !(1..=12).contains(&mo)
            || d == 0
            || d > days_in_month(y as i64, mo)
            || h > 23
            || mi > 59
            || sec > 59
        {
            return Err(format!("{s:?} is not a real date and time"));
        }
        let local = days_from_civil(y as i64, mo, d) * MS_PER_DAY
            + (h as i64 * 3600 + mi as i64 * 60 + sec as i64) * 1000
            + ms as i64;
        let utc = Millis(local - offset_min * 60_000);
        if !(Millis::MIN..=Millis::MAX).contains(&utc) {
            return Err(format!(
                "{s:?} is outside 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999Z"
            ));
        }
        Ok(utc)
    }

    /// The calendar month (UTC) this instant falls in.
    pub fn month(self) -> Month {
        let (y, m, _) = civil_from_days(self.0.div_euclid(MS_PER_DAY));
        Month::new(y as u16, m as u8)
    }

    /// If this instant lies near the start of a UTC month — from 14 hours before to 12
    /// hours after, the range of every time zone's offset — the start of its 15-minute
    /// bucket. Clicks are also counted per such bucket, so that months in any time zone
    /// can be derived from UTC months (see `report::Report::from_totals_with_offset`).
    pub fn edge_bucket(self) -> Option<Millis> {
        const HOUR: i64 = 3_600_000;
        let start = self.month().start().0;
        let next = self.month().next().start().0;
        let near = self.0 < start + 12 * HOUR || self.0 >= next - 14 * HOUR;
        near.then(|| Millis(self.0 - self.0.rem_euclid(EDGE_BUCKET_MS)))
    }

    /// The instant shifted by a number of minutes (for local-time views).
    pub fn plus_minutes(self, minutes: i64) -> Millis {
        Millis(self.0 + minutes * 60_000)
    }
}

impl fmt::Display for Millis {
    /// RFC 3339 in UTC with milliseconds: `2026-03-01T09:00:05.250Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let rem = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (h, mi, s, ms) = (
            rem / 3_600_000,
            rem / 60_000 % 60,
            rem / 1000 % 60,
            rem % 1000,
        );
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

/// The width of a month-edge bucket: 15 minutes, the granularity of every UTC offset.
pub const EDGE_BUCKET_MS: i64 = 15 * 60_000;

/// A calendar month, `YYYY-MM`; orders chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Month(u16, u8);

impl Month {
    /// A month; `month` is 1..=12.
    pub fn new(year: u16, month: u8) -> Month {
        Month(year, month)
    }
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let (y, m) = (y.parse().ok()?, m.parse().ok()?);
        (1..=12).contains(&m).then_some(Month(y, m))
    }
    /// Its first instant, in UTC.
    pub fn start(self) -> Millis {
        Millis(days_from_civil(self.0 as i64, self.1 as u32, 1) * MS_PER_DAY)
    }
    /// The month after.
    pub fn next(self) -> Month {
        if self.1 == 12 {
            Month(self.0 + 1, 1)
        } else {
            Month(self.0, self.1 + 1)
        }
    }
    /// The year.
    pub fn year(self) -> u16 {
        self.0
    }
    /// The month of the year, 1..=12.
    pub fn month(self) -> u8 {
        self.1
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_examples() {
        assert_eq!(Millis::parse("1970-01-01T00:00:00Z"), Ok(Millis(0)));
        assert_eq!(Millis::parse("1970-01-01T00:00:01.5Z"), Ok(Millis(1500)));
        let a = Millis::parse("2026-03-01T11:00:05.250+02:00").unwrap();
        let b = Millis::parse("2026-03-01T09:00:05.250Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_string(), "2026-03-01T09:00:05.250Z");
        assert_eq!(Millis::parse("2026-03-01 09:00:05.2509z"), Ok(b));
        assert_eq!(Millis::parse("2026-03-01t09:00:05.250-00:00"), Ok(b));
        assert_eq!(
            Millis::parse("9999-12-31T23:59:59.999999Z"),
            Ok(Millis::MAX)
        );
        assert_eq!(
            Millis::parse("2024-02-29T00:00:00Z").unwrap().month(),
            Month::new(2024, 2)
        );
        assert_eq!(
            Millis::parse("2026-04-01T01:00:00+03:00").unwrap().month(),
            Month::new(2026, 3)
        );
    }

    #[test]
    fn rejects_what_the_spec_rejects() {
        for bad in [
            "2026-03-01T09:00Z",
            "2026-02-29T09:00:00Z",
            "2026-03-01T24:00:00Z",
            "2026-03-01T23:60:00Z",
            "2026-03-01T23:59:60Z",
            "2026-03-01T09:00:00+01:60",
            "2026-03-01T09:00:00.Z",
            "2026-03-01T09:00:00+0100",
            "2026-03-01X09:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:30:00+01:00",
            "+2026-03-01T09:00:00Z",
            "2026-13-01T09:00:00Z",
            "2026-03-01T09:00:00ZZ",
            "２026-03-01T09:00:00Z",
            "",
        ] {
            assert!(Millis::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_missing_offset_is_named() {
        for bad in ["2026-03-01T09:00:00", "2026-03-01T09:00:00.250"] {
            let e = Millis::parse(bad).unwrap_err();
            assert!(e.contains("no time zone offset"), "{bad}: {e}");
        }
    }

    #[test]
    fn edge_buckets_cover_every_offset() {
        let at = |s: &str| Millis::parse(s).unwrap();
        assert_eq!(
            at("2026-03-31T10:00:00Z").edge_bucket(),
            Some(at("2026-03-31T10:00:00Z"))
        );
        assert_eq!(at("2026-03-31T09:59:59.999Z").edge_bucket(), None);
        assert_eq!(
            at("2026-03-31T23:59:00Z").edge_bucket(),
            Some(at("2026-03-31T23:45:00Z"))
        );
        assert_eq!(
            at("2026-04-01T11:59:59Z").edge_bucket(),
            Some(at("2026-04-01T11:45:00Z"))
        );
        assert_eq!(at("2026-04-01T12:00:00Z").edge_bucket(), None);
        assert_eq!(
            at("2026-12-31T20:07:00Z").edge_bucket(),
            Some(at("2026-12-31T20:00:00Z"))
        );
        assert_eq!(Month::new(2026, 12).next(), Month::new(2027, 1));
        assert_eq!(Month::new(2024, 2).start(), at("2024-02-01T00:00:00Z"));
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1, 0, 1, 59, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
