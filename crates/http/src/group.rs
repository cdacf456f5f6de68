//! Group commit (ARCHITECTURE.md, "Group commit"): concurrent ingest requests made
//! durable together, in one store call.
//!
//! [`GroupCommit`] wraps a [`Store`] and is one itself. Every read goes straight to the
//! wrapped store. [`Store::ingest`] hands its events to a queue that
//! [`GroupConfig::writers`] writer tasks share. A writer takes the queue, gathers the
//! requests waiting at that moment (up to [`GroupConfig::max_events`] events, lingering
//! at most [`GroupConfig::linger`] for more while the store is busy), lets the queue go to
//! the next writer, ingests its batch with one call of the wrapped store, and answers
//! each request with its own slice of the outcomes. So up to `writers` batches are in the
//! wrapped store at once: one on a single-writer store (sled, SQLite); several can help
//! on PostgreSQL when concurrent transactions do not wait for each other's rows.
//!
//! - A request is answered only after the store call that holds its events returned: an
//!   `Ok` is as durable as the wrapped store's own.
//! - Within a batch: its events are its requests' events one request after the other,
//!   and the engine decides every event in order against what the events before it in
//!   the same call did (`engine::apply`), exactly as if each request were its own call in
//!   that order. So a batch's outcomes are those of sequential calls: the same event in
//!   two requests is a duplicate the second time, two statuses of one message in two
//!   requests are decided as two calls would decide them (docs/rules.md, "Delivery
//!   statuses", "Duplicates", "Undated receipts").
//! - Across batches: with one writer, batches are written one after the other in the
//!   order their requests arrived, so every outcome is that of sequential calls. With
//!   several, two batches in the store at once are two concurrent `ingest` calls, as two
//!   `serve` instances on one PostgreSQL make (tests/concurrency.rs): the store's locks
//!   order them, and their outcomes follow that commit order, not the order the requests
//!   arrived in (the same event in both is new in whichever committed first and a
//!   duplicate in the other).
//! - A request is never split: one larger than `max_events` is a batch of its own.
//! - A failed batch fails every request in it with the same error (a backend failure is a
//!   `503` in every handler); none of them was acknowledged, so nothing acknowledged is
//!   lost, and the store's own atomicity means none of it is half stored. Batches beside
//!   it are not affected.
//! - The linger: a request that finds the store idle (no batch written within the last
//!   `linger`, and no other writer's batch in it) is written at once. While the store is
//!   busy, the writer gathering waits at most `linger` after the batch's first request,
//!   and only until the batch holds as many requests as the last batch written (by any
//!   writer) did: the clients just answered, coming back. It holds the queue while it
//!   waits, so the other writers are busy writing or waiting for it, never gathering half
//!   a batch beside it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use smsreport_core::engine::MessageRecord;
use smsreport_core::export::{ExportKind, Record};
use smsreport_core::forget::Forgotten;
use smsreport_core::insights::MessageFilter;
use smsreport_core::report::{CampaignTotals, Recount};
use smsreport_core::{Event, Millis, Outcome, Store, StoreError, TrackedLink};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The default most events of one batch: 2 000, as many as one `/v1/events` store call.
pub const DEFAULT_GROUP_COMMIT_MAX: usize = 2_000;
/// The default linger: 1 ms.
pub const DEFAULT_GROUP_COMMIT_LINGER: Duration = Duration::from_millis(1);

/// The default writers on PostgreSQL (`serve`'s, without `--group-commit-writers`): 1, as
/// on sled and SQLite. Measured with 1, 2, 4 and 8 (BENCHMARKS.md, "Callbacks through
/// serve"), more writers were no faster: concurrent batches of one campaign wait for each
/// other's commit on its counter rows and on their messages' lock buckets, so their
/// commits do not overlap, and each is smaller.
pub const DEFAULT_GROUP_COMMIT_WRITERS_POSTGRES: usize = 1;

/// How a [`GroupCommit`] gathers requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// The most events of one batch (a single larger request is a batch of its own); at
    /// least 1.
    pub max_events: usize,
    /// How long a batch may wait for more requests while the store is busy; zero: it
    /// takes only the requests already waiting.
    pub linger: Duration,
    /// How many batches may be in the wrapped store at once (writer tasks sharing one
    /// queue); at least 1. One for a single-writer store (sled, SQLite); more only where
    /// concurrent transactions overlap (PostgreSQL, writes that do not share rows).
    pub writers: usize,
}

impl Default for GroupConfig {
    fn default() -> GroupConfig {
        GroupConfig {
            max_events: DEFAULT_GROUP_COMMIT_MAX,
            linger: DEFAULT_GROUP_COMMIT_LINGER,
            writers: 1,
        }
    }
}

/// The upper bounds of [`GroupStats::requests_per_batch`]'s buckets; the last bucket
/// holds the batches of more than 64 requests.
pub const REQUESTS_PER_BATCH_BOUNDS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];

/// What a [`GroupCommit`] has written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Store calls made (batches), failed ones included.
    pub batches: u64,
    /// Batches whose store call failed.
    pub failed_batches: u64,
    /// Requests written (one per `Store::ingest` call on the wrapper).
    pub requests: u64,
    /// Events written.
    pub events: u64,
    /// Requests handed to the writer and not answered yet.
    pub waiting: u64,
    /// The most requests one batch held.
    pub max_batch_requests: u64,
    /// The most events one batch held.
    pub max_batch_events: u64,
    /// Batches by their number of requests: 1, 2, 3–4, 5–8, 9–16, 17–32, 33–64, more
    /// ([`REQUESTS_PER_BATCH_BOUNDS`]).
    pub requests_per_batch: [u64; 8],
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    failed_batches: AtomicU64,
    requests: AtomicU64,
    events: AtomicU64,
    waiting: AtomicU64,
    max_batch_requests: AtomicU64,
    max_batch_events: AtomicU64,
    requests_per_batch: [AtomicU64; 8],
}

impl Counters {
    fn batch(&self, requests: usize, events: usize, failed: bool) {
        let (r, e) = (requests as u64, events as u64);
        self.batches.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_batches.fetch_add(1, Ordering::Relaxed);
        }
        self.requests.fetch_add(r, Ordering::Relaxed);
        self.events.fetch_add(e, Ordering::Relaxed);
        self.max_batch_requests.fetch_max(r, Ordering::Relaxed);
        self.max_batch_events.fetch_max(e, Ordering::Relaxed);
        let bucket = REQUESTS_PER_BATCH_BOUNDS
            .iter()
            .position(|b| r <= *b)
            .unwrap_or(REQUESTS_PER_BATCH_BOUNDS.len());
        self.requests_per_batch[bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> GroupStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GroupStats {
            batches: g(&self.batches),
            failed_batches: g(&self.failed_batches),
            requests: g(&self.requests),
            events: g(&self.events),
            waiting: g(&self.waiting),
            max_batch_requests: g(&self.max_batch_requests),
            max_batch_events: g(&self.max_batch_events),
            requests_per_batch: std::array::from_fn(|i| g(&self.requests_per_batch[i])),
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Outcome>, StoreError>>;

/// One `ingest` call waiting for its batch.
struct Request {
    events: Vec<Event>,
    reply: Reply,
}

/// A [`Store`] that makes concurrent ingests durable together (the module's doc).
#[derive(Debug)]
pub struct GroupCommit {
    inner: Arc<dyn Store>,
    queue: mpsc::UnboundedSender<Request>,
    stats: Arc<Counters>,
    config: GroupConfig,
}

impl GroupCommit {
    /// Wraps `inner`; starts the writer tasks on the current tokio runtime (they end when
    /// the wrapper is dropped). A `max_events` or `writers` of 0 is taken as 1.
    pub fn new(inner: Arc<dyn Store>, mut config: GroupConfig) -> GroupCommit {
        config.max_events = config.max_events.max(1);
        config.writers = config.writers.max(1);
        let (queue, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(Queue { rx, carried: None }),
            last: std::sync::Mutex::new(None),
            in_flight: AtomicU64::new(0),
        });
        for _ in 0..config.writers {
            tokio::spawn(writer(inner.clone(), shared.clone(), config, stats.clone()));
        }
        GroupCommit {
            inner,
            queue,
            stats,
            config,
        }
    }

    /// How it gathers requests.
    pub fn config(&self) -> GroupConfig {
        self.config
    }

    /// What it has written so far.
    pub fn stats(&self) -> GroupStats {
        self.stats.get()
    }
}

fn writer_gone() -> StoreError {
    StoreError::backend(
        "group commit",
        std::io::Error::other("the writer task stopped"),
    )
}

/// What the writers share: the queue (with the request a full batch left over) and the
/// last batch written.
struct Shared {
    /// Taken by one writer at a time, for as long as it gathers a batch.
    queue: tokio::sync::Mutex<Queue>,
    /// When the last batch (of any writer) was written, and how many requests it held.
    last: std::sync::Mutex<Option<(Instant, usize)>>,
    /// Batches gathered and not written yet.
    in_flight: AtomicU64,
}

struct Queue {
    rx: mpsc::UnboundedReceiver<Request>,
    /// The request that did not fit in the previous batch: the next batch's first.
    carried: Option<Request>,
}

/// A writer task: gathers a batch (holding the queue meanwhile), writes it, answers its
/// requests, again, until every [`GroupCommit`] handle is dropped and the queue is empty.
/// [`GroupConfig::writers`] of them share the queue, so that many batches are in flight.
async fn writer(
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    config: GroupConfig,
    stats: Arc<Counters>,
) {
    while let Some((batch, events)) = gather(&shared, config).await {
        let requests = batch.len();
        write(&store, batch, events, &stats).await;
        *shared.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), requests));
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The next batch and its number of events; `None` once the queue is closed and empty.
async fn gather(shared: &Shared, config: GroupConfig) -> Option<(Vec<Request>, usize)> {
    let mut queue = shared.queue.lock().await;
    let q = &mut *queue;
    let first = match q.carried.take() {
        Some(r) => r,
        None => q.rx.recv().await?,
    };
    let start = Instant::now();
    // Busy: another writer's batch is in the store, or a batch was written within the
    // last `linger`. Then wait for as many requests as the last batch written held, for
    // at most `linger`.
    let last = *shared.last.lock().unwrap_or_else(|p| p.into_inner());
    let writing = shared.in_flight.load(Ordering::SeqCst) > 0;
    let target = match last {
        Some((at, n)) if writing || start.saturating_duration_since(at) <= config.linger => n,
        _ => 0,
    };
    let deadline = start + config.linger;
    let mut events = first.events.len();
    let mut batch = vec![first];
    while events < config.max_events {
        let next = match q.rx.try_recv() {
            Ok(r) => Some(r),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) if batch.len() < target => {
                tokio::time::timeout_at(deadline, q.rx.recv())
                    .await
                    .ok()
                    .flatten()
            }
            Err(mpsc::error::TryRecvError::Empty) => None,
        };
        let Some(r) = next else { break };
        if events + r.events.len() > config.max_events {
            q.carried = Some(r);
            break;
        }
        events += r.events.len();
        batch.push(r);
    }
    // Counted while the queue is held: the next writer to gather sees this batch.
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    Some((batch, events))
}

/// Ingests a batch in one store call, counts it, and answers each request.
async fn write(store: &Arc<dyn Store>, batch: Vec<Request>, total: usize, stats: &Counters) {
    let requests = batch.len();
    let mut events = Vec::with_capacity(total);
    let mut replies = Vec::with_capacity(batch.len());
    for mut r in batch {
        replies.push((r.events.len(), r.reply));
        events.append(&mut r.events);
    }
    // On a task of its own, so that a panic in the store fails this batch, not the writer.
    let store = store.clone();
    let call = tokio::spawn(async move { store.ingest(&events).await });
    let result = match call.await {
        Ok(Ok(outcomes)) if outcomes.len() == total => Ok(outcomes),
        Ok(Ok(outcomes)) => Err(Arc::new(StoreError::Corrupt(format!(
            "the store answered {} outcomes for {total} events",
            outcomes.len()
        )))),
        Ok(Err(e)) => Err(Arc::new(e)),
        Err(e) => Err(Arc::new(StoreError::backend("ingesting a batch", e))),
    };
    // Counted before any answer: a caller that has its answer is no longer waiting.
    stats.batch(requests, total, result.is_err());
    stats.waiting.fetch_sub(requests as u64, Ordering::Relaxed);
    match result {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for (n, reply) in replies {
                // A request whose caller went away is stored all the same.
                let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            for (_, reply) in replies {
                let _ = reply.send(Err(shared(&e)));
            }
        }
    }
}

/// The error of a failed batch, for each of its requests: the same kind (so each handler
/// answers as it would have to a call of its own), the same words and causes.
fn shared(e: &Arc<StoreError>) -> StoreError {
    match &**e {
        StoreError::NotFound(s) => StoreError::NotFound(s.clone()),
        StoreError::Invalid(s) => StoreError::Invalid(s.clone()),
        StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Backend { context, .. } => StoreError::Backend {
            context: context.clone(),
            source: Box::new(SharedSource(e.clone())),
        },
        _ => StoreError::Backend {
            context: "group commit".into(),
            source: Box::new(SharedSource(e.clone())),
        },
    }
}

/// A batch's backend error behind each of its requests' errors: it reads as the original
/// error's source, with the same causes.
#[derive(Debug)]
struct SharedSource(Arc<StoreError>);

impl std::fmt::Display for SharedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            StoreError::Backend { source, .. } => source.fmt(f),
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            StoreError::Backend { source, .. } => source.source(),
            other => other.source(),
        }
    }
}

#[async_trait]
impl Store for GroupCommit {
    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = self.queue.send(Request {
            events: events.to_vec(),
            reply,
        });
        if sent.is_err() {
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(writer_gone());
        }
        answer.await.map_err(|_| writer_gone())?
    }

    async fn totals(&self, campaign_id: &str) -> Result<Option<CampaignTotals>, StoreError> {
        self.inner.totals(campaign_id).await
    }

    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
        self.inner.all_totals().await
    }

    async fn edge_clicks(
        &self,
        campaign_id: &str,
    ) -> Result<std::collections::BTreeMap<Millis, i64>, StoreError> {
        self.inner.edge_clicks(campaign_id).await
    }

    async fn messages(
        &self,
        campaign_id: &str,
        filter: &MessageFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
        self.inner.messages(campaign_id, filter, after, limit).await
    }

    async fn recount(&self) -> Result<Recount, StoreError> {
        self.inner.recount().await
    }

    async fn orphans(&self) -> Result<smsreport_core::store::Orphans, StoreError> {
        self.inner.orphans().await
    }

    async fn count_quality(
        &self,
        campaign_id: &str,
        quality: smsreport_core::engine::Quality,
        n: i64,
    ) -> Result<bool, StoreError> {
        self.inner.count_quality(campaign_id, quality, n).await
    }

    async fn save_links(&self, links: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
        self.inner.save_links(links).await
    }

    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
        self.inner.resolve_link(code).await
    }

    async fn forget(&self, number: &str, token: &str) -> Result<Forgotten, StoreError> {
        self.inner.forget(number, token).await
    }

    async fn export_page(
        &self,
        kind: ExportKind,
        after: Option<&Record>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.export_page(kind, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsreport_core::event::parse_event;
    use smsreport_core::mem::MemStore;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// A [`MemStore`] whose ingests can be held at a gate, failed or made to panic, and
    /// that records each call's number of events and how many calls were in it at once.
    #[derive(Debug, Default)]
    struct Probe {
        inner: MemStore,
        closed: AtomicU64,
        /// While closed, the calls numbered up to this one pass all the same.
        passed: AtomicUsize,
        entered: AtomicUsize,
        fail_call: AtomicUsize,
        /// Fails every call whose number is a multiple of this; 0: none.
        fail_every: AtomicUsize,
        panic_call: AtomicUsize,
        /// Microseconds each call takes at least.
        slow_us: AtomicU64,
        inside: AtomicUsize,
        most_inside: AtomicUsize,
        calls: Mutex<Vec<usize>>,
        /// Each call's number of events, by its number (from 1).
        sizes: Mutex<std::collections::BTreeMap<usize, usize>>,
    }

    impl Probe {
        fn close(&self) {
            self.closed.store(1, Ordering::SeqCst);
        }
        fn open(&self) {
            self.closed.store(0, Ordering::SeqCst);
        }
    }

    impl Probe {
        async fn ingest_as_call(
            &self,
            call: usize,
            events: &[Event],
        ) -> Result<Vec<Outcome>, StoreError> {
            while self.closed.load(Ordering::SeqCst) == 1
                && call > self.passed.load(Ordering::SeqCst)
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let slow = self.slow_us.load(Ordering::SeqCst);
            if slow > 0 {
                tokio::time::sleep(Duration::from_micros(slow)).await;
            }
            self.calls.lock().unwrap().push(events.len());
            if self.panic_call.load(Ordering::SeqCst) == call {
                self.inside.fetch_sub(1, Ordering::SeqCst);
                panic!("the probe panics");
            }
            let every = self.fail_every.load(Ordering::SeqCst);
            if self.fail_call.load(Ordering::SeqCst) == call
                || (every > 0 && call.is_multiple_of(every))
            {
                return Err(StoreError::backend(
                    "writing a batch",
                    std::io::Error::other("the disk is on fire"),
                ));
            }
            self.inner.ingest(events).await
        }
    }

    #[async_trait]
    impl Store for Probe {
        async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
            let call = self.entered.fetch_add(1, Ordering::SeqCst) + 1;
            self.sizes.lock().unwrap().insert(call, events.len());
            let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_inside.fetch_max(inside, Ordering::SeqCst);
            let result = self.ingest_as_call(call, events).await;
            self.inside.fetch_sub(1, Ordering::SeqCst);
            result
        }
        async fn totals(&self, c: &str) -> Result<Option<CampaignTotals>, StoreError> {
            self.inner.totals(c).await
        }
        async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
            self.inner.all_totals().await
        }
        async fn edge_clicks(
            &self,
            c: &str,
        ) -> Result<std::collections::BTreeMap<Millis, i64>, StoreError> {
            self.inner.edge_clicks(c).await
        }
        async fn messages(
            &self,
            c: &str,
            f: &MessageFilter,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
            self.inner.messages(c, f, after, limit).await
        }
        async fn recount(&self) -> Result<Recount, StoreError> {
            self.inner.recount().await
        }
        async fn save_links(&self, l: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
            self.inner.save_links(l).await
        }
        async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
            self.inner.resolve_link(code).await
        }
    }

    fn events(lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| parse_event(l.as_bytes()).unwrap_or_else(|r| panic!("{l}: {r:?}")))
            .collect()
    }

    const CAMPAIGN: &str = r#"{"type":"campaign","campaign_id":"c","name":"C","contact_list":{"list_id":"l","name":"L"},"link_tracking":true,"links":[{"link_id":"sale","url":"https://shop.example/sale"}],"created_at":"2026-03-01T08:00:00Z"}"#;

    fn message(id: &str, campaign: &str, recipient: &str) -> String {
        format!(
            r#"{{"type":"message","message_id":"{id}","campaign_id":"{campaign}","recipient":"{recipient}","at":"2026-03-01T09:00:00Z"}}"#
        )
    }

    fn status(id: &str, status: &str, at: &str) -> String {
        format!(
            r#"{{"type":"status","message_id":"{id}","status":"{status}","at":"2026-03-01T{at}Z"}}"#
        )
    }

    const CLICK: &str = r#"{"type":"click","campaign_id":"c","link_id":"sale","recipient":"+37120000001","at":"2026-03-02T10:00:00Z","user_agent":"Mozilla/5.0"}"#;

    /// Waits (polling) until `ok` holds; a stuck test fails after a minute instead of
    /// hanging.
    async fn until(what: &str, ok: impl Fn() -> bool) {
        for _ in 0..60_000 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("still waiting for {what}");
    }

    type Answer = tokio::task::JoinHandle<Result<Vec<Outcome>, StoreError>>;

    /// Hands `requests` to `group` one after the other, each only once the one before it
    /// is waiting, so that they queue in this order.
    async fn submit_in_order(group: &Arc<GroupCommit>, requests: Vec<Vec<Event>>) -> Vec<Answer> {
        let mut answers = Vec::new();
        for r in requests {
            let before = group.stats().waiting;
            let g = group.clone();
            answers.push(tokio::spawn(async move { g.ingest(&r).await }));
            until("a request to queue", || group.stats().waiting == before + 1).await;
        }
        answers
    }

    /// One request held in the store, and while it is, `requests` queued in order; then
    /// the gate opens. Answers of the held one and of each queued one.
    async fn batch_behind_a_held_call(
        probe: &Arc<Probe>,
        group: &Arc<GroupCommit>,
        held: Vec<Event>,
        requests: Vec<Vec<Event>>,
    ) -> (Answer, Vec<Answer>) {
        probe.close();
        let entered = probe.entered.load(Ordering::SeqCst);
        let first = submit_in_order(group, vec![held]).await.remove(0);
        until("the held call to reach the store", || {
            probe.entered.load(Ordering::SeqCst) == entered + 1
        })
        .await;
        let rest = submit_in_order(group, requests).await;
        probe.open();
        (first, rest)
    }

    fn requests() -> Vec<Vec<Event>> {
        let m1 = message("m1", "c", "+37120000001");
        let m2 = message("m2", "c", "+37120000002");
        vec![
            events(&[
                &m1,
                &status("m1", "delivered", "09:00:07"),
                &status("m0", "sent", "09:00:01"),
            ]),
            // The same status again, a message, a click.
            events(&[&status("m1", "delivered", "09:00:07"), &m2, CLICK]),
            // The same click; a message of an unknown campaign; m0 delivered.
            events(&[
                CLICK,
                &message("m3", "nope", "+37120000003"),
                &status("m0", "delivered", "09:00:05"),
            ]),
            // m1 again, to another number: rejected; a status before its message.
            events(&[
                &message("m1", "c", "+37120000009"),
                &status("m9", "failed_routing", "09:10:00"),
            ]),
            // The message of that status; an earlier status of m0 changes nothing but is new.
            events(&[
                &message("m9", "c", "+37120000009"),
                &status("m0", "sent", "09:00:00"),
            ]),
            events(&[r#"{"type":"contact","list_id":"l","recipient":"+37120000001"}"#]),
            events(&[
                r#"{"type":"contact","list_id":"l","recipient":"+37120000001","name":"Anna"}"#,
                r#"{"type":"contact","list_id":"l","recipient":"+37120000001"}"#,
            ]),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_batched_together_get_the_outcomes_of_sequential_calls() {
        let probe = Arc::new(Probe::default());
        let group = Arc::new(GroupCommit::new(probe.clone(), GroupConfig::default()));
        let setup = events(&[CAMPAIGN, &message("m0", "c", "+37120000000")]);
        let reference = MemStore::default();
        assert_eq!(
            group.ingest(&setup).await.unwrap(),
            reference.ingest(&setup).await.unwrap()
        );

        let held = events(&[&status("m0", "enroute", "09:00:00")]);
        let (first, rest) =
            batch_behind_a_held_call(&probe, &group, held.clone(), requests()).await;
        assert_eq!(
            first.await.unwrap().unwrap(),
            reference.ingest(&held).await.unwrap()
        );
        for (i, (answer, request)) in rest.into_iter().zip(requests()).enumerate() {
            let got = answer.await.unwrap().unwrap();
            let want = reference.ingest(&request).await.unwrap();
            assert_eq!(got, want, "request {i}");
        }
        // Not all ingested: the comparison covered duplicates and rejections too.
        let all: Vec<Outcome> = {
            let r = MemStore::default();
            r.ingest(&setup).await.unwrap();
            r.ingest(&requests().concat()).await.unwrap()
        };
        assert!(all.contains(&Outcome::Duplicate));
        assert!(all.iter().any(|o| matches!(o, Outcome::Rejected(_))));
        assert_eq!(
            probe.calls.lock().unwrap().clone(),
            vec![2, 1, requests().concat().len()],
            "the queued requests went in one call"
        );
        let s = group.stats();
        assert_eq!(
            (s.batches, s.requests, s.failed_batches, s.waiting),
            (3, 9, 0, 0)
        );
        assert_eq!(s.max_batch_requests, 7);
        assert_eq!(s.requests_per_batch, [2, 0, 0, 1, 0, 0, 0, 0]);
        // The same state as the sequential calls (insights as of one fixed moment).
        let mut opts = smsreport_core::insights::InsightOptions::now();
        opts.as_of = Millis::parse("2026-03-05T00:00:00Z").unwrap();
        assert_eq!(
            group.report_at("c", opts, None).await.unwrap(),
            reference.report_at("c", opts, None).await.unwrap()
        );
        assert_eq!(
            group.campaigns().await.unwrap(),
            reference.campaigns().await.unwrap()
        );
        assert!(group.verify().await.unwrap().differences.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_fails_every_request_in_it_and_stores_none_of_it() {
        let probe = Arc::new(Probe::default());
        let group = Arc::new(GroupCommit::new(probe.clone(), GroupConfig::default()));
        let setup = events(&[CAMPAIGN]);
        group.ingest(&setup).await.unwrap();
        // Call 2 is held and succeeds; call 3, the queued requests' batch, fails.
        probe.fail_call.store(3, Ordering::SeqCst);
        let held = events(&[&message("m0", "c", "+37120000000")]);
        let queued: Vec<Vec<Event>> = (1..=5)
            .map(|i| events(&[&message(&format!("m{i}"), "c", &format!("+3712000000{i}"))]))
            .collect();
        let (first, rest) = batch_behind_a_held_call(&probe, &group, held, queued.clone()).await;
        assert_eq!(first.await.unwrap().unwrap(), vec![Outcome::Ingested]);
        for answer in rest {
            let e = answer.await.unwrap().unwrap_err();
            assert!(matches!(e, StoreError::Backend { .. }), "{e:?}");
            assert_eq!(
                smsreport_core::causes::with_causes(&e),
                "writing a batch: the disk is on fire"
            );
        }
        let s = group.stats();
        assert_eq!((s.batches, s.failed_batches, s.waiting), (3, 1, 0));
        // Nothing of the failed batch is stored: each request, posted again, is new.
        let report = group.report("c").await.unwrap();
        assert_eq!(report.delivery.total, 1);
        for r in &queued {
            assert_eq!(group.ingest(r).await.unwrap(), vec![Outcome::Ingested]);
        }
        assert_eq!(group.report("c").await.unwrap().delivery.total, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_store_fails_the_batch_and_the_writer_goes_on() {
        let probe = Arc::new(Probe::default());
        let group = Arc::new(GroupCommit::new(probe.clone(), GroupConfig::default()));
        probe.panic_call.store(1, Ordering::SeqCst);
        let e = group.ingest(&events(&[CAMPAIGN])).await.unwrap_err();
        assert!(matches!(e, StoreError::Backend { .. }), "{e:?}");
        assert_eq!(
            group.ingest(&events(&[CAMPAIGN])).await.unwrap(),
            vec![Outcome::Ingested]
        );
        assert_eq!(group.stats().failed_batches, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_stop_at_the_size_and_never_split_a_request() {
        let probe = Arc::new(Probe::default());
        let config = GroupConfig {
            max_events: 3,
            linger: Duration::ZERO,
            writers: 1,
        };
        let group = Arc::new(GroupCommit::new(probe.clone(), config));
        group.ingest(&events(&[CAMPAIGN])).await.unwrap();
        let m = |i: usize| message(&format!("m{i}"), "c", &format!("+3712000000{i}"));
        let queued = vec![
            events(&[&m(1), &m(2)]),
            events(&[&m(3), &m(4)]),
            events(&[&m(5), &m(6), &m(7), &m(8), &m(9)]),
            events(&[&m(1)]),
        ];
        let (first, rest) =
            batch_behind_a_held_call(&probe, &group, events(&[&m(0)]), queued).await;
        first.await.unwrap().unwrap();
        let mut outcomes = Vec::new();
        for a in rest {
            outcomes.push(a.await.unwrap().unwrap());
        }
        assert_eq!(outcomes[2], vec![Outcome::Ingested; 5]);
        assert_eq!(outcomes[3], vec![Outcome::Duplicate]);
        assert_eq!(probe.calls.lock().unwrap().clone(), vec![1, 1, 2, 2, 5, 1]);
        assert_eq!(group.stats().max_batch_events, 5);
    }

    /// A request that finds the store idle is written at once, and after a batch of one
    /// request the writer waits for no second one: with an hour's linger, this test would
    /// not end if either waited.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_linger_while_idle_or_for_a_lone_client() {
        for writers in [1, 3] {
            no_linger_with(writers).await;
        }
    }

    async fn no_linger_with(writers: usize) {
        let probe = Arc::new(Probe::default());
        let config = GroupConfig {
            max_events: 2_000,
            linger: Duration::from_secs(3_600),
            writers,
        };
        let group = GroupCommit::new(probe.clone(), config);
        group.ingest(&events(&[CAMPAIGN])).await.unwrap();
        for i in 0..20 {
            let m = message(&format!("m{i}"), "c", &format!("+371200000{i:02}"));
            assert_eq!(
                group.ingest(&events(&[&m])).await.unwrap(),
                vec![Outcome::Ingested]
            );
        }
        assert_eq!(group.stats().batches, 21);
    }

    fn writers(n: usize) -> GroupConfig {
        GroupConfig {
            writers: n,
            ..GroupConfig::default()
        }
    }

    async fn until_entered(probe: &Probe, calls: usize) {
        until("a call to reach the store", || {
            probe.entered.load(Ordering::SeqCst) == calls
        })
        .await;
    }

    /// Three writers: three requests each held in the store at once (one writer would
    /// never let the second in while the first is held: this would fail after a minute),
    /// then, while two of them still are, the queued requests in one batch beside them.
    /// Each request gets its own outcomes: within the batch those of sequential calls;
    /// the event two concurrent batches both hold is new in exactly one of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_writers_have_batches_in_the_store_at_once_each_request_its_own_outcomes() {
        let probe = Arc::new(Probe::default());
        let group = Arc::new(GroupCommit::new(probe.clone(), writers(3)));
        assert_eq!(group.config().writers, 3);
        let setup = events(&[CAMPAIGN, &message("m0", "c", "+37120000000")]);
        let reference = MemStore::default();
        assert_eq!(
            group.ingest(&setup).await.unwrap(),
            reference.ingest(&setup).await.unwrap()
        );
        // A click both b and c send; nothing in `requests()` depends on it or on mb, mc.
        let shared = r#"{"type":"click","campaign_id":"c","link_id":"sale","recipient":"+37120000005","at":"2026-03-02T11:00:00Z","user_agent":"Mozilla/5.0"}"#;
        let a = events(&[&status("m0", "enroute", "09:00:00")]);
        let b = events(&[&message("mb", "c", "+37120000006"), shared]);
        let c = events(&[&message("mc", "c", "+37120000007"), shared]);
        probe.close();
        let mut held = Vec::new();
        for (i, r) in [a.clone(), b.clone(), c.clone()].into_iter().enumerate() {
            held.extend(submit_in_order(&group, vec![r]).await);
            until_entered(&probe, 2 + i).await;
        }
        assert_eq!(probe.inside.load(Ordering::SeqCst), 3);
        let queued = submit_in_order(&group, requests()).await;
        // a's call ends; its writer takes every queued request, and is held with them.
        probe.passed.store(2, Ordering::SeqCst);
        until_entered(&probe, 5).await;
        assert_eq!(probe.inside.load(Ordering::SeqCst), 3);
        probe.open();

        let mut held = held.into_iter();
        let got_a = held.next().unwrap().await.unwrap().unwrap();
        assert_eq!(got_a, reference.ingest(&a).await.unwrap());
        let got_b = held.next().unwrap().await.unwrap().unwrap();
        let got_c = held.next().unwrap().await.unwrap().unwrap();
        assert_eq!(
            (got_b[0].clone(), got_c[0].clone()),
            (Outcome::Ingested, Outcome::Ingested)
        );
        let mut clicks = [got_b[1].clone(), got_c[1].clone()];
        clicks.sort_by_key(|o| o != &Outcome::Ingested);
        assert_eq!(
            clicks,
            [Outcome::Ingested, Outcome::Duplicate],
            "the shared click"
        );
        reference.ingest(&b).await.unwrap();
        reference.ingest(&c).await.unwrap();
        for (i, (answer, request)) in queued.into_iter().zip(requests()).enumerate() {
            let got = answer.await.unwrap().unwrap();
            assert_eq!(
                got,
                reference.ingest(&request).await.unwrap(),
                "request {i}"
            );
        }
        assert_eq!(
            probe.sizes.lock().unwrap()[&5],
            requests().concat().len(),
            "the queued requests went in one call"
        );
        let s = group.stats();
        assert_eq!(
            (
                s.batches,
                s.requests,
                s.failed_batches,
                s.waiting,
                s.max_batch_requests
            ),
            (5, 11, 0, 0, 7)
        );
        let mut opts = smsreport_core::insights::InsightOptions::now();
        opts.as_of = Millis::parse("2026-03-05T00:00:00Z").unwrap();
        assert_eq!(
            group.report_at("c", opts, None).await.unwrap(),
            reference.report_at("c", opts, None).await.unwrap()
        );
        assert!(group.verify().await.unwrap().differences.is_empty());
    }

    /// Two writers: a batch of five requests fails while another batch is in the store
    /// beside it. Each of the five gets the error, the other batch's request its
    /// outcome, and nothing of the failed batch is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_several_writers_a_failed_batch_fails_each_of_its_requests_and_only_those() {
        let probe = Arc::new(Probe::default());
        let group = Arc::new(GroupCommit::new(probe.clone(), writers(2)));
        group.ingest(&events(&[CAMPAIGN])).await.unwrap();
        let m = |i: usize| events(&[&message(&format!("m{i}"), "c", &format!("+3712000000{i}"))]);
        probe.close();
        let a = submit_in_order(&group, vec![m(0)]).await.remove(0);
        until_entered(&probe, 2).await;
        let b = submit_in_order(&group, vec![m(9)]).await.remove(0);
        until_entered(&probe, 3).await;
        let queued: Vec<Vec<Event>> = (1..=5).map(m).collect();
        let rest = submit_in_order(&group, queued.clone()).await;
        // a's call ends; the five go in call 4, which fails while b's call 3 is held.
        probe.fail_call.store(4, Ordering::SeqCst);
        probe.passed.store(2, Ordering::SeqCst);
        until_entered(&probe, 4).await;
        assert_eq!(a.await.unwrap().unwrap(), vec![Outcome::Ingested]);
        probe.open();
        for answer in rest {
            let e = answer.await.unwrap().unwrap_err();
            assert_eq!(
                smsreport_core::causes::with_causes(&e),
                "writing a batch: the disk is on fire"
            );
        }
        assert_eq!(b.await.unwrap().unwrap(), vec![Outcome::Ingested]);
        assert_eq!(probe.sizes.lock().unwrap()[&4], 5);
        let s = group.stats();
        assert_eq!((s.batches, s.failed_batches, s.waiting), (4, 1, 0));
        assert_eq!(group.report("c").await.unwrap().delivery.total, 2);
        for r in &queued {
            assert_eq!(group.ingest(r).await.unwrap(), vec![Outcome::Ingested]);
        }
        assert_eq!(group.report("c").await.unwrap().delivery.total, 7);
    }

    /// Four writers under load from 24 clients, a slow store failing every fifth call:
    /// never more than four calls in the store at once (and more than one); every request
    /// answered once, with its own two outcomes or its batch's error; the click every
    /// request sends new exactly once; every acknowledged message stored and nothing of
    /// a failed batch; the failed requests, posted again, all new.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_writers_under_load_lose_nothing_acknowledged() {
        let probe = Arc::new(Probe::default());
        let group = Arc::new(GroupCommit::new(probe.clone(), writers(4)));
        group.ingest(&events(&[CAMPAIGN])).await.unwrap();
        probe.slow_us.store(2_000, Ordering::SeqCst);
        probe.fail_every.store(5, Ordering::SeqCst);
        const CLIENTS: usize = 24;
        const EACH: usize = 15;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let group = group.clone();
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for i in 0..EACH {
                        let m = message(&format!("m{c}-{i}"), "c", &format!("+3712{c:02}{i:05}"));
                        let r = events(&[&m, CLICK]);
                        answers.push((r.clone(), group.ingest(&r).await));
                    }
                    answers
                })
            })
            .collect();
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for c in clients {
            for (request, answer) in c.await.unwrap() {
                match answer {
                    Ok(outcomes) => ok.push(outcomes),
                    Err(e) => {
                        assert_eq!(
                            smsreport_core::causes::with_causes(&e),
                            "writing a batch: the disk is on fire"
                        );
                        failed.push(request);
                    }
                }
            }
        }
        let s = group.stats();
        assert_eq!(ok.len() + failed.len(), CLIENTS * EACH);
        assert_eq!(s.requests, 1 + (CLIENTS * EACH) as u64);
        assert_eq!(s.waiting, 0);
        assert!(s.failed_batches > 0 && !failed.is_empty(), "{s:?}");
        let most = probe.most_inside.load(Ordering::SeqCst);
        assert!((2..=4).contains(&most), "{most} calls in the store at once");
        for o in &ok {
            assert_eq!(o.len(), 2);
            assert_eq!(o[0], Outcome::Ingested);
        }
        let new_clicks = ok.iter().filter(|o| o[1] == Outcome::Ingested).count();
        assert_eq!(new_clicks, 1, "the shared click is new exactly once");
        let report = group.report("c").await.unwrap();
        assert_eq!(report.delivery.total, ok.len() as u64);
        probe.fail_every.store(0, Ordering::SeqCst);
        for r in &failed {
            assert_eq!(
                group.ingest(r).await.unwrap(),
                vec![Outcome::Ingested, Outcome::Duplicate]
            );
        }
        let report = group.report("c").await.unwrap();
        assert_eq!(report.delivery.total, (CLIENTS * EACH) as u64);
        assert!(group.verify().await.unwrap().differences.is_empty());
    }
}
