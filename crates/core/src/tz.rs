//! Time zones for `clicks_by_month` (`?tz=Area/City`, `report --tz`): IANA names, from
//! the time zone database bundled into the binary (jiff's copy), so results do not
//! depend on the machine.

use crate::time::Millis;

/// A time zone by its IANA name (`Europe/Riga`, `America/New_York`, `UTC`; case is
/// ignored).
#[derive(Debug, Clone)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone named `name`; an unknown name is an error that says so.
    pub fn get(name: &str) -> Result<Zone, String> {
        if name.is_empty() || name.len() > 128 {
            return Err(format!(
                "unknown time zone {name:?}; use an IANA name such as Europe/Riga"
            ));
        }
        jiff::tz::TimeZone::get(name).map(Zone).map_err(|_| {
            format!("unknown time zone {name:?}; use an IANA name such as Europe/Riga")
        })
    }

    /// The zone's IANA name as the time zone database spells it (`Europe/Riga`).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// Instant `t` as this zone's wall-clock time, `YYYY-MM-DD hh:mm:ss`.
    pub fn local_time(&self, t: Millis) -> String {
        match jiff::Timestamp::from_millisecond(t.0) {
            Ok(ts) => ts
                .to_zoned(self.0.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            Err(_) => t.to_string(),
        }
    }

    /// The zone's UTC offset at instant `t`, in minutes.
    pub fn offset_minutes(&self, t: Millis) -> i64 {
        match jiff::Timestamp::from_millisecond(t.0) {
            Ok(ts) => i64::from(self.0.to_offset(ts).seconds()) / 60,
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        let riga = Zone::get("Europe/Riga").unwrap();
        let winter = Millis::parse("2026-01-15T12:00:00Z").unwrap();
        let summer = Millis::parse("2026-07-15T12:00:00Z").unwrap();
        assert_eq!(riga.offset_minutes(winter), 120);
        assert_eq!(riga.offset_minutes(summer), 180);
        assert_eq!(
            Zone::get("Asia/Kolkata").unwrap().offset_minutes(summer),
            330
        );
        assert_eq!(Zone::get("UTC").unwrap().offset_minutes(summer), 0);
        assert_eq!(
            Zone::get("america/new_york")
                .unwrap()
                .offset_minutes(winter),
            -300
        );
        assert_eq!(riga.name(), "Europe/Riga");
        assert_eq!(Zone::get("europe/riga").unwrap().name(), "Europe/Riga");
        assert_eq!(riga.local_time(winter), "2026-01-15 14:00:00");
        assert_eq!(
            Zone::get("UTC").unwrap().local_time(summer),
            "2026-07-15 12:00:00"
        );
        assert!(Zone::get("Mars/Olympus").is_err());
        assert!(Zone::get("").is_err());
        assert!(Zone::get("../../etc/passwd").is_err());
    }
}
