//! The same streams into the in-memory reference store, sled, SQLite and PostgreSQL give
//! the same answer to every ingest call and the same state (`assert_same_state`).
mod common;

use smsreport_conformance::props::{config, conflicting, reordered};
use smsreport_conformance::{assert_same_state, ingest_text, or_skip, run};
use smsreport_core::mem::MemStore;
use smsreport_core::{Millis, Store};
use smsreport_synth::{events, SynthConfig};

const NAMES: [&str; 4] = ["memory", "sled", "SQLite", "PostgreSQL"];

/// Ingests the same lines, cut into the same calls, into every store: every call must
/// count and reject the same as in the first store, and every store must end in the
/// first one's state.
async fn same_everywhere(stores: &[&dyn Store], lines: &[String], batch: usize) {
    let mut answers = Vec::new();
    for s in stores {
        let mut mine = Vec::new();
        for chunk in lines.chunks(batch.max(1)) {
            mine.push(ingest_text(*s, &chunk.join("\n")).await);
        }
        answers.push(mine);
    }
    let (first, others) = stores.split_first().unwrap();
    for (i, other) in others.iter().enumerate() {
        let name = NAMES[i + 1];
        for (call, (want, got)) in answers[0].iter().zip(&answers[i + 1]).enumerate() {
            assert_eq!(got, want, "{name}: the answer to ingest call {call}");
        }
        assert_same_state(*first, *other, &format!("memory and {name}")).await;
    }
}

/// Runs `f` over the in-memory store, sled, SQLite and PostgreSQL, or, when PostgreSQL
/// is skipped (see `or_skip`), over the first three.
async fn with_all(test: &str, f: impl AsyncFnOnce(&[&dyn Store])) {
    let mem = MemStore::default();
    let (sled, _g1) = common::sled_store().await;
    let (sqlite, _g2) = common::sqlite_store().await;
    match or_skip(test, common::pg_store().await) {
        Some((pg, _g3)) => f(&[&mem, &sled, &sqlite, &pg]).await,
        None => f(&[&mem, &sled, &sqlite]).await,
    }
}

proptest::proptest! {
    #![proptest_config(config())]

    #[test]
    fn reordered_streams_agree(case in reordered()) {
        run(async {
            let mut lines = case.campaigns.clone();
            lines.extend(case.shuffled.iter().cloned());
            let batch = case.cuts_b.first().copied().unwrap_or(lines.len()).max(1);
            with_all(
                "reordered_streams_agree on PostgreSQL",
                async |s: &[&dyn Store]| same_everywhere(s, &lines, batch).await,
            )
            .await;
        });
    }

    #[test]
    fn conflicting_streams_agree(lines in conflicting()) {
        run(async {
            with_all(
                "conflicting_streams_agree on PostgreSQL",
                async |s: &[&dyn Store]| same_everywhere(s, &lines, 7).await,
            )
            .await;
        });
    }
}

/// A realistic campaign (late and duplicated receipts, statuses before messages, human
/// and bot clicks over months).
#[test]
fn a_synthetic_campaign_agrees() {
    let lines: Vec<String> = events(&SynthConfig {
        campaign_id: "diff".into(),
        name: "Differential".into(),
        messages: 2000,
        seed: 5,
        start: Millis::from_utc(2026, 3, 1, 8, 0, 0, 0).unwrap(),
    })
    .collect();
    run(async {
        with_all(
            "a_synthetic_campaign_agrees on PostgreSQL",
            async |s: &[&dyn Store]| same_everywhere(s, &lines, 700).await,
        )
        .await;
    });
}
