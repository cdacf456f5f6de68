//! The PostgreSQL store.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use smsreport_core::engine::{
    apply, Changes, ClickKey, ClickRecord, Counter, Loaded, MessageRecord, MessageState, Needs,
    Outcome,
};
use smsreport_core::insights::MessageFilter;
use smsreport_core::report::{CampaignTotals, Recount};
use smsreport_core::store::{edges_from_rows, LinkSave, StoredLinks};
use smsreport_core::{Event, Millis, Status, StatusKey, Store, StoreError, TrackedLink};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};

use crate::{
    assemble, campaign_of, corrupt, country_columns, key_hash, key_of, link_of, links_json,
    message_clicks_of, message_of, newer, status_columns, CampaignRow, CountryParams, LinkRow,
    MessageClicksRow, MessageRow, Upgrade, DEFAULT_CONNECT_TIMEOUT, FORMAT, MESSAGE_COLUMNS,
    UPGRADE_CLICKS, UPGRADE_MESSAGES,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Buckets of `ingest_locks` (rows 0..LOCK_BUCKETS: made by migration 1, the rest
/// deleted by migration 3).
const LOCK_BUCKETS: u64 = 256;
/// Attempts of one batch before a deadlock or serialization failure is given up on.
const ATTEMPTS: u32 = 30;

/// What a PostgreSQL URL's own parameters set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The schema the tables live in (created when missing); `None`: the server's
    /// `search_path` decides (normally `public`).
    pub schema: Option<String>,
    /// Connections in the pool.
    pub pool_max: u32,
    /// How long to wait for the server before failing.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: None,
            pool_max: 8,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl PgOptions {
    /// Takes `schema`, `pool_max` and `connect_timeout` out of a URL's query, and returns
    /// the URL without them (for sqlx) and the options.
    pub fn from_url(url: &str) -> Result<(String, PgOptions), StoreError> {
        let mut opts = PgOptions::default();
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), opts));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "schema" => {
                    if !valid_schema(v) {
                        return Err(StoreError::Invalid(format!(
                            "schema={v:?}: a schema name is 1 to 63 of a-z 0-9 _, not starting with a digit"
                        )));
                    }
                    opts.schema = Some(v.to_owned());
                }
                "pool_max" => {
                    opts.pool_max = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "pool_max={v:?}: want a number of connections, 1 or more"
                        ))
                    })?;
                }
                "connect_timeout" => {
                    let secs: u64 = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "connect_timeout={v:?}: want a number of seconds, 1 or more"
                        ))
                    })?;
                    opts.connect_timeout = Duration::from_secs(secs);
                }
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, opts))
    }
}

fn valid_schema(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// smsreport on PostgreSQL. Cheap to clone (it is a pool); any number of processes may
/// use one database, or one schema of it, at once.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// `host:port/database`, for messages (never the password).
    place: String,
    schema: Option<String>,
}

fn pg(context: impl Into<String>, e: sqlx::Error) -> StoreError {
    StoreError::backend(context, e)
}

impl PgStore {
    /// Connects to the database a `postgres://…` URL names (with the parameters of
    /// [`PgOptions::from_url`]), creates the schema if asked for one, and migrates it.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let (url, opts) = PgOptions::from_url(url)?;
        let connect = PgConnectOptions::from_str(&url).map_err(|e| {
            StoreError::Invalid(format!(
                "not a valid PostgreSQL URL ({})",
                // sqlx's message may quote the URL; keep only its kind.
                match e {
                    sqlx::Error::Configuration(_) => "bad configuration",
                    _ => "cannot parse",
                }
            ))
        })?;
        PgStore::connect_with(connect, opts).await
    }

    /// Connects with explicit options.
    pub async fn connect_with(
        connect: PgConnectOptions,
        opts: PgOptions,
    ) -> Result<PgStore, StoreError> {
        let place = format!(
            "PostgreSQL at {}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("(default database)")
        );
        let mut params = vec![("synchronous_commit", "on".to_owned())];
        if let Some(s) = &opts.schema {
            params.push(("search_path", format!("\"{s}\"")));
        }
        let connect = connect.options(params.iter().map(|(k, v)| (*k, v.as_str())));
        // The first connection says at once, or within the timeout, whether the server
        // can be reached; the pool connects lazily after it.
        let mut conn = tokio::time::timeout(opts.connect_timeout, connect.connect())
            .await
            .map_err(|_| StoreError::Backend {
                context: format!("cannot reach {place}"),
                source: format!("no answer within {} s", opts.connect_timeout.as_secs()).into(),
            })?
            .map_err(|e| pg(format!("cannot connect to {place}"), e))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.pool_max)
            .min_connections(0)
            .acquire_timeout(opts.connect_timeout)
            .connect_lazy_with(connect);
        let store = PgStore {
            pool: pool.clone(),
            place,
            schema: opts.schema.clone(),
        };
        if let Some(s) = &opts.schema {
            if let Err(e) = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
                .execute(&mut conn)
                .await
            {
                // Two processes creating it at once: one of them loses the race, harmlessly.
                let raced = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "23505" || c == "42P06");
                if !raced {
                    return Err(pg(format!("creating schema {s:?} in {}", store.place), e));
                }
            }
        }
        store.refuse_newer(&mut conn).await?;
        let _ = conn.close().await;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::backend(format!("migrating {}", store.where_()), e))?;
        store.upgrade_from_1().await.map_err(|e| {
            pg(
                format!("upgrading {} to format {FORMAT}", store.where_()),
                e,
            )
        })?;
        Ok(store)
    }

    /// Fills in what a schema of format 1 (before insights) lacks, in one transaction,
    /// once: every message's country and the insight counters (see [`Upgrade`]). Several
    /// processes opening the schema at once take turns on an advisory lock.
    async fn upgrade_from_1(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // A constant key of its own ("smsr-up2"): no ingest lock is a small constant.
        sqlx::query("SELECT pg_advisory_xact_lock(7237454366527386674)")
            .execute(&mut *tx)
            .await?;
        let (format,): (i64,) =
            sqlx::query_as("SELECT value FROM schema_info WHERE key = 'format'")
                .fetch_one(&mut *tx)
                .await?;
        if format >= 2 {
            return tx.commit().await;
        }
        let messages: Vec<MessageRow> =
            sqlx::query_as(UPGRADE_MESSAGES).fetch_all(&mut *tx).await?;
        let clicks: Vec<(String, String, bool)> =
            sqlx::query_as(UPGRADE_CLICKS).fetch_all(&mut *tx).await?;
        let up = Upgrade::plan(messages, clicks).map_err(|e| sqlx::Error::Decode(e.into()))?;
        let mut ids = Vec::with_capacity(up.countries.len());
        let mut codes: Vec<Option<i64>> = Vec::with_capacity(up.countries.len());
        let mut regions = Vec::with_capacity(up.countries.len());
        for (id, cc, rg) in up.countries {
            ids.push(id);
            codes.push(cc);
            regions.push(rg);
        }
        sqlx::query(
            "UPDATE messages m SET country_code = u.cc, region = u.rg \
             FROM unnest($1::text[], $2::int8[], $3::text[]) AS u(id, cc, rg) WHERE m.message_id = u.id",
        )
        .bind(&ids)
        .bind(&codes)
        .bind(&regions)
        .execute(&mut *tx)
        .await?;
        let mut cols: (Vec<String>, Vec<String>, Vec<i64>) = Default::default();
        for (c, n, v) in up.counters {
            cols.0.push(c);
            cols.1.push(n);
            cols.2.push(v);
        }
        sqlx::query(
            "INSERT INTO campaign_counters (campaign_id, name, value) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
             ON CONFLICT (campaign_id, name) DO UPDATE SET value = campaign_counters.value + EXCLUDED.value",
        )
        .bind(&cols.0)
        .bind(&cols.1)
        .bind(&cols.2)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE schema_info SET value = $1 WHERE key = 'format'")
            .bind(FORMAT)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    fn where_(&self) -> String {
        match &self.schema {
            Some(s) => format!("{} (schema {s})", self.place),
            None => self.place.clone(),
        }
    }

    /// The schema named by the URL, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Drops the store's schema and everything in it (for tests and tenants); refused for
    /// a store opened without `schema=`.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        let Some(s) = &self.schema else {
            return Err(StoreError::Invalid(
                "this store names no schema; nothing to drop".into(),
            ));
        };
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))
            .execute(&self.pool)
            .await
            .map_err(|e| pg(format!("dropping schema {s:?}"), e))?;
        Ok(())
    }

    /// Bytes the store's tables and their indexes take (in its schema, or `public`).
    pub async fn size_on_disk(&self) -> Result<u64, StoreError> {
        let schema = self.schema.clone().unwrap_or_else(|| "public".into());
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')",
        )
        .bind(&schema)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| pg(format!("measuring schema {schema:?}"), e))?;
        Ok(size.unwrap_or(0).max(0) as u64)
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Refuses a schema migrated or formatted by a newer smsreport, before touching it.
    async fn refuse_newer(&self, conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        let ctx = || format!("reading the schema version of {}", self.where_());
        let (has_migrations, has_info): (bool, bool) = sqlx::query_as(
            "SELECT to_regclass('_sqlx_migrations') IS NOT NULL, to_regclass('schema_info') IS NOT NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| pg(ctx(), e))?;
        let known: BTreeSet<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        if has_migrations {
            let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations")
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| pg(ctx(), e))?;
            if let Some((v,)) = applied.iter().find(|(v,)| !known.contains(v)) {
                return Err(newer(
                    &self.where_(),
                    format!(
                        "it has schema migration {v}; this smsreport knows up to {}",
                        known.last().copied().unwrap_or(0)
                    ),
                ));
            }
        }
        if has_info {
            let format: Option<(i64,)> =
                sqlx::query_as("SELECT value FROM schema_info WHERE key = 'format'")
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| pg(ctx(), e))?;
            if let Some((f,)) = format.filter(|(f,)| *f > FORMAT) {
                return Err(newer(
                    &self.where_(),
                    format!("format {f}; this smsreport writes format {FORMAT}"),
                ));
            }
        }
        Ok(())
    }
}

/// An error inside the ingest transaction: a database error may be retried.
enum TxError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for TxError {
    fn from(e: sqlx::Error) -> Self {
        TxError::Sql(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40001" || c == "40P01")
}

/// The locks a batch takes before loading: advisory locks on campaigns and lists
/// (key, exclusive?), sorted by key; and `ingest_locks` buckets, sorted.
fn lock_plan(events: &[Event], needs: &Needs) -> (Vec<i64>, Vec<bool>, Vec<i32>) {
    let mut adv: BTreeMap<i64, bool> = BTreeMap::new();
    let defined: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Campaign(c) => Some(c.campaign_id.as_str()),
            _ => None,
        })
        .collect();
    for c in &needs.campaigns {
        let k = key_hash(b'C', &[c]) as i64;
        *adv.entry(k).or_default() |= defined.contains(c.as_str());
    }
    for l in &needs.lists {
        adv.insert(key_hash(b'L', &[l]) as i64, true);
    }
    let mut buckets: BTreeSet<i32> = BTreeSet::new();
    let mut bucket = |h: u64| {
        buckets.insert((h % LOCK_BUCKETS) as i32);
    };
    for m in &needs.messages {
        bucket(key_hash(b'M', &[m]));
    }
    for (l, r) in &needs.contacts {
        bucket(key_hash(b'K', &[l, r]));
    }
    for e in &needs.click_event_ids {
        bucket(key_hash(b'E', &[e]));
    }
    // Click identities and first clicks both lock their (campaign, link, recipient).
    for k in &needs.click_keys {
        bucket(key_hash(b'P', &[&k.campaign_id, &k.link_id, &k.recipient]));
    }
    for (c, l, r) in &needs.unique_pairs {
        bucket(key_hash(b'P', &[c, l, r]));
    }
    let (keys, modes) = adv.into_iter().unzip();
    (keys, modes, buckets.into_iter().collect())
}

impl PgStore {
    async fn try_ingest(
        &self,
        events: &[Event],
        needs: &Needs,
        locks: &(Vec<i64>, Vec<bool>, Vec<i32>),
    ) -> Result<Vec<Outcome>, TxError> {
        let mut tx = self.pool.begin().await?;
        let (keys, modes, buckets) = locks;
        if !keys.is_empty() || !buckets.is_empty() {
            // One statement: the advisory locks first, then the buckets' rows.
            sqlx::query(
                "SELECT (SELECT count(*) FROM (SELECT CASE WHEN x THEN pg_advisory_xact_lock(k)::text \
                 ELSE pg_advisory_xact_lock_shared(k)::text END \
                 FROM unnest($1::int8[], $2::bool[]) AS u(k, x)) s), \
                 (SELECT count(*) FROM (SELECT bucket FROM ingest_locks \
                 WHERE bucket = ANY($3) ORDER BY bucket FOR UPDATE) b)",
            )
            .bind(keys)
            .bind(modes)
            .bind(buckets)
            .execute(&mut *tx)
            .await?;
        }
        let loaded = load(&mut tx, needs).await?;
        // Which contacts exist: those are upserted, the others plainly inserted.
        let contacts: HashSet<(String, String)> = loaded.contacts.keys().cloned().collect();
        let (outcomes, changes) = apply(loaded, events);
        if !changes.is_empty() {
            write(&mut tx, &changes, &contacts).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

const LINKS_BY_PAIR: &str = "SELECT t.code, t.campaign_id, t.link_id, t.message_id, t.recipient \
     FROM tracked_links t JOIN unnest($1::text[], $2::text[]) AS u(m, l) \
     ON t.message_id = u.m AND t.link_id = u.l";

async fn links_by_pair(
    tx: &mut Transaction<'_, Postgres>,
    links: &[&TrackedLink],
    into: &mut StoredLinks,
) -> Result<(), sqlx::Error> {
    let (m, l): (Vec<&str>, Vec<&str>) = links
        .iter()
        .map(|t| (t.message_id.as_str(), t.link_id.as_str()))
        .unzip();
    let rows: Vec<LinkRow> = sqlx::query_as(LINKS_BY_PAIR)
        .bind(&m)
        .bind(&l)
        .fetch_all(&mut **tx)
        .await?;
    for r in rows {
        let t = link_of(r);
        into.insert((t.message_id.clone(), t.link_id.clone()), t);
    }
    Ok(())
}

impl PgStore {
    async fn try_save_links(&self, links: &[TrackedLink]) -> Result<Vec<TrackedLink>, TxError> {
        let save = LinkSave::new(links);
        let mut tx = self.pool.begin().await?;
        let mut stored = StoredLinks::new();
        links_by_pair(&mut tx, save.pairs(), &mut stored).await?;
        // A taken code is found by the insert (ON CONFLICT DO NOTHING) and the reread.
        let new = save.to_insert(&stored, |_| Ok(false))?;
        if !new.is_empty() {
            let mut cols: [Vec<&str>; 5] = Default::default();
            for t in &new {
                cols[0].push(&t.code);
                cols[1].push(&t.campaign_id);
                cols[2].push(&t.link_id);
                cols[3].push(&t.message_id);
                cols[4].push(&t.recipient);
            }
            sqlx::query(
                "INSERT INTO tracked_links (code, campaign_id, link_id, message_id, recipient) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&cols[0])
            .bind(&cols[1])
            .bind(&cols[2])
            .bind(&cols[3])
            .bind(&cols[4])
            .execute(&mut *tx)
            .await?;
            links_by_pair(&mut tx, &new, &mut stored).await?;
        }
        // A taken code leaves its link unstored: the answer is a conflict, and dropping
        // the transaction rolls the whole call back.
        let answer = save.answer(&stored)?;
        tx.commit().await?;
        Ok(answer)
    }
}

/// All of a batch's loads in one statement (one round trip): a row per stored record,
/// its kind first. Columns by kind:
///
/// - 1 campaign: t1 id, t2 name, t3 list_id, t4 links, i1 created_at, b link_tracking;
/// - 2 list: t1 id, t2 name;
/// - 3 contact: t1 list_id, t2 recipient, t3 name;
/// - 4 message: t1 id, t2 campaign_id, t3 recipient, t4 error_code, i1 parts, i2 at,
///   i3 status, i4 status_at, y seen;
/// - 5 click event id: t1;
/// - 6 click key: t1 campaign_id, t2 link_id, t3 recipient, i1 at;
/// - 7 unique pair: t1 campaign_id, t2 link_id, t3 recipient.
const LOAD: &str = "\
SELECT 1, campaign_id, name, list_id, links, created_at, NULL::int8, NULL::int8, NULL::int8, link_tracking, NULL::bytea, NULL::int8, NULL::text \
  FROM campaigns WHERE campaign_id = ANY($1::text[]) \
UNION ALL SELECT 2, list_id, name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM lists WHERE list_id = ANY($2::text[]) \
UNION ALL SELECT 3, c.list_id, c.recipient, c.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM contacts c JOIN unnest($3::text[], $4::text[]) AS u(l, r) ON c.list_id = u.l AND c.recipient = u.r \
UNION ALL SELECT 4, message_id, campaign_id, recipient, error_code, parts, at, status, status_at, NULL, seen, country_code, region \
  FROM messages WHERE message_id = ANY($5::text[]) \
UNION ALL SELECT 5, event_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM event_clicks WHERE event_id = ANY($6::text[]) \
UNION ALL SELECT 6, x.campaign_id, x.link_id, x.recipient, NULL, x.at, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM clicks x JOIN unnest($7::text[], $8::text[], $9::text[], $10::int8[]) AS u(c, l, r, a) \
  ON x.campaign_id = u.c AND x.link_id = u.l AND x.recipient = u.r AND x.at = u.a \
UNION ALL SELECT 7, x.campaign_id, x.link_id, x.recipient, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
  FROM unique_pairs x JOIN unnest($11::text[], $12::text[], $13::text[]) AS u(c, l, r) \
  ON x.campaign_id = u.c AND x.link_id = u.l AND x.recipient = u.r";

type LoadRow = (
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<bool>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<String>,
);

async fn load(tx: &mut Transaction<'_, Postgres>, n: &Needs) -> Result<Loaded, TxError> {
    fn strs(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }
    let (cl, cr): (Vec<&str>, Vec<&str>) = n
        .contacts
        .iter()
        .map(|(x, y)| (x.as_str(), y.as_str()))
        .unzip();
    let mut keys: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
    for k in &n.click_keys {
        keys.0.push(&k.campaign_id);
        keys.1.push(&k.link_id);
        keys.2.push(&k.recipient);
        keys.3.push(k.at.0);
    }
    let mut pairs: (Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
    for (a, b, c) in &n.unique_pairs {
        pairs.0.push(a);
        pairs.1.push(b);
        pairs.2.push(c);
    }
    let rows: Vec<LoadRow> = sqlx::query_as(LOAD)
        .bind(strs(&n.campaigns))
        .bind(strs(&n.lists))
        .bind(&cl)
        .bind(&cr)
        .bind(strs(&n.messages))
        .bind(strs(&n.click_event_ids))
        .bind(&keys.0)
        .bind(&keys.1)
        .bind(&keys.2)
        .bind(&keys.3)
        .bind(&pairs.0)
        .bind(&pairs.1)
        .bind(&pairs.2)
        .fetch_all(&mut **tx)
        .await?;
    let mut l = Loaded::default();
    let bad =
        |kind: i32| TxError::Store(corrupt(format!("a load row of kind {kind} is incomplete")));
    for (kind, t1, t2, t3, t4, i1, i2, i3, i4, b, y, i5, t5) in rows {
        match kind {
            1 => {
                let (Some(id), Some(name), Some(links), Some(track)) = (t1, t2, t4, b) else {
                    return Err(bad(kind));
                };
                let def = campaign_of((id, name, t3, track, i1, links))?;
                l.campaigns.insert(def.campaign_id.clone(), def);
            }
            2 => {
                let (Some(id), Some(name)) = (t1, t2) else {
                    return Err(bad(kind));
                };
                l.lists.insert(id, name);
            }
            3 => {
                let (Some(list), Some(r)) = (t1, t2) else {
                    return Err(bad(kind));
                };
                l.contacts.insert((list, r), t3);
            }
            4 => {
                let (Some(id), Some(seen)) = (t1, y) else {
                    return Err(bad(kind));
                };
                let (id, m) = stored_of((id, t2, t3, i1, i2, i3, i4, t4, seen, i5, t5))?;
                l.messages.insert(id, m);
            }
            5 => {
                let Some(id) = t1 else { return Err(bad(kind)) };
                l.click_event_ids.insert(id);
            }
            6 => {
                let (Some(campaign_id), Some(link_id), Some(recipient), Some(at)) =
                    (t1, t2, t3, i1)
                else {
                    return Err(bad(kind));
                };
                l.click_keys.insert(ClickKey {
                    campaign_id,
                    link_id,
                    recipient,
                    at: Millis(at),
                });
            }
            7 => {
                let (Some(c), Some(k), Some(r)) = (t1, t2, t3) else {
                    return Err(bad(kind));
                };
                l.unique_pairs.insert((c, k, r));
            }
            _ => return Err(bad(kind)),
        }
    }
    Ok(l)
}

/// message_id, campaign_id, recipient, parts, at, status, status_at, error_code, seen,
/// country_code, region.
type StoredRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Vec<u8>,
    Option<i64>,
    Option<String>,
);

fn stored_of(r: StoredRow) -> Result<(String, MessageState), StoreError> {
    let (id, campaign, recipient, parts, at, status, status_at, code, seen, cc, region) = r;
    let seen = decode_seen(&seen).ok_or_else(|| corrupt(format!("message {id:?}: bad seen")))?;
    let mut m = MessageState {
        seen,
        ..Default::default()
    };
    match (campaign, recipient, parts, at) {
        (Some(c), Some(rc), Some(p), Some(a)) => {
            m.record = Some(message_of((
                id.clone(),
                c,
                rc,
                p,
                a,
                status,
                status_at,
                code,
                cc,
                region,
            ))?);
        }
        (None, None, None, None) => {
            m.pending = match (status, status_at) {
                (Some(s), Some(a)) => Some(key_of(s, a, code)?),
                (None, None) => None,
                _ => return Err(corrupt(format!("message {id:?} has half a status"))),
            };
        }
        _ => return Err(corrupt(format!("message {id:?} is half there"))),
    }
    Ok((id, m))
}

/// Each key: status rank (1 byte), time (8, big-endian), 0 (no code) or 1 and the code's
/// length (4, big-endian) and bytes.
fn encode_seen(seen: &[StatusKey]) -> Vec<u8> {
    let mut b = Vec::with_capacity(seen.len() * 10);
    for k in seen {
        b.push(k.status.rank());
        b.extend_from_slice(&k.at.0.to_be_bytes());
        match &k.error_code {
            None => b.push(0),
            Some(c) => {
                b.push(1);
                b.extend_from_slice(&(c.len() as u32).to_be_bytes());
                b.extend_from_slice(c.as_bytes());
            }
        }
    }
    b
}

fn decode_seen(mut b: &[u8]) -> Option<Vec<StatusKey>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let status = Status::from_rank(take(&mut b, 1)?[0])?;
        let at = i64::from_be_bytes(take(&mut b, 8)?.try_into().ok()?);
        let error_code = match take(&mut b, 1)?[0] {
            0 => None,
            1 => {
                let n = u32::from_be_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
                Some(String::from_utf8(take(&mut b, n)?.to_vec()).ok()?)
            }
            _ => return None,
        };
        out.push(StatusKey {
            status,
            at: Millis(at),
            error_code,
        });
    }
    Some(out)
}

/// All of a batch's writes in one statement (one round trip): `INSERT … SELECT … FROM
/// unnest(…)` per table, as data-modifying CTEs (an empty array writes nothing). The
/// batch's keys are locked and were loaded, so the store knows which rows exist: new
/// contacts and messages are plainly inserted (no `ON CONFLICT` probe, which costs about
/// a third of an insert), existing ones upserted; the clicks and first clicks the engine
/// records are new. Counters (not loaded) are `INSERT … ON CONFLICT DO UPDATE`.
const WRITE: &str = "WITH \
c AS (INSERT INTO campaigns (campaign_id, name, list_id, link_tracking, created_at, links) \
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::int8[], $6::text[]) \
  ON CONFLICT (campaign_id) DO UPDATE SET name = EXCLUDED.name, list_id = EXCLUDED.list_id, \
  link_tracking = EXCLUDED.link_tracking, created_at = EXCLUDED.created_at, links = EXCLUDED.links), \
l AS (INSERT INTO lists (list_id, name) SELECT * FROM unnest($7::text[], $8::text[]) \
  ON CONFLICT (list_id) DO UPDATE SET name = EXCLUDED.name), \
k AS (INSERT INTO contacts (list_id, recipient, name) \
  SELECT l, r, n FROM unnest($9::text[], $10::text[], $11::text[], $46::bool[]) AS u(l, r, n, s) WHERE NOT s), \
ku AS (INSERT INTO contacts (list_id, recipient, name) \
  SELECT l, r, n FROM unnest($9::text[], $10::text[], $11::text[], $46::bool[]) AS u(l, r, n, s) WHERE s \
  ON CONFLICT (list_id, recipient) DO UPDATE SET name = EXCLUDED.name), \
m AS (INSERT INTO messages (message_id, campaign_id, recipient, parts, at, status, status_at, error_code, row_rank, seen, country_code, region) \
  SELECT i, c, r, p, a, st, sa, e, rr, seen, cc, rg FROM unnest($12::text[], $13::text[], $14::text[], $15::int8[], \
  $16::int8[], $17::int8[], $18::int8[], $19::text[], $20::int8[], $21::bytea[], $47::bool[], $48::int8[], $49::text[]) \
  AS u(i, c, r, p, a, st, sa, e, rr, seen, s, cc, rg) WHERE NOT s), \
mu AS (INSERT INTO messages (message_id, campaign_id, recipient, parts, at, status, status_at, error_code, row_rank, seen, country_code, region) \
  SELECT i, c, r, p, a, st, sa, e, rr, seen, cc, rg FROM unnest($12::text[], $13::text[], $14::text[], $15::int8[], \
  $16::int8[], $17::int8[], $18::int8[], $19::text[], $20::int8[], $21::bytea[], $47::bool[], $48::int8[], $49::text[]) \
  AS u(i, c, r, p, a, st, sa, e, rr, seen, s, cc, rg) WHERE s \
  ON CONFLICT (message_id) DO UPDATE SET campaign_id = EXCLUDED.campaign_id, recipient = EXCLUDED.recipient, \
  parts = EXCLUDED.parts, at = EXCLUDED.at, status = EXCLUDED.status, status_at = EXCLUDED.status_at, \
  error_code = EXCLUDED.error_code, row_rank = EXCLUDED.row_rank, seen = EXCLUDED.seen, \
  country_code = EXCLUDED.country_code, region = EXCLUDED.region), \
e AS (INSERT INTO event_clicks (event_id, campaign_id, link_id, recipient, at, user_agent, bot) \
  SELECT * FROM unnest($22::text[], $23::text[], $24::text[], $25::text[], $26::int8[], $27::text[], $28::bool[])), \
x AS (INSERT INTO clicks (campaign_id, link_id, recipient, at, user_agent, bot) \
  SELECT * FROM unnest($29::text[], $30::text[], $31::text[], $32::int8[], $33::text[], $34::bool[])), \
u AS (INSERT INTO unique_pairs (campaign_id, link_id, recipient) \
  SELECT * FROM unnest($35::text[], $36::text[], $37::text[])), \
cc AS (INSERT INTO campaign_counters (campaign_id, name, value) \
  SELECT * FROM unnest($38::text[], $39::text[], $40::int8[]) \
  ON CONFLICT (campaign_id, name) DO UPDATE SET value = campaign_counters.value + EXCLUDED.value), \
rc AS (INSERT INTO recipient_clicks (campaign_id, recipient, clicks) \
  SELECT * FROM unnest($41::text[], $42::text[], $43::int8[]) \
  ON CONFLICT (campaign_id, recipient) DO UPDATE SET clicks = recipient_clicks.clicks + EXCLUDED.clicks), \
ls AS (INSERT INTO list_subscribers (list_id, subscribers) \
  SELECT * FROM unnest($44::text[], $45::int8[]) \
  ON CONFLICT (list_id) DO UPDATE SET subscribers = list_subscribers.subscribers + EXCLUDED.subscribers) \
SELECT 1";

/// The columns of the `messages` rows a batch touched, whole: the stored row with the
/// batch's message, pending status and status events applied.
#[derive(Default)]
struct MessageColumns<'a> {
    id: Vec<&'a str>,
    /// Whether the row exists (upserted) or not (inserted).
    stored: Vec<bool>,
    camp: Vec<Option<String>>,
    rcpt: Vec<Option<String>>,
    parts: Vec<Option<i64>>,
    at: Vec<Option<i64>>,
    st: Vec<Option<i64>>,
    st_at: Vec<Option<i64>>,
    code: Vec<Option<String>>,
    row: Vec<i64>,
    seen: Vec<Vec<u8>>,
    country_code: Vec<Option<i64>>,
    region: Vec<Option<String>>,
}

fn message_columns(ch: &Changes) -> MessageColumns<'_> {
    let mut c = MessageColumns::default();
    for m in &ch.messages {
        let s = &m.state;
        c.id.push(&m.message_id);
        c.stored.push(m.existed);
        match &s.record {
            Some(r) => {
                let (a, b, code, rr) = status_columns(r);
                c.camp.push(Some(r.campaign_id.clone()));
                c.rcpt.push(Some(r.recipient.clone()));
                c.parts.push(Some(r.parts as i64));
                c.at.push(Some(r.at.0));
                c.st.push(a);
                c.st_at.push(b);
                c.code.push(code);
                c.row.push(rr);
                let (cc, region) = country_columns(&r.country);
                c.country_code.push(cc);
                c.region.push(Some(region));
            }
            None => {
                c.camp.push(None);
                c.rcpt.push(None);
                c.parts.push(None);
                c.at.push(None);
                c.st.push(s.pending.as_ref().map(|k| k.status.rank() as i64));
                c.st_at.push(s.pending.as_ref().map(|k| k.at.0));
                c.code
                    .push(s.pending.as_ref().and_then(|k| k.error_code.clone()));
                c.row.push(0);
                c.country_code.push(None);
                c.region.push(None);
            }
        }
        c.seen.push(encode_seen(&s.seen));
    }
    c
}

/// list_id, recipient, name, whether it exists.
type ContactColumns<'a> = (Vec<&'a str>, Vec<&'a str>, Vec<Option<&'a str>>, Vec<bool>);

/// id, name, list_id, link_tracking, created_at, links.
type CampaignColumns<'a> = (
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<Option<&'a str>>,
    Vec<bool>,
    Vec<Option<i64>>,
    Vec<String>,
);

async fn write(
    tx: &mut Transaction<'_, Postgres>,
    ch: &Changes,
    known_contacts: &HashSet<(String, String)>,
) -> Result<(), sqlx::Error> {
    let mut camps: CampaignColumns = Default::default();
    for c in &ch.campaigns {
        camps.0.push(&c.campaign_id);
        camps.1.push(&c.name);
        camps.2.push(c.contact_list.as_deref());
        camps.3.push(c.link_tracking);
        camps.4.push(c.created_at.map(|m| m.0));
        camps.5.push(links_json(c));
    }
    let (list_id, list_name): (Vec<&str>, Vec<&str>) = ch
        .lists
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .unzip();
    let mut contacts: ContactColumns = Default::default();
    for c in &ch.contacts {
        contacts.0.push(&c.list_id);
        contacts.1.push(&c.recipient);
        contacts.2.push(c.name.as_deref());
        contacts
            .3
            .push(known_contacts.contains(&(c.list_id.clone(), c.recipient.clone())));
    }
    let m = message_columns(ch);
    let (with_id, without): (Vec<&ClickRecord>, Vec<&ClickRecord>) =
        ch.clicks.iter().partition(|c| c.event_id.is_some());
    let event_ids: Vec<&str> = with_id
        .iter()
        .map(|k| k.event_id.as_deref().unwrap_or_default())
        .collect();
    let e = click_columns(&with_id);
    let x = click_columns(&without);
    let mut pairs: (Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
    for (a, b, d) in &ch.unique_pairs {
        pairs.0.push(a);
        pairs.1.push(b);
        pairs.2.push(d);
    }
    // Counters: BTreeMap order, so every transaction updates rows in the same order.
    let mut camp = (Vec::new(), Vec::new(), Vec::new());
    let mut rcpt = (Vec::new(), Vec::new(), Vec::new());
    let mut subs = (Vec::new(), Vec::new());
    for (counter, delta) in &ch.counters {
        match counter {
            Counter::Campaign(id, c) => {
                camp.0.push(id.as_str());
                camp.1.push(c.name());
                camp.2.push(*delta);
            }
            Counter::RecipientClicks {
                campaign_id,
                recipient,
            } => {
                rcpt.0.push(campaign_id.as_str());
                rcpt.1.push(recipient.as_str());
                rcpt.2.push(*delta);
            }
            Counter::Subscribers(list) => {
                subs.0.push(list.as_str());
                subs.1.push(*delta);
            }
        }
    }
    sqlx::query(WRITE)
        .bind(&camps.0)
        .bind(&camps.1)
        .bind(&camps.2)
        .bind(&camps.3)
        .bind(&camps.4)
        .bind(&camps.5)
        .bind(&list_id)
        .bind(&list_name)
        .bind(&contacts.0)
        .bind(&contacts.1)
        .bind(&contacts.2)
        .bind(&m.id)
        .bind(&m.camp)
        .bind(&m.rcpt)
        .bind(&m.parts)
        .bind(&m.at)
        .bind(&m.st)
        .bind(&m.st_at)
        .bind(&m.code)
        .bind(&m.row)
        .bind(&m.seen)
        .bind(&event_ids)
        .bind(&e.0)
        .bind(&e.1)
        .bind(&e.2)
        .bind(&e.3)
        .bind(&e.4)
        .bind(&e.5)
        .bind(&x.0)
        .bind(&x.1)
        .bind(&x.2)
        .bind(&x.3)
        .bind(&x.4)
        .bind(&x.5)
        .bind(&pairs.0)
        .bind(&pairs.1)
        .bind(&pairs.2)
        .bind(&camp.0)
        .bind(&camp.1)
        .bind(&camp.2)
        .bind(&rcpt.0)
        .bind(&rcpt.1)
        .bind(&rcpt.2)
        .bind(&subs.0)
        .bind(&subs.1)
        .bind(&contacts.3)
        .bind(&m.stored)
        .bind(&m.country_code)
        .bind(&m.region)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

type ClickColumns<'a> = (
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<&'a str>,
    Vec<i64>,
    Vec<Option<&'a str>>,
    Vec<bool>,
);

fn click_columns<'a>(clicks: &[&'a ClickRecord]) -> ClickColumns<'a> {
    let mut c: ClickColumns<'a> = Default::default();
    for k in clicks {
        c.0.push(&k.campaign_id);
        c.1.push(&k.link_id);
        c.2.push(&k.recipient);
        c.3.push(k.at.0);
        c.4.push(k.user_agent.as_deref());
        c.5.push(k.bot);
    }
    c
}

#[async_trait]
impl Store for PgStore {
    async fn ingest(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let needs = Needs::of(events);
        let locks = lock_plan(events, &needs);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.try_ingest(events, &needs, &locks).await {
                Ok(o) => return Ok(o),
                Err(TxError::Store(e)) => return Err(e),
                Err(TxError::Sql(e)) if retryable(&e) && attempt < ATTEMPTS => {
                    // Back off a little longer each time, with jitter from the clock.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() as u64 % 7);
                    let ms = (5u64 << attempt.min(6)) + jitter;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(TxError::Sql(e)) => {
                    return Err(pg(format!("ingesting into {}", self.where_()), e))
                }
            }
        }
    }

    async fn save_links(&self, links: &[TrackedLink]) -> Result<Vec<TrackedLink>, StoreError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.try_save_links(links).await {
                Ok(v) => return Ok(v),
                Err(TxError::Store(e)) => return Err(e),
                Err(TxError::Sql(e)) if retryable(&e) && attempt < ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(5u64 << attempt.min(6))).await;
                }
                Err(TxError::Sql(e)) => {
                    return Err(pg(format!("saving tracked links in {}", self.where_()), e))
                }
            }
        }
    }

    async fn resolve_link(&self, code: &str) -> Result<Option<TrackedLink>, StoreError> {
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT code, campaign_id, link_id, message_id, recipient FROM tracked_links WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| pg("resolving a tracked link", e))?;
        Ok(row.map(link_of))
    }

    async fn totals(&self, campaign_id: &str) -> Result<Option<CampaignTotals>, StoreError> {
        let ctx = || format!("reading campaign {campaign_id:?}");
        let row: Option<CampaignRow> = sqlx::query_as(
            "SELECT campaign_id, name, list_id, link_tracking, created_at, links \
             FROM campaigns WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| pg(ctx(), e))?;
        let Some(row) = row else { return Ok(None) };
        let def = campaign_of(row)?;
        let list = match &def.contact_list {
            None => None,
            Some(id) => {
                let r: Option<(String, i64)> = sqlx::query_as(
                    "SELECT COALESCE((SELECT name FROM lists WHERE list_id = $1), ''), \
                     COALESCE((SELECT subscribers FROM list_subscribers WHERE list_id = $1), 0)",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| pg(ctx(), e))?;
                r
            }
        };
        let counters: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, value FROM campaign_counters WHERE campaign_id = $1 AND name NOT LIKE 'edge:%'")
                .bind(campaign_id)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| pg(ctx(), e))?;
        CampaignTotals::from_stored(def, list, counters).map(Some)
    }

    async fn all_totals(&self) -> Result<Vec<CampaignTotals>, StoreError> {
        let ctx = "reading the campaigns";
        let defs: Vec<CampaignRow> = sqlx::query_as(
            "SELECT campaign_id, name, list_id, link_tracking, created_at, links FROM campaigns",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg(ctx, e))?;
        let lists: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT l.list_id, l.name, COALESCE(s.subscribers, 0) FROM lists l \
             LEFT JOIN list_subscribers s ON s.list_id = l.list_id \
             WHERE l.list_id IN (SELECT list_id FROM campaigns)",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg(ctx, e))?;
        let counters: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT campaign_id, name, value FROM campaign_counters WHERE name NOT LIKE 'edge:%'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg(ctx, e))?;
        assemble(defs, lists, counters)
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
                // Up to `limit` from each status's range of messages_by_row, merged: no
                // second index by (campaign_id, message_id) to keep up at every status
                // change. Message ids are never empty, so '' is before them all.
                "SELECT m.message_id, m.campaign_id, m.recipient, m.parts, m.at, m.status, m.status_at, \
                 m.error_code, m.country_code, m.region, COALESCE(rc.clicks, 0) FROM ( \
                   SELECT p.* FROM unnest($2::int8[]) AS r(rank) CROSS JOIN LATERAL ( \
                     SELECT x.message_id, x.campaign_id, x.recipient, x.parts, x.at, x.status, \
                     x.status_at, x.error_code, x.country_code, x.region FROM messages x \
                     WHERE x.campaign_id = $1 AND x.row_rank = r.rank AND x.message_id > $3 \
                     AND ($5::int8 IS NULL OR x.at >= $5) AND ($6::int8 IS NULL OR x.at < $6) \
                     AND ($7::text IS NULL OR x.region = $7) \
                     AND (NOT $8 OR x.country_code IS NOT DISTINCT FROM $9::int8) \
                     ORDER BY x.message_id LIMIT $4) p \
                   ORDER BY p.message_id LIMIT $4) m \
                 LEFT JOIN recipient_clicks rc ON rc.campaign_id = m.campaign_id AND rc.recipient = m.recipient \
                 ORDER BY m.message_id",
            )
            .bind(campaign_id)
            .bind(&ranks)
            .bind(after.unwrap_or(""))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(filter.submitted.0)
            .bind(filter.submitted.1)
            .bind(c.region)
            .bind(c.by_code)
            .bind(c.code)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| pg(format!("reading the messages of campaign {campaign_id:?}"), e))?;
        rows.into_iter().map(message_clicks_of).collect()
    }

    async fn edge_clicks(&self, campaign_id: &str) -> Result<BTreeMap<Millis, i64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, value FROM campaign_counters WHERE campaign_id = $1 AND name LIKE 'edge:%'",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| pg(format!("reading campaign {campaign_id:?}"), e))?;
        edges_from_rows(rows)
    }

    async fn recount(&self) -> Result<Recount, StoreError> {
        let ctx = "recounting";
        let mut rc = Recount::default();
        {
            let sql =
                format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE campaign_id IS NOT NULL");
            let mut rows = sqlx::query_as::<_, MessageRow>(&sql).fetch(&self.pool);
            while let Some(r) = rows.try_next().await.map_err(|e| pg(ctx, e))? {
                rc.message(&message_of(r)?);
            }
        }
        {
            let mut rows = sqlx::query_as::<_, (Option<String>, String, String, String, i64, Option<String>, bool)>(
                "SELECT event_id, campaign_id, link_id, recipient, at, user_agent, bot FROM event_clicks \
                 UNION ALL SELECT NULL, campaign_id, link_id, recipient, at, user_agent, bot FROM clicks",
            )
            .fetch(&self.pool);
            while let Some((event_id, campaign_id, link_id, recipient, at, user_agent, bot)) =
                rows.try_next().await.map_err(|e| pg(ctx, e))?
            {
                rc.click(&ClickRecord {
                    campaign_id,
                    link_id,
                    recipient,
                    at: Millis(at),
                    user_agent,
                    event_id,
                    bot,
                });
            }
        }
        {
            let mut rows =
                sqlx::query_as::<_, (String,)>("SELECT list_id FROM contacts").fetch(&self.pool);
            while let Some((list,)) = rows.try_next().await.map_err(|e| pg(ctx, e))? {
                rc.contact(&list);
            }
        }
        Ok(rc)
    }
}
