//! Properties over generated event streams: order and duplication do not matter; the
//! delivery rows always sum to the total; verify always passes.

use std::cell::RefCell;
use std::future::Future;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use smsreport_core::ingest::Summary;
use smsreport_core::report::RecipientQuery;
use smsreport_core::Store;

use crate::{assert_same_state, ingest_text, or_skip, run, Fresh, Skip};

/// Cases per property: `SMSREPORT_PROPTEST_CASES`, default 24.
pub fn config() -> ProptestConfig {
    let cases = std::env::var("SMSREPORT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A conflict-free stream, and the same events reordered and partly duplicated.
#[derive(Debug, Clone)]
pub struct Reordered {
    /// Campaign events: they come first in both streams.
    pub campaigns: Vec<String>,
    /// The other events, in their original order.
    pub events: Vec<String>,
    /// The other events shuffled, with some repeated.
    pub shuffled: Vec<String>,
    /// Where the first stream is cut into separate ingest calls.
    pub cuts_a: Vec<usize>,
    /// Where the second stream is cut.
    pub cuts_b: Vec<usize>,
}

const PHONES: [&str; 6] = [
    "+37120000001",
    "+37120000002",
    "+37120000003",
    "+4915112345601",
    "+15551234567",
    "+447700900123",
];
const STATUSES: [&str; 8] = [
    "queued",
    "enroute",
    "sent",
    "unknown",
    "failed_rejected",
    "failed_expired",
    "failed_routing",
    "delivered",
];
const AGENTS: [Option<&str>; 3] = [
    None,
    Some("Mozilla/5.0 (Android 14)"),
    Some("TelegramBot (like TwitterBot)"),
];

fn at(seconds: u32) -> String {
    // 2026-01-31T22:00:00Z plus up to ~70 days: clicks straddle month boundaries.
    let base = 1_769_896_800_i64;
    smsreport_core::Millis((base + seconds as i64) * 1000).to_string()
}

#[derive(Debug, Clone)]
struct Raw {
    campaigns: usize,
    links: usize,
    contacts: Vec<(usize, usize)>,
    messages: Vec<(usize, usize, u8, u32)>,
    statuses: Vec<(usize, usize, u32, Option<u8>)>,
    clicks: Vec<(usize, usize, usize, u32, bool)>,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        1usize..=2,
        1usize..=3,
        prop::collection::vec((0usize..2, 0usize..6), 0..6),
        prop::collection::vec((0usize..2, 0usize..6, 1u8..=3, 0u32..100), 0..14),
        prop::collection::vec(
            (0usize..16, 0usize..8, 0u32..6, prop::option::of(0u8..3)),
            0..24,
        ),
        prop::collection::vec(
            (
                0usize..2,
                0usize..3,
                0usize..6,
                0u32..6_000_000,
                any::<bool>(),
            ),
            0..16,
        ),
    )
        .prop_map(
            |(campaigns, links, contacts, messages, statuses, clicks)| Raw {
                campaigns,
                links,
                contacts,
                messages,
                statuses,
                clicks,
            },
        )
}

/// Lines of a stream. With `conflicts`, message ids and event ids repeat with other
/// content; without, every id has one content.
fn lines(r: &Raw, conflicts: bool) -> (Vec<String>, Vec<String>) {
    let mut campaigns = Vec::new();
    for c in 0..r.campaigns {
        let links: Vec<String> = (0..r.links)
            .map(|l| format!(r#"{{"link_id":"l{l}","url":"https://shop.example/c{c}/l{l}"}}"#))
            .collect();
        campaigns.push(format!(
            r#"{{"type":"campaign","campaign_id":"c{c}","name":"Campaign {c}","contact_list":{{"list_id":"list{c}","name":"List {c}"}},"link_tracking":true,"links":[{}],"created_at":"{}"}}"#,
            links.join(","),
            at(c as u32 * 60)
        ));
    }
    let mut ev = Vec::new();
    for (list, p) in &r.contacts {
        ev.push(format!(
            r#"{{"type":"contact","list_id":"list{list}","recipient":"{}"}}"#,
            PHONES[*p]
        ));
    }
    for (i, (c, p, parts, t)) in r.messages.iter().enumerate() {
        let c = c % r.campaigns;
        let id = if conflicts { i % 5 } else { i };
        ev.push(format!(
            r#"{{"type":"message","message_id":"m{id}","campaign_id":"c{c}","recipient":"{}","parts":{parts},"at":"{}"}}"#,
            PHONES[*p],
            at(*t)
        ));
    }
    for (m, s, t, code) in &r.statuses {
        let code = code
            .map(|c| format!(r#","error_code":"e{c}""#))
            .unwrap_or_default();
        ev.push(format!(
            r#"{{"type":"status","message_id":"m{m}","status":"{}"{code},"at":"{}"}}"#,
            STATUSES[*s],
            at(*t)
        ));
    }
    for (i, (c, l, p, t, with_id)) in r.clicks.iter().enumerate() {
        let (c, l) = (c % r.campaigns, l % r.links);
        // Without conflicts, the user agent is a function of the click's identity.
        let ua = AGENTS[if conflicts {
            i % 3
        } else {
            (p + l + *t as usize) % 3
        }];
        let ua = ua
            .map(|u| format!(r#","user_agent":"{u}""#))
            .unwrap_or_default();
        let id = if *with_id {
            format!(r#","event_id":"k{}""#, if conflicts { i % 3 } else { i })
        } else {
            String::new()
        };
        ev.push(format!(
            r#"{{"type":"click","campaign_id":"c{c}","link_id":"l{l}","recipient":"{}","at":"{}"{ua}{id}}}"#,
            PHONES[*p],
            at(*t)
        ));
    }
    (campaigns, ev)
}

fn cuts(len: usize, picks: &[usize]) -> Vec<usize> {
    let mut c: Vec<usize> = picks
        .iter()
        .map(|p| if len == 0 { 0 } else { p % (len + 1) })
        .collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Conflict-free streams with a reordering and duplicates.
pub fn reordered() -> impl Strategy<Value = Reordered> {
    (
        raw(),
        any::<u64>(),
        prop::collection::vec(any::<usize>(), 0..4),
        prop::collection::vec(any::<usize>(), 0..4),
    )
        .prop_map(|(r, seed, ca, cb)| {
            let (campaigns, events) = lines(&r, false);
            let mut rng = seed | 1;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut shuffled = events.clone();
            for _ in 0..(events.len() / 3 + 1).min(events.len()) {
                let i = next() as usize % events.len();
                shuffled.push(events[i].clone());
            }
            for i in (1..shuffled.len()).rev() {
                let j = next() as usize % (i + 1);
                shuffled.swap(i, j);
            }
            let cuts_a = cuts(events.len(), &ca);
            let cuts_b = cuts(shuffled.len(), &cb);
            Reordered {
                campaigns,
                events,
                shuffled,
                cuts_a,
                cuts_b,
            }
        })
}

/// Streams with conflicts: message ids and click event ids repeated with other content.
pub fn conflicting() -> impl Strategy<Value = Vec<String>> {
    raw().prop_map(|r| {
        let (mut c, e) = lines(&r, true);
        c.extend(e);
        c
    })
}

/// Ingests `head`, then `rest` cut at `cuts`, one call per part; the counts of all calls.
async fn ingest_in_parts(
    store: &dyn Store,
    head: &[String],
    rest: &[String],
    cuts: &[usize],
) -> Summary {
    let mut total = ingest_text(store, &head.join("\n")).await.0;
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&rest.len())) {
        if to > from {
            let part = ingest_text(store, &rest[from..to].join("\n")).await.0;
            total.ingested += part.ingested;
            total.duplicates += part.duplicates;
            total.rejected += part.rejected;
            from = to;
        }
    }
    total
}

/// Every recipient page of a campaign, concatenated.
pub async fn all_recipients(
    store: &dyn Store,
    campaign_id: &str,
) -> Vec<smsreport_core::report::RecipientRow> {
    let mut out = Vec::new();
    let mut q = RecipientQuery {
        row: None,
        after: None,
        limit: 3,
    };
    loop {
        let page = store.recipients(campaign_id, &q).await.expect("recipients");
        out.extend(page.items);
        match page.next {
            Some(n) => q.after = Some(n),
            None => return out,
        }
    }
}

/// Ingests the original stream into `a` and the reordered one into `b`: the same events
/// are ingested, the extra copies are duplicates, nothing is rejected, and the two
/// stores hold the same state ([`assert_same_state`]).
pub async fn same_reports(a: &dyn Store, b: &dyn Store, case: &Reordered) {
    let sa = ingest_in_parts(a, &case.campaigns, &case.events, &case.cuts_a).await;
    let sb = ingest_in_parts(b, &case.campaigns, &case.shuffled, &case.cuts_b).await;
    assert_eq!(
        (sa.rejected, sb.rejected),
        (0, 0),
        "a conflict-free stream has no rejected line"
    );
    assert_eq!(
        sa.ingested + sa.duplicates,
        (case.campaigns.len() + case.events.len()) as u64,
        "every line of the original stream is counted once: {sa:?}"
    );
    assert_eq!(
        (sb.ingested, sb.duplicates),
        (
            sa.ingested,
            sa.duplicates + (case.shuffled.len() - case.events.len()) as u64
        ),
        "the reordered stream ingests the same events, and its copies are duplicates"
    );
    assert_same_state(a, b, "the original stream and the reordered one").await;
}

/// Whatever the stream, every line is counted once, the rows sum to the total, the
/// drill-down has `total` messages, and verify passes.
pub async fn totals_hold(store: &dyn Store, lines: &[String]) {
    let (s, _) = ingest_text(store, &lines.join("\n")).await;
    assert_eq!(
        s.ingested + s.duplicates + s.rejected,
        lines.len() as u64,
        "every line is counted once: {s:?}"
    );
    for c in store.campaigns().await.unwrap() {
        let r = crate::report(store, &c.campaign_id).await;
        let d = &r.delivery;
        assert_eq!(
            d.errors.total,
            d.errors.routing + d.errors.expired + d.errors.rejected
        );
        assert_eq!(
            d.delivered + d.sent + d.queued + d.undelivered + d.errors.total + d.other,
            d.total
        );
        assert_eq!(
            all_recipients(store, &c.campaign_id).await.len() as u64,
            d.total
        );
        assert!(r.links.unique_clicks <= r.links.total_clicks);
    }
    let v = store.verify().await.unwrap();
    assert!(v.differences.is_empty(), "{:?}", v.differences);
}

/// Runs `body` on the cases of `strategy` ([`config`] of them), shrinking a failure to a
/// minimal case. A body that answers [`Skip`] skips the whole test ([`or_skip`]).
fn property<S: Strategy>(test: &str, strategy: S, body: impl Fn(S::Value) -> Result<(), Skip>) {
    let skipped = RefCell::new(None);
    let result = TestRunner::new(config()).run(&strategy, |case| {
        if skipped.borrow().is_none() {
            if let Err(s) = body(case) {
                *skipped.borrow_mut() = Some(s);
            }
        }
        Ok(())
    });
    if let Some(s) = skipped.into_inner() {
        or_skip::<()>(test, Err(s));
        return;
    }
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
}

/// Property: a conflict-free stream, and the same events reordered, partly repeated and
/// cut into other calls, give two stores of `factory` the same state ([`same_reports`]).
pub fn any_order_and_duplication_gives_the_same_reports<F, Fut>(test: &str, factory: F)
where
    F: Fn() -> Fut,
    Fut: Future,
    Fut::Output: Fresh,
{
    property(test, reordered(), |case| {
        run(async {
            let (a, _ga) = factory().await.fresh()?;
            let (b, _gb) = factory().await.fresh()?;
            same_reports(&a, &b, &case).await;
            Ok(())
        })
    });
}

/// Property: any stream, conflicts included, keeps the totals right ([`totals_hold`]).
pub fn rows_sum_to_total_and_verify_passes<F, Fut>(test: &str, factory: F)
where
    F: Fn() -> Fut,
    Fut: Future,
    Fut::Output: Fresh,
{
    property(test, conflicting(), |lines| {
        run(async {
            let (a, _ga) = factory().await.fresh()?;
            totals_hold(&a, &lines).await;
            Ok(())
        })
    });
}
