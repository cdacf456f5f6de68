//! The [`Store`] trait every backend implements, and [`StoreError`].

use crate::export::{ExportKind, Record};
use crate::forget::Forgotten;
use std::fmt::Debug;

use async_trait::async_trait;

use crate::engine::{CampaignCounter, CampaignDef, MessageRecord, Outcome};
use crate::event::Event;
use crate::insights::{InsightOptions, MessageFilter, RecipientFilter};
use crate::report::{
    compare, sort_newest_first, CampaignCounters, CampaignSummary, CampaignTotals, ListTotals,
    RecipientPage, RecipientQuery, RecipientRow, Recount, Report, VerifyReport,
};
use crate::time::Millis;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A tracked short link: `PUBLIC_URL/c/{code}` stands for one link of a campaign sent to
/// one recipient in one message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackedLink {
    /// At least 7 random base62 characters; unique in the store.
    pub code: String,
    pub campaign_id: String,
    pub link_id: String,
    pub message_id: String,
    pub recipient: String,
}

/// Why a store operation failed.
/// [`Store::orphans`]: statuses waiting for a message that never came.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Orphans {
    /// Message ids with a pending status and no message.
    pub messages: u64,
    /// The earliest time among their pending statuses.
    pub oldest: Option<Millis>,
}

impl Orphans {
    /// Counts one waiting message whose pending status has time `at`.
    pub fn add(&mut self, at: Millis) {
        self.messages += 1;
        self.oldest = Some(self.oldest.map_or(at, |o| o.min(at)));
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named thing does not exist (`no campaign named "x"`).
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (a bad store URL, a bad query).
    #[error("{0}")]
    Invalid(String),
    /// The store is in use elsewhere, or holds data this version cannot take.
    #[error("{0}")]
    Conflict(String),
    /// Stored data that cannot be read back.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The backend failed; the source error is kept.
    #[error("{context}: {source}")]
    Backend {
        /// What the store was doing.
        context: String,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// A backend failure, with what was being done.
    pub fn backend(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// The error for a campaign that does not exist.
    pub fn no_campaign(campaign_id: &str) -> StoreError {
        StoreError::NotFound(format!("no campaign named {campaign_id:?}"))
    }
}

impl CampaignTotals {
    /// Assembles a campaign's totals from what a backend stores: its definition, its
    /// list's name and subscribers (`None` when the list has neither yet), and its counter
    /// rows by [`CampaignCounter::name`]. An unknown counter name is
    /// [`StoreError::Corrupt`].
    pub fn from_stored(
        def: CampaignDef,
        list: Option<(String, i64)>,
        counters: impl IntoIterator<Item = (String, i64)>,
    ) -> Result<CampaignTotals, StoreError> {
        let mut c = CampaignCounters::default();
        for (name, value) in counters {
            let counter = CampaignCounter::from_name(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown counter {name:?}")))?;
            c.add(&counter, value);
        }
        let list = def.contact_list.clone().map(|list_id| {
            let (name, subscribers) = list.unwrap_or_default();
            ListTotals {
                list_id,
                name,
                subscribers,
            }
        });
        Ok(CampaignTotals {
            def,
            list,
            counters: c,
        })
    }
}

/// The month-edge buckets among a campaign's counter rows (name, value), for
/// [`Store::edge_clicks`]; any other name is [`StoreError::Corrupt`].
pub fn edges_from_rows(
    rows: impl IntoIterator<Item = (String, i64)>,
) -> Result<BTreeMap<Millis, i64>, StoreError> {
    rows.into_iter()
        .map(|(name, value)| match CampaignCounter::from_name(&name) {
            Some(CampaignCounter::EdgeClicks(b)) => Ok((b, value)),
            _ => Err(StoreError::Corrupt(format!("unknown counter {name:?}"))),
        })
        .collect()
}

/// The tracked links a store holds, by (message_id, link_id).
pub type StoredLinks = HashMap<(String, String), TrackedLink>;

/// The rules of [`Store::save_links`], for a backend to call around its reads and
/// writes:
///
/// 1. [`LinkSave::new`] names the (message_id, link_id) pairs to look up;
/// 2. the backend loads the links stored for them into a [`StoredLinks`];
/// 3. [`LinkSave::to_insert`] gives the links to store (new pairs, first of each, in
///    input order); the backend inserts them, failing the call if a code is taken;
/// 4. [`LinkSave::answer`] gives each input its link as stored.
#[derive(Debug)]
pub struct LinkSave<'a> {
    links: &'a [TrackedLink],
    distinct: Vec<&'a TrackedLink>,
}

impl<'a> LinkSave<'a> {
    /// A save of these links.
    pub fn new(links: &'a [TrackedLink]) -> LinkSave<'a> {
        let mut seen = HashSet::new();
        let distinct = links
            .iter()
            .filter(|t| seen.insert((t.message_id.as_str(), t.link_id.as_str())))
            .collect();
        LinkSave { links, distinct }
    }

    /// The first link of each (message_id, link_id), in input order: the pairs to look up.
    pub fn pairs(&self) -> &[&'a TrackedLink] {
        &self.distinct
    }

    /// The links whose pair has no stored link: to insert. A code among them that is
    /// stored for another pair, or given twice, is [`StoreError::Conflict`]
    /// (`code_taken` answers whether the store holds a code).
    pub fn to_insert(
        &self,
        stored: &StoredLinks,
        mut code_taken: impl FnMut(&str) -> Result<bool, StoreError>,
    ) -> Result<Vec<&'a TrackedLink>, StoreError> {
        let mut codes = HashSet::new();
        let mut out = Vec::new();
        for t in &self.distinct {
            if stored.contains_key(&(t.message_id.clone(), t.link_id.clone())) {
                continue;
            }
            if !codes.insert(t.code.as_str()) || code_taken(&t.code)? {
                return Err(taken(&t.code));
            }
            out.push(*t);
        }
        Ok(out)
    }

    /// Each input's link as stored, in input order. A pair that has no stored link (its
    /// insert lost a race for its code) is [`StoreError::Conflict`]: the caller draws
    /// new codes.
    pub fn answer(&self, stored: &StoredLinks) -> Result<Vec<TrackedLink>, StoreError> {
        self.links
            .iter()
            .map(|t| {
                stored
                    .get(&(t.message_id.clone(), t.link_id.clone()))
                    .cloned()
                    .ok_or_else(|| taken(&t.code))
            })
            .collect()
    }
}

fn taken(code: &str) -> StoreError {
    StoreError::Conflict(format!(
        "tracked link code {code:?} is already taken; draw another"
    ))
}

/// Where events are kept and reports are read from.
///
/// Object-safe: the binary and the HTTP service hold an `Arc<dyn Store>`. A backend
/// implements the five required methods by storing and returning; the rules themselves
/// live in [`crate::engine`] and [`crate::report`], which the provided methods and a
/// backend's `ingest` call.
///
/// ```text
/// async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
///     let tx = self.begin().await?;                    // one atomic transaction
///     let needs = engine::Needs::of(events);           // what the batch can touch
///     let loaded = tx.load(&needs).await?;             // read exactly that
///     let (outcomes, changes) = engine::apply(loaded, events); // the rules decide
///     tx.write(&changes).await?;                       // store what they decided
///     tx.commit_durably().await?;                      // durable before returning
///     Ok(outcomes)
/// }
/// ```
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Applies the events in order and returns one outcome per event.
    ///
    /// Must guarantee: the whole call is atomic (after a crash, either all of its changes
    /// are stored or none), and durable when it returns `Ok`; concurrent calls behave as
    /// if run one after the other.
    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError>;

    /// A campaign's definition, list and counters, without the month-edge buckets
    /// (`CampaignCounter::EdgeClicks`, see [`Store::edge_clicks`]); `None` for an unknown
    /// campaign.
    /// Must not read per-message or per-click data.
    async fn totals(&self, campaign_id: &str) -> Result<Option<CampaignTotals>, StoreError>;

    /// Every campaign's totals as [`Store::totals`] gives them, in any order.
    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError>;

    /// A campaign's month-edge buckets (the `EdgeClicks` counters, names from
    /// `engine::EDGE_NAMES_START` to `engine::EDGE_NAMES_END`): only a report in a time
    /// zone reads them, so a report in UTC reads no more than its links and months.
    async fn edge_clicks(&self, campaign_id: &str) -> Result<BTreeMap<Millis, i64>, StoreError>;

    /// Up to `limit` messages of a campaign whose `message_id` sorts (bytewise) after
    /// `after` and that `filter` selects ([`MessageFilter::matches`]), in `message_id`
    /// order, each with its recipient's human clicks in the campaign.
    async fn messages(
        &self,
        campaign_id: &str,
        filter: &MessageFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, i64)>, StoreError>;

    /// Counts every stored message, click and contact into a [`Recount`].
    async fn recount(&self) -> Result<Recount, StoreError>;

    /// Adds `n` to data-quality counter `quality` of campaign `campaign_id`, durably
    /// (docs/rules.md, "Data quality"); answers `false`, storing nothing, when there is
    /// no such campaign. The service counts rejected callbacks with it.
    async fn count_quality(
        &self,
        campaign_id: &str,
        quality: crate::engine::Quality,
        n: i64,
    ) -> Result<bool, StoreError> {
        let _ = (campaign_id, quality, n);
        Err(StoreError::Invalid(
            "this store cannot count data quality".into(),
        ))
    }

    /// Statuses waiting for a message that never came: how many message ids have a
    /// pending status and no message, and the earliest of those pending statuses' times
    /// (docs/rules.md, "Data quality"). Its cost grows with the number of such ids, not
    /// with the store.
    async fn orphans(&self) -> Result<Orphans, StoreError> {
        Err(StoreError::Invalid(
            "this store cannot count statuses waiting for their message".into(),
        ))
    }

    /// Stores tracked links, durably on return. A (message_id, link_id) that already has
    /// a code keeps it: the answer holds, for each input in order, the link as stored
    /// (so registering a message again gives the same short URLs). A new code that is
    /// already taken by another (message_id, link_id) fails with
    /// [`StoreError::Conflict`] and stores nothing; the caller draws new codes.
    async fn save_links(&self, links: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError>;

    /// The tracked link of a code; `None` when no such code was stored.
    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError>;

    /// Erases `number` (an E.164 phone number) for `token` ([`crate::forget`]), in one
    /// atomic step, durable on return (docs/rules.md, "Forgetting a person"):
    ///
    /// - every contact of the number is deleted, and its list's subscribers counter
    ///   (`Counter::Subscribers`) drops by one;
    /// - every message, click (with or without `event_id`) and tracked link of the number
    ///   gets `token` as its recipient; messages keep their stored country;
    /// - every click of the number without `event_id` leaves a [`crate::engine::ForgottenClick`] mark;
    /// - first human clicks (campaign, link, number) and the number's
    ///   `Counter::RecipientClicks` move to the token.
    ///
    /// Nothing else changes; a number the store does not hold changes nothing. Callers use
    /// [`Store::forget_number`], which draws the token.
    async fn forget(&self, number: &str, token: &str) -> Result<Forgotten, StoreError> {
        let _ = (number, token);
        Err(StoreError::Invalid("this store cannot forget".into()))
    }

    /// Forgets a person (docs/rules.md, "Forgetting a person"): checks that `number` is
    /// E.164 ([`StoreError::Invalid`] otherwise), draws a random token carrying its
    /// country, and calls [`Store::forget`].
    async fn forget_number(&self, number: &str) -> Result<Forgotten, StoreError> {
        if !crate::event::is_e164(number) {
            return Err(StoreError::Invalid(
                "not an E.164 phone number (+, then 7 to 15 digits, not starting with 0)".into(),
            ));
        }
        let token = crate::forget::new_token(&crate::insights::Country::of(number))?;
        self.forget(number, &token).await
    }

    /// Up to `limit` stored records of `kind` whose key ([`Record::key`]: text compared
    /// as bytes, then a click's time) sorts after `after`'s, in key order; fewer than
    /// `limit` only at the end. `smsreport export` pages through every kind with it
    /// ([`crate::export`]). A store that cannot page answers [`StoreError::Invalid`].
    async fn export_page(
        &self,
        kind: ExportKind,
        after: Option<&Record>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let _ = (kind, after, limit);
        Err(StoreError::Invalid("this store cannot export".into()))
    }

    /// The report (docs/rules.md, "The report"), months in UTC, insights as of now. An
    /// unknown campaign is [`StoreError::NotFound`].
    async fn report(&self, campaign_id: &str) -> Result<Report, StoreError> {
        self.report_at(campaign_id, InsightOptions::now(), None)
            .await
    }

    /// The report with `clicks_by_month` in local time: `offset(t)` is the UTC offset in
    /// minutes at instant `t` (see [`Report::build`]); insights as of now.
    async fn report_with_offset(
        &self,
        campaign_id: &str,
        offset: &(dyn Fn(Millis) -> i64 + Send + Sync),
    ) -> Result<Report, StoreError> {
        self.report_at(campaign_id, InsightOptions::now(), Some(offset))
            .await
    }

    /// The report with insights answered as `opts` says (as of a moment, stale after
    /// some hours), months in local time when an `offset` is given.
    async fn report_at(
        &self,
        campaign_id: &str,
        opts: InsightOptions,
        offset: Option<&(dyn Fn(Millis) -> i64 + Send + Sync)>,
    ) -> Result<Report, StoreError> {
        let mut t = self
            .totals(campaign_id)
            .await?
            .ok_or_else(|| StoreError::no_campaign(campaign_id))?;
        match offset {
            Some(offset) => {
                t.counters.edges = self.edge_clicks(campaign_id).await?;
                Ok(Report::build(&t, offset, opts))
            }
            None => Ok(Report::build(&t, &|_| 0, opts)),
        }
    }

    /// The campaigns, newest first.
    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, StoreError> {
        let mut all = self.all_totals().await?;
        sort_newest_first(&mut all);
        Ok(all.iter().map(CampaignSummary::from_totals).collect())
    }

    /// One page of the recipients drill-down. An unknown campaign is
    /// [`StoreError::NotFound`]; a limit outside 1..=10 000 is [`StoreError::Invalid`].
    async fn recipients(
        &self,
        campaign_id: &str,
        q: &RecipientQuery,
    ) -> Result<RecipientPage, StoreError> {
        self.recipients_filtered(campaign_id, q, &RecipientFilter::default())
            .await
    }

    /// One page of the drill-down, narrowed by the insight filters (waiting age,
    /// country) as well; errors as for [`Store::recipients`].
    async fn recipients_filtered(
        &self,
        campaign_id: &str,
        q: &RecipientQuery,
        f: &RecipientFilter,
    ) -> Result<RecipientPage, StoreError> {
        if !(1..=10_000).contains(&q.limit) {
            return Err(StoreError::Invalid(format!(
                "limit must be 1 to 10000, not {}",
                q.limit
            )));
        }
        if self.totals(campaign_id).await?.is_none() {
            return Err(StoreError::no_campaign(campaign_id));
        }
        let mut rows = self
            .messages(
                campaign_id,
                &MessageFilter::new(q.row, f),
                q.after.as_deref(),
                q.limit + 1,
            )
            .await?;
        let next = if rows.len() > q.limit {
            rows.truncate(q.limit);
            rows.last().map(|(m, _)| m.message_id.clone())
        } else {
            None
        };
        Ok(RecipientPage {
            items: rows.iter().map(|(m, c)| RecipientRow::new(m, *c)).collect(),
            next,
        })
    }

    /// Recounts every campaign from per-message state and clicks and compares it with the
    /// stored totals.
    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let recount = self.recount().await?;
        let mut stored = self.all_totals().await?;
        for t in &mut stored {
            t.counters.edges = self.edge_clicks(&t.def.campaign_id).await?;
        }
        Ok(compare(&stored, &recount))
    }
}
