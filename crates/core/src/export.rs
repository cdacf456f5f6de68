//! Export: the whole store as event NDJSON that `ingest` takes back, in one canonical
//! order (docs/events.md, "Export"), page by page so memory does not grow with the
//! store.
//!
//! A backend only pages through its records ([`Store::export_page`]); what a record
//! becomes as a line, and the order of the sections, is decided here, once:
//!
//! 1. `campaign` lines, by `campaign_id`;
//! 2. `contact` lines, by (`list_id`, `recipient`);
//! 3. `message` lines, by `message_id`;
//! 4. `status` lines, by `message_id`: each message's current status and each status
//!    still waiting for its message;
//! 5. `click` lines: those with an `event_id` by it, then the others by (`campaign_id`,
//!    `link_id`, `recipient`, `at`);
//! 6. `tracked_link` lines, by `code`.
//!
//! Text keys compare as bytes, whatever the backend's collation; `at` as a number.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Deref;

use serde_json::{json, Value};

use crate::engine::{CampaignDef, ClickRecord, MessageRecord};
use crate::store::{Store, StoreError, TrackedLink};
use crate::StatusKey;

/// Records a backend returns per [`Store::export_page`] call when exporting.
pub const PAGE: usize = 1_000;

/// What [`Store::export_page`] pages through, each in its own key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExportKind {
    /// Campaign definitions with their list's name, by `campaign_id`.
    Campaigns,
    /// Contacts, by (`list_id`, `recipient`).
    Contacts,
    /// Messages that arrived (with their current status), by `message_id`.
    Messages,
    /// Statuses whose message has not arrived (the greatest one), by `message_id`.
    Pending,
    /// Clicks with an `event_id`, by it.
    EventClicks,
    /// Clicks without one, by (`campaign_id`, `link_id`, `recipient`, `at`).
    Clicks,
    /// Tracked links, by `code`.
    TrackedLinks,
}

/// One stored record, as [`Store::export_page`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A campaign and, when it has a contact list, that list's name.
    Campaign {
        /// The definition.
        def: CampaignDef,
        /// The name of `def.contact_list`, when the store has one.
        list_name: Option<String>,
    },
    /// A contact.
    Contact {
        /// Its list.
        list_id: String,
        /// The phone number.
        recipient: String,
        /// Its name, if one was given.
        name: Option<String>,
    },
    /// A message and its current status.
    Message(MessageRecord),
    /// The greatest status seen for a message not yet known.
    Pending {
        /// The message it waits for.
        message_id: String,
        /// The status.
        key: StatusKey,
    },
    /// A click.
    Click(ClickRecord),
    /// A tracked link.
    Link(TrackedLink),
}

/// The paging key of a record: the text fields of its key and, for a click without an
/// `event_id`, its time. Records of one kind are returned in this key's order (text as
/// bytes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportKey {
    /// The key's text fields, in order.
    pub text: Vec<String>,
    /// A click's time (milliseconds), for [`ExportKind::Clicks`]; 0 otherwise.
    pub at: i64,
}

impl Record {
    /// The record's key in its kind's order.
    pub fn key(&self) -> ExportKey {
        let (text, at) = match self {
            Record::Campaign { def, .. } => (vec![def.campaign_id.clone()], 0),
            Record::Contact {
                list_id, recipient, ..
            } => (vec![list_id.clone(), recipient.clone()], 0),
            Record::Message(m) => (vec![m.message_id.clone()], 0),
            Record::Pending { message_id, .. } => (vec![message_id.clone()], 0),
            Record::Click(c) => match &c.event_id {
                Some(id) => (vec![id.clone()], 0),
                None => (
                    vec![
                        c.campaign_id.clone(),
                        c.link_id.clone(),
                        c.recipient.clone(),
                    ],
                    c.at.0,
                ),
            },
            Record::Link(l) => (vec![l.code.clone()], 0),
        };
        ExportKey { text, at }
    }
}

/// One line: `v`'s members but those that are `null` (an absent optional field), in
/// name order (serde_json's map is sorted): the same record, the same bytes.
fn line(mut v: Value) -> Vec<u8> {
    if let Value::Object(o) = &mut v {
        o.retain(|_, m| !m.is_null());
    }
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    b
}

fn status_line(message_id: &str, key: &StatusKey) -> Vec<u8> {
    line(json!({
        "type": "status",
        "message_id": message_id,
        "status": key.status.as_str(),
        "at": key.at.to_string(),
        "error_code": key.error_code,
    }))
}

fn record_line(r: &Record) -> Vec<u8> {
    match r {
        Record::Campaign { def, list_name } => line(json!({
            "type": "campaign",
            "campaign_id": def.campaign_id,
            "name": def.name,
            "contact_list": def.contact_list.as_ref().map(|list| {
                json!({"list_id": list, "name": list_name.as_deref().unwrap_or(list)})
            }),
            "link_tracking": def.link_tracking,
            "links": def
                .links
                .iter()
                .map(|(id, url)| json!({"link_id": id, "url": url}))
                .collect::<Vec<_>>(),
            "created_at": def.created_at.map(|at| at.to_string()),
        })),
        Record::Contact {
            list_id,
            recipient,
            name,
        } => line(json!({
            "type": "contact",
            "list_id": list_id,
            "recipient": recipient,
            "name": name,
        })),
        Record::Message(m) => line(json!({
            "type": "message",
            "message_id": m.message_id,
            "campaign_id": m.campaign_id,
            "recipient": m.recipient,
            "parts": m.parts,
            "at": m.at.to_string(),
        })),
        Record::Pending { message_id, key } => status_line(message_id, key),
        Record::Click(c) => line(json!({
            "type": "click",
            "campaign_id": c.campaign_id,
            "link_id": c.link_id,
            "recipient": c.recipient,
            "at": c.at.to_string(),
            "user_agent": c.user_agent,
            "event_id": c.event_id,
        })),
        Record::Link(l) => line(json!({
            "type": "tracked_link",
            "code": l.code,
            "campaign_id": l.campaign_id,
            "link_id": l.link_id,
            "message_id": l.message_id,
            "recipient": l.recipient,
        })),
    }
}

/// One kind's records, a page at a time.
struct Cursor {
    kind: ExportKind,
    after: Option<Record>,
    buf: VecDeque<Record>,
    done: bool,
}

impl Cursor {
    fn new(kind: ExportKind) -> Cursor {
        Cursor {
            kind,
            after: None,
            buf: VecDeque::new(),
            done: false,
        }
    }

    /// The next record, without taking it; reads a page when the buffer is empty.
    async fn peek(
        &mut self,
        store: &dyn Store,
        limit: usize,
    ) -> Result<Option<&Record>, StoreError> {
        if self.buf.is_empty() && !self.done {
            let page = store
                .export_page(self.kind, self.after.as_ref(), limit)
                .await?;
            if let Some(prev) = &self.after {
                if let Some(first) = page.first() {
                    if first.key() <= prev.key() {
                        return Err(StoreError::Corrupt(format!(
                            "the store paged {:?} out of order",
                            self.kind
                        )));
                    }
                }
            }
            self.done = page.len() < limit;
            self.after = page.last().cloned().or(self.after.take());
            self.buf.extend(page);
        }
        Ok(self.buf.front())
    }

    fn take(&mut self) -> Option<Record> {
        self.buf.pop_front()
    }
}

/// The sections of an export, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Campaigns,
    Contacts,
    Messages,
    Statuses,
    EventClicks,
    Clicks,
    Links,
    Done,
}

/// A running export: [`Export::next_chunk`] gives the next lines until it gives `None`.
pub struct Export<S> {
    store: S,
    section: Section,
    main: Cursor,
    /// The pending statuses, merged into the status section.
    pending: Cursor,
    counts: BTreeMap<&'static str, u64>,
    page: usize,
}

impl<S> std::fmt::Debug for Export<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("section", &self.section)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Deref<Target = dyn Store + 'a>> Export<S> {
    /// Starts an export of `store` (an `Arc<dyn Store>` or a `&dyn Store`).
    pub fn new(store: S) -> Export<S> {
        Export {
            store,
            section: Section::Campaigns,
            main: Cursor::new(ExportKind::Campaigns),
            pending: Cursor::new(ExportKind::Pending),
            counts: BTreeMap::new(),
            page: PAGE,
        }
    }

    /// Asks the store for pages of `page` records (at least 1) instead of [`PAGE`]: the
    /// lines are the same.
    pub fn with_page(mut self, page: usize) -> Export<S> {
        self.page = page.max(1);
        self
    }

    /// Lines written so far, by `type`.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.counts.values().sum()
    }

    fn next_section(&mut self) {
        let (next, kind) = match self.section {
            Section::Campaigns => (Section::Contacts, ExportKind::Contacts),
            Section::Contacts => (Section::Messages, ExportKind::Messages),
            Section::Messages => (Section::Statuses, ExportKind::Messages),
            Section::Statuses => (Section::EventClicks, ExportKind::EventClicks),
            Section::EventClicks => (Section::Clicks, ExportKind::Clicks),
            Section::Clicks => (Section::Links, ExportKind::TrackedLinks),
            Section::Links | Section::Done => (Section::Done, ExportKind::TrackedLinks),
        };
        self.section = next;
        self.main = Cursor::new(kind);
    }

    /// Up to about [`PAGE`] more lines, or `None` once everything is written.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        let mut n = 0;
        while n < PAGE {
            if self.section == Section::Done {
                break;
            }
            if self.section == Section::Statuses {
                // Messages' statuses and pending statuses, merged by message_id.
                let a = self
                    .main
                    .peek(&*self.store, self.page)
                    .await?
                    .map(Record::key);
                let b = self
                    .pending
                    .peek(&*self.store, self.page)
                    .await?
                    .map(Record::key);
                let from_main = match (&a, &b) {
                    (None, None) => {
                        self.next_section();
                        continue;
                    }
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some(a), Some(b)) => a <= b,
                };
                let r = if from_main {
                    self.main.take()
                } else {
                    self.pending.take()
                };
                match r {
                    Some(Record::Message(m)) => {
                        if let Some(k) = &m.status {
                            out.extend(status_line(&m.message_id, k));
                            *self.counts.entry("status").or_default() += 1;
                            n += 1;
                        }
                    }
                    Some(r @ Record::Pending { .. }) => {
                        out.extend(record_line(&r));
                        *self.counts.entry("status").or_default() += 1;
                        n += 1;
                    }
                    Some(other) => {
                        return Err(StoreError::Corrupt(format!(
                            "the store answered {other:?} for statuses"
                        )))
                    }
                    None => {}
                }
                continue;
            }
            if self.main.peek(&*self.store, self.page).await?.is_none() {
                self.next_section();
                continue;
            }
            let Some(r) = self.main.take() else { continue };
            let ty = match (&self.section, &r) {
                (Section::Campaigns, Record::Campaign { .. }) => "campaign",
                (Section::Contacts, Record::Contact { .. }) => "contact",
                (Section::Messages, Record::Message(_)) => "message",
                (Section::EventClicks, Record::Click(c)) if c.event_id.is_some() => "click",
                (Section::Clicks, Record::Click(c)) if c.event_id.is_none() => "click",
                (Section::Links, Record::Link(_)) => "tracked_link",
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "the store answered {r:?} for {:?}",
                        self.main.kind
                    )))
                }
            };
            out.extend(record_line(&r));
            *self.counts.entry(ty).or_default() += 1;
            n += 1;
        }
        Ok(if out.is_empty() && self.section == Section::Done {
            None
        } else {
            Some(out)
        })
    }
}

/// Filters and orders a kind's records for a store that keeps them in no useful order
/// (the in-memory store): those after `after`, in key order, at most `limit`.
pub fn page_of(
    records: impl Iterator<Item = Record>,
    after: Option<&Record>,
    limit: usize,
) -> Vec<Record> {
    let after = after.map(Record::key);
    let mut v: Vec<(ExportKey, Record)> = records
        .map(|r| (r.key(), r))
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().take(limit).map(|(_, r)| r).collect()
}
