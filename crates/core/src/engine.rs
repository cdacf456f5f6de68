//! The rules that turn events into stored state (docs/events.md; docs/rules.md, "Delivery
//! statuses" and "Clicks"), independent of any backend.
//!
//! A backend ingests a batch in three steps, inside one transaction of its own:
//!
//! 1. [`Needs::of`] names every piece of stored state the batch's events can touch;
//! 2. the backend reads those pieces into a [`Loaded`] (absent ones stay absent);
//! 3. [`apply`] decides every event in input order and returns the outcomes and the
//!    [`Changes`] to write: final records and additive counter deltas.
//!
//! The backend never decides anything itself: it loads, writes what `apply` says, and
//! keeps the write atomic and durable.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::{
    CampaignEvent, ClickEvent, ContactEvent, Event, MessageEvent, Rejection, StatusEvent,
};
use crate::insights::{message_counters, Country, LATENCY_BOUNDS_S};
use crate::status::{Status, StatusKey};
use crate::time::{Millis, Month};

/// A campaign's stored definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDef {
    pub campaign_id: String,
    pub name: String,
    /// The contact list's id; its name and subscribers live with the list.
    pub contact_list: Option<String>,
    pub link_tracking: bool,
    /// link_id → url, in byte order of link_id.
    pub links: BTreeMap<String, String>,
    pub created_at: Option<Millis>,
}

/// A message's stored state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub message_id: String,
    pub campaign_id: String,
    pub recipient: String,
    pub parts: u8,
    /// When it was submitted.
    pub at: Millis,
    /// The winning status event; `None` means no status yet (`queued`).
    pub status: Option<StatusKey>,
    /// The recipient's country, decided when the message was first recorded.
    pub country: Country,
}

impl MessageRecord {
    /// The message's current status.
    pub fn current(&self) -> Status {
        self.status.as_ref().map_or(Status::Queued, |k| k.status)
    }
}

/// Everything stored under one `message_id`: the message (once its `message` event
/// arrived), the greatest status seen while it was unknown, and the status events
/// recorded for it (which decide duplicates).
///
/// A backend loads and stores it whole; only [`apply`] changes it. Its serde form
/// (postcard in the sled store) is part of the stored format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// The message, once its `message` event arrived.
    pub record: Option<MessageRecord>,
    /// While the message is unknown: the greatest status seen for it.
    pub pending: Option<StatusKey>,
    /// The status events recorded for this id, in the order they came; at most
    /// [`MessageState::MAX_SEEN`].
    pub seen: Vec<StatusKey>,
    /// The time given to the latest undated status recorded for this id (docs/rules.md,
    /// "Undated receipts"): the next undated one comes at least 1 ms after it. A
    /// backend that keeps `seen` as rows marks the one of `seen` with this time.
    pub undated: Option<Millis>,
}

impl MessageState {
    /// How many distinct status events one message remembers. A real message has a
    /// handful; past this many, a further distinct status still decides the state (a
    /// max), but is not remembered, so a repeat of it counts as ingested again (with no
    /// effect on any figure). See docs/rules.md, "Duplicates".
    pub const MAX_SEEN: usize = 1024;

    /// Whether this status event was recorded before.
    pub fn has_seen(&self, key: &StatusKey) -> bool {
        self.seen.iter().any(|k| k == key)
    }

    /// Records a status event as seen, unless [`MessageState::MAX_SEEN`] are already
    /// kept; answers whether it was kept.
    fn remember(&mut self, key: &StatusKey) -> bool {
        if self.seen.len() >= MessageState::MAX_SEEN {
            return false;
        }
        self.seen.push(key.clone());
        true
    }

    /// The drill-down row status of the message, `None` while it is unknown.
    pub fn current(&self) -> Option<Status> {
        self.record.as_ref().map(MessageRecord::current)
    }
}

/// One accepted click, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickRecord {
    pub campaign_id: String,
    pub link_id: String,
    pub recipient: String,
    pub at: Millis,
    pub user_agent: Option<String>,
    pub event_id: Option<String>,
    /// Whether the user agent marks it as a bot's (docs/rules.md, "Bots").
    pub bot: bool,
}

/// The identity of a click that has no `event_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClickKey {
    pub campaign_id: String,
    pub link_id: String,
    pub recipient: String,
    pub at: Millis,
}

/// A person's first human click on a link: (campaign_id, link_id, recipient).
pub type UniquePair = (String, String, String);

/// A click without `event_id` of a forgotten person: (campaign_id, link_id, at). A click
/// with a phone number and no `event_id` at the same place and time is a duplicate of it
/// (docs/rules.md, "Forgetting a person").
pub type ForgottenClick = (String, String, Millis);

/// A contact of a list, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub list_id: String,
    pub recipient: String,
    pub name: Option<String>,
}

const BOT_MARKERS: [&str; 14] = [
    "bot",
    "crawler",
    "spider",
    "preview",
    "facebookexternalhit",
    "whatsapp",
    "telegram",
    "slack",
    "discord",
    "skype",
    "curl",
    "wget",
    "python-requests",
    "headless",
];

/// Whether a click with this user agent is a bot's: the agent contains one of the markers
/// of docs/rules.md, "Bots", ignoring ASCII case. No agent, or an empty one, is a person.
pub fn is_bot(user_agent: Option<&str>) -> bool {
    let Some(ua) = user_agent else { return false };
    let lower = ua.to_ascii_lowercase();
    BOT_MARKERS.iter().any(|m| lower.contains(m))
}

/// A figure kept per campaign, updated at ingest, read by the report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CampaignCounter {
    /// Messages whose current status is this one.
    Status(Status),
    /// Sum of `parts`.
    Segments,
    /// Human clicks.
    HumanClicks,
    /// Bot clicks.
    BotClicks,
    /// Human clicks on a link.
    LinkClicks(String),
    /// Distinct recipients with a human click on a link.
    LinkUnique(String),
    /// Human clicks in a UTC month.
    MonthClicks(Month),
    /// Human clicks in a 15-minute bucket near a month's start ([`Millis::edge_bucket`]).
    EdgeClicks(Millis),
    /// Delivered messages in a latency bucket (an index of [`LATENCY_BOUNDS_S`]).
    Latency(u8),
    /// Messages awaiting a final receipt, by submit hour (hours since the Unix epoch).
    Awaiting(i64),
    /// Messages of a country whose current status is this one.
    Country(Country, Status),
    /// Human clicks by recipients of a country.
    CountryClicks(Country),
    /// A data-quality figure of the campaign's gateway callbacks (docs/rules.md,
    /// "Data quality"); never part of the report.
    Quality(Quality),
}

/// What the data-quality counters of a campaign count: gateway callbacks for its
/// messages that were duplicates, that came after the message's status was final, or
/// that were rejected (by the field that decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Quality {
    /// A callback that repeated a status already recorded (a gateway's retry).
    Duplicate,
    /// A callback (not a duplicate) for a message whose status was already final.
    Late,
    /// A callback rejected, naming the campaign in its URL (`?campaign_id=`): the index
    /// of the field that decided in [`crate::gateway::REJECTION_FIELDS`].
    Rejected(u8),
}

impl Quality {
    /// The two counted by the engine, in display order.
    pub const ALL: [Quality; 2] = [Quality::Duplicate, Quality::Late];

    /// A rejection whose reason is `reason` (its field: the text before `:`).
    pub fn rejected(reason: &str) -> Quality {
        Quality::Rejected(crate::gateway::rejection_field(reason) as u8)
    }

    /// The name in counter names (after `quality:`), `/metrics` and `smsreport health`:
    /// `duplicate`, `late`, `rejected:FIELD`.
    pub fn name(self) -> String {
        match self {
            Quality::Duplicate => "duplicate".into(),
            Quality::Late => "late".into(),
            Quality::Rejected(_) => format!("rejected:{}", self.field().unwrap_or("other")),
        }
    }

    /// `duplicate`, `late` or `rejected`.
    pub fn kind(self) -> &'static str {
        match self {
            Quality::Duplicate => "duplicate",
            Quality::Late => "late",
            Quality::Rejected(_) => "rejected",
        }
    }

    /// The field of a rejection.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Quality::Rejected(i) => crate::gateway::REJECTION_FIELDS.get(i as usize).copied(),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Quality> {
        match name {
            "duplicate" => Some(Quality::Duplicate),
            "late" => Some(Quality::Late),
            _ => {
                let field = name.strip_prefix("rejected:")?;
                let i = crate::gateway::REJECTION_FIELDS
                    .iter()
                    .position(|f| *f == field)?;
                Some(Quality::Rejected(i as u8))
            }
        }
    }
}

/// Every [`CampaignCounter::EdgeClicks`] name starts with this, and no other name sorts
/// between it and [`EDGE_NAMES_END`]: a store can skip or read them as one range.
pub const EDGE_NAMES_START: &str = "edge:";
/// The first name after every edge-bucket name (`;` follows `:`).
pub const EDGE_NAMES_END: &str = "edge;";

impl CampaignCounter {
    /// A stable text name for storage (`status:delivered`, `link_clicks:sale`, `month:2026-03`…).
    /// Backends store counters under this name; [`CampaignCounter::from_name`] reads it back.
    pub fn name(&self) -> String {
        match self {
            CampaignCounter::Status(s) => format!("status:{}", s.as_str()),
            CampaignCounter::Segments => "segments".into(),
            CampaignCounter::HumanClicks => "human_clicks".into(),
            CampaignCounter::BotClicks => "bot_clicks".into(),
            CampaignCounter::LinkClicks(l) => format!("link_clicks:{l}"),
            CampaignCounter::LinkUnique(l) => format!("link_unique:{l}"),
            CampaignCounter::MonthClicks(m) => format!("month:{m}"),
            CampaignCounter::EdgeClicks(b) => format!("edge:{}", b.0),
            CampaignCounter::Latency(i) => {
                format!("latency:{}", LATENCY_BOUNDS_S[(*i as usize).min(15)])
            }
            CampaignCounter::Awaiting(h) => format!("await:{h}"),
            CampaignCounter::Country(c, s) => format!("country:{}:{}", s.as_str(), c.key()),
            CampaignCounter::CountryClicks(c) => format!("country_clicks:{}", c.key()),
            CampaignCounter::Quality(q) => format!("quality:{}", q.name()),
        }
    }

    /// The counter a [`CampaignCounter::name`] names.
    pub fn from_name(name: &str) -> Option<CampaignCounter> {
        Some(match name.split_once(':') {
            None => match name {
                "segments" => CampaignCounter::Segments,
                "human_clicks" => CampaignCounter::HumanClicks,
                "bot_clicks" => CampaignCounter::BotClicks,
                _ => return None,
            },
            Some(("status", s)) => CampaignCounter::Status(s.parse().ok()?),
            Some(("link_clicks", l)) => CampaignCounter::LinkClicks(l.into()),
            Some(("link_unique", l)) => CampaignCounter::LinkUnique(l.into()),
            Some(("month", m)) => CampaignCounter::MonthClicks(Month::parse(m)?),
            Some(("edge", b)) => CampaignCounter::EdgeClicks(Millis(b.parse().ok()?)),
            Some(("latency", b)) => {
                let b: u32 = b.parse().ok()?;
                CampaignCounter::Latency(LATENCY_BOUNDS_S.iter().position(|x| *x == b)? as u8)
            }
            Some(("await", h)) => CampaignCounter::Awaiting(h.parse().ok()?),
            Some(("country", rest)) => {
                let (s, c) = rest.split_once(':')?;
                CampaignCounter::Country(Country::from_key(c)?, s.parse().ok()?)
            }
            Some(("country_clicks", c)) => CampaignCounter::CountryClicks(Country::from_key(c)?),
            Some(("quality", q)) => CampaignCounter::Quality(Quality::from_name(q)?),
            Some(_) => return None,
        })
    }
}

/// Every counter ingest keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Counter {
    /// A figure of a campaign's report.
    Campaign(String, CampaignCounter),
    /// Human clicks of one recipient in one campaign (the drill-down's `clicks`).
    RecipientClicks {
        campaign_id: String,
        recipient: String,
    },
    /// Contacts in a list.
    Subscribers(String),
}

/// The stored state a batch can touch; a backend loads exactly these keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Campaign definitions.
    pub campaigns: BTreeSet<String>,
    /// List names.
    pub lists: BTreeSet<String>,
    /// Contacts, as (list_id, recipient).
    pub contacts: BTreeSet<(String, String)>,
    /// Per-message state ([`MessageState`]).
    pub messages: BTreeSet<String>,
    /// Click `event_id`s already taken.
    pub click_event_ids: BTreeSet<String>,
    /// Identities of clicks without `event_id`.
    pub click_keys: BTreeSet<ClickKey>,
    /// First human clicks.
    pub unique_pairs: BTreeSet<UniquePair>,
    /// Forgotten people's clicks a click without `event_id` may repeat.
    pub forgotten_clicks: BTreeSet<ForgottenClick>,
}

impl Needs {
    /// What the given events can touch.
    pub fn of(events: &[Event]) -> Needs {
        let mut n = Needs::default();
        for e in events {
            match e {
                Event::Campaign(c) => {
                    n.campaigns.insert(c.campaign_id.clone());
                    if let Some(l) = &c.contact_list {
                        n.lists.insert(l.list_id.clone());
                    }
                }
                Event::Contact(c) => {
                    n.contacts.insert((c.list_id.clone(), c.recipient.clone()));
                }
                Event::Message(m) => {
                    n.campaigns.insert(m.campaign_id.clone());
                    n.messages.insert(m.message_id.clone());
                }
                Event::Status(s) => {
                    n.messages.insert(s.message_id.clone());
                    if let Some(r) = s.callback.as_ref().and_then(|c| c.register.as_ref()) {
                        n.campaigns.insert(r.campaign_id.clone());
                    }
                }
                Event::Click(c) => {
                    n.campaigns.insert(c.campaign_id.clone());
                    match &c.event_id {
                        Some(id) => {
                            n.click_event_ids.insert(id.clone());
                        }
                        None => {
                            n.click_keys.insert(click_key(c));
                            n.forgotten_clicks.insert(forgotten_click(c));
                        }
                    }
                    if !is_bot(c.user_agent.as_deref()) {
                        n.unique_pairs.insert((
                            c.campaign_id.clone(),
                            c.link_id.clone(),
                            c.recipient.clone(),
                        ));
                    }
                }
            }
        }
        n
    }
}

fn forgotten_click(c: &ClickEvent) -> ForgottenClick {
    (c.campaign_id.clone(), c.link_id.clone(), c.at)
}

fn click_key(c: &ClickEvent) -> ClickKey {
    ClickKey {
        campaign_id: c.campaign_id.clone(),
        link_id: c.link_id.clone(),
        recipient: c.recipient.clone(),
        at: c.at,
    }
}

/// The stored state named by a [`Needs`]; what is absent from the store is absent here.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub campaigns: HashMap<String, CampaignDef>,
    /// list_id → name.
    pub lists: HashMap<String, String>,
    /// (list_id, recipient) → name.
    pub contacts: HashMap<(String, String), Option<String>>,
    /// message_id → its whole stored state.
    pub messages: HashMap<String, MessageState>,
    pub click_event_ids: HashSet<String>,
    pub click_keys: HashSet<ClickKey>,
    pub unique_pairs: HashSet<UniquePair>,
    pub forgotten_clicks: HashSet<ForgottenClick>,
}

/// The state of one `message_id` written by a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageChange {
    pub message_id: String,
    /// Its whole state after the batch, to store in place of what was loaded.
    pub state: MessageState,
    /// Whether the store held a state for it before the batch (update, not insert).
    pub existed: bool,
    /// The message's drill-down status before the batch; `None` when it had no record
    /// (unknown, or pending only). Where it differs from `state.current()`, a backend
    /// with a drill-down index moves the message.
    pub previous: Option<Status>,
}

/// What a batch writes. Applying all of it atomically keeps totals and per-message state
/// in agreement; counters are deltas to add.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Campaign definitions to upsert (final state).
    pub campaigns: Vec<CampaignDef>,
    /// List names to upsert: (list_id, name).
    pub lists: Vec<(String, String)>,
    /// Contacts to upsert.
    pub contacts: Vec<ContactRecord>,
    /// Per-message states to store, whole, in `message_id` order.
    pub messages: Vec<MessageChange>,
    /// Clicks to insert; each one's `event_id`, or else its [`ClickKey`], is now taken.
    pub clicks: Vec<ClickRecord>,
    /// First human clicks to record.
    pub unique_pairs: Vec<UniquePair>,
    /// Forgotten people's clicks without `event_id` to record.
    pub forgotten_clicks: Vec<ForgottenClick>,
    /// The status events newly added to a state's `seen`: (message_id, status event).
    /// The states in `messages` already hold them; a backend that keeps `seen` in a
    /// table of its own inserts these.
    pub status_events: Vec<(String, StatusKey)>,
    /// Counter deltas (never zero).
    pub counters: BTreeMap<Counter, i64>,
}

impl Changes {
    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.campaigns.is_empty()
            && self.lists.is_empty()
            && self.contacts.is_empty()
            && self.messages.is_empty()
            && self.clicks.is_empty()
            && self.unique_pairs.is_empty()
            && self.forgotten_clicks.is_empty()
            && self.status_events.is_empty()
            && self.counters.is_empty()
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Accepted and recorded.
    Ingested,
    /// Already known: identical to what is stored, changes nothing.
    Duplicate,
    /// Refused; nothing of it was applied.
    Rejected(Rejection),
}

struct Apply {
    s: Loaded,
    dirty_campaigns: BTreeSet<String>,
    dirty_lists: BTreeSet<String>,
    dirty_contacts: BTreeSet<(String, String)>,
    /// message_id → (whether it was stored, its row before the batch).
    dirty_messages: BTreeMap<String, (bool, Option<Status>)>,
    changes: Changes,
}

/// Decides every event in input order against the loaded state (which must hold every
/// key of [`Needs::of`] for these events that the store has).
///
/// Returns one outcome per event, in order, and what to write.
pub fn apply(loaded: Loaded, events: &[Event]) -> (Vec<Outcome>, Changes) {
    let mut a = Apply {
        s: loaded,
        dirty_campaigns: BTreeSet::new(),
        dirty_lists: BTreeSet::new(),
        dirty_contacts: BTreeSet::new(),
        dirty_messages: BTreeMap::new(),
        changes: Changes::default(),
    };
    let outcomes = events
        .iter()
        .map(|e| {
            let r = match e {
                Event::Campaign(c) => a.campaign(c),
                Event::Contact(c) => a.contact(c),
                Event::Message(m) => a.message(m),
                Event::Status(s) => a.status(s),
                Event::Click(c) => a.click(c),
            };
            match r {
                Ok(true) => Outcome::Ingested,
                Ok(false) => Outcome::Duplicate,
                Err(rej) => Outcome::Rejected(rej),
            }
        })
        .collect();
    (outcomes, a.finish())
}

impl Apply {
    fn count(&mut self, counter: Counter, delta: i64) {
        let v = self.changes.counters.entry(counter).or_insert(0);
        *v += delta;
    }

    fn campaign_count(&mut self, campaign_id: &str, c: CampaignCounter, delta: i64) {
        self.count(Counter::Campaign(campaign_id.to_owned(), c), delta);
    }

    /// Ok(true): changed something; Ok(false): a duplicate.
    fn campaign(&mut self, ev: &CampaignEvent) -> Result<bool, Rejection> {
        let existing = self.s.campaigns.get(&ev.campaign_id);
        let mut links = existing.map(|c| c.links.clone()).unwrap_or_default();
        for l in &ev.links {
            match links.get(&l.link_id) {
                Some(url) if *url != l.url => {
                    return Err(Rejection::new(format!(
                        "links: link {:?} of campaign {:?} already has url {:?}; a link's url never changes",
                        l.link_id, ev.campaign_id, url
                    )))
                }
                Some(_) => {}
                None => {
                    links.insert(l.link_id.clone(), l.url.clone());
                }
            }
        }
        let def = CampaignDef {
            campaign_id: ev.campaign_id.clone(),
            name: ev.name.clone(),
            contact_list: ev.contact_list.as_ref().map(|l| l.list_id.clone()),
            link_tracking: ev.link_tracking,
            links,
            created_at: existing.and_then(|c| c.created_at).or(ev.created_at),
        };
        let mut changed = false;
        if existing != Some(&def) {
            self.dirty_campaigns.insert(def.campaign_id.clone());
            self.s.campaigns.insert(def.campaign_id.clone(), def);
            changed = true;
        }
        if let Some(list) = &ev.contact_list {
            if self.s.lists.get(&list.list_id) != Some(&list.name) {
                self.s.lists.insert(list.list_id.clone(), list.name.clone());
                self.dirty_lists.insert(list.list_id.clone());
                changed = true;
            }
        }
        Ok(changed)
    }

    fn contact(&mut self, ev: &ContactEvent) -> Result<bool, Rejection> {
        let key = (ev.list_id.clone(), ev.recipient.clone());
        match self.s.contacts.get(&key) {
            None => {
                self.count(Counter::Subscribers(ev.list_id.clone()), 1);
            }
            Some(name) => {
                if ev.name.is_none() || *name == ev.name {
                    return Ok(false);
                }
            }
        }
        self.s.contacts.insert(
            key.clone(),
            ev.name
                .clone()
                .or_else(|| self.s.contacts.get(&key).cloned().flatten()),
        );
        self.dirty_contacts.insert(key);
        Ok(true)
    }

    /// Marks a message's state as written by this batch, remembering what it was before.
    fn touch(&mut self, message_id: &str) -> &mut MessageState {
        if !self.dirty_messages.contains_key(message_id) {
            let before = self
                .s
                .messages
                .get(message_id)
                .map(|m| (true, m.current()))
                .unwrap_or((false, None));
            self.dirty_messages.insert(message_id.to_owned(), before);
        }
        self.s.messages.entry(message_id.to_owned()).or_default()
    }

    fn message(&mut self, ev: &MessageEvent) -> Result<bool, Rejection> {
        if !self.s.campaigns.contains_key(&ev.campaign_id) {
            return Err(Rejection::unknown_campaign(format!(
                "campaign_id: no campaign named {:?} (its campaign event must come first)",
                ev.campaign_id
            )));
        }
        if let Some(m) = self
            .s
            .messages
            .get(&ev.message_id)
            .and_then(|m| m.record.as_ref())
        {
            // A forgotten person's message: the old input repeats it with the number.
            if m.campaign_id == ev.campaign_id && m.recipient == ev.recipient
                || crate::forget::is_token(&m.recipient)
            {
                return Ok(false);
            }
            return Err(Rejection::new(format!(
                "message_id: {:?} is already a message of campaign {:?} to {}",
                ev.message_id, m.campaign_id, m.recipient
            )));
        }
        let state = self.touch(&ev.message_id);
        let record = MessageRecord {
            message_id: ev.message_id.clone(),
            campaign_id: ev.campaign_id.clone(),
            recipient: ev.recipient.clone(),
            parts: ev.parts,
            at: ev.at,
            status: state.pending.take(),
            country: Country::of(&ev.recipient),
        };
        let share = message_counters(&record);
        state.record = Some(record);
        for (c, d) in share {
            self.campaign_count(&ev.campaign_id, c, d);
        }
        Ok(true)
    }

    /// A status event seen before is a duplicate; any other is recorded, and becomes the
    /// message's (or the pending) status when it is the greatest so far.
    ///
    /// A callback's status may first register its message (docs/rules.md, "Gateways":
    /// only for a message not known yet, in a campaign that exists); an undated one is a
    /// duplicate of any recorded status with the same status and error code, and is
    /// given its time here (docs/rules.md, "Undated receipts").
    fn status(&mut self, ev: &StatusEvent) -> Result<bool, Rejection> {
        let callback = ev.callback.as_ref();
        let stored = self.s.messages.get(&ev.message_id);
        let record = stored.and_then(|m| m.record.as_ref());
        let campaign = record.map(|r| r.campaign_id.clone());
        let was_final = record.is_some_and(|r| r.current().phase() == 3);
        let register = match callback.and_then(|c| c.register.as_ref()) {
            Some(r) if record.is_none() => {
                if !self.s.campaigns.contains_key(&r.campaign_id) {
                    return Err(Rejection::unknown_campaign(format!(
                        "campaign_id: no campaign named {:?}",
                        r.campaign_id
                    )));
                }
                Some(r.clone())
            }
            _ => None,
        };
        let undated = callback.is_some_and(|c| c.undated);
        let mut key = ev.key.clone();
        let duplicate = match stored {
            None => false,
            Some(m) if undated => m
                .seen
                .iter()
                .any(|k| k.status == key.status && k.error_code == key.error_code),
            Some(m) => m.has_seen(&key),
        };
        if undated && !duplicate {
            // Its arrival, or 1 ms after the latest undated status when that is not earlier.
            if let Some(last) = stored.and_then(|m| m.undated).filter(|at| *at >= key.at) {
                key.at = Millis((last.0 + 1).min(Millis::MAX.0));
            }
        }
        let mut changed = false;
        if let Some(r) = register {
            changed = self.message(&MessageEvent {
                message_id: ev.message_id.clone(),
                campaign_id: r.campaign_id,
                recipient: r.recipient,
                parts: 1,
                at: key.at,
            })?;
        }
        if duplicate {
            if let (Some(c), Some(_)) = (campaign, callback) {
                self.campaign_count(&c, CampaignCounter::Quality(Quality::Duplicate), 1);
            }
            return Ok(changed);
        }
        if let (Some(c), Some(_), true) = (&campaign, callback, was_final) {
            self.campaign_count(c, CampaignCounter::Quality(Quality::Late), 1);
        }
        let ev = &StatusEvent {
            message_id: ev.message_id.clone(),
            key,
            callback: None,
        };
        let state = self.touch(&ev.message_id);
        let remembered = state.remember(&ev.key);
        if undated {
            state.undated = state.undated.max(Some(ev.key.at));
        }
        let moved = match &mut state.record {
            Some(m) => {
                if m.status.as_ref().is_some_and(|cur| *cur >= ev.key) {
                    None
                } else {
                    let before = message_counters(m);
                    m.status = Some(ev.key.clone());
                    Some((m.campaign_id.clone(), before, message_counters(m)))
                }
            }
            None => {
                if state.pending.as_ref().is_none_or(|cur| *cur < ev.key) {
                    state.pending = Some(ev.key.clone());
                }
                None
            }
        };
        if remembered {
            self.changes
                .status_events
                .push((ev.message_id.clone(), ev.key.clone()));
        }
        if let Some((campaign, before, after)) = moved {
            for (c, d) in before {
                self.campaign_count(&campaign, c, -d);
            }
            for (c, d) in after {
                self.campaign_count(&campaign, c, d);
            }
        }
        Ok(true)
    }

    fn click(&mut self, ev: &ClickEvent) -> Result<bool, Rejection> {
        let Some(def) = self.s.campaigns.get(&ev.campaign_id) else {
            return Err(Rejection::unknown_campaign(format!(
                "campaign_id: no campaign named {:?} (its campaign event must come first)",
                ev.campaign_id
            )));
        };
        if !def.links.contains_key(&ev.link_id) {
            return Err(Rejection::unknown_link(format!(
                "link_id: campaign {:?} has no link {:?}",
                ev.campaign_id, ev.link_id
            )));
        }
        let token = crate::forget::is_token(&ev.recipient);
        let fresh = match &ev.event_id {
            Some(id) => self.s.click_event_ids.insert(id.clone()),
            // A number's click where a forgotten person clicked then is theirs, repeated.
            None if !token && self.s.forgotten_clicks.contains(&forgotten_click(ev)) => false,
            None => self.s.click_keys.insert(click_key(ev)),
        };
        if !fresh {
            return Ok(false);
        }
        if token && ev.event_id.is_none() {
            let mark = forgotten_click(ev);
            if self.s.forgotten_clicks.insert(mark.clone()) {
                self.changes.forgotten_clicks.push(mark);
            }
        }
        let bot = is_bot(ev.user_agent.as_deref());
        let c = &ev.campaign_id;
        if bot {
            self.campaign_count(c, CampaignCounter::BotClicks, 1);
        } else {
            self.campaign_count(c, CampaignCounter::HumanClicks, 1);
            self.campaign_count(c, CampaignCounter::LinkClicks(ev.link_id.clone()), 1);
            self.campaign_count(c, CampaignCounter::MonthClicks(ev.at.month()), 1);
            if let Some(b) = ev.at.edge_bucket() {
                self.campaign_count(c, CampaignCounter::EdgeClicks(b), 1);
            }
            self.campaign_count(
                c,
                CampaignCounter::CountryClicks(Country::of(&ev.recipient)),
                1,
            );
            self.count(
                Counter::RecipientClicks {
                    campaign_id: c.clone(),
                    recipient: ev.recipient.clone(),
                },
                1,
            );
            let pair = (c.clone(), ev.link_id.clone(), ev.recipient.clone());
            if self.s.unique_pairs.insert(pair.clone()) {
                self.campaign_count(c, CampaignCounter::LinkUnique(ev.link_id.clone()), 1);
                self.changes.unique_pairs.push(pair);
            }
        }
        self.changes.clicks.push(ClickRecord {
            campaign_id: ev.campaign_id.clone(),
            link_id: ev.link_id.clone(),
            recipient: ev.recipient.clone(),
            at: ev.at,
            user_agent: ev.user_agent.clone(),
            event_id: ev.event_id.clone(),
            bot,
        });
        Ok(true)
    }

    fn finish(mut self) -> Changes {
        let mut ch = std::mem::take(&mut self.changes);
        ch.campaigns = self
            .dirty_campaigns
            .iter()
            .filter_map(|id| self.s.campaigns.get(id).cloned())
            .collect();
        ch.lists = self
            .dirty_lists
            .iter()
            .filter_map(|id| self.s.lists.get(id).map(|n| (id.clone(), n.clone())))
            .collect();
        ch.contacts = self
            .dirty_contacts
            .iter()
            .filter_map(|k| {
                self.s.contacts.get(k).map(|name| ContactRecord {
                    list_id: k.0.clone(),
                    recipient: k.1.clone(),
                    name: name.clone(),
                })
            })
            .collect();
        let messages = std::mem::take(&mut self.dirty_messages);
        ch.messages = messages
            .into_iter()
            .filter_map(|(id, (existed, previous))| {
                let state = self.s.messages.remove(&id)?;
                Some(MessageChange {
                    message_id: id,
                    state,
                    existed,
                    previous,
                })
            })
            .collect();
        ch.counters.retain(|_, v| *v != 0);
        ch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bots_by_marker_ignoring_case() {
        assert!(is_bot(Some("Mozilla/5.0 (compatible; Googlebot/2.1)")));
        assert!(is_bot(Some("facebookexternalhit/1.1")));
        assert!(is_bot(Some("WhatsApp/2.23")));
        assert!(is_bot(Some("python-requests/2.31")));
        assert!(is_bot(Some("Mozilla/5.0 HeadlessChrome/120")));
        assert!(!is_bot(Some(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
        )));
        assert!(!is_bot(Some("")));
        assert!(!is_bot(None));
        assert!(is_bot(Some("ROBOT")), "contains 'bot' ignoring case");
    }

    #[test]
    fn counter_names_round_trip() {
        let all = [
            CampaignCounter::Status(Status::FailedRouting),
            CampaignCounter::Segments,
            CampaignCounter::HumanClicks,
            CampaignCounter::BotClicks,
            CampaignCounter::LinkClicks("a:b".into()),
            CampaignCounter::LinkUnique("x".into()),
            CampaignCounter::MonthClicks(Month::new(2026, 3)),
            CampaignCounter::EdgeClicks(Millis(1_774_994_400_000)),
        ];
        for c in all {
            assert_eq!(CampaignCounter::from_name(&c.name()), Some(c));
        }
    }
}
