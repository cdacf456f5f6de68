//! Gateway callbacks into a [`Store`]: the events of each callback in one store call,
//! one outcome per callback.

use std::collections::BTreeMap;

use super::{parse_callback, quoted, LineFormat, Parsed};
use crate::engine::Outcome;
use crate::event::Rejection;
use crate::ingest::{Line, LineOutcome};
use crate::store::{Store, StoreError};
use crate::time::Millis;

/// Ingests parsed callbacks in one store call and answers one outcome per item, in
/// order; durable when it returns `Ok`.
///
/// An item whose callback would register its message in a campaign that does not exist
/// is rejected (`campaign_id: no campaign named …`, of kind
/// [`RejectionKind::UnknownCampaign`](crate::event::RejectionKind::UnknownCampaign), the
/// HTTP service's `404`) and nothing of it is stored. An
/// item counts as ingested when any of its events was; the `message` event of a message
/// already known is not reported.
pub async fn ingest_callbacks(
    store: &dyn Store,
    items: Vec<Result<Parsed, Rejection>>,
    received: Millis,
) -> Result<Vec<Outcome>, StoreError> {
    let mut campaigns: BTreeMap<String, bool> = BTreeMap::new();
    for p in items.iter().flatten() {
        if let (Some(c), Some(_)) = (&p.campaign_id, &p.callback.recipient) {
            if !campaigns.contains_key(c) {
                let exists = store.totals(c).await?.is_some();
                campaigns.insert(c.clone(), exists);
            }
        }
    }
    let mut events = Vec::new();
    let mut spans = Vec::with_capacity(items.len());
    for item in items {
        let item = item.and_then(|p| match (&p.campaign_id, &p.callback.recipient) {
            (Some(c), Some(_)) if !campaigns.get(c).copied().unwrap_or(false) => {
                Err(Rejection::unknown_campaign(format!(
                    "campaign_id: no campaign named {}",
                    quoted(c)
                )))
            }
            _ => Ok(p),
        });
        match item {
            Ok(p) => {
                let evs = p.callback.events(p.campaign_id.as_deref(), received);
                spans.push(Ok(evs.len()));
                events.extend(evs);
            }
            Err(r) => spans.push(Err(r)),
        }
    }
    let outcomes = if events.is_empty() {
        Vec::new()
    } else {
        store.ingest(&events).await?
    };
    if outcomes.len() != events.len() {
        return Err(StoreError::Corrupt(format!(
            "the store answered {} outcomes for {} events",
            outcomes.len(),
            events.len()
        )));
    }
    let mut it = outcomes.into_iter();
    Ok(spans
        .into_iter()
        .map(|span| match span {
            Err(r) => Outcome::Rejected(r),
            Ok(n) => {
                let mine: Vec<Outcome> = it.by_ref().take(n).collect();
                let status = mine.last().cloned().unwrap_or(Outcome::Duplicate);
                if mine.contains(&Outcome::Ingested) {
                    Outcome::Ingested
                } else {
                    status
                }
            }
        })
        .collect())
}

/// Parses and ingests lines of a gateway format in one store call (see
/// [`ingest_callbacks`]); every line's outcome, in input order. Durable on `Ok`.
pub async fn ingest_callback_lines(
    store: &dyn Store,
    format: LineFormat,
    lines: Vec<Line>,
    received: Millis,
) -> Result<Vec<LineOutcome>, StoreError> {
    let items = lines
        .iter()
        .map(|l| match l.overlong {
            Some(n) => Err(Rejection::new(format!(
                "the line is {n} bytes long, over the limit of {}",
                crate::ingest::MAX_LINE_BYTES
            ))),
            None => parse_callback(format, &l.bytes, received),
        })
        .collect();
    let outcomes = ingest_callbacks(store, items, received).await?;
    Ok(lines
        .into_iter()
        .zip(outcomes)
        .map(|(line, outcome)| LineOutcome { line, outcome })
        .collect())
}
