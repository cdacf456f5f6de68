//! The SQLite store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use smsreport_core::engine::{
    apply, Changes, ClickKey, ClickRecord, Counter, Loaded, MessageRecord, Needs, Outcome,
};
use smsreport_core::insights::MessageFilter;
use smsreport_core::report::{CampaignTotals, Recount};
use smsreport_core::store::{LinkSave, StoredLinks};
use smsreport_core::{Event, Millis, Store, StoreError, TrackedLink};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Sqlite;

use crate::{
    campaign_of, country_columns, key_of, link_of, links_json, message_clicks_of, message_of,
    newer, status_columns, CampaignRow, CountryParams, LinkRow, MessageClicksRow, MessageRow,
    Upgrade, FORMAT, MESSAGE_COLUMNS, UPGRADE_CLICKS,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// smsreport in one SQLite file. Cheap to clone. Ingests are serialised (SQLite has one
/// writer): within a process by a mutex, across processes by `BEGIN IMMEDIATE`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    ingest: Arc<tokio::sync::Mutex<()>>,
}

fn lite(context: impl Into<String>, e: sqlx::Error) -> StoreError {
    StoreError::backend(context, e)
}

/// A JSON array parameter for `json_each`.
fn js(v: Value) -> String {
    v.to_string()
}

impl SqliteStore {
    /// Opens (creating if needed) the database in file `path` and migrates it. A file
    /// migrated by a newer smsreport is refused and left untouched.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let place = format!("the SQLite store {}", path.display());
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| lite(format!("opening {place}"), e))?;
        let store = SqliteStore {
            pool,
            path: path.to_owned(),
            ingest: Arc::new(tokio::sync::Mutex::new(())),
        };
        store.refuse_newer(&place).await?;
        MIGRATOR
            .run(&store.pool)
            .await
            .map_err(|e| StoreError::backend(format!("migrating {place}"), e))?;
        store
            .upgrade_from_1()
            .await
            .map_err(|e| lite(format!("upgrading {place} to format {FORMAT}"), e))?;
        Ok(store)
    }

    /// Fills in what a database of format 1 (before insights) lacks, in one
    /// transaction, once: every message's country and the insight counters (see
    /// [`Upgrade`]).
    async fn upgrade_from_1(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = async {
            let (format,): (i64,) =
                sqlx::query_as("SELECT value FROM schema_info WHERE key = 'format'")
                    .fetch_one(&mut *conn)
                    .await?;
            if format >= 2 {
                return Ok(());
            }
            let messages: Vec<MessageRow> = sqlx::query_as(crate::read::ALL_MESSAGES)
                .fetch_all(&mut *conn)
                .await?;
            let clicks: Vec<(String, String, bool)> =
                sqlx::query_as(UPGRADE_CLICKS).fetch_all(&mut *conn).await?;
            let up =
                Upgrade::plan(messages, clicks).map_err(|e| sqlx::Error::Decode(e.into()))?;
            sqlx::query(
                "UPDATE messages SET country_code = j.value ->> 1, region = j.value ->> 2 \
                 FROM json_each(?1) j WHERE messages.message_id = j.value ->> 0",
            )
            .bind(js(json!(up.countries)))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO campaign_counters (campaign_id, name, value) \
                 SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) j WHERE true \
                 ON CONFLICT (campaign_id, name) DO UPDATE SET value = campaign_counters.value + excluded.value",
            )
            .bind(js(json!(up.counters)))
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE schema_info SET value = ?1 WHERE key = 'format'")
                .bind(FORMAT)
                .execute(&mut *conn)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn refuse_newer(&self, place: &str) -> Result<(), StoreError> {
        let ctx = || format!("reading the schema version of {place}");
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('_sqlx_migrations', 'schema_info')",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| lite(ctx(), e))?;
        let has = |t: &str| tables.iter().any(|(n,)| n == t);
        let known: BTreeSet<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        if has("_sqlx_migrations") {
            let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| lite(ctx(), e))?;
            if let Some((v,)) = applied.iter().find(|(v,)| !known.contains(v)) {
                return Err(newer(
                    place,
                    format!(
                        "it has schema migration {v}; this smsreport knows up to {}",
                        known.last().copied().unwrap_or(0)
                    ),
                ));
            }
        }
        if has("schema_info") {
            let f: Option<(i64,)> =
                sqlx::query_as("SELECT value FROM schema_info WHERE key = 'format'")
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| lite(ctx(), e))?;
            if let Some((f,)) = f.filter(|(f,)| *f > FORMAT) {
                return Err(newer(
                    place,
                    format!("format {f}; this smsreport writes format {FORMAT}"),
                ));
            }
        }
        Ok(())
    }
}

async fn load(conn: &mut SqliteConnection, n: &Needs) -> Result<Loaded, StoreError> {
    let ctx = "loading state for an ingest";
    let e = |e| lite(ctx, e);
    let mut l = Loaded::default();
    if !n.campaigns.is_empty() {
        let rows: Vec<CampaignRow> = sqlx::query_as(
            "SELECT campaign_id, name, list_id, link_tracking, created_at, links \
             FROM campaigns WHERE campaign_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(js(json!(n.campaigns)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        for r in rows {
            let def = campaign_of(r)?;
            l.campaigns.insert(def.campaign_id.clone(), def);
        }
    }
    if !n.lists.is_empty() {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT list_id, name FROM lists WHERE list_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(js(json!(n.lists)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        l.lists.extend(rows);
    }
    if !n.contacts.is_empty() {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT c.list_id, c.recipient, c.name FROM json_each(?1) j \
             JOIN contacts c ON c.list_id = j.value ->> 0 AND c.recipient = j.value ->> 1",
        )
        .bind(js(json!(n.contacts)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        for (list, r, name) in rows {
            l.contacts.insert((list, r), name);
        }
    }
    if !n.messages.is_empty() {
        let ids = js(json!(n.messages));
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
                 WHERE message_id IN (SELECT value FROM json_each(?1))"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        for r in rows {
            let m = message_of(r)?;
            let id = m.message_id.clone();
            l.messages.entry(id).or_default().record = Some(m);
        }
        let rows: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT message_id, status, at, error_code FROM pending_statuses \
             WHERE message_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        for (id, s, at, code) in rows {
            let m = l.messages.entry(id).or_default();
            if m.record.is_none() {
                m.pending = Some(key_of(s, at, code)?);
            }
        }
        let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT message_id, at, status, has_code, error_code FROM status_events_seen \
             WHERE message_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        // `has_code`: bit 0, the code is there; bit 1, the message's latest undated
        // status (docs/rules.md, "Undated receipts").
        for (id, at, s, flag, code) in rows {
            let m = l.messages.entry(id).or_default();
            m.seen.push(key_of(s, at, (flag & 1 == 1).then_some(code))?);
            if flag & 2 == 2 {
                m.undated = m.undated.max(Some(Millis(at)));
            }
        }
    }
    if !n.click_event_ids.is_empty() {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT event_id FROM event_clicks WHERE event_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(js(json!(n.click_event_ids)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        l.click_event_ids.extend(rows.into_iter().map(|(id,)| id));
    }
    if !n.click_keys.is_empty() {
        let keys: Vec<Value> = n
            .click_keys
            .iter()
            .map(|k| json!([k.campaign_id, k.link_id, k.recipient, k.at.0]))
            .collect();
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT x.campaign_id, x.link_id, x.recipient, x.at FROM json_each(?1) j \
             JOIN clicks x ON x.campaign_id = j.value ->> 0 AND x.link_id = j.value ->> 1 \
             AND x.recipient = j.value ->> 2 AND x.at = j.value ->> 3",
        )
        .bind(js(Value::Array(keys)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        for (campaign_id, link_id, recipient, at) in rows {
            l.click_keys.insert(ClickKey {
                campaign_id,
                link_id,
                recipient,
                at: Millis(at),
            });
        }
    }
    if !n.unique_pairs.is_empty() {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT x.campaign_id, x.link_id, x.recipient FROM json_each(?1) j \
             JOIN unique_pairs x ON x.campaign_id = j.value ->> 0 AND x.link_id = j.value ->> 1 \
             AND x.recipient = j.value ->> 2",
        )
        .bind(js(json!(n.unique_pairs)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        l.unique_pairs.extend(rows);
    }
    if !n.forgotten_clicks.is_empty() {
        let keys: Vec<Value> = n
            .forgotten_clicks
            .iter()
            .map(|(c, l, at)| json!([c, l, at.0]))
            .collect();
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT x.campaign_id, x.link_id, x.at FROM json_each(?1) j \
             JOIN forgotten_clicks x ON x.campaign_id = j.value ->> 0 AND x.link_id = j.value ->> 1 \
             AND x.at = j.value ->> 2",
        )
        .bind(js(Value::Array(keys)))
        .fetch_all(&mut *conn)
        .await
        .map_err(e)?;
        l.forgotten_clicks
            .extend(rows.into_iter().map(|(c, k, at)| (c, k, Millis(at))));
    }
    Ok(l)
}

/// New `status_events_seen` rows; the one whose time is its message's `undated` gets bit
/// 1 of `has_code`.
fn seen_json(ch: &Changes) -> String {
    let undated: HashMap<&str, Millis> = ch
        .messages
        .iter()
        .filter_map(|m| Some((m.message_id.as_str(), m.state.undated?)))
        .collect();
    js(Value::Array(
        ch.status_events
            .iter()
            .map(|(m, k)| {
                let mark = undated.get(m.as_str()) == Some(&k.at);
                json!([
                    m,
                    k.at.0,
                    k.status.rank() as i64,
                    k.error_code.is_some() as i64 | if mark { 2 } else { 0 },
                    k.error_code.as_deref().unwrap_or("")
                ])
            })
            .collect(),
    ))
}

async fn exec(conn: &mut SqliteConnection, sql: &str, rows: Vec<Value>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(sql)
        .bind(js(Value::Array(rows)))
        .execute(&mut *conn)
        .await
        .map_err(|e| lite("writing an ingest", e))?;
    Ok(())
}

async fn write(conn: &mut SqliteConnection, ch: &Changes) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO campaigns (campaign_id, name, list_id, link_tracking, created_at, links) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 \
         FROM json_each(?1) j WHERE true \
         ON CONFLICT (campaign_id) DO UPDATE SET name = excluded.name, list_id = excluded.list_id, \
         link_tracking = excluded.link_tracking, created_at = excluded.created_at, links = excluded.links",
        ch.campaigns
            .iter()
            .map(|c| {
                json!([
                    c.campaign_id,
                    c.name,
                    c.contact_list,
                    c.link_tracking as i64,
                    c.created_at.map(|m| m.0),
                    links_json(c)
                ])
            })
            .collect(),
    )
    .await?;
    exec(
        conn,
        "INSERT INTO lists (list_id, name) SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?1) j \
         WHERE true ON CONFLICT (list_id) DO UPDATE SET name = excluded.name",
        ch.lists.iter().map(|(a, b)| json!([a, b])).collect(),
    )
    .await?;
    exec(
        conn,
        "INSERT INTO contacts (list_id, recipient, name) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) j \
         WHERE true ON CONFLICT (list_id, recipient) DO UPDATE SET name = excluded.name",
        ch.contacts
            .iter()
            .map(|c| json!([c.list_id, c.recipient, c.name]))
            .collect(),
    )
    .await?;
    exec(
        conn,
        "INSERT INTO messages (message_id, campaign_id, recipient, parts, at, status, status_at, error_code, row_rank, country_code, region) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
         j.value ->> 6, j.value ->> 7, j.value ->> 8, j.value ->> 9, j.value ->> 10 FROM json_each(?1) j WHERE true \
         ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at, \
         error_code = excluded.error_code, row_rank = excluded.row_rank",
        ch.messages
            .iter()
            .filter_map(|m| m.state.record.as_ref())
            .map(|r| {
                let (s, a, c, rr) = status_columns(r);
                let (cc, region) = country_columns(&r.country);
                json!([
                    r.message_id,
                    r.campaign_id,
                    r.recipient,
                    r.parts as i64,
                    r.at.0,
                    s,
                    a,
                    c,
                    rr,
                    cc,
                    region
                ])
            })
            .collect(),
    )
    .await?;
    exec(
        conn,
        "INSERT INTO pending_statuses (message_id, status, at, error_code) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3 FROM json_each(?1) j \
         WHERE true ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, at = excluded.at, \
         error_code = excluded.error_code",
        ch.messages
            .iter()
            .filter_map(|m| m.state.pending.as_ref().map(|k| (&m.message_id, k)))
            .map(|(m, k)| json!([m, k.status.rank() as i64, k.at.0, k.error_code]))
            .collect(),
    )
    .await?;
    exec(
        conn,
        "DELETE FROM pending_statuses WHERE message_id IN (SELECT value FROM json_each(?1))",
        ch.messages
            .iter()
            .filter(|m| m.existed && m.state.pending.is_none())
            .map(|m| json!(m.message_id))
            .collect(),
    )
    .await?;
    let (with_id, without): (Vec<&ClickRecord>, Vec<&ClickRecord>) =
        ch.clicks.iter().partition(|c| c.event_id.is_some());
    exec(
        conn,
        "INSERT INTO event_clicks (event_id, campaign_id, link_id, recipient, at, user_agent, bot) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, \
         j.value ->> 6 FROM json_each(?1) j WHERE true ON CONFLICT (event_id) DO NOTHING",
        with_id
            .iter()
            .map(|k| {
                json!([
                    k.event_id,
                    k.campaign_id,
                    k.link_id,
                    k.recipient,
                    k.at.0,
                    k.user_agent,
                    k.bot as i64
                ])
            })
            .collect(),
    )
    .await?;
    exec(
        conn,
        "INSERT INTO clicks (campaign_id, link_id, recipient, at, user_agent, bot) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 \
         FROM json_each(?1) j WHERE true ON CONFLICT (campaign_id, link_id, recipient, at) DO NOTHING",
        without
            .iter()
            .map(|k| {
                json!([
                    k.campaign_id,
                    k.link_id,
                    k.recipient,
                    k.at.0,
                    k.user_agent,
                    k.bot as i64
                ])
            })
            .collect(),
    )
    .await?;
    if !ch.status_events.is_empty() {
        sqlx::query(
            "INSERT INTO status_events_seen (message_id, at, status, has_code, error_code) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 \
             FROM json_each(?1) j WHERE true ON CONFLICT DO NOTHING",
        )
        .bind(seen_json(ch))
        .execute(&mut *conn)
        .await
        .map_err(|e| lite("writing an ingest", e))?;
    }
    exec(
        conn,
        "INSERT INTO unique_pairs (campaign_id, link_id, recipient) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) j \
         WHERE true ON CONFLICT DO NOTHING",
        ch.unique_pairs.iter().map(|p| json!(p)).collect(),
    )
    .await?;
    exec(
        conn,
        "INSERT INTO forgotten_clicks (campaign_id, link_id, at) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) j \
         WHERE true ON CONFLICT DO NOTHING",
        ch.forgotten_clicks
            .iter()
            .map(|(c, l, at)| json!([c, l, at.0]))
            .collect(),
    )
    .await?;
    let mut camp = Vec::new();
    let mut rcpt = Vec::new();
    let mut subs = Vec::new();
    for (counter, delta) in &ch.counters {
        match counter {
            Counter::Campaign(id, c) => camp.push(json!([id, c.name(), delta])),
            Counter::RecipientClicks {
                campaign_id,
                recipient,
            } => rcpt.push(json!([campaign_id, recipient, delta])),
            Counter::Subscribers(list) => subs.push(json!([list, delta])),
        }
    }
    exec(
        conn,
        "INSERT INTO campaign_counters (campaign_id, name, value) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) j WHERE true \
         ON CONFLICT (campaign_id, name) DO UPDATE SET value = campaign_counters.value + excluded.value",
        camp,
    )
    .await?;
    exec(
        conn,
        "INSERT INTO recipient_clicks (campaign_id, recipient, clicks) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) j WHERE true \
         ON CONFLICT (campaign_id, recipient) DO UPDATE SET clicks = recipient_clicks.clicks + excluded.clicks",
        rcpt,
    )
    .await?;
    exec(
        conn,
        "INSERT INTO list_subscribers (list_id, subscribers) \
         SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?1) j WHERE true \
         ON CONFLICT (list_id) DO UPDATE SET subscribers = list_subscribers.subscribers + excluded.subscribers",
        subs,
    )
    .await?;
    Ok(())
}

async fn links_by_pair(
    conn: &mut SqliteConnection,
    links: &[&TrackedLink],
    into: &mut StoredLinks,
) -> Result<(), StoreError> {
    let pairs: Vec<Value> = links
        .iter()
        .map(|t| json!([t.message_id, t.link_id]))
        .collect();
    let rows: Vec<LinkRow> = sqlx::query_as(
        "SELECT t.code, t.campaign_id, t.link_id, t.message_id, t.recipient FROM json_each(?1) j \
         JOIN tracked_links t ON t.message_id = j.value ->> 0 AND t.link_id = j.value ->> 1",
    )
    .bind(js(Value::Array(pairs)))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| lite("reading tracked links", e))?;
    for r in rows {
        let t = link_of(r);
        into.insert((t.message_id.clone(), t.link_id.clone()), t);
    }
    Ok(())
}

async fn save_links(
    conn: &mut SqliteConnection,
    links: &[TrackedLink],
) -> Result<Vec<TrackedLink>, StoreError> {
    let save = LinkSave::new(links);
    let mut stored = StoredLinks::new();
    links_by_pair(conn, save.pairs(), &mut stored).await?;
    // A taken code is found by the insert (ON CONFLICT DO NOTHING) and the reread.
    let new = save.to_insert(&stored, |_| Ok(false))?;
    exec(
        conn,
        "INSERT INTO tracked_links (code, campaign_id, link_id, message_id, recipient) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4 \
         FROM json_each(?1) j WHERE true ON CONFLICT DO NOTHING",
        new.iter()
            .map(|t| json!([t.code, t.campaign_id, t.link_id, t.message_id, t.recipient]))
            .collect(),
    )
    .await?;
    links_by_pair(conn, &new, &mut stored).await?;
    save.answer(&stored)
}

impl SqliteStore {
    /// Starts a write transaction (`BEGIN IMMEDIATE`), the only one in this process.
    async fn begin_write(
        &self,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, PoolConnection<Sqlite>), StoreError> {
        let guard = self.ingest.lock().await;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| lite("connecting to the SQLite store", e))?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(|e| lite("starting a write", e))?;
        Ok((guard, conn))
    }
}

/// Commits a write transaction when its work succeeded, else rolls it back.
async fn finish<T>(
    conn: &mut PoolConnection<Sqlite>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            sqlx::query("COMMIT")
                .execute(&mut **conn)
                .await
                .map_err(|e| lite("committing a write", e))?;
            Ok(v)
        }
        Err(e) => {
            // Best effort: the error that matters is the first one.
            let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
            Err(e)
        }
    }
}

async fn ingest_in(
    conn: &mut SqliteConnection,
    events: &[Event],
) -> Result<Vec<Outcome>, StoreError> {
    let loaded = load(conn, &Needs::of(events)).await?;
    let (outcomes, changes) = apply(loaded, events);
    if !changes.is_empty() {
        write(conn, &changes).await?;
    }
    Ok(outcomes)
}

/// An export page of statuses waiting for their message (a pending row whose message
/// has arrived no longer counts).
const PENDING_PAGE: &str = "SELECT p.message_id, p.status, p.at, p.error_code FROM pending_statuses p \
     WHERE p.message_id > $1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_id = p.message_id) \
     ORDER BY p.message_id LIMIT $2";

crate::read::shared_reads!(
    SqliteStore,
    PENDING_PAGE,
    "SELECT count(*), min(at) FROM pending_statuses"
);

#[async_trait]
impl Store for SqliteStore {
    async fn save_links(&self, links: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
        let (_guard, mut conn) = self.begin_write().await?;
        let r = save_links(&mut conn, links).await;
        finish(&mut conn, r).await
    }

    async fn forget(
        &self,
        number: &str,
        token: &str,
    ) -> Result<smsreport_core::forget::Forgotten, StoreError> {
        let (_guard, mut conn) = self.begin_write().await?;
        let r = crate::forget::forget_in!(conn, number, token)
            .map_err(|e| lite("forgetting a number", e));
        let f = finish(&mut conn, r).await?;
        // Old copies of rows (from this forget, and from every earlier update) stay in
        // free space until overwritten: VACUUM rebuilds the file without them, and the
        // checkpoint moves the new pages into it and empties the write-ahead log. (Keeping
        // `secure_delete` on instead cost a quarter of every ingest's time.)
        for sql in ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
            sqlx::query(sql)
                .execute(&mut *conn)
                .await
                .map_err(|e| lite("rewriting the file after forgetting a number", e))?;
        }
        Ok(f)
    }

    async fn export_page(
        &self,
        kind: smsreport_core::export::ExportKind,
        after: Option<&smsreport_core::export::Record>,
        limit: usize,
    ) -> Result<Vec<smsreport_core::export::Record>, StoreError> {
        self.read_export_page(kind, after, limit).await
    }

    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
        self.read_link(code).await
    }

    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let (_guard, mut conn) = self.begin_write().await?;
        let r = ingest_in(&mut conn, events).await;
        finish(&mut conn, r).await
    }

    async fn totals(&self, campaign_id: &str) -> Result<Option<CampaignTotals>, StoreError> {
        self.read_totals(campaign_id).await
    }

    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
        self.read_all_totals().await
    }

    async fn messages(
        &self,
        campaign_id: &str,
        filter: &MessageFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
        let ranks: Vec<i64> = filter.statuses.iter().map(|s| s.rank() as i64).collect();
        let c = CountryParams::of(filter);
        let rows: Vec<MessageClicksRow> =
            sqlx::query_as(
                "SELECT m.message_id, m.campaign_id, m.recipient, m.parts, m.at, m.status, m.status_at, \
                 m.error_code, m.country_code, m.region, COALESCE(rc.clicks, 0) AS clicks FROM messages m \
                 LEFT JOIN recipient_clicks rc ON rc.campaign_id = m.campaign_id AND rc.recipient = m.recipient \
                 WHERE m.campaign_id = ?1 AND m.row_rank IN (SELECT value FROM json_each(?2)) \
                 AND (?3 IS NULL OR m.message_id > ?3) \
                 AND (?5 IS NULL OR m.at >= ?5) AND (?6 IS NULL OR m.at < ?6) \
                 AND (?7 IS NULL OR m.region = ?7) AND (NOT ?8 OR m.country_code IS ?9) \
                 ORDER BY m.message_id LIMIT ?4",
            )
            .bind(campaign_id)
            .bind(js(json!(ranks)))
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(filter.submitted.0)
            .bind(filter.submitted.1)
            .bind(c.region)
            .bind(c.by_code)
            .bind(c.code)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| lite(format!("reading the messages of campaign {campaign_id:?}"), e))?;
        rows.into_iter().map(message_clicks_of).collect()
    }

    async fn edge_clicks(&self, campaign_id: &str) -> Result<BTreeMap<Millis, i64>, StoreError> {
        self.read_edge_clicks(campaign_id).await
    }

    async fn recount(&self) -> Result<Recount, StoreError> {
        self.read_recount().await
    }

    async fn orphans(&self) -> Result<smsreport_core::store::Orphans, StoreError> {
        self.read_orphans().await
    }

    async fn count_quality(
        &self,
        campaign_id: &str,
        quality: smsreport_core::engine::Quality,
        n: i64,
    ) -> Result<bool, StoreError> {
        self.write_quality(campaign_id, quality, n).await
    }
}
