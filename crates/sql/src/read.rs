//! The read side PostgreSQL and SQLite share, written once: the same SQL text (sqlx
//! numbers `$N` parameters on both databases) and the same decoding into core's types.
//! [`shared_reads!`] gives a store type these as inherent methods (`read_…`), which its
//! `Store` impl calls; what differs between the two databases (loading state for an
//! ingest, the batch write, the drill-down's query plan) stays in `pg` and `sqlite`.

/// A campaign's definition.
pub(crate) const CAMPAIGN: &str =
    "SELECT campaign_id, name, list_id, link_tracking, created_at, links \
     FROM campaigns WHERE campaign_id = $1";
/// A list's name and subscriber count ('' and 0 when it has none yet).
pub(crate) const LIST: &str = "SELECT COALESCE((SELECT name FROM lists WHERE list_id = $1), ''), \
     COALESCE((SELECT subscribers FROM list_subscribers WHERE list_id = $1), 0)";
/// A campaign's counters, but the click edges (the report's month chart reads those).
pub(crate) const COUNTERS: &str = "SELECT name, value FROM campaign_counters \
     WHERE campaign_id = $1 AND name NOT LIKE 'edge:%'";
/// Every campaign's definition.
pub(crate) const ALL_CAMPAIGNS: &str =
    "SELECT campaign_id, name, list_id, link_tracking, created_at, links FROM campaigns";
/// Every list a campaign sends to, with its subscriber count.
pub(crate) const ALL_LISTS: &str =
    "SELECT l.list_id, l.name, COALESCE(s.subscribers, 0) FROM lists l \
     LEFT JOIN list_subscribers s ON s.list_id = l.list_id \
     WHERE l.list_id IN (SELECT list_id FROM campaigns)";
/// Every campaign's counters, but the click edges.
pub(crate) const ALL_COUNTERS: &str =
    "SELECT campaign_id, name, value FROM campaign_counters WHERE name NOT LIKE 'edge:%'";
/// A campaign's click edges.
pub(crate) const EDGES: &str = "SELECT name, value FROM campaign_counters \
     WHERE campaign_id = $1 AND name LIKE 'edge:%'";
/// A tracked link by code.
pub(crate) const LINK: &str =
    "SELECT code, campaign_id, link_id, message_id, recipient FROM tracked_links WHERE code = $1";
/// Every stored message (rows of statuses still waiting for their message have no
/// campaign on PostgreSQL).
pub(crate) const ALL_MESSAGES: &str = "SELECT message_id, campaign_id, recipient, parts, at, \
     status, status_at, error_code, country_code, region FROM messages WHERE campaign_id IS NOT NULL";
/// Every click, with an event id or not.
pub(crate) const ALL_CLICKS: &str =
    "SELECT event_id, campaign_id, link_id, recipient, at, user_agent, bot FROM event_clicks \
     UNION ALL SELECT NULL, campaign_id, link_id, recipient, at, user_agent, bot FROM clicks";
/// Every contact's list.
pub(crate) const ALL_CONTACTS: &str = "SELECT list_id FROM contacts";

/// An export page of campaigns, with their list's name.
pub(crate) const EXPORT_CAMPAIGNS: &str =
    "SELECT c.campaign_id, c.name, c.list_id, c.link_tracking, \
     c.created_at, c.links, l.name FROM campaigns c LEFT JOIN lists l ON l.list_id = c.list_id \
     WHERE c.campaign_id > $1 ORDER BY c.campaign_id LIMIT $2";
/// An export page of contacts.
pub(crate) const EXPORT_CONTACTS: &str = "SELECT list_id, recipient, name FROM contacts \
     WHERE (list_id, recipient) > ($1, $2) ORDER BY list_id, recipient LIMIT $3";
/// An export page of messages.
pub(crate) const EXPORT_MESSAGES: &str = "SELECT message_id, campaign_id, recipient, parts, at, \
     status, status_at, error_code, country_code, region FROM messages \
     WHERE campaign_id IS NOT NULL AND message_id > $1 ORDER BY message_id LIMIT $2";
/// An export page of clicks with an event id.
pub(crate) const EXPORT_EVENT_CLICKS: &str =
    "SELECT event_id, campaign_id, link_id, recipient, at, \
     user_agent, bot FROM event_clicks WHERE event_id > $1 ORDER BY event_id LIMIT $2";
/// An export page of clicks without one.
pub(crate) const EXPORT_CLICKS: &str =
    "SELECT campaign_id, link_id, recipient, at, user_agent, bot \
     FROM clicks WHERE (campaign_id, link_id, recipient, at) > ($1, $2, $3, $4) \
     ORDER BY campaign_id, link_id, recipient, at LIMIT $5";
/// An export page of tracked links.
pub(crate) const EXPORT_LINKS: &str = "SELECT code, campaign_id, link_id, message_id, recipient \
     FROM tracked_links WHERE code > $1 ORDER BY code LIMIT $2";

/// A click row: event_id, campaign_id, link_id, recipient, at, user_agent, bot.
pub(crate) type ClickRow = (
    Option<String>,
    String,
    String,
    String,
    i64,
    Option<String>,
    bool,
);

/// The click a [`ClickRow`] holds.
pub(crate) fn click_of(r: ClickRow) -> smsreport_core::engine::ClickRecord {
    let (event_id, campaign_id, link_id, recipient, at, user_agent, bot) = r;
    smsreport_core::engine::ClickRecord {
        campaign_id,
        link_id,
        recipient,
        at: smsreport_core::Millis(at),
        user_agent,
        event_id,
        bot,
    }
}

/// One page of an export: `$sql` with the key's binds, then the limit, all rows.
macro_rules! page_rows {
    ($pool:expr, $limit:expr, $err:expr; $sql:expr $(, $bind:expr)*) => {
        sqlx::query_as($sql)
            $(.bind($bind))*
            .bind($limit)
            .fetch_all($pool)
            .await
            .map_err($err)?
    };
}
pub(crate) use page_rows;

/// Adds to one data-quality counter of a campaign that exists (`$1` campaign, `$2`
/// counter name, `$3` amount); the same statement on both dialects.
pub(crate) const COUNT_QUALITY: &str = "INSERT INTO campaign_counters (campaign_id, name, value) \
     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM campaigns WHERE campaign_id = $1) \
     ON CONFLICT (campaign_id, name) DO UPDATE SET value = campaign_counters.value + excluded.value";

/// Gives `$store` (a type with a sqlx `pool` field) the shared reads as inherent
/// methods: `read_link`, `read_totals`, `read_all_totals`, `read_edge_clicks`,
/// `read_recount` and `read_export_page`, each what the `Store` method of the same name
/// answers. `$pending` is the dialect's query of an export page of pending statuses
/// (message_id, status, at, error_code; after `$1`, at most `$2`); `$orphans` its query
/// of their count and earliest time (`read_orphans`).
macro_rules! shared_reads {
    ($store:ty, $pending:expr, $orphans:expr) => {
        impl $store {
            async fn write_quality(
                &self,
                campaign_id: &str,
                quality: smsreport_core::engine::Quality,
                n: i64,
            ) -> Result<bool, smsreport_core::StoreError> {
                let name = smsreport_core::engine::CampaignCounter::Quality(quality).name();
                let done = sqlx::query($crate::read::COUNT_QUALITY)
                    .bind(campaign_id)
                    .bind(name)
                    .bind(n)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        smsreport_core::StoreError::backend("counting data quality", e)
                    })?;
                Ok(done.rows_affected() > 0)
            }

            async fn read_orphans(
                &self,
            ) -> Result<smsreport_core::store::Orphans, smsreport_core::StoreError> {
                let (messages, oldest): (i64, Option<i64>) = sqlx::query_as($orphans)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| {
                        smsreport_core::StoreError::backend(
                            "counting statuses waiting for their message",
                            e,
                        )
                    })?;
                Ok(smsreport_core::store::Orphans {
                    messages: u64::try_from(messages).unwrap_or(0),
                    oldest: oldest.map(smsreport_core::Millis),
                })
            }

            async fn read_export_page(
                &self,
                kind: smsreport_core::export::ExportKind,
                after: Option<&smsreport_core::export::Record>,
                limit: usize,
            ) -> Result<Vec<smsreport_core::export::Record>, smsreport_core::StoreError> {
                use smsreport_core::export::{ExportKind, Record};
                let err =
                    |e| smsreport_core::StoreError::backend("reading a page of the export", e);
                let key = after
                    .map(Record::key)
                    .unwrap_or(smsreport_core::export::ExportKey {
                        text: Vec::new(),
                        at: i64::MIN,
                    });
                let t = |i: usize| key.text.get(i).map(String::as_str).unwrap_or("");
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                Ok(match kind {
                    ExportKind::Campaigns => {
                        let rows: Vec<(
                            String,
                            String,
                            Option<String>,
                            bool,
                            Option<i64>,
                            String,
                            Option<String>,
                        )> = $crate::read::page_rows!(&self.pool, limit, err; $crate::read::EXPORT_CAMPAIGNS, t(0));
                        rows.into_iter()
                            .map(|(a, b, c, d, e, f, list_name)| {
                                Ok(Record::Campaign {
                                    def: $crate::campaign_of((a, b, c, d, e, f))?,
                                    list_name,
                                })
                            })
                            .collect::<Result<_, smsreport_core::StoreError>>()?
                    }
                    ExportKind::Contacts => {
                        let rows: Vec<(String, String, Option<String>)> =
                            $crate::read::page_rows!(&self.pool, limit, err; $crate::read::EXPORT_CONTACTS, t(0), t(1));
                        rows.into_iter()
                            .map(|(list_id, recipient, name)| Record::Contact {
                                list_id,
                                recipient,
                                name,
                            })
                            .collect()
                    }
                    ExportKind::Messages => {
                        let rows: Vec<$crate::MessageRow> =
                            $crate::read::page_rows!(&self.pool, limit, err; $crate::read::EXPORT_MESSAGES, t(0));
                        rows.into_iter()
                            .map(|r| $crate::message_of(r).map(Record::Message))
                            .collect::<Result<_, smsreport_core::StoreError>>()?
                    }
                    ExportKind::Pending => {
                        let rows: Vec<(String, i64, i64, Option<String>)> =
                            $crate::read::page_rows!(&self.pool, limit, err; $pending, t(0));
                        rows.into_iter()
                            .map(|(message_id, s, at, code)| {
                                Ok(Record::Pending {
                                    message_id,
                                    key: $crate::key_of(s, at, code)?,
                                })
                            })
                            .collect::<Result<_, smsreport_core::StoreError>>()?
                    }
                    ExportKind::EventClicks => {
                        let rows: Vec<$crate::read::ClickRow> =
                            $crate::read::page_rows!(&self.pool, limit, err; $crate::read::EXPORT_EVENT_CLICKS, t(0));
                        rows.into_iter()
                            .map(|r| Record::Click($crate::read::click_of(r)))
                            .collect()
                    }
                    ExportKind::Clicks => {
                        let rows: Vec<(String, String, String, i64, Option<String>, bool)> =
                            $crate::read::page_rows!(&self.pool, limit, err; $crate::read::EXPORT_CLICKS, t(0), t(1), t(2), key.at);
                        rows.into_iter()
                            .map(|(c, l, r, at, ua, bot)| {
                                Record::Click($crate::read::click_of((None, c, l, r, at, ua, bot)))
                            })
                            .collect()
                    }
                    ExportKind::TrackedLinks => {
                        let rows: Vec<$crate::LinkRow> = $crate::read::page_rows!(&self.pool, limit, err; $crate::read::EXPORT_LINKS, t(0));
                        rows.into_iter()
                            .map(|r| Record::Link($crate::link_of(r)))
                            .collect()
                    }
                })
            }

            async fn read_link(
                &self,
                code: &str,
            ) -> Result<Option<smsreport_core::TrackedLink>, smsreport_core::StoreError> {
                let row: Option<$crate::LinkRow> = sqlx::query_as($crate::read::LINK)
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| {
                        smsreport_core::StoreError::backend("resolving a tracked link", e)
                    })?;
                Ok(row.map($crate::link_of))
            }

            async fn read_totals(
                &self,
                campaign_id: &str,
            ) -> Result<Option<smsreport_core::report::CampaignTotals>, smsreport_core::StoreError>
            {
                let err = |e| {
                    smsreport_core::StoreError::backend(
                        format!("reading campaign {campaign_id:?}"),
                        e,
                    )
                };
                let row: Option<$crate::CampaignRow> = sqlx::query_as($crate::read::CAMPAIGN)
                    .bind(campaign_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(err)?;
                let Some(row) = row else { return Ok(None) };
                let def = $crate::campaign_of(row)?;
                let list: Option<(String, i64)> = match &def.contact_list {
                    None => None,
                    Some(id) => sqlx::query_as($crate::read::LIST)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(err)?,
                };
                let counters: Vec<(String, i64)> = sqlx::query_as($crate::read::COUNTERS)
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err)?;
                smsreport_core::report::CampaignTotals::from_stored(def, list, counters).map(Some)
            }

            async fn read_all_totals(
                &self,
            ) -> Result<Vec<smsreport_core::report::CampaignTotals>, smsreport_core::StoreError>
            {
                let err = |e| smsreport_core::StoreError::backend("reading the campaigns", e);
                let defs: Vec<$crate::CampaignRow> = sqlx::query_as($crate::read::ALL_CAMPAIGNS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err)?;
                let lists: Vec<(String, String, i64)> = sqlx::query_as($crate::read::ALL_LISTS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(err)?;
                let counters: Vec<(String, String, i64)> =
                    sqlx::query_as($crate::read::ALL_COUNTERS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(err)?;
                $crate::assemble(defs, lists, counters)
            }

            async fn read_edge_clicks(
                &self,
                campaign_id: &str,
            ) -> Result<
                std::collections::BTreeMap<smsreport_core::Millis, i64>,
                smsreport_core::StoreError,
            > {
                let rows: Vec<(String, i64)> = sqlx::query_as($crate::read::EDGES)
                    .bind(campaign_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| {
                        smsreport_core::StoreError::backend(
                            format!("reading campaign {campaign_id:?}"),
                            e,
                        )
                    })?;
                smsreport_core::store::edges_from_rows(rows)
            }

            async fn read_recount(
                &self,
            ) -> Result<smsreport_core::report::Recount, smsreport_core::StoreError> {
                use futures_util::TryStreamExt;
                let err = |e| smsreport_core::StoreError::backend("recounting", e);
                let mut rc = smsreport_core::report::Recount::default();
                let mut rows = sqlx::query_as::<_, $crate::MessageRow>($crate::read::ALL_MESSAGES)
                    .fetch(&self.pool);
                while let Some(r) = rows.try_next().await.map_err(err)? {
                    rc.message(&$crate::message_of(r)?);
                }
                drop(rows);
                let mut rows =
                    sqlx::query_as::<_, $crate::read::ClickRow>($crate::read::ALL_CLICKS)
                        .fetch(&self.pool);
                while let Some(r) = rows.try_next().await.map_err(err)? {
                    rc.click(&$crate::read::click_of(r));
                }
                drop(rows);
                let mut rows =
                    sqlx::query_as::<_, (String,)>($crate::read::ALL_CONTACTS).fetch(&self.pool);
                while let Some((list,)) = rows.try_next().await.map_err(err)? {
                    rc.contact(&list);
                }
                Ok(rc)
            }
        }
    };
}
pub(crate) use shared_reads;
