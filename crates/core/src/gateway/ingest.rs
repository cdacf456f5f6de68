//! Gateway callbacks into a [`Store`]: the events of each callback in one store call,
//! one outcome per callback.

use super::{parse_callback, LineFormat, Parsed, Region};
use crate::engine::Outcome;
use crate::event::Rejection;
use crate::ingest::{Line, LineOutcome};
use crate::store::{Store, StoreError};
use crate::time::Millis;

/// Ingests parsed callbacks in one store call and answers one outcome per item, in
/// order; durable when it returns `Ok`.
///
/// Each callback is one status event (see [`super::Callback::event`]). One that would
/// register a message not known yet in a campaign that does not exist is rejected
/// (`campaign_id: no campaign named …`, of kind
/// [`RejectionKind::UnknownCampaign`](crate::event::RejectionKind::UnknownCampaign), the
/// HTTP service's `404`) and nothing of it is stored; for a message already known, the
/// campaign does not matter.
pub async fn ingest_callbacks(
    store: &dyn Store,
    items: Vec<Result<Parsed, Rejection>>,
) -> Result<Vec<Outcome>, StoreError> {
    let mut events = Vec::new();
    let mut rejected = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(p) => {
                events.push(p.callback.event(p.campaign_id.as_deref()));
                rejected.push(None);
            }
            Err(r) => rejected.push(Some(r)),
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
    Ok(rejected
        .into_iter()
        .map(|r| match r {
            Some(r) => Outcome::Rejected(r),
            None => it.next().unwrap_or(Outcome::Duplicate),
        })
        .collect())
}

/// Parses and ingests lines of a gateway format in one store call (see
/// [`ingest_callbacks`]); every line's outcome, in input order. `region` reads national
/// recipients. Durable on `Ok`.
pub async fn ingest_callback_lines(
    store: &dyn Store,
    format: LineFormat,
    lines: Vec<Line>,
    received: Millis,
    region: Option<Region>,
) -> Result<Vec<LineOutcome>, StoreError> {
    let items = lines
        .iter()
        .map(|l| match l.overlong {
            Some(n) => Err(Rejection::new(format!(
                "the line is {n} bytes long, over the limit of {}",
                crate::ingest::MAX_LINE_BYTES
            ))),
            None => parse_callback(format, &l.bytes, received, region),
        })
        .collect();
    let outcomes = ingest_callbacks(store, items).await?;
    Ok(lines
        .into_iter()
        .zip(outcomes)
        .map(|(line, outcome)| LineOutcome { line, outcome })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Quality;
    use crate::ingest::{ingest_events, split_lines};
    use crate::insights::MessageFilter;
    use crate::mem::{block_on, MemStore};
    use crate::status::{Status, StatusKey};
    use crate::RejectionKind;

    const EVENTS: &str = r#"{"type":"campaign","campaign_id":"c","name":"C"}
{"type":"message","message_id":"m1","campaign_id":"c","recipient":"+37120000001","at":"2026-03-01T09:00:00Z"}"#;

    fn store() -> MemStore {
        let store = MemStore::default();
        block_on(ingest_events(&store, split_lines(EVENTS.as_bytes()))).unwrap();
        store
    }

    fn t(s: &str) -> Millis {
        Millis::parse(s).unwrap()
    }

    fn lines(store: &MemStore, format: LineFormat, text: &str, received: Millis) -> Vec<Outcome> {
        block_on(ingest_callback_lines(
            store,
            format,
            split_lines(text.as_bytes()),
            received,
            None,
        ))
        .unwrap()
        .into_iter()
        .map(|o| o.outcome)
        .collect()
    }

    fn status_of(store: &MemStore, id: &str) -> Option<StatusKey> {
        let all = MessageFilter::new(None, &Default::default());
        block_on(store.messages("c", &all, None, 100))
            .unwrap()
            .into_iter()
            .find(|(m, _)| m.message_id == id)
            .and_then(|(m, _)| m.status)
    }

    fn quality(store: &MemStore, q: Quality) -> i64 {
        let t = block_on(store.totals("c")).unwrap().unwrap();
        t.counters.quality.get(&q).copied().unwrap_or(0)
    }

    #[test]
    fn undated_receipts_keep_their_arrival_order_within_a_millisecond() {
        let s = store();
        let r = t("2026-03-05T00:00:00Z");
        let out = lines(
            &s,
            LineFormat::Smpp,
            "id:m1 stat:DELIVRD\nid:m1 stat:UNDELIV err:001",
            r,
        );
        assert_eq!(out, vec![Outcome::Ingested, Outcome::Ingested]);
        let k = status_of(&s, "m1").unwrap();
        assert_eq!(
            (k.status, k.at, k.error_code.as_deref()),
            (Status::FailedRouting, Millis(r.0 + 1), Some("001"))
        );
    }

    #[test]
    fn an_undated_retry_is_a_duplicate_and_never_moves_the_status_time() {
        let s = store();
        let r = t("2026-03-05T00:00:00Z");
        assert_eq!(
            lines(&s, LineFormat::Smpp, "id:m1 stat:DELIVRD", r),
            vec![Outcome::Ingested]
        );
        let later = t("2026-03-05T01:00:00Z");
        assert_eq!(
            lines(&s, LineFormat::Kannel, "type=1&id=m1\ntype=1&id=m1", later),
            vec![Outcome::Duplicate, Outcome::Duplicate]
        );
        assert_eq!(status_of(&s, "m1").unwrap().at, r);
        // A dated status with the same status and code is one of its own.
        assert_eq!(
            lines(
                &s,
                LineFormat::Smpp,
                "id:m1 stat:DELIVRD done date:2603010905",
                later
            ),
            vec![Outcome::Ingested]
        );
        assert_eq!(quality(&s, Quality::Duplicate), 2);
        assert_eq!(quality(&s, Quality::Late), 1);
    }

    #[test]
    fn an_undated_receipt_after_a_later_one_comes_1_ms_after_it() {
        let s = store();
        let r = t("2026-03-05T00:00:00Z");
        lines(&s, LineFormat::Smpp, "id:m1 stat:ENROUTE", r);
        // Received earlier by the clock (a batch's time), but it arrived after.
        lines(&s, LineFormat::Smpp, "id:m1 stat:DELIVRD", Millis(r.0 - 5));
        let k = status_of(&s, "m1").unwrap();
        assert_eq!((k.status, k.at), (Status::Delivered, Millis(r.0 + 1)));
    }

    #[test]
    fn campaign_id_matters_only_for_a_message_not_known() {
        let s = store();
        let r = t("2026-03-05T00:00:00Z");
        // m1 is known: an unknown campaign_id does not matter.
        let out = lines(
            &s,
            LineFormat::Twilio,
            "MessageSid=m1&MessageStatus=delivered&To=%2B37120000001&campaign_id=nope",
            r,
        );
        assert_eq!(out, vec![Outcome::Ingested]);
        // m2 is not: it would be registered in a campaign that does not exist.
        let out = lines(
            &s,
            LineFormat::Twilio,
            "MessageSid=m2&MessageStatus=delivered&To=%2B37120000002&campaign_id=nope",
            r,
        );
        assert!(
            matches!(&out[0], Outcome::Rejected(x) if x.kind == RejectionKind::UnknownCampaign),
            "{out:?}"
        );
        // Nothing of it was stored: the same callback without campaign_id is new.
        let out = lines(
            &s,
            LineFormat::Twilio,
            "MessageSid=m2&MessageStatus=delivered",
            r,
        );
        assert_eq!(out, vec![Outcome::Ingested]);
        // Registered in a campaign that exists, at the status's time.
        let out = lines(
            &s,
            LineFormat::Twilio,
            "MessageSid=m3&MessageStatus=sent&To=whatsapp%3A%2B37120000003&campaign_id=c",
            r,
        );
        assert_eq!(out, vec![Outcome::Ingested]);
        let all = MessageFilter::new(None, &Default::default());
        let m3 = block_on(s.messages("c", &all, None, 100))
            .unwrap()
            .into_iter()
            .find(|(m, _)| m.message_id == "m3")
            .unwrap()
            .0;
        assert_eq!(
            (m3.recipient.as_str(), m3.at, m3.parts),
            ("+37120000003", r, 1)
        );
        assert_eq!(m3.current(), Status::Sent);
        // A recipient that cannot be read registers nothing, and the status still applies.
        let out = lines(
            &s,
            LineFormat::Kannel,
            "type=1&id=m4&to=0291234567&campaign_id=c",
            r,
        );
        assert_eq!(out, vec![Outcome::Ingested]);
        assert_eq!(status_of(&s, "m4"), None);
    }
}
