//! Insights (docs/rules.md, "Insights"): delivery latency, messages awaiting a final
//! receipt, and countries — kept, like every other figure, as additive counters that
//! ingest updates and a report reads.
//!
//! A message's share of the counters is a pure function of its stored record
//! ([`message_counters`]): when a message is recorded its share is added, and when its
//! status changes the old share is taken away and the new one added. `verify` recounts
//! the same function over every stored message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::{CampaignCounter, MessageRecord};
use crate::report::CampaignCounters;
use crate::status::Status;
use crate::time::Millis;

/// The latency buckets' upper bounds in seconds, inclusive; a latency over the last
/// falls into the last.
pub const LATENCY_BOUNDS_S: [u32; 16] = [
    1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200, 604800,
];

/// The stale threshold when none is asked for, in hours.
pub const DEFAULT_STALE_AFTER_H: u32 = 72;

/// The libphonenumber metadata countries are decided by (the `phonenumber` crate's
/// version suffix).
pub const PHONE_METADATA_VERSION: &str = "9.0.33";

const MS_PER_HOUR: i64 = 3_600_000;

/// The index in [`LATENCY_BOUNDS_S`] of the bucket of a latency in milliseconds: the first
/// whose bound × 1000 ≥ it (negative latencies count as 0).
pub fn latency_bucket(latency_ms: i64) -> usize {
    let l = latency_ms.max(0);
    LATENCY_BOUNDS_S
        .iter()
        .position(|b| *b as i64 * 1000 >= l)
        .unwrap_or(LATENCY_BOUNDS_S.len() - 1)
}

/// The hour since the Unix epoch an instant falls in.
pub fn hour_of(at: Millis) -> i64 {
    at.0.div_euclid(MS_PER_HOUR)
}

/// The country of a recipient, as decided when its message was first recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Country {
    /// The country calling code; `None` when the number's leading digits are none.
    pub code: Option<u16>,
    /// libphonenumber's region: ISO 3166-1 alpha-2, `001` for a non-geographic code,
    /// `ZZ` for no calling code.
    pub region: String,
}

impl Country {
    /// The country of an E.164 number by the pinned libphonenumber metadata
    /// ([`PHONE_METADATA_VERSION`]): the region `getRegionCodeForNumber` gives, or the
    /// calling code's main region where it gives none.
    pub fn of(e164: &str) -> Country {
        // A forgotten person's token carries their country (crate::forget).
        if let Some(c) = crate::forget::token_country(e164) {
            return c;
        }
        let unknown = || Country {
            code: None,
            region: "ZZ".into(),
        };
        let db = &*phonenumber::metadata::DATABASE;
        let digits = e164.strip_prefix('+').unwrap_or(e164);
        // Calling codes are prefix-free: the first 1 to 3 digits that are one are it.
        let Some((code, regions)) = (1..=3.min(digits.len())).find_map(|n| {
            let code: u16 = digits.get(..n)?.parse().ok()?;
            db.region(&code).map(|r| (code, r))
        }) else {
            return unknown();
        };
        let region = match regions.as_slice() {
            // One region (or the non-geographic 001): no number pattern to match.
            [only] => (*only).to_owned(),
            _ => phonenumber::parse(None, e164)
                .ok()
                .and_then(|n| n.metadata(db).map(|m| m.id().to_owned()))
                .or_else(|| {
                    db.by_code(&code).and_then(|ms| {
                        ms.iter()
                            .find(|m| m.is_main_country_for_code())
                            .or(ms.first())
                            .map(|m| m.id().to_owned())
                    })
                })
                .unwrap_or_else(|| "ZZ".to_owned()),
        };
        Country {
            code: Some(code),
            region,
        }
    }

    /// The stable text of a counter name: `371:LV`, `-:ZZ`.
    pub fn key(&self) -> String {
        match self.code {
            Some(c) => format!("{c}:{}", self.region),
            None => format!("-:{}", self.region),
        }
    }

    /// The country a [`Country::key`] names.
    pub fn from_key(s: &str) -> Option<Country> {
        let (code, region) = s.split_once(':')?;
        if region.is_empty() || region.contains(':') {
            return None;
        }
        Some(Country {
            code: match code {
                "-" => None,
                c => Some(c.parse().ok()?),
            },
            region: region.to_owned(),
        })
    }
}

/// A message's share of its campaign's counters, all of them: its row, its segments, its
/// latency bucket (when delivered), its submit hour (while awaiting a final receipt), and
/// its country's row.
pub fn message_counters(m: &MessageRecord) -> Vec<(CampaignCounter, i64)> {
    let status = m.current();
    let mut out = vec![
        (CampaignCounter::Status(status), 1),
        (CampaignCounter::Segments, m.parts as i64),
        (CampaignCounter::Country(m.country.clone(), status), 1),
    ];
    match (status, &m.status) {
        (Status::Delivered, Some(k)) => out.push((
            CampaignCounter::Latency(latency_bucket(k.at.0 - m.at.0) as u8),
            1,
        )),
        (s, _) if s.phase() < 3 => out.push((CampaignCounter::Awaiting(hour_of(m.at)), 1)),
        _ => {}
    }
    out
}

/// The options a report is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightOptions {
    /// The moment ages are measured against.
    pub as_of: Millis,
    /// Messages waiting this many hours or more are stale (1 to 8 760).
    pub stale_after_h: u32,
}

impl InsightOptions {
    /// As of now, stale after the default 72 hours.
    pub fn now() -> InsightOptions {
        InsightOptions {
            as_of: Millis::now(),
            stale_after_h: DEFAULT_STALE_AFTER_H,
        }
    }

    /// Checks a stale threshold given by a user: an integer from 1 to 8 760.
    pub fn parse_stale_after(s: &str) -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(h) if (1..=8760).contains(&h) => Ok(h),
            _ => Err(format!(
                "stale_after_h: {s:?} is not a whole number of hours from 1 to 8760"
            )),
        }
    }
}

/// The `insights` object of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insights {
    pub delivery_latency: Latency,
    pub awaiting_receipt: Awaiting,
    pub by_country: Vec<CountryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Latency {
    pub messages: u64,
    pub p50_s: Option<u32>,
    pub p90_s: Option<u32>,
    pub p99_s: Option<u32>,
    pub histogram: Vec<LatencyBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LatencyBucket {
    pub le_s: u32,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Awaiting {
    /// RFC 3339, UTC, with milliseconds.
    pub as_of: String,
    pub stale_after_h: u32,
    pub messages: u64,
    pub stale: u64,
    pub by_age: Vec<AgeBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct AgeBucket {
    pub age: String,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CountryRow {
    /// The calling code as a string (`"371"`), `null` for none.
    pub country_code: Option<String>,
    pub region: String,
    pub total: u64,
    pub delivered: u64,
    pub sent: u64,
    pub queued: u64,
    pub undelivered: u64,
    pub errors: u64,
    pub other: u64,
    pub clicks: u64,
}

/// The waiting-age buckets: name and the smallest age in hours they hold, in order.
pub const AGE_BUCKETS: [(&str, i64); 5] = [
    ("under_1h", 0),
    ("1h_to_6h", 1),
    ("6h_to_24h", 6),
    ("24h_to_72h", 24),
    ("over_72h", 72),
];

/// The index in [`AGE_BUCKETS`] of an age in whole hours.
pub fn age_bucket(age_h: i64) -> usize {
    AGE_BUCKETS
        .iter()
        .rposition(|(_, from)| age_h >= *from)
        .unwrap_or(0)
}

fn n(v: i64) -> u64 {
    v.max(0) as u64
}

impl Insights {
    /// The insights of a campaign's counters. Costs O(latency buckets + waiting submit
    /// hours + countries).
    pub fn from_counters(c: &CampaignCounters, opts: InsightOptions) -> Insights {
        // Latency.
        let histogram: Vec<LatencyBucket> = c
            .latency
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0)
            .map(|(i, v)| LatencyBucket {
                le_s: LATENCY_BOUNDS_S[i],
                messages: n(*v),
            })
            .collect();
        let messages: u64 = histogram.iter().map(|b| b.messages).sum();
        let pct = |q: f64| {
            if messages == 0 {
                return None;
            }
            let k = (q * messages as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            histogram.iter().find_map(|b| {
                seen += b.messages;
                (seen >= k).then_some(b.le_s)
            })
        };
        let delivery_latency = Latency {
            messages,
            p50_s: pct(0.50),
            p90_s: pct(0.90),
            p99_s: pct(0.99),
            histogram,
        };
        // Awaiting.
        let now_h = hour_of(opts.as_of);
        let mut by_age = [0u64; 5];
        let (mut waiting, mut stale) = (0u64, 0u64);
        for (hour, v) in &c.awaiting {
            let v = n(*v);
            let age = (now_h - hour).max(0);
            by_age[age_bucket(age)] += v;
            waiting += v;
            if age >= opts.stale_after_h as i64 {
                stale += v;
            }
        }
        let awaiting_receipt = Awaiting {
            as_of: opts.as_of.to_string(),
            stale_after_h: opts.stale_after_h,
            messages: waiting,
            stale,
            by_age: AGE_BUCKETS
                .iter()
                .zip(by_age)
                .map(|((name, _), messages)| AgeBucket {
                    age: (*name).to_owned(),
                    messages,
                })
                .collect(),
        };
        // Countries.
        let mut rows: BTreeMap<&Country, CountryRow> = BTreeMap::new();
        for ((country, status), v) in &c.countries {
            let v = n(*v);
            if v == 0 {
                continue;
            }
            let r = rows.entry(country).or_insert_with(|| empty_row(country));
            r.total += v;
            match status {
                Status::Delivered => r.delivered += v,
                Status::Sent => r.sent += v,
                Status::Queued => r.queued += v,
                Status::Enroute => r.undelivered += v,
                Status::Unknown => r.other += v,
                Status::FailedRejected | Status::FailedExpired | Status::FailedRouting => {
                    r.errors += v
                }
            }
        }
        for (country, v) in &c.country_clicks {
            let v = n(*v);
            if v == 0 {
                continue;
            }
            rows.entry(country)
                .or_insert_with(|| empty_row(country))
                .clicks += v;
        }
        let mut by_country: Vec<CountryRow> = rows.into_values().collect();
        by_country.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| match (&a.country_code, &b.country_code) {
                    (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.region.as_bytes().cmp(b.region.as_bytes()))
        });
        Insights {
            delivery_latency,
            awaiting_receipt,
            by_country,
        }
    }
}

fn empty_row(k: &Country) -> CountryRow {
    CountryRow {
        country_code: k.code.map(|c| c.to_string()),
        region: k.region.clone(),
        total: 0,
        delivered: 0,
        sent: 0,
        queued: 0,
        undelivered: 0,
        errors: 0,
        other: 0,
        clicks: 0,
    }
}

/// Which countries a drill-down shows: a region (`KZ`), a calling code (`+882`), or one
/// row exactly (`+882/001`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountryFilter {
    /// Every message whose region is this one.
    Region(String),
    /// Every message whose calling code is this one.
    Code(u16),
    /// One row of `by_country`.
    Exact(Country),
}

impl CountryFilter {
    /// Reads `KZ`, `+882` or `+882/001` (a `-` code is "no calling code": `-/ZZ`).
    pub fn parse(s: &str) -> Result<CountryFilter, String> {
        let bad = || {
            format!("country: {s:?} is not a region (KZ), a calling code (+882) or both (+882/001)")
        };
        // libphonenumber's regions: two letters, or 001 (non-geographic).
        let region_ok =
            |r: &str| (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic())) || r == "001";
        let code = |c: &str| -> Result<Option<u16>, String> {
            match c {
                "-" => Ok(None),
                c => match c.strip_prefix('+').map(str::parse::<u16>) {
                    Some(Ok(n)) if (1..=999).contains(&n) => Ok(Some(n)),
                    _ => Err(bad()),
                },
            }
        };
        match s.split_once('/') {
            Some((c, r)) if region_ok(r) => Ok(CountryFilter::Exact(Country {
                code: code(c)?,
                region: r.to_ascii_uppercase(),
            })),
            Some(_) => Err(bad()),
            None if s.starts_with('+') => code(s)?.map(CountryFilter::Code).ok_or_else(bad),
            None if region_ok(s) => Ok(CountryFilter::Region(s.to_ascii_uppercase())),
            None => Err(bad()),
        }
    }

    /// Whether a message of this country is shown.
    pub fn matches(&self, c: &Country) -> bool {
        match self {
            CountryFilter::Region(r) => c.region == *r,
            CountryFilter::Code(n) => c.code == Some(*n),
            CountryFilter::Exact(x) => c == x,
        }
    }
}

/// The insight filters of the drill-down (docs/rules.md, "Recipients drill-down"):
/// messages awaiting a final receipt of an age range, and countries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientFilter {
    /// Only messages awaiting a final receipt (`queued`, `sent`, `undelivered`) whose age
    /// in whole hours as of `as_of` is in `min_age_h..=max_age_h`.
    pub waiting: Option<WaitingFilter>,
    /// Only messages of these countries.
    pub country: Option<CountryFilter>,
}

impl RecipientFilter {
    /// The filters as a user gives them (the CLI's `--stale`, `--age`, `--country`, the
    /// API's `?stale=true`, `?age=`, `?country=`), with ages as `opts` says; a bad age
    /// bucket or country is an error naming the parameter.
    pub fn from_options(
        stale: bool,
        age: Option<&str>,
        country: Option<&str>,
        opts: InsightOptions,
    ) -> Result<RecipientFilter, String> {
        let stale = stale.then(|| WaitingFilter::stale(opts));
        let age = age.map(|b| WaitingFilter::age(opts.as_of, b)).transpose()?;
        Ok(RecipientFilter {
            waiting: match (stale, age) {
                (Some(a), Some(b)) => Some(a.and(b)),
                (a, b) => a.or(b),
            },
            country: country.map(CountryFilter::parse).transpose()?,
        })
    }
}

/// Waiting messages of an age range (see [`RecipientFilter::waiting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingFilter {
    pub as_of: Millis,
    pub min_age_h: i64,
    /// `None`: no upper bound.
    pub max_age_h: Option<i64>,
}

impl WaitingFilter {
    /// The stale ones: age ≥ `stale_after_h`.
    pub fn stale(opts: InsightOptions) -> WaitingFilter {
        WaitingFilter {
            as_of: opts.as_of,
            min_age_h: opts.stale_after_h as i64,
            max_age_h: None,
        }
    }

    /// One of [`AGE_BUCKETS`], by name.
    pub fn age(as_of: Millis, bucket: &str) -> Result<WaitingFilter, String> {
        let i = AGE_BUCKETS
            .iter()
            .position(|(name, _)| *name == bucket)
            .ok_or_else(|| {
                let names: Vec<&str> = AGE_BUCKETS.iter().map(|(n, _)| *n).collect();
                format!("age: {bucket:?} is not one of {}", names.join(", "))
            })?;
        Ok(WaitingFilter {
            as_of,
            min_age_h: AGE_BUCKETS[i].1,
            max_age_h: AGE_BUCKETS.get(i + 1).map(|(_, from)| from - 1),
        })
    }

    /// Both ranges at once.
    pub fn and(self, other: WaitingFilter) -> WaitingFilter {
        WaitingFilter {
            as_of: self.as_of,
            min_age_h: self.min_age_h.max(other.min_age_h),
            max_age_h: match (self.max_age_h, other.max_age_h) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// The submit times these ages mean, as a half-open range `[from, to)` of
    /// milliseconds (`None`: unbounded). Age 0 includes every message submitted after
    /// `as_of`.
    pub fn submitted(&self) -> (Option<i64>, Option<i64>) {
        let now_h = hour_of(self.as_of);
        let to = (self.min_age_h > 0).then(|| (now_h - self.min_age_h + 1) * MS_PER_HOUR);
        let from = self.max_age_h.map(|max| (now_h - max) * MS_PER_HOUR);
        (from, to)
    }
}

/// What a store's drill-down read must select: messages whose current status is one of
/// `statuses`, submitted within `submitted` (`[from, to)`, `None` unbounded), of the
/// countries `country` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFilter {
    pub statuses: Vec<Status>,
    pub submitted: (Option<i64>, Option<i64>),
    pub country: Option<CountryFilter>,
}

impl MessageFilter {
    /// The filter of a report row (all statuses without one) and the insight filters.
    pub fn new(row: Option<crate::status::Row>, f: &RecipientFilter) -> MessageFilter {
        let mut statuses: Vec<Status> = row.map_or(Status::ALL.to_vec(), |r| r.statuses().to_vec());
        let mut submitted = (None, None);
        if let Some(w) = &f.waiting {
            statuses.retain(|s| s.phase() < 3);
            if w.max_age_h.is_some_and(|max| max < w.min_age_h) {
                statuses.clear();
            }
            submitted = w.submitted();
        }
        MessageFilter {
            statuses,
            submitted,
            country: f.country.clone(),
        }
    }

    /// Whether a stored message is selected.
    pub fn matches(&self, m: &MessageRecord) -> bool {
        self.statuses.contains(&m.current())
            && self.submitted.0.is_none_or(|from| m.at.0 >= from)
            && self.submitted.1.is_none_or(|to| m.at.0 < to)
            && self.country.as_ref().is_none_or(|c| c.matches(&m.country))
    }

    /// Whether it selects by more than status.
    pub fn is_by_status_only(&self) -> bool {
        self.submitted == (None, None) && self.country.is_none()
    }
}

/// Upgrading a store written before insights (store format 1): its stored messages lack
/// a country and its campaigns the insight counters. A backend's upgrade reads every
/// stored message in the old form, stores [`v1::MessageState::upgrade`]'s answer, and
/// adds [`v1::added_counters`] of every message and [`v1::added_click_counters`] of every
/// stored click to the campaign's counters, all in one atomic step with the new format
/// marker. The countries of upgraded messages are decided at upgrade time.
pub mod v1 {
    use serde::Deserialize;

    use crate::engine::{self, CampaignCounter, ClickRecord, MessageRecord};
    use crate::status::StatusKey;
    use crate::time::Millis;

    use super::{message_counters, Country};

    /// A message record as format 1 stored it.
    #[derive(Debug, Clone, Deserialize)]
    #[allow(missing_docs)]
    pub struct Record {
        pub message_id: String,
        pub campaign_id: String,
        pub recipient: String,
        pub parts: u8,
        pub at: Millis,
        pub status: Option<StatusKey>,
    }

    impl Record {
        /// The record with its country decided now.
        pub fn upgrade(self) -> MessageRecord {
            MessageRecord {
                country: Country::of(&self.recipient),
                message_id: self.message_id,
                campaign_id: self.campaign_id,
                recipient: self.recipient,
                parts: self.parts,
                at: self.at,
                status: self.status,
            }
        }
    }

    /// A per-message state as format 1 stored it.
    #[derive(Debug, Clone, Deserialize)]
    #[allow(missing_docs)]
    pub struct MessageState {
        pub record: Option<Record>,
        pub pending: Option<StatusKey>,
        pub seen: Vec<StatusKey>,
    }

    impl MessageState {
        /// The state in the current form.
        pub fn upgrade(self) -> engine::MessageState {
            engine::MessageState {
                record: self.record.map(Record::upgrade),
                pending: self.pending,
                seen: self.seen,
                undated: None,
            }
        }
    }

    /// The counters format 2 keeps for a message that format 1 did not: all of
    /// [`message_counters`] but its row and segments.
    pub fn added_counters(m: &MessageRecord) -> Vec<(CampaignCounter, i64)> {
        message_counters(m)
            .into_iter()
            .filter(|(c, _)| !matches!(c, CampaignCounter::Status(_) | CampaignCounter::Segments))
            .collect()
    }

    /// The counter format 2 keeps for a stored click that format 1 did not.
    pub fn added_click_counters(k: &ClickRecord) -> Option<(CampaignCounter, i64)> {
        (!k.bot).then(|| (CampaignCounter::CountryClicks(Country::of(&k.recipient)), 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_by_inclusive_bound() {
        assert_eq!(latency_bucket(-5), 0);
        assert_eq!(latency_bucket(1000), 0, "1 s is in the 1 s bucket");
        assert_eq!(latency_bucket(1001), 1);
        assert_eq!(latency_bucket(299_000), 7, "299 s: the 300 s bucket");
        assert_eq!(latency_bucket(604_800_000), 15);
        assert_eq!(latency_bucket(8 * 86_400_000), 15, "over 7 days: the last");
    }

    #[test]
    fn age_buckets() {
        let name = |h| AGE_BUCKETS[age_bucket(h)].0;
        assert_eq!(name(0), "under_1h");
        assert_eq!(name(1), "1h_to_6h");
        assert_eq!(name(5), "1h_to_6h");
        assert_eq!(name(6), "6h_to_24h");
        assert_eq!(name(23), "6h_to_24h");
        assert_eq!(name(24), "24h_to_72h");
        assert_eq!(name(71), "24h_to_72h");
        assert_eq!(name(72), "over_72h");
    }

    #[test]
    fn countries_by_libphonenumber() {
        let c = |n: &str| {
            let c = Country::of(n);
            (c.code, c.region)
        };
        assert_eq!(c("+37120000001"), (Some(371), "LV".into()));
        assert_eq!(c("+12025550123"), (Some(1), "US".into()));
        assert_eq!(c("+14165550123"), (Some(1), "CA".into()));
        assert_eq!(c("+79161234567"), (Some(7), "RU".into()));
        assert_eq!(c("+77011234567"), (Some(7), "KZ".into()));
        assert_eq!(c("+8821234567"), (Some(882), "001".into()));
        assert_eq!(c("+9991234567890"), (None, "ZZ".into()));
        assert_eq!(c("+4915112345678"), (Some(49), "DE".into()));
    }

    #[test]
    fn country_filters() {
        let lv = Country::of("+37120000001");
        assert!(CountryFilter::parse("LV").unwrap().matches(&lv));
        assert!(CountryFilter::parse("lv").unwrap().matches(&lv));
        assert!(CountryFilter::parse("+371").unwrap().matches(&lv));
        assert!(CountryFilter::parse("+371/LV").unwrap().matches(&lv));
        assert!(!CountryFilter::parse("+371/EE").unwrap().matches(&lv));
        assert!(!CountryFilter::parse("+7").unwrap().matches(&lv));
        let none = Country::of("+9991234567890");
        assert!(CountryFilter::parse("-/ZZ").unwrap().matches(&none));
        assert!(CountryFilter::parse("ZZ").unwrap().matches(&none));
        for bad in ["", "+", "+0", "+1000", "371", "LVA1", "+371/", "x/y/z"] {
            assert!(CountryFilter::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn waiting_ages_as_submit_times() {
        let as_of = Millis::parse("2026-03-10T00:00:00Z").unwrap();
        let h = |s: &str| Millis::parse(s).unwrap().0;
        // 24h_to_72h: submitted from 72 h before the hour of as_of, up to 23 h before it.
        let w = WaitingFilter::age(as_of, "24h_to_72h").unwrap();
        assert_eq!(
            w.submitted(),
            (
                Some(h("2026-03-07T01:00:00Z")),
                Some(h("2026-03-09T01:00:00Z"))
            )
        );
        // under_1h: the hour of as_of and anything later.
        let w = WaitingFilter::age(as_of, "under_1h").unwrap();
        assert_eq!(w.submitted(), (Some(h("2026-03-10T00:00:00Z")), None));
        let stale = WaitingFilter::stale(InsightOptions {
            as_of,
            stale_after_h: 24,
        });
        assert_eq!(stale.submitted(), (None, Some(h("2026-03-09T01:00:00Z"))));
        assert!(WaitingFilter::age(as_of, "2h").is_err());
    }

    #[test]
    fn country_keys_round_trip() {
        for k in [Country::of("+37120000001"), Country::of("+9991234567890")] {
            assert_eq!(Country::from_key(&k.key()), Some(k));
        }
    }
}
