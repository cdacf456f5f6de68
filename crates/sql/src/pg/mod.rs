//! The PostgreSQL store: connecting, schema versions and upgrades (here), the ingest
//! ([`ingest`]), and the `seen` column's encoding ([`seen`]). Reads shared with SQLite
//! are in [`crate::read`].

mod ingest;
mod seen;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use smsreport_core::engine::{MessageRecord, Needs, Outcome};
use smsreport_core::insights::MessageFilter;
use smsreport_core::report::{CampaignTotals, Recount};
use smsreport_core::{Event, Millis, Store, StoreError, TrackedLink};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::{
    message_clicks_of, newer, CountryParams, MessageClicksRow, MessageRow, Upgrade,
    DEFAULT_CONNECT_TIMEOUT, FORMAT, UPGRADE_CLICKS,
};
use ingest::lock_plan;

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
        let messages: Vec<MessageRow> = sqlx::query_as(crate::read::ALL_MESSAGES)
            .fetch_all(&mut *tx)
            .await?;
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
pub(super) enum TxError {
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

/// An export page of statuses waiting for their message: on PostgreSQL, rows of
/// `messages` without a campaign.
const PENDING_PAGE: &str = "SELECT message_id, status, status_at, error_code FROM messages \
     WHERE campaign_id IS NULL AND status IS NOT NULL AND message_id > $1 \
     ORDER BY message_id LIMIT $2";

/// Statuses waiting for their message: `messages_waiting` (migration 0006) indexes just
/// those rows, so this reads no more of the table than them.
const ORPHANS: &str = "SELECT count(*), min(status_at) FROM messages \
     WHERE campaign_id IS NULL AND status IS NOT NULL";

crate::read::shared_reads!(PgStore, PENDING_PAGE, ORPHANS);

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

    async fn forget(
        &self,
        number: &str,
        token: &str,
    ) -> Result<smsreport_core::forget::Forgotten, StoreError> {
        let ctx = || format!("forgetting a number in {}", self.where_());
        let mut tx = self.pool.begin().await.map_err(|e| pg(ctx(), e))?;
        // Every ingest bucket, in order: no batch decides on this number meanwhile.
        sqlx::query(
            "SELECT count(*) FROM (SELECT bucket FROM ingest_locks ORDER BY bucket FOR UPDATE) b",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| pg(ctx(), e))?;
        let f = crate::forget::forget_in!(tx, number, token).map_err(|e| pg(ctx(), e))?;
        tx.commit().await.map_err(|e| pg(ctx(), e))?;
        // The old row versions are dead tuples until vacuumed: vacuum now.
        sqlx::query(&format!("VACUUM {}", crate::forget::TOUCHED))
            .execute(&self.pool)
            .await
            .map_err(|e| {
                pg(
                    format!(
                        "vacuuming {} after forgetting a number (the forgetting itself is committed)",
                        self.where_()
                    ),
                    e,
                )
            })?;
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
                // Up to `limit` from each status's range of messages_by_row, merged: no
                // second index by (campaign_id, message_id) to keep up at every status
                // change. Message ids are never empty, so '' is before them all.
                "SELECT m.message_id, m.campaign_id, m.recipient, m.parts, m.at, m.status, m.status_at, \
                 m.error_code, m.country_code, m.region, COALESCE(rc.clicks, 0) AS clicks FROM ( \
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
