//! Moving a store (docs/events.md, "Export"): sled → PostgreSQL → SQLite → sled, each
//! step an export of the last store ingested into an empty one of the next backend. Every
//! store of the chain answers the same (campaigns, reports as of one moment, every
//! drill-down page, verify), and every export is the same bytes.
mod common;

use smsreport_conformance::props::{config, conflicting, reordered};
use smsreport_conformance::{assert_same_state, export_text, ingest_text, or_skip, run};
use smsreport_core::{Millis, Store};
use smsreport_synth::{events, SynthConfig};

/// Ingests `lines` into sled, then moves the store along the chain.
async fn moves_losslessly(test: &str, lines: &[String]) {
    let (sled, _g1) = common::sled_store().await;
    let (sqlite, _g2) = common::sqlite_store().await;
    let (back, _g3) = common::sled_store().await;
    let pg = or_skip(test, common::pg_store().await);
    ingest_text(&sled, &lines.join("\n")).await;
    let first = export_text(&sled, 97).await;
    let mut chain: Vec<(&str, &dyn Store)> = Vec::new();
    if let Some((pg, _)) = &pg {
        chain.push(("PostgreSQL", pg));
    }
    chain.push(("SQLite", &sqlite));
    chain.push(("sled again", &back));
    let mut from: (&str, &dyn Store) = ("sled", &sled);
    for (name, to) in chain {
        let text = export_text(from.1, 251).await;
        assert_eq!(
            text, first,
            "the export of {} is the first one's bytes",
            from.0
        );
        let (summary, rejected) = ingest_text(to, &text).await;
        assert!(
            rejected.is_empty(),
            "{name} takes the export whole: {rejected:?}"
        );
        assert_eq!(summary.ingested, text.lines().count() as u64, "{name}");
        assert_same_state(&sled, to, &format!("sled and {name} after the move")).await;
        from = (name, to);
    }
    assert_eq!(
        export_text(from.1, 1000).await,
        first,
        "the last store exports the same bytes"
    );
}

proptest::proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_streams_move(case in reordered()) {
        run(async {
            let mut lines = case.campaigns.clone();
            lines.extend(case.shuffled.iter().cloned());
            moves_losslessly("random_streams_move on PostgreSQL", &lines).await;
        });
    }

    #[test]
    fn conflicting_streams_move(lines in conflicting()) {
        run(moves_losslessly("conflicting_streams_move on PostgreSQL", &lines));
    }
}

/// A realistic campaign: late and duplicated receipts, statuses before messages, human
/// and bot clicks over months.
#[test]
fn a_synthetic_campaign_moves() {
    let lines: Vec<String> = events(&SynthConfig {
        campaign_id: "move".into(),
        name: "Moving".into(),
        messages: 3000,
        seed: 11,
        start: Millis::from_utc(2026, 3, 1, 8, 0, 0, 0).unwrap(),
    })
    .collect();
    run(moves_losslessly(
        "a_synthetic_campaign_moves on PostgreSQL",
        &lines,
    ));
}
