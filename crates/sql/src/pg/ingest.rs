//! The PostgreSQL ingest: locking a batch's keys, loading their state in one statement,
//! letting the engine decide, and writing its changes in one statement.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use smsreport_core::engine::{
    apply, Changes, ClickKey, ClickRecord, Counter, Loaded, MessageState, Needs, Outcome,
};
use smsreport_core::store::{LinkSave, StoredLinks};
use smsreport_core::{Event, Millis, StoreError, TrackedLink};
use sqlx::{Postgres, QueryBuilder, Transaction};

use super::seen::{decode_seen, encode_seen};
use super::{PgStore, TxError, LOCK_BUCKETS};
use crate::{
    campaign_of, corrupt, country_columns, key_hash, key_of, link_of, links_json, message_of,
    status_columns, LinkRow, MessageRow,
};

/// The locks a batch takes before loading: advisory locks on campaigns and lists
/// (key, exclusive?), sorted by key; and `ingest_locks` buckets, sorted.
pub(super) fn lock_plan(events: &[Event], needs: &Needs) -> (Vec<i64>, Vec<bool>, Vec<i32>) {
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
    pub(super) async fn try_ingest(
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
    pub(super) async fn try_save_links(
        &self,
        links: &[TrackedLink],
    ) -> Result<Vec<TrackedLink>, TxError> {
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
/// - 7 unique pair: t1 campaign_id, t2 link_id, t3 recipient;
/// - 8 forgotten click: t1 campaign_id, t2 link_id, i1 at.
///
/// The branches are in the order of [`Needs`]' fields, and the statement joins by
/// `UNION ALL` only those whose field has keys: a batch of status callbacks for known
/// messages needs only those, and is planned as one small `SELECT` rather than a union
/// of eight. `$#` stands for the next parameter.
const LOAD_BRANCHES: [&str; 8] = [
    "SELECT 1, campaign_id, name, list_id, links, created_at, NULL::int8, NULL::int8, NULL::int8, link_tracking, NULL::bytea, NULL::int8, NULL::text \
     FROM campaigns WHERE campaign_id = ANY($#::text[])",
    "SELECT 2, list_id, name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
     FROM lists WHERE list_id = ANY($#::text[])",
    "SELECT 3, c.list_id, c.recipient, c.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
     FROM contacts c JOIN unnest($#::text[], $#::text[]) AS u(l, r) ON c.list_id = u.l AND c.recipient = u.r",
    "SELECT 4, message_id, campaign_id, recipient, error_code, parts, at, status, status_at, NULL, seen, country_code, region \
     FROM messages WHERE message_id = ANY($#::text[])",
    "SELECT 5, event_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
     FROM event_clicks WHERE event_id = ANY($#::text[])",
    "SELECT 6, x.campaign_id, x.link_id, x.recipient, NULL, x.at, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
     FROM clicks x JOIN unnest($#::text[], $#::text[], $#::text[], $#::int8[]) AS u(c, l, r, a) \
     ON x.campaign_id = u.c AND x.link_id = u.l AND x.recipient = u.r AND x.at = u.a",
    "SELECT 7, x.campaign_id, x.link_id, x.recipient, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
     FROM unique_pairs x JOIN unnest($#::text[], $#::text[], $#::text[]) AS u(c, l, r) \
     ON x.campaign_id = u.c AND x.link_id = u.l AND x.recipient = u.r",
    "SELECT 8, x.campaign_id, x.link_id, NULL, NULL, x.at, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
     FROM forgotten_clicks x JOIN unnest($#::text[], $#::text[], $#::int8[]) AS u(c, l, a) \
     ON x.campaign_id = u.c AND x.link_id = u.l AND x.at = u.a",
];

/// The load statement for the branches whose bit is set in `wanted` (bit `i` is
/// `LOAD_BRANCHES[i]`), parameters numbered in order.
fn load_sql(wanted: u8) -> String {
    let mut sql = String::new();
    let mut n = 0;
    for (i, branch) in LOAD_BRANCHES.iter().enumerate() {
        if wanted & (1 << i) == 0 {
            continue;
        }
        if !sql.is_empty() {
            sql.push_str(" UNION ALL ");
        }
        let mut pieces = branch.split("$#");
        sql.push_str(pieces.next().unwrap_or_default());
        for piece in pieces {
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
            sql.push_str(piece);
        }
    }
    sql
}

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
    let mut forgotten: (Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
    for (c, l, at) in &n.forgotten_clicks {
        forgotten.0.push(c);
        forgotten.1.push(l);
        forgotten.2.push(at.0);
    }
    let wanted = [
        !n.campaigns.is_empty(),
        !n.lists.is_empty(),
        !n.contacts.is_empty(),
        !n.messages.is_empty(),
        !n.click_event_ids.is_empty(),
        !n.click_keys.is_empty(),
        !n.unique_pairs.is_empty(),
        !n.forgotten_clicks.is_empty(),
    ]
    .iter()
    .enumerate()
    .fold(0u8, |w, (i, &b)| w | (u8::from(b) << i));
    let mut l = Loaded::default();
    if wanted == 0 {
        return Ok(l);
    }
    let sql = load_sql(wanted);
    let mut q = sqlx::query_as::<_, LoadRow>(&sql);
    let has = |i: u8| wanted & (1 << i) != 0;
    if has(0) {
        q = q.bind(strs(&n.campaigns));
    }
    if has(1) {
        q = q.bind(strs(&n.lists));
    }
    if has(2) {
        q = q.bind(&cl).bind(&cr);
    }
    if has(3) {
        q = q.bind(strs(&n.messages));
    }
    if has(4) {
        q = q.bind(strs(&n.click_event_ids));
    }
    if has(5) {
        q = q.bind(&keys.0).bind(&keys.1).bind(&keys.2).bind(&keys.3);
    }
    if has(6) {
        q = q.bind(&pairs.0).bind(&pairs.1).bind(&pairs.2);
    }
    if has(7) {
        q = q.bind(&forgotten.0).bind(&forgotten.1).bind(&forgotten.2);
    }
    let rows: Vec<LoadRow> = q.fetch_all(&mut **tx).await?;
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
            8 => {
                let (Some(c), Some(k), Some(at)) = (t1, t2, i1) else {
                    return Err(bad(kind));
                };
                l.forgotten_clicks.insert((c, k, Millis(at)));
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
    let (seen, undated) =
        decode_seen(&seen).ok_or_else(|| corrupt(format!("message {id:?}: bad seen")))?;
    let mut m = MessageState {
        seen,
        undated,
        ..Default::default()
    };
    match (campaign, recipient, parts, at) {
        (Some(c), Some(rc), Some(p), Some(a)) => {
            m.record = Some(message_of(MessageRow {
                message_id: id.clone(),
                campaign_id: c,
                recipient: rc,
                parts: p,
                at: a,
                status,
                status_at,
                error_code: code,
                country_code: cc,
                region,
            })?);
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

/// Appends `unnest($n::T[], …)` to a query, binding each column (a `Vec`) once.
macro_rules! unnest {
    ($q:ident; $($col:expr => $ty:literal),+ $(,)?) => {{
        $q.push("unnest(");
        {
            let mut cols = $q.separated(", ");
            $(
                cols.push_bind($col);
                cols.push_unseparated(concat!("::", $ty, "[]"));
            )+
        }
        $q.push(")");
    }};
}

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
        c.seen.push(encode_seen(&s.seen, s.undated));
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
    // All of a batch's writes in one statement (one round trip): `INSERT … SELECT … FROM
    // unnest(…)` per table, as data-modifying CTEs, each array bound once. Only the
    // tables the batch writes get a CTE: a batch of status callbacks, which updates
    // messages and counters, is two or three small inserts rather than fourteen. The
    // batch's keys are locked and were loaded, so the store knows which rows exist: new
    // contacts and messages are plainly inserted (no `ON CONFLICT` probe, which costs
    // about a third of an insert), existing ones upserted; the clicks and first clicks
    // the engine records are new. Counters (not loaded) are
    // `INSERT … ON CONFLICT DO UPDATE`.
    let mut fc: (Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
    for (c, l, at) in &ch.forgotten_clicks {
        fc.0.push(c);
        fc.1.push(l);
        fc.2.push(at.0);
    }
    let mut q = QueryBuilder::<Postgres>::new("WITH ");
    let mut ctes = 0;
    let mut cte = |q: &mut QueryBuilder<Postgres>, head: &str| {
        if ctes > 0 {
            q.push(", ");
        }
        ctes += 1;
        q.push(head);
    };
    if !camps.0.is_empty() {
        cte(&mut q, "c AS (INSERT INTO campaigns (campaign_id, name, list_id, link_tracking, created_at, links) SELECT * FROM ");
        unnest!(q; camps.0 => "text", camps.1 => "text", camps.2 => "text", camps.3 => "bool",
            camps.4 => "int8", camps.5 => "text");
        q.push(
            " ON CONFLICT (campaign_id) DO UPDATE SET name = EXCLUDED.name, list_id = EXCLUDED.list_id, \
             link_tracking = EXCLUDED.link_tracking, created_at = EXCLUDED.created_at, links = EXCLUDED.links)",
        );
    }
    if !list_id.is_empty() {
        cte(
            &mut q,
            "l AS (INSERT INTO lists (list_id, name) SELECT * FROM ",
        );
        unnest!(q; list_id => "text", list_name => "text");
        q.push(" ON CONFLICT (list_id) DO UPDATE SET name = EXCLUDED.name)");
    }
    if !contacts.0.is_empty() {
        let (new, old) = (contacts.3.contains(&false), contacts.3.contains(&true));
        cte(&mut q, "kr AS (SELECT * FROM ");
        unnest!(q; contacts.0 => "text", contacts.1 => "text", contacts.2 => "text", contacts.3 => "bool");
        q.push(" AS u(l, r, n, s))");
        if new {
            cte(&mut q, "k AS (INSERT INTO contacts (list_id, recipient, name) SELECT l, r, n FROM kr WHERE NOT s)");
        }
        if old {
            cte(
                &mut q,
                "ku AS (INSERT INTO contacts (list_id, recipient, name) SELECT l, r, n FROM kr WHERE s \
                 ON CONFLICT (list_id, recipient) DO UPDATE SET name = EXCLUDED.name)",
            );
        }
    }
    if !m.id.is_empty() {
        let (new, old) = (m.stored.contains(&false), m.stored.contains(&true));
        cte(&mut q, "mr AS (SELECT * FROM ");
        unnest!(q; m.id => "text", m.camp => "text", m.rcpt => "text", m.parts => "int8",
            m.at => "int8", m.st => "int8", m.st_at => "int8", m.code => "text", m.row => "int8",
            m.seen => "bytea", m.stored => "bool", m.country_code => "int8", m.region => "text");
        q.push(" AS u(i, c, r, p, a, st, sa, e, rr, seen, s, cc, rg))");
        if new {
            cte(
                &mut q,
                "m AS (INSERT INTO messages (message_id, campaign_id, recipient, parts, at, status, status_at, \
                 error_code, row_rank, seen, country_code, region) \
                 SELECT i, c, r, p, a, st, sa, e, rr, seen, cc, rg FROM mr WHERE NOT s)",
            );
        }
        if old {
            cte(
                &mut q,
                "mu AS (INSERT INTO messages (message_id, campaign_id, recipient, parts, at, status, status_at, \
                 error_code, row_rank, seen, country_code, region) \
                 SELECT i, c, r, p, a, st, sa, e, rr, seen, cc, rg FROM mr WHERE s \
                 ON CONFLICT (message_id) DO UPDATE SET campaign_id = EXCLUDED.campaign_id, recipient = EXCLUDED.recipient, \
                 parts = EXCLUDED.parts, at = EXCLUDED.at, status = EXCLUDED.status, status_at = EXCLUDED.status_at, \
                 error_code = EXCLUDED.error_code, row_rank = EXCLUDED.row_rank, seen = EXCLUDED.seen, \
                 country_code = EXCLUDED.country_code, region = EXCLUDED.region)",
            );
        }
    }
    if !event_ids.is_empty() {
        cte(&mut q, "e AS (INSERT INTO event_clicks (event_id, campaign_id, link_id, recipient, at, user_agent, bot) SELECT * FROM ");
        unnest!(q; event_ids => "text", e.0 => "text", e.1 => "text", e.2 => "text", e.3 => "int8",
            e.4 => "text", e.5 => "bool");
        q.push(")");
    }
    if !x.0.is_empty() {
        cte(&mut q, "x AS (INSERT INTO clicks (campaign_id, link_id, recipient, at, user_agent, bot) SELECT * FROM ");
        unnest!(q; x.0 => "text", x.1 => "text", x.2 => "text", x.3 => "int8", x.4 => "text",
            x.5 => "bool");
        q.push(")");
    }
    if !pairs.0.is_empty() {
        cte(
            &mut q,
            "u AS (INSERT INTO unique_pairs (campaign_id, link_id, recipient) SELECT * FROM ",
        );
        unnest!(q; pairs.0 => "text", pairs.1 => "text", pairs.2 => "text");
        q.push(")");
    }
    if !fc.0.is_empty() {
        cte(
            &mut q,
            "fc AS (INSERT INTO forgotten_clicks (campaign_id, link_id, at) SELECT * FROM ",
        );
        unnest!(q; fc.0 => "text", fc.1 => "text", fc.2 => "int8");
        q.push(" ON CONFLICT DO NOTHING)");
    }
    if !camp.0.is_empty() {
        cte(
            &mut q,
            "cc AS (INSERT INTO campaign_counters (campaign_id, name, value) SELECT * FROM ",
        );
        unnest!(q; camp.0 => "text", camp.1 => "text", camp.2 => "int8");
        q.push(" ON CONFLICT (campaign_id, name) DO UPDATE SET value = campaign_counters.value + EXCLUDED.value)");
    }
    if !rcpt.0.is_empty() {
        cte(
            &mut q,
            "rc AS (INSERT INTO recipient_clicks (campaign_id, recipient, clicks) SELECT * FROM ",
        );
        unnest!(q; rcpt.0 => "text", rcpt.1 => "text", rcpt.2 => "int8");
        q.push(" ON CONFLICT (campaign_id, recipient) DO UPDATE SET clicks = recipient_clicks.clicks + EXCLUDED.clicks)");
    }
    if !subs.0.is_empty() {
        cte(
            &mut q,
            "ls AS (INSERT INTO list_subscribers (list_id, subscribers) SELECT * FROM ",
        );
        unnest!(q; subs.0 => "text", subs.1 => "int8");
        q.push(" ON CONFLICT (list_id) DO UPDATE SET subscribers = list_subscribers.subscribers + EXCLUDED.subscribers)");
    }
    if ctes == 0 {
        return Ok(());
    }
    q.push(" SELECT 1");
    q.build().execute(&mut **tx).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Any subset of the load's branches joins exactly those branches, in order, and
    /// numbers their parameters 1, 2, … once each, branch after branch: the order in
    /// which `load` binds them.
    #[test]
    fn a_load_of_any_subset_numbers_its_parameters_in_order() {
        let params: Vec<usize> = LOAD_BRANCHES
            .iter()
            .map(|b| b.matches("$#").count())
            .collect();
        for wanted in 1..=u8::MAX {
            let sql = load_sql(wanted);
            let chosen: Vec<usize> = (0..8).filter(|i| wanted & (1 << i) != 0).collect();
            let kinds: Vec<usize> = sql
                .split(" UNION ALL ")
                .map(|b| {
                    let rest = b.strip_prefix("SELECT ").expect(&sql);
                    rest[..rest.find(',').expect(&sql)].parse().expect(&sql)
                })
                .collect();
            assert_eq!(
                kinds,
                chosen.iter().map(|i| i + 1).collect::<Vec<_>>(),
                "{sql}"
            );
            let numbers: Vec<usize> = sql
                .split('$')
                .skip(1)
                .map(|p| {
                    let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().expect(&sql)
                })
                .collect();
            let n: usize = chosen.iter().map(|&i| params[i]).sum();
            assert_eq!(numbers, (1..=n).collect::<Vec<_>>(), "{sql}");
        }
    }
}
