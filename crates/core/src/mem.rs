//! [`MemStore`]: the in-memory reference store.
//!
//! The smallest complete [`Store`]: every method a backend must write, with nothing but
//! maps behind it. A new backend's author reads it first: everything below is storage
//! (load what [`Needs`] names, write what [`Changes`] says); every rule is in
//! [`crate::engine`] and [`crate::report`]. It passes the conformance suite
//! (`smsreport-conformance`), and the engine's rules are unit-tested through it without a
//! database. It keeps nothing on disk: "durable" here means "stored in the map".

use crate::export::{page_of, ExportKind, Record};
use crate::forget::Forgotten;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::engine::{
    apply, CampaignDef, Changes, ClickKey, ClickRecord, Counter, ForgottenClick, Loaded,
    MessageRecord, MessageState, Needs, Outcome, UniquePair,
};
use crate::insights::MessageFilter;
use crate::report::{CampaignTotals, Recount};
use crate::store::{edges_from_rows, LinkSave, StoredLinks};
use crate::{Event, Millis, Store, StoreError, TrackedLink};

/// Everything the store holds.
#[derive(Debug, Default)]
struct State {
    campaigns: BTreeMap<String, CampaignDef>,
    /// list_id → name.
    lists: HashMap<String, String>,
    /// (list_id, recipient) → name.
    contacts: BTreeMap<(String, String), Option<String>>,
    messages: BTreeMap<String, MessageState>,
    /// Clicks with an `event_id`, by it.
    event_clicks: HashMap<String, ClickRecord>,
    /// Clicks without one, by their identity.
    key_clicks: HashMap<ClickKey, ClickRecord>,
    unique_pairs: BTreeSet<UniquePair>,
    forgotten_clicks: BTreeSet<ForgottenClick>,
    /// Every counter by name, as a SQL store keeps them: campaign counters by
    /// [`crate::engine::CampaignCounter::name`].
    counters: BTreeMap<Counter, i64>,
    /// code → link.
    links: HashMap<String, TrackedLink>,
    /// (message_id, link_id) → code.
    link_codes: HashMap<(String, String), String>,
}

/// The in-memory reference store (see the module's docs).
///
/// ```
/// use smsreport_core::ingest::{ingest_events, split_lines};
/// use smsreport_core::mem::{block_on, MemStore};
/// use smsreport_core::Store;
///
/// let store = MemStore::default();
/// let text = r#"{"type":"campaign","campaign_id":"c","name":"C"}
/// {"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}
/// {"type":"status","message_id":"m1","status":"delivered","at":"2026-03-01T09:00:07Z"}"#;
/// block_on(async {
///     ingest_events(&store, split_lines(text.as_bytes())).await.unwrap();
///     let report = store.report("c").await.unwrap();
///     assert_eq!((report.delivery.total, report.delivery.delivered), (1, 1));
/// });
/// ```
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
}

impl MemStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Step 2 of an ingest: read exactly what the batch can touch.
    fn load(&self, n: &Needs) -> Loaded {
        fn pick<K: Ord + Clone + std::hash::Hash, V: Clone>(
            keys: &BTreeSet<K>,
            get: impl Fn(&K) -> Option<V>,
        ) -> HashMap<K, V> {
            keys.iter()
                .filter_map(|k| get(k).map(|v| (k.clone(), v)))
                .collect()
        }
        Loaded {
            campaigns: pick(&n.campaigns, |k| self.campaigns.get(k).cloned()),
            lists: pick(&n.lists, |k| self.lists.get(k).cloned()),
            contacts: pick(&n.contacts, |k| self.contacts.get(k).cloned()),
            messages: pick(&n.messages, |k| self.messages.get(k).cloned()),
            click_event_ids: n
                .click_event_ids
                .iter()
                .filter(|k| self.event_clicks.contains_key(*k))
                .cloned()
                .collect(),
            click_keys: n
                .click_keys
                .iter()
                .filter(|k| self.key_clicks.contains_key(*k))
                .cloned()
                .collect(),
            unique_pairs: n
                .unique_pairs
                .iter()
                .filter(|k| self.unique_pairs.contains(*k))
                .cloned()
                .collect(),
            forgotten_clicks: n
                .forgotten_clicks
                .iter()
                .filter(|k| self.forgotten_clicks.contains(*k))
                .cloned()
                .collect(),
        }
    }

    /// [`Store::forget`]: every place the number is, in one step.
    fn forget(&mut self, number: &str, token: &str) -> Forgotten {
        let mut f = Forgotten::default();
        let contacts: Vec<(String, String)> = self
            .contacts
            .keys()
            .filter(|(_, r)| r == number)
            .cloned()
            .collect();
        for k in contacts {
            self.contacts.remove(&k);
            *self.counters.entry(Counter::Subscribers(k.0)).or_default() -= 1;
            f.contacts += 1;
        }
        for m in self.messages.values_mut() {
            if let Some(r) = m.record.as_mut().filter(|r| r.recipient == number) {
                r.recipient = token.to_owned();
                f.messages += 1;
            }
        }
        for c in self
            .event_clicks
            .values_mut()
            .filter(|c| c.recipient == number)
        {
            c.recipient = token.to_owned();
            f.clicks += 1;
        }
        let keys: Vec<ClickKey> = self
            .key_clicks
            .keys()
            .filter(|k| k.recipient == number)
            .cloned()
            .collect();
        for mut k in keys {
            let Some(mut c) = self.key_clicks.remove(&k) else {
                continue;
            };
            c.recipient = token.to_owned();
            k.recipient = token.to_owned();
            self.forgotten_clicks
                .insert((c.campaign_id.clone(), c.link_id.clone(), c.at));
            self.key_clicks.insert(k, c);
            f.clicks += 1;
        }
        let pairs: Vec<UniquePair> = self
            .unique_pairs
            .iter()
            .filter(|p| p.2 == number)
            .cloned()
            .collect();
        for p in pairs {
            self.unique_pairs.remove(&p);
            self.unique_pairs.insert((p.0, p.1, token.to_owned()));
        }
        let per_recipient: Vec<(String, i64)> = self
            .counters
            .iter()
            .filter_map(|(c, v)| match c {
                Counter::RecipientClicks {
                    campaign_id,
                    recipient,
                } if recipient == number => Some((campaign_id.clone(), *v)),
                _ => None,
            })
            .collect();
        for (campaign_id, v) in per_recipient {
            self.counters.remove(&Counter::RecipientClicks {
                campaign_id: campaign_id.clone(),
                recipient: number.to_owned(),
            });
            *self
                .counters
                .entry(Counter::RecipientClicks {
                    campaign_id,
                    recipient: token.to_owned(),
                })
                .or_default() += v;
        }
        for l in self.links.values_mut().filter(|l| l.recipient == number) {
            l.recipient = token.to_owned();
            f.tracked_links += 1;
        }
        f
    }

    /// Step 4: store what the engine decided.
    fn write(&mut self, ch: Changes) {
        for c in ch.campaigns {
            self.campaigns.insert(c.campaign_id.clone(), c);
        }
        self.lists.extend(ch.lists);
        for c in ch.contacts {
            self.contacts.insert((c.list_id, c.recipient), c.name);
        }
        for m in ch.messages {
            self.messages.insert(m.message_id, m.state);
        }
        for c in ch.clicks {
            match &c.event_id {
                Some(id) => {
                    self.event_clicks.insert(id.clone(), c);
                }
                None => {
                    let key = ClickKey {
                        campaign_id: c.campaign_id.clone(),
                        link_id: c.link_id.clone(),
                        recipient: c.recipient.clone(),
                        at: c.at,
                    };
                    self.key_clicks.insert(key, c);
                }
            }
        }
        self.unique_pairs.extend(ch.unique_pairs);
        self.forgotten_clicks.extend(ch.forgotten_clicks);
        for (counter, delta) in ch.counters {
            *self.counters.entry(counter).or_default() += delta;
        }
    }

    fn totals(&self, def: &CampaignDef) -> Result<CampaignTotals, StoreError> {
        let list = def.contact_list.as_ref().map(|id| {
            let subscribers = self
                .counters
                .get(&Counter::Subscribers(id.clone()))
                .copied()
                .unwrap_or(0);
            (self.lists.get(id).cloned().unwrap_or_default(), subscribers)
        });
        let rows = self
            .campaign_counters(&def.campaign_id)
            .filter_map(|(name, v)| {
                (!name.starts_with(crate::engine::EDGE_NAMES_START)).then_some((name, v))
            });
        CampaignTotals::from_stored(def.clone(), list, rows)
    }

    fn campaign_counters<'a>(
        &'a self,
        campaign_id: &'a str,
    ) -> impl Iterator<Item = (String, i64)> + 'a {
        self.counters.iter().filter_map(move |(c, v)| match c {
            Counter::Campaign(id, c) if id == campaign_id => Some((c.name(), *v)),
            _ => None,
        })
    }
}

#[async_trait]
impl Store for MemStore {
    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let mut state = self.state();
        let loaded = state.load(&Needs::of(events));
        let (outcomes, changes) = apply(loaded, events);
        state.write(changes);
        Ok(outcomes)
    }

    async fn totals(&self, campaign_id: &str) -> Result<Option<CampaignTotals>, StoreError> {
        let state = self.state();
        state
            .campaigns
            .get(campaign_id)
            .map(|def| state.totals(def))
            .transpose()
    }

    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
        let state = self.state();
        state.campaigns.values().map(|d| state.totals(d)).collect()
    }

    async fn edge_clicks(&self, campaign_id: &str) -> Result<BTreeMap<Millis, i64>, StoreError> {
        let state = self.state();
        edges_from_rows(
            state
                .campaign_counters(campaign_id)
                .filter(|(name, _)| name.starts_with(crate::engine::EDGE_NAMES_START)),
        )
    }

    async fn messages(
        &self,
        campaign_id: &str,
        filter: &MessageFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
        let state = self.state();
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_owned()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(state
            .messages
            .range((from, std::ops::Bound::Unbounded))
            .filter_map(|(_, m)| m.record.as_ref())
            .filter(|m| m.campaign_id == campaign_id && filter.matches(m))
            .take(limit)
            .map(|m| {
                let clicks = state
                    .counters
                    .get(&Counter::RecipientClicks {
                        campaign_id: campaign_id.to_owned(),
                        recipient: m.recipient.clone(),
                    })
                    .copied()
                    .unwrap_or(0);
                (m.clone(), clicks)
            })
            .collect())
    }

    async fn count_quality(
        &self,
        campaign_id: &str,
        quality: crate::engine::Quality,
        n: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if !state.campaigns.contains_key(campaign_id) {
            return Ok(false);
        }
        let c = Counter::Campaign(
            campaign_id.to_owned(),
            crate::engine::CampaignCounter::Quality(quality),
        );
        *state.counters.entry(c).or_default() += n;
        Ok(true)
    }

    async fn orphans(&self) -> Result<crate::store::Orphans, StoreError> {
        let mut o = crate::store::Orphans::default();
        for m in self.state().messages.values() {
            if let (None, Some(p)) = (&m.record, &m.pending) {
                o.add(p.at);
            }
        }
        Ok(o)
    }

    async fn recount(&self) -> Result<Recount, StoreError> {
        let state = self.state();
        let mut rc = Recount::default();
        for m in state.messages.values().filter_map(|m| m.record.as_ref()) {
            rc.message(m);
        }
        for c in state.event_clicks.values().chain(state.key_clicks.values()) {
            rc.click(c);
        }
        for (list, _) in state.contacts.keys() {
            rc.contact(list);
        }
        Ok(rc)
    }

    async fn forget(&self, number: &str, token: &str) -> Result<Forgotten, StoreError> {
        Ok(self.state().forget(number, token))
    }

    async fn export_page(
        &self,
        kind: ExportKind,
        after: Option<&Record>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let state = self.state();
        let all: Box<dyn Iterator<Item = Record> + '_> = match kind {
            ExportKind::Campaigns => Box::new(state.campaigns.values().map(|def| {
                Record::Campaign {
                    def: def.clone(),
                    list_name: def
                        .contact_list
                        .as_ref()
                        .and_then(|l| state.lists.get(l).cloned()),
                }
            })),
            ExportKind::Contacts => {
                Box::new(state.contacts.iter().map(|((l, r), name)| Record::Contact {
                    list_id: l.clone(),
                    recipient: r.clone(),
                    name: name.clone(),
                }))
            }
            ExportKind::Messages => Box::new(
                state
                    .messages
                    .values()
                    .filter_map(|m| m.record.clone().map(Record::Message)),
            ),
            ExportKind::Pending => Box::new(state.messages.iter().filter_map(|(id, m)| {
                match (&m.record, &m.pending) {
                    (None, Some(k)) => Some(Record::Pending {
                        message_id: id.clone(),
                        key: k.clone(),
                    }),
                    _ => None,
                }
            })),
            ExportKind::EventClicks => {
                Box::new(state.event_clicks.values().cloned().map(Record::Click))
            }
            ExportKind::Clicks => Box::new(state.key_clicks.values().cloned().map(Record::Click)),
            ExportKind::TrackedLinks => Box::new(state.links.values().cloned().map(Record::Link)),
        };
        Ok(page_of(all, after, limit))
    }

    async fn save_links(&self, links: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
        let mut state = self.state();
        let save = LinkSave::new(links);
        let mut stored = StoredLinks::new();
        for t in save.pairs() {
            let pair = (t.message_id.clone(), t.link_id.clone());
            if let Some(code) = state.link_codes.get(&pair) {
                stored.insert(pair, state.links[code].clone());
            }
        }
        let new = save.to_insert(&stored, |code| Ok(state.links.contains_key(code)))?;
        for t in new {
            let pair = (t.message_id.clone(), t.link_id.clone());
            state.link_codes.insert(pair.clone(), t.code.clone());
            state.links.insert(t.code.clone(), t.clone());
            stored.insert(pair, t.clone());
        }
        save.answer(&stored)
    }

    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
        Ok(self.state().links.get(code).cloned())
    }
}

/// Runs a future to completion on the current thread: enough for [`MemStore`], whose
/// futures never wait, in doc examples and tests without a runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{ingest_events, split_lines};
    use crate::report::compare;
    use crate::Status;

    /// `verify` compares the insight counters too: a stored total that lost one is named.
    #[test]
    fn verify_names_a_missing_insight_counter() {
        let store = MemStore::default();
        let text = r#"{"type":"campaign","campaign_id":"c","name":"C","links":[{"link_id":"l","url":"https://x.example/"}]}
{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}
{"type":"status","message_id":"m1","status":"delivered","at":"2026-03-01T09:00:07Z"}
{"type":"message","message_id":"m2","campaign_id":"c","recipient":"+37120000002","at":"2026-03-01T09:00:00Z"}
{"type":"click","campaign_id":"c","link_id":"l","recipient":"+37120000001","at":"2026-03-02T09:00:00Z"}"#;
        block_on(async {
            ingest_events(&store, split_lines(text.as_bytes()))
                .await
                .unwrap();
            let recount = store.recount().await.unwrap();
            let stored = store.all_totals().await.unwrap();
            assert!(compare(&stored, &recount).differences.is_empty());
            for (tamper, says) in [
                (0, "latency ≤ 10 s"),
                (1, "awaiting a receipt"),
                (2, "messages to 371:LV with status delivered"),
                (3, "human clicks from 371:LV"),
            ] {
                let mut t = stored.clone();
                let c = &mut t[0].counters;
                match tamper {
                    0 => c.latency[3] -= 1,
                    1 => *c.awaiting.values_mut().next().unwrap() += 1,
                    2 => {
                        *c.countries
                            .iter_mut()
                            .find(|(k, _)| k.1 == Status::Delivered)
                            .unwrap()
                            .1 += 1
                    }
                    _ => *c.country_clicks.values_mut().next().unwrap() -= 1,
                }
                let d = compare(&t, &recount).differences;
                assert_eq!(d.len(), 1, "{d:?}");
                assert!(d[0].contains(says), "{d:?}");
            }
        });
    }
}
