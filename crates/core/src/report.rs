//! The campaign report (docs/rules.md, "The report"), built from stored totals; the campaign list; the
//! recipients drill-down; and `verify`, which recounts totals from per-message state.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::engine::{CampaignCounter, CampaignDef, ClickRecord, MessageRecord, Quality};
use crate::insights::{message_counters, Country, InsightOptions, Insights};
use crate::status::{Row, Status};
use crate::time::{Millis, Month};

/// A campaign's counters, as ingest keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignCounters {
    /// Messages per current status, indexed by rank.
    pub by_status: [i64; 8],
    pub segments: i64,
    pub human_clicks: i64,
    pub bot_clicks: i64,
    /// link_id → (human clicks, unique clicks).
    pub links: BTreeMap<String, (i64, i64)>,
    /// Human clicks per UTC month.
    pub months: BTreeMap<Month, i64>,
    /// Human clicks per 15-minute bucket near a month's start.
    pub edges: BTreeMap<Millis, i64>,
    /// Delivered messages per latency bucket (insights).
    pub latency: [i64; 16],
    /// Messages awaiting a final receipt per submit hour.
    pub awaiting: BTreeMap<i64, i64>,
    /// Messages per (country, current status).
    pub countries: BTreeMap<(Country, Status), i64>,
    /// Human clicks per clicking recipient's country.
    pub country_clicks: BTreeMap<Country, i64>,
    /// Data-quality counters of the campaign's gateway callbacks (docs/rules.md, "Data
    /// quality"): never in the report, and not compared by `verify` (no stored message
    /// or click can recount them).
    pub quality: BTreeMap<Quality, i64>,
}

impl CampaignCounters {
    /// Adds a stored counter's value.
    pub fn add(&mut self, counter: &CampaignCounter, value: i64) {
        match counter {
            CampaignCounter::Status(s) => self.by_status[s.rank() as usize] += value,
            CampaignCounter::Segments => self.segments += value,
            CampaignCounter::HumanClicks => self.human_clicks += value,
            CampaignCounter::BotClicks => self.bot_clicks += value,
            CampaignCounter::LinkClicks(l) => self.links.entry(l.clone()).or_default().0 += value,
            CampaignCounter::LinkUnique(l) => self.links.entry(l.clone()).or_default().1 += value,
            CampaignCounter::MonthClicks(m) => *self.months.entry(*m).or_default() += value,
            CampaignCounter::EdgeClicks(b) => *self.edges.entry(*b).or_default() += value,
            CampaignCounter::Latency(i) => self.latency[(*i as usize).min(15)] += value,
            CampaignCounter::Awaiting(h) => *self.awaiting.entry(*h).or_default() += value,
            CampaignCounter::Country(c, s) => {
                *self.countries.entry((c.clone(), *s)).or_default() += value
            }
            CampaignCounter::CountryClicks(c) => {
                *self.country_clicks.entry(c.clone()).or_default() += value
            }
            CampaignCounter::Quality(q) => *self.quality.entry(*q).or_default() += value,
        }
    }

    /// Messages counted in a row.
    pub fn row(&self, row: Row) -> i64 {
        row.statuses()
            .iter()
            .map(|s| self.by_status[s.rank() as usize])
            .sum()
    }

    /// All messages.
    pub fn total(&self) -> i64 {
        self.by_status.iter().sum()
    }

    /// The same counters without zero entries, for comparison.
    fn normalized(&self) -> CampaignCounters {
        let mut c = self.clone();
        c.links.retain(|_, v| *v != (0, 0));
        c.months.retain(|_, v| *v != 0);
        c.edges.retain(|_, v| *v != 0);
        c.awaiting.retain(|_, v| *v != 0);
        c.countries.retain(|_, v| *v != 0);
        c.country_clicks.retain(|_, v| *v != 0);
        c.quality.clear();
        c
    }
}

/// A contact list as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTotals {
    pub list_id: String,
    /// The name the latest campaign event gave it.
    pub name: String,
    pub subscribers: i64,
}

/// Everything a report is made from: a campaign's definition, its list, its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignTotals {
    pub def: CampaignDef,
    pub list: Option<ListTotals>,
    pub counters: CampaignCounters,
}

/// The report of docs/rules.md ("The report"), field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub campaign_id: String,
    pub name: String,
    pub contact_list: Option<ReportList>,
    pub delivery: Delivery,
    pub links: LinkStats,
    pub insights: Insights,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ReportList {
    pub list_id: String,
    pub name: String,
    pub subscribers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Delivery {
    pub total: u64,
    pub delivered: u64,
    pub sent: u64,
    pub queued: u64,
    pub undelivered: u64,
    pub errors: Errors,
    pub other: u64,
    pub segments: u64,
}

impl Delivery {
    /// The count of one report row.
    pub fn row(&self, row: Row) -> u64 {
        match row {
            Row::Delivered => self.delivered,
            Row::Sent => self.sent,
            Row::Queued => self.queued,
            Row::Undelivered => self.undelivered,
            Row::Errors => self.errors.total,
            Row::Routing => self.errors.routing,
            Row::Expired => self.errors.expired,
            Row::Rejected => self.errors.rejected,
            Row::Other => self.other,
        }
    }
}

/// `part` as a share of `total` with one decimal (`40.0%`), or `—` when the total is 0:
/// how the CLI table and the dashboard write a share.
pub fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        "—".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / total as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Errors {
    pub total: u64,
    pub routing: u64,
    pub expired: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LinkStats {
    pub link_tracking: bool,
    pub total_clicks: u64,
    pub unique_clicks: u64,
    pub links_clicked: u64,
    pub bot_clicks: u64,
    pub most_popular: Option<MostPopular>,
    /// `total_clicks / delivered`; `None` when nothing is delivered.
    pub click_to_open_rate: Option<f64>,
    pub per_link: Vec<LinkRow>,
    pub clicks_by_month: Vec<MonthRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MostPopular {
    pub link_id: String,
    pub url: String,
    pub unique_clicks: u64,
    pub clicks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LinkRow {
    pub link_id: String,
    pub url: String,
    pub clicks: u64,
    pub unique_clicks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MonthRow {
    pub month: String,
    pub clicks: u64,
}

fn n(v: i64) -> u64 {
    v.max(0) as u64
}

impl Report {
    /// The report of a campaign from its stored totals, months in UTC. Costs
    /// O(links + months).
    pub fn from_totals(t: &CampaignTotals) -> Report {
        Report::build(t, &|_| 0, InsightOptions::now())
    }

    /// [`Report::build`] as of now.
    pub fn from_totals_with_offset(t: &CampaignTotals, offset: &dyn Fn(Millis) -> i64) -> Report {
        Report::build(t, offset, InsightOptions::now())
    }

    /// The report with `clicks_by_month` in local time, where `offset(t)` is the UTC
    /// offset in minutes at instant `t` (a multiple of 15, from −14 h to +14 h), as a
    /// time zone database gives it, and insights answered as `opts` says. Costs
    /// O(links + months × 104 + insight buckets): only the clicks of the 15-minute
    /// buckets near each month's start can change month.
    pub fn build(
        t: &CampaignTotals,
        offset: &dyn Fn(Millis) -> i64,
        opts: InsightOptions,
    ) -> Report {
        let c = &t.counters;
        let mut months = c.months.clone();
        for (bucket, n) in &c.edges {
            let (utc, local) = (bucket.month(), bucket.plus_minutes(offset(*bucket)).month());
            if utc != local {
                *months.entry(utc).or_default() -= n;
                *months.entry(local).or_default() += n;
            }
        }
        let delivered = n(c.row(Row::Delivered));
        let per_link: Vec<LinkRow> = t
            .def
            .links
            .iter()
            .map(|(id, url)| {
                let (clicks, unique) = c.links.get(id).copied().unwrap_or((0, 0));
                LinkRow {
                    link_id: id.clone(),
                    url: url.clone(),
                    clicks: n(clicks),
                    unique_clicks: n(unique),
                }
            })
            .collect();
        let total_clicks = n(c.human_clicks);
        // Most unique clicks, then most clicks, then the smallest link_id: per_link is in
        // link_id order, so the first maximum wins ties.
        let most_popular = if total_clicks == 0 {
            None
        } else {
            per_link
                .iter()
                .filter(|l| l.clicks > 0)
                .fold(None::<&LinkRow>, |best, l| match best {
                    Some(b) if (b.unique_clicks, b.clicks) >= (l.unique_clicks, l.clicks) => {
                        Some(b)
                    }
                    _ => Some(l),
                })
                .map(|l| MostPopular {
                    link_id: l.link_id.clone(),
                    url: l.url.clone(),
                    unique_clicks: l.unique_clicks,
                    clicks: l.clicks,
                })
        };
        Report {
            campaign_id: t.def.campaign_id.clone(),
            name: t.def.name.clone(),
            contact_list: t.list.as_ref().map(|l| ReportList {
                list_id: l.list_id.clone(),
                name: l.name.clone(),
                subscribers: n(l.subscribers),
            }),
            delivery: Delivery {
                total: n(c.total()),
                delivered,
                sent: n(c.row(Row::Sent)),
                queued: n(c.row(Row::Queued)),
                undelivered: n(c.row(Row::Undelivered)),
                errors: Errors {
                    total: n(c.row(Row::Errors)),
                    routing: n(c.row(Row::Routing)),
                    expired: n(c.row(Row::Expired)),
                    rejected: n(c.row(Row::Rejected)),
                },
                other: n(c.row(Row::Other)),
                segments: n(c.segments),
            },
            links: LinkStats {
                link_tracking: t.def.link_tracking,
                total_clicks,
                unique_clicks: per_link.iter().map(|l| l.unique_clicks).sum(),
                links_clicked: per_link.iter().filter(|l| l.clicks > 0).count() as u64,
                bot_clicks: n(c.bot_clicks),
                most_popular,
                click_to_open_rate: (delivered > 0).then(|| total_clicks as f64 / delivered as f64),
                per_link,
                clicks_by_month: months
                    .iter()
                    .filter(|(_, v)| **v > 0)
                    .map(|(m, v)| MonthRow {
                        month: m.to_string(),
                        clicks: n(*v),
                    })
                    .collect(),
            },
            insights: Insights::from_counters(c, opts),
        }
    }
}

/// One campaign in the campaign list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSummary {
    pub campaign_id: String,
    pub name: String,
    /// RFC 3339, UTC; `None` when no campaign event gave one.
    pub created_at: Option<String>,
    pub total: u64,
    pub delivered: u64,
    pub total_clicks: u64,
}

impl CampaignSummary {
    /// The summary of one campaign's totals.
    pub fn from_totals(t: &CampaignTotals) -> CampaignSummary {
        CampaignSummary {
            campaign_id: t.def.campaign_id.clone(),
            name: t.def.name.clone(),
            created_at: t.def.created_at.map(|m| m.to_string()),
            total: n(t.counters.total()),
            delivered: n(t.counters.row(Row::Delivered)),
            total_clicks: n(t.counters.human_clicks),
        }
    }
}

/// Orders campaigns newest first: by `created_at` descending (those without one last),
/// then by `campaign_id`.
pub fn sort_newest_first(list: &mut [CampaignTotals]) {
    list.sort_by(|a, b| {
        b.def
            .created_at
            .cmp(&a.def.created_at)
            .then_with(|| a.def.campaign_id.cmp(&b.def.campaign_id))
    });
}

/// One message in the recipients drill-down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRow {
    pub message_id: String,
    /// The phone number, or `forgotten` (docs/rules.md, "Forgetting a person").
    pub recipient: String,
    /// The report row the message is counted in.
    pub row: Row,
    pub status: Status,
    pub error_code: Option<String>,
    /// RFC 3339 time of the current status; `None` while no status event came.
    pub status_at: Option<String>,
    /// Human clicks of this recipient in this campaign.
    pub clicks: u64,
    pub parts: u8,
    /// RFC 3339 time the message was submitted.
    pub submitted_at: String,
}

impl RecipientRow {
    /// The row of a stored message and its recipient's click count.
    pub fn new(m: &MessageRecord, clicks: i64) -> RecipientRow {
        RecipientRow {
            message_id: m.message_id.clone(),
            recipient: crate::forget::shown(&m.recipient).to_owned(),
            row: m.current().row(),
            status: m.current(),
            error_code: m.status.as_ref().and_then(|k| k.error_code.clone()),
            status_at: m.status.as_ref().map(|k| k.at.to_string()),
            clicks: n(clicks),
            parts: m.parts,
            submitted_at: m.at.to_string(),
        }
    }
}

/// A page of the drill-down query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientQuery {
    /// Only messages counted in this row.
    pub row: Option<Row>,
    /// Only messages whose `message_id` sorts after this one (the previous page's cursor).
    pub after: Option<String>,
    /// At most this many, 1..=10 000.
    pub limit: usize,
}

impl Default for RecipientQuery {
    fn default() -> Self {
        RecipientQuery {
            row: None,
            after: None,
            limit: 1000,
        }
    }
}

/// One page of recipients, by `message_id` in byte order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientPage {
    pub items: Vec<RecipientRow>,
    /// The cursor of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Totals recounted from per-message state, clicks and contacts, for `verify`.
#[derive(Debug, Default)]
pub struct Recount {
    /// campaign_id → counters.
    pub campaigns: BTreeMap<String, CampaignCounters>,
    /// list_id → contacts.
    pub subscribers: BTreeMap<String, i64>,
    unique: HashSet<(String, String, String)>,
}

impl Recount {
    /// Counts one stored message.
    pub fn message(&mut self, m: &MessageRecord) {
        let c = self.campaigns.entry(m.campaign_id.clone()).or_default();
        for (counter, v) in message_counters(m) {
            c.add(&counter, v);
        }
    }

    /// Counts one stored click.
    pub fn click(&mut self, k: &ClickRecord) {
        let c = self.campaigns.entry(k.campaign_id.clone()).or_default();
        if k.bot {
            c.add(&CampaignCounter::BotClicks, 1);
            return;
        }
        c.add(&CampaignCounter::HumanClicks, 1);
        c.add(&CampaignCounter::LinkClicks(k.link_id.clone()), 1);
        c.add(&CampaignCounter::MonthClicks(k.at.month()), 1);
        if let Some(b) = k.at.edge_bucket() {
            c.add(&CampaignCounter::EdgeClicks(b), 1);
        }
        c.add(
            &CampaignCounter::CountryClicks(Country::of(&k.recipient)),
            1,
        );
        if self.unique.insert((
            k.campaign_id.clone(),
            k.link_id.clone(),
            k.recipient.clone(),
        )) {
            c.add(&CampaignCounter::LinkUnique(k.link_id.clone()), 1);
        }
    }

    /// Counts one stored contact of a list.
    pub fn contact(&mut self, list_id: &str) {
        *self.subscribers.entry(list_id.to_owned()).or_default() += 1;
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub campaigns: u64,
    pub messages: u64,
    /// One sentence per disagreement; empty when all agree.
    pub differences: Vec<String>,
}

/// Compares stored totals with a recount and names each difference.
pub fn compare(stored: &[CampaignTotals], recount: &Recount) -> VerifyReport {
    let mut out = VerifyReport {
        campaigns: stored.len() as u64,
        ..Default::default()
    };
    let empty = CampaignCounters::default();
    let mut lists_seen = HashSet::new();
    for t in stored {
        let id = &t.def.campaign_id;
        let got = t.counters.normalized();
        let want = recount.campaigns.get(id).unwrap_or(&empty).normalized();
        out.messages += n(want.total());
        let mut diff = |what: String, stored: i64, counted: i64| {
            if stored != counted {
                out.differences.push(format!(
                    "campaign {id:?}: {what} is {stored} in the stored totals but {counted} recounted"
                ));
            }
        };
        for s in Status::ALL {
            let r = s.rank() as usize;
            diff(
                format!("messages with status {s}"),
                got.by_status[r],
                want.by_status[r],
            );
        }
        diff("segments".into(), got.segments, want.segments);
        diff("human clicks".into(), got.human_clicks, want.human_clicks);
        diff("bot clicks".into(), got.bot_clicks, want.bot_clicks);
        let links: std::collections::BTreeSet<&String> =
            got.links.keys().chain(want.links.keys()).collect();
        for l in links {
            let g = got.links.get(l).copied().unwrap_or_default();
            let w = want.links.get(l).copied().unwrap_or_default();
            diff(format!("clicks on link {l:?}"), g.0, w.0);
            diff(format!("unique clicks on link {l:?}"), g.1, w.1);
        }
        let months: std::collections::BTreeSet<&Month> =
            got.months.keys().chain(want.months.keys()).collect();
        for m in months {
            let g = got.months.get(m).copied().unwrap_or_default();
            let w = want.months.get(m).copied().unwrap_or_default();
            diff(format!("clicks in {m}"), g, w);
        }
        let edges: std::collections::BTreeSet<&Millis> =
            got.edges.keys().chain(want.edges.keys()).collect();
        for b in edges {
            let g = got.edges.get(b).copied().unwrap_or_default();
            let w = want.edges.get(b).copied().unwrap_or_default();
            diff(format!("clicks in the quarter hour from {b}"), g, w);
        }
        for (i, bound) in crate::insights::LATENCY_BOUNDS_S.iter().enumerate() {
            diff(
                format!("delivered messages with latency ≤ {bound} s"),
                got.latency[i],
                want.latency[i],
            );
        }
        let hours: std::collections::BTreeSet<&i64> =
            got.awaiting.keys().chain(want.awaiting.keys()).collect();
        for h in hours {
            let g = got.awaiting.get(h).copied().unwrap_or_default();
            let w = want.awaiting.get(h).copied().unwrap_or_default();
            diff(
                format!("messages awaiting a receipt submitted in hour {h}"),
                g,
                w,
            );
        }
        let countries: std::collections::BTreeSet<&(Country, Status)> =
            got.countries.keys().chain(want.countries.keys()).collect();
        for k in countries {
            let g = got.countries.get(k).copied().unwrap_or_default();
            let w = want.countries.get(k).copied().unwrap_or_default();
            diff(
                format!("messages to {} with status {}", k.0.key(), k.1),
                g,
                w,
            );
        }
        let clickers: std::collections::BTreeSet<&Country> = got
            .country_clicks
            .keys()
            .chain(want.country_clicks.keys())
            .collect();
        for c in clickers {
            let g = got.country_clicks.get(c).copied().unwrap_or_default();
            let w = want.country_clicks.get(c).copied().unwrap_or_default();
            diff(format!("human clicks from {}", c.key()), g, w);
        }
        if let Some(list) = &t.list {
            if lists_seen.insert(list.list_id.clone()) {
                let counted = recount.subscribers.get(&list.list_id).copied().unwrap_or(0);
                if list.subscribers != counted {
                    out.differences.push(format!(
                        "list {:?}: subscribers is {} in the stored totals but {} recounted",
                        list.list_id, list.subscribers, counted
                    ));
                }
            }
        }
    }
    let known: HashSet<&String> = stored.iter().map(|t| &t.def.campaign_id).collect();
    for id in recount.campaigns.keys().filter(|id| !known.contains(id)) {
        out.differences.push(format!(
            "campaign {id:?}: has messages or clicks but no definition"
        ));
    }
    out
}
