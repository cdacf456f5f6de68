//! The click spool (docs/security.md, "Clicks while the store is down"): a click the
//! store could not take is kept in a local append-only file, made durable before the
//! visitor is redirected, and recorded in the store once it takes writes again.
//!
//! - A spooled click is a line `{"code":…,"at":…,"user_agent":…}`: the link's code, not
//!   the link, so a click kept before a person was forgotten is recorded the way a click
//!   after it would be (the code is looked up again when it is recorded).
//! - Keeping a click appends its line under an exclusive `flock` and `fdatasync`s it; only
//!   then is the visitor redirected. A line torn by a crash was never acknowledged, and is
//!   skipped when the spool is read.
//! - A drain (every second while the spool is not empty, and at start) takes the same lock,
//!   reads every line, records the clicks in the store, and empties the file only when all
//!   of them were recorded. A drain cut short is simply run again: a click keeps the time
//!   it was made (`at`), and a second click without `event_id` with the same campaign,
//!   link, recipient and `at` is a duplicate (docs/rules.md, "Duplicates"), so nothing is
//!   counted twice.
//! - The file is bounded (`--click-spool-max-bytes`); past the bound a click is lost, and
//!   counted and logged as lost. It is created only when a first click needs it.
//! - Several `serve` processes may share one spool file: the lock keeps their appends and
//!   drains apart.
//!
//! While the store is down a code can only be redirected if this process knows its URL:
//! its link cache (`linkcache.rs`) remembers the codes it registered or resolved, the last
//! 100 000 of them; another code is answered `503`, and not recorded.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smsreport_core::event::{ClickEvent, Event};
use smsreport_core::{Millis, Store, StoreError};

/// The default largest spool file: 64 MiB, about 500 000 clicks.
pub const DEFAULT_CLICK_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// How often a non-empty spool is drained.
const DRAIN_EVERY: Duration = Duration::from_secs(1);
/// Clicks per store call when draining.
const DRAIN_BATCH: usize = 2_000;

/// One spooled click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Spooled {
    code: String,
    /// When the visitor clicked, in UTC milliseconds.
    at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

/// What a [`ClickSpool`] has done since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Clicks in the spool file as last seen (kept or read, not yet recorded).
    pub waiting: u64,
    /// Clicks kept in the spool because the store failed.
    pub spooled: u64,
    /// Spooled clicks recorded in the store (duplicates of a click already recorded
    /// included).
    pub recorded: u64,
    /// Clicks lost: the spool was full or could not be written, or a spooled click's code
    /// was no longer known when it was recorded.
    pub lost: u64,
}

/// The spool file (the module's doc).
#[derive(Debug)]
pub struct ClickSpool {
    path: PathBuf,
    max_bytes: u64,
    /// The handle appends go through, opened by the first one.
    file: Mutex<Option<File>>,
    /// One drain at a time in this process.
    draining: tokio::sync::Mutex<()>,
    waiting: AtomicU64,
    spooled: AtomicU64,
    recorded: AtomicU64,
    lost: AtomicU64,
}

/// Why a drain stopped before emptying the spool.
#[derive(Debug)]
pub enum DrainError {
    /// The spool file could not be read or emptied.
    Io(io::Error),
    /// The store failed; the spool is left as it was.
    Store(StoreError),
}

impl std::fmt::Display for DrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainError::Io(e) => write!(f, "reading the click spool: {e}"),
            DrainError::Store(e) => write!(
                f,
                "recording spooled clicks: {}",
                smsreport_core::causes::with_causes(e)
            ),
        }
    }
}

fn blocking_gone(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("the spool's blocking task failed: {e}"))
}

impl ClickSpool {
    /// A spool at `path` of at most `max_bytes`; nothing is opened yet.
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> ClickSpool {
        ClickSpool {
            path: path.into(),
            max_bytes,
            file: Mutex::new(None),
            draining: tokio::sync::Mutex::new(()),
            waiting: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            recorded: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// Where the spool file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it has done so far.
    pub fn stats(&self) -> SpoolStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SpoolStats {
            waiting: g(&self.waiting),
            spooled: g(&self.spooled),
            recorded: g(&self.recorded),
            lost: g(&self.lost),
        }
    }

    /// Counts a click that could be neither recorded nor kept.
    pub(crate) fn lost(&self) {
        self.lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps one click: returns once its line is durable in the spool file. An error
    /// (the spool is full, or cannot be written) means the click is not kept; it is
    /// counted as lost.
    pub async fn keep(
        self: &Arc<Self>,
        code: &str,
        at: Millis,
        user_agent: Option<String>,
    ) -> io::Result<()> {
        let click = Spooled {
            code: code.to_owned(),
            at: at.0,
            user_agent,
        };
        let mut line = serde_json::to_vec(&click).map_err(io::Error::other)?;
        line.push(b'\n');
        let this = self.clone();
        let kept = tokio::task::spawn_blocking(move || this.append(&line))
            .await
            .map_err(blocking_gone)
            .and_then(|r| r);
        match kept {
            Ok(()) => {
                self.spooled.fetch_add(1, Ordering::Relaxed);
                self.waiting.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.lost(),
        }
        kept
    }

    /// Appends `line` under the lock and makes it durable.
    fn append(&self, line: &[u8]) -> io::Result<()> {
        let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            *slot = Some(f);
        }
        let Some(f) = slot.as_mut() else {
            return Err(io::Error::other("the spool file is not open"));
        };
        f.lock()?;
        let result = (|| {
            let len = f.metadata()?.len();
            if len + line.len() as u64 > self.max_bytes {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "the click spool {} is full ({} bytes, --click-spool-max-bytes {})",
                        self.path.display(),
                        len,
                        self.max_bytes
                    ),
                ));
            }
            f.write_all(line)?;
            f.sync_data()
        })();
        let _ = f.unlock();
        result
    }

    /// Records every spooled click in `store` and empties the spool; the number of
    /// clicks read. A spool that does not exist or is empty is not locked.
    pub async fn drain(&self, store: &dyn Store) -> Result<u64, DrainError> {
        let _one = self.draining.lock().await;
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || -> io::Result<Option<(File, Vec<u8>)>> {
            let mut f = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            if f.metadata()?.len() == 0 {
                return Ok(None);
            }
            f.lock()?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok(Some((f, bytes)))
        })
        .await
        .map_err(blocking_gone)
        .and_then(|r| r)
        .map_err(DrainError::Io)?;
        let Some((file, bytes)) = read else {
            self.waiting.store(0, Ordering::Relaxed);
            return Ok(0);
        };
        // The lock is held by `file` until it is dropped.
        let clicks = parse(&bytes, &self.path);
        let n = clicks.len() as u64;
        self.waiting.store(n, Ordering::Relaxed);
        let (events, unknown) = events(store, clicks).await.map_err(DrainError::Store)?;
        for chunk in events.chunks(DRAIN_BATCH) {
            store.ingest(chunk).await.map_err(DrainError::Store)?;
        }
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            file.set_len(0)?;
            file.sync_all()
        })
        .await
        .map_err(blocking_gone)
        .and_then(|r| r)
        .map_err(DrainError::Io)?;
        self.waiting.store(0, Ordering::Relaxed);
        self.recorded
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.lost.fetch_add(unknown, Ordering::Relaxed);
        if n > 0 {
            tracing::info!(
                clicks = events.len(),
                unknown,
                spool = %self.path.display(),
                "recorded the clicks kept in the spool while the store was failing"
            );
        }
        Ok(n)
    }
}

/// The clicks of a spool file's bytes; a line that is not one (torn by a crash while it
/// was being written, so never acknowledged) is logged and skipped.
fn parse(bytes: &[u8], path: &Path) -> Vec<Spooled> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Spooled>(line) {
            Ok(c) => out.push(c),
            Err(e) => tracing::warn!(
                spool = %path.display(),
                line = i + 1,
                error = %e,
                "skipping a line of the click spool that is not a click (cut short by a crash?)"
            ),
        }
    }
    out
}

/// The click events of `clicks`, each code looked up in `store` once; and how many
/// clicks' codes the store no longer knows.
async fn events(store: &dyn Store, clicks: Vec<Spooled>) -> Result<(Vec<Event>, u64), StoreError> {
    let codes: HashSet<&str> = clicks.iter().map(|c| c.code.as_str()).collect();
    let mut links = HashMap::with_capacity(codes.len());
    for code in codes {
        links.insert(code.to_owned(), store.resolve_link(code).await?);
    }
    let mut unknown = 0;
    let mut events = Vec::with_capacity(clicks.len());
    for c in clicks {
        match links.get(&c.code).and_then(Option::as_ref) {
            Some(link) => events.push(Event::Click(ClickEvent {
                campaign_id: link.campaign_id.clone(),
                link_id: link.link_id.clone(),
                recipient: link.recipient.clone(),
                at: Millis(c.at),
                user_agent: c.user_agent,
                event_id: None,
            })),
            None => {
                unknown += 1;
                tracing::warn!(code = %c.code, "a spooled click's code is no longer known; it is lost");
            }
        }
    }
    Ok((events, unknown))
}

/// Drains `spool` into `store` at once and then every second while it has clicks, until
/// either is dropped. A failing store is logged once per outage, not every second.
pub(crate) async fn drain_loop(spool: Weak<ClickSpool>, store: Weak<dyn Store>) {
    let mut failing = false;
    loop {
        let (Some(spool), Some(store)) = (spool.upgrade(), store.upgrade()) else {
            return;
        };
        let pending = spool.waiting.load(Ordering::Relaxed) > 0
            || std::fs::metadata(&spool.path).is_ok_and(|m| m.len() > 0);
        if pending {
            match spool.drain(&*store).await {
                Ok(_) => failing = false,
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            error = %crate::redact::mask_numbers(&e.to_string()),
                            spool = %spool.path.display(),
                            "the click spool cannot be recorded yet; retrying every second"
                        );
                    }
                    failing = true;
                }
            }
        }
        drop((spool, store));
        tokio::time::sleep(DRAIN_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsreport_core::mem::MemStore;

    #[test]
    fn torn_lines_are_skipped() {
        let bytes = b"{\"code\":\"abcdefgh\",\"at\":5}\n{\"code\":\"abc\n\n{\"code\":\"zz\",\"at\":1,\"user_agent\":\"x\"}\n";
        let got = parse(bytes, Path::new("s"));
        assert_eq!(
            got,
            vec![
                Spooled {
                    code: "abcdefgh".into(),
                    at: 5,
                    user_agent: None
                },
                Spooled {
                    code: "zz".into(),
                    at: 1,
                    user_agent: Some("x".into())
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_full_spool_loses_the_click_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(ClickSpool::new(dir.path().join("s.ndjson"), 40));
        spool.keep("abcdefgh", Millis(1), None).await.unwrap();
        let err = spool.keep("abcdefgh", Millis(2), None).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
        let s = spool.stats();
        assert_eq!((s.spooled, s.waiting, s.lost), (1, 1, 1));
        // Draining with an empty store: the code is unknown there, so the click is lost,
        // and the spool is emptied.
        let store = MemStore::default();
        assert_eq!(spool.drain(&store).await.unwrap(), 1);
        let s = spool.stats();
        assert_eq!((s.waiting, s.recorded, s.lost), (0, 0, 2));
        assert_eq!(std::fs::metadata(spool.path()).unwrap().len(), 0);
    }

    #[tokio::test]
    async fn drained_clicks_are_recorded_once_even_when_drained_again() {
        let store = MemStore::default();
        let lines = [
            r#"{"type":"campaign","campaign_id":"c","name":"C","link_tracking":true,"links":[{"link_id":"go","url":"https://shop.example/go"}],"created_at":"2026-03-01T00:00:00Z"}"#,
            r#"{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#,
        ];
        let events: Vec<Event> = lines
            .iter()
            .map(|l| smsreport_core::event::parse_event(l.as_bytes()).unwrap())
            .collect();
        store.ingest(&events).await.unwrap();
        store
            .save_links(&[smsreport_core::TrackedLink {
                code: "Code1234".into(),
                campaign_id: "c".into(),
                link_id: "go".into(),
                message_id: "m1".into(),
                recipient: "+37120000001".into(),
            }])
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(ClickSpool::new(dir.path().join("s.ndjson"), 1 << 20));
        let t0 = 1_772_355_600_000; // 2026-03-01T09:00:00Z
        for i in 0..3 {
            spool
                .keep(
                    "Code1234",
                    Millis(t0 + 1_000 * i),
                    Some("Mozilla/5.0".into()),
                )
                .await
                .unwrap();
        }
        let kept = std::fs::read(spool.path()).unwrap();
        assert_eq!(spool.drain(&store).await.unwrap(), 3);
        let totals = store.totals("c").await.unwrap().unwrap();
        assert_eq!(totals.counters.human_clicks, 3);
        // A drain cut short after the store call is run again from the same lines:
        // nothing is counted twice.
        std::fs::write(spool.path(), &kept).unwrap();
        assert_eq!(spool.drain(&store).await.unwrap(), 3);
        let totals = store.totals("c").await.unwrap().unwrap();
        assert_eq!(totals.counters.human_clicks, 3);
        let s = spool.stats();
        assert_eq!((s.spooled, s.waiting, s.lost), (3, 0, 0));
    }
}
