//! smsreport's SQL stores: PostgreSQL and SQLite through sqlx, behind the same
//! [`smsreport_core::Store`] trait as every backend.
//!
//! - [`PgStore`] (feature `postgres`): `postgres://…` or `postgresql://…`; several
//!   processes may ingest into one database at once.
//! - [`SqliteStore`] (feature `sqlite`): `sqlite:PATH`, one file.
//!
//! Both keep the same tables (`migrations/postgres`, `migrations/sqlite`, embedded with
//! `sqlx::migrate!` and applied when the store opens; a database migrated by a newer
//! smsreport is refused and left untouched). An ingest call is one transaction of a
//! handful of set-based statements, whatever the batch's size:
//!
//! 1. (PostgreSQL) lock the batch's keys, in sorted order (see below), in one statement;
//! 2. load what [`Needs::of`](smsreport_core::engine::Needs::of) names: on PostgreSQL one
//!    `SELECT … UNION ALL …` of the kinds of state the batch has keys for (`= ANY($1)` /
//!    `UNNEST` arrays; a batch of status callbacks loads its messages), on SQLite one
//!    `SELECT` per kind (`json_each`);
//! 3. let [`engine::apply`](smsreport_core::engine::apply) decide;
//! 4. write its [`Changes`](smsreport_core::engine::Changes) with one
//!    `INSERT … SELECT … ON CONFLICT DO UPDATE` per table it touches (on PostgreSQL all
//!    of them in one statement, as data-modifying `WITH` clauses), counters as
//!    `value = value + EXCLUDED.value`;
//! 5. commit, durably (`synchronous_commit = on`; SQLite in WAL mode with
//!    `synchronous = FULL`).
//!
//! Reports read `campaigns`, `lists`, `list_subscribers` and `campaign_counters` only.
//!
//! # Concurrency (PostgreSQL)
//!
//! `apply` decides from the state it was given, so two transactions must not decide on
//! the same key at once. Before loading, an ingest takes, in one statement and in
//! ascending order:
//!
//! - transaction-scoped advisory locks on its campaigns and lists (exclusive where the
//!   batch defines or renames them, shared where it only refers to them);
//! - then row locks (`SELECT … FOR UPDATE`) on rows of `ingest_locks`, one per bucket of
//!   its other keys (message ids, contacts, click event ids, (campaign, link,
//!   recipient)), a bucket being a stable 64-bit FNV-1a hash of the key modulo 256. Row
//!   locks live in the rows, not in the server's shared lock table, so a batch of
//!   thousands of keys needs no `max_locks_per_transaction` tuning.
//!
//! Each locked row costs a WAL record, so the buckets are few: a call of a few events
//! (a webhook) locks a few of the 256 and rarely waits for another, while two batches
//! of thousands of keys share buckets and take turns. (With 65 536 buckets a batch of
//! 2 000 events locked about 1 500 rows, 14% of its time; with 256, at most 256.)
//!
//! Counter updates are additive and written in sorted key order, so they neither lose
//! updates nor deadlock. Should PostgreSQL still report a deadlock or a serialization
//! failure (`40P01`, `40001`), the store rolls back and retries the batch itself.

#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use smsreport_core::engine::{CampaignDef, MessageRecord};
use smsreport_core::insights::Country;
use smsreport_core::report::CampaignTotals;
use smsreport_core::{Millis, Status, StatusKey, Store, StoreError, TrackedLink};

mod forget;
#[cfg(feature = "postgres")]
mod pg;
mod read;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use pg::{PgOptions, PgStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// The schema format this smsreport writes (`schema_info.format`).
pub const FORMAT: i64 = 2;

/// How long opening a store may wait for the database before it fails.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the SQL store a URL names: `sqlite:PATH`, `postgres://…` or `postgresql://…`.
///
/// PostgreSQL URLs take three query parameters of ours besides libpq's: `schema=NAME`
/// (the tables live in that schema, created if needed), `pool_max=N` (connections, default
/// 8) and `connect_timeout=SECONDS` (default 5). Errors never repeat the URL (it may hold a
/// password); they name the host and port.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Invalid(
                    "store URL \"sqlite:\" names no file; use sqlite:PATH".into(),
                ));
            }
            return Ok(Arc::new(
                SqliteStore::open(std::path::Path::new(path)).await?,
            ));
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = path;
            return Err(StoreError::Invalid(
                "SQLite stores are not built into this smsreport (feature \"sqlite\")".into(),
            ));
        }
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            return Ok(Arc::new(PgStore::connect(url).await?));
        }
        #[cfg(not(feature = "postgres"))]
        {
            return Err(StoreError::Invalid(
                "PostgreSQL stores are not built into this smsreport (feature \"postgres\")".into(),
            ));
        }
    }
    Err(StoreError::Invalid(
        "not a SQL store URL; use sqlite:PATH or postgres://…".into(),
    ))
}

/// A stable 64-bit FNV-1a hash of a tagged key (the same in every process and version).
pub(crate) fn key_hash(tag: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(tag);
    for p in parts {
        eat(0);
        for b in p.bytes() {
            eat(b);
        }
    }
    h
}

pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

pub(crate) fn status_of(rank: i64) -> Result<Status, StoreError> {
    u8::try_from(rank)
        .ok()
        .and_then(Status::from_rank)
        .ok_or_else(|| corrupt(format!("unknown status rank {rank}")))
}

pub(crate) fn key_of(status: i64, at: i64, code: Option<String>) -> Result<StatusKey, StoreError> {
    Ok(StatusKey {
        status: status_of(status)?,
        at: Millis(at),
        error_code: code,
    })
}

/// The columns of a message row, as [`MessageRow`] names them (SQLite's load reads them
/// by name; PostgreSQL's is one `UNION ALL`).
#[cfg(feature = "sqlite")]
pub(crate) const MESSAGE_COLUMNS: &str =
    "message_id, campaign_id, recipient, parts, at, status, status_at, error_code, country_code, region";

/// A row of `messages` holding a message (see [`message_of`]).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub message_id: String,
    pub campaign_id: String,
    pub recipient: String,
    pub parts: i64,
    pub at: i64,
    pub status: Option<i64>,
    pub status_at: Option<i64>,
    pub error_code: Option<String>,
    pub country_code: Option<i64>,
    pub region: Option<String>,
}

/// A message row and the recipient's clicks (the drill-down; the count is `clicks`).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MessageClicksRow {
    #[sqlx(flatten)]
    pub message: MessageRow,
    pub clicks: i64,
}

/// Splits a [`MessageClicksRow`].
pub(crate) fn message_clicks_of(r: MessageClicksRow) -> Result<(MessageRecord, i64), StoreError> {
    Ok((message_of(r.message)?, r.clicks))
}

/// What the format-2 upgrade (before it: no insights) writes, worked out from every
/// stored message (a [`MessageRow`] whose country columns are still empty) and every
/// stored click (campaign_id, recipient, bot): each message's country columns, and the
/// counter deltas (campaign_id, counter name, delta) format 2 keeps that format 1 did
/// not (see [`smsreport_core::insights::v1`]).
pub(crate) struct Upgrade {
    pub countries: Vec<(String, Option<i64>, String)>,
    pub counters: Vec<(String, String, i64)>,
}

impl Upgrade {
    pub(crate) fn plan(
        messages: Vec<MessageRow>,
        clicks: Vec<(String, String, bool)>,
    ) -> Result<Upgrade, StoreError> {
        use smsreport_core::insights::v1;
        let mut deltas: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut countries = Vec::with_capacity(messages.len());
        for mut r in messages {
            // Format 1 had no country columns: they are worked out here.
            r.country_code = None;
            r.region = Some(String::new());
            let mut m = message_of(r)?;
            m.country = Country::of(&m.recipient);
            for (counter, v) in v1::added_counters(&m) {
                *deltas
                    .entry((m.campaign_id.clone(), counter.name()))
                    .or_default() += v;
            }
            let (cc, region) = country_columns(&m.country);
            countries.push((m.message_id, cc, region));
        }
        for (campaign_id, recipient, bot) in clicks {
            let click = smsreport_core::engine::ClickRecord {
                campaign_id,
                link_id: String::new(),
                recipient,
                at: Millis(0),
                user_agent: None,
                event_id: None,
                bot,
            };
            if let Some((counter, v)) = v1::added_click_counters(&click) {
                *deltas
                    .entry((click.campaign_id, counter.name()))
                    .or_default() += v;
            }
        }
        Ok(Upgrade {
            countries,
            counters: deltas.into_iter().map(|((c, n), v)| (c, n, v)).collect(),
        })
    }
}

/// The upgrade's read of every stored click (its messages: [`read::ALL_MESSAGES`]).
pub(crate) const UPGRADE_CLICKS: &str = "SELECT campaign_id, recipient, bot FROM event_clicks \
    UNION ALL SELECT campaign_id, recipient, bot FROM clicks";

/// A drill-down's country filter as query parameters: `region = ?` when `region` is
/// given, and `country_code IS ?code` (null-safe) when `by_code`.
pub(crate) struct CountryParams {
    pub region: Option<String>,
    pub by_code: bool,
    pub code: Option<i64>,
}

impl CountryParams {
    pub(crate) fn of(f: &smsreport_core::insights::MessageFilter) -> CountryParams {
        use smsreport_core::insights::CountryFilter;
        match &f.country {
            None => CountryParams {
                region: None,
                by_code: false,
                code: None,
            },
            Some(CountryFilter::Region(r)) => CountryParams {
                region: Some(r.clone()),
                by_code: false,
                code: None,
            },
            Some(CountryFilter::Code(c)) => CountryParams {
                region: None,
                by_code: true,
                code: Some(i64::from(*c)),
            },
            Some(CountryFilter::Exact(c)) => CountryParams {
                region: Some(c.region.clone()),
                by_code: true,
                code: c.code.map(i64::from),
            },
        }
    }
}

/// A message's country columns: (country_code, region).
pub(crate) fn country_columns(c: &Country) -> (Option<i64>, String) {
    (c.code.map(i64::from), c.region.clone())
}

pub(crate) fn message_of(r: MessageRow) -> Result<MessageRecord, StoreError> {
    let MessageRow {
        message_id,
        campaign_id,
        recipient,
        parts,
        at,
        status,
        status_at,
        error_code: code,
        country_code: cc,
        region,
    } = r;
    let country = Country {
        code: cc
            .map(u16::try_from)
            .transpose()
            .map_err(|_| corrupt(format!("message {message_id:?} has a bad country code")))?,
        region: region.ok_or_else(|| corrupt(format!("message {message_id:?} has no region")))?,
    };
    let status = match (status, status_at) {
        (Some(s), Some(a)) => Some(key_of(s, a, code)?),
        (None, None) => None,
        _ => return Err(corrupt(format!("message {message_id:?} has half a status"))),
    };
    Ok(MessageRecord {
        parts: u8::try_from(parts)
            .map_err(|_| corrupt(format!("message {message_id:?} has {parts} parts")))?,
        message_id,
        campaign_id,
        recipient,
        at: Millis(at),
        status,
        country,
    })
}

/// A campaign row: id, name, list_id, link_tracking, created_at, links (JSON).
pub(crate) type CampaignRow = (String, String, Option<String>, bool, Option<i64>, String);

pub(crate) fn campaign_of(r: CampaignRow) -> Result<CampaignDef, StoreError> {
    let (campaign_id, name, contact_list, link_tracking, created_at, links) = r;
    let links: BTreeMap<String, String> = serde_json::from_str(&links)
        .map_err(|e| corrupt(format!("the links of campaign {campaign_id:?}: {e}")))?;
    Ok(CampaignDef {
        campaign_id,
        name,
        contact_list,
        link_tracking,
        links,
        created_at: created_at.map(Millis),
    })
}

pub(crate) fn links_json(def: &CampaignDef) -> String {
    serde_json::to_string(&def.links).unwrap_or_else(|_| "{}".into())
}

/// A message's status columns: (status rank, status time, error code, row rank).
pub(crate) fn status_columns(m: &MessageRecord) -> (Option<i64>, Option<i64>, Option<String>, i64) {
    (
        m.status.as_ref().map(|k| k.status.rank() as i64),
        m.status.as_ref().map(|k| k.at.0),
        m.status.as_ref().and_then(|k| k.error_code.clone()),
        m.current().rank() as i64,
    )
}

/// The message of a newer database, refused.
pub(crate) fn newer(place: &str, what: String) -> StoreError {
    StoreError::Conflict(format!(
        "{place} was written by a newer smsreport ({what}); upgrade smsreport to use it (nothing was changed)"
    ))
}

/// Every campaign's totals from the three tables a report reads.
pub(crate) fn assemble(
    defs: Vec<CampaignRow>,
    lists: Vec<(String, String, i64)>,
    counters: Vec<(String, String, i64)>,
) -> Result<Vec<CampaignTotals>, StoreError> {
    let lists: HashMap<String, (String, i64)> =
        lists.into_iter().map(|(id, n, s)| (id, (n, s))).collect();
    let mut by_campaign: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for (c, name, v) in counters {
        by_campaign.entry(c).or_default().push((name, v));
    }
    defs.into_iter()
        .map(|r| {
            let def = campaign_of(r)?;
            let list = def
                .contact_list
                .as_ref()
                .and_then(|l| lists.get(l).cloned());
            let counters = by_campaign.remove(&def.campaign_id).unwrap_or_default();
            CampaignTotals::from_stored(def, list, counters)
        })
        .collect()
}

/// A tracked link row: code, campaign_id, link_id, message_id, recipient.
pub(crate) type LinkRow = (String, String, String, String, String);

pub(crate) fn link_of(r: LinkRow) -> TrackedLink {
    let (code, campaign_id, link_id, message_id, recipient) = r;
    TrackedLink {
        code,
        campaign_id,
        link_id,
        message_id,
        recipient,
    }
}

#[cfg(test)]
mod tests {
    use super::key_hash;

    #[test]
    fn key_hashes_are_pinned() {
        // Processes of different versions lock the same buckets only while these stay
        // put: FNV-1a 64 over the tag, then 0 and the bytes of each part (values worked
        // out independently of this code).
        assert_eq!(key_hash(b'M', &["m1"]), 0x2c22_d9ae_2e31_d64a);
        assert_eq!(
            key_hash(b'P', &["spring", "l1", "+37120000001"]),
            0x79d5_e2d6_5ae3_fad6
        );
        assert_eq!(key_hash(b'C', &[]), 0xaf63_fe4c_8602_2652);
        // Parts are separated: ("ab", "c") is not ("a", "bc").
        assert_ne!(key_hash(b'K', &["ab", "c"]), key_hash(b'K', &["a", "bc"]));
    }
}
