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

/// Gives `$store` (a type with a sqlx `pool` field) the shared reads as inherent
/// methods: `read_link`, `read_totals`, `read_all_totals`, `read_edge_clicks` and
/// `read_recount`, each what the `Store` method of the same name answers.
macro_rules! shared_reads {
    ($store:ty) => {
        impl $store {
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
